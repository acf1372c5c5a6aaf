"""The schedule-transfer study: MLR-SNet meta-trained once, frozen, then used where it never trained.

Per source dataset (digits or MNIST-1D) and momentum, the source schedule is meta-trained once
(seed `SOURCE_SEED`; row setting ``transfer_source``) and saved beside the CSV; each variation
(`variations`: batch ×0.5/×2, epochs ×0.5/×2, two other architectures, the other dataset, 40%
uniform noise, and the language model at momentum 0) then trains fresh classifiers on every seed
under the frozen staged schedule (``sched_mlrsnet``) and the hand schedules of that momentum
(`HAND` at 0, `HAND_09` at 0.9), paired. Ablation entries (`ABLATION_ENTRIES`) are rows of
``sched_mlrsnet`` with a variant; `META_TRAINING` ones get a source of their own. Image rows
report the final test accuracy and the test accuracy at the validation-selected epoch; the
language model's, perplexity. docs/guide/schedules.md describes the protocol and its deviations.

Command line: ``python -m metakit study schedule_transfer --source digits --momentum 0 --seeds 0 1 2 3 4
--out results/digits/schedule_transfer_laptop.csv``.

Example:
    >>> runs = transfer_runs("digits", 0.0, ["batch_x2"], [0], "smoke", ["mlrsnet", "cosine"], "s.pt")
    >>> [(r.setting, r.method, r.config.resolve().batch_size) for r in runs]
    [('transfer_batch_x2', 'sched_mlrsnet', 128), ('transfer_batch_x2', 'sched_cosine', 128)]
"""
from __future__ import annotations

import functools
import itertools
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from metakit.experiments import Config, run
from metakit.learners.lr_net import save_schedule
from metakit.options import require
from metakit.studies.grid import GridRun, profile_tags, stored_config
from metakit.studies.registry import register
from metakit.studies.schedules import schedule_job, table_config
from metakit.studies.study import Plan, Source, Study
from metakit.studies.transfer_verdicts import LEARNED, claims, tuned_lrs, write

SOURCES = ("digits", "mnist1d")
MOMENTA = (0.0, 0.9)
SOURCE_SEED = 0  # a row of seed s reads the schedule meta-trained at seed s (seed 0's file keeps its old name)
HAND = ("fixed", "multistep", "exp", "cosine", "sgdr")   # momentum 0: MLR-SNet's comparison
HAND_09 = ("cosine", "multistep")                        # momentum 0.9: what users run
# each hand schedule's base LR is chosen from these on the source task's validation split (seeds TUNE_SEEDS),
# then carried unchanged to every transfer row: the "tune once on the source" the learned schedule gets
LR_GRID = {0.0: (0.03, 0.1, 0.3, 1.0), 0.9: (0.03, 0.1, 0.3)}
TUNE_SEEDS = (0, 1, 2)
OTHER_MODELS = {"digits": ("mlp", "resnet32"), "mnist1d": ("cnn1d", "mlp")}  # besides each dataset's default
TASK = "cifar10"  # the balanced schedule task (digits / MNIST-1D at smoke and laptop)
# MNIST-1D's 1D ResNet at half width (16 first-stage channels) for this table's budget: on the 12,000-signal
# protocol (cosine, seed 0) it trains in ~0.4x the time of width 32 (75 s vs 180 s under the same load) at 78.0%
# test against 81.7%; the table must fit 3 hours on 2 cores. The other architectures keep their own width.
NARROW = {"mnist1d": {"width": 16}}
# entry → the sched_mlrsnet variant it runs: ablations asked for by name, never in the default block
ABLATION_ENTRIES = {"mlrsnet_final_net": "final_net", "mlrsnet_batch_stats": "batch_stats_loss",
                    "mlrsnet_momentum_lookahead": "momentum_lookahead", "mlrsnet_momentum_gamma": "momentum_gamma",
                    "mlrsnet_constant": "constant_net", "mlrsnet_gamma_only": "gamma_only",
                    "mlrsnet_official": "official_snapshots"}
