"""The whole grading path with real nbgrader and bubblewrap, on excerpts of the tour's notebooks.

An excerpt keeps a notebook's parameters and set-up cells, its exercise cells (prompt, answer,
check) and the earlier cells that bind a name they read, found by reading the cells' code (a
backward slice); the rest is left out so that a kernel runs in seconds at the smoke profile. Every
notebook is graded with a correct submission (full points), a wrong one (exercise 1 answered with
its names bound to None: exactly that check's points lost) and the blank student version (0);
manually graded answers are left blank (scored 0 without the instructor).
The hostile test grades submissions that read the solutions, delete a file outside the course,
write into the checkout, patch the checks to no-ops, or are a symbolic link: none gains a point,
nothing outside their sandbox changes, and the correct student beside them gets full points.
"""
import ast
import csv
import hashlib
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from metakit.teaching import assignment, course
from metakit.teaching.grading.sandbox import Sandbox
from metakit.teaching.student import BEGIN, END

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SMOKE = {"PROFILE": "smoke"}    # what the kernels train: the smoke profile, seconds a notebook
PARAMETERS = {"01_meta_step_from_scratch": {**SMOKE, "LOOP_EPOCHS": 1}}   # its training check: one epoch
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]


@pytest.fixture(autouse=True)
def bwrap():
    """Skip without bubblewrap only where it cannot be installed; `make test` installs it (system-deps)."""
    if shutil.which("bwrap") is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail("bwrap is missing: run `make system-deps` (apt-get install bubblewrap).")
        pytest.skip("bubblewrap is not installed and cannot be here (needs root + apt-get): grading is not tested.")


def names(source: str) -> tuple[set, set, set]:
    """(names a cell binds at top level, names it changes in place, free names it reads)."""
    binds, local, changes, reads = set(), set(), set(), set()

    def visit(node, nested):
        if isinstance(node, ast.Name):
            (reads if isinstance(node.ctx, ast.Load) else local if nested else binds).add(node.id)
        elif isinstance(node, ast.arg):
            local.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not nested:
            binds.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not nested:
            binds.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif not nested and (isinstance(node, ast.AugAssign) or
                             isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store)):
            base = node.target if isinstance(node, ast.AugAssign) else node.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                changes.add(base.id)
        for child in ast.iter_child_nodes(node):
            visit(child, nested or isinstance(node, SCOPES))

    visit(ast.parse(TransformerManager().transform_cell(source)), False)
    return binds - changes, changes, reads - binds - local


def excerpt(path: Path) -> nbformat.NotebookNode:
    """Parameters and set-up cells, the exercise cells, and the earlier cells that bind what they read."""
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    first = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    graded = [i for i, c in enumerate(cells) if c.metadata.get("nbgrader")]
    keep, needed = set(graded), set()
    for i in range(graded[-1], first + 1, -1):
        if cells[i].cell_type == "code":
            binds, changes, reads = names(cells[i].source)
            if i in keep or (binds | changes) & needed:
                keep.add(i)
                needed = (needed - binds) | reads | changes
    chosen = [nbformat.from_dict(cells[i]) for i in [first, first + 1, *sorted(keep)]]
    chosen[0].source += "".join(f"\n{k} = {v!r}" for k, v in PARAMETERS.get(path.stem, SMOKE).items())
    return nbformat.v4.new_notebook(cells=chosen, metadata=nb.metadata)


