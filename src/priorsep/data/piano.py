"""Piano: Bach's four-part chorales from the music21 corpus, rendered with fluidsynth.

The chorales are the MusicXML files of ``music21.corpus.getComposer('bach')`` in the
``bach`` folder (409; offline, shipped with music21): the Humdrum copies of three of
them (``.krn``), the Roman-numeral analyses and BWV 846 (a prelude, not a chorale) are
left out. Versions of one chorale (``bwv248.23-2`` and ``bwv248.23-s``, ...) form one
group, and whole groups are held out for test: every 10th group in sorted order.

A *rendering* is one chorale exported to MIDI by music21 (cached under
``OUT/.cache/piano``), edited with pretty_midi and synthesised at 16 kHz with
fluidsynth (through pyfluidsynth) and Debian's FluidR3_GM soundfont, program 0 (Yamaha
Grand Piano). Each rendering draws from its own generator a transposition (-3..+3
semitones), a tempo factor (0.8-1.25, log-uniform), a base velocity (60-100), a velocity
offset per part (sd 6) and per note (sd 6), and a timing jitter per note start and end
(sd 10 ms): the corpus has constant velocity and quantised timing. pretty_midi
normalises the rendering to peak 1. From it :data:`CLIPS_PER_RENDERING` windows are
taken at seeded positions on a 2048-sample grid among the non-silent ones (every
quarter of the window within 30 dB of the rendering's RMS); each clip is then
peak-normalised to its own seeded peak.

Clip ``i`` of a split comes from rendering ``i // 8``, which renders chorale
``order[j % n]`` of a seeded order (so every chorale is rendered once before any is
rendered twice, the second time with other draws).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..constants import CLIP_LENGTH, SAMPLE_RATE
from ..fsutil import atomic_write
from .build import (
    Clip,
    DataBuildError,
    Requirements,
    clip_rng,
    debian_copyright,
    draw_peak,
    normalise,
    python_version,
    rng,
    rng_entropy,
)

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
PROGRAM = 0  # Acoustic Grand Piano ("Yamaha Grand Piano" in FluidR3_GM)
EXCLUDED = {"bwv846": "a prelude (Well-Tempered Clavier), not a chorale"}
TEST_EVERY = 10  # every 10th chorale group (sorted) is held out for test
CLIPS_PER_RENDERING = 8
HOP = 2048  # grid of window positions
QUIET_DB = -30.0  # a window whose quarters are all within this of the rendering's RMS is non-silent
TRANSPOSE = (-3, 3)
TEMPO_RANGE = (0.8, 1.25)
VELOCITY_BASE = (60.0, 100.0)
VELOCITY_PART_SD = 6.0
VELOCITY_NOTE_SD = 6.0
VELOCITY_CLIP = (20, 120)
TIMING_SD = 0.010  # seconds
MIN_NOTE = 0.05  # seconds
PIANO_RANGE = (21, 108)

REQUIREMENTS = Requirements(
    debian={"fluidsynth": ("fluidsynth",), "fluid-soundfont-gm": (SOUNDFONT,)},
    python={"music21": "music21", "pretty_midi": "pretty_midi", "fluidsynth": "pyfluidsynth"},
    versions=("mido",),
)


# --- chorales -----------------------------------------------------------------------


@functools.cache
def chorales() -> dict[str, Path]:
    """Chorale name (file stem, e.g. ``bwv1.6``) -> its MusicXML file, sorted by name."""
    from music21 import corpus

    found = {}
    for p in map(Path, corpus.getComposer("bach")):
        if p.parent.name == "bach" and p.suffix in (".mxl", ".xml") and p.stem not in EXCLUDED:
            found[p.stem] = p
    if not found:
        raise DataBuildError(
            "piano: the music21 corpus has no Bach chorales (was music21 installed without its corpus?)"
        )
    return dict(sorted(found.items()))


def group(name: str) -> str:
    """The chorale a version belongs to: ``bwv248.23-s`` -> ``bwv248.23``."""
    return name.split("-")[0]


def sources() -> dict[str, list[str]]:
    """The chorales of each split (whole groups held out for test)."""
    groups = sorted({group(n) for n in chorales()})
    test_groups = set(groups[::TEST_EVERY])
    return {
        "train": [n for n in chorales() if group(n) not in test_groups],
        "test": [n for n in chorales() if group(n) in test_groups],
    }


def parameters() -> dict:
    return {
        "corpus": "music21 corpus.getComposer('bach'), bach/*.mxl|*.xml",
        "excluded": EXCLUDED,
        "test_split": f"every {TEST_EVERY}th chorale group in sorted order (versions -a/-s/... grouped)",
        "soundfont": SOUNDFONT,
        "program": PROGRAM,
        "sample_rate": SAMPLE_RATE,
        "renderer": "pretty_midi.PrettyMIDI.fluidsynth: one new pyfluidsynth synth per rendering, the parts "
        "rendered on it in turn and summed, normalised to peak 1",
        "clips_per_rendering": CLIPS_PER_RENDERING,
        "hop": HOP,
        "quiet_db": QUIET_DB,
        "transpose": list(TRANSPOSE),
        "tempo_range": list(TEMPO_RANGE),
        "tempo_distribution": "log-uniform",
        "velocity_base": list(VELOCITY_BASE),
        "velocity_part_sd": VELOCITY_PART_SD,
        "velocity_note_sd": VELOCITY_NOTE_SD,
        "velocity_clip": list(VELOCITY_CLIP),
        "timing_sd_seconds": TIMING_SD,
        "min_note_seconds": MIN_NOTE,
        "schedule": "clip i <- rendering i // 8 <- chorale order[j % n] (seeded order per split)",
    }


def licence() -> dict:
    return {
        "summary": (
            "J. S. Bach's chorales (public domain) as encoded in the music21 corpus (music21 is "
            "BSD-3-Clause; its corpus/license.txt: encodings distributed with the encoders' permission, "
            "possibly with restrictions on commercial use), rendered with FluidSynth (LGPL-2.1+) and the "
            "Fluid R3 GM soundfont (MIT)."
        ),
        "music21": {
            "version": python_version("music21"),
            "license": "BSD-3-Clause",
            "corpus_licence_file": "music21/corpus/license.txt",
        },
        "packages": {pkg: debian_copyright(pkg) for pkg in REQUIREMENTS.debian},
    }


# --- rendering ----------------------------------------------------------------------


def midi_bytes(name: str, cache: Path) -> bytes:
    """The chorale exported to MIDI by music21, cached per music21 version."""
    path = cache / f"music21-{python_version('music21')}" / f"{name}.mid"
    if path.is_file():
        return path.read_bytes()
    from music21 import converter, midi

    score = converter.parse(chorales()[name])
    data = midi.translate.streamToMidiFile(score).writestr()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return data


def humanise(pm, gen: np.random.Generator) -> dict:
    """Transpose, change tempo, and jitter velocity and timing of every note in place
    (all parts on program 0); returns the drawn parameters."""
    transpose = int(gen.integers(TRANSPOSE[0], TRANSPOSE[1] + 1))
    tempo = float(np.exp(gen.uniform(np.log(TEMPO_RANGE[0]), np.log(TEMPO_RANGE[1]))))
    base = float(gen.uniform(*VELOCITY_BASE))
    part_offsets = gen.normal(0.0, VELOCITY_PART_SD, len(pm.instruments))
    for inst, offset in zip(pm.instruments, part_offsets):
        inst.program, inst.is_drum = PROGRAM, False
        n = len(inst.notes)
        vel = np.clip(np.rint(base + offset + gen.normal(0.0, VELOCITY_NOTE_SD, n)), *VELOCITY_CLIP)
        jitter = gen.normal(0.0, TIMING_SD, (n, 2))
        for note, v, (js, je) in zip(inst.notes, vel, jitter):
            note.pitch = int(np.clip(note.pitch + transpose, *PIANO_RANGE))
            start = max(0.0, note.start / tempo + js)
            note.end = max(note.end / tempo + je, start + MIN_NOTE)
            note.start = start
            note.velocity = int(v)
    return {
        "transpose": transpose,
        "tempo": tempo,
        "velocity_base": base,
        "velocity_part_offsets": [float(o) for o in part_offsets],
    }


def render(name: str, gen: np.random.Generator, cache: Path) -> tuple[np.ndarray, dict]:
    """One humanised rendering ``[T]`` float32 (peak 1) of chorale ``name``."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes(name, cache)))
    params = humanise(pm, gen)
    audio = pm.fluidsynth(fs=SAMPLE_RATE, synthesizer=SOUNDFONT)
    if audio.size < CLIP_LENGTH or not np.isfinite(audio).all() or np.abs(audio).max() <= 0:
        raise DataBuildError(f"piano: fluidsynth rendered {name} as {audio.size} samples of silence or junk")
    return audio.astype(np.float32), params


