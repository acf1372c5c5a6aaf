"""``make demo``: run the whole notebook tour headless and collect what it produced.

Every ``notebooks/[0-9][0-9]*_*.ipynb`` (a ``02b_…`` is the evidence companion of ``02_…``) runs through
papermill with ``PROFILE`` injected as a parameter
(and ``METAKIT_PROFILE`` set for the kernel), two at a time by default (`DEFAULT_JOBS`: each kernel is
one thread, and the notebooks are independent). Under ``runs/demo-<timestamp>/`` (linked
as ``runs/latest``) it writes the executed notebooks, their HTML, the headline figures and
results each notebook publishes (`metakit.teaching.report`), and ``summary.json``: per notebook its
seconds and its headline numbers by source (``live``, or the committed ``results/...csv`` they were
read from). A failing notebook stops the demo with the notebook, the cell and the error, and a
non-zero exit; so does a notebook that ran but published no headline numbers. Each kernel's own log
(its TCP-transport warning, the ``KeyboardInterrupt caught in kernel`` of a normal shutdown, which
interrupts the kernel before asking it to stop) goes to ``logs/<notebook>.kernel.log``, not the
screen: the screen shows progress and results. The executed notebooks and HTML hold the solutions:
the demo is the instructors' tour; students get `metakit.teaching.student` copies (``make book``).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

from metakit.io import atomic_write_text
from metakit.teaching.report import ENV as REPORT_ENV

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JOBS = min(2, os.cpu_count() or 1)   # notebooks at a time: one single-threaded kernel per core


class NotebookFailed(RuntimeError):
    """A notebook of the tour raised; the message names the notebook and the cell."""


def tour(folder: str | Path = "notebooks") -> list[Path]:
    """The tour's notebooks in order: ``NN_name.ipynb`` (and ``NNb_name.ipynb``) of ``folder``, not student copies.

    Example:
        >>> [p.name[:2] for p in tour()][:2]
        ['00', '01']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebooks folder {folder} not found; run the demo from the repository root.")
    return sorted(folder.glob("[0-9][0-9]*_*.ipynb"))   # 02_…, then its companion 02b_…


