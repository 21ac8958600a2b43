"""Test-wide settings."""

import os
import subprocess
import sys

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
def torchrun():
    """``torchrun(*args)``: the ``priorsep`` command under ``torchrun`` with two gloo processes
    (``--standalone``); asserts it ended with 0 and returns the finished process. A failed
    launch shows the start of stderr (the ranks' own messages) as well as its end (the
    launcher's summary, which names only the signal)."""
    exe = os.path.join(os.path.dirname(sys.executable), "priorsep")

    def launch(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               "--no-python", exe, *args], capture_output=True, text=True, timeout=300)
        err = proc.stderr if len(proc.stderr) < 6000 else proc.stderr[:3000] + "\n[...]\n" + proc.stderr[-3000:]
        assert proc.returncode == 0, f"torchrun exit {proc.returncode}; stdout tail: {proc.stdout[-1000:]}\n{err}"
        return proc

    return launch


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
