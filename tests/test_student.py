"""Student copies: no solution text, no model answer or rubric, outputs cleared, bad markers refused."""
import re
from pathlib import Path

import nbformat
import pytest

from metakit.teaching.assignment import MANUAL, MANUAL_STUB, RUBRIC, is_manual
from metakit.teaching.student import (BEGIN, BEGIN_HIDDEN, END, END_HIDDEN, MAY_RAISE, PLACEHOLDER, MarkerError, main,
                                      site_notebook, strip_solutions, student_notebook)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EVERY = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))       # the tour and its companions (02b_…)


def solution_lines(source):
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def test_indentation_kept_and_two_blocks_in_one_cell():
    code = f"a = 1\n{BEGIN}\na = 2\n{END}\ndef f(x):\n    {BEGIN}\n    return x\n    {END}\nb = 3"
    assert strip_solutions(code) == f"a = 1\n{PLACEHOLDER}\ndef f(x):\n    {PLACEHOLDER}\nb = 3"


def test_hidden_tests_are_dropped_with_their_markers():
    code = f"check(x)\n{BEGIN_HIDDEN}\nassert x == 42\n{END_HIDDEN}\nprint('done')"
    assert strip_solutions(code) == "check(x)\nprint('done')"


@pytest.mark.parametrize("code,match", [
    (f"{BEGIN_HIDDEN}\nassert x", "line 1: .* never closed"),
    (f"{END_HIDDEN}", "line 1: .* without"),
    (f"{BEGIN_HIDDEN}\n{BEGIN_HIDDEN}\n{END_HIDDEN}", "line 2: .* inside the hidden tests opened at line 1"),
])
def test_unbalanced_hidden_test_markers_name_the_line(code, match):
    with pytest.raises(MarkerError, match=match):
        strip_solutions(code, "nb.ipynb, cell 3")


@pytest.mark.parametrize("code,match", [
    (f"{BEGIN}\nx = 1", "line 1: .* never closed"),
    (f"x = 1\n{END}", "line 2: .* without"),
    (f"{BEGIN}\n{BEGIN}\n{END}", "line 2: .* inside the solution opened at line 1"),
])
def test_unbalanced_markers_name_the_line(code, match):
    with pytest.raises(MarkerError, match=match):
        strip_solutions(code, "nb.ipynb, cell 3")


def test_markers_outside_code_cells_are_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"{BEGIN}\nsecret\n{END}")])
    with pytest.raises(MarkerError, match="cell 0"):
        student_notebook(nb, "x.ipynb")


