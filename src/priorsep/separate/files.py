"""Separate an audio file by name: :func:`separate_file`, the file-level Python API.

It does what ``priorsep separate FILE`` does before writing anything: read and validate
the file (:func:`priorsep.audio.read_audio`: mono or a chosen channel, resampled to the
priors' rate), load the priors given by name or file, search, and return the
:class:`~priorsep.separate.separator.SeparationResult`, whose
:meth:`~priorsep.separate.separator.SeparationResult.as_dict` gives the estimates by
source name.

>>> import numpy as np, soundfile as sf, tempfile, os
>>> from priorsep.data import builtin_example
>>> priors, mixture, sources = builtin_example(6)
>>> path = os.path.join(tempfile.mkdtemp(), "mix.wav")
>>> sf.write(path, mixture.numpy(), 16000, subtype="FLOAT")
>>> result = separate_file(path, priors, steps=5)
>>> {name: tuple(x.shape) for name, x in result.as_dict().items()}
{'tone': (16384,), 'burst': (16384,)}
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from ..runtime import torch_threads
from .choose import make_separator
from .config import SearchConfig
from .results import SeparationResult

__all__ = ["separate_file"]


def separate_file(path: str | os.PathLike, priors: Sequence[Any], config: SearchConfig | str | None = None, *,
                  channel: int | None = None, downmix: bool = False, resample: bool = True,
                  device: str | torch.device | None = None, progress: bool = False,
                  threads: int | str | None = "default", **settings: Any) -> SeparationResult:
    """Separate the audio file ``path`` with ``priors`` (names, files or prior objects).

    Args:
        path: any file soundfile reads; multichannel files need ``channel`` or ``downmix``.
        priors: two or more; a string is loaded with :func:`priorsep.priors.load_prior`.
        config, settings: a preset name or :class:`SearchConfig`, and single settings
            that replace its fields (``steps=100``), as for :class:`Separator`.
        resample: resample another rate to the priors' (with soxr); ``False`` refuses it.
        threads: torch's intra-op threads for the whole call (loading, reading, separating),
            restored after: ``"default"`` (the command line's default,
            :func:`priorsep.runtime.default_threads`), a number, or ``None`` (torch's
            setting left alone).
    Returns:
        the result for the file's ``[T]`` samples: estimates ``[K, T]`` (score priors:
        a :class:`~priorsep.separate.posterior.PosteriorResult`, :func:`make_separator`).
    Raises:
        AudioError, PriorError, ConfigError: one line each, as the command line gives them.
        SearchError: the search diverged or did not separate (:meth:`Separator.separate`).
    """
    from ..audio import read_audio
    from ..priors import load_prior

    with torch_threads(threads) as used:
        loaded = [load_prior(p) if isinstance(p, (str, os.PathLike)) else p for p in priors]
        separator = make_separator(loaded, config, progress=progress, device=device, threads=used, **settings)
        audio = read_audio(path, separator.sample_rate, channel=channel, downmix=downmix, resample=resample)
        return separator.separate(torch.from_numpy(audio.samples))
