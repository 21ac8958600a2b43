"""Tests for priorsep.losses against an independent float64 numpy reference (METHOD.md §3).

Everything in the "reference" section below is written from the formulas in
METHOD.md §3 only; it calls no priorsep helper, so a shared mistake cannot hide.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch

from priorsep import spectral
from priorsep.losses import LossWeights, exclusion, separation_losses

SR = 16000
N_FFT = 256
HOP = 128
RTOL = 1e-4
PAPER_WEIGHTS = {"mc": 0.1, "ms": 0.3, "fc": 0.8, "sd": 0.4}
TERMS = ("ms", "sd", "mc", "fc", "total")


# --------------------------------------------------------------------------------------
# Independent numpy reference (float64)
# --------------------------------------------------------------------------------------


def np_stft(x: np.ndarray) -> np.ndarray:
    """Periodic Hann 256, FFT 256, hop 128, no centring, no padding: [..., bins, frames]."""
    x = np.asarray(x, dtype=np.float64)
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)  # periodic: divide by N, not N-1
    frames = 1 + (x.shape[-1] - N_FFT) // HOP
    idx = np.arange(frames)[:, None] * HOP + n[None, :]
    return np.swapaxes(np.fft.rfft(x[..., idx] * window, n=N_FFT, axis=-1), -1, -2)


def np_logpow(spec: np.ndarray) -> np.ndarray:
    return np.log(1.0 + np.abs(spec) ** 2)


def np_pool(img: np.ndarray) -> np.ndarray:
    """TF-style 2x2/stride-2 'SAME' average pool: edge windows average the cells they cover.

    Odd edges are padded with NaN and ignored by nanmean, so a window hanging over the
    bottom or right edge averages only its real cells.
    """
    rows, cols = img.shape[-2], img.shape[-1]
    pad = [(0, 0)] * (img.ndim - 2) + [(0, rows % 2), (0, cols % 2)]
    padded = np.pad(np.asarray(img, dtype=np.float64), pad, constant_values=np.nan)
    r2, c2 = padded.shape[-2] // 2, padded.shape[-1] // 2
    blocks = padded.reshape(img.shape[:-2] + (r2, 2, c2, 2))
    return np.nanmean(blocks, axis=(-3, -1))


def np_levels(img: np.ndarray) -> list[np.ndarray]:
    out = [img]
    for _ in range(2):
        out.append(np_pool(out[-1]))
    return out


def np_psi(ga: np.ndarray, gb: np.ndarray, alpha: float) -> float:
    prod = np.tanh(ga / 2) ** 2 * np.tanh(alpha * gb / 2) ** 2
    return float(prod.mean() ** 0.25)


def np_exclusion(a: np.ndarray, b: np.ndarray, alpha_fn=None) -> float:
    """E(A, B) for one mixture's images [bins, frames]; alpha per mixture by default.

    ``alpha_fn(level, axis)`` may override alpha (used to emulate a batch-wide alpha).
    """
    psi = {0: [], 1: []}  # axis 0 = frequency, axis 1 = time
    for level, (pa, pb) in enumerate(zip(np_levels(a), np_levels(b))):
        for axis in (0, 1):
            ga = np.diff(pa, axis=axis)
            gb = np.diff(pb, axis=axis)
            if alpha_fn is None:
                alpha = 2.0 * np.abs(ga).mean() / np.abs(gb).mean()
            else:
                alpha = alpha_fn(level, axis)
            psi[axis].append(np_psi(ga, gb, alpha))
    return (sum(psi[0]) / 3.0 + sum(psi[1]) / 3.0) / 2.0


def np_losses(mixture: np.ndarray, sources: np.ndarray, weights: dict | None = None) -> dict:
    """All terms for a batch, each a float64 [B] array. mixture [B, T], sources [B, K, T]."""
    w = dict(PAPER_WEIGHTS, **(weights or {}))
    mixture = np.asarray(mixture, dtype=np.float64)
    sources = np.asarray(sources, dtype=np.float64)
    out = {k: [] for k in TERMS}
    for m, srcs in zip(mixture, sources):
        m_hat = srcs.sum(axis=0)
        X, X_hat = np_stft(m), np_stft(m_hat)
        S, S_hat = np_logpow(X), np_logpow(X_hat)
        ms = sum(np.abs(a - b).sum() for a, b in zip(np_levels(S), np_levels(S_hat)))
        S_src = [np_logpow(np_stft(s)) for s in srcs]
        pairs = list(combinations(range(len(srcs)), 2))
        sd = sum(np_exclusion(S_src[i], S_src[j]) for i, j in pairs) / len(pairs)
        mc = -np_exclusion(S, S_hat)
        M, M_hat = np.abs(X), np.abs(X_hat)
        # per frame (axis 1), a ratio of sums over frequency (axis 0)
        fc = ((np.log(1 + M).sum(axis=0) + 1e-6) / (np.log(1 + M_hat).sum(axis=0) + 1e-6)).sum()
        total = w["mc"] * mc + w["ms"] * ms + w["fc"] * fc + w["sd"] * sd
        for key, val in zip(TERMS, (ms, sd, mc, fc, total)):
            out[key].append(val)
    return {k: np.array(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------
# Seeded test signals
# --------------------------------------------------------------------------------------


def _tone(t, f, phase=0.0):
    return np.sin(2 * np.pi * f * t + phase)


def _chirp(t, f0, f1):
    dur = t[-1] if t[-1] > 0 else 1.0
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur)))


def _burst(rng, n, start, length):
    x = np.zeros(n)
    seg = rng.standard_normal(length) * np.hanning(length)
    x[start : start + length] = seg[: n - start]
    return x


def make_sources(seed: int, batch: int, k: int, n: int) -> np.ndarray:
    """[B, K, T] peak-normalised sources: tones, noise bursts, chirps, mixed per slot."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    out = np.empty((batch, k, n))
    for b in range(batch):
        for j in range(k):
            kind = (b + j) % 3
            if kind == 0:
                f = rng.uniform(150, 2500)
                x = _tone(t, f, rng.uniform(0, 2 * np.pi)) + 0.5 * _tone(t, 2 * f)
                x *= np.exp(-t * rng.uniform(0.5, 4))
            elif kind == 1:
                x = sum(
                    _burst(rng, n, int(rng.integers(0, n - n // 8)), n // 8) for _ in range(3)
                )
                x += 0.01 * rng.standard_normal(n)
            else:
                x = _chirp(t, rng.uniform(100, 800), rng.uniform(2000, 6000))
                x *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 8) * t) ** 2
            out[b, j] = x / np.abs(x).max()
    return out


def as_torch(mixture: np.ndarray, sources: np.ndarray):
    return (
        torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(sources, dtype=np.float32)),
    )


