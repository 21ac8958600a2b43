"""Loading a prior: :func:`load_prior`, by built-in name or from a saved-prior file.

This module sits above the interface (:mod:`priorsep.priors.base`) and the families that
register themselves there (:mod:`.parametric`, :mod:`.specvae`, :mod:`.wavegan`,
:mod:`.score`): it imports all of them, and none of them imports it, so the family modules
and the interface never import each other both ways. Finding what a name means
(:func:`~priorsep.priors.base.locate_prior`) needs no torch and stays in
:mod:`~priorsep.priors.base`; building the prior here imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import safe_open

from ..errors import PriorError
from .base import FAMILIES, locate_prior, read_metadata

if TYPE_CHECKING:  # torch is imported when weights are read, not at import
    import torch
    from torch import Tensor, nn

__all__ = ["load_prior", "register_shipped_families"]


def register_shipped_families() -> None:
    """Import the family modules shipped with priorsep; each registers itself in
    :data:`~priorsep.priors.base.FAMILIES` (:func:`~priorsep.priors.base.register_family`)."""
    from . import parametric, score, specvae, wavegan  # noqa: F401  (importing them registers them)


def _read_weights(path: Path) -> dict[str, Tensor]:
    """The tensors of a saved prior: floating point and finite, or one :class:`PriorError`."""
    import torch

    state = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            tensor = f.get_tensor(key)
            if not tensor.is_floating_point():
                raise PriorError(f"{path}: tensor {key!r} is {str(tensor.dtype).replace('torch.', '')}; "
                                 "a prior's weights are floating point (the file is damaged or not a prior)")
            if not torch.isfinite(tensor).all():
                bad = int((~torch.isfinite(tensor)).sum())
                raise PriorError(f"{path}: tensor {key!r} holds {bad} NaN or infinite values; the prior is "
                                 "damaged (retrain it, or resume from an earlier checkpoint)")
            state[key] = tensor
    return state


def load_prior(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A built-in prior by name (parametric, or trained and shipped in the package), or a
    saved-prior file.

    Returns the prior in eval mode on ``device``. Raises :class:`PriorError` with one
    line for the user when the name is unknown or the file is not a valid prior.
    """
    register_shipped_families()
    from .parametric import BUILTIN

    where = locate_prior(name_or_path)
    if isinstance(where, str):
        return BUILTIN[where]().to(device).eval()
    path = where
    meta = read_metadata(path)
    arch = meta["arch"]
    family = arch["family"]
    if family not in FAMILIES:
        raise PriorError(f"{path}: unknown prior family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    try:
        prior = FAMILIES[family].from_arch_config(arch, meta["sample_rate"], meta["name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PriorError(f"{path}: metadata does not describe a valid {family} prior ({exc})") from None
    state = _read_weights(path)
    try:
        prior.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise PriorError(
            f"{path}: weights do not match the architecture in its metadata ({first[-1].strip()})") from None
    for attr in ("length", "latent_dim", "sample_rate"):
        if getattr(prior, attr) != meta.get(attr):
            raise PriorError(f"{path}: metadata says {attr} {meta.get(attr)}, the model has {getattr(prior, attr)}")
    prior.metadata = meta
    return prior.to(device).eval()
