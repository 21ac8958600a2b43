"""The benchmark: every method on the same mixture sets, one table.

A *set* is a mixture manifest (:mod:`priorsep.data.mixtures`); the committed sets live in
``benchmarks/sets/``. Every method separates every mixture of every set (or the first
``limit``; slow methods the first ``slow_limit``), each estimate is scored with
:func:`priorsep.metrics.evaluate` (unordered methods after the best permutation), and the
results are written as a markdown table, a CSV and one spectrogram figure.

Results are cached per method and mixture (JSON, under a key that hashes the method's
settings and its code version), so an interrupted run resumes where it stopped and a re-run
only computes what changed. The key cannot see code: whoever changes what a method
computes bumps its ``version`` (:class:`Method`), which retires its cached results.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from . import __version__
from .constants import SAMPLE_RATE
from .data.mixtures import MixtureSet, load_mixture_set
from .fsutil import write_text
from .metrics import METRIC_KEYS, aggregate, best_permutation, evaluate
from .priors.base import steps_and_time

#: where the committed sets are, in a source checkout
DEFAULT_SETS = Path(__file__).resolve().parents[2] / "benchmarks" / "sets"


@dataclass
class Method:
    """One row group of the table.

    Attributes:
        name: the row label; a method with several output forms gives rows ``name-form``.
        run: ``(mixture [T], sources [K, T], classes) -> {form: estimates [K, T]}``.
        forms: the forms ``run`` returns (``[""]`` for one unnamed form).
        unordered: estimates come in no particular order (scored with the best permutation).
        slow: limited to the first ``slow_limit`` mixtures of each set.
        settings: what the cache key hashes (anything that changes the estimates).
        fit: called once per set with its classes before the set's first mixture.
        version: the method's code version, hashed into the cache key; bump it when a
            change to the code changes the estimates.
    """

    name: str
    run: Callable[[Tensor, Tensor, Sequence[str]], dict[str, Tensor]]
    forms: Sequence[str] = ("",)
    unordered: bool = False
    slow: bool = False
    settings: dict = field(default_factory=dict)
    fit: Callable[[Sequence[str]], None] | None = None
    version: int = 1

    def rows(self) -> list[str]:
        return [self.name if not f else f"{self.name}-{f}" for f in self.forms]

    def key(self, classes: Sequence[str] | None = None) -> str:
        """The cache key: a hash of the name and settings. With ``classes``, per-class
        settings (``settings["priors"]``) count only for those classes, so a set's results
        do not depend on which other sets share the run."""
        settings = dict(self.settings)
        if classes is not None and isinstance(settings.get("priors"), dict):
            settings["priors"] = {c: v for c, v in settings["priors"].items() if c in classes}
        settings["code_version"] = self.version
        blob = json.dumps({"name": self.name, **settings}, sort_keys=True, default=str)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


# --- methods ----------------------------------------------------------------------------


def baseline_method(name: str, train: Callable[[str], Tensor] | None = None, **options) -> Method:
    """A :mod:`priorsep.baselines` method; ``train(cls)`` gives a class's training clips
    ``[N, T]`` for the methods that learn from them."""
    from . import baselines

    model = baselines.get(name, **options)
    fitted: dict[tuple[str, ...], object] = {}

    def fit(classes: Sequence[str]) -> None:
        if "train" in model.uses and tuple(classes) not in fitted:
            if train is None:
                raise ValueError(f"{name} learns from training clips: give the training data (--train)")
            fitted[tuple(classes)] = baselines.get(name, **options).fit({c: train(c) for c in classes})

    def run(mixture: Tensor, sources: Tensor, classes: Sequence[str]) -> dict[str, Tensor]:
        b = fitted.get(tuple(classes), model)
        return {"": b.separate(mixture, len(classes), sources if "sources" in b.uses else None)}

    settings = {"options": options, "train": getattr(train, "describe", None)}
    return Method(name, run, unordered=model.unordered, slow=name == "dap", settings=settings, fit=fit)


def priorsep_method(priors: Mapping[str, object], name: str = "priorsep", config: object = None,
                    device: str | None = None) -> Method:
    """priorsep's latent search with one prior per class; rows ``<name>-generated`` and
    ``<name>-masked`` (mixture-consistent, the default output). ``config`` is the search's
    :class:`~priorsep.separate.SearchConfig` (default: the ``best`` preset); a search with
    the paper objective or of 1000 steps or more counts as slow. ``device``: where the
    search runs (the results are cached under the same key on any device)."""
    from dataclasses import asdict

    from .separate import PRESETS, Separator

    config = PRESETS["best"] if config is None else config

    def run(mixture: Tensor, sources: Tensor, classes: Sequence[str]) -> dict[str, Tensor]:
        missing = [c for c in classes if c not in priors]
        if missing:
            raise ValueError(f"no prior for class(es) {missing}; give --prior CLASS=NAME_OR_FILE")
        result = Separator([priors[c] for c in classes], config, device=device).separate(mixture)
        return {"generated": result.generated, "masked": result.masked}

    described = {c: _describe_prior(p) for c, p in priors.items()}
    slow = config.objective == "paper" or config.steps >= 1000
    return Method(name, run, forms=("generated", "masked"), slow=slow,
                  settings={"priors": described, "options": asdict(config)})


def prior_oracle_method(priors: Mapping[str, object], config: object = None, device: str | None = None) -> Method:
    """``prior-oracle``, a reference that knows the true sources: each source is projected
    alone onto its own prior (the search with K = 1, ``config`` as priorsep's), and ratio
    masks from the K fits are applied to the mixture. It shows what the priors can
    represent, so that a table separates what is lost to the prior (oracle IRM minus
    prior-oracle) from what is lost to inference (prior-oracle minus priorsep)."""
    from dataclasses import asdict

    from . import spectral
    from .separate import PRESETS, Separator

    config = PRESETS["best"] if config is None else config

    def run(mixture: Tensor, sources: Tensor, classes: Sequence[str]) -> dict[str, Tensor]:
        fits = torch.stack([Separator([priors[c]], config, min_priors=1, device=device)
                            .separate(sources[k]).generated[0] for k, c in enumerate(classes)])  # [K, T]
        return {"": spectral.mask_mixture(mixture[None], fits[None])[0]}

    described = {c: _describe_prior(p) for c, p in priors.items()}
    return Method("prior-oracle", run, slow=True, settings={"priors": described, "options": asdict(config)})


def posterior_method(priors: Mapping[str, object], config: object = None) -> Method:
    """``priorsep-score``: posterior sampling with one score prior per class
    (:func:`priorsep.separate.posterior.separate_posterior`); row ``priorsep-score-masked``."""
    from dataclasses import asdict

    from .separate.posterior import PosteriorConfig, separate_posterior

    config = config or PosteriorConfig()

    def run(mixture: Tensor, sources: Tensor, classes: Sequence[str]) -> dict[str, Tensor]:
        return {"masked": separate_posterior(mixture, [priors[c] for c in classes], config).masked}

    described = {c: _describe_prior(p) for c, p in priors.items()}
    return Method("priorsep-score", run, forms=("masked",), slow=True,
                  settings={"priors": described, "options": asdict(config)})


def _describe_prior(prior) -> dict:
    meta = getattr(prior, "metadata", {}) or {}
    training = meta.get("training", {})
    weights = hashlib.sha256()
    if isinstance(prior, torch.nn.Module):
        for v in prior.state_dict().values():
            weights.update(v.detach().cpu().numpy().tobytes())
    return {"name": prior.name, "family": training.get("family", type(prior).__name__),
            "steps": training.get("steps"), "weights": weights.hexdigest()[:12]}


def prior_summary(prior) -> str:
    """One line on where a prior came from (family, size, recipe, steps, time, data)."""
    meta = getattr(prior, "metadata", {}) or {}
    t, data, arch = meta.get("training", {}), meta.get("data", {}), meta.get("arch", {})
    parts = [t.get("family", type(prior).__name__)]
    parts += [f"{k}={arch[k]}" for k in ("d", "upsample", "channels", "latent_dim", "n_fft") if k in arch]
    if t.get("recipe"):
        parts.append(f"{t['recipe'].get('name', '?')} recipe")
    parts += steps_and_time(t)
    if data.get("clips"):
        parts.append(f"{data['clips']} clips from {'/'.join(Path(str(data.get('folder', '?'))).parts[-2:])}/")
    return ", ".join(parts)


# --- running ----------------------------------------------------------------------------


@dataclass
class Cell:
    """The scores of one row (method form) on one set."""

    row: str
    set: str
    classes: list[str]
    unordered: bool
    metrics: list[list[dict[str, float]]] = field(default_factory=list)  # [mixture][class]
    seconds: list[float] = field(default_factory=list)


def run_benchmark(
    sets: Sequence[str | os.PathLike],
    methods: Sequence[Method],
    cache: str | os.PathLike,
    *,
    limit: int | None = None,
    slow_limit: int | None = 20,
    progress: bool = True,
    figure: str | os.PathLike | None = None,
) -> list[Cell]:
    """Run every method on every set; returns one :class:`Cell` per (row, set).

    Args:
        sets: mixture manifests.
        cache: folder for per-mixture results.
        limit: mixtures per set (default all); slow methods use ``min(limit, slow_limit)``.
        figure: write a spectrogram grid of the first set's first mixture here.
    """
    cache = Path(cache)
    loaded: dict[str, MixtureSet] = {Path(s).stem: load_mixture_set(s, limit=limit) for s in sets}
    work = sum(min(len(m.ids), slow_limit or len(m.ids)) if meth.slow else len(m.ids)
               for m in loaded.values() for meth in methods)
    cells: list[Cell] = []
    panels: list[tuple[str, Tensor]] = []
    with tqdm(total=work, desc="benchmark", unit="mix", disable=not progress) as bar:
        for set_name, mset in loaded.items():
            n_set = len(mset.ids)
            if not panels:
                panels = [("mixture", mset.mixtures[0])] + [(f"true {c}", mset.sources[0, k])
                                                           for k, c in enumerate(mset.classes)]
            for meth in methods:
                n = min(n_set, slow_limit) if meth.slow and slow_limit else n_set
                rows = {r: Cell(r, set_name, mset.classes, meth.unordered) for r in meth.rows()}
                fitted = False
                for i in range(n):
                    bar.set_postfix_str(f"{set_name}: {meth.name}")
                    path = cache / set_name / meth.key(mset.classes) / f"{mset.ids[i]}.json"
                    if path.exists():
                        record = json.loads(path.read_text())
                    else:
                        if not fitted and meth.fit is not None:
                            meth.fit(mset.classes)
                            fitted = True
                        record = _run_one(meth, mset, i)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        write_text(path, json.dumps(record))
                    for row, cell in rows.items():
                        cell.metrics.append(record["metrics"][row])
                        cell.seconds.append(record["seconds"])
                    if i == 0 and set_name == next(iter(loaded)) and figure is not None:
                        for row in rows:
                            est = np.asarray(record["first_estimates"][row], dtype=np.float32) \
                                if "first_estimates" in record else None
                            if est is not None:
                                panels += [(f"{row}: {c}", torch.from_numpy(est[k]))
                                           for k, c in enumerate(mset.classes)]
                                panels.append(("", None))  # rows of K + 1: mixture and truth first
                    bar.update(1)
                cells.extend(rows.values())
    if figure is not None and panels:
        from .plots import spectrogram_grid

        spectrogram_grid(panels, SAMPLE_RATE, figure, cols=len(loaded[next(iter(loaded))].classes) + 1,
                         title=f"{next(iter(loaded))}, mixture 0: truth and estimates", dpi=45)
    return cells


def _run_one(meth: Method, mset: MixtureSet, i: int) -> dict:
    torch.manual_seed(0)
    start = time.perf_counter()
    outputs = meth.run(mset.mixtures[i], mset.sources[i], mset.classes)
    seconds = time.perf_counter() - start
    record: dict = {"seconds": seconds, "metrics": {}}
    truth = mset.sources[i].numpy()
    for form, est in outputs.items():
        row = meth.name if not form else f"{meth.name}-{form}"
        if tuple(est.shape) != truth.shape:
            raise ValueError(f"{row} returned estimates {tuple(est.shape)}; expected {truth.shape}")
        est = est.detach().float().numpy()
        if meth.unordered:
            est = best_permutation(truth, est)
        record["metrics"][row] = evaluate(truth, est)
        if i == 0:  # kept for the figure
            record.setdefault("first_estimates", {})[row] = est.round(5).tolist()
    return record


#: The metrics printed beside each estimate on the listening page (keys of :func:`evaluate`).
LISTENING_METRICS = ("si_sdr", "sdr", "sir")


def listening_sections(sets: Sequence[str | os.PathLike], methods: Sequence[Method], n: int) -> list:
    """Sections for :func:`priorsep.listening.page`, one per mixture.

    Args:
        sets: mixture manifests.
        methods: the methods to run again on the first ``n`` mixtures of each set.
        n: mixtures per set.

    Returns:
        Per mixture ``("<set>: <id>", rows)``: a ``mixture`` row, a ``true sources`` row, then one row
        per method form with its estimates (matched to the sources by the best permutation
        for unordered methods), each with its :data:`LISTENING_METRICS` against its true
        source, computed by :func:`priorsep.metrics.evaluate` as in the results table.
    """
    sections = []
    for s in sets:
        mset = load_mixture_set(s, limit=n)
        for meth in methods:
            if meth.fit is not None:
                meth.fit(mset.classes)
        for i, mid in enumerate(mset.ids):
            truth = mset.sources[i].numpy()
            rows = [("mixture", [("mixture", mset.mixtures[i].numpy())]),
                    ("true sources", [(c, truth[k]) for k, c in enumerate(mset.classes)])]
            for meth in methods:
                torch.manual_seed(0)
                for form, est in meth.run(mset.mixtures[i], mset.sources[i], mset.classes).items():
                    est = est.detach().float().numpy()
                    if meth.unordered:
                        est = best_permutation(truth, est)
                    scores = evaluate(truth, est)
                    row = meth.name if not form else f"{meth.name}-{form}"
                    rows.append((row, [(c, est[k], {m: scores[k][m] for m in LISTENING_METRICS})
                                       for k, c in enumerate(mset.classes)]))
            sections.append((f"{Path(s).stem}: {mid}", rows))
    return sections


# --- planning a run, and running it in parallel --------------------------------------


@dataclass
class BenchmarkSpec:
    """Everything a benchmark run is made of, as plain data (picklable, so that worker
    processes rebuild exactly the same methods).

    Attributes:
        sets_dir: folder of mixture manifests (``*.json``).
        only_sets: set names (file stems) to run, or ``None`` for all.
        methods: method names, or ``["all"]``.
        train_root: dataset folder with ``<class>/train/`` clips for the methods that learn
            from clips (default: ``sets_dir / "clips"``).
        train_clips: training clips per class.
        priors: ``{class: name or file}`` for ``priorsep`` (default: the bundled prior named
            like the class).
        paper_priors: the same for ``priorsep-paper`` (default: the bundled ``<class>-wavegan``).
        recon_priors: the same for ``priorsep-paper-recon``, the paper preset on WaveGANs
            trained by reconstruction (default: the bundled ``<class>-wavegan-recon``).
        score_priors: the same for ``priorsep-score``, posterior sampling with score priors
            (default: the bundled ``<class>-score``).
        paper_steps: ``priorsep-paper``'s search steps.
        dap_steps: Deep Audio Prior's steps (``None``: its own default).
        config: ``priorsep``'s search configuration (``None``: the ``best`` preset).
        preset: the name ``config`` came from (for the table's header).
        seed: the seed of ``priorsep-paper``'s search.
        limit, slow_limit: mixtures per set, for all methods and for slow ones.
        device: where priorsep's searches run (``None``: the CPU); the baselines run on
            the CPU.
    """

    sets_dir: Path = DEFAULT_SETS
    only_sets: list[str] | None = None
    methods: list[str] = field(default_factory=lambda: ["all"])
    train_root: Path | None = None
    train_clips: int = 500
    priors: dict[str, str] = field(default_factory=dict)
    paper_priors: dict[str, str] = field(default_factory=dict)
    recon_priors: dict[str, str] = field(default_factory=dict)
    score_priors: dict[str, str] = field(default_factory=dict)
    paper_steps: int = 1000
    dap_steps: int | None = None
    config: object = None
    preset: str = "best"
    seed: int = 0
    limit: int | None = None
    slow_limit: int | None = 20
    device: str | None = None


@dataclass
class Plan:
    """What a :class:`BenchmarkSpec` resolves to: the sets, the methods, what was skipped
    and why, and one line per class on the priors each priorsep method uses."""

    sets: list[Path]
    methods: list[Method]
    skipped: list[str]
    priors_used: dict[str, dict[str, str]]
    train_root: Path


#: the methods that use trained priors: name -> (the suffix of the bundled prior each class
#: gets by default, the :class:`BenchmarkSpec` field and the CLI option that choose others)
PRIOR_METHODS: dict[str, tuple[str, str, str]] = {
    "prior-oracle": ("", "priors", "--prior"),
    "priorsep": ("", "priors", "--prior"),
    "priorsep-paper": ("-wavegan", "paper_priors", "--paper-prior"),
    "priorsep-paper-recon": ("-wavegan-recon", "recon_priors", "--recon-prior"),
    "priorsep-score": ("-score", "score_priors", "--score-prior"),
}


def known_methods() -> list[str]:
    """Every method name the benchmark runs: the baselines and :data:`PRIOR_METHODS`."""
    from .baselines import BASELINES

    return list(BASELINES) + list(PRIOR_METHODS)


def plan_benchmark(spec: BenchmarkSpec) -> Plan:
    """Resolve a :class:`BenchmarkSpec`: find the sets, load the priors, build the methods.

    Raises:
        ConfigError: no such folder, no sets, an unknown method.
    """
    from .data.folder import load_folder
    from .errors import ConfigError, PriorError
    from .priors import load_prior
    from .separate import PRESETS

    sets_dir = Path(spec.sets_dir)
    if not sets_dir.is_dir():
        raise ConfigError(f"{sets_dir}: no such folder of mixture sets (give --sets DIR)")
    sets = sorted(sets_dir.glob("*.json"))
    if spec.only_sets:
        sets = [s for s in sets if s.stem in set(spec.only_sets)]
    if not sets:
        raise ConfigError(f"{sets_dir}: no mixture manifests (*.json)")
    known = known_methods()
    names = known if spec.methods == ["all"] else list(spec.methods)
    unknown = [m for m in names if m not in known]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from {', '.join(known)} or 'all'")
    train_root = Path(spec.train_root) if spec.train_root else sets_dir / "clips"
    train_cache: dict[str, Tensor] = {}

    def train(cls: str) -> Tensor:
        if cls not in train_cache:
            train_cache[cls] = load_folder(train_root / cls / "train", max_clips=spec.train_clips).clips
        return train_cache[cls]

    train.describe = f"{train_root.resolve()} (first {spec.train_clips} clips per class)"  # type: ignore[attr-defined]
    classes = {c for s in sets for c in json.loads(s.read_text())["classes"]}

    def class_priors(given: Mapping[str, str], suffix: str) -> dict:
        """The priors given per class, else the bundled prior named ``class + suffix``."""
        found = {cls: load_prior(what) for cls, what in given.items()}
        for cls in sorted(classes - set(found)):
            try:
                found[cls] = load_prior(cls + suffix)
            except PriorError:
                pass
        return found

    methods, skipped, priors_used = [], [], {}
    for name in names:
        if name in PRIOR_METHODS:
            suffix, given, flag = PRIOR_METHODS[name]
            paper = name.startswith("priorsep-paper")
            priors = class_priors(getattr(spec, given), suffix)
            if not classes <= set(priors):
                skipped.append(f"{name} (no prior for {', '.join(sorted(classes - set(priors)))}; "
                               f"give {flag} CLASS=FILE)")
                continue
            config = replace(PRESETS["paper"], steps=spec.paper_steps, seed=spec.seed) if paper \
                else (spec.config or PRESETS["best"])
            if name == "prior-oracle":
                methods.append(prior_oracle_method(priors, config=config, device=spec.device))
            elif name == "priorsep-score":
                methods.append(posterior_method(priors))
                priors_used[name] = {cls: prior_summary(p) for cls, p in priors.items()}
            else:
                methods.append(priorsep_method(priors, name=name, config=config, device=spec.device))
                priors_used[name] = {cls: prior_summary(p) for cls, p in priors.items()}
        else:
            options = {"steps": spec.dap_steps} if name == "dap" and spec.dap_steps else {}
            methods.append(baseline_method(name, train, **options))
    return Plan(sets, methods, skipped, priors_used, train_root)


def _worker_start() -> None:
    torch.set_num_threads(1)  # a process per core: threads would only wait for each other


def _fill_cache(spec: BenchmarkSpec, sets: list[str], cache: str) -> None:
    """A worker's share: the named sets of ``spec``, into the shared cache."""
    plan = plan_benchmark(replace(spec, only_sets=sets))
    run_benchmark(plan.sets, plan.methods, cache, limit=spec.limit, slow_limit=spec.slow_limit, progress=False)


def fill_cache_in_parallel(spec: BenchmarkSpec, sets: Sequence[Path], cache: str | os.PathLike, jobs: int) -> None:
    """Run ``jobs`` worker processes (one torch thread each) on disjoint groups of
    ``sets``; they fill the shared per-mixture ``cache``, from which the table is then made.
    A mixture's result does not depend on which process computed it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    groups = [[s.stem for s in sets[i::jobs]] for i in range(jobs)]
    context = multiprocessing.get_context("spawn")  # no fork of a process that already runs torch threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_start) as pool:
        for future in [pool.submit(_fill_cache, spec, group, str(cache)) for group in groups if group]:
            future.result()  # re-raises a worker's error here


def run_planned(spec: BenchmarkSpec, cache: str | os.PathLike, *, jobs: int = 1, progress: bool = False,
                figure: str | os.PathLike | None = None) -> tuple[Plan, list[Cell]]:
    """Plan ``spec``, fill the cache (in ``jobs`` processes when there are several sets),
    and score every row: the one call behind ``priorsep benchmark``."""
    plan = plan_benchmark(spec)
    if jobs > 1 and len(plan.sets) > 1:
        fill_cache_in_parallel(spec, plan.sets, cache, jobs)
    cells = run_benchmark(plan.sets, plan.methods, cache, limit=spec.limit, slow_limit=spec.slow_limit,
                          progress=progress, figure=figure)
    return plan, cells


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _how(method: str, preset: str) -> str:
    """How a prior method of the table separates, in words."""
    if method.startswith("priorsep-paper"):
        return "paper preset"
    return "posterior sampling" if method == "priorsep-score" else f"search: {preset} preset"


def results_header(spec: BenchmarkSpec, plan: Plan, command: str, out: Path, figure: Path) -> str:
    """The table's header: the command, versions, machine, what each row used."""
    return "\n".join([
        "# Benchmark results", "",
        f"Command: `{command}`  ",
        f"Versions: {versions()}  ",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads.  ",
        f"Sets: {len(plan.sets)} from `{_shown(Path(spec.sets_dir))}`; every cell gives the median (mean) over the "
        f"mixtures it used (column n): all mixtures{'' if spec.limit is None else f' up to {spec.limit}'} per set, "
        f"slow methods ({', '.join(m.name for m in plan.methods if m.slow) or 'none here'}) the first "
        f"{spec.slow_limit}.  ",
        "† unsupervised: estimates matched to sources by the best permutation (mean SI-SDR). "
        "`paper-protocol` reproduces the paper's flawed baseline protocol (docs/method.md §5), as coded.  ",
        f"Training clips for nmf-dict and template: the first {spec.train_clips} per class of "
        f"`{_shown(plan.train_root)}/<class>/train`.  ",
        *[f"Priors of {name} ({_how(name, spec.preset)}): "
          + "; ".join(f"{c}: {d}" for c, d in used.items()) + "  " for name, used in plan.priors_used.items()],
        *([f"Skipped: {'; '.join(plan.skipped)}"] if plan.skipped else []),
        "",
        f"CSV with every statistic: `{out.with_suffix('.csv').name}`; figure: `{figure.name}`.", "",
    ])


def write_results(out: str | os.PathLike, cells: Sequence[Cell], header: str) -> str:
    """Write the markdown table to ``out`` and the CSV beside it (each atomically);
    returns the markdown."""
    from .fsutil import write_text

    out = Path(out)
    text = markdown(cells, header)
    write_csv(cells, out.with_suffix(".csv"))
    write_text(out, text)
    return text


# --- reporting --------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.2f}"


def write_csv(cells: Sequence[Cell], path: str | os.PathLike) -> Path:
    """One line per (set, row, class, statistic) with every metric and seconds per mixture."""
    from .fsutil import atomic_write

    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["set", "method", "class", "statistic", "n", *METRIC_KEYS, "seconds_per_mixture", "permuted"])
        for c in cells:
            agg = aggregate(c.metrics)
            for stat in ("median", "mean"):
                for k, cls in enumerate(c.classes):
                    w.writerow([c.set, c.row, cls, stat, agg["n"], *(f"{agg[stat][k][m]:.4f}" for m in METRIC_KEYS),
                                f"{np.mean(c.seconds):.4f}", int(c.unordered)])
    return path


def markdown(cells: Sequence[Cell], header: str = "") -> str:
    """Per set, a table of methods: per class the median (mean) of every metric, and the
    mixtures and seconds per mixture each row used."""
    lines = [header.rstrip(), ""] if header else []
    for set_name in dict.fromkeys(c.set for c in cells):
        group = [c for c in cells if c.set == set_name]
        classes = group[0].classes
        lines += [f"### {set_name}", ""]
        head = ["method", "n"] + [f"{cls} {m}" for cls in classes for m in METRIC_KEYS] + ["s/mixture"]
        lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for c in group:
            agg = aggregate(c.metrics)
            vals = [f"{_fmt(agg['median'][k][m])} ({_fmt(agg['mean'][k][m])})"
                    for k in range(len(classes)) for m in METRIC_KEYS]
            name = c.row + (" †" if c.unordered else "")
            lines.append("| " + " | ".join([name, str(agg["n"]), *vals, f"{np.mean(c.seconds):.2f}"]) + " |")
        lines.append("")
    return "\n".join(lines)


def versions() -> str:
    import importlib.metadata as md

    found = []
    for pkg in ("priorsep", "torch", "numpy", "scipy", "scikit-learn", "museval"):
        try:
            found.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(found) + f"; Python {platform.python_version()}; {_dt.date.today().isoformat()}"


__all__ = ["DEFAULT_SETS", "Method", "Cell", "BenchmarkSpec", "Plan", "baseline_method", "priorsep_method",
           "prior_summary", "run_benchmark", "plan_benchmark", "run_planned", "fill_cache_in_parallel",
           "posterior_method", "known_methods", "results_header", "write_results", "write_csv", "markdown",
           "versions", "__version__", "PRIOR_METHODS"]
