"""Separating a corpus (priorsep.separate.corpus and ``priorsep separate`` with many inputs)."""

import json

import numpy as np
import pytest
import soundfile as sf

from priorsep.cli import main
from priorsep.data import prior_mixtures
from priorsep.errors import ConfigError
from priorsep.priors import BurstPrior, TonePrior
from priorsep.separate.corpus import check_template, find_inputs, output_paths

STEPS = ["--prior", "tone", "--prior", "burst", "--steps", "4", "--restarts", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six short tone + burst mixtures (two in a subfolder, one FLAC), a stereo file, a text file."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "sub").mkdir()
    mixtures, _ = prior_mixtures([TonePrior(), BurstPrior()], 6, seed=4)
    for i, m in enumerate(mixtures[:4]):
        sf.write(root / f"m{i}.wav", m.numpy()[:12000], 16000, subtype="FLOAT")
    sf.write(root / "sub" / "m4.flac", mixtures[4].numpy() * 0.5, 16000)
    sf.write(root / "sub" / "m5.wav", mixtures[5].numpy(), 16000, subtype="FLOAT")
    (root / "notes.txt").write_text("not audio")
    bad = root.parent / f"{root.name}-stereo"
    bad.mkdir()
    sf.write(bad / "stereo.wav", np.stack([mixtures[0].numpy()] * 2, axis=1), 16000)
    return root, bad / "stereo.wav"


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_inputs_expand_to_named_tracks(corpus, tmp_path):
    root, stereo = corpus
    tracks = find_inputs([root])
    assert [t.name for t in tracks] == ["m0", "m1", "m2", "m3", "sub/m4", "sub/m5"]  # no notes.txt
    assert [t.name for t in find_inputs([root / "m1.wav"])] == ["m1"]
    assert [t.name for t in find_inputs([str(root / "sub" / "*"), root / "m0.wav"])] == ["m0", "sub/m4", "sub/m5"]
    assert len(find_inputs([root, root / "m0.wav"])) == 6  # a file named twice is one track
    with pytest.raises(ConfigError, match="no such file or folder"):
        find_inputs([tmp_path / "nope.wav"])
    with pytest.raises(ConfigError, match="no audio files"):
        find_inputs([tmp_path])
    with pytest.raises(ConfigError, match="matches no audio file"):
        find_inputs([str(tmp_path / "*.wav")])
    sf.write(tmp_path / "a.wav", np.zeros(100), 16000)
    sf.write(tmp_path / "a.flac", np.zeros(100), 16000)
    with pytest.raises(ConfigError, match="share the track name 'a'"):
        find_inputs([tmp_path])


def test_filename_templates():
    assert output_paths("{track}/{k}_{source}.{ext}", "sub/m4", ["tone", "my drums"]) == \
        ["sub/m4/0_tone.wav", "sub/m4/1_my-drums.wav"]
    assert output_paths("{source}/{track}.{ext}", "a", ["x", "y"], "both") == \
        ["x/a.wav", "y/a.wav", "x/a.generated.wav", "y/a.generated.wav"]
    for bad, message in (("{track}.wav", "needs {k} or {source}"), ("{track}/{name}.wav", "unknown field {name}"),
                         ("{track/{k}.wav", "--filename")):
        with pytest.raises(ConfigError, match=message):
            check_template(bad)
    with pytest.raises(ConfigError, match="outside the output folder"):
        output_paths("../{k}.wav", "a", ["x"])


def test_a_corpus_run_indexes_reports_failures_and_resumes(corpus, tmp_path, capsys):
    root, stereo = corpus
    out = tmp_path / "out"
    assert main(["separate", str(root), str(stereo), *STEPS, "--out", str(out)]) == 1  # one failed
    captured = capsys.readouterr()
    assert "stereo.wav: has 2 channels" in captured.err and "5 of 7 tracks" not in captured.out
    assert "6 of 7 tracks separated" in captured.out and "1 failed" in captured.out
    index = json.loads((out / "index.json").read_text())
    status = {t["track"]: t["status"] for t in index["tracks"]}  # named below the two folders' common parent
    top, bad = root.name, f"{stereo.parent.name}/stereo"
    assert len(status) == 7 and list(status.values()).count("ok") == 6 and status[bad] == "failed"
    assert index["settings"]["search"]["steps"] == 4 and index["settings"]["filename"] == "{track}/{k}_{source}.{ext}"
    assert files_under(out) == sorted(["index.json", *(f"{top}/{t}/{k}_{n}.wav" for t in
                                                       ("m0", "m1", "m2", "m3", "sub/m4", "sub/m5")
                                                       for k, n in enumerate(("tone", "burst")))])
    info = sf.info(out / top / "m0" / "0_tone.wav")
    assert (info.frames, info.samplerate) == (12000, 16000)  # each track keeps its own length
    out = tmp_path / "out2"  # the corpus folder alone: tracks named below it
    assert main(["separate", str(root), *STEPS, "--out", str(out)]) == 0
    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    (out / "sub" / "m4" / "1_burst.wav").unlink()  # an interrupted track
    assert main(["separate", str(root), *STEPS, "--out", str(out)]) == 0
    assert "6 of 6 tracks separated into" in (text := capsys.readouterr().out) and "(5 already done)" in text
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    redone = sorted(p.relative_to(out).as_posix() for p in after if before.get(p) != after[p])
    assert redone == ["sub/m4/0_tone.wav", "sub/m4/1_burst.wav"]  # only the incomplete track
    assert main(["separate", str(root), *STEPS, "--steps", "5", "--out", str(out)]) == 2
    assert "index.json was written with other settings" in capsys.readouterr().err
    assert main(["separate", str(root), *STEPS, "--out", str(out), "--force"]) == 0
    assert all(p.stat().st_mtime_ns != before.get(p) for p in out.rglob("*.wav"))  # --force redoes every track
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["separate", str(root), *STEPS, "--out", str(other)]) == 2
    assert "holds files but no index.json" in capsys.readouterr().err


