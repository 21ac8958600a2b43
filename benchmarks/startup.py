"""Start-up time of the command line: commands that compute nothing, and refusals.

Each command runs ``--repeats`` times as a fresh process; the table gives the median wall
time. None of them may import torch (``tests/test_cli.py`` checks that), so each should
finish well under a second.

Writes/replaces the section between ``<!-- startup:start -->`` and ``<!-- startup:end -->``
in ``--out`` (default benchmarks/README.md) and prints it.

    .venv/bin/python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import command_line, cpu_model, loadavg, publish  # benchmarks/_report.py

START = "<!-- startup:start -->"
END = "<!-- startup:end -->"
COMMANDS = [
    ["-h"], ["priors"], ["separate", "-h"],
    ["separate", "missing.wav", "--prior", "digits", "--prior", "drums", "--out", "o"],
    ["separate", "mix.wav", "--prior", "digits", "--out", "o"],
    ["separate", "mix.wav", "--prior", "digits", "--prior", "nope", "--out", "o"],
    ["separate", "mix.wav", "--prior", "digits", "--prior", "drums", "--out", "full"],
    ["train", "clips", "--out", "x.safetensors"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README.md"))
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("priorsep"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "mix.wav").write_bytes(b"")  # exists; never read: each refusal comes first
        (Path(tmp) / "full").mkdir()
        (Path(tmp) / "full" / "old.wav").write_bytes(b"")
        for argv in COMMANDS:
            times, status = [], None
            for _ in range(args.repeats):
                began = time.perf_counter()
                done = subprocess.run([exe, *argv], cwd=tmp, capture_output=True, text=True)
                times.append(time.perf_counter() - began)
                status = done.returncode
            first = (done.stderr.strip().splitlines() or [""])[-1]
            rows.append((argv, statistics.median(times), status, first))
            print(f"  {statistics.median(times):.2f} s  exit {status}  priorsep {shlex.join(argv)}", flush=True)
    lines = ["## Start-up", "",
             f"`{command_line()}` "
             f"({_dt.date.today().isoformat()}; {cpu_model()}; load {loadavg()}): median wall time of "
             f"{args.repeats} fresh processes.", "",
             "| command | exit | median s | what it says |", "|---|---:|---:|---|"]
    for argv, median, status, said in rows:
        said = said.replace("|", "\\|")[:90] if status else "(help or the list)"
        lines.append(f"| `priorsep {shlex.join(argv)}` | {status} | {median:.2f} | {said} |")
    publish(args.out, lines, START, END)


if __name__ == "__main__":
    main()
