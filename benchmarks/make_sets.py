"""Make the compact benchmark set committed in ``benchmarks/sets/`` from a full build.

From a dataset built by ``priorsep data build all --out DATA``:

* ``clips/<class>/test/``: ``--test`` clips per class, a seeded random subset of the test
  split (whole voices, kits and chorales the training split never saw), copied byte for
  byte (16-bit FLAC);
* ``clips/<class>/train/``: ``--train`` clips per class from the training split, for the
  methods that learn from the class's own clips (``nmf-dict``, ``template``) when the
  full training data is not at hand;
* ``clips/<class>/clips.json``: each copied clip's manifest entry (source, seeds,
  parameters) and the class's licence and package versions;
* ``<classes>-<gains>.json``: mixture manifests (:mod:`priorsep.data.mixtures`) of 100
  mixtures for digits+drums, digits+piano, drums+piano and digits+drums+piano, with
  ``paper`` and with ``random`` gains, drawn from ``clips/`` (seed 0);
* the first digits+drums ``paper`` mixture and its true sources as WAVs in
  ``src/priorsep/examples/digits_drums/`` (the README's main command).

Usage (from the repository root):
    .venv/bin/python benchmarks/make_sets.py --data DATA
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from priorsep.audio import write_audio
from priorsep.data.mixtures import load_mixture_set, make_mixture_set, write_manifest

CLASSES = ("digits", "drums", "piano")
COMBOS = (("digits", "drums"), ("digits", "piano"), ("drums", "piano"), ("digits", "drums", "piano"))
REPO = Path(__file__).resolve().parents[1]


def copy_subset(data: Path, out: Path, cls: str, split: str, n: int, seed: int) -> list[dict]:
    """Copy a seeded random ``n`` of ``data/cls/split`` into ``out/cls/split``; returns
    their manifest entries."""
    manifest = json.loads((data / cls / "manifest.json").read_text())
    entries = sorted((c for c in manifest["clips"] if c["split"] == split), key=lambda c: c["path"])
    rng = np.random.default_rng([seed, CLASSES.index(cls), 0 if split == "test" else 1])
    chosen = sorted(rng.choice(len(entries), size=min(n, len(entries)), replace=False).tolist())
    (out / cls / split).mkdir(parents=True, exist_ok=True)
    picked = []
    for i in chosen:
        entry = entries[i]
        shutil.copyfile(data / cls / entry["path"], out / cls / entry["path"])
        picked.append(entry)
    return picked


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a full build: DATA/<class>/{train,test}/ and manifest.json")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "sets"))
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--train", type=int, default=64)
    ap.add_argument("--n", type=int, default=100, help="mixtures per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--example", default=str(REPO / "src" / "priorsep" / "examples" / "digits_drums"))
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    clips = out / "clips"
    if clips.exists():
        shutil.rmtree(clips)
    for cls in CLASSES:
        manifest = json.loads((data / cls / "manifest.json").read_text())
        kept = ("class", "format", "build", "sources", "packages", "licence")
        record = {k: manifest[k] for k in kept if k in manifest}
        record["clips"] = {split: copy_subset(data, clips, cls, split, n, args.seed)
                           for split, n in (("test", args.test), ("train", args.train))}
        (clips / cls / "clips.json").write_text(json.dumps(record, indent=1) + "\n")
    command = "python benchmarks/make_sets.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for combo in COMBOS:
        for gains in ("paper", "random"):
            m = make_mixture_set(clips, combo, split="test", n=args.n, seed=args.seed, gains=gains)
            m["root"] = "clips"
            m["command"] = command
            write_manifest(m, out / f"{'+'.join(combo)}-{gains}.json")
    example = load_mixture_set(out / "digits+drums-paper.json", limit=1)
    folder = Path(args.example)
    folder.mkdir(parents=True, exist_ok=True)
    write_audio(folder / "mixture.wav", example.mixtures[0], 16000)
    for k, cls in enumerate(example.classes):
        write_audio(folder / f"{cls}.wav", example.sources[0, k], 16000)
    (folder / "example.json").write_text(json.dumps(
        {"set": "benchmarks/sets/digits+drums-paper.json", "mixture": example.ids[0],
         "sources": example.manifest["mixtures"][0]["sources"], "command": command}, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB) and {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
