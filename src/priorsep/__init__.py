"""priorsep: unsupervised audio source separation with generative priors.

Implements Narayanaswamy et al., "Unsupervised Audio Source Separation using Generative
Priors" (Interspeech 2020, arXiv 2005.13769), as specified in docs/method.md, and goes
beyond it where it is weak.

The public API:

- :class:`Separator`, :class:`SearchConfig`, :data:`PRESETS`, :class:`SeparationResult`:
  the latent search (:mod:`priorsep.separate`);
- :func:`load_prior`, :func:`save_prior`, :class:`Prior` and the prior families
  (:mod:`priorsep.priors`);
- :func:`evaluate` (lazily from :mod:`priorsep.metrics`) and :func:`read_audio` /
  :func:`write_audio` (:mod:`priorsep.audio`);
- :class:`PriorsepError`, the base of every error a user can cause.
"""

from .audio import read_audio, write_audio
from .errors import PriorsepError
from .priors import (
    Prior,
    PriorError,
    WaveGANDiscriminator,
    WaveGANGenerator,
    WaveGANPrior,
    load_prior,
    register_family,
    save_prior,
)
from .separate import PRESETS, SearchConfig, SeparationResult, Separator

__version__ = "0.1.0"

__all__ = [
    "PRESETS", "Prior", "PriorError", "PriorsepError", "SearchConfig", "SeparationResult", "Separator",
    "WaveGANDiscriminator", "WaveGANGenerator", "WaveGANPrior", "evaluate", "load_prior", "read_audio",
    "register_family", "save_prior", "write_audio", "__version__",
]


def evaluate(references, estimates):
    """:func:`priorsep.metrics.evaluate` (imported on first use: BSS Eval needs the ``eval`` extra)."""
    from .metrics import evaluate as _evaluate

    return _evaluate(references, estimates)
