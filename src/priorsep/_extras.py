"""Optional dependencies: a missing one is one clear error with the install command.

The core install (torch, numpy, scipy, soundfile, soxr, safetensors, tqdm) separates
mixtures. Figures, BSS Eval and the scikit-learn baselines need an extra
(``pyproject.toml``): ``plot`` (matplotlib), ``eval`` (museval), ``baselines``
(scikit-learn, threadpoolctl), or ``all``.

>>> str(missing("sklearn.decomposition", "baselines", "the nmf baseline"))
"scikit-learn is needed for the nmf baseline: pip install 'priorsep[baselines]'"
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["missing", "require"]

#: import name -> the PyPI distribution that provides it, where the two differ
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


def missing(module: str, extra: str, what: str) -> MissingDependencyError:
    """The error for an absent optional ``module`` (an import name such as
    ``"sklearn.decomposition"``) that ``what`` needs and the extra ``extra`` installs."""
    top = module.split(".")[0]
    hint = f"pip install 'priorsep[{extra}]'"
    return MissingDependencyError(f"{_DISTRIBUTIONS.get(top, top)} is needed for {what}: {hint}")


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import the optional ``module`` for ``what``, or raise :func:`missing`'s error.

    Only the absence of ``module`` itself (or of a package above it) becomes the install
    hint; an installed package that fails to import raises its own error.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or not (module == err.name or module.startswith(err.name + ".")):
            raise
        raise missing(module, extra, what) from None
