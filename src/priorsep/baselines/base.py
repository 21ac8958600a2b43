"""The interface every comparison method implements, and the masking they share.

A baseline takes one single-channel mixture ``[T]`` and returns K estimates ``[K, T]``
(float32, finite). Most of them decide only *how much* of each time-frequency cell goes
to each source: soft masks on the mixture's STFT, inverted with the mixture's phase, so
the estimates sum to the mixture (:func:`masked_estimates`). The STFT is the centred,
invertible one of :func:`priorsep.spectral.mask_mixture` (FFT 1024, hop 256), which for
a 16384-sample clip gives 513 bins x 65 frames.
"""

from __future__ import annotations

import contextlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from .. import spectral
from .._extras import require

N_FFT = 1024
HOP = 256

#: What a baseline may need besides the mixture.
USES = frozenset({"train", "sources"})


class Baseline(ABC):
    """A comparison method: one mixture ``[T]`` in, K estimates ``[K, T]`` out.

    Class attributes:
        name: the registry name.
        uses: subset of ``{"train", "sources"}``: per-class training clips (given to
            :meth:`fit`) and/or the true sources (given to :meth:`separate`).
        unordered: True if the K estimates come in no particular order (score them
            with :func:`priorsep.metrics.best_permutation`); False if estimate k is
            class k, in the order of the training classes / the true sources.
    """

    name: ClassVar[str]
    uses: ClassVar[frozenset[str]] = frozenset()
    unordered: ClassVar[bool] = False

    def fit(self, train: Mapping[str, Tensor]) -> Baseline:
        """Learn from per-class training clips; a no-op for baselines that do not use ``"train"``.

        Args:
            train: ``{class: [N, T]}``, in the mixtures' class order (estimate k is class k).
        Returns:
            the baseline itself.
        Raises:
            ValueError: (baselines that use ``"train"``) no class, or a class whose clips
                are not ``[N, T]`` with N >= 1.
        """
        return self

    @abstractmethod
    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        """Separate one mixture into ``k`` estimates.

        Args:
            mixture: ``[T]``, at least 1024 samples (one FFT).
            k: the number of sources K >= 1.
            sources: the true sources ``[K, T]``, read only by baselines that use ``"sources"``.
        Returns:
            ``[K, T]`` float32, finite; in the order of the training classes / the true
            sources unless ``unordered``.
        Raises:
            ValueError: a mixture not ``[T]`` or too short, a bad ``k`` (for a fitted
                baseline, other than its number of classes), or missing ``sources``.
            RuntimeError: a baseline that uses ``"train"``, not fitted.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_input(mixture: Tensor, k: int, sources: Tensor | None = None, need_sources: bool = False) -> Tensor:
    """Validate a ``separate`` call; returns the mixture as a float64 CPU tensor ``[T]``."""
    if not isinstance(mixture, Tensor) or mixture.dim() != 1:
        shape = tuple(mixture.shape) if isinstance(mixture, Tensor) else type(mixture).__name__
        raise ValueError(f"a baseline separates one mixture [T]; got {shape}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}")
    if need_sources:
        if sources is None:
            raise ValueError("this baseline needs the true sources [K, T]")
        if sources.shape != (k, mixture.shape[-1]):
            raise ValueError(f"sources must be [{k}, {mixture.shape[-1]}]; got {tuple(sources.shape)}")
    if mixture.shape[-1] < N_FFT:
        raise ValueError(f"clips must be at least {N_FFT} samples; got {mixture.shape[-1]}")
    return mixture.detach().cpu().double()


def check_train(train: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Validate per-class training clips ``{class: [N, T]}``; float64 CPU copies, same order."""
    if not train:
        raise ValueError("fit() needs at least one class of training clips {class: [N, T]}")
    out = {}
    for name, clips in train.items():
        if not isinstance(clips, Tensor) or clips.dim() != 2 or clips.shape[0] == 0:
            shape = tuple(clips.shape) if isinstance(clips, Tensor) else type(clips).__name__
            raise ValueError(f"training clips of class {name!r} must be [N, T] with N >= 1; got {shape}")
        out[name] = clips.detach().cpu().double()
    return out


def mixture_stft(mixture: Tensor) -> Tensor:
    """Complex STFT ``[bins, frames]`` of a mixture ``[T]`` (FFT 1024, hop 256, centred)."""
    return spectral.analysis(mixture, N_FFT, HOP)


def masked_estimates(mixture: Tensor, magnitudes: Tensor | np.ndarray) -> Tensor:
    """Estimates from per-source magnitude guesses by ratio masks on the mixture's STFT.

    ``M_k = |Y_k| / sum_j |Y_j|`` (:func:`priorsep.spectral.ratio_masks`) times the
    mixture's STFT, inverted with the mixture's phase, so the estimates sum to the
    mixture. Computed in float64, returned as float32.

    Args:
        mixture: ``[T]``.
        magnitudes: non-negative ``[K, bins, frames]`` on the grid of :func:`mixture_stft`
            (any scale: only their ratios matter).
    Returns:
        ``[K, T]`` float32.
    """
    mix = mixture.detach().cpu().double()
    spec = mixture_stft(mix)
    mags = torch.as_tensor(magnitudes, dtype=torch.float64).detach().cpu()
    if mags.dim() != 3 or mags.shape[1:] != spec.shape:
        raise ValueError(f"magnitudes must be [K, {spec.shape[0]}, {spec.shape[1]}]; got {tuple(mags.shape)}")
    mags = torch.nan_to_num(mags.clamp_min(0.0), nan=0.0, posinf=0.0)
    masks = spectral.ratio_masks(mags[None])[0]  # [K, bins, frames]
    return spectral.synthesis(masks * spec, N_FFT, HOP, mix.shape[-1]).float()


def require_fit(baseline: Baseline, fitted: object, k: int) -> None:
    """Raise a clear error if a baseline that uses ``"train"`` was not fitted, or was
    fitted on a different number of classes than ``k``."""
    if fitted is None:
        raise RuntimeError(
            f"baseline {baseline.name!r} learns from training clips: call fit({{class: [N, T]}}) "
            "before separate()"
        )
    n = len(fitted)  # type: ignore[arg-type]
    if n != k:
        raise ValueError(f"baseline {baseline.name!r} was fitted on {n} classes but asked for k = {k}")


def sklearn_decomposition(baseline: str) -> ModuleType:
    """``sklearn.decomposition`` for the baseline named ``baseline``, or a
    :class:`~priorsep.errors.MissingDependencyError` with the install command."""
    return require("sklearn.decomposition", "baselines", f"the {baseline} baseline")


@contextlib.contextmanager
def sklearn_context(baseline: str) -> Iterator[None]:
    """Around scikit-learn calls of the baseline named ``baseline``: BLAS on one thread,
    "did not converge" warnings off.

    The matrices are small (at most about 1000 x 513), and on a shared machine a second
    BLAS thread made them far slower, as torch's threads did for the tests
    (benchmarks/DESIGN.md, "One BLAS thread for scikit-learn"). An iteration budget
    is part of a baseline's definition: not converging on a mixture is a property of the
    baseline there, not an error.
    """
    sklearn_decomposition(baseline)  # scikit-learn missing is the error to show first
    threadpool_limits = require("threadpoolctl", "baselines", f"the {baseline} baseline").threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(converge|Maximum number of iterations).*")
        yield
