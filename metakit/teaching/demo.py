"""``make demo``: run the whole notebook tour headless and collect what it produced.

Every ``notebooks/[0-9][0-9]_*.ipynb`` runs in order through papermill with ``PROFILE`` injected as a
parameter (and ``METAKIT_PROFILE`` set for the kernel). Under ``runs/demo-<timestamp>/`` (linked
as ``runs/latest``) it writes the executed notebooks, their HTML, the headline figures and
results each notebook publishes (`metakit.teaching.report`), and ``summary.json``: per notebook its
seconds and its headline numbers by source (``live``, or the committed ``results/...csv`` they were
read from). A failing notebook stops the demo with the notebook, the cell and the error, and a
non-zero exit; so does a notebook that ran but published no headline numbers.
"""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from metakit.io import atomic_write_text
from metakit.teaching.report import ENV as REPORT_ENV

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class NotebookFailed(RuntimeError):
    """A notebook of the tour raised; the message names the notebook and the cell."""


def tour(folder: str | Path = "notebooks") -> list[Path]:
    """The tour's notebooks in order: ``NN_name.ipynb`` files of ``folder`` (student copies excluded).

    Example:
        >>> [p.name[:2] for p in tour()][:2]
        ['00', '01']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebooks folder {folder} not found; run the demo from the repository root.")
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def kernel_env(profile: str, out: Path) -> dict[str, str]:
    """Environment for the kernels: profile, report folder, this metakit first on the path, CPU threads."""
    env = {"METAKIT_PROFILE": profile, REPORT_ENV: str(out.resolve()),
           "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "METAKIT_CACHE": os.environ.get("METAKIT_CACHE", str(Path(".metakit_cache").resolve()))}
    # Small CPU models run fastest single-threaded on a shared machine; a user's setting wins.
    env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    return env


def run_notebook(path: Path, out: Path, profile: str, timeout: int = 900) -> float:
    """Execute one notebook into ``out/notebooks`` and convert it to HTML; returns seconds taken."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    executed = out / "notebooks" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(executed), parameters={"PROFILE": profile}, cwd=str(path.parent),
                                   kernel_name="python3", progress_bar=False, log_output=False,
                                   execution_timeout=timeout)
    except PapermillExecutionError as err:
        raise NotebookFailed(f"{path} failed in cell {err.cell_index} (execution count {err.exec_count}): "
                             f"{err.ename}: {err.evalue}\n  the partly executed notebook is {executed}") from None
    seconds = time.perf_counter() - start
    to_html(executed, out / "html" / f"{path.stem}.html")
    return seconds


def to_html(notebook: Path, target: Path) -> Path:
    """Render an executed notebook as a standalone HTML page."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    return atomic_write_text(target, body)


def collect(out: Path) -> dict[str, dict]:
    """Results each notebook published (``out/results/<notebook>.json``), by notebook, then by source."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}


def summarise(out: Path, profile: str, timings: dict[str, float], total_seconds: float) -> dict:
    """What ``summary.json`` holds: the profile, seconds per notebook and in all, the published results,
    and ``unpublished``: the notebooks that ran (those in ``timings``) but published no headline number.

    Example:
        >>> import tempfile
        >>> from metakit.teaching import report
        >>> out = Path(tempfile.mkdtemp())
        >>> os.environ[report.ENV] = str(out); _ = report.publish("00_a", source="live", x=1.0)
        >>> s = summarise(out, "smoke", {"00_a": 2.0, "01_b": 3.0}, 5.5); del os.environ[report.ENV]
        >>> s["results"], s["unpublished"]
        ({'00_a': {'live': {'x': 1.0}}}, ['01_b'])
    """
    results = collect(out)
    unpublished = [name for name in timings if not any(results.get(name, {}).values())]
    return {"profile": profile, "seconds": timings, "total_seconds": total_seconds, "results": results,
            "unpublished": unpublished}


def _link_latest(out: Path) -> None:
    latest = out.parent / "latest"
    if latest.is_symlink() or not latest.exists():
        tmp = out.parent / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(out.name)
        os.replace(tmp, latest)


def demo(profile: str = "laptop", notebooks: list[Path] | None = None, runs: str | Path = "runs") -> Path:
    """Run the tour at ``profile``; print a line per notebook and the results; return the output folder."""
    notebooks = tour() if notebooks is None else notebooks
    if not notebooks:
        raise FileNotFoundError("no notebooks/[0-9][0-9]_*.ipynb to run.")
    out = Path(runs) / f"demo-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=False)
    _link_latest(out)
    saved = {k: os.environ.get(k) for k in kernel_env(profile, out)}
    os.environ.update(kernel_env(profile, out))
    timings, start = {}, time.perf_counter()
    try:
        for i, path in enumerate(notebooks, start=1):
            print(f"[{i}/{len(notebooks)}] {path.name}: running", flush=True)
            timings[path.stem] = run_notebook(path, out, profile)
            print(f"[{i}/{len(notebooks)}] {path.name}: done in {timings[path.stem]:.0f} s", flush=True)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    summary = summarise(out, profile, timings, time.perf_counter() - start)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float))
    print_summary(out, summary)
    if summary["unpublished"]:
        raise NotebookFailed(f"{', '.join(summary['unpublished'])} ran but published no headline numbers; "
                             f"each notebook calls metakit.teaching.report.publish(<its name>, source=..., ...).")
    return out


def print_summary(out: Path, summary: dict) -> None:
    """Where everything is, and each notebook's headline results."""
    print(f"\nmetakit demo ({summary['profile']}) done in {summary['total_seconds']:.0f} s: {out}/")
    print(f"  executed notebooks  {out}/notebooks/\n  HTML                {out}/html/")
    print(f"  figures             {out}/figures/\n  results             {out}/summary.json")
    for notebook, sources in summary["results"].items():
        seconds = summary["seconds"].get(notebook)
        print(f"\n{notebook}" + ("" if seconds is None else f" ({seconds:.0f} s)") + ":")
        for source, numbers in sources.items():
            print(f"  from {source}:")
            for name, value in numbers.items():
                if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
                    print(f"    {name}:")                      # e.g. verdicts: one line each
                    for key, entry in value.items():
                        print(f"      {key}: {json.dumps(entry, default=float)}")
                    continue
                shown = f"{value:.4g}" if isinstance(value, float) else json.dumps(value, default=float)
                print(f"    {name:<32} {shown}")


def main(profile: str = "laptop") -> int:
    """Entry point of ``python -m metakit demo``; returns the exit status."""
    print(f"metakit demo: the notebook tour at profile {profile!r}", flush=True)
    try:
        demo(profile)
    except (NotebookFailed, FileNotFoundError) as err:
        print(f"\nmake demo FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    return 0
