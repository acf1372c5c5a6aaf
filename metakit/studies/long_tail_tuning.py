"""The long-tail tuning study: one rule for every method, chosen on validation over the tuning settings together.

Each method may take one of at most four values of its one or two most important knobs (`GRID`; the
first is its paper's or official code's default), run on every tuning setting (`SETTINGS`: digits-LT
IF 10 and 20, MNIST-1D-LT IF 100 and 10) and seed. `choose` ranks a method's values by their mean
paired validation difference from cross-entropy over the settings together (each setting counts
once), never by test; held-out settings (other imbalances) then check the choice elsewhere.

Command line: ``python -m metakit study long_tail_tuning --seeds 0 1 2 --workers 2``.

Example:
    >>> rows = STUDY.rows(Plan("smoke", (0,), {"methods": ["focal"]}))
    >>> len(rows), sorted({r.variant for r in rows})[:3]
    (20, ['', 'focal_gamma_0.5', 'focal_gamma_1'])
"""
from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

from metakit.experiments import Config
from metakit.options import require
from metakit.studies import report, stats
from metakit.studies.findings import Claim
from metakit.studies.grid import GridRun, profile_tags
from metakit.studies.registry import register
from metakit.studies.study import Plan, Study

SETTINGS = (("digits", 10), ("digits", 20), ("mnist1d", 100), ("mnist1d", 10))   # where choices are made
# method → variant → Config fields ("options": the method's); the first is its paper's or official code's value
GRID: dict[str, dict[str, dict[str, Any]]] = {
    "cb_loss": {f"beta_{b:g}": {"options": {"beta": b}} for b in (0.9999, 0.9, 0.99, 0.999)},
    "cb_resample": {"": {}},   # each class equally often: no knob
    "focal": {f"focal_gamma_{g:g}": {"options": {"focal_gamma": g}} for g in (1.0, 0.5, 2.0, 3.0)},
    "logit_adj": {f"tau_{t:g}": {"options": {"tau": t}} for t in (1.0, 0.5, 1.5, 2.0)},
    "ldam_drw": {f"max_m_{m:g}": {"options": {"max_m": m}} for m in (0.5, 0.25, 0.75, 1.0)},
    "mwnet": {f"meta_lr_{lr:g}": {"meta_lr": lr, "options": {"meta_optimizer": "sgd", "meta_weight_decay": 5e-4}}
              for lr in (1e-5, 1e-4, 1e-3, 1e-2)},
    "mfm": {f"where_{w}_start_{s:g}": {"options": {"where": w, "meta_start": s}}
            for w, s in (("fc", 0.9), ("fc", 0.0), ("blocks+fc", 0.9), ("blocks+fc", 0.0))},
    "mfm_net": {f"where_{w}_start_{s:g}": {"options": {"where": w, "meta_start": s}}
                for w, s in (("fc", 0.9), ("fc", 0.0), ("blocks+fc", 0.9), ("blocks+fc", 0.0))},
}
REFERENCE = "ce"


def rows(plan: Plan) -> list[GridRun]:
    """Every (setting, method value, seed), cross-entropy among them: choice ``methods`` (default all of `GRID`)."""
    methods = list(plan.get("methods", list(GRID)))
    for name in methods:
        require("methods", name, object, choices=list(GRID))
    cells = [(REFERENCE, "", {})] + [(m, v, f) for m in methods for v, f in GRID[m].items()]
    runs = []
    for (dataset, imbalance), seed, (method, variant, fields) in itertools.product(SETTINGS, plan.seeds, cells):
        fields = dict(fields)
        config = Config(method=method, dataset=dataset, imbalance=float(imbalance), seed=seed, profile=plan.profile,
                        progress=False, options=fields.pop("options", {}), **fields, **plan.overrides)
        runs.append(GridRun(config, None, variant, profile_tags(config)))
    return runs


def choose(df: pd.DataFrame) -> pd.DataFrame:
    """Per method, its values ranked by mean paired val_acc delta from ce over the tuning settings (test beside);
    the chosen one is the best that ran on every setting ce ran on (a value missing one, e.g. diverged, is not).

    Example:
        >>> df = pd.DataFrame({"dataset": "d", "setting": ["a"] * 3 + ["b"] * 3, "method": ["ce", "focal", "focal"] * 2,
        ...                    "variant": ["", "", "x"] * 2, "seed": 0, "val_acc": [50.0, 52, 55, 60, 61, 60],
        ...                    "test_acc": 0.0})
        >>> choose(df)[["method", "variant", "val_delta", "chosen"]].values.tolist()
        [['focal', 'x', 2.5, True], ['focal', '', 1.5, False]]
        >>> choose(df.drop(index=5))[["variant", "val_delta", "settings", "chosen"]].values.tolist()   # x lacks b
        [['x', 5.0, 1, False], ['', 1.5, 2, True]]
    """
    summary = stats.summarise(df, ["val_acc", "test_acc"], REFERENCE)
    mine = summary[summary["method"] != REFERENCE]
    ranked = (mine.groupby(["method", "variant"], sort=False)
              .agg(val_delta=("val_acc_delta", "mean"), test_delta=("test_acc_delta", "mean"),
                   settings=("setting", "size")).reset_index()
              .sort_values(["method", "val_delta"], ascending=[True, False], kind="stable"))
    every = summary[summary["method"] == REFERENCE][["dataset", "setting"]].drop_duplicates().shape[0]
    complete = ranked["settings"] == every
    ranked["chosen"] = complete & ~ranked[complete].duplicated("method").reindex(ranked.index, fill_value=True)
    return ranked.reset_index(drop=True)


def write(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Mean ± std per row, then each method's values ranked on validation and the one chosen."""
    summary = stats.summarise(df, ["test_acc", "val_acc"], REFERENCE)
    text = report.render_markdown(summary, "val_acc", reference=REFERENCE)
    ranked = choose(df)
    text += ("\n### Chosen on validation over the tuning settings together\n\nEach value's mean paired val_acc "
             "difference from ce over the settings it ran (test_acc beside it, never ranking):\n\n"
             "| method | value | val Δ vs ce | test Δ vs ce | settings | chosen |\n|---|---|---|---|---|---|\n")
    text += "".join(f"| {r.method} | {r.variant} | {r.val_delta:+.2f} | {r.test_delta:+.2f} | "
                    f"{r.settings} | {'yes' if r.chosen else ''} |\n" for r in ranked.itertuples())
    return text, summary


def claims(df: pd.DataFrame) -> list[Claim]:
    """Each method's chosen value beats ce on validation in each tuning setting (headline: test)."""
    chosen = choose(df)
    chosen = chosen[chosen["chosen"]]
    out = []
    for (dataset, setting), _ in df.groupby(["dataset", "setting"], sort=False):
        for r in chosen.itertuples():
            out += [Claim(f"{r.method}:{r.variant}", REFERENCE, dataset, setting, 0.0, metric, headline=metric == "test_acc")
                    for metric in ("val_acc", "test_acc")]
    return out


STUDY = register(Study(
    name="long_tail_tuning", title="Long-tail tuning: one rule for every method", rows=rows, write=write,
    claims=claims, choices={"methods": f"of {list(GRID)} (default: all; ce always runs as the reference)"}))
