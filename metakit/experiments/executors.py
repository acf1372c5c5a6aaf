"""Run independent jobs through any ``concurrent.futures.Executor``: in-process, a local
process pool, a Dask cluster, or Slurm (through submitit).

metakit has no scheduler of its own: `map_jobs` submits one job per item to the executor it
is given and collects the outcomes as they finish. A job that raises is reported with its
traceback and does not stop the others; one progress bar counts finished and failed jobs.

Engines (optional extras, see the README):
    ``workers=N``     ``concurrent.futures.ProcessPoolExecutor`` (spawned processes)
    ``dask=ADDRESS``  ``dask.distributed.Client(ADDRESS).get_executor()``
    ``slurm=FOLDER``  ``submitit.AutoExecutor(FOLDER)`` wrapped as an Executor
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from metakit.options import shown


@dataclass
class Outcome:
    """One job's result: its ``value``, or its ``error`` (the traceback as text)."""

    item: Any
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def guarded(fn: Callable, item: Any) -> tuple[Any, str | None]:
    """Call ``fn(item)``; return ``(value, None)`` or ``(None, traceback)`` — never raise.

    Runs inside the worker, so the traceback keeps the worker's frames.

    Example:
        >>> guarded(abs, -2)
        (2, None)
        >>> guarded(int, "x")[1].splitlines()[-1]
        "ValueError: invalid literal for int() with base 10: 'x'"
    """
    try:
        return fn(item), None
    except Exception:  # reported with the item, the other jobs go on
        return None, traceback.format_exc()


def map_jobs(fn: Callable, items: Sequence, executor: cf.Executor | None = None, *, progress: bool = True,
             desc: str = "runs", on_outcome: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
    """Run ``fn`` on every item, through ``executor`` when given; outcomes in item order.

    Args:
        fn: a picklable (module-level) function of one item.
        items: the jobs' inputs.
        executor: any ``concurrent.futures.Executor``; None runs in this process, in order.
        progress: one bar over all jobs with finished/failed counts.
        desc: the bar's label.
        on_outcome: called as ``on_outcome(index, outcome)`` as each job finishes.

    Returns:
        One `Outcome` per item.

    Example:
        >>> [o.value for o in map_jobs(abs, [-1, 2], progress=False)]
        [1, 2]
    """
    outcomes: list[Outcome | None] = [None] * len(items)
    bar = tqdm(total=len(items), desc=desc, disable=not progress)
    failed = 0

    def record(i: int, value: Any, error: str | None) -> None:
        nonlocal failed
        outcomes[i] = Outcome(items[i], value, error)
        failed += error is not None
        bar.update(1)
        bar.set_postfix(finished=bar.n - failed, failed=failed)
        if on_outcome is not None:
            on_outcome(i, outcomes[i])

    if executor is None:
        for i, item in enumerate(items):
            record(i, *guarded(fn, item))
    else:
        futures = {executor.submit(guarded, fn, item): i for i, item in enumerate(items)}
        for future in cf.as_completed(futures):
            try:
                value, error = future.result()
            except Exception:  # the worker itself died (killed, out of memory, lost)
                value, error = None, traceback.format_exc()
            record(futures[future], value, error)
    bar.close()
    return outcomes  # type: ignore[return-value]


class SubmititExecutor(cf.Executor):
    """A submitit executor (Slurm, or its local/debug engines) as a ``concurrent.futures.Executor``.

    Args:
        folder: where submitit keeps job scripts, logs and results (shared with the nodes).
        poll_seconds: how often a waiting thread checks a job's state.
        **parameters: passed to ``update_parameters`` (e.g. ``timeout_min=60, gpus_per_node=1,
            slurm_partition="gpu"``).
    """

    def __init__(self, folder: str, poll_seconds: float = 5.0, **parameters: Any):
        import submitit

        self.inner = submitit.AutoExecutor(folder=folder)
        if parameters:
            self.inner.update_parameters(**parameters)
        self.poll_seconds = poll_seconds

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> cf.Future:
        job = self.inner.submit(fn, *args, **kwargs)
        future: cf.Future = cf.Future()

        def wait() -> None:
            while not job.done():
                time.sleep(self.poll_seconds)
            try:
                future.set_result(job.result())
            except Exception as err:
                future.set_exception(err)

        threading.Thread(target=wait, daemon=True).start()
        return future


def end_workers_on_term() -> None:
    """Make SIGTERM end this process's pool workers too, not only this process.

    ``kill PID`` reaches the parent alone: without this, a ``--workers N`` pool's spawned processes
    go on computing runs that nobody will write. The handler terminates every live child process,
    then exits with status 143 (128 + SIGTERM). Ctrl-C needs none of this: the terminal sends
    SIGINT to the whole process group. Main thread only (Python's rule for signal handlers).

    Example:
        >>> end_workers_on_term(); signal.getsignal(signal.SIGTERM).__name__
        'end_workers'
        >>> _ = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    """
    def end_workers(signum: int, frame: Any) -> None:
        for child in multiprocessing.active_children():
            child.terminate()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, end_workers)


def make_executor(workers: int | None = None, dask: str | None = None, slurm: str | None = None,
                  **slurm_parameters: Any) -> cf.Executor | None:
    """The executor that a sweep's command-line flags describe (None: in this process).

    Args:
        workers: size of a local process pool (``--workers N``).
        dask: address of a running Dask scheduler (``--dask tcp://host:8786``).
        slurm: submitit folder to run every job as a Slurm job (``--slurm runs/submitit``).
        **slurm_parameters: e.g. ``timeout_min=120, gpus_per_node=1``.

    Example:
        >>> make_executor() is None
        True
    """
    chosen = [name for name, value in (("workers", workers), ("dask", dask), ("slurm", slurm)) if value]
    if len(chosen) > 1:
        raise ValueError(f"choose one engine, not {chosen}: --workers, --dask or --slurm.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024):
        raise ValueError(f"workers={shown(workers)} must be an integer in [1, 1024] (processes on this machine), "
                         f"e.g. --workers 4.")
    if workers:
        return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    if dask:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ImportError("dask=... needs Dask: pip install 'metakit[cluster]'.") from None
        return Client(dask).get_executor()
    if slurm:
        try:
            return SubmititExecutor(slurm, **slurm_parameters)
        except ImportError:
            raise ImportError("slurm=... needs submitit: pip install 'metakit[cluster]'.") from None
    return None
