"""Files and folders that appear whole or not at all: one atomic writer, one staged folder.

Every file the project writes for a user (WAVs, priors, checkpoints, JSON, tables, figures)
goes through :func:`atomic_write`: the content is written to a hidden temporary file beside
the destination and renamed into place, so a crash or Ctrl-C never leaves a half-written
file. Every file gets the permissions the user's umask gives (0644 under umask 022), also
where the writing library creates it 0600 (safetensors does).

Sets of outputs go through :class:`StagedDir`: they are written into a hidden staging
folder beside the destination, which replaces the destination as a whole only when all of
them are done (:func:`swap_in`).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_write(folder / "a.txt") as tmp:
...     _ = tmp.write_text("hello")
>>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
('hello', ['a.txt'])
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write", "write_text", "StagedDir", "swap_in", "check_input_path"]


def _temporary_name(path: Path, suffix: str = ".tmp") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit rename it to ``path``.

    The temporary file has the destination's suffix (some writers choose the format by
    it) and is removed if the block raises. The caller writes the temporary path with
    any library (``soundfile``, ``safetensors``, ``matplotlib``, ``Path.write_text``).
    """
    path = Path(path)
    tmp = _temporary_name(path, suffix=".tmp" + path.suffix)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o666))  # some writers (safetensors) create their files 0600
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def check_input_path(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or one :class:`~priorsep.errors.AudioError` line if it is
    missing or a folder (checked before anything slow starts)."""
    from .errors import AudioError

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    return path


def check_parents(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or one :class:`~priorsep.errors.AudioError` line
    if the nearest of its parent folders that exists is a file (so that missing folders can be
    made later; checked before anything slow starts).

    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "f.txt"
    >>> _ = file.write_text("x")
    >>> check_parents(file / "new" / "out.md")
    Traceback (most recent call last):
    ...
    priorsep.errors.AudioError: .../f.txt/new/out.md: .../f.txt is not a folder
    """
    from .errors import AudioError

    path = Path(path)
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise AudioError(f"{path}: {parent} is not a folder")
            break
    return path


def swap_in(stage: Path, target: Path) -> None:
    """Replace the folder ``target`` (if any) by the finished folder ``stage``, the whole
    folder at once: the old one is moved aside first, then deleted."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / "x")
    try:
        os.replace(stage, target)
    except BaseException:
        if old is not None:  # put the old folder back: a failed swap changes nothing
            os.replace(old / "x", target)
            old.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask_mode(mode: int = 0o777) -> int:
    """``mode`` under the process's umask (what ``mkdir`` would give)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


class StagedDir:
    """Write a set of outputs into a hidden staging folder beside ``out``; on success the
    staging folder *becomes* ``out`` (:func:`swap_in`: the whole folder at once, never item
    by item), on failure or interruption it is deleted, so a run leaves either all of its
    outputs or nothing.

    Args:
        out: the output folder. Missing parent folders are created (and removed again if
            the run fails before anything is written).
        force: replace an ``out`` that already holds files (they are gone afterwards);
            without it such an ``out`` is refused at once, with one line.

    Usage::

        with StagedDir(out) as stage:
            write_audio(stage / "a.wav", x, sr)
        # now out/a.wav exists, and nothing else from an earlier run

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "new" / "run"
    >>> with StagedDir(out) as stage:
    ...     _ = (stage / "a.txt").write_text("1")
    >>> StagedDir(out)
    Traceback (most recent call last):
    ...
    priorsep.errors.AudioError: ...run already holds 1 file (a.txt); pass --force to replace them, ...
    >>> with StagedDir(out, force=True) as stage:
    ...     _ = (stage / "b.txt").write_text("2")
    >>> sorted(p.name for p in out.iterdir())
    ['b.txt']
    """

    def __init__(self, out: str | os.PathLike, force: bool = False):
        from .errors import AudioError

        self.out = Path(out)
        self.force = force
        if self.out.exists() and not self.out.is_dir():
            raise AudioError(f"{self.out}: exists and is not a folder")
        if self.out.is_dir() and not force:
            held = sorted(p.name for p in self.out.iterdir())
            if held:
                shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
                raise AudioError(f"{self.out} already holds {len(held)} file{'s' if len(held) > 1 else ''} ({shown}); "
                                 "pass --force to replace them, or choose another folder")
        check_parents(self.out)

    def __enter__(self) -> Path:
        parent = self.out.absolute().parent
        self.made = [p for p in (parent, *parent.parents) if not p.exists()]  # innermost first
        parent.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.out.name}.partial-"))
        return self.stage

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                os.chmod(self.stage, _umask_mode())  # mkdtemp's 0700 -> what mkdir gives
                swap_in(self.stage, self.out)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
            if exc_type is not None:
                for folder in self.made:  # parents this run created, if still empty
                    try:
                        folder.rmdir()
                    except OSError:
                        break