def loud_windows(audio: np.ndarray) -> np.ndarray:
    """Start positions (on the :data:`HOP` grid) of windows none of whose quarters is
    more than :data:`QUIET_DB` below the rendering's RMS."""
    floor = np.sqrt(np.mean(audio.astype(np.float64) ** 2)) * 10 ** (QUIET_DB / 20)
    starts = np.arange(0, len(audio) - CLIP_LENGTH + 1, HOP)
    quarter = CLIP_LENGTH // 4
    ok = [
        all(
            np.sqrt(np.mean(audio[s + q * quarter : s + (q + 1) * quarter].astype(np.float64) ** 2)) >= floor
            for q in range(4)
        )
        for s in starts
    ]
    return starts[np.asarray(ok, bool)]


def clips(split: str, n: int, seed: int, cache: Path) -> Iterator[Clip]:
    """``n`` clips of ``split``; see the module docstring."""
    names = sources()[split]
    if not names:
        raise DataBuildError(f"piano: no chorales for {split}")
    order = rng(seed, "piano", split, 2).permutation(len(names))
    for j in range(-(-n // CLIPS_PER_RENDERING)):
        name = names[int(order[j % len(names)])]
        gen = rng(seed, "piano", split, 1, j)
        audio, rendering = render(name, gen, cache)
        cands = loud_windows(audio)
        if cands.size == 0:
            raise DataBuildError(f"piano: rendering {j} of {name} has no non-silent window")
        picks = gen.choice(cands, CLIPS_PER_RENDERING, replace=cands.size < CLIPS_PER_RENDERING)
        for w, start in enumerate(picks[: n - j * CLIPS_PER_RENDERING]):
            index = j * CLIPS_PER_RENDERING + w
            clip_gen, entropy = clip_rng(seed, "piano", split, index)
            peak = draw_peak(clip_gen)
            x, gain = normalise(audio[int(start) : int(start) + CLIP_LENGTH], peak)
            source = {"chorale": name, "group": group(name), "file": f"bach/{chorales()[name].name}"}
            params = {
                "rendering": j,
                "rendering_seed": rng_entropy(seed, "piano", split, 1, j),
                "pass": j // len(names),
                **rendering,
                "rendering_samples": int(audio.size),
                "window_start": int(start),
                "window": w,
                "gain": gain,
                "peak": peak,
            }
            yield Clip(x, source, params, entropy)