def run_both(mixture: np.ndarray, sources: np.ndarray, weights=None):
    """priorsep's losses on float32 inputs and the numpy reference on the same values."""
    m_t, s_t = as_torch(mixture, sources)
    got = separation_losses(m_t, s_t, weights)
    got = {k: v.detach().double().numpy() for k, v in got.items()}
    want = np_losses(m_t.double().numpy(), s_t.double().numpy(), weights)
    return got, want


def assert_terms_close(got, want, terms=TERMS, rtol=RTOL, atol=None):
    atol = atol or {}
    for key in terms:
        assert got[key].shape == want[key].shape, key
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol.get(key, 0.0), err_msg=key)


def other_mixture(seed: int, sources: np.ndarray) -> np.ndarray:
    """A mixture that is NOT the sum of the sources (so L_ms and L_fc are non-trivial)."""
    rng = np.random.default_rng(seed)
    n = sources.shape[-1]
    t = np.arange(n) / SR
    gains = rng.uniform(0.3, 1.5, size=sources.shape[:2])
    m = (gains[..., None] * sources).sum(axis=1)
    m += 0.3 * _tone(t, 1234.0)[None] + 0.05 * rng.standard_normal(m.shape)
    return m


# --------------------------------------------------------------------------------------
# The reference itself: hand-checked numbers
# --------------------------------------------------------------------------------------


