"""Start-up time of the command line: commands that compute nothing, refusals, and the
whole default separation of the bundled example against a bare ``import torch``.

Each command that computes nothing runs ``--repeats`` times as a fresh process; the table
gives the median wall time. None of them may import torch (``tests/test_cli.py`` checks
that), so each should finish well under a second.

Then, alternately (so that both see the same load), ``--repeats`` times each after one
untimed pair: ``python -c "import torch"`` and ``priorsep separate`` of the bundled
digits + drums example with the default settings (one thread); the ratio of their medians
is what the command costs beyond torch's import. One more separation under ``python -X
importtime`` lists what it imports: ``torch._dynamo`` must not be among it.

Writes/replaces the section between ``<!-- startup:start -->`` and ``<!-- startup:end -->``
in ``--out`` (default benchmarks/README.md) and prints it.

    .venv/bin/python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
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
    # refusals that read the file: before torch is imported
    ["separate", "stereo.wav", "--prior", "digits", "--prior", "drums", "--out", "o"],
    ["separate", "nan.wav", "--prior", "digits", "--prior", "drums", "--out", "o"],
    ["separate", "silent.wav", "--prior", "digits", "--prior", "drums", "--out", "o"],
    ["separate", "short.wav", "--prior", "digits", "--prior", "drums", "--out", "o"],
]
EXAMPLE = "src/priorsep/examples/digits_drums/mixture.wav"
SEPARATE = ["separate", EXAMPLE, "--prior", "digits", "--prior", "drums", "--out"]


def timed(argv: list[str], cwd: str | Path | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of one fresh process, and the process."""
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - began, done


def refusal_rows(exe: str, repeats: int, tmp: Path) -> list[tuple[list[str], float, int, str]]:
    """The commands that compute nothing, and the refusals of a file's content (stereo, NaN,
    silent, too short): ``(argv, median s, exit status, last line said)``."""
    (tmp / "mix.wav").write_bytes(b"")  # exists; never read: each refusal comes first
    (tmp / "full").mkdir()
    (tmp / "full" / "old.wav").write_bytes(b"")
    import numpy as np
    import soundfile as sf

    noise = np.random.default_rng(0).uniform(-0.1, 0.1, (16000, 2))
    sf.write(tmp / "stereo.wav", noise, 16000)
    sf.write(tmp / "nan.wav", np.r_[noise[:100, 0], np.nan], 16000, subtype="FLOAT")
    sf.write(tmp / "silent.wav", np.zeros(16000), 16000)
    sf.write(tmp / "short.wav", noise[:500, 0], 16000)
    rows = []
    for argv in COMMANDS:
        runs = [timed([exe, *argv], cwd=tmp) for _ in range(repeats)]
        median, done = statistics.median(t for t, _ in runs), runs[-1][1]
        rows.append((argv, median, done.returncode, (done.stderr.strip().splitlines() or [""])[-1]))
        print(f"  {median:.2f} s  exit {done.returncode}  priorsep {shlex.join(argv)}", flush=True)
    return rows


def separation_runs(exe: str, repeats: int, tmp: Path) -> dict:
    """``import torch`` and the default separation, alternately: their times, the search's
    own seconds (summary.json), and the separated files' first line of output."""
    root = Path(__file__).resolve().parents[1]
    bare, whole, search = [], [], []
    for i in range(repeats + 1):  # the first pair warms the file cache, untimed
        t_bare, done = timed([sys.executable, "-c", "import torch"])
        assert done.returncode == 0, done.stderr
        out = tmp / f"sep{i}"
        t_whole, done = timed([exe, *SEPARATE, str(out)], cwd=root)
        assert done.returncode == 0, done.stderr
        if i:
            bare.append(t_bare)
            whole.append(t_whole)
            search.append(json.loads((out / "summary.json").read_text())["search_seconds"])
            print(f"  import torch {t_bare:.2f} s, separation {t_whole:.2f} s (search {search[-1]:.2f} s)", flush=True)
    said = done.stdout.strip().splitlines()[-1].replace(str(out), "OUT")
    return {"bare": bare, "whole": whole, "search": search, "said": said}


