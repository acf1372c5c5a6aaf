"""The grading pipeline's parts, each alone and fast: private checks, the token seal, collecting folders and
zips, due dates, manual-answer markers, the sandbox's command line and the status ledger."""
import datetime as dt
import hashlib
import os
import zipfile

import nbformat
import pytest

from metakit.teaching import assignment, course
from metakit.teaching.grading import collect, grades, private, sandbox
from metakit.teaching.student import BEGIN, END

CHECKS = """\
def check_even(value):
    if value % 2:
        raise AssertionError("Not yet. Hint: even numbers end in 0, 2, 4, 6 or 8.")
    print("✓ even")
"""


def spec_of(tmp_path, text=CHECKS, name="fakecourse.checks"):
    path = tmp_path / "checks.py"
    path.write_text(text)
    return {name: (str(path), hashlib.sha256(text.encode()).hexdigest())}


def run_cell(source, specs, scope, nonce="n1"):
    cell = nbformat.v4.new_code_cell(private.rewrite_check(source, specs, nonce, "ex1_check"))
    exec(cell.source, scope)


def test_a_check_passes_on_the_private_copy_and_prints_its_token(tmp_path, capsys):
    run_cell("checks.check_even(4)", spec_of(tmp_path), {})
    assert capsys.readouterr().out == f"✓ even\n{private.TOKEN} n1\n"


def test_patched_checks_and_importlib_do_not_reach_the_private_copy(tmp_path, capsys, monkeypatch):
    import importlib
    import sys
    import types

    patched = types.ModuleType("fakecourse.checks")
    patched.check_even = lambda value: print("✓ even (patched)")
    monkeypatch.setitem(sys.modules, "fakecourse.checks", patched)
    monkeypatch.setattr(importlib, "import_module", lambda *a, **k: patched)
    scope = {"checks": patched, "check_even": patched.check_even}
    with pytest.raises(AssertionError, match="even numbers"):
        run_cell("checks.check_even(3)", spec_of(tmp_path), scope)
    with pytest.raises(AssertionError, match="even numbers"):
        run_cell("from fakecourse import checks\nchecks.check_even(3)", spec_of(tmp_path), scope)
    assert private.TOKEN not in capsys.readouterr().out


def test_a_check_module_changed_after_the_grader_read_it_scores_nothing(tmp_path):
    specs = spec_of(tmp_path)
    (tmp_path / "checks.py").write_text(CHECKS.replace("if value % 2:", "if False:"))
    with pytest.raises(RuntimeError, match="not the checks the grader verified"):
        run_cell("checks.check_even(3)", specs, {})


def test_names_a_check_cell_binds_reach_the_kernel(tmp_path):
    scope = {}
    run_cell("half = 2\nchecks.check_even(half * 2)", spec_of(tmp_path), scope)
    assert scope["half"] == 2 and "checks" not in scope


def test_seal_scores_only_a_check_that_printed_its_token():
    quiet = nbformat.v4.new_code_cell()
    assert not private.seal(quiet, "n") and quiet.outputs[0].ename == "CheckDidNotFinish"
    forged = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("stream", text=f"{private.TOKEN} other\n")])
    assert not private.seal(forged, "n")
    failed = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("error", ename="AssertionError", evalue="x",
                                                                       traceback=[])])
    assert not private.seal(failed, "n") and len(failed.outputs) == 1


def test_the_real_check_modules_are_found_with_digests():
    specs = private.module_specs()
    assert {"metakit.teaching.checks", "metakit.teaching.run_checks"} <= set(specs)
    for path, digest in specs.values():
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == digest


RELEASED = {"00_a.ipynb", "01_b.ipynb"}


def test_scan_refuses_links_misnamed_and_stray_files_for_that_student_only(tmp_path):
    for student in ("ann", "bob", "cy"):
        (tmp_path / student).mkdir()
        (tmp_path / student / "00_a.ipynb").write_text("{}")
    (tmp_path / "bob" / "01_b.ipynb").symlink_to(tmp_path / "ann" / "00_a.ipynb")
    (tmp_path / "cy" / "00_A_final.ipynb").write_text("{}")
    (tmp_path / "dee").symlink_to(tmp_path / "ann")
    (tmp_path / "notes.txt").write_text("")
    found, refused = collect.scan(tmp_path, RELEASED)
    assert [(s.student, s.assignment) for s in found] == [("ann", "00_a"), ("cy", "00_a")]
    reasons = {(r.student, r.assignment): r.reason for r in refused}
    assert "symbolic links (01_b.ipynb)" in reasons[("bob", "")]
    assert "not a released notebook" in reasons[("cy", "00_A_final")]
    assert "is a symbolic link" in reasons[("dee", "")] and "not a student folder" in reasons[("notes.txt", "")]


def test_scan_stamps_the_file_time_in_utc(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "00_a.ipynb").write_text("{}")
    os.utime(tmp_path / "ann" / "00_a.ipynb", (1_700_000_000, 1_700_000_000))
    [found], _ = collect.scan(tmp_path, RELEASED)
    assert found.timestamp == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)


