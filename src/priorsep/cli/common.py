"""What the command modules share: argument types, the search options and their
:class:`~priorsep.separate.SearchConfig`, the compute options, the metrics table."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Sequence

from ..errors import ConfigError
from ..separate.config import PRESETS, SearchConfig

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
                   help="best: the measured best settings (magnitude objective, encoder start, 300 steps; "
                        "benchmarks/PRIORS.md), the default; paper: docs/method.md §3 exactly (paper losses, z = 0, "
                        "1000 steps, z in [-1, 1]); the options below override single settings")
    g.add_argument("--objective", choices=("magnitude", "paper", "auto"),
                   help="what the search fits (auto: the magnitude fit for priors with magnitudes or encoders, "
                        "the paper's losses for waveform priors; summary.json records the choice)")
    g.add_argument("--start", choices=("encoder", "zero"), help="starting latents (encoder: priors that have one)")
    g.add_argument("--steps", type=int_at_least(0), help="optimisation steps (0: no search, the start's output)")
    g.add_argument("--lr", type=float, help="Adam learning rate")
    g.add_argument("--bound", type=bound, default=argparse.SUPPRESS,
                   help="project z to [-B, B] after each step, 'none', or 'prior' (each prior's own box)")
    g.add_argument("--restarts", type=positive_int, help="searches per mixture, best kept by loss")
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
    if hasattr(args, "bound"):  # given on the command line
        changes["bound"] = args.bound
    weights = {t: getattr(args, f"w_{t}") for t, _ in PAPER_WEIGHTS if getattr(args, f"w_{t}") is not None}
    if weights:
        changes["weights"] = replace(config.weights, **weights)
    return replace(config, **changes)


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
