"""The ``priorsep`` command: the parser, the global options and the error boundary.

Each command group lives in its own module (``separate``, ``evaluate``, ``train``,
``report``, ``data``, ``bench``, ``priors``) with ``add_parsers(subparsers)`` and a
``run(args)`` that parses, makes one library call and reports.

Every error a user can cause is a :class:`~priorsep.errors.PriorsepError` (or an
``OSError``, e.g. a folder that cannot be written) and ends in one line on stderr with exit
status 2, never a traceback, and never partial outputs (outputs are staged). A write that
fails once the work is done (:class:`~priorsep.errors.WriteError`, a full disk) exits
with 1. Ctrl-C and SIGTERM end the command at once with one line (exit 130 / 143),
leaving no outputs and no staging folders; a corpus keeps the tracks it finished and says
how many. Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import warnings
from typing import Sequence

from .. import __version__
from ..errors import PriorsepError, WriteError
from ..launch import under_torchrun
from ..runtime import DEFAULT_THREADS, set_threads  # the command line's thread policy is the API's
from . import bench, data, evaluate, priors, report, separate, train
from .common import positive_int

EXIT_USAGE = 2
EXIT_FAILED = 1
#: the command modules, in the order ``priorsep -h`` lists them
COMMANDS = (separate, evaluate, train, report, data, bench, priors)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="priorsep", description="Unsupervised audio source separation with generative priors."
    )
    parser.add_argument("--version", action="version", version=f"priorsep {__version__}")
    _threads_option(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parsers(sub)
    for command in sub.choices.values():  # accepted after the subcommand too
        _threads_option(command, argparse.SUPPRESS)
    return parser


def _threads_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--threads", type=positive_int, default=default,
                        help=f"torch CPU threads (default {DEFAULT_THREADS}: more threads than free cores make "
                             "every op wait for a busy core, several times slower, benchmarks/DESIGN.md; parallelism "
                             "that pays goes across processes, e.g. benchmark --jobs)")


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that staged outputs are cleaned up."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():  # restored on return: main() may run inside a caller's process
        warnings.showwarning = _warning_line
        return _run(argv)


def _run(argv: list[str]) -> int:
    """Parse and run one command; every error a user can cause becomes one line and a status."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        args = build_parser().parse_args(argv)
        args.command_line = "priorsep " + shlex.join(argv)  # recorded in what the command writes
        set_threads(getattr(args, "threads", DEFAULT_THREADS))
        return args.func(args)
    except WriteError as exc:  # the work was done, but its outputs could not be written
        print(f"priorsep: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except PriorsepError as exc:
        print(f"priorsep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # e.g. an output folder that cannot be written
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"priorsep: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        print(f"priorsep: interrupted; {_kept(exc)}", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"priorsep: terminated; {_kept(exc)}", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr (``priorsep: warning: ...``), not Python's two lines
    with the file, line number and source of the code that warned."""
    print(f"priorsep: warning: {message}", file=sys.stderr if file is None else file)


def _kept(exc: BaseException) -> str:
    """What an interrupted command leaves: a corpus says what it kept (``exc.kept``, set
    where the interrupt was caught), everything else writes all or nothing."""
    return getattr(exc, "kept", None) or "no outputs written"


def command() -> None:
    """The ``priorsep`` executable: :func:`main`, then the process ends with its status.

    After an interrupt (130, 143) the process leaves at once, its streams flushed: the
    staged outputs are already gone, and an interpreter that finalises normally can still
    end itself by SIGINT (exit -2 instead of 130) when the interrupt landed inside code a
    C extension was running. Under ``torchrun`` (``WORLD_SIZE`` > 1) it leaves the same
    way: every output is written and the process group is gone by then, and gloo's worker
    threads can still abort the interpreter's finalisation (SIGABRT, exit -6, seen once in
    CI; pytorch/pytorch#179291 describes the race), which would fail the whole launch.
    """
    status = main()
    if status in (130, 128 + signal.SIGTERM) or under_torchrun():
        import gc

        gc.collect()  # a corpus's stopped worker pool releases its semaphores (else a warning at exit)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
