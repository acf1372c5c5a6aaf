"""make demo: the tour runs headless, publishes results, and a failing cell fails loudly."""
import ast
import json
from pathlib import Path

import nbformat
import pytest

from metakit.teaching import demo, report
from metakit.teaching.demo import NotebookFailed

ROOT = Path(__file__).resolve().parents[1]
TOUR = demo.tour(ROOT / "notebooks")
COMMITTED = {"02", "03", "04", "05"}   # the notebooks that read committed results/ tables


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
    assert report.publish("00_x", source="live", a=1.0) == {"a": 1.0}
    assert not (tmp_path / "results").exists()
    monkeypatch.setenv(report.ENV, str(tmp_path))
    report.publish("00_x", source="live", a=1.0)
    report.publish("00_x", source="live", b=[1, 2])
    assert json.loads((tmp_path / "results" / "00_x.json").read_text()) == {"live": {"a": 1.0, "b": [1, 2]}}
    with pytest.raises(ValueError, match="notebook='../x'"):
        report.publish("../x", source="live", a=1)


def test_publish_keeps_live_and_committed_numbers_apart_and_names_a_bad_source(tmp_path, monkeypatch):
    monkeypatch.setenv(report.ENV, str(tmp_path))
    table = "results/digits/noise_laptop.csv"
    report.publish("04_x", source="live", seed=0)
    report.publish("04_x", source=table, verdicts={"a vs b": {"mean": 1.0}})
    report.publish("04_x", source="live", test_acc=90.0)
    assert json.loads((tmp_path / "results" / "04_x.json").read_text()) == {
        "live": {"seed": 0, "test_acc": 90.0}, table: {"verdicts": {"a vs b": {"mean": 1.0}}}}
    for bad in ("results/digits/no_such_table.csv", "runs/x.csv", "cached", ""):
        with pytest.raises(ValueError, match=r"must be 'live' \(computed in this run\) or a committed table"):
            report.publish("04_x", source=bad, a=1)
    with pytest.raises(ValueError, match="got no numbers"):
        report.publish("04_x", source="live")
    with pytest.raises(TypeError, match="source"):
        report.publish("04_x", a=1)                                  # a source is never implied


def test_table_source_names_a_committed_table_from_the_repository_root(monkeypatch):
    monkeypatch.chdir(report.REPO_ROOT / "notebooks")              # where the kernels run
    assert report.table_source("../results/mnist1d/noise_laptop.csv") == "results/mnist1d/noise_laptop.csv"
    with pytest.raises(ValueError, match="is not a committed table"):
        report.table_source("../README.md")
    with pytest.raises(ValueError, match="does not exist"):
        report.table_source("../results/mnist1d/no_such_laptop.csv")


def test_the_summary_has_a_headline_entry_for_every_notebook_that_ran(tmp_path, monkeypatch):
    stems = [p.stem for p in demo.tour(ROOT / "notebooks")]
    monkeypatch.setenv(report.ENV, str(tmp_path))
    for stem in stems:
        report.publish(stem, source="live", seconds_here=1.0)
    timings = {stem: 1.0 for stem in stems}
    summary = demo.summarise(tmp_path, "laptop", timings, 7.5)
    assert list(summary["results"]) == stems and summary["unpublished"] == []
    assert summary["seconds"] == timings and summary["total_seconds"] == 7.5
    (tmp_path / "results" / f"{stems[3]}.json").unlink()           # one notebook published nothing
    assert demo.summarise(tmp_path, "laptop", timings, 7.5)["unpublished"] == [stems[3]]


def publish_calls(path):
    """(cell, call) for every ``publish(...)`` call in the notebook's code cells."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "publish":
                    yield cell, node


@pytest.mark.parametrize("path", TOUR, ids=lambda p: p.name)
def test_every_tour_notebook_publishes_its_headlines_with_their_source(path):
    calls = list(publish_calls(path))
    assert calls, f"{path.name} never calls publish: its numbers would be missing from summary.json"
    kinds = set()
    for cell, call in calls:
        assert [ast.literal_eval(a) for a in call.args] == [path.stem], f"{path.name}: publish under its own name"
        assert "nbgrader" not in cell.metadata, f"{path.name}: publish outside the exercises (students keep it)"
        keywords = {k.arg: k.value for k in call.keywords}
        assert "source" in keywords and len(keywords) > 1, f"{path.name}: publish(..., source=..., numbers)"
        source = keywords["source"]
        if isinstance(source, ast.Constant):
            assert source.value == "live"
            kinds.add("live")
        else:
            assert isinstance(source, ast.Call) and source.func.id == "table_source", ast.unparse(source)
            kinds.add("table")
    assert "live" in kinds, f"{path.name} publishes nothing it computed itself"
    if path.name[:2] in COMMITTED:
        assert "table" in kinds, f"{path.name} reads committed tables but publishes none of their verdicts"


@pytest.mark.slow
def test_demo_runs_parameters_and_reports_the_failing_cell(tmp_path, capsys):
    good = notebook(tmp_path / "00_good.ipynb", 'PROFILE = "laptop"',
                    "import os\nfrom metakit.teaching.report import publish\n"
                    "publish('00_good', source='live', profile=PROFILE, env=os.environ['METAKIT_PROFILE'])")
    bad = notebook(tmp_path / "01_bad.ipynb", 'PROFILE = "laptop"', "x = 1", "raise ValueError('boom')")
    out = demo.demo("smoke", [good], runs=tmp_path / "runs")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["00_good"] == {"live": {"profile": "smoke", "env": "smoke"}}
    assert (out / "html" / "00_good.html").stat().st_size > 1000
    assert (tmp_path / "runs" / "latest").resolve() == out.resolve()
    assert "[1/1] 00_good.ipynb: done in" in capsys.readouterr().out
    with pytest.raises(NotebookFailed, match=r"01_bad.ipynb failed in cell \d+ .*ValueError: boom"):
        demo.demo("smoke", [good, bad], runs=tmp_path / "runs2")
    quiet = notebook(tmp_path / "02_quiet.ipynb", 'PROFILE = "laptop"', "x = 1")
    with pytest.raises(NotebookFailed, match="02_quiet ran but published no headline numbers"):
        demo.demo("smoke", [good, quiet], runs=tmp_path / "runs3")
