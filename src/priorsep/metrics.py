"""Separation quality metrics (METHOD.md section 4).

Every estimated source is scored against its own true source (estimate ``k``
against source ``k``; no permutation search):

* **SI-SDR** -- scale-invariant signal-to-distortion ratio, Le Roux, Wisdom,
  Erdogan and Hershey, "SDR -- half-baked or well done?", ICASSP 2019,
  arXiv:1811.02508. Not in the paper being reproduced; reported because it shows
  whether the *waveform* (not only its magnitude) was recovered.
* **Spectral SNR** -- ``10 log10(sum |S|^2 / sum (|S| - |S_hat|)^2)`` on STFT
  magnitudes (n_fft 256, hop 128, periodic Hann, centred with zero padding, i.e.
  librosa's default). Magnitude only: it ignores phase.
* **Envelope distance** -- RMS difference of the Hilbert amplitude envelopes.
  Lower is better.
* **SDR / SIR / SAR** -- BSS Eval v4 (museval's ``metrics.bss_eval``) with one
  window covering the whole clip and 512-tap distortion filters. museval is an
  optional dependency (``pip install 'priorsep[eval]'``); the other metrics need
  only numpy and scipy.

:func:`evaluate` computes all of them for one mixture, :func:`aggregate`
summarises many mixtures with both the median and the mean (both labelled).

All functions accept numpy arrays or torch tensors (detached and moved to the
CPU if needed) and compute in float64 with numpy/scipy.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from types import ModuleType
from typing import Any, Sequence

import numpy as np
import scipy.signal

from ._extras import missing

__all__ = [
    "si_sdr",
    "spectral_snr",
    "stft_magnitude",
    "envelope_distance",
    "bss_eval",
    "evaluate",
    "aggregate",
    "best_permutation",
    "METRIC_KEYS",
]

#: Keys of the per-source dictionaries returned by :func:`evaluate`.
METRIC_KEYS = ("si_sdr", "sdr", "sir", "spectral_snr", "envelope_distance")

#: Relative guard for the dB ratios of :func:`si_sdr` and :func:`spectral_snr`.
#: It bounds them to about +-120 dB (``10 log10(1 / 1e-12)``) instead of +-inf.
_REL_EPS = 1e-12

#: STFT parameters of the spectral SNR (METHOD.md section 4).
N_FFT = 256
HOP = 128

#: Length of the BSS Eval distortion filters (METHOD.md section 4).
BSS_FILTERS_LEN = 512


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _as_float64(x: Any) -> np.ndarray:
    """Convert a numpy array / torch tensor / array-like to a float64 ndarray."""
    if hasattr(x, "detach"):  # torch.Tensor (possibly requiring grad or on GPU)
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair_1d(reference: Any, estimate: Any) -> tuple[np.ndarray, np.ndarray]:
    """Convert and check a (reference, estimate) pair of 1-D signals [T]."""
    s = _as_float64(reference)
    s_hat = _as_float64(estimate)
    if s.ndim != 1 or s_hat.shape != s.shape:
        raise ValueError(
            "expected two 1-D signals of equal length [T], got reference shape "
            f"{s.shape} and estimate shape {s_hat.shape}"
        )
    if s.size == 0:
        raise ValueError("signals are empty")
    return s, s_hat


def _pair_2d(references: Any, estimates: Any) -> tuple[np.ndarray, np.ndarray]:
    """Convert and check a (references, estimates) pair of shape [K, T]."""
    refs = _as_float64(references)
    ests = _as_float64(estimates)
    if refs.ndim != 2 or ests.ndim != 2 or refs.shape != ests.shape:
        raise ValueError(
            "references and estimates must both be 2-D [K, T] with the same "
            f"shape, got references shape {refs.shape} and estimates shape "
            f"{ests.shape}"
        )
    if refs.shape[0] == 0 or refs.shape[1] == 0:
        raise ValueError(f"empty input: references shape {refs.shape}")
    return refs, ests


# --------------------------------------------------------------------------- #
# SI-SDR
# --------------------------------------------------------------------------- #
def si_sdr(reference: Any, estimate: Any) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019, arXiv:1811.02508).

    Args:
        reference: true source ``s``, shape ``[T]``.
        estimate: estimated source ``s_hat``, shape ``[T]``.

    Returns:
        ``10 log10(||alpha s||^2 / ||s_hat - alpha s||^2)`` with
        ``alpha = <s_hat, s> / ||s||^2``, after removing the mean of each
        signal (the usual toolkit convention, e.g. asteroid).

    Numerical guard: with ``E = ||s_hat||^2 = ||alpha s||^2 + ||s_hat - alpha s||^2``
    (after mean removal) the ratio computed is
    ``(||alpha s||^2 + eps E) / (||s_hat - alpha s||^2 + eps E)`` with
    ``eps = 1e-12``. This keeps the metric scale invariant and bounds it to
    about +-120 dB: a perfect estimate gives ~120 dB instead of ``inf`` and an
    estimate orthogonal to the source ~-120 dB instead of ``-inf``. The bias is
    about ``4.3e-12 * 10**(|x| / 10)`` dB at a true value of ``x`` dB: below
    5e-6 dB for ``|x| <= 60`` dB, 0.04 dB at 100 dB.
    If the reference or the estimate is constant (zero after mean removal) the
    metric is undefined and ``nan`` is returned.
    """
    s, s_hat = _pair_1d(reference, estimate)
    s = s - s.mean()
    s_hat = s_hat - s_hat.mean()
    ref_energy = float(np.dot(s, s))
    est_energy = float(np.dot(s_hat, s_hat))
    if ref_energy == 0.0 or est_energy == 0.0:
        return float("nan")
    alpha = np.dot(s_hat, s) / ref_energy
    target = alpha * s
    residual = s_hat - target
    num = float(np.dot(target, target)) + _REL_EPS * est_energy
    den = float(np.dot(residual, residual)) + _REL_EPS * est_energy
    return float(10.0 * np.log10(num / den))


