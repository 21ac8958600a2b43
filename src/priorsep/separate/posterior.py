"""Separation by posterior sampling with score priors (:mod:`priorsep.priors.score`).

The K sources' log-magnitude images ``x_k`` (``log(1 + |X|)`` of the priors' STFT, by default
512/256 and 256 x 64; every prior of one separation must share it) are
sampled jointly, from noise of width ``sigma_max`` down to ``sigma_min`` over a geometric
schedule, given the mixture's image ``y``, by projection: at each width ``sigma_i`` every
source's prior denoises its image (Tweedie's formula, ``x0_k = x_k - sigma_i eps_hat_k``); the
denoised images are projected onto the mixture by ratio masks, ``x0_k <- log(1 + m_k |Y|)``
with ``m_k = expm1(x0_k) / sum_j expm1(x0_j)``, so that the sources' magnitudes always add up
to the mixture's; the next, narrower width is reached by renoising,
``x_k = x0_k + sigma_{i+1} (sqrt(1 - eta^2) eps_hat_k + eta xi)`` (DDIM's step, Song et
al., ICLR 2021, arXiv:2010.02502, with fresh noise ``eta``). One network call per source
and width. Keeping one constraint exact and letting the priors fill in the rest is the
idea of the "Dirac" separator of Mariani et al. (ICLR 2024, arXiv:2302.02257); here the
constraint is on magnitudes.

Ratio masks of the final magnitudes, applied to the mixture's STFT, give mixture-consistent
estimates. Annealed Langevin dynamics (Jayaram & Thickstun, ICML 2020) was measured first
and separated far worse at three times the network calls (benchmarks/PRIORS.md, "Score
priors and posterior sampling"); it is not shipped.

Inputs longer than one clip are cut into overlapping windows (:mod:`priorsep.separate.windows`),
sampled one by one and overlap-added. Every window's chains draw their noise from their own
generator seeded with ``seed``, so a mixture's result does not depend on the others in its
batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from .. import spectral
from ..constants import CLIP_LENGTH
from ..errors import AudioError, ConfigError, PriorError
from ..priors.score import ScorePrior, from_image, sigma_schedule
from ..progress import Progress
from ..runtime import keep_heap, resolve_device, resolve_threads, torch_threads
from .results import by_name
from .windows import OverlapAdd, frame_windows

__all__ = ["PosteriorConfig", "PosteriorResult", "PosteriorSeparator", "check_score_priors", "separate_posterior"]


@dataclass(frozen=True)
class PosteriorConfig:
    """The settings of posterior sampling (module docstring): its noise schedule, the
    renoising's fresh noise, the chains and their seed.

    Attributes:
        levels: noise widths of the geometric schedule, from ``sigma_max`` down to the
            largest of the priors' ``sigma_min``.
        eta: the share of fresh noise in each renoising (0: deterministic DDIM).
        sigma_max: the first width; ``None``: the smallest of the priors' ``sigma_max``.
        chains: independent chains per mixture; their magnitudes are averaged.
        seed: seeds every chain's noise.

    Raises:
        ConfigError: ``eta`` outside [0, 1], ``levels`` or ``chains`` below 1.
    """

    levels: int = 60
    eta: float = 1.0
    sigma_max: float | None = None
    chains: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"posterior sampling: eta must be in [0, 1]; got {self.eta}")
        for name in ("levels", "chains"):
            if getattr(self, name) < 1:
                raise ConfigError(f"posterior sampling: {name} must be at least 1; got {getattr(self, name)}")


@dataclass
class PosteriorResult:
    """What :func:`separate_posterior` returns (for a ``[T]`` input the leading ``B`` is dropped).

    Attributes:
        masked: mixture-consistent estimates ``[B, K, T]`` (they sum to the mixture).
        magnitudes: the sampled magnitudes of every window, ``[B, W, K, F + 1, N + 1]`` of the
            priors' STFT (``[B, W, K, 257, 65]`` for the default 512/256), at the input's level.
        seconds: wall time.
        settings: :meth:`PosteriorSeparator.settings`.
        losses: empty: sampling minimises no loss (the field keeps the
            :class:`~priorsep.separate.results.SeparationResult` interface).
    """

    masked: Tensor
    magnitudes: Tensor
    seconds: float
    settings: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)

    @property
    def windows(self) -> int:
        """Windows per mixture, ``W``."""
        return int(self.magnitudes.shape[-4])

    def as_dict(self, form: str = "masked") -> dict[str, Tensor]:
        """The estimates by source name, ``{name: [B, T]}``, as
        :meth:`~priorsep.separate.results.SeparationResult.as_dict` (``form`` must be
        ``"masked"``)."""
        if form != "masked":
            raise ConfigError(f"posterior sampling gives masked estimates only; got form {form!r}")
        return by_name(self.masked, self.settings.get("priors"))


def check_score_priors(priors: Sequence[ScorePrior]) -> list[ScorePrior]:
    """Check the priors of a posterior sampling: at least two score priors of one sample
    rate and one STFT.

    Args:
        priors: the K priors, in the order of the outputs.
    Returns:
        them, as a list.
    Raises:
        ConfigError: fewer than two priors.
        PriorError: a prior that is not a score prior, or priors of different sample rates
            or STFTs (one line).
    """
    priors = list(priors)
    if len(priors) < 2:
        raise ConfigError(f"posterior sampling needs at least two score priors; got {len(priors)}")
    wrong = [getattr(p, "name", type(p).__name__) for p in priors if not isinstance(p, ScorePrior)]
    if wrong:
        raise PriorError(f"posterior sampling needs score priors (family 'score'); {', '.join(wrong)} are not")
    if len({p.sample_rate for p in priors}) > 1:
        desc = ", ".join(f"{p.name}: {p.sample_rate} Hz" for p in priors)
        raise PriorError(f"the priors' sample rates differ ({desc}); use priors made for one rate")
    if len({(p.n_fft, p.hop) for p in priors}) > 1:
        desc = ", ".join(f"{p.name}: {p.n_fft}/{p.hop}" for p in priors)
        raise PriorError(f"the score priors' STFTs differ ({desc}); posterior sampling needs priors trained with "
                         "one --n-fft and --hop")
    return priors


def _project(x0: Tensor, mixture_mag: Tensor) -> Tensor:
    """Images ``[B, C, K, F, N]`` whose magnitudes split the mixture's ``[B, 1, 1, F, N]`` in
    the ratios of ``x0``'s."""
    mags = torch.expm1(x0.clamp(0.0, 10.0))
    masks = spectral.ratio_masks(mags.flatten(0, 1), eps=1e-6).view_as(mags)
    return torch.log1p(masks * mixture_mag)


