import json

import numpy as np
import pytest
import soundfile as sf
import torch

from priorsep.audio import AudioError
from priorsep.cli import main
from priorsep.data.mixtures import RANDOM_DB, load_mixture_set, make_mixture_set, write_manifest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """tones/ and noise/ classes, 5 test clips each (16-bit FLAC, 16 kHz), one in a subfolder."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    t = np.arange(16384) / 16000
    for cls in ("tones", "noise"):
        for i in range(5):
            folder = root / cls / "test" / ("sub" if i == 4 else "")
            folder.mkdir(parents=True, exist_ok=True)
            x = np.sin(2 * np.pi * (200 + 50 * i) * t) if cls == "tones" else rng.standard_normal(16384) / 4
            sf.write(folder / f"{i}.flac", (0.2 + 0.1 * i) * x / np.abs(x).max(), 16000, subtype="PCM_16")
    return root


def test_paper_gains_peak_normalise_and_sum(dataset):
    manifest = make_mixture_set(dataset, ["tones", "noise"], n=8, seed=1)
    built = load_mixture_set(manifest, root=dataset)
    assert built.sources.shape == (8, 2, 16384) and built.mixtures.shape == (8, 16384)
    torch.testing.assert_close(built.sources.abs().amax(-1), torch.ones(8, 2))
    torch.testing.assert_close(built.mixtures, built.sources.sum(1))
    assert built.classes == ["tones", "noise"] and built.ids[3] == "tones+noise-paper-1-0003"
    many = make_mixture_set(dataset, ["tones", "noise"], n=40, seed=1)  # 40 draws from 5 clips a class
    drawn = {s["clip"] for m in many["mixtures"] for s in m["sources"]}
    assert "tones/test/sub/4.flac" in drawn and "noise/test/sub/4.flac" in drawn  # subfolders are found
    assert all(s["db"] == 0.0 for m in manifest["mixtures"] for s in m["sources"])


def test_random_gains_stay_in_range_and_vary(dataset):
    built = load_mixture_set(make_mixture_set(dataset, ["tones", "noise"], n=20, seed=0, gains="random"), dataset)
    peaks_db = 20 * torch.log10(built.sources.abs().amax(-1))
    assert (peaks_db <= 1e-4).all() and (peaks_db >= -RANDOM_DB - 1e-4).all()
    assert peaks_db.std() > 2  # roughly uniform over 12 dB has std 3.5


def test_same_seed_same_set_and_exact_rebuild_from_file(dataset, tmp_path):
    a = make_mixture_set(dataset, ["noise", "tones"], n=10, seed=4)
    assert a == make_mixture_set(dataset, ["noise", "tones"], n=10, seed=4)
    assert a["mixtures"] != make_mixture_set(dataset, ["noise", "tones"], n=10, seed=5)["mixtures"]
    path = write_manifest({**a, "root": str(dataset)}, tmp_path / "m.json")
    first, again = load_mixture_set(path), load_mixture_set(path, limit=3)
    assert torch.equal(first.sources[:3], again.sources) and torch.equal(first.mixtures[:3], again.mixtures)


@pytest.mark.parametrize("classes, error, message", [
    (["tones"], ValueError, "two or more different classes"),
    (["tones", "tones"], ValueError, "two or more different classes"),
    (["tones", "piano"], AudioError, "piano/test: no such folder"),
])
def test_bad_requests_are_refused(dataset, classes, error, message):
    with pytest.raises(error, match=message):
        make_mixture_set(dataset, classes, n=2)


def test_mix_command_writes_a_manifest_that_rebuilds_the_wavs(dataset, tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["mix", "--classes", "tones,noise", "--data", str(dataset), "--n", "3", "--seed", "2",
                 "--gains", "random", "--out", str(out), "--wav"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 3 and manifest["gains"] == "random" and "mix --classes" in manifest["command"]
    built = load_mixture_set(out / "manifest.json")  # the stored root is relative to the manifest
    wav, _ = sf.read(out / "wav" / f"{built.ids[1]}.mixture.wav", dtype="float32")
    np.testing.assert_array_equal(wav, built.mixtures[1].numpy())
    assert main(["mix", "--classes", "tones,drums", "--data", str(dataset), "--out", str(tmp_path / "bad")]) == 2
    assert "drums/test: no such folder" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_mixing_model_peak_normalises_each_source_and_sums():
    import doctest

    from priorsep import mixing
    from priorsep.data.synthetic import prior_mixtures
    from priorsep.priors import load_prior

    assert doctest.testmod(mixing).failed == 0
    x = torch.randn(2, 3, 100, generator=torch.Generator().manual_seed(0)) * torch.tensor([0.01, 1.0, 50.0])[:, None]
    peaks = mixing.peak_normalise(x).abs().amax(dim=-1)
    torch.testing.assert_close(peaks, torch.ones(2, 3))
    assert torch.equal(mixing.peak_normalise(torch.zeros(1, 4)), torch.zeros(1, 4))  # silence stays zero
    mixtures, sources = prior_mixtures([load_prior("tone"), load_prior("burst")], 3, seed=2)
    torch.testing.assert_close(sources.abs().amax(dim=-1), torch.ones(3, 2))
    torch.testing.assert_close(mixtures, sources.sum(dim=1))


def test_the_data_layer_does_not_import_the_search_layer():
    import ast
    from pathlib import Path

    import priorsep.data

    for path in sorted(Path(priorsep.data.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module or ''}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.strip(".").split(".")[-1] == "separate" or "separate." in n for n in names), path.name


def test_the_committed_shifted_set_is_whole_and_apart_from_training():
    """The shifted-domain set: four 40-mixture manifests whose clips all exist with the
    hashes its clips.json records, and none of whose clips is a training or test clip of
    the in-domain set."""
    import hashlib
    import json

    from priorsep.bench import DEFAULT_SETS
    from priorsep.data.build import pcm_sha256, read_clip

    root = DEFAULT_SETS / "shifted"
    in_domain = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (DEFAULT_SETS / "clips").rglob("*.flac")}
    for cls in ("digits", "drums", "piano"):
        record = json.loads((root / cls / "clips.json").read_text())
        assert len(record["clips"]) == 48
        for entry in record["clips"][:12]:
            assert pcm_sha256(read_clip(root / entry["path"])) == entry["pcm_sha256"]
            assert 0.2 <= entry["room"]["rt60_s"] <= 0.8
        assert not {hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / cls).rglob("*.flac")} & in_domain
    for combo in ("digits+drums", "digits+piano", "drums+piano", "digits+drums+piano"):
        m = load_mixture_set(DEFAULT_SETS / f"shifted-{combo}.json")
        assert m.mixtures.shape == (40, 16384) and m.classes == combo.split("+")
        assert torch.allclose(m.sources.abs().amax(-1), torch.ones(40, len(m.classes)), atol=1e-4)  # paper gains
