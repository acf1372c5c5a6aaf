"""nbgrader metadata for the tour's exercises, written from the solution markers (``python -m metakit.teaching.assignment``).

An exercise in a tour notebook is three cells, in this order::

    markdown   the exercise's statement (optional)        → read-only       (``exN_prompt``)
    code       ### BEGIN SOLUTION … ### END SOLUTION      → autograded answer (``exN_answer``)
    code       the check: ``checks.check_…(…)`` / assert  → autograder tests, locked, POINTS (``exN_check``)

`tag_exercises` writes that into each cell's ``metadata.nbgrader`` (schema version 3) and clears
it everywhere else, so the committed notebooks carry what ``nbgrader generate_assignment`` and
``autograde`` read; running it twice changes nothing. Points come from `POINTS_OF` (weight an
exercise by its effort there), else `POINTS`.

An interpretation exercise, graded by hand, is a markdown answer cell that starts with the line
`MANUAL` (``### MANUAL ANSWER``); the instructor's model answer follows, then, after the line
`RUBRIC` (``### RUBRIC``), one criterion a line with its points::

    markdown   the question                                → read-only        (``exN_prompt``)
    markdown   ### MANUAL ANSWER                           → manually graded answer, POINTS (``exN_answer``)
               The tail classes gain most because …
               ### RUBRIC
               - 1: names the tail classes
               - 1: reads the interval, not only the mean

The student version replaces the whole cell with `MANUAL_STUB` (nbgrader's ``text_stub``), so
neither the model answer nor the rubric reaches students; `rubric` reads it back for graders. A solution cell without a check cell after
it is an error naming the notebook and the cell. Lines between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` in a check cell are kept from students and restored when grading.

Usage: ``python -m metakit.teaching.assignment [NOTEBOOK ...] [--check]`` (default: the tour).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from metakit.teaching.student import BEGIN, MANUAL, MANUAL_STUB, RUBRIC, MarkerError, is_manual  # noqa: F401

POINTS = 1          # every check cell or manual answer is worth one point unless POINTS_OF says otherwise
# "<notebook stem>/<grade_id>" → points, weighted by effort (a manual answer: its rubric's total)
POINTS_OF: dict[str, int] = {
    "00_welcome_and_data/ex1_check": 2, "00_welcome_and_data/ex2_check": 2, "00_welcome_and_data/ex3_answer": 3,
    "01_meta_step_from_scratch/ex1_check": 3, "01_meta_step_from_scratch/ex2_check": 4,
    "01_meta_step_from_scratch/ex3_check": 10, "01_meta_step_from_scratch/ex4_answer": 3,
    "02_long_tail_mfm/ex1_check": 1, "02_long_tail_mfm/ex2_check": 2, "02_long_tail_mfm/ex3_answer": 3,
    "03_learning_lr_schedules/ex1_check": 1, "03_learning_lr_schedules/ex2_check": 2,
    "03_learning_lr_schedules/ex3_answer": 3,
    "04_noisy_labels/ex1_check": 1, "04_noisy_labels/ex2_check": 1, "04_noisy_labels/ex3_answer": 3,
    "05_schedule_transfer/ex1_check": 2, "05_schedule_transfer/ex2_check": 2, "05_schedule_transfer/ex3_answer": 3,
    "06_ablation_playground/ex1_check": 1, "06_ablation_playground/ex2_check": 1, "06_ablation_playground/ex3_answer": 3,
}
SCHEMA_VERSION = 3


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
          points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def rubric(cell) -> str:
    """The rubric of a manual answer cell: its lines after `RUBRIC`, "" if none.

    Example:
        >>> rubric(nbformat.v4.new_markdown_cell(f"{MANUAL}\\nmodel answer\\n{RUBRIC}\\n- 1: names the tail"))
        '- 1: names the tail'
    """
    _, found, after = cell.source.partition(RUBRIC)
    return after.strip() if found else ""


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
        if is_manual(cell):
            number += 1
            grade_id = f"ex{number}_answer"
            cell.metadata["nbgrader"] = _meta(grade_id, solution=True, grade=True,
                                              points=POINTS_OF.get(f"{stem}/{grade_id}", POINTS))
            _prompt(copy.cells, index, f"ex{number}")
            continue
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
        _prompt(copy.cells, index, grade_id)
    return copy


def _prompt(cells: list, index: int, grade_id: str) -> None:
    """Lock the markdown cell before an answer as its prompt."""
    before = cells[index - 1] if index else None
    if before is not None and before.cell_type == "markdown" and "nbgrader" not in before.metadata:
        before.metadata["nbgrader"] = _meta(f"{grade_id}_prompt", locked=True)


def exercises(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """grade_id → points of every graded cell (check cells, manual answers) of a tagged notebook.

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
