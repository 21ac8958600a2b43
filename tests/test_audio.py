import numpy as np
import pytest
import soundfile as sf
import torch

from priorsep.audio import AudioError, StagedDir, read_audio, write_audio
from priorsep.errors import PriorsepError
from priorsep.separate.windows import frame_windows, overlap_add


def _tone(n=16000, f=440.0, sr=16000):
    return (0.5 * np.sin(2 * np.pi * f * np.arange(n) / sr)).astype(np.float32)


def test_reads_mono_and_writes_float_without_clipping(tmp_path):
    x = _tone() * 4  # peak 2: a sum of peak-normalised sources can exceed full scale
    write_audio(tmp_path / "a.wav", x, 16000)
    audio = read_audio(tmp_path / "a.wav", 16000)
    assert audio.sample_rate == 16000 and audio.note == ""
    np.testing.assert_array_equal(audio.samples, x)
    assert not list(tmp_path.glob(".*tmp"))


def test_other_rates_are_resampled_or_refused(tmp_path):
    sf.write(tmp_path / "b.wav", _tone(44100, sr=44100), 44100)
    audio = read_audio(tmp_path / "b.wav", 16000)
    assert audio.sample_rate == 16000 and abs(audio.samples.shape[0] - 16000) <= 1
    assert "resampled 44100 Hz -> 16000 Hz" in audio.note
    spec = np.abs(np.fft.rfft(audio.samples))
    assert abs(spec.argmax() * 16000 / audio.samples.shape[0] - 440) < 2  # the tone kept its pitch
    with pytest.raises(AudioError, match="44100 Hz but the priors need 16000 Hz"):
        read_audio(tmp_path / "b.wav", 16000, resample=False)


def test_stereo_needs_a_choice(tmp_path):
    stereo = np.stack([_tone(), 0.5 * _tone(f=880)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 16000)
    with pytest.raises(AudioError, match="2 channels.*--channel N.*--downmix"):
        read_audio(tmp_path / "s.wav")
    right = read_audio(tmp_path / "s.wav", channel=1)
    np.testing.assert_allclose(right.samples, stereo[:, 1], atol=1e-4)
    mixed = read_audio(tmp_path / "s.wav", downmix=True)
    np.testing.assert_allclose(mixed.samples, stereo.mean(1), atol=1e-4)
    with pytest.raises(AudioError, match="--channel must be 0 to 1, got 2"):
        read_audio(tmp_path / "s.wav", channel=2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("not audio"), "not an audio file"),
        (lambda p: sf.write(p, np.zeros(16000), 16000), "is silent"),
        (lambda p: sf.write(p, np.r_[_tone(100), np.nan, _tone(100)], 16000, subtype="FLOAT"), "1 NaN or infinite"),
        (lambda p: sf.write(p, np.r_[_tone(100), np.inf, -np.inf], 16000, subtype="FLOAT"), "2 NaN or infinite"),
    ],
)
def test_bad_files_raise_one_clear_line(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as info:
        read_audio(path, 16000)
    assert "\n" not in str(info.value)


def test_silence_can_be_allowed_for_estimates(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(100), 16000)
    assert read_audio(tmp_path / "z.wav", allow_silent=True).samples.max() == 0


def test_windows_cover_the_input_and_overlap_add_inverts_them():
    x = torch.randn(2, 40000)
    windows, n_win = frame_windows(x, 16384, 0.5)
    assert n_win == 4 and windows.shape == (8, 16384)  # hop 8192: 3 * 8192 + 16384 >= 40000
    torch.testing.assert_close(windows[1, :8192], x[0, 8192:16384])
    # per-window "estimates": each window split in two parts that sum to it
    parts = torch.stack([0.3 * windows, 0.7 * windows], dim=1).reshape(2, n_win, 2, 16384)
    out = overlap_add(parts, 40000, 0.5)
    assert out.shape == (2, 2, 40000)
    torch.testing.assert_close(out.sum(1), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 0], 0.3 * x, atol=1e-5, rtol=0)


def test_staged_dir_is_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with StagedDir(out) as stage:
            write_audio(stage / "a.wav", _tone(), 16000)
            raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with StagedDir(out) as stage:
        write_audio(stage / "a.wav", _tone(), 16000)
    assert [p.name for p in out.iterdir()] == ["a.wav"] and len(list(tmp_path.iterdir())) == 1


