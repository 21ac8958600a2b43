"""``priorsep priors``: list the built-in priors."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("priors", help="list the built-in priors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..priors.base import builtin_descriptions

    for name, desc in builtin_descriptions().items():
        print(f"{name:<10} {desc}")
    return 0
