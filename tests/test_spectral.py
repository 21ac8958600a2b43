"""Tests for priorsep.spectral: the losses' STFT, pooling, ratio masks, mixture masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from priorsep import spectral

SR = 16000


def np_stft(x: np.ndarray, n_fft: int = 256, hop: int = 128) -> np.ndarray:
    """Independent reference: periodic Hann, no centring, no padding, [..., bins, frames]."""
    x = np.asarray(x, dtype=np.float64)
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)
    frames = 1 + (x.shape[-1] - n_fft) // hop
    idx = np.arange(frames)[:, None] * hop + n[None, :]
    return np.swapaxes(np.fft.rfft(x[..., idx] * window, n=n_fft, axis=-1), -1, -2)


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), zero-mean signals."""
    estimate = estimate - estimate.mean()
    reference = reference - reference.mean()
    target = (estimate @ reference) / (reference @ reference) * reference
    noise = estimate - target
    return float(10 * np.log10((target @ target) / (noise @ noise)))


def _tone(freq: float, n: int = 16384, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(n) / SR + phase)


# --- losses' STFT ----------------------------------------------------------------------


def test_stft_shape_16384():
    x = torch.randn(16384)
    assert tuple(spectral.stft(x).shape) == (129, 127)
    assert tuple(spectral.stft(torch.randn(2, 3, 16384)).shape) == (2, 3, 129, 127)


