"""Student copies of the notebooks: solutions out, outputs cleared (``make student``).

In an instructor notebook, an exercise's solution sits between two marker lines::

    def my_counts(n_max, num_classes, imbalance):
        ### BEGIN SOLUTION
        return [...]
        ### END SOLUTION

The student copy replaces each such block, markers included, with one line at the marker's
indentation, ``raise NotImplementedError("Exercise: write your solution here")``, and drops every
``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` block (nbgrader puts those back to grade).
Markers must pair up inside one code cell, else an error names the notebook, cell and line.
A manually graded answer (a markdown cell starting ``### MANUAL ANSWER``: the instructor's model answer and its
``### RUBRIC``, `metakit.teaching.assignment`) becomes `metakit.teaching.assignment.MANUAL_STUB` whole, as in
nbgrader's release; either heading anywhere else is refused, so a misplaced one cannot carry a rubric through.
Copies go to ``notebooks/student/`` (git-ignored): the cells of `metakit.teaching.course`'s release.

Usage: ``python -m metakit.teaching.student [NOTEBOOK ...] [--out notebooks/student] [--keep]``
(``--keep``: copies already there are a student's work; write only the missing ones, as ``make lab`` does).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
PLACEHOLDER = 'raise NotImplementedError("Exercise: write your solution here")'
MANUAL, RUBRIC = "### MANUAL ANSWER", "### RUBRIC"     # first line of a manually graded answer; its rubric's heading
MANUAL_STUB = "*Your answer here: a few sentences, graded by hand.*"   # what students get in its place
MAY_RAISE = "raises-exception"   # Jupyter's tag: Run All goes on past the cell's error (a blank exercise raises)


def let_raise(cell) -> None:
    """Tag ``cell`` `MAY_RAISE`: an exercise left blank stops neither Run All nor nbval."""
    tags = cell.metadata.setdefault("tags", [])
    if MAY_RAISE not in tags:
        tags.append(MAY_RAISE)


def is_manual(cell) -> bool:
    """A manually graded answer: a markdown cell whose first line is `MANUAL`."""
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(MANUAL)


class MarkerError(ValueError):
    """Unbalanced or nested solution markers."""


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every marked solution block of one code cell's source with the placeholder.

    Args:
        source: the cell's code.
        where: names the cell in error messages, e.g. ``"00_welcome.ipynb, cell 12"``.

    Returns:
        The student's version of the code.

    Example:
        >>> print(strip_solutions("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION"))
        def f():
            raise NotImplementedError("Exercise: write your solution here")
    """
    out, opened, hidden = [], None, None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker in (BEGIN_HIDDEN, END_HIDDEN) or hidden is not None:
            if marker == BEGIN_HIDDEN and hidden is not None:
                raise MarkerError(f"{where}, line {number}: {BEGIN_HIDDEN!r} inside the hidden tests opened at "
                                  f"line {hidden}; close them with {END_HIDDEN!r} first.")
            if marker == END_HIDDEN and hidden is None:
                raise MarkerError(f"{where}, line {number}: {END_HIDDEN!r} without a {BEGIN_HIDDEN!r} before it.")
            hidden = number if marker == BEGIN_HIDDEN else None if marker == END_HIDDEN else hidden
        elif marker == BEGIN:
            if opened is not None:
                raise MarkerError(f"{where}, line {number}: {BEGIN!r} inside the solution opened at line {opened}; "
                                  f"close it with {END!r} first.")
            opened = number
            out.append(line[:len(line) - len(line.lstrip())] + PLACEHOLDER)
        elif marker == END:
            if opened is None:
                raise MarkerError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it.")
            opened = None
        elif opened is None:
            out.append(line)
    if opened is not None:
        raise MarkerError(f"{where}, line {opened}: {BEGIN!r} is never closed; add {END!r} after the solution.")
    if hidden is not None:
        raise MarkerError(f"{where}, line {hidden}: {BEGIN_HIDDEN!r} is never closed; add {END_HIDDEN!r} after them.")
    return "\n".join(out)


