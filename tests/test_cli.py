import json

import numpy as np
import pytest
import soundfile as sf

from priorsep import save_prior
from priorsep.cli import main
from priorsep.data import builtin_example
from priorsep.priors import TonePrior, bundled_priors


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    root = tmp_path_factory.mktemp("example")
    _, mixture, sources = builtin_example(0)
    sf.write(root / "mix.wav", mixture.numpy(), 16000, subtype="FLOAT")
    for k, name in enumerate(("tone", "burst")):
        sf.write(root / f"true_{name}.wav", sources[k].numpy(), 16000, subtype="FLOAT")
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_separate_writes_one_wav_per_prior_and_a_summary(example, tmp_path, capsys):
    out = tmp_path / "sep"
    code, stdout, _ = run(capsys, "separate", example / "mix.wav", "--prior", "tone", "--prior", "burst",
                          "--out", out, "--preset", "paper", "--steps", "150", "--output", "both")
    assert code == 0, stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "0_tone.generated.wav", "0_tone.wav", "1_burst.generated.wav", "1_burst.wav", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["steps"] == 150 and summary["output"] == "both"
    assert set(summary["final_losses"]) == {"ms", "sd", "mc", "fc", "total"}
    mix = sf.read(example / "mix.wav")[0]
    est = [sf.read(out / f)[0] for f in ("0_tone.wav", "1_burst.wav")]
    np.testing.assert_allclose(est[0] + est[1], mix, atol=1e-5)  # masked output is mixture-consistent

    code, stdout, _ = run(capsys, "evaluate", "--references", example / "true_tone.wav", example / "true_burst.wav",
                          "--estimates", out / "0_tone.wav", out / "1_burst.wav", "--json")
    assert code == 0
    scores = json.loads(stdout)
    assert [s["estimate"].rsplit("/", 1)[-1] for s in scores] == ["0_tone.wav", "1_burst.wav"]
    assert scores[0]["si_sdr"] > 10  # the built-in example separates cleanly
    code, table, _ = run(capsys, "evaluate", "--references", example / "true_tone.wav",
                         "--estimates", out / "0_tone.wav")
    assert code == 0 and "si_sdr" in table.splitlines()[0] and table.splitlines()[1].startswith("0_tone")


def test_generated_output_and_saved_prior_files(example, tmp_path, capsys):
    prior_file = save_prior(TonePrior(), tmp_path / "mytone.safetensors")
    out = tmp_path / "gen"
    code, _, _ = run(capsys, "separate", example / "mix.wav", "--prior", prior_file, "--prior", "burst",
                     "--out", out, "--preset", "paper", "--steps", "2", "--output", "generated", "--plot")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["0_tone.wav", "1_burst.wav", "spectrograms.png", "summary.json"]
    assert np.abs(sf.read(out / "0_tone.wav")[0]).max() == pytest.approx(1.0, abs=1e-5)  # peak-normalised


def _stereo(p):
    sf.write(p, np.random.default_rng(0).normal(size=(16000, 2)) * 0.1, 16000)


def _noise(n):
    return np.random.default_rng(1).uniform(-0.1, 0.1, n)


