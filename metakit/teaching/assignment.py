"""nbgrader metadata for the tour's exercises, written from the solution markers (``python -m metakit.teaching.assignment``).

An exercise in a tour notebook is three cells, in this order::

    markdown   the exercise's statement (optional)        → read-only       (``exN_prompt``)
    code       ### BEGIN SOLUTION … ### END SOLUTION      → autograded answer (``exN_answer``)
    code       the check: ``checks.check_…(…)`` / assert  → autograder tests, locked, POINTS (``exN_check``)

`tag_exercises` writes that into each cell's ``metadata.nbgrader`` (schema version 3) and clears
it everywhere else, so the committed notebooks carry what ``nbgrader generate_assignment`` and
``autograde`` read; running it twice changes nothing. A solution cell without a check cell after
it is an error naming the notebook and the cell. Lines between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` in a check cell are kept from students and restored when grading.

Usage: ``python -m metakit.teaching.assignment [NOTEBOOK ...] [--check]`` (default: the tour).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from metakit.teaching.student import BEGIN, MarkerError

POINTS = 1          # every check cell is worth one point unless POINTS_OF says otherwise
POINTS_OF: dict[str, int] = {}   # "<notebook stem>/<grade_id>" → points
SCHEMA_VERSION = 3


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
          points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def _is_check(cell) -> bool:
    return cell.cell_type == "code" and BEGIN not in cell.source and ("assert" in cell.source or "check" in cell.source)


def tag_exercises(notebook: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose exercise cells carry nbgrader metadata (prompt, answer, check).

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("**1.** Set x to 2."),
        ...     nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nx = 2\\n### END SOLUTION"),
        ...     nbformat.v4.new_code_cell("assert x == 2")])
        >>> [(c.metadata.nbgrader["grade_id"], c.metadata.nbgrader.get("points")) for c in tag_exercises(nb).cells]
        [('ex1_prompt', None), ('ex1_answer', None), ('ex1_check', 1)]
    """
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        cell.metadata.pop("nbgrader", None)
    stem = Path(name).stem
    number = 0
    for index, cell in enumerate(copy.cells):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        number += 1
        check = copy.cells[index + 1] if index + 1 < len(copy.cells) else None
        if check is None or not _is_check(check):
            raise MarkerError(f"{name}, cell {index}: an exercise's solution cell needs a check cell right after it "
                              "(a code cell with checks.check_…(…) or an assert, no solution markers); add one.")
        grade_id = f"ex{number}"
        cell.metadata["nbgrader"] = _meta(f"{grade_id}_answer", solution=True)
        points = POINTS_OF.get(f"{stem}/{grade_id}_check", POINTS)
        check.metadata["nbgrader"] = _meta(f"{grade_id}_check", grade=True, locked=True, points=points)
        before = copy.cells[index - 1] if index else None
        if before is not None and before.cell_type == "markdown" and "nbgrader" not in before.metadata:
            before.metadata["nbgrader"] = _meta(f"{grade_id}_prompt", locked=True)
    return copy


def exercises(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """grade_id → points of every check cell of a tagged notebook.

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\\n### END SOLUTION"),
        ...                                      nbformat.v4.new_code_cell("assert True")])
        >>> exercises(tag_exercises(nb))
        {'ex1_check': 1}
    """
    return {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"] for c in notebook.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def tour() -> list[Path]:
    """The tour's notebooks, ``notebooks/NN_*.ipynb`` of this checkout."""
    return sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    from metakit.io import atomic_write_text

    parser = argparse.ArgumentParser(prog="python -m metakit.teaching.assignment", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9][0-9]_*.ipynb")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook is not tagged")
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks or tour():
        try:
            notebook = nbformat.read(path, as_version=4)
            tagged = tag_exercises(notebook, path.name)
        except (MarkerError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if tagged == notebook:
            continue
        stale.append(path)
        if not args.check:
            nbformat.validate(tagged)
            atomic_write_text(path, nbformat.writes(tagged) + "\n")
            print(f"tagged {path}")
    if args.check and stale:
        print("not tagged: " + ", ".join(map(str, stale)) + "; run python -m metakit.teaching.assignment", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