def test_cli_writes_nothing_when_one_notebook_is_broken(tmp_path, capsys):
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"{BEGIN}\nx = 1\n{END}")])
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"{BEGIN}\nx = 1")])
    nbformat.write(good, tmp_path / "00_a.ipynb")
    nbformat.write(bad, tmp_path / "01_b.ipynb")
    assert main([str(tmp_path / "00_a.ipynb"), str(tmp_path / "01_b.ipynb"), "--out", str(tmp_path / "s")]) == 2
    assert "01_b.ipynb, cell 0, line 1" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_tour_has_notebooks_with_exercises():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["00", "01"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert any(BEGIN in c.source for c in nb.cells if c.cell_type == "code"), f"{path.name} has no exercise"


def test_student_copies_of_the_tour(tmp_path):
    assert main([*map(str, NOTEBOOKS), "--out", str(tmp_path)]) == 0
    for path in NOTEBOOKS:
        original = nbformat.read(path, as_version=4)
        copy = nbformat.read(tmp_path / path.name, as_version=4)
        nbformat.validate(copy)
        assert len(copy.cells) == len(original.cells)
        text = "\n".join(c.source for c in copy.cells)
        assert BEGIN not in text and END not in text and BEGIN_HIDDEN not in text
        for cell, student in zip(original.cells, copy.cells):
            removed = solution_lines(cell.source)
            if removed:
                assert PLACEHOLDER in student.source
                assert MAY_RAISE in student.metadata["tags"]   # the answer, and its check right after it
                assert MAY_RAISE in copy.cells[copy.cells.index(student) + 1].metadata["tags"]
                kept = {line.strip() for line in student.source.splitlines()}
                assert not kept & set(removed) - {""}, f"{path.name}: solution text survived"
            if student.cell_type == "code":
                assert student.outputs == [] and student.execution_count is None


def flat(text: str) -> str:
    return " ".join(text.split())


def model_answer_parts(cell) -> list[str]:
    """The sentences of a manual answer's model answer and its rubric lines, as a student copy must not show them."""
    answer, _, rubric = cell.source.strip().removeprefix(MANUAL).partition(RUBRIC)
    sentences = [s for s in re.split(r"(?<=[.;:?!])\s+", flat(answer)) if len(s.split()) >= 4]
    return sentences + [line.strip() for line in rubric.splitlines() if line.strip()]


def test_a_manual_answer_becomes_the_stub_and_a_misplaced_heading_is_refused():
    prompt = nbformat.v4.new_markdown_cell("**3.** Why?")
    answer = nbformat.v4.new_markdown_cell(f"{MANUAL}\nBecause the tail is small.\n{RUBRIC}\n- 1: names the tail")
    nb = nbformat.v4.new_notebook(cells=[prompt, answer])
    assert [c.source for c in student_notebook(nb).cells] == ["**3.** Why?", MANUAL_STUB]
    stray = nbformat.v4.new_markdown_cell(f"A note.\n{RUBRIC}\n- 1: names the tail")    # not the cell's first line
    with pytest.raises(MarkerError, match="x.ipynb, cell 0: .*not a manual answer"):
        student_notebook(nbformat.v4.new_notebook(cells=[stray]), "x.ipynb")


@pytest.mark.parametrize("path", EVERY, ids=lambda p: p.name)
def test_no_model_answer_or_rubric_reaches_a_student_copy(path, tmp_path):
    """make student / make lab (the copy written by main) and make book (site_notebook) show the stub, nothing else."""
    original = nbformat.read(path, as_version=4)
    secrets = [part for cell in original.cells if is_manual(cell) for part in model_answer_parts(cell)]
    assert main([str(path), "--out", str(tmp_path)]) == 0
    for copy in (nbformat.read(tmp_path / path.name, as_version=4), site_notebook(original, path.name)):
        text = flat("\n".join(c.source for c in copy.cells))
        assert MANUAL not in text and RUBRIC not in text
        leaked = [part for part in secrets if flat(part) in text]
        assert not leaked, f"{path.name}: model answer text in the student copy: {leaked}"
        for cell, student in zip(original.cells, copy.cells):
            assert (student.source == MANUAL_STUB) == is_manual(cell), f"{path.name}: cell {cell.get('id')}"


def test_every_tour_notebook_has_a_manual_answer_to_hide():
    """The leak test above is not vacuous: each of 00–06 has a model answer of several sentences and a rubric."""
    for path in NOTEBOOKS:
        manual = [c for c in nbformat.read(path, as_version=4).cells if is_manual(c)]
        assert manual and all(len(model_answer_parts(c)) >= 4 for c in manual), path.name


def test_keep_leaves_a_students_work_and_writes_the_missing_copies(tmp_path):
    first, second = NOTEBOOKS[:2]
    (tmp_path / first.name).write_text("my work")
    assert main([str(first), str(second), "--out", str(tmp_path), "--keep"]) == 0
    assert (tmp_path / first.name).read_text() == "my work" and (tmp_path / second.name).is_file()


# the cells of the student copies that read results/ (the five-seed verdict sections), by notebook
RESULT_CELLS = {"02b": ["02-results-1", "5ded714c", "d7c9b049"], "03": ["03-table"],
                "04": ["04-results-1"], "05b": ["c05-tables-verdicts", "c05-noise"]}


def _imports(cells) -> str:
    """The notebook's top-level import statements (what its result cells use)."""
    import ast

    lines = []
    for cell in cells:
        if cell.cell_type == "code":
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            lines += [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


@pytest.mark.parametrize("number", sorted(RESULT_CELLS))
def test_student_copies_read_results_from_their_own_folder(number, tmp_path, monkeypatch, capsys):
    """A student copy run from notebooks/student/ finds the committed tables and prints its verdicts."""
    path = next(p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb")) if p.name.startswith(number))
    assert main([str(path), "--out", str(tmp_path)]) == 0
    cells = nbformat.read(tmp_path / path.name, as_version=4).cells
    by_id = {c.get("id"): c for c in cells}
    params = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    setup = next(c for c in cells if 'os.environ.get("METAKIT_PROFILE"' in c.source)
    student = ROOT / "notebooks" / "student"
    student.mkdir(exist_ok=True)                                           # git-ignored; `make student` makes it
    monkeypatch.chdir(student)
    space = {}
    exec(_imports(cells), space)
    exec(params.source, space)
    exec("\n".join(line for line in setup.source.splitlines() if "results_dir" in line), space)
    for cell_id in RESULT_CELLS[number]:
        exec(by_id[cell_id].source, space)
    out = capsys.readouterr().out
    assert "is not there yet" not in out and "not there" not in out, out
    assert any(word in out for word in ("ahead", "behind", "tie", "inconclusive", "|")), out