@torch.no_grad()
def _sample(mix: Tensor, priors: Sequence[ScorePrior], config: PosteriorConfig) -> tuple[Tensor, Tensor]:
    """The sampler (module docstring) on clips ``mix [N, 16384]``: mixture-consistent
    estimates ``[N, K, 16384]`` and the sampled magnitudes ``[N, K, F + 1, N + 1]``."""
    b, k, c = mix.shape[0], len(priors), config.chains
    n_fft, hop = priors[0].n_fft, priors[0].hop  # one STFT for all (check_score_priors)
    spec = spectral.analysis(mix, n_fft, hop)  # [B, F + 1, N + 1]
    y = priors[0].image(spec)[:, None, None]  # [B, 1, 1, F, N]
    sigma_max = config.sigma_max or min(p.sigma_max for p in priors)
    sigma_min = max(p.sigma_min for p in priors)
    sigmas = sigma_schedule(config.levels, sigma_max, sigma_min).to(mix.device)
    gens = [torch.Generator().manual_seed(config.seed) for _ in range(b)]

    def noise() -> Tensor:  # drawn on the CPU, so that every device draws the same numbers
        return torch.stack([torch.randn(c, k, *y.shape[-2:], generator=g) for g in gens]).to(mix.device)

    def noises(x: Tensor, sigma: Tensor) -> Tensor:
        """Each prior's predicted noise of its source's images ``[B, C, K, F, N]``."""
        flat = sigma.expand(b * c)
        return torch.stack([p.noise(x[:, :, j].reshape(b * c, *x.shape[-2:]), flat).view(b, c, *x.shape[-2:])
                            for j, p in enumerate(priors)], dim=2)

    x = noise() * sigma_max
    mixture_mag = torch.expm1(y)  # [B, 1, 1, F, N]
    for i, sigma in enumerate(sigmas):
        eps = noises(x, sigma)
        x0 = _project(x - sigma * eps, mixture_mag)
        after = sigmas[i + 1] if i + 1 < len(sigmas) else 0.0
        x = x0 + after * (math.sqrt(1 - config.eta**2) * eps + config.eta * noise())
    x = x0
    mags = from_image(x).mean(dim=1)  # [B, K, F + 1, N + 1], averaged over chains
    masks = spectral.ratio_masks(mags)
    return spectral.synthesis(masks * spec[:, None], n_fft, hop, CLIP_LENGTH), mags


