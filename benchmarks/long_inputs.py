"""Time and peak memory of ``priorsep separate`` on long inputs (10 s, 1 min, 10 min).

Each input is a seeded sequence of held-out digit and drum clips from
``benchmarks/sets/clips`` (each clip peak-normalised, one of each class summed per slot,
then the slots concatenated), written as a 16 kHz WAV. Every length is separated by a
fresh ``priorsep separate`` process with the bundled ``digits`` and ``drums`` priors and
the default settings; the table gives the process's wall time, the search's own seconds
(``summary.json``), the windows searched and the child's peak resident memory
(``getrusage``'s ``ru_maxrss``, i.e. the whole process: torch, the priors, the audio).

Each run is ``SECONDS[:STEPS]``: the input's length, and the search's steps when not the
default (300). The time per window grows linearly with the steps and the memory does not
depend on them (every step searches the same chunk), so the 10-minute input is run at 30
steps by default, the 10 s input at the default too, and the table extrapolates.

Writes/replaces the section between ``<!-- long_inputs:start -->`` and
``<!-- long_inputs:end -->`` in ``--out`` (default benchmarks/README.md) and prints it.

Usage (from the repository root):
    .venv/bin/python benchmarks/long_inputs.py                       # the runs below
    .venv/bin/python benchmarks/long_inputs.py 10:20 30:20 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from _report import command_line, cpu_model, loadavg, publish  # benchmarks/_report.py

START = "<!-- long_inputs:start -->"
END = "<!-- long_inputs:end -->"
SR = 16000
CLIPS = Path(__file__).parent / "sets" / "clips"


def long_mixture(seconds: float, seed: int = 0) -> np.ndarray:
    """``[T]`` float32: slots of one digit clip plus one drum clip (each peak-normalised),
    concatenated to ``seconds``."""
    rng = np.random.default_rng(seed)
    pools = [sorted((CLIPS / cls / "test").glob("*.flac")) for cls in ("digits", "drums")]
    total = int(seconds * SR)
    parts, have = [], 0
    while have < total:
        slot = None
        for pool in pools:
            clip, _ = sf.read(pool[rng.integers(len(pool))], dtype="float32")
            clip = clip / max(float(np.abs(clip).max()), 1e-8)
            slot = clip if slot is None else slot[: len(clip)] + clip[: len(slot)]
        parts.append(slot)
        have += len(slot)
    return np.concatenate(parts)[:total].astype(np.float32)


def run_one(seconds: float, steps: int | None, args: argparse.Namespace, tmp: Path) -> dict:
    wav = tmp / f"mix-{seconds:g}s.wav"
    if not wav.exists():
        sf.write(wav, long_mixture(seconds, args.seed), SR, subtype="FLOAT")
    out = tmp / f"out-{seconds:g}s-{steps}"
    exe = Path(sys.executable).with_name("priorsep")
    cmd = [str(exe), "separate", str(wav), "--prior", "digits", "--prior", "drums", "--out", str(out)]
    if steps is not None:
        cmd += ["--steps", str(steps)]
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{proc.stderr}")
    summary = json.loads((out / "summary.json").read_text())
    notes = [line for line in proc.stderr.splitlines() if "windows of" in line]
    row = {"seconds": seconds, "steps": steps or 300, "wall": wall, "search": summary["search_seconds"],
           "windows": summary.get("windows"), "peak_mib": peak_kib / 1024, "note": notes[0] if notes else ""}
    print(f"  {seconds:>6g} s input, {row['steps']} steps: wall {wall:.1f} s, search {row['search']:.1f} s, "
          f"peak {row['peak_mib']:.0f} MiB", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", default=["10", "60:30", "600:30"],
                        help="SECONDS[:STEPS] per run (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README.md"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(float(r.split(":")[0]), int(r.split(":")[1]) if ":" in r else None) for r in args.runs]
        peak_so_far = 0.0
        for seconds, steps in runs:
            row = run_one(seconds, steps, args, Path(tmp))
            row["peak_exact"] = row["peak_mib"] > peak_so_far  # ru_maxrss is the largest child so far
            peak_so_far = max(peak_so_far, row["peak_mib"])
            rows.append(row)
    lines = [
        "## Long inputs: time and peak memory",
        "",
        f"`{command_line()}` ({_dt.date.today().isoformat()}; {cpu_model()}; "
        f"load average at the end {loadavg()}). `priorsep separate MIX.wav --prior digits --prior drums --out OUT "
        "[--steps N]` (otherwise default settings); digit + drum clips concatenated to each length. Peak memory: "
        "the process's maximum resident set (`≤`: a later run than a larger one, so only a bound). "
        "Time is linear in the input when the search time per window stays flat down a column of equal steps.",
        "",
        "| input | windows | steps | wall s | search s | search s per window | peak MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        windows = r["windows"] or 0
        per_window = r["search"] / windows if windows else float("nan")
        lines.append(f"| {r['seconds']:g} s | {windows} | {r['steps']} | {r['wall']:.1f} | {r['search']:.1f} | "
                     f"{per_window:.2f} | "
                     f"{'' if r['peak_exact'] else '≤ '}{r['peak_mib']:.0f} |")
    default = [r for r in rows if r["steps"] == 300 and r["windows"]]
    longest = max(rows, key=lambda r: r["seconds"])
    if default and longest["steps"] != 300 and longest["windows"]:
        rate = max(default, key=lambda r: r["seconds"])
        per_window = rate["search"] / rate["windows"]
        lines += ["", f"At the default 300 steps the {longest['seconds']:g} s input's {longest['windows']} windows "
                      f"would take about {per_window * longest['windows'] / 60:.0f} minutes of search at the "
                      f"{rate['seconds']:g} s input's {per_window:.2f} s per window; its memory is the same at any "
                      "number of steps (each step searches the same chunk)."]
    notes = [r["note"] for r in rows if r["note"]]
    if notes:
        lines += ["", "The estimate printed before the longest run: `" + notes[-1] + "`."]
    publish(args.out, lines, START, END)


if __name__ == "__main__":
    main()