def _truncated(p):
    sf.write(p, _noise(16000), 16000, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[:5000])


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        (lambda p: None, [], "no such file"),
        (lambda p: p.write_text("hello"), [], "not an audio file"),
        (_stereo, [], "2 channels; separation needs mono: choose one with --channel N"),
        (lambda p: sf.write(p, np.zeros(16000), 16000), [], "is silent"),
        (lambda p: sf.write(p, np.r_[np.ones(10) * 0.1, np.nan], 16000, subtype="FLOAT"), [], "NaN or infinite"),
        (lambda p: sf.write(p, np.ones(16000) * 0.1, 16000), [], "is a constant 0.1 (a DC offset, no sound)"),
        (_truncated, [], "truncated: its header declares 16000 samples, the file holds 2478 (85 % missing)"),
        (lambda p: sf.write(p, _noise(800), 16000), [], "has 800 samples (50 ms); the priors need at least 1024"),
        (lambda p: sf.write(p, _noise(44100), 44100), ["--no-resample"],
         "44100 Hz but the priors need 16000 Hz"),
        (lambda p: sf.write(p, _noise(16000), 16000), ["--only-one"], "at least two priors"),
        (lambda p: sf.write(p, _noise(16000), 16000), ["--prior", "nope"], "no built-in prior named 'nope'"),
        (lambda p: sf.write(p, _noise(16000), 16000), ["--prior", "RATE8K"], "sample rates differ"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys, setup, extra, message):
    mix = tmp_path / "in.wav"
    setup(mix)
    priors = ["--prior", "tone", "--prior", "burst"]
    if "--only-one" in extra:
        priors, extra = ["--prior", "tone"], []
    if "RATE8K" in extra:
        extra = ["--prior", str(save_prior(TonePrior(sample_rate=8000), tmp_path / "t8k.safetensors"))]
        priors = ["--prior", "burst"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(capsys, "separate", mix, *priors, *extra, "--out", tmp_path / "out", "--steps", "2")
    assert code == 2
    assert err.startswith("priorsep: error: ") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output folder, no partial files


def test_resamples_and_says_so(tmp_path, capsys):
    sf.write(tmp_path / "in.wav", np.sin(np.arange(22050) * 0.05) * 0.5, 22050)
    code, _, err = run(capsys, "separate", tmp_path / "in.wav", "--prior", "tone", "--prior", "burst",
                       "--out", tmp_path / "o", "--steps", "1")
    assert code == 0 and "resampled 22050 Hz -> 16000 Hz with soxr (estimates are written back" in err
    info = sf.info(tmp_path / "o" / "0_tone.wav")  # at the input's rate and length
    assert (info.samplerate, info.frames) == (22050, 22050)
    total = sum(sf.read(tmp_path / "o" / f"{k}.wav")[0] for k in ("0_tone", "1_burst"))
    mixture = sf.read(tmp_path / "in.wav")[0]
    assert np.abs(total - mixture)[1000:-1000].max() < 0.01  # still (nearly) mixture-consistent


def test_priors_lists_the_builtins(capsys):
    code, out, _ = run(capsys, "priors")
    names = [line.split()[0] for line in out.splitlines()]
    bundled = sorted(bundled_priors())  # which ones ship: tests/test_priors.py
    assert code == 0 and names == ["burst", *bundled, "tone"] and "digits-score-1024" in bundled
    assert "trained specvae prior" in out and "digits.md" in out  # bundled priors name their model cards
    import re

    line = next(ln for ln in out.splitlines() if ln.startswith("piano-score-1024 "))  # trained in two runs
    assert re.search(r"STFT 1024/256\), \d+ steps, \d+ min \(after piano: \d+ steps, \d+ min\) on \d+ clips", line)


def test_demo_prints_metrics_and_writes_outputs(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--example", "tone_burst", "--out", tmp_path / "demo", "--steps", "100")
    assert code == 0
    assert "mixture-consistent (masked) estimates" in out and "si_sdr" in out
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert "spectrograms.png" in names and "mixture.wav" in names and "0_tone.wav" in names
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    # example 6 starts far from its sources: without search (z = 0) the masked tone scores 1.1 dB
    assert summary["metrics"]["masked"]["tone"]["si_sdr"] > 15
    assert summary["metrics"]["masked"]["burst"]["si_sdr"] > 8


def test_unwritable_output_is_one_line(example, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "separate", example / "mix.wav", "--prior", "tone", "--prior", "burst",
                       "--out", blocker / "sub", "--steps", "1")
    assert code == 2 and err.startswith("priorsep: error: ") and err.count("\n") == 1, err


def test_evaluate_json_is_strict_and_stereo_can_be_chosen(example, tmp_path, capsys):
    ref = sf.read(example / "true_tone.wav")[0]
    sf.write(tmp_path / "st.wav", np.stack([ref, ref], 1), 16000, subtype="FLOAT")
    code, out, _ = run(capsys, "evaluate", "--references", example / "true_tone.wav",
                       "--estimates", tmp_path / "st.wav", "--channel", "0", "--json")
    assert code == 0
    scores = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert scores[0]["si_sdr"] > 100  # a perfect estimate
    code, _, err = run(capsys, "evaluate", "--references", example / "true_tone.wav",
                       "--estimates", tmp_path / "st.wav")
    assert code == 2 and "--channel N" in err


def test_input_that_resamples_to_nothing_is_refused(tmp_path, capsys):
    sf.write(tmp_path / "one.wav", np.array([0.5, -0.5]), 44100)
    code, _, err = run(capsys, "separate", tmp_path / "one.wav", "--prior", "tone", "--prior", "burst",
                       "--out", tmp_path / "o", "--steps", "1")
    assert code == 2 and "one.wav: has 2 samples (0 ms); the priors need at least 1024" in err, err


def test_demo_separates_the_bundled_example_with_the_bundled_priors(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--out", tmp_path / "demo")
    assert code == 0 and "magnitude objective, encoder start, 300 search steps" in out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["preset"] == "best" and summary["settings"]["priors"] == ["digits", "drums"]
    masked = summary["metrics"]["masked"]
    # measured 2026-11-24: 22.1 / 28.4 dB; the template mask scores 11.0 / 16.1 dB on this mixture
    assert masked["digits"]["si_sdr"] > 15 and masked["drums"]["si_sdr"] > 18, masked
    assert (tmp_path / "demo" / "0_digits.wav").exists() and (tmp_path / "demo" / "spectrograms.png").exists()
    # beside the plain priors, what --classes loads for the example's classes
    classes = summary["classes"]
    assert classes["priors"] == ["digits-score", "drums-score"] and "--classes digits,drums loads" in out
    assert classes["metrics"]["digits"]["si_sdr"] > 15 and classes["metrics"]["drums"]["si_sdr"] > 18


def test_search_options_override_single_settings_of_the_preset(example, tmp_path, capsys):
    out = tmp_path / "over"
    code, _, err = run(capsys, "separate", example / "mix.wav", "--prior", "tone", "--prior", "burst", "--out", out,
                       "--preset", "paper", "--steps", "7", "--lr", "0.01", "--bound", "none", "--w-sd", "0.5",
                       "--restarts", "2", "--seed", "3")
    assert code == 0, err
    settings = json.loads((out / "summary.json").read_text())["settings"]
    assert (settings["objective"], settings["start"], settings["steps"], settings["lr"]) == ("paper", "zero", 7, 0.01)
    assert settings["bound"] is None and settings["bounds"] == [None, None]
    assert (settings["restarts"], settings["seed"]) == (2, 3)
    assert settings["weights"] == {"mc": 0.1, "ms": 0.3, "fc": 0.8, "sd": 0.5}  # the others stay the paper's


def test_an_internal_bug_is_a_traceback_not_a_one_line_error(example, tmp_path, monkeypatch):
    import priorsep.separate

    def broken(self, mixture):
        raise ValueError("an internal bug")

    monkeypatch.setattr(priorsep.separate.Separator, "separate", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["separate", str(example / "mix.wav"), "--prior", "tone", "--prior", "burst",
              "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def test_python_m_priorsep_cli_runs_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "priorsep.cli", "priors"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "digits" in done.stdout and "tone" in done.stdout


def test_one_torch_thread_by_default_and_threads_after_the_subcommand(capsys, monkeypatch):
    import torch

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PRIORSEP_THREADS"):  # restored after
        monkeypatch.setenv(var, "1")
    try:
        torch.set_num_threads(2)
        assert main(["priors"]) == 0 and torch.get_num_threads() == 1  # the default
        assert main(["priors", "--threads", "2"]) == 0 and torch.get_num_threads() == 2  # after the subcommand
        assert main(["--threads", "2", "priors"]) == 0 and torch.get_num_threads() == 2  # before it
    finally:
        torch.set_num_threads(1)
    capsys.readouterr()


def test_an_out_holding_files_is_refused_unless_force_and_then_replaced_whole(example, tmp_path, capsys):
    out = tmp_path / "sep"
    out.mkdir()
    (out / "1_drums.wav").write_text("from an earlier run")
    argv = ["separate", example / "mix.wav", "--prior", "tone", "--prior", "burst", "--out", out, "--steps", "1"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and err == f"priorsep: error: {out} already holds 1 file (1_drums.wav); pass --force to " \
                                "replace them, or choose another folder\n"
    assert [p.name for p in out.iterdir()] == ["1_drums.wav"]
    code, _, err = run(capsys, *argv, "--force")  # not an earlier run's folder: --force refuses too
    assert code == 2 and "holds 1 file (1_drums.wav) no priorsep run wrote there; --force replaces only" in err
    (out / "1_drums.wav").unlink()
    code, _, _ = run(capsys, *argv)
    code, _, _ = run(capsys, *argv, "--force")  # an earlier run's folder: replaced whole
    assert code == 0 and sorted(p.name for p in out.iterdir()) == ["0_tone.wav", "1_burst.wav", "summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sep"]  # no staging or old folder left


def test_a_missing_parent_of_out_is_created(example, tmp_path, capsys):
    out = tmp_path / "runs" / "today" / "sep"
    code, _, _ = run(capsys, "separate", example / "mix.wav", "--prior", "tone", "--prior", "burst", "--out", out,
                     "--steps", "1")
    assert code == 0 and (out / "summary.json").is_file()


def test_device_cuda_without_a_gpu_is_one_line(example, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run(capsys, "separate", example / "mix.wav", "--prior", "tone", "--prior", "burst",
                       "--out", tmp_path / "o", "--device", "cuda")
    assert code == 2 and err.count("\n") == 1 and "no CUDA GPU is available here" in err, err
    assert list(tmp_path.iterdir()) == []


def test_listing_help_and_refusals_do_not_import_torch(tmp_path):
    """Start-up stays under a second: commands that compute nothing, and refusals of a
    file's content, never import torch (the times are in benchmarks/README.md, 'Start-up')."""
    import subprocess
    import sys

    code = ("import sys; from priorsep.cli import main; code = main(sys.argv[1:]); "
            "print(code, 'torch' in sys.modules)")
    _stereo(tmp_path / "stereo.wav")
    sf.write(tmp_path / "short.wav", _noise(500), 16000)
    cases = [(["priors"], "0"), (["separate", "x.wav", "--prior", "tone", "--out", "o"], "2"),
             (["separate", "stereo.wav", "--prior", "digits", "--prior", "drums", "--out", "o"], "2"),  # read first
             (["separate", "short.wav", "--classes", "digits,drums", "--out", "o"], "2"),
             (["separate", "missing.wav", "--prior", "tone", "--prior", "burst", "--out", "o"], "2"),
             (["separate", "missing.wav", "--prior", "tone", "--prior", "nope", "--out", "o"], "2")]
    for argv, status in cases:
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path)
        assert done.stdout.splitlines()[-1].split() == [status, "False"], (argv, done.stdout, done.stderr)
    done = subprocess.run([sys.executable, "-c", "import sys, priorsep.cli.main; print('torch' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.parametrize("sig, status, line", [("SIGTERM", 143, "priorsep: terminated; no outputs written"),
                                               ("SIGINT", 130, "priorsep: interrupted; no outputs written")])
@pytest.mark.parametrize("when", ["early", "searching"])
def test_a_signal_leaves_nothing_and_prints_one_line(example, tmp_path, sig, status, line, when):
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "priorsep.cli", "separate", str(example / "mix.wav"), "--prior", "tone",
           "--prior", "burst", "--out", str(tmp_path / "runs" / "sep"), "--steps", "100000"]
    # a shell's background job ignores SIGINT, and Python keeps an ignored SIGINT: restore it
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if when == "early":
        time.sleep(1.0)  # importing torch
    else:
        proc.stderr.readline()  # the progress bar's first line: the search runs
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status and err.strip().splitlines()[-1] == line and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # no output, no staging folder, no parent made for it


def test_score_priors_separate_by_posterior_sampling(tmp_path, capsys):
    """The bundled score priors from the command line: one file, then a corpus with a long
    file (windows); refused settings leave nothing behind."""
    from priorsep.data.examples import load_example
    from priorsep.metrics import si_sdr

    classes, mixture, sources, rate = load_example("digits_drums")
    sf.write(tmp_path / "mix.wav", mixture.numpy(), rate, subtype="FLOAT")
    priors = ["--prior", "digits-score", "--prior", "drums-score"]
    out = tmp_path / "sep"
    # --classes picks the measured best for the pair: for digits and drums, the score priors
    code, stdout, _ = run(capsys, "separate", tmp_path / "mix.wav", "--classes", "digits, drums", "--out", out)
    assert code == 0, stdout
    assert sorted(p.name for p in out.iterdir()) == ["0_digits.wav", "1_drums.wav", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["priors"] == ["digits-score", "drums-score"]
    assert summary["settings"]["method"] == "posterior sampling" and summary["windows"] == 1
    assert summary["settings"]["level"] == 1.0 and summary["final_losses"] == {}
    est = [sf.read(out / f, dtype="float32")[0] for f in ("0_digits.wav", "1_drums.wav")]
    np.testing.assert_allclose(est[0] + est[1], mixture.numpy(), atol=1e-4)
    assert si_sdr(sources[0], est[0]) > 15.0 and si_sdr(sources[1], est[1]) > 20.0  # measured 19.2, 25.8

    for extra, message in ((["--output", "both"], "--output both: these priors give masked estimates only"),
                           (["--steps", "5"], "latent-search settings do not apply to them: steps")):
        code, _, err = run(capsys, "separate", tmp_path / "mix.wav", *priors, "--out", tmp_path / "no", *extra)
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "no").exists()
    code, _, err = run(capsys, "separate", tmp_path / "mix.wav", "--prior", "digits-score", "--prior", "drums",
                       "--out", tmp_path / "no")
    assert code == 2 and "use priors of one kind" in err
    for extra, message in ((["--classes", "digits,cello"], "no bundled priors for 'cello'; bundled classes: "
                                                           "digits, drums, piano"),
                           (["--classes", "drums,drums"], "name two or more different classes; got drums, drums"),
                           (["--classes", "digits,drums", "--prior", "tone"], "choose either --prior or --classes")):
        code, _, err = run(capsys, "separate", tmp_path / "mix.wav", *extra, "--out", tmp_path / "no")
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "no").exists()

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "a.wav", mixture.numpy(), rate, subtype="FLOAT")
    sf.write(corpus / "long.wav", np.concatenate([mixture.numpy(), mixture.numpy()[:8000]]), rate, subtype="FLOAT")
    code, stdout, _ = run(capsys, "separate", corpus, *priors, "--out", tmp_path / "many")
    assert code == 0, stdout
    index = json.loads((tmp_path / "many" / "index.json").read_text())
    assert [(e["track"], e["status"], e["final_loss"]) for e in index["tracks"]] == [("a", "ok", None),
                                                                                    ("long", "ok", None)]
    assert sf.info(str(tmp_path / "many" / "long" / "1_drums.wav")).frames == 16384 + 8000


def test_classes_digits_piano_separate_with_the_1024_point_score_priors(tmp_path, capsys):
    """--classes digits,piano loads the pair measured best on the shifted set, and they
    separate a committed benchmark mixture (repository files, not the package's)."""
    from pathlib import Path

    from priorsep.data.mixtures import load_mixture_set
    from priorsep.metrics import si_sdr

    manifest = Path(__file__).parents[1] / "benchmarks" / "sets" / "digits+piano-paper.json"
    mset = load_mixture_set(manifest, limit=5)
    mixture, sources = mset.mixtures[4], mset.sources[4]  # [T], [2, T]
    sf.write(tmp_path / "mix.wav", mixture.numpy(), 16000, subtype="FLOAT")
    out = tmp_path / "sep"
    code, stdout, _ = run(capsys, "separate", tmp_path / "mix.wav", "--classes", "digits,piano", "--out", out)
    assert code == 0, stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["priors"] == ["digits-score-1024", "piano-score-1024"]
    est = [sf.read(out / f, dtype="float32")[0] for f in ("0_digits.wav", "1_piano.wav")]
    assert si_sdr(sources[0], est[0]) > 9.0 and si_sdr(sources[1], est[1]) > 13.0  # measured 12.5, 16.3


def test_an_input_folder_is_never_the_out_even_with_force(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "mix.wav", _noise(16000), 16000)
    (data / "notes.txt").write_text("the user's")
    for out in (data, tmp_path):
        code, _, err = run(capsys, "separate", data / "mix.wav", "--prior", "tone", "--prior", "burst", "--out", out,
                           "--force", "--steps", "1")
        assert code == 2 and err == f"priorsep: error: --out {out} holds the input {data / 'mix.wav'}; choose an " \
                                    "--out outside the inputs\n"
    assert sorted(p.name for p in data.iterdir()) == ["mix.wav", "notes.txt"]


def test_html_paths_are_checked_before_the_search(example, tmp_path, capsys):
    argv = ["separate", example / "mix.wav", "--prior", "tone", "--prior", "burst", "--steps", "1"]
    (tmp_path / "mine.html").write_text("<html>the user's page</html>")
    for page, message in ((tmp_path / "mine.html", "exists and is not a priorsep listening page"),
                          (tmp_path / "o" / "p.html", "inside --out"), (tmp_path, "is a folder")):
        code, _, err = run(capsys, *argv, "--out", tmp_path / "o", "--html", page)
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.html"]  # nothing written
    page = tmp_path / "new" / "folder" / "p.html"  # missing folders are made, as for --out
    code, _, _ = run(capsys, *argv, "--out", tmp_path / "o", "--html", page)
    assert code == 0 and page.is_file()
    code, _, _ = run(capsys, *argv, "--out", tmp_path / "o2", "--html", page)  # its own page: replaced
    assert code == 0


def test_a_write_that_fails_is_one_line_exit_1_and_leaves_nothing(example, tmp_path):
    import resource
    import signal
    import subprocess
    import sys

    def small_files():  # a file-size limit stands in for a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))

    out = tmp_path / "sep"
    done = subprocess.run([sys.executable, "-m", "priorsep.cli", "separate", str(example / "mix.wav"), "--prior",
                           "tone", "--prior", "burst", "--steps", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    assert done.returncode == 1 and done.stderr == f"priorsep: error: {out / '0_tone.wav'}: could not be written " \
                                                  "(File too large); nothing of it is left\n"
    assert list(tmp_path.iterdir()) == []


def test_the_same_command_writes_the_same_bytes(example, tmp_path, capsys):
    import time

    for name in ("a", "b"):
        code, _, _ = run(capsys, "separate", example / "mix.wav", "--prior", "tone", "--prior", "burst", "--steps",
                         "2", "--out", tmp_path / name)
        assert code == 0
        time.sleep(1.1)
    for wav in ("0_tone.wav", "1_burst.wav"):
        assert (tmp_path / "a" / wav).read_bytes() == (tmp_path / "b" / wav).read_bytes()


def test_a_warning_is_one_line_naming_priorsep(example, tmp_path, capsys):
    sf.write(tmp_path / "zero.wav", np.zeros(16384), 16000, subtype="FLOAT")
    code, _, err = run(capsys, "evaluate", "--references", example / "true_tone.wav", example / "true_burst.wav",
                       "--estimates", tmp_path / "zero.wav", example / "true_burst.wav")
    assert code == 0 and err == "priorsep: warning: estimate(s) [0] are all zeros; BSS Eval SDR/SIR set to nan " \
                                "for this mixture\n"
