"""The latent search over K priors: :class:`Separator` (docs/method.md §3 and our departures).

For each mixture, find z_1..z_K in the priors' boxes so that the sources they generate
explain the mixture under an objective (:mod:`priorsep.separate.objectives`). One loop
serves every objective: starting latents (zero, the priors' encoders, seeded draws),
Adam, projection onto the box after every step ("projected gradient descent"; the public
code's projection never took effect, docs/method.md §3 departure 2), the loss history (kept on
the device, copied once at the end), restarts and the choice of the best restart per
window. Inputs longer than the priors are cut into overlapping windows
(:mod:`priorsep.separate.windows`).

Two outputs per source, both ``[B, K, T]``:

- ``generated``: the generated sources (the paper's output);
- ``masked``: mixture-consistent estimates, ratio masks applied to the mixture's STFT
  and inverted with its phase, so that the K estimates sum to the mixture.

The separator knows a prior only through the Protocols of :mod:`priorsep.priors.base`
(:class:`~priorsep.priors.EncodablePrior` for encoder starts,
:class:`~priorsep.priors.MagnitudePrior` for its STFT) and the settings only through a
:class:`~priorsep.separate.config.SearchConfig`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import zlib
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor, nn

from .. import spectral
from ..constants import DEFAULT_MASK_STFT
from ..errors import AudioError, ConfigError, PriorError
from ..mixing import peak_normalise
from ..priors.base import EncodablePrior, MagnitudePrior, Prior, check_prior
from ..progress import Progress, duration
from ..runtime import Adam, keep_heap, resolve_device, resolve_threads, torch_threads, trim_heap
from .checks import check_result
from .config import PRESETS, SearchConfig
from .objectives import OBJECTIVES, Objective, choose_objective
from .results import SeparationResult
from .windows import OverlapAdd, frame_windows

__all__ = ["Separator", "SeparationResult", "check_priors", "peak_normalise", "resolve_device"]


def check_priors(priors: Sequence[Prior], minimum: int = 2) -> list[Prior]:
    """At least ``minimum`` priors with the interface, one sample rate and one length."""
    priors = [check_prior(p) for p in priors]
    scores = [p.name for p in priors if getattr(p, "domain", None) == "score"]
    if scores:
        raise PriorError(f"{', '.join(scores)}: score priors are not searched; separate with them by posterior "
                         "sampling (priorsep.separate.make_separator or PosteriorSeparator; the separate command "
                         "does it)")
    if len(priors) < minimum:
        raise PriorError(f"separation needs at least two priors; got {len(priors)}" if minimum == 2
                         else f"need at least {minimum} priors; got {len(priors)}")
    rates = {p.sample_rate for p in priors}
    if len(rates) > 1:
        desc = ", ".join(f"{p.name}: {p.sample_rate} Hz" for p in priors)
        raise PriorError(f"the priors' sample rates differ ({desc}); use priors made for one rate")
    lengths = {p.length for p in priors}
    if len(lengths) > 1:
        desc = ", ".join(f"{p.name}: {p.length}" for p in priors)
        raise PriorError(f"the priors' clip lengths differ ({desc}); use priors made for one length")
    return priors


def _mask_stft(priors: Sequence[Prior], config: SearchConfig) -> tuple[int, int]:
    """The masks' STFT: the magnitude priors' own (one for all of them), else the
    configuration's, else :data:`DEFAULT_MASK_STFT`; a configured STFT that conflicts
    with a magnitude prior's is refused."""
    own = {(p.n_fft, p.hop) for p in priors if isinstance(p, MagnitudePrior)}
    if len(own) > 1:
        raise PriorError(f"the magnitude priors use different STFTs {sorted(own)}; use priors made for one")
    if own:
        n_fft, hop = own.pop()
        for name, given, theirs in (("mask_fft", config.mask_fft, n_fft), ("mask_hop", config.mask_hop, hop)):
            if given is not None and given != theirs:
                names = ", ".join(p.name for p in priors if isinstance(p, MagnitudePrior))
                raise ConfigError(f"{name}={given} conflicts with the STFT of the magnitude prior(s) {names} "
                                  f"({n_fft}/{hop}); leave it unset or use {theirs}")
        return n_fft, hop
    return config.mask_fft or DEFAULT_MASK_STFT[0], config.mask_hop or DEFAULT_MASK_STFT[1]


@contextlib.contextmanager
def _frozen(priors: Sequence[Prior]) -> Iterator[None]:
    """Search gradients flow to z only: freeze the priors' weights, eval mode, restore after."""
    saved = []
    for p in priors:
        if isinstance(p, nn.Module):
            saved.append((p, p.training, [(q, q.requires_grad) for q in p.parameters()]))
            p.eval()
            for q in p.parameters():
                q.requires_grad_(False)
    try:
        yield
    finally:
        for p, training, flags in saved:
            p.train(training)
            for q, flag in flags:
                q.requires_grad_(flag)


