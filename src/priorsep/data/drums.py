"""Drum one-shots from the Hydrogen drum kits in Debian main.

Kits are the folders holding a ``drumkit.xml`` under :data:`KIT_DIR`, installed by
``hydrogen-drumkits`` (14 kits) and ``hydrogen-data`` (GMRockKit, TR808EmulationKit).
VariBreaks is left out: it holds slices of drum loops, not single hits. Every audio file
of a kit (WAV, FLAC, AIFF; 22-48 kHz, mono or stereo) is a one-shot, except files whose
peak is below -60 dBFS (two silent placeholders) and exact duplicates of a file already
taken (GMRockKit and The Black Pearl share 81 samples; the first in sorted order is
kept, train kits before test kits, so test never repeats a training sample).

Whole kits are held out for test (:data:`TEST_KITS`: an acoustic kit, a multi-layered
acoustic kit and a drum-machine kit). Each split's one-shots are visited in a seeded
order; clip ``i`` takes one-shot ``i % n``, so the first pass uses every one-shot once as
recorded (only the gain changes) and later passes add a seeded pitch/speed change by
resampling (uniform in +-2 semitones).

A one-shot is downmixed to mono, resampled to 16 kHz with soxr, aligned at its onset
(the first sample above 5% of its peak, minus 1 ms of pre-roll, faded in) and placed at
the start of the clip; a sound longer than the clip is cut with a 50 ms fade-out, a
shorter one is zero-padded. The clip is then peak-normalised to a seeded peak.
"""

from __future__ import annotations

import functools
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..constants import CLIP_LENGTH, SAMPLE_RATE
from .build import (
    Clip,
    DataBuildError,
    Requirements,
    clip_rng,
    debian_copyright,
    debian_files,
    draw_peak,
    fade,
    normalise,
    rng,
    varispeed,
)

KIT_DIR = Path("/usr/share/hydrogen/data/drumkits")
EXCLUDED_KITS = {"VariBreaks": "loop slices, not single hits"}
TEST_KITS = ("ColomboAcousticDrumkit", "Millo_MultiLayered2", "TR808EmulationKit")
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff")
SILENT_PEAK = 1e-3  # one-shots quieter than this (-60 dBFS) are skipped
ONSET_FRACTION = 0.05  # the onset is the first sample above this fraction of the peak
PREROLL = SAMPLE_RATE // 1000  # 1 ms kept before the onset
FADE_OUT = SAMPLE_RATE // 20  # 50 ms fade where a long tail is cut
SEMITONE_RANGE = (-2.0, 2.0)  # pitch/speed change of the augmented passes

# The licence of each kit as the Debian copyright files give it (hydrogen-drumkits:
# per kit archive; hydrogen-data: "Files: *").
KIT_LICENCES = {
    "Audiophob": "CC0",
    "BJA_Pacific": "CC-BY-SA-3.0-us",
    "ColomboAcousticDrumkit": "GPL-2+ with composition exception",
    "ElectricEmpireKit": "GPL-2+",
    "ForzeeStereo": "GPL-2",
    "GMRockKit": "GPL-2+",
    "Gimme A Hand 1.0": "GPL-2",
    "HardElectro1": "GPL-2+",
    "Millo-Drums_v.1": "GPL-2",
    "Millo_MultiLayered2": "GPL-2",
    "Millo_MultiLayered3": "GPL-2",
    "TR808EmulationKit": "GPL-2+",
    "The Black Pearl 1.0": "GPL-2",
    "VariBreaks": "GPL-2+",
    "circAfrique v4": "CC-BY-SA-3.0",
    "rumpf_kit_z01_h2": "CC-BY-3.0",
}
PACKAGES = ("hydrogen-drumkits", "hydrogen-data")
REQUIREMENTS = Requirements(
    debian={
        "hydrogen-drumkits": (str(KIT_DIR / "BJA_Pacific" / "drumkit.xml"),),
        "hydrogen-data": (str(KIT_DIR / "GMRockKit" / "drumkit.xml"),),
    },
)


@dataclass(frozen=True)
class OneShot:
    kit: str
    file: str  # relative to the kit folder
    path: Path
    rate: int
    channels: int
    frames: int


@functools.cache
def kit_packages() -> dict[str, str | None]:
    """Kit folder name -> the Debian package that installed it (None if dpkg cannot tell)."""
    owner = {}
    for pkg in PACKAGES:
        for f in debian_files(pkg):
            if f.endswith("/drumkit.xml"):
                owner[Path(f).parent.name] = pkg
    return {kit.name: owner.get(kit.name) for kit in sorted(KIT_DIR.glob("*/")) if (kit / "drumkit.xml").is_file()}


def kits() -> dict[str, list[str]]:
    """The kits of each split (sorted), VariBreaks excluded."""
    names = [k for k in kit_packages() if k not in EXCLUDED_KITS]
    missing = [k for k in TEST_KITS if k not in names]
    if missing:
        raise DataBuildError(f"drums: test kits {missing} not found under {KIT_DIR}")
    return {"train": [k for k in names if k not in TEST_KITS], "test": [k for k in names if k in TEST_KITS]}


def sources() -> dict[str, list[str]]:
    return kits()


def _kit_files(kit: str) -> list[Path]:
    root = KIT_DIR / kit
    return sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )


