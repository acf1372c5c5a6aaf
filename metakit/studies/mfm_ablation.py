"""The MFM ablation study: what each reading choice of MFM is worth at one long-tail setting.

Rows, all over the same seeds and splits (so every delta is paired): the headline methods
(`HEADLINE`, ``ce`` the reference), ``mfm`` with one choice changed (`ABLATIONS`: where γ/β act,
γ- or β-only, when meta-learning starts, meta-set size, meta-LR, the meta forward's BatchNorm mode,
the meta-gradient; ``net_*``: the modulator network's width, sharing and meta-LR), combinations with another method's trick (`COMBINATIONS`, never the MFM row),
and the frozen-θ bound (`BOUNDS`, `metakit.probes.mfm_bound`). `choose_defaults` ranks MFM's
variants on validation over IF 10 and 100 together; other imbalances stay held out.

Command line: ``python -m metakit study mfm_ablation --datasets mnist1d --imbalances 100 --seeds 0 1 2``.

Example:
    >>> [r.variant for r in ablation_runs(["digits"], [10], [0], "smoke", variants=["gamma_only"])]
    ['gamma_only']
"""
from __future__ import annotations

import functools
import itertools
from typing import Any, Sequence

import pandas as pd

from metakit.data.longtail import check_imbalance
from metakit.data.sources import DATASETS
from metakit.experiments import Config
from metakit.studies import report, stats
from metakit.options import require
from metakit.probes.mfm_bound import bound_job
from metakit.studies.findings import Claim
from metakit.studies.grid import GridRun, columns, profile_tags
from metakit.studies.registry import register
from metakit.studies.study import Plan, Study

HEADLINE = ("ce", "logit_adj", "ldam_drw", "mwnet", "mfm", "mfm_net")
# variant → (method, Config fields; "options" are the method's options)
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "where_blocks": ("mfm", {"options": {"where": "blocks"}}),
    "where_blocks+fc": ("mfm", {"options": {"where": "blocks+fc"}}),
    "gamma_only": ("mfm", {"options": {"params": "gamma"}}),
    "beta_only": ("mfm", {"options": {"params": "beta"}}),
    "meta_start_0": ("mfm", {"options": {"meta_start": 0.0}}),
    "meta_start_0.5": ("mfm", {"options": {"meta_start": 0.5}}),
    "meta_per_class_5": ("mfm", {"meta_per_class": 5}),
    "meta_per_class_20": ("mfm", {"meta_per_class": 20}),
    "meta_lr_3e-3": ("mfm", {"meta_lr": 3e-3}),
    "meta_lr_1e-2": ("mfm", {"meta_lr": 1e-2}),
    "meta_lr_1e-1": ("mfm", {"meta_lr": 1e-1}),
    "meta_mode_train": ("mfm", {"options": {"meta_mode": "train"}}),
    "first_order": ("mfm", {"options": {"meta_gradient": "first_order"}}),
    "meta_off": ("mfm", {"options": {"meta_gradient": "off"}}),
    "plus_logit_adj": ("mfm", {"options": {"logit_adj": True}}),
    "plus_drw": ("mfm", {"options": {"drw": True}}),
    "plus_ldam_drw": ("mfm", {"options": {"ldam": True, "drw": True}}),
    # the modulator network (mfm_net): why per-sample γ/β trail per-channel ones
    "net_hidden_8": ("mfm_net", {"options": {"hidden": 8}}),
    "net_hidden_128": ("mfm_net", {"options": {"hidden": 128}}),
    "net_shared": ("mfm_net", {"options": {"shared": True}}),
    "net_meta_lr_1e-4": ("mfm_net", {"meta_lr": 1e-4}),
}
BOUNDS = {"fit_meta": "meta", "fit_val": "val"}  # variant of method "mfm_bound" → what γ/β are fitted on
VARIANTS = [f"{m}" for m in HEADLINE] + list(ABLATIONS) + list(BOUNDS)
SELECT_SETTINGS = ("lt_if10", "lt_if100")  # where defaults are chosen (on val_acc); other settings are held out
COLUMNS = columns() + ["profile", "epochs", "ce_test_acc"]


