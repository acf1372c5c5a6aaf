"""Find the submissions to grade: a folder of ``<student>/<notebook>.ipynb``, or an LMS zip unpacked into one.

`scan` walks a submissions folder without following links: each ``<student>/<notebook>.ipynb``
becomes a `Submission` stamped with the file's modification time (copy with ``cp -p`` or
``rsync -t`` to keep it); a student folder that is a link or holds one, a notebook that is not a
released one, or a file that is not a notebook is refused for that student with the reason, and
the others are graded. `unzip` turns an LMS download (``<student>_<notebook>.ipynb`` entries, as
Canvas or Moodle name them, or ``<student>/<notebook>.ipynb`` folders) into that layout, keeping
each entry's time; link entries, paths outside the folder and entries over ``max_mb`` are refused.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()); (root / "ann").mkdir()
    >>> _ = (root / "ann" / "00_a.ipynb").write_text("{}")
    >>> [(s.student, s.assignment) for s in scan(root, {"00_a.ipynb"})[0]]
    [('ann', '00_a')]
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import stat
import zipfile
from pathlib import Path

STUDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")   # an id nbgrader and file systems take as is


@dataclasses.dataclass(frozen=True)
class Submission:
    """One student's notebook for one assignment."""

    student: str            # the student id (the folder's name)
    assignment: str         # the released notebook's stem
    path: Path              # the notebook file
    timestamp: dt.datetime  # when it was submitted (UTC)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Something that cannot be graded, and why; reported, never scored as 0."""

    student: str            # the student id, or the entry's name where there is no student
    assignment: str         # the notebook's stem, "" where unknown
    reason: str             # what was wrong, addressed to the instructor


def _mtime(entry: os.DirEntry) -> dt.datetime:
    return dt.datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, dt.timezone.utc)


def scan(folder: Path, released: set[str]) -> tuple[list[Submission], list[Refusal]]:
    """The gradable submissions in ``folder`` and the refused ones, sorted by student; links are never followed.

    Args:
        folder: holds ``<student>/<notebook>.ipynb``.
        released: the released notebooks' file names (``00_welcome_and_data.ipynb``).
    """
    found, refused = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            refused.append(Refusal(entry.name, "", "the student's folder is a symbolic link; links are not followed"))
            continue
        if not entry.is_dir(follow_symlinks=False):
            refused.append(Refusal(entry.name, "", "not a student folder: expected <student>/<notebook>.ipynb"))
            continue
        if not STUDENT.match(entry.name):
            refused.append(Refusal(entry.name, "", "the folder's name is not a usable student id "
                                                   "(letters, digits, _ . @ -)"))
            continue
        files = sorted(os.scandir(entry.path), key=lambda e: e.name)
        links = [f.name for f in files if f.is_symlink()]
        if links:
            refused.append(Refusal(entry.name, "", f"the folder holds symbolic links ({', '.join(links)}); "
                                                   "links are not followed: submit plain files"))
            continue
        for file in files:
            stem = Path(file.name).stem
            if file.name not in released:
                if file.name.endswith(".ipynb"):
                    refused.append(Refusal(entry.name, stem, f"{file.name} is not a released notebook "
                                                             f"(released: {', '.join(sorted(released))})"))
                continue
            if not file.is_file(follow_symlinks=False):
                refused.append(Refusal(entry.name, stem, f"{file.name} is not a plain file"))
                continue
            found.append(Submission(entry.name, stem, Path(file.path), _mtime(file)))
    return found, refused


def _split(name: str, released: set[str]) -> tuple[str, str] | None:
    """``(student, notebook)`` of a zip entry ``<student>/<nb>.ipynb`` or ``<student>_<nb>.ipynb``."""
    parts = Path(name).parts
    if len(parts) == 2:
        return parts[0], parts[1]
    for notebook in sorted(released, key=len, reverse=True):
        if len(parts) == 1 and name.endswith("_" + notebook) and len(name) > len(notebook) + 1:
            return name[:-len(notebook) - 1], notebook
    return None


def unzip(archive: Path, out: Path, released: set[str], max_mb: float = 50) -> list[Refusal]:
    """Unpack an LMS zip into ``out/<student>/<notebook>.ipynb`` (entry times kept); return what was refused.

    Example:
        >>> import tempfile, zipfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> with zipfile.ZipFile(tmp / "lms.zip", "w") as z: z.writestr("ann_00_a.ipynb", "{}")
        >>> unzip(tmp / "lms.zip", tmp / "subs", {"00_a.ipynb"}), sorted(p.name for p in (tmp / "subs" / "ann").iterdir())
        ([], ['00_a.ipynb'])
    """
    refused = []
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            if info.is_dir() or Path(info.filename).name.startswith("."):
                continue
            where = _split(info.filename, released)
            if stat.S_ISLNK(info.external_attr >> 16):
                refused.append(Refusal(info.filename, "", "the zip entry is a symbolic link; links are not followed"))
            elif where is None or not STUDENT.match(where[0]) or ".." in Path(info.filename).parts:
                refused.append(Refusal(info.filename, "", "not <student>_<notebook>.ipynb or <student>/<notebook>"
                                                          f".ipynb of a released notebook ({', '.join(sorted(released))})"))
            elif info.file_size > max_mb * 2**20:
                refused.append(Refusal(where[0], Path(where[1]).stem, f"{info.filename} is over {max_mb:g} MB"))
            else:
                target = Path(out) / where[0] / where[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zipped.read(info))
                stamp = dt.datetime(*info.date_time).timestamp()
                os.utime(target, (stamp, stamp))
    return refused
