"""Source priors: the interface, the family registry, the saved-prior format, and the
families shipped with the package (importing this package registers them)."""

from .base import (
    FAMILIES,
    EncodablePrior,
    MagnitudePrior,
    Prior,
    PriorError,
    SavablePrior,
    builtin_names,
    bundled_priors,
    check_prior,
    load_prior,
    read_metadata,
    register_family,
    save_prior,
)
from .parametric import BurstPrior, TonePrior
from .specvae import SpecVAE
from .wavegan import PhaseShuffle, WaveGANDiscriminator, WaveGANGenerator, WaveGANPrior

__all__ = [
    "FAMILIES", "EncodablePrior", "MagnitudePrior", "Prior", "PriorError", "SavablePrior", "builtin_names",
    "bundled_priors", "check_prior", "load_prior", "read_metadata", "register_family", "save_prior",
    "BurstPrior", "TonePrior", "SpecVAE", "PhaseShuffle", "WaveGANDiscriminator", "WaveGANGenerator", "WaveGANPrior",
]
