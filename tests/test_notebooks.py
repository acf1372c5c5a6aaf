"""The tour's notebooks as stored: no outputs, a literal parameters cell, the two switches (profile, dataset),
markdown short enough to read: every cell ≲ 150 words, and an interpretation exercise graded by hand in each."""
import ast
import re
from pathlib import Path

import nbformat
import pytest

from metakit.teaching.assignment import MANUAL, RUBRIC, is_manual

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))   # the tour and its companions (02b_…)
MAX_WORDS = 150     # a markdown cell longer than this is split, or cut


def words(markdown: str) -> int:
    """Words a reader reads: a code span, a code block or a formula counts as one, table rules as none."""
    text = re.sub(r"```.*?```", " CODE ", markdown, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " MATH ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " MATH ", text)
    text = re.sub(r"`[^`\n]+`", " CODE ", text)
    text = re.sub(r"^\s*\|?[\s:|-]+\|[\s:|-]*$", " ", text, flags=re.M)     # | --- | --- | rules
    return sum(1 for token in text.replace("|", " ").split() if re.search(r"\w", token))


def test_words_counts_a_code_span_a_formula_and_a_table_sensibly():
    assert words("Call `run(Config(method=\"ce\", seed=0))` now.") == 3
    assert words("The rule $\\theta' = \\theta - \\alpha g$ holds.") == 4
    assert words("| a | b |\n|---|:---:|\n| one two | three |") == 5
    assert words("```python\nx = 1\ny = 2\n```\nDone — ok.") == 3


def reading(cell) -> list[str]:
    """What one reader reads at once: the cell, or a manual answer's model answer and its rubric apart (graders
    read them; students get `MANUAL_STUB` in their place)."""
    if is_manual(cell):
        return list(cell.source.strip().removeprefix(MANUAL).partition(RUBRIC)[::2])
    return [cell.source]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_markdown_cell_is_short(path):
    long = [(i, words(text)) for i, c in enumerate(nbformat.read(path, as_version=4).cells)
            if c.cell_type == "markdown" for text in reading(c) if words(text) > MAX_WORDS]
    assert not long, f"{path.name}: markdown cells (index, words) over {MAX_WORDS} words: {long}; split or cut them"


TOUR = [p for p in NOTEBOOKS if re.fullmatch(r"\d\d_.*", p.name)]      # 00–06, not the evidence companions
CRITERION = re.compile(r"- (\d+): \S.*")                             # one rubric line: "- 2: names the tail classes"


@pytest.mark.parametrize("path", TOUR, ids=lambda p: p.name)
def test_the_last_exercise_is_an_interpretation_graded_by_hand(path):
    """After the autograded exercises: a question (markdown), then its model answer with a 2–3 criterion rubric."""
    cells = nbformat.read(path, as_version=4).cells
    manual = [i for i, c in enumerate(cells) if is_manual(c)]
    last_code = max(i for i, c in enumerate(cells) if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source)
    assert manual and min(manual) > last_code, f"{path.name}: no manual answer after the last code exercise"
    for i in manual:
        prompt, (answer, found, rubric) = cells[i - 1], cells[i].source.lstrip().removeprefix(MANUAL).partition(RUBRIC)
        assert prompt.cell_type == "markdown" and not is_manual(prompt), f"{path.name} cell {i}: no question before it"
        assert found and words(answer) >= 40, f"{path.name} cell {i}: a model answer of a few sentences, then {RUBRIC}"
        criteria = [line.strip() for line in rubric.strip().splitlines()]
        assert 2 <= len(criteria) <= 3 and all(CRITERION.fullmatch(c) for c in criteria), \
            f"{path.name} cell {i}: 2–3 rubric lines like '- 1: names the tail classes', not {criteria}"
        assert not re.search(r"\d[.,]\d", answer), \
            f"{path.name} cell {i}: the model answer types a number; refer to the computed cell instead"


@pytest.mark.parametrize("stem", ["02_long_tail_mfm", "05_schedule_transfer"])
def test_an_evidence_companion_follows_its_notebook_and_holds_no_exercise(stem):
    """02 and 05 keep their live runs and exercises; their five-seed evidence is the next notebook, 0Nb_…"""
    names = [p.name for p in NOTEBOOKS]
    at = names.index(f"{stem}.ipynb")
    companion = NOTEBOOKS[at + 1]
    assert companion.name.startswith(stem[:2] + "b_"), names
    cells = nbformat.read(companion, as_version=4).cells
    assert not any("### BEGIN SOLUTION" in c.source or "nbgrader" in c.metadata or is_manual(c) for c in cells)
    own = nbformat.read(NOTEBOOKS[at], as_version=4).cells
    assert any(companion.stem in c.source for c in own if c.cell_type == "markdown"), f"{stem} never names {companion.stem}"


def literal(node) -> bool:
    return isinstance(node, ast.Constant) or (isinstance(node, (ast.List, ast.Tuple)) and all(map(literal, node.elts)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {i} holds outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_are_literals_and_the_environment_overrides_profile_and_dataset(path):
    cells = nbformat.read(path, as_version=4).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: one cell tagged parameters"
    names = {}
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign) and literal(node.value), f"{path.name}: {ast.unparse(node)} is not a literal"
        names[node.targets[0].id] = ast.literal_eval(node.value)
    assert names["PROFILE"] == "laptop" and names["DATASET"] == "digits"
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert 'PROFILE = os.environ.get("METAKIT_PROFILE", PROFILE)' in code
    assert 'DATASET = os.environ.get("METAKIT_DATASET", DATASET)' in code
    for name in ('"digits"', '"digits_cnn"', '"resnet1d"'):                 # the switch decides, not the code
        assert name not in code.replace('DATASET = "digits"', ""), f"{path.name} names {name} outside its parameters"


def test_a_manual_answer_is_worth_its_rubric_total():
    """POINTS_OF gives each manual answer the sum of its rubric's points (the grader's sheet adds up)."""
    import re
    from metakit.teaching import assignment
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = assignment.tag_exercises(nbformat.read(path, as_version=4), path.name)
        for cell in filter(assignment.is_manual, nb.cells):
            total = sum(int(m) for m in re.findall(r"^- (\d+):", assignment.rubric(cell), re.M))
            assert cell.metadata["nbgrader"]["points"] == total, (path.name, cell.metadata["nbgrader"]["grade_id"])
