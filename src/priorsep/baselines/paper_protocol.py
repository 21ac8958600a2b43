"""REPRODUCTION OF A FLAWED PROTOCOL: the paper's public baseline code, as coded.

Not a separation method. It exists so that the numbers the paper reported for FastICA,
PCA, KernelPCA and NMF can be reproduced and explained (docs/method.md §5); the working
versions of those methods are in :mod:`priorsep.baselines.factorisation`.

What the authors' ``run_baselines_twosourcesep.py`` (github.com/vivsivaraman/
sourcesepganprior) does with a mixture ``x1 = s1 + s2`` of T samples:

1. It fakes a second observation ``x2 = x1 + noise_var * np.random.uniform(T, 1)``
   (noise_var = 1e-4). The comment says "noise of very small variance", but
   ``np.random.uniform(T, 1)`` is ``uniform(low=T, high=1)``: one scalar, not T samples.
   So x2 is x1 plus a constant, and after centring the two-channel data ``[x1, x2]`` is
   exactly rank 1 (up to float rounding): there is nothing to separate.
2. It runs the decomposition with two components on the waveforms ``[T, 2]``:
   ``FastICA(2, random_state=0)``, ``PCA(2)``, ``KernelPCA(2)`` (sklearn's default
   *linear* kernel, i.e. PCA again) and ``NMF(2, init="random", random_state=0)`` on
   ``X + 3`` (to make it non-negative).
3. FastICA / PCA / KernelPCA return their two component time series. On rank-1 data the
   first is the (centred, sign-flipped or not) mixture; the second is a direction of
   zero variance: FastICA and PCA return the mixture again (their numerically arbitrary
   second direction still projects onto the mixture, as measured in benchmarks/DESIGN.md,
   "The paper's baseline protocol"), KernelPCA zeroes the component of a zero eigenvalue.
   NMF returns ``W @ H[:, k] - 3``: the reconstruction of *observation* k, not of
   component k (that would be ``W[:, k] H[k]``), i.e. x1 and x2, the mixture twice.
4. Every estimate is peak-normalised (``X / max|X|``); KernelPCA's zero component
   becomes 0/0 = NaN, which the authors' ``nanmedian`` then silently skipped.

So all four "baselines" return the mixture (up to sign and scale) for every source, and
the paper compared its method against the mixture. Here: K sources get K - 1 fake
channels ``x1 + noise_var * U(T, 1)`` (one scalar each, from ``np.random.RandomState(seed)``;
the authors' call was unseeded); ``method`` picks the decomposition; a zero
component is returned as zeros (finite) instead of NaN. KernelPCA's linear kernel is
solved through its K x K primal problem, with sklearn's rule that an eigenvalue below
1e-12 of the largest is zero, instead of the T x T Gram matrix (2 GB for T = 16384, and
slow: benchmarks/DESIGN.md); the result is the same. ``unordered = True``: the order is
arbitrary.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from .base import Baseline, check_input, sklearn_context, sklearn_decomposition

METHODS = ("fastica", "pca", "kernelpca", "nmf")


def _normalise(x: np.ndarray) -> np.ndarray:
    """The authors' ``normalize``: ``x / max|x|`` per row; an all-zero row stays zero
    (theirs gave NaN)."""
    peak = np.abs(x).max(axis=-1, keepdims=True)
    return np.divide(x, peak, out=np.zeros_like(x), where=peak > 0)


def _linear_kernel_pca(observations: np.ndarray, k: int) -> np.ndarray:
    """``KernelPCA(k, kernel="linear").fit_transform(X)`` without the T x T Gram matrix.

    With a linear kernel the centred Gram matrix ``Xc Xc^T`` has the nonzero eigenvalues
    of ``Xc^T Xc``; KernelPCA's scores are ``Xc v_k`` for those and zero for eigenvalues
    below 1e-12 of the largest (sklearn's ``_check_psd_eigenvalues``). Returns ``[T, k]``.
    """
    xc = observations - observations.mean(axis=0)
    lam, vec = np.linalg.eigh(xc.T @ xc)
    order = np.argsort(lam)[::-1][:k]
    lam, vec = lam[order], vec[:, order]
    scores = xc @ vec
    scores[:, lam <= 1e-12 * lam.max()] = 0.0
    return scores


class PaperProtocol(Baseline):
    """The paper's baseline protocol, reproduced as coded (see the module docstring):
    a rank-1 fake second channel, then ``method`` on the waveforms. Returns the mixture
    (up to sign and scale) as every estimate; KernelPCA returns it once and zeros.

    Args:
        method: ``"fastica"``, ``"pca"``, ``"kernelpca"`` or ``"nmf"``.
        seed: seeds the fake channels' constants and the decompositions' ``random_state``.
        noise_var: the fake channels' scale (the authors' default 1e-4).
    Raises:
        ValueError: another ``method`` (and the errors of
            :class:`~priorsep.baselines.base.Baseline`'s ``separate``).
    """

    name: ClassVar[str] = "paper-protocol"
    unordered: ClassVar[bool] = True

    def __init__(self, method: str = "fastica", seed: int = 0, noise_var: float = 1e-4):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        self.method, self.seed, self.noise_var = method, int(seed), float(noise_var)

    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        decomposition = sklearn_decomposition(self.name)

        mix = check_input(mixture, k).numpy()
        n = mix.shape[-1]
        rng = np.random.RandomState(self.seed)  # the authors' (legacy) API, here seeded
        # the misused call: uniform(low=T, high=1) is one scalar per fake channel
        offsets = [0.0] + [self.noise_var * rng.uniform(n, 1) for _ in range(k - 1)]
        x = np.stack([mix + c for c in offsets], axis=1)  # [T, K], rank 1 after centring
        with sklearn_context(self.name), np.errstate(divide="ignore", invalid="ignore"):
            if self.method == "fastica":
                est = decomposition.FastICA(k, random_state=self.seed).fit_transform(x).T
            elif self.method == "pca":
                est = decomposition.PCA(k).fit_transform(x).T
            elif self.method == "kernelpca":
                est = _linear_kernel_pca(x, k).T
            else:
                model = decomposition.NMF(k, init="random", random_state=self.seed)
                w = model.fit_transform(x + 3.0)
                est = np.stack([w @ model.components_[:, j] - 3.0 for j in range(k)])  # observation j
        est = _normalise(np.nan_to_num(est, nan=0.0, posinf=0.0, neginf=0.0))
        return torch.from_numpy(est).float()
