"""Offline datasets of three source classes, built from Debian and PyPI packages.

``build(["digits", "drums", "piano"], OUT)`` writes 16 kHz mono clips of exactly
``CLIP_LENGTH`` (16384) samples as 16-bit FLAC into ``OUT/<class>/{train,test}/`` and, last,
``OUT/<class>/manifest.json``, which lists for every clip its relative path, split,
the sha256 of its int16 PCM samples (the samples, not the FLAC bytes, so an encoder
change does not matter), its source (voice, kit file or chorale), its random-number
seed and every augmentation parameter including the gain applied; and for the class
the package versions, licences, counts and build parameters.

The classes live in one module each (:mod:`.digits`, :mod:`.drums`, :mod:`.piano`);
each exposes the same few names (see :class:`Builder`). This module holds what they
share: requirement checks that name the install command, seeded generators, resampling,
clip writing, hashing, manifests and the entry point.

Determinism: clip ``i`` of a split is a function of ``(seed, class, split, i)`` (and of
the installed package versions) only: every random draw comes from a numpy Generator
seeded with that tuple, sources are visited in sorted order, nothing reads the clock,
and all processing is single-threaded. So the same command gives the same samples, and
a small build is a prefix of the full one. Which voices, kits and chorales are held out
for test does not depend on the seed.

Atomicity: a class is built in a hidden staging folder beside ``OUT/<class>`` and moved
into place when complete (manifest written last), so an interrupted build never leaves
a manifest describing clips that are not there.

Run as ``priorsep data build all --out DIR`` (:mod:`priorsep.cli.data`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr

from ..constants import CLIP_LENGTH, SAMPLE_RATE
from ..errors import DataError
from ..fsutil import atomic_write, swap_in

CLASSES = ("digits", "drums", "piano")
SPLITS = ("train", "test")
DEFAULT_COUNTS = {"train": 6000, "test": 500}  # per class; at least 5000 / 300 are required
SILENT_PEAK = 1e-3  # a written clip quieter than this (-60 dBFS) is a builder bug
PEAK_RANGE = (0.3, 0.95)  # every clip is peak-normalised to a seeded peak in this range
MANIFEST_VERSION = 1


class DataBuildError(DataError):
    """A dataset cannot be built; the message says why and, for a missing package or
    program, gives the exact command that installs it."""


# --- requirements -------------------------------------------------------------------


@dataclass(frozen=True)
class Requirements:
    """What one class needs.

    Attributes:
        debian: Debian package -> the programs (names looked up on PATH) or absolute
            file paths it installs that the builder uses.
        python: import name -> PyPI distribution name.
        versions: further PyPI distributions whose versions go into the manifest.
    """

    debian: dict[str, tuple[str, ...]]
    python: dict[str, str] = field(default_factory=dict)
    versions: tuple[str, ...] = ()


def apt_command(packages: Sequence[str]) -> str:
    """The command (run as root) that installs Debian ``packages``."""
    return "apt-get update && apt-get install -y --no-install-recommends " + " ".join(packages)


def pip_command(distributions: Sequence[str]) -> str:
    """The command that installs PyPI ``distributions`` into this interpreter's environment."""
    return f"{sys.executable} -m pip install " + " ".join(distributions)


def _present(need: str) -> bool:
    """An absolute path exists, or a program name is found on PATH."""
    return Path(need).exists() if os.path.isabs(need) else shutil.which(need) is not None


def check_requirements(cls: str) -> None:
    """Raise :class:`DataBuildError` naming the install command if anything ``cls``
    needs is missing (programs on PATH, data files, Python packages)."""
    req = builder(cls).REQUIREMENTS
    problems = []
    missing_deb = {pkg: [n for n in needs if not _present(n)] for pkg, needs in req.debian.items()}
    missing_deb = {pkg: lost for pkg, lost in missing_deb.items() if lost}
    if missing_deb:
        what = "; ".join(f"{pkg} ({', '.join(lost)})" for pkg, lost in missing_deb.items())
        problems.append(f"missing Debian packages: {what}; install them with: {apt_command(list(missing_deb))}")
    missing_py = sorted({dist for mod, dist in req.python.items() if importlib.util.find_spec(mod) is None})
    if missing_py:
        problems.append(
            f"missing Python packages: {', '.join(missing_py)}; install them with: {pip_command(missing_py)} "
            '(or, in a checkout, pip install -e ".[data]")'
        )
    if problems:
        raise DataBuildError(f"cannot build {cls}: " + "; ".join(problems))


