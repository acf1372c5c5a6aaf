"""The tour's notebooks as stored: no outputs, a literal parameters cell, and the two switches (profile, dataset)."""
import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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
