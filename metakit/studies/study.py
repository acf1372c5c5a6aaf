"""A study: the grid of runs behind one claim, declared once and run by one pipeline.

A `Study` says what a table is: its rows for a `Plan` (labelled configs), the job that runs a
row, an optional source stage (an artefact trained once and saved beside the CSV, e.g. a
meta-learned schedule), the markdown it renders and the claims its findings page judges.
`run_study` does the rest alike for every study: train missing sources (relearning one whose
file is gone), run the rows its CSV lacks through an executor, leave failed runs out (logged,
retried next time), and write the markdown, ``*_summary.csv`` and ``*_findings.md`` beside it.

Example:
    >>> import tempfile, pathlib
    >>> from metakit.studies import get_study
    >>> plan = Plan("smoke", (0,), {"methods": ["ce"], "imbalances": [10]}, {"epochs": 1})
    >>> df = run_study(get_study("long_tail"), plan, pathlib.Path(tempfile.mkdtemp()) / "t.csv")
    >>> df[["dataset", "setting", "method", "seed"]].values.tolist()
    [['digits', 'lt_if10', 'ce', 0]]
"""
from __future__ import annotations

import dataclasses
import functools
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from metakit.experiments import PROFILES, Config
from metakit.options import require
from metakit.studies import report
from metakit.studies.findings import Claim, write_findings
from metakit.studies.grid import GridRun, read_csv, rerun_profile, run_grid, stored_config, timed_run


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one invocation of a study runs: profile, seeds, the study's own choices, Config overrides."""

    profile: str = "laptop"                  # smoke | laptop | paper
    seeds: Sequence[int] = (0, 1, 2)         # one run per seed, paired across rows
    choices: Mapping[str, Any] = dataclasses.field(default_factory=dict)    # e.g. {"methods": [...]}; None: default
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # Config fields for every run (epochs)
    folder: str = "runs/tables"              # where the CSV and its artefacts live (run_study sets it)
    table: str = ""                          # the CSV's stem: artefacts are named after it (run_study sets it)
    tuned: Any = None                        # the tuning stage's finished rows (run_study sets it)

    def get(self, name: str, default: Any) -> Any:
        """The choice ``name``, or ``default`` where it was not given (or given as None)."""
        value = self.choices.get(name)
        return default if value is None else value


@dataclasses.dataclass(frozen=True)
class Source:
    """An artefact a study trains once and saves (its CSV row, the file, the job that writes it)."""

    run: GridRun               # the meta-training run, a row of the study's CSV like any other
    path: Path                 # where the artefact is kept (beside the CSV)
    job: Callable              # job(config, path=str) -> metrics; saves the artefact at path


@dataclasses.dataclass(frozen=True)
class Study:
    """A table as a declaration; see the module docstring. Register one with `metakit.studies.register`."""

    name: str                                           # `python -m metakit study <name>`
    title: str                                          # the markdown's heading
    rows: Callable[[Plan], list[GridRun]]               # the grid (a row's own `job` wins over the study's)
    write: Callable[[pd.DataFrame], tuple[str, pd.DataFrame]]  # rows -> (markdown body, summary)
    claims: Callable[[pd.DataFrame], list[Claim]]       # what the findings page judges
    job: Callable = timed_run                           # picklable: Config -> metrics dict
    sources: Callable[[Plan], list[Source]] | None = None  # artefacts to train first (kept in plan.folder)
    tune: Callable[[Plan], list[GridRun]] | None = None    # rows run before `rows`, which read them (plan.tuned)
    momentum: bool = False                              # rows labelled by momentum (schedule comparisons)
    choices: Mapping[str, str] = dataclasses.field(default_factory=dict)  # choice -> its help (CLI flags)
    cell: Callable[[Mapping[str, Any], str, Path], Config] | None = None  # labels -> config, for `rerun_config`
    measures: Callable[[pd.DataFrame], str] | None = None  # a sentence of unpaired measurements for the README

    def default_csv(self, profile: str) -> Path:
        """Where the study's CSV goes when none is named: ``runs/tables/<name>_<profile>.csv``."""
        return Path("runs/tables") / f"{self.name}_{profile}.csv"


