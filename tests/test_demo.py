"""make demo: the tour runs headless, publishes results, and a failing cell fails loudly."""
import json

import nbformat
import pytest

from metakit.teaching import demo, report
from metakit.teaching.demo import NotebookFailed


def notebook(path, *sources):
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_tour_is_numbered_notebooks_only(tmp_path):
    for name in ("01_b.ipynb", "00_a.ipynb", "notes.ipynb", "7_x.ipynb"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "00_a.ipynb").write_text("{}")
    assert [p.name for p in demo.tour(tmp_path)] == ["00_a.ipynb", "01_b.ipynb"]
    with pytest.raises(FileNotFoundError, match="nope"):
        demo.tour(tmp_path / "nope")


def test_publish_writes_only_inside_a_demo(tmp_path, monkeypatch):
    monkeypatch.delenv(report.ENV, raising=False)
    assert report.publish("00_x", a=1.0) == {"a": 1.0}
    monkeypatch.setenv(report.ENV, str(tmp_path))
    report.publish("00_x", a=1.0)
    report.publish("00_x", b=[1, 2])
    assert json.loads((tmp_path / "results" / "00_x.json").read_text()) == {"a": 1.0, "b": [1, 2]}
    with pytest.raises(ValueError, match="notebook='../x'"):
        report.publish("../x", a=1)


@pytest.mark.slow
def test_demo_runs_parameters_and_reports_the_failing_cell(tmp_path, capsys):
    good = notebook(tmp_path / "00_good.ipynb", 'PROFILE = "laptop"',
                    "import os\nfrom metakit.teaching.report import publish\n"
                    "publish('00_good', profile=PROFILE, env=os.environ['METAKIT_PROFILE'])")
    bad = notebook(tmp_path / "01_bad.ipynb", 'PROFILE = "laptop"', "x = 1", "raise ValueError('boom')")
    out = demo.demo("smoke", [good], runs=tmp_path / "runs")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["00_good"] == {"profile": "smoke", "env": "smoke"}
    assert (out / "html" / "00_good.html").stat().st_size > 1000
    assert (tmp_path / "runs" / "latest").resolve() == out.resolve()
    assert "[1/1] 00_good.ipynb: done in" in capsys.readouterr().out
    with pytest.raises(NotebookFailed, match=r"01_bad.ipynb failed in cell \d+ .*ValueError: boom"):
        demo.demo("smoke", [good, bad], runs=tmp_path / "runs2")
