"""Compare LR schedules on one task: hand-designed, adaptive (Adam, HD) and MLR-SNet.

Every entry trains the same classifier on the same split with the same optimiser (SGD,
momentum 0 as in MLR-SNet) except where the entry is the optimiser (Adam); only the LR differs.
``python -m metakit schedule-table <task> --profile paper`` writes one CSV per table.

Tasks (paper profile → digits at smoke/laptop):

- ``cifar10``: ResNet-18 on CIFAR-10, 200 epochs (MLR-SNet Fig. 3).
- ``cifar100``: WRN-28-10 on CIFAR-100, 200 epochs.
- ``noisy-cifar10``: ResNet-18 on CIFAR-10 with 40% uniform label noise and a clean meta set.

Example:
    >>> df = schedule_table("noisy-cifar10", profile="smoke", seeds=[0], entries=["fixed", "hd"], epochs=1)
    >>> sorted(df["entry"]), bool(df["test_acc"].between(0, 100).all())
    (['fixed', 'hd'], True)
"""
from __future__ import annotations

import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from metakit.experiments.executors import map_jobs
from metakit.experiments import Config, run
from metakit.io import atomic_write_text
from metakit.methods import METHODS

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
    "mlrsnet_every_step": dict(method="mlrsnet", options={"meta_every": 1}),
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
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is unknown; use one of {sorted(TASKS)}.")
    if entry not in ENTRIES:
        raise ValueError(f"entry={entry!r} is unknown; use one of {sorted(ENTRIES)}.")
    if profile not in SHARED:
        raise ValueError(f"profile={profile!r} is unknown; use one of {sorted(SHARED)}.")
    family = "paper" if profile == "paper" else "digits"
    fields = {**SHARED[profile], **TASKS[task][family], **ENTRIES[entry], **overrides}
    return Config(profile=profile, seed=seed, progress=False, **fields)


def schedule_job(config: Config) -> dict:
    """One run of a schedule table (what an executor receives): its numbers, not its model."""
    start = time.perf_counter()
    result = run(config)
    h = result.history
    return {"test_acc": result.metrics["test_acc"], "mid_lr": float(h["lr"].iloc[len(h) // 2]),
            "final_lr": float(h["lr"].iloc[-1]), "train_acc": float(h["train_acc"].iloc[-1]),
            "seconds": time.perf_counter() - start}


def schedule_table(task: str, profile: str = "laptop", seeds: Sequence[int] = (0,),
                   entries: Sequence[str] | None = None, verbose: bool = False, executor: Executor | None = None,
                   **overrides: Any) -> pd.DataFrame:
    """Train every entry on every seed; one row per run.

    Args:
        task: a key of `TASKS`.
        profile: smoke | laptop | paper.
        seeds: the seeds (split, init and batch order).
        entries: names from `ENTRIES` (default: every available one).
        verbose: print one line per run (a failed run with its traceback).
        executor: run through it (`metakit.experiments.executors.make_executor`); a failed run is left out.
        **overrides: Config fields for every run (e.g. ``epochs=10``, ``noise_rate=0``).

    Returns:
        Columns entry, seed, test_acc, mid_lr, final_lr (per-epoch mean LRs), train_acc, seconds.
    """
    entries = list(entries or available_entries())
    missing = [e for e in entries if e not in available_entries()]
    if missing:
        raise ValueError(f"entries={missing} are unknown or their method is not registered; "
                         f"use some of {available_entries()}.")
    configs = [(e, s, table_config(task, e, profile, s, **overrides).resolve()) for e in entries for s in seeds]
    outcomes = map_jobs(schedule_job, [c for _, _, c in configs], executor, progress=verbose, desc=task)
    rows = []
    for (entry, seed, _), outcome in zip(configs, outcomes):
        if not outcome.ok:
            if verbose:
                print(f"{task} {entry} seed {seed}: FAILED\n{outcome.error}", flush=True)
            continue
        rows.append({"entry": entry, "seed": seed, **outcome.value})
        if verbose:
            print(f"{task} {entry:<20} seed {seed}: test {rows[-1]['test_acc']:.1f}%  "
                  f"final lr {rows[-1]['final_lr']:.4f}  ({rows[-1]['seconds']:.0f} s)", flush=True)
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std of test accuracy (and the final LR) per entry, in the order of ``runs``.

    Example:
        >>> summarise(pd.DataFrame({"entry": ["a", "a"], "seed": [0, 1], "test_acc": [90.0, 92.0],
        ...                         "final_lr": [0.1, 0.1]}))["test_acc"].tolist()
        ['91.0 ± 1.4']
    """
    order = list(dict.fromkeys(runs["entry"]))
    g = runs.groupby("entry", sort=False)
    out = pd.DataFrame({"runs": g.size(), "mean": g["test_acc"].mean(), "std": g["test_acc"].std(ddof=1).fillna(0.0),
                        "final_lr": g["final_lr"].mean()}).loc[order]
    out["test_acc"] = [f"{m:.1f} ± {s:.1f}" for m, s in zip(out["mean"], out["std"])]
    return out.reset_index()[["entry", "runs", "test_acc", "mean", "std", "final_lr"]]


def write_table(task: str, out: str | Path, profile: str = "paper", seeds: Sequence[int] = (0,),
                entries: Sequence[str] | None = None, executor: Executor | None = None,
                **overrides: Any) -> pd.DataFrame:
    """Run `schedule_table`, write every run to ``out`` and the summary beside it (``*_summary.csv``)."""
    out = Path(out)
    runs = schedule_table(task, profile, seeds, entries, verbose=True, executor=executor, **overrides)
    atomic_write_text(out, runs.to_csv(index=False))
    summary = summarise(runs)
    atomic_write_text(out.with_name(out.stem + "_summary.csv"), summary.to_csv(index=False))
    return summary


def transfer_table(schedule_file: str | Path, variations: dict[str, dict[str, Any]], profile: str = "laptop",
                   seed: int = 0, baselines: Sequence[str] = ("fixed", "cosine"), task: str = "cifar10") -> pd.DataFrame:
    """A frozen learned schedule against hand-designed ones on runs it was not trained on.

    Args:
        schedule_file: a saved LR net (`metakit.learners.lr_net.save_schedule`).
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
    rows = []
    for variation, overrides in variations.items():
        configs = {name: table_config(task, name, profile, seed, **overrides) for name in baselines}
        configs["learned"] = table_config(task, "mlrsnet", profile, seed, options={"schedule_file": str(schedule_file)},
                                          **overrides)
        for name, config in configs.items():
            start = time.perf_counter()
            result = run(config)
            rows.append({"variation": variation, "schedule": name, "test_acc": result.metrics["test_acc"],
                         "final_lr": float(result.history["lr"].iloc[-1]), "epochs": result.config.epochs,
                         "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)
