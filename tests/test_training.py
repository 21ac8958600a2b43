"""Tests of priorsep.training: the WaveGAN and VAE trainers, the shared loop, checkpoints,
data-parallel training (``clip_dir`` comes from conftest.py)."""

import numpy as np
import pytest
import torch

from priorsep import load_prior
from priorsep.cli import main
from priorsep.data.folder import load_folder
from priorsep.errors import ConfigError
from priorsep.priors.specvae import SpecVAE, log_magnitude
from priorsep.training import VAETrainer, WaveGANTrainer, checkpoints, distributed


@pytest.mark.parametrize("recipe", ["fast", "paper"])
def test_a_few_steps_lower_the_critic_loss(clip_dir, tmp_path, recipe):
    clips = load_folder(clip_dir, max_clips=10)
    trainer = WaveGANTrainer(clips, tmp_path / "run", d=2, recipe=recipe, batch=4, seed=0)
    losses = [trainer.train_step()["d_loss"] for _ in range(12)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


def test_resume_takes_the_same_next_step(clip_dir, tmp_path):
    clips = load_folder(clip_dir, max_clips=10)
    straight = WaveGANTrainer(clips, tmp_path / "a", d=2, recipe="paper", batch=4, seed=3)
    straight.train(steps=3, progress=False)
    ckpt = WaveGANTrainer.latest(tmp_path / "a")
    assert ckpt.name == "ckpt-00000003.safetensors"
    assert (tmp_path / "a" / "samples" / "samples.png").exists() and (tmp_path / "a" / "log.csv").exists()
    straight.train(steps=5, progress=False)

    # another seed: the state must come from the file
    resumed = WaveGANTrainer(clips, tmp_path / "b", d=2, recipe="paper", batch=4, seed=99)
    resumed.resume(ckpt)
    assert resumed.step == 3
    resumed.train(steps=5, progress=False)
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)


def test_the_log_is_on_disk_while_the_run_goes_on(clip_dir, tmp_path):
    """log.csv is flushed row by row, not at checkpoints: read during step 4, it already
    holds steps 1 to 3 (no checkpoint is due in the run's first minutes)."""
    trainer = WaveGANTrainer(load_folder(clip_dir, max_clips=10), tmp_path / "run", d=2, recipe="paper", batch=4,
                             seed=0)
    seen = []
    step = trainer.train_step

    def spying_step():
        if trainer.step == 3:
            seen.extend((tmp_path / "run" / "log.csv").read_text().splitlines())
        return step()

    trainer.train_step = spying_step
    trainer.train(steps=5, progress=False, checkpoint_minutes=60)
    assert [row.split(",")[0] for row in seen] == ["step", "1", "2", "3"], seen


def test_train_command_writes_a_prior_that_separate_uses(clip_dir, tmp_path, capsys):
    out = tmp_path / "sines.safetensors"
    args = ["train", str(clip_dir), "--family", "wavegan", "--name", "sines", "--out", str(out), "--d", "2",
            "--steps", "2", "--batch", "4"]
    assert main(args) == 0
    prior = load_prior(out)
    assert prior.name == "sines" and prior.metadata["training"]["steps"] == 2
    assert prior.metadata["training"]["command"] == "priorsep " + " ".join(args)
    assert prior.metadata["data"]["clips"] == 12 and prior.metadata["training"]["recipe"]["name"] == "fast"
    capsys.readouterr()
    assert main(args) == 2  # the run folder has checkpoints: refuse without --resume
    assert "--resume" in capsys.readouterr().err
    assert main(args[:-4] + ["--steps", "3", "--resume"]) == 0
    assert load_prior(out).metadata["training"]["steps"] == 3
    sep = tmp_path / "sep"
    assert main(["separate", str(clip_dir / "c0.wav"), "--prior", str(out), "--prior", "burst",
                 "--out", str(sep), "--steps", "2"]) == 0
    assert (sep / "0_sines.wav").exists()
    capsys.readouterr()
    assert main(["train", str(tmp_path / "nowhere"), "--name", "x", "--out", str(tmp_path / "x.safetensors"),
                 "--steps", "1"]) == 2
    assert "no such folder" in capsys.readouterr().err


def _data_parallel_worker(rank: int, clips, run_dir: str, recipe: str, rendezvous: str) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    try:
        trainer = WaveGANTrainer(clips, run_dir, d=2, recipe=recipe, batch=4, seed=5, phase_shuffle=0)
        trainer.train(steps=3, progress=False)
        save_file({k: v.contiguous() for k, v in trainer.G.state_dict().items()}, f"{run_dir}/G-rank{rank}.safetensors")
        distributed.teardown()  # rank 1 must not tear the group down while rank 0 still writes its checkpoint
    finally:
        distributed.teardown(barrier=False)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["paper", "fast"])
