"""The tour's notebooks as stored: no outputs, a literal parameters cell, the two switches (profile, dataset),
and markdown short enough to read: every cell ≲ 150 words."""
import ast
import re
from pathlib import Path

import nbformat
import pytest

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_markdown_cell_is_short(path):
    long = [(i, words(c.source)) for i, c in enumerate(nbformat.read(path, as_version=4).cells)
            if c.cell_type == "markdown" and words(c.source) > MAX_WORDS]
    assert not long, f"{path.name}: markdown cells (index, words) over {MAX_WORDS} words: {long}; split or cut them"


@pytest.mark.parametrize("stem", ["02_long_tail_mfm", "05_schedule_transfer"])
def test_an_evidence_companion_follows_its_notebook_and_holds_no_exercise(stem):
    """02 and 05 keep their live runs and exercises; their five-seed evidence is the next notebook, 0Nb_…"""
    names = [p.name for p in NOTEBOOKS]
    at = names.index(f"{stem}.ipynb")
    companion = NOTEBOOKS[at + 1]
    assert companion.name.startswith(stem[:2] + "b_"), names
    cells = nbformat.read(companion, as_version=4).cells
    assert not any("### BEGIN SOLUTION" in c.source or "nbgrader" in c.metadata for c in cells)
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
