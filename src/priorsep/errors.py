"""The project's exceptions.

Every error a user can cause (a bad file, a bad setting, a prior that does not fit) is a
:class:`PriorsepError` whose message is one line saying what is wrong and what to do. The
command line turns exactly these (and ``OSError``) into one-line messages; anything else
is a bug and shows its traceback.

The concrete classes also derive from ``ValueError``, so code written against the
earlier ``ValueError``-based API keeps working.

>>> issubclass(AudioError, PriorsepError) and issubclass(AudioError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["PriorsepError", "AudioError", "PriorError", "ConfigError", "DataError", "MissingDependencyError",
           "OutputError", "SearchError", "WriteError"]


class PriorsepError(Exception):
    """Base class of every error a user can cause; the message is one line."""


class AudioError(PriorsepError, ValueError):
    """A user's audio cannot be used (missing, unreadable, multichannel, NaN, silent, wrong rate)."""


class PriorError(PriorsepError, ValueError):
    """A prior that cannot be loaded or used."""


class ConfigError(PriorsepError, ValueError):
    """A setting that is out of range or conflicts with another one."""


class DataError(PriorsepError, ValueError):
    """A dataset, mixture set or folder of clips that cannot be built or read."""


class MissingDependencyError(PriorsepError, ImportError):
    """An optional package a feature needs is not installed; the message names the
    package, the feature and the ``pip install 'priorsep[extra]'`` command."""


class SearchError(PriorsepError, RuntimeError):
    """A latent search that diverged (a non-finite loss or estimate); nothing is written."""


class OutputError(PriorsepError, ValueError):
    """An output path that must not or cannot be written (it holds the inputs, holds files
    priorsep did not write, lies in a folder that cannot be written); refused before any work."""


class WriteError(PriorsepError, OSError):
    """A write that failed while the outputs were being written (a full disk, a file-size
    limit); nothing half-written is left, and the command exits with status 1."""