def ablation_config(method: str, fields: dict[str, Any], dataset: str, imbalance: float, seed: int, profile: str,
                    **overrides: Any) -> Config:
    """The `Config` of one row: ``method`` with ``fields`` (options merged) at the table's setting.

    Example:
        >>> c = ablation_config("mfm", {"meta_lr": 0.1}, "mnist1d", 100, 0, "laptop").resolve()
        >>> c.meta_lr, c.imbalance, c.epochs
        (0.1, 100, 20)
    """
    fields = dict(fields)
    options = fields.pop("options", {})
    return Config(method=method, dataset=dataset, imbalance=imbalance, seed=seed, profile=profile, progress=False,
                  options=options, **fields, **overrides)


def ablation_runs(datasets: Sequence[str], imbalances: Sequence[float], seeds: Sequence[int], profile: str,
                  variants: Sequence[str] | None = None, overrides: dict | None = None) -> list[GridRun]:
    """The table's runs, seed-major (every row of seed 0 first, so a chunk gives a whole first look).

    Args:
        datasets, imbalances: the settings (their product).
        variants: names from `VARIANTS` (a headline method's name, an ablation, a bound); None: all.

    Example:
        >>> [(r.labels()["method"], r.variant) for r in ablation_runs(["digits"], [10], [0], "smoke", ["ce", "fit_val"])]
        [('ce', ''), ('mfm_bound', 'fit_val')]
    """
    names = list(VARIANTS if variants is None else variants)
    for name in names:
        require("variants", name, object, choices=VARIANTS)
    for dataset in datasets:
        require("dataset", dataset, object, choices=DATASETS)
    for imbalance in imbalances:
        check_imbalance(imbalance)
    runs = []
    for seed, dataset, imbalance, name in itertools.product(seeds, datasets, imbalances, names):
        if name in HEADLINE:
            method, variant, fields = name, "", {}
        elif name in ABLATIONS:
            (method, fields), variant = ABLATIONS[name], name
        else:
            method, variant, fields = "ce", name, {}
        config = ablation_config(method, fields, dataset, imbalance, seed, profile, **(overrides or {}))
        job = functools.partial(bound_job, fit=BOUNDS[name]) if name in BOUNDS else None
        runs.append(GridRun(config, "mfm_bound" if name in BOUNDS else None, variant, profile_tags(config), job=job))
    return runs


COMBINATIONS = ("plus_logit_adj", "plus_drw", "plus_ldam_drw")  # MFM with another method's trick: reported, never a default


def choose_defaults(df: pd.DataFrame, method: str = "mfm") -> pd.DataFrame:
    """Rank ``method``'s variants by validation accuracy over every setting together; the first is chosen.

    A variant's score is the mean over (dataset, setting) of its paired val_acc difference from
    ce, so each setting counts once whatever its scale. The settings are those of
    `SELECT_SETTINGS` (IF 10 and 100) in ``df``; the candidates are the variants that ran in all
    of them (a variant missing from one is left out, not scored on fewer settings), never a
    combination (`COMBINATIONS`). Other settings (IF 20, 50) stay held out. The test accuracy
    difference is shown beside it and never ranks.

    Example:
        >>> df = pd.DataFrame({"dataset": "d", "setting": ["lt_if10"] * 4 + ["lt_if100"] * 3,
        ...                    "method": ["ce", "mfm", "mfm", "mfm"] + ["ce", "mfm", "mfm"],
        ...                    "variant": ["", "", "x", "y", "", "", "x"], "seed": 0,
        ...                    "val_acc": [50.0, 52, 51, 60, 60, 61, 64], "test_acc": 0.0})
        >>> choose_defaults(df)[["variant", "val_delta", "settings"]].values.tolist()
        [['x', 2.5, 2], ['', 1.5, 2]]
    """
    summary = stats.summarise(df, ["val_acc", "test_acc"], "ce")
    mine = summary[(summary["method"] == method) & summary["setting"].isin(SELECT_SETTINGS)
                   & ~summary["variant"].isin(COMBINATIONS)]
    settings = mine[["dataset", "setting"]].drop_duplicates().shape[0]
    covered = mine.groupby("variant", sort=False)["setting"].size()
    mine = mine[mine["variant"].isin(covered[covered == settings].index)]
    ranked = mine.groupby("variant", sort=False).agg(val_delta=("val_acc_delta", "mean"),
                                                     test_delta=("test_acc_delta", "mean"),
                                                     settings=("setting", "size"))
    return ranked.sort_values("val_delta", ascending=False, kind="stable").reset_index()


