"""The classroom with real nbgrader: the tour's exercises tagged and released as the student copies are.

Grading (sandboxed, every notebook end to end, hostile submissions) is tested in tests/test_grading_*.py.
"""
from pathlib import Path

import nbformat
import pytest

from metakit.teaching import assignment, course
from metakit.teaching.student import BEGIN, END, MAY_RAISE, PLACEHOLDER, main as student_main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def nbgrader_of(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tour_notebooks_are_tagged_as_committed(path):
    """The committed metadata is what the tagger writes: re-tagging changes nothing."""
    notebook = nbformat.read(path, as_version=4)
    assert assignment.tag_exercises(notebook, path.name) == notebook, "run python -m metakit.teaching.assignment"
    cells = notebook.cells
    answers = [i for i, c in enumerate(cells) if nbgrader_of(c).get("solution") and c.cell_type == "code"]
    assert answers and answers == [i for i, c in enumerate(cells) if c.cell_type == "code" and BEGIN in c.source]
    for i in answers:
        check = nbgrader_of(cells[i + 1])
        assert check["grade"] and check["locked"] and check["points"] > 0 and check["schema_version"] == 3
    manual = [i for i, c in enumerate(cells) if nbgrader_of(c).get("solution") and c.cell_type == "markdown"]
    assert manual == [i for i, c in enumerate(cells) if assignment.is_manual(c)]
    for i in manual:   # graded by hand: a grade with points, editable by the student
        meta = nbgrader_of(cells[i])
        assert meta["grade"] and not meta["locked"] and meta["points"] > 0
    ids = [nbgrader_of(c)["grade_id"] for c in cells if nbgrader_of(c)]
    assert len(ids) == len(set(ids))


def test_a_solution_without_a_check_cell_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"{BEGIN}\nx = 1\n{END}"),
                                         nbformat.v4.new_markdown_cell("no check here")])
    with pytest.raises(assignment.MarkerError, match="x.ipynb, cell 0: .* check cell right after it"):
        assignment.tag_exercises(nb, "x.ipynb")


def test_check_mode_reports_an_untagged_notebook(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"{BEGIN}\nx = 1\n{END}"),
                                         nbformat.v4.new_code_cell("assert x == 1")])
    nbformat.write(nb, tmp_path / "00_a.ipynb")
    assert assignment.main([str(tmp_path / "00_a.ipynb"), "--check"]) == 1
    assert "not tagged" in capsys.readouterr().err
    assert assignment.main([str(tmp_path / "00_a.ipynb")]) == 0
    assert assignment.main([str(tmp_path / "00_a.ipynb"), "--check"]) == 0


@pytest.mark.slow
def test_nbgrader_release_of_the_tour_equals_the_student_copies(tmp_path):
    """`make assignment` and `make student` come from the same source: the same cells, the same stub."""
    released = course.release(NOTEBOOKS, tmp_path / "course")
    assert student_main([*map(str, NOTEBOOKS), "--out", str(tmp_path / "student")]) == 0
    for path, release in zip(NOTEBOOKS, released):
        ours = nbformat.read(tmp_path / "student" / path.name, as_version=4)
        theirs = nbformat.read(release, as_version=4)
        assert [(c.cell_type, c.source) for c in ours.cells] == [(c.cell_type, c.source) for c in theirs.cells]
        assert [MAY_RAISE in c.metadata.get("tags", []) for c in ours.cells] == \
               [MAY_RAISE in c.metadata.get("tags", []) for c in theirs.cells]
        text = "\n".join(c.source for c in theirs.cells)
        assert BEGIN not in text and "HIDDEN TESTS" not in text and PLACEHOLDER in text
        locked = [c for c in theirs.cells if nbgrader_of(c).get("locked")]
        assert locked and all(c.metadata.get("editable") is False for c in locked)


def test_grade_names_a_missing_folder_and_a_stray_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="submissions='.*nowhere' does not exist"):
        course.grade(tmp_path / "nowhere", tmp_path / "course")
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    with pytest.raises(course.CourseError, match="no gradebook; run `make assignment`"):
        course.grade(tmp_path / "subs", tmp_path / "course")
