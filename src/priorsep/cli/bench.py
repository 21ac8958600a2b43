"""``priorsep benchmark``: every method on the mixture sets, one table (:mod:`priorsep.bench`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..fsutil import check_parents
from .common import class_specs, device_option, positive_int, search_config, search_options


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="run every method on the benchmark's mixture sets; write a results table")
    p.add_argument("--sets", help="folder of mixture manifests (*.json) with their clips (default: benchmarks/sets)")
    p.add_argument("--only-sets", help="comma-separated set names (file stems) to run")
    p.add_argument("--methods", default="all", help="comma-separated methods, or 'all' (default)")
    p.add_argument("--out", default="benchmarks/RESULTS.md", help="markdown table; a .csv and a .png beside it")
    p.add_argument("--limit", type=positive_int, help="the first N mixtures of each set")
    p.add_argument("--slow-limit", type=positive_int, default=20,
                   help="mixtures per set for priorsep and dap (default 20)")
    p.add_argument("--train", help="dataset folder with <class>/train/ clips for nmf-dict and template "
                                   "(default: the sets' clips/<class>/train)")
    p.add_argument("--train-clips", type=positive_int, default=500, help="training clips per class (default 500)")
    p.add_argument("--prior", action="append", default=[], metavar="CLASS=NAME_OR_FILE",
                   help="priorsep's prior for a class (default: the bundled prior named like the class)")
    p.add_argument("--paper-prior", action="append", default=[], metavar="CLASS=NAME_OR_FILE",
                   help="priorsep-paper's (waveform) prior for a class (default: the bundled CLASS-wavegan)")
    p.add_argument("--recon-prior", action="append", default=[], metavar="CLASS=NAME_OR_FILE",
                   help="priorsep-paper-recon's prior for a class: the paper preset on a WaveGAN trained by "
                        "reconstruction (default: the bundled CLASS-wavegan-recon)")
    p.add_argument("--score-prior", action="append", default=[], metavar="CLASS=NAME_OR_FILE",
                   help="priorsep-score's score prior for a class (posterior sampling; default: the bundled "
                        "CLASS-score)")
    p.add_argument("--paper-steps", type=positive_int, default=1000,
                   help="priorsep-paper's search steps (default 1000, the paper's)")
    p.add_argument("--dap-steps", type=positive_int, help="Deep Audio Prior steps (default: its own, 5000)")
    p.add_argument("--cache", help="per-mixture results cache (default: .bench-cache beside --out)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="processes, each on its own sets, sharing the cache (use --threads 1 with it)")
    p.add_argument("--html", metavar="PAGE", help="also write a self-contained listening page: the table, and for "
                                                  "the first --html-mixtures mixtures of each set, players and "
                                                  "spectrograms of the mixture, the sources and every estimate")
    p.add_argument("--html-mixtures", type=positive_int, default=2, help="mixtures per set on the page (default 2)")
    device_option(p)
    search_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_parents(args.out)  # a missing folder is made, below

    from .. import bench

    spec = bench.BenchmarkSpec(
        sets_dir=Path(args.sets) if args.sets else bench.DEFAULT_SETS,
        only_sets=args.only_sets.split(",") if args.only_sets else None,
        methods=["all"] if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()],
        train_root=Path(args.train) if args.train else None, train_clips=args.train_clips,
        priors=class_specs(args.prior, "--prior"), paper_priors=class_specs(args.paper_prior, "--paper-prior"),
        recon_priors=class_specs(args.recon_prior, "--recon-prior"),
        score_priors=class_specs(args.score_prior, "--score-prior"),
        paper_steps=args.paper_steps, dap_steps=args.dap_steps, config=search_config(args), preset=args.preset,
        seed=args.seed, limit=args.limit, slow_limit=args.slow_limit,
        device=None if args.device == "cpu" else args.device)
    cache = Path(args.cache) if args.cache else out.parent / ".bench-cache"
    figure = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    plan, cells = bench.run_planned(spec, cache, jobs=args.jobs, progress=sys.stderr.isatty(), figure=figure)
    text = bench.write_results(out, cells, bench.results_header(spec, plan, args.command_line, out, figure))
    print(text)
    if args.html:
        from ..constants import SAMPLE_RATE
        from ..listening import write_page

        sections = bench.listening_sections(plan.sets, plan.methods, args.html_mixtures)
        write_page(args.html, "priorsep benchmark", sections, rate=SAMPLE_RATE, tables=text)
        print(f"wrote the listening page {args.html}", file=sys.stderr)
    for note in plan.skipped:
        print(f"priorsep: skipped {note}", file=sys.stderr)
    return 0
