"""environment.yml installs the same project as pyproject.toml."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DESIGN_PACKAGES = {"torch", "torchvision", "jupyterlab", "ipywidgets", "seaborn", "pandas", "tqdm", "scikit-learn"}
CONDA_NAME = {"torch": "pytorch"}
PIP_ONLY = {"mnist1d"}  # not on conda-forge: environment.yml installs it with pip


def names(requirements):
    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_pyproject_names_design_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert DESIGN_PACKAGES <= names(project["dependencies"])
    assert {"pytest", "nbval"} <= names(project["optional-dependencies"]["dev"])


def test_environment_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"] and "pytorch" not in env["channels"]
    conda = {names([d]).pop() for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {CONDA_NAME.get(n, n) for n in names(project["dependencies"])}
    assert conda == wanted - PIP_ONLY
    pip_part = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert any(".[dev]" in p for p in pip_part)
    assert names(p.split("#")[0] for p in pip_part) >= PIP_ONLY
