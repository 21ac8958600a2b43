"""Unsupervised decompositions of one mixture's magnitude spectrogram (docs/method.md §5).

NMF, FastICA, PCA and KernelPCA (scikit-learn) and Infomax ICA (python-picard) as they can actually separate a
single-channel mixture: each factorises the mixture's magnitude spectrogram
``V [bins, frames]`` (FFT 1024, hop 256; scaled to peak 1) into K components, each
component gives a magnitude image ``[bins, frames]``, and those become ratio masks on
the mixture's STFT (:func:`~priorsep.baselines.base.masked_estimates`), so the K
estimates sum to the mixture. No training data; the components come in no particular
order (``unordered = True``: score with the best permutation).

How a component becomes a magnitude image (for each method, the best of the variants we
measured; their scores are in benchmarks/DESIGN.md, "Unsupervised decompositions"):

- NMF (frames as samples): ``V^T ~ A H``, part k = ``A[:, k] H[k]``, non-negative
  already (Smaragdis & Brown, WASPAA 2003). Generalised KL divergence, multiplicative
  updates, NNDSVDa start (better than Frobenius, and than KL from a random start).
- FastICA and PCA (frequency bins as samples, frames as features, as independent
  subspace analysis does: Casey & Westner, ICMC 2000): ``V ~ S M^T + 1 mu^T`` with S the
  K components' spectral profiles ``[bins, K]``, M their time courses ``[frames, K]``
  and mu the mean over bins ``[frames]``. Part k = ``|S[:, k] M[:, k]^T + 1 mu^T / K|``:
  the K parts sum to the rank-K reconstruction (the mean split equally), then are
  rectified (better than rectifying first and adding ``|mu| / K`` after, and far better
  than frames as samples, i.e. spectra as observations). Infomax ICA takes the same path.
- KernelPCA (RBF kernel, sklearn's default gamma = 1 / frames on the peak-1 spectrogram;
  same orientation): the pre-image map f (kernel ridge regression, sklearn's
  ``fit_inverse_transform``, alpha 1e-3) is not linear, so part k =
  ``|f(z_k) - f(0) + f(0) / K|`` with z_k the projections with every component but k set
  to zero: component k's contribution relative to the pre-image of the origin, which is
  split equally like the mean above (better than frames as samples, or a median-heuristic
  gamma).

Every class here takes ``seed`` (the decomposition's ``random_state``) and ``max_iter``
(its iteration budget; not converging is part of the method, not an error). They inherit
the contract of :class:`~priorsep.baselines.base.Baseline`: ``separate(mixture [T], k)``
returns ``[K, T]`` float32 estimates that sum to the mixture; a silent mixture, or
``k = 1``, gives ``mixture / k`` for every estimate.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from torch import Tensor

from .._extras import require
from .base import Baseline, check_input, masked_estimates, mixture_stft, sklearn_context, sklearn_decomposition


def _peak_normalised_magnitude(mixture: Tensor) -> np.ndarray | None:
    """``|STFT|`` ``[bins, frames]`` scaled to peak 1, or None for a silent mixture."""
    v = mixture_stft(mixture).abs().numpy()
    peak = float(v.max())
    return v / peak if peak > 0 else None


class _Decomposition(Baseline):
    """Shared flow: magnitude spectrogram -> K parts ``[K, bins, frames]`` -> masks."""

    unordered: ClassVar[bool] = True

    def __init__(self, seed: int = 0, max_iter: int = 1000):
        self.seed = int(seed)
        self.max_iter = int(max_iter)

    def _parts(self, v: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError

    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        mix = check_input(mixture, k)
        v = _peak_normalised_magnitude(mix)
        if v is None or k == 1:  # nothing to decompose: equal masks
            return (mix / k).float().expand(k, -1).clone()
        with sklearn_context(self.name):
            parts = self._parts(v, k)
        return masked_estimates(mix, np.nan_to_num(parts))


class NMFBaseline(_Decomposition):
    """Unsupervised NMF with K components (KL divergence, multiplicative updates)."""

    name: ClassVar[str] = "nmf"

    def _parts(self, v: np.ndarray, k: int) -> np.ndarray:
        decomposition = sklearn_decomposition(self.name)

        model = decomposition.NMF(k, beta_loss="kullback-leibler", solver="mu", init="nndsvda",
                    max_iter=self.max_iter, random_state=self.seed)
        act = model.fit_transform(v.T)  # [frames, K]
        return np.einsum("tk,kf->kft", act, model.components_)


def _linear_parts(scores: np.ndarray, mixing: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``|S[:, k] M[:, k]^T + 1 mu^T / K|`` for each k: ``[K, bins, frames]``."""
    k = scores.shape[1]
    return np.abs(np.einsum("fk,tk->kft", scores, mixing) + mean[None, None, :] / k)


