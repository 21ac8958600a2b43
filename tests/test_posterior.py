"""Score priors (priorsep.priors.score), their training and separation by posterior sampling."""

import math

import pytest
import torch

from priorsep import spectral
from priorsep.errors import AudioError, ConfigError, PriorError
from priorsep.metrics import si_sdr
from priorsep.priors import load_prior, save_prior
from priorsep.priors.score import BINS, FRAMES, HOP, N_FFT, ScorePrior, from_image, to_image
from priorsep.separate.posterior import PosteriorConfig, PosteriorSeparator, separate_posterior

T = 16384
t = torch.arange(T) / 16000


def harmonic(f0: float, seed: int) -> torch.Tensor:
    """A steady four-harmonic tone with random phases."""
    ph = torch.rand(4, generator=torch.Generator().manual_seed(seed)) * 2 * math.pi
    return 0.5 * sum(torch.sin(2 * math.pi * f0 * (h + 1) * t + ph[h]) / (h + 1) for h in range(4))


def hiss(seed: int) -> torch.Tensor:
    """A high-passed noise burst centred at 0.5 s."""
    n = torch.randn(T, generator=torch.Generator().manual_seed(seed))
    return 0.2 * torch.diff(n, prepend=n[:1]) * torch.exp(-(((t - 0.5) / 0.15) ** 2))