def grade_of(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_code_answer(cell) -> bool:
    return cell.cell_type == "code" and bool(cell.metadata.get("nbgrader", {}).get("solution"))


def answered(release, source, **answers) -> nbformat.NotebookNode:
    """The student version with every code answer filled in from ``source`` (markers dropped) or ``answers``."""
    filled = nbformat.from_dict(release)
    by_id = {grade_of(c): c for c in source.cells}
    for cell in filled.cells:
        if grade_of(cell) in answers:
            cell.source = answers[grade_of(cell)]
        elif cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            cell.source = "\n".join(l for l in by_id[grade_of(cell)].source.splitlines() if l.strip() not in (BEGIN, END))
    return filled


def rows(path: Path) -> dict:
    with open(path, newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def released(tmp_path: Path, path: Path) -> tuple[Path, nbformat.NotebookNode, nbformat.NotebookNode]:
    source = excerpt(path)
    nbformat.write(source, tmp_path / path.name)
    [release_path] = course.release([tmp_path / path.name], tmp_path / "course")
    return tmp_path / "course", source, nbformat.read(release_path, as_version=4)


def submit(tmp_path: Path, name: str, notebooks: dict) -> Path:
    for student, notebook in notebooks.items():
        (tmp_path / "subs" / student).mkdir(parents=True)
        nbformat.write(notebook, tmp_path / "subs" / student / name)
    return tmp_path / "subs"


SANDBOX = Sandbox(cell_timeout=240, notebook_timeout=600, reads=course.course_reads())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_every_notebook_grades_correct_wrong_and_blank(tmp_path, path):
    home, source, release = released(tmp_path, path)
    auto = {g: p for g, p in assignment.exercises(source).items() if g.endswith("_check")}   # manual answers left blank
    first = next(grade_of(c) for c in source.cells if is_code_answer(c))
    correct = answered(release, source)
    bound = names(next(c.source for c in correct.cells if grade_of(c) == first))[0]
    wrong = answered(release, source, **{first: next(c.source for c in correct.cells if grade_of(c) == first)
                                         + "".join(f"\n{name} = None" for name in sorted(bound))})
    subs = submit(tmp_path, path.name, {"correct": correct, "wrong": wrong, "blank": release})
    totals, by_cell = course.grade(subs, home, workers=2, sandbox=SANDBOX)
    got = rows(totals)
    full = float(sum(auto.values()))
    check = first.replace("_answer", "_check")
    assert {s: (float(r["score"]), r["status"]) for s, r in got.items()} == {
        "correct": (full, "graded"), "wrong": (full - auto[check], "graded"), "blank": (0.0, "graded")}
    assert all(float(r["max_score"]) == sum(assignment.exercises(source).values()) for r in got.values())
    assert (home / "feedback" / "correct" / path.stem / path.name.replace(".ipynb", ".html")).is_file()


HOSTILE = {
    "a_reader": """import glob, json, os
found = [p for p in glob.glob("{root}/notebooks/*.ipynb") + glob.glob("{course}/source/*/*.ipynb") if os.access(p, os.R_OK)]
print("readable:", found)
for p in found:   # the solution, if the instructor's notebook can be read
    for c in json.load(open(p))["cells"]:
        if "{begin}" in "".join(c["source"]) and "{first}" in "".join(c["source"]):
            exec("".join(c["source"]))""",
    "b_vandal": """import os, glob
for target in ["{victim}", "{root}/metakit/teaching/course.py", "{root}/pyproject.toml", "{course}/gradebook.db",
               *glob.glob("{course}/submitted/*/*/*.ipynb")]:
    try:
        os.remove(target); print("removed", target)
    except OSError as err:
        print("could not remove", target, type(err).__name__)
    try:
        open(target, "a").write("#"); print("wrote", target)
    except OSError as err:
        print("could not write", target, type(err).__name__)
{first} = None""",
    "c_patcher": """import importlib, sys
from metakit.teaching import checks, run_checks
for module in (checks, run_checks):
    for name in dir(module):
        if name.startswith("check_"):
            setattr(module, name, lambda *a, **k: print("✓ patched"))
importlib.import_module = lambda *a, **k: checks
sys.modules["metakit.teaching.checks"] = checks
{first} = None""",
}


def test_hostile_submissions_gain_nothing_and_harm_nothing(tmp_path):
    path = ROOT / "notebooks" / "00_welcome_and_data.ipynb"
    home, source, release = released(tmp_path, path)
    points = {g: p for g, p in assignment.exercises(source).items() if g.endswith("_check")}   # manual ones blank
    answer = next(c for c in source.cells if is_code_answer(c))
    bound = sorted(names(answer.source.replace(BEGIN, "").replace(END, ""))[0])[0]
    victim = tmp_path / "outside" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    fill = {"root": ROOT, "course": home, "victim": victim, "begin": BEGIN, "first": bound}
    notebooks = {student: answered(release, source, **{grade_of(answer): code.format(**fill)})
                 for student, code in HOSTILE.items()}
    subs = submit(tmp_path, path.name, {**notebooks, "z_correct": answered(release, source)})
    (subs / "d_symlink").symlink_to(subs / "z_correct")
    checkout = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "metakit/teaching/course.py",
                                                                          ROOT / "pyproject.toml")}

    totals, by_cell = course.grade(subs, home, workers=2, sandbox=SANDBOX)

    got = rows(totals)
    full = float(sum(points.values()))
    check = grade_of(answer).replace("_answer", "_check")
    assert float(got["z_correct"]["score"]) == full and got["z_correct"]["status"] == "graded"
    for student in HOSTILE:   # exercise 1 lost; the untouched exercises still count
        assert float(got[student]["score"]) == full - points[check], (student, got[student])
    assert got["d_symlink"]["score"] == "" and "symbolic link" in got["d_symlink"]["status"]
    assert victim.read_text() == "keep me"
    assert checkout == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in checkout}
    assert (home / "submitted" / "z_correct" / path.stem / path.name).is_file()
    out = {s: "".join(o.get("text", "") for c in nbformat.read(home / "executed" / s / path.stem / path.name, 4).cells
                      for o in c.get("outputs", [])) for s in HOSTILE}
    assert "readable: []" in out["a_reader"]
    acted = [line.split(" ", 1)[1] for line in out["b_vandal"].splitlines() if line.startswith(("removed ", "wrote "))]
    assert all(t.startswith("/tmp/") for t in acted), acted   # only in the sandbox's private /tmp (the host's intact)


