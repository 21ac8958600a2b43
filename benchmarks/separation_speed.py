"""Speed of the latent search (METHOD.md §3): seconds per mixture on this machine.

Measures ``Separator.separate(...).seconds`` for K = 2 randomly initialised WaveGAN
priors (two independently seeded generators) at several model sizes d, batch sizes and
both search modes (``joint=False``: each mixture searched on its own; ``joint=True``: the
batch searched as one), plus the tiny built-in ``tone`` + ``burst`` priors for context.

For every case:
  * one warm-up call of ``--warmup`` steps (discarded);
  * a ``steps=0`` call: the search's fixed cost (mixture features, starting latents, the
    final generation and loss), which does not grow with the number of steps;
  * a ``steps=N`` call; the per-step cost is ``(t_N - t_0) / N``, and the extrapolation to
    the paper's 1000 steps is ``t_0 + 1000 * (t_N - t_0) / N`` (both per mixture).
The ``steps=0`` / ``steps=N`` pair is repeated ``--repeats`` times and the fastest repeat
is kept (other processes on the machine only ever make a run slower).

A per-step cost breakdown then times, for the same batch, interleaved round-robin:
  * full step: what one iteration of the search does (K generator forwards, peak
    normalisation, one batched STFT of the K sources, the four losses, backward to z,
    Adam, projection);
  * generators only: K generator forwards + backward with respect to z only (weights
    frozen, as in the search), with a fixed random upstream gradient;
  * STFT + losses only: peak normalisation, the STFT and the four losses, forward +
    backward to the (detached) generator outputs;
so "per-step cost = K generator passes + the STFTs/losses, nothing else" is checked by
``full - (generators + STFT/losses)`` (the remainder: Adam, projection, bookkeeping).

Writes/replaces the section between ``<!-- separation_speed:start -->`` and
``<!-- separation_speed:end -->`` in ``--out`` (default benchmarks/README.md) and prints it.

Usage (from the repository root):
    .venv/bin/python benchmarks/separation_speed.py              # defaults
    .venv/bin/python benchmarks/separation_speed.py --steps 5 --d 16 --batch 1 4 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import priorsep
from priorsep import Separator, WaveGANPrior, load_prior
from priorsep.losses import LossWeights, MixtureFeatures, losses_from_spectra
from priorsep.separate import peak_normalise
from priorsep.spectral import stft

from _report import cpu_model, fmt_seconds, loadavg, write_section  # benchmarks/_report.py

START = "<!-- separation_speed:start -->"
END = "<!-- separation_speed:end -->"
SR = 16000
LENGTH = 16384
PAPER_STEPS = 1000


# --------------------------------------------------------------------------- machine


class OtherCPU:
    """CPU time used by *other* processes while a block runs, in cores (0 = idle machine,
    up to the number of logical CPUs): machine-wide busy time from /proc/stat minus this
    process's own CPU time, divided by the wall time."""

    def __enter__(self):
        self.busy, self.own, self.wall = self._busy(), self._own(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.wall
        busy = self._busy()
        if busy is None or self.busy is None or wall <= 0:
            self.cores = float("nan")
        else:
            self.cores = max(0.0, ((busy - self.busy) - (self._own() - self.own)) / wall)
        return False

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system

    @staticmethod
    def _busy() -> float | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()
        except (OSError, IndexError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def command_line() -> str:
    exe = sys.executable
    try:
        rel = os.path.relpath(exe)
        if not rel.startswith(".."):
            exe = rel
    except ValueError:
        pass
    return shlex.join([exe, *sys.argv])


# --------------------------------------------------------------------------- inputs


def make_mixtures(batch: int) -> torch.Tensor:
    """``[B, 16384]``: a decaying noise burst plus a decaying harmonic tone, each
    peak-normalised, summed (the mixing model of METHOD.md §3). Uses the global RNG."""
    t = torch.arange(LENGTH) / SR
    noise = torch.randn(batch, LENGTH) * torch.exp(-t / (0.05 + 0.3 * torch.rand(batch, 1)))
    f0 = 150 * 4 ** torch.rand(batch, 1, 1)  # 150..600 Hz
    k = torch.arange(1, 5).view(1, 4, 1)
    tone = (torch.sin(2 * math.pi * f0 * k * t) / k).sum(1) * torch.exp(-t / (0.2 + torch.rand(batch, 1)))
    return peak_normalise(noise) + peak_normalise(tone)


def wavegan_pair(d: int, seed: int) -> list[WaveGANPrior]:
    priors = []
    for k in range(2):
        torch.manual_seed(seed + 1000 * d + k)  # independent initialisations
        priors.append(WaveGANPrior(d=d, name=f"wavegan-d{d}-{k}").eval())
    return priors


def builtin_pair() -> list:
    return [load_prior("tone"), load_prior("burst")]


# --------------------------------------------------------------------------- timing


@dataclass
class Case:
    label: str
    d: str
    batch: int
    mode: str
    steps: int
    reduced: bool
    fixed: float  # s, whole call (all B mixtures)
    per_step: list[float] = field(default_factory=list)  # s per step, whole call, one per repeat
    others: float = float("nan")  # cores used by other processes during the timed calls

    @property
    def step_per_mix(self) -> float:
        return min(self.per_step) / self.batch

    @property
    def paper_per_mix(self) -> float:
        return (self.fixed + PAPER_STEPS * min(self.per_step)) / self.batch

    @property
    def spread(self) -> float:
        return max(self.per_step) / min(self.per_step) - 1 if len(self.per_step) > 1 else float("nan")


def time_search(label, d, priors, mix, joint, args) -> Case:
    b = mix.shape[0]
    mode = "-" if b == 1 else ("joint" if joint else "independent")
    # warm-up: same shapes as the timed call (an independent search is a batch of one)
    warm = mix if joint else mix[:1]
    w = Separator(priors, steps=args.warmup, joint=joint, seed=args.seed).separate(warm).seconds
    est_step = w / max(args.warmup, 1) * (1 if joint else b)  # pessimistic (first-call costs)
    steps = args.steps
    if args.case_budget > 0 and est_step * steps * args.repeats > args.case_budget:
        steps = max(args.min_steps, int(args.case_budget / (est_step * args.repeats)))
        steps = min(steps, args.steps)
    fixed, per_step = [], []
    with OtherCPU() as other:
        for _ in range(args.repeats):
            t0 = Separator(priors, steps=0, joint=joint, seed=args.seed).separate(mix).seconds
            tn = Separator(priors, steps=steps, joint=joint, seed=args.seed).separate(mix).seconds
            fixed.append(t0)
            per_step.append(max(tn - t0, 1e-9) / steps)
    case = Case(label, d, b, mode, steps, steps < args.steps, min(fixed), per_step, other.cores)
    print(f"  {label:>14} d={d:<3} B={b:<3} {mode:<11} steps={steps:<3} "
          f"{case.step_per_mix * 1e3:8.2f} ms/step/mix  {case.paper_per_mix:7.2f} s/mix@1000  "
          f"(others {case.others:.2f} cores)", flush=True)
    return case


@dataclass
class Breakdown:
    label: str
    d: str
    batch: int
    reps: int
    full: float
    gen: float
    loss: float
    sep: float  # the Separator's own per-step time for this batch (joint / batch 1), s
    others: float = float("nan")  # cores used by other processes meanwhile

    @property
    def rest(self) -> float:
        return self.full - self.gen - self.loss


def breakdown(label, d, priors, mix, sep_per_step, args) -> Breakdown:
    """Median over ``reps`` interleaved repetitions of a full step, the generators alone,
    and the STFT + losses alone, all for the same batch (one search of B rows)."""
    b = mix.shape[0]
    for p in priors:
        p.eval()
        for q in p.parameters():
            q.requires_grad_(False)
    feats = MixtureFeatures(mix)
    weights = LossWeights()
    torch.manual_seed(args.seed)
    z0 = [torch.rand(b, p.latent_dim) * 2 - 1 for p in priors]
    zs = [z.clone().requires_grad_(True) for z in z0]
    opt = torch.optim.Adam(zs, lr=0.05)
    upstream = torch.randn(b, len(priors), LENGTH)
    with torch.no_grad():
        raw = torch.stack([p.generate(z) for p, z in zip(priors, z0)], dim=1)

    def full_step():
        opt.zero_grad(set_to_none=True)
        sources = peak_normalise(torch.stack([p.generate(z) for p, z in zip(priors, zs)], dim=1))
        terms = losses_from_spectra(feats, stft(sources), weights)
        terms["total"].sum().backward()
        opt.step()
        with torch.no_grad():
            for z in zs:
                z.clamp_(-1.0, 1.0)
        for k in terms:
            terms[k].detach().cpu()

    def gen_only():
        zg = [z.clone().requires_grad_(True) for z in z0]
        out = torch.stack([p.generate(z) for p, z in zip(priors, zg)], dim=1)
        out.backward(upstream)

    def loss_only():
        src = raw.clone().requires_grad_(True)
        terms = losses_from_spectra(feats, stft(peak_normalise(src)), weights)
        terms["total"].sum().backward()

    fns = {"full": full_step, "gen": gen_only, "loss": loss_only}
    for fn in fns.values():  # warm-up
        fn()
    t = time.perf_counter()
    full_step()
    est = time.perf_counter() - t
    reps = args.steps
    if args.case_budget > 0 and 2 * est * reps > args.case_budget:  # gen + loss ~ full
        reps = max(args.min_steps, min(reps, int(args.case_budget / (2 * est))))
    times = {k: [] for k in fns}
    with OtherCPU() as other:
        for _ in range(reps):
            for k, fn in fns.items():
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = Breakdown(label, d, b, reps, med["full"], med["gen"], med["loss"], sep_per_step, other.cores)
    print(f"  breakdown {label:>14} d={d:<3} B={b:<3} full {out.full * 1e3:8.1f} ms = "
          f"generators {out.gen * 1e3:8.1f} + STFT/losses {out.loss * 1e3:7.1f} + rest {out.rest * 1e3:6.1f} "
          f"(Separator {sep_per_step * 1e3:8.1f} ms/step)", flush=True)
    return out


# --------------------------------------------------------------------------- report


def fmt_ms(x: float) -> str:
    ms = x * 1e3
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def report(cases: list[Case], parts: list[Breakdown], info: dict, args) -> str:
    lines = [START, "", "## Latent-search speed (`benchmarks/separation_speed.py`)", ""]
    lines += [
        f"- Command: `{info['command']}` (run from the repository root)",
        f"- Date: {info['date']}",
        (f"- Machine: {info['cpu']}, {info['cpus']} logical CPUs; `torch.get_num_threads()` = "
        f"{info['threads']}; torch {info['torch']}; Python {info['python']}; priorsep {info['priorsep']}"),
        (f"- Load average (1/5/15 min) at start: {info['load_start']}; at end: {info['load_end']}; "
        f"total run time {info['runtime']:.0f} s"),
        (f"- Setting: K = 2 priors, clips of 16384 samples at 16 kHz, random mixtures (a noise burst "
        f"plus a harmonic tone, each peak-normalised); WaveGAN priors are randomly initialised "
        f"(latent_dim 100), two independent seeds per d. Per case: one warm-up call of "
        f"{args.warmup} steps, then, {args.repeats}x, a `steps=0` call (fixed cost) and a "
        f"`steps=N` call; per step = (t_N - t_0) / N, fastest repeat kept. "
        f"1000 steps = t_0 + 1000 x per step (the paper's search length), divided by the batch."),
        "",
    ]
    reduced = any(c.reduced for c in cases)
    hdr = ("| priors | d | batch | mode | steps timed | ms / step / mixture | "
           "s / mixture at 1000 steps | joint speed-up | repeat spread | others' CPU |")
    lines += [hdr, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    indep = {(c.label, c.d, c.batch): c for c in cases if c.mode == "independent"}
    for c in cases:
        speed = ""
        if c.mode == "joint" and (c.label, c.d, c.batch) in indep:
            speed = f"{indep[(c.label, c.d, c.batch)].step_per_mix / c.step_per_mix:.2f}x"
        steps = f"{c.steps}*" if c.reduced else str(c.steps)
        spread = "" if math.isnan(c.spread) else f"{100 * c.spread:.0f}%"
        lines.append(f"| {c.label} | {c.d} | {c.batch} | {c.mode} | {steps} | {fmt_ms(c.step_per_mix)} | "
                     f"{fmt_seconds(c.paper_per_mix)} | {speed} | {spread} | {c.others:.2f} |")
    lines.append("")
    notes = [
        ("mode `-`: batch 1, where `joint=False` and `joint=True` are the same search (measured once); "
        "`independent` (`joint=False`, the default) runs B searches of one mixture one after another; "
        "`joint` searches the B mixtures as one batch."),
        "joint speed-up: independent / joint time per mixture at the same batch (> 1: joint is faster).",
        ("repeat spread: slowest / fastest repeat - 1 for the per-step time; a large spread means "
        "other processes were competing for the 2 cores."),
        ("others' CPU: cores' worth of CPU used by other processes during the case's timed calls "
        "(/proc/stat busy time minus this process's CPU time, over the wall time); 0 means the "
        "timing had the machine to itself."),
    ]
    if reduced:
        notes.append(f"`*`: fewer than `--steps {args.steps}` steps were timed for this case to keep the "
                     f"run within `--case-budget {args.case_budget:g}` s per case (estimated from the warm-up).")
    lines += [f"- {n}" for n in notes] + [""]

    lines += ["### Per-step cost breakdown", ""]
    lines += [
        ("One search step for one batch of B mixtures (B = 1: an independent search; B > 1: a "
        "joint search), median of interleaved repetitions, in ms per step (not per mixture). "
        "*generators*: the K = 2 generator forwards plus backward with respect to z only "
        "(weights frozen). *STFT + losses*: peak normalisation, one batched STFT of the K "
        "sources and the four losses, forward plus backward to the generator outputs. "
        "*rest* = full - generators - STFT/losses (Adam, projection, loss bookkeeping, and "
        "measurement noise). *Separator* is the per-step time of the real search from the "
        "table above (batch time, not per mixture), a check that the replicated step is the "
        "real one."),
        "",
        "| priors | d | B | reps | full step | generators | STFT + losses | rest | generators share | Separator "
        "| others' CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in parts:
        lines.append(
            f"| {p.label} | {p.d} | {p.batch} | {p.reps} | {fmt_ms(p.full)} | {fmt_ms(p.gen)} | "
            f"{fmt_ms(p.loss)} | {fmt_ms(p.rest)} ({100 * p.rest / p.full:+.0f}%) | "
            f"{100 * p.gen / p.full:.0f}% | {fmt_ms(p.sep)} | {p.others:.2f} |"
        )
    lines.append("")
    busy = [x.label + (f" d={x.d}" if x.d != "-" else "") + f" B={x.batch}"
            + (f" {x.mode}" if isinstance(x, Case) and x.mode != "-" else "")
            + ("" if isinstance(x, Case) else " (breakdown)") + f": {x.others:.2f}"
            for x in [*cases, *parts] if x.others > args.busy_threshold]
    if busy:
        lines += [
            (f"**Caveat: the machine was shared.** Other processes used more than "
            f"{args.busy_threshold:g} cores' worth of CPU during {len(busy)} of the "
            f"{len(cases) + len(parts)} measurements ({'; '.join(busy)}), so those numbers are "
            "upper bounds for an idle machine. Contention can cost more than the lost CPU share: "
            "torch's OpenMP parallel regions wait for their slowest thread, so a descheduled thread "
            "stalls every op, which hurts small, op-heavy steps (small d, batch 1, the tiny priors) "
            "most. Re-run on an idle "
            "machine for absolute figures."),
            "",
        ]
    if args.note:
        lines += [args.note, ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20, help="timed search steps per case (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="steps of the warm-up call (default 2)")
    ap.add_argument("--d", type=int, nargs="+", default=[16, 32, 64], help="WaveGAN model sizes")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16], help="batch sizes")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats per case, fastest kept (default 2)")
    ap.add_argument("--case-budget", type=float, default=90.0,
                    help="seconds per case (all repeats) above which fewer steps are timed; 0: never "
                         "reduce (default 90)")
    ap.add_argument("--min-steps", type=int, default=5, help="never time fewer steps than this (default 5)")
    ap.add_argument("--no-builtin", action="store_true", help="skip the built-in tone + burst priors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/README.md"),
                    help="markdown file whose separation_speed section is written/replaced")
    ap.add_argument("--busy-threshold", type=float, default=0.2,
                    help="flag measurements during which other processes used more than this many "
                         "cores (default 0.2)")
    ap.add_argument("--note", default="", help="a paragraph appended to the section")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or args.repeats < 1:
        ap.error("--steps, --warmup and --repeats must be >= 1")

    start = time.perf_counter()
    info = {
        "command": command_line(),
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "priorsep": priorsep.__version__,
        "load_start": loadavg(),
    }
    print(f"{info['cpu']}; {info['threads']} torch threads; torch {info['torch']}; load {info['load_start']}",
          flush=True)
    torch.manual_seed(args.seed)
    mixtures = make_mixtures(max(args.batch))

    sets = [("WaveGAN x2", str(d), lambda d=d: wavegan_pair(d, args.seed)) for d in args.d]
    if not args.no_builtin:
        sets.append(("tone + burst", "-", builtin_pair))
    cases, parts = [], []
    for label, d, make in sets:
        priors = make()
        for b in args.batch:
            mix = mixtures[:b]
            modes = [False] if b == 1 else [False, True]
            for joint in modes:
                cases.append(time_search(label, d, priors, mix, joint, args))
            # breakdown for this batch as one search: B = 1 -> the batch-1 case; B > 1 -> joint
            sep = cases[-1].step_per_mix * b
            parts.append(breakdown(label, d, priors, mix, sep, args))
    info["load_end"] = loadavg()
    info["runtime"] = time.perf_counter() - start
    section = report(cases, parts, info, args)
    write_section(args.out, section, START, END)
    print()
    print(section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
