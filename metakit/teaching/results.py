"""The committed tables of ``results/`` in a notebook: read one, render it, rerun one of its rows.

A table is the CSV that ``python -m metakit study <name>`` wrote, one row per run in the results
format of docs/results_format.md (e.g. ``results/mnist1d/long_tail_laptop.csv``, at `csv_path`). A notebook
reads it with `metakit.studies.grid.read_csv` and renders it with its table's ``summarise``
and ``render_markdown``; where the file is not there, `missing_line` names the command that
makes it, so the notebook carries on without numbers it does not have. `find_row` picks one
run by its labels; its config (`metakit.studies.rerun_config`) reruns it, and `rerun_line` puts the two
accuracies side by side; `rerun_row` does both, reusing a live run of the same config.

Example:
    >>> from metakit.studies.grid import read_csv
    >>> read_csv(csv_path("no/such/folder", "noise"), momentum=True).empty
    True
    >>> "python -m metakit table noise --profile laptop" in missing_line("no/such/folder", "noise")
    True
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from metakit.options import require

ROOT_ENV = "METAKIT_ROOT"   # the checkout holding results/, when neither the working folder nor the package is in it
KINDS = ("long-tail", "noise", "mfm-ablation", "mfm-transfer", "schedule-transfer")
REPO_ROOT = Path(__file__).resolve().parents[2]
# the arguments each committed table is made with, beyond profile, dataset and out
ARGUMENTS = {"long-tail": "--imbalances 100 50 10", "noise": "", "mfm-ablation": "--imbalances 100",
             "mfm-transfer": "--targets if50 variant if10 width --methods ce mfm mfm_frozen mfm_init"}
ONE_DATASET = {"mfm-transfer"}  # tables of one fixed dataset: no --datasets
SCHEDULE_TABLES = {"schedule-transfer"}  # made by `schedule-table transfer --source <dataset> --out <csv>`


def repo_root(start: str | Path | None = None) -> Path:
    """The metakit checkout: ``$METAKIT_ROOT``, else the nearest folder at or above ``start`` (default: the
    working folder) holding ``results/`` and ``notebooks/``, else the checkout this package is installed from.

    Example:
        >>> repo_root(REPO_ROOT / "notebooks" / "student") == REPO_ROOT
        True
    """
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "results").is_dir() and (folder / "notebooks").is_dir():
            return folder
    if (REPO_ROOT / "results").is_dir():
        return REPO_ROOT
    raise FileNotFoundError(f"no metakit checkout (a folder with results/ and notebooks/) at or above {here}; "
                            f"run from inside the checkout or set {ROOT_ENV}=/path/to/metakit.")


def results_dir(folder: str | Path) -> Path:
    """``folder`` (e.g. ``"results/digits"``, relative to the checkout) as an absolute path, from any working folder.

    Example:
        >>> results_dir("results/digits") == REPO_ROOT / "results" / "digits"
        True
    """
    folder = Path(folder)
    return folder if folder.is_absolute() else repo_root() / folder


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when inside it (what a reader can type from the repository root)."""
    full = Path(os.path.abspath(path))
    return full.relative_to(REPO_ROOT).as_posix() if full.is_relative_to(REPO_ROOT) else str(path)


def csv_path(folder: str | Path, kind: str, profile: str = "laptop") -> Path:
    """Where ``table <kind> --profile <profile> --out <folder>`` writes its CSV.

    Example:
        >>> csv_path("results/mnist1d", "long-tail").as_posix()
        'results/mnist1d/long_tail_laptop.csv'
    """
    require("kind", kind, object, choices=KINDS)
    return Path(folder) / f"{kind.replace('-', '_')}_{profile}.csv"


def make_command(folder: str | Path, kind: str, profile: str = "laptop", dataset: str = "mnist1d") -> str:
    """The command line that makes the table in ``folder`` (relative to the repository root when inside it).

    Example:
        >>> make_command(REPO_ROOT / "results" / "mnist1d", "noise")
        'python -m metakit table noise --profile laptop --datasets mnist1d --out results/mnist1d'
    """
    require("kind", kind, object, choices=KINDS)
    out = Path(os.path.abspath(folder))
    out = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    if kind in SCHEDULE_TABLES:
        return (f"python -m metakit schedule-table transfer --profile {profile} --source {dataset} "
                f"--seeds 0 1 2 3 4 --out {csv_path(out, kind, profile).as_posix()}")
    datasets = [] if kind in ONE_DATASET else ["--datasets", dataset]
    words = ["python -m metakit table", kind, "--profile", profile, *datasets, ARGUMENTS[kind],
             "--out", out.as_posix()]
    return " ".join(w for w in words if w)


