"""Headline numbers and figures a notebook hands to ``make demo``, each labelled by where it came from.

A number is either computed in this run of the notebook (``source="live"``) or read from a committed
table of ``results/`` (``source=table_source(path)``, e.g. ``"results/digits/noise_laptop.csv"``):
the demo reuses the committed tables where rerunning them would take too long, and says so.
When ``$METAKIT_REPORT_DIR`` is set (``make demo`` sets it), `publish` merges the numbers into
``<dir>/results/<notebook>.json`` under their source, and `publish_figure` saves
``<dir>/figures/<notebook>_<name>.png``. Otherwise both only check and return what they were given,
so a notebook calls them unconditionally.

Example:
    >>> publish("00_welcome_and_data", source="live", test_acc=91.5)
    {'test_acc': 91.5}
    >>> table_source("results/digits/noise_laptop.csv")
    'results/digits/noise_laptop.csv'
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from metakit.io import atomic_write_bytes, atomic_write_text

ENV = "METAKIT_REPORT_DIR"
LIVE = "live"   # the source of numbers this run of the notebook computed
REPO_ROOT = Path(__file__).resolve().parents[2]


def report_dir() -> Path | None:
    """The demo's output folder, or None outside ``make demo``."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"{kind}={name!r} must be a plain file-name stem (letters, digits, _ . -), "
                         f"e.g. '02_long_tail_mfm'.")
    return name


def table_source(path: str | Path) -> str:
    """The source label of a committed table: its path from the repository root, which must be under results/.

    ``path`` may be relative to the working directory (a notebook's ``"../results/digits/..."``).

    Example:
        >>> table_source(REPO_ROOT / "results" / "mnist1d" / "noise_laptop.csv")
        'results/mnist1d/noise_laptop.csv'
    """
    full = Path(os.path.abspath(path))
    if not full.is_relative_to(REPO_ROOT / "results") or full.suffix != ".csv":
        raise ValueError(f"table_source: {path} is not a committed table (a .csv under {REPO_ROOT / 'results'}); "
                         f"pass the CSV the numbers were read from, or source='live' for numbers computed here.")
    if not full.is_file():
        raise ValueError(f"table_source: {path} does not exist; publish a table's numbers only after reading it.")
    return full.relative_to(REPO_ROOT).as_posix()


def _check_source(source: str) -> str:
    if source == LIVE:
        return source
    if not isinstance(source, str) or not re.fullmatch(r"results/[A-Za-z0-9_./-]+\.csv", source) \
            or not (REPO_ROOT / source).is_file():
        raise ValueError(f"source={source!r} must be 'live' (computed in this run) or a committed table as "
                         f"table_source(path) names it, e.g. 'results/digits/noise_laptop.csv'.")
    return source


def publish(notebook: str, *, source: str, **numbers) -> dict:
    """Record headline results of ``notebook`` (JSON-serialisable values) under ``source``; returns ``numbers``.

    Args:
        notebook: the notebook's stem, e.g. ``"06_ablation_playground"``.
        source: ``"live"`` for numbers this run computed, or `table_source` of the committed table they
            were read from. Numbers of both kinds are kept apart, so a reader sees which were rerun.
        **numbers: name → value (floats, strings, small lists/dicts).
    """
    _check_name("notebook", notebook)
    _check_source(source)
    if not numbers:
        raise ValueError(f"publish({notebook!r}, source={source!r}) got no numbers; pass them as name=value.")
    folder = report_dir()
    if folder is not None:
        path = folder / "results" / f"{notebook}.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        stored.setdefault(source, {}).update(numbers)
        atomic_write_text(path, json.dumps(stored, indent=2, default=float))
    return numbers


def publish_figure(notebook: str, name: str, fig) -> Path | None:
    """Save a matplotlib figure as a headline PNG of ``notebook``; returns its path (None outside a demo)."""
    _check_name("notebook", notebook)
    _check_name("name", name)
    folder = report_dir()
    if folder is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(folder / "figures" / f"{notebook}_{name}.png", buffer.getvalue())
