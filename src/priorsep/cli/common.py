"""What the command modules share: argument types, the search options and their
:class:`~priorsep.separate.SearchConfig`, the compute options, the metrics table."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Sequence

from ..errors import ConfigError
from ..separate.config import LR_RANGE, PRESETS, SearchConfig, learning_rate

PAPER_WEIGHTS = tuple(PRESETS["paper"].weights.as_dict().items())


class CliError(ConfigError):
    """A bad combination of command-line arguments."""


def bound(text: str) -> float | str | None:
    """``--bound``: a positive number, ``none`` or ``prior``."""
    if text.lower() in ("none", "prior"):
        return None if text.lower() == "none" else "prior"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, 'none' or 'prior', got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}")
    return value


def level(text: str) -> float | str | None:
    """``--level``: a positive number, ``auto`` or ``none``."""
    if text.lower() in ("none", "auto"):
        return None if text.lower() == "none" else "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, 'auto' or 'none', got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, 'auto' or 'none', got {text!r}")
    return value


def int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)


def search_options(parser: argparse.ArgumentParser) -> None:
    """The search's options; :func:`search_config` turns them into a configuration."""
    g = parser.add_argument_group("latent search (docs/method.md §3; defaults from --preset)")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="best: the measured best settings (objective chosen from the priors, encoder start, 300 "
                        "steps; benchmarks/PRIORS.md), the default; paper: docs/method.md §3 exactly (paper losses, "
                        "z = 0, 1000 steps, z in [-1, 1]); fast: one search of 100 steps from the encoders' start "
                        "(at most a quarter of best's time, at most 1 dB below it; benchmarks/DESIGN.md, 'Presets: "
                        "fast'); the options below override single settings")
    g.add_argument("--objective", choices=("auto", "magnitude", "paper"),
                   help="what the search fits (auto, the default: the magnitude fit for priors with magnitudes or "
                        "encoders, the paper's losses for waveform priors; summary.json records the choice)")
    g.add_argument("--start", choices=("encoder", "zero"), help="starting latents (encoder: priors that have one)")
    g.add_argument("--steps", type=int_at_least(0), help="optimisation steps (0: no search, the start's output)")
    g.add_argument("--lr", type=learning_rate,
                   help=f"Adam learning rate, {LR_RANGE[0]:g} to {LR_RANGE[1]:g} (default 0.05)")
    g.add_argument("--bound", type=bound, default=argparse.SUPPRESS,
                   help="project z to [-B, B] after each step, 'none', or 'prior' (each prior's own box)")
    g.add_argument("--restarts", type=positive_int,
                   help="searches per mixture, best kept by loss (default: the objective's, 2 for the magnitude fit, "
                        "6 for the paper's losses)")
    g.add_argument("--level", type=level, default=argparse.SUPPRESS,
                   help="the peak each mixture is scaled to before the search (the estimates are scaled back): a "
                        "number, auto (the objective's: 1 for the magnitude fit, 1.5 for the paper's losses; the "
                        "default) or none (as it comes; the paper preset)")
    g.add_argument("--seed", type=int, default=0, help="seed of the restarts' starting points (default 0)")
    for term, default in PAPER_WEIGHTS:
        g.add_argument(f"--w-{term}", type=float, help=f"paper objective: weight of L_{term} (paper: {default})")


def search_config(args: argparse.Namespace) -> SearchConfig:
    """The preset's configuration, with the options given replacing single settings."""
    args.preset = args.preset or "best"
    config = PRESETS[args.preset]
    changes = {key: getattr(args, key) for key in ("objective", "start", "steps", "lr", "restarts")
               if getattr(args, key) is not None}
    changes["seed"] = args.seed
    for key in ("bound", "level"):
        if hasattr(args, key):  # given on the command line
            changes[key] = getattr(args, key)
    weights = {t: getattr(args, f"w_{t}") for t, _ in PAPER_WEIGHTS if getattr(args, f"w_{t}") is not None}
    if weights:
        changes["weights"] = replace(config.weights, **weights)
    return replace(config, **changes)


def import_torch():
    """``import torch`` with SIGINT and SIGTERM held back until it is done.

    A signal that lands inside torch's (or numpy's) import leaves them half-initialised:
    numpy then refuses to load again (an ImportError traceback) and the interpreter can
    hang on exit. Held back, the signal arrives a moment later in our own code, where it
    ends the command with one line. Returns the module.
    """
    import signal

    held = {signal.SIGINT, signal.SIGTERM}
    try:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError):  # no pthread_sigmask here, or not the main thread
        before = None
    try:
        import torch
    finally:
        if before is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
    return torch


def device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``: where the priors and the search run."""
    parser.add_argument("--device", default="cpu",
                        help="where the search runs: cpu (default) or cuda, cuda:N (a GPU; refused in one line "
                             "where there is none)")


def force_option(parser: argparse.ArgumentParser) -> None:
    """``--force``: replace an output folder that already holds files."""
    parser.add_argument("--force", action="store_true",
                        help="replace an --out folder that already holds files (without it such a folder is "
                             "refused; with it, the earlier files are gone afterwards)")


def metrics_table(names: Sequence[str], results: list[dict[str, float]]) -> str:
    """One row per source, one column per metric."""
    from ..metrics import METRIC_KEYS

    head = f"{'source':<16}" + "".join(f"{k:>19}" for k in METRIC_KEYS)
    rows = [head]
    for name, res in zip(names, results):
        rows.append(f"{name:<16}" + "".join(f"{res[k]:>19.3f}" for k in METRIC_KEYS))
    return "\n".join(rows)


def class_specs(specs: Sequence[str], flag: str) -> dict[str, str]:
    """``["digits=FILE", ...]`` -> ``{"digits": "FILE"}``."""
    found = {}
    for spec in specs:
        cls, _, what = spec.partition("=")
        if not cls or not what:
            raise CliError(f"{flag} {spec!r}: expected CLASS=NAME_OR_FILE")
        found[cls] = what
    return found
