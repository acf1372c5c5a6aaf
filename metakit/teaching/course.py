"""An nbgrader course for the tour: release, collect, autograde in a sandbox, feedback, manual scores, grades.

``make assignment`` and ``make grade`` call this module; nbgrader does the bookkeeping through
its Python API (`nbgrader.apps.NbGraderAPI`) and its gradebook (SQLite). Each notebook is one
assignment named after it (``00_welcome_and_data``). The course directory (``runs/course``) holds::

    nbgrader_config.py   written here: course root, stubs, the sandboxed autograde
    due.toml             optional: ``00_welcome_and_data = 2025-10-06T23:59:00+02:00`` per assignment
    source/, release/    the tagged tour notebooks; the student versions (solutions out)
    submitted/, autograded/, gradebook.db   nbgrader's own; executed/: the sandbox's outputs
    feedback/<student>/<nb>/<nb>.html      per student, hidden tests left out
    status.json, grades.csv, grades_by_cell.csv, manual.csv   see `metakit.teaching.grading.grades`

`grade` collects ``SUBMISSIONS/<student>/<nb>.ipynb`` (or an LMS zip), refusing what cannot be
graded with a reason; runs up to ``workers`` submissions at once, each in its own process with its
kernel in the sandbox (`metakit.teaching.grading.execute`); then, one at a time, lets nbgrader
score the outputs, stamps lateness from the due date, writes feedback and exports the CSVs.

Usage: ``python -m metakit.teaching.course [--course DIR] release [NOTEBOOK ...]``,
``... grade SUBMISSIONS|LMS.zip [--workers 2] [--cell-timeout 300] [--due NB=WHEN]``,
``... manual [--scores manual.csv]``.

Example:
    >>> parse_due(["00_a=2025-01-31T23:59:00+01:00"])["00_a"].isoformat()
    '2025-01-31T22:59:00+00:00'
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import warnings
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from metakit.io import atomic_write_text
from metakit.teaching.assignment import MANUAL_STUB
from metakit.teaching.student import let_raise
from metakit.teaching.grading.collect import Refusal, Submission, scan, unzip
from metakit.teaching.grading.execute import Job, execute_submission
from metakit.teaching.grading.grades import Ledger, apply_manual, export, manual_sheet
from metakit.teaching.grading.sandbox import Sandbox, probe
from metakit.teaching.student import PLACEHOLDER

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
# Written by metakit.teaching.course; rewritten on every release and grade.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "metakit"
c.Exchange.root = {exchange!r}
c.ClearSolutions.code_stub = {{"python": {stub!r}}}   # the same line as `make student`
c.ClearSolutions.text_stub = {text!r}                # a manually graded answer's cell, for students
# autograde executes nothing itself: the sandbox did (metakit.teaching.grading.execute), Replay reads its outputs
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, GetGrades,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)
from metakit.teaching.grading.execute import Replay
c.Autograde.autograde_preprocessors = [Replay, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                                       AssignLatePenalties, CheckCellMetadata]
c.Replay.executed_root = {executed!r}
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
"""


class CourseError(RuntimeError):
    """nbgrader refused a step; the message names it and carries nbgrader's log."""


def write_config(course: Path) -> Path:
    """Write ``course/nbgrader_config.py`` (atomically) and return its path.

    Example:
        >>> "Replay.executed_root" in write_config(Path(tempfile.mkdtemp())).read_text()
        True
    """
    course = Path(course).resolve()
    text = CONFIG.format(root=str(course), exchange=str(course / "exchange"), stub=PLACEHOLDER, text=MANUAL_STUB,
                         executed=str(course / "executed"))
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


@contextlib.contextmanager
def _environment():
    """Meanwhile nbgrader finds this Python's tools: it runs ``alembic`` (the gradebook's migrations) from PATH."""
    saved = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), saved]))
    try:
        yield
    finally:
        os.environ["PATH"] = saved or ""


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
            released.append(_let_answers_raise(course / "release" / path.stem / path.name))
    return released


