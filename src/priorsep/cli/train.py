"""``priorsep train``: train a prior on a folder of clips (:func:`priorsep.training.train_prior`)."""

from __future__ import annotations

import argparse
import sys

from .common import CliError, positive_int


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a prior (the bundled kind, specvae, by default) on a folder of "
                                     "isolated clips of one class")
    p.add_argument("data", help="folder of audio clips or recordings, any layout, any rate")
    p.add_argument("--name", required=True, help="the source class, e.g. digits (names the output files)")
    p.add_argument("--out", required=True, help="the saved prior to write (.safetensors)")
    p.add_argument("--d", "--model-size", dest="d", type=positive_int, default=64,
                   help="model size (paper: 64); under torchrun write --model-size, since torchrun "
                        "reads --d as an ambiguous abbreviation of its own options")
    p.add_argument("--family", choices=("specvae", "wavegan", "score"), default="specvae",
                   help="specvae: a clip-level VAE on log-magnitude spectrograms with an encoder, trained by "
                        "reconstruction, the family of the bundled priors (default); wavegan: the paper's waveform "
                        "GAN (needs a GPU to learn its class); score: a diffusion (score) model on log-magnitude "
                        "spectrograms, separated by posterior sampling (priorsep separate with score priors)")
    p.add_argument("--recipe", choices=("paper", "fast", "recon", "vae", "mixture", "mixture-aug", "dsm"),
                   help="wavegan: paper (WGAN-GP, 5 critic steps, batch 64), fast (non-saturating + lazy R1, "
                        "batch 16, the default) or recon (the generator as an autoencoder's decoder, a "
                        "multi-resolution STFT loss: learns its class on a CPU); "
                        "specvae: vae (reconstruction, the default) or mixture (an --init prior's encoder "
                        "trained to find its class in mixtures with --interference clips; "
                        "mixture-aug: the same with random EQ and rooms on every clip); "
                        "score: dsm (denoising score matching, the default)")
    p.add_argument("--upsample", choices=("transpose", "nearest"), default="transpose",
                   help="wavegan generator: transposed convolutions (paper) or nearest-neighbour upsampling "
                        "plus convolution (no checkerboard artefacts)")
    p.add_argument("--channels", type=positive_int, default=160, help="specvae: hidden width (default 160)")
    p.add_argument("--latent-dim", type=positive_int, default=64, help="specvae: latent size (default 64)")
    p.add_argument("--widths", type=_widths, metavar="W1,W2,W3,W4",
                   help="score: the U-Net's channels at its four resolutions (default 32,64,96,128)")
    p.add_argument("--n-fft", type=positive_int, help="score: STFT size of its images (default 512; 1024: 16 Hz "
                                                      "bins, about twice the compute a step)")
    p.add_argument("--hop", type=positive_int, help="score: STFT hop of its images (default 256)")
    p.add_argument("--batch", type=positive_int, help="override the recipe's batch size")
    p.add_argument("--init", metavar="PRIOR",
                   help="--recipe mixture: the specvae prior (name or file) whose encoder is trained on mixtures; "
                        "its decoder is kept. --family score: the score prior to go on training (e.g. piano-score; "
                        "its weights, a fresh optimiser)")
    p.add_argument("--interference", action="append", metavar="FOLDER",
                   help="--recipe mixture: other classes' clips mixed into each example (repeatable)")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=positive_int, help="train until this many generator steps in all")
    length.add_argument("--minutes", type=float, help="train for this many minutes of wall time")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--run-dir", help="checkpoints, samples and log.csv (default: OUT.run)")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0, help="checkpoint interval (default 10)")
    p.add_argument("--keep", type=positive_int, default=3, help="checkpoints to keep (default 3)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (slow on CPUs without bf16 units)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 4 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"want four positive channel counts, e.g. 32,64,96,128; got {text!r}")
    return widths


def run(args: argparse.Namespace) -> int:
    from ..training import train_prior

    score = {k: v for k, v in (("widths", args.widths), ("n_fft", args.n_fft), ("hop", args.hop)) if v is not None}
    if score and args.family != "score":
        raise CliError("--widths, --n-fft and --hop belong to --family score")
    if score and args.init:
        raise CliError("--init keeps the init prior's --widths, --n-fft and --hop; leave them out")
    model = {"wavegan": {"d": args.d, "upsample": args.upsample}, "score": score,
             "specvae": {"channels": args.channels, "latent_dim": args.latent_dim}}[args.family]
    trainer = train_prior(args.data, args.out, name=args.name, family=args.family, recipe=args.recipe,
                          steps=args.steps, minutes=args.minutes, run_dir=args.run_dir, resume=args.resume,
                          checkpoint_minutes=args.checkpoint_minutes, keep=args.keep, device=args.device,
                          bf16=args.bf16, seed=args.seed, batch=args.batch, model=model, command=args.command_line,
                          progress=sys.stderr.isatty(), init=args.init, interference=args.interference,
                          say=lambda text: print(text, file=sys.stderr))
    if trainer.rank == 0:
        size = {"wavegan": f"d={args.d}, {trainer.recipe.name} recipe",
                "specvae": f"specvae C={args.channels} D={args.latent_dim}"}.get(args.family) or \
            f"score widths={','.join(map(str, trainer.widths))} STFT {trainer.n_fft}/{trainer.hop}, dsm recipe"
        print(f"wrote {args.out} ({trainer.name}, {size}, step {trainer.step}, {trainer.seconds / 60:.1f} min); "
              f"checkpoints and samples in {trainer.run_dir}")
    return 0