@pytest.mark.parametrize("n", [16384, 2048, 1000])
def test_stft_matches_numpy(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, 3, n))
    x[0, 0] += 3 * _tone(440.0, n)
    got = spectral.stft(torch.from_numpy(x)).numpy()  # float64 in, complex128 out
    want = np_stft(x)
    assert got.shape == want.shape == (2, 3, 129, 1 + (n - 256) // 128)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    got32 = spectral.stft(torch.from_numpy(x.astype(np.float32))).numpy()
    np.testing.assert_allclose(got32, want, rtol=1e-4, atol=1e-3)


def test_stft_window_is_periodic_hann():
    # a frame of ones: bin 0 = sum of the window = 128 for periodic Hann (127.5 symmetric)
    spec = spectral.stft(torch.ones(256, dtype=torch.float64))[:, 0]  # [bins, frames]: the one frame
    assert spec[0].real.item() == pytest.approx(128.0, abs=1e-9)
    assert spec[1].real.item() == pytest.approx(-64.0, abs=1e-9)


def test_stft_layout_is_bins_by_frames_like_analysis():
    # one layout everywhere: frame t of the losses' STFT is the DFT of x[t*hop : t*hop + n_fft]
    x = torch.randn(3000, dtype=torch.float64)
    spec = spectral.stft(x)
    assert spec.shape[-2] == 129 and spec.shape[-1] == 1 + (3000 - 256) // 128
    frame5 = torch.fft.rfft(x[5 * 128 : 5 * 128 + 256] * spectral.hann(256, dtype=torch.float64))
    torch.testing.assert_close(spec[:, 5], frame5, rtol=1e-12, atol=1e-10)
    assert spectral.analysis(x, 256, 128).shape[-2] == spec.shape[-2]


def test_log_power():
    spec = torch.tensor([3 + 4j, 0j, 1j], dtype=torch.complex128)
    np.testing.assert_allclose(spectral.log_power(spec).numpy(), np.log([26.0, 1.0, 2.0]), rtol=1e-12)


# --- pooling ---------------------------------------------------------------------------


def test_pool_by_hand():
    a = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_allclose(spectral.pool(a).numpy(), [[3.0, 4.5], [7.5, 9.0]])
    b = torch.arange(1.0, 16.0).reshape(3, 5)
    np.testing.assert_allclose(spectral.pool(b).numpy(), [[4.0, 6.0, 7.5], [11.5, 13.5, 15.0]])
    sizes = [tuple(p.shape) for p in spectral.pyramid(torch.zeros(2, 129, 127), 3)]
    assert sizes == [(2, 129, 127), (2, 65, 64), (2, 33, 32)]


# --- ratio masks -----------------------------------------------------------------------


def test_ratio_masks_sum_to_one_and_uniform_on_silence():
    rng = np.random.default_rng(0)
    for k in (2, 3):
        mags = np.abs(rng.standard_normal((2, k, 17, 9)))
        mags[:, :, :5, :] = 0.0  # every source silent here
        mags[0, 0, 10:, :] = 0.0  # one source silent, the others not
        masks = spectral.ratio_masks(torch.from_numpy(mags)).numpy()
        assert masks.shape == mags.shape
        np.testing.assert_allclose(masks.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(masks[:, :, :5, :], 1.0 / k, atol=1e-12)
        assert np.all(masks >= 0) and np.all(masks <= 1)
        # away from silence the mask is the magnitude ratio
        ratio = mags[:, :, 5:10] / mags[:, :, 5:10].sum(axis=1, keepdims=True)
        np.testing.assert_allclose(masks[:, :, 5:10], ratio, rtol=1e-6, atol=1e-7)  # eps = 1e-8
        np.testing.assert_allclose(masks[0, 0, 10:], 0.0, atol=1e-6)


def test_ratio_masks_float32():
    mags = torch.zeros(1, 4, 3, 3)
    mags[0, 1, 0, 0] = 2.0
    masks = spectral.ratio_masks(mags)
    torch.testing.assert_close(masks.sum(1), torch.ones(1, 3, 3))
    assert masks[0, 1, 0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert masks[0, 2, 1, 1].item() == pytest.approx(0.25)


# --- mixture-consistent masking --------------------------------------------------------


def _two_tone_batch(n=16384):
    """B=2 mixtures of a 300 Hz and a 3 kHz tone (different levels and phases)."""
    low = np.stack([_tone(300.0, n), 0.5 * _tone(300.0, n, 1.0)])
    high = np.stack([0.7 * _tone(3000.0, n, 0.3), _tone(3000.0, n, 2.0)])
    sources = np.stack([low, high], axis=1)  # [B, K, T]
    return sources.sum(axis=1), sources


def test_mask_mixture_sums_to_mixture():
    rng = np.random.default_rng(3)
    mixture = torch.from_numpy(rng.standard_normal((2, 8192)).astype(np.float32))
    guesses = torch.from_numpy(rng.standard_normal((2, 3, 8192)).astype(np.float32))
    est = spectral.mask_mixture(mixture, guesses)
    assert tuple(est.shape) == (2, 3, 8192)
    torch.testing.assert_close(est.sum(1), mixture, atol=1e-5, rtol=0)


def test_mask_mixture_true_sources_disjoint_spectra():
    mixture, sources = _two_tone_batch()
    est = spectral.mask_mixture(
        torch.from_numpy(mixture.astype(np.float32)), torch.from_numpy(sources.astype(np.float32))
    ).double().numpy()
    np.testing.assert_allclose(est.sum(axis=1), mixture, atol=1e-5)
    for b in range(2):
        for k in range(2):
            assert si_sdr(est[b, k], sources[b, k]) > 20.0, (b, k, si_sdr(est[b, k], sources[b, k]))


def test_mask_mixture_guesses_with_wrong_phase_and_scale():
    """Only the guesses' magnitudes matter: other phases and any scale still separate."""
    mixture, sources = _two_tone_batch()
    guesses = np.stack(
        [
            np.stack([5.0 * _tone(300.0, 16384, 2.5), 0.01 * _tone(3000.0, 16384, 1.1)]),
            np.stack([_tone(300.0, 16384, 0.2), 3.0 * _tone(3000.0, 16384, 0.9)]),
        ]
    )
    est = spectral.mask_mixture(
        torch.from_numpy(mixture.astype(np.float32)), torch.from_numpy(guesses.astype(np.float32))
    ).double().numpy()
    for b in range(2):
        for k in range(2):
            assert si_sdr(est[b, k], sources[b, k]) > 20.0


def test_mask_mixture_shape_errors():
    with pytest.raises(ValueError, match=r"\(2, 100\).*\(3, 2, 100\)"):
        spectral.mask_mixture(torch.zeros(2, 100), torch.zeros(3, 2, 100))
    with pytest.raises(ValueError):
        spectral.mask_mixture(torch.zeros(2, 100), torch.zeros(2, 2, 99))


def test_analysis_synthesis_round_trip():
    x = torch.randn(2, 3, 5000, dtype=torch.float64)
    y = spectral.synthesis(spectral.analysis(x, 1024, 256), 1024, 256, 5000)
    torch.testing.assert_close(y, x, atol=1e-10, rtol=0)


def test_griffin_lim_recovers_a_tone_from_its_magnitude():
    import math

    from priorsep import spectral

    t = torch.arange(16384) / 16000
    x = 0.5 * torch.sin(2 * math.pi * 440 * t)
    mag = spectral.analysis(x, 1024, 256).abs()
    def error(iterations: int) -> float:  # spectral convergence: relative magnitude error
        back = spectral.analysis(spectral.griffin_lim(mag, 1024, 256, 16384, iterations), 1024, 256).abs()
        return float((back - mag).norm() / mag.norm())

    assert error(0) > 0.6 and error(32) < 0.2  # measured 0.70 (the zero-phase start) and 0.15
    y = spectral.griffin_lim(mag, 1024, 256, 16384, iterations=32)
    assert torch.equal(y, spectral.griffin_lim(mag, 1024, 256, 16384, iterations=32))
