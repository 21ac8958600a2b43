"""Deep Audio Prior (Tian, Xu & Li 2019, arXiv 1912.10292), per docs/method.md §5.

No training data: 2K randomly initialised small U-Nets are fitted to one mixture's
magnitude spectrogram. K "sound" nets map fixed noise to source magnitudes ``S_i``
(ReLU output), K "mask" nets map fixed noise to time-only masks ``m_i`` (output averaged
over frequency, sigmoid); estimate_i = ``m_i * S_i``. The loss, as in the authors'
``dap_sep.py``:

- L1 reconstruction ``mean |sum_i m_i S_i - V|`` of the mixture magnitude V;
- temporal smoothness ``mean |S_i(t + 1) - S_i(t)|`` of each unmasked magnitude (their
  ``FreqGradLoss`` differentiates along the time axis);
- the gradient exclusion loss between the estimates, averaged over pairs
  (:func:`priorsep.losses.exclusion`, Zhang, Ng & Chen 2018);
- the non-zero mask term ``mean(w / min(sum_i m_i, 1))`` with ``w = min(log(1 + V), 1)``;
- from 90 % of the steps on, the binarising term ``0.01 / mean |m_i - 1/2|`` per mask.

Adam, lr 3e-4, 5000 steps by default. Inputs as in the authors' code for one segment:
each sound net reads a fixed uniform noise map plus a tiny fixed perturbation, blended
linearly into a second fixed noise map between 40 % and 80 % of the steps ("dynamic
noise"); the mask nets read fixed uniform noise scaled by 1/20, 1/30, ... If a source
collapses (mean magnitude of an estimate below 1e-3 of the mixture's: the authors'
absolute 0.001 for audio in [-1, 1]), the whole fit restarts from a new initialisation,
as theirs does, at most ``restarts`` times. Waveforms: ratio masks from the K estimates on
the mixture's STFT with its phase (:func:`~priorsep.baselines.base.masked_estimates`).

Departures, for speed on one CPU core (what the authors' size costs here: benchmarks/DESIGN.md,
"Deep Audio Prior"):

- the nets follow the authors' "skip" encoder-decoder (three levels of stride-2 conv +
  conv, bilinear upsampling, a 4-channel 1x1 skip at the deepest level, BatchNorm and
  LeakyReLU 0.2 after every conv, a 1x1 output conv) but with 4/8/16 channels and 3x3
  kernels (theirs 16/32/64, 5x5), zero instead of reflection padding, and without the
  extra 1x1 conv block per level on the way up (``up_1x1``, which alone adds much time);
- the mask nets read a noise map only ``mask_rows`` rows high instead of the full
  frequency axis: their output is averaged over frequency anyway.

Other differences:

- the mixture is scaled to peak 1 first (their clips were audio in [-1, 1]) and the
  spectrogram is the masking STFT (FFT 1024, hop 256 at 16 kHz; theirs 1022 / 172 at
  11 kHz); the nets run on it padded to a multiple of 8 and are cropped back;
- the exclusion loss is the project's (per-pair alpha = 2 mean|grad A| / mean|grad B|,
  "same" pooling, as in Zhang et al.); the authors' version fixed alpha = 1 and divided
  by 9 (the 3 x 3 channel pairs of an RGB image) although spectrograms have one channel,
  so ``exclusion_weight`` defaults to 1/9 to keep their balance of the terms (weight 1
  made sources collapse more often and scored lower: benchmarks/DESIGN.md);
- K sources instead of two: pairs averaged in the exclusion term, the mask sum in the
  non-zero term runs over all K masks.

Its masks are time-only, so it does best on sources active at different times, and it
converges slowly (its time per step and its scores: benchmarks/DESIGN.md, "Deep Audio
Prior").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import exclusion
from .base import Baseline, check_input, masked_estimates, mixture_stft

_DOWN = 8  # three stride-2 levels: inputs padded to a multiple of 8


def _block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2)
    return [conv, nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]


class _Level(nn.Module):
    """One scale of the skip U-Net: down (stride 2), deeper levels, up x2, concat skip."""

    def __init__(self, c_in: int, down: int, up: int, skip: int, kernel: int, inner: _Level | None,
                 up_1x1: bool):
        super().__init__()
        self.skip = nn.Sequential(*_block(c_in, skip, 1)) if skip else None
        self.down = nn.Sequential(*_block(c_in, down, kernel, 2), *_block(down, down, kernel))
        self.inner = inner
        deep = inner.out_channels if inner is not None else down
        self.post = nn.Sequential(
            nn.BatchNorm2d(skip + deep),
            *_block(skip + deep, up, kernel),
            *(_block(up, up, 1) if up_1x1 else []),
        )
        self.out_channels = up

    def forward(self, x: Tensor) -> Tensor:
        y = self.down(x)
        if self.inner is not None:
            y = self.inner(y)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)
        if self.skip is not None:
            y = torch.cat([self.skip(x), y], dim=1)
        return self.post(y)


class SkipNet(nn.Module):
    """Deep-image-prior style encoder-decoder (Ulyanov, Vedaldi & Lempitsky 2018), as
    used by DAP: ``[B, 1, H, W] -> [B, 1, H, W]`` with H, W multiples of 8.

    Per level: stride-2 conv, conv, (deeper levels), bilinear x2, concat with a 1x1-conv
    skip (if any), BatchNorm, conv, and with ``up_1x1`` one more 1x1 conv (theirs had it).
    Every conv is followed by BatchNorm and LeakyReLU(0.2); a 1x1 conv makes the output.
    """

    def __init__(self, channels: Sequence[int] = (4, 8, 16), skips: Sequence[int] = (0, 0, 4),
                 kernel: int = 3, relu_out: bool = True, up_1x1: bool = False):
        super().__init__()
        inner: _Level | None = None
        c_ins = [1, *channels[:-1]]
        for c_in, c, s in reversed(list(zip(c_ins, channels, skips, strict=True))):
            inner = _Level(c_in, c, c, s, kernel, inner, up_1x1)
        assert inner is not None
        self.body = inner
        self.head = nn.Conv2d(channels[0], 1, 1)
        self.relu_out = relu_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.head(self.body(x))
        return F.relu(y) if self.relu_out else y


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


class DeepAudioPrior(Baseline):
    """Deep Audio Prior: 2K small U-Nets fitted to one mixture (see the module docstring).

    Args:
        seed: seeds the nets and their inputs; a result depends only on the mixture and it.
        steps: Adam steps per fit (0: the initial nets' output).
        lr: Adam's learning rate.
        channels, kernel, up_1x1: the nets' size (:class:`SkipNet`); ``channels`` has three levels.
        mask_rows: height of the mask nets' input (rounded up to a multiple of 8).
        exclusion_weight: weight of the exclusion term.
        restarts: the most refits from a new initialisation after a source collapses.
    Raises:
        ValueError: ``steps < 0``, or ``channels`` not of three levels.

    After :meth:`separate` (``[T]`` -> ``[K, T]``, :class:`~priorsep.baselines.base.Baseline`),
    ``history`` holds the total loss every step of the last fit and ``attempts`` the number
    of fits it took.
    """

    name: ClassVar[str] = "dap"
    unordered: ClassVar[bool] = True

    def __init__(self, seed: int = 0, steps: int = 5000, lr: float = 3e-4,
                 channels: Sequence[int] = (4, 8, 16), kernel: int = 3, up_1x1: bool = False,
                 mask_rows: int = 16, exclusion_weight: float = 1 / 9, restarts: int = 3):
        if steps < 0:
            raise ValueError(f"steps must be >= 0; got {steps}")
        if len(channels) != 3:
            raise ValueError(f"channels must give three levels; got {tuple(channels)}")
        self.seed, self.steps, self.lr = int(seed), int(steps), float(lr)
        self.channels, self.kernel, self.up_1x1 = tuple(int(c) for c in channels), int(kernel), bool(up_1x1)
        self.mask_rows = _ceil_to(max(int(mask_rows), _DOWN), _DOWN)
        self.exclusion_weight, self.restarts = float(exclusion_weight), int(restarts)
        self.history: list[float] = []
        self.attempts = 0

    def separate(self, mixture: Tensor, k: int, sources: Tensor | None = None) -> Tensor:
        mix = check_input(mixture, k)
        peak = float(mix.abs().max())
        if peak == 0.0 or k == 1:
            return (mix / k).float().expand(k, -1).clone()
        target = mixture_stft(mix / peak).abs().float()  # V [bins, frames]
        for attempt in range(self.restarts + 1):
            self.attempts = attempt + 1
            estimates, collapsed = self._fit(target, k, self.seed * 1009 + attempt)
            if not collapsed:
                break
        return masked_estimates(mix, estimates.double())

    def _net(self, relu_out: bool) -> SkipNet:
        return SkipNet(self.channels, kernel=self.kernel, relu_out=relu_out, up_1x1=self.up_1x1)

    def _fit(self, target: Tensor, k: int, seed: int) -> tuple[Tensor, bool]:
        """One fit from a seeded initialisation: estimates ``[K, bins, frames]`` and
        whether a source collapsed."""
        bins, frames = target.shape
        h, w = _ceil_to(bins, _DOWN), _ceil_to(frames, _DOWN)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the nets' initialisation
            sound_nets = nn.ModuleList(self._net(relu_out=True) for _ in range(k))
            mask_nets = nn.ModuleList(self._net(relu_out=False) for _ in range(k))
        gen = torch.Generator().manual_seed(seed)
        static = torch.rand(k, 1, 1, h, w, generator=gen)  # g_noise
        dynamic = torch.rand(k, 1, 1, h, w, generator=gen)  # g_dynamic
        jitter = (torch.rand(k, 1, 1, h, w, generator=gen) - 0.5) / 200  # var 1/2000, x10
        mask_inputs = torch.rand(k, 1, 1, self.mask_rows, w, generator=gen) / torch.arange(
            20.0, 20.0 + 10 * k, 10.0).view(k, 1, 1, 1, 1)
        weight = torch.log1p(target).clamp(max=1.0)
        mean_target = float(target.mean())
        params = [p for net in (*sound_nets, *mask_nets) for p in net.parameters()]
        try:  # fused Adam on the CPU (torch >= 2.4), faster than foreach (benchmarks/DESIGN.md)
            opt = torch.optim.Adam(params, lr=self.lr, fused=True)
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(params, lr=self.lr, foreach=True)
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        self.history = []
        collapsed = False
        estimates = target.new_zeros(k, bins, frames)
        for step in range(self.steps + 1):  # the last pass only evaluates
            blend = min(max((step / max(self.steps, 1) - 0.4) / 0.4, 0.0), 1.0)
            sound_in = jitter + (1 - blend) * static + blend * dynamic
            with torch.enable_grad():
                mags = torch.cat([net(x) for net, x in zip(sound_nets, sound_in, strict=True)])
                mags = mags[:, 0, :bins, :frames]  # [K, bins, frames]
                masks = torch.cat([net(x) for net, x in zip(mask_nets, mask_inputs, strict=True)])
                masks = torch.sigmoid(masks[:, 0, :, :frames].mean(dim=1))  # time only: [K, frames]
                est = masks[:, None, :] * mags  # [K, bins, frames]
                estimates = est.detach()
                if float(estimates.mean(dim=(1, 2)).min()) < 1e-3 * mean_target:
                    collapsed = True
                    break
                if step == self.steps:
                    break
                loss = (est.sum(0) - target).abs().mean()
                loss = loss + mags.diff(dim=-1).abs().mean(dim=(1, 2)).sum()
                loss = loss + self.exclusion_weight * torch.stack(
                    [exclusion(est[i], est[j]) for i, j in pairs]).mean()
                loss = loss + (weight / masks.sum(0).clamp(max=1.0).add(1e-6)).mean()
                if step > 0.9 * self.steps:
                    loss = loss + 0.01 * (1.0 / (1e-6 + (masks - 0.5).abs().mean(dim=1))).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.history.append(float(loss.detach()))
        if not math.isfinite(float(estimates.sum())):
            collapsed = True
        return estimates, collapsed
