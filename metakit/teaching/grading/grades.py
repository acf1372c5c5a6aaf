"""The grades an instructor reads: one status per student and assignment, CSVs, manual scores.

`Ledger` (``COURSE/status.json``) records, for every student and assignment a grading run saw,
whether it was graded, and if not why ("not graded: the folder holds symbolic links"), with the
submission time. It is written before a run executes anything ("not graded: grading did not
finish") and updated as each submission is scored, so an aborted run never shows a 0.
`export` joins it with nbgrader's gradebook into ``grades.csv`` (student_id, assignment, score,
max_score, status, late, submitted) and ``grades_by_cell.csv``; a score is only given for a
graded submission. `manual_sheet` lists the manually graded answers with their rubric for the
instructor to score; `apply_manual` writes the filled sheet's scores into the gradebook.

Example:
    >>> import tempfile, pathlib
    >>> ledger = Ledger(pathlib.Path(tempfile.mkdtemp()))
    >>> ledger.set("ann", "00_a", "graded", submitted="2025-01-01T00:00:00+00:00")
    >>> Ledger(ledger.course).entries["ann/00_a"]["status"]
    'graded'
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import nbformat

from metakit.io import atomic_write_text
from metakit.teaching.assignment import is_manual, rubric

FIELDS = ["student_id", "assignment", "score", "max_score", "status", "late", "submitted"]
CELL_FIELDS = ["student_id", "assignment", "notebook", "cell", "score", "max_score", "manual"]
SHEET_FIELDS = ["student_id", "assignment", "cell", "max_score", "score", "rubric", "answer"]


class Ledger:
    """``COURSE/status.json``: ``"<student>/<assignment>"`` → status, submission time; saved on every change."""

    def __init__(self, course: Path):
        self.course, self.path = Path(course), Path(course) / "status.json"
        self.entries = json.loads(self.path.read_text()) if self.path.exists() else {}

    def set(self, student: str, assignment: str, status: str, submitted: str = "") -> None:
        self.entries[f"{student}/{assignment}"] = {"student": student, "assignment": assignment,
                                                   "status": status, "submitted": submitted}
        atomic_write_text(self.path, json.dumps(self.entries, indent=1, sort_keys=True))


def _csv(path: Path, rows: list[dict], fields: list[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: [str(r[f]) for f in fields]))
    return atomic_write_text(path, buffer.getvalue())


def export(course: Path) -> tuple[Path, Path]:
    """Write ``grades.csv`` and ``grades_by_cell.csv`` from the ledger and the gradebook, atomically."""
    from nbgrader.api import Gradebook, MissingEntry

    course = Path(course).resolve()
    totals, cells = [], []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for entry in Ledger(course).entries.values():
            student, name = entry["student"], entry["assignment"]
            row = {"student_id": student, "assignment": name, "score": "", "max_score": "", "status": entry["status"],
                   "late": "", "submitted": entry["submitted"]}
            try:
                row["max_score"] = gradebook.find_assignment(name).max_score
                submission = gradebook.find_submission(name, student)
            except MissingEntry:
                submission = None
            if submission is not None and entry["status"].startswith("graded"):
                late = submission.total_seconds_late > 0
                pending = submission.needs_manual_grade
                row.update(score=submission.score, late="late" if late else "",
                           status=entry["status"] + ("; manual grading pending" if pending else ""))
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        cells.append({"student_id": student, "assignment": name, "notebook": notebook.name,
                                      "cell": grade.name, "score": grade.score, "max_score": grade.max_score,
                                      "manual": "manual" if grade.manual_score is not None or
                                      grade.needs_manual_grade else ""})
            totals.append(row)
    return _csv(course / "grades.csv", totals, FIELDS), _csv(course / "grades_by_cell.csv", cells, CELL_FIELDS)


def manual_sheet(course: Path) -> Path:
    """Write ``COURSE/manual.csv``: every manually graded answer of a graded submission, its rubric and text.

    Fill the ``score`` column and give the file to `apply_manual`; a score already given is shown.
    """
    from nbgrader.api import Gradebook, MissingEntry

    course = Path(course).resolve()
    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for entry in Ledger(course).entries.values():
            student, name = entry["student"], entry["assignment"]
            path = course / "autograded" / student / name / f"{name}.ipynb"
            if not entry["status"].startswith("graded") or not path.exists():
                continue
            source = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
            rubrics = {c.metadata.nbgrader["grade_id"]: rubric(c) for c in source.cells if is_manual(c)}
            for cell in nbformat.read(path, as_version=4).cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in rubrics:
                    try:
                        grade = gradebook.find_grade(grade_id, name, name, student)
                    except MissingEntry:
                        continue
                    rows.append({"student_id": student, "assignment": name, "cell": grade_id,
                                 "max_score": grade.max_score, "score": "" if grade.manual_score is None
                                 else grade.manual_score, "rubric": rubrics[grade_id], "answer": cell.source})
    return _csv(course / "manual.csv", rows, SHEET_FIELDS)


def apply_manual(course: Path, sheet: Path) -> int:
    """Write the filled ``score`` column of a `manual_sheet` into the gradebook; returns how many were written.

    Raises:
        ValueError: a score that is not a number from 0 to the cell's max_score (names the row).
    """
    from nbgrader.api import Gradebook

    with open(sheet, newline="") as file:
        rows = list(csv.DictReader(file))
    written = 0
    with Gradebook(f"sqlite:///{Path(course).resolve() / 'gradebook.db'}") as gradebook:
        for number, row in enumerate(rows, start=2):
            if not (row.get("score") or "").strip():
                continue
            grade = gradebook.find_grade(row["cell"], row["assignment"], row["assignment"], row["student_id"])
            try:
                score = float(row["score"])
            except ValueError:
                score = -1.0
            if not 0 <= score <= grade.max_score:
                raise ValueError(f"{sheet}, line {number}: score={row['score']!r} for {row['student_id']} "
                                 f"{row['cell']}; give a number from 0 to {grade.max_score:g}.")
            grade.manual_score, grade.needs_manual_grade = score, False
            written += 1
        gradebook.db.commit()
    return written
