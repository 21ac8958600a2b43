"""Separation by latent search: the configuration, the objectives, the loop.

- :mod:`.config`: :class:`SearchConfig` (every setting, a frozen dataclass) and :data:`PRESETS`;
- :mod:`.objectives`: the :class:`Objective` interface, the paper's and the magnitude objective;
- :mod:`.windows`: windows and overlap-add for inputs longer than the priors;
- :mod:`.separator`: :class:`Separator`, the one search loop, and :class:`SeparationResult`;
- :mod:`.outputs`: :func:`write_separation`, a separation written to a folder.
"""

from ..mixing import peak_normalise
from .config import PRESETS, STARTS, SearchConfig
from .objectives import OBJECTIVES, MagnitudeObjective, Objective, PaperObjective, register_objective
from .outputs import OUTPUT_FORMS, file_stem, write_separation
from .separator import SeparationResult, Separator, check_priors
from .windows import frame_windows, overlap_add

__all__ = [
    "PRESETS", "STARTS", "SearchConfig", "OBJECTIVES", "MagnitudeObjective", "Objective", "PaperObjective",
    "register_objective", "SeparationResult", "Separator", "check_priors", "frame_windows", "overlap_add",
    "peak_normalise", "OUTPUT_FORMS", "file_stem", "write_separation",
]
