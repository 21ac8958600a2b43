"""Test-wide settings."""

import numpy as np
import pytest
import soundfile as sf
import torch

from priorsep import load_prior

# The tests' tensors are small: torch's intra-op thread pool only adds overhead, and on a
# loaded 2-core machine (CI beside other work) its spinning threads made convolutions and
# elementwise ops 10-40x slower. One thread keeps the suite's time predictable.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tone_burst():
    """The parametric ``tone`` and ``burst`` priors: sources with a known truth."""
    return [load_prior("tone"), load_prior("burst")]


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    """A folder of training clips in any layout: 10 one-second decaying tones at 16 kHz (half
    in a subfolder), 2 s at 44.1 kHz, one near-silent clip and one file that is not audio."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    t = np.arange(16384) / 16000
    (root / "sub").mkdir()
    for i in range(10):
        x = 0.5 * np.sin(2 * np.pi * rng.uniform(200, 800) * t) * np.exp(-t * rng.uniform(2, 8))
        sf.write(root / ("sub" if i % 2 else ".") / f"c{i}.wav", x, 16000)
    sf.write(root / "long44k.flac", 0.3 * np.sin(2 * np.pi * 300 * np.arange(44100 * 2) / 44100), 44100)
    sf.write(root / "quiet.wav", np.full(16384, 1e-4), 16000)
    (root / "notes.txt").write_text("not audio")
    return root
