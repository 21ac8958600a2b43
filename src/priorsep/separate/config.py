"""Every setting of the latent search, as data: :class:`SearchConfig` and :data:`PRESETS`.

A configuration is a frozen dataclass; a variation of one is made with
:func:`dataclasses.replace`, and ``dataclasses.asdict`` gives what ``summary.json`` records.
The defaults of :class:`SearchConfig` *are* the ``best`` preset, so there is one copy of
them.

>>> from dataclasses import replace
>>> PRESETS["best"] == SearchConfig()
True
>>> replace(PRESETS["paper"], steps=10).steps, PRESETS["paper"].steps
(10, 1000)
>>> SearchConfig(restarts=0)
Traceback (most recent call last):
...
priorsep.errors.ConfigError: restarts must be a whole number >= 1; got 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..loss_weights import LossWeights, as_weights

__all__ = ["SearchConfig", "PRESETS", "STARTS", "LR_RANGE", "learning_rate"]

#: the objectives priorsep ships (:mod:`.objectives`) and ``auto``, known without importing torch
SHIPPED_OBJECTIVES = ("auto", "magnitude", "paper")

#: starting points of the search: the paper's z = 0, or the priors' encodings of the mixture
STARTS = ("encoder", "zero")


#: the learning rates a search accepts, ``(lowest, highest)``: Adam moves a latent by about
#: ``lr`` per step, so below it a search of hundreds of steps stays at its start, and above
#: it the steps jump across the priors' boxes (on the bundled priors the estimates then
#: become the mixture times a constant, which :class:`~priorsep.separate.Separator` refuses)
LR_RANGE = (1e-4, 1.0)


def _lr_problem(value: Any) -> str:
    """What is wrong with ``value`` as a learning rate (``"lr must be ..."``), or ``""``."""
    low, high = LR_RANGE
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"lr must be a number in [{low:g}, {high:g}]; got {value!r}"
    if not low <= value <= high:
        return (f"lr must be in [{low:g}, {high:g}] (the default is {SearchConfig.lr:g}); got {value:g}: "
                + ("so small a step leaves the search at its start" if value < low else
                   "steps that large leave the priors' useful region and split the mixture instead of separating it"))
    return ""


def learning_rate(text: str) -> float:
    """``--lr``'s argparse type: a learning rate in :data:`LR_RANGE`, or one error line.

    Args:
        text: the option's value.
    Returns:
        the learning rate.
    Raises:
        argparse.ArgumentTypeError: not a number, or outside :data:`LR_RANGE`.

    >>> learning_rate("0.1")
    0.1
    """
    import argparse

    try:
        problem = _lr_problem(float(text))
    except ValueError:
        problem = f"lr must be a number in [{LR_RANGE[0]:g}, {LR_RANGE[1]:g}]; got {text!r}"
    if problem:
        raise argparse.ArgumentTypeError(problem.replace("lr must be", "expected a learning rate")
                                         .replace("learning rate a number", "learning rate, a number"))
    return float(text)


def _whole(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}; got {value!r}")


@dataclass(frozen=True)
class SearchConfig:
    """The settings of one latent search (docs/method.md §3 and our departures from it).

    Attributes:
        objective: what the search fits: ``"auto"`` (the default: chosen from what the
            priors can do, :func:`~priorsep.separate.objectives.choose_objective`; the
            magnitude fit for priors with magnitudes or encoders, the paper's losses for
            waveform priors), ``"magnitude"`` or ``"paper"``
            (:mod:`priorsep.separate.objectives`; more can be registered there).
        start: ``"encoder"``: priors with an encoder start from their encoding of the
            mixture (the others from zero); ``"zero"``: z = 0, the paper's.
        steps: Adam steps (paper: 1000); 0 gives the start's output.
        lr: Adam learning rate (paper: 0.05; betas 0.9, 0.999), in :data:`LR_RANGE`.
        bound: project z onto ``[-bound, bound]`` after every step; ``None`` for no
            projection (what the public code effectively ran); ``"prior"``: each prior's
            own ``latent_bound``.
        weights: the paper objective's loss weights (paper: mc 0.1, ms 0.3, fc 0.8, sd 0.4).
        restarts: searches per mixture; the first starts at ``start``, with an encoder
            start the second at zero, the others at seeded uniform draws in the box (at
            most +-1); the one with the lowest final total loss is kept, per window.
            ``None``: the objective's own default
            (:attr:`~priorsep.separate.objectives.Objective.default_restarts`: 2 for the
            magnitude fit, 6 for the paper's losses, whose minima are many).
        seed: seeds the restarts' starting points (with the window's samples).
        mask_fft, mask_hop: the STFT of the mixture-consistent output and of the
            magnitude objective. ``None``: the magnitude priors' own STFT, else 1024 / 256.
            A value that conflicts with a magnitude prior's own STFT is refused.
        overlap: fraction of overlap between windows, for inputs longer than the priors.
        joint: search all mixtures of a call as one batch: faster, but a mixture's result
            then depends (in the last bits, amplified by the search) on its batch.
        chunk: the most windows searched as one batch (times ``restarts`` rows), so that
            memory does not grow with the input's length; longer inputs are searched
            chunk after chunk.
        level: each mixture is scaled to this peak before the search and the estimates
            are scaled back, so that a result does not depend on the input's level (the
            priors are trained on peak-normalised clips); ``"auto"`` (the default): the
            objective's own
            (:attr:`~priorsep.separate.objectives.Objective.default_level`); ``None``:
            the mixture is searched at the level it comes in (the paper's preset).

    Raises:
        ConfigError: a setting of the wrong type or out of its range (one line).
    """

    objective: str = "auto"
    start: str = "encoder"
    steps: int = 300
    lr: float = 0.05
    bound: float | str | None = "prior"
    weights: LossWeights = field(default_factory=LossWeights)
    restarts: int | None = None
    seed: int = 0
    mask_fft: int | None = None
    mask_hop: int | None = None
    overlap: float = 0.5
    joint: bool = False
    chunk: int = 16
    level: float | str | None = "auto"

    def __post_init__(self) -> None:
        if self.objective not in SHIPPED_OBJECTIVES:  # a registered one (the registry imports torch)
            from .objectives import OBJECTIVES

            if self.objective not in OBJECTIVES:
                raise ConfigError(f"objective must be auto or one of {', '.join(sorted(OBJECTIVES))}; "
                                  f"got {self.objective!r}")
        if self.start not in STARTS:
            raise ConfigError(f"start must be one of {', '.join(STARTS)}; got {self.start!r}")
        _whole("steps", self.steps, 0)
        if self.restarts is not None:
            _whole("restarts", self.restarts, 1)
        _whole("chunk", self.chunk, 1)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed must be a whole number; got {self.seed!r}")
        if _lr_problem(self.lr):
            raise ConfigError(_lr_problem(self.lr))
        bound = self.bound
        if not (bound is None or bound == "prior" or (isinstance(bound, (int, float)) and not isinstance(bound, bool)
                                                     and math.isfinite(bound) and bound > 0)):
            raise ConfigError(f"bound must be a positive number, None or 'prior'; got {bound!r}")
        for name in ("mask_fft", "mask_hop"):
            value = getattr(self, name)
            if value is not None:
                _whole(name, value, 1)
        level = self.level
        if not (level is None or level == "auto" or (isinstance(level, (int, float)) and not isinstance(level, bool)
                                  and math.isfinite(level) and level > 0)):
            raise ConfigError(f"level must be a positive number, 'auto' or None; got {level!r}")
        if not isinstance(self.overlap, (int, float)) or not 0 <= self.overlap < 1:
            raise ConfigError(f"overlap must be in [0, 1); got {self.overlap!r}")
        try:
            object.__setattr__(self, "weights", as_weights(self.weights))  # a dict of overrides is accepted
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


#: named configurations: ``paper`` is docs/method.md §3 exactly; ``best`` (the defaults) is the
#: measured best (benchmarks/PRIORS.md); ``fast``: one search of 100 steps from the encoders'
#: start, made to take at most a quarter of ``best``'s time and lose at most 1 dB median SI-SDR
#: against it (measured: benchmarks/DESIGN.md, "Presets: fast")
PRESETS: dict[str, SearchConfig] = {
    "paper": SearchConfig(objective="paper", start="zero", steps=1000, lr=0.05, bound=1.0, restarts=1,
                          weights=LossWeights(), level=None),
    "best": SearchConfig(),
    "fast": SearchConfig(steps=100, restarts=1),
}
