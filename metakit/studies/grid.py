"""One grid pipeline for every study: labelled configs → tidy rows in a resumable CSV.

A study labels each `Config` it wants run (`GridRun`: dataset, setting, method, variant, seed —
the results format, docs/results_format.md), and `run_grid` runs the ones its CSV does not hold
yet through an executor, appending each finished run, with its resolved config as JSON, to the
CSV (rewritten atomically, so a grid killed halfway leaves a valid file and resumes where it
stopped).

Example:
    >>> runs = [GridRun(Config(profile="smoke", imbalance=10, epochs=1, seed=s)) for s in (0, 1)]
    >>> df = run_grid(runs)
    >>> df[["dataset", "setting", "method", "variant", "seed"]].values.tolist()
    [['digits', 'lt_if10', 'ce', '', 0], ['digits', 'lt_if10', 'ce', '', 1]]
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import subprocess
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from metakit.experiments import Config, run
from metakit.experiments.executors import map_jobs
from metakit.io import atomic_write_text, not_a_file

LABELS = ["dataset", "setting", "method", "variant", "seed"]
METRICS = ["test_acc", "val_acc", "many_acc", "medium_acc", "few_acc"]  # val_acc: NaN where the dataset has no validation split (CIFAR)


def columns(momentum: bool = False) -> list[str]:
    """The results format's columns, in order (``momentum`` where schedules are compared).

    Example:
        >>> columns()[:5], columns(momentum=True)[5]
        (['dataset', 'setting', 'method', 'variant', 'seed'], 'momentum')
    """
    return LABELS + (["momentum"] if momentum else []) + METRICS + ["seconds", "commit"]


def setting_of(config: Config) -> str:
    """The results format's ``setting`` of a config: ``lt_if100``, ``noise_uniform_40``, both, or ``balanced``.

    Example:
        >>> setting_of(Config(imbalance=100)), setting_of(Config(noise_kind="uniform", noise_rate=0.4))
        ('lt_if100', 'noise_uniform_40')
    """
    parts = []
    if config.imbalance != 1:
        parts.append(f"lt_if{config.imbalance:g}")
    if config.noise_kind != "none" and config.noise_rate > 0:
        parts.append(f"noise_{config.noise_kind}_{round(config.noise_rate * 100, 6):g}")
    return "_".join(parts) or "balanced"


@dataclasses.dataclass(frozen=True)
class GridRun:
    """One run of a table: the config to run and how its row is labelled.

    Use ``variant`` for anything a row changes from the method's defaults (``""`` is the headline
    row); use ``tags`` for columns a table keeps beside the results format (e.g. ``profile``):
    they are written to the CSV, and a CSV row whose tags differ from the grid's is an error.
    """

    config: Config                    # what `run` receives, as given (labels come from its resolved copy)
    method: str | None = None         # the row's method name; None: config.method (schedule arms: sched_<name>)
    variant: str = ""                 # empty: the method at its defaults; otherwise what differs
    tags: dict = dataclasses.field(default_factory=dict)  # extra columns, e.g. {"profile": "smoke"}
    setting: str | None = None        # the row's setting; None: `setting_of` the config (transfer: transfer_if50)
    dataset: str | None = None        # the row's dataset; None: the config's (a language-model row: "text")
    job: Callable | None = None       # what runs it (picklable); None: the study's job

    def labels(self, momentum: bool = False) -> dict[str, Any]:
        """The row's label columns (``momentum`` too when schedules are compared)."""
        c = self.config.resolve()
        out = dict(dataset=self.dataset or c.dataset, setting=self.setting or setting_of(c), method=self.method or c.method,
                   variant=self.variant, seed=int(c.seed))
        return out | ({"momentum": float(c.momentum)} if momentum else {})


def profile_tags(config: Config, **extra: Any) -> dict[str, Any]:
    """The tags every study keeps beside the results format: the profile and the epochs a row ran.

    A CSV holds one (profile, epochs): a row of another is refused, never mixed.

    Example:
        >>> profile_tags(Config(profile="smoke"))
        {'profile': 'smoke', 'epochs': 3}
    """
    c = config.resolve()
    return {"profile": c.profile, "epochs": c.epochs, **extra}


