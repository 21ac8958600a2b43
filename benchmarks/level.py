"""How the search's level normalisation (``SearchConfig.level``) affects separation.

For the first ``--n`` mixtures of each committed set, the default search with the bundled
priors is run with each ``--levels`` value (the peak each mixture is scaled to before the
search; ``none``: searched as it comes) and, to show level independence, with the mixture
multiplied by each ``--gains`` value. The table gives the median SI-SDR of the masked
(default) output per class, in dB.

Writes/replaces the section between ``<!-- level:start -->`` and ``<!-- level:end -->`` in
``--out`` (default benchmarks/README.md) and prints it.

    .venv/bin/python benchmarks/level.py                   # the defaults below
    .venv/bin/python benchmarks/level.py --n 2 --sets digits+drums-paper --out /tmp/x.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from priorsep import Separator, load_prior
from priorsep.data import load_mixture_set
from priorsep.metrics import si_sdr

from _report import publish, table_section  # benchmarks/_report.py

START = "<!-- level:start -->"
END = "<!-- level:end -->"
SETS = Path(__file__).parent / "sets"


def level_arg(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def medians(mset, priors, n: int, level: float | None, gain: float) -> dict[str, float]:
    scores: dict[str, list[float]] = {c: [] for c in mset.classes}
    separator = Separator(priors, level=level)
    for i in range(min(n, mset.mixtures.shape[0])):
        est = separator.separate(mset.mixtures[i] * gain).masked / gain
        for k, cls in enumerate(mset.classes):
            scores[cls].append(si_sdr(mset.sources[i, k].numpy(), est[k].numpy()))
    return {c: float(np.median(v)) for c, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["digits+drums-paper", "digits+piano-random",
                                                      "drums+piano-paper", "digits+drums+piano-random"])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--levels", type=level_arg, nargs="+", default=[None, 0.5, 1.0, 2.0])
    parser.add_argument("--gains", type=float, nargs="+", default=[0.01, 100.0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [(f"level {lv if lv is not None else 'none'}", lv, 1.0) for lv in args.levels]
    runs += [(f"level 1 (default), input x {g:g}", 1.0, g) for g in args.gains]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.sets:
        mset = load_mixture_set(SETS / f"{name}.json")
        priors = [load_prior(c) for c in mset.classes]
        for label, level, gain in runs:
            table.setdefault(label, {})[name] = medians(mset, priors, args.n, level, gain)
            print(f"  {name:<28} {label:<32} {table[label][name]}", flush=True)
    cols = [(s, c) for s in args.sets for c in table[runs[0][0]][s]]
    what = (f"Median SI-SDR (dB) of the masked output, first {args.n} mixtures of each set, default search with the "
            "bundled priors; `level`: the peak each mixture is scaled to before the search (`none`: as it comes).")
    rows = [[label, *(f"{table[label][s][c]:.2f}" for s, c in cols)] for label, _, _ in runs]
    lines = table_section("Level normalisation", what, ["search", *(f"{s} {c}" for s, c in cols)], rows)
    publish(args.out, lines, START, END)


if __name__ == "__main__":
    main()
