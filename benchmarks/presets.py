"""Time and quality of the search presets, in one run (issue 14, item 8).

For the first ``--n`` mixtures of each set, every *run* separates the same mixture one
after the other (interleaved, so that a change of machine load hits every run alike), on
one torch thread. A run is a label, a set of priors and a preset:

* ``--run LABEL=PRESET`` uses the bundled priors (or ``--prior CLASS=FILE``);
* ``--run LABEL=PRESET@TAG`` uses the priors given as ``--prior TAG:CLASS=FILE`` (for
  example the priors of an earlier commit, to compare "today's default" with a new one);
* a preset may carry overrides of its :class:`~priorsep.SearchConfig` fields,
  ``PRESET,FIELD=VALUE,...`` (integers or floats), e.g. ``best,steps=0`` (the encoders'
  guess alone) or ``best,restarts=1``.

The table gives, per run, the median wall time of ``Separator.separate`` on the
two-source mixtures (one window each) and the median SI-SDR of the masked output per set
and class, in dB. Writes/replaces the section between ``<!-- presets:start -->`` and
``<!-- presets:end -->`` in ``--out`` (default benchmarks/README.md) and prints it.

    .venv/bin/python benchmarks/presets.py --n 8 --run default=best --run fast=fast
    .venv/bin/python benchmarks/presets.py --n 8 --run before=best@old --run default=best \\
        --prior old:digits=old/digits.safetensors --prior old:drums=old/drums.safetensors ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from priorsep import PRESETS, Separator, load_prior
from priorsep.data import load_mixture_set
from priorsep.metrics import si_sdr

from _report import publish, table_section  # benchmarks/_report.py

START = "<!-- presets:start -->"
END = "<!-- presets:end -->"
SETS = Path(__file__).parent / "sets"
DEFAULT_SETS = ["digits+drums-paper", "digits+piano-paper", "drums+piano-paper", "digits+drums+piano-paper",
                "shifted-digits+drums", "shifted-digits+piano", "shifted-drums+piano", "shifted-digits+drums+piano"]


def parse_prior(text: str) -> tuple[str, str, str]:
    """``[TAG:]CLASS=FILE`` -> (tag, class, file); the untagged priors have tag ``""``."""
    key, _, path = text.partition("=")
    tag, _, cls = key.rpartition(":")
    if not cls or not path:
        raise argparse.ArgumentTypeError(f"--prior wants [TAG:]CLASS=FILE; got {text!r}")
    return tag, cls, path


def parse_run(text: str) -> tuple[str, str, str]:
    """``LABEL=PRESET[@TAG]`` -> (label, preset, tag)."""
    label, _, rest = text.partition("=")
    preset, _, tag = rest.partition("@")
    if not label or not preset:
        raise argparse.ArgumentTypeError(f"--run wants LABEL=PRESET[@TAG]; got {text!r}")
    return label, preset, tag


def search_config(preset: str):
    """``NAME[,FIELD=VALUE...]`` -> the preset's SearchConfig with those fields replaced."""
    from dataclasses import replace

    name, *pairs = preset.split(",")
    if name not in PRESETS:
        raise SystemExit(f"presets: no preset {name!r}; there are {', '.join(PRESETS)}")
    changes = {}
    for pair in pairs:
        field, _, value = pair.partition("=")
        changes[field] = float(value) if "." in value or "e" in value else int(value)
    return replace(PRESETS[name], **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--run", type=parse_run, action="append", required=True)
    parser.add_argument("--prior", type=parse_prior, action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("README.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = {(tag, cls): path for tag, cls, path in args.prior}
    loaded: dict[tuple[str, str], object] = {}

    def prior(tag: str, cls: str):
        if (tag, cls) not in loaded:
            if tag and (tag, cls) not in files:
                raise SystemExit(f"presets: run tag {tag!r} has no --prior {tag}:{cls}=FILE")
            loaded[tag, cls] = load_prior(files.get((tag, cls), cls))
        return loaded[tag, cls]

    scores: dict[str, dict[tuple[str, str], list[float]]] = {label: {} for label, _, _ in args.run}
    seconds: dict[str, list[float]] = {label: [] for label, _, _ in args.run}
    for name in args.sets:
        mset = load_mixture_set(SETS / f"{name}.json", limit=args.n)
        separators = {label: Separator([prior(tag, c) for c in mset.classes], search_config(preset))
                      for label, preset, tag in args.run}
        for i in range(mset.mixtures.shape[0]):
            for label, sep in separators.items():
                t0 = time.perf_counter()
                est = sep.separate(mset.mixtures[i]).masked
                if len(mset.classes) == 2:
                    seconds[label].append(time.perf_counter() - t0)
                for k, cls in enumerate(mset.classes):
                    scores[label].setdefault((name, cls), []).append(
                        si_sdr(mset.sources[i, k].numpy(), est[k].numpy()))
        print(f"  {name}: " + "; ".join(
            f"{label} " + " ".join(f"{np.median(v):.1f}" for (s, _), v in scores[label].items() if s == name)
            for label in scores), flush=True)
    cols = list(scores[args.run[0][0]])
    what = (f"One torch thread. First {args.n} mixtures of each set, runs interleaved mixture by mixture; time: "
            "median wall time of one two-source, one-window mixture; SI-SDR: median of the masked output (dB).")
    rows = [[label, preset, tag or "bundled", f"{np.median(seconds[label]):.2f}",
             *(f"{np.median(scores[label][c]):.1f}" for c in cols)] for label, preset, tag in args.run]
    lines = table_section("Presets: time and quality in one run", what,
                          ["run", "preset", "priors", "s / mixture", *(f"{s} {c}" for s, c in cols)], rows, left=3)
    publish(args.out, lines, START, END)


if __name__ == "__main__":
    main()
