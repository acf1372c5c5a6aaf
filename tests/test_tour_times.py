"""docs/students.md's wall times come from results/tour_times_laptop.csv, read off a demo run's cells."""
import json
from pathlib import Path

import nbformat
import pytest

from metakit.teaching import tour_times

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "results" / "tour_times_laptop.csv"


def test_the_students_table_is_the_committed_csv():
    docs = (ROOT / "docs" / "students.md").read_text()
    rows = tour_times.read(CSV)
    assert tour_times.render(docs, rows) == docs, "stale: run python -m metakit.teaching.tour_times (see the page)"
    tour = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    assert sorted({r["setting"] for r in rows}) == tour and {r["profile"] for r in rows} == {"laptop"}
    assert all(f"`{name}`" in docs for name in tour)


def demo_run(tmp_path: Path) -> Path:
    """A demo folder: summary.json and one executed notebook with two code exercises and a manual one."""
    v4 = nbformat.v4
    def cell(grade_id, seconds):
        return v4.new_code_cell("x", metadata={"nbgrader": {"grade_id": grade_id}, "papermill": {"duration": seconds}})
    nb = v4.new_notebook(cells=[v4.new_code_cell("setup", metadata={"papermill": {"duration": 9.0}}),
                                cell("ex1_answer", 0.5), cell("ex1_check", 0.25), cell("ex2_answer", 12.0),
                                cell("ex2_check", 0.02),
                                v4.new_markdown_cell("### MANUAL ANSWER", metadata={"nbgrader": {"grade_id": "ex3_answer"}})])
    (tmp_path / "notebooks").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "notebooks" / "00_a.ipynb")
    (tmp_path / "summary.json").write_text(json.dumps({"profile": "laptop", "cpu_seconds": {"00_a": 30.04}}))
    return tmp_path


def test_rows_add_each_exercises_answer_and_check_and_leave_the_set_up_out(tmp_path):
    rows = tour_times.measure(demo_run(tmp_path))
    assert [(r["variant"], r["seconds"]) for r in rows] == [("whole", 30.0), ("ex1", 0.75), ("ex2", 12.02)]
    assert tour_times.timings(rows) == {"00_a": ("30 s", "ex1 0.8 s, ex2 12 s")}


def test_cli_writes_the_csv_and_fills_the_table(tmp_path, capsys):
    docs = tmp_path / "students.md"
    docs.write_text(f"intro\n{tour_times.BEGIN}\n| notebook | what | whole | exercises |\n|---|---|---|---|\n"
                    f"| `00_a` | data | ? | ? |\n{tour_times.END}\nafter\n")
    out = tmp_path / "t.csv"
    assert tour_times.main([str(demo_run(tmp_path / "run")), "--out", str(out), "--docs", str(docs)]) == 0
    assert "| `00_a` | data | 30 s | ex1 0.8 s, ex2 12 s |" in docs.read_text()
    assert docs.read_text().endswith(f"{tour_times.END}\nafter\n")
    assert [r["variant"] for r in tour_times.read(out)] == ["whole", "ex1", "ex2"]


def test_a_folder_without_a_summary_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert tour_times.main([str(tmp_path), "--out", str(tmp_path / "t.csv"), "--docs", str(tmp_path / "d.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no summary.json" in err and not list(tmp_path.iterdir())


def test_a_damaged_csv_names_its_line(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text(",".join(tour_times.FIELDS) + "\ndigits,00_a,tour,whole,0,,fast,laptop,abc,cmd\n")
    with pytest.raises(ValueError, match=r"t.csv line 2: seconds='fast' is not a number"):
        tour_times.read(bad)


def test_a_page_without_the_markers_is_one_line_and_writes_nothing(tmp_path, capsys):
    page = tmp_path / "students.md"
    page.write_text("| `00_a` | data | ? | ? |\n")
    run = demo_run(tmp_path / "run")
    assert tour_times.main([str(run), "--out", str(tmp_path / "t.csv"), "--docs", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no table between" in err and not (tmp_path / "t.csv").exists()
    assert page.read_text() == "| `00_a` | data | ? | ? |\n"
