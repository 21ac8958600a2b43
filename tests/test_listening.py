"""The listening page (priorsep.listening) and the --html options that write it."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from priorsep.cli import main
from priorsep.listening import markdown_to_html, page

pytest.importorskip("matplotlib")


def test_the_page_is_self_contained_and_its_audio_decodes_to_the_samples():
    t = np.arange(8000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    loud = 3 * tone  # above full scale: normalised for the player
    html = page("t", [("set A", [("row 1", [("tone", tone), ("loud", loud)])])], rate=16000,
                tables="# Title\n\n| a | b |\n|---|---:|\n| `x` | 1.5 |\n")
    assert html.count("<audio") == 2 and html.count("<img") == 2 and "<table>" in html
    assert not re.search(r"(src|href)=['\"](?!data:)", html)  # nothing outside the file
    assert "<script" not in html
    uris = re.findall(r"src='data:audio/flac;base64,([^']+)'", html)
    back = [sf.read(io.BytesIO(base64.b64decode(u)), dtype="float32")[0] for u in uris]
    assert np.abs(back[0] - tone).max() < 1 / 32767 + 1e-6
    assert np.abs(back[1] - loud / np.abs(loud).max()).max() < 1 / 32767 + 1e-6  # peak 1, not clipped


def test_markdown_tables_and_headings():
    html = markdown_to_html("### digits+drums\n\n| method | n |\n|---|---:|\n| nmf † | 3 |\ntext with `code`")
    assert "<h4>digits+drums</h4>" in html
    assert "<tr><th>method</th><th>n</th></tr><tr><td>nmf †</td><td>3</td></tr>" in html
    assert "<p>text with <code>code</code></p>" in html


@pytest.fixture(scope="module")
def small_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("page")
    argv = ["benchmark", "--only-sets", "digits+drums-paper", "--methods", "template,oracle-irm,priorsep",
            "--prior", "digits=tone", "--prior", "drums=burst", "--limit", "1", "--steps", "3", "--train-clips", "8",
            "--out", str(out / "r.md"), "--html", str(out / "page.html"), "--html-mixtures", "1"]
    assert main(argv) == 0
    return out / "page.html"


def test_benchmark_html_has_the_table_and_every_estimate(small_page):
    html = small_page.read_text()
    assert "<table>" in html and "oracle-irm" in html
    # mixture + 2 true sources, then 2 estimates for template, oracle-irm, priorsep-generated, priorsep-masked
    assert html.count("<audio") == 3 + 2 * 4


def test_separate_html_for_a_corpus(tmp_path, capsys):
    from priorsep.data import prior_mixtures
    from priorsep.priors import BurstPrior, TonePrior

    mixtures, _ = prior_mixtures([TonePrior(), BurstPrior()], 2, seed=1)
    for i, m in enumerate(mixtures):
        sf.write(tmp_path / f"m{i}.wav", m.numpy(), 16000, subtype="FLOAT")
    assert main(["separate", str(tmp_path / "m0.wav"), str(tmp_path / "m1.wav"), "--prior", "tone", "--prior",
                 "burst", "--steps", "2", "--restarts", "1", "--out", str(tmp_path / "sep"),
                 "--html", str(tmp_path / "p.html")]) == 0
    html = (tmp_path / "p.html").read_text()
    assert html.count("<audio") == 2 * 3 and "m1/1_burst.wav" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_headless_chromium_renders_the_page(small_page, tmp_path):
    """A real browser loads the page from disk and draws it: the screenshot is not blank."""
    shot = tmp_path / "shot.png"
    proc = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1200,1400", f"--screenshot={shot}", small_page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.stat().st_size > 20_000, proc.stderr[-500:]
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.std() > 0.05  # text, tables and spectrograms, not an empty page
