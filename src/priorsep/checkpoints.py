"""Training checkpoints shared by the trainers: one safetensors file per checkpoint, the
tensors (weights, optimiser moments, RNG states) plus a JSON document under the header key
``"priorsep-checkpoint"``; written atomically, the last few kept. Nothing is pickled."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

KEY = "priorsep-checkpoint"


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


def write(run_dir: Path, step: int, tensors: dict[str, Tensor], meta: dict, keep: int) -> Path:
    """Write ``run_dir/ckpt-<step>.safetensors`` atomically and keep the last ``keep``."""
    path = run_dir / f"ckpt-{step:08d}.safetensors"
    tmp = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(tmp), metadata={KEY: json.dumps(meta)})
    os.replace(tmp, path)
    for old in sorted(run_dir.glob("ckpt-*.safetensors"))[:-keep]:
        old.unlink()
    return path


def latest(run_dir: str | os.PathLike) -> Path | None:
    """The run folder's last checkpoint, or None."""
    found = sorted(Path(run_dir).glob("ckpt-*.safetensors"))
    return found[-1] if found else None


def read(path: str | os.PathLike) -> tuple[dict, dict[str, Tensor]]:
    """A checkpoint's JSON document and tensors."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()[KEY]), {k: f.get_tensor(k) for k in f.keys()}
