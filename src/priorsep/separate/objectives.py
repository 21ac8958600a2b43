"""What the latent search fits: the :class:`Objective` interface and its implementations.

The search loop (:class:`priorsep.separate.Separator`) owns the starts, Adam, the
projection, the history, the restarts and the choice of the best restart. An objective
owns everything that depends on *what* is fitted:

1. :meth:`Objective.prepare`: the features of the target windows, once per search;
2. :meth:`Objective.parameters`: extra tensors the search optimises beside the latents
   (e.g. free gains), made at the starting latents;
3. :meth:`Objective.loss`: one value per row (window x restart) for every term in
   :attr:`Objective.terms`, ``"total"`` being the one minimised;
4. :meth:`Objective.final` and :meth:`Objective.outputs`: the final losses of every row,
   and then, for the kept rows, the estimates.

Two objectives ship:

- ``"paper"`` (:class:`PaperObjective`): the paper's four losses (docs/method.md §3) on the
  peak-normalised generated waveforms; needs waveform priors.
- ``"magnitude"`` (:class:`MagnitudeObjective`, the default): fit the sum of the sources'
  STFT magnitudes, each with a free gain, to the mixture's, by the mean squared error of
  ``log(1 + |X|)``; the estimates are magnitude-ratio masks on the mixture's STFT. A
  :class:`~priorsep.priors.MagnitudePrior` enters through its magnitudes; any other prior
  through the magnitude of its peak-normalised waveform.

A new objective is one subclass here (or anywhere) and one :func:`register_objective`.

Shapes: ``N`` windows, ``R`` restarts, ``RN = R * N`` rows (restart-major), ``K`` priors,
``L`` samples per window.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence, TypeVar

import torch
from torch import Tensor

from .. import spectral
from ..errors import PriorError
from ..losses import LossWeights, MixtureFeatures, losses_from_spectra
from ..mixing import peak_normalise
from ..priors.base import EncodablePrior, MagnitudePrior, Prior

__all__ = ["Objective", "PaperObjective", "MagnitudeObjective", "OBJECTIVES", "register_objective", "choose_objective"]

_O = TypeVar("_O", bound=type)

#: objective name -> class, filled by :func:`register_objective`
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str) -> Callable[[_O], _O]:
    """Class decorator: make an :class:`Objective` subclass available as ``objective=name``.

    Args:
        name: the name :class:`~priorsep.separate.config.SearchConfig` accepts as ``objective``
            (an existing one is replaced).
    Returns:
        the decorator, which sets the class's ``name``, records it in :data:`OBJECTIVES`
        and returns the class.
    """

    def decorate(cls: _O) -> _O:
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return decorate


class Objective:
    """What a search fits (module docstring).

    Args:
        priors: the K priors, already checked.
        weights: the paper's loss weights (objectives that have no use for them ignore them).
        n_fft, hop: the STFT of the mixture-consistent output (and of fits made on it).
        length: samples per window ``L``.
    Raises:
        PriorError: priors this objective cannot search (:meth:`check`).
    """

    name: ClassVar[str] = ""
    #: the loss terms :meth:`loss` returns, ``"total"`` last (the history's keys)
    terms: ClassVar[tuple[str, ...]] = ("total",)
    #: searches per mixture when the configuration leaves ``restarts`` unset
    default_restarts: ClassVar[int] = 2
    #: the peak each mixture is scaled to when the configuration's ``level`` is ``"auto"``
    default_level: ClassVar[float] = 1.0

    def __init__(self, priors: Sequence[Prior], weights: LossWeights, n_fft: int, hop: int, length: int):
        self.priors, self.weights = list(priors), weights
        self.n_fft, self.hop, self.length = n_fft, hop, length
        self.check()

    def check(self) -> None:
        """Raise :class:`~priorsep.errors.PriorError` if the priors cannot be searched so."""

    def prepare(self, target: Tensor) -> Any:
        """Features of the target windows ``[RN, L]``, computed once per search."""
        raise NotImplementedError

    def parameters(self, state: Any, latents: Sequence[Tensor]) -> list[Tensor]:
        """Extra tensors to optimise beside the latents, made at the starting latents
        (called with the priors frozen, before the first step). None by default."""
        return []

    def loss(self, state: Any, latents: Sequence[Tensor], extra: Sequence[Tensor]) -> dict[str, Tensor]:
        """``{term: [RN]}`` for every term in :attr:`terms`, differentiable in the
        latents ``[RN, D_k]`` and ``extra``."""
        raise NotImplementedError

    def final(self, state: Any, latents: Sequence[Tensor], extra: Sequence[Tensor]) -> tuple[dict[str, Tensor], Any]:
        """The terms at the final latents (no gradients) and whatever :meth:`outputs`
        reuses of that computation."""
        raise NotImplementedError

    def outputs(self, state: Any, latents: Sequence[Tensor], extra: Sequence[Tensor], cache: Any, rows: Tensor,
                windows: Tensor) -> tuple[Tensor, Tensor]:
        """The estimates of the kept ``rows`` ``[N]`` (indices into ``RN``) of the
        windows ``[N, L]``: ``generated`` and ``masked``, both ``[N, K, L]``."""
        raise NotImplementedError

    # --- shared by the objectives ----------------------------------------------------

    def waveforms(self, latents: Sequence[Tensor]) -> Tensor:
        """Peak-normalised generated sources ``[RN, K, L]`` (the paper's mixing model)."""
        sources = [p.generate(z) for p, z in zip(self.priors, latents)]
        return peak_normalise(torch.stack(sources, dim=1).float())


@register_objective("paper")
class PaperObjective(Objective):
    """The paper's losses, ``L = 0.1 L_mc + 0.3 L_ms + 0.8 L_fc + 0.4 L_sd`` (docs/method.md §3),
    on the peak-normalised generated sources; the output is the generated sources, and
    magnitude-ratio masks from them on the mixture's STFT."""

    terms = ("ms", "sd", "mc", "fc", "total")
    #: its losses have many local minima: 6 restarts, the best of 2, 4 and 6 on tone + burst
    #: mixtures (benchmarks/DESIGN.md, "The paper objective's restarts and level")
    default_restarts = 6
    #: its mixing model sums K sources of peak 1, so a mixture's peak is above 1: 1.5, better
    #: there than peak 1 or the level a mixture comes in (benchmarks/DESIGN.md, the same section)
    default_level = 1.5

    def check(self) -> None:
        spectral_priors = [p for p in self.priors if isinstance(p, MagnitudePrior)]
        if spectral_priors:
            raise PriorError(f"the paper objective needs waveform priors; {spectral_priors[0].name!r} generates "
                             "magnitude spectrograms (use the magnitude objective)")

    def prepare(self, target: Tensor) -> MixtureFeatures:
        return MixtureFeatures(target)

    def loss(self, state: MixtureFeatures, latents: Sequence[Tensor], extra: Sequence[Tensor]) -> dict[str, Tensor]:
        return losses_from_spectra(state, spectral.stft(self.waveforms(latents)), self.weights)

    def final(self, state: MixtureFeatures, latents: Sequence[Tensor],
              extra: Sequence[Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        sources = self.waveforms(latents)
        return losses_from_spectra(state, spectral.stft(sources), self.weights), sources

    def outputs(self, state: MixtureFeatures, latents: Sequence[Tensor], extra: Sequence[Tensor], cache: Tensor,
                rows: Tensor, windows: Tensor) -> tuple[Tensor, Tensor]:
        generated = cache[rows]
        return generated, spectral.mask_mixture(windows, generated, self.n_fft, self.hop)


@register_objective("magnitude")
class MagnitudeObjective(Objective):
    """Fit ``sum_k g_k |S_k(z_k)|`` to the mixture's ``|X|`` by the mean squared error of
    ``log(1 + .)``, with a free gain ``g_k`` per source and row (searched as ``log g_k``,
    started at an equal share of the mixture's magnitude)."""

    terms = ("fit", "total")

    def check(self) -> None:
        wrong = [p.name for p in self.priors
                 if isinstance(p, MagnitudePrior) and (p.n_fft, p.hop) != (self.n_fft, self.hop)]
        if wrong:
            raise PriorError(f"prior {wrong[0]!r} generates magnitudes of another STFT than {self.n_fft}/{self.hop}")

    def prepare(self, target: Tensor) -> tuple[Tensor, Tensor]:
        mix_spec = spectral.analysis(target, self.n_fft, self.hop)  # [RN, bins, frames]
        return mix_spec, torch.log1p(mix_spec.abs())

    def magnitudes(self, latents: Sequence[Tensor]) -> Tensor:
        """Source magnitudes ``[RN, K, bins, frames]`` on the search's STFT."""
        mags = []
        for p, z in zip(self.priors, latents):
            if isinstance(p, MagnitudePrior):
                mags.append(p.magnitude(z).float())
            else:
                wave = peak_normalise(p.generate(z).float())
                mags.append(spectral.analysis(wave, self.n_fft, self.hop).abs())
        return torch.stack(mags, dim=1)

    def parameters(self, state: tuple[Tensor, Tensor], latents: Sequence[Tensor]) -> list[Tensor]:
        mix_spec, _ = state
        with torch.no_grad():  # each gain starts at an equal share of the mixture's magnitude
            mags = self.magnitudes(latents)
            share = mix_spec.abs().sum(dim=(-2, -1))[:, None] / len(self.priors)
            log_gain = (share / (mags.sum(dim=(-2, -1)) + 1e-8)).clamp_min(1e-8).log()  # [RN, K]
        return [log_gain.requires_grad_(True)]

    @staticmethod
    def _fit(log_mix: Tensor, mags: Tensor, log_gain: Tensor) -> Tensor:
        total = (log_gain.exp()[..., None, None] * mags).sum(dim=1)
        return (torch.log1p(total) - log_mix).square().mean(dim=(-2, -1))  # [RN]

    def loss(self, state: tuple[Tensor, Tensor], latents: Sequence[Tensor],
             extra: Sequence[Tensor]) -> dict[str, Tensor]:
        fit = self._fit(state[1], self.magnitudes(latents), extra[0])
        return {"fit": fit, "total": fit}

    def final(self, state: tuple[Tensor, Tensor], latents: Sequence[Tensor],
              extra: Sequence[Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        raw = self.magnitudes(latents)  # [RN, K, bins, frames]
        fit = self._fit(state[1], raw, extra[0])
        return {"fit": fit, "total": fit}, raw

    def outputs(self, state: tuple[Tensor, Tensor], latents: Sequence[Tensor], extra: Sequence[Tensor], cache: Tensor,
                rows: Tensor, windows: Tensor) -> tuple[Tensor, Tensor]:
        log_gain = extra[0][rows]
        mags = (log_gain.exp()[..., None, None] * cache[rows])
        spec = state[0][rows]
        masked = spectral.synthesis(spectral.ratio_masks(mags) * spec[:, None], self.n_fft, self.hop, self.length)
        # ``generated``, on the mixture's scale: a magnitude prior's fitted magnitude with
        # the mixture's phase; a waveform prior's peak-normalised waveform times its gain
        phase = spec / (spec.abs() + 1e-8)
        out = []
        for i, (p, z) in enumerate(zip(self.priors, latents)):
            if isinstance(p, MagnitudePrior):
                out.append(spectral.synthesis(mags[:, i] * phase, self.n_fft, self.hop, self.length))
            else:
                wave = peak_normalise(p.generate(z[rows]).float())
                out.append(wave * log_gain[:, i, None].exp())
        return torch.stack(out, dim=1), masked


def choose_objective(priors: Sequence[Prior]) -> tuple[str, str]:
    """The objective ``objective="auto"`` uses for these priors, and why.

    Args:
        priors: the K priors of a search.
    Returns:
        ``(name, reason)``: ``"magnitude"`` or ``"paper"``, and a few words that say why.

    Priors that generate magnitudes or have an encoder were made for the magnitude fit;
    priors that only generate waveforms (the paper's setting: WaveGANs, the parametric
    tone and burst) are searched with the paper's losses, under which their latent
    spaces are smooth (the magnitude fit of a waveform prior's peak-normalised output
    gets stuck where a small change of z moves its harmonics off the mixture's).
    """
    if any(isinstance(p, MagnitudePrior) for p in priors):
        return "magnitude", "a prior generates magnitudes"
    if all(isinstance(p, EncodablePrior) for p in priors):
        return "magnitude", "every prior has an encoder"
    return "paper", "waveform priors without encoders"
