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
from priorsep.listening import CMAP, markdown_to_html, page, page_floor

pytest.importorskip("matplotlib")


def test_the_page_is_self_contained_and_its_audio_decodes_to_the_samples():
    t = np.arange(8000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    loud = 3 * tone  # above full scale: normalised for the player
    html = page("t", [("set A", [("row 1", [("tone", tone), ("loud", loud)])])], rate=16000,
                tables="# Title\n\n| a | b |\n|---|---:|\n| `x` | 1.5 |\n")
    assert html.count("<audio") == 2 and html.count("<img") == 2 and "<table>" in html
    assert not re.search(r"(src|href)=['\"](?!data:)", html)  # nothing outside the file
    rest = re.sub(r"data:[^'\"]+", "", html)  # the page without its embedded files
    assert "<script" not in rest and "http" not in rest and "url(" not in rest and "@import" not in rest
    uris = re.findall(r"src='data:audio/flac;base64,([^']+)'", html)
    back = [sf.read(io.BytesIO(base64.b64decode(u)), dtype="float32")[0] for u in uris]
    assert np.abs(back[0] - tone).max() < 1 / 32767 + 1e-6
    assert np.abs(back[1] - loud / np.abs(loud).max()).max() < 1 / 32767 + 1e-6  # peak 1, not clipped


def _pngs(html):
    """The page's spectrograms, decoded: (width, height) from each PNG header, and the pixels."""
    from matplotlib.image import imread

    blobs = [base64.b64decode(u) for u in re.findall(r"src='data:image/png;base64,([^']+)'", html)]
    assert all(b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR" for b in blobs)
    sizes = [(int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")) for b in blobs]
    return sizes, [imread(io.BytesIO(b))[..., :3] for b in blobs]


def _scales(html):
    """Each section's colour scale (floor, top) in dB, as the page states it."""
    found = re.findall(r"from (-?[\d.]+) dB \(the page.s floor\) to (-?[\d.]+) dB", html)
    return [(float(a), float(b)) for a, b in found]


def _tone(amplitude, n=16000, seed=0):
    t = np.arange(n) / 16000
    noise = np.random.default_rng(seed).normal(0, 0.5, n)  # broadband: fills the plot
    return (amplitude * (np.sin(2 * np.pi * 440 * t) + noise) * np.exp(-3 * t)).astype(np.float32)


def test_spectrograms_are_wide_with_one_scale_per_mixture_and_a_page_floor():
    loud, soft = _tone(0.5), _tone(0.005)  # the second mixture 40 dB below the first
    html = page("t", [("loud mixture", [("mixture", [("mixture", loud)]), ("estimates", [("half", loud / 2)])]),
                      ("soft mixture", [("mixture", [("mixture", soft)])])], rate=16000)
    sizes, pixels = _pngs(html)
    assert len(sizes) == 3 and all(w >= 600 and h >= 150 for w, h in sizes)
    assert re.search(r"\.clip img\{width:100%;min-width:600px", html)  # displayed at least as wide
    (floor_a, top_a), (floor_b, top_b) = _scales(html)
    assert floor_a == floor_b  # one floor for the page ...
    assert abs((top_a - top_b) - 40.0) < 0.2  # ... and each mixture's own top: 20 log10(100)
    assert floor_a == pytest.approx(page_floor([top_a, top_a - 6.02, top_b]), abs=0.1)
    # the estimate at -6 dB shares its mixture's scale: drawn darker, not normalised to its own peak
    assert np.abs(pixels[0] - pixels[1]).max() > 0.1
    assert pixels[1].mean() < pixels[0].mean()


def test_a_quiet_estimate_is_drawn_in_colour_above_the_floor():
    from matplotlib import colormaps

    mixture = _tone(0.5)
    html = page("t", [("m", [("mixture", [("mixture", mixture)]),
                             ("estimates", [("quiet", mixture / 1000), ("silent", np.zeros_like(mixture))])])],
                rate=16000)
    _, (_, quiet, silent) = _pngs(html)
    (floor, top), = _scales(html)
    assert top - floor >= 60 + 30 - 0.1  # the quiet clip's peak (60 dB down) keeps 30 dB above the floor
    floor_rgb = np.asarray(colormaps[CMAP](0.0)[:3])
    assert floor_rgb.max() > 0.2  # the floor colour is not black
    at_floor = np.abs(silent - floor_rgb).max(axis=-1) < 0.02
    assert at_floor.sum() > 50_000  # the silent clip: its whole plot at the floor colour
    drawn = np.abs(quiet - silent).max(axis=-1) > 0.02  # where the quiet clip differs: inside the plot
    assert drawn.sum() > 5_000 and at_floor[drawn].mean() > 0.99  # (but for the plot's antialiased edge)
    above = np.abs(quiet[drawn] - floor_rgb).max(axis=-1)
    assert above.max() > 0.25 and (above > 0.1).sum() > 2_000  # visibly above the floor colour


def test_metrics_are_printed_beside_their_clip():
    x = _tone(0.5, n=1600)
    html = page("t", [("m", [("estimates", [("digits", x, {"si_sdr": 32.46, "sdr": 31.04}), ("drums", x)])])],
                rate=16000, spectrograms=False)
    clips = re.findall(r"<div class='clip'>.*?</audio></div>", html)
    assert len(clips) == 2
    assert "<b>digits</b><span class='metrics'>SI-SDR 32.5 dB · SDR 31.0 dB</span>" in clips[0]
    assert "metrics" not in clips[1]  # no references given: nothing printed


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
    assert len(_scales(html)) == 1  # one mixture: one section, one colour scale
    # each estimate's SI-SDR beside it, the same as the results table's (a median over one mixture)
    table = (small_page.parent / "r.md").read_text()
    for row in ("template", "oracle-irm", "priorsep-masked"):
        cells = next(line for line in table.splitlines() if line.startswith(f"| {row} "))
        expected = [float(c.split()[0]) for c in cells.split("|")[3:4] + cells.split("|")[8:9]]  # digits, drums
        section = html[html.index(f"<h3>{row}</h3>"):]
        shown = [float(v) for v in re.findall(r"SI-SDR (-?[\d.]+) dB", section)[:2]]
        assert np.allclose(shown, expected, atol=0.051), (row, shown, expected)


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
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--no-first-run", "--disable-quic", "--window-size=1400,1400", f"--screenshot={shot}",
                           small_page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.stat().st_size > 20_000, proc.stderr[-500:]
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.std() > 0.05  # text, tables and spectrograms, not an empty page
