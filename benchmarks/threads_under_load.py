"""The demo's search time on a loaded machine: the command line's and the Python API's
default thread counts against explicit ones.

One process keeps one core busy (a pure-Python loop) while the bundled digits + drums
example is separated with the best preset, each way ``--repeats`` times in a fresh
process: ``priorsep demo`` with the default threads, ``--threads 1`` and ``--threads 2``
(torch's own default on 2 cores), and the Python API, ``Separator(priors).separate(mixture)``
with its default, with ``threads=1`` and with ``threads=None`` (torch's own count, what
the API used before it had a thread policy). The table gives the median search seconds
(``summary.json``'s ``search_seconds``; the API's ``result.seconds``, the same clock).

Writes/replaces the section between ``<!-- threads:start -->`` and ``<!-- threads:end -->``
in ``--out`` (default benchmarks/README.md) and prints it.

    .venv/bin/python benchmarks/threads_under_load.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import command_line, cpu_model, loadavg, publish  # benchmarks/_report.py

START = "<!-- threads:start -->"
END = "<!-- threads:end -->"
#: the Python API's run: what a user's script does, printing the search's seconds
API = """
import sys
from priorsep import Separator, load_prior
from priorsep.data.examples import load_example
classes, mixture, sources, rate = load_example("digits_drums")
priors = [load_prior(c) for c in classes]
kwargs = {} if sys.argv[1] == "default" else {"threads": None if sys.argv[1] == "None" else int(sys.argv[1])}
print(Separator(priors, **kwargs).separate(mixture).seconds)
"""


def _busy() -> None:
    while True:
        pass


def _environment() -> dict:
    """This environment without what would choose a thread count for the child."""
    drop = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PRIORSEP_THREADS")
    return {k: v for k, v in os.environ.items() if k not in drop}


def cli_seconds(flags: list[str], out: Path) -> float:
    exe = Path(sys.executable).with_name("priorsep")
    subprocess.run([str(exe), "demo", "--out", str(out), *flags], check=True, capture_output=True, timeout=900,
                   env=_environment())
    return json.loads((out / "summary.json").read_text())["search_seconds"]


def api_seconds(threads: str) -> float:
    done = subprocess.run([sys.executable, "-c", API, threads], check=True, capture_output=True, text=True,
                          timeout=900, env=_environment())
    return float(done.stdout.strip().splitlines()[-1])


RUNS = (
    ("command line, default", lambda tmp, i: cli_seconds([], tmp / f"default{i}")),
    ("command line, `--threads 1`", lambda tmp, i: cli_seconds(["--threads", "1"], tmp / f"one{i}")),
    ("command line, `--threads 2`", lambda tmp, i: cli_seconds(["--threads", "2"], tmp / f"two{i}")),
    ("Python API, default", lambda tmp, i: api_seconds("default")),
    ("Python API, `threads=1`", lambda tmp, i: api_seconds("1")),
    ("Python API, `threads=None` (torch's own count)", lambda tmp, i: api_seconds("None")),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README.md"))
    args = parser.parse_args()
    load_before = loadavg()
    busy = multiprocessing.Process(target=_busy, daemon=True)
    busy.start()
    times: dict[str, list[float]] = {label: [] for label, _ in RUNS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeats):  # round-robin: every way sees the same stretch of load
                for label, run in RUNS:
                    times[label].append(run(Path(tmp), i))
                    print(f"  {label}: {times[label][-1]:.1f} s", flush=True)
    finally:
        busy.terminate()
    load_after = loadavg()
    medians = {label: statistics.median(t) for label, t in times.items()}
    cli_one, api_one = medians["command line, `--threads 1`"], medians["Python API, `threads=1`"]
    lines = ["## Threads on a loaded machine", "",
             f"`{command_line()}` ({datetime.date.today().isoformat()}; {cpu_model()}, "
             f"{os.cpu_count()} cores; load {load_before} before the busy process started, {load_after} at the "
             "end). The bundled digits + drums example, best preset, while another process keeps one "
             f"core busy; median search seconds of {args.repeats} fresh processes each, run round-robin.", "",
             "| threads (one core kept busy) | median search s | runs | vs one thread (same interface) |",
             "|---|---:|---|---:|"]
    for label, _ in RUNS:
        base = cli_one if label.startswith("command") else api_one
        lines.append(f"| {label} | {medians[label]:.1f} | {', '.join(f'{t:.1f}' for t in times[label])} | "
                     f"{medians[label] / base:.2f}x |")
    lines += ["", "The default is one torch thread, for the command line (`--threads` is accepted before or after "
              "any subcommand) and for the Python API alike (`Separator`, `make_separator`, `separate_file`: "
              "`threads=` for a call, `PRIORSEP_THREADS` for the process); two threads, torch's own default on "
              "2 cores, wait for the busy core at every op."]
    publish(args.out, lines, START, END)


if __name__ == "__main__":
    main()
