"""The ``priorsep`` command line (:mod:`priorsep.cli.main`): one module per command group.

:func:`main` is the console script. It imports the parser only once SIGTERM and Ctrl-C are
handled, so that a signal at any moment after start-up ends the command with one line and
never a traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import Sequence

__all__ = ["build_parser", "main"]


def _terminated(signum: int, frame: object) -> None:
    print("priorsep: terminated; no outputs written", file=sys.stderr)
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """``priorsep ARGS``: :func:`priorsep.cli.main.main` (the exit status)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)  # until main installs its own
    except ValueError:  # not the main thread
        previous = None
    try:
        from .main import main as run
    except KeyboardInterrupt:
        print("priorsep: interrupted; no outputs written", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return run(argv)


def build_parser():
    """The ``priorsep`` argument parser (:func:`priorsep.cli.main.build_parser`)."""
    from .main import build_parser as build

    return build()
