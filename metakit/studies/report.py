"""A study's summary as markdown, and the files beside its CSV (``<stem>.md``, ``<stem>_summary.csv``).

`render_markdown` lays a summary (`metakit.studies.stats.summarise`) out as rows × settings per
dataset; `write_outputs` writes it under a line naming the command and commit that made it.

Example:
    >>> from metakit.studies.stats import summarise
    >>> s = summarise(pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": "ce", "variant": "",
    ...                              "seed": [0, 1], "test_acc": [70.0, 72.0]}))
    >>> render_markdown(s).splitlines()[4]
    '| ce | 71.00 ± 1.41 |'
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import pandas as pd

from metakit.io import atomic_write_text
from metakit.studies.grid import git_commit


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
        >>> from metakit.studies.stats import summarise
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
    positional = {"study": ("name",), "table": ("kind",), "schedule-table": ("task",)}.get(str(flags["command"]),
                                                                                          ("kind", "task"))
    words = ["python -m metakit", str(flags["command"])] + [str(flags[k]) for k in positional if flags.get(k)]
    for name, value in flags.items():
        if name in ("command", *positional) or value is None:
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
