"""Make the shifted-domain validation set committed in ``benchmarks/sets/shifted/``.

Mixtures whose sources come from material that no prior trains on (issue 14, item 1), so
that a change can be checked for whether it *generalises*. Never train or tune on it.

* **digits**: the TTS voices kept out of training (flite ``awb``, festival
  ``ked_diphone``, espeak-ng accents ``en-029`` and ``en-gb-scotland``), espeak-ng with
  voice *variants* no split uses (Adam, Alex, Andy, ...), and a pitch range twice the
  training one (+-6 semitones against +-3);
* **drums**: single hits of the General MIDI drum kits of two soundfonts the training never
  hears (Debian ``timgm6mb-soundfont``, its standard kit; ``musescore-general-soundfont``,
  its standard, room, power, electronic, TR-808, jazz and brush kits), rendered by
  fluidsynth, aligned at the onset as the training hits are (training: Hydrogen kits);
* **piano**: Mozart and Haydn from the music21 corpus (training: Bach chorales), played on
  the pianos of those two soundfonts (training: FluidR3_GM), programs 0-2;
* every clip then goes through its own **room** (a shoebox room simulated by
  pyroomacoustics' image-source method, RT60 0.2-0.8 s, random size and positions; the
  direct path aligned to time 0) and its own **EQ** (three peaking filters of +-9 dB at
  log-uniform centres 80 Hz-6 kHz and a tilt shelf of +-6 dB), then a random peak.

Layout (beside the committed sets, same formats): ``shifted/<class>/test/NNNNNN.flac``
(16 kHz mono 16-bit FLAC, 1.024 s), ``shifted/<class>/clips.json`` (every clip's source
and drawn parameters, the packages' versions and licences) and one manifest of ``--n``
paper-gain mixtures per class combination, ``shifted-<classes>.json`` (root
``shifted``), which ``priorsep benchmark`` picks up with the other sets.

Needs (besides the ``data`` extra and ``scripts/install_data_tools.sh``):
``apt-get install timgm6mb-soundfont musescore-general-soundfont`` and
``pip install pyroomacoustics``.

Usage (from the repository root; about 3 minutes on one core):
    .venv/bin/python benchmarks/make_shifted_set.py
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.signal

from priorsep.constants import CLIP_LENGTH, SAMPLE_RATE
from priorsep.data import digits, drums
from priorsep.data.build import (
    debian_copyright,
    debian_version,
    fade,
    normalise,
    pcm_sha256,
    python_version,
    to_pcm16,
    varispeed,
    write_clip,
)
from priorsep.data.mixtures import make_mixture_set, write_manifest

REPO = Path(__file__).resolve().parents[1]
COMBOS = (("digits", "drums"), ("digits", "piano"), ("drums", "piano"), ("digits", "drums", "piano"))
TIMGM = "/usr/share/sounds/sf2/TimGM6mb.sf2"
MUSESCORE = "/usr/share/sounds/sf3/MuseScore_General_Full.sf3"
SOUNDFONTS = {"timgm6mb": (TIMGM, "timgm6mb-soundfont"), "musescore": (MUSESCORE, "musescore-general-soundfont")}
DRUM_KITS = {"timgm6mb": (0,), "musescore": (0, 8, 16, 24, 25, 32, 40)}  # GM bank-128 programs
DRUM_NOTES = (35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 59)
PIANO_PROGRAMS = (0, 1, 2)  # acoustic grand, bright acoustic, electric grand
COMPOSERS = ("mozart", "haydn")
PIANO_SECONDS = 45.0  # each piece is rendered up to here
VOICES = {  # none of these is in the training split (priorsep.data.digits.VOICES["train"])
    "flite": ("awb",),
    "festival": ("ked_diphone",),
    "espeak-ng": tuple(f"{a}+{v}" for a in ("en-029", "en-gb-scotland", "en-us", "en-gb")
                       for v in ("Adam", "Alex", "Andy", "Annie", "Benjamin", "Caleb", "David", "Ed", "Gene",
                                 "Jacky", "John", "Lee", "Linda", "Max", "Michael", "Mike", "Paul", "Robert",
                                 "Steph", "Storm", "anika", "grandpa", "grandma", "norbert", "shelby", "travis")),
}
SEMITONES = (-6.0, 6.0)
RT60 = (0.2, 0.8)
EQ_BANDS, EQ_DB, TILT_DB = 3, 9.0, 6.0
PEAK = (0.5, 0.95)


# --- the room and the EQ ----------------------------------------------------------------


def room_response(gen: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A shoebox room's impulse response ``[R]`` (direct path at sample 0, peak 1)."""
    import pyroomacoustics as pra

    dims = np.array([gen.uniform(3, 10), gen.uniform(3, 8), gen.uniform(2.4, 4)])
    rt60 = float(gen.uniform(*RT60))
    absorption, order = pra.inverse_sabine(rt60, dims)
    order = int(min(order, 18))  # the late tail of a live room is thinner than ISM's, not shorter
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=order)
    src, mic = (gen.uniform(0.5, dims - 0.5) for _ in range(2))
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    h = np.asarray(room.rir[0][0], np.float64)
    h = h[max(0, int(np.argmax(np.abs(h) >= 0.05 * np.abs(h).max())) - 8):]
    return h / np.abs(h).max(), {"room_m": dims.round(2).tolist(), "rt60_s": rt60, "ism_order": order,
                                  "distance_m": float(np.linalg.norm(src - mic))}


