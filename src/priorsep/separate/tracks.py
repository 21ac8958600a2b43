"""The tracks of a corpus and the files they make: which inputs are read
(:func:`find_inputs`: files, folders, glob patterns, never the run's own output folder) and
where each track's estimates go (:func:`output_paths` under a ``--filename`` template,
checked by :func:`check_template` and, against every track, :func:`check_outputs`).

>>> output_paths(DEFAULT_TEMPLATE, "takes/a", ["digits", "my drums"])
['takes/a/0_digits.wav', 'takes/a/1_my-drums.wav']
"""

from __future__ import annotations

import glob
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError

__all__ = ["AUDIO_SUFFIXES", "DEFAULT_TEMPLATE", "Track", "check_outputs", "check_template", "find_inputs",
           "output_paths"]

DEFAULT_TEMPLATE = "{track}/{k}_{source}.{ext}"
FIELDS = ("track", "k", "source", "ext")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3", ".opus", ".au", ".caf", ".w64")


@dataclass(frozen=True)
class Track:
    """One input file and the name its outputs are made from."""

    path: Path
    name: str


def _audio_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]


def _outside(paths: list[Path], exclude: Path | None) -> list[Path]:
    if exclude is None:
        return paths
    skip = exclude.resolve()
    return [p for p in paths if skip not in p.resolve().parents]


def find_inputs(inputs: Sequence[str | os.PathLike], exclude: str | os.PathLike | None = None) -> list[Track]:
    """Files, folders (recursively, audio suffixes only) and glob patterns -> sorted,
    distinct tracks. A single file is named by its stem. Nothing inside the folder
    ``exclude`` (the run's own output folder) is read, so a rerun never separates the
    outputs of the last one.

    Raises:
        ConfigError: an input that is neither a file, a folder nor a pattern matching
            something, or no audio at all.
    """
    exclude = Path(exclude) if exclude is not None else None
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            files = _outside(_audio_in(p), exclude)
            if not files:
                raise ConfigError(f"{p}: no audio files ({', '.join(AUDIO_SUFFIXES[:4])}, ...) in this folder")
            found.extend(files)
        elif glob.has_magic(str(item)):
            matched = [Path(m) for m in glob.glob(str(item), recursive=True)]
            files = [m for m in matched if m.is_file()] + [f for m in matched if m.is_dir() for f in _audio_in(m)]
            files = _outside(files, exclude)
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


def check_outputs(template: str, tracks: Sequence[Track], names: Sequence[str], output: str = "masked") -> None:
    """Refuse, before any work, a template that gives two files of the run one path (two
    tracks without ``{track}``, two sources of one name without ``{k}``) or a path outside
    the output folder (:func:`output_paths`), in one :class:`ConfigError` line."""
    owner: dict[str, str] = {}
    for track in tracks:
        for path in output_paths(template, track.name, names, output):
            if path in owner:
                who = f"tracks {owner[path]} and {track.name}" if owner[path] != track.name else \
                    f"two sources of track {track.name}"
                raise ConfigError(f"--filename {template!r} gives {who} the same file {path}; add {{track}} "
                                  "(and {k}) so that every file has its own name")
            owner[path] = track.name
