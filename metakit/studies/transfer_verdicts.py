"""The schedule-transfer table's markdown: mean ± std per row, and a verdict per variation.

For each (dataset, setting, momentum) of `metakit.studies.schedule_transfer`'s rows, `verdicts`
compares the frozen MLR-SNet (``sched_mlrsnet``, variant ``""``, and each ablation variant present,
one verdict line each) with:

- the best hand schedule of that momentum, chosen by mean validation accuracy (never by test; for
  the language model by best validation perplexity), paired by seed, on the final test accuracy
  and on the test accuracy at the validation-selected epoch; the target is a paired mean no worse
  than −1.0 point (the language model: perplexity within 5% of the best hand schedule's);
- at momentum 0, the fixed LR: the target is a paired mean above twice the paired delta's std.

Example:
    >>> rows = pd.DataFrame({"dataset": "d", "setting": "transfer_same", "momentum": 0.0, "variant": "",
    ...     "method": ["sched_mlrsnet"] * 2 + ["sched_fixed"] * 2 + ["sched_cosine"] * 2, "seed": [0, 1] * 3,
    ...     "test_acc": [90.0, 91, 80, 82, 91, 92], "val_acc": [90.0, 91, 80, 82, 91, 92],
    ...     "test_acc_at_val": [90.0, 91, 80, 82, 91, 92]})
    >>> v = verdicts(rows).iloc[0]
    >>> v.best_hand, float(v.vs_best), bool(v.best_met), float(v.vs_fixed), bool(v.fixed_met)
    ('sched_cosine', -1.0, True, 9.5, True)
"""
from __future__ import annotations

import math

import pandas as pd

from metakit.studies import report, stats
from metakit.studies.findings import Claim

LEARNED = "sched_mlrsnet"
BEST_MARGIN = -1.0     # points: frozen MLR-SNet − best hand schedule ≥ this
LM_RATIO = 1.05        # the language model: frozen perplexity ≤ this × the best hand schedule's
FIXED_STDS = 2.0       # momentum 0: mean delta over fixed > this × the delta's std
# the frozen schedule against its ablations: beat the constant stand-ins; be within 1.0 of the authors' snapshots
ABLATION_CLAIMS = {"constant_net": 0.0, "gamma_only": 0.0, "official_snapshots": BEST_MARGIN}


def _by_seed(part: pd.DataFrame, method: str, column: str, variant: str = "") -> pd.Series:
    rows = part[(part["method"] == method) & (part["variant"].fillna("") == variant)]
    return rows.groupby("seed")[column].mean().dropna()


def _paired(part: pd.DataFrame, a: str, b: str, column: str, variant: str = "") -> tuple[float, float, float, float, int]:
    """``a`` (at ``variant``) minus ``b`` (its default), paired by seed: mean, CI, std of the deltas, seeds."""
    v = stats.compare(part, f"{a}:{variant}", b, column)
    return v.mean, v.low, v.high, v.std, v.n


