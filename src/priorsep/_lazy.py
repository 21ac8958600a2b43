"""Lazy package attributes (PEP 562), so that ``import priorsep`` and the command line's
start-up do not import torch until something that needs it is used.

A package lists what it exports and the submodule each name lives in; the submodule is
imported on first access:

>>> import subprocess, sys
>>> code = "import sys, priorsep; a = 'torch' in sys.modules; priorsep.Separator; print(a, 'torch' in sys.modules)"
>>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
'False True'
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps each public name to the
    module (relative to ``package``, e.g. ``".separator"``) that defines it."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        globals_of(package)[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals_of(package), *exports})

    return __getattr__, __dir__


def globals_of(package: str) -> dict[str, Any]:
    import sys

    return vars(sys.modules[package])
