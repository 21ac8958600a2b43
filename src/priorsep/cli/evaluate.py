"""``priorsep evaluate``: score estimate files against reference files."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CliError, metrics_table


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score estimates against references (SI-SDR, SDR, SIR, spectral SNR, envelope)")
    p.add_argument("--references", nargs="+", required=True, metavar="WAV")
    p.add_argument("--estimates", nargs="+", required=True, metavar="WAV", help="one per reference, in the same order")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (non-finite values as null)")
    p.add_argument("--channel", type=int, help="for multichannel files, the 0-based channel to score")
    p.add_argument("--downmix", action="store_true", help="for multichannel files, average the channels")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..audio import read_audio
    from ..metrics import evaluate
    from ..separate.outputs import to_json

    if len(args.references) != len(args.estimates):
        raise CliError(f"got {len(args.references)} references but {len(args.estimates)} estimates; "
                       "give one estimate per reference")
    if args.channel is not None and args.downmix:
        raise CliError("choose either --channel or --downmix, not both")
    pick = {"channel": args.channel, "downmix": args.downmix}
    refs = [read_audio(p, **pick) for p in args.references]
    ests = [read_audio(p, allow_silent=True, **pick) for p in args.estimates]
    rates = {a.sample_rate for a in refs + ests}
    if len(rates) > 1:
        raise CliError(f"the files' sample rates differ ({sorted(rates)} Hz); resample them to one rate first")
    lengths = {a.samples.shape[0] for a in refs + ests}
    if len(lengths) > 1:
        raise CliError(f"the files' lengths differ ({sorted(lengths)} samples); estimates must match their references")
    results = evaluate(np.stack([a.samples for a in refs]), np.stack([a.samples for a in ests]))
    if args.json:
        pairs = zip(args.references, args.estimates, results)
        out = [{"reference": str(r), "estimate": str(e), **m} for r, e, m in pairs]
        print(to_json(out))
    else:
        print(metrics_table([Path(e).stem for e in args.estimates], results))
    return 0