def peaking(f0: float, db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """A peaking biquad (the audio-EQ cookbook's), as ``(b, a)``."""
    amp, w0 = 10 ** (db / 40), 2 * np.pi * f0 / SAMPLE_RATE
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])
    return b / a[0], a / a[0]


def equalise(x: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, dict]:
    """``x`` through three random peaking filters and a first-order tilt."""
    bands = []
    for _ in range(EQ_BANDS):
        f0, db, q = float(np.exp(gen.uniform(np.log(80), np.log(6000)))), float(gen.uniform(-EQ_DB, EQ_DB)), \
            float(gen.uniform(0.7, 2.0))
        x = scipy.signal.lfilter(*peaking(f0, db, q), x)
        bands.append({"hz": f0, "db": db, "q": q})
    tilt = float(gen.uniform(-TILT_DB, TILT_DB))  # + brightens: mix in a first difference
    g = 10 ** (abs(tilt) / 20) - 1
    diff = np.diff(x, prepend=0.0)
    x = x + g * diff if tilt > 0 else (x + g * scipy.signal.lfilter([0.5, 0.5], [1.0], x)) / (1 + g)
    return x, {"peaking": bands, "tilt_db": tilt}


def record(dry: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The dry clip ``[CLIP_LENGTH]`` in a random room through a random EQ, cut to the
    clip's length and set to a random peak; returns float32 and the drawn parameters."""
    h, room = room_response(gen)
    wet = scipy.signal.fftconvolve(dry.astype(np.float64), h)[:CLIP_LENGTH]
    wet, eq = equalise(wet, gen)
    peak = float(gen.uniform(*PEAK))
    x, gain = normalise(wet.astype(np.float32), peak)
    return x, {"room": room, "eq": eq, "peak": peak, "gain": gain}


# --- the dry sources -------------------------------------------------------------------


def dry_digit(index: int, gen: np.random.Generator, cache: Path) -> tuple[np.ndarray, dict]:
    word = digits.WORDS[index % 10]
    engine = ("flite", "festival", "espeak-ng")[int(gen.integers(3))]
    voice = VOICES[engine][int(gen.integers(len(VOICES[engine])))]
    semitones = float(gen.uniform(*SEMITONES))
    level = digits.SPEED_LEVELS[int(gen.integers(2, len(digits.SPEED_LEVELS)))]
    raw, rate = digits.raw_word(engine, voice, word, level, cache)
    y = digits.trim(varispeed(raw, rate, semitones))[: CLIP_LENGTH - 2 * digits.MARGIN]
    offset = digits.MARGIN + int(gen.integers(CLIP_LENGTH - 2 * digits.MARGIN - len(y) + 1))
    x = np.zeros(CLIP_LENGTH, np.float32)
    x[offset: offset + len(y)] = y
    return x, {"engine": engine, "voice": f"{engine}:{voice}", "word": word, "engine_speed": level,
               "semitones": semitones, "offset": offset}


def _synth(pm, soundfont: str) -> np.ndarray:
    audio = pm.fluidsynth(fs=SAMPLE_RATE, synthesizer=SOUNDFONTS[soundfont][0])
    if audio.size == 0 or not np.isfinite(audio).all() or np.abs(audio).max() <= 0:
        raise RuntimeError(f"fluidsynth rendered silence with {soundfont}")
    return audio.astype(np.float32)


def dry_drum(gen: np.random.Generator) -> tuple[np.ndarray, dict]:
    import pretty_midi

    soundfont = ("timgm6mb", "musescore")[int(gen.integers(2))]
    kit = DRUM_KITS[soundfont][int(gen.integers(len(DRUM_KITS[soundfont])))]
    note, velocity = int(gen.choice(DRUM_NOTES)), int(gen.integers(60, 128))
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=kit, is_drum=True)
    inst.notes.append(pretty_midi.Note(velocity, note, 0.0, 0.5))
    pm.instruments.append(inst)
    x, placed = drums.place_hit(_synth(pm, soundfont))
    return x, {"soundfont": soundfont, "kit_program": kit, "note": note, "velocity": velocity,
               "onset_in_render": placed["onset_in_file"]}


def pieces() -> list[str]:
    from music21 import corpus

    return sorted(str(p) for c in COMPOSERS for p in corpus.getComposer(c))


