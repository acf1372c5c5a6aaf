"""make book: the course site builds offline from an executed tour and opens in Chromium; bad input is refused."""
import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from _browser import offline_page

from metakit.teaching import book, demo

ROOT = Path(__file__).resolve().parents[1]
WELCOME = "00_welcome_and_data.ipynb"


def executed(path, *cells, **metadata):
    """An executed notebook: a heading, then one code cell per list of outputs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {path.stem}")] + [
        nbformat.v4.new_code_cell(f"cell_{i}()", execution_count=i + 1, outputs=outputs)
        for i, outputs in enumerate(cells)])
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                       language_info={"name": "python"}, **metadata)
    nbformat.write(nb, path)
    return path


def text(value):
    return nbformat.v4.new_output("stream", name="stdout", text=value)


def test_an_error_output_a_missing_folder_and_a_bad_out_are_refused_in_one_line(tmp_path, capsys):
    folder = tmp_path / "nb"
    folder.mkdir()
    executed(folder / "00_fine.ipynb", [text("ok\n")])
    executed(folder / "01_broken.ipynb", [text("ok\n")], [nbformat.v4.new_output(
        "error", ename="ValueError", evalue="boom\nsecond line", traceback=["Traceback ...", "ValueError: boom"])])
    assert book.main(["--notebooks", str(folder), "--out", str(tmp_path / "book")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"{folder / '01_broken.ipynb'} carries an error output in cell 2 (ValueError: boom); " in lines[0]
    assert "make demo" in lines[0]
    assert not (tmp_path / "book" / "html").exists()
    assert book.main(["--notebooks", str(folder / "nope"), "--out", str(tmp_path / "book")]) == 2
    assert capsys.readouterr().err.startswith(f"make book FAILED: --notebooks {folder / 'nope'}: no such folder; ")
    (folder / "01_broken.ipynb").unlink()
    (tmp_path / "file").write_text("")                                # --out under a file
    assert book.main(["--notebooks", str(folder), "--out", str(tmp_path / "file" / "book")]) == 2
    assert capsys.readouterr().err.startswith(f"make book FAILED: --out {tmp_path / 'file' / 'book'}: cannot make ")


def test_missing_partial_unexecuted_and_unreadable_notebooks_are_refused(tmp_path):
    executed(tmp_path / "00_fine.ipynb", [text("ok\n")])
    assert book.pages(tmp_path) == [tmp_path / "00_fine.ipynb"]
    with pytest.raises(book.BookError, match=r": 01_gone.ipynb of the tour is missing; .*make demo"):
        book.pages(tmp_path, ["00_fine.ipynb", "01_gone.ipynb"])
    with pytest.raises(book.BookError, match=r"--notebooks .*nope: no such folder"):
        book.pages(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(book.BookError, match="no NN_name.ipynb notebooks"):
        book.pages(tmp_path / "empty")
    partial = executed(tmp_path / "00_p.ipynb", [text("ok\n")], papermill={"end_time": None})
    with pytest.raises(book.BookError, match="00_p.ipynb stopped partway"):
        book.check_executed(partial)
    fresh = tmp_path / "01_fresh.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), fresh)
    with pytest.raises(book.BookError, match="01_fresh.ipynb was never executed"):
        book.check_executed(fresh)
    (tmp_path / "02_junk.ipynb").write_text("{not json")
    with pytest.raises(book.BookError, match="02_junk.ipynb is not a readable notebook"):
        book.check_executed(tmp_path / "02_junk.ipynb")


def test_a_new_build_replaces_the_link_and_drops_the_old_build(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for n in (1, 2):
        (tmp_path / f"build{n}").mkdir()
        (tmp_path / f"build{n}" / "index.html").write_text(f"build {n}")
        link = book._swap_in(tmp_path / f"build{n}", out)
        assert (link / "index.html").read_text() == f"build {n}"
        assert sorted(p.name for p in out.iterdir()) == ["html", link.resolve().name]
    (out / "html").unlink()
    (out / "html").mkdir()                                             # a real folder there: kept aside
    (tmp_path / "build3").mkdir()
    book._swap_in(tmp_path / "build3", out)
    assert (out / "html").is_symlink() and len([p for p in out.iterdir() if p.name.startswith("html-old-")]) == 1


@pytest.mark.slow
def test_widgets_render_offline_and_a_failed_build_keeps_the_last_site(tmp_path):
    root = tmp_path / "root"          # a tiny checkout: a README, no results, no docs
    root.mkdir()
    (root / "README.md").write_text("# tiny\n\nA README.\n")
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    widget = nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "m1", "version_major": 2, "version_minor": 0},
        "text/plain": "IntSlider(value=3)"})
    state = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
                                                           "state": {"m1": {"model_name": "IntSliderModel"}}}}
    executed(good / "00_a.ipynb", [text("hello\n")], [widget], widgets=state)
    index = book.build(good, tmp_path / "out", root=root)
    first = index.parent.resolve()
    page = (index.parent / "notebooks" / "00_a.html").read_text()
    assert book.WIDGET_NOTE in page and "IntSlider(value=3)" not in page and "embed-amd" not in page   # no CDN
    broken = executed(bad / "00_a.ipynb", [text("hello\n")])
    nb = nbformat.read(broken, as_version=4)
    nb.cells[0].source += "\n\nSee {doc}`missing-page`."                  # a cross-reference to no page
    nbformat.write(nb, broken)
    with pytest.raises(book.BookError, match=r"(?s)Sphinx could not build the site.*missing-page"):
        book.build(bad, tmp_path / "out", root=root)
    assert index.parent.resolve() == first and index.is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["html", first.name]   # no half-built leftovers


@pytest.fixture
def served(request):
    """Serve a folder on loopback; returns a function folder -> base URL."""
    servers = []

    def serve(folder):
        handler = functools.partial(type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                                    directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_site_of_an_executed_tour_opens_in_chromium_with_its_figures(tmp_path, monkeypatch, served):
    monkeypatch.setenv("METAKIT_CACHE", str(tmp_path / "cache"))
    runs = demo.demo("smoke", [ROOT / "notebooks" / WELCOME], runs=tmp_path / "runs")   # notebook 00: ~20 s
    index = book.build(runs.parent / "latest" / "notebooks", tmp_path / "book", expected=[WELCOME])
    assert index == tmp_path / "book" / "html" / "index.html" and index.is_file()
    base = served(index.parent)
    shots = ROOT / "runs" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with offline_page(1300, 900) as (page, seen):
        page.goto(f"{base}/index.html", wait_until="load")
        assert page.title() == "metakit: the course"
        assert page.locator("article h1").first.text_content().strip("#¶ \n") == "metakit"
        page.screenshot(path=str(shots / "book_index.png"))
        page.locator("article .toctree-wrapper a", has_text="00 · Welcome").click()
        page.wait_for_load_state("load")
        assert page.url.endswith("/notebooks/00_welcome_and_data.html")
        assert page.title().startswith("00 · Welcome")
        widths = page.eval_on_selector_all(".cell_output img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert len(widths) >= 1 and all(w and w > 0 for w in widths), widths
        assert page.locator(".cell_output .traceback, .cell_output .output_error").count() == 0
        assert "Traceback (most recent call last)" not in page.locator("article").inner_text()
        page.screenshot(path=str(shots / "book_00_welcome.png"))
    assert seen.errors == [] and seen.outside == [], seen


def test_a_tour_edited_after_its_executed_copy_is_flagged(tmp_path):
    (tmp_path / "src").mkdir(), (tmp_path / "run").mkdir()
    source = executed(tmp_path / "src" / "00_a.ipynb")
    executed(tmp_path / "run" / "00_a.ipynb", [text("ok\n")])
    os.utime(source, (1e9, 1e9))
    assert book._stale(tmp_path / "run", [source]) == []
    os.utime(source, (4e9, 4e9))
    assert book._stale(tmp_path / "run", [source]) == ["00_a.ipynb"]


def test_the_students_site_stages_student_copies_and_the_instructors_site_the_solutions(tmp_path):
    """No solution reaches the students' site: code stripped, outputs cleared from the first exercise on."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "README.md").write_text("# tiny\n")
    path = executed(tmp_path / "00_a.ipynb", [text("before the exercises\n")], [text("the answer is 42\n")])
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source = "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"
    nbformat.write(nb, path)
    for student, shown in ((True, False), (False, True)):
        src = tmp_path / f"src-{student}"
        book.stage(src, [path], root, student=student)
        staged = nbformat.read(src / "notebooks" / "00_a.ipynb", as_version=4)
        page = nbformat.writes(staged)
        assert ("answer = 42" in page) is shown and ("the answer is 42" in page) is shown
        assert "before the exercises" in page                              # the tour's own outputs stay
