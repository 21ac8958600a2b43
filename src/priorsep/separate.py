"""Latent search over K priors: the separation of METHOD.md §3.

For each mixture, find z_1..z_K in [-1, 1]^D_k so that the sum of the peak-normalised
generated sources, m_hat = sum_k G_k(z_k) / max|G_k(z_k)|, explains the mixture under
the paper's losses. Adam (lr 0.05) from z = 0 for 1000 steps, projecting z onto the box
after every step ("projected gradient descent"; the public code's projection never took
effect, METHOD.md §3 departure 2).

Two outputs per source, both ``[B, K, T]``:
- ``generated``: the peak-normalised generated sources (the paper's output);
- ``masked``: mixture-consistent estimates, soft masks from the generated sources'
  magnitudes applied to the mixture's STFT and inverted with its phase, so the K
  estimates sum to the mixture (:func:`priorsep.spectral.mask_mixture`).

Two objectives (``objective=``):
- ``"paper"``: the paper's losses (METHOD.md §3) on peak-normalised generated waveforms;
  needs waveform priors.
- ``"magnitude"`` (the default, measured best: benchmarks/PRIORS.md): fit the sum of
  the sources' STFT magnitudes, each with a free gain, to the mixture's magnitude, by
  mean squared error of ``log(1 + |X|)``; the estimates are magnitude-ratio masks on
  the mixture's STFT. A prior enters through its magnitudes only: ``prior.magnitude(z)``
  when it generates magnitudes (e.g. :class:`~priorsep.priors.specvae.SpecVAE`, which
  also fixes the STFT), else the magnitude of its peak-normalised waveform.

Two starting points (``start=``): ``"zero"`` (the paper's z = 0) and ``"encoder"``: a
prior that has ``encode(audio [N, L]) -> z [N, D]`` starts from its encoding of the
mixture (priors without one start from zero). The separator knows nothing else about
the priors' families. :data:`PRESETS` names the paper's settings and ours.

Per step (paper objective) the work is K generator passes (forward and backward with respect to z only;
the priors' weights are frozen during the search) and one batched STFT of the K
sources; the fitted mixture's STFT is their sum, and the mixture's own features are
computed once.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import spectral
from .audio import frame_windows, overlap_add
from .losses import LossWeights, MixtureFeatures, as_weights, losses_from_spectra
from .priors.base import Prior, PriorError, check_prior

TERMS = ("ms", "sd", "mc", "fc", "total")
MAGNITUDE_TERMS = ("fit", "total")
OBJECTIVES = ("paper", "magnitude")
STARTS = ("zero", "encoder")

#: named settings; ``Separator(priors, **PRESETS[name])``. ``paper`` is METHOD.md §3
#: exactly; ``best`` is the measured best (benchmarks/PRIORS.md), the default.
PRESETS: dict[str, dict] = {
    "paper": {"objective": "paper", "start": "zero", "steps": 1000, "lr": 0.05, "bound": 1.0, "restarts": 1,
              "weights": {"mc": 0.1, "ms": 0.3, "fc": 0.8, "sd": 0.4}},
    "best": {"objective": "magnitude", "start": "encoder", "steps": 300, "lr": 0.05, "bound": "prior",
             "restarts": 2},
}


@dataclass
class SeparationResult:
    """What :meth:`Separator.separate` returns.

    Attributes:
        generated: peak-normalised generated sources ``[B, K, T]``.
        masked: mixture-consistent estimates ``[B, K, T]`` (they sum to the mixture).
        history: per-term loss at every step, ``{term: [steps, B]}`` (the kept
            restart's; for inputs longer than one window, the mean over windows).
        losses: per-term loss at the final latents, ``{term: [B]}``.
        latents: the final latents, one ``[B, W, D_k]`` tensor per prior (W windows).
        restart_losses: final total loss of every restart, ``[B, W, R]``; the kept one
            is the smallest.
        seconds: wall time of the search.
        settings: the separator's settings.
    """

    generated: Tensor
    masked: Tensor
    history: dict[str, Tensor]
    losses: dict[str, Tensor]
    latents: list[Tensor]
    restart_losses: Tensor
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)


def check_priors(priors: Sequence[Prior], minimum: int = 2) -> list[Prior]:
    """At least ``minimum`` priors with the interface, one sample rate and one length."""
    priors = [check_prior(p) for p in priors]
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


def peak_normalise(x: Tensor, eps: float = 1e-8) -> Tensor:
    """``x / max|x|`` along the last axis (METHOD.md §3's mixing model)."""
    return x / (x.abs().amax(dim=-1, keepdim=True) + eps)


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
    """Separate mixtures by joint latent search over K priors (METHOD.md §3).

    The defaults are the ``best`` preset; ``Separator(priors, **PRESETS["paper"])`` is
    the paper's search.

    Args:
        priors: K >= 2 priors with one sample rate and one length.
        objective: ``"magnitude"`` or ``"paper"`` (module docstring).
        start: ``"encoder"`` or ``"zero"`` (module docstring).
        steps: optimisation steps (paper: 1000).
        lr: Adam learning rate (paper: 0.05; betas 0.9, 0.999).
        bound: project z onto [-bound, bound] after every step; ``None`` for no
            projection (what the public code effectively ran); ``"prior"``: each prior's
            own ``latent_bound`` (1 when it has none, the box of the prior interface;
            ``None`` for Gaussian latents such as :class:`~priorsep.priors.specvae.SpecVAE`'s).
        weights: paper objective: loss weights, :class:`~priorsep.losses.LossWeights` or a dict.
        restarts: searches per mixture; the first starts at ``start``, with an
            encoder start the second at zero, the others at seeded uniform draws; the one with the lowest final
            total loss is kept, per mixture.
        seed: seeds the restarts' starting points.
        mask_fft, mask_hop: the STFT of the mixture-consistent output and of the
            magnitude objective (a magnitude prior's own STFT takes precedence).
        overlap: fraction of overlap between windows for inputs longer than a prior.
        joint: search all mixtures of a call as one batch. Faster for small priors
            (batch 16 on 2 CPU cores: 3.2x for tone + burst, 2.2x at WaveGAN d=16,
            1.4x at d=64; benchmarks/README.md), but batched
            kernels (FFTs, convolutions) round differently for different batch sizes,
            and a long non-convex search amplifies those last-bit differences, so a
            mixture's result then depends on its batch. The default searches each
            mixture (its windows and restarts together) on its own, so its result is
            the same whatever else is in the call.
        progress: show a progress bar.
    """

    #: fewest priors accepted (a subclass that projects onto one prior lowers it)
    min_priors = 2

    def __init__(
        self,
        priors: Sequence[Prior],
        *,
        objective: str = "magnitude",
        start: str = "encoder",
        steps: int = 300,
        lr: float = 0.05,
        bound: float | str | None = "prior",
        weights: LossWeights | dict | None = None,
        restarts: int = 2,
        seed: int = 0,
        mask_fft: int = 1024,
        mask_hop: int = 256,
        overlap: float = 0.5,
        joint: bool = False,
        progress: bool = False,
    ):
        self.priors = check_priors(priors, self.min_priors)
        if objective not in OBJECTIVES or start not in STARTS:
            raise ValueError(f"objective must be one of {OBJECTIVES} and start one of {STARTS}; "
                             f"got {objective!r}, {start!r}")
        self.objective, self.start = objective, start
        spectral_priors = [p for p in self.priors if hasattr(p, "magnitude")]
        if objective == "paper" and spectral_priors:
            raise PriorError(f"the paper objective needs waveform priors; {spectral_priors[0].name!r} generates "
                             "magnitude spectrograms (use the magnitude objective)")
        configs = {(int(p.n_fft), int(p.hop)) for p in spectral_priors}
        if len(configs) > 1:
            raise PriorError(f"the magnitude priors use different STFTs {sorted(configs)}; use priors made for one")
        if configs:
            mask_fft, mask_hop = configs.pop()
        if steps < 0 or restarts < 1:
            raise ValueError(f"steps must be >= 0 and restarts >= 1; got steps={steps}, restarts={restarts}")
        if bound == "prior":
            self.bounds = [getattr(p, "latent_bound", 1.0) for p in self.priors]
        elif bound is None or (isinstance(bound, (int, float)) and bound > 0):
            self.bounds = [bound] * len(self.priors)
        else:
            raise ValueError(f"bound must be positive, None or 'prior'; got {bound!r}")
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1); got {overlap}")
        shortest = max(spectral.N_FFT, mask_fft // 2 + 1)
        if self.priors[0].length < shortest:
            raise PriorError(
                f"the priors make {self.priors[0].length}-sample clips; the losses and masks need at least {shortest}"
            )
        self.steps, self.lr, self.bound = steps, lr, bound
        self.weights = as_weights(weights)
        self.restarts, self.seed = restarts, seed
        self.mask_fft, self.mask_hop = mask_fft, mask_hop
        self.overlap, self.joint, self.progress = overlap, joint, progress

    @property
    def sample_rate(self) -> int:
        return self.priors[0].sample_rate

    @property
    def length(self) -> int:
        return self.priors[0].length

    def settings(self) -> dict:
        """The search's settings, JSON-serialisable."""
        return {
            "priors": [p.name for p in self.priors],
            "objective": self.objective,
            "start": self.start,
            "steps": self.steps,
            "lr": self.lr,
            "bound": self.bound,
            "bounds": self.bounds,
            "weights": self.weights.as_dict(),
            "restarts": self.restarts,
            "seed": self.seed,
            "mask_fft": self.mask_fft,
            "mask_hop": self.mask_hop,
            "overlap": self.overlap,
            "joint": self.joint,
        }

    def separate(self, mixture: Tensor) -> SeparationResult:
        """Separate a batch of mixtures.

        Args:
            mixture: ``[B, T]`` or ``[T]``, at the priors' sample rate. Inputs of any
                length are cut into overlapping windows of the priors' length, separated
                as one batch, and overlap-added.
        Returns:
            a :class:`SeparationResult` with ``[B, K, T]`` estimates (``[K, T]`` for
            ``[T]`` input).
        """
        mixture = torch.as_tensor(mixture)
        single = mixture.dim() == 1
        if single:
            mixture = mixture[None]
        if mixture.dim() != 2 or mixture.shape[-1] == 0:
            raise ValueError(f"mixture must be [B, T] or [T]; got {tuple(mixture.shape)}")
        if not torch.is_floating_point(mixture):
            raise ValueError(f"mixture must be floating point; got {mixture.dtype}")
        if not torch.isfinite(mixture).all():
            raise ValueError("mixture contains NaN or infinite samples")
        mixture = mixture.float()
        b, t = mixture.shape
        windows, n_win = frame_windows(mixture, self.length, self.overlap)  # [B * W, L]

        groups = [windows] if self.joint else list(windows.split(n_win))
        search = self._search if self.objective == "paper" else self._search_magnitude
        terms = TERMS if self.objective == "paper" else MAGNITUDE_TERMS
        start = time.perf_counter()
        with tqdm(total=self.steps * len(groups), desc="latent search", unit="step",
                  disable=not self.progress, leave=False) as bar:
            parts = [search(g, bar) for g in groups]
        seconds = time.perf_counter() - start
        out = {
            "generated": torch.cat([o["generated"] for o in parts]),
            "masked": torch.cat([o["masked"] for o in parts]),
            "history": {k: torch.cat([o["history"][k] for o in parts], dim=1) for k in terms},
            "losses": {k: torch.cat([o["losses"][k] for o in parts]) for k in terms},
            "latents": [torch.cat(zs) for zs in zip(*(o["latents"] for o in parts))],
            "restart_losses": torch.cat([o["restart_losses"] for o in parts]),
        }

        generated = out["generated"].reshape(b, n_win, len(self.priors), self.length)
        masked = out["masked"].reshape(b, n_win, len(self.priors), self.length)
        generated = overlap_add(generated, t, self.overlap)
        masked = overlap_add(masked, t, self.overlap)
        history = {k: v.reshape(v.shape[0], b, n_win).mean(-1) for k, v in out["history"].items()}
        losses = {k: v.reshape(b, n_win).mean(-1) for k, v in out["losses"].items()}
        latents = [z.reshape(b, n_win, -1) for z in out["latents"]]
        restart_losses = out["restart_losses"].reshape(b, n_win, self.restarts)
        result = SeparationResult(
            generated, masked, history, losses, latents, restart_losses, seconds, self.settings()
        )
        if single:
            result.generated, result.masked = generated[0], masked[0]
            result.history = {k: v[:, 0] for k, v in history.items()}
            result.losses = {k: v[0] for k, v in losses.items()}
            result.latents = [z[0] for z in latents]
            result.restart_losses = restart_losses[0]
        return result

    def _starts(self, windows: Tensor) -> list[Tensor]:
        """Starting latents ``[R, N, D_k]`` per prior: the start (zeros, or the prior's
        encoding of the window); with an encoder start, the second restart from zeros
        (an encoder can map a mixture far from its class); then seeded uniform draws in
        ``[-b, b]``, ``b`` the prior's box but at most 1."""
        n, r = windows.shape[0], self.restarts
        starts = [torch.zeros(r, n, p.latent_dim) for p in self.priors]
        first_random = 1
        if self.start == "encoder":
            first_random = 2
            with torch.no_grad():
                for p, z, bound in zip(self.priors, starts, self.bounds):
                    if hasattr(p, "encode"):
                        code = p.encode(windows).float().cpu()
                        z[0] = code if bound is None else code.clamp(-bound, bound)
        for i in range(n):
            gen = torch.Generator().manual_seed(_mixture_seed(self.seed, windows[i]))
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

    def _generate(self, latents: Sequence[Tensor]) -> Tensor:
        """Peak-normalised sources ``[N, K, L]`` from one latent batch per prior."""
        sources = [p.generate(z) for p, z in zip(self.priors, latents)]
        return peak_normalise(torch.stack(sources, dim=1).float())

    def _search(self, windows: Tensor, bar: tqdm) -> dict:
        """Search every window (x restarts) as one batch; keep the best restart per window."""
        n, r = windows.shape[0], self.restarts
        target = windows.repeat(r, 1)  # [R * N, L], restart-major
        feats = MixtureFeatures(target)
        latents = [z.reshape(r * n, -1).clone().requires_grad_(True) for z in self._starts(windows)]
        opt = torch.optim.Adam(latents, lr=self.lr)
        history = {k: torch.empty(self.steps, r * n) for k in TERMS}
        with _frozen(self.priors):
            for step in range(self.steps):
                opt.zero_grad(set_to_none=True)
                sources = self._generate(latents)
                terms = losses_from_spectra(feats, spectral.stft(sources), self.weights)
                terms["total"].sum().backward()
                opt.step()
                self._project(latents)
                for k in TERMS:
                    history[k][step] = terms[k].detach().cpu()
                bar.update(1)
                if self.progress and step % 10 == 0:
                    bar.set_postfix(loss=f"{terms['total'].mean().item():.3f}")
            with torch.no_grad():
                sources = self._generate(latents)
                final = losses_from_spectra(feats, spectral.stft(sources), self.weights)
        best = final["total"].reshape(r, n).argmin(dim=0)  # [N]
        rows = best * n + torch.arange(n, device=best.device)

        return {
            "generated": sources[rows],
            "masked": spectral.mask_mixture(windows, sources[rows], self.mask_fft, self.mask_hop),
            "history": {k: v[:, rows.cpu()] for k, v in history.items()},
            "losses": {k: v[rows].detach() for k, v in final.items()},
            "latents": [z.detach()[rows] for z in latents],
            "restart_losses": final["total"].reshape(r, n).T.detach().cpu(),
        }

    def _magnitudes(self, latents: Sequence[Tensor]) -> Tensor:
        """Source magnitudes ``[N, K, bins, frames]`` on the search's STFT."""
        mags = []
        for p, z in zip(self.priors, latents):
            if hasattr(p, "magnitude"):
                mags.append(p.magnitude(z).float())
            else:
                wave = peak_normalise(p.generate(z).float())
                mags.append(spectral.analysis(wave, self.mask_fft, self.mask_hop).abs())
        return torch.stack(mags, dim=1)

    def _search_magnitude(self, windows: Tensor, bar: tqdm) -> dict:
        """The magnitude objective: fit sum_k g_k |S_k(z_k)| to |X| (MSE of log(1 + .)),
        z and log g by Adam; keep the best restart per window."""
        n, r, k = windows.shape[0], self.restarts, len(self.priors)
        target = windows.repeat(r, 1)  # [R * N, L], restart-major
        mix_spec = spectral.analysis(target, self.mask_fft, self.mask_hop)  # [RN, bins, frames]
        log_mix = torch.log1p(mix_spec.abs())
        latents = [z.reshape(r * n, -1).clone().requires_grad_(True) for z in self._starts(windows)]

        def fit(mags: Tensor, log_gain: Tensor) -> Tensor:
            total = (log_gain.exp()[..., None, None] * mags).sum(dim=1)
            return (torch.log1p(total) - log_mix).square().mean(dim=(-2, -1))  # [RN]

        with _frozen(self.priors):
            with torch.no_grad():  # start each gain at an equal share of the mixture's energy
                mags = self._magnitudes(latents)
                share = mix_spec.abs().sum(dim=(-2, -1))[:, None] / k
                log_gain = (share / (mags.sum(dim=(-2, -1)) + 1e-8)).clamp_min(1e-8).log()
            log_gain.requires_grad_(True)
            opt = torch.optim.Adam([*latents, log_gain], lr=self.lr)
            history = {key: torch.empty(self.steps, r * n) for key in MAGNITUDE_TERMS}
            for step in range(self.steps):
                opt.zero_grad(set_to_none=True)
                loss = fit(self._magnitudes(latents), log_gain)
                loss.sum().backward()
                opt.step()
                self._project(latents)
                for key in MAGNITUDE_TERMS:
                    history[key][step] = loss.detach().cpu()
                bar.update(1)
                if self.progress and step % 10 == 0:
                    bar.set_postfix(loss=f"{loss.mean().item():.4f}")
            with torch.no_grad():
                raw = self._magnitudes(latents)  # [RN, K, bins, frames]
                final = fit(raw, log_gain)
                mags = log_gain.exp()[..., None, None] * raw
                best = final.reshape(r, n).argmin(dim=0)
                rows = best * n + torch.arange(n, device=best.device)
                mags, spec = mags[rows], mix_spec[rows]
                masked = spectral.synthesis(spectral.ratio_masks(mags) * spec[:, None], self.mask_fft,
                                            self.mask_hop, self.length)
                generated = self._generated(latents, rows, log_gain[rows], mags, spec)
        return {
            "generated": generated,
            "masked": masked,
            "history": {key: v[:, rows.cpu()] for key, v in history.items()},
            "losses": {key: final[rows].detach() for key in MAGNITUDE_TERMS},
            "latents": [z.detach()[rows] for z in latents],
            "restart_losses": final.reshape(r, n).T.detach().cpu(),
        }

    def _generated(self, latents: Sequence[Tensor], rows: Tensor, log_gain: Tensor, mags: Tensor,
                   spec: Tensor) -> Tensor:
        """The magnitude objective's ``generated`` output ``[N, K, L]``, on the mixture's
        scale: a waveform prior's peak-normalised waveform times its gain; a magnitude
        prior's fitted magnitude with the mixture's phase."""
        phase = spec / (spec.abs() + 1e-8)
        out = []
        for i, (p, z) in enumerate(zip(self.priors, latents)):
            if hasattr(p, "magnitude"):
                out.append(spectral.synthesis(mags[:, i] * phase, self.mask_fft, self.mask_hop, self.length))
            else:
                wave = peak_normalise(p.generate(z[rows]).float())
                out.append(wave * log_gain[:, i, None].exp())
        return torch.stack(out, dim=1)
