"""Separating a corpus: many inputs, one output folder, an index, resumable runs.

What ``priorsep separate A.wav B.flac folder/ 'takes/*.wav' --out OUT`` runs:

- :func:`find_inputs` expands files, folders (searched recursively for audio files) and
  glob patterns into sorted *tracks*, each named by its path relative to the inputs'
  common folder, without the suffix (``folder/take1``);
- every track's estimates go to ``OUT/`` under a file-name template (default
  :data:`DEFAULT_TEMPLATE`, ``{track}/{k}_{source}.{ext}``), each file written atomically;
- ``OUT/index.json`` records the run (settings, priors, template) and, per track, the
  input, the outputs, the search's seconds and the status (``ok`` or ``failed`` with the
  error); it is rewritten after every track, so an interrupted run *resumes*: the same
  command again skips the tracks that are ``ok`` with all their outputs present
  (``force=True`` redoes them);
- a track that fails (an unreadable file, several channels without a choice) is recorded
  and reported and the others go on;
- ``jobs > 1`` separates tracks in that many spawned worker processes (one torch thread
  each unless told otherwise), with results identical to one process: a mixture's
  result never depends on what else is searched;
- under ``torchrun`` (``WORLD_SIZE`` > 1) each rank takes a deterministic, disjoint shard
  of the sorted tracks (every ``world``-th from its rank), and rank 0 writes the index
  once every rank has sent its entries (``torch.distributed`` with gloo).
"""

from __future__ import annotations

import glob
import os
import string
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError

__all__ = ["DEFAULT_TEMPLATE", "INDEX_FORMAT", "Job", "Track", "check_template", "find_inputs", "output_paths",
           "separate_corpus", "separate_track", "worker_separator"]

DEFAULT_TEMPLATE = "{track}/{k}_{source}.{ext}"
INDEX_FORMAT = "priorsep-index/1"
FIELDS = ("track", "k", "source", "ext")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3", ".opus", ".au", ".caf", ".w64")


@dataclass(frozen=True)
class Track:
    """One input file and the name its outputs are made from."""

    path: Path
    name: str


def _audio_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]


def find_inputs(inputs: Sequence[str | os.PathLike]) -> list[Track]:
    """Files, folders (recursively, audio suffixes only) and glob patterns -> sorted,
    distinct tracks. A single file is named by its stem.

    Raises:
        ConfigError: an input that is neither a file, a folder nor a pattern matching
            something, or no audio at all.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            files = _audio_in(p)
            if not files:
                raise ConfigError(f"{p}: no audio files ({', '.join(AUDIO_SUFFIXES[:4])}, ...) in this folder")
            found.extend(files)
        elif glob.has_magic(str(item)):
            matched = [Path(m) for m in glob.glob(str(item), recursive=True)]
            files = [m for m in matched if m.is_file()] + [f for m in matched if m.is_dir() for f in _audio_in(m)]
            if not files:
                raise ConfigError(f"{item}: the pattern matches no audio file")
            found.extend(files)
        else:
            raise ConfigError(f"{p}: no such file or folder")
    unique = sorted({f.resolve(): f for f in found}.items())
    paths = [f for _, f in unique]
    if len(paths) == 1:
        return [Track(paths[0], paths[0].stem)]
    root = Path(os.path.commonpath([str(f.resolve().parent) for f in paths]))
    tracks = [Track(f, f.resolve().relative_to(root).with_suffix("").as_posix()) for f in paths]
    names = [t.name for t in tracks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # a.wav and a.flac in one folder
        raise ConfigError(f"two inputs would share the track name {twice[0]!r}; rename one or separate them apart")
    return tracks


def check_template(template: str) -> None:
    """Refuse a template with an unknown field, or one that would give the K sources of a
    track the same file (it must hold ``{k}`` or ``{source}``)."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"--filename {template!r}: {exc}") from None
    unknown = sorted(fields - set(FIELDS))
    if unknown:
        raise ConfigError(f"--filename {template!r}: unknown field {{{unknown[0]}}}; use {{track}}, {{k}}, {{source}}, "
                          "{ext}")
    if not fields & {"k", "source"}:
        raise ConfigError(f"--filename {template!r} needs {{k}} or {{source}}, or the sources would overwrite "
                          "each other")


