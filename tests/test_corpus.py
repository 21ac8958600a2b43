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
    assert "holds 1 file (keep.txt) but no index.json" in capsys.readouterr().err
    assert main(["separate", str(root), *STEPS, "--out", str(other), "--force"]) == 2  # not priorsep's to replace
    assert files_under(other) == ["keep.txt"]


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


def test_a_corpus_never_reads_its_own_out_nor_writes_over_its_inputs(corpus, tmp_path, capsys):
    import shutil

    root, _ = corpus
    takes = tmp_path / "takes"
    shutil.copytree(root, takes)
    out = takes / "sep"  # inside the input folder: a rerun must not separate the last run's outputs
    for _ in range(2):
        assert main(["separate", str(takes), *STEPS, "--out", str(out)]) == 0
    assert "6 of 6 tracks separated" in (text := capsys.readouterr().out) and "(6 already done)" in text
    assert not any("sep/sep" in p for p in files_under(takes))
    before = files_under(takes)
    for bad_out in (takes, tmp_path):  # the input folder itself, or a folder holding it
        assert main(["separate", str(takes), *STEPS, "--out", str(bad_out), "--force"]) == 2
        assert "choose an --out outside the inputs" in capsys.readouterr().err
    assert files_under(takes) == before


def test_a_template_that_gives_two_tracks_one_file_is_refused_before_any_work(corpus, tmp_path, capsys):
    root, _ = corpus
    out = tmp_path / "out"
    assert main(["separate", str(root), *STEPS, "--out", str(out), "--filename", "{k}_{source}.{ext}"]) == 2
    assert "--filename '{k}_{source}.{ext}' gives tracks m0 and m1 the same file 0_tone.wav" in \
        capsys.readouterr().err
    assert main(["separate", str(root), "--prior", "tone", "--prior", "tone", "--steps", "1", "--out", str(out),
                 "--filename", "{track}/{source}.{ext}"]) == 2
    assert "gives two sources of track m0 the same file m0/tone.wav" in capsys.readouterr().err
    assert main(["separate", str(root), *STEPS, "--out", str(out), "--filename", "../x/{track}{k}"]) == 2
    assert "outside the output folder" in capsys.readouterr().err
    assert not out.exists()  # refused before the index or any track was written


def test_tracks_at_other_rates_come_back_at_their_rate_and_failures_name_their_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", rng.uniform(-0.5, 0.5, 22050), 44100)
    sf.write(tmp_path / "short.wav", rng.uniform(-0.5, 0.5, 500), 16000)
    out = tmp_path / "out"
    assert main(["separate", str(tmp_path / "a.wav"), str(tmp_path / "short.wav"), *STEPS, "--out", str(out),
                 "--jobs", "4"]) == 1
    captured = capsys.readouterr()
    assert "--jobs 4: 2 tracks to separate, so 2 worker processes" in captured.out
    assert f"{tmp_path / 'short.wav'}: the input has 500 samples" in captured.err
    info = sf.info(out / "a" / "0_tone.wav")
    assert (info.samplerate, info.frames) == (44100, 22050)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_an_interrupted_corpus_keeps_its_finished_tracks(tmp_path, jobs):
    import signal
    import subprocess
    import sys
    import time

    mixtures, _ = prior_mixtures([TonePrior(), BurstPrior()], 4, seed=1)
    for i, m in enumerate(mixtures):
        sf.write(tmp_path / f"t{i}.wav", m.numpy(), 16000, subtype="FLOAT")
    out = tmp_path / "sep"
    cmd = [sys.executable, "-m", "priorsep.cli", "separate", str(tmp_path), "--prior", "tone", "--prior", "burst",
           "--steps", "400", "--restarts", "1", "--out", str(out), "--jobs", str(jobs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    done = proc.stdout.readline()  # the first finished track
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    index = json.loads((out / "index.json").read_text())
    kept = [t["track"] for t in index["tracks"] if t["status"] == "ok"]
    assert proc.returncode == 130 and done.split(":")[0] in kept and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"priorsep: interrupted; {len(kept)} of 4 tracks done and listed in " \
                                           f"{out / 'index.json'}; the same command resumes"
    complete = sorted(t for t in {p.parent.name for p in out.rglob("*.wav")}
                      if all((out / t / f).is_file() for f in ("0_tone.wav", "1_burst.wav")))
    assert sorted(kept) == complete  # every complete track is indexed
    assert not list(out.rglob(".*"))  # no temporary file left
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert f"({len(kept)} already done)" in rerun.stdout, rerun.stdout + rerun.stderr
