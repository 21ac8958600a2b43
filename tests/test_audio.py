import numpy as np
import pytest
import soundfile as sf
import torch

from priorsep.audio import AudioError, StagedDir, read_audio, write_audio
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

    from priorsep.fsutil import StagedDir, write_text

    old = os.umask(0o022)
    try:
        with StagedDir(tmp_path / "out") as stage:
            write_audio(stage / "a.wav", np.zeros(16), 16000)
            write_text(stage / "s.json", "{}")
    finally:
        os.umask(old)
    for name in ("a.wav", "s.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left
