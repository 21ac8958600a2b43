import numpy as np
import pytest
import torch

from priorsep import PriorError, Separator, WaveGANPrior, load_prior
from priorsep.data import prior_mixtures
from priorsep.metrics import evaluate
from priorsep.priors import BurstPrior, TonePrior


@pytest.fixture(scope="module")
def priors():
    return [load_prior("tone"), load_prior("burst")]


def test_separates_tone_and_burst_mixtures(priors):
    """METHOD.md §3 on sources drawn from the built-in priors: the mixture-consistent
    estimates must recover the waveforms, the generated ones at least the magnitudes, and
    both clearly better than the starting point (z = 0, no search)."""
    mixtures, sources = prior_mixtures(priors, 6, seed=0)

    def scores(steps):
        result = Separator(priors, steps=steps, restarts=3).separate(mixtures)
        masked = [evaluate(sources[i], result.masked[i]) for i in range(6)]
        generated = [evaluate(sources[i], result.generated[i]) for i in range(6)]
        si_sdr = np.array([[m["si_sdr"] for m in mix] for mix in masked])  # [mixtures, K]
        snr = np.array([[m["spectral_snr"] for m in mix] for mix in generated])
        return result, si_sdr, snr

    result, si_sdr, snr = scores(200)
    _, si_sdr_0, snr_0 = scores(0)
    assert np.median(si_sdr) >= 10.0, si_sdr
    assert np.median(si_sdr) >= np.median(si_sdr_0) + 6.0, (si_sdr, si_sdr_0)  # 3.7 dB without search
    assert (np.median(snr, axis=0) > 0).all(), snr
    assert (np.median(snr, axis=0) >= np.median(snr_0, axis=0) + 10.0).all(), (snr, snr_0)  # 1.2 / 2.5 dB
    # the search lowered the loss for every mixture
    assert (result.history["total"][-1] < result.history["total"][0]).all()


def test_result_does_not_depend_on_the_batch(priors):
    mixtures, _ = prior_mixtures(priors, 3, seed=5)
    sep = Separator(priors, steps=40, restarts=2, seed=3)
    together = sep.separate(mixtures)
    alone = sep.separate(mixtures[1:2])
    reordered = sep.separate(mixtures.flip(0))
    for other, row in ((alone, 0), (reordered, 1)):
        assert torch.equal(other.masked[row], together.masked[1])
        assert torch.equal(other.generated[row], together.generated[1])
        for term in together.losses:
            assert torch.equal(other.losses[term][row], together.losses[term][1])
            assert torch.equal(other.history[term][:, row], together.history[term][:, 1])


def test_same_settings_same_numbers_and_the_best_restart_is_kept(priors):
    mixtures, _ = prior_mixtures(priors, 2, seed=2)
    a = Separator(priors, steps=30, restarts=3, seed=1).separate(mixtures)
    b = Separator(priors, steps=30, restarts=3, seed=1).separate(mixtures)
    c = Separator(priors, steps=30, restarts=3, seed=2).separate(mixtures)
    assert torch.equal(a.masked, b.masked) and torch.equal(a.restart_losses, b.restart_losses)
    assert a.restart_losses.shape == (2, 1, 3)
    # restart 0 starts at z = 0 whatever the seed; the others depend on it
    assert torch.equal(a.restart_losses[..., 0], c.restart_losses[..., 0])
    assert not torch.equal(a.restart_losses[..., 1:], c.restart_losses[..., 1:])
    # the kept restart is the one with the smallest final loss
    torch.testing.assert_close(a.losses["total"], a.restart_losses.min(-1).values[:, 0])
    assert len(set(a.restart_losses[0, 0].tolist())) == 3  # the restarts really differ


def test_outputs_have_the_documented_form(priors):
    mixtures, _ = prior_mixtures(priors, 2, seed=1)
    result = Separator(priors, steps=5).separate(mixtures)
    assert result.generated.shape == result.masked.shape == (2, 2, 16384)
    torch.testing.assert_close(result.masked.sum(1), mixtures, atol=1e-5, rtol=0)
    peaks = result.generated.abs().amax(-1)
    torch.testing.assert_close(peaks, torch.ones_like(peaks), atol=1e-6, rtol=0)
    assert set(result.history) == {"ms", "sd", "mc", "fc", "total"}
    assert result.history["total"].shape == (5, 2)
    assert result.losses["total"].shape == (2,)
    assert [z.shape for z in result.latents] == [(2, 1, 6), (2, 1, 3)]
    one = Separator(priors, steps=5).separate(mixtures[0])  # [T] in, [K, T] out
    assert one.masked.shape == (2, 16384) and one.history["total"].shape == (5,)


def test_projection_keeps_latents_in_the_box(priors):
    mixtures, _ = prior_mixtures(priors, 1, seed=4)
    boxed = Separator(priors, steps=60, lr=0.5, bound=0.3).separate(mixtures)
    assert max(z.abs().max().item() for z in boxed.latents) <= 0.3 + 1e-6  # float32(0.3)
    free = Separator(priors, steps=60, lr=0.5, bound=None).separate(mixtures)
    assert max(z.abs().max().item() for z in free.latents) > 1.0


def test_long_and_short_inputs_are_windowed_and_stay_mixture_consistent(priors):
    mixtures, _ = prior_mixtures(priors, 3, seed=7)
    long = torch.cat([mixtures[0], mixtures[1], mixtures[2][:5000]])[None]  # 37768 samples
    result = Separator(priors, steps=3).separate(long)
    assert result.masked.shape == result.generated.shape == (1, 2, 37768)
    assert result.latents[0].shape == (1, 4, 6)  # 4 half-overlapping windows
    torch.testing.assert_close(result.masked.sum(1), long, atol=1e-5, rtol=0)
    short = Separator(priors, steps=3).separate(mixtures[:, :7000])
    assert short.masked.shape == (3, 2, 7000)
    torch.testing.assert_close(short.masked.sum(1), mixtures[:, :7000], atol=1e-5, rtol=0)


def test_wavegan_priors_are_searched_but_not_trained():
    torch.manual_seed(0)
    priors = [WaveGANPrior(d=2, name="a"), WaveGANPrior(d=2, name="b")]
    priors[0].train()
    priors[1].eval()
    before = [p.state_dict()["generator.fc.weight"].clone() for p in priors]
    mixture = torch.randn(1, 16384) * 0.3
    result = Separator(priors, steps=3).separate(mixture)
    assert result.masked.shape == (1, 2, 16384)
    for p, w in zip(priors, before):
        assert torch.equal(p.state_dict()["generator.fc.weight"], w)
        assert all(q.requires_grad for q in p.parameters())  # flags restored
    assert priors[0].training and not priors[1].training  # modes restored


def test_bad_priors_and_inputs_are_refused(priors):
    with pytest.raises(PriorError, match="at least two priors; got 1"):
        Separator(priors[:1])
    with pytest.raises(PriorError, match="sample rates differ.*tone: 8000 Hz"):
        Separator([TonePrior(sample_rate=8000), BurstPrior()])
    with pytest.raises(PriorError, match="lengths differ.*tone: 8192"):
        Separator([TonePrior(length=8192), BurstPrior()])
    with pytest.raises(PriorError, match="lacks"):
        Separator([priors[0], object()])
    sep = Separator(priors, steps=1)
    bad = torch.zeros(1, 16384)
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        sep.separate(bad)
    with pytest.raises(ValueError, match=r"\(1, 2, 16384\)"):
        sep.separate(torch.zeros(1, 2, 16384))
    with pytest.raises(ValueError, match="floating point"):
        sep.separate(torch.zeros(1, 16384, dtype=torch.int16))
