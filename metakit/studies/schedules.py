"""Compare LR schedules on one task: hand-designed, adaptive (Adam, HD) and MLR-SNet.

Every entry trains the same classifier on the same split with the same optimiser (SGD,
momentum 0 as in MLR-SNet) except where the entry is the optimiser (Adam); only the LR differs.
``python -m metakit schedule-table <task> --profile paper`` writes one CSV per table (resumable),
its summary and a markdown beside it, through the grid pipeline (`metakit.experiments.grid`):
every entry is the method ``sched_<entry>``, labelled by momentum, compared with ``sched_fixed``.

Tasks (paper profile → digits at smoke/laptop):

- ``cifar10``: ResNet-18 on CIFAR-10, 200 epochs (MLR-SNet Fig. 3).
- ``cifar100``: WRN-28-10 on CIFAR-100, 200 epochs.
- ``noisy-cifar10``: ResNet-18 on CIFAR-10 with 40% uniform label noise and a clean meta set.

Example:
    >>> df = schedule_table("noisy-cifar10", profile="smoke", seeds=[0], entries=["fixed", "hd"], epochs=1)
    >>> sorted(df["method"]), bool(df["test_acc"].between(0, 100).all())
    (['sched_fixed', 'sched_hd'], True)
"""
from __future__ import annotations

import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from metakit.experiments import Config, run
from metakit.experiments import grid_summary
from metakit.experiments.grid import METRICS, GridRun, run_grid
from metakit.learners.store import read_header
from metakit.methods import METHODS
from metakit.options import require

REFERENCE_ENTRY = "fixed"  # paired deltas are against the fixed LR

# entry name → Config overrides; "mwnet" joins when that method is registered
ENTRIES: dict[str, dict[str, Any]] = {
    "fixed": dict(method="ce", schedule="fixed"),
    "multistep": dict(method="ce", schedule="multistep"),
    "exp": dict(method="ce", schedule="exp", gamma=0.01),
    "cosine": dict(method="ce", schedule="cosine"),
    "sgdr": dict(method="ce", schedule="sgdr"),
    "adam": dict(method="ce", optimizer="adam", lr=1e-3, schedule="fixed"),
    "hd": dict(method="hd"),
    "mlrsnet": dict(method="mlrsnet"),
    "mlrsnet_final_net": dict(method="mlrsnet", options={"variant": "final_net"}),
    "mlrsnet_every_step": dict(method="mlrsnet", options={"variant": "final_net", "meta_every": 1}),
    "mwnet": dict(method="mwnet", schedule="multistep"),
}

# task → Config fields per profile family (paper vs the digits profiles)
TASKS: dict[str, dict[str, dict[str, Any]]] = {
    "cifar10": {"paper": dict(dataset="cifar10", model="resnet18"), "digits": {}},
    "cifar100": {"paper": dict(dataset="cifar100", model="wrn28_10"), "digits": {}},
    "noisy-cifar10": {"paper": dict(dataset="cifar10", model="resnet18", noise_kind="uniform", noise_rate=0.4),
                      "digits": dict(noise_kind="uniform", noise_rate=0.4)},
}

# the shared optimiser: MLR-SNet's recipe (SGD 0.1, momentum 0), milestones at 50% and 75%
SHARED: dict[str, dict[str, Any]] = {
    "paper": dict(epochs=200, batch_size=128, lr=0.1, momentum=0.0, weight_decay=5e-4, meta_per_class=100,
                  milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0),
    "laptop": dict(epochs=60, batch_size=64, lr=0.1, momentum=0.0, weight_decay=5e-4, meta_per_class=10,
                   milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0),
    "smoke": dict(epochs=3, batch_size=64, lr=0.1, momentum=0.0, weight_decay=5e-4, meta_per_class=5,
                  milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0),
}


# what a dataset changes in SHARED: MNIST-1D at laptop trains on the noise table's 12,000 signals
# (1,200 a class, 100-a-class meta set) for 20 epochs, so a schedule comparison takes minutes
DATASET_SHARED: dict[tuple[str, str], dict[str, Any]] = {
    ("laptop", "mnist1d"): dict(epochs=20, batch_size=128, train_per_class=1200, meta_per_class=100),
}


def available_entries() -> list[str]:
    """Entries whose method is registered (``mwnet`` only once it exists).

    Example:
        >>> "cosine" in available_entries()
        True
    """
    return [name for name, fields in ENTRIES.items() if fields["method"] in METHODS]