def test_two_processes_take_the_single_process_steps(clip_dir, tmp_path, recipe):
    """Gradients averaged over 2 gloo processes, each with half the global batch, give the
    single-process update, penalties included (without phase shuffle, whose random shifts
    are per process)."""
    from safetensors.torch import load_file

    clips = load_folder(clip_dir, max_clips=10)
    single = WaveGANTrainer(clips, tmp_path / "one", d=2, recipe=recipe, batch=4, seed=5, phase_shuffle=0)
    single.train(steps=3, progress=False)
    run = tmp_path / "two"
    torch.multiprocessing.spawn(_data_parallel_worker, args=(clips, str(run), recipe, str(tmp_path / "rdv")),
                                nprocs=2)
    g0, g1 = load_file(run / "G-rank0.safetensors"), load_file(run / "G-rank1.safetensors")
    moved = 0.0
    for key, value in single.G.state_dict().items():
        assert torch.equal(g0[key], g1[key]), key  # the processes stay in step
        torch.testing.assert_close(g0[key], value, rtol=1e-4, atol=1e-6)
        fresh = WaveGANTrainer(clips, tmp_path / "x", d=2, seed=5).G.state_dict()[key]
        moved = max(moved, (value - fresh).abs().max().item())
    assert moved > 1e-4  # the weights did move, so the comparison means something
    assert WaveGANTrainer.latest(run).name == "ckpt-00000003.safetensors"


@pytest.mark.slow
def test_torchrun_trains_with_two_gloo_processes(clip_dir, tmp_path, torchrun):
    out = tmp_path / "ddp.safetensors"
    proc = torchrun("--threads", "1", "train", str(clip_dir), "--family", "wavegan", "--name", "sines",
                    "--out", str(out), "--model-size", "2", "--steps", "2", "--batch", "4", "--recipe", "paper")
    assert "2 processes, 2 clips each per batch of 4" in proc.stderr
    assert load_prior(out).metadata["training"]["steps"] == 2
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone reports and exports


def test_minutes_stop_training_even_with_checkpoints_in_between(clip_dir, tmp_path, monkeypatch):
    import itertools

    from priorsep.training import loop

    clock = itertools.count()  # a fake clock: every reading is one second later
    monkeypatch.setattr(loop.time, "perf_counter", lambda: float(next(clock)))
    clips = load_folder(clip_dir, max_clips=10)
    trainer = WaveGANTrainer(clips, tmp_path / "run", d=2, recipe="fast", batch=4, seed=0)
    # a 6-second budget, a checkpoint every second; the bug: each checkpoint restarted the
    # budget's clock, so only --steps (here 40) ended the run
    trainer.train(steps=40, minutes=0.1, checkpoint_minutes=1 / 60, keep=50, progress=False)
    assert 2 <= trainer.step <= 4
    assert len(list((tmp_path / "run").glob("ckpt-*.safetensors"))) >= 2  # checkpoints did happen mid-run


# --- the spectrogram VAE (training/vae.py) ---------------------------------------------


def test_loss_terms_match_a_hand_computation(clip_dir, tmp_path, monkeypatch):
    import math

    trainer = VAETrainer(load_folder(clip_dir), tmp_path / "run", channels=4, latent_dim=3, seed=0)
    x = trainer.features[:2]
    # a posterior of mean 1 and variance 4 in each of 3 dimensions; noise 1 puts z at 1 + 2 = 3, and
    # a decoder whose output is x shifted by 0.1 * sum(z) = 0.9 in every cell
    monkeypatch.setattr(trainer.model, "posterior", lambda x: (torch.ones(2, 3), torch.full((2, 3), math.log(4))))
    monkeypatch.setattr(trainer.model, "decode", lambda z: x + 0.1 * z.sum(dim=-1)[:, None, None])
    terms = trainer.loss_terms(x, torch.ones(2, 3))
    cells = 513 * 65
    recon = 0.9 ** 2 / (2 * 0.3 ** 2)  # the Gaussian likelihood of width 0.3, per cell: 4.5
    kl = 3 * 0.5 * (1 + 4 - 1 - math.log(4))  # per clip, then per cell
    torch.testing.assert_close(terms["recon"], torch.full((2,), 4.5))
    torch.testing.assert_close(terms["loss"], torch.full((2,), recon + kl / cells))


