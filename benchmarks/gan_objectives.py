"""Which GAN objective trains the best prior in a fixed CPU budget? (chooses ``--recipe fast``)

Every candidate trains a WaveGAN of the same size on the same training folder for the
same wall time, from the same seed, on one thread; the result is judged by
``priorsep.report.prior_report`` on held-out clips of the class (and of another class):
the median projection spectral SNR and SI-SDR after a 200-step latent search. Iterations
done in the budget are reported too, since a cheaper iteration buys more of them.

Candidates (all Adam 1e-4, betas 0.5/0.9):
  * ``ns-r1/4``: non-saturating loss, 1 critic step, lazy R1 (gamma 1) every 4 steps, batch 16
  * ``ns-r1/16``: the same with R1 every 16 steps
  * ``hinge-r1/4``: hinge loss, 1 critic step, lazy R1 every 4 steps, batch 16
  * ``wgan-gp/1``: WGAN-GP (penalty 10) with 1 critic step, batch 16
  * ``paper``: WGAN-GP with 5 critic steps, batch 64 (docs/method.md §2), for reference

Writes/replaces the section between ``<!-- gan_objectives:start -->`` and
``<!-- gan_objectives:end -->`` in ``--out`` (default benchmarks/README.md).

Usage (from the repository root; about (minutes + 2) x 5 minutes):
    .venv/bin/python benchmarks/gan_objectives.py --train DATA/drums/train --test DATA/drums/test \\
        --other DATA/piano/test --d 16 --minutes 8
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from priorsep.data.folder import load_folder  # noqa: E402
from priorsep.report import prior_report  # noqa: E402
from priorsep.training import GANRecipe, WaveGANTrainer  # noqa: E402

from _report import cpu_model, loadavg, write_section  # noqa: E402

CANDIDATES = {
    "ns-r1/4": GANRecipe("ns-r1/4", "ns-r1", batch=16, critic_steps=1, r1_every=4),
    "ns-r1/16": GANRecipe("ns-r1/16", "ns-r1", batch=16, critic_steps=1, r1_every=16),
    "hinge-r1/4": GANRecipe("hinge-r1/4", "hinge-r1", batch=16, critic_steps=1, r1_every=4),
    "wgan-gp/1": GANRecipe("wgan-gp/1", "wgan-gp", batch=16, critic_steps=1),
    "paper": GANRecipe("paper", "wgan-gp", batch=64, critic_steps=5),
}
START, END = "<!-- gan_objectives:start -->", "<!-- gan_objectives:end -->"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="training clips of one class")
    ap.add_argument("--test", required=True, help="held-out clips of the same class")
    ap.add_argument("--other", required=True, help="held-out clips of another class")
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=8.0, help="training wall time per candidate")
    ap.add_argument("--n", type=int, default=24, help="held-out clips per set for the report")
    ap.add_argument("--steps", type=int, default=200, help="projection search steps")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--from-json", help="comma-separated result files of earlier runs (e.g. run in parallel with "
                                        "disjoint --candidates): write their table, train nothing")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "README.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    train = load_folder(args.train)
    sets = {"own": load_folder(args.test).clips, "other": load_folder(args.other).clips}
    rows = []
    if args.from_json:
        rows = [r for f in args.from_json.split(",") for r in json.loads(Path(f).read_text())]
    for name in [] if args.from_json else args.candidates.split(","):
        with tempfile.TemporaryDirectory() as run:
            trainer = WaveGANTrainer(train, run, d=args.d, recipe=CANDIDATES[name], seed=args.seed, name=name)
            trainer.train(minutes=args.minutes, checkpoint_minutes=1e9, progress=False)
            rep = prior_report(trainer.prior(), sets, steps=args.steps, n=args.n, seed=args.seed,
                               objective="magnitude")  # the best preset's default when the table was made
        med = {k: v.medians() for k, v in rep.items()}
        rows.append({"candidate": name, "iterations": trainer.step, "seconds": round(trainer.seconds, 1),
                     "own": med["own"], "other": med["other"]})
        print(json.dumps(rows[-1]), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")

    command = [sys.executable.split("/")[-1], "benchmarks/gan_objectives.py"] + (argv or sys.argv[1:])
    lines = [
        START,
        "## GAN objectives for the fast recipe (`benchmarks/gan_objectives.py`)",
        "",
        f"Each candidate trained a d={args.d} WaveGAN for {args.minutes:g} minutes on one thread "
        f"({len(train.clips)} clips from `{args.train}`), then {args.n} held-out clips of its class "
        f"(`{args.test}`) and of another (`{args.other}`) were projected onto it ({args.steps} search "
        "steps, `priorsep.report`). Medians in dB; higher is better; `own - other` is the gap that "
        "says the prior knows its class.",
        "",
        f"Command: `{' '.join(shlex.quote(a) for a in command)}`",
        f"Machine: {cpu_model()}, {platform.system()}, torch {torch.__version__}, load {loadavg()} at the end, "
        f"{_dt.date.today().isoformat()}.",
        "",
        "| candidate | iterations | own: projection spectral SNR | own: projection SI-SDR "
        "| own: other-clip spectral SNR | other class: projection spectral SNR | own - other |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        own, other = r["own"], r["other"]
        lines.append(
            f"| {r['candidate']} | {r['iterations']} | {own['projection']['spectral_snr']:.2f} | "
            f"{own['projection']['si_sdr']:.2f} | {own['other clip']['spectral_snr']:.2f} | "
            f"{other['projection']['spectral_snr']:.2f} | "
            f"{own['projection']['spectral_snr'] - other['projection']['spectral_snr']:+.2f} |"
        )
    lines.append(END)
    section = "\n".join(lines) + "\n"
    write_section(Path(args.out), section, START, END)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