def debian_version(package: str) -> str | None:
    """The installed version of a Debian package (``dpkg-query -W``), or None."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip()


def debian_files(package: str) -> list[str]:
    """The files a Debian package installed (``dpkg -L``), sorted; [] if unknown."""
    try:
        out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    except OSError:
        return []
    return sorted(line for line in out.stdout.splitlines() if line.startswith("/")) if out.returncode == 0 else []


def python_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions(req: Requirements) -> dict:
    """Versions of everything a class was built with, for its manifest."""
    dists = ["numpy", "soundfile", "soxr", *sorted(set(req.python.values()) | set(req.versions))]
    return {
        "debian": {pkg: debian_version(pkg) for pkg in req.debian},
        "python": {d: python_version(d) for d in dists},
        "libraries": {"libsndfile": sf.__libsndfile_version__, "libsoxr": getattr(soxr, "__libsoxr_version__", None)},
        "python_interpreter": platform.python_version(),
        "priorsep": python_version("priorsep"),
    }


def debian_copyright(package: str) -> dict:
    """Where a Debian package's licence text is, its sha256, and its machine-readable
    ``License:`` names (DEP-5 files only; older free-form files give none)."""
    path = Path("/usr/share/doc") / package / "copyright"
    if not path.is_file():
        return {"copyright_file": None}
    data = path.read_bytes()
    lines = data.decode(errors="replace").splitlines()
    names = sorted({line[8:].strip() for line in lines if line.startswith("License:") and line[8:].strip()})
    return {"copyright_file": str(path), "sha256": hashlib.sha256(data).hexdigest(), "licenses": names}


# --- the per-class builders ---------------------------------------------------------


@dataclass
class Clip:
    """One clip as a builder makes it: ``samples [CLIP_LENGTH]`` float32 within [-1, 1], and
    its record (``source``: where it came from; ``params``: every drawn or derived
    parameter, including ``gain`` and ``peak``; ``seed``: the generator's entropy)."""

    samples: np.ndarray
    source: dict
    params: dict
    seed: list[int]


class Builder(Protocol):
    """What :mod:`.digits`, :mod:`.drums` and :mod:`.piano` each provide."""

    REQUIREMENTS: Requirements

    def sources(self) -> dict[str, list[str]]:
        """The voices / kits / chorales of each split (disjoint, seed-independent)."""

    def clips(self, split: str, n: int, seed: int, cache: Path) -> Iterator[Clip]:
        """``n`` clips of ``split``; ``cache`` is a folder the builder may keep slow
        intermediate results in (e.g. raw TTS output) across builds."""

    def parameters(self) -> dict:
        """The builder's fixed parameters (ranges, thresholds), for the manifest."""

    def licence(self) -> dict:
        """Licence summary and per-package / per-source licence details."""


def builder(cls: str) -> Builder:
    """The module that builds ``cls``."""
    if cls not in CLASSES:
        raise DataBuildError(f"unknown class {cls!r}; choose from {', '.join(CLASSES)}")
    return importlib.import_module(f"{__package__}.{cls}")  # type: ignore[return-value]


# --- shared signal helpers ----------------------------------------------------------


def rng_entropy(seed: int, cls: str, split: str, *key: int) -> list[int]:
    """The entropy of the generator for ``key`` (e.g. ``(0, clip_index)``) of a split."""
    return [int(seed), CLASSES.index(cls), SPLITS.index(split), *map(int, key)]


def rng(seed: int, cls: str, split: str, *key: int) -> np.random.Generator:
    """A numpy Generator seeded with :func:`rng_entropy`; independent of every other key."""
    return np.random.default_rng(rng_entropy(seed, cls, split, *key))


def clip_rng(seed: int, cls: str, split: str, index: int) -> tuple[np.random.Generator, list[int]]:
    """The generator of clip ``index`` and its entropy (recorded in the manifest)."""
    entropy = rng_entropy(seed, cls, split, 0, index)
    return np.random.default_rng(entropy), entropy


def varispeed(x: np.ndarray, rate: float, semitones: float = 0.0) -> np.ndarray:
    """``x [T]`` at ``rate`` -> float32 at ``SAMPLE_RATE``, played ``2**(semitones/12)``
    times faster (pitch up and duration down together, as a tape would), with soxr HQ."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return soxr.resample(x, rate * 2.0 ** (semitones / 12.0), SAMPLE_RATE, quality="HQ").astype(np.float32)


def fade(x: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """``x [T]`` with linear fades over its first ``n_in`` and last ``n_out`` samples."""
    x = x.astype(np.float32, copy=True)
    n_in, n_out = min(n_in, len(x)), min(n_out, len(x))
    if n_in:
        x[:n_in] *= np.linspace(0.0, 1.0, n_in, endpoint=False, dtype=np.float32)
    if n_out:
        x[len(x) - n_out :] *= np.linspace(1.0, 0.0, n_out + 1, dtype=np.float32)[1:]
    return x


def normalise(x: np.ndarray, peak: float) -> tuple[np.ndarray, float]:
    """Scale ``x`` so its peak is ``peak``; returns it and the gain applied."""
    current = float(np.abs(x).max())
    if current <= 0:
        raise DataBuildError("cannot normalise a silent signal (builder bug)")
    gain = peak / current
    return (x * gain).astype(np.float32), gain


def draw_peak(gen: np.random.Generator) -> float:
    """A clip's target peak, uniform in :data:`PEAK_RANGE`."""
    return float(gen.uniform(*PEAK_RANGE))


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] -> int16 (round to nearest, clip at full scale)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def pcm_sha256(pcm: np.ndarray) -> str:
    """sha256 of int16 samples as little-endian bytes (what the manifest records)."""
    return hashlib.sha256(np.ascontiguousarray(pcm, dtype="<i2").tobytes()).hexdigest()


