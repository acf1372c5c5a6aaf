"""`kill PID` of a pooled sweep must end the pool's workers, not leave them computing."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import concurrent.futures as cf, multiprocessing, os, sys, time
if sys.argv[1] == "on":
    from metakit.experiments.executors import end_workers_on_term
    end_workers_on_term()
pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 60)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def worker_after_term(handler: str, grace: float) -> tuple[int, bool]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, handler], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    worker = int(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=20)
    deadline = time.time() + grace
    while alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    still = alive(worker)
    if still:
        os.kill(worker, signal.SIGKILL)
    return code, still


def test_sigterm_ends_the_pool_workers():
    code, still = worker_after_term("on", grace=10)
    assert code == 143 and not still


def test_without_the_handler_the_worker_outlives_its_parent():
    # the check above can fail: the default SIGTERM leaves the spawned worker running
    code, still = worker_after_term("off", grace=1)
    assert code == -signal.SIGTERM and still
