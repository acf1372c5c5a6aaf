"""A grid's tidy rows → summary (mean ± std, paired deltas with a 95% CI) → CSV + markdown.

`summarise` groups the rows of `metakit.experiments.grid.run_grid` by (dataset, setting, method,
variant[, momentum]) and, given a reference method, pairs every group with the reference's
headline row (variant ``""``) of the same dataset and setting over the seeds both ran: the
delta's mean and its Student-t 95% interval. `render_markdown` lays a summary out as rows ×
settings per dataset; `write_outputs` writes the summary CSV and the markdown, naming the command
and the commit that made them.

Example:
    >>> df = pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": ["ce", "ce", "mwnet", "mwnet"],
    ...                    "variant": "", "seed": [0, 1, 0, 1], "test_acc": [80.0, 82.0, 83.0, 86.0]})
    >>> s = summarise(df, ["test_acc"], reference="ce")
    >>> s.loc[1, ["method", "seeds", "test_acc_mean", "test_acc_delta", "paired_seeds"]].astype(str).tolist()
    ['mwnet', '2', '84.5', '3.5', '2']
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from metakit.experiments.grid import git_commit
from metakit.io import atomic_write_text


def paired_delta(values: Sequence[float], reference: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values - reference`` (paired by position) and its Student-t interval.

    Returns:
        ``(mean, low, high)``; the interval is NaN for fewer than two pairs, all three for none.

    Example:
        >>> [round(v, 3) for v in paired_delta([2.0, 3.0, 7.0], [1.0, 1.0, 1.0])]
        [3.0, -3.572, 9.572]
    """
    d = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    if len(d) == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def group_keys(df: pd.DataFrame) -> list[str]:
    """The summary's group columns present in ``df`` (momentum only where schedules are compared)."""
    return [k for k in ("dataset", "setting", "method", "variant", "momentum") if k in df.columns]


def summarise(df: pd.DataFrame, metrics: Sequence[str] = ("test_acc",), reference: str | None = None) -> pd.DataFrame:
    """Seeds, mean and (sample) std per group; paired deltas against ``reference`` when given.

    Args:
        df: one row per run (`metakit.experiments.grid.run_grid`); rows with an ``error`` are left out.
        metrics: the columns to summarise.
        reference: a method name: each group's ``<metric>_delta`` (``_low``, ``_high``: 95% CI) is
            its mean difference from that method's headline row over the seeds both ran
            (``paired_seeds``); NaN where the reference did not run.

    Returns:
        One row per group, in the order of ``df``: the group columns, ``seeds``, ``<metric>_mean``,
        ``<metric>_std`` (NaN for one seed), and the delta columns when ``reference`` is given.
    """
    if len(df) == 0:
        raise ValueError("df has no rows; run the grid first (run_grid), or check its csv_path.")
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metrics={missing} are not columns of df; use some of {list(df.columns)}.")
    if "error" in df.columns:
        df = df[df["error"].isna()]
    df = df.assign(variant=df["variant"].fillna("") if "variant" in df.columns else "")
    keys = group_keys(df)
    groups = df.groupby(keys, sort=False, dropna=False)
    out = groups.size().rename("seeds").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = groups[metric].mean()
        out[f"{metric}_std"] = groups[metric].std()
    out = out.reset_index()
    if reference is None:
        return out
    if reference not in set(df["method"]):
        raise ValueError(f"reference={reference!r} did not run in this grid; use one of {sorted(set(df['method']))}.")
    context = [k for k in keys if k not in ("method", "variant")]
    base = df[(df["method"] == reference) & (df["variant"] == "")]
    deltas = []
    for _, row in out.iterrows():
        mine = df.loc[(df[keys] == row[keys]).all(axis=1)]
        theirs = base.loc[(base[context] == row[context]).all(axis=1)]
        pairs = mine.merge(theirs, on="seed", suffixes=("", "_ref"))
        own = row["method"] == reference and row["variant"] == ""
        values = {"paired_seeds": 0 if own else len(pairs)}
        for metric in metrics:
            mean, low, high = (math.nan,) * 3 if own else paired_delta(pairs[metric], pairs[f"{metric}_ref"])
            values |= {f"{metric}_delta": mean, f"{metric}_delta_low": low, f"{metric}_delta_high": high}
        deltas.append(values)
    return pd.concat([out, pd.DataFrame(deltas, index=out.index)], axis=1)


def _cell(mean: float, std: float = math.nan, digits: int = 2) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _delta_cell(mean: float, low: float, high: float, n: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:+.2f} (n={n})" if math.isnan(low) else f"{mean:+.2f} [{low:+.2f}, {high:+.2f}] (n={n})"