def write_clip(path: Path, pcm: np.ndarray) -> None:
    """Write int16 samples ``[CLIP_LENGTH]`` as a 16 kHz mono 16-bit FLAC file."""
    sf.write(str(path), pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def run_tool(cmd: Sequence[str], *, input: str | None = None, what: str = "") -> None:
    """Run an external program; raise :class:`DataBuildError` with its stderr on failure."""
    try:
        out = subprocess.run(list(cmd), input=input, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise DataBuildError(f"{what or cmd[0]}: cannot run {cmd[0]} ({exc})") from None
    if out.returncode != 0:
        raise DataBuildError(
            f"{what or cmd[0]}: {' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-500:]}"
        )


# --- building -----------------------------------------------------------------------


def _tqdm(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=2.0, unit="clip", file=sys.stderr)


def _prepare_target(target: Path) -> None:
    """Refuse to replace a folder that is not a previous build; remove stale staging."""
    if target.exists() and not target.is_dir():
        raise DataBuildError(f"{target}: exists and is not a folder; move it away")
    if target.exists():
        extra = sorted(p.name for p in target.iterdir() if p.name not in {"train", "test", "manifest.json"})
        if extra:
            raise DataBuildError(f"{target}: is not a previous build (it holds {extra[:3]}); move it away")
    for pattern in (f".{target.name}.partial-*", f".{target.name}.old-*"):  # left by an interrupted build
        for stale in sorted(target.parent.glob(pattern)):
            shutil.rmtree(stale, ignore_errors=True)


def _build_split(
    b: Builder, cls: str, split: str, n: int, seed: int, stage: Path, cache: Path, progress: bool
) -> list[dict]:
    (stage / split).mkdir(parents=True)
    records = []
    with _tqdm(n, f"{cls}/{split}", progress) as bar:
        for index, clip in enumerate(b.clips(split, n, seed, cache)):
            x = np.asarray(clip.samples, dtype=np.float32)
            if x.shape != (CLIP_LENGTH,) or not np.isfinite(x).all():
                raise DataBuildError(f"{cls}/{split} clip {index}: shape {x.shape} or non-finite samples (builder bug)")
            pcm = to_pcm16(x)
            peak = int(np.abs(pcm.astype(np.int32)).max())
            if peak < SILENT_PEAK * 32767:
                raise DataBuildError(f"{cls}/{split} clip {index} is silent (builder bug): {clip.source}")
            rel = f"{split}/{index:06d}.flac"
            write_clip(stage / rel, pcm)
            records.append(
                {
                    "path": rel,
                    "split": split,
                    "index": index,
                    "sha256": pcm_sha256(pcm),
                    "source": clip.source,
                    "seed": clip.seed,
                    "params": clip.params,
                }
            )
            bar.update(1)
    if len(records) != n:
        raise DataBuildError(f"{cls}/{split}: the builder made {len(records)} clips, not {n} (builder bug)")
    return records


def build_class(
    cls: str,
    out: str | os.PathLike,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Build one class into ``out/<cls>`` (replacing a previous build); see :func:`build`."""
    check_requirements(cls)
    if seed < 0:
        raise DataBuildError(f"seed must be >= 0, got {seed}")
    counts = {
        "train": DEFAULT_COUNTS["train"] if n_train is None else n_train,
        "test": DEFAULT_COUNTS["test"] if n_test is None else n_test,
    }
    if min(counts.values()) < 0:
        raise DataBuildError(f"clip counts must be >= 0, got {counts}")
    b = builder(cls)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / cls
    _prepare_target(target)
    cache = out / ".cache" / cls
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    stage = Path(tempfile.mkdtemp(dir=out, prefix=f".{cls}.partial-"))
    stage.chmod(0o755)  # mkdtemp makes it private; the finished class folder should not be
    try:
        clips = []
        for split in SPLITS:
            clips += _build_split(b, cls, split, counts[split], seed, stage, cache, progress)
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "class": cls,
            "format": {
                "sample_rate": SAMPLE_RATE,
                "samples": CLIP_LENGTH,
                "channels": 1,
                "container": "FLAC",
                "subtype": "PCM_16",
                "sha256_of": "the clip's int16 PCM samples, little-endian",
            },
            "build": {
                "command": f"priorsep data build {cls} --out OUT --n-train {counts['train']} "
                f"--n-test {counts['test']} --seed {seed}",
                "seed": seed,
                "n_train": counts["train"],
                "n_test": counts["test"],
                "peak_range": list(PEAK_RANGE),
                "builder": b.parameters(),
            },
            "counts": dict(counts),
            "sources": b.sources(),
            "packages": package_versions(b.REQUIREMENTS),
            "licence": b.licence(),
            "clips": clips,
        }
        with atomic_write(stage / "manifest.json") as tmp:  # UTF-8 whatever the locale
            tmp.write_bytes((json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
        swap_in(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    total = counts["train"] + counts["test"]
    return {
        "train": counts["train"],
        "test": counts["test"],
        "seconds": round(seconds, 2),
        "clips_per_second": round(total / seconds, 2) if seconds > 0 else None,
        "manifest": str(target / "manifest.json"),
    }


def build(
    classes: Sequence[str],
    out: str | os.PathLike,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict]:
    """Build the datasets of ``classes`` (names from :data:`CLASSES`) into ``out``.

    Args:
        n_train, n_test: clips per class and split; None gives :data:`DEFAULT_COUNTS`.
        seed: the base seed (>= 0) of every generator.
        progress: show tqdm progress bars (on stderr).
    Returns:
        per class: ``train``, ``test`` (counts), ``seconds``, ``clips_per_second`` and
        ``manifest`` (its path).
    Raises:
        DataBuildError: unknown class, missing package or program (the message gives
            the install command), or a failed tool.
    """
    classes = list(dict.fromkeys(classes))
    for cls in classes:
        builder(cls)
    for cls in classes:  # fail before spending time on the first class
        check_requirements(cls)
    return {cls: build_class(cls, out, n_train=n_train, n_test=n_test, seed=seed, progress=progress) for cls in classes}


# --- reading back -------------------------------------------------------------------


def read_manifest(path: str | os.PathLike) -> dict:
    """A class's manifest (``OUT/<class>/manifest.json`` or that folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise DataBuildError(f"{path}: no manifest (the class was not built, or its build did not finish)")
    return json.loads(path.read_text())


def read_clip(path: str | os.PathLike) -> np.ndarray:
    """A clip's int16 samples ``[CLIP_LENGTH]``; raises if its format is not the dataset's."""
    pcm, rate = sf.read(str(path), dtype="int16", always_2d=True)
    if rate != SAMPLE_RATE or pcm.shape != (CLIP_LENGTH, 1):
        raise DataBuildError(f"{path}: {rate} Hz, shape {pcm.shape}; expected {SAMPLE_RATE} Hz, ({CLIP_LENGTH}, 1)")
    return pcm[:, 0]


def verify(out: str | os.PathLike, cls: str) -> list[str]:
    """Re-read and re-hash every clip of ``out/<cls>``; returns one line per problem
    (missing or unreadable clip, wrong format, hash mismatch, clip not in the manifest)."""
    root = Path(out) / cls
    manifest = read_manifest(root)
    problems = []
    listed = set()
    for rec in manifest["clips"]:
        listed.add(rec["path"])
        try:
            pcm = read_clip(root / rec["path"])
        except (DataBuildError, sf.LibsndfileError, RuntimeError) as exc:
            problems.append(f"{rec['path']}: {exc}")
            continue
        if pcm_sha256(pcm) != rec["sha256"]:
            problems.append(f"{rec['path']}: sha256 differs from the manifest")
    for path in sorted(root.glob("*/*.flac")):
        rel = path.relative_to(root).as_posix()
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    return problems
