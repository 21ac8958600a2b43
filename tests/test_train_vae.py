import numpy as np
import pytest
import torch

from priorsep import load_prior
from priorsep.cli import main
from priorsep.data.folder import load_folder
from priorsep.priors.specvae import SpecVAE, log_magnitude
from priorsep.train_vae import VAETrainer
from test_train import clip_dir  # noqa: F401  (the shared fixture: decaying sines)


def test_loss_terms_match_a_hand_computation(clip_dir, tmp_path):
    trainer = VAETrainer(load_folder(clip_dir), tmp_path / "run", channels=4, latent_dim=3, seed=0)
    x = trainer.features[:2]
    noise = torch.zeros(2, 3)
    terms = trainer.loss_terms(x, noise)
    mean, logvar = trainer.model.posterior(x)
    x_hat = trainer.model.decode(mean)  # zero noise: z is the posterior mean
    cells = 513 * 65
    recon = ((x_hat - x) ** 2).sum(dim=(1, 2)) / (2 * 0.3 ** 2) / cells
    kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(1) / cells
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["loss"], recon + kl)
    assert terms["loss"].shape == (2,)


def test_training_lowers_the_reconstruction_error(clip_dir, tmp_path):
    trainer = VAETrainer(load_folder(clip_dir), tmp_path / "run", channels=16, latent_dim=4, batch=8, seed=0)
    losses = [trainer.train_step()["recon"] for _ in range(60)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


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