def test_training_lowers_the_reconstruction_error(clip_dir, tmp_path):
    trainer = VAETrainer(load_folder(clip_dir), tmp_path / "run", channels=16, latent_dim=4, batch=8, seed=0)
    losses = [trainer.train_step()["recon"] for _ in range(60)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


@pytest.mark.slow
def test_resume_takes_the_same_next_steps(clip_dir, tmp_path):
    clips = load_folder(clip_dir)
    straight = VAETrainer(clips, tmp_path / "a", channels=4, latent_dim=3, batch=4, seed=3)
    straight.train(steps=3, progress=False)
    ckpt = VAETrainer.latest(tmp_path / "a")
    assert ckpt.name == "ckpt-00000003.safetensors" and (tmp_path / "a" / "samples" / "samples.png").exists()
    straight.train(steps=6, progress=False)
    resumed = VAETrainer(clips, tmp_path / "b", channels=4, latent_dim=3, batch=4, seed=99)
    resumed.resume(ckpt)
    resumed.train(steps=6, progress=False)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="checkpoint is specvae"):
        VAETrainer(clips, tmp_path / "c", channels=5, latent_dim=3).resume(ckpt)


def test_train_command_specvae_writes_a_prior_with_an_encoder(clip_dir, tmp_path, capsys):
    out = tmp_path / "sines.safetensors"
    args = ["train", str(clip_dir), "--family", "specvae", "--name", "sines", "--out", str(out),
            "--channels", "8", "--latent-dim", "4", "--steps", "3", "--batch", "4"]
    assert main(args) == 0
    prior = load_prior(out)
    assert isinstance(prior, SpecVAE) and prior.metadata["training"]["family"] == "specvae"
    assert prior.metadata["training"]["steps"] == 3 and prior.metadata["data"]["clips"] == 12
    x = load_folder(clip_dir).clips[:2]
    assert prior.encode(x).shape == (2, 4) and prior.magnitude(torch.zeros(2, 4)).shape == (2, 513, 65)
    capsys.readouterr()
    assert main(args[:4] + ["--recipe", "paper"] + args[4:]) == 2
    assert "specvae family trains with vae" in capsys.readouterr().err


def test_log_magnitude_shape_and_value():
    x = torch.zeros(1, 16384)
    x[0, 8192] = 1.0  # an impulse: |X| = window value at the impulse, in the frames that see it
    feats = log_magnitude(x)
    assert feats.shape == (1, 513, 65)
    assert torch.allclose(feats[0, :, 32], torch.full((513,), float(np.log(2.0))), atol=1e-5)  # Hann peak = 1
    assert feats[0, :, 0].abs().max() == 0


# --- the shared loop, checkpoints and processes (training/loop.py, checkpoints.py) -------


