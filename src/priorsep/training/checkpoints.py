"""Training checkpoints shared by the trainers: one safetensors file per checkpoint, the
tensors (weights, optimiser moments, RNG states) plus a JSON document under the header key
``"priorsep-checkpoint"``; written atomically, the last few kept. Nothing is pickled."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..errors import ConfigError
from ..fsutil import atomic_write

__all__ = ["KEY", "latest", "listing", "load_optimizer", "optimizer_tensors", "read", "write"]

KEY = "priorsep-checkpoint"
_NAME = re.compile(r"ckpt-(\d+)\.safetensors")


def optimizer_tensors(tag: str, opt: torch.optim.Optimizer) -> dict[str, Tensor]:
    """An optimiser's per-parameter state as flat tensors ``{tag.<param id>.<name>: tensor}``."""
    return {f"{tag}.{pid}.{key}": torch.as_tensor(value)
            for pid, state in opt.state_dict()["state"].items() for key, value in state.items()}


def load_optimizer(tag: str, opt: torch.optim.Optimizer, tensors: dict[str, Tensor], param_groups: list) -> None:
    """Restore what :func:`optimizer_tensors` flattened, with the saved ``param_groups``."""
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(tag + "."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": param_groups})


def listing(run_dir: str | os.PathLike) -> list[Path]:
    """The run folder's checkpoints ``ckpt-<step>.safetensors``, by step."""
    found = [p for p in Path(run_dir).glob("ckpt-*.safetensors") if _NAME.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(_NAME.fullmatch(p.name).group(1)))


def write(run_dir: Path, step: int, tensors: dict[str, Tensor], meta: dict, keep: int) -> Path:
    """Write ``run_dir/ckpt-<step>.safetensors`` atomically and keep the last ``keep`` (by step)."""
    if keep < 1:
        raise ConfigError(f"keep={keep}: keep at least one checkpoint")
    path = Path(run_dir) / f"ckpt-{step:08d}.safetensors"
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata={KEY: json.dumps(meta)})
    for old in listing(run_dir)[:-keep]:
        old.unlink()
    return path


def latest(run_dir: str | os.PathLike) -> Path | None:
    """The run folder's last checkpoint (highest step), or None."""
    found = listing(run_dir)
    return found[-1] if found else None


def read(path: str | os.PathLike) -> tuple[dict, dict[str, Tensor]]:
    """A checkpoint's JSON document and tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = (f.metadata() or {}).get(KEY)
            if meta is None:
                raise ConfigError(f"{path}: not a priorsep training checkpoint")
            return json.loads(meta), {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as exc:
        raise ConfigError(f"{path}: unreadable checkpoint ({exc})") from None