def _mixture_seed(seed: int, window: Tensor) -> int:
    """A seed from the global seed and the window's samples, so that a mixture's random
    restarts do not depend on which other mixtures share its batch, or where."""
    data = window.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return zlib.crc32(data, seed & 0xFFFFFFFF)


class Separator:
    """Separate mixtures by joint latent search over K priors (docs/method.md §3).

    (:func:`~priorsep.separate.choose.make_separator` gives one, or posterior sampling for score
    priors.)

    Args:
        priors: K priors (at least ``min_priors``) with one sample rate and one length.
        config: a :class:`SearchConfig`, or the name of one in :data:`PRESETS`
            (default: ``"best"``, which is ``SearchConfig()``).
        progress: show a progress bar.
        min_priors: fewest priors accepted (2 for a separation; 1 projects a clip onto
            one prior, as :mod:`priorsep.report` does).
        device: where the search runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``); the priors are
            moved there, and each mixture with them (results come back on the mixture's
            own device). ``None``: the mixture's device, with the priors where they are.
        threads: torch's intra-op threads during :meth:`separate`, restored after:
            ``"default"`` (the command line's default, :func:`priorsep.runtime.default_threads`),
            a number, or ``None`` (torch's setting left alone).
        **overrides: single settings that replace the configuration's, as in
            :func:`dataclasses.replace` (``Separator(priors, "paper", steps=100)``).

    Example:
        >>> from priorsep import Separator, load_prior
        >>> from priorsep.data import builtin_example
        >>> priors, mixture, sources = builtin_example(6)
        >>> result = Separator(priors, "paper", steps=5).separate(mixture)
        >>> tuple(result.masked.shape), sorted(result.history)
        ((2, 16384), ['fc', 'mc', 'ms', 'sd', 'total'])
    """

    #: the estimates it gives
    forms = ("masked", "generated")

    def __init__(self, priors: Sequence[Prior], config: SearchConfig | str | None = None, *,
                 progress: bool = False, min_priors: int = 2, device: str | torch.device | None = None,
                 threads: int | str | None = "default", **overrides: Any):
        if config is None or isinstance(config, str):
            name = config or "best"
            if name not in PRESETS:
                raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
            config = PRESETS[name]
        if not isinstance(config, SearchConfig):
            raise TypeError(f"config must be a SearchConfig or a preset name; got {type(config).__name__}")
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(SearchConfig)})
        if unknown:
            raise TypeError(f"unknown search settings {unknown}; SearchConfig has "
                            f"{', '.join(f.name for f in dataclasses.fields(SearchConfig))}")
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        self.priors = check_priors(priors, min_priors)
        self.device = None if device is None else resolve_device(device)
        if self.device is not None:
            for p in self.priors:
                if isinstance(p, nn.Module):
                    p.to(self.device)
        self.progress, self.threads = progress, threads
        resolve_threads(threads)  # a bad value is refused here, not at the first call
        self.mask_fft, self.mask_hop = _mask_stft(self.priors, self.config)
        bound = self.config.bound
        self.bounds = [p.latent_bound for p in self.priors] if bound == "prior" else [bound] * len(self.priors)
        shortest = max(spectral.N_FFT, self.mask_fft // 2 + 1)
        if self.length < shortest:
            raise PriorError(f"the priors make {self.length}-sample clips; the losses and masks need at least "
                             f"{shortest}")
        if self.config.objective == "auto":
            self.objective_name, self.objective_reason = choose_objective(self.priors)
        else:
            self.objective_name, self.objective_reason = self.config.objective, "set"
        chosen = OBJECTIVES[self.objective_name]
        if self.config.restarts is None:  # the objective's own defaults, recorded as numbers
            self.config = dataclasses.replace(self.config, restarts=chosen.default_restarts)
        if self.config.level == "auto":
            self.config = dataclasses.replace(self.config, level=chosen.default_level)
        self.objective: Objective = OBJECTIVES[self.objective_name](
            self.priors, self.config.weights, self.mask_fft, self.mask_hop, self.length)

    @property
    def sample_rate(self) -> int:
        return self.priors[0].sample_rate

    @property
    def length(self) -> int:
        return self.priors[0].length

    @property
    def overlap(self) -> float:
        """Of the windows of inputs longer than the priors (``config.overlap``)."""
        return self.config.overlap

    @property
    def min_length(self) -> int:
        """The shortest input accepted, in samples: one window of the masks' STFT (and at
        least one of the paper losses' STFT). Shorter inputs carry too little of a source
        for a clip-level prior to recognise, and the STFT would be mostly padding."""
        return max(spectral.N_FFT, self.mask_fft)

    def settings(self) -> dict:
        """The search's settings, JSON-serialisable: the configuration, the priors, the
        objective used (``objective``; ``objective_choice`` says why), each prior's box and
        the STFT of the masks as resolved for these priors."""
        return {"priors": [p.name for p in self.priors], **dataclasses.asdict(self.config),
                "objective": self.objective_name,
                "objective_choice": ("auto: " if self.config.objective == "auto" else "") + self.objective_reason,
                "bounds": self.bounds, "mask_fft": self.mask_fft, "mask_hop": self.mask_hop}

    def separate(self, mixture: Tensor, bar: Progress | None = None) -> SeparationResult:
        """Separate a batch of mixtures.

        Args:
            mixture: ``[B, T]`` or ``[T]``, at the priors' sample rate. Inputs of any
                length are cut into overlapping windows of the priors' length, separated,
                and overlap-added.
            bar: a :class:`~priorsep.progress.Progress` (in windows) to advance instead of
                this call's own (one bar over many calls, e.g. a corpus).
        Returns:
            a :class:`SeparationResult` with ``[B, K, T]`` estimates (``[K, T]`` for
            ``[T]`` input).
        Raises:
            ConfigError, AudioError: an input that cannot be separated (one line).
            SearchError: the search diverged (a non-finite loss or estimate), or gave no
                separation (every estimate the mixture times a constant); the line names
                the learning rate.
        """
        keep_heap()
        with torch_threads(self.threads):
            return self._separate(mixture, bar)

    def _separate(self, mixture: Tensor, bar: Progress | None) -> SeparationResult:
        mixture = torch.as_tensor(mixture)
        single = mixture.dim() == 1
        if single:
            mixture = mixture[None]
        if mixture.dim() != 2 or mixture.shape[-1] == 0:
            raise ConfigError(f"mixture must be [B, T] or [T]; got {tuple(mixture.shape)}")
        if not torch.is_floating_point(mixture):
            raise ConfigError(f"mixture must be floating point; got {mixture.dtype}")
        if not torch.isfinite(mixture).all():
            raise ConfigError("mixture contains NaN or infinite samples")
        home = mixture.device
        mixture = mixture.float() if self.device is None else mixture.float().to(self.device)
        b, t = mixture.shape
        if t < self.min_length:
            raise AudioError(f"the input has {t} samples ({1000 * t / self.sample_rate:.0f} ms); the priors need at "
                             f"least {self.min_length} ({1000 * self.min_length / self.sample_rate:.0f} ms at "
                             f"{self.sample_rate} Hz)")
        cfg = self.config
        scale = self._scale(mixture)  # [B, 1]: each mixture searched at peak cfg.level
        windows, n_win = frame_windows(mixture / scale, self.length, cfg.overlap)  # [B * W, L]
        groups = [windows] if cfg.joint else list(windows.split(n_win))  # per mixture (or all)
        chunks = [c for g in groups for c in g.split(cfg.chunk)]  # bounded batches
        terms = self.objective.terms
        k, r = len(self.priors), cfg.restarts
        # each chunk's estimates are overlap-added at once: memory holds [B, K, T], not every window's
        added = {form: OverlapAdd(b, n_win, k, self.length, t, cfg.overlap, device=windows.device)
                 for form in ("generated", "masked")}
        parts, row = [], 0
        start = time.perf_counter()
        own = bar is None
        with Progress(windows.shape[0], "latent search", "window", enabled=self.progress and own) if own \
                else contextlib.nullcontext(bar) as bar:
            for i, c in enumerate(chunks):
                part = self._search(c, bar, estimate=own and len(chunks) > 1 and i == 0, total=windows.shape[0])
                for form, acc in added.items():
                    acc.add(row, part.pop(form))
                parts.append(part)
                row += c.shape[0]
                trim_heap()
        seconds = time.perf_counter() - start
        generated, masked = added["generated"].result(), added["masked"].result()
        history = {key: torch.cat([o["history"][key] for o in parts], dim=1) for key in terms}
        history = {key: v.reshape(v.shape[0], b, n_win).mean(-1) for key, v in history.items()}
        losses = {key: torch.cat([o["losses"][key] for o in parts]).reshape(b, n_win).mean(-1) for key in terms}
        latents = [torch.cat(zs).reshape(b, n_win, -1) for zs in zip(*(o["latents"] for o in parts))]
        restart_losses = torch.cat([o["restart_losses"] for o in parts]).reshape(b, n_win, r)
        check_result(losses["total"], generated, masked, mixture / scale, self.config.lr,
                     [p.name for p in self.priors])
        generated.mul_(scale[..., None])  # back to the input's level (in place: long inputs are large)
        masked.mul_(scale[..., None])
        generated, masked = generated.to(home), masked.to(home)
        latents = [z.to(home) for z in latents]
        losses = {key: v.to(home) for key, v in losses.items()}
        if single:
            generated, masked = generated[0], masked[0]
            history = {key: v[:, 0] for key, v in history.items()}
            losses = {key: v[0] for key, v in losses.items()}
            latents = [z[0] for z in latents]
            restart_losses = restart_losses[0]
        return SeparationResult(generated, masked, history, losses, latents, restart_losses, seconds, self.settings())

    def _scale(self, mixture: Tensor) -> Tensor:
        """``[B, 1]``: the factor each mixture ``[B, T]`` is divided by before the search (its
        peak over ``config.level``; 1 for a silent mixture, or with ``level=None``)."""
        if self.config.level is None:
            return torch.ones(mixture.shape[0], 1, device=mixture.device)
        peak = mixture.abs().amax(dim=-1, keepdim=True)
        return torch.where(peak > 0, peak / self.config.level, torch.ones_like(peak))

    def _starts(self, windows: Tensor) -> list[Tensor]:
        """Starting latents ``[R, N, D_k]`` per prior: the start (zeros, or the prior's
        encoding of the window clamped to its box); with an encoder start, the second
        restart from zeros (an encoder can map a mixture far from its class; without any
        encoder the first restart already is zero); then seeded
        uniform draws in ``[-b, b]``, ``b`` the prior's box but at most 1."""
        n, r = windows.shape[0], self.config.restarts
        starts = [torch.zeros(r, n, p.latent_dim) for p in self.priors]
        first_random = 1
        if self.config.start == "encoder" and any(isinstance(p, EncodablePrior) for p in self.priors):
            first_random = 2
            with torch.no_grad():
                for p, z, bound in zip(self.priors, starts, self.bounds):
                    if isinstance(p, EncodablePrior):
                        code = p.encode(windows).float().cpu()
                        z[0] = code if bound is None else code.clamp(-bound, bound)
        for i in range(n):
            gen = torch.Generator().manual_seed(_mixture_seed(self.config.seed, windows[i]))
            for z, bound in zip(starts, self.bounds):
                draws = (torch.rand(r - 1, z.shape[-1], generator=gen) * 2 - 1) * min(bound or 1.0, 1.0)
                z[first_random:, i] = draws[first_random - 1:]
        return [z.to(windows.device) for z in starts]

    def _project(self, latents: Sequence[Tensor]) -> None:
        """Clamp each prior's latents to its box, in place."""
        with torch.no_grad():
            for z, bound in zip(latents, self.bounds):
                if bound is not None:
                    z.clamp_(-bound, bound)

    def _search(self, windows: Tensor, bar: Progress, estimate: bool = False, total: int = 0) -> dict:
        """Search every window ``[N, L]`` (x restarts) as one batch; keep the best restart
        per window. With ``estimate``, say on the progress's stream, after the first few
        steps, how long all ``total`` windows will take."""
        n, r, steps = windows.shape[0], self.config.restarts, self.config.steps
        objective, terms = self.objective, self.objective.terms
        state = objective.prepare(windows.repeat(r, 1))  # [R * N, L], restart-major
        latents = [z.reshape(r * n, -1).clone().requires_grad_(True) for z in self._starts(windows)]
        with _frozen(self.priors):
            extra = objective.parameters(state, latents)
            opt = Adam([*latents, *extra], lr=self.config.lr)
            history = torch.empty(steps, len(terms), r * n, device=windows.device)
            began = time.perf_counter()
            for step in range(steps):
                opt.zero_grad()
                values = objective.loss(state, latents, extra)
                values["total"].sum().backward()
                opt.step()
                self._project(latents)
                history[step] = torch.stack([values[key].detach() for key in terms])
                bar.update(n / steps)
                if estimate and step == min(4, steps - 1):
                    per_window = (time.perf_counter() - began) / (step + 1) * steps / n
                    bar.note(f"priorsep: {total} windows of {self.length} samples in chunks of at most "
                             f"{self.config.chunk}: about {duration(per_window * total)} "
                             f"({per_window:.2g} s per window on this machine)")
            with torch.no_grad():
                final, cache = objective.final(state, latents, extra)
                best = final["total"].reshape(r, n).argmin(dim=0)  # [N]
                rows = best * n + torch.arange(n, device=best.device)
                generated, masked = objective.outputs(state, latents, extra, cache, rows, windows)
        history = history.cpu()  # one copy from the device
        kept = rows.cpu()
        return {
            "generated": generated,
            "masked": masked,
            "history": {key: history[:, i, kept] for i, key in enumerate(terms)},
            "losses": {key: final[key][rows].detach() for key in terms},
            "latents": [z.detach()[rows] for z in latents],
            "restart_losses": final["total"].reshape(r, n).T.detach().cpu(),
        }