@functools.cache
def one_shots() -> tuple[dict[str, list[OneShot]], dict[str, list[str]]]:
    """The usable one-shots of each split, and the files skipped (silent, duplicate).

    Reads every file once (about a second for all kits).
    """
    seen: dict[str, str] = {}
    shots: dict[str, list[OneShot]] = {}
    skipped: dict[str, list[str]] = {"silent": [], "duplicate": []}
    for split, names in kits().items():
        shots[split] = []
        for kit in names:
            for path in _kit_files(kit):
                rel = f"{kit}/{path.relative_to(KIT_DIR / kit).as_posix()}"
                data, rate = sf.read(str(path), dtype="float32", always_2d=True)
                digest = hashlib.sha256(data.tobytes()).hexdigest()
                if digest in seen:
                    skipped["duplicate"].append(f"{rel} (= {seen[digest]})")
                    continue
                seen[digest] = rel
                if data.shape[0] == 0 or float(np.abs(data.mean(axis=1)).max()) < SILENT_PEAK:
                    skipped["silent"].append(rel)
                    continue
                shots[split].append(OneShot(kit, rel.split("/", 1)[1], path, int(rate), data.shape[1], data.shape[0]))
    return shots, skipped


def parameters() -> dict:
    _, skipped = one_shots()
    return {
        "kit_dir": str(KIT_DIR),
        "excluded_kits": EXCLUDED_KITS,
        "test_kits": list(TEST_KITS),
        "audio_suffixes": list(AUDIO_SUFFIXES),
        "silent_peak": SILENT_PEAK,
        "skipped_files": skipped,
        "onset_fraction": ONSET_FRACTION,
        "preroll_samples": PREROLL,
        "fade_out_samples": FADE_OUT,
        "semitone_range": list(SEMITONE_RANGE),
        "resampler": "soxr HQ",
        "schedule": "one-shot order[i % n] (seeded order per split); pass 0 unpitched, later passes pitched",
        "one_shots": {split: len(v) for split, v in one_shots()[0].items()},
    }


def _kit_info(kit: str) -> dict:
    """Name, author and licence as the kit's drumkit.xml states them."""
    info = {"folder": kit, "package": kit_packages().get(kit), "debian_licence": KIT_LICENCES.get(kit)}
    try:
        root = ET.parse(KIT_DIR / kit / "drumkit.xml").getroot()
    except ET.ParseError:
        return info
    for tag in ("name", "author", "license"):
        node = root.find(f"{{*}}{tag}")  # any namespace or none
        info[f"drumkit_xml_{tag}"] = node.text.strip() if node is not None and node.text else None
    return info


def licence() -> dict:
    return {
        "summary": (
            "Drum samples from the Hydrogen drum kits in Debian main, under free licences that vary "
            "by kit: GPL-2 / GPL-2+ (most kits), CC-BY-3.0 (rumpf_kit), CC-BY-SA-3.0 (circAfrique, "
            "BJA_Pacific), CC0 (Audiophob). Derived clips keep their kit's licence; attribution for "
            "the CC-BY kits is in 'kits' (author fields)."
        ),
        "kits": {kit: _kit_info(kit) for split in kits().values() for kit in split},
        "packages": {pkg: debian_copyright(pkg) for pkg in PACKAGES},
    }


# --- clips --------------------------------------------------------------------------


def place_hit(y: np.ndarray) -> tuple[np.ndarray, dict]:
    """A hit ``y [T]`` (16 kHz) aligned at its onset at the start of a ``[CLIP_LENGTH]`` clip."""
    peak = float(np.abs(y).max())
    onset = int(np.argmax(np.abs(y) >= ONSET_FRACTION * peak))
    start = max(0, onset - PREROLL)
    seg = y[start : start + CLIP_LENGTH]
    cut = len(y) - start > CLIP_LENGTH
    seg = fade(seg, onset - start, FADE_OUT if cut else 0)
    x = np.zeros(CLIP_LENGTH, np.float32)
    x[: len(seg)] = seg
    return x, {"onset_in_file": onset, "start_in_file": start, "sound_samples": len(y) - start, "tail_cut": cut}


def clips(split: str, n: int, seed: int, cache: Path) -> Iterator[Clip]:
    """``n`` clips of ``split``; see the module docstring. ``cache`` is unused."""
    shots = one_shots()[0][split]
    if not shots:
        raise DataBuildError(f"drums: no one-shots for {split}")
    order = rng(seed, "drums", split, 2).permutation(len(shots))
    for index in range(n):
        gen, entropy = clip_rng(seed, "drums", split, index)
        shot = shots[int(order[index % len(shots)])]
        pass_ = index // len(shots)
        drawn = float(gen.uniform(*SEMITONE_RANGE))
        semitones = drawn if pass_ > 0 else 0.0
        peak = draw_peak(gen)
        data, rate = sf.read(str(shot.path), dtype="float32", always_2d=True)
        x, placed = place_hit(varispeed(data.mean(axis=1), rate, semitones))
        x, gain = normalise(x, peak)
        source = {
            "kit": shot.kit,
            "file": shot.file,
            "package": kit_packages().get(shot.kit),
            "rate": shot.rate,
            "channels": shot.channels,
            "licence": KIT_LICENCES.get(shot.kit),
        }
        params = {
            "pass": pass_,
            "semitones": semitones,
            "speed": 2.0 ** (semitones / 12.0),
            **placed,
            "gain": gain,
            "peak": peak,
        }
        yield Clip(x, source, params, entropy)
