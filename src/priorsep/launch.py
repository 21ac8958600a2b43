"""How this process was launched: alone, or as one rank of a ``torchrun`` launch.

``torchrun`` tells each process its place through environment variables (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``). These helpers are the one place that reads them; they import
nothing heavy, so the CLI can ask before it imports torch. Outside ``torchrun`` they give
one process of rank 0.

>>> import os
>>> env = {k: os.environ.pop(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK") if k in os.environ}
>>> world_size(), rank(), local_rank(), under_torchrun()
(1, 0, 0, False)
>>> os.environ.update(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1")
>>> world_size(), rank(), local_rank(), under_torchrun()
(2, 1, 1, True)
>>> for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
...     del os.environ[k]
>>> os.environ.update(env)
"""

from __future__ import annotations

import os

__all__ = ["local_rank", "rank", "under_torchrun", "world_size"]


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def world_size() -> int:
    """The number of processes in the launch (``WORLD_SIZE``; 1 outside ``torchrun``)."""
    return _int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's global rank (``RANK``; 0 outside ``torchrun``)."""
    return _int("RANK", 0)


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``; 0 outside ``torchrun``): its GPU."""
    return _int("LOCAL_RANK", 0)


def under_torchrun() -> bool:
    """Whether this process is one of several launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    return world_size() > 1
