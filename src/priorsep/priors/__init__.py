"""Source priors: the interface, the saved-prior format, and the prior families."""

from .base import Prior, PriorError, builtin_names, bundled_priors, check_prior, load_prior, read_metadata, save_prior
from .parametric import BurstPrior, TonePrior
from .specvae import SpecVAE
from .wavegan import PhaseShuffle, WaveGANDiscriminator, WaveGANGenerator, WaveGANPrior

__all__ = [
    "Prior", "PriorError", "builtin_names", "bundled_priors", "check_prior", "load_prior", "read_metadata", "save_prior",
    "BurstPrior", "TonePrior", "SpecVAE", "PhaseShuffle", "WaveGANDiscriminator", "WaveGANGenerator", "WaveGANPrior",
]
