"""The LR-net learning study: does meta-training make MLR-SNet's net anneal, and at what cost?

Each row meta-trains a source schedule (the balanced task of `metakit.studies.schedules` on
digits or MNIST-1D, as the schedule-transfer study's source) at one meta-update cadence
(`CADENCES`), on every seed, and records the snapshots' output LR / γ on the source's initial
loss (`metakit.probes.lr_net.learning_job`): the authors' snapshots fall from 0.73 to 0.018, a
last / first ratio of 0.025. Its findings pair each cadence with the default on accuracy.

Command line: ``python -m metakit study lr_net_learning --seeds 0 1 2 --workers 2``.

Example:
    >>> [(r.labels(True)["dataset"], r.variant) for r in STUDY.rows(Plan("smoke", (0,), {"sources": ["digits"]}))]
    [('digits', ''), ('digits', 'once_an_epoch')]
"""
from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

from metakit.options import require
from metakit.probes.lr_net import learning_job
from metakit.studies import report, stats
from metakit.studies.findings import Claim
from metakit.studies.grid import GridRun, profile_tags
from metakit.studies.registry import register
from metakit.studies.schedule_transfer import SOURCES, TASK, narrow
from metakit.studies.schedules import table_config
from metakit.studies.study import Plan, Study

# variant → the mlrsnet options it changes (the default: MLRSNetOptions' meta-update budget)
CADENCES: dict[str, dict[str, Any]] = {
    "": {},
    "once_an_epoch": {"meta_updates": None, "meta_every_epochs": 1},
    "meta_updates_600": {"meta_updates": 600},
}
METRICS = ["test_acc", "test_acc_at_val", "out_first", "out_last", "out_ratio", "lr_last", "meta_updates", "seconds"]


def rows(plan: Plan) -> list[GridRun]:
    """Every (source, cadence, seed): choices ``sources`` (both), ``cadences`` ("" and once_an_epoch), ``momentum``."""
    sources = plan.get("sources", list(SOURCES))
    cadences = plan.get("cadences", ["", "once_an_epoch"])
    for name in sources:
        require("sources", name, object, choices=SOURCES)
    for name in cadences:
        require("cadences", name, object, choices=list(CADENCES))
    momentum = float(plan.get("momentum", 0.0))
    runs = []
    for source, cadence, seed in itertools.product(sources, cadences, plan.seeds):
        fields = narrow({"dataset": source, **plan.overrides})
        config = table_config(TASK, "mlrsnet", plan.profile, seed, momentum=momentum,
                              options=dict(CADENCES[cadence]), **fields)
        runs.append(GridRun(config, "mlrsnet", cadence, profile_tags(config)))
    return runs


def write(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Mean ± std of each metric per (source, cadence), paired deltas of accuracy against the default."""
    metrics = [m for m in METRICS if m in df.columns]
    summary = stats.summarise(df, metrics)
    text = ""
    for metric in metrics:
        unit = {"seconds": "s", "meta_updates": "count"}.get(metric, "%" if "acc" in metric else "LR / γ")
        text += report.render_markdown(stats.summarise(df, [metric]), metric, unit=unit) + "\n"
    return text + ("out_*: the snapshot's output LR / γ on the run's initial training loss after 100 steps from a "
                   "fresh state (first, mid, last snapshot of the staged meta-test); out_ratio = last / first. "
                   "lr_last: the LR / γ of the run's last epoch.\n"), summary


def claims(df: pd.DataFrame) -> list[Claim]:
    """The default cadence within 1.0 of each other cadence (or above it) on the final and the
    validation-selected test accuracy: learning to anneal must not cost accuracy."""
    out = []
    for (dataset, setting), part in df.groupby(["dataset", "setting"], sort=False):
        variants = [v for v in dict.fromkeys(part["variant"]) if v]
        for v in variants:
            out += [Claim("mlrsnet", f"mlrsnet:{v}", dataset, setting, -1.0, metric, headline=metric == "test_acc")
                    for metric in ("test_acc", "test_acc_at_val") if metric in df.columns]
    return out


def measures(df: pd.DataFrame) -> str:
    """The last snapshot's output over the first's, mean ± std over seeds, per source and cadence."""
    parts = []
    for (dataset, variant), rows_ in df.groupby(["dataset", "variant"], sort=False):
        parts.append(f"{dataset} {variant or 'default'} {rows_['out_ratio'].mean():.2f} ± {rows_['out_ratio'].std():.2f}")
    return "Last / first snapshot output (the authors': 0.025): " + "; ".join(parts) + "."


STUDY = register(Study(
    name="lr_net_learning", title="MLR-SNet: does the LR net learn to anneal", rows=rows, job=learning_job, momentum=True,
    write=write, claims=claims, measures=measures,
    choices={"sources": f"of {list(SOURCES)} (default: both)",
             "cadences": f"of {list(CADENCES)} (default: the default and once_an_epoch)",
             "momentum": "the source's SGD momentum (default 0)"}))