# the authors' released snapshots, imported by `python -m metakit.learners.official` (never committed)
OFFICIAL_SCHEDULE = "runs/official_mlrsnet.pt"
# variants that change meta-training: each gets its own source schedule (row variant ``meta_train_<variant>``)
META_TRAINING = ("momentum_lookahead", "momentum_gamma")


def other_dataset(source: str) -> str:
    """The dataset a schedule learned on ``source`` is carried to.

    Example:
        >>> other_dataset("digits")
        'mnist1d'
    """
    require("source", source, object, choices=SOURCES)
    return SOURCES[1 - SOURCES.index(source)]


def variations(source: str, profile: str) -> dict[str, dict[str, Any]]:
    """Variation name → the Config fields it changes from the source task (``lm``: see `lm_runs`).

    Example:
        >>> v = variations("mnist1d", "laptop")
        >>> v["batch_x0.5"], v["epochs_x2"], v["arch_cnn1d"], v["dataset"]
        ({'batch_size': 64}, {'epochs': 40}, {'model': 'cnn1d'}, {'dataset': 'digits'})
    """
    base = table_config(TASK, "fixed", profile, dataset=source).resolve()
    out: dict[str, dict[str, Any]] = {
        "same": {},
        "batch_x0.5": {"batch_size": max(1, base.batch_size // 2)},
        "batch_x2": {"batch_size": base.batch_size * 2},
        "epochs_x0.5": {"epochs": max(1, base.epochs // 2)},
        "epochs_x2": {"epochs": base.epochs * 2},
    }
    out |= {f"arch_{model}": {"model": model} for model in OTHER_MODELS[source]}
    out["dataset"] = {"dataset": other_dataset(source)}
    out |= {f"noise_{kind}_40": {"noise_kind": kind, "noise_rate": 0.4} for kind in ("uniform", "flip")}
    return out


def schedule_path(folder: str | Path, source: str, momentum: float, profile: str, table: str = "",
                  seed: int = SOURCE_SEED) -> Path:
    """Where the source schedule of (``source``, ``momentum``, ``seed``) is kept, named after the ``table``'s CSV.

    Example:
        >>> schedule_path("results/digits", "digits", 0.9, "laptop").as_posix()
        'results/digits/schedules/schedule_transfer_laptop_digits_m0.9.pt'
        >>> schedule_path("r", "digits", 0, "laptop", "tuned", seed=2).name
        'tuned_digits_m0_seed2.pt'
    """
    name = f"{table or f'schedule_transfer_{profile}'}_{source}_m{momentum:g}"
    return Path(folder) / "schedules" / (name + ("" if seed == SOURCE_SEED else f"_seed{seed}") + ".pt")


def variant_schedule(path: str | Path, variant: str) -> Path:
    """The schedule file a ``variant`` row reads, given the default source's ``path``: a `META_TRAINING`
    variant's own source beside it, otherwise ``path`` itself.

    Example:
        >>> variant_schedule("s/schedule_transfer_laptop_digits_m0.9.pt", "momentum_lookahead").name
        'schedule_transfer_laptop_digits_m0.9_momentum_lookahead.pt'
        >>> variant_schedule("s/a.pt", "batch_stats_loss").name
        'a.pt'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}_{variant}{path.suffix}") if variant in META_TRAINING else path


def narrow(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with `NARROW`'s width added where the run uses its dataset's default model.

    Example:
        >>> narrow({"dataset": "mnist1d"}), narrow({"dataset": "mnist1d", "model": "mlp"}), narrow({"dataset": "digits"})
        ({'dataset': 'mnist1d', 'width': 16}, {'dataset': 'mnist1d', 'model': 'mlp'}, {'dataset': 'digits'})
    """
    extra = {} if "model" in fields else NARROW.get(fields["dataset"], {})
    return {**fields, **extra}


def source_config(source: str, momentum: float, profile: str, variant: str = "", seed: int = SOURCE_SEED,
                  **overrides: Any) -> Config:
    """The meta-training run of the source schedule (faithful ``mlrsnet``, or ``variant``)."""
    ablation = {"options": {"variant": variant}} if variant else {}
    return table_config(TASK, "mlrsnet", profile, seed, **narrow({"dataset": source, **overrides}),
                        momentum=momentum, **ablation)


def tuning(plan: Plan) -> list[GridRun]:
    """Each hand schedule of the block at each base LR of `LR_GRID`, on the source task, seeds `TUNE_SEEDS`."""
    source, momentum, _ = _plan(plan)
    hands = [e for e in entries_for(momentum, plan.get("entries", None)) if not e.startswith("mlrsnet")]
    runs = []
    for seed, entry, lr in itertools.product(TUNE_SEEDS, hands, LR_GRID[momentum]):
        config = target_config(source, momentum, {"lr": lr}, entry, seed, plan.profile, "", **plan.overrides)
        runs.append(GridRun(config, f"sched_{entry}", f"lr_{lr:g}", profile_tags(config), setting="transfer_tune"))
    return runs


def source_job(config: Config, path: str) -> dict[str, float]:
    """A grid job: meta-train the source schedule, save its snapshots at ``path``, return its numbers."""
    start = time.perf_counter()
    result = run(config)
    c = result.config
    save_schedule(result.learner, path, dataset=c.dataset, model=c.model, batch_size=int(c.batch_size),
                  epochs=int(c.epochs))
    return {"test_acc": float(result.metrics["test_acc"]), "val_acc": float(result.metrics.get("val_acc", "nan")),
            "seconds": time.perf_counter() - start}


def entries_for(momentum: float, entries: Sequence[str] | None = None) -> list[str]:
    """The rows of one momentum block: the frozen schedule first, then the hand schedules.

    Example:
        >>> entries_for(0.9)
        ['mlrsnet', 'cosine', 'multistep']
    """
    require("momentum", momentum, float, choices=MOMENTA)
    default = ["mlrsnet", *(HAND if momentum == 0 else HAND_09)]
    chosen = list(default if entries is None else entries)
    for entry in chosen:
        require("entries", entry, object, choices=[*default, *ABLATION_ENTRIES])
        if momentum == 0 and ABLATION_ENTRIES.get(entry) in META_TRAINING:
            raise ValueError(f"entries={entry!r} at momentum=0: without momentum this variant is the default itself, "
                             f"so its rows would repeat sched_mlrsnet; pass --momentum 0.9.")
    return chosen


def _row(entry: str) -> tuple[str, str]:
    """(method, variant) of an entry's rows: an ablation entry is a variant of sched_mlrsnet."""
    return ("sched_mlrsnet", ABLATION_ENTRIES[entry]) if entry in ABLATION_ENTRIES else (f"sched_{entry}", "")


def target_config(source: str, momentum: float, variation: dict[str, Any], entry: str, seed: int, profile: str,
                  schedule_file: str | Path, lrs: dict[str, float] | None = None, **overrides: Any) -> Config:
    """The `Config` of one image row: the source task with ``variation`` applied, under ``entry``.

    Example:
        >>> c = target_config("digits", 0.0, {"model": "mlp"}, "mlrsnet", 1, "laptop", "s.pt").resolve()
        >>> c.model, c.momentum, c.options["schedule_file"], c.seed
        ('mlp', 0.0, 's.pt', 1)
    """
    fields = narrow({"dataset": source, "momentum": momentum, **variation, **overrides})
    if entry == "mlrsnet_official":   # the authors' schedule, through the same staged meta-test
        return table_config(TASK, "mlrsnet", profile, seed, options={"schedule_file": OFFICIAL_SCHEDULE}, **fields)
    if entry.startswith("mlrsnet"):
        variant = ABLATION_ENTRIES.get(entry, "")
        options = {"schedule_file": str(variant_schedule(schedule_file, variant))}
        options |= {"variant": variant} if variant else {}
        return table_config(TASK, "mlrsnet", profile, seed, options=options, **fields)
    lr = (lrs or {}).get(entry)   # the base LR tuned on the source (`tuned_lrs`); None: the task's
    return table_config(TASK, entry, profile, seed, **fields, **({} if lr is None else {"lr": lr}))


def seeded(path: str | Path, seed: int) -> Path:
    """The schedule file of source seed ``seed``, given seed 0's ``path`` (`schedule_path`'s naming)."""
    path = Path(path)
    return path if seed == SOURCE_SEED else path.with_name(f"{path.stem}_seed{seed}{path.suffix}")


def transfer_runs(source: str, momentum: float, names: Sequence[str], seeds: Sequence[int], profile: str,
                  entries: Sequence[str] | None, schedule_file: str | Path,
                  overrides: dict | None = None, lrs: dict[str, float] | None = None) -> list[GridRun]:
    """The image rows, seed-major (every variation of seed 0 first, so a chunk gives a whole first look); a row
    of seed s reads the source schedule of seed s, so its interval carries the schedule's own variance."""
    table = variations(source, profile)
    for name in names:
        require("variations", name, object, choices=[*table, "lm"])
    runs = []
    for seed, name, entry in itertools.product(seeds, [n for n in names if n != "lm"], entries_for(momentum, entries)):
        config = target_config(source, momentum, table[name], entry, seed, profile, seeded(schedule_file, seed),
                               lrs, **(overrides or {}))
        method, variant = _row(entry)
        runs.append(GridRun(config, method, variant, profile_tags(config), setting=f"transfer_{name}"))
    return runs


def lm_job(config: Config, profile: str) -> dict[str, float]:
    """A grid job for one language-model row: the entry's schedule, or the frozen one for mlrsnet rows."""
    from metakit.experiments.text import run_lm

    start = time.perf_counter()
    if config.method == "mlrsnet":
        result = run_lm(profile, "learned", schedule_file=config.options["schedule_file"], seed=config.seed)
    else:
        result = run_lm(profile, config.schedule, seed=config.seed)
    return {"test_ppl": float(result.test_ppl), "valid_ppl_best": float(result.history["valid_ppl"].min()),
            "final_lr": float(result.history["lr"].iloc[-1]), "seconds": time.perf_counter() - start}


def lm_runs(source: str, seeds: Sequence[int], profile: str, entries: Sequence[str] | None,
            schedule_file: str | Path) -> list[GridRun]:
    """The language-model rows (momentum 0): dataset ``text``, setting ``transfer_lm``."""
    from metakit.experiments.text import LM_PROFILES

    runs, job = [], functools.partial(lm_job, profile=profile)
    for seed, entry in itertools.product(seeds, entries_for(0.0, entries)):
        if entry in ABLATION_ENTRIES:  # the LM's frozen schedule is the last net, γ = 2·base LR: no γ rule
            continue
        config = target_config(source, 0.0, {}, entry, seed, profile, seeded(schedule_file, seed))
        runs.append(GridRun(config, *_row(entry), {"profile": profile, "epochs": LM_PROFILES[profile]["epochs"]},
                            setting="transfer_lm", dataset="text", job=job))
    return runs


def _plan(plan: Plan) -> tuple[str, float, list[str]]:
    """(source, momentum, variation names) of a plan, checked."""
    source = plan.get("source", None)
    if source is None:
        raise ValueError(f"schedule_transfer needs --source, one of {list(SOURCES)}, e.g. --source digits.")
    require("source", source, object, choices=SOURCES)
    momentum = float(plan.get("momentum", 0.0))
    names = list(plan.get("variations", [*variations(source, plan.profile), *(["lm"] if momentum == 0 else [])]))
    if momentum != 0 and "lm" in names:
        raise ValueError(f"names includes 'lm' at momentum={momentum:g}; the language model runs at momentum 0 "
                         f"only: leave 'lm' out of --variations or pass --momentum 0.")
    return source, momentum, names


def sources(plan: Plan) -> list[Source]:
    """The default source schedule, then each asked `META_TRAINING` ablation's own (meta-trained once each)."""
    source, momentum, _ = _plan(plan)
    path = schedule_path(plan.folder, source, momentum, plan.profile, plan.table)
    asked = {ABLATION_ENTRIES.get(e) for e in entries_for(momentum, plan.get("entries", None))}
    out = []
    for seed, variant in itertools.product(plan.seeds, ["", *(v for v in META_TRAINING if v in asked)]):
        config = source_config(source, momentum, plan.profile, variant, seed, **plan.overrides)
        row = GridRun(config, LEARNED, f"meta_train_{variant}" if variant else "meta_train", profile_tags(config),
                      setting="transfer_source")
        out.append(Source(row, variant_schedule(seeded(path, seed), variant), source_job))
    return out


def rows(plan: Plan) -> list[GridRun]:
    """The image rows (seed-major), then the language model's (momentum 0)."""
    source, momentum, names = _plan(plan)
    entries = plan.get("entries", None)
    if "mlrsnet_official" in (entries or ()) and not Path(OFFICIAL_SCHEDULE).is_file():
        raise ValueError(f"entries includes mlrsnet_official but {OFFICIAL_SCHEDULE} is not there; import the authors' "
                         f"snapshots first: python -m metakit.learners.official --dir <their files> --out "
                         f"{OFFICIAL_SCHEDULE}")
    path = schedule_path(plan.folder, source, momentum, plan.profile, plan.table)
    out = transfer_runs(source, momentum, names, plan.seeds, plan.profile, entries, path, dict(plan.overrides),
                        tuned_lrs(plan.tuned, momentum))
    if "lm" in names:
        out += lm_runs(source, plan.seeds, plan.profile, entries, path)
    return out


def cell(row: Mapping[str, Any], profile: str, folder: str | Path) -> Config:
    """The `Config` of one image row's cell at ``profile``, reading the schedule file kept beside its CSV.

    ``folder`` is the row's CSV (its schedules are named after it), or the CSV's folder when the
    CSV has the default name (``schedule_transfer_<profile>.csv``).

    The schedule file and a hand schedule's tuned base LR come from the row's stored config where
    there is one (rows written before it ran the one seed-0 source and the task's base LR).

    Example:
        >>> row = {"dataset": "digits", "setting": "transfer_arch_mlp", "method": "sched_mlrsnet", "variant": "",
        ...        "seed": 2, "momentum": 0.0, "profile": "laptop", "epochs": 60}
        >>> c = cell(row, "laptop", "results/digits").resolve()
        >>> c.model, c.seed, c.options["schedule_file"]
        ('mlp', 2, 'results/digits/schedules/schedule_transfer_laptop_digits_m0.pt')
    """
    name = str(row["setting"]).removeprefix("transfer_")
    if name in ("source", "lm"):
        raise ValueError(f"setting={row['setting']!r} is not an image target row; rerun the source with "
                         f"source_config and a language-model row with metakit.experiments.text.run_lm.")
    source = other_dataset(str(row["dataset"])) if name == "dataset" else str(row["dataset"])
    method, variant = str(row["method"]), str(row.get("variant") or "")
    by_variant = {v: e for e, v in ABLATION_ENTRIES.items()}
    entry = by_variant[variant] if method == LEARNED and variant else method.removeprefix("sched_")
    momentum, stored = float(row["momentum"]), stored_config(row)
    folder, table = (Path(folder).parent, Path(folder).stem) if str(folder).endswith(".csv") else (folder, "")
    path = schedule_path(folder, source, momentum, str(row.get("profile") or profile), table)
    if stored is not None:
        path = Path(stored.options.get("schedule_file") or path)
    lrs = {entry: stored.lr} if stored is not None and not entry.startswith("mlrsnet") else None
    return target_config(source, momentum, variations(source, profile)[name], entry, int(row["seed"]), profile,
                         path, lrs)


STUDY = register(Study(
    name="schedule_transfer", title="Schedule transfer", rows=rows, sources=sources, tune=tuning, job=schedule_job,
    momentum=True, write=write, claims=claims, cell=cell,
    choices={"source": f"the dataset the schedule learns on, one of {list(SOURCES)}",
             "momentum": f"one of {list(MOMENTA)} (default 0)",
             "variations": "subset of metakit.studies.schedule_transfer.variations and lm",
             "entries": "the block's entries (default: mlrsnet and the hand schedules of that momentum)"}))
