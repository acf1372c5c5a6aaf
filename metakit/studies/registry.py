"""Every study by name: `register` a `Study` declaration, `get_study` it (``python -m metakit study <name>``).

Example:
    >>> from metakit.studies import get_study
    >>> get_study("noise").momentum
    True
"""
from __future__ import annotations

from metakit.options import require
from metakit.studies.study import Study

STUDIES: dict[str, Study] = {}


def register(study: Study) -> Study:
    """Add ``study`` under its name (a second study of the same name is an error); returns it."""
    if study.name in STUDIES:
        raise ValueError(f"study name={study.name!r} is registered twice; give the new study another name.")
    STUDIES[study.name] = study
    return study


def get_study(name: str) -> Study:
    """The study registered as ``name`` (``-`` and ``_`` alike), or a clear error listing the known ones."""
    name = name.replace("-", "_")
    require("study", name, object, choices=sorted(STUDIES))
    return STUDIES[name]
