"""Choosing how to separate: :func:`make_separator` gives the latent search
(:class:`~priorsep.separate.separator.Separator`) or posterior sampling
(:class:`~priorsep.separate.posterior.PosteriorSeparator`), whichever the priors call for.

It imports both; neither imports it or the other.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError, PriorError
from .config import PRESETS, SearchConfig
from .posterior import PosteriorConfig, PosteriorSeparator
from .separator import Separator

if TYPE_CHECKING:
    import torch

    from ..priors.base import Prior

__all__ = ["make_separator"]


def make_separator(priors: Sequence[Prior], config: SearchConfig | str | None = None, *, progress: bool = False,
                   device: str | torch.device | None = None, threads: int | str | None = "default",
                   **overrides: Any):
    """The separator for ``priors``: a :class:`~priorsep.separate.separator.Separator`
    (latent search), or, when every prior is a score prior, a
    :class:`~priorsep.separate.posterior.PosteriorSeparator` (posterior sampling). Both
    have ``priors``, ``sample_rate``, ``forms`` (the estimates they give),
    ``separate(mixture, bar=None)`` and ``settings()``, and run ``separate`` on ``threads``
    torch threads (as :class:`~priorsep.separate.separator.Separator`'s ``threads``).

    For score priors only ``seed`` and ``level`` of the search's settings apply (``level``
    ``"auto"``: 1, as for the magnitude fit); any other setting changed from the ``best``
    preset is refused in one line, as is a mix of score and other priors.

    >>> from priorsep.data import builtin_example
    >>> type(make_separator(builtin_example(6)[0])).__name__
    'Separator'
    """
    score = [getattr(p, "domain", None) == "score" for p in priors]
    if not any(score):
        return Separator(priors, config, progress=progress, device=device, threads=threads, **overrides)
    if not all(score):
        names = lambda want: ", ".join(p.name for p, s in zip(priors, score) if s == want)  # noqa: E731
        raise PriorError(f"score priors ({names(True)}) are separated by posterior sampling and the others "
                         f"({names(False)}) by latent search; use priors of one kind")
    if config is None or isinstance(config, str):
        if (config or "best") not in PRESETS:
            raise ConfigError(f"unknown preset {config!r}; known: {', '.join(sorted(PRESETS))}")
        config = PRESETS[config or "best"]
    config = dataclasses.replace(config, **overrides)
    best = PRESETS["best"]
    changed = [f.name for f in dataclasses.fields(SearchConfig)
               if f.name not in ("seed", "level") and getattr(config, f.name) != getattr(best, f.name)]
    if changed:
        raise ConfigError(f"score priors are separated by posterior sampling; latent-search settings do not apply "
                          f"to them: {', '.join(changed)}")
    level = 1.0 if config.level == "auto" else config.level
    return PosteriorSeparator(priors, PosteriorConfig(seed=config.seed), level=level, progress=progress,
                              device=device, threads=threads)
