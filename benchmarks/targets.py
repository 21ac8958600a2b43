"""Issue 14's item 7, tabled from a benchmark run: where the default stands per class.

For every set and class of ``RESULTS.csv`` (``priorsep benchmark``'s CSV), the median SI-SDR
of the default output (``priorsep-masked``) against the two targets:

- **margin**: at least 3 dB above the better of ``template`` and ``nmf-dict``;
- **gap**: at least half of today's distance to ``prior-oracle`` closed, where "today" is
  the default when the issue was filed (``targets_today.csv``: the committed sets from
  RESULTS.csv at a1992d6, all 100 mixtures; the shifted sets from PRIORS.md, 40 mixtures),
  i.e. ``(now - today) / (prior-oracle - today) >= 0.5``.

The score priors' row (``priorsep-score-masked``, posterior sampling) is shown beside the
default with its own margin. ``prior-oracle`` and ``priorsep-score`` are slow methods and
use the first ``--slow-limit`` mixtures of a set (column n), so the gap share is approximate.

    python benchmarks/targets.py --results benchmarks/RESULTS.csv --out benchmarks/TARGETS.md
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

from priorsep.fsutil import write_text
from priorsep.priors.base import BEST_KIND

HERE = Path(__file__).resolve().parent
MIN_GAP = 1.0
"""dB: below this distance between today and ``prior-oracle`` (a 10-mixture median against a
100-mixture one) the share of the gap closed is noise and is shown as n/a."""


def medians(path: Path) -> dict[tuple[str, str, str], tuple[float, int]]:
    """``{(set, method row, class): (median SI-SDR, n)}`` of a benchmark CSV."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["statistic"] == "median":
                out[row["set"], row["method"], row["class"]] = float(row["si_sdr"]), int(row["n"])
    return out


def today(path: Path) -> dict[tuple[str, str], float]:
    with open(path, newline="") as f:
        return {(r["set"], r["class"]): float(r["si_sdr"]) for r in csv.DictReader(f)}


def fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.1f}" if signed else f"{x:.1f}"


def table(results: dict, base: dict[tuple[str, str], float]) -> tuple[str, dict]:
    classes: dict[str, list[str]] = defaultdict(list)  # per set, in the CSV's order
    for s, _, c in results:
        if c not in classes[s]:
            classes[s].append(c)
    sets = sorted(classes, key=lambda s: (s.startswith("shifted"), s.count("+"), s))
    lines = ["| set | class | better of template, nmf-dict | today | default now (n) | margin (target +3) "
             "| prior-oracle (n) | share of today's gap closed (target 50 %) | both met "
             "| score priors (n) | their margin |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    counts: dict[str, int] = defaultdict(int)
    for s in sets:
        for c in classes[s]:
            now, tmpl, nmf, oracle, score = (results.get((s, m, c)) for m in (
                "priorsep-masked", "template", "nmf-dict", "prior-oracle", "priorsep-score-masked"))
            if now is None or tmpl is None or nmf is None:
                continue
            better = max(tmpl[0], nmf[0])
            margin = now[0] - better
            was = base.get((s, c))
            share = None
            if oracle is not None and was is not None and oracle[0] - was >= MIN_GAP:
                share = (now[0] - was) / (oracle[0] - was)
            margin_met = margin >= 3.0
            gap_met = share is not None and share >= 0.5
            counts["rows"] += 1
            counts["margin"] += margin_met
            counts["gap"] += gap_met
            counts["no gap"] += share is None
            counts["both"] += margin_met and gap_met
            counts["score margin"] += score is not None and score[0] - better >= 3.0
            short = "" if margin_met else f" (short {3.0 - margin:.1f})"
            lines.append(
                f"| {s} | {c} | {fmt(better)} | {fmt(was)} | {fmt(now[0])} ({now[1]}) | {fmt(margin, True)}{short} "
                f"| {fmt(oracle[0]) + f' ({oracle[1]})' if oracle else '-'} "
                f"| {'n/a' if share is None else f'{100 * share:.0f} %'} | {'yes' if margin_met and gap_met else 'no'} "
                f"| {fmt(score[0]) + f' ({score[1]})' if score else '-'} "
                f"| {fmt(score[0] - better, True) if score else '-'} |")
    return "\n".join(lines), counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.csv")
    ap.add_argument("--today", type=Path, default=HERE / "targets_today.csv")
    ap.add_argument("--out", type=Path, default=HERE / "TARGETS.md")
    args = ap.parse_args()
    body, counts = table(medians(args.results), today(args.today))
    command = " ".join(["python", "benchmarks/targets.py", *sys.argv[1:]])
    loaded = "; ".join(f"{' with '.join(sorted(pair))}: the `<class>{suffix}` priors"  # from best_bundled's table
                       for pair, suffix in BEST_KIND.items())
    text = (f"# Issue 14, item 7: the targets per class\n\nMade by `{command}` from the benchmark's CSV "
            f"`{args.results.name}` (its header in RESULTS.md says how it was run); "
            f"\"today\" from `{args.today.name}`. Median SI-SDR (dB) of the default output (`priorsep-masked`); "
            f"the score priors' column is `priorsep-score-masked` (posterior sampling), for comparison.\n\n"
            f"{body}\n\nMargin met on {counts['margin']} of {counts['rows']} columns, the gap share on "
            f"{counts['gap']}, both on {counts['both']}; the gap share is n/a on {counts['no gap']} "
            f"(prior-oracle within {MIN_GAP:.0f} dB of today, or below it: the first 10 mixtures against all). "
            f"The score priors meet the margin on {counts['score margin']}. What `priorsep separate --classes` "
            f"loads differs per pair ({loaded}; the default priors elsewhere); benchmarks/PRIORS.md, "
            f"\"Item 7 with the priors `--classes` loads\", tallies the targets for it.\n")
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
