"""What a search result must be before it is returned: finite, and a separation.

A result that fails either check is never written; :func:`check_result` raises one
:class:`~priorsep.errors.SearchError` line that names the learning rate to change.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import SearchError
from .config import SearchConfig

__all__ = ["PROPORTIONAL", "check_result"]

#: a search whose K >= 2 estimates all correlate at least this much with the mixture did
#: not separate it
PROPORTIONAL = 0.999


def check_result(total: Tensor, generated: Tensor, masked: Tensor, mixture: Tensor, lr: float,
                 names: Sequence[str]) -> None:
    """Refuse a diverged search or one that only split the mixture's level.

    Args:
        total: the final loss per mixture, ``[B]``.
        generated, masked: the estimates, ``[B, K, T]``.
        mixture: the mixtures as searched, ``[B, T]``.
        lr: the search's learning rate, named in the message.
        names: the priors' names, named in the message.
    Raises:
        SearchError: a mixture with a non-finite loss or estimate (the search diverged), or
            one whose every estimate (K >= 2) is the mixture times a constant, a correlation
            of at least :data:`PROPORTIONAL` (a step size far too large for the priors, or
            priors that generate the same sources, one prior twice from one start, make the
            search do that; a separation never does). A silent estimate is not proportional.

    >>> mix = torch.randn(1, 64)
    >>> check_result(torch.zeros(1), mix[:, None].repeat(1, 2, 1), 0.5 * mix[:, None].repeat(1, 2, 1), mix,
    ...              10.0, ["a", "b"])
    Traceback (most recent call last):
    ...
    priorsep.errors.SearchError: the search did not separate the mixture: every estimate is the mixture times a \
constant (correlation >= 0.999, final loss 0); lower the learning rate (lr is 10; the default 0.05), or use priors \
that tell the sources apart
    """
    which = "the mixture" if total.shape[0] == 1 else "mixture {}"
    bad = [i for i in range(total.shape[0]) if not (torch.isfinite(total[i]) and torch.isfinite(generated[i]).all()
                                                    and torch.isfinite(masked[i]).all())]
    if bad:
        raise SearchError(
            f"the search diverged on {which.format(bad[0])} (final loss {float(total[bad[0]]):.3g}, non-finite "
            f"estimates); try a lower learning rate (lr is {lr:g}) or another prior ({', '.join(names)})")
    if masked.shape[-2] < 2:
        return
    norms = masked.norm(dim=-1) * mixture.norm(dim=-1, keepdim=True)  # [B, K]
    corr = torch.where(norms > 0, (masked @ mixture[..., None])[..., 0] / norms.clamp_min(1e-30), 0.0)
    bad = [i for i in range(corr.shape[0]) if bool((corr[i] >= PROPORTIONAL).all())]
    if bad:
        raise SearchError(
            f"the search did not separate {which.format(bad[0])}: every estimate is the mixture times a constant "
            f"(correlation >= {PROPORTIONAL}, final loss {float(total[bad[0]]):.3g}); lower the learning rate "
            f"(lr is {lr:g}; the default {SearchConfig.lr:g}), or use priors that tell the sources apart")