def test_checkpoint_rotation_keeps_the_last_by_step(tmp_path):
    for step in (3, 12, 100, 7):  # written out of order: the last two by step are 12 and 100
        checkpoints.write(tmp_path, step, {"w": torch.full((2,), float(step))}, {"step": step}, keep=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ckpt-00000012.safetensors", "ckpt-00000100.safetensors"]
    assert checkpoints.latest(tmp_path).name == "ckpt-00000100.safetensors"
    meta, tensors = checkpoints.read(tmp_path / "ckpt-00000100.safetensors")
    assert meta == {"step": 100} and torch.equal(tensors["w"], torch.full((2,), 100.0))
    with pytest.raises(ConfigError, match="keep"):
        checkpoints.write(tmp_path, 200, {}, {}, keep=0)


@pytest.mark.parametrize("family", ["wavegan", "specvae"])
def test_training_leaves_the_callers_rng_alone(clip_dir, tmp_path, family):
    clips = load_folder(clip_dir, max_clips=10)

    def make(run):
        if family == "wavegan":
            return WaveGANTrainer(clips, tmp_path / run, d=2, recipe="fast", batch=4, seed=0)
        return VAETrainer(clips, tmp_path / run, channels=4, latent_dim=3, batch=4, seed=0)

    torch.manual_seed(123)
    before = torch.get_rng_state()
    trainer = make("a")
    trainer.train(steps=2, progress=False)
    trainer.export(tmp_path / "a.safetensors")
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(456)  # another caller state: the same seed still gives the same numbers
    other = make("b")
    other.train_step(), other.train_step()
    for a, b in zip(trainer.prior().state_dict().values(), other.prior().state_dict().values()):
        assert torch.equal(a, b)


def test_samples_are_wavs_without_matplotlib(clip_dir, tmp_path, monkeypatch):
    import subprocess
    import sys

    from priorsep.training import loop

    monkeypatch.setattr(loop, "can_plot", lambda: False)
    trainer = WaveGANTrainer(load_folder(clip_dir, max_clips=10), tmp_path / "run", d=2, batch=4, seed=0)
    trainer.write_samples(n=3)
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [f"sample{i}.wav" for i in range(3)]
    code = "import sys, priorsep.training; assert not {'matplotlib', 'priorsep.plots'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_user_errors_are_config_errors(clip_dir, tmp_path):
    clips = load_folder(clip_dir, max_clips=10)
    with pytest.raises(ConfigError, match="trains with paper or fast"):
        WaveGANTrainer(clips, tmp_path / "a", d=2, recipe="vae")
    vae = VAETrainer(clips, tmp_path / "v", channels=4, latent_dim=3, batch=4, seed=0)
    vae.checkpoint()
    with pytest.raises(ConfigError, match="checkpoint is specvae; this run trains wavegan"):
        WaveGANTrainer(clips, tmp_path / "g", d=2).resume(VAETrainer.latest(tmp_path / "v"))
    with pytest.raises(ConfigError, match="give steps or minutes"):
        vae.train()


@pytest.fixture()
def noise_dir(tmp_path):
    """Interference clips: 6 decaying noise bursts."""
    import soundfile as sf

    rng = np.random.default_rng(1)
    folder = tmp_path / "noise"
    folder.mkdir()
    for i in range(6):
        sf.write(folder / f"n{i}.wav", rng.normal(size=16384) * np.exp(-np.arange(16384) / 3000) * 0.3, 16000)
    return folder


@pytest.mark.slow
def test_mixture_training_changes_only_the_encoder_and_learns(clip_dir, noise_dir, tmp_path):
    """On 64 fixed training mixtures (tones + noise bursts) the decoded reconstruction
    error of the clean tone falls (0.093 -> 0.086 measured) while the decoder stays as it was."""
    from priorsep.training.encoder import MixtureEncoderTrainer

    base = VAETrainer(load_folder(clip_dir), tmp_path / "vae", channels=16, latent_dim=4, batch=8, seed=0)
    for _ in range(150):
        base.train_step()
    init = base.prior()
    trainer = MixtureEncoderTrainer(load_folder(clip_dir), tmp_path / "mix", init=init,
                                    interference=load_folder(noise_dir), batch=8, seed=0)
    clean = load_folder(clip_dir).clips
    mix, own = trainer.mixtures(64)
    assert torch.allclose(mix.abs().amax(-1), torch.ones(64))  # the search's level
    assert ((mix - own).abs().amax(-1) > 1e-3).float().mean() > 0.5  # most examples carry interference
    before = trainer.loss_terms(mix, own)["recon"].mean().item()
    for _ in range(150):
        trainer.train_step()
    after = trainer.loss_terms(mix, own)["recon"].mean().item()
    assert after < 0.95 * before, (before, after)
    trained = trainer.prior()
    for key, value in init.state_dict().items():
        same = torch.equal(value, trained.state_dict()[key])
        assert same == (not key.startswith("enc")), key  # the decoder is kept, the encoder moved
    from dataclasses import replace

    from priorsep.training.encoder import MIXTURE_RECIPES

    alone = MixtureEncoderTrainer(load_folder(clip_dir), tmp_path / "alone", init=init,
                                  interference=load_folder(noise_dir), seed=0,
                                  recipe=replace(MIXTURE_RECIPES["mixture"], alone_p=1.0))
    mix, own = alone.mixtures(8)
    assert torch.allclose(mix, own) and torch.allclose(own.abs().amax(-1), torch.ones(8))
    assert any(torch.allclose(own[0], c / c.abs().max()) for c in clean)


def test_train_command_mixture_recipe_records_its_start_and_interference(clip_dir, noise_dir, tmp_path, capsys):
    from priorsep import save_prior

    init = save_prior(SpecVAE(8, 4, name="sines"), tmp_path / "init.safetensors")
    out = tmp_path / "sines-mix.safetensors"
    args = ["train", str(clip_dir), "--recipe", "mixture", "--name", "sines", "--out", str(out), "--steps", "3",
            "--batch", "4"]
    assert main(args) == 2
    assert "--recipe mixture needs --init PRIOR" in capsys.readouterr().err
    assert main(args + ["--init", str(init), "--interference", str(noise_dir)]) == 0
    meta = load_prior(out).metadata
    assert meta["training"]["recipe"]["name"] == "mixture" and meta["training"]["init"]["name"] == "sines"
    assert meta["data"]["interference"]["clips"] == 6 and meta["data"]["clips"] == 12
    assert main(["train", str(clip_dir), "--name", "x", "--out", str(tmp_path / "x.safetensors"), "--steps", "1",
                 "--init", str(init)]) == 2
    assert "--init and --interference belong to --recipe mixture" in capsys.readouterr().err


def test_augmentation_is_seeded_and_keeps_what_it_must():
    """EQ keeps a pure tone's frequency and changes its level by the curve's gain; a room
    leaves the direct path at time 0 and adds a tail; both are reproducible from the seed."""
    from priorsep.training.augment import random_eq, random_reverb

    t = torch.arange(16384) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t).repeat(8, 1)
    eq = random_eq(tone, torch.Generator().manual_seed(3), p=1.0)
    assert torch.equal(eq, random_eq(tone, torch.Generator().manual_seed(3), p=1.0))
    spectrum = torch.fft.rfft(eq[:, 2000:14000]).abs()
    assert (spectrum.argmax(dim=1) - round(1000 * 12000 / 16000)).abs().max() <= 1  # still 1 kHz
    gain_db = 20 * torch.log10(eq[:, 4000:12000].std(dim=1) / tone[:, 4000:12000].std(dim=1))
    assert gain_db.abs().max() < 8 * 3 + 6 and gain_db.std() > 0.5  # a different gain per row, bounded
    impulse = torch.zeros(4, 16384)
    impulse[:, 0] = 1.0
    wet = random_reverb(impulse, torch.Generator().manual_seed(0), p=1.0)
    assert torch.allclose(wet[:, 0], torch.ones(4))
    assert (wet[:, 40:8000].square().sum(dim=1) > 10 ** (-12.5 / 10)).all()  # the tail (DRR at most 12 dB)
    assert torch.equal(random_reverb(impulse, torch.Generator().manual_seed(0), p=0.0), impulse)


