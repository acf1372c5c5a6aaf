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
    summary = demo.summarise(tmp_path, "laptop", timings, 7.5, {stem: 0.5 for stem in stems})
    assert list(summary["results"]) == stems and summary["unpublished"] == []
    assert summary["seconds"] == timings and summary["total_seconds"] == 7.5
    assert summary["total_cpu_seconds"] == pytest.approx(0.5 * len(stems))
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
    assert 0 < summary["cpu_seconds"]["00_good"] <= summary["total_cpu_seconds"]     # the kernel's, counted
    assert (out / "html" / "00_good.html").stat().st_size > 1000
    assert (tmp_path / "runs" / "latest").resolve() == out.resolve()
    assert "[1/1] 00_good.ipynb: done in" in capsys.readouterr().out
    with pytest.raises(NotebookFailed, match=r"01_bad.ipynb failed in cell \d+ .*ValueError: boom"):
        demo.demo("smoke", [good, bad], runs=tmp_path / "runs2")
    quiet = notebook(tmp_path / "02_quiet.ipynb", 'PROFILE = "laptop"', "x = 1")
    with pytest.raises(NotebookFailed, match="02_quiet ran but published no headline numbers"):
        demo.demo("smoke", [good, quiet], runs=tmp_path / "runs3")


def test_jobs_must_be_a_whole_number(tmp_path):
    with pytest.raises(ValueError, match="jobs=0 must be a whole number ≥ 1"):
        demo.demo("smoke", [tmp_path / "00_a.ipynb"], runs=tmp_path / "runs", jobs=0)


@pytest.mark.slow
def test_two_notebooks_at_a_time_keep_their_results_cpu_and_the_tour_order(tmp_path, capsys):
    sources = ["from metakit.teaching.report import publish\n"
               f"publish('{stem}', source='live', work=sum(range(3 * 10**6)))" for stem in ("00_a", "01_b")]
    first, second = (notebook(tmp_path / f"{stem}.ipynb", 'PROFILE = "laptop"', source)
                     for stem, source in zip(("00_a", "01_b"), sources))
    out = demo.demo("smoke", [first, second], runs=tmp_path / "runs", jobs=2)
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["seconds"]) == ["00_a", "01_b"] == list(summary["cpu_seconds"]) and summary["jobs"] == 2
    assert all(summary["cpu_seconds"][stem] > 0.1 for stem in ("00_a", "01_b"))   # each kernel counted by its worker
    assert summary["results"]["00_a"] == summary["results"]["01_b"] == {"live": {"work": sum(range(3 * 10**6))}}
    assert "2 at a time" in capsys.readouterr().out
    bad = notebook(tmp_path / "02_bad.ipynb", 'PROFILE = "laptop"', "raise ValueError('boom')")
    with pytest.raises(NotebookFailed, match=r"02_bad.ipynb failed in cell \d+ .*ValueError: boom"):
        demo.demo("smoke", [first, bad], runs=tmp_path / "runs2", jobs=2)


@pytest.mark.slow
def test_the_first_screen_shows_progress_not_the_kernels_log(tmp_path, capfd):
    """The kernel's transport warning and the KeyboardInterrupt of its normal shutdown go to its log file."""
    good = notebook(tmp_path / "00_good.ipynb", 'PROFILE = "laptop"',
                    "from metakit.teaching.report import publish\npublish('00_good', source='live', x=1)")
    out = demo.demo("smoke", [good], runs=tmp_path / "runs")
    screen = "".join(capfd.readouterr())
    assert "[1/1] 00_good.ipynb: done in" in screen
    assert "IPKernelApp" not in screen and "KeyboardInterrupt" not in screen, screen
    assert (out / "logs" / "00_good.kernel.log").is_file()
