"""Tests for priorsep.metrics (METHOD.md section 4)."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
import scipy.signal

from priorsep import metrics
from priorsep.metrics import (
    aggregate,
    bss_eval,
    envelope_distance,
    evaluate,
    si_sdr,
    spectral_snr,
    stft_magnitude,
)


def _orthogonal_pair(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean s and zero-mean e with <s, e> = 0 (to rounding)."""
    s = rng.standard_normal(n)
    s -= s.mean()
    e = rng.standard_normal(n)
    e -= e.mean()
    e -= (e @ s) / (s @ s) * s  # Gram-Schmidt: stays zero-mean
    return s, e


def _band_noise(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "low":
        sos = scipy.signal.butter(8, 0.2, btype="low", output="sos")
    else:
        sos = scipy.signal.butter(8, 0.5, btype="high", output="sos")
    return scipy.signal.sosfilt(sos, rng.standard_normal(n))


# --------------------------------------------------------------------------- #
# SI-SDR
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("c", [0.1, 0.5, 1.0, 3.0])
def test_si_sdr_closed_form_with_orthogonal_noise(c):
    rng = np.random.default_rng(0)
    s, e = _orthogonal_pair(rng, 4000)
    assert abs(s @ e) < 1e-9 * np.linalg.norm(s) * np.linalg.norm(e)
    expected = 10 * math.log10((s @ s) / (c**2 * (e @ e)))
    assert si_sdr(s, s + c * e) == pytest.approx(expected, abs=1e-9)


def test_si_sdr_known_value_on_sinusoids():
    # sin and cos over whole periods: zero mean, orthogonal, equal energy.
    t = np.arange(1000)
    s = np.sin(2 * np.pi * 5 * t / 1000)
    e = np.cos(2 * np.pi * 5 * t / 1000)
    # residual energy = 0.25 * ||s||^2  -> 10 log10(4) dB
    assert si_sdr(s, s + 0.5 * e) == pytest.approx(10 * math.log10(4.0), abs=1e-9)


def test_si_sdr_scale_and_offset_invariance():
    rng = np.random.default_rng(1)
    s, e = _orthogonal_pair(rng, 3000)
    est = s + 0.3 * e
    base = si_sdr(s, est)
    for gain in (1e-3, 0.7, 25.0, -4.0):
        assert si_sdr(s, gain * est) == pytest.approx(base, abs=1e-9)
    # mean removal: a DC offset on either signal does not matter
    assert si_sdr(s + 2.0, est - 5.0) == pytest.approx(base, abs=1e-9)
    # and it is not symmetric nonsense: a worse estimate scores lower
    assert si_sdr(s, s + 1.0 * e) < base - 5


def test_si_sdr_perfect_is_large_but_finite_and_degenerate_is_nan():
    rng = np.random.default_rng(2)
    s = rng.standard_normal(2000)
    perfect = si_sdr(s, s)
    assert math.isfinite(perfect) and perfect > 100
    assert si_sdr(s, 1e-6 * s) == pytest.approx(perfect, abs=1.0)
    # orthogonal estimate -> large negative, finite
    s0, e0 = _orthogonal_pair(rng, 2000)
    assert -130 < si_sdr(s0, e0) < -100
    assert math.isnan(si_sdr(s, np.zeros_like(s)))
    assert math.isnan(si_sdr(np.ones(100), rng.standard_normal(100)))


def test_si_sdr_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(10,\).*\(11,\)"):
        si_sdr(np.ones(10), np.ones(11))
    with pytest.raises(ValueError):
        si_sdr(np.ones((2, 10)), np.ones((2, 10)))


# --------------------------------------------------------------------------- #
# STFT magnitude / spectral SNR
# --------------------------------------------------------------------------- #
def test_stft_magnitude_matches_direct_dft_loop():
    rng = np.random.default_rng(3)
    n_fft, hop = 16, 8
    x = rng.standard_normal(45)  # not a multiple of hop
    mag = stft_magnitude(x, n_fft=n_fft, hop=hop)
    n_frames = 1 + len(x) // hop
    assert mag.shape == (n_fft // 2 + 1, n_frames)
    padded = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft // 2)])
    window = [0.5 - 0.5 * math.cos(2 * math.pi * n / n_fft) for n in range(n_fft)]
    for t in range(n_frames):
        for k in range(n_fft // 2 + 1):
            acc = 0j
            for n in range(n_fft):
                acc += padded[t * hop + n] * window[n] * complex(
                    math.cos(2 * math.pi * k * n / n_fft), -math.sin(2 * math.pi * k * n / n_fft)
                )
            assert mag[k, t] == pytest.approx(abs(acc), abs=1e-10)


def test_stft_magnitude_of_a_clip_shorter_than_the_window():
    # 100 samples, n_fft 256: centring gives 1 + 100 // 128 = 1 frame, the clip in its middle
    rng = np.random.default_rng(15)
    x = rng.standard_normal(100)
    mag = stft_magnitude(x)
    assert mag.shape == (129, 1)
    frame = np.concatenate([np.zeros(128), x, np.zeros(28)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)
    np.testing.assert_allclose(mag[:, 0], np.abs(np.fft.rfft(frame * window)), rtol=1e-10, atol=1e-10)


def test_stft_magnitude_matches_scipy_stft():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(128 * 20)
    mag = stft_magnitude(x)
    win = scipy.signal.get_window("hann", 256)  # periodic by default
    _, _, z = scipy.signal.stft(
        x, window=win, nperseg=256, noverlap=128, boundary="zeros", padded=False,
        detrend=False, return_onesided=True, scaling="spectrum",
    )
    ref = np.abs(z) * win.sum()  # undo scipy's 1/sum(window) scaling
    assert mag.shape == ref.shape == (129, 21)
    np.testing.assert_allclose(mag, ref, rtol=1e-10, atol=1e-10)


def test_stft_magnitude_of_bin_centred_cosine():
    # A unit cosine at bin k0: periodic Hann has coherent gain 1/2, so
    # |S[k0]| = n_fft * 0.5 / 2 = 64 in every fully interior frame.
    n = np.arange(256 * 10)
    k0 = 12
    x = np.cos(2 * np.pi * k0 * n / 256)
    mag = stft_magnitude(x)
    interior = mag[:, 2:-2]
    np.testing.assert_allclose(interior[k0], 64.0, rtol=1e-10)
    np.testing.assert_allclose(interior[k0 - 1], 32.0, rtol=1e-10)
    assert np.max(np.delete(interior, [k0 - 1, k0, k0 + 1], axis=0)) < 1e-9


def test_spectral_snr_hand_cases():
    rng = np.random.default_rng(5)
    s = rng.standard_normal(3000)
    assert spectral_snr(s, 0.5 * s) == pytest.approx(10 * math.log10(4.0), abs=1e-9)
    assert spectral_snr(s, 0.5 * s) == pytest.approx(6.0206, abs=1e-4)
    assert spectral_snr(s, 2.0 * s) == pytest.approx(0.0, abs=1e-9)  # den = num
    # Phase is ignored: -s has identical magnitudes -> the 120 dB cap.
    assert spectral_snr(s, -s) == pytest.approx(120.0, abs=1e-9)
    assert spectral_snr(s, s) == pytest.approx(120.0, abs=1e-9)
    # An independent white-noise "estimate" of white noise: STFT magnitudes are
    # Rayleigh, E|S|^2 = 2v and E(|S| - |S'|)^2 = 2(2v - pi v / 2) = (4 - pi) v,
    # so the expected score is 10 log10(2 / (4 - pi)) = 3.67 dB, not -inf.
    unrelated = spectral_snr(s, rng.standard_normal(3000))
    assert unrelated == pytest.approx(10 * math.log10(2 / (4 - math.pi)), abs=0.3)
    assert si_sdr(s, rng.standard_normal(3000)) < -10
    assert math.isnan(spectral_snr(np.zeros(500), rng.standard_normal(500)))


# --------------------------------------------------------------------------- #
# envelope distance
# --------------------------------------------------------------------------- #
def test_envelope_distance_identity_is_zero():
    rng = np.random.default_rng(6)
    s = rng.standard_normal(1000)
    assert envelope_distance(s, s) == 0.0


def test_envelope_distance_sinusoid_vs_half_amplitude():
    amp = 2.0
    n = np.arange(4000)
    # whole number of periods: hilbert envelope is exact everywhere
    s = amp * np.sin(2 * np.pi * 40 * n / 4000)
    assert envelope_distance(s, 0.5 * s) == pytest.approx(amp / 2, rel=1e-9)
    # phase does not matter for the envelope
    c = amp * np.cos(2 * np.pi * 40 * n / 4000)
    assert envelope_distance(s, c) == pytest.approx(0.0, abs=1e-9)
    # non-integer number of periods: edges deviate, interior stays ~amp/2
    s2 = amp * np.sin(2 * np.pi * 0.01234 * n + 0.3)
    env = np.abs(scipy.signal.hilbert(s2)) - np.abs(scipy.signal.hilbert(0.5 * s2))
    interior = env[400:-400]
    assert np.sqrt(np.mean(interior**2)) == pytest.approx(amp / 2, rel=0.02)
    assert envelope_distance(s2, 0.5 * s2) == pytest.approx(amp / 2, rel=0.1)


# --------------------------------------------------------------------------- #
# BSS Eval
# --------------------------------------------------------------------------- #
def test_bss_eval_small_noise_scores_high():
    rng = np.random.default_rng(7)
    refs = rng.standard_normal((2, 8192))
    ests = refs + 0.01 * rng.standard_normal((2, 8192))
    sdr, sir, sar = bss_eval(refs, ests)
    assert sdr.shape == sir.shape == sar.shape == (2,)
    # noise at -40 dB, minus what the 2x512 filters absorb: ~40 dB
    assert np.all(sdr > 35) and np.all(sdr < 45)
    assert np.all(sir > 40)
    assert np.all(sar > 35)
    # estimate k is scored against source k: no permutation is solved for
    sdr_swapped, sir_swapped, _ = bss_eval(refs, ests[::-1].copy())
    assert np.all(sdr_swapped < sdr - 20)
    assert np.all(sir_swapped < 0)


def test_bss_eval_swapped_estimates_have_very_negative_sir():
    rng = np.random.default_rng(8)
    refs = np.stack([_band_noise(rng, 8192, "low"), _band_noise(rng, 8192, "high")])
    sdr, sir, _ = bss_eval(refs, refs[::-1].copy())
    assert np.all(sir < -20)
    assert np.all(sdr < 0)


def test_bss_eval_uses_512_tap_filters():
    # A 300-sample delay is inside the span of 512-tap distortion filters:
    # no interference, no artifacts (SIR, SAR huge), but in the bss_eval_images
    # variant the filtering counts as distortion, so SDR = 10 log10(1/2) ~ -3 dB
    # (s_true and e_spat = delayed - s_true have equal, independent energy).
    # Shorter filters could not represent the delay and SAR would collapse.
    rng = np.random.default_rng(14)
    refs = rng.standard_normal((2, 4096))
    refs[:, -400:] = 0.0  # silent tail so that the delayed copy is complete
    ests = np.zeros_like(refs)
    ests[:, 300:] = refs[:, :-300]
    sdr, sir, sar = bss_eval(refs, ests)
    assert np.all(sir > 100) and np.all(sar > 100)
    np.testing.assert_allclose(sdr, 10 * math.log10(0.5), atol=0.3)
    assert all(si_sdr(r, e) < -20 for r, e in zip(refs, ests))


def test_museval_is_loaded_without_importing_the_package():
    # museval/__init__ pulls in musdb -> stempeg, which needs ffmpeg; loading
    # must not execute it.
    metrics._museval_metrics.cache_clear()
    before = set(sys.modules)
    module = metrics._museval_metrics()
    added = set(sys.modules) - before
    assert not {m for m in added if m.split(".")[0] in ("museval", "musdb", "stempeg")}
    assert module.__name__ == "_priorsep_museval_metrics"
    assert hasattr(module, "bss_eval")
    assert metrics._museval_metrics() is module  # cached


def test_missing_museval_is_one_install_hint(monkeypatch):
    from priorsep.errors import MissingDependencyError

    rng = np.random.default_rng(16)
    refs = rng.standard_normal((2, 2048))
    metrics._museval_metrics.cache_clear()
    monkeypatch.setitem(sys.modules, "museval", None)  # find_spec now finds nothing
    try:
        hint = r"^museval is needed for BSS Eval \(SDR, SIR\): pip install 'priorsep\[eval\]'$"
        with pytest.raises(MissingDependencyError, match=hint):
            bss_eval(refs, refs + 0.1)
        with pytest.raises(MissingDependencyError, match=hint):
            evaluate(refs, refs + 0.1)
        # the metrics that need only numpy and scipy still work
        assert spectral_snr(refs[0], refs[0]) == pytest.approx(120.0)
    finally:
        metrics._museval_metrics.cache_clear()


# --------------------------------------------------------------------------- #
# evaluate
# --------------------------------------------------------------------------- #
def test_evaluate_returns_plain_floats_per_source():
    rng = np.random.default_rng(10)
    refs = rng.standard_normal((2, 4096))
    ests = refs + 0.1 * rng.standard_normal((2, 4096))
    out = evaluate(refs, ests)
    assert len(out) == 2
    for k, d in enumerate(out):
        assert list(d) == ["si_sdr", "sdr", "sir", "spectral_snr", "envelope_distance"]
        assert all(type(v) is float for v in d.values())
        assert d["si_sdr"] == pytest.approx(si_sdr(refs[k], ests[k]))
        assert 17 < d["si_sdr"] < 23 and 17 < d["sdr"] < 23
        assert d["spectral_snr"] > d["si_sdr"]  # magnitude error < waveform error
        assert 0 < d["envelope_distance"] < 0.2


def test_evaluate_accepts_torch_tensors_with_grad():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    refs = rng.standard_normal((1, 2048))
    ests = refs + 0.05 * rng.standard_normal((1, 2048))
    t_refs = torch.tensor(refs, dtype=torch.float64)
    t_ests = torch.tensor(ests, dtype=torch.float64, requires_grad=True)
    a = evaluate(t_refs, t_ests)
    b = evaluate(refs, ests)
    assert a[0]["sir"] == math.inf  # one source: no interference (museval gives inf)
    for da, db in zip(a, b):
        for key in da:
            assert da[key] == pytest.approx(db[key], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    "ref_shape, est_shape",
    [((2, 100), (2, 101)), ((2, 100), (3, 100)), ((100,), (100,)), ((1, 2, 100), (1, 2, 100))],
)
def test_evaluate_shape_errors_name_both_shapes(ref_shape, est_shape):
    with pytest.raises(ValueError) as info:
        evaluate(np.ones(ref_shape), np.ones(est_shape))
    msg = str(info.value)
    assert str(tuple(ref_shape)) in msg and str(tuple(est_shape)) in msg


def test_evaluate_silent_estimate_gives_nan_bss_and_warns():
    rng = np.random.default_rng(12)
    refs = rng.standard_normal((2, 2048))
    ests = refs.copy()
    ests[1] = 0.0
    with pytest.warns(RuntimeWarning, match="all zeros"):
        out = evaluate(refs, ests)
    assert all(math.isnan(d["sdr"]) and math.isnan(d["sir"]) for d in out)
    assert out[0]["si_sdr"] > 100
    assert math.isnan(out[1]["si_sdr"])
    with pytest.raises(ValueError, match="all zeros"):
        evaluate(ests, refs)  # silent *reference* is an error


# --------------------------------------------------------------------------- #
# aggregate
# --------------------------------------------------------------------------- #
def _d(a, b, c, d, e):
    return {"si_sdr": a, "sdr": b, "sir": c, "spectral_snr": d, "envelope_distance": e}


def test_aggregate_median_and_mean_by_hand():
    nan = float("nan")
    results = [
        [_d(1.0, 0.0, 5.0, nan, 0.1), _d(-2.0, 1.0, 0.0, nan, 1.0)],
        [_d(2.0, 4.0, nan, nan, 0.2), _d(-4.0, 2.0, 0.0, nan, 2.0)],
        [_d(10.0, 8.0, 7.0, nan, 0.6), _d(0.0, 3.0, 30.0, nan, 3.0)],
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all-nan column must not warn
        agg = aggregate(results)
    assert agg["n"] == 3
    med, mean = agg["median"], agg["mean"]
    assert len(med) == len(mean) == 2
    # source 0
    assert med[0]["si_sdr"] == 2.0 and mean[0]["si_sdr"] == pytest.approx(13 / 3)
    assert med[0]["sdr"] == 4.0 and mean[0]["sdr"] == pytest.approx(4.0)
    assert med[0]["sir"] == 6.0 and mean[0]["sir"] == 6.0  # nan ignored
    assert math.isnan(med[0]["spectral_snr"]) and math.isnan(mean[0]["spectral_snr"])
    assert med[0]["envelope_distance"] == pytest.approx(0.2)
    assert mean[0]["envelope_distance"] == pytest.approx(0.3)
    # source 1
    assert med[1]["si_sdr"] == -2.0 and mean[1]["si_sdr"] == -2.0
    assert med[1]["sir"] == 0.0 and mean[1]["sir"] == 10.0
    assert all(type(v) is float for d in med + mean for v in d.values())


def test_aggregate_rejects_inconsistent_input():
    with pytest.raises(ValueError):
        aggregate([])
    with pytest.raises(ValueError):
        aggregate([[_d(1, 1, 1, 1, 1)], [_d(1, 1, 1, 1, 1), _d(1, 1, 1, 1, 1)]])
    with pytest.raises(ValueError):
        aggregate([[_d(1, 1, 1, 1, 1)], [{"si_sdr": 1.0}]])


def test_aggregate_on_evaluate_output():
    rng = np.random.default_rng(13)
    per_mix = []
    for noise in (0.01, 0.1, 1.0):
        refs = rng.standard_normal((1, 2048))
        per_mix.append(evaluate(refs, refs + noise * rng.standard_normal((1, 2048))))
    agg = aggregate(per_mix)
    assert agg["n"] == 3
    values = [mix[0]["si_sdr"] for mix in per_mix]
    assert agg["median"][0]["si_sdr"] == pytest.approx(values[1])
    assert agg["mean"][0]["si_sdr"] == pytest.approx(sum(values) / 3)
    assert agg["mean"][0]["sir"] == math.inf
