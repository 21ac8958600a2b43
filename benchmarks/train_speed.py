"""Training speed of the WaveGAN prior on this machine: seconds per iteration.

Measures ``WaveGANTrainer.train_step()`` (one iteration = ``critic_steps`` critic updates + one
generator update) on a synthetic ClipSet of 64 random clips of 16384 samples, for model
sizes d, both recipes (``paper``: 5 WGAN-GP critic steps, batch 64; ``fast``: one
non-saturating critic step with lazy R1 every 4th iteration, batch 16; optionally also at
a common ``--batch``), in float32 and under bfloat16 autocast, with torch's default
number of threads.

For every case:
  * one warm-up iteration (discarded; the trainer's step 0, which for ``fast`` includes
    the lazy R1 penalty);
  * then iterations are timed until ``--iters`` are done (a multiple of 4, so the timed
    ``fast`` iterations contain exactly one R1 step per 4) or the case has used
    ``--case-budget`` seconds of timed iterations, whichever comes first;
  * if the warm-up iteration alone takes longer than ``--case-budget``, its time is
    reported, marked "(1 warm-up iteration only)", and nothing more is timed;
  * a case is skipped without running when its predicted time per iteration exceeds
    3 x ``--case-budget``. Prediction: the same recipe, batch and precision at the next
    smaller d that was measured, scaled by (d / d_small) ** p, where p is the exponent
    observed between the two largest smaller d's measured (clipped to [1, 2]), or p = 2
    (the networks' FLOPs grow as d^2) when only one smaller d has been measured;
  * once the whole run has used ``--total-budget`` seconds, remaining cases are skipped.

Writes/replaces the section between ``<!-- train_speed:start -->`` and
``<!-- train_speed:end -->`` in ``--out`` (default benchmarks/README.md; appended at the
end if the markers are absent) and prints it.

Usage (from the repository root):
    .venv/bin/python benchmarks/train_speed.py               # defaults
    .venv/bin/python benchmarks/train_speed.py --d 16 --iters 8 --batch 32 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import priorsep
from priorsep.data.folder import ClipSet
from priorsep.training import RECIPES, WaveGANTrainer

from _report import cpu_model, fmt_seconds, loadavg, write_section  # benchmarks/_report.py

START = "<!-- train_speed:start -->"
END = "<!-- train_speed:end -->"


@dataclass
class Result:
    d: int
    recipe: str
    batch: int
    bf16: bool
    s_per_it: float | None = None  # None: skipped
    iters: int = 0
    note: str = ""  # "warmup-only", "skip: ...", ""


def predict(done: list[Result], d: int, recipe: str, batch: int, bf16: bool) -> tuple[float, str] | None:
    same = sorted(
        (r for r in done
         if r.recipe == recipe and r.batch == batch and r.bf16 == bf16 and r.s_per_it is not None and r.d < d),
        key=lambda r: r.d,
    )
    if not same:
        return None
    last = same[-1]
    p = 2.0
    how = "d^2"
    if len(same) >= 2:
        prev = same[-2]
        p = math.log(last.s_per_it / prev.s_per_it) / math.log(last.d / prev.d)
        p = min(2.0, max(1.0, p))
        how = f"d^{p:.2f} (exponent seen from d={prev.d} to d={last.d})"
    return last.s_per_it * (d / last.d) ** p, f"from d={last.d}, x {how}"


def run_case(clips: ClipSet, d: int, recipe: str, batch: int, bf16: bool, iters: int, budget: float) -> Result:
    res = Result(d, recipe, batch, bf16)
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        tr = WaveGANTrainer(clips, tmp, d=d, recipe=recipe, batch=batch, seed=0, bf16=bf16)
        t0 = time.perf_counter()
        tr.train_step()
        warm = time.perf_counter() - t0
        if warm > budget:
            res.s_per_it, res.iters, res.note = warm, 1, "warmup-only"
            return res
        times: list[float] = []
        while len(times) < iters and sum(times) < budget:
            t0 = time.perf_counter()
            tr.train_step()
            times.append(time.perf_counter() - t0)
        res.s_per_it, res.iters = sum(times) / len(times), len(times)
    return res


def section(results: list[Result], args, command: str, t_start: str, total: float, load0, load1) -> str:
    lines = [
        START,
        "",
        "## Training speed (`benchmarks/train_speed.py`)",
        "",
        f"- Command: `{command}` (run from the repository root)",
        f"- Date: {t_start} UTC; total run time {total:.0f} s",
        f"- Machine: {cpu_model()}, {torch.get_num_threads()} threads (`torch.get_num_threads()`, torch default); "
        f"torch {torch.__version__}; Python {platform.python_version()}; "
        f"priorsep {getattr(priorsep, '__version__', '?')}",
        f"- Load average (1/5/15 min) at start: {load0}; at end: {load1}",
        f"- Setting: `WaveGANTrainer.train_step()` on a synthetic ClipSet of 64 random clips (16384 samples), seed 0. "
        f"Per case: 1 warm-up iteration, then up to {args.iters} timed iterations or until "
        f"{args.case_budget:g} s of timed iterations (`--case-budget`); s/it is the mean of the timed iterations. "
        f"One iteration = paper: 5 WGAN-GP critic steps + 1 generator step; fast: 1 non-saturating critic step "
        f"(lazy R1 every 4th iteration) + 1 generator step.",
        "",
        "| d | recipe | batch | precision | s/it | it/s | iterations timed |",
        "|---:|---|---:|---|---:|---:|---|",
    ]
    for r in results:
        prec = "bf16 autocast" if r.bf16 else "fp32"
        if r.note.startswith("skip"):
            lines.append(f"| {r.d} | {r.recipe} | {r.batch} | {prec} | - | - | {r.note[len('skip: '):]} |")
            continue
        its = "1 (1 warm-up iteration only)" if r.note == "warmup-only" else str(r.iters)
        per_it, it_per_s = fmt_seconds(r.s_per_it, ".3g"), fmt_seconds(1 / r.s_per_it, ".3g")
        lines.append(f"| {r.d} | {r.recipe} | {r.batch} | {prec} | {per_it} | {it_per_s} | {its} |")
    lines += [
        "",
        f"- \"skipped: predicted > N s/it\": not run because the predicted time per iteration exceeds 3 x the case "
        f"budget ({3 * args.case_budget:g} s). Prediction: the same recipe, batch and precision at the next smaller "
        f"measured d, scaled by (d / d_small)^p with p the exponent observed between the two largest smaller d's "
        f"(clipped to [1, 2]), or p = 2 when only one smaller d was measured; the predicted value is shown.",
        "- \"(1 warm-up iteration only)\": the warm-up iteration alone exceeded the case budget, so its time "
        "(which includes first-call overheads) is reported and nothing more was timed.",
        "",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--recipes", nargs="+", default=["paper", "fast"], choices=sorted(RECIPES))
    ap.add_argument("--batch", type=int, default=None, help="also measure every recipe at this batch size")
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--iters", type=int, default=4, help="timed iterations per case (multiple of 4)")
    ap.add_argument("--case-budget", type=float, default=40.0, help="seconds of timed iterations per case")
    ap.add_argument("--total-budget", type=float, default=840.0, help="skip remaining cases after this many seconds")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "README.md")
    args = ap.parse_args(argv)
    if args.iters <= 0 or args.iters % 4:
        ap.error("--iters must be a positive multiple of 4 (the fast recipe's lazy R1 runs every 4th iteration)")

    command = shlex.join([".venv/bin/python", "benchmarks/train_speed.py", *sys.argv[1:]])
    t_start = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load0 = loadavg()
    torch.manual_seed(0)
    clips = ClipSet(clips=torch.randn(64, 16384) * 0.1, folder="synthetic", files=64,
                    skipped_unreadable=0, skipped_silent=0, content_hash="-")

    cases = []
    for prec in args.precision:
        for recipe in args.recipes:
            batches = [RECIPES[recipe].batch]
            if args.batch is not None and args.batch not in batches:
                batches.append(args.batch)
            for batch in batches:
                for d in sorted(args.d):
                    cases.append((d, recipe, batch, prec == "bf16"))

    t0 = time.perf_counter()
    results: list[Result] = []
    for d, recipe, batch, bf16 in cases:
        elapsed = time.perf_counter() - t0
        pred = predict(results, d, recipe, batch, bf16)
        tag = f"d={d} {recipe} batch={batch} {'bf16' if bf16 else 'fp32'}"
        if elapsed > args.total_budget:
            r = Result(d, recipe, batch, bf16, note=f"skip: total budget ({args.total_budget:g} s) used")
        elif pred is not None and pred[0] > 3 * args.case_budget:
            r = Result(d, recipe, batch, bf16, note=f"skip: skipped: predicted > {3 * args.case_budget:g} s/it "
                                                    f"(~{fmt_seconds(pred[0], '.3g')} s/it {pred[1]})")
        else:
            r = run_case(clips, d, recipe, batch, bf16, args.iters, args.case_budget)
        results.append(r)
        shown = "-" if r.s_per_it is None else f"{r.s_per_it:.3f} s/it over {r.iters} it"
        print(f"[{time.perf_counter() - t0:6.0f} s] {tag}: {shown} {r.note}", file=sys.stderr, flush=True)

    total = time.perf_counter() - t0
    load1 = loadavg()
    text = section(results, args, command, t_start, total, load0, load1)
    write_section(args.out, text, START, END)
    print(text)


if __name__ == "__main__":
    main()