def test_jobs_give_the_results_of_one_process(corpus, tmp_path):
    root, _ = corpus
    for jobs in (1, 2):
        assert main(["separate", str(root), *STEPS, "--out", str(tmp_path / f"j{jobs}"), "--jobs", str(jobs),
                     "--filename", "{source}/{track}.{ext}"]) == 0
    names = files_under(tmp_path / "j1")
    assert names == files_under(tmp_path / "j2") and "tone/sub/m4.wav" in names
    for name in names:
        if name.endswith(".wav"):
            assert np.array_equal(sf.read(tmp_path / "j1" / name)[0], sf.read(tmp_path / "j2" / name)[0]), name


@pytest.mark.slow
def test_torchrun_shards_the_corpus_and_matches_one_process_bit_for_bit(corpus, tmp_path, torchrun):
    """Two ranks under torchrun: every file is separated exactly once (each rank logs its
    own tracks), rank 0 writes one index of all six, and the WAVs equal a single run's."""
    root, _ = corpus
    proc = torchrun("separate", str(root), *STEPS, "--out", str(tmp_path / "dist"))
    assert proc.stdout.count(" files in ") == 6  # six separations over both ranks (their lines may interleave)
    index = json.loads((tmp_path / "dist" / "index.json").read_text())
    assert [t["track"] for t in index["tracks"]] == ["m0", "m1", "m2", "m3", "sub/m4", "sub/m5"]
    assert [t["rank"] for t in index["tracks"]] == [0, 1, 0, 1, 0, 1]  # each once, by the rank whose shard it is
    assert main(["separate", str(root), *STEPS, "--out", str(tmp_path / "one")]) == 0
    names = files_under(tmp_path / "one")
    assert names == files_under(tmp_path / "dist")
    for name in names:
        if name.endswith(".wav"):
            assert np.array_equal(sf.read(tmp_path / "one" / name)[0], sf.read(tmp_path / "dist" / name)[0]), name


def test_a_corpus_on_cuda_without_a_gpu_is_refused_before_anything_is_written(corpus, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    root, _ = corpus
    assert main(["separate", str(root), *STEPS, "--out", str(tmp_path / "gpu"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU is available here" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "gpu").exists()