def student_notebook(notebook: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A student copy of ``notebook``: solutions replaced, manual answers stubbed, outputs and execution counts cleared;
    an answer cell and its check are tagged `MAY_RAISE`.

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\\n### BEGIN SOLUTION\\nx = 2\\n### END SOLUTION"),
        ...     nbformat.v4.new_markdown_cell("### MANUAL ANSWER\\nThe tail gains.\\n### RUBRIC\\n- 1: the tail")])
        >>> code, answer = student_notebook(nb).cells
        >>> code.source, answer.source == MANUAL_STUB
        ('x = 1\\nraise NotImplementedError("Exercise: write your solution here")', True)
    """

    copy = nbformat.from_dict(notebook)
    for index, cell in enumerate(copy.cells):
        if is_manual(cell):
            cell.source = MANUAL_STUB                        # the model answer and its rubric stay with the grader
        elif cell.cell_type == "code":
            if BEGIN in cell.source:                         # the answer and its check raise until answered
                for answer_or_check in copy.cells[index:index + 2]:
                    if answer_or_check.cell_type == "code":
                        let_raise(answer_or_check)
            cell.source = strip_solutions(cell.source, f"{name}, cell {index}")
            cell.outputs, cell.execution_count = [], None
        elif any(m in cell.source for m in (BEGIN, END, BEGIN_HIDDEN, END_HIDDEN)):
            raise MarkerError(f"{name}, cell {index}: solution markers belong in code cells, not {cell.cell_type}.")
        if any(line.strip() in (MANUAL, RUBRIC) for line in cell.source.splitlines()):
            raise MarkerError(f"{name}, cell {index}: {MANUAL!r} or {RUBRIC!r} in a cell that is not a manual answer; "
                              f"a manual answer is a markdown cell whose first line is {MANUAL!r}.")
    copy.metadata.pop("widgets", None)
    return copy


def site_notebook(executed: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The students' course-site copy of an executed notebook: solutions stripped, outputs kept up to the first
    exercise and cleared from there on (an exercise's output, its check's ✓ and what follows can show the answer).

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1", execution_count=1, outputs=[
        ...     nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=1)]),
        ...     nbformat.v4.new_code_cell("### BEGIN SOLUTION\\nx = 2\\n### END SOLUTION", execution_count=2)])
        >>> [len(c.outputs) for c in site_notebook(nb).cells], site_notebook(nb).cells[1].source
        ([1, 0], 'raise NotImplementedError("Exercise: write your solution here")')
    """
    first = next((i for i, c in enumerate(executed.cells) if c.cell_type == "code" and BEGIN in c.source),
                 len(executed.cells))
    copy = student_notebook(executed, name)
    for cell, original in list(zip(copy.cells, executed.cells))[:first]:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = original.outputs, original.execution_count
    return copy


def write_student_copies(notebooks: list[Path], out_dir: Path, keep: bool = False) -> list[Path]:
    """Write a student copy of each notebook into ``out_dir``; all are checked before any is written.

    Args:
        keep: leave a copy that is already in ``out_dir`` as it is (it may hold the student's answers).

    Returns:
        The written paths, in the given order.
    """
    from metakit.io import atomic_write_text

    copies = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        copy = student_notebook(notebook, path.name)
        nbformat.validate(copy)
        if not (keep and (out_dir / path.name).exists()):
            copies.append((out_dir / path.name, copy))
    return [atomic_write_text(target, nbformat.writes(copy)) for target, copy in copies]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metakit.teaching.student", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: notebooks/[0-9][0-9]*_*.ipynb (02b_…: 02's companion)")
    parser.add_argument("--out", type=Path, default=Path("notebooks/student"), help="where the copies go")
    parser.add_argument("--keep", action="store_true", help="keep copies already there (a student's work)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(Path("notebooks").glob("[0-9][0-9]*_*.ipynb"))
    if not notebooks:
        print("error: no notebooks given and none match notebooks/[0-9][0-9]*_*.ipynb", file=sys.stderr)
        return 2
    try:
        written = write_student_copies(notebooks, args.out, keep=args.keep)
    except (MarkerError, FileNotFoundError, nbformat.ValidationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