# --------------------------------------------------------------------------- #
# Spectral SNR
# --------------------------------------------------------------------------- #
def stft_magnitude(x: Any, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Magnitude of a centred STFT, matching ``librosa.stft`` defaults.

    The signal is zero-padded by ``n_fft // 2`` samples on both sides
    (``center=True, pad_mode='constant'``), cut into frames of ``n_fft``
    samples every ``hop`` samples, multiplied by a periodic Hann window and
    Fourier transformed: ``scipy.signal.stft`` without its own padding and
    detrending, its ``1 / sum(window)`` scaling undone, so no normalisation is
    applied. The centring pad is added here rather than by scipy's
    ``boundary="zeros"`` because scipy refuses a signal shorter than the window
    before padding it.

    Args:
        x: signal, shape ``[T]``.
        n_fft: frame / FFT length.
        hop: hop length.

    Returns:
        ``|S|``, shape ``[n_fft // 2 + 1, 1 + T // hop]`` (frequency, frame).
    """
    x = _as_float64(x)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal [T], got shape {x.shape}")
    pad = n_fft // 2
    padded = np.pad(x, (pad, pad), mode="constant")
    window = scipy.signal.get_window("hann", n_fft)  # periodic ("DFT-even"), as librosa's
    _, _, spec = scipy.signal.stft(
        padded, window=window, nperseg=n_fft, noverlap=n_fft - hop, boundary=None, padded=False,
        detrend=False, return_onesided=True, scaling="spectrum",
    )  # [freq, frames], scaled by 1 / sum(window)
    return np.abs(spec) * window.sum()


def spectral_snr(reference: Any, estimate: Any) -> float:
    """Magnitude-spectrogram SNR in dB (METHOD.md section 4).

    ``10 log10(sum |S|^2 / sum (|S| - |S_hat|)^2)`` with ``|S|`` from
    :func:`stft_magnitude` (n_fft 256, hop 128, periodic Hann, centred with
    zero padding). Phase is ignored: ``-s`` or any estimate with the same
    magnitudes scores like a perfect estimate.

    Numerical guard: the denominator gets ``1e-12 * sum |S|^2`` added, so an
    estimate with exactly the reference's magnitudes (e.g. ``s_hat = s`` or
    ``s_hat = -s``) gives exactly 120 dB rather than ``inf``; the bias is
    below 5e-6 dB for values up to 60 dB (0.04 dB at 100 dB). A silent
    reference (``sum |S|^2 = 0``) gives ``nan``.

    Args:
        reference: true source, shape ``[T]``.
        estimate: estimated source, shape ``[T]``.
    """
    s, s_hat = _pair_1d(reference, estimate)
    mag = stft_magnitude(s)
    mag_hat = stft_magnitude(s_hat)
    num = float(np.sum(mag**2))
    if num == 0.0:
        return float("nan")
    den = float(np.sum((mag - mag_hat) ** 2)) + _REL_EPS * num
    return float(10.0 * np.log10(num / den))


# --------------------------------------------------------------------------- #
# Envelope distance
# --------------------------------------------------------------------------- #
def envelope_distance(reference: Any, estimate: Any) -> float:
    """RMS difference of the Hilbert amplitude envelopes (lower is better).

    ``sqrt(mean((|hilbert(s)| - |hilbert(s_hat)|)^2))`` over all ``T``
    samples, with ``scipy.signal.hilbert`` (FFT based, so it treats the clip
    as periodic; the envelope is least accurate near the clip edges).

    Args:
        reference: true source, shape ``[T]``.
        estimate: estimated source, shape ``[T]``.
    """
    s, s_hat = _pair_1d(reference, estimate)
    diff = np.abs(scipy.signal.hilbert(s)) - np.abs(scipy.signal.hilbert(s_hat))
    return float(np.sqrt(np.mean(diff**2)))


# --------------------------------------------------------------------------- #
# BSS Eval v4 (museval)
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=1)
def _museval_metrics() -> ModuleType:
    """Load ``museval/metrics.py`` on its own and return it as a module.

    Why not ``import museval.metrics``: importing any submodule first executes
    ``museval/__init__.py``, which imports ``musdb`` and hence ``stempeg``, and
    ``stempeg`` raises at import time when no ``ffmpeg``/``ffprobe`` binary is
    on the PATH. ``metrics.py`` itself only needs numpy and scipy. So we locate
    the installed package directory without executing it (``find_spec`` on a
    top-level package does not run its ``__init__``) and execute just that
    file under a private module name. The result is cached so the file is
    loaded once per process.
    """
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise missing("museval", "eval", "BSS Eval (SDR, SIR)")
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "metrics.py")
        if os.path.isfile(path):
            break
    else:
        raise ImportError(
            f"museval found at {list(spec.submodule_search_locations)} but it "
            "has no metrics.py"
        )
    file_spec = importlib.util.spec_from_file_location("_priorsep_museval_metrics", path)
    if file_spec is None or file_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module


def bss_eval(references: Any, estimates: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BSS Eval v4 SDR, SIR and SAR (museval ``metrics.bss_eval``), in dB.

    One window covering the whole clip (``window = hop = T``), 512-tap
    time-invariant distortion filters, ``bss_eval_images`` variant (museval's
    default), ``compute_permutation=False``: estimate ``k`` is scored against
    source ``k``. Mono signals are passed to museval as ``[K, T, 1]``.

    museval rejects all-zero references or estimates with a ``ValueError``
    (see :func:`evaluate` for how it handles a silent estimate).

    Note (museval 0.4.1 with numpy >= 2): if the least-squares system for the
    distortion filters is exactly singular, museval's fallback
    ``except np.linalg.linalg.LinAlgError`` itself fails with
    ``AttributeError`` because ``numpy.linalg.linalg`` no longer exists. The
    system is regularised by machine epsilon, so this is not reached in
    practice.

    Args:
        references: true sources, shape ``[K, T]``.
        estimates: estimated sources, shape ``[K, T]``.

    Returns:
        ``(sdr, sir, sar)``, each a float64 array of shape ``[K]``.

    Raises:
        MissingDependencyError: museval is not installed (``pip install 'priorsep[eval]'``).
    """
    refs, ests = _pair_2d(references, estimates)
    n_samples = refs.shape[1]
    sdr, _isr, sir, sar, _perm = _museval_metrics().bss_eval(
        refs[:, :, None],
        ests[:, :, None],
        window=n_samples,
        hop=n_samples,
        compute_permutation=False,
        filters_len=BSS_FILTERS_LEN,
        framewise_filters=False,
        bsseval_sources_version=False,
    )
    # museval returns [K, n_windows]; with window = T there is exactly one.
    return (
        np.asarray(sdr, dtype=np.float64)[:, 0],
        np.asarray(sir, dtype=np.float64)[:, 0],
        np.asarray(sar, dtype=np.float64)[:, 0],
    )


# --------------------------------------------------------------------------- #
# per-mixture evaluation and aggregation
# --------------------------------------------------------------------------- #
def evaluate(references: Any, estimates: Any) -> list[dict[str, float]]:
    """All METHOD.md section 4 metrics for one mixture.

    Args:
        references: true sources, shape ``[K, T]`` (numpy or torch).
        estimates: estimated sources, shape ``[K, T]``; estimate ``k`` is
            scored against reference ``k``.

    Returns:
        ``K`` dicts (one per source) with keys ``si_sdr``, ``sdr``, ``sir``,
        ``spectral_snr``, ``envelope_distance`` (python floats, dB except the
        envelope distance, which is in signal units).

    Raises:
        ValueError: if the inputs are not 2-D or their shapes differ (the
            message names both shapes), or if a reference is all zeros.
        MissingDependencyError: museval (for SDR and SIR) is not installed.

    With a single source (``K = 1``) there is no interference and museval
    reports ``sir = inf``.

    If an estimate is all zeros, BSS Eval is undefined (museval refuses it);
    ``sdr`` and ``sir`` are then ``nan`` for every source of this mixture and a
    ``RuntimeWarning`` is issued. :func:`aggregate` ignores ``nan`` values.
    """
    refs, ests = _pair_2d(references, estimates)
    silent_refs = np.flatnonzero(np.all(refs == 0.0, axis=1))
    if silent_refs.size:
        raise ValueError(f"reference source(s) {silent_refs.tolist()} are all zeros")

    n_src = refs.shape[0]
    silent_ests = np.flatnonzero(np.all(ests == 0.0, axis=1))
    if silent_ests.size:
        warnings.warn(
            f"estimate(s) {silent_ests.tolist()} are all zeros; BSS Eval SDR/SIR "
            "set to nan for this mixture",
            RuntimeWarning,
            stacklevel=2,
        )
        sdr = np.full(n_src, np.nan)
        sir = np.full(n_src, np.nan)
    else:
        sdr, sir, _sar = bss_eval(refs, ests)

    results = []
    for k in range(n_src):
        results.append(
            {
                "si_sdr": si_sdr(refs[k], ests[k]),
                "sdr": float(sdr[k]),
                "sir": float(sir[k]),
                "spectral_snr": spectral_snr(refs[k], ests[k]),
                "envelope_distance": envelope_distance(refs[k], ests[k]),
            }
        )
    return results


def aggregate(results: Sequence[Sequence[dict[str, float]]]) -> dict[str, Any]:
    """Summarise per-mixture results with the median and the mean.

    Args:
        results: one entry per mixture, each a list (one per source) of metric
            dicts as returned by :func:`evaluate`. All mixtures must have the
            same number of sources and the same metric keys.

    Returns:
        ``{"median": [dict per source], "mean": [dict per source], "n": M}``
        where each dict maps metric name -> python float and ``M`` is the
        number of mixtures. Statistics are taken over mixtures, separately for
        each source index and metric, with ``np.nanmedian`` / ``np.nanmean``:
        ``nan`` values (undefined metrics) are ignored, and a metric that is
        ``nan`` for every mixture aggregates to ``nan``. ``+-inf`` values are
        not ignored (they make the mean infinite).

    Raises:
        ValueError: on an empty list or inconsistent source counts / keys.
    """
    if len(results) == 0:
        raise ValueError("aggregate() needs at least one mixture")
    n_src = len(results[0])
    if n_src == 0:
        raise ValueError("mixture 0 has no sources")
    keys = list(results[0][0].keys())
    for m, mixture in enumerate(results):
        if len(mixture) != n_src:
            raise ValueError(
                f"mixture {m} has {len(mixture)} sources, mixture 0 has {n_src}"
            )
        for k, source in enumerate(mixture):
            if set(source.keys()) != set(keys):
                raise ValueError(
                    f"mixture {m} source {k} has keys {sorted(source.keys())}, "
                    f"expected {sorted(keys)}"
                )

    medians: list[dict[str, float]] = []
    means: list[dict[str, float]] = []
    for k in range(n_src):
        med_k: dict[str, float] = {}
        mean_k: dict[str, float] = {}
        for key in keys:
            values = np.array([float(mix[k][key]) for mix in results], dtype=np.float64)
            if np.all(np.isnan(values)):
                # nanmedian/nanmean warn on all-nan input; the answer is nan.
                med_k[key] = float("nan")
                mean_k[key] = float("nan")
            else:
                med_k[key] = float(np.nanmedian(values))
                mean_k[key] = float(np.nanmean(values))
        medians.append(med_k)
        means.append(mean_k)
    return {"median": medians, "mean": means, "n": len(results)}


def best_permutation(references: Any, estimates: Any) -> Any:
    """Reorder estimates to match references: the permutation maximising mean SI-SDR.

    For methods whose K estimates come in no particular order (unsupervised
    decompositions); searches all K! orders, fine for K <= 4 (24 orders).
    SI-SDR values that are ``nan`` (a constant estimate) count as -inf.

    Args:
        references: true sources ``[K, T]`` (numpy or torch).
        estimates: estimates ``[K, T]`` (numpy or torch).

    Returns:
        ``estimates`` reordered (same type), so that row ``k`` is scored against
        reference ``k``.
    """
    import itertools

    refs, ests = _pair_2d(references, estimates)
    k = refs.shape[0]
    scores = np.array([[si_sdr(refs[i], ests[j]) for j in range(k)] for i in range(k)])
    scores = np.where(np.isnan(scores), -np.inf, scores)  # [reference, estimate]
    best = max(
        itertools.permutations(range(k)),
        key=lambda perm: float(np.mean([scores[i, perm[i]] for i in range(k)])),
    )
    return estimates[list(best)]
