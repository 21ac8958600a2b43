"""priorsep: unsupervised audio source separation with generative priors.

Implements Narayanaswamy et al., "Unsupervised Audio Source Separation using Generative
Priors" (Interspeech 2020, arXiv 2005.13769), as specified in METHOD.md.
"""

from .priors import (
    Prior,
    PriorError,
    WaveGANDiscriminator,
    WaveGANGenerator,
    WaveGANPrior,
    load_prior,
    save_prior,
)
from .separate import SeparationResult, Separator

__version__ = "0.1.0"

__all__ = [
    "Prior", "PriorError", "SeparationResult", "Separator", "WaveGANDiscriminator", "WaveGANGenerator",
    "WaveGANPrior", "load_prior", "save_prior", "__version__",
]
