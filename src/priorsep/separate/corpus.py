"""Separating a corpus: many inputs, one output folder, an index, resumable runs.

What ``priorsep separate A.wav B.flac folder/ 'takes/*.wav' --out OUT`` runs:

- :func:`~priorsep.separate.tracks.find_inputs` expands files, folders (searched
  recursively for audio files) and glob patterns into sorted *tracks*, each named by its
  path relative to the inputs' common folder, without the suffix (``folder/take1``);
  nothing inside ``OUT`` is read;
- every track's estimates go to ``OUT/`` under a file-name template (default
  ``{track}/{k}_{source}.{ext}``), each file written atomically, at the track's own
  sample rate; a template that gives two files one path is refused before any work;
- ``OUT/index.json`` records the run (settings, priors, template) and, per track, the
  input, the outputs, the search's seconds and the status (``ok`` or ``failed`` with the
  error); it is rewritten after every track, so an interrupted run *resumes*: the same
  command again skips the tracks that are ``ok`` with all their outputs present
  (``force=True`` redoes them); after Ctrl-C or SIGTERM the index keeps every track whose
  files are complete, whatever ``jobs``;
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

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from .tracks import DEFAULT_TEMPLATE, Track, check_outputs, check_template, find_inputs, output_paths

INDEX_FORMAT = "priorsep-index/1"

__all__ = ["DEFAULT_TEMPLATE", "INDEX_FORMAT", "Job", "Track", "check_outputs", "check_template", "find_inputs",
           "output_paths", "separate_corpus", "separate_track", "worker_separator"]

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
        from .choose import make_separator

        _WORKER["separator"] = make_separator([load_prior(p) for p in job.priors], job.config, device=job.device)
        _WORKER["key"] = key
    return _WORKER["separator"]


def separate_track(job: Job, track: Track, bar: Any = None) -> dict:
    """Separate one track and write its files; returns its index entry (a failure of the
    input is an entry with ``status: failed``, not an exception)."""
    import torch

    from ..audio import read_audio, restore_rate, write_audio
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
        error = str(exc) if str(track.path) in str(exc) else f"{track.path}: {exc}"
        return {**entry, "status": "failed", "error": error, "outputs": []}
    paths = output_paths(job.template, track.name, names, job.output)
    forms = (["generated"] if job.output == "generated" else ["masked"]) + \
        (["generated"] if job.output == "both" else [])
    estimates = restore_rate(torch.stack([getattr(result, form) for form in forms]).numpy(), audio)
    for rel, samples in zip(paths, estimates.reshape(-1, estimates.shape[-1])):
        target = Path(job.out) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_audio(target, samples, audio.input_rate)
    return {**entry, "status": "ok", "outputs": paths, "seconds": round(time.perf_counter() - began, 3),
            "search_seconds": round(result.seconds, 3), "samples": int(estimates.shape[-1]),
            "sample_rate": audio.input_rate, "input_note": audio.note,
            "final_loss": float(result.losses["total"]) if "total" in result.losses else None}


def _worker_init(threads: int | None) -> None:
    import signal

    from ..runtime import DEFAULT_THREADS, set_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers
    set_threads(threads or DEFAULT_THREADS)


def _worker_track(job_and_track: tuple[Job, Track]) -> dict:
    return separate_track(*job_and_track)


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
    from ..runtime import init_processes, rank_and_world, teardown

    out = Path(job.out)
    init_processes("cpu")  # gloo: the ranks exchange only small Python objects
    rank, world = rank_and_world()
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
            teardown(barrier=False)
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
    if jobs > 1 and len(todo) < jobs:
        if todo:
            say(f"--jobs {jobs}: {len(todo)} track{'s' if len(todo) > 1 else ''} to separate, so "
                f"{len(todo)} worker process{'es' if len(todo) > 1 else ''}")
        jobs = max(1, len(todo))
    sep = worker_separator(job) if jobs == 1 else None
    total = sum(_windows(t, sep.sample_rate, sep.length, sep.overlap) for t in todo) if sep else len(todo)
    unit = "window" if sep else "file"

    def finish(entry: dict) -> None:
        entry["rank"] = rank
        entries[entry["input"]] = entry
        if entry["status"] == "ok":
            say(f"{entry['track']}: {len(entry['outputs'])} files in {entry['seconds']:.1f} s")
        else:
            warn(f"priorsep: failed: {entry['error']}")
        if world == 1:  # a resumable index after every track (under torchrun, rank 0 merges at the end)
            _write_index(out, current())

    began = time.time()
    try:
        with Progress(total, f"separating {len(todo)} of {len(mine)} files", unit, enabled=progress) as bar:
            if jobs == 1:
                for track in todo:
                    finish(separate_track(job, track, bar=bar))
            else:
                _in_workers(jobs, job, todo, finish, bar)
    except BaseException as exc:  # Ctrl-C, SIGTERM: the index keeps every finished track
        if world == 1:
            _recover(out, job, todo, entries, since=began, rank=rank)
            _write_index(out, current())
            ok = sum(1 for e in entries.values() if e["status"] == "ok")
            exc.kept = (f"{ok} of {len(tracks)} tracks done and listed in {out / 'index.json'}; the same command "
                        "resumes")
        raise
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
        teardown()  # no rank leaves the group while rank 0 still writes
    return index


def _in_workers(jobs: int, job: Job, todo: Sequence[Track], finish: Callable[[dict], None], bar: Any) -> None:
    """Separate ``todo`` in ``jobs`` spawned processes; each entry goes to ``finish`` as its
    track is done (in the order they finish). However this ends, the workers are stopped
    before it returns or raises."""
    import multiprocessing

    pool = multiprocessing.get_context("spawn").Pool(jobs, _worker_init, (job.threads,))
    try:
        for entry in pool.imap_unordered(_worker_track, [(job, t) for t in todo]):
            finish(entry)
            bar.update(1)
    finally:
        pool.terminate()
        pool.join()


def _recover(out: Path, job: Job, todo: Sequence[Track], entries: dict, *, since: float, rank: int) -> None:
    """After an interrupt: enter as ``ok`` the tracks whose files a worker wrote in this run
    (all of them present, written since ``since``) but whose entry had not come back yet,
    and remove the temporary files of writes the interrupt cut short."""
    names = [p.name for p in worker_separator(job).priors]
    for track in todo:
        if str(track.path) in entries:
            continue
        paths = output_paths(job.template, track.name, names, job.output)
        files = [out / p for p in paths]
        if all(f.is_file() and f.stat().st_mtime >= since for f in files):
            entries[str(track.path)] = {"input": str(track.path), "track": track.name, "status": "ok",
                                        "outputs": paths, "rank": rank, "recovered": True}
    from ..fsutil import remove_temporaries

    remove_temporaries(out)


def _check_out(out: Path, settings: dict, force: bool) -> dict | None:
    """The earlier run's index in ``out`` (``None``: none), or a refusal: files but no
    index (even with ``force``: they are not priorsep's), or an index of other settings
    (unless ``force``)."""
    index = _read_index(out) if out.is_dir() else None
    if index is None and out.is_dir() and any(out.iterdir()):
        from ..fsutil import some_files

        raise ConfigError(f"{out}: holds {some_files(sorted(p.name for p in out.iterdir()))} but no index.json of an "
                          "earlier run, so priorsep did not write them; choose an empty or new --out")
    if index is not None and index.get("settings") != settings and not force:
        raise ConfigError(f"{out}: index.json was written with other settings (priors, search or --filename); "
                          "pass --force to redo every track with these, or choose another --out")
    return index