def run_study(study: Study, plan: Plan, csv_path: str | Path | None = None, *, executor: Executor | None = None,
              log: Callable[[str], Any] | None = None) -> pd.DataFrame:
    """Train the study's sources, then run the rows ``csv_path`` lacks; every finished row, in grid order.

    Args:
        study: the declaration.
        plan: profile, seeds, choices and overrides.
        csv_path: the resumable CSV (artefacts go beside it); None: keep nothing.
        executor: where runs go (`metakit.experiments.executors.make_executor`); None: here.
        log: one line per finished or failed run; None: silent.
    """
    require("profile", plan.profile, object, choices=sorted(PROFILES))
    if csv_path is not None:
        plan = dataclasses.replace(plan, folder=str(Path(csv_path).parent), table=Path(csv_path).stem)
    parts = []
    sources = study.sources(plan) if study.sources else []
    if sources:
        runs = [dataclasses.replace(s.run, job=functools.partial(s.job, path=str(s.path))) for s in sources]
        parts.append(run_grid(runs, csv_path, job=study.job, executor=executor, momentum=study.momentum, log=log))
        for source in sources:  # a row kept but its file gone: relearn it (same seed and split: the same artefact)
            if not source.path.is_file():
                source.job(source.run.config, path=str(source.path))
    tuning = study.tune(plan) if study.tune is not None else []
    if tuning:   # e.g. each hand schedule's base LR, chosen on the source's validation split
        tuned = run_grid(tuning, csv_path, job=study.job, executor=executor, momentum=study.momentum,
                         log=log, progress=log is not None, desc=f"{study.name} tuning")
        parts.append(tuned)
        plan = dataclasses.replace(plan, tuned=tuned[tuned["error"].isna()])
    parts.append(run_grid(study.rows(plan), csv_path, job=study.job, executor=executor, momentum=study.momentum,
                          log=log, progress=log is not None, desc=study.name))
    df = pd.concat(parts, ignore_index=True)
    return df[df["error"].isna()].drop(columns="error").reset_index(drop=True)


def write_study(study: Study, df: pd.DataFrame, md_path: str | Path, command: str = "", title: str = "") -> str:
    """Write ``df``'s markdown, ``*_summary.csv`` and ``*_findings.md`` beside ``md_path``; return the markdown.

    Example:
        >>> import tempfile, pathlib
        >>> from metakit.studies import get_study
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": ["ce", "mwnet"], "variant": "",
        ...                    "seed": 0, "test_acc": [80.0, 82.0], "many_acc": 1.0, "medium_acc": 1.0, "few_acc": 1.0})
        >>> "| mwnet | 82.00 |" in write_study(get_study("long_tail"), df, pathlib.Path(tempfile.mkdtemp()) / "t.md")
        True
    """
    body, summary = study.write(df)
    stem = Path(md_path).with_suffix("")
    text = report.write_outputs(df, stem, body, command, title or study.title, summary)
    write_findings(title or study.title, study.claims(df), df, stem, command)
    return text


def rerun_config(study: Study, row: Mapping[str, Any], profile: str | None = None,
                 folder: str | Path = "results") -> Config:
    """The `Config` that made one row of ``study``'s CSV, to rerun it (at ``profile``: the same cell there).

    A row that stored its config (the ``config`` column) at its own profile is rebuilt from it
    exactly; otherwise the study rebuilds the cell from the row's labels, and at the row's own
    profile keeps the epochs it ran (a table made with ``--epochs``).

    Example:
        >>> from metakit.studies import get_study
        >>> row = {"dataset": "mnist1d", "setting": "lt_if100", "method": "ce", "variant": "", "seed": 0,
        ...        "profile": "laptop", "epochs": 20}
        >>> c = rerun_config(get_study("long_tail"), row).resolve()
        >>> c.dataset, c.imbalance, c.epochs, rerun_config(get_study("long_tail"), row, "smoke").resolve().epochs
        ('mnist1d', 100.0, 20, 3)
    """
    own, profile = rerun_profile(row, profile)
    stored = stored_config(row)
    if stored is not None and profile == own:
        return stored
    if study.cell is None:
        raise ValueError(f"study {study.name!r} cannot rebuild a row from its labels; rerun it from its config column.")
    require("profile", profile, object, choices=sorted(PROFILES))
    config = study.cell(row, profile, Path(folder))
    if profile == own and int(row["epochs"]) != config.resolve().epochs:
        config = dataclasses.replace(config, epochs=int(row["epochs"]))  # the table was made with --epochs
    return config


def read_study_csv(study: Study, csv_path: str | Path) -> pd.DataFrame:
    """Every row of a study's CSV (momentum-labelled where the study compares schedules)."""
    return read_csv(csv_path, momentum=study.momentum)
