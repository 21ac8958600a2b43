"""Source priors: the interface, the family registry, the saved-prior format, and the
families shipped with the package.

Names are imported on first use; :func:`load_prior` registers the shipped families
(:func:`~priorsep.priors.load.register_shipped_families`), so that listing priors
(``priorsep priors``) needs no torch.

- :mod:`.base`: the interface (Protocols), the family registry, the saved-prior format and
  the names of the built-in priors; it imports none of the families;
- :mod:`.parametric`, :mod:`.specvae`, :mod:`.wavegan`, :mod:`.score`: the families, each
  registering itself in :mod:`.base`;
- :mod:`.load`: :func:`load_prior`, above both.
"""

from .._lazy import lazy_exports

_BASE = ("FAMILIES", "EncodablePrior", "MagnitudePrior", "Prior", "PriorError", "SavablePrior", "best_bundled",
         "builtin_names", "bundled_priors", "check_prior", "read_metadata", "register_family", "save_prior")
_EXPORTS = {
    **{name: ".base" for name in _BASE},
    "load_prior": ".load",
    "BurstPrior": ".parametric", "TonePrior": ".parametric", "SpecVAE": ".specvae", "ScorePrior": ".score",
    "PhaseShuffle": ".wavegan", "WaveGANDiscriminator": ".wavegan", "WaveGANGenerator": ".wavegan",
    "WaveGANPrior": ".wavegan",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