def test_written_files_get_the_permissions_the_umask_gives(tmp_path):
    import os
    import stat

    from priorsep import save_prior
    from priorsep.fsutil import StagedDir, write_text
    from priorsep.priors import TonePrior

    old = os.umask(0o022)
    try:
        with StagedDir(tmp_path / "out") as stage:
            write_audio(stage / "a.wav", np.zeros(16), 16000)
            write_text(stage / "s.json", "{}")
            save_prior(TonePrior(), stage / "p.safetensors")  # safetensors itself writes 0600
    finally:
        os.umask(old)
    for name in ("a.wav", "s.json", "p.safetensors"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644  # not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755  # the folder too, not mkdtemp's 0700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_a_folder_holding_files_is_refused_and_force_replaces_only_an_earlier_run(tmp_path):
    import json

    from priorsep.errors import OutputError
    from priorsep.fsutil import StagedDir

    out = tmp_path / "out"
    out.mkdir()
    (out / "1_drums.wav").write_text("an earlier run")
    (out / "spectrograms.png").write_text("an earlier run")
    with pytest.raises(OutputError, match=r"out already holds 2 files \(1_drums.wav, spectrograms.png\); pass --force"):
        StagedDir(out)
    # no summary.json: not a folder priorsep wrote, so --force refuses and names what it would delete
    with pytest.raises(OutputError, match=r"holds 2 files \(1_drums.wav, spectrograms.png\) no priorsep run wrote"):
        StagedDir(out, force=True)
    (out / "summary.json").write_text(json.dumps({"outputs": ["1_drums.wav", "spectrograms.png"]}))
    with pytest.raises(RuntimeError):  # a failed forced run changes nothing
        with StagedDir(out, force=True) as stage:
            (stage / "0_digits.wav").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["1_drums.wav", "spectrograms.png", "summary.json"]
    (out / "notes.txt").write_text("the user's own file, added later")
    with pytest.raises(OutputError, match=r"holds 1 file \(notes.txt\) no priorsep run wrote"):
        StagedDir(out, force=True)
    (out / "notes.txt").unlink()
    with StagedDir(out, force=True) as stage:
        (stage / "0_digits.wav").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["0_digits.wav"]  # nothing of the earlier run is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder either
    empty = tmp_path / "empty"
    empty.mkdir()
    with StagedDir(empty) as stage:  # an empty folder is no earlier run
        (stage / "a").write_text("1")
    assert [p.name for p in empty.iterdir()] == ["a"]


def test_an_out_that_is_or_holds_an_input_is_refused_even_with_force(tmp_path):
    from priorsep.errors import OutputError
    from priorsep.fsutil import StagedDir

    data = tmp_path / "data"
    data.mkdir()
    (data / "mix.wav").write_text("the user's input")
    (data / "summary.json").write_text('{"outputs": []}')  # even a folder that looks like an earlier run
    for out in (data, tmp_path, data / "mix.wav"):
        with pytest.raises(OutputError, match="the input .*mix.wav; choose an --out outside the inputs"):
            StagedDir(out, force=True, inputs=[data / "mix.wav"])
    assert (data / "mix.wav").read_text() == "the user's input"
    with StagedDir(data / "sep", inputs=[data / "mix.wav"]) as stage:  # beside it is fine
        (stage / "a").write_text("1")


def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    import os

    from priorsep.errors import OutputError
    from priorsep.fsutil import StagedDir

    with pytest.raises(OutputError, match=r"^/proc/x: cannot write in /proc"):
        StagedDir("/proc/x")
    if os.geteuid() != 0:  # root writes in a read-only folder anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputError, match="cannot write in"):
            StagedDir(locked / "out")


def test_missing_parent_folders_are_made_and_removed_again_if_the_run_fails(tmp_path):
    from priorsep.fsutil import StagedDir

    with pytest.raises(RuntimeError):
        with StagedDir(tmp_path / "a" / "b" / "out") as stage:
            (stage / "x").write_text("1")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # the parents it made are gone again
    with StagedDir(tmp_path / "a" / "b" / "out") as stage:
        (stage / "x").write_text("1")
    assert (tmp_path / "a" / "b" / "out" / "x").read_text() == "1"
    (tmp_path / "file").write_text("x")
    with pytest.raises(PriorsepError, match="is not a folder"):
        StagedDir(tmp_path / "file" / "out")


def test_float_input_above_full_scale_is_accepted_and_clipping_is_noted(tmp_path):
    t = np.arange(16000) / 16000
    loud = (10 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t)).astype(np.float32)  # peaks at 10, no flat tops
    sf.write(tmp_path / "loud.wav", loud, 16000, subtype="FLOAT")
    audio = read_audio(tmp_path / "loud.wav", 16000)
    assert audio.note == "" and np.array_equal(audio.samples, loud)  # read as it is, not clipped or scaled
    clipped = np.clip(loud, -4, 4)
    sf.write(tmp_path / "clipped.wav", clipped, 16000, subtype="FLOAT")
    note = read_audio(tmp_path / "clipped.wav", 16000).note
    assert note.startswith("looks clipped: ") and "held at its peak 4" in note
    from itertools import groupby

    tops = sum(1 for held, run in groupby(np.abs(clipped) >= 4) if held and len(list(run)) >= 3)
    assert int(note.split()[2]) == tops > 50  # one per flat top of 3 samples or more