def rerun_profile(row: dict, profile: str | None) -> tuple[str, str]:
    """(the profile a table row ran at, the profile to rerun it at) — for `metakit.studies.rerun_config`.

    A row of a table command's CSV carries its labels and the tags ``profile`` and ``epochs``;
    one without them is refused.

    Example:
        >>> rerun_profile({"dataset": "d", "setting": "s", "method": "ce", "seed": 0, "profile": "laptop",
        ...                "epochs": 20}, "smoke")
        ('laptop', 'smoke')
    """
    missing = [name for name in ("profile", "epochs", "dataset", "setting", "method", "seed") if name not in row]
    if missing:
        raise ValueError(f"row lacks {missing}; pass a row of a CSV that `table` wrote (read_csv keeps its "
                         f"profile and epochs columns).")
    own = str(row["profile"])
    return own, own if profile is None else profile


def config_json(config: Config) -> str:
    """The resolved config as JSON, stored in each row's ``config`` column (`stored_config` reads it back).

    Example:
        >>> c = Config(profile="smoke", imbalance=10)
        >>> stored_config({"config": config_json(c)}).canonical() == c.canonical()
        True
    """
    return json.dumps(dataclasses.asdict(config.resolve()), sort_keys=True)


def stored_config(row: dict) -> Config | None:
    """The `Config` a row stored in its ``config`` column (None for rows written before it existed)."""
    text = row.get("config")
    if not isinstance(text, str) or not text:
        return None
    try:
        return Config(**json.loads(text))
    except (ValueError, TypeError) as err:
        raise ValueError(f"row config={text[:60]!r}… is not a Config's JSON ({err}); rerun the row from its labels "
                         f"or remove the column.") from None


def git_commit(folder: str | Path | None = None) -> str:
    """The short hash of git HEAD where metakit lives (or ``folder``); ``"unknown"`` outside a checkout.

    Example:
        >>> import tempfile
        >>> git_commit(tempfile.mkdtemp())
        'unknown'
    """
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def timed_run(config: Config, run_fn: Callable = run) -> dict[str, float]:
    """The default job of a grid: run one config, return its scalar metrics, ``seconds`` and, for a method
    that counts them, its ``meta_updates`` (a run's meta-learning budget).

    Example:
        >>> out = timed_run(Config(profile="smoke", epochs=1, progress=False))
        >>> sorted(out), 0 <= out["test_acc"] <= 100
        (['few_acc', 'many_acc', 'medium_acc', 'seconds', 'test_acc', 'val_acc'], True)
        >>> timed_run(Config(method="mwnet", profile="smoke", epochs=1, progress=False))["meta_updates"] > 0
        True
    """
    start = time.perf_counter()
    result = run_fn(config)
    metrics, budget = result.metrics, getattr(getattr(result, "method", None), "meta_updates", None)
    out = {m: float(metrics[m]) for m in METRICS if m in metrics} | {"seconds": time.perf_counter() - start}
    return out | ({} if budget is None else {"meta_updates": int(budget)})


def run_job(job_and_config: tuple[Callable, Config]) -> dict:
    """Run one grid job (what an executor receives): the row's own job, or the grid's, on its config."""
    job, config = job_and_config
    return job(config)


def _key(row: dict, momentum: bool) -> tuple:
    variant = row["variant"]
    variant = "" if variant is None or (isinstance(variant, float) and math.isnan(variant)) else str(variant)
    key = (str(row["dataset"]), str(row["setting"]), str(row["method"]), variant, int(row["seed"]))
    return key + ((float(row["momentum"]),) if momentum else ())


def read_csv(csv_path: str | Path | None, momentum: bool = False) -> pd.DataFrame:
    """The rows already in ``csv_path`` (an empty frame of `columns` if there is none), checked by `check_csv`.

    Example:
        >>> list(read_csv(None).columns) == columns()
        True
    """
    path = None if csv_path is None else Path(csv_path)
    if path is not None and not_a_file(path):
        raise ValueError(f"csv_path='{path}' {not_a_file(path)}; move it aside or pass a CSV file path.")
    if path is None or not path.is_file():
        return pd.DataFrame(columns=columns(momentum))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"csv_path='{path}' is not UTF-8 text (a binary file?); move it aside or pass the "
                         f"results CSV.") from None
    if not text.strip():
        return pd.DataFrame(columns=columns(momentum))  # an empty file holds no run yet
    lines = record_lines(text, path)
    table = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
    missing = [c for c in columns(momentum) if c not in table.columns]
    if missing:
        raise ValueError(f"csv_path={str(csv_path)!r} lacks the results columns {missing} (an older format?); "
                         f"move it aside or pass another csv_path.")
    table["variant"] = ["" if pd.isna(v) else str(v) for v in table["variant"]]
    check_csv(table, lines, path, momentum)
    return table