def missing_line(folder: str | Path, kind: str, profile: str = "laptop", dataset: str = "mnist1d") -> str:
    """One line for a notebook whose committed table is not there: where it should be and the command that makes it.

    Example:
        >>> missing_line("results/mnist1d", "noise").split(": ")[0]
        'results/mnist1d/noise_laptop.csv is not there yet'
    """
    return (f"{_shown(csv_path(folder, kind, profile))} is not there yet: make it with "
            f"`{make_command(folder, kind, profile, dataset)}` (from the repository root); "
            f"this notebook carries on without it.")


def find_row(rows: pd.DataFrame, **labels) -> dict:
    """The one row of ``rows`` whose columns equal ``labels`` (e.g. method="ce", seed=0), as a dict.

    Example:
        >>> rows = pd.DataFrame({"method": ["ce", "ce", "mwnet"], "seed": [0, 1, 0], "test_acc": [70.0, 71.0, 72.0]})
        >>> find_row(rows, method="ce", seed=1)["test_acc"]
        71.0
    """
    unknown = sorted(set(labels) - set(rows.columns))
    if unknown:
        raise ValueError(f"labels {unknown} are not columns of the table; use some of {list(rows.columns)}.")
    mask = pd.Series(True, index=rows.index)
    for name, value in labels.items():
        mask &= rows[name] == value
    if mask.sum() != 1:
        held = rows[list(labels)].drop_duplicates().to_dict("records")[:5]
        raise ValueError(f"{int(mask.sum())} rows match {labels}, not one; the table holds e.g. {held}.")
    return rows[mask].iloc[0].to_dict()


def rerun_line(row: dict, test_acc: float, profile: str) -> str:
    """One line: the row's test accuracy next to a rerun's, and whether they can be compared.

    Args:
        row: from `find_row` (it has profile and commit columns).
        test_acc: the rerun's test accuracy (%).
        profile: the profile the rerun ran at.

    Example:
        >>> row = {"method": "ce", "dataset": "mnist1d", "setting": "lt_if100", "seed": 0, "test_acc": 70.25,
        ...        "profile": "laptop", "commit": "abc1234"}
        >>> rerun_line(row, 70.25, "laptop")
        'ce mnist1d lt_if100 seed 0: CSV 70.25%, rerun 70.25%, both at profile laptop: exactly equal'
        >>> rerun_line(row, 41.0, "smoke").split(": ")[-1]
        "the profiles differ, so the numbers are not comparable (PROFILE = 'laptop' reruns the row itself)"
    """
    name = f"{row['method']} {row['dataset']} {row['setting']} seed {int(row['seed'])}"
    csv, own = float(row["test_acc"]), str(row["profile"])
    if profile != own:
        return (f"{name}: CSV {csv:.2f}% at profile {own}, rerun {test_acc:.2f}% at profile {profile}: the profiles "
                f"differ, so the numbers are not comparable (PROFILE = {own!r} reruns the row itself)")
    line = f"{name}: CSV {csv:.2f}%, rerun {test_acc:.2f}%, both at profile {profile}: "
    if test_acc == csv:
        return line + "exactly equal"
    return line + (f"they differ by {test_acc - csv:+.4f} points (the row was made at commit {row['commit']}; "
                   f"another commit, device or thread count can change the numbers)")


def rerun_row(row: dict, config, profile: str, live=None) -> str:
    """Rerun one committed row and return its `rerun_line`; a run this notebook already made of the same config is reused.

    A notebook's live comparison often trains exactly a row of its committed table (the same
    config at seed 0): then ``live`` is that run, and nothing trains again. The match is on
    `Config.canonical` (every field that changes a number), never on labels.

    Args:
        row: from `find_row`.
        config: the row's config at ``profile`` (`metakit.studies.rerun_config`).
        profile: the profile of ``config``.
        live: a `Result` this notebook trained, or None.

    Example:
        >>> from types import SimpleNamespace
        >>> from metakit.experiments import Config
        >>> c = Config(method="ce", dataset="digits", profile="smoke")
        >>> row = {"method": "ce", "dataset": "digits", "setting": "lt_if10", "seed": 0, "test_acc": 80.0,
        ...        "profile": "laptop", "commit": "abc1234"}
        >>> line = rerun_row(row, c, "smoke", live=SimpleNamespace(config=c.resolve(), metrics={"test_acc": 61.0}))
        >>> line.split(" (")[-1]
        'the live run above has this config: reused, not trained again)'
    """
    if live is not None and live.config.canonical() == config.canonical():
        line = rerun_line(row, float(live.metrics["test_acc"]), profile)
        return line + " (the live run above has this config: reused, not trained again)"
    from metakit.experiments import run

    return rerun_line(row, float(run(config).metrics["test_acc"]), profile)
