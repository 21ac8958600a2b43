"""Dataset builders (priorsep.data.build): small builds of each class, twice.

The class tests need the Debian and PyPI packages of scripts/build_data.sh. Without them
they are skipped, except under CI (the environment variable CI set), where the
packages are installed and their absence is a failure.
"""

import json
import os
import shutil
import types

import numpy as np
import pytest
import soundfile as sf

from priorsep.constants import CLIP_LENGTH
from priorsep.data import build as B

N_TRAIN, N_TEST = 6, 3
SPLIT_KEY = {"digits": "voice", "drums": "kit", "piano": "group"}  # what whole units are held out


def _require(cls: str) -> None:
    try:
        B.check_requirements(cls)
    except B.DataBuildError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs the data packages, but: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``built(cls)`` -> (out folder, manifest, manifest of a second build elsewhere),
    each class built once per test module."""
    done = {}

    def get(cls):
        _require(cls)
        if cls not in done:
            outs = [tmp_path_factory.mktemp(f"{cls}-{k}") for k in "ab"]
            for out in outs:
                summary = B.build([cls], out, n_train=N_TRAIN, n_test=N_TEST, progress=False)
                assert summary[cls]["train"] == N_TRAIN and summary[cls]["test"] == N_TEST
            done[cls] = (outs[0], *(B.read_manifest(out / cls) for out in outs))
        return done[cls]

    return get


@pytest.mark.parametrize("cls", B.CLASSES)
def test_builds_are_deterministic_and_well_formed(built, cls):
    out, manifest, again = built(cls)
    assert [c["sha256"] for c in manifest["clips"]] == [c["sha256"] for c in again["clips"]]
    assert manifest["counts"] == {"train": N_TRAIN, "test": N_TEST}
    assert [c["split"] for c in manifest["clips"]] == ["train"] * N_TRAIN + ["test"] * N_TEST
    assert B.verify(out, cls) == []  # files exist, hashes of their int16 samples match
    for rec in manifest["clips"]:
        info = sf.info(str(out / cls / rec["path"]))
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, CLIP_LENGTH)
        assert (info.format, info.subtype) == ("FLAC", "PCM_16")
        pcm = B.read_clip(out / cls / rec["path"]).astype(np.float64) / 32767
        assert abs(np.abs(pcm).max() - rec["params"]["peak"]) < 1e-3  # not silent: peak-normalised as recorded
        assert np.sqrt(np.mean(pcm**2)) > 1e-3
        assert {"gain", "peak"} <= set(rec["params"]) and len(rec["seed"]) == 5
    assert all(v for v in manifest["packages"]["debian"].values())  # dpkg versions recorded
    assert manifest["licence"]["summary"] and manifest["build"]["builder"]
    def refuse(constant):
        raise AssertionError(f"the manifest holds {constant}, which strict JSON has no literal for")

    json.loads((out / cls / "manifest.json").read_text(encoding="utf-8"), parse_constant=refuse)  # strict JSON


@pytest.mark.parametrize("cls", B.CLASSES)
def test_test_sources_are_held_out(built, cls):
    _, manifest, _ = built(cls)
    train, test = set(manifest["sources"]["train"]), set(manifest["sources"]["test"])
    assert train and test and not train & test
    used = {s: {c["source"][SPLIT_KEY[cls]] for c in manifest["clips"] if c["split"] == s} for s in B.SPLITS}
    assert used["train"] and used["test"] and not used["train"] & used["test"]


def test_digits_are_placed_at_varying_offsets(built):
    out, manifest, _ = built("digits")
    offsets = [c["params"]["offset"] for c in manifest["clips"]]
    assert len(set(offsets)) > len(offsets) // 2
    for rec in manifest["clips"]:
        p = rec["params"]
        assert 0 <= p["offset"] and p["offset"] + p["word_samples"] <= CLIP_LENGTH  # the whole word fits
        assert (
            rec["source"]["word"]
            == ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")[rec["index"] % 10]
        )
        if p["noise_db"] is None:  # silence outside the word
            pcm = B.read_clip(out / "digits" / rec["path"])
            assert not pcm[: p["offset"]].any() and not pcm[p["offset"] + p["word_samples"] :].any()


def test_drum_hits_start_at_the_clip_start(built):
    out, manifest, _ = built("drums")
    for rec in manifest["clips"]:
        x = np.abs(B.read_clip(out / "drums" / rec["path"]).astype(np.float64))
        assert np.argmax(x >= 0.05 * x.max()) <= 2 * 16  # onset within 2 ms


def test_drums_small_build_is_a_prefix_and_seed_matters(built, tmp_path):
    _, manifest, _ = built("drums")
    B.build(["drums"], tmp_path / "a", n_train=3, n_test=1, progress=False)
    B.build(["drums"], tmp_path / "b", n_train=3, n_test=1, seed=1, progress=False)
    small, other = B.read_manifest(tmp_path / "a" / "drums"), B.read_manifest(tmp_path / "b" / "drums")
    full = {(c["split"], c["index"]): c["sha256"] for c in manifest["clips"]}
    assert all(full[(c["split"], c["index"])] == c["sha256"] for c in small["clips"])
    assert [c["sha256"] for c in small["clips"]] != [c["sha256"] for c in other["clips"]]


def test_missing_program_names_the_apt_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no flite, festival, espeak-ng on PATH
    with pytest.raises(B.DataBuildError, match=r"apt-get install -y --no-install-recommends flite festival espeak-ng"):
        B.check_requirements("digits")
    with pytest.raises(B.DataBuildError, match="apt-get"):
        B.build(["digits"], tmp_path / "out", n_train=1, n_test=1, progress=False)
    assert not (tmp_path / "out").exists()  # refused before doing anything


def test_missing_files_and_python_packages_name_their_install_commands(monkeypatch):
    monkeypatch.setattr(B, "_present", lambda need: False)
    with pytest.raises(
        B.DataBuildError, match="apt-get install -y --no-install-recommends hydrogen-drumkits hydrogen-data"
    ):
        B.check_requirements("drums")
    real = B.importlib.util.find_spec
    monkeypatch.setattr(B.importlib.util, "find_spec", lambda name, *a: None if name == "music21" else real(name, *a))
    with pytest.raises(B.DataBuildError, match=r"pip install music21"):
        B.check_requirements("piano")
    with pytest.raises(B.DataBuildError, match="unknown class"):
        B.check_requirements("violin")


def _fake_builder(n_ok: int | None = None, value: float = 0.5):
    """A builder of sine clips that fails after ``n_ok`` clips (never if None)."""

    def clips(split, n, seed, cache):
        for i in range(n):
            if n_ok is not None and i >= n_ok:
                raise RuntimeError("interrupted")
            x = (value * np.sin(np.arange(CLIP_LENGTH) * (0.01 + 0.001 * i))).astype(np.float32)
            yield B.Clip(x, {"tone": i}, {"gain": 1.0, "peak": value}, B.rng_entropy(seed, "drums", split, 0, i))

    return types.SimpleNamespace(
        REQUIREMENTS=B.Requirements(debian={}),
        clips=clips,
        sources=lambda: {"train": ["a"], "test": ["b"]},
        parameters=dict,
        licence=lambda: {"summary": "test"},
    )


def test_interrupted_build_leaves_the_previous_build_intact(monkeypatch, tmp_path):
    monkeypatch.setattr(B, "builder", lambda cls: _fake_builder())
    B.build(["drums"], tmp_path, n_train=4, n_test=2, progress=False)
    before = (tmp_path / "drums" / "manifest.json").read_bytes()
    monkeypatch.setattr(B, "builder", lambda cls: _fake_builder(n_ok=3, value=0.7))
    with pytest.raises(RuntimeError, match="interrupted"):
        B.build(["drums"], tmp_path, n_train=6, n_test=2, progress=False)
    assert (tmp_path / "drums" / "manifest.json").read_bytes() == before
    assert B.verify(tmp_path, "drums") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache", "drums"]  # no staging left behind
    # a clip changed behind the manifest's back is reported
    changed = tmp_path / "drums" / "train" / "000001.flac"
    sf.write(str(changed), np.zeros(CLIP_LENGTH, np.int16), 16000, subtype="PCM_16")
    assert B.verify(tmp_path, "drums") == ["train/000001.flac: sha256 differs from the manifest"]
    shutil.rmtree(tmp_path / "drums" / "test")
    assert len(B.verify(tmp_path, "drums")) == 3


def test_data_command_builds_verifies_and_reports_missing_tools(tmp_path, capsys, monkeypatch):
    from priorsep.cli import main

    _require("drums")
    out = tmp_path / "data"
    assert main(["data", "build", "drums", "--out", str(out), "--n-train", "2", "--n-test", "1"]) == 0
    assert '"train": 2' in capsys.readouterr().out
    assert main(["data", "verify", "drums", "--out", str(out)]) == 0
    clip = next((out / "drums" / "train").glob("*.flac"))
    data, rate = sf.read(clip, dtype="int16")
    sf.write(clip, np.roll(data, 1), rate, subtype="PCM_16")  # tamper with one clip
    assert main(["data", "verify", "drums", "--out", str(out)]) == 1
    assert "drums: 1 problems" in capsys.readouterr().out
    monkeypatch.setattr(B, "_present", lambda need: False)
    assert main(["data", "build", "digits", "--out", str(tmp_path / "x")]) == 2
    assert "apt-get install" in capsys.readouterr().err
