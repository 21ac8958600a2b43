"""Spoken digits: "zero" .. "nine" from the free TTS engines in Debian main.

Voices (``engine:voice``; whole voices are held out for test, see :data:`VOICES`):

- flite (``flite -voice V --setf duration_stretch=D``): slt, rms, kal16 (train), awb (test).
- festival (``festival --pipe`` with a Scheme script): kal_diphone (festvox-kallpc16k) and
  cmu_us_slt_arctic_hts (festvox-us-slt-hts) for train, ked_diphone (festvox-kdlpc16k)
  for test. Diphone voices take ``Duration_Stretch``; the HTS voice ignores it and takes
  the hts_engine speech-rate option ``-r`` instead.
- espeak-ng (``espeak-ng -v ACCENT+VARIANT -s WPM``): 8 English accents x 16 variants
  (default, f1-f4, m1-m7, klatt-klatt4); the accents en-029 and en-gb-scotland (with all
  their variants) are held out for test.

A clip draws (from its own generator) an engine (equally likely), a voice of that engine,
a speed in [0.8, 1.25] (log-uniform), a pitch shift in [-3, 3] semitones and a peak.
The pitch shift is done by resampling with soxr, which also speeds the word up by
``r = 2**(semitones/12)``; the engine is asked for the rest of the speed, rounded to
the nearest of :data:`SPEED_LEVELS`, so each (voice, word, level) is synthesised once,
cached under ``OUT/.cache/digits`` and reused by every clip that needs it (festival is
the slow one: benchmarks/DESIGN.md, "Digits: the synthesis cache"). The word is trimmed
of silence (frames more than 40 dB below its loudest), faded at the cut, and placed at a
seeded random offset such that all of it fits; a word too long for the clip is
re-synthesised at the next faster level. With probability 0.3 a little white noise
(40-55 dB below the word's peak) is added. The word for clip ``i`` is digit ``i % 10``,
so the digits are balanced.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from ..constants import CLIP_LENGTH, SAMPLE_RATE
from ..fsutil import atomic_write
from .build import (
    Clip,
    DataBuildError,
    Requirements,
    clip_rng,
    debian_copyright,
    debian_version,
    draw_peak,
    fade,
    normalise,
    run_tool,
    varispeed,
)

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ENGINES = ("flite", "festival", "espeak-ng")
ESPEAK_VARIANTS = (
    "",
    "f1",
    "f2",
    "f3",
    "f4",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
)
_ESPEAK_ACCENTS = {
    "train": ("en-gb", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us", "en-us-nyc"),
    "test": ("en-029", "en-gb-scotland"),
}
VOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "flite": ("kal16", "rms", "slt"),
        "festival": ("cmu_us_slt_arctic_hts", "kal_diphone"),
        "espeak-ng": tuple(a + (f"+{v}" if v else "") for a in _ESPEAK_ACCENTS["train"] for v in ESPEAK_VARIANTS),
    },
    "test": {
        "flite": ("awb",),
        "festival": ("ked_diphone",),
        "espeak-ng": tuple(a + (f"+{v}" if v else "") for a in _ESPEAK_ACCENTS["test"] for v in ESPEAK_VARIANTS),
    },
}
SPEED_RANGE = (0.8, 1.25)
SEMITONE_RANGE = (-3.0, 3.0)
SPEED_LEVELS = (0.67, 0.74, 0.82, 0.91, 1.0, 1.1, 1.22, 1.35, 1.5)  # what the engines are asked for
TRIM_DB = -40.0  # frames (10 ms) this far below the loudest frame are silence
MARGIN = 160  # samples (10 ms) kept free at either end of the clip
NOISE_PROB = 0.3
NOISE_DB = (-55.0, -40.0)  # white noise RMS relative to the word's peak
ESPEAK_WPM = 175  # espeak-ng's default rate, speed 1

_FESTIVAL_DIR = "/usr/share/festival/voices"
REQUIREMENTS = Requirements(
    debian={
        "flite": ("flite",),
        "festival": ("festival",),
        "festvox-kallpc16k": (f"{_FESTIVAL_DIR}/english/kal_diphone",),
        "festvox-kdlpc16k": (f"{_FESTIVAL_DIR}/english/ked_diphone",),
        "festvox-us-slt-hts": (f"{_FESTIVAL_DIR}/us/cmu_us_slt_arctic_hts",),
        "espeak-ng": ("espeak-ng",),
    },
)
_ENGINE_PACKAGE = {"flite": "flite", "festival": "festival", "espeak-ng": "espeak-ng"}


def sources() -> dict[str, list[str]]:
    """The voices (``engine:voice``) of each split."""
    return {split: [f"{e}:{v}" for e in ENGINES for v in VOICES[split][e]] for split in VOICES}


def parameters() -> dict:
    return {
        "words": list(WORDS),
        "engines": list(ENGINES),
        "engine_choice": "uniform, then a uniform voice of it",
        "speed_range": list(SPEED_RANGE),
        "speed_distribution": "log-uniform",
        "semitone_range": list(SEMITONE_RANGE),
        "pitch_method": "soxr HQ resampling (varispeed); the engine speed makes up the rest",
        "speed_levels": list(SPEED_LEVELS),
        "trim_db": TRIM_DB,
        "margin_samples": MARGIN,
        "noise_probability": NOISE_PROB,
        "noise_db_re_peak": list(NOISE_DB),
        "espeak_wpm_at_speed_1": ESPEAK_WPM,
        "word_of_clip": "WORDS[index % 10]",
    }


def licence() -> dict:
    return {
        "summary": (
            "Synthetic speech made with free software from Debian main: flite (CMU/Edinburgh free "
            "licence, BSD-style; some files GPL-2), festival and its diphone voices kal/ked (CSTR/CMU "
            "free X11-style licence: use, modify and distribute without restriction), the CMU ARCTIC "
            "slt HTS voice (festvox-us-slt-hts: EST/CMU free licences, BSD-3-clause), espeak-ng "
            "(GPL-3+). The words are the programs' output; see each package's copyright file."
        ),
        "packages": {pkg: debian_copyright(pkg) for pkg in REQUIREMENTS.debian},
    }


# --- synthesis ----------------------------------------------------------------------


@functools.cache
def _engine_version(engine: str) -> str:
    return debian_version(_ENGINE_PACKAGE[engine]) or "unknown"


def _festival_script(voice: str, word: str, level: float, path: str) -> str:
    if voice.endswith("_hts"):  # hts_engine's speech rate; Duration_Stretch is ignored by HTS voices
        speed = f'(set! hts_engine_params (append {voice}::hts_engine_params (list (list "-r" {level}))))'
    else:
        speed = f"(Parameter.set 'Duration_Stretch {1.0 / level:.6f})"
    return f'(voice_{voice})\n{speed}\n(utt.save.wave (SynthText "{word}") "{path}" \'riff)\n'


def _synthesise(engine: str, voice: str, word: str, level: float, path: Path) -> None:
    """Run the TTS engine, writing a WAV to ``path``."""
    what = f"{engine} voice {voice}, word {word}, speed {level}"
    if engine == "flite":
        run_tool(
            ["flite", "-voice", voice, "--setf", f"duration_stretch={1.0 / level:.6f}", "-t", word, "-o", str(path)],
            what=what,
        )
    elif engine == "festival":
        run_tool(["festival", "--pipe"], input=_festival_script(voice, word, level, str(path)), what=what)
    elif engine == "espeak-ng":
        run_tool(["espeak-ng", "-v", voice, "-s", str(round(ESPEAK_WPM * level)), "-w", str(path), word], what=what)
    else:
        raise DataBuildError(f"unknown TTS engine {engine!r}")
    if not path.is_file() or path.stat().st_size <= 44:
        raise DataBuildError(f"{what}: the engine wrote no audio (is the voice installed?)")


def raw_word(engine: str, voice: str, word: str, level: float, cache: Path) -> tuple[np.ndarray, int]:
    """The engine's output ``[T]`` float32 and its rate, synthesised once per
    (engine version, voice, word, level) and kept in ``cache``."""
    path = cache / f"{engine}-{_engine_version(engine)}" / voice / f"{word}-{level:.2f}.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:  # the engine writes the temporary WAV
            _synthesise(engine, voice, word, level, tmp)
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return x.mean(axis=1), int(rate)


def trim(x: np.ndarray, frame: int = SAMPLE_RATE // 100) -> np.ndarray:
    """``x [T]`` without its leading and trailing silence (10 ms frames more than
    :data:`TRIM_DB` below the loudest), keeping one frame either side, faded at the cuts."""
    n = len(x) // frame
    if n == 0:
        raise DataBuildError(f"digits: the TTS engine produced only {len(x)} samples")
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    active = np.flatnonzero(rms > rms.max() * 10 ** (TRIM_DB / 20))
    if active.size == 0:
        raise DataBuildError("digits: the TTS engine produced silence")
    start = max(0, (active[0] - 1) * frame)
    end = min(len(x), (active[-1] + 2) * frame)
    return fade(x[start:end], frame // 2, frame)


# --- clips --------------------------------------------------------------------------


def _nearest_level(target: float) -> int:
    return int(np.argmin(np.abs(np.log(np.asarray(SPEED_LEVELS)) - np.log(target))))


def make_clip(split: str, index: int, seed: int, cache: Path) -> Clip:
    """Clip ``index`` of ``split``; see the module docstring."""
    gen, entropy = clip_rng(seed, "digits", split, index)
    word = WORDS[index % len(WORDS)]
    engine = ENGINES[int(gen.integers(len(ENGINES)))]
    voices = VOICES[split][engine]
    voice = voices[int(gen.integers(len(voices)))]
    speed = float(np.exp(gen.uniform(np.log(SPEED_RANGE[0]), np.log(SPEED_RANGE[1]))))
    semitones = float(gen.uniform(*SEMITONE_RANGE))
    peak = draw_peak(gen)
    noisy = bool(gen.random() < NOISE_PROB)
    noise_db = float(gen.uniform(*NOISE_DB))
    ratio = 2.0 ** (semitones / 12.0)
    first = level = _nearest_level(speed / ratio)
    while True:
        raw, rate = raw_word(engine, voice, word, SPEED_LEVELS[level], cache)
        y = trim(varispeed(raw, rate, semitones))
        if len(y) <= CLIP_LENGTH - 2 * MARGIN:
            break
        if level == len(SPEED_LEVELS) - 1:
            raise DataBuildError(
                f"digits: {engine}:{voice} says {word!r} in {len(y)} samples even at the fastest level"
            )
        level += 1
    offset = MARGIN + int(gen.integers(CLIP_LENGTH - 2 * MARGIN - len(y) + 1))
    x = np.zeros(CLIP_LENGTH, np.float32)
    x[offset : offset + len(y)] = y
    if noisy:
        x += (np.abs(y).max() * 10 ** (noise_db / 20) * gen.standard_normal(CLIP_LENGTH)).astype(np.float32)
    x, gain = normalise(x, peak)
    params = {
        "speed": speed,
        "semitones": semitones,
        "engine_speed": SPEED_LEVELS[level],
        "speed_actual": SPEED_LEVELS[level] * ratio,
        "levels_skipped": level - first,
        "offset": offset,
        "word_samples": len(y),
        "noise_db": noise_db if noisy else None,
        "gain": gain,
        "peak": peak,
    }
    source = {
        "engine": engine,
        "voice": f"{engine}:{voice}",
        "word": word,
        "digit": index % len(WORDS),
        "engine_version": _engine_version(engine),
    }
    return Clip(x, source, params, entropy)


def clips(split: str, n: int, seed: int, cache: Path) -> Iterator[Clip]:
    """``n`` clips of ``split``; raw TTS output is cached in ``cache``."""
    for index in range(n):
        yield make_clip(split, index, seed, cache)
