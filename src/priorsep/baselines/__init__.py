"""Comparison methods for the benchmark (docs/method.md §5 and §6).

Every baseline separates one single-channel mixture ``[T]`` into K estimates ``[K, T]``
(float32, finite) through the same small interface, :class:`Baseline`::

    b = get("nmf-dict", seed=0)                # name -> configured instance
    b.fit({"tone": clips_a, "burst": clips_b})  # only if "train" in b.uses; [N, T] each
    estimates = b.separate(mixture, k=2)        # + sources=[K, T] if "sources" in b.uses
    if b.unordered:                             # no particular order: match before scoring
        estimates = metrics.best_permutation(true_sources, estimates)

========================  =========  =========  =========================================
name                      uses       unordered  what
========================  =========  =========  =========================================
``nmf``                   -          yes        unsupervised KL-NMF of the magnitude
``ica``, ``fastica``,     -          yes        Infomax ICA / FastICA / PCA / KernelPCA
``pca``, ``kernelpca``                          of the magnitude (components -> images)
``nmf-dict``              train      no         per-class NMF dictionaries, fixed
``template``              train      no         class-average spectrogram masks
``dap``                   -          yes        Deep Audio Prior (Tian et al. 2019)
``oracle-irm``            sources    no         ideal ratio mask: the upper reference
``mixture``               -          no         mixture / K: the lower reference
``paper-protocol``        -          yes        REPRODUCTION of the paper's flawed
                                                baseline code: returns the mixture
========================  =========  =========  =========================================

All but ``mixture`` and ``paper-protocol`` mask the mixture's STFT (FFT 1024, hop 256)
with ratio masks and keep its phase, so their estimates sum to the mixture.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Baseline
from .dap import DeepAudioPrior
from .dictionary import DictionaryNMF, TemplateMask
from .factorisation import FastICABaseline, InfomaxICABaseline, KernelPCABaseline, NMFBaseline, PCABaseline
from .paper_protocol import PaperProtocol
from .references import MixtureBaseline, OracleIRM

#: name -> constructor; keyword options (seed, steps, ...) go to the constructor.
BASELINES: dict[str, Callable[..., Baseline]] = {
    cls.name: cls
    for cls in (
        NMFBaseline, InfomaxICABaseline, FastICABaseline, PCABaseline, KernelPCABaseline, DictionaryNMF, TemplateMask,
        DeepAudioPrior, OracleIRM, MixtureBaseline, PaperProtocol,
    )
}


def get(name: str, **options) -> Baseline:
    """A configured baseline by registry name, e.g. ``get("dap", steps=500, seed=1)``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones) or an option
            the baseline does not take.
    """
    try:
        constructor = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}") from None
    try:
        return constructor(**options)
    except TypeError as err:
        raise ValueError(f"bad options for baseline {name!r}: {err}") from None


__all__ = [
    "BASELINES", "Baseline", "DeepAudioPrior", "DictionaryNMF", "FastICABaseline", "InfomaxICABaseline",
    "KernelPCABaseline",
    "MixtureBaseline", "NMFBaseline", "OracleIRM", "PCABaseline", "PaperProtocol", "TemplateMask", "get",
]
