"""Data-parallel helpers for training under ``torchrun`` (``torch.distributed``).

Every process draws the same global batch and takes its own slice; after each backward
pass :func:`average_gradients` averages the gradients over the processes with one
all-reduce, so the update is the single-process update on the global batch. Every helper
is a no-op (or the identity) in a single process (``world == 1``).

Joining and leaving the process group (:func:`init_processes`, :func:`rank_and_world`,
:func:`teardown`) is :mod:`priorsep.runtime`'s, shared with inference; the names are
re-exported here for training code.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..runtime import init_processes, rank_and_world, teardown

__all__ = ["agree", "average_gradients", "broadcast", "gather", "init_processes", "mean_over_ranks",
           "rank_and_world", "teardown"]


def average_gradients(module: nn.Module, world: int) -> None:
    """Average ``module``'s gradients over the processes (one all-reduce of all of them)."""
    if world == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(stats: dict[str, float], world: int, device: torch.device) -> dict[str, float]:
    """Each value averaged over the processes (in float64); every process passes the same keys."""
    if world == 1:
        return stats
    keys = sorted(stats)
    values = torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return {k: v / world for k, v in zip(keys, values.tolist())}


def agree(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's ``flag``, on every process (rank 0's clock decides when to stop or checkpoint)."""
    if world == 1:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())


def broadcast(tensors: list[Tensor], world: int) -> None:
    """Overwrite ``tensors`` in place with rank 0's (e.g. every weight at the start of a run)."""
    if world > 1:
        for tensor in tensors:
            dist.broadcast(tensor, 0)


def gather(state: Tensor, world: int, device: torch.device) -> list[Tensor]:
    """Every process's ``state`` (same shape everywhere, e.g. an RNG state), in rank order, on the CPU."""
    if world == 1:
        return [state]
    gathered = [torch.empty_like(state, device=device) for _ in range(world)]
    dist.all_gather(gathered, state.to(device))
    return [g.cpu() for g in gathered]
