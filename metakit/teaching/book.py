"""``make book``: the course site, built offline with Sphinx and myst-nb from the executed tour.

Two audiences, two sites. ``make book`` builds the students' site into ``runs/book/html``: each
notebook is a student copy of its executed run (`metakit.teaching.student.site_notebook`: solutions
stripped, hidden tests dropped, outputs cleared from the first exercise on). ``make book-instructor``
(``--instructor``) builds the solutions site into ``runs/book-instructor/html``; never publish that one
to students. The pages: an index that is the README, one page per notebook of the tour in order
(their outputs as ``make demo`` left them in ``runs/latest/notebooks``; the demo runs first when
there are none), ``docs/students.md``, ``docs/architecture.md``, the ``docs/guide/`` pages, and the
committed ``results/`` tables. Nothing executes inside Sphinx
(``nb_execution_mode = "off"``, ``docs/book/conf.py``) and nothing is fetched: the theme ships its
assets, ipywidgets' CDN scripts are off, and a page that would load a script, a style sheet or an
image from the network fails the build. So does every Sphinx warning (``-W``: a missing page, a bad
cross-reference) and a notebook that carries an error output or stopped partway. The site is built
in a temporary folder and swapped in whole: ``runs/book/html`` is a link to the newest good build,
so a failed build leaves the last good site in place.

    python -m metakit.teaching.book                      # students' site, from runs/latest/notebooks
    python -m metakit.teaching.book --instructor         # solutions site, into runs/book-instructor
    python -m metakit.teaching.book --notebooks DIR --out runs/book
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Sequence

from metakit.teaching.demo import NotebookFailed, tour

ROOT = Path(__file__).resolve().parents[2]   # the checkout: README.md, docs/, results/, notebooks/
CONF = ROOT / "docs" / "book"                # conf.py, passed to sphinx-build -c
LATEST = Path("runs") / "latest" / "notebooks"


class BookError(ValueError):
    """The site cannot be built from this input; the message names it and the fix."""


def check_executed(path: Path) -> None:
    """Refuse a notebook that is not a cleanly, fully executed one.

    Raises `BookError` when it carries an ``error`` output, stopped partway under papermill (or is
    still running), or was never executed.

    Example:
        >>> import nbformat, tempfile, pathlib
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1/0", execution_count=1, outputs=[
        ...     nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])])])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "00_x.ipynb"; nbformat.write(nb, path)
        >>> check_executed(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        metakit.teaching.book.BookError: ...00_x.ipynb carries an error output in cell 0 (ZeroDivisionError: ...
    """
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 — any unreadable file gets the same one line
        raise BookError(f"{path} is not a readable notebook ({type(err).__name__}: {err}); "
                        "run the tour again (make demo).") from None
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                evalue = (str(output.get("evalue", "")).splitlines() or [""])[0]
                raise BookError(f"{path} carries an error output in cell {index} ({output.get('ename')}: {evalue}); "
                                "fix the notebook and run the tour again (make demo).")
    papermill = nb.metadata.get("papermill")
    if papermill is not None and not papermill.get("end_time"):
        raise BookError(f"{path} stopped partway (or is still running) under papermill; "
                        "let `make demo` finish, or run it again.")
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if code and not any(cell.get("execution_count") for cell in code):
        raise BookError(f"{path} was never executed (no code cell has an execution count); "
                        "the site shows executed notebooks: run `make demo`, or pass --notebooks a folder of them.")


def pages(executed: Path, expected: Sequence[str] = ()) -> list[Path]:
    """The executed notebooks to publish, in tour order, each checked by `check_executed`.

    Args:
        executed: a folder of executed ``NN_name.ipynb`` notebooks.
        expected: notebook file names that must all be there (the tour's); empty: whatever is there.

    Example:
        >>> import tempfile, pathlib
        >>> pages(pathlib.Path(tempfile.mkdtemp()), ["00_welcome_and_data.ipynb"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        metakit.teaching.book.BookError: --notebooks ...: 00_welcome_and_data.ipynb of the tour is missing; ...
    """
    executed = Path(executed)
    if not executed.is_dir():
        raise BookError(f"--notebooks {executed}: no such folder; run `make demo` first, "
                        "or pass a folder of executed NN_name.ipynb notebooks.")
    missing = [name for name in expected if not (executed / name).is_file()]
    if missing:
        raise BookError(f"--notebooks {executed}: {', '.join(missing)} of the tour "
                        f"{'is' if len(missing) == 1 else 'are'} missing; the demo stopped early? Run `make demo`.")
    found = [executed / name for name in expected] if expected else tour(executed)
    if not found:
        raise BookError(f"--notebooks {executed}: no NN_name.ipynb notebooks in it; run `make demo`, "
                        "or pass a folder of executed notebooks.")
    for path in found:
        check_executed(path)
    return found


def index_page(notebooks: Sequence[str], tables: Sequence[str], reference: Sequence[str] = ()) -> str:
    """The index: the README, then a section of toctrees: the tour, the reference pages, the results tables.

    Args:
        notebooks: the tour's page names in order (``00_welcome_and_data``).
        tables: results/ markdown files relative to results/ (``README.md`` first).
        reference: other pages (``architecture``).

    Example:
        >>> print(index_page(["00_a"], ["README.md", "digits/noise.md"]).splitlines()[-2])
        digits/noise.md <results/digits/noise>
    """
    def tree(caption: str, entries: Sequence[str]) -> list[str]:
        return ["", "```{toctree}", f":caption: {caption}", ":maxdepth: 1", "", *entries, "```"] if entries else []

    results = [f"{'results/' if t == 'README.md' else t} <results/{t.removesuffix('.md')}>" for t in tables]
    return "\n".join(["```{include} _include/README.md", "```", "", "## The course pages",
                      *tree("The tour", [f"notebooks/{name}" for name in notebooks]),
                      *tree("Reference", reference), *tree("Results", results)]) + "\n"


WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "(an interactive widget: it needs a running kernel, so open this notebook in Jupyter, e.g. make lab)"


def copy_notebook(path: Path, target: Path, student: bool = True) -> None:
    """Copy an executed notebook, each widget's text form (``VBox(children=...``) replaced by `WIDGET_NOTE`;
    ``student``: as the students' site shows it (`metakit.teaching.student.site_notebook`).

    A static page cannot run a widget (and ipywidgets' embed scripts would come from a CDN); the
    site shows the note instead (``docs/book/conf.py`` ranks the widget view below text).
    """
    import nbformat

    from metakit.teaching.student import site_notebook

    nb = nbformat.read(path, as_version=4)
    nb = site_notebook(nb, path.name) if student else nb
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if WIDGET in output.get("data", {}):
                output["data"]["text/plain"] = WIDGET_NOTE
    nbformat.write(nb, target)


def stage(src: Path, notebooks: Sequence[Path], root: Path = ROOT, student: bool = True) -> None:
    """Write the Sphinx source tree into the new folder ``src``: index, README, notebooks (student copies unless
    ``student`` is False), results, docs."""
    (src / "_include").mkdir(parents=True)
    shutil.copyfile(root / "README.md", src / "_include" / "README.md")
    (src / "notebooks").mkdir()
    for path in notebooks:
        copy_notebook(path, src / "notebooks" / path.name, student)
    reference = []
    if (root / "docs" / "students.md").is_file():               # "Students: start here", linked from the README
        (src / "docs").mkdir(exist_ok=True)
        shutil.copyfile(root / "docs" / "students.md", src / "docs" / "students.md")
        reference.append("docs/students")
    if (root / "docs" / "architecture.md").is_file():
        shutil.copyfile(root / "docs" / "architecture.md", src / "architecture.md")
        reference.append("architecture")
    for page in sorted((root / "docs" / "guide").glob("*.md")):   # the reference pages the README links to
        (src / "docs" / "guide").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, src / "docs" / "guide" / page.name)
        reference.append(f"docs/guide/{page.stem}")
    tables = sorted((root / "results").rglob("*.md"), key=lambda p: (p.name != "README.md", p.parts))
    for table in tables:
        target = src / table.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(table, target)
    index = index_page([p.stem for p in notebooks], [t.relative_to(root / "results").as_posix() for t in tables],
                       reference)
    (src / "index.md").write_text(index, encoding="utf-8")


class _Assets(HTMLParser):
    """Collects the URLs a page loads (scripts, style sheets, images, frames), not the links it shows."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video"):
            self.urls.append(attrs.get("src") or "")
        elif tag == "link" and not {"canonical", "alternate"} & set((attrs.get("rel") or "").split()):
            self.urls.append(attrs.get("href") or "")


def network_assets(site: Path) -> list[tuple[str, str]]:
    """``(page, url)`` for every asset a page of ``site`` would fetch from the network.

    Example:
        >>> import tempfile, pathlib
        >>> site = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (site / "a.html").write_text('<script src="https://cdn.example/x.js"></script><a href="https://x">')
        >>> network_assets(site)
        [('a.html', 'https://cdn.example/x.js')]
    """
    found = []
    for page in sorted(site.rglob("*.html")):
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        found += [(page.relative_to(site).as_posix(), url) for url in parser.urls
                  if url.startswith(("http:", "https:", "//"))]
    return found


def _swap_in(site: Path, out: Path) -> Path:
    """Move a finished build to ``out/site-<ts>`` and point ``out/html`` at it atomically; drop the old one."""
    final = Path(tempfile.mkdtemp(dir=out, prefix=f"site-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-"))
    os.replace(site, final)                    # an empty folder is replaced by the build
    link, old = out / "html", None
    if link.is_symlink():
        old = link.resolve()
    elif link.exists():                        # a real folder from elsewhere: keep it, aside
        os.replace(link, out / f"html-old-{final.name}")
    tmp = out / f".html-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(final.name)
    os.replace(tmp, link)
    if old is not None and old.parent == out.resolve() and old.name.startswith("site-") and old != final.resolve():
        shutil.rmtree(old, ignore_errors=True)
    return link


def build(executed: str | Path, out: str | Path = "runs/book", expected: Sequence[str] = (),
          root: Path = ROOT, instructor: bool = False) -> Path:
    """Build the site from the executed notebooks in ``executed``; returns ``out/html/index.html``.

    The students' site by default (student copies of the notebooks); ``instructor`` keeps the solutions.

    Raises `BookError` (one line) for bad input, and with Sphinx's warnings below the first line when
    a page is broken. ``root`` holds README.md, docs/ and results/.

    Example (about 25 s for the tour on 2 cores, so not a doctest; ``make demo`` first)::

        build("runs/latest/notebooks", "runs/book")   # -> PosixPath('runs/book/html/index.html')
    """
    if not (CONF / "conf.py").is_file():
        raise BookError(f"{CONF / 'conf.py'} is missing: build the site from a checkout of metakit (pip install -e .).")
    notebooks = pages(Path(executed), expected)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BookError(f"--out {out}: cannot make that folder ({err.strerror}); pass a folder you can write.") from None
    work = Path(tempfile.mkdtemp(dir=out, prefix=".build-"))
    try:
        stage(work / "src", notebooks, root, student=not instructor)
        site = work / "html"
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(CONF), "-W", "--keep-going", "-q",
                   "-d", str(work / "doctrees"), str(work / "src"), str(site)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            report = (done.stderr or done.stdout).strip().replace(str(work / "src") + os.sep, "")
            raise BookError(f"Sphinx could not build the site (every warning counts as a broken page):\n{report}")
        fetched = network_assets(site)
        if fetched:
            (page, url), more = fetched[0], len(fetched) - 1
            raise BookError(f"{page} would load {url} from the network{f' ({more} more such assets)' if more else ''}; "
                            "the site must work offline: drop that output or serve the file locally.")
        link = _swap_in(site, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return link / "index.html"


def _stale(executed: Path, sources: Sequence[Path]) -> list[str]:
    """Tour notebooks edited after their executed copy was written."""
    return [p.name for p in sources if (executed / p.name).is_file()
            and p.stat().st_mtime > (executed / p.name).stat().st_mtime]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m metakit.teaching.book``; returns the exit status (2 and one line on bad input)."""
    parser = argparse.ArgumentParser(prog="python -m metakit.teaching.book", description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", default=None,
                        help=f"folder of executed notebooks (default: {LATEST}, running `make demo` when it is absent)")
    parser.add_argument("--out", default=None, help="the site goes to OUT/html (default: runs/book, "
                                                    "runs/book-instructor with --instructor)")
    parser.add_argument("--instructor", action="store_true", help="the solutions site (not for students)")
    args = parser.parse_args(argv)
    args.out = args.out or ("runs/book-instructor" if args.instructor else "runs/book")
    expected: Sequence[str] = ()
    try:
        if args.notebooks is None:
            sources = tour(ROOT / "notebooks")
            expected = [p.name for p in sources]
            if not LATEST.is_dir():
                from metakit.teaching.demo import demo

                print(f"make book: no executed tour in {LATEST}; running the demo first", flush=True)
                demo(os.environ.get("METAKIT_PROFILE") or "laptop")
            elif stale := _stale(LATEST, sources):
                warnings.warn(f"{', '.join(stale)} changed after {LATEST} was executed; "
                              "run `make demo` for a fresh tour.", stacklevel=1)
            args.notebooks = LATEST
        index = build(args.notebooks, args.out, expected, instructor=args.instructor)
    except (BookError, NotebookFailed, FileNotFoundError) as err:
        print(f"make book FAILED: {err}", file=sys.stderr)
        return 2
    print(f"{'instructors' if args.instructor else 'students'}' course site: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
