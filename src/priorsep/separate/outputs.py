"""Writing a separation to a folder: WAVs, an optional spectrogram figure and ``summary.json``.

One writer serves the ``separate`` and ``demo`` commands (and any script): every file goes
into a staged folder that appears whole or not at all (:class:`priorsep.fsutil.StagedDir`).

Files, for source ``k`` named ``name``:

- ``{k}_{name}.wav``: the mixture-consistent estimate (``output="masked"`` or ``"both"``),
  or the generated source (``output="generated"``);
- ``{k}_{name}.generated.wav``: the generated source (``output="both"``);
- ``{k}_{name}.true.wav`` and ``mixture.wav``: the true sources and the mixture, when given;
- ``spectrograms.png`` (``plot=True``): the mixture, the true sources, the estimates;
- ``summary.json``: the settings, the final losses, the search's time, the files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import Tensor

from ..audio import write_audio
from ..fsutil import StagedDir, write_text
from .results import SeparationResult

__all__ = ["OUTPUT_FORMS", "write_separation", "file_stem", "safe_name", "to_json"]

#: what ``output=`` accepts
OUTPUT_FORMS = ("masked", "generated", "both")


def safe_name(name: str) -> str:
    """``name`` made safe for a file name.

    >>> safe_name("my drums/kit")
    'my-drums-kit'
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "source"


def file_stem(k: int, name: str) -> str:
    """``"{k}_{name}"``, the files of source ``k``, with the name made safe."""
    return f"{k}_{safe_name(name)}"


def _finite(obj: Any) -> Any:
    """NaN and infinities become null: strict JSON has no literal for them."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    """Strict, indented JSON (non-finite numbers as ``null``)."""
    return json.dumps(_finite(obj), indent=2, allow_nan=False)


def write_separation(
    out: str | os.PathLike | StagedDir,
    result: SeparationResult,
    mixture: Tensor | np.ndarray,
    sample_rate: int,
    names: Sequence[str],
    *,
    output: str = "masked",
    plot: bool = False,
    sources: Tensor | np.ndarray | None = None,
    summary: dict | None = None,
) -> list[str]:
    """Write one separated mixture to the folder ``out``.

    Args:
        out: the output folder (created; its parent must exist), or a :class:`StagedDir`
            made for it beforehand (so that a bad folder fails before a long search).
        result: the separation of ``mixture`` (``[K, T]`` estimates).
        mixture: ``[T]``, written as ``mixture.wav`` only when ``sources`` are given.
        names: the K sources' names (usually the priors').
        output: ``"masked"``, ``"generated"`` or ``"both"`` (module docstring).
        plot: also write ``spectrograms.png`` (needs the ``plot`` extra).
        sources: the true sources ``[K, T]``, when known (a demo, a benchmark mixture).
        summary: more fields for ``summary.json`` (it always holds ``settings``,
            ``final_losses``, ``search_seconds`` and ``outputs``).
    Returns:
        the names of the files written, ``summary.json`` last.
    """
    if output not in OUTPUT_FORMS:
        raise ValueError(f"output must be one of {OUTPUT_FORMS}; got {output!r}")
    if result.masked.dim() != 2 or result.masked.shape[0] != len(names):
        raise ValueError(f"write_separation expects one mixture's [K, T] estimates for {len(names)} names; "
                         f"got {tuple(result.masked.shape)}")
    stems = [file_stem(k, n) for k, n in enumerate(names)]
    staged = out if isinstance(out, StagedDir) else StagedDir(out)
    written: list[str] = []
    panels: list[tuple[str, Any]] = [("mixture", mixture)]
    with staged as stage:

        def wav(name: str, samples: Any) -> None:
            written.append(write_audio(Path(stage) / name, samples, sample_rate).name)

        if sources is not None:
            wav("mixture.wav", mixture)
            for stem, name, source in zip(stems, names, sources):
                wav(f"{stem}.true.wav", source)
                panels.append((f"true {name}", source))
        if output in ("masked", "both"):
            for k, (stem, name) in enumerate(zip(stems, names)):
                wav(f"{stem}.wav", result.masked[k])
                panels.append((f"masked {name}", result.masked[k]))
        if output in ("generated", "both"):
            for k, (stem, name) in enumerate(zip(stems, names)):
                wav(f"{stem}.generated.wav" if output == "both" else f"{stem}.wav", result.generated[k])
                panels.append((f"generated {name}", result.generated[k]))
        if plot:
            from ..plots import spectrogram_grid

            cols = 3 if sources is not None else None
            written.append(spectrogram_grid(panels, sample_rate, Path(stage) / "spectrograms.png",
                                            **({"cols": cols} if cols else {})).name)
        record = {
            **(summary or {}),
            "settings": result.settings,
            "final_losses": {k: float(v.reshape(-1)[0]) for k, v in result.losses.items()},
            "search_seconds": round(result.seconds, 3),
            "outputs": written,
        }
        write_text(Path(stage) / "summary.json", to_json(record) + "\n")
    return [*written, "summary.json"]