def render_markdown(df: pd.DataFrame) -> str:
    """Mean ± std per row, paired deltas against ce and against mfm at its defaults, seconds per run.

    Example:
        >>> df = pd.DataFrame({"dataset": "d", "setting": "lt_if10", "method": ["ce", "mfm", "mfm"],
        ...                    "variant": ["", "", "gamma_only"], "seed": 0, "test_acc": [60.0, 64.0, 63.0],
        ...                    "seconds": 1.0})
        >>> "| mfm (gamma_only) | -1.00 (n=1) |" in render_markdown(df)
        True
    """
    metrics = [m for m in ("test_acc", "val_acc", "medium_acc", "few_acc", "seconds") if m in df.columns]
    text = report.render_markdown(stats.summarise(df, metrics, "ce"), "test_acc", reference="ce")
    if "mfm" in set(df["method"]):
        against_mfm = report.render_markdown(stats.summarise(df, ["test_acc"], "mfm"), "test_acc",
                                                   reference="mfm")
        text += "\nPaired difference" + against_mfm.split("Paired difference", 1)[1]  # its delta table only
    for metric, unit in (("val_acc", "%"), ("medium_acc", "%"), ("seconds", "s")):
        if metric in metrics:
            text += "\n" + report.render_markdown(stats.summarise(df, [metric]), metric, unit=unit)
    selecting = df[df["setting"].isin(SELECT_SETTINGS)][["dataset", "setting"]].drop_duplicates()
    if len(selecting) > 1 and "val_acc" in df.columns and "mfm" in set(df["method"]):
        ranked = choose_defaults(df)
        text += ("\n### Defaults chosen on validation over the settings together\n\nmfm's variants that ran at IF 10 "
                 "and 100 of every dataset, by their mean paired val_acc difference from ce over those settings "
                 "(test_acc beside it, never ranking; combinations are not candidates; other imbalances are held "
                 "out):\n\n"
                 "| mfm variant | val Δ vs ce | test Δ vs ce | settings |\n|---|---|---|---|\n")
        text += "".join(f"| {r.variant or '(defaults)'} | {r.val_delta:+.2f} | {r.test_delta:+.2f} | {r.settings} |\n"
                        for r in ranked.itertuples())
        text += f"\nChosen: {ranked['variant'].iloc[0] or 'the current defaults'}.\n"
    return text + ("\nval_acc selects; test_acc is reported. mfm_bound (fit_val) fits γ/β on the validation split, "
                   "so its val_acc is left empty.\n")


def write(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The markdown (`render_markdown`) and the summary, paired against ce."""
    metrics = [m for m in ("test_acc", "val_acc", "medium_acc", "few_acc", "seconds") if m in df.columns]
    return render_markdown(df), stats.summarise(df, metrics, "ce")


def rows(plan: Plan) -> list[GridRun]:
    """The rows of a plan (choices ``datasets`` (mnist1d), ``imbalances`` (100), ``variants`` (all))."""
    return ablation_runs(plan.get("datasets", ["mnist1d"]), plan.get("imbalances", [100]), plan.seeds, plan.profile,
                         plan.get("variants", None), dict(plan.overrides))


def claims(df: pd.DataFrame) -> list[Claim]:
    """Headline rows beat ce (MFM the headline); each MFM ablation against MFM at its defaults."""
    out = []
    for (dataset, setting), part in df.groupby(["dataset", "setting"], sort=False):
        rows_ = part[["method", "variant"]].drop_duplicates()
        labels = [f"{m}:{v}" if v else m for m, v in rows_.itertuples(index=False)]
        if "ce" in labels:
            out += [Claim(x, "ce", dataset, setting, headline=x == "mfm") for x in labels if x != "ce"]
        if "mfm" in labels:
            out += [Claim(x, "mfm", dataset, setting) for x in labels if x.startswith("mfm:")]
    return out


STUDY = register(Study(
    name="mfm_ablation", title="MFM ablation", rows=rows, write=write, claims=claims,
    choices={"datasets": "default: mnist1d", "imbalances": "default: 100",
             "variants": "rows of metakit.studies.mfm_ablation.VARIANTS (default: all)"}))
