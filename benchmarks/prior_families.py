"""How well does each trained prior know its class? (the prior-report half of benchmarks/PRIORS.md)

For every prior file given, ``priorsep.report.prior_report`` projects ``--n`` seeded
held-out clips of the prior's own class and of every other class (from
``<clips>/<class>/test``) onto it, with the separator's settings of ``--preset`` (``best``:
magnitude fit from the encoder, 300 steps; ``paper``: docs/method.md §3's losses from z = 0),
and reports median projection spectral SNR per set, the gap own minus the best-fitting
other class (issue 6 asks for at least 3 dB), and the "other clip" reference (another
clip of the own class used as the fit).

A prior's class is its name (its metadata); ``--label`` names the row.

Writes/replaces the section between ``<!-- prior_families:start -->`` and
``<!-- prior_families:end -->`` in ``--out`` (default benchmarks/PRIORS.md); ``--json``
keeps the raw rows and ``--from-json`` merges runs made in parallel.

Usage (from the repository root):
    .venv/bin/python benchmarks/prior_families.py --prior "specvae=drums.safetensors" \\
        --prior "wavegan-nearest=drums-nn.safetensors" --n 24
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from priorsep import bench  # noqa: E402
from priorsep.data.folder import load_folder  # noqa: E402
from priorsep.priors import load_prior  # noqa: E402
from priorsep.report import prior_report  # noqa: E402

from _report import cpu_model, loadavg, write_section  # noqa: E402

START, END = "<!-- prior_families:start -->", "<!-- prior_families:end -->"
HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", action="append", default=[], metavar="LABEL=FILE", help="a prior to judge (repeat)")
    ap.add_argument("--clips", default=str(HERE / "sets" / "clips"), help="<clips>/<class>/test held-out clips")
    ap.add_argument("--classes", default="digits,drums,piano")
    ap.add_argument("--n", type=int, default=24, help="held-out clips per set")
    ap.add_argument("--preset", action="append", help="search preset(s) (default: best)")
    ap.add_argument("--steps", type=int, help="search steps per clip (default: the preset's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the raw rows here")
    ap.add_argument("--from-json", help="comma-separated row files of earlier runs: write their table only")
    ap.add_argument("--out", default=str(HERE / "PRIORS.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    presets = args.preset or ["best"]
    classes = args.classes.split(",")

    rows = [r for f in args.from_json.split(",") for r in json.loads(Path(f).read_text())] if args.from_json else []
    tests = {} if args.from_json else {c: load_folder(Path(args.clips) / c / "test").clips for c in classes}
    for spec in [] if args.from_json else args.prior:
        label, _, path = spec.partition("=")
        prior = load_prior(path)
        own = prior.name
        sets = {c: tests[c] for c in [own] + [c for c in classes if c != own]}
        for preset in presets:
            try:
                # the best preset's magnitude fit for every family (its default when the table was made)
                rep = prior_report(prior, sets, preset=preset, steps=args.steps, n=args.n, seed=args.seed,
                                   objective="magnitude" if preset == "best" else None)
            except Exception as exc:  # e.g. the paper preset refuses magnitude priors
                print(f"{label} / {preset}: {exc}", file=sys.stderr)
                continue
            med = {c: p.medians() for c, p in rep.items()}
            rows.append({"label": label, "class": own, "n": args.n,
                         "preset": preset + (f" ({args.steps} steps)" if args.steps else ""),
                         "prior": bench.prior_summary(prior), "medians": med,
                         "seconds": round(sum(p.seconds for p in rep.values()), 1)})
            print(json.dumps(rows[-1]), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")

    command = ["python", "benchmarks/prior_families.py"] + (argv or sys.argv[1:])
    lines = [
        START,
        "## Prior reports: own class against the other classes (`benchmarks/prior_families.py`)",
        "",
        f"`n` seeded held-out clips per class (`{args.clips}`) projected onto each prior alone with the "
        "separator's settings (`preset`); median spectral SNR of the fit in dB (docs/method.md §4). `gap` is own "
        "minus the best-fitting other class: a prior that knows its class fits its own clips better. "
        "`other clip` is another clip of the own class used as the fit, the score of knowing only the class.",
        "",
        f"Command: `{' '.join(shlex.quote(a) for a in command)}`  ",
        f"Machine: {cpu_model()}, {platform.system()}, torch {torch.__version__}, load {loadavg()} at the end, "
        f"{_dt.date.today().isoformat()}.",
        "",
        "| prior | class | preset | n | own | " + " | ".join(f"{c}" for c in classes) + " | gap | other clip | s |",
        "|---|---|---|---:|---:|" + "---:|" * len(classes) + "---:|---:|---:|",
    ]
    for r in rows:
        med = r["medians"]
        own = med[r["class"]]["projection"]["spectral_snr"]
        others = [med[c]["projection"]["spectral_snr"] for c in med if c != r["class"]]
        cells = " | ".join(f"{med[c]['projection']['spectral_snr']:.2f}" if c in med else "" for c in classes)
        lines.append(f"| {r['label']} ({r['prior']}) | {r['class']} | {r['preset']} | {r.get('n', '')} | {own:.2f} "
                     f"| {cells} | {own - max(others):+.2f} | {med[r['class']]['other clip']['spectral_snr']:.2f} | "
                     f"{r['seconds']:.0f} |")
    lines.append(END)
    section = "\n".join(lines) + "\n"
    write_section(Path(args.out), section, START, END)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