def test_unzip_takes_lms_names_and_folders_and_refuses_links_and_escapes(tmp_path):
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(zipfile.ZipInfo("smith_jo_00_a.ipynb", (2025, 3, 1, 12, 0, 0)), "{}")
        zipped.writestr("lee/01_b.ipynb", "{}")
        zipped.writestr("../evil_00_a.ipynb", "{}")
        link = zipfile.ZipInfo("mal_00_a.ipynb")
        link.external_attr = (0o120777 << 16)
        zipped.writestr(link, "/etc/passwd")
        zipped.writestr("readme_unrelated.txt", "")
    refused = collect.unzip(archive, tmp_path / "out", RELEASED)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.ipynb")) == \
        ["lee/01_b.ipynb", "smith_jo/00_a.ipynb"]
    assert dt.datetime.fromtimestamp((tmp_path / "out" / "smith_jo" / "00_a.ipynb").stat().st_mtime) == \
        dt.datetime(2025, 3, 1, 12)
    assert {r.student for r in refused} == {"../evil_00_a.ipynb", "mal_00_a.ipynb", "readme_unrelated.txt"}
    assert not (tmp_path / "evil_00_a.ipynb").exists()


def test_due_dates_from_file_and_flags_in_utc(tmp_path):
    (tmp_path / "due.toml").write_text('00_a = 2025-01-31T23:59:00+01:00\n01_b = 2025-02-07T12:00:00\n')
    due = course.parse_due(["01_b=2025-02-08T12:00+00:00"], tmp_path / "due.toml")
    assert due == {"00_a": dt.datetime(2025, 1, 31, 22, 59, tzinfo=dt.timezone.utc),
                   "01_b": dt.datetime(2025, 2, 8, 12, tzinfo=dt.timezone.utc)}
    with pytest.raises(ValueError, match="ASSIGNMENT=WHEN"):
        course.parse_due(["00_a 2025-01-01"])


def test_a_manual_answer_cell_is_tagged_with_points_and_its_rubric_is_read_back(monkeypatch):
    monkeypatch.setitem(assignment.POINTS_OF, "00_a/ex2_answer", 3)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"{BEGIN}\nx = 2\n{END}"),
        nbformat.v4.new_code_cell("assert x == 2"),
        nbformat.v4.new_markdown_cell("**2.** Why does the tail gain most?"),
        nbformat.v4.new_markdown_cell(f"{assignment.MANUAL}\nBecause …\n{assignment.RUBRIC}\n- 2: names it\n- 1: CI")])
    tagged = assignment.tag_exercises(nb, "00_a.ipynb")
    assert assignment.exercises(tagged) == {"ex1_check": 1, "ex2_answer": 3}
    meta = tagged.cells[3].metadata.nbgrader
    assert meta["solution"] and meta["grade"] and not meta["locked"]
    assert tagged.cells[2].metadata.nbgrader["grade_id"] == "ex2_prompt"
    assert assignment.rubric(tagged.cells[3]) == "- 2: names it\n- 1: CI"


def test_the_sandbox_binds_the_package_not_the_checkout(tmp_path):
    argv = sandbox.bwrap_argv(sandbox.Sandbox(), str(tmp_path), ["python"])
    bound = {argv[i + 1] for i, a in enumerate(argv) if a in ("--ro-bind", "--bind")}
    root = str(course.ROOT)
    assert f"{root}/metakit" in bound and root not in bound and f"{root}/notebooks" not in bound
    assert "--unshare-all" in argv and "--clearenv" in argv and argv[argv.index("--bind") + 1] == str(tmp_path)


@pytest.mark.slow   # a new gradebook runs its migrations (alembic): seconds
def test_the_ledger_exports_not_graded_students_without_a_score(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")   # its alembic

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        gradebook.add_assignment("00_a")
    ledger = grades.Ledger(tmp_path)
    ledger.set("ann", "00_a", "not graded: grading did not finish", "2025-01-01T00:00:00+00:00")
    ledger.set("bob", "?", "not graded: the student's folder is a symbolic link")
    totals, _ = grades.export(tmp_path)
    assert totals.read_text().splitlines() == [
        "student_id,assignment,score,max_score,status,late,submitted",
        "ann,00_a,,0.0,not graded: grading did not finish,,2025-01-01T00:00:00+00:00",
        "bob,?,,,not graded: the student's folder is a symbolic link,,"]


def test_inside_the_sandbox_the_solutions_are_absent_and_nothing_outside_is_writable(tmp_path):
    import shutil
    import subprocess

    if shutil.which("bwrap") is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail("bwrap is missing: run `make system-deps` (apt-get install bubblewrap).")
        pytest.skip("bubblewrap is not installed and cannot be here (needs root + apt-get).")
    root = course.ROOT
    script = (f"ls {root}/notebooks; touch {root}/metakit/x; touch {root}/x; touch {tmp_path}/../x; "
              f"touch /home/student/work/ok && echo wrote-work; id -u; cat /proc/net/dev | wc -l")
    argv = sandbox.bwrap_argv(sandbox.Sandbox(), str(tmp_path), ["/bin/sh", "-c", script])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert f"cannot access '{root}/notebooks'" in done.stderr            # the solutions are not there at all
    assert f"cannot touch '{root}/metakit/x': Read-only file system" in done.stderr
    assert done.stdout.split() == ["wrote-work", "65534", "3"]   # only the loopback interface
    # {tmp_path}/../x lands in the sandbox's private /tmp, not on the host
    assert not any(p.exists() for p in (root / "metakit" / "x", root / "x", tmp_path.parent / "x"))
