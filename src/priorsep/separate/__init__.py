"""Separation by latent search: the configuration, the objectives, the loop.

- :mod:`.config`: :class:`SearchConfig` (every setting, a frozen dataclass), :data:`PRESETS`
  and :data:`LR_RANGE`, the learning rates accepted;
- :mod:`.objectives`: the :class:`Objective` interface, the paper's and the magnitude objective;
- :mod:`.windows`: windows and overlap-add for inputs longer than the priors;
- :mod:`.results`: :class:`SeparationResult`, what the search returns;
- :mod:`.separator`: :class:`Separator`, the one search loop;
- :mod:`.posterior`: :class:`PosteriorSeparator`, posterior sampling with score priors;
- :mod:`.choose`: :func:`make_separator`, which picks the search or posterior sampling for
  the priors (it imports both; :mod:`.separator` and :mod:`.posterior` import neither it
  nor each other);
- :mod:`.outputs`: :func:`write_separation`, a separation written to a folder;
- :mod:`.files`: :func:`separate_file`, a file separated by name.

Every call runs on the thread count of :mod:`priorsep.runtime` (one torch thread by default).

Names are imported on first use, so :mod:`.config` loads without torch.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "PRESETS": ".config", "STARTS": ".config", "SearchConfig": ".config", "LR_RANGE": ".config",
    "OBJECTIVES": ".objectives", "MagnitudeObjective": ".objectives", "Objective": ".objectives",
    "PaperObjective": ".objectives", "register_objective": ".objectives",
    "SeparationResult": ".results", "Separator": ".separator", "check_priors": ".separator",
    "make_separator": ".choose", "PosteriorConfig": ".posterior", "PosteriorSeparator": ".posterior",
    "separate_posterior": ".posterior",
    "frame_windows": ".windows", "overlap_add": ".windows", "peak_normalise": "..mixing",
    "OUTPUT_FORMS": ".outputs", "file_stem": ".outputs", "write_separation": ".outputs",
    "separate_file": ".files",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
