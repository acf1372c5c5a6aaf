"""Sweeps through executors: a real Dask LocalCluster (2 worker processes, loopback), a local
process pool, a sweep killed halfway and restarted, and a failing run among good ones."""
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from metakit.experiments.executors import make_executor
from metakit.experiments import Config
from metakit.studies.sweep import METRICS, ablate

BASE = Config(profile="smoke", epochs=2, progress=False, device="cpu")
GRID = {"imbalance": [1, 5]}


def metrics(table: pd.DataFrame) -> list:
    return table[["imbalance", "seed", *METRICS]].astype(str).values.tolist()


@pytest.mark.slow
def test_dask_cluster_gives_in_process_results(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    here = ablate(GRID, BASE, seeds=[0, 1], cache=False, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, env={"OMP_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster) as client:
        there = ablate(GRID, BASE, seeds=[0, 1], cache=tmp_path, progress=False, executor=client.get_executor())
        assert len(client.scheduler_info()["workers"]) == 2
    assert metrics(there) == metrics(here)
    assert there["error"].isna().all() and not there["cached"].any()


@pytest.mark.slow
def test_process_pool_gives_in_process_results(tmp_path):
    here = ablate(GRID, BASE, seeds=[0], cache=False, progress=False)
    with make_executor(workers=2) as pool:
        there = ablate(GRID, BASE, seeds=[0], cache=tmp_path, progress=False, executor=pool)
    assert metrics(there) == metrics(here)


KILLED_SWEEP = textwrap.dedent("""
    import concurrent.futures as cf, os, signal, sys
    from metakit.experiments import Config
    from metakit.studies.sweep import ablate

    class DieAfterTwo(cf.Executor):  # an executor that runs each job here, then dies halfway through the sweep
        finished = 0
        def submit(self, fn, *args, **kwargs):
            future = cf.Future()
            future.set_result(fn(*args, **kwargs))   # the run is in the cache once this returns
            DieAfterTwo.finished += 1
            if DieAfterTwo.finished == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return future

    ablate({"imbalance": [1, 5]}, Config(profile="smoke", epochs=2, progress=False, device="cpu"),
           seeds=[0, 1], cache=sys.argv[1], progress=False, executor=DieAfterTwo())
""")


@pytest.mark.slow
def test_killed_sweep_redoes_only_unfinished_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-c", KILLED_SWEEP, str(tmp_path)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    table = ablate(GRID, BASE, seeds=[0, 1], cache=tmp_path, progress=False)
    assert table["cached"].tolist().count(True) == 2 and table["cached"].tolist().count(False) == 2
    assert metrics(table) == metrics(ablate(GRID, BASE, seeds=[0, 1], cache=False, progress=False))


def test_failing_run_is_reported_and_others_go_on(tmp_path):
    good = BASE
    bad = Config(profile="smoke", epochs=2, progress=False, dataset="cifar10", model="digits_cnn",
                 data_root=str(tmp_path / "no_cifar"))
    with pytest.warns(UserWarning, match="run failed: Config"):
        table = ablate([good, bad], cache=False, progress=False)
    assert table["error"].isna().tolist() == [True, False]
    assert "FileNotFoundError" in table["error"][1] and "data_prep.cifar" in table["error"][1]
    assert 0 <= table["test_acc"][0] <= 100 and pd.isna(table["test_acc"][1])


def test_one_engine_at_a_time():
    with pytest.raises(ValueError, match="choose one engine"):
        make_executor(workers=2, dask="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="workers=0"):
        make_executor(workers=0)
