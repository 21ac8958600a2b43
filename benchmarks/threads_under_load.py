"""The demo's search time on a loaded machine: the default thread count against explicit ones.

One process keeps one core busy (a pure-Python loop) while ``priorsep demo`` runs with the
default threads, ``--threads 1`` and ``--threads 2`` (torch's own default on 2 cores), each
``--repeats`` times; the table gives the median search seconds from ``summary.json``.

    .venv/bin/python benchmarks/threads_under_load.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def _busy() -> None:
    while True:
        pass


def search_seconds(threads: list[str], out: Path) -> float:
    exe = Path(sys.executable).with_name("priorsep")
    subprocess.run([str(exe), "demo", "--out", str(out), *threads], check=True, capture_output=True, timeout=900)
    return json.loads((out / "summary.json").read_text())["search_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    busy = multiprocessing.Process(target=_busy, daemon=True)
    busy.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = (("default", []), ("--threads 1", ["--threads", "1"]), ("--threads 2", ["--threads", "2"]))
            for label, flags in runs:
                times = [search_seconds(flags, Path(tmp) / f"run{i}") for i in range(args.repeats)]
                rows.append((label, statistics.median(times), times))
    finally:
        busy.terminate()
    base = rows[1][1]
    print("| threads (one core kept busy) | median search s | runs | vs --threads 1 |")
    print("|---|---:|---|---:|")
    for label, median, times in rows:
        print(f"| {label} | {median:.1f} | {', '.join(f'{t:.1f}' for t in times)} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
