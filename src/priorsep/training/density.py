"""Fit a prior's latent density (:class:`priorsep.priors.density.LatentDensity`) to the
encodings of its class's clips: what ``priorsep fit-density`` runs.

Each clip is peak-normalised (the level the search sees), encoded by the prior's own
encoder (the posterior mean), and a diagonal Gaussian mixture is fitted to the codes. The
prior is saved again with the density inside, its other metadata kept and a ``density``
record added (clips, components, the codes' mean log-density).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from ..errors import ConfigError
from ..priors.base import EncodablePrior, save_prior
from ..priors.density import LatentDensity

__all__ = ["fit_density"]


def fit_density(prior, data: str | os.PathLike, out: str | os.PathLike, *, components: int = 16,
                max_clips: int = 3000, seed: int = 0, command: str = "", batch: int = 64) -> Path:
    """Fit ``prior``'s latent density to the clips under ``data``; save the prior to ``out``.

    Raises:
        ConfigError: a prior without an encoder or without room for a density, too few clips.
    """
    from ..data.folder import load_folder

    if not isinstance(prior, EncodablePrior) or not hasattr(prior, "attach_density"):
        raise ConfigError(f"prior {prior.name!r} ({type(prior).__name__}) has no encoder to fit a latent density "
                          "with; fit-density takes specvae priors")
    clips = load_folder(data, max_clips=max_clips)
    if clips.clips.shape[0] < 2 * components:
        raise ConfigError(f"{data}: {clips.clips.shape[0]} clips; fitting {components} components needs at least "
                          f"{2 * components}")
    began = time.perf_counter()
    x = clips.clips / clips.clips.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)
    with torch.no_grad():
        codes = torch.cat([prior.encode(x[i:i + batch]) for i in range(0, x.shape[0], batch)])
    density = LatentDensity.fit(codes, components=components, seed=seed)
    prior.attach_density(density)
    with torch.no_grad():
        mean_log = float(density.log_density(codes).mean() / codes.shape[1])
    meta = dict(getattr(prior, "metadata", {}))
    kept = {k: v for k, v in meta.items() if k not in {"format", "version", "name", "sample_rate", "length",
                                                           "latent_dim", "arch"}}
    kept["density"] = {"clips": int(codes.shape[0]), "components": components, "seed": seed,
                       "folder": clips.describe().get("folder", str(data)), "mean_log_density_per_dim": mean_log,
                       "seconds": round(time.perf_counter() - began, 1), "command": command}
    return save_prior(prior, out, **kept)