def output_paths(template: str, track: str, names: Sequence[str], output: str = "masked") -> list[str]:
    """The files (relative to the output folder) of one track: one per source, then, for
    ``output="both"``, the generated ones (``.generated`` before the extension)."""
    from .outputs import safe_name

    masked = [template.format(track=track, k=k, source=safe_name(n), ext="wav") for k, n in enumerate(names)]
    for path in masked:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ConfigError(f"--filename makes {path!r}, outside the output folder")
    if output != "both":
        return masked
    return masked + [str(Path(p).with_suffix(".generated" + (Path(p).suffix or ".wav"))) for p in masked]


# --- one track ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What a worker needs to separate tracks (picklable: names and settings, no tensors)."""

    priors: tuple[str, ...]
    config: Any  # SearchConfig
    out: str
    template: str
    output: str
    channel: int | None
    downmix: bool
    resample: bool
    device: str | None
    threads: int | None


_WORKER: dict[str, Any] = {}


def worker_separator(job: Job):
    """This process's separator for ``job`` (built once, kept)."""
    key = (job.priors, repr(job.config), job.device)
    if _WORKER.get("key") != key:
        from ..priors import load_prior
        from .separator import make_separator

        _WORKER["separator"] = make_separator([load_prior(p) for p in job.priors], job.config, device=job.device)
        _WORKER["key"] = key
    return _WORKER["separator"]


def separate_track(job: Job, track: Track, bar: Any = None) -> dict:
    """Separate one track and write its files; returns its index entry (a failure of the
    input is an entry with ``status: failed``, not an exception)."""
    import torch

    from ..audio import read_audio, write_audio
    from ..errors import AudioError

    separator = worker_separator(job)
    names = [p.name for p in separator.priors]
    entry: dict[str, Any] = {"input": str(track.path), "track": track.name}
    began = time.perf_counter()
    try:
        audio = read_audio(track.path, separator.sample_rate, channel=job.channel, downmix=job.downmix,
                           resample=job.resample)
        result = separator.separate(torch.from_numpy(audio.samples), bar=bar)
    except AudioError as exc:
        return {**entry, "status": "failed", "error": str(exc), "outputs": []}
    paths = output_paths(job.template, track.name, names, job.output)
    forms = (["generated"] if job.output == "generated" else ["masked"]) + \
        (["generated"] if job.output == "both" else [])
    estimates = [getattr(result, form)[k] for form in forms for k in range(len(names))]
    for rel, samples in zip(paths, estimates):
        target = Path(job.out) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_audio(target, samples, audio.sample_rate)
    return {**entry, "status": "ok", "outputs": paths, "seconds": round(time.perf_counter() - began, 3),
            "search_seconds": round(result.seconds, 3), "samples": int(audio.samples.shape[-1]),
            "input_note": audio.note,
            "final_loss": float(result.losses["total"]) if "total" in result.losses else None}


def _worker_init(threads: int | None) -> None:
    import torch

    torch.set_num_threads(threads or 1)


def _worker_track(job: Job, track: Track) -> dict:
    return separate_track(job, track)


# --- the corpus --------------------------------------------------------------------------


def _read_index(out: Path) -> dict | None:
    import json

    path = out / "index.json"
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text())
    except ValueError:
        raise ConfigError(f"{path}: not a priorsep index (unreadable JSON); remove it or use another --out") from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise ConfigError(f"{path}: not a priorsep index; remove it or use another --out")
    return index


def _write_index(out: Path, index: dict) -> None:
    from ..fsutil import write_text
    from .outputs import to_json

    write_text(out / "index.json", to_json(index) + "\n")


