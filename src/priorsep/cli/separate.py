"""``priorsep separate`` and ``priorsep demo``: parse, separate, write with
:func:`priorsep.separate.write_separation`, report."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

from .. import __version__
from ..launch import local_rank, rank, under_torchrun
from .common import (
    CliError,
    device_option,
    force_option,
    import_torch,
    metrics_table,
    positive_int,
    search_config,
    search_options,
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("separate", help="separate mixtures (files, folders, globs) with two or more priors")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="mixture files (any format soundfile reads; mono), folders (searched recursively for audio) "
                        "or quoted glob patterns")
    p.add_argument("--prior", action="append", default=[], metavar="NAME_OR_FILE",
                   help="a built-in prior name or a saved-prior file; once per source, in order. Score priors "
                        "(e.g. digits-score, drums-score) are separated by posterior sampling, not the latent "
                        "search: of the search options only --seed and --level apply, and the output is masked")
    p.add_argument("--classes", metavar="LIST",
                   help="instead of --prior: the classes in the mixture, comma-separated (digits, drums, piano), "
                        "separated with the bundled priors measured best for that set (benchmarks/RESULTS.md): "
                        "digits,drums the score priors, digits,piano the 1024-point score priors, any set with "
                        "drums and piano the default ones")
    p.add_argument("--out", required=True,
                   help="output folder. One input file: <k>_<name>.wav per prior and summary.json. Several (or "
                        "--filename): files named by --filename and index.json; the same command again resumes")
    p.add_argument("--filename", metavar="TEMPLATE",
                   help="output names for a corpus, relative to --out, with {track} (the input's path below the "
                        "inputs' common folder, without suffix), {k}, {source}, {ext} "
                        "(default {track}/{k}_{source}.{ext})")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="worker processes for a corpus, one torch thread each (--threads sets it); the results "
                        "equal one process's")
    p.add_argument("--output", choices=("masked", "generated", "both"), default="masked",
                   help="masked: mixture-consistent estimates (default); generated: the paper's generator "
                        "outputs; both: masked, plus <k>_<name>.generated.wav")
    p.add_argument("--channel", type=int, help="for a multichannel file, the 0-based channel to separate")
    p.add_argument("--downmix", action="store_true", help="for a multichannel file, average the channels")
    p.add_argument("--no-resample", action="store_true",
                   help="refuse a sample rate other than the priors' instead of resampling")
    p.add_argument("--plot", action="store_true", help="also write spectrograms.png")
    p.add_argument("--html", metavar="PAGE", help="also write a self-contained listening page: players and "
                                                  "spectrograms of every input and its estimates")
    force_option(p)
    device_option(p)
    search_options(p)
    p.set_defaults(func=run_separate)

    p = sub.add_parser("demo", help="separate a bundled example with the bundled priors, print metrics against its "
                                    "true sources, write WAVs and a PNG")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--example", default="digits_drums", choices=["digits_drums", "tone_burst"],
                   help="digits_drums: a spoken digit and a drum hit from the test splits (default); tone_burst: "
                        "sources drawn from the parametric priors")
    p.add_argument("--example-seed", type=int, default=6, help="tone_burst: which draw (default 6)")
    force_option(p)
    device_option(p)
    search_options(p)
    p.set_defaults(func=run_demo)


def run_separate(args: argparse.Namespace) -> int:
    from ..fsutil import StagedDir, check_input_path
    from ..priors.base import best_bundled, locate_prior

    # everything that can be refused without torch is refused first, at once
    if args.classes is not None:
        if args.prior:
            raise CliError("choose either --prior or --classes, not both")
        args.prior = best_bundled(c.strip() for c in args.classes.split(","))
    if len(args.prior) < 2:
        raise CliError(f"separation needs at least two priors (--prior NAME_OR_FILE, twice or more); "
                       f"got {len(args.prior)}")
    if args.channel is not None and args.downmix:
        raise CliError("choose either --channel or --downmix, not both")
    found = [locate_prior(prior) for prior in args.prior]
    corpus = len(args.inputs) > 1 or not Path(args.inputs[0]).is_file() or args.filename is not None \
        or args.jobs > 1 or under_torchrun()
    if corpus:
        return run_corpus(args)
    args.mixture = args.inputs[0]
    check_input_path(args.mixture)
    out = StagedDir(args.out, force=args.force, inputs=[args.mixture])  # a bad --out fails before the search
    if args.html:
        check_page(args.html, args.out, [args.mixture])
    config = search_config(args)
    audio = _read_checked(args, found)  # the file's own faults are refused before torch is imported
    torch = import_torch()

    from ..audio import restore_rate, to_rate
    from ..priors import load_prior
    from ..separate import make_separator, write_separation

    priors = [load_prior(p) for p in args.prior]
    separator = make_separator(priors, config, progress=True, device=args.device)  # checks rates, lengths, device
    check_output_form(separator, args.output)
    audio = to_rate(audio, separator.sample_rate, resample=not args.no_resample, what=str(args.mixture))
    if audio.note:
        print(f"priorsep: {args.mixture}: {audio.note}", file=sys.stderr)
    mixture = torch.from_numpy(audio.samples)
    result = separator.separate(mixture)
    if audio.input_rate != audio.sample_rate:  # the estimates go back to the file's rate
        for form in ("masked", "generated"):
            if getattr(result, form, None) is not None:
                setattr(result, form, torch.from_numpy(restore_rate(getattr(result, form).numpy(), audio)))
        mixture = torch.from_numpy(restore_rate(audio.samples, audio))
    summary = {"priorsep": __version__, "mixture": str(args.mixture), "input_note": audio.note,
               "sample_rate": audio.input_rate, "samples": int(mixture.shape[-1]),
               "windows": result.windows, "output": args.output, "priors": list(args.prior),
               "device": args.device}
    files = write_separation(out, result, mixture, audio.input_rate, [p.name for p in priors], output=args.output,
                             plot=args.plot, summary=summary)
    loss = f", final loss {float(result.losses['total']):.3f}" if "total" in result.losses else ""
    print(f"wrote {len(files) - 1} files and summary.json to {args.out} ({result.seconds:.1f} s{loss})")
    if args.html:
        from ..listening import write_page

        estimates = result.masked if args.output != "generated" else result.generated
        rows = [("input", [("mixture", mixture.numpy())]),
                ("estimates", [(p.name, estimates[k].numpy()) for k, p in enumerate(priors)])]
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        write_page(args.html, f"priorsep separate: {Path(args.mixture).name}", [(Path(args.mixture).stem, rows)],
                   rate=audio.input_rate)
        print(f"wrote the listening page {args.html}")
    return 0


def _read_checked(args: argparse.Namespace, found: list):
    """The input read at its own rate and checked (channels, NaN, silence, DC, truncation,
    length) without torch; the length against the shortest input the priors take, from
    their saved metadata (the separator checks it again)."""
    from ..audio import load_audio
    from ..constants import DEFAULT_MASK_STFT, LOSS_STFT, SAMPLE_RATE
    from ..errors import AudioError
    from ..priors.base import read_metadata

    audio = load_audio(args.mixture, channel=args.channel, downmix=args.downmix)
    meta = [read_metadata(w) if not isinstance(w, str) else {} for w in found]
    rate = next((m["sample_rate"] for m in meta if "sample_rate" in m), SAMPLE_RATE)
    n_ffts = [m.get("arch", {}).get("n_fft") for m in meta]
    # Separator.min_length's rule: one window of the masks' STFT, and of the losses' at least
    shortest = max(LOSS_STFT[0], max((n for n in n_ffts if n), default=DEFAULT_MASK_STFT[0]))
    have = audio.samples.shape[-1] * rate / audio.sample_rate
    if have < shortest:
        raise AudioError(f"{args.mixture}: has {audio.samples.shape[-1]} samples ({1000 * have / rate:.0f} ms); the "
                         f"priors need at least {shortest} ({1000 * shortest / rate:.0f} ms at {rate} Hz)")
    return audio


def check_page(page: str, out: str, inputs: list) -> None:
    """Refuse, before any work, an ``--html`` page that cannot be written, is inside
    ``--out``, is an input, or would replace a file that is not a priorsep page."""
    from ..fsutil import check_outside, check_writable

    path = Path(page)
    check_outside(path, inputs, flag="--html")
    if Path(out).resolve() in path.resolve().parents:
        raise CliError(f"--html {page}: inside --out {out}, which a later --force replaces whole; put the page "
                       "beside it")
    if path.is_dir():
        raise CliError(f"--html {page}: is a folder; name a file (page.html)")
    if path.exists():
        from ..listening import GENERATOR

        with open(path, "rb") as f:
            head = f.read(4096)
        if GENERATOR.encode() not in head:
            raise CliError(f"--html {page}: exists and is not a priorsep listening page; choose another name")
    check_writable(path)


def run_corpus(args: argparse.Namespace) -> int:
    """Several inputs (or a folder, a pattern, --filename, --jobs, torchrun): one index."""
    from ..fsutil import check_outside, check_writable
    from ..separate.corpus import DEFAULT_TEMPLATE, Job, check_outputs, check_template, find_inputs

    template = args.filename or DEFAULT_TEMPLATE
    check_template(template)
    check_outside(args.out, [i for i in args.inputs if Path(i).exists()])
    tracks = find_inputs(args.inputs, exclude=args.out)
    check_outside(args.out, [t.path for t in tracks])
    check_writable(args.out)
    if args.html:
        check_page(args.html, args.out, [*args.inputs, *(t.path for t in tracks)])
    config = search_config(args)
    import_torch()
    from ..separate.corpus import separate_corpus, worker_separator

    device = args.device
    if device == "cuda" and under_torchrun():  # one GPU per process
        device = f"cuda:{local_rank()}"
    job = Job(tuple(args.prior), config, args.out, template, args.output, args.channel, args.downmix,
              not args.no_resample, device, getattr(args, "threads", None))
    separator = worker_separator(job)  # checks the priors, rates, lengths and the device before any work
    check_output_form(separator, args.output)
    check_outputs(template, tracks, [p.name for p in separator.priors], args.output)
    settings = {"priors": list(args.prior), "filename": template, "output": args.output, "channel": args.channel,
                "downmix": args.downmix, "resample": not args.no_resample, "search": separator.settings()}
    index = separate_corpus(tracks, job, settings=settings, force=args.force, jobs=args.jobs,
                            say=lambda text: print(text, flush=True),
                            warn=lambda text: print(text, file=sys.stderr, flush=True))
    if rank() != 0:  # rank 0 writes the page and says what the run did
        return 0
    entries = index["tracks"]
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        write_corpus_page(args.html, index, Path(args.out), separator.sample_rate, job)
        print(f"wrote the listening page {args.html}")
    failed = [e for e in entries if e["status"] != "ok"]
    skipped = sum(1 for e in entries if e.get("skipped"))
    print(f"{len(entries) - len(failed)} of {len(entries)} tracks separated into {args.out}"
          + (f" ({skipped} already done)" if skipped else "") + (f"; {len(failed)} failed" if failed else "")
          + "; index.json lists them")
    return 1 if failed else 0


def check_output_form(separator, output: str) -> None:
    """Refuse ``--output`` forms the separator does not give (score priors: masked only)."""
    wanted = {"both": ("masked", "generated")}.get(output, (output,))
    missing = [form for form in wanted if form not in separator.forms]
    if missing:
        raise CliError(f"--output {output}: these priors give {', '.join(separator.forms)} estimates only "
                       "(score priors sample magnitudes, not waveforms); use --output masked")


def write_corpus_page(page: str, index: dict, out, rate: int, job) -> None:
    """The listening page of a corpus run: per track that is ``ok``, its input and the
    estimates it wrote (read back from ``out``), all at the priors' ``rate``."""
    from ..audio import read_audio
    from ..listening import write_page

    sections = []
    for entry in index["tracks"]:
        if entry["status"] != "ok":
            continue
        mixture = read_audio(entry["input"], rate, channel=job.channel, downmix=job.downmix).samples
        estimates = [(rel, read_audio(out / rel, rate, allow_silent=True).samples) for rel in entry["outputs"]]
        sections.append((entry["track"], [("input", [("mixture", mixture)]), ("estimates", estimates)]))
    write_page(page, f"priorsep separate: {len(sections)} tracks", sections, rate=rate)