class FastICABaseline(_Decomposition):
    """FastICA (Hyvarinen & Oja 2000) with K components, bins as samples."""

    name: ClassVar[str] = "fastica"

    def _parts(self, v: np.ndarray, k: int) -> np.ndarray:
        decomposition = sklearn_decomposition(self.name)

        model = decomposition.FastICA(k, whiten="unit-variance", max_iter=self.max_iter, random_state=self.seed)
        scores = model.fit_transform(v)  # [bins, K]
        return _linear_parts(scores, model.mixing_, model.mean_)


class InfomaxICABaseline(_Decomposition):
    """Infomax ICA (Bell & Sejnowski 1995) with K components, bins as samples, as the
    paper's "ICA" beside FastICA: python-picard's Picard without the orthogonal
    constraint and without the extended rule, which maximises the same likelihood as
    Infomax (Ablin, Cardoso & Gramfort, IEEE TSP 2018, arXiv:1706.08171), with a tanh
    score, after whitening to K components."""

    name: ClassVar[str] = "ica"

    def _parts(self, v: np.ndarray, k: int) -> np.ndarray:
        picard = require("picard", "baselines", "the ica baseline").picard
        k_white, w, y, mean = picard(v.T, n_components=k, ortho=False, extended=False, max_iter=self.max_iter,
                                     random_state=self.seed, return_X_mean=True)  # X: [frames, bins]
        mixing = np.linalg.pinv(w @ k_white)  # [frames, K]
        return _linear_parts(y.T, mixing, mean)  # sources y: [K, bins]


class PCABaseline(_Decomposition):
    """PCA with K components, bins as samples."""

    name: ClassVar[str] = "pca"

    def _parts(self, v: np.ndarray, k: int) -> np.ndarray:
        decomposition = sklearn_decomposition(self.name)

        model = decomposition.PCA(k, random_state=self.seed)
        scores = model.fit_transform(v)  # [bins, K]
        return _linear_parts(scores, model.components_.T, model.mean_)


class KernelPCABaseline(_Decomposition):
    """Kernel PCA (Schoelkopf, Smola & Mueller 1998), RBF kernel, K components, bins as
    samples; components mapped back by its learned pre-image regression (alpha 1e-3)."""

    name: ClassVar[str] = "kernelpca"

    def __init__(self, seed: int = 0, max_iter: int = 1000, alpha: float = 1e-3):
        super().__init__(seed, max_iter)
        self.alpha = float(alpha)

    def _parts(self, v: np.ndarray, k: int) -> np.ndarray:
        decomposition = sklearn_decomposition(self.name)

        model = decomposition.KernelPCA(k, kernel="rbf", fit_inverse_transform=True, alpha=self.alpha,
                          random_state=self.seed)
        z = model.fit_transform(v)  # [bins, K]
        origin = model.inverse_transform(np.zeros((1, z.shape[1])))  # [1, frames]
        parts = []
        for i in range(z.shape[1]):
            only = np.zeros_like(z)
            only[:, i] = z[:, i]
            parts.append(np.abs(model.inverse_transform(only) - origin + origin / k))
        # KernelPCA drops components with zero eigenvalue: pad so that there are K parts
        while len(parts) < k:
            parts.append(np.abs(np.broadcast_to(origin / k, v.shape)))
        return np.stack(parts)