def record_lines(text: str, path: Path) -> list[int]:
    r"""The line on which each data row of a CSV's ``text`` starts; refuses a row cut short or too long.

    Example:
        >>> record_lines("a,b\n1,2\n3,4\n", Path("t.csv"))
        [2, 3]
        >>> record_lines("a,b\n1,2\n3", Path("t.csv"))
        Traceback (most recent call last):
        ...
        ValueError: t.csv line 3 is cut short (the file ends mid-row: a write or copy was interrupted); delete that line and run the same command again: that run is redone.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        starts, records, end = [], [], reader.line_num
        for record in reader:
            if record:
                starts.append(end + 1)
                records.append(record)
            end = reader.line_num
    except csv.Error as err:
        raise ValueError(f"{path} line {reader.line_num} is not CSV ({err}); fix or delete that line.") from None
    redo = "delete that line and run the same command again: that run is redone"
    if records and not text.endswith("\n"):
        raise ValueError(f"{path} line {starts[-1]} is cut short (the file ends mid-row: a write or copy was "
                         f"interrupted); {redo}.")
    for line, record in zip(starts, records):
        if len(record) != len(header):
            raise ValueError(f"{path} line {line} has {len(record)} fields where the header has {len(header)} "
                             f"(a damaged row); {redo}.")
    return starts


def check_csv(table: pd.DataFrame, lines: list[int], path: Path, momentum: bool = False) -> None:
    """Refuse a results table whose rows could not have been written by `run_grid`: a label that is empty, a
    seed that is not a non-negative integer (0.7 is not seed 0), a metric that is not a number, or two rows
    of one run (same dataset, setting, method, variant, seed: it would count twice).

    Example:
        >>> t = pd.DataFrame({"dataset": "d", "setting": "s", "method": "ce", "variant": "", "seed": [0, 0.7],
        ...                   "test_acc": 50.0})
        >>> check_csv(t, [2, 3], Path("t.csv"))
        Traceback (most recent call last):
        ...
        ValueError: t.csv line 3: seed=0.7 is not a non-negative integer; correct or delete that line.
    """
    def refuse(i: int, what: str) -> None:
        raise ValueError(f"{path} line {lines[i]}: {what}; correct or delete that line.")
    for name in ("dataset", "setting", "method"):
        for i, value in enumerate(table[name]):
            if pd.isna(value) or str(value) == "":
                refuse(i, f"{name} is empty")
    for i, seed in enumerate(table["seed"]):
        integral = isinstance(seed, (int, np.integer)) or (isinstance(seed, float) and seed.is_integer())
        if isinstance(seed, (bool, np.bool_)) or not integral or seed < 0:
            refuse(i, f"seed={seed!r} is not a non-negative integer")
    for name in [c for c in METRICS + ["seconds"] + (["momentum"] if momentum else []) if c in table.columns]:
        numbers = pd.to_numeric(table[name], errors="coerce")
        for i in np.flatnonzero(numbers.isna().to_numpy() & table[name].notna().to_numpy()):
            refuse(i, f"{name}={table[name].iloc[i]!r} is not a number")
    if momentum and table["momentum"].isna().any():
        refuse(int(np.flatnonzero(table["momentum"].isna().to_numpy())[0]), "momentum is empty")
    seen: dict[tuple, int] = {}
    for i, row in enumerate(table.to_dict("records")):
        key = _key(row, momentum)
        if key in seen:
            raise ValueError(f"{path} lines {lines[seen[key]]} and {lines[i]} both hold the run {key} (it would count "
                             f"twice); delete one of them.")
        seen[key] = i


def _check_runs(runs: Sequence[GridRun], csv_path, momentum: bool) -> list[tuple]:
    if isinstance(runs, GridRun) or not isinstance(runs, Sequence) or len(runs) == 0:
        raise ValueError(f"runs={runs!r} must be a non-empty list of GridRun, e.g. [GridRun(Config(imbalance=10))].")
    bad = [r for r in runs if not isinstance(r, GridRun)]
    if bad:
        raise TypeError(f"runs holds {bad[0]!r}, not a GridRun; wrap each config: GridRun(config, method, variant).")
    keys = [_key(r.labels(momentum), momentum) for r in runs]  # resolves: a bad config fails before any run
    if csv_path is not None and len(set(keys)) < len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"runs label two runs alike {twice}; give each a distinct variant, or they share a CSV row.")
    return keys


@contextlib.contextmanager
def csv_lock(csv_path: str | Path):
    """Hold an exclusive lock on ``<csv_path>.lock`` (POSIX ``flock``; elsewhere no lock) while a grid
    rewrites its CSV, so two table commands appending to one file never drop each other's rows.

    Example:
        >>> import tempfile, pathlib
        >>> with csv_lock(pathlib.Path(tempfile.mkdtemp()) / "t.csv"):
        ...     pass
    """
    try:
        import fcntl
    except ImportError:  # Windows: one table process per CSV
        yield
        return
    lock = Path(f"{csv_path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_grid(runs: Sequence[GridRun], csv_path: str | Path | None = None, *, job: Callable = timed_run,
             executor: Executor | None = None, momentum: bool = False, log: Callable[[str], Any] | None = None,
             progress: bool = False, desc: str = "grid") -> pd.DataFrame:
    """Run every labelled config not yet in ``csv_path``; one tidy row per run, in grid order.

    Args:
        runs: the grid (see `GridRun`); validated and resolved before anything trains.
        csv_path: keep the rows here: runs already in it (same labels) are skipped, and each
            finished run is appended, the file rewritten atomically. None: keep nothing.
        job: a picklable function of one `Config` returning its metrics and ``seconds`` (a dict);
            keys beyond the results format (e.g. ``final_lr``) become extra columns. A run's own
            ``job`` wins.
        executor: any ``concurrent.futures.Executor`` (`metakit.experiments.executors.make_executor`); None: here.
        momentum: label rows by momentum too (schedule comparisons).
        log: called with one line per finished or failed run (e.g. ``print``); None: silent.
        progress: one bar over the pending runs.
        desc: the bar's label.

    Returns:
        `columns` + tags + extra job keys + ``error`` (None, or the failed run's traceback: its
        metrics are NaN and it is not written, so the next call retries it).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> fake = lambda config: {"test_acc": 50.0 + config.seed, "seconds": 0.0}
        >>> run_grid([GridRun(Config(seed=s)) for s in (0, 1)], path, job=fake)["test_acc"].tolist()
        [50.0, 51.0]
        >>> run_grid([GridRun(Config(seed=s)) for s in (0, 1, 2)], path, job=fake)["test_acc"].tolist()
        [50.0, 51.0, 52.0]
    """
    keys = _check_runs(runs, csv_path, momentum)
    table = read_csv(csv_path, momentum)
    done = {_key(row, momentum): row for row in table.to_dict("records")}
    for run_, key in zip(runs, keys):
        row = done.get(key)
        for tag, value in run_.tags.items() if row is not None else ():
            if str(row.get(tag)) != str(value):
                raise ValueError(f"csv_path={str(csv_path)!r} holds {key} with {tag}={row.get(tag)!r}, but this grid "
                                 f"has {tag}={value!r}; pass another csv_path (one file per {tag}).")
    pending = [(r, k) for r, k in zip(runs, keys) if k not in done]
    if log and len(pending) < len(runs):
        log(f"{len(runs) - len(pending)} of {len(runs)} runs already in {csv_path}; running {len(pending)}")
    commit, failed = git_commit(), {}

    def record(i: int, outcome) -> None:  # in this process, as each run finishes
        nonlocal table
        run_, key = pending[i]
        labels = run_.labels(momentum)
        name = " ".join(str(v) for v in labels.values() if v != "")
        if not outcome.ok:
            failed[key] = labels | run_.tags | {"error": outcome.error}
            if log:
                log(f"{name}: FAILED\n{outcome.error}")
            return
        row = labels | {m: float("nan") for m in METRICS} | dict(outcome.value) | {"commit": commit} | run_.tags
        row["config"] = config_json(run_.config)
        done[key] = row
        if csv_path is not None:
            with csv_lock(csv_path):  # another process may append to the same CSV: re-read it, keep its rows
                table = read_csv(csv_path, momentum)
                present = {_key(r, momentum) for r in table.to_dict("records")}
                if key not in present:
                    new = pd.DataFrame([row])
                    table = pd.concat([table, new], ignore_index=True) if len(table) else new
                order = columns(momentum) + [c for c in table.columns if c not in columns(momentum) + ["config"]]
                atomic_write_text(csv_path, table.reindex(columns=order + ["config"]).to_csv(index=False))
        if log:
            log(f"{name}: {row.get('test_acc', float('nan')):.2f}% ({row.get('seconds', float('nan')):.1f} s)")

    map_jobs(run_job, [(r.job or job, r.config) for r, _ in pending], executor, progress=progress, desc=desc,
             on_outcome=record)
    rows = [done[k] | {"error": None} if k in done else failed[k] for k in keys]
    out = pd.DataFrame(rows)
    order = columns(momentum) + [c for c in out.columns if c not in columns(momentum) + ["config", "error"]]
    order += ["config", "error"]
    return out.reindex(columns=order)

