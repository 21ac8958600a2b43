"""Write the model card of a trained prior: ``<out>.md`` and a 16-sample spectrogram grid ``<out>.png``.

The card states the family, size, data, recipe, steps, wall time and the exact training
command (all from the prior file's metadata), and the prior-report figures on the test
splits, read from the ``report.json`` that ``priorsep prior-report`` wrote.

Usage (from the repository root):
    .venv/bin/priorsep prior-report digits.safetensors --data DATA/digits/test \\
        --other DATA/drums/test --other DATA/piano/test --out /tmp/digits-report
    .venv/bin/python scripts/model_card.py digits.safetensors --report /tmp/digits-report/report.json \\
        --out src/priorsep/priors/bundled/digits
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from priorsep.plots import spectrogram_grid
from priorsep.priors import load_prior


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prior", help="the saved prior")
    ap.add_argument("--report", help="report.json of `priorsep prior-report` on the test splits (priors the "
                                     "search uses; a score prior has none: give its measurements in --note)")
    ap.add_argument("--out", required=True, help="card path without suffix (writes .md and .png)")
    ap.add_argument("--note", default="", help="a paragraph to add (what it is good and bad at)")
    args = ap.parse_args(argv)

    prior = load_prior(args.prior)
    meta = prior.metadata
    t, arch, data = meta["training"], meta["arch"], meta["data"]
    report = json.loads(Path(args.report).read_text()) if args.report else None
    out = Path(args.out)

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(16, prior.latent_dim, generator=gen)
    if getattr(prior, "latent_bound", 1.0) is not None:
        z = torch.rand(16, prior.latent_dim, generator=gen) * 2 - 1
    with torch.no_grad():
        samples = prior.generate(z).float()
    spectrogram_grid([(f"sample {i}", x) for i, x in enumerate(samples)], prior.sample_rate, out.with_suffix(".png"),
                     cols=4, title=f"{prior.name}: 16 samples (seed 0)", dpi=40)

    size = sum(v.numel() for v in prior.state_dict().values())
    lines = [
        f"# Model card: `{out.name}` ({prior.name})", "",
        f"- **Family:** {arch['family']} ({', '.join(f'{k}={v}' for k, v in arch.items() if k != 'family')}), "
        f"{size:,} parameters, {prior.length} samples at {prior.sample_rate} Hz, latent size {prior.latent_dim}.",
        f"- **Data:** {data.get('clips')} clips of `{Path(str(data.get('folder'))).parent.name}/"
        f"{Path(str(data.get('folder'))).name}` (built by `priorsep data build`; content hash "
        f"`{data.get('content_hash', '')[:16]}`).",
        f"- **Recipe:** {json.dumps(t.get('recipe'))}; seed {t.get('seed')}; bf16 {t.get('bf16')}.",
        f"- **Training:** {t.get('steps')} steps, {float(t.get('seconds', 0)) / 60:.1f} min wall time on one thread "
        "of a 2-core CPU.",
        f"- **Command:** `{t.get('command')}`",
    ]
    init = t.get("init")
    if init:
        it = init.get("training") or {}
        earlier = (f"`{init.get('name')}` ({(it.get('recipe') or {}).get('name')} recipe, {it.get('steps')} steps, "
                   f"{float(it.get('seconds', 0)) / 60:.1f} min; `{it.get('command')}`)")
        if t.get("family") == "score":  # trained on from a score prior's weights: every weight trained
            lines.append(f"- **Started from:** the weights of the prior {earlier}, with a fresh optimiser; "
                         f"{int(it.get('steps') or 0) + int(t.get('steps') or 0):,} steps in all.")
        else:  # an encoder trained on mixtures: the decoder is the init prior's, kept as it was
            interference = data.get("interference") or {}
            lines += [
                f"- **Decoder:** kept frozen from the prior {earlier}; only the encoder was trained here.",
                f"- **Interference:** {interference.get('clips')} clips of `{interference.get('folder')}`.",
            ]
    if report is None:
        lines += ["", "## Separation", "",
                  "A score prior is not searched, so `priorsep prior-report` does not apply; what it does in "
                  "separation (posterior sampling, `priorsep.separate.posterior`) is measured below.", ""]
    else:
        lines += [
            "",
            "## Prior report on the test splits", "",
            f"`priorsep prior-report` with `{report['settings']}`: held-out clips projected onto the prior "
            "alone (median, dB). `start`: the search's starting point (the encoder's guess, or z = 0 for a "
            "prior without an encoder); `other clip`: "
            "another clip of the set used as the fit. For a magnitude prior the fit carries the clip's own "
            "phase, so its SI-SDR measures the magnitude fit; compare families by spectral SNR.", "",
            "| clips | estimate | spectral SNR | SI-SDR |", "|---|---|---:|---:|",
        ]
        def shown(label: str) -> str:  # the clips' folder, as class/split
            folder = report["sets"][label]["folder"]
            return "/".join(Path(folder).parts[-2:]) + (" (own class)" if label == next(iter(report["sets"])) else "")

        for label, info in report["sets"].items():
            for row, med in info["median"].items():
                lines.append(f"| {shown(label)} | {row} | {med['spectral_snr']:.2f} | {med['si_sdr']:.2f} |")
        lines += ["", "Own class minus each other class, projection spectral SNR: " + ", ".join(
            f"{shown(label)}: {m['spectral_snr']:+.2f} dB" for label, m in report["own_minus_other"].items()) + ".", ""]
    if args.note:
        lines += [args.note, ""]
    cmd_args = list(sys.argv[1:] if argv is None else argv)
    if "--note" in cmd_args:  # the note is the paragraph above; keep the command short
        cmd_args[cmd_args.index("--note") + 1] = "PARAGRAPH"
    command = shlex.join(["python", "scripts/model_card.py", *cmd_args])
    where = "; PARAGRAPH: the one above" if args.note else ""
    lines += [f"This card and its figure: `{command}` (16 samples, seed 0{where}).", "",
              f"![16 samples]({out.with_suffix('.png').name})", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