def _let_answers_raise(path: Path) -> Path:
    """Tag the released notebook's code answers and checks as the student copies are (`student.MAY_RAISE`)."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("solution") or meta.get("grade")):
            let_raise(cell)
    atomic_write_text(path, nbformat.writes(notebook))
    return path


def parse_due(values: list[str], file: Path | None = None) -> dict[str, dt.datetime]:
    """Due dates (UTC) from ``file`` (TOML, ``assignment = 2025-10-06T23:59:00+02:00``) and ``NB=WHEN`` values.

    A time without an offset is UTC; a value given on the command line wins over the file's.
    """
    due = dict(tomllib.loads(Path(file).read_text())) if file is not None and Path(file).exists() else {}
    for value in values:
        name, sep, when = value.partition("=")
        if not sep:
            raise ValueError(f"--due {value!r}: give ASSIGNMENT=WHEN, e.g. 00_welcome_and_data=2025-10-06T23:59+02:00")
        due[name] = dt.datetime.fromisoformat(when)
    out = {}
    for name, when in due.items():
        if not isinstance(when, dt.datetime):
            raise ValueError(f"due date of {name!r} is {when!r}; give a date and time, e.g. 2025-10-06T23:59:00+02:00")
        out[name] = (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    return out


def _submit(found: list[Submission], course: Path, ledger: Ledger) -> tuple[list[Submission], list[Refusal]]:
    """Copy readable notebooks into nbgrader's ``submitted/<student>/<assignment>/`` with their ``timestamp.txt``."""
    ready, refused = [], []
    for submission in found:
        try:
            nbformat.read(submission.path, as_version=4)
        except Exception as err:   # any unreadable file is that student's problem, not the class's
            refused.append(Refusal(submission.student, submission.assignment, f"{submission.path.name} is not a "
                                   f"valid notebook ({type(err).__name__}: {str(err)[:200]})"))
            continue
        target = course / "submitted" / submission.student / submission.assignment
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        shutil.copyfile(submission.path, target / submission.path.name)
        atomic_write_text(target / "timestamp.txt", submission.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        ledger.set(submission.student, submission.assignment, "not graded: grading did not finish",
                   submission.timestamp.isoformat())
        ready.append(submission)
    return ready, refused


def _execute(submission: Submission, course: Path, sandbox: Sandbox) -> str:
    """Run one submission in the sandbox (a worker thread); "" or "; why it stopped early", or "not graded: why"."""
    folder = Path(submission.student) / submission.assignment / f"{submission.assignment}.ipynb"
    executed = course / "executed" / folder
    executed.unlink(missing_ok=True)
    job = Job(submitted=str(course / "submitted" / folder), executed=str(executed),
              db_url=f"sqlite:///{course / 'gradebook.db'}", assignment=submission.assignment,
              student=submission.student, sandbox=dataclasses.asdict(sandbox))
    try:
        stopped = execute_submission(job)["stopped"]
    except Exception as err:   # one submission's failure is reported and the class goes on
        return f"not graded: it could not be run ({type(err).__name__}: {str(err).strip()[:300]})"
    return f"; {stopped}" if stopped else ""


def grade(submissions: Path, course: Path, *, workers: int = 2, sandbox: Sandbox | None = None,
          due: dict[str, dt.datetime] | None = None, feedback: bool = True) -> tuple[Path, Path]:
    """Grade every submission in a folder (or LMS zip) into the gradebook, then export the CSVs.

    Args:
        submissions: a folder of ``<student_id>/<notebook>.ipynb``, or a zip (see `metakit.teaching.grading.collect`).
        course: the course directory of `release`.
        workers: submissions executed at once (each a kernel of one thread, ``memory_gb`` at most).
        sandbox: limits of each kernel (default: `Sandbox` reading `course_reads`); raise ``cell_timeout`` for a
            profile slower than smoke.
        due: assignment → due date; a submission after it is marked late.
        feedback: write ``feedback/<student>/<nb>/<nb>.html``.

    Returns:
        The paths of ``grades.csv`` and ``grades_by_cell.csv``.
    """
    course = Path(course).resolve()
    if not Path(submissions).exists():
        raise FileNotFoundError(f"submissions={str(submissions)!r} does not exist; give a folder of "
                                "<student_id>/<notebook>.ipynb files or an LMS zip.")
    if not (course / "gradebook.db").exists():
        raise CourseError(f"course={str(course)!r} has no gradebook; run `make assignment` (release) first.")
    sandbox = sandbox or Sandbox(reads=course_reads())
    probe(sandbox.user_namespace)
    released = {p.name for p in (course / "release").glob("*/*.ipynb")}
    folder, refused = Path(submissions), []
    if folder.is_file():
        folder = course / "collected" / folder.stem
        shutil.rmtree(folder, ignore_errors=True)
        refused = unzip(Path(submissions), folder, released)
    found, unusable = scan(folder, released) if folder.is_dir() else ([], [])
    refused += unusable
    if not found and not refused:
        raise CourseError(f"no submissions in {str(submissions)!r}: expected <student_id>/<notebook>.ipynb files.")
    api, ledger = _api(course), Ledger(course)
    with _environment(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="nbgrader|sqlalchemy")   # nbgrader's gradebook on SQLAlchemy 2
        _set_due_dates(course, due or {})
        ready, unreadable = _submit(found, course, ledger)
        for refusal in refused + unreadable:
            ledger.set(refusal.student, refusal.assignment or "?", f"not graded: {refusal.reason}")
            print(f"refused {refusal.student} {refusal.assignment}: {refusal.reason}", file=sys.stderr)
        start = time.monotonic()
        with ThreadPoolExecutor(max(1, workers)) as pool:
            runs = pool.map(lambda s: _execute(s, course, sandbox), ready)
            for number, (submission, ran) in enumerate(zip(ready, runs), start=1):
                if not ran.startswith("not graded"):
                    result = api.autograde(submission.assignment, submission.student)
                    ran = ("graded" + ran) if result["success"] else "not graded: nbgrader could not score it " \
                        f"({(result.get('error') or '').strip().splitlines()[-1:]})"
                    if feedback and result["success"]:
                        api.generate_feedback(submission.assignment, submission.student)
                ledger.set(submission.student, submission.assignment, ran, submission.timestamp.isoformat())
                print(f"[{number}/{len(ready)}] {submission.student} {submission.assignment}: {ran} "
                      f"({time.monotonic() - start:.0f} s)", file=sys.stderr)
    return export(course)


def _set_due_dates(course: Path, due: dict[str, dt.datetime]) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for name, when in due.items():
            gradebook.update_or_create_assignment(name, duedate=when.replace(tzinfo=None))


def main(argv: list[str] | None = None) -> int:
    from metakit.teaching.assignment import tour

    parser = argparse.ArgumentParser(prog="python -m metakit.teaching.course", description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, default=Path("runs/course"), help="the nbgrader course directory")
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("release", help="student versions into COURSE/release").add_argument(
        "notebooks", nargs="*", type=Path, help="default: the tour, notebooks/[0-9][0-9]_*.ipynb")
    grading = steps.add_parser("grade", help="autograde SUBMISSIONS in the sandbox, write feedback, export CSVs")
    grading.add_argument("submissions", type=Path, help="a folder of <student_id>/<notebook>.ipynb, or an LMS zip")
    grading.add_argument("--workers", type=int, default=2, help="submissions run at once (default 2)")
    grading.add_argument("--cell-timeout", type=int, default=Sandbox.cell_timeout,
                         help="seconds a cell may run (default %(default)s, for the smoke profile)")
    grading.add_argument("--notebook-timeout", type=int, default=Sandbox.notebook_timeout,
                         help="seconds a whole notebook may run (default %(default)s)")
    grading.add_argument("--memory-gb", type=float, default=Sandbox.memory_gb, help="per kernel (default %(default)s)")
    grading.add_argument("--due", action="append", default=[], metavar="NB=WHEN",
                         help="a due date, e.g. 00_welcome_and_data=2025-10-06T23:59+02:00 (default: COURSE/due.toml)")
    grading.add_argument("--no-feedback", action="store_true", help="skip the feedback HTML")
    manual = steps.add_parser("manual", help="write COURSE/manual.csv to score by hand, or read back its scores")
    manual.add_argument("--scores", type=Path, help="a filled manual.csv: write its scores, re-export the CSVs")
    args = parser.parse_args(argv)
    try:
        if args.step == "release":
            for path in release(args.notebooks or tour(), args.course):
                print(f"released {path}")
        elif args.step == "grade":
            sandbox = Sandbox(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                              memory_gb=args.memory_gb, reads=course_reads())
            due = parse_due(args.due, Path(args.course) / "due.toml")
            for path in grade(args.submissions, args.course, workers=args.workers, sandbox=sandbox, due=due,
                              feedback=not args.no_feedback):
                print(f"wrote {path}")
        elif args.scores is None:
            print(f"wrote {manual_sheet(args.course)}: fill its score column, then pass it with --scores")
        else:
            print(f"wrote {apply_manual(args.course, args.scores)} manual scores")
            api = _api(args.course)
            for name in sorted({e["assignment"] for e in Ledger(args.course).entries.values()
                                if e["status"].startswith("graded")}):
                api.generate_feedback(name)   # feedback with the manual scores
            for path in export(args.course):
                print(f"wrote {path}")
    except (CourseError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def course_reads() -> tuple[str, ...]:
    """The read-only course files a graded notebook may read: the committed ``results/`` and the data root."""
    data = Path(os.environ.get("METAKIT_DATA", ROOT / "data")).resolve()
    return tuple(str(p) for p in (ROOT / "results", data) if p.exists())


if __name__ == "__main__":
    sys.exit(main())