def test_reference_pool_by_hand():
    a = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_allclose(np_pool(a), [[3.0, 4.5], [7.5, 9.0]])
    b = np.arange(1.0, 16.0).reshape(3, 5)  # [[1..5], [6..10], [11..15]]
    # windows: {1,2,6,7}, {3,4,8,9}, {5,10}; {11,12}, {13,14}, {15}
    np.testing.assert_allclose(np_pool(b), [[4.0, 6.0, 7.5], [11.5, 13.5, 15.0]])


def test_src_pool_matches_hand_numbers():
    a = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_allclose(spectral.pool(a).numpy(), [[3.0, 4.5], [7.5, 9.0]])
    b = torch.arange(1.0, 16.0).reshape(1, 3, 5)
    np.testing.assert_allclose(spectral.pool(b).numpy()[0], [[4.0, 6.0, 7.5], [11.5, 13.5, 15.0]])


def test_pool_pyramid_sizes():
    img = np.random.default_rng(0).standard_normal((129, 127))
    assert [lv.shape for lv in np_levels(img)] == [(129, 127), (65, 64), (33, 32)]
    got = spectral.pyramid(torch.from_numpy(img), 3)
    assert [tuple(lv.shape) for lv in got] == [(129, 127), (65, 64), (33, 32)]
    for g, w in zip(got, np_levels(img)):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-12)


def test_stft_frame_count():
    x = np.random.default_rng(1).standard_normal(16384)
    assert np_stft(x).shape == (129, 127)
    assert tuple(spectral.stft(torch.from_numpy(x)).shape) == (129, 127)
    assert np_stft(x[:2048]).shape == (129, 15)


def test_reference_window_is_periodic_hann():
    # One frame of ones: rfft bin 0 = sum of the window = N/2 exactly for periodic Hann
    # (N/2 - 1/2 for the symmetric one), bin 1 = -N/4, all others 0.
    spec = np_stft(np.ones(N_FFT))[:, 0]
    assert spec[0].real == pytest.approx(N_FFT / 2)
    assert spec[1].real == pytest.approx(-N_FFT / 4)
    np.testing.assert_allclose(np.abs(spec[2:]), 0.0, atol=1e-9)


# --------------------------------------------------------------------------------------
# priorsep.losses against the reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [16384, 2048])
@pytest.mark.parametrize("k", [2, 3])
def test_matches_reference_mixture_not_sum(k, n):
    sources = make_sources(10 + k, 3, k, n)
    mixture = other_mixture(20 + k, sources)
    got, want = run_both(mixture, sources)
    assert_terms_close(got, want)
    # sanity: every term is non-trivial here
    assert np.all(want["ms"] > 1.0)
    frames = 1 + (n - N_FFT) // HOP
    assert np.all(np.abs(want["fc"] - frames) > 1e-3 * frames)
    assert np.all(want["sd"] > 0) and np.all(want["mc"] < 0)


@pytest.mark.parametrize("n", [16384, 2048])
@pytest.mark.parametrize("k", [2, 3])
def test_matches_reference_mixture_is_sum(k, n):
    sources = make_sources(30 + k, 3, k, n)
    m_t, s_t = as_torch(sources.sum(axis=1), sources)
    mixture = s_t.sum(dim=1).numpy()  # the float32 sum, so m_hat == m up to STFT rounding
    got, want = run_both(mixture, s_t.numpy())
    frames = 1 + (n - N_FFT) // HOP
    # L_ms is ~0 (float32 rounding only), so compare it against the size of S itself.
    S = np_logpow(np_stft(mixture.astype(np.float64)))
    scale = sum(np.abs(lv).sum(axis=(-2, -1)) for lv in np_levels(S))
    assert np.all(want["ms"] < 1e-7 * scale)  # float32 vs float64 sum of the sources
    assert np.all(got["ms"] < 1e-5 * scale)
    np.testing.assert_allclose(want["fc"], frames, rtol=1e-7)
    assert_terms_close(got, want, terms=("sd", "mc", "fc"))
    np.testing.assert_allclose(
        got["total"], want["total"], rtol=RTOL, atol=0.3 * 1e-5 * scale.max()
    )


