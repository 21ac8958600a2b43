"""``benchmarks/targets.py``: issue 14's item 7 tabled from a benchmark CSV, on hand numbers."""

import csv
import importlib.util
from pathlib import Path

TARGETS = Path(__file__).resolve().parents[1] / "benchmarks" / "targets.py"
FIELDS = ["set", "method", "class", "statistic", "n", "si_sdr"]


def load():
    spec = importlib.util.spec_from_file_location("targets", TARGETS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for s, m, c, v, n in rows:
            w.writerow({"set": s, "method": m, "class": c, "statistic": "median", "n": n, "si_sdr": v})
            w.writerow({"set": s, "method": m, "class": c, "statistic": "mean", "n": n, "si_sdr": -99})


def test_margin_gap_share_and_the_noise_rule(tmp_path):
    targets = load()
    rows = []
    for c, now, tmpl, nmf, oracle in (("a", 12.0, 8.0, 7.0, 14.0),   # margin +4, share (12-10)/(14-10) = 50 %
                                      ("b", 9.0, 5.0, 6.5, 10.5)):  # margin +2.5 (short 0.5); oracle 0.5 dB above today
        rows += [("a+b", "priorsep-masked", c, now, 100), ("a+b", "template", c, tmpl, 100),
                 ("a+b", "nmf-dict", c, nmf, 100), ("a+b", "prior-oracle", c, oracle, 10)]
    rows.append(("a+b", "priorsep-score-masked", "a", 11.5, 10))
    write_csv(tmp_path / "r.csv", rows)
    base = {("a+b", "a"): 10.0, ("a+b", "b"): 10.0}
    text, counts = targets.table(targets.medians(tmp_path / "r.csv"), base)
    head, _, *rows = (line.strip("|").split("|") for line in text.splitlines())
    cells = {row[1].strip(): dict(zip((h.strip() for h in head), (c.strip() for c in row))) for row in rows}
    a, b = cells["a"], cells["b"]
    numbers = [float(c.split()[0]) for c in a.values() if c[:1] in "+-0123456789" and c not in ("-",)]
    assert numbers == [8.0, 10.0, 12.0, 4.0, 14.0, 50.0, 11.5, 3.5]  # better baseline, base, now, margin, ...
    assert "short 0.5" in " ".join(b.values()) and list(a.values()).count("yes") == 1
    assert list(b.values())[-4:] == ["n/a", "no", "-", "-"]  # oracle within 2 dB of today: no gap share
    assert dict(counts) == {"rows": 2, "margin": 1, "gap": 1, "no gap": 1, "both": 1, "score margin": 1}
