"""Files and folders that appear whole or not at all: one atomic writer, one staged folder.

Every file the project writes for a user (WAVs, priors, checkpoints, JSON, tables, figures)
goes through :func:`atomic_write`: the content is written to a hidden temporary file beside
the destination and renamed into place, so a crash or Ctrl-C never leaves a half-written
file. Temporary files are created with the permissions the user's umask gives (not the
0600 of ``mkstemp``).

Sets of outputs go through :class:`StagedDir`: they are written into a hidden staging
folder beside the destination and moved in only when all of them are done.

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

__all__ = ["atomic_write", "write_text", "StagedDir", "swap_in"]


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
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def swap_in(stage: Path, target: Path) -> None:
    """Replace the folder ``target`` (if any) by the finished folder ``stage``, the whole
    folder at once: the old one is moved aside first, then deleted."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / "x")
    os.replace(stage, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class StagedDir:
    """Write a set of outputs into a hidden staging folder beside ``out``; on success move
    them into ``out`` (created if needed), on failure delete them, so a failed run never
    leaves half its outputs.

    Usage::

        with StagedDir(out) as stage:
            write_audio(stage / "a.wav", x, sr)
        # now out/a.wav exists
    """

    def __init__(self, out: str | os.PathLike):
        from .errors import AudioError

        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise AudioError(f"{self.out}: exists and is not a folder")
        parent = self.out.resolve().parent
        if not parent.is_dir():
            raise AudioError(f"{self.out}: its parent folder {parent} does not exist")

    def __enter__(self) -> Path:
        parent = self.out.resolve().parent
        self.stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.out.name}.partial-"))
        return self.stage

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.out.mkdir(exist_ok=True)
                for item in sorted(self.stage.iterdir()):
                    os.replace(item, self.out / item.name)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
