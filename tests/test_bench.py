"""The benchmark end to end on two of the committed sets (``--limit 2``; one with two
sources, one with three), and its reporting."""

import csv

import pytest

from priorsep import bench
from priorsep.cli import main

pytestmark = pytest.mark.slow  # the module runs a small benchmark (about a minute)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    argv = ["benchmark", "--limit", "2", "--methods", "all", "--out", str(out),
            "--only-sets", "digits+drums-paper,digits+drums+piano-random",
            "--prior", "digits=tone", "--prior", "drums=burst", "--prior", "piano=tone",
            "--paper-prior", "digits=tone", "--paper-prior", "drums=burst", "--paper-prior", "piano=tone",
            "--steps", "5", "--paper-steps", "5", "--dap-steps", "10", "--train-clips", "16"]
    assert main(argv) == 0
    return out, argv


def test_every_method_and_set_is_in_the_table(results):
    out, _ = results
    text = out.read_text()
    for name in ("digits+drums-paper", "digits+drums+piano-random"):
        assert f"### {name}" in text
    assert "### drums+piano-paper" not in text
    for row in ("nmf †", "fastica †", "pca †", "kernelpca †", "nmf-dict", "template", "dap †", "oracle-irm",
                "mixture", "paper-protocol †", "priorsep-generated", "priorsep-masked",
                "priorsep-paper-generated", "priorsep-paper-masked", "priorsep-paper-recon-masked",
                "priorsep-score-masked"):  # the last two: the bundled -wavegan-recon and -score priors
        assert f"| {row} | 2 |" in text, row
    assert "Command: `priorsep benchmark --limit 2" in text
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_csv_holds_medians_and_means_and_the_oracle_leads(results):
    out, _ = results
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert {r["statistic"] for r in rows} == {"median", "mean"}
    first = [r for r in rows if r["set"] == "digits+drums-paper" and r["statistic"] == "mean"]
    by = {(r["method"], r["class"]): float(r["si_sdr"]) for r in first}
    for cls in ("digits", "drums"):
        assert by[("oracle-irm", cls)] > by[("mixture", cls)] + 3
        assert by[("oracle-irm", cls)] >= max(v for (m, c), v in by.items() if c == cls) - 1e-6


def test_a_rerun_comes_from_the_cache(results, capsys):
    out, argv = results
    cache = out.parent / ".bench-cache"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.json")}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.json")} == before  # nothing recomputed
    # one set alone (no piano, so no piano priors) finds the results of the run of both sets
    alone = [a if a != "digits+drums-paper,digits+drums+piano-random" else "digits+drums-paper" for a in argv]
    alone[alone.index("--out") + 1] = str(out.with_name("alone.md"))
    for flag in ("--prior", "--paper-prior"):
        i = alone.index("piano=tone")
        assert alone[i - 1] == flag
        del alone[i - 1:i + 1]
    assert main([*alone, "--cache", str(cache)]) == 0
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.json")} == before
    capsys.readouterr()
    assert main(["benchmark", "--methods", "nmf,nope", "--out", str(out)]) == 2
    assert "unknown method(s) ['nope']" in capsys.readouterr().err


def test_an_out_under_a_file_is_refused_before_any_method_runs(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["benchmark", "--methods", "nmf", "--out", str(tmp_path / "file" / "R.md")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path / 'file'} is not a folder")
    assert not (tmp_path / ".bench-cache").exists()


def test_jobs_split_the_sets_over_processes_that_share_the_cache(tmp_path):
    out = tmp_path / "R.md"
    assert main(["--threads", "1", "benchmark", "--jobs", "2", "--limit", "1", "--methods", "mixture,oracle-irm",
                 "--only-sets", "digits+drums-paper,drums+piano-random", "--out", str(out)]) == 0
    text = out.read_text()
    assert "### digits+drums-paper" in text and "### drums+piano-random" in text and "| oracle-irm | 1 |" in text
    cached = sorted(p.parent.parent.name for p in (tmp_path / ".bench-cache").rglob("*.json"))
    assert cached == ["digits+drums-paper"] * 2 + ["drums+piano-random"] * 2


def test_the_cache_key_hashes_settings_and_a_bumped_code_version():
    """The same name, settings and version give the same key; a different setting, a
    different version, or another prior of a class in the set give another; a prior of a
    class outside the set does not count."""
    def method(settings=None, **kw):
        return bench.Method("m", run=lambda *a: {},
                            settings=settings or {"steps": 5, "priors": {"digits": "a", "piano": "b"}}, **kw)

    classes = ["digits", "drums"]
    key = method().key(classes)
    assert key.startswith("m-") and key == method().key(classes) == method(version=1).key(classes)
    assert method(version=2).key(classes) == method(version=2).key(classes)
    assert len({key, method(version=2).key(classes), method(version=3).key(classes)}) == 3
    assert method({"steps": 6, "priors": {"digits": "a", "piano": "b"}}).key(classes) != key
    assert method({"steps": 5, "priors": {"digits": "c", "piano": "b"}}).key(classes) != key
    assert method({"steps": 5, "priors": {"digits": "a", "piano": "other"}}).key(classes) == key
    assert method({"steps": 5, "priors": {"digits": "a", "piano": "other"}}).key(None) != method().key(None)