class PosteriorSeparator:
    """Separation by posterior sampling with K score priors, behind the interface of
    :class:`~priorsep.separate.separator.Separator` (``priors``, ``sample_rate``,
    ``separate``, ``settings``), so the ``separate`` command and corpus runs take score
    priors as they take the others. :func:`~priorsep.separate.choose.make_separator`
    picks it for score priors.

    Args:
        priors: K >= 2 score priors (family ``score``), in the order of the outputs.
        config: the sampler's settings (default :class:`PosteriorConfig()`).
        level: the peak each mixture is scaled to before sampling (the estimates are
            scaled back); ``None``: as it comes.
        overlap: of the windows an input longer than one clip (16384 samples) is cut
            into (:mod:`priorsep.separate.windows`); shorter inputs are zero-padded.
        chunk: windows sampled together (memory, not results: every window draws its
            noise from its own generator).
        progress: show a progress bar (in windows).
        device: where sampling runs; the priors are moved there, results come back on
            the mixture's device. ``None``: the mixture's.
        threads: torch's intra-op threads during :meth:`separate`, restored after:
            ``"default"`` (the command line's default, :func:`priorsep.runtime.default_threads`),
            a number, or ``None`` (torch's setting left alone).

    Example:
        >>> import torch
        >>> from priorsep.priors.score import ScorePrior
        >>> priors = [ScorePrior(widths=(8, 8, 8, 8), name=n) for n in ("a", "b")]
        >>> result = PosteriorSeparator(priors, PosteriorConfig(levels=2)).separate(torch.randn(20000) * 0.1)
        >>> tuple(result.masked.shape), tuple(result.magnitudes.shape), result.windows
        ((2, 20000), (2, 2, 257, 65), 2)
    """

    #: the estimates it gives (no generated sources: the priors sample magnitudes)
    forms = ("masked",)

    def __init__(self, priors: Sequence[ScorePrior], config: PosteriorConfig | None = None, *,
                 level: float | None = None, overlap: float = 0.5, chunk: int = 16, progress: bool = False,
                 device: str | torch.device | None = None, threads: int | str | None = "default"):
        self.priors = check_score_priors(priors)
        resolve_threads(threads)  # a bad value is refused here, not at the first call
        self.threads = threads
        self.config = config or PosteriorConfig()
        if level is not None and not level > 0:
            raise ConfigError(f"level must be positive or None; got {level}")
        if not 0.0 <= overlap < 1.0 or chunk < 1:
            raise ConfigError(f"overlap must be in [0, 1) and chunk at least 1; got {overlap}, {chunk}")
        self.level, self.overlap, self.chunk, self.progress = level, overlap, chunk, progress
        self.device = None if device is None else resolve_device(device)
        for p in self.priors:
            p.eval()
            if self.device is not None:
                p.to(self.device)

    @property
    def sample_rate(self) -> int:
        return self.priors[0].sample_rate

    @property
    def length(self) -> int:
        return CLIP_LENGTH

    def settings(self) -> dict:
        """JSON-serialisable: the method, the sampler's settings, the level, the windows."""
        return {"method": "posterior sampling", "priors": [p.name for p in self.priors], **asdict(self.config),
                "level": self.level, "overlap": self.overlap}

    def separate(self, mixture: Tensor, bar: Progress | None = None) -> PosteriorResult:
        """Separate ``mixture`` ``[T]`` or ``[B, T]`` (any length of at least one STFT
        frame, ``n_fft`` samples: 512 by default) at the priors' sample rate.

        Args:
            bar: a :class:`~priorsep.progress.Progress` (in windows) to advance instead of
                this call's own.
        Returns:
            a :class:`PosteriorResult`: ``[B, K, T]`` estimates (``[K, T]`` for ``[T]``).
        Raises:
            ConfigError, AudioError: an input that cannot be separated (one line).
        """
        keep_heap()
        with torch_threads(self.threads):
            return self._separate(mixture, bar)

    def _separate(self, mixture: Tensor, bar: Progress | None) -> PosteriorResult:
        mixture = torch.as_tensor(mixture)
        single = mixture.dim() == 1
        mix = mixture[None] if single else mixture
        if mix.dim() != 2 or not torch.is_floating_point(mix):
            raise ConfigError(f"the mixture must be floating point, [T] or [B, T]; got {tuple(mixture.shape)} "
                              f"{mixture.dtype}")
        n_fft = self.priors[0].n_fft
        if mix.shape[-1] < n_fft:
            raise AudioError(f"the input has {mix.shape[-1]} samples; posterior sampling needs at least {n_fft}")
        if not torch.isfinite(mix).all():
            raise ConfigError("the mixture holds NaN or infinite samples")
        home = mix.device
        mix = mix.float() if self.device is None else mix.float().to(self.device)
        began = time.perf_counter()
        b, t = mix.shape
        peak = mix.abs().amax(dim=-1, keepdim=True)
        scale = torch.ones_like(peak) if self.level is None else \
            torch.where(peak > 0, peak / self.level, torch.ones_like(peak))  # [B, 1]
        windows, n_win = frame_windows(mix / scale, CLIP_LENGTH, self.overlap)  # [B * W, L]
        acc = OverlapAdd(b, n_win, len(self.priors), CLIP_LENGTH, t, self.overlap, device=mix.device)
        mags, row = [], 0
        own = bar is None
        with Progress(windows.shape[0], "posterior sampling", "window", enabled=self.progress and own) if own \
                else contextlib.nullcontext(bar) as bar:
            for part in windows.split(self.chunk):
                masked, mag = _sample(part, self.priors, self.config)
                acc.add(row, masked)
                mags.append(mag)
                row += part.shape[0]
                bar.update(part.shape[0])
        masked = (acc.result() * scale[..., None]).to(home)
        mags = (torch.cat(mags).view(b, n_win, *mags[0].shape[1:]) * scale[..., None, None, None]).to(home)
        return PosteriorResult(masked[0] if single else masked, mags[0] if single else mags,
                               time.perf_counter() - began, self.settings())


def separate_posterior(mixture: Tensor, priors: Sequence[ScorePrior], config: PosteriorConfig | None = None, *,
                       level: float | None = None, overlap: float = 0.5,
                       threads: int | str | None = "default") -> PosteriorResult:
    """Separate ``mixture`` into one source per score prior by posterior sampling
    (module docstring);
    :class:`PosteriorSeparator` with its defaults.

    Args:
        mixture: ``[T]`` or ``[B, T]``; longer than one clip (16384 samples): windows.
        priors: K score priors, in the order of the output's sources.
        config: the sampler's settings (default :class:`PosteriorConfig()`).
        level: the peak each mixture is scaled to first (``None``: as it comes).
        threads: torch's threads for the call (as :class:`PosteriorSeparator`'s).
    Returns:
        a :class:`PosteriorResult` (``[K, T]`` and ``[W, K, F + 1, N + 1]`` for a ``[T]`` input).

    Shape:
        mixture ``[B, T]`` -> masked ``[B, K, T]``, magnitudes ``[B, W, K, F + 1, N + 1]``
        (``F + 1, N + 1 = 257, 65`` for the default STFT).
    """
    return PosteriorSeparator(priors, config, level=level, overlap=overlap, threads=threads).separate(mixture)
