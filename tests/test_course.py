"""The classroom with real nbgrader: the tour's exercises tagged, released, autograded, exported.

The end-to-end test grades notebook 01's own exercise cells (with its parameters and imports
cells, the rest of the notebook left out so that four kernels fit in seconds): a correct
submission gets full points, one wrong answer loses exactly its check cell's points, the
unmodified student version gets zero; the wrong answer's student also empties its locked check
cell, and is graded by the original check all the same.
"""
import csv
from pathlib import Path

import nbformat
import pytest

from metakit.teaching import assignment, course
from metakit.teaching.student import BEGIN, END, PLACEHOLDER, main as student_main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NB01 = ROOT / "notebooks" / "01_meta_step_from_scratch.ipynb"


def nbgrader_of(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tour_notebooks_are_tagged_as_committed(path):
    """The committed metadata is what the tagger writes: re-tagging changes nothing."""
    notebook = nbformat.read(path, as_version=4)
    assert assignment.tag_exercises(notebook, path.name) == notebook, "run python -m metakit.teaching.assignment"
    cells = notebook.cells
    answers = [i for i, c in enumerate(cells) if nbgrader_of(c).get("solution")]
    assert answers and answers == [i for i, c in enumerate(cells) if c.cell_type == "code" and BEGIN in c.source]
    for i in answers:
        check = nbgrader_of(cells[i + 1])
        assert check["grade"] and check["locked"] and check["points"] > 0 and check["schema_version"] == 3
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
        text = "\n".join(c.source for c in theirs.cells)
        assert BEGIN not in text and "HIDDEN TESTS" not in text and PLACEHOLDER in text
        locked = [c for c in theirs.cells if nbgrader_of(c).get("locked")]
        assert locked and all(c.metadata.get("editable") is False for c in locked)


def excerpt(path: Path, **parameters) -> nbformat.NotebookNode:
    """A tour notebook's parameters cell and the set-up cell after it, then its tagged exercise cells, unchanged
    but for ``parameters`` (name → value) appended to the parameters cell, as papermill injects them."""
    nb = nbformat.read(path, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    cells = nb.cells[first:first + 2] + [c for c in nb.cells if nbgrader_of(c)]
    cells[0] = nbformat.from_dict(cells[0])
    cells[0].source += "".join(f"\n{name} = {value!r}" for name, value in parameters.items())
    return nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)


def answered(release: nbformat.NotebookNode, source: nbformat.NotebookNode, **answers) -> nbformat.NotebookNode:
    """The student version with every answer cell filled in from ``source`` (markers dropped) or ``answers``."""
    filled = nbformat.from_dict(release)
    by_id = {nbgrader_of(c).get("grade_id"): c for c in source.cells}
    for cell in filled.cells:
        grade_id = nbgrader_of(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
        elif nbgrader_of(cell).get("solution"):
            cell.source = "\n".join(l for l in by_id[grade_id].source.splitlines() if l.strip() not in (BEGIN, END))
    return filled


WRONG_LOOKAHEAD = """def my_lookahead(net, loss, lr, weight_decay):
    params = {n: p for n, p in net.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {n: p + lr * (g + weight_decay * p) for (n, p), g in zip(params.items(), grads)}   # uphill"""


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")   # nbgrader's gradebook on SQLAlchemy 2
def test_grading_notebook_01_with_real_nbgrader(tmp_path):
    source = excerpt(NB01, LOOP_EPOCHS=1)   # exercise 3's check trains: one epoch keeps four kernels in seconds
    nbformat.write(source, tmp_path / NB01.name)
    home = tmp_path / "course"
    [release_path] = course.release([tmp_path / NB01.name], home)
    release = nbformat.read(release_path, as_version=4)
    points = assignment.exercises(source)
    assert points == {"ex1_check": 1, "ex2_check": 1, "ex3_check": 1}

    # the wrong answer's student also empties its locked check cell: nbgrader grades with the original
    wrong = answered(release, source, ex1_answer=WRONG_LOOKAHEAD, ex1_check="pass  # the check, deleted")
    submissions = {"correct": answered(release, source), "wrong": wrong, "blank": release}
    for student, notebook in submissions.items():
        (tmp_path / "submissions" / student).mkdir(parents=True)
        nbformat.write(notebook, tmp_path / "submissions" / student / NB01.name)

    totals, by_cell = course.grade(tmp_path / "submissions", home)
    score = {r["student_id"]: float(r["score"]) for r in rows(totals)}
    full = sum(points.values())
    assert {r["max_score"] for r in rows(totals)} == {f"{float(full)}"}
    assert score == {"correct": full, "wrong": full - points["ex1_check"], "blank": 0.0}
    cells = {(r["student_id"], r["cell"]): float(r["score"]) for r in rows(by_cell)}
    assert cells[("wrong", "ex1_check")] == 0 and cells[("wrong", "ex2_check")] == points["ex2_check"]
    assert (home / "gradebook.db").is_file() and (home / "nbgrader_config.py").is_file()


def test_grade_names_a_missing_folder_and_a_stray_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="submissions='.*nowhere' is not a folder"):
        course.grade(tmp_path / "nowhere", tmp_path / "course")
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    with pytest.raises(course.CourseError, match="no gradebook; run `make assignment`"):
        course.grade(tmp_path / "subs", tmp_path / "course")
