"""``priorsep prior-report``: how well a prior fits held-out clips of its class and of others
(:mod:`priorsep.report`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import __version__
from ..separate.config import PRESETS
from .common import CliError, device_option, force_option, int_at_least, positive_int


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prior-report", help="how well a prior fits held-out clips of its class (and of others)")
    p.add_argument("prior", help="a built-in prior name or a saved-prior file")
    p.add_argument("--data", required=True, help="held-out clips of the prior's own class (a folder, any layout)")
    p.add_argument("--other", action="append", default=[], metavar="DIR",
                   help="clips of another class (repeatable); a good prior fits its own class clearly better")
    p.add_argument("--out", help="output folder (default: <prior name>-report)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="best",
                   help="the search's settings, as in separate (default best)")
    p.add_argument("--steps", type=int_at_least(0), help="search steps per clip (default: the preset's)")
    p.add_argument("--n", type=int_at_least(2), default=32,
                   help="clips per folder, a seeded random subset (default 32)")
    p.add_argument("--restarts", type=positive_int, default=1, help="searches per clip, best kept (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--objective", choices=("auto", "magnitude", "paper"),
                   help="what the search fits (default: the preset's; see separate -h)")
    force_option(p)
    device_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fsutil import StagedDir
    from ..priors.base import locate_prior, read_metadata
    from ..separate.outputs import safe_name

    where = locate_prior(args.prior)
    out = args.out or f"{safe_name(where if isinstance(where, str) else read_metadata(where)['name'])}-report"
    # refused before the search
    staged = StagedDir(out, force=args.force, marker="report.json", inputs=[args.data, *args.other])

    from ..data.folder import load_folder
    from ..priors import load_prior
    from ..report import margins, prior_report, write_report

    prior = load_prior(args.prior)
    folders = [args.data] + list(args.other)
    sets = {}
    for i, folder in enumerate(folders):
        clips = load_folder(folder, sample_rate=prior.sample_rate, length=prior.length)
        if clips.clips.shape[0] < 2:
            raise CliError(f"{folder}: the report needs at least 2 clips; found {clips.clips.shape[0]}")
        name = "/".join(Path(folder).parts[-2:]) or str(folder)  # e.g. digits/test, not test
        label = f"{name} ({'own class' if i == 0 else 'other class'})"
        sets[label if label not in sets else f"{label} #{i}"] = clips.clips
    projections = prior_report(prior, sets, preset=args.preset, steps=args.steps, n=args.n, restarts=args.restarts,
                               seed=args.seed, progress=sys.stderr.isatty(), objective=args.objective,
                               device=args.device)
    if hasattr(prior, "to"):
        prior.to("cpu")  # the report's samples are drawn on the CPU
    settings = {"preset": args.preset, "steps": args.steps, "n": args.n, "restarts": args.restarts, "seed": args.seed}
    if args.objective is not None:
        settings["objective"] = args.objective
    table = write_report(staged, prior, projections, folders, settings, seed=args.seed,
                         extra={"priorsep": __version__, "prior": str(args.prior)})
    print(table)
    for label, m in margins(projections).items():
        print(f"own class minus {label}: projection spectral SNR {m['spectral_snr']:+.2f} dB, "
              f"SI-SDR {m['si_sdr']:+.2f} dB")
    print(f"wrote report.json, report.md, samples.png and projections.png to {out}")
    return 0