def tiny_course(tmp_path: Path) -> tuple[Path, nbformat.NotebookNode]:
    """A two-exercise notebook (an autograded check, an interpretation answer worth 2) without torch: fast kernels."""
    v4 = nbformat.v4
    nb = v4.new_notebook(cells=[
        v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]}),
        v4.new_markdown_cell("**1.** Set `x` to 2."),
        v4.new_code_cell(f"{BEGIN}\nx = 2\n{END}"),
        v4.new_code_cell("assert x == 2, 'Not yet. Hint: two.'"),
        v4.new_markdown_cell("**2.** Why is 2 even?"),
        v4.new_markdown_cell(f"{assignment.MANUAL}\nIt is divisible by 2.\n{assignment.RUBRIC}\n- 2: divisibility")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    original = dict(assignment.POINTS_OF)
    assignment.POINTS_OF["00_tiny/ex2_answer"] = 2
    try:
        nb = assignment.tag_exercises(nb, "00_tiny.ipynb")
    finally:
        assignment.POINTS_OF.clear()
        assignment.POINTS_OF.update(original)
    nbformat.write(nb, tmp_path / "00_tiny.ipynb")
    [release] = course.release([tmp_path / "00_tiny.ipynb"], tmp_path / "course")
    return tmp_path / "course", nbformat.read(release, as_version=4)


def test_an_lms_zip_with_late_bad_misnamed_and_crashing_notebooks_then_manual_scores(tmp_path):
    import datetime as dt
    import zipfile

    home, release = tiny_course(tmp_path)
    def notebook(answer: str = "x = 2", manual: str = "Because 2 = 2 × 1.") -> str:
        n = nbformat.from_dict(release)
        n.cells[2].source, n.cells[5].source = answer, manual
        return nbformat.writes(n)
    with zipfile.ZipFile(tmp_path / "lms.zip", "w") as zipped:
        on_time, late = (2025, 3, 1, 12, 0, 0), (2025, 3, 9, 12, 0, 0)
        zipped.writestr(zipfile.ZipInfo("ann_00_tiny.ipynb", on_time), notebook())
        zipped.writestr(zipfile.ZipInfo("bob_00_tiny.ipynb", late), notebook())
        zipped.writestr(zipfile.ZipInfo("cy_00_tiny.ipynb", on_time), "{not json")
        zipped.writestr(zipfile.ZipInfo("dee_00_tiny_final.ipynb", on_time), notebook())
        zipped.writestr(zipfile.ZipInfo("eve_00_tiny.ipynb", on_time), notebook("import os\nos._exit(1)"))
        zipped.writestr(zipfile.ZipInfo("fay_00_tiny.ipynb", on_time), notebook(manual=release.cells[5].source))
    due = {"00_tiny": dt.datetime(2025, 3, 5, tzinfo=dt.timezone.utc)}

    totals, by_cell = course.grade(tmp_path / "lms.zip", home, workers=2, sandbox=SANDBOX, due=due)

    got = rows(totals)
    assert (got["ann"]["score"], got["ann"]["late"], got["ann"]["max_score"]) == ("1.0", "", "3.0")
    assert got["ann"]["status"] == "graded; manual grading pending"
    assert (got["bob"]["score"], got["bob"]["late"]) == ("1.0", "late")
    assert got["cy"]["score"] == "" and got["cy"]["status"].startswith("not graded: 00_tiny.ipynb is not a valid")
    assert "not <student>_<notebook>.ipynb" in got["dee_00_tiny_final.ipynb"]["status"]
    assert got["eve"]["score"] == "0.0" and "the kernel died" in got["eve"]["status"]
    assert got["fay"]["status"] == "graded"   # a blank manual answer scores 0 without the instructor

    sheet = course.manual_sheet(home)
    with open(sheet, newline="") as f:
        lines = list(csv.DictReader(f))
    assert {(r["student_id"], r["rubric"]) for r in lines} >= {("ann", "- 2: divisibility")}
    for line in lines:
        line["score"] = "2" if line["student_id"] == "ann" else "1"
    with open(sheet, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    assert course.main(["--course", str(home), "manual", "--scores", str(sheet)]) == 0
    got = rows(home / "grades.csv")
    assert (got["ann"]["score"], got["ann"]["status"]) == ("3.0", "graded")