def test_mixture_aug_recipe_records_reverberant_targets(clip_dir, noise_dir, tmp_path):
    """``mixture-aug``: the clean target is the own clip as recorded (EQ and room), at
    peak 1, so it is no longer one of the dry clips; ``mixture`` draws as before."""
    from priorsep.training.encoder import MixtureEncoderTrainer

    init = SpecVAE(8, 4, name="sines")
    dry = load_folder(clip_dir).clips
    dry = dry / dry.abs().amax(-1, keepdim=True)
    runs = {}
    for recipe in ("mixture", "mixture-aug"):
        trainer = MixtureEncoderTrainer(load_folder(clip_dir), tmp_path / recipe, init=init,
                                        interference=load_folder(noise_dir), batch=4, seed=0, recipe=recipe)
        runs[recipe] = trainer.mixtures(16)
    _, own = runs["mixture"]
    assert all(any(torch.allclose(o, c) for c in dry) for o in own)
    _, own = runs["mixture-aug"]
    assert torch.allclose(own.abs().amax(-1), torch.ones(16))
    unchanged = sum(any(torch.allclose(o, c, atol=1e-5) for c in dry) for o in own)
    assert 0 < unchanged < 12, unchanged  # about a quarter are drawn neither EQ nor room


def test_wavegan_recon_recipe_learns_its_clips_and_exports_a_plain_wavegan(clip_dir, tmp_path, capsys):
    """``--family wavegan --recipe recon``: 40 steps lower the multi-resolution STFT loss of
    reconstructing fixed clips (5.8 -> 4.7 measured at d=4 on drums); the file is a plain
    ``wavegan`` prior (no encoder) that the paper preset searches."""
    from priorsep import Separator, WaveGANPrior
    from priorsep.priors import TonePrior
    from priorsep.training.recon import WaveGANReconTrainer

    clips = load_folder(clip_dir)
    trainer = WaveGANReconTrainer(clips, tmp_path / "run", d=4, seed=0)
    x, noise = clips.clips[:8], torch.zeros(8, 100)
    before = trainer.loss_terms(x, noise)["loss"].item()
    for _ in range(40):
        trainer.train_step()
    after = trainer.loss_terms(x, noise)["loss"].item()
    assert after < 0.9 * before, (before, after)
    out = tmp_path / "r.safetensors"
    assert main(["train", str(clip_dir), "--family", "wavegan", "--recipe", "recon", "--d", "4", "--name", "tones",
                 "--out", str(out), "--steps", "2"]) == 0
    prior = load_prior(out)
    assert type(prior) is WaveGANPrior and prior.metadata["training"]["recipe"]["name"] == "recon"
    assert not hasattr(prior, "encode")
    # beside another prior: the same prior twice from one start would only halve the mixture (refused)
    result = Separator([prior, TonePrior()], "paper", steps=2).separate(clips.clips[0] + clips.clips[1])
    assert result.settings["objective"] == "paper" and result.masked.shape == (2, 16384)
