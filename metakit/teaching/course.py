"""An nbgrader course for the tour: release student versions, autograde submissions, export grades.

``make assignment`` and ``make grade`` call this module; nbgrader does the work through its Python
API (`nbgrader.apps.NbGraderAPI`) and its gradebook (SQLite). Each notebook is one assignment
named after it (``00_welcome_and_data``). The course directory (default ``runs/course``) holds::

    nbgrader_config.py   written here: course root, the student stub of metakit.teaching.student
    source/<nb>/, release/<nb>/   the tagged tour notebook; the student version (solutions out)
    submitted/, autograded/, gradebook.db   nbgrader's own
    grades.csv, grades_by_cell.csv   score and max_score per student and assignment (and check cell)

Submissions: ``submissions/<student_id>/<nb>.ipynb``, graded in a kernel of this Python with this
checkout's metakit (METAKIT_PROFILE=smoke: minutes instead of the laptop profile's).

Usage: ``python -m metakit.teaching.course release [NOTEBOOK ...] [--course DIR]`` and
``python -m metakit.teaching.course grade SUBMISSIONS [--course DIR]``.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import shutil
import sys
from pathlib import Path

from metakit.io import atomic_write_text
from metakit.teaching.student import PLACEHOLDER

CONFIG = """\
# Written by metakit.teaching.course; rewritten on every release and grade.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "metakit"
c.Exchange.root = {exchange!r}
c.ClearSolutions.code_stub = {{"python": {stub!r}}}   # the same line as `make student`
c.ExecutePreprocessor.timeout = {timeout}            # seconds a cell may run while autograding
"""


class CourseError(RuntimeError):
    """nbgrader refused a step; the message names it and carries nbgrader's log."""


def write_config(course: Path, timeout: int = 1800) -> Path:
    """Write ``course/nbgrader_config.py`` (atomically) and return its path.

    Example:
        >>> import tempfile
        >>> "ClearSolutions.code_stub" in write_config(Path(tempfile.mkdtemp())).read_text()
        True
    """
    course = Path(course).resolve()
    text = CONFIG.format(root=str(course), exchange=str(course / "exchange"), stub=PLACEHOLDER, timeout=int(timeout))
    (course / "exchange").mkdir(parents=True, exist_ok=True)
    return atomic_write_text(course / "nbgrader_config.py", text)


def _api(course: Path):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(write_config(course).parent)).load_config()
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _ok(result: dict, step: str) -> None:
    if not result["success"]:
        raise CourseError(f"nbgrader {step} failed:\n{result.get('error') or ''}\n{result.get('log') or ''}")


def release(notebooks: list[Path], course: Path) -> list[Path]:
    """Copy each notebook into ``course/source/<stem>/`` and generate its student version in ``release/``.

    Returns:
        The released notebooks, in the given order.
    """
    course = Path(course).resolve()
    for path in notebooks:
        if not Path(path).is_file():
            raise FileNotFoundError(f"notebook {str(path)!r} does not exist; give a path like notebooks/00_*.ipynb.")
    api = _api(course)
    released = []
    with _environment():
        for path in map(Path, notebooks):
            target = course / "source" / path.stem / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, path.read_text(encoding="utf-8"))
            _ok(api.generate_assignment(path.stem), f"generate_assignment {path.stem}")
            released.append(course / "release" / path.stem / path.name)
    return released


def _collect(submissions: Path, course: Path) -> list[tuple[str, str]]:
    """Copy ``submissions/<student>/<nb>.ipynb`` into nbgrader's ``submitted/<student>/<nb>/``; (assignment, student) pairs."""
    released = {p.name: p.parent.name for p in (course / "release").glob("*/*.ipynb")}
    pairs = []
    for notebook in sorted(Path(submissions).glob("*/*.ipynb")):
        assignment = released.get(notebook.name)
        if assignment is None:
            raise CourseError(f"submission {str(notebook)!r} is not a released notebook ({sorted(released)}); "
                              "run `make assignment` first or rename it as released.")
        target = course / "submitted" / notebook.parent.name / assignment / notebook.name
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.parent.mkdir(parents=True)
        shutil.copy2(notebook, target)
        pairs.append((assignment, notebook.parent.name))
    if not pairs:
        raise CourseError(f"no submissions in {str(submissions)!r}: expected <student_id>/<notebook>.ipynb files.")
    return pairs


@contextlib.contextmanager
def _environment():
    """Meanwhile, kernels import the metakit that grades (this checkout) and nbgrader finds this Python's tools.

    nbgrader runs ``alembic`` (the gradebook's migrations) from PATH: this Python's ``bin`` comes first.
    """
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "PATH")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                             saved["PYTHONPATH"]]))
    os.environ["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), saved["PATH"]]))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def export(course: Path) -> tuple[Path, Path]:
    """Write ``grades.csv`` (student × assignment) and ``grades_by_cell.csv`` from the gradebook, atomically."""
    from nbgrader.api import Gradebook

    totals, cells = [], []
    with Gradebook(f"sqlite:///{Path(course).resolve() / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                totals.append({"student_id": submission.student.id, "assignment": assignment.name,
                               "score": submission.score, "max_score": submission.max_score})
                for notebook in submission.notebooks:
                    for grade in sorted(notebook.grades, key=lambda g: g.name):
                        cells.append({"student_id": submission.student.id, "assignment": assignment.name,
                                      "notebook": notebook.name, "cell": grade.name, "score": grade.score,
                                      "max_score": grade.max_score})

    def write(name: str, rows: list[dict], fields: list[str]) -> Path:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: [str(r[f]) for f in fields]))
        return atomic_write_text(Path(course) / name, buffer.getvalue())

    return (write("grades.csv", totals, ["student_id", "assignment", "score", "max_score"]),
            write("grades_by_cell.csv", cells, ["student_id", "assignment", "notebook", "cell", "score", "max_score"]))


def grade(submissions: Path, course: Path) -> tuple[Path, Path]:
    """Autograde every submission into the gradebook, then `export` the grades.

    Returns:
        The paths of ``grades.csv`` and ``grades_by_cell.csv``.
    """
    course = Path(course).resolve()
    if not Path(submissions).is_dir():
        raise FileNotFoundError(f"submissions={str(submissions)!r} is not a folder; give one that holds "
                                "<student_id>/<notebook>.ipynb files.")
    if not (course / "gradebook.db").exists():
        raise CourseError(f"course={str(course)!r} has no gradebook; run `make assignment` (release) first.")
    api = _api(course)
    with _environment():
        for assignment, student in _collect(Path(submissions), course):
            _ok(api.autograde(assignment, student), f"autograde {assignment} of {student}")
    return export(course)


def main(argv: list[str] | None = None) -> int:
    from metakit.teaching.assignment import tour

    parser = argparse.ArgumentParser(prog="python -m metakit.teaching.course", description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, default=Path("runs/course"), help="the nbgrader course directory")
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("release", help="student versions into COURSE/release").add_argument(
        "notebooks", nargs="*", type=Path, help="default: the tour, notebooks/[0-9][0-9]_*.ipynb")
    steps.add_parser("grade", help="autograde SUBMISSIONS into the gradebook, export CSVs").add_argument(
        "submissions", type=Path, help="a folder of <student_id>/<notebook>.ipynb")
    args = parser.parse_args(argv)
    try:
        if args.step == "release":
            for path in release(args.notebooks or tour(), args.course):
                print(f"released {path}")
        else:
            for path in grade(args.submissions, args.course):
                print(f"wrote {path}")
    except (CourseError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
