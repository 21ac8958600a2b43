"""A calibrated density over a prior's latents: where its own class's codes lie.

A specvae prior is trained with a standard-normal latent prior, but the codes of its own
class occupy only part of that space, and the search can wander to latents that decode to
other classes' sound at the same norm (issue 14). :class:`LatentDensity` is a diagonal
Gaussian mixture fitted (with scikit-learn's ``GaussianMixture``) to the encoder's
posterior means of the class's training clips; the search's ``density`` weight then adds
``-log p(z_k) / D`` per source (:class:`priorsep.separate.SearchConfig`), a
class-plausibility term in the latent space.

It is saved inside the prior's file (tensors ``density.mean``, ``density.log_var``,
``density.log_weight``; ``arch.density_components`` in the metadata), so a prior with a
density loads as one file.

>>> import torch
>>> d = LatentDensity.fit(torch.randn(500, 4), components=2, seed=0)
>>> d.log_density(torch.zeros(3, 4)).shape
torch.Size([3])
>>> bool(d.log_density(torch.zeros(1, 4)) > d.log_density(torch.full((1, 4), 4.0)))
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["LatentDensity"]


class LatentDensity(nn.Module):
    """A diagonal Gaussian mixture over latents ``[B, D]``.

    Args:
        components: C, the number of Gaussians.
        latent_dim: D.
    """

    def __init__(self, components: int, latent_dim: int) -> None:
        super().__init__()
        if components < 1 or latent_dim < 1:
            raise ValueError(f"components and latent_dim must be positive; got {components}, {latent_dim}")
        self.components, self.latent_dim = components, latent_dim
        self.register_buffer("mean", torch.zeros(components, latent_dim))
        self.register_buffer("log_var", torch.zeros(components, latent_dim))
        self.register_buffer("log_weight", torch.full((components,), -math.log(components)))

    def log_density(self, z: Tensor) -> Tensor:
        """``z [B, D]`` -> ``log p(z)`` ``[B]`` (natural log, normalised)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z of shape [B, {self.latent_dim}]; got {tuple(z.shape)}")
        diff = z[:, None, :] - self.mean  # [B, C, D]
        per = -0.5 * (diff.square() / self.log_var.exp() + self.log_var + math.log(2 * math.pi)).sum(dim=-1)
        return torch.logsumexp(per + self.log_weight, dim=-1)

    @classmethod
    def fit(cls, latents: Tensor, components: int = 16, seed: int = 0) -> "LatentDensity":
        """Fit to ``latents [N, D]`` by EM (``sklearn.mixture.GaussianMixture``, diagonal
        covariances, a variance floor of 1e-3)."""
        from .._extras import require

        mixture = require("sklearn.mixture", "baselines", "fitting a latent density")
        x = latents.detach().double().cpu().numpy()
        if x.ndim != 2 or x.shape[0] < 2 * components:
            raise ValueError(f"need at least {2 * components} latents [N, D] to fit {components} components; "
                             f"got {tuple(x.shape)}")
        gmm = mixture.GaussianMixture(components, covariance_type="diag", reg_covar=1e-3, random_state=seed,
                                      max_iter=200).fit(x)
        density = cls(components, x.shape[1])
        density.mean.copy_(torch.from_numpy(gmm.means_))
        density.log_var.copy_(torch.from_numpy(gmm.covariances_).log())
        density.log_weight.copy_(torch.from_numpy(gmm.weights_).clamp_min(1e-12).log())
        return density
