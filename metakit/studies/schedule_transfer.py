"""The schedule-transfer table: MLR-SNet meta-trained once, frozen, then used where it never trained.

MLR-SNet's claim is that a learned LR schedule, frozen after meta-training, transfers to other
batch sizes, epochs, datasets and architectures. This table measures it, per source dataset
(digits or MNIST-1D) and momentum:

1. The source: ``mlrsnet`` meta-trained once (seed `SOURCE_SEED`) on the balanced task of
   `metakit.experiments.schedule_tables` (``table_config("cifar10", ...)``: digits, or MNIST-1D on
   its 12,000-signal protocol), its per-epoch snapshots saved under ``<csv folder>/schedules/``
   (row setting ``transfer_source``, variant ``meta_train``).
2. Each variation (`variations`) trains fresh classifiers on every seed, paired: the frozen
   schedule (``sched_mlrsnet``, the official staged meta-test over the snapshots, γ re-derived from
   the full training loss at each switch) against the hand schedules of the same momentum.
   Variations: ``same`` (the source task itself), ``batch_x0.5``, ``batch_x2``, ``epochs_x0.5``,
   ``epochs_x2``, ``arch_<model>`` (two other architectures), ``dataset`` (the other dataset,
   on its own protocol and model), ``noise_uniform_40`` (40% uniform label noise) and ``lm`` (the
   word-level LSTM language model of `metakit.experiments.text`, momentum 0 only).
3. Momentum 0 (MLR-SNet's setting): against fixed, multi-step, exponential, cosine and SGDR
   (`HAND`). Momentum 0.9 (what users run): a source meta-trained at 0.9, against cosine and
   multi-step (`HAND_09`).

Rows are ``sched_<entry>`` (`metakit.experiments.schedule_tables.ENTRIES`) with setting
``transfer_<variation>`` and the momentum column; the ``final_net`` ablation (the last snapshot
alone, γ = 2 × base LR: metakit's earlier behaviour) is row ``sched_mlrsnet`` variant
``final_net`` when asked for (entry ``mlrsnet_final_net``); likewise ``batch_stats_loss`` (γ from
the full training loss with BatchNorm on batch statistics, entry ``mlrsnet_batch_stats``) and, at
momentum 0.9 only, ``momentum_lookahead`` (entry ``mlrsnet_momentum_lookahead``: a source of its own,
meta-trained with the inner optimiser's momentum step as the look-ahead) and ``momentum_gamma`` (entry
``mlrsnet_momentum_gamma``: a source of its own, γ scaled by 1 − momentum in meta-training and
meta-test). Image rows report the final test
accuracy and the test accuracy at the epoch of best validation accuracy (``test_acc_at_val``),
never the best on test. The language model's rows report test perplexity (``test_ppl``) and its
best validation perplexity; its frozen schedule is ``run_lm(schedule="learned")``: the last
snapshot with γ re-set to 2 × the LM's base LR, because the classifier's γ formula gives an LR
scale that does not fit an LM (a named deviation).

Command line: ``python -m metakit schedule-table transfer --source digits --momentum 0 --seeds 0 1 2 3 4
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
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from metakit.experiments import Config, run
from metakit.experiments.grid import GridRun, rerun_profile, run_grid
from metakit.experiments.schedule_tables import schedule_job, table_config
from metakit.learners.lr_net import save_schedule
from metakit.options import require

SOURCES = ("digits", "mnist1d")
MOMENTA = (0.0, 0.9)
SOURCE_SEED = 0  # the schedule is meta-trained once per (source, momentum), then frozen
HAND = ("fixed", "multistep", "exp", "cosine", "sgdr")   # momentum 0: MLR-SNet's comparison
HAND_09 = ("cosine", "multistep")                        # momentum 0.9: what users run
OTHER_MODELS = {"digits": ("mlp", "resnet32"), "mnist1d": ("cnn1d", "mlp")}  # besides each dataset's default
TASK = "cifar10"  # the balanced schedule task (digits / MNIST-1D at smoke and laptop)
# MNIST-1D's 1D ResNet at half width (16 first-stage channels) for this table's budget: on the 12,000-signal
# protocol (cosine, seed 0) it trains in ~0.4x the time of width 32 (75 s vs 180 s under the same load) at 78.0%
# test against 81.7%; the table must fit 3 hours on 2 cores. The other architectures keep their own width.
NARROW = {"mnist1d": {"width": 16}}
TAGS = ["profile", "epochs"]
# entry → the sched_mlrsnet variant it runs: ablations asked for by name, never in the default block
ABLATION_ENTRIES = {"mlrsnet_final_net": "final_net", "mlrsnet_batch_stats": "batch_stats_loss",
                    "mlrsnet_momentum_lookahead": "momentum_lookahead", "mlrsnet_momentum_gamma": "momentum_gamma"}
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
    out["noise_uniform_40"] = {"noise_kind": "uniform", "noise_rate": 0.4}
    return out


def schedule_path(folder: str | Path, source: str, momentum: float, profile: str) -> Path:
    """Where the source schedule of (``source``, ``momentum``) is kept.

    Example:
        >>> schedule_path("results/digits", "digits", 0.9, "laptop").as_posix()
        'results/digits/schedules/schedule_transfer_laptop_digits_m0.9.pt'
    """
    return Path(folder) / "schedules" / f"schedule_transfer_{profile}_{source}_m{momentum:g}.pt"


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


def source_config(source: str, momentum: float, profile: str, variant: str = "", **overrides: Any) -> Config:
    """The meta-training run of the source schedule (faithful ``mlrsnet``, or ``variant``; seed `SOURCE_SEED`)."""
    ablation = {"options": {"variant": variant}} if variant else {}
    return table_config(TASK, "mlrsnet", profile, SOURCE_SEED, **narrow({"dataset": source, **overrides}),
                        momentum=momentum, **ablation)


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
                  schedule_file: str | Path, **overrides: Any) -> Config:
    """The `Config` of one image row: the source task with ``variation`` applied, under ``entry``.

    Example:
        >>> c = target_config("digits", 0.0, {"model": "mlp"}, "mlrsnet", 1, "laptop", "s.pt").resolve()
        >>> c.model, c.momentum, c.options["schedule_file"], c.seed
        ('mlp', 0.0, 's.pt', 1)
    """
    fields = narrow({"dataset": source, "momentum": momentum, **variation, **overrides})
    if entry.startswith("mlrsnet"):
        variant = ABLATION_ENTRIES.get(entry, "")
        options = {"schedule_file": str(variant_schedule(schedule_file, variant))}
        options |= {"variant": variant} if variant else {}
        return table_config(TASK, "mlrsnet", profile, seed, options=options, **fields)
    return table_config(TASK, entry, profile, seed, **fields)


def transfer_runs(source: str, momentum: float, names: Sequence[str], seeds: Sequence[int], profile: str,
                  entries: Sequence[str] | None, schedule_file: str | Path,
                  overrides: dict | None = None) -> list[GridRun]:
    """The image rows, seed-major (every variation of seed 0 first, so a chunk gives a whole first look)."""
    table = variations(source, profile)
    for name in names:
        require("variations", name, object, choices=[*table, "lm"])
    runs = []
    for seed, name, entry in itertools.product(seeds, [n for n in names if n != "lm"], entries_for(momentum, entries)):
        config = target_config(source, momentum, table[name], entry, seed, profile, schedule_file,
                               **(overrides or {}))
        method, variant = _row(entry)
        runs.append(GridRun(config, method, variant, {"profile": profile, "epochs": config.resolve().epochs},
                            setting=f"transfer_{name}"))
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

    runs = []
    for seed, entry in itertools.product(seeds, entries_for(0.0, entries)):
        if entry in ABLATION_ENTRIES:  # the LM's frozen schedule is the last net, γ = 2·base LR: no γ rule
            continue
        config = target_config(source, 0.0, {}, entry, seed, profile, schedule_file)
        runs.append(GridRun(config, *_row(entry), {"profile": profile, "epochs": LM_PROFILES[profile]["epochs"]},
                            setting="transfer_lm", dataset="text"))
    return runs


def schedule_transfer(source: str, momentum: float = 0.0, names: Sequence[str] | None = None,
                      seeds: Sequence[int] = (0, 1, 2, 3, 4), profile: str = "laptop",
                      entries: Sequence[str] | None = None, csv_path: str | Path | None = None,
                      overrides: dict | None = None, log: Callable[[str], Any] | None = None,
                      executor: Executor | None = None) -> pd.DataFrame:
    """Meta-train the source schedule if its file is missing, then run the rows not yet in ``csv_path``.

    Args:
        source: the dataset the schedule is meta-trained on (`SOURCES`).
        momentum: 0 (MLR-SNet's setting, against `HAND`) or 0.9 (against `HAND_09`).
        names: variations (`variations` and ``"lm"``; default all, the LM only at momentum 0, where it runs).
        seeds: target seeds (paired across entries).
        entries: the block's entries (default: mlrsnet and the hand schedules of that momentum).
        csv_path: the resumable CSV; the schedule goes to ``<its folder>/schedules/``.
        overrides: Config fields for every image run (e.g. ``{"epochs": 1}`` in tests).

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> df = schedule_transfer("digits", 0.0, ["same"], [0], "smoke", ["mlrsnet", "fixed"], out, {"epochs": 1})
        >>> df[["setting", "method", "variant"]].values.tolist()
        [['transfer_source', 'sched_mlrsnet', 'meta_train'], ['transfer_same', 'sched_mlrsnet', ''], ['transfer_same', 'sched_fixed', '']]
    """
    momentum = float(momentum)
    names = list(names or [*variations(source, profile), *(["lm"] if momentum == 0 else [])])
    if momentum != 0 and "lm" in names:
        raise ValueError(f"names includes 'lm' at momentum={momentum:g}; the language model runs at momentum 0 "
                         f"only: leave 'lm' out of --variations or pass --momentum 0.")
    chosen = entries_for(momentum, entries)
    folder = Path(csv_path).parent if csv_path is not None else Path("runs/tables")
    path = schedule_path(folder, source, momentum, profile)
    parts = []
    asked = {ABLATION_ENTRIES.get(e) for e in chosen}
    for variant in ["", *(v for v in META_TRAINING if v in asked)]:   # the default source, then each ablation's
        src = source_config(source, momentum, profile, variant, **(overrides or {}))
        file = variant_schedule(path, variant)
        job = functools.partial(source_job, path=str(file))
        tags = {"profile": profile, "epochs": src.resolve().epochs}
        row = GridRun(src, "sched_mlrsnet", f"meta_train_{variant}" if variant else "meta_train", tags,
                      setting="transfer_source")
        parts.append(run_grid([row], csv_path, job=job, executor=executor, momentum=True, log=log))
        if not file.is_file():  # a row kept but its file gone: relearn it (same seed and split: the same schedule)
            job(src)
    image = transfer_runs(source, momentum, names, seeds, profile, entries, path, overrides)
    if image:
        parts.append(run_grid(image, csv_path, job=schedule_job, executor=executor, momentum=True, log=log,
                              progress=log is not None, desc=f"schedule transfer {source}"))
    if "lm" in names:
        parts.append(run_grid(lm_runs(source, seeds, profile, entries, path), csv_path,
                              job=functools.partial(lm_job, profile=profile), executor=executor, momentum=True,
                              log=log, desc="schedule transfer lm"))
    df = pd.concat(parts, ignore_index=True)
    return df[df["error"].isna()].drop(columns="error").reset_index(drop=True)


def config_of_row(row: Mapping[str, Any], source: str, folder: str | Path, profile: str | None = None) -> Config:
    """The `Config` that made one image row of a transfer CSV (`transfer_runs`), to rerun it.

    At the row's own profile it is exactly the grid's config (``--epochs`` included); at another
    ``profile`` it is the same cell at that profile, still reading the row's schedule file.

    Args:
        row: one row of the CSV (dataset, setting, method, variant, seed, momentum, profile, epochs).
        source: the dataset the table's schedule learned on (its CSV is ``results/<source>/...``).
        folder: the CSV's folder (the schedule is in its ``schedules/``).
        profile: the profile to rerun at; None: the row's.

    Example:
        >>> row = {"dataset": "digits", "setting": "transfer_arch_mlp", "method": "sched_mlrsnet", "variant": "",
        ...        "seed": 2, "momentum": 0.0, "profile": "laptop", "epochs": 60}
        >>> c = config_of_row(row, "digits", "results/digits").resolve()
        >>> c.model, c.seed, c.options["schedule_file"]
        ('mlp', 2, 'results/digits/schedules/schedule_transfer_laptop_digits_m0.pt')
    """
    own, profile = rerun_profile(row, profile)
    name = str(row["setting"]).removeprefix("transfer_")
    if name in ("source", "lm"):
        raise ValueError(f"setting={row['setting']!r} is not an image target row; rerun the source with "
                         f"source_config and a language-model row with metakit.experiments.text.run_lm.")
    method, variant = str(row["method"]), str(row.get("variant") or "")
    by_variant = {v: e for e, v in ABLATION_ENTRIES.items()}
    entry = by_variant[variant] if method == "sched_mlrsnet" and variant else method.removeprefix("sched_")
    momentum = float(row["momentum"])
    labels = (source, momentum, variations(source, profile)[name], entry, int(row["seed"]), profile,
              schedule_path(folder, source, momentum, own))
    config = target_config(*labels)
    if profile == own and int(row["epochs"]) != config.resolve().epochs:
        config = target_config(*labels, epochs=int(row["epochs"]))   # the table was made with --epochs
    return config