def kernel_env(profile: str, out: Path) -> dict[str, str]:
    """Environment for the kernels: profile, report folder, this metakit first on the path, CPU threads."""
    env = {"METAKIT_PROFILE": profile, REPORT_ENV: str(out.resolve()),
           "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "METAKIT_CACHE": os.environ.get("METAKIT_CACHE", str(Path(".metakit_cache").resolve()))}
    # Small CPU models run fastest single-threaded on a shared machine; a user's setting wins.
    env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    return env


def children_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process's finished children, e.g. the kernels that have exited.

    A notebook's kernel is one single-threaded process (``OMP_NUM_THREADS=1``), so its CPU seconds are
    close to what the notebook takes on an idle core, whatever else shares the machine.

    Example:
        >>> import subprocess, sys
        >>> before = children_cpu_seconds()
        >>> _ = subprocess.run([sys.executable, "-c", "sum(range(10**6))"], check=True)
        >>> children_cpu_seconds() > before
        True
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def quiet_kernel_manager(log: Path) -> type:
    """A kernel manager class whose kernels write their stdout and stderr to ``log`` (appended), not the terminal.

    Example:
        >>> quiet_kernel_manager(Path("runs/x.kernel.log")).__name__
        'QuietKernelManager'
    """
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as stream:             # the kernel process keeps its own copy of the descriptor
                return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": stream, "stderr": stream})

    return QuietKernelManager


def run_notebook(path: Path, out: Path, profile: str, timeout: int = 900) -> float:
    """Execute one notebook into ``out/notebooks`` and convert it to HTML; returns seconds taken.

    The kernel's own log goes to ``out/logs/<notebook>.kernel.log`` (`quiet_kernel_manager`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    executed = out / "notebooks" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(executed), parameters={"PROFILE": profile}, cwd=str(path.parent),
                                   kernel_name="python3", progress_bar=False, log_output=False,
                                   execution_timeout=timeout,
                                   kernel_manager_class=quiet_kernel_manager(out / "logs" / f"{path.stem}.kernel.log"))
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


def summarise(out: Path, profile: str, timings: dict[str, float], total_seconds: float,
              cpu_seconds: dict[str, float] | None = None) -> dict:
    """What ``summary.json`` holds: the profile, wall seconds per notebook and in all, each kernel's CPU
    seconds (what the wall time would be on an idle core; other jobs on the machine inflate the wall
    time, not these), the published results, and ``unpublished``: the notebooks that ran (those in
    ``timings``) but published no headline number.

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
    cpu_seconds = cpu_seconds or {}
    return {"profile": profile, "seconds": timings, "total_seconds": total_seconds, "cpu_seconds": cpu_seconds,
            "total_cpu_seconds": sum(cpu_seconds.values()), "results": results, "unpublished": unpublished}


def _link_latest(out: Path) -> None:
    latest = out.parent / "latest"
    if latest.is_symlink() or not latest.exists():
        tmp = out.parent / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(out.name)
        os.replace(tmp, latest)


def timed_run(path: Path, out: Path, profile: str) -> tuple[float, float]:
    """`run_notebook`, and the CPU seconds its kernel used: ``(wall seconds, kernel CPU seconds)``."""
    used = children_cpu_seconds()
    seconds = run_notebook(path, out, profile)
    return seconds, children_cpu_seconds() - used


def run_tour(notebooks: list[Path], out: Path, profile: str, jobs: int = 1) -> tuple[dict, dict]:
    """Run ``notebooks``, ``jobs`` at a time; returns wall and kernel-CPU seconds by notebook, in tour order.

    The tour's notebooks are independent (each trains what it shows; a file one writes, another never
    reads), and each kernel is one thread, so ``jobs=2`` uses both cores of a 2-core laptop. Each
    worker is its own process, so a kernel's CPU seconds are counted by the worker that started it.
    The first notebook to fail stops the ones not started yet and is raised.
    """
    done: dict[str, tuple[float, float]] = {}

    def finished(i: int, path: Path, seconds: float, cpu: float) -> None:
        done[path.stem] = (seconds, cpu)
        print(f"[{i}/{len(notebooks)}] {path.name}: done in {seconds:.0f} s (kernel CPU {cpu:.0f} s)", flush=True)

    if jobs <= 1:
        for i, path in enumerate(notebooks, start=1):
            print(f"[{i}/{len(notebooks)}] {path.name}: running", flush=True)
            finished(i, path, *timed_run(path, out, profile))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(timed_run, path, out, profile): (i, path) for i, path in enumerate(notebooks, 1)}
            print(f"running {len(notebooks)} notebooks, {jobs} at a time", flush=True)
            try:
                for future in as_completed(futures):
                    finished(*futures[future], *future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    order = [p.stem for p in notebooks]
    return {k: done[k][0] for k in order}, {k: done[k][1] for k in order}


def demo(profile: str = "laptop", notebooks: list[Path] | None = None, runs: str | Path = "runs",
         jobs: int = 1) -> Path:
    """Run the tour at ``profile`` (``jobs`` notebooks at a time); print a line per notebook and the results;
    return the output folder."""
    notebooks = tour() if notebooks is None else notebooks
    if not notebooks:
        raise FileNotFoundError("no notebooks/[0-9][0-9]*_*.ipynb to run.")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be a whole number ≥ 1 (notebooks run at a time), e.g. 2 on 2 cores.")
    out = Path(runs) / f"demo-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=False)
    _link_latest(out)
    saved = {k: os.environ.get(k) for k in kernel_env(profile, out)}
    os.environ.update(kernel_env(profile, out))      # before any worker starts: they inherit it
    start = time.perf_counter()
    try:
        timings, cpu = run_tour(notebooks, out, profile, jobs)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    summary = summarise(out, profile, timings, time.perf_counter() - start, cpu)
    summary["jobs"] = jobs
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float))
    print_summary(out, summary)
    if summary["unpublished"]:
        raise NotebookFailed(f"{', '.join(summary['unpublished'])} ran but published no headline numbers; "
                             f"each notebook calls metakit.teaching.report.publish(<its name>, source=..., ...).")
    return out


def print_summary(out: Path, summary: dict) -> None:
    """Where everything is, and each notebook's headline results."""
    print(f"\nmetakit demo ({summary['profile']}) done in {summary['total_seconds']:.0f} s "
          f"(kernels' CPU {summary.get('total_cpu_seconds', 0):.0f} s): {out}/")
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


def main(profile: str = "laptop", jobs: int = DEFAULT_JOBS) -> int:
    """Entry point of ``python -m metakit demo``; returns the exit status."""
    print(f"metakit demo: the notebook tour at profile {profile!r}", flush=True)
    try:
        demo(profile, jobs=jobs)
    except (NotebookFailed, FileNotFoundError) as err:
        print(f"\nmake demo FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    return 0