def render_piece(path: str, gen: np.random.Generator, cache: Path) -> tuple[np.ndarray, dict]:
    """Up to :data:`PIANO_SECONDS` of one piece on a piano of a random soundfont."""
    import pretty_midi

    midi = cache / "shifted-piano" / (Path(path).stem + ".mid")
    if not midi.is_file():
        from music21 import converter

        midi.parent.mkdir(parents=True, exist_ok=True)
        score = converter.parse(path)
        midi.write_bytes(_midi_bytes(score))
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi.read_bytes()))
    soundfont = ("timgm6mb", "musescore")[int(gen.integers(2))]
    program = int(gen.choice(PIANO_PROGRAMS))
    transpose, tempo = int(gen.integers(-2, 3)), float(np.exp(gen.uniform(np.log(0.8), np.log(1.25))))
    base = float(gen.uniform(50, 110))
    for inst in pm.instruments:
        inst.program, inst.is_drum = program, False
        inst.notes = [n for n in inst.notes if n.start / tempo < PIANO_SECONDS]
        for n in inst.notes:
            n.pitch = int(np.clip(n.pitch + transpose, 21, 108))
            n.start, n.end = n.start / tempo, max(n.end / tempo, n.start / tempo + 0.05)
            n.velocity = int(np.clip(base + gen.normal(0, 8), 20, 127))
    return _synth(pm, soundfont), {"piece": f"{Path(path).parent.name}/{Path(path).name}", "soundfont": soundfont,
                                   "program": program, "transpose": transpose, "tempo": tempo,
                                   "velocity_base": base}


def _midi_bytes(score) -> bytes:
    from music21 import midi

    return midi.translate.streamToMidiFile(score).writestr()


# --- the set ---------------------------------------------------------------------------


def write_class(out: Path, cls: str, clips: list[tuple[np.ndarray, dict]], packages: dict, licence: dict) -> None:
    folder = out / cls / "test"
    folder.mkdir(parents=True)
    entries = []
    for i, (x, params) in enumerate(clips):
        pcm = to_pcm16(x)
        path = f"{cls}/test/{i:06d}.flac"
        write_clip(out / path, pcm)
        entries.append({"path": path, "pcm_sha256": pcm_sha256(pcm), **params})
    record = {"class": cls, "set": "shifted", "packages": packages, "licence": licence, "clips": entries}
    (out / cls / "clips.json").write_text(json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default=str(REPO / "benchmarks" / "sets"), help="where the committed sets are")
    ap.add_argument("--clips", type=int, default=48, help="clips per class")
    ap.add_argument("--n", type=int, default=40, help="mixtures per set")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sets = Path(args.sets)
    missing = [p for p, (f, _) in SOUNDFONTS.items() if not Path(f).is_file()]
    if missing:
        sys.exit("make_shifted_set: missing soundfonts; apt-get install timgm6mb-soundfont musescore-general-soundfont")
    seq = np.random.SeedSequence([args.seed, 14])
    gens = {c: np.random.default_rng(s) for c, s in zip(("digits", "drums", "piano", "room"), seq.spawn(4))}
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "shifted"
        made: dict[str, list[tuple[np.ndarray, dict]]] = {"digits": [], "drums": [], "piano": []}
        for i in range(args.clips):
            x, p = dry_digit(i, gens["digits"], cache)
            made["digits"].append((x, {"source": p}))
            x, p = dry_drum(gens["drums"])
            made["drums"].append((x, {"source": p}))
        names, per_render = pieces(), 4
        order = gens["piano"].permutation(len(names))
        for j in range(-(-args.clips // per_render)):
            audio, p = render_piece(names[int(order[j % len(names)])], gens["piano"], cache)
            starts = [s for s in range(0, len(audio) - CLIP_LENGTH, 2048)
                      if np.sqrt(np.mean(audio[s:s + CLIP_LENGTH] ** 2)) > 0.3 * np.sqrt(np.mean(audio ** 2))]
            for s in gens["piano"].choice(starts, per_render, replace=False):
                if len(made["piano"]) < args.clips:
                    x = fade(audio[int(s):int(s) + CLIP_LENGTH], 80, 80)
                    made["piano"].append((x, {"source": {**p, "window_start": int(s)}}))
        for cls in made:  # every dry clip into its own room and EQ (one generator, class by class)
            made[cls] = [(xr, {**p, **params}) for x, p in made[cls] for xr, params in [record(x, gens["room"])]]
        debs = {"timgm6mb-soundfont", "musescore-general-soundfont"}
        packages = {**{d: debian_version(d) for d in debs}, "pyroomacoustics": python_version("pyroomacoustics"),
                    "music21": python_version("music21"), "flite": debian_version("flite"),
                    "festival": debian_version("festival"), "espeak-ng": debian_version("espeak-ng")}
        licences = {d: debian_copyright(d) for d in sorted(debs)}
        for cls in made:
            write_class(out, cls, made[cls], packages, {"soundfonts": licences, "music": "music21 corpus"}
                        if cls != "digits" else {"tts": "see benchmarks/sets/clips/digits/clips.json"})
        target = sets / "shifted"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(out, target)
    command = "python benchmarks/make_shifted_set.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for combo in COMBOS:
        m = make_mixture_set(target, combo, split="test", n=args.n, seed=args.seed, gains="paper")
        m["root"], m["command"] = "shifted", command
        write_manifest(m, sets / f"shifted-{'+'.join(combo)}.json")
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"wrote {target} ({size / 1e6:.1f} MB) and {len(COMBOS)} manifests shifted-*.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
