"""Tests of priorsep.data.folder: clips of one class from a user's folder (``clip_dir`` comes
from conftest.py)."""

import contextlib

import numpy as np
import pytest
import soundfile as sf

from priorsep.audio import AudioError
from priorsep.data.folder import load_folder


def test_folder_loader_cuts_resamples_and_skips(clip_dir):
    with pytest.warns(UserWarning, match="notes.txt"):
        clips = load_folder(clip_dir)
    # 10 one-second clips + 2 s at 44.1 kHz -> 32000 samples -> 2 windows; quiet.wav skipped
    assert clips.clips.shape == (12, 16384)
    assert (clips.files, clips.skipped_unreadable, clips.skipped_silent) == (12, 1, 1)
    assert clips.describe()["content_hash"] == load_folder(clip_dir).content_hash


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "the folder is empty"),
    (lambda d: (d / "a.txt").write_text("x"), "no audio files"),
    (lambda d: sf.write(d / "z.wav", np.zeros(20000), 16000), "near-silent"),
])
def test_folder_loader_refuses_useless_folders(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.warns() if message == "no audio files" else contextlib.nullcontext():
        with pytest.raises(AudioError, match=message):
            load_folder(tmp_path)