@pytest.mark.parametrize("k", [2, 3])
def test_matches_reference_float64_tightly(k):
    """In float64 end to end the only differences left are summation order (and the
    library's 1e-12 guard in alpha's denominator), so every term, the total included,
    must agree to ~1e-9. This is what makes the total sensitive to each weight: in
    float32 L_ms dominates the total and a small change of the mc or sd weight hides
    inside the 1e-4 tolerance."""
    sources = make_sources(80 + k, 2, k, 4096)
    mixture = other_mixture(90 + k, sources)
    got = separation_losses(torch.from_numpy(mixture), torch.from_numpy(sources))
    got = {key: v.numpy() for key, v in got.items()}
    want = np_losses(mixture, sources)
    assert_terms_close(got, want, rtol=1e-9)
    got_w = separation_losses(
        torch.from_numpy(mixture), torch.from_numpy(sources), {"mc": 3.0, "fc": 0.0}
    )["total"].numpy()
    np.testing.assert_allclose(got_w, np_losses(mixture, sources, {"mc": 3.0, "fc": 0.0})["total"], rtol=1e-9)


@pytest.mark.parametrize("term", ["mc", "ms", "fc", "sd"])
def test_each_weight_selects_its_term(term):
    sources = make_sources(95, 2, 2, 4096)
    mixture = other_mixture(96, sources)
    m_t, s_t = torch.from_numpy(mixture), torch.from_numpy(sources)
    one_hot = {key: float(key == term) for key in PAPER_WEIGHTS}
    out = separation_losses(m_t, s_t, one_hot)
    np.testing.assert_allclose(out["total"].numpy(), out[term].numpy(), rtol=1e-12)
    # and each default weight, read back from the total, is the paper's
    default = separation_losses(m_t, s_t)
    rest = sum(PAPER_WEIGHTS[key] * default[key] for key in PAPER_WEIGHTS if key != term)
    weight = ((default["total"] - rest) / default[term]).numpy()
    np.testing.assert_allclose(weight, PAPER_WEIGHTS[term], rtol=1e-6)


def test_custom_weights_dict():
    sources = make_sources(40, 3, 2, 4096)
    mixture = other_mixture(41, sources)
    weights = {"mc": 2.0, "sd": 0.05}  # ms, fc keep the paper's values
    got, want = run_both(mixture, sources, weights)
    assert_terms_close(got, want)
    # total is the weighted sum with the custom weights, and differs from the default
    w = dict(PAPER_WEIGHTS, **weights)
    np.testing.assert_allclose(got["total"], sum(w[k] * got[k] for k in PAPER_WEIGHTS), rtol=1e-6)
    default = np_losses(mixture.astype(np.float32), sources.astype(np.float32))["total"]
    assert not np.allclose(got["total"], default, rtol=1e-3)
    # a LossWeights instance gives the same thing
    m_t, s_t = as_torch(mixture, sources)
    lw = separation_losses(m_t, s_t, LossWeights(mc=2.0, sd=0.05))["total"].double().numpy()
    np.testing.assert_allclose(lw, got["total"], rtol=1e-6)


def test_total_uses_paper_weights_by_default():
    sources = make_sources(42, 2, 2, 4096)
    mixture = other_mixture(43, sources)
    m_t, s_t = as_torch(mixture, sources)
    got = {k: v.double().numpy() for k, v in separation_losses(m_t, s_t).items()}
    expect = 0.1 * got["mc"] + 0.3 * got["ms"] + 0.8 * got["fc"] + 0.4 * got["sd"]
    np.testing.assert_allclose(got["total"], expect, rtol=1e-6)


# --------------------------------------------------------------------------------------
# Hand-checked special cases
# --------------------------------------------------------------------------------------


