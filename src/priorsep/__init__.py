"""priorsep: unsupervised audio source separation with generative priors.

Implements Narayanaswamy et al., "Unsupervised Audio Source Separation using Generative
Priors" (Interspeech 2020, arXiv 2005.13769), as specified in docs/method.md, and goes
beyond it where it is weak.

The public API:

- :class:`Separator`, :class:`SearchConfig`, :data:`PRESETS`, :class:`SeparationResult`
  (``.as_dict()``: estimates by source name), :func:`separate_file`: the latent search
  (:mod:`priorsep.separate`); :func:`make_separator`: the search, or posterior sampling
  for score priors;
- :func:`load_prior`, :func:`save_prior`, :class:`Prior` and the prior families
  (:mod:`priorsep.priors`);
- :func:`evaluate` (:mod:`priorsep.metrics`; BSS Eval needs the ``eval`` extra) and
  :func:`read_audio` / :func:`write_audio` (:mod:`priorsep.audio`);
- :class:`PriorsepError`, the base of every error a user can cause.

Names are imported on first use (:mod:`priorsep._lazy`): ``import priorsep`` alone does
not import torch.
"""

from ._lazy import lazy_exports
from .errors import PriorsepError

__version__ = "0.1.0"

_EXPORTS = {
    "read_audio": ".audio", "write_audio": ".audio", "evaluate": ".metrics",
    "Prior": ".priors", "PriorError": ".priors", "WaveGANDiscriminator": ".priors", "WaveGANGenerator": ".priors",
    "WaveGANPrior": ".priors", "load_prior": ".priors", "register_family": ".priors", "save_prior": ".priors",
    "PRESETS": ".separate", "SearchConfig": ".separate", "SeparationResult": ".separate", "Separator": ".separate",
    "separate_file": ".separate", "make_separator": ".separate",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["PriorsepError", "__version__", *_EXPORTS]