def render_markdown(summary: pd.DataFrame, metric: str = "test_acc", reference_rows: dict | None = None,
                    column_label: Callable[[str], str] = str, reference: str | None = None, unit: str = "%") -> str:
    """Markdown tables per dataset: rows (method, variant) × settings, cells "mean ± std".

    Args:
        summary: from `summarise`.
        metric: which metric to show.
        reference_rows: published numbers, dataset → label → setting → value, shown as rows
            "reference: <label>" ("–" where not reported).
        column_label: a setting's column header (e.g. ``lt_if100`` → ``IF 100``).
        reference: the method the deltas were taken against; adds a table of paired deltas.
        unit: the metric's unit in the heading (``"s"`` for seconds per run).

    Example:
        >>> s = summarise(pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": "ce", "variant": "",
        ...                              "seed": [0, 1], "test_acc": [70.0, 72.0]}))
        >>> render_markdown(s).splitlines()[2:5]
        ['| method | lt_if10 |', '|---|---|', '| ce | 71.00 ± 1.41 |']
    """
    blocks = []
    for dataset, part in summary.groupby("dataset", sort=False):
        settings = list(dict.fromkeys(part["setting"]))
        header = ["| method | " + " | ".join(column_label(s) for s in settings) + " |", "|---|" + "---|" * len(settings)]
        rows = part.groupby([k for k in ("method", "variant", "momentum") if k in part.columns], sort=False, dropna=False)
        lines, deltas = [f"### {dataset}: {metric} ({unit}), mean ± std over seeds", "", *header], []
        varies = "momentum" in part.columns and part["momentum"].nunique() > 1
        for name, group in rows:
            name = name if isinstance(name, tuple) else (name,)
            label = name[0] + (f" ({name[1]})" if len(name) > 1 and isinstance(name[1], str) and name[1] else "")
            label += f", momentum {name[2]:g}" if varies else ""
            by = group.set_index("setting")
            lines.append(f"| {label} | " + " | ".join(
                _cell(by[f"{metric}_mean"].get(s, math.nan), by[f"{metric}_std"].get(s, math.nan)) for s in settings) + " |")
            if reference is not None and f"{metric}_delta" in by:
                deltas.append(f"| {label} | " + " | ".join(
                    _delta_cell(*(by[f"{metric}_{c}"].get(s, math.nan) for c in ("delta", "delta_low", "delta_high")),
                                int(by["paired_seeds"].get(s, 0))) for s in settings) + " |")
        for label, numbers in (reference_rows or {}).get(dataset, {}).items():
            lines.append(f"| reference: {label} | " + " | ".join(_cell(numbers.get(s, math.nan)) for s in settings) + " |")
        if deltas:
            lines += ["", f"Paired difference from {reference} over common seeds, mean [95% CI, Student t]:", "",
                      *header, *deltas]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def command_line(flags: dict) -> str:
    """The ``python -m metakit ...`` line that parsed to ``flags`` (``vars(args)``), for a table's markdown.

    Example:
        >>> command_line({"command": "table", "kind": "long-tail", "profile": "smoke", "seeds": [0, 1], "dask": None})
        'python -m metakit table long-tail --profile smoke --seeds 0 1'
    """
    words = ["python -m metakit", str(flags["command"])] + [str(flags[k]) for k in ("kind", "task") if flags.get(k)]
    for name, value in flags.items():
        if name in ("command", "kind", "task") or value is None:
            continue
        words += ["--" + name.replace("_", "-"), *map(str, value if isinstance(value, (list, tuple)) else [value])]
    return " ".join(words)


def write_outputs(df: pd.DataFrame, stem: str | Path, markdown: str, command: str = "", title: str = "",
                  summary: pd.DataFrame | None = None) -> str:
    """Write ``<stem>.md`` (title, the command and commit that made it, ``markdown``) and the summary CSV.

    Args:
        df: the runs (their ``commit`` column is quoted when it differs from HEAD's).
        stem: path without suffix; the summary goes to ``<stem>_summary.csv``.
        markdown: the body, e.g. from `render_markdown`.
        command: the command line that made the table.
        title: a heading for the markdown.
        summary: written as ``<stem>_summary.csv`` when given.

    Returns:
        The markdown text written.

    Example:
        >>> import tempfile, pathlib
        >>> stem = pathlib.Path(tempfile.mkdtemp()) / "t"
        >>> text = write_outputs(pd.DataFrame({"commit": ["abc1234"]}), stem, "| a |\\n", "python -m metakit x")
        >>> text.splitlines()[0].startswith("Made by `python -m metakit x` at commit")
        True
    """
    stem, head = Path(stem), git_commit()
    made = f"Made by `{command or 'a script'}` at commit `{head}`"
    commits = sorted({str(c) for c in df.get("commit", pd.Series(dtype=str)).dropna()} - {head})
    if commits:
        made += f" (runs from commits {', '.join(f'`{c}`' for c in commits)})"
    if "seed" in df.columns and len(df):
        made += f"; {len(df)} runs, seeds {', '.join(str(int(s)) for s in sorted(df['seed'].unique()))}"
    text = (f"## {title}\n\n" if title else "") + made + ".\n\n" + markdown
    atomic_write_text(stem.with_name(stem.name + ".md"), text)
    if summary is not None:
        atomic_write_text(stem.with_name(stem.name + "_summary.csv"), summary.to_csv(index=False))
    return text