def test_ms_zero_and_fc_frames_when_fit_is_exact():
    rng = np.random.default_rng(5)
    m = torch.from_numpy(rng.standard_normal((2, 16384)).astype(np.float32) * 0.3)
    # m_hat = m/2 + m/2: halving is exact in binary floating point, so m_hat == m exactly.
    sources = torch.stack([m / 2, m / 2], dim=1)
    out = separation_losses(m, sources)
    assert torch.all(out["ms"] == 0.0), out["ms"]
    np.testing.assert_allclose(out["fc"].numpy(), 127.0, rtol=1e-6)
    # and the reference agrees
    want = np_losses(m.double().numpy(), sources.double().numpy())
    assert np.all(want["ms"] == 0.0)
    np.testing.assert_allclose(want["fc"], 127.0, rtol=1e-12)


def test_exclusion_is_not_symmetric_and_matches_reference_both_ways():
    sources = make_sources(50, 3, 2, 16384)
    A = np_logpow(np_stft(sources[:, 0].astype(np.float32)))
    B = np_logpow(np_stft(sources[:, 1].astype(np.float32)))
    a_t, b_t = torch.from_numpy(A.astype(np.float32)), torch.from_numpy(B.astype(np.float32))
    ab = exclusion(a_t, b_t).double().numpy()
    ba = exclusion(b_t, a_t).double().numpy()
    want_ab = np.array([np_exclusion(A[i].astype(np.float32), B[i].astype(np.float32)) for i in range(3)])
    want_ba = np.array([np_exclusion(B[i].astype(np.float32), A[i].astype(np.float32)) for i in range(3)])
    np.testing.assert_allclose(ab, want_ab, rtol=RTOL)
    np.testing.assert_allclose(ba, want_ba, rtol=RTOL)
    # alpha = 2 mean|gA| / mean|gB| is asymmetric, so E(A, B) != E(B, A) in general
    assert np.all(np.abs(want_ab - want_ba) > 1e-3 * np.abs(want_ab))


def test_exclusion_of_identical_images():
    # A == B: alpha = 2 everywhere, Psi = (mean tanh^2(g/2) tanh^2(g))^(1/4)
    img = np_logpow(np_stft(make_sources(51, 1, 2, 4096)[0, 0]))
    got = exclusion(torch.from_numpy(img)[None], torch.from_numpy(img)[None]).item()
    psis = []
    for lv in np_levels(img):
        for axis in (0, 1):
            g = np.diff(lv, axis=axis)
            psis.append((np.mean(np.tanh(g / 2) ** 2 * np.tanh(g) ** 2)) ** 0.25)
    assert got == pytest.approx(np.mean(psis), rel=1e-9)


# --------------------------------------------------------------------------------------
# Batch independence (alpha per mixture, per-mixture reduction)
# --------------------------------------------------------------------------------------


def _batch_for_independence():
    """One ordinary mixture, a loud one and a nearly silent one (sources peak-normalised)."""
    n = 8192
    base = make_sources(60, 1, 2, n)
    base_mix = other_mixture(61, base)
    loud = make_sources(62, 1, 2, n)
    loud_mix = 8.0 * other_mixture(63, loud)
    quiet = make_sources(64, 1, 2, n)
    quiet_mix = 1e-3 * other_mixture(65, quiet)
    sources = np.concatenate([base, loud, quiet], axis=0)
    mixture = np.concatenate([base_mix, loud_mix, quiet_mix], axis=0)
    return mixture, sources


def test_losses_do_not_depend_on_batch_mates():
    mixture, sources = _batch_for_independence()
    m_t, s_t = as_torch(mixture, sources)
    batched = separation_losses(m_t, s_t)
    for i in range(len(mixture)):
        alone = separation_losses(m_t[i : i + 1], s_t[i : i + 1])
        for key in TERMS:
            np.testing.assert_allclose(
                batched[key][i : i + 1].numpy(), alone[key].numpy(), rtol=1e-5, err_msg=f"{key} [{i}]"
            )
    # reversing the batch order changes nothing either
    rev = separation_losses(m_t.flip(0), s_t.flip(0))
    for key in TERMS:
        np.testing.assert_allclose(rev[key].flip(0).numpy(), batched[key].numpy(), rtol=1e-5)