EXAMPLE = __import__("pathlib").Path(__file__).parents[1] / "src/priorsep/examples/digits_drums/mixture.wav"


def test_a_constant_input_is_refused_like_a_silent_one(tmp_path):
    sf.write(tmp_path / "dc.wav", np.full(16000, 0.25, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"dc.wav is a constant 0.25 \(a DC offset, no sound\)"):
        read_audio(tmp_path / "dc.wav", 16000)
    offset = _tone() * 1e-3 + 0.25  # a quiet tone on a DC offset is sound
    sf.write(tmp_path / "tone.wav", offset, 16000, subtype="FLOAT")
    assert read_audio(tmp_path / "tone.wav", 16000).samples.shape == (16000,)


def test_a_wav_shorter_than_its_header_says_is_refused(tmp_path):
    from priorsep.audio import declared_frames

    sf.write(tmp_path / "whole.wav", _tone(), 16000, subtype="PCM_16")
    data = (tmp_path / "whole.wav").read_bytes()
    assert declared_frames(tmp_path / "whole.wav") == 16000
    (tmp_path / "cut.wav").write_bytes(data[:5000])  # 44-byte header, then 2478 of 16000 samples
    with pytest.raises(AudioError, match=r"cut.wav: truncated: its header declares 16000 samples, the file holds "
                                         r"2478 \(85 % missing\)"):
        read_audio(tmp_path / "cut.wav", 16000)
    sf.write(tmp_path / "a.flac", _tone(), 16000)  # not a WAV: nothing declared to compare with
    assert declared_frames(tmp_path / "a.flac") is None


def test_quantisation_is_not_clipping_but_a_clipped_integer_file_is(tmp_path):
    mixture, rate = sf.read(EXAMPLE, dtype="float32")
    for subtype in ("PCM_U8", "PCM_16"):
        sf.write(tmp_path / "q.wav", mixture / np.abs(mixture).max(), rate, subtype=subtype)
        assert read_audio(tmp_path / "q.wav", rate).note == "", subtype
        sf.write(tmp_path / "c.wav", np.clip(3 * mixture / np.abs(mixture).max(), -1, 1), rate, subtype=subtype)
        assert read_audio(tmp_path / "c.wav", rate).note.startswith("looks clipped: "), subtype


def test_the_same_samples_give_the_same_bytes(tmp_path):
    import time

    write_audio(tmp_path / "a.wav", _tone(), 16000)
    time.sleep(1.1)  # libsndfile's PEAK chunk held a timestamp in seconds
    write_audio(tmp_path / "b.wav", _tone(), 16000)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    info = sf.info(tmp_path / "a.wav")
    assert (info.subtype, info.samplerate, info.frames) == ("FLOAT", 16000, 16000)
    from scipy.io import wavfile

    wavfile.write(tmp_path / "scipy.wav", 16000, _tone())  # a standard float WAV, byte for byte
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "scipy.wav").read_bytes()


def test_estimates_go_back_to_the_input_rate():
    from priorsep.audio import Audio, restore_rate, to_rate

    t = np.arange(44100) / 44100
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = to_rate(Audio(x, 44100), 16000)
    assert (audio.sample_rate, audio.input_rate, audio.samples.shape) == (16000, 44100, (16000,))
    back = restore_rate(np.stack([0.25 * audio.samples, 0.75 * audio.samples]), audio)
    assert back.shape == (2, 44100)
    inner = slice(1000, -1000)  # a 440 Hz tone survives the round trip
    assert np.abs(back.sum(0)[inner] - x[inner]).max() < 1e-3