def _windows(track: Track, rate: int, length: int, overlap: float) -> int:
    """How many windows the track will be cut into (from its header; 1 if unreadable)."""
    import soundfile as sf

    from .windows import _hop

    try:
        info = sf.info(str(track.path))
    except (RuntimeError, sf.LibsndfileError):
        return 1
    t = int(round(info.frames * rate / info.samplerate))
    return 1 if t <= length else -(-(t - length) // _hop(length, overlap)) + 1


def separate_corpus(tracks: Sequence[Track], job: Job, *, settings: dict, force: bool = False, jobs: int = 1,
                    progress: bool = True, say: Callable[[str], None] = print,
                    warn: Callable[[str], None] = print) -> dict:
    """Separate ``tracks`` into ``job.out``; returns the index (also written as ``index.json``).

    Args:
        settings: the run's settings as recorded (search settings, priors, template); a
            folder whose index holds other settings is refused (``force`` redoes it).
        force: redo every track, even those an earlier run finished.
        jobs: worker processes (1: this process).
        say, warn: where the per-track lines and the failures go.
    Raises:
        ConfigError: ``out`` holds files but no index (without ``force``), or an index of
            other settings.
    """
    from ..progress import Progress
    from ..training import distributed

    out = Path(job.out)
    distributed.init_processes("cpu")  # gloo: the ranks exchange only small Python objects
    rank, world = distributed.rank_and_world()
    try:
        index = _check_out(out, settings, force)
        problem = None
    except ConfigError as exc:
        index, problem = None, str(exc)
    if world > 1:  # every rank checks before any writes; one rank's refusal stops them all
        import torch.distributed as dist

        problems: list[Any] = [None] * world
        dist.all_gather_object(problems, problem)
        problem = next((p for p in problems if p), None)
    if problem:
        if world > 1:
            distributed.teardown(barrier=False)
        raise ConfigError(problem)
    out.mkdir(parents=True, exist_ok=True)
    done = {} if (index is None or force) else {e["input"]: e for e in index.get("tracks", [])
                                                 if e.get("status") == "ok"}
    mine = list(tracks)[rank::world]
    entries: dict[str, dict] = {}
    todo = []
    for track in mine:
        old = done.get(str(track.path))
        if old and all((out / p).is_file() for p in old.get("outputs", [])):
            entries[str(track.path)] = {**old, "status": "ok", "skipped": True}
        else:
            todo.append(track)
    header = {"format": INDEX_FORMAT, "settings": settings}

    def current() -> dict:  # the index of what is known so far, in the tracks' order
        return {**header, "tracks": [entries[str(t.path)] for t in tracks if str(t.path) in entries]}

    if rank == 0:
        _write_index(out, current())
    sep = worker_separator(job) if jobs == 1 else None
    total = sum(_windows(t, sep.sample_rate, sep.length, sep.overlap) for t in todo) if sep else len(todo)
    unit = "window" if sep else "file"
    with Progress(total, f"separating {len(todo)} of {len(mine)} files", unit, enabled=progress) as bar:
        def finish(entry: dict) -> None:
            entry["rank"] = rank
            entries[entry["input"]] = entry
            if entry["status"] == "ok":
                say(f"{entry['track']}: {len(entry['outputs'])} files in {entry['seconds']:.1f} s")
            else:
                warn(f"priorsep: failed: {entry['error']}")
            if world == 1:  # a resumable index after every track (under torchrun, rank 0 merges at the end)
                _write_index(out, current())

        if jobs == 1:
            for track in todo:
                finish(separate_track(job, track, bar=bar))
        else:
            import multiprocessing

            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_worker_init, initargs=(job.threads,)) as pool:
                for entry in pool.map(_worker_track, [job] * len(todo), todo):
                    finish(entry)
                    bar.update(1)
    if world > 1:
        import torch.distributed as dist

        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, entries)
        for part in gathered:
            entries.update(part)
    index = current()
    if rank == 0:
        _write_index(out, index)
    if world > 1:
        distributed.teardown()  # no rank leaves the group while rank 0 still writes
    return index


def _check_out(out: Path, settings: dict, force: bool) -> dict | None:
    """The earlier run's index in ``out`` (``None``: none), or a refusal: files but no
    index, or an index of other settings (both unless ``force``)."""
    index = _read_index(out) if out.is_dir() else None
    if index is None and out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: holds files but no index.json of an earlier run; pass --force to write into it, "
                          "or choose an empty or new --out")
    if index is not None and index.get("settings") != settings and not force:
        raise ConfigError(f"{out}: index.json was written with other settings (priors, search or --filename); "
                          "pass --force to redo every track with these, or choose another --out")
    return index