def verdicts(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, setting, momentum) and frozen-schedule variant: the deltas and whether each target is met."""
    df = df.assign(variant=df["variant"].fillna(""))
    out = []
    for (dataset, setting, momentum), part in df.groupby(["dataset", "setting", "momentum"], sort=False):
        hands = sorted(m for m in set(part["method"]) if m.startswith("sched_") and m != LEARNED)
        if setting == "transfer_source" or LEARNED not in set(part["method"]) or not hands:
            continue
        lm = "test_ppl" in part and part["test_ppl"].notna().any()
        select, metric = ("valid_ppl_best", "test_ppl") if lm else ("val_acc", "test_acc")
        scores = {h: _by_seed(part, h, select).mean() for h in hands}
        best = (min if lm else max)(scores, key=lambda h: (scores[h] if not math.isnan(scores[h]) else
                                                           (math.inf if lm else -math.inf)))
        variants = sorted(set(part.loc[part["method"] == LEARNED, "variant"]))   # "" (the default) first
        for variant in variants:
            out.append(_verdict(part, variant, best, lm, metric, hands) | {
                "dataset": dataset, "setting": setting, "momentum": momentum, "variant": variant, "best_hand": best})
    return pd.DataFrame(out)


def _verdict(part: pd.DataFrame, variant: str, best: str, lm: bool, metric: str, hands: list[str]) -> dict:
    """The frozen schedule at ``variant`` against the best hand schedule (and the fixed LR at momentum 0)."""
    row: dict = {}
    if lm:
        learned, hand = _by_seed(part, LEARNED, metric, variant), _by_seed(part, best, metric)
        seeds = sorted(set(learned.index) & set(hand.index))
        ratio = float((learned[seeds] / hand[seeds]).mean()) if seeds else math.nan
        row |= {"seeds": len(seeds), "metric": "test_ppl", "learned": learned[seeds].mean(),
                "best": hand[seeds].mean(), "ppl_ratio": ratio, "best_met": ratio <= LM_RATIO}
    else:
        mean, low, high, _, n = _paired(part, LEARNED, best, metric, variant)
        at_val = (_paired(part, LEARNED, best, "test_acc_at_val", variant) if "test_acc_at_val" in part
                  else (math.nan,) * 5)
        row |= {"seeds": n, "metric": metric, "learned": _by_seed(part, LEARNED, metric, variant).mean(),
                "best": _by_seed(part, best, metric).mean(), "vs_best": mean, "vs_best_low": low,
                "vs_best_high": high, "vs_best_at_val": at_val[0], "best_met": mean >= BEST_MARGIN}
    if float(part["momentum"].iloc[0]) == 0 and "sched_fixed" in hands:
        mean, low, high, std, _ = _paired(part, LEARNED, "sched_fixed", metric, variant)
        sign = -1.0 if lm else 1.0   # lower perplexity is better
        row |= {"vs_fixed": mean, "vs_fixed_std": std, "fixed_met": sign * mean > FIXED_STDS * std}
    return row


def _f(value: float, fmt: str = "+.2f") -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def render_verdicts(table: pd.DataFrame) -> str:
    """The verdict table in markdown (one line per variation and momentum).

    Example:
        >>> t = pd.DataFrame([{"dataset": "d", "setting": "transfer_same", "momentum": 0.9, "best_hand": "sched_cosine",
        ...                    "seeds": 3, "metric": "test_acc", "learned": 90.0, "best": 91.5, "vs_best": -1.5,
        ...                    "vs_best_low": -2.0, "vs_best_high": -1.0, "vs_best_at_val": -1.2, "best_met": False}])
        >>> render_verdicts(t).splitlines()[-1]
        '| d | transfer_same | 0.9 | 3 | 90.00 | cosine 91.50 | -1.50 [-2.00, -1.00] (at val: -1.20) | missed | – |'
    """
    lines = ["| dataset | setting | momentum | seeds | MLR-SNet (frozen) | best hand (by val) | "
             "MLR-SNet − best | within 1.0 (LM: 5%)? | above fixed by > 2 sd? |", "|---" * 9 + "|"]
    for r in table.itertuples():
        if r.metric == "test_ppl":
            gap = f"ppl ratio {_f(r.ppl_ratio, '.3f')}"
        else:
            gap = f"{_f(r.vs_best)} [{_f(r.vs_best_low)}, {_f(r.vs_best_high)}] (at val: {_f(r.vs_best_at_val)})"
        fixed = "–"
        if not math.isnan(getattr(r, "vs_fixed", math.nan)):
            fixed = f"{'met' if r.fixed_met else 'missed'} ({_f(r.vs_fixed)}, sd {_f(r.vs_fixed_std, '.2f')})"
        setting = r.setting + (f" ({r.variant})" if getattr(r, "variant", "") else "")
        lines.append(f"| {r.dataset} | {setting} | {r.momentum:g} | {r.seeds} | {_f(r.learned, '.2f')} | "
                     f"{r.best_hand.removeprefix('sched_')} {_f(r.best, '.2f')} | {gap} | "
                     f"{'met' if r.best_met else 'missed'} | {fixed} |")
    return "\n".join(lines) + "\n"


def tuned_lrs(tuned: pd.DataFrame | None, momentum: float) -> dict[str, float]:
    """Hand entry → its base LR: the best mean validation accuracy over the tuning rows (`tuning`); none: {}.

    Example:
        >>> rows = pd.DataFrame({"setting": "transfer_tune", "method": "sched_cosine", "momentum": 0.0,
        ...                      "variant": ["lr_0.1", "lr_0.3"], "val_acc": [90.0, 92.0]})
        >>> tuned_lrs(rows, 0.0)
        {'cosine': 0.3}
    """
    if tuned is None or len(tuned) == 0:
        return {}
    mine = tuned[(tuned["setting"] == "transfer_tune") & (tuned["momentum"] == momentum)]
    means = mine.groupby(["method", "variant"], sort=False)["val_acc"].mean().reset_index()
    best = means.sort_values("val_acc", ascending=False, kind="stable").drop_duplicates("method")
    return {m.removeprefix("sched_"): float(v.removeprefix("lr_")) for m, v in zip(best["method"], best["variant"])}


def render_markdown(df: pd.DataFrame) -> str:
    """Mean ± std of every row (final and val-selected test accuracy; the LM's perplexity), then the verdicts."""
    images = df[df["dataset"] != "text"]
    text = ""
    for metric in ("test_acc", "test_acc_at_val"):
        if metric in images and images[metric].notna().any():
            text += report.render_markdown(stats.summarise(images, [metric]), metric) + "\n"
    lm = df[df["dataset"] == "text"]
    if len(lm):
        text += report.render_markdown(stats.summarise(lm, ["test_ppl"]), "test_ppl", unit="ppl") + "\n"
    for momentum in sorted(set(df.loc[df["setting"] == "transfer_tune", "momentum"])):
        chosen = ", ".join(f"{entry} {lr:g}" for entry, lr in tuned_lrs(df, momentum).items())
        text += (f"Base LR of each hand schedule at momentum {momentum:g}, chosen on the source task's validation "
                 f"split (rows transfer_tune) and carried to every row: {chosen}.\n\n")
    table = verdicts(df)
    if len(table):
        text += ("### Verdicts\n\nFrozen MLR-SNet against the best hand schedule of the same momentum (chosen on "
                 "validation), paired by seed, mean [95% CI]; at momentum 0 also against the fixed LR.\n\n"
                 + render_verdicts(table))
    return text


def write(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The markdown (`render_markdown`) and the summary of every row."""
    metrics = [m for m in ("test_acc", "test_acc_at_val", "test_ppl", "final_lr", "seconds") if m in df.columns]
    return render_markdown(df), stats.summarise(df, metrics)


def claims(df: pd.DataFrame) -> list[Claim]:
    """Per image row and frozen variant: within 1.0 of the validation-best hand schedule (final and
    val-selected epoch; the default's final epoch is the headline); at momentum 0, above the fixed LR."""
    out = []
    for r in verdicts(df).itertuples() if len(df) else ():
        if r.metric != "test_acc":  # the language model's perplexity is judged by its ratio in the markdown
            continue
        learned, where = f"{LEARNED}:{r.variant}" if r.variant else LEARNED, (("momentum", float(r.momentum)),)
        topic = f"{learned} within {-BEST_MARGIN:g} of the validation-best hand schedule, momentum {r.momentum:g}"
        for metric in ("test_acc", "test_acc_at_val"):
            if metric in df.columns:
                out.append(Claim(learned, r.best_hand, r.dataset, r.setting, BEST_MARGIN, metric,
                                 headline=not r.variant and metric == "test_acc", where=where, topic=topic))
        if not math.isnan(getattr(r, "vs_fixed", math.nan)):
            out.append(Claim(learned, "sched_fixed", r.dataset, r.setting, 0.0, where=where))
        if not r.variant:   # does the learned part matter, and do we match the authors' own snapshots?
            for ablation, margin in ABLATION_CLAIMS.items():
                if ((df["setting"] == r.setting) & (df["variant"] == ablation) & (df["momentum"] == r.momentum)).any():
                    out.append(Claim(LEARNED, f"{LEARNED}:{ablation}", r.dataset, r.setting, margin, headline=True,
                                     where=where,
                                     topic=f"{LEARNED} {'beats' if margin == 0 else 'within 1 of'} its {ablation}, "
                                           f"momentum {r.momentum:g}"))
    return out