def _np_sd_batch_alpha(images_a: np.ndarray, images_b: np.ndarray) -> np.ndarray:
    """E(A_i, B_i) per mixture, but with alpha computed over the whole batch (public code)."""
    levels_a = [np_levels(a) for a in images_a]
    levels_b = [np_levels(b) for b in images_b]
    alphas = {}
    for level in range(3):
        for axis in (0, 1):
            ga = np.concatenate([np.diff(la[level], axis=axis).ravel() for la in levels_a])
            gb = np.concatenate([np.diff(lb[level], axis=axis).ravel() for lb in levels_b])
            alphas[level, axis] = 2.0 * np.abs(ga).mean() / np.abs(gb).mean()
    return np.array(
        [np_exclusion(a, b, alpha_fn=lambda lv, ax: alphas[lv, ax]) for a, b in zip(images_a, images_b)]
    )


def test_batch_wide_alpha_would_be_detected():
    """Regression guard: with a batch-wide alpha (as in the public code) the loud and the
    quiet batch mates would change every mixture's L_mc and L_sd; priorsep matches the
    per-mixture reference, and the two references are far apart, so this can fail."""
    mixture, sources = _batch_for_independence()
    m_t, s_t = as_torch(mixture, sources)
    got = separation_losses(m_t, s_t)
    m64, s64 = m_t.double().numpy(), s_t.double().numpy()

    S_mix = np_logpow(np_stft(m64))
    S_hat = np_logpow(np_stft(s64.sum(axis=1)))
    mc_per = -np.array([np_exclusion(a, b) for a, b in zip(S_mix, S_hat)])
    mc_batch = -_np_sd_batch_alpha(S_mix, S_hat)
    assert np.all(np.abs(mc_batch - mc_per) > 20 * RTOL * np.abs(mc_per)), (mc_per, mc_batch)
    # the nearly silent mixture sits near the Psi floor in float32; compare the others tightly
    np.testing.assert_allclose(got["mc"].double().numpy()[:2], mc_per[:2], rtol=RTOL)
    assert not np.allclose(got["mc"].double().numpy(), mc_batch, rtol=20 * RTOL)

    A = np_logpow(np_stft(s64[:, 0]))
    B = np_logpow(np_stft(s64[:, 1]))
    sd_per = np.array([np_exclusion(a, b) for a, b in zip(A, B)])
    sd_batch = _np_sd_batch_alpha(A, B)
    assert np.all(np.abs(sd_batch - sd_per) > 20 * RTOL * sd_per), (sd_per, sd_batch)
    np.testing.assert_allclose(got["sd"].double().numpy(), sd_per, rtol=RTOL)
    assert not np.allclose(got["sd"].double().numpy(), sd_batch, rtol=20 * RTOL)


# --------------------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mix_shape, src_shape",
    [
        ((3, 4096), (2, 2, 4096)),  # mismatched B
        ((3, 4096), (3, 2, 4000)),  # mismatched T
        ((3, 4096), (3, 1, 4096)),  # K = 1
        ((4096,), (1, 2, 4096)),  # 1-D mixture
    ],
)
def test_shape_errors_name_both_shapes(mix_shape, src_shape):
    with pytest.raises(ValueError) as info:
        separation_losses(torch.zeros(mix_shape), torch.zeros(src_shape))
    msg = str(info.value)
    assert str(tuple(mix_shape)) in msg and str(tuple(src_shape)) in msg, msg


def test_unknown_weight_key():
    sources = torch.from_numpy(make_sources(70, 1, 2, 2048).astype(np.float32))
    with pytest.raises(ValueError, match="bogus"):
        separation_losses(sources.sum(1), sources, {"bogus": 1.0})
