"""Headline numbers and figures a notebook hands to ``make demo``.

When ``$METAKIT_REPORT_DIR`` is set (``make demo`` sets it), `publish` merges the numbers into
``<dir>/results/<notebook>.json`` and `publish_figure` saves ``<dir>/figures/<notebook>_<name>.png``.
Otherwise both only return what they were given, so a notebook calls them unconditionally.

Example:
    >>> publish("00_welcome_and_data", test_acc=91.5)
    {'test_acc': 91.5}
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from metakit.io import atomic_write_bytes, atomic_write_text

ENV = "METAKIT_REPORT_DIR"


def report_dir() -> Path | None:
    """The demo's output folder, or None outside ``make demo``."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"{kind}={name!r} must be a plain file-name stem (letters, digits, _ . -), "
                         f"e.g. '02_long_tail_mfm'.")
    return name


def publish(notebook: str, **numbers) -> dict:
    """Record headline results of ``notebook`` (JSON-serialisable values); returns ``numbers``.

    Args:
        notebook: the notebook's stem, e.g. ``"06_ablation_playground"``.
        **numbers: name → value (floats, strings, small lists/dicts).
    """
    _check_name("notebook", notebook)
    folder = report_dir()
    if folder is not None:
        path = folder / "results" / f"{notebook}.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        stored.update(numbers)
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
