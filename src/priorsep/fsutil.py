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
from typing import Iterable, Iterator

__all__ = ["atomic_write", "write_text", "StagedDir", "swap_in", "check_input_path", "check_outside",
           "check_writable", "foreign_files", "remove_temporaries"]


def _temporary_name(path: Path, suffix: str = ".tmp") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def remove_temporaries(folder: str | os.PathLike) -> None:
    """Delete, anywhere below ``folder``, the temporary files of :func:`atomic_write` that a
    killed process left (a write cut short by a signal it could not handle)."""
    import re

    ours = re.compile(r"\..+\.\d+-[0-9a-f]{8}\.tmp")  # _temporary_name's pattern
    for tmp in Path(folder).rglob(".*"):
        if tmp.is_file() and ours.match(tmp.name):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit rename it to ``path``.

    The temporary file has the destination's suffix (some writers choose the format by
    it) and is removed if the block raises. The caller writes the temporary path with
    any library (``soundfile``, ``safetensors``, ``matplotlib``, ``Path.write_text``).
    A write that fails with an ``OSError`` (a full disk, a file-size limit) raises
    :class:`~priorsep.errors.WriteError`, one line naming ``path``, not the temporary name.
    """
    from .errors import WriteError

    path = Path(path)
    tmp = _temporary_name(path, suffix=".tmp" + path.suffix)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o666))  # some writers (safetensors) create their files 0600
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"{path}: could not be written ({exc.strerror or exc}); nothing of it is left") from None
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
    """``path`` as a :class:`~pathlib.Path`, or one :class:`~priorsep.errors.OutputError` line
    if the nearest of its parent folders that exists is a file (so that missing folders can be
    made later; checked before anything slow starts).

    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "f.txt"
    >>> _ = file.write_text("x")
    >>> check_parents(file / "new" / "out.md")
    Traceback (most recent call last):
    ...
    priorsep.errors.OutputError: .../f.txt/new/out.md: .../f.txt is not a folder
    """
    from .errors import OutputError

    path = Path(path)
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{path}: {parent} is not a folder")
            break
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or one :class:`~priorsep.errors.OutputError` line
    if nothing can be created where it would go: a probe folder is made (and removed) in
    the nearest of its parents that exists, so a read-only or special file system fails
    before any work, naming ``path``.

    >>> check_writable("/proc/x/out")
    Traceback (most recent call last):
    ...
    priorsep.errors.OutputError: /proc/x/out: cannot write in /proc (...)
    """
    from .errors import OutputError

    path = check_parents(path)
    existing = next(p for p in path.absolute().parents if p.exists())
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".priorsep-probe-"))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {existing} ({exc.strerror or exc})") from None
    return path


def check_outside(out: str | os.PathLike, inputs: Iterable[str | os.PathLike], flag: str = "--out") -> None:
    """Refuse an output folder ``out`` that is, or holds, one of ``inputs`` (files or
    folders), in one :class:`~priorsep.errors.OutputError` line: replacing it would remove
    the inputs.

    >>> import tempfile, pathlib
    >>> data = pathlib.Path(tempfile.mkdtemp())
    >>> check_outside(data, [data / "mix.wav"])
    Traceback (most recent call last):
    ...
    priorsep.errors.OutputError: --out .../mix.wav; choose an --out outside the inputs
    >>> check_outside(data / "sep", [data / "mix.wav"])  # beside the input is fine
    """
    from .errors import OutputError

    target = Path(out).resolve()
    for item in inputs:
        p = Path(item).resolve()
        if p == target or target in p.parents:
            what = "is" if p == target else "holds"
            raise OutputError(f"{flag} {out} {what} the input {item}; choose an {flag} outside the inputs")


def foreign_files(folder: str | os.PathLike, marker: str) -> list[str]:
    """The files in ``folder`` (recursively, relative paths) that no earlier priorsep run
    wrote there: all of them when it holds no ``marker`` file (``summary.json``,
    ``index.json``, ...) that is a JSON object; else those that the marker's ``outputs``
    list does not name (none when it has no such list)."""
    import json

    folder = Path(folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    try:
        record = json.loads((folder / marker).read_text())
    except (OSError, ValueError):
        return files
    if not isinstance(record, dict):
        return files
    listed = record.get("outputs")
    if not isinstance(listed, list):
        return []
    known = {marker, *(str(x) for x in listed)}
    return [f for f in files if f not in known]


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


def some_files(names: list[str]) -> str:
    """``"2 files (a, b)"``: a count and the first three names."""
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{len(names)} file{'s' if len(names) > 1 else ''} ({shown})"


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
        force: replace an ``out`` that an earlier priorsep run wrote (it holds ``marker``,
            and nothing that marker does not list); without it a folder holding files is
            refused at once, with one line. A folder holding anything else is refused
            even with ``force``, naming what would be deleted.
        marker: the file that marks a folder as one a priorsep run wrote.
        inputs: files or folders the run reads; an ``out`` that is or holds one of them is
            refused (:func:`check_outside`).
    Raises:
        OutputError: any of the refusals above, or ``out`` cannot be written
            (:func:`check_writable`); all before any work.

    Usage::

        with StagedDir(out) as stage:
            write_audio(stage / "a.wav", x, sr)
        # now out/a.wav exists, and nothing else from an earlier run

    >>> import json, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "new" / "run"
    >>> with StagedDir(out) as stage:
    ...     _ = (stage / "a.txt").write_text("1")
    >>> StagedDir(out)
    Traceback (most recent call last):
    ...
    priorsep.errors.OutputError: ...run already holds 1 file (a.txt); pass --force to replace them, ...
    >>> StagedDir(out, force=True)
    Traceback (most recent call last):
    ...
    priorsep.errors.OutputError: ...run holds 1 file (a.txt) no priorsep run wrote there; --force replaces ...
    >>> _ = (out / "summary.json").write_text(json.dumps({"outputs": ["a.txt"]}))
    >>> with StagedDir(out, force=True) as stage:  # an earlier run's folder: replaced
    ...     _ = (stage / "b.txt").write_text("2")
    >>> sorted(p.name for p in out.iterdir())
    ['b.txt']
    """

    def __init__(self, out: str | os.PathLike, force: bool = False, *, marker: str = "summary.json",
                 inputs: Iterable[str | os.PathLike] = ()):
        from .errors import OutputError

        self.out = Path(out)
        self.force = force
        check_outside(self.out, inputs)
        if self.out.exists() and not self.out.is_dir():
            raise OutputError(f"{self.out}: exists and is not a folder")
        if self.out.is_dir():
            held = sorted(p.name for p in self.out.iterdir())
            if held and not force:
                raise OutputError(f"{self.out} already holds {some_files(held)}; pass --force to replace them, or "
                                  "choose another folder")
            foreign = foreign_files(self.out, marker) if held else []
            if foreign:
                raise OutputError(f"{self.out} holds {some_files(foreign)} no priorsep run wrote there; --force "
                                  f"replaces only a folder of an earlier run (with its {marker}), and would "
                                  "delete them: choose another folder")
        check_writable(self.out)

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
        from .errors import WriteError

        if isinstance(exc, WriteError) and str(self.stage) in str(exc):  # name the user's folder, not ours
            raise WriteError(str(exc).replace(str(self.stage), str(self.out))) from None