def _demo_classes(classes: list[str], mixture, sources, args: argparse.Namespace) -> dict:
    """Separate the example again with what ``--classes`` loads for its classes, print the
    metrics beside the plain priors', and return them for ``summary.json``."""
    from ..metrics import evaluate
    from ..priors import load_prior
    from ..priors.base import best_bundled
    from ..separate import make_separator

    chosen = best_bundled(classes)
    if chosen == list(classes):
        return {"priors": chosen}
    separator = make_separator([load_prior(n) for n in chosen], seed=args.seed, device=args.device)
    metrics = evaluate(sources, separator.separate(mixture).masked)
    print(f"\n--classes {','.join(classes)} loads {' + '.join(chosen)} ({separator.settings().get('method')}), the "
          "better median over the benchmark sets, though not on every mixture (benchmarks/RESULTS.md):\n"
          f"{metrics_table(classes, metrics)}")
    return {"priors": chosen, "metrics": dict(zip(classes, metrics))}


def run_demo(args: argparse.Namespace) -> int:
    from ..fsutil import StagedDir

    out = StagedDir(args.out, force=args.force)  # a non-empty --out is refused before anything is computed
    torch = import_torch()

    from ..data import builtin_example
    from ..data.examples import load_example
    from ..metrics import evaluate
    from ..priors import load_prior
    from ..separate import Separator, write_separation

    if args.example == "tone_burst":
        priors, mixture, sources = builtin_example(args.example_seed)
        what = f"a tone and a noise burst drawn from the built-in priors (seed {args.example_seed})"
    else:
        classes, mixture, sources, _rate = load_example(args.example)
        priors = [load_prior(c) for c in classes]
        what = f"the bundled {' + '.join(classes)} example (held-out test clips) with the bundled priors"
    separator = Separator(priors, search_config(args), progress=sys.stderr.isatty(), device=args.device)
    print(f"{what}: {mixture.shape[-1]} samples at {separator.sample_rate} Hz; {separator.objective_name} "
          f"objective, {separator.config.start} start, {separator.config.steps} search steps", flush=True)
    result = separator.separate(mixture)
    names = [p.name for p in priors]
    report = {}
    for form in ("masked", "generated"):
        metrics = evaluate(sources, getattr(result, form))
        report[form] = dict(zip(names, metrics))
        label = "mixture-consistent (masked) estimates, the default output" if form == "masked" else \
            "generated sources (the paper's output form)"
        print(f"\n{label}:\n{metrics_table(names, metrics)}")
    summary = {"priorsep": __version__, "example": args.example, "preset": args.preset, "metrics": report,
               "python": platform.python_version(), "torch": torch.__version__}
    if args.example != "tone_burst":
        summary["classes"] = _demo_classes(classes, mixture, sources, args)
    write_separation(out, result, mixture, separator.sample_rate, names, output="both", plot=True, sources=sources,
                     summary=summary)
    print(f"\nsearch took {result.seconds:.1f} s; wrote WAVs, spectrograms.png and summary.json to {args.out}")
    return 0
