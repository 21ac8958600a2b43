"""The prior interface, the family registry and the saved-prior file format.

What the separator needs of a prior is written down as runtime-checkable Protocols, and
the separator dispatches on them, never on a family name:

- :class:`Prior`: ``name``, ``latent_dim``, ``sample_rate``, ``length``, ``latent_bound``
  (the box ``[-b, b]`` of its latents, ``None`` for unbounded latents) and
  ``generate(z [B, latent_dim]) -> [B, length]``;
- :class:`MagnitudePrior`: a prior that also generates STFT magnitudes,
  ``magnitude(z) -> [B, n_fft // 2 + 1, frames]`` under its own ``n_fft`` and ``hop``
  (centred periodic-Hann STFT, :func:`priorsep.spectral.analysis`'s layout
  ``[..., bins, frames]``); the magnitude objective fits those directly;
- :class:`EncodablePrior`: a prior with ``encode(x [N, length]) -> [N, latent_dim]``, from
  which the search can start;
- :class:`SavablePrior`: a prior that :func:`save_prior` can write and :func:`load_prior`
  rebuild: ``arch_config()``, the classmethod ``from_arch_config(cfg, sample_rate, name)``,
  and a ``state_dict``; loaded priors carry the file's JSON as ``metadata``.

A *family* is a class registered under the name its ``arch_config()["family"]`` gives,
with :func:`register_family`; :func:`~priorsep.priors.load.load_prior` finds it through the
registry. A new family is one module with one decorator::

    @register_family("mine")
    class MyPrior(nn.Module):
        ...

A saved prior is one ``.safetensors`` file: the weights, plus a JSON document in the
header's metadata under the key ``"priorsep"`` (class name, sample rate, length, latent
size, architecture, training and data description). Nothing is ever unpickled.

This module imports none of the families (they import it, to register themselves);
:mod:`priorsep.priors.load` imports this module and the families, and builds priors
(:func:`~priorsep.priors.load.load_prior`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

from safetensors import SafetensorError, safe_open

from ..errors import PriorError
from ..fsutil import atomic_write

if TYPE_CHECKING:  # torch is imported where weights are written, not at import
    from torch import Tensor

FORMAT = "priorsep-prior"
FORMAT_VERSION = 1


@runtime_checkable
class Prior(Protocol):
    """What the separator needs of every source prior.

    Shape:
        ``generate``: ``z [B, latent_dim]`` -> waveforms ``[B, length]`` at ``sample_rate``.
    """

    name: str
    latent_dim: int
    sample_rate: int
    length: int
    #: the search projects z onto ``[-latent_bound, latent_bound]`` (``None``: unbounded)
    latent_bound: float | None

    def generate(self, z: Tensor) -> Tensor:
        """``z [B, latent_dim]`` -> waveforms ``[B, length]``."""
        ...


@runtime_checkable
class MagnitudePrior(Prior, Protocol):
    """A prior that generates STFT magnitudes under its own STFT.

    Shape:
        ``magnitude``: ``z [B, latent_dim]`` -> linear magnitudes ``[B, n_fft // 2 + 1,
        frames]`` of a centred, periodic-Hann STFT with hop ``hop``
        (:func:`priorsep.spectral.analysis` of a ``length``-sample clip).
    """

    n_fft: int
    hop: int

    def magnitude(self, z: Tensor) -> Tensor:
        """``z [B, latent_dim]`` -> ``[B, bins, frames]``."""
        ...


@runtime_checkable
class EncodablePrior(Prior, Protocol):
    """A prior with an encoder: the search can start from the encoding of the mixture.

    Shape:
        ``encode``: waveforms ``[N, length]`` -> latents ``[N, latent_dim]``.
    """

    def encode(self, x: Tensor) -> Tensor:
        """``x [N, length]`` -> ``z [N, latent_dim]``."""
        ...


@runtime_checkable
class SavablePrior(Prior, Protocol):
    """A prior :func:`save_prior` writes and :func:`load_prior` rebuilds.

    ``arch_config()`` is a JSON object whose ``"family"`` names a registered family; that
    family's ``from_arch_config(cfg, sample_rate, name)`` builds an untrained prior of the
    same architecture, into which the saved ``state_dict`` is loaded.
    """

    def arch_config(self) -> dict[str, Any]:
        ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        ...


_P = TypeVar("_P", bound=type)

#: family name -> class, filled by :func:`register_family`
FAMILIES: dict[str, type] = {}


def register_family(name: str) -> Callable[[_P], _P]:
    """Class decorator: register a prior family under ``name``.

    The class needs ``from_arch_config(cfg, sample_rate, name)`` (a classmethod) and an
    ``arch_config()`` whose ``"family"`` is ``name``; :func:`load_prior` then rebuilds
    saved priors of the family. Registering a name twice with another class is refused.

    >>> @register_family("doctest-family")
    ... class Tiny:
    ...     @classmethod
    ...     def from_arch_config(cls, cfg, sample_rate, name):
    ...         return cls()
    >>> FAMILIES["doctest-family"] is Tiny
    True
    >>> del FAMILIES["doctest-family"]
    """

    def decorate(cls: _P) -> _P:
        if not callable(getattr(cls, "from_arch_config", None)):
            raise TypeError(f"prior family {name!r}: {cls.__name__} has no from_arch_config(cfg, sample_rate, name)")
        known = FAMILIES.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"prior family {name!r} is already registered by {known.__module__}.{known.__qualname__}")
        FAMILIES[name] = cls
        cls.family = name
        return cls

    return decorate


def check_prior(prior: Any) -> Prior:
    """Raise :class:`PriorError` unless ``prior`` has the :class:`Prior` interface with
    positive integer sizes and a positive or ``None`` ``latent_bound``."""
    members = ("name", "latent_dim", "sample_rate", "length", "latent_bound", "generate")
    missing = [a for a in members if not hasattr(prior, a)]
    if missing:
        raise PriorError(f"{type(prior).__name__} is not a prior: it lacks {', '.join(missing)}")
    for attr in ("latent_dim", "sample_rate", "length"):
        value = getattr(prior, attr)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise PriorError(f"prior {prior.name!r} has {attr}={value!r}; expected a positive int")
    bound = prior.latent_bound
    if bound is not None and (not isinstance(bound, (int, float)) or isinstance(bound, bool) or not bound > 0):
        raise PriorError(f"prior {prior.name!r} has latent_bound={bound!r}; expected a positive number or None")
    if isinstance(prior, MagnitudePrior):
        for attr in ("n_fft", "hop"):
            value = getattr(prior, attr)
            if not isinstance(value, int) or value <= 0:
                raise PriorError(f"prior {prior.name!r} has {attr}={value!r}; expected a positive int")
    return prior


#: trained priors shipped inside the package: ``<name>.safetensors``, each with a model
#: card ``<name>.md`` beside it
BUNDLED = Path(__file__).parent / "bundled"


def bundled_priors() -> dict[str, Path]:
    """Name -> file of every prior shipped in the package."""
    return {p.stem: p for p in sorted(BUNDLED.glob("*.safetensors"))}


#: the parametric priors of :mod:`priorsep.priors.parametric` (``BUILTIN`` there), named and
#: described here so that listing them does not import torch
PARAMETRIC = {
    "tone": "A decaying harmonic note: a few sinusoids at multiples of one fundamental.",
    "burst": "A burst of band-pass-filtered noise with an exponentially decaying envelope.",
}

def builtin_names() -> list[str]:
    """Names :func:`load_prior` resolves without a path: parametric and bundled priors."""
    return sorted({*PARAMETRIC, *bundled_priors()})


#: which bundled family separates a set of classes best (median SI-SDR, committed and shifted
#: sets; benchmarks/RESULTS.md and benchmarks/PRIORS.md): the score priors (posterior sampling)
#: where digits meet drums alone, the 1024-point score priors where digits meet piano alone
#: (better on the shifted set, a little worse in-domain), the default specvae priors (latent
#: search) wherever drums and piano take part
BEST_KIND = {frozenset({"digits", "drums"}): "-score", frozenset({"digits", "piano"}): "-score-1024"}


def best_bundled(classes: Sequence[str]) -> list[str]:
    """The measured-best bundled priors for a mixture of ``classes``, in their order.

    Score and search priors cannot separate together, so the choice is per set of classes
    (:data:`BEST_KIND`), not per class. Raises :class:`PriorError` for an unknown or repeated
    class, or fewer than two.

    >>> best_bundled(["drums", "digits"])
    ['drums-score', 'digits-score']
    >>> best_bundled(["piano", "digits"])
    ['piano-score-1024', 'digits-score-1024']
    >>> best_bundled(["digits", "drums", "piano"])
    ['digits', 'drums', 'piano']
    """
    classes = list(classes)
    bundled = [name for name in bundled_priors() if "-" not in name]  # a class's default prior: its name alone
    unknown = [c for c in classes if c not in bundled]
    if unknown:
        raise PriorError(f"no bundled priors for {', '.join(map(repr, unknown))}; "
                         f"bundled classes: {', '.join(bundled)}")
    if len(classes) < 2 or len(set(classes)) < len(classes):
        raise PriorError(f"name two or more different classes; got {', '.join(classes) or 'none'}")
    suffix = BEST_KIND.get(frozenset(classes), "")
    return [c + suffix for c in classes]


def steps_and_time(training: dict) -> list[str]:
    """``["N steps", "M min"]`` of a training record, then, for a prior trained on from
    another (``training.init``), that one's run in brackets, earliest last.

    >>> steps_and_time({"steps": 50, "seconds": 600.0,
    ...                  "init": {"name": "piano", "training": {"steps": 20, "seconds": 300.0}}})
    ['50 steps', '10 min (after piano: 20 steps, 5 min)']
    """
    parts = []
    if training.get("steps") is not None:
        parts.append(f"{training['steps']} steps")
    if training.get("seconds") is not None:
        parts.append(f"{training['seconds'] / 60:.0f} min")
    init = training.get("init")
    earlier = steps_and_time(init["training"]) if isinstance(init, dict) and init.get("training") else []
    if parts and earlier:
        parts[-1] += f" (after {init.get('name') or 'its init'}: {', '.join(earlier)})"
    return parts


def _bundled_description(path: Path) -> str:
    meta = read_metadata(path)
    t, arch, data = meta.get("training", {}), meta.get("arch", {}), meta.get("data", {})
    size = ", ".join(f"{k}={v}" for k, v in arch.items() if k not in ("family", "n_fft", "hop"))
    stft = f", STFT {arch['n_fft']}/{arch.get('hop')}" if "n_fft" in arch else ""
    return (f"trained {arch.get('family')} prior ({size}{stft}), {', '.join(steps_and_time(t))} "
            f"on {data.get('clips')} clips; card: {path.with_suffix('.md')}")


def builtin_descriptions() -> dict[str, str]:
    """Name -> one line, for ``priorsep priors``."""
    out = dict(PARAMETRIC)
    out.update({name: _bundled_description(path) for name, path in bundled_priors().items()})
    return dict(sorted(out.items()))


def save_prior(prior: SavablePrior, path: str | os.PathLike, **info: Any) -> Path:
    """Write ``prior`` (a module with ``arch_config()``) as one safetensors file.

    Args:
        prior: e.g. a :class:`~priorsep.priors.wavegan.WaveGANPrior`.
        path: destination; written to a temporary file first, then renamed, so a
            failure never leaves a half-written prior.
        **info: JSON-serialisable facts to record, e.g. ``training={"steps": 1000}``,
            ``data={"folder": ..., "clips": ...}``.
    Returns:
        the path written.
    """
    check_prior(prior)
    reserved = {"format", "version", "name", "sample_rate", "length", "latent_dim", "arch"} & set(info)
    if reserved:
        raise ValueError(f"save_prior: {sorted(reserved)} are set from the prior itself, not passed")
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": prior.name,
        "sample_rate": prior.sample_rate,
        "length": prior.length,
        "latent_dim": prior.latent_dim,
        "arch": prior.arch_config(),
        **info,
    }
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in prior.state_dict().items()}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata={"priorsep": json.dumps(meta)})
    return path


#: the metadata fields every saved prior has, and their JSON types
_REQUIRED: dict[str, tuple[type, ...]] = {
    "format": (str,), "version": (int,), "name": (str,), "sample_rate": (int,), "length": (int,),
    "latent_dim": (int,), "arch": (dict,),
}
#: optional fields, when present
_OPTIONAL: dict[str, tuple[type, ...]] = {"training": (dict,), "data": (dict,)}


def _check_metadata(path: Path | str, meta: Any) -> dict:
    """Raise :class:`PriorError` (one line) unless ``meta`` is a well-formed prior header."""
    if not isinstance(meta, dict):
        raise PriorError(f"{path}: its priorsep metadata is a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT:
        raise PriorError(f"{path}: unknown format {meta.get('format')!r} (expected {FORMAT!r})")
    for key, types in {**_REQUIRED, **_OPTIONAL}.items():
        if key not in meta:
            if key in _REQUIRED:
                raise PriorError(f"{path}: its metadata lacks {key!r}")
            continue
        value = meta[key]
        if not isinstance(value, types) or isinstance(value, bool):
            want = " or ".join({int: "an integer", str: "a string", dict: "an object"}[t] for t in types)
            raise PriorError(f"{path}: metadata {key!r} is {json.dumps(value)[:40]}; expected {want}")
    if not 1 <= meta["version"] <= FORMAT_VERSION:
        raise PriorError(f"{path}: format version {meta['version']} is not one this priorsep reads "
                         f"(1 to {FORMAT_VERSION}); upgrade priorsep")
    for key in ("sample_rate", "length", "latent_dim"):
        if meta[key] <= 0:
            raise PriorError(f"{path}: metadata {key!r} is {meta[key]}; expected a positive integer")
    if not meta["name"].strip():
        raise PriorError(f"{path}: metadata 'name' is empty")
    if not isinstance(meta["arch"].get("family"), str):
        raise PriorError(f"{path}: metadata 'arch' names no family (a string under 'family')")
    return meta


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a saved prior, checked (types of every field), without
    loading its weights."""
    try:
        with safe_open(str(path), framework="numpy") as f:  # the header only: no torch
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise PriorError(f"{path} is not a saved prior (not a readable safetensors file: {exc})") from None
    if "priorsep" not in header:
        raise PriorError(f"{path} is a safetensors file but not a priorsep prior (no 'priorsep' metadata)")
    try:
        meta = json.loads(header["priorsep"])
    except json.JSONDecodeError as exc:
        raise PriorError(f"{path}: its priorsep metadata is not valid JSON ({exc})") from None
    return _check_metadata(path, meta)


def locate_prior(name_or_path: str | os.PathLike) -> str | Path:
    """What :func:`load_prior` would load, found without importing torch: the name of a
    parametric prior, or the file (bundled or given); one :class:`PriorError` line if
    there is none.

    >>> locate_prior("tone"), locate_prior("digits").name
    ('tone', 'digits.safetensors')
    """
    key = str(name_or_path)
    if key in PARAMETRIC:
        return key
    bundled = bundled_priors()
    # a bundled name wins over a folder named like the class (common), not over a file
    path = bundled[key] if key in bundled and not Path(key).is_file() else Path(key)
    if path.is_dir():
        raise PriorError(f"{path}: is a folder, not a saved-prior file")
    if not path.is_file():
        raise PriorError(
            f"no built-in prior named {key!r} and no such file; built-in priors: {', '.join(builtin_names())}"
        )
    return path