def image(x: torch.Tensor, n_fft: int = N_FFT) -> torch.Tensor:
    return to_image(spectral.analysis(x, n_fft, HOP), n_fft // 2, FRAMES)


class GaussianScore(ScorePrior):
    """A score prior with a known answer: cells independent, ``N(mean, s0^2)``, so the
    blurred density's score is ``-(x - mean) / (s0^2 + sigma^2)`` and the predicted noise
    ``-sigma`` times that."""

    def __init__(self, examples: torch.Tensor, name: str, n_fft: int = N_FFT):
        super().__init__(widths=(4, 4, 4, 4), name=name, n_fft=n_fft)
        self.mean, self.s0 = examples.mean(0), float(examples.std(0).mean()) + 0.1

    def noise(self, x, sigma):
        sigma = torch.as_tensor(sigma).expand(x.shape[0])[:, None, None]
        return sigma * (x - self.mean) / (self.s0**2 + sigma**2)


@pytest.fixture(scope="module")
def gaussian_priors():
    tones = torch.stack([image(harmonic(440, s)) for s in range(8)])
    hisses = torch.stack([image(hiss(s)) for s in range(8)])
    return [GaussianScore(tones, "tone"), GaussianScore(hisses, "hiss")]


def test_images_round_trip_and_check_their_shape():
    x = harmonic(440, 0)
    spec = spectral.analysis(x, N_FFT, HOP)
    img = to_image(spec)
    assert img.shape == (BINS, FRAMES)
    back = from_image(img)
    assert back.shape == spec.shape
    assert torch.allclose(back[:BINS, :FRAMES], spec.abs()[:BINS, :FRAMES], atol=1e-4)
    assert torch.equal(back[BINS], back[BINS - 1]) and torch.equal(back[:, FRAMES], back[:, FRAMES - 1])
    with pytest.raises(ValueError, match=r"257, 65"):
        to_image(spectral.analysis(x, 1024, HOP))


# measured: 32.1 / 21.0 dB
def test_posterior_sampling_separates_two_known_classes(gaussian_priors):
    floor = (24.0, 15.0)
    a, b = harmonic(440, 100), hiss(100)  # unseen phases and noise
    config = PosteriorConfig()
    result = separate_posterior(a + b, gaussian_priors, config)
    assert result.masked.shape == (2, T) and result.magnitudes.shape == (1, 2, 257, 65)
    assert torch.allclose(result.masked.sum(0), a + b, atol=1e-4)  # mixture-consistent
    assert si_sdr(a, result.masked[0]) > floor[0]
    assert si_sdr(b, result.masked[1]) > floor[1]
    # swapped priors swap the estimates
    swapped = separate_posterior(a + b, gaussian_priors[::-1], config)
    assert si_sdr(a, swapped.masked[1]) > floor[0]


def test_priors_of_a_finer_stft_separate_and_do_not_mix_with_others(gaussian_priors):
    """Score priors on 1024-point images ([513, 65] magnitudes): the sampler runs on their
    STFT; a pair of priors of different STFTs is refused in one line."""
    fine = [GaussianScore(torch.stack([image(harmonic(440, s), 1024) for s in range(8)]), "tone", 1024),
            GaussianScore(torch.stack([image(hiss(s), 1024) for s in range(8)]), "hiss", 1024)]
    a, b = harmonic(440, 100), hiss(100)
    result = separate_posterior(a + b, fine)
    assert result.magnitudes.shape == (1, 2, 513, 65)
    assert torch.allclose(result.masked.sum(0), a + b, atol=1e-4)
    assert si_sdr(a, result.masked[0]) > 24.0  # measured 34.7 (512 points: 32.1)
    assert si_sdr(b, result.masked[1]) > 15.0  # measured 23.6 (512 points: 21.0)
    with pytest.raises(PriorError, match=r"STFTs differ \(tone: 512/256, hiss: 1024/256\)"):
        separate_posterior(a + b, [gaussian_priors[0], fine[1]])
    with pytest.raises(ValueError, match="n_fft 520 / hop 256: .* multiples of 16"):
        ScorePrior(widths=(4, 4, 4, 4), n_fft=520)


def test_a_flat_prior_pair_cannot_separate(gaussian_priors):
    """The test above can fail: with the same prior for both sources the split is even."""
    a, b = harmonic(440, 100), hiss(100)
    result = separate_posterior(a + b, [gaussian_priors[0], gaussian_priors[0]])
    assert si_sdr(b, result.masked[1]) < 0.0  # measured -10.8


def test_a_mixture_does_not_depend_on_its_batch(gaussian_priors):
    a, b = harmonic(440, 100), hiss(100)
    alone = separate_posterior(a + b, gaussian_priors).masked
    batch = separate_posterior(torch.stack([harmonic(440, 7) + hiss(8), a + b]), gaussian_priors).masked
    assert torch.allclose(batch[1], alone, atol=1e-5)
    again = separate_posterior(a + b, gaussian_priors).masked
    assert torch.equal(again, alone)  # seeded


def test_long_inputs_are_windowed_and_sum_to_the_mixture(gaussian_priors):
    """An input of 1.6 clips: three windows, overlap-added; still separated."""
    n = 26000
    tt = torch.arange(n) / 16000
    tone = 0.5 * sum(torch.sin(2 * math.pi * 440 * (h + 1) * tt + h) / (h + 1) for h in range(4))
    noise = torch.randn(n, generator=torch.Generator().manual_seed(3))
    bursts = 0.2 * torch.diff(noise, prepend=noise[:1]) * sum(torch.exp(-(((tt - c) / 0.15) ** 2)) for c in (0.5, 1.2))
    result = separate_posterior(tone + bursts, gaussian_priors)
    assert result.masked.shape == (2, n) and result.windows == 3 and result.magnitudes.shape == (3, 2, 257, 65)
    assert torch.allclose(result.masked.sum(0), tone + bursts, atol=1e-4)
    assert si_sdr(tone, result.masked[0]) > 24.0  # measured 29.7
    assert si_sdr(bursts, result.masked[1]) > 15.0  # measured 19.4


def test_the_level_makes_a_separation_scale_free(gaussian_priors):
    """At a set level a quiet copy of a mixture gives the same estimates, quieter; as it
    comes (level None) the log-magnitude images differ, and so do the estimates."""
    mix = harmonic(440, 100) + hiss(100)
    loud = PosteriorSeparator(gaussian_priors, level=1.0).separate(mix).masked
    quiet = PosteriorSeparator(gaussian_priors, level=1.0).separate(0.1 * mix).masked
    assert torch.allclose(quiet, 0.1 * loud, atol=1e-5)
    raw = separate_posterior(0.1 * mix, gaussian_priors).masked
    assert not torch.allclose(raw, 0.1 * loud, atol=1e-3)


def test_make_separator_picks_posterior_sampling_for_score_priors(gaussian_priors, tone_burst):
    from priorsep.separate import Separator, make_separator

    assert isinstance(make_separator(tone_burst), Separator)
    sep = make_separator(gaussian_priors, seed=3, level=0.5)
    assert isinstance(sep, PosteriorSeparator) and sep.config.seed == 3 and sep.level == 0.5
    assert make_separator(gaussian_priors).level == 1.0  # level auto: 1, as for the magnitude fit
    with pytest.raises(ConfigError, match="do not apply to them: steps, lr"):
        make_separator(gaussian_priors, steps=10, lr=0.1)
    with pytest.raises(ConfigError, match="do not apply to them: objective"):
        make_separator(gaussian_priors, "paper")
    with pytest.raises(PriorError, match=r"score priors \(tone\) .* others \(tone\)"):
        make_separator([gaussian_priors[0], tone_burst[0]])


class _ThreadsSeen(GaussianScore):
    """A Gaussian score prior that records torch's thread count at every call."""

    seen: list

    def noise(self, x, sigma):
        self.seen.append(torch.get_num_threads())
        return super().noise(x, sigma)


def test_posterior_sampling_runs_on_the_command_lines_threads_and_restores_torchs(gaussian_priors, monkeypatch):
    """As the latent search: one torch thread by default, ``threads`` when given, torch's
    own with ``None``; torch's setting is restored after every call, and the estimates do
    not depend on the thread count here (one thread or three: the same samples)."""
    from priorsep.separate import make_separator

    prior = _ThreadsSeen(torch.stack([image(harmonic(440, s)) for s in range(8)]), "tone")
    priors, mix = [prior, gaussian_priors[1]], harmonic(440, 100) + hiss(100)
    monkeypatch.delenv("PRIORSEP_THREADS", raising=False)
    torch.set_num_threads(3)
    try:
        results = {}
        for threads, used in (("default", 1), (2, 2), (None, 3)):
            prior.seen = []
            results[threads] = PosteriorSeparator(priors, PosteriorConfig(levels=4), threads=threads).separate(mix)
            assert set(prior.seen) == {used} and torch.get_num_threads() == 3, (threads, prior.seen)
        prior.seen = []
        make_separator(priors).separate(mix)
        separate_posterior(mix, priors, PosteriorConfig(levels=2), threads=2)
        assert prior.seen[:60] == [1] * 60 and set(prior.seen[60:]) == {2}, prior.seen
        assert torch.allclose(results["default"].masked, results[None].masked, atol=1e-5)
        with pytest.raises(ConfigError, match="threads must be a whole number >= 1"):
            PosteriorSeparator(priors, threads="all")
    finally:
        torch.set_num_threads(1)


def test_posterior_sampling_refuses_bad_input(gaussian_priors, tone_burst):
    mix = harmonic(440, 0)
    with pytest.raises(ConfigError, match="at least two"):
        separate_posterior(mix, gaussian_priors[:1])
    with pytest.raises(PriorError, match="needs score priors.*tone"):
        separate_posterior(mix, tone_burst)
    with pytest.raises(PriorError, match="sample rates differ"):
        separate_posterior(mix, [gaussian_priors[0], ScorePrior(widths=(4, 4, 4, 4), sample_rate=8000)])
    with pytest.raises(AudioError, match="300 samples; posterior sampling needs at least 512"):
        separate_posterior(mix[:300], gaussian_priors)
    with pytest.raises(ConfigError, match="NaN"):
        separate_posterior(torch.full((T,), float("nan")), gaussian_priors)
    with pytest.raises(ConfigError, match="levels must be at least 1"):
        PosteriorConfig(levels=0)
    with pytest.raises(ConfigError, match="eta must be in"):
        PosteriorConfig(eta=1.5)


def test_a_score_prior_saves_loads_and_predicts_noise(tmp_path):
    torch.manual_seed(0)
    prior = ScorePrior(widths=(8, 8, 16, 16), name="tones")
    x = torch.randn(2, BINS, FRAMES)
    eps = prior.noise(x, torch.tensor([0.1, 1.0]))
    assert eps.shape == (2, BINS, FRAMES)
    with pytest.raises(ValueError, match=r"\[B, 256, 64\]"):
        prior.noise(torch.randn(2, 257, 65), torch.tensor(1.0))
    path = save_prior(prior, tmp_path / "tones.safetensors")
    loaded = load_prior(path)
    assert isinstance(loaded, ScorePrior) and loaded.widths == (8, 8, 16, 16)
    assert torch.allclose(loaded.noise(x, torch.tensor(0.3)), prior.noise(x, torch.tensor(0.3)), atol=1e-6)


def test_score_training_lowers_the_denoising_loss(clip_dir, tmp_path):
    from priorsep.data.folder import load_folder
    from priorsep.training.score import ScoreTrainer

    clips = load_folder(clip_dir)
    trainer = ScoreTrainer(clips, tmp_path / "run", widths=(8, 8, 16, 16), batch=8, seed=0, name="tones")
    init = trainer.model.out.weight.detach().clone()
    gen = torch.Generator().manual_seed(5)
    x = trainer.batch_images()
    sigma = torch.full((x.shape[0],), 0.3)
    eps = torch.randn(x.shape, generator=gen)
    with torch.no_grad():
        before = trainer.loss(x, sigma, eps).mean().item()
    for _ in range(60):
        trainer.train_step()
    with torch.no_grad():
        after = trainer.loss(x, sigma, eps).mean().item()
    assert before > 0.9  # an untrained net predicts no noise: the loss is about E[eps^2] = 1
    assert after < 0.8 * before  # measured 0.65 of it
    # the exported average follows the model within a few steps (its decay warms up), not the
    # initial weights
    model, ema = trainer.model.out.weight.detach(), trainer.ema.out.weight
    assert (ema - model).norm() < 0.5 * (init - model).norm()
    assert torch.equal(trainer.prior().out.weight, ema)


def test_the_latent_search_refuses_score_priors_in_one_line(gaussian_priors):
    from priorsep.separate import Separator

    with pytest.raises(PriorError, match="tone, hiss: score priors are not searched; .*posterior"):
        Separator(gaussian_priors)


def test_score_training_goes_on_from_an_init_prior(clip_dir, tmp_path, capsys):
    """--family score --init: the run starts from the prior's weights (its widths, not the
    default ones), the export records it, and a specvae --init is refused in one line."""
    from priorsep.cli import main
    from priorsep.priors import SpecVAE

    torch.manual_seed(1)
    start = save_prior(ScorePrior(widths=(8, 8, 16, 16), name="tones"), tmp_path / "start.safetensors")
    out = tmp_path / "tones2.safetensors"
    args = ["train", str(clip_dir), "--family", "score", "--name", "tones", "--out", str(out), "--batch", "4"]
    assert main(args + ["--steps", "2", "--init", str(start)]) == 0
    trained, init = load_prior(out), load_prior(start)
    assert trained.widths == (8, 8, 16, 16)
    assert trained.metadata["training"]["init"]["name"] == "tones" and trained.metadata["training"]["steps"] == 2
    # two small steps move the weights a little from the start; a fresh network is far away
    moved = (trained.out.weight - init.out.weight).norm() / init.out.weight.norm()
    fresh = ScorePrior(widths=(8, 8, 16, 16))
    assert moved < 0.2 < (fresh.out.weight - init.out.weight).norm() / init.out.weight.norm()
    vae = save_prior(SpecVAE(8, 4, name="sines"), tmp_path / "vae.safetensors")
    capsys.readouterr()
    assert main(args + ["--steps", "1", "--init", str(vae), "--run-dir", str(tmp_path / "r2")]) == 2
    assert "--init for the score family needs a score prior; got SpecVAE" in capsys.readouterr().err


def test_score_training_takes_its_size_and_stft_from_the_command_line(clip_dir, tmp_path, capsys):
    from priorsep.cli import main

    out = tmp_path / "fine.safetensors"
    args = ["train", str(clip_dir), "--family", "score", "--name", "tones", "--batch", "2", "--steps", "1"]
    assert main(args + ["--out", str(out), "--widths", "8,8,16,16", "--n-fft", "1024"]) == 0
    assert "score widths=8,8,16,16 STFT 1024/256" in capsys.readouterr().out
    fine = load_prior(out)
    assert (fine.widths, fine.n_fft, fine.hop, fine.bins, fine.frames) == ((8, 8, 16, 16), 1024, 256, 512, 64)
    for extra, message in ((["--n-fft", "520"], "n_fft 520 / hop 256: the image's bins"),
                           (["--init", str(out), "--hop", "128"], "--init keeps the init prior's"),
                           (["--family", "specvae", "--n-fft", "1024"], "belong to --family score")):
        run_dir = tmp_path / f"r{len(message)}"
        assert main(args + ["--out", str(tmp_path / "x.safetensors"), "--run-dir", str(run_dir), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not run_dir.exists()