def table_config(task: str, entry: str, profile: str, seed: int = 0, **overrides: Any) -> Config:
    """The `Config` of one cell of a table; ``overrides`` win over everything.

    Example:
        >>> c = table_config("noisy-cifar10", "cosine", "smoke").resolve()
        >>> c.dataset, c.noise_rate, c.momentum, c.schedule
        ('digits', 0.4, 0.0, 'cosine')
        >>> table_config("cifar10", "fixed", "laptop", dataset="mnist1d").resolve().train_per_class
        1200
    """
    require("task", task, object, choices=sorted(TASKS))
    require("entry", entry, object, choices=sorted(ENTRIES))
    require("profile", profile, object, choices=sorted(SHARED))
    family = "paper" if profile == "paper" else "digits"
    dataset = overrides.get("dataset") or TASKS[task][family].get("dataset") or "digits"
    fields = {**SHARED[profile], **DATASET_SHARED.get((profile, dataset), {}), **TASKS[task][family], **ENTRIES[entry],
              **overrides}
    return Config(profile=profile, seed=seed, progress=False, **fields)


def schedule_job(config: Config) -> dict:
    """One run of a schedule table (what an executor receives): its numbers, not its model.

    Example:
        >>> out = schedule_job(table_config("cifar10", "cosine", "smoke", epochs=1))
        >>> list(out)[-6:], out["final_lr"] > 0
        (['val_epoch', 'test_acc_at_val', 'mid_lr', 'final_lr', 'train_acc', 'seconds'], True)
    """
    start = time.perf_counter()
    result = run(config)
    h = result.history
    return {**{m: float(result.metrics[m]) for m in METRICS if m in result.metrics}, **val_selected(h),
            "mid_lr": float(h["lr"].iloc[len(h) // 2]), "final_lr": float(h["lr"].iloc[-1]),
            "train_acc": float(h["train_acc"].iloc[-1]), "seconds": time.perf_counter() - start}


def val_selected(history: pd.DataFrame) -> dict:
    """The epoch of the best validation accuracy and the test accuracy there (model selection on val, never test).

    Returns ``{}`` when the run has no validation split (CIFAR).

    Example:
        >>> h = pd.DataFrame({"epoch": [1, 2, 3], "val_acc": [50.0, 70.0, 60.0], "test_acc": [48.0, 66.0, 69.0]})
        >>> val_selected(h)
        {'val_epoch': 2, 'test_acc_at_val': 66.0}
    """
    if "val_acc" not in history or history["val_acc"].isna().all():
        return {}
    best = history["val_acc"].idxmax()  # the first epoch with the best validation accuracy
    return {"val_epoch": int(history.loc[best, "epoch"]), "test_acc_at_val": float(history.loc[best, "test_acc"])}


def schedule_table(task: str, profile: str = "laptop", seeds: Sequence[int] = (0,),
                   entries: Sequence[str] | None = None, verbose: bool = False, executor: Executor | None = None,
                   csv_path: str | Path | None = None, job: Callable = schedule_job, **overrides: Any) -> pd.DataFrame:
    """Train every entry on every seed; one row per run (results format, method ``sched_<entry>``).

    Args:
        task: a key of `TASKS`.
        profile: smoke | laptop | paper.
        seeds: the seeds (split, init and batch order).
        entries: names from `ENTRIES` (default: every available one).
        verbose: print one line per run (a failed run with its traceback).
        executor: run through it (`metakit.experiments.executors.make_executor`); a failed run is left out.
        csv_path: keep the rows here; runs already in it are skipped (see `metakit.experiments.grid.run_grid`).
        job: runs one config (default `schedule_job`; tests may pass a fake).
        **overrides: Config fields for every run (e.g. ``epochs=10``, ``noise_rate=0``).

    Returns:
        The results columns (with momentum), then entry, profile, epochs, mid_lr, final_lr
        (per-epoch mean LRs), train_acc.
    """
    entries = list(entries or available_entries())
    missing = [e for e in entries if e not in available_entries()]
    if missing:
        raise ValueError(f"entries={missing} are unknown or their method is not registered; "
                         f"use some of {available_entries()}.")
    runs = []
    for entry in entries:
        for seed in seeds:
            config = table_config(task, entry, profile, seed, **overrides)
            epochs = config.resolve().epochs
            runs.append(GridRun(config, f"sched_{entry}", tags={"entry": entry, "profile": profile, "epochs": epochs}))
    log = (lambda line: print(f"{task} {line}", flush=True)) if verbose else None
    df = run_grid(runs, csv_path, job=job, executor=executor, momentum=True, log=log, progress=verbose, desc=task)
    return df[df["error"].isna()].drop(columns="error").reset_index(drop=True)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std of test accuracy and the final LR per entry; paired deltas against ``sched_fixed``.

    Example:
        >>> s = summarise(pd.DataFrame({"dataset": "digits", "setting": "balanced", "method": "sched_a",
        ...                             "seed": [0, 1], "test_acc": [90.0, 92.0], "final_lr": [0.1, 0.1]}))
        >>> s[["method", "seeds", "test_acc_mean"]].values.tolist()
        [['sched_a', 2, 91.0]]
    """
    reference = f"sched_{REFERENCE_ENTRY}"
    return grid_summary.summarise(runs, ["test_acc", "final_lr"], reference if reference in set(runs["method"]) else None)


def write_table(task: str, out: str | Path, profile: str = "paper", seeds: Sequence[int] = (0,),
                entries: Sequence[str] | None = None, executor: Executor | None = None, command: str = "",
                **overrides: Any) -> pd.DataFrame:
    """Run `schedule_table` into ``out`` (resumable), write the summary (``*_summary.csv``) and markdown beside it.

    Args:
        task, profile, seeds, entries, executor, overrides: see `schedule_table`.
        out: the CSV of every run.
        command: the command line that made the table, named in the markdown with the commit.

    Returns:
        The summary (`summarise`).
    """
    out = Path(out)
    runs = schedule_table(task, profile, seeds, entries, verbose=True, executor=executor, csv_path=out, **overrides)
    summary = summarise(runs)
    reference = f"sched_{REFERENCE_ENTRY}" if "test_acc_delta" in summary.columns else None
    text = grid_summary.render_markdown(summary, reference=reference)
    grid_summary.write_outputs(runs, out.with_suffix(""), text, command, f"Schedule table {task}, profile {profile}",
                               summary)
    return summary


def frozen_options(schedule_file: str | Path) -> dict[str, str]:
    """The ``mlrsnet`` options that run a saved schedule frozen: the staged meta-test on a snapshots file,
    the ``final_net`` ablation on a single LR net.

    Example:
        >>> import tempfile, pathlib
        >>> from metakit.learners.lr_net import MLRSNet, save_schedule
        >>> path = save_schedule(MLRSNet(10, hidden=4, gamma=0.2), pathlib.Path(tempfile.mkdtemp()) / "s.pt")
        >>> frozen_options(path)["variant"]
        'final_net'
    """
    kind = read_header(schedule_file, ("lr_net", "lr_snapshots"), argument="schedule_file")["kind"]
    return {"schedule_file": str(schedule_file)} | ({"variant": "final_net"} if kind == "lr_net" else {})


def transfer_table(schedule_file: str | Path, variations: dict[str, dict[str, Any]], profile: str = "laptop",
                   seed: int = 0, baselines: Sequence[str] = ("fixed", "cosine"), task: str = "cifar10") -> pd.DataFrame:
    """A frozen learned schedule against hand-designed ones on runs it was not trained on.

    Args:
        schedule_file: saved snapshots (``result.learner`` of a faithful run) or one LR net
            (`metakit.learners.lr_net.save_schedule`); see `frozen_options`.
        variations: name → Config overrides (e.g. ``{"batch 128": {"batch_size": 128}}``).
        profile: smoke | laptop | paper.
        seed: one seed for every run.
        baselines: hand-designed entries run under the same variation.
        task: the `TASKS` key the variations start from.

    Returns:
        One row per (variation, schedule): test_acc, final_lr, epochs, seconds.

    Example:
        >>> import tempfile, pathlib
        >>> from metakit.learners.lr_net import MLRSNet, save_schedule
        >>> path = save_schedule(MLRSNet(10, hidden=4, gamma=0.2), pathlib.Path(tempfile.mkdtemp()) / "s.pt")
        >>> df = transfer_table(path, {"mlp": {"model": "mlp", "epochs": 1}}, "smoke", baselines=["fixed"])
        >>> df["schedule"].tolist()
        ['fixed', 'learned']
    """
    runs = []
    for variation, overrides in variations.items():
        configs = {name: table_config(task, name, profile, seed, **overrides) for name in baselines}
        configs["learned"] = table_config(task, "mlrsnet", profile, seed, options=frozen_options(schedule_file),
                                          **overrides)
        runs += [GridRun(c, f"sched_{name}", variation, tags={"variation": variation, "schedule": name,
                                                               "epochs": c.resolve().epochs}) for name, c in configs.items()]
    df = run_grid(runs, job=schedule_job)
    failed = df["error"].dropna()
    if len(failed):
        raise RuntimeError(f"transfer run {df.loc[failed.index[0], 'schedule']!r} failed:\n{failed.iloc[0]}")
    return df[["variation", "schedule", "test_acc", "final_lr", "epochs", "seconds"]]
