"""Compare LR schedules on one task: hand-designed, adaptive (Adam, HD) and MLR-SNet.

Every entry trains the same classifier on the same split with the same optimiser (SGD,
momentum 0 as in MLR-SNet) except where the entry is the optimiser (Adam); only the LR differs.
``python -m metakit study schedules --task <task> --profile paper --out <csv>`` writes one CSV per
task (resumable), its summary, markdown and findings beside it: every entry is the method
``sched_<entry>``, labelled by momentum, compared with ``sched_fixed``.

Tasks (paper profile → digits at smoke/laptop):

- ``cifar10``: ResNet-18 on CIFAR-10, 200 epochs (MLR-SNet Fig. 3).
- ``cifar100``: WRN-28-10 on CIFAR-100, 200 epochs.
- ``noisy-cifar10``: ResNet-18 on CIFAR-10 with 40% uniform label noise and a clean meta set.

Example:
    >>> plan = Plan("smoke", (0,), {"task": "noisy-cifar10", "entries": ["fixed", "hd"]})
    >>> [(r.method, r.config.resolve().noise_rate) for r in STUDY.rows(plan)]
    [('sched_fixed', 0.4), ('sched_hd', 0.4)]
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from metakit.experiments import Config, run
from metakit.probes.history import val_selected
from metakit.studies import report, stats
from metakit.studies.findings import Claim
from metakit.studies.grid import METRICS, GridRun, profile_tags, run_grid
from metakit.studies.registry import register
from metakit.studies.study import Plan, Study
from metakit.learners.store import read_header
from metakit.methods import METHODS
from metakit.options import require

REFERENCE = "sched_fixed"  # paired deltas are against the fixed LR

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


def rows(plan: Plan) -> list[GridRun]:
    """Every entry on every seed of one task (choices ``task``, default cifar10, and ``entries``)."""
    task = plan.get("task", "cifar10")
    entries = list(plan.get("entries", available_entries()))
    missing = [e for e in entries if e not in available_entries()]
    if missing:
        raise ValueError(f"entries={missing} are unknown or their method is not registered; "
                         f"use some of {available_entries()}.")
    runs = []
    for entry, seed in itertools.product(entries, plan.seeds):
        config = table_config(task, entry, plan.profile, seed, **plan.overrides)
        runs.append(GridRun(config, f"sched_{entry}", tags=profile_tags(config, entry=entry)))
    return runs


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std of test accuracy and the final LR per entry; paired deltas against ``sched_fixed``.

    Example:
        >>> s = summarise(pd.DataFrame({"dataset": "digits", "setting": "balanced", "method": "sched_a",
        ...                             "seed": [0, 1], "test_acc": [90.0, 92.0], "final_lr": [0.1, 0.1]}))
        >>> s[["method", "seeds", "test_acc_mean"]].values.tolist()
        [['sched_a', 2, 91.0]]
    """
    return stats.summarise(runs, ["test_acc", "final_lr"], REFERENCE if REFERENCE in set(runs["method"]) else None)


def write(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The markdown (with the paired deltas against the fixed LR) and the summary."""
    summary = summarise(df)
    reference = REFERENCE if "test_acc_delta" in summary.columns else None
    return report.render_markdown(summary, reference=reference), summary


def claims(df: pd.DataFrame) -> list[Claim]:
    """Every schedule beats the fixed LR; the meta-learned one (the headline) beats every other."""
    out = []
    for (dataset, setting), part in df.groupby(["dataset", "setting"], sort=False):
        methods = list(dict.fromkeys(part["method"]))
        out += [Claim(m, REFERENCE, dataset, setting) for m in methods if m != REFERENCE and REFERENCE in methods]
        if "sched_mlrsnet" in methods:
            out += [Claim("sched_mlrsnet", m, dataset, setting, headline=True) for m in methods
                    if m not in ("sched_mlrsnet", REFERENCE)]
    return out


STUDY = register(Study(
    name="schedules", title="LR schedules on one task", rows=rows, job=schedule_job, momentum=True, write=write,
    claims=claims, choices={"task": f"one of {sorted(TASKS)} (digits at smoke/laptop; default cifar10)",
                            "entries": "subset of metakit.studies.schedules.ENTRIES"}))


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
