"""Baselines that learn from per-class training clips (docs/method.md §6): dictionary NMF and
the class-average template mask. Both are ordered: estimate k is the k-th class of
:meth:`fit`'s mapping.

Spectrograms are the masking STFT's magnitudes (FFT 1024, hop 256, centred):
``[bins, frames]`` per clip, 513 x 65 for a 16384-sample clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from .base import (
    Baseline,
    check_input,
    check_train,
    masked_estimates,
    mixture_stft,
    require_fit,
    sklearn_context,
    sklearn_decomposition,
)


class DictionaryNMF(Baseline):
    """Supervised NMF (Smaragdis, Raj & Shashanka, ICA 2007; Schmidt & Olsson 2006).

    fit: per class, ``atoms`` spectral atoms learned by NMF on magnitude frames of that
    class's training clips (at most ``max_frames`` frames a class, a seeded random
    subset). separate: the dictionaries are concatenated and fixed, the activations are
    fitted to the mixture's magnitude frames, and class k's part ``W_k H_k`` becomes its
    ratio mask on the mixture's STFT.

    Loss: generalised KL divergence (beta = 1), multiplicative updates, both when learning
    and when fitting activations: KL separated better than Frobenius in our measurements
    (benchmarks/DESIGN.md, "Dictionary NMF"). Frobenius is available as
    ``beta_loss="frobenius"``.

    Args:
        seed: seeds the frame subsets and NMF's ``random_state``.
        atoms: spectral atoms per class.
        max_frames: the most training frames a class's dictionary is learned from.
        iters: multiplicative-update iterations, when learning and when fitting.
        beta_loss: ``"kullback-leibler"`` or ``"frobenius"``.
    Raises:
        ValueError: another ``beta_loss``; at :meth:`separate`, dictionaries of another
            STFT than the mixture's (and the errors of
            :class:`~priorsep.baselines.base.Baseline`).
    """

    name: ClassVar[str] = "nmf-dict"
    uses: ClassVar[frozenset[str]] = frozenset({"train"})

    def __init__(self, seed: int = 0, atoms: int = 32, max_frames: int = 1024, iters: int = 200,
                 beta_loss: str = "kullback-leibler"):
        if beta_loss not in ("kullback-leibler", "frobenius"):
            raise ValueError(f"beta_loss must be 'kullback-leibler' or 'frobenius'; got {beta_loss!r}")
        self.seed, self.atoms = int(seed), int(atoms)
        self.max_frames, self.iters = int(max_frames), int(iters)
        self.beta_loss = beta_loss
        self.dictionaries: dict[str, np.ndarray] | None = None  # class -> [atoms, bins]

    def fit(self, train: Mapping[str, Tensor]) -> DictionaryNMF:
        decomposition = sklearn_decomposition(self.name)

        clips = check_train(train)
        rng = np.random.default_rng(self.seed)
        dictionaries = {}
        for name, x in clips.items():
            mags = mixture_stft(x).abs()  # [N, bins, frames]
            frames = mags.transpose(-1, -2).reshape(-1, mags.shape[-2]).numpy()  # [N * frames, bins]
            if len(frames) > self.max_frames:
                frames = frames[np.sort(rng.choice(len(frames), self.max_frames, replace=False))]
            model = decomposition.NMF(self.atoms, beta_loss=self.beta_loss, solver="mu", init="nndsvda",
                        max_iter=self.iters, random_state=self.seed)
            with sklearn_context(self.name):
                model.fit(frames)
            dictionaries[name] = model.components_
        self.dictionaries = dictionaries
        return self

    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        decomposition = sklearn_decomposition(self.name)

        require_fit(self, self.dictionaries, k)
        assert self.dictionaries is not None
        mix = check_input(mixture, k)
        v = mixture_stft(mix).abs().numpy()  # [bins, frames]
        atoms = np.concatenate(list(self.dictionaries.values()))  # [K * atoms, bins]
        if atoms.shape[1] != v.shape[0]:
            raise ValueError(f"dictionaries have {atoms.shape[1]} bins, the mixture {v.shape[0]}")
        with sklearn_context(self.name):
            act, _, _ = decomposition.non_negative_factorization(
                v.T, H=atoms, update_H=False, n_components=atoms.shape[0], beta_loss=self.beta_loss,
                solver="mu", max_iter=self.iters,
            )  # [frames, K * atoms]
        sizes = [len(d) for d in self.dictionaries.values()]
        parts, start = [], 0
        for size in sizes:
            parts.append((act[:, start:start + size] @ atoms[start:start + size]).T)
            start += size
        return masked_estimates(mix, np.stack(parts))


class TemplateMask(Baseline):
    """No model, no search: fixed ratio masks from each class's average magnitude
    spectrogram over its training clips (docs/method.md §6, "fixed class-average spectrogram
    mask"): ``M_k = A_k / sum_j A_j``, the same for every mixture.

    ``form="clip"`` (default) keeps time: ``A_k`` = mean over clips of ``|STFT|``,
    ``[bins, frames]``; it relies on the clips being aligned (start-aligned one-shots,
    as the tone and burst priors generate). ``form="spectrum"`` also averages over frames
    (``[bins]``, a time-invariant mask). "clip" separated better in our measurements
    (benchmarks/DESIGN.md, "Template mask"). A mixture whose length differs from the
    training clips' needs ``form="spectrum"``.

    Args:
        form: ``"clip"`` or ``"spectrum"``.
    Raises:
        ValueError: another ``form``; at :meth:`separate`, clip templates and a mixture
            of another length (and the errors of :class:`~priorsep.baselines.base.Baseline`).
    """

    name: ClassVar[str] = "template"
    uses: ClassVar[frozenset[str]] = frozenset({"train"})

    def __init__(self, form: str = "clip"):
        if form not in ("clip", "spectrum"):
            raise ValueError(f"form must be 'clip' or 'spectrum'; got {form!r}")
        self.form = form
        self.templates: dict[str, Tensor] | None = None  # class -> [bins, frames] or [bins, 1]

    def fit(self, train: Mapping[str, Tensor]) -> TemplateMask:
        clips = check_train(train)
        templates = {}
        for name, x in clips.items():
            avg = mixture_stft(x).abs().mean(dim=0)  # [bins, frames]
            templates[name] = avg.mean(dim=-1, keepdim=True) if self.form == "spectrum" else avg
        self.templates = templates
        return self

    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        require_fit(self, self.templates, k)
        assert self.templates is not None
        mix = check_input(mixture, k)
        bins, frames = mixture_stft(mix).shape
        stacked = torch.stack(list(self.templates.values()))  # [K, bins, frames or 1]
        if stacked.shape[1] != bins or stacked.shape[2] not in (1, frames):
            raise ValueError(
                f"templates are {tuple(stacked.shape[1:])} but the mixture's spectrogram is "
                f"({bins}, {frames}); clip templates need mixtures as long as the training clips"
            )
        return masked_estimates(mix, stacked.expand(-1, bins, frames))
