"""Tests for priorsep.priors.wavegan (METHOD.md section 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from priorsep.priors.wavegan import (
    PhaseShuffle,
    WaveGANDiscriminator,
    WaveGANGenerator,
    WaveGANPrior,
)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_param_counts_d64():
    assert n_params(WaveGANGenerator(d=64)) == 19_065_345
    assert n_params(WaveGANDiscriminator(d=64)) == 17_427_969


def _closed_form_counts(d, zdim=100, k=25):
    """Parameter counts of METHOD.md §2's generator and critic, from their layer sizes."""
    g_chans = [16 * d, 8 * d, 4 * d, 2 * d, d, 1]
    g = zdim * 256 * d + 256 * d  # dense 100 -> 16 * 16d, with bias
    g += sum(a * b * k + b for a, b in zip(g_chans[:-1], g_chans[1:]))
    d_chans = [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
    disc = sum(a * b * k + b for a, b in zip(d_chans[:-1], d_chans[1:]))
    disc += 256 * d + 1  # dense 16 * 16d -> 1
    return g, disc


def test_param_counts_d8_closed_form():
    # the closed form gives the paper's published counts at d = 64 ...
    assert _closed_form_counts(64) == (19_065_345, 17_427_969)
    # ... and the modules have exactly its counts at another size
    g, disc = _closed_form_counts(8)
    assert n_params(WaveGANGenerator(d=8, latent_dim=100)) == g
    assert n_params(WaveGANDiscriminator(d=8)) == disc


def test_generator_shapes_and_intermediate_lengths():
    torch.manual_seed(0)
    g = WaveGANGenerator(d=4)
    seen: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((tuple(inp[0].shape), tuple(out.shape))))
             for m in g.deconvs]
    z = torch.rand(3, 100) * 2 - 1
    with torch.no_grad():
        y = g(z)
    for h in hooks:
        h.remove()
    assert y.shape == (3, 1, 16384)
    assert g.length == 16384
    lengths = [seen[0][0][2]] + [out[2] for _, out in seen]
    assert lengths == [16, 64, 256, 1024, 4096, 16384]
    channels = [seen[0][0][1]] + [out[1] for _, out in seen]
    assert channels == [64, 32, 16, 8, 4, 1]
    assert all(s[0][0] == 3 for s in seen)


def test_generator_tanh_bound():
    torch.manual_seed(1)
    g = WaveGANGenerator(d=4)
    with torch.no_grad():
        for p in g.parameters():  # blow up the weights so tanh saturates
            p.mul_(50.0)
        y = g(torch.rand(2, 100) * 2 - 1)
    assert torch.isfinite(y).all()
    assert y.abs().max().item() <= 1.0
    assert y.abs().max().item() > 0.99  # saturated, so the bound is actually exercised


@pytest.mark.parametrize("shape", [(3, 99), (100,), (3, 100, 1), (2, 101)])
def test_generator_bad_z_shape(shape):
    g = WaveGANGenerator(d=2)
    with pytest.raises(ValueError, match=re_shape(shape)):
        g(torch.zeros(shape))


def re_shape(shape: tuple[int, ...]) -> str:
    import re

    return re.escape(str(tuple(shape)))


def test_discriminator_output_shape():
    torch.manual_seed(2)
    disc = WaveGANDiscriminator(d=4)
    x = torch.rand(5, 1, 16384) * 2 - 1
    disc.eval()
    with torch.no_grad():
        s3 = disc(x)
        s2 = disc(x.squeeze(1))
    assert s3.shape == (5,)
    assert torch.equal(s3, s2)
    disc.train()
    s = disc(x)
    assert s.shape == (5,)
    s.sum().backward()
    assert disc.convs[0].weight.grad is not None


def test_discriminator_bad_shape():
    with pytest.raises(ValueError, match=re_shape((2, 1, 8000))):
        WaveGANDiscriminator(d=2)(torch.zeros(2, 1, 8000))


def np_reflect_shift(x: np.ndarray, s: int, r: int) -> np.ndarray:
    """x [C, T] shifted right by s (y[t] = x[t - s]) with reflect padding."""
    t = x.shape[-1]
    padded = np.pad(x, ((0, 0), (r, r)), mode="reflect")
    return padded[:, r - s: r - s + t]


def test_phase_shuffle_eval_identity():
    ps = PhaseShuffle(2).eval()
    x = torch.randn(4, 3, 50)
    assert torch.equal(ps(x), x)


def test_phase_shuffle_radius0_identity():
    ps = PhaseShuffle(0).train()
    x = torch.randn(4, 3, 50)
    assert torch.equal(ps(x), x)


def test_phase_shuffle_train_matches_reflect_shift():
    r, b, c, t = 2, 32, 3, 40
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(b, c, t, generator=gen)
    ps = PhaseShuffle(r).train()
    torch.manual_seed(7)
    y = ps(x)
    torch.manual_seed(7)
    y_again = ps(x)
    assert torch.equal(y, y_again)  # global RNG makes it reproducible
    assert y.shape == x.shape
    xn, yn = x.numpy(), y.numpy()
    found = []
    for i in range(b):
        matches = [s for s in range(-r, r + 1) if np.array_equal(yn[i], np_reflect_shift(xn[i], s, r))]
        assert len(matches) == 1, f"example {i}: matches {matches}"
        found.append(matches[0])
    # with 32 examples, several distinct shifts (incl. both signs) must have occurred
    assert len(set(found)) >= 3
    assert min(found) < 0 < max(found)


def test_np_reflect_shift_reference():
    x = np.arange(6, dtype=float)[None]
    assert np_reflect_shift(x, 2, 2).tolist() == [[2, 1, 0, 1, 2, 3]]
    assert np_reflect_shift(x, -2, 2).tolist() == [[2, 3, 4, 5, 4, 3]]
    assert np_reflect_shift(x, 0, 2).tolist() == [[0, 1, 2, 3, 4, 5]]


def test_prior_generate_and_arch_roundtrip():
    torch.manual_seed(3)
    prior = WaveGANPrior(d=4, latent_dim=100, sample_rate=16000, name="digits")
    assert (prior.name, prior.latent_dim, prior.sample_rate, prior.length) == ("digits", 100, 16000, 16384)
    z = torch.rand(2, 100) * 2 - 1
    with torch.no_grad():
        w = prior.generate(z)
    assert w.shape == (2, 16384)
    cfg = prior.arch_config()
    assert cfg == {"family": "wavegan", "d": 4, "latent_dim": 100}
    rebuilt = WaveGANPrior.from_arch_config(cfg, sample_rate=8000, name="other")
    assert (rebuilt.name, rebuilt.sample_rate) == ("other", 8000)
    rebuilt.load_state_dict(prior.state_dict())  # strict: keys and shapes must match
    with torch.no_grad():
        assert torch.equal(rebuilt.generate(z), w)
    wrong = WaveGANPrior.from_arch_config({"family": "wavegan", "d": 2, "latent_dim": 100}, 16000, "x")
    with pytest.raises(RuntimeError):
        wrong.load_state_dict(prior.state_dict())