def import_evidence(tmp: Path) -> dict:
    """One separation under ``-X importtime``: how many modules it imports, which of them
    are ``torch._dynamo``'s, torch's own import time and the heaviest imports besides
    torch's (top-level, cumulative)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "priorsep.cli", *SEPARATE, str(tmp / "imp")],
                          cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            rows.append((name.rstrip(), int(cumulative)))
    top = [(name.strip(), us) for name, us in rows if not name.startswith("  ")]
    torch_us = sum(us for name, us in top if name == "torch")
    others = sorted(((name, us) for name, us in top if not name.startswith("torch")), key=lambda r: -r[1])
    return {"modules": len(rows), "dynamo": sorted(n.strip() for n, _ in rows if n.strip().startswith("torch._dynamo")),
            "torch_s": torch_us / 1e6, "others": others[:4]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README.md"))
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("priorsep"))
    load_before = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = refusal_rows(exe, args.repeats, Path(tmp))
        sep = separation_runs(exe, args.repeats, Path(tmp))
        evidence = import_evidence(Path(tmp))
    load_after = loadavg()
    lines = ["## Start-up", "",
             f"`{command_line()}` "
             f"({_dt.date.today().isoformat()}; {cpu_model()}; load {load_before} at the start, {load_after} at the "
             f"end): median wall time of {args.repeats} fresh processes.", "",
             "| command | exit | median s | what it says |", "|---|---:|---:|---|"]
    for argv, median, status, said in rows:
        said = said.replace("|", "\\|")[:90] if status else "(help or the list)"
        lines.append(f"| `priorsep {shlex.join(argv)}` | {status} | {median:.2f} | {said} |")
    bare, whole, search = (statistics.median(sep[k]) for k in ("bare", "whole", "search"))
    pairs = sorted(w / b for w, b in zip(sep["whole"], sep["bare"]))
    command = f"priorsep {shlex.join(SEPARATE)} OUT"
    lines += ["", "The whole default separation of the bundled example (best preset: 300 steps, 2 restarts; one "
              f"thread) against a bare `import torch`, measured alternately, {args.repeats} times each:", "",
              "| process | median s | runs (s) |", "|---|---:|---|",
              f"| `python -c \"import torch\"` | {bare:.2f} | "
              f"{', '.join(f'{t:.2f}' for t in sep['bare'])} |",
              f"| `{command}` | {whole:.2f} | {', '.join(f'{t:.2f}' for t in sep['whole'])} |",
              f"| of which the search (`search_seconds` of summary.json) | {search:.2f} | "
              f"{', '.join(f'{t:.2f}' for t in sep['search'])} |", "",
              f"Ratio of the medians: **{whole / bare:.2f}x** a bare `import torch` (pairwise {pairs[0]:.2f}x to "
              f"{pairs[-1]:.2f}x). The search took {search:.2f} s of it; the rest, {whole - search:.2f} s, is the "
              "interpreter, torch's import, priorsep's command line, the priors, reading and writing. It said: "
              f"`{sep['said']}`.", "",
              f"`python -X importtime -m priorsep.cli {shlex.join(SEPARATE)} OUT`: {evidence['modules']} modules "
              f"imported, torch's taking {evidence['torch_s']:.2f} s; `torch._dynamo`: "
              + (f"**imported** ({len(evidence['dynamo'])} modules)" if evidence["dynamo"] else "not imported")
              + "; the heaviest imports besides torch's: "
              + ", ".join(f"`{name}` {us / 1e3:.0f} ms" for name, us in evidence["others"]) + "."]
    publish(args.out, lines, START, END)


if __name__ == "__main__":
    main()
