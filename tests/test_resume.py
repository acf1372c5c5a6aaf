"""A run killed with SIGKILL resumes to exactly the numbers of an uninterrupted run (CPU)."""
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from metakit.experiments import Config, run
from metakit.experiments.loop import DivergenceError

KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    from metakit.experiments import Config, run
    from metakit.experiments.checkpoint import on_checkpoint
    saves = []
    def die_after_nth(path, state):
        saves.append(path)
        if len(saves) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)   # mid-training, right after a checkpoint
    with on_checkpoint(die_after_nth):
        run(Config(method=sys.argv[2], imbalance=5, profile="smoke", epochs=6, seed=1, progress=False,
                   device="cpu", options=json.loads(sys.argv[4])), checkpoint_dir=sys.argv[1])
""")

# MFM's meta-learning starts at epoch 1 here, so the kill after epoch 3 lands mid meta-learning.
METHODS = {"ce": {}, "mlrsnet": {}, "hd": {}, "ldam_drw": {}, "mwnet": {}, "mfm": {"meta_start": 0.2},
           "mfm_net": {"meta_start": 0.2, "hidden": 8}}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, method):
    options = METHODS[method]
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path), method, "3", json.dumps(options)],
                          capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    (checkpoint,) = tmp_path.glob("*.pt")
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epochs_done"] == 3
    config = Config(method=method, imbalance=5, profile="smoke", epochs=6, seed=1, progress=False, device="cpu",
                    options=options)
    resumed = run(config, checkpoint_dir=tmp_path, resume=True)
    fresh = run(config)
    columns = [c for c in fresh.history.columns if c != "seconds"]
    pd.testing.assert_frame_equal(resumed.history[columns], fresh.history[columns])
    assert pd.Series(resumed.metrics).astype(str).equals(pd.Series(fresh.metrics).astype(str))
    if fresh.learner is not None:   # the learner resumed too, to the last bit
        for (name, a), (_, b) in zip(fresh.learner.state_dict().items(), resumed.learner.state_dict().items()):
            assert torch.equal(a, b), name
    step = fresh.method.current_meta_step()
    if step is not None:            # the killed run had meta-learned already: its counter was restored
        assert saved["method"]["meta_step"]["calls"] > 0
        assert resumed.method.current_meta_step().calls == step.calls


def test_resume_uses_the_methods_own_state_dict():
    """The checkpoint's method entry is exactly Method.state_dict(), nothing scraped from attributes."""
    from metakit.experiments.run import build, snapshot_run
    parts = build(Config(method="ldam_drw", profile="smoke", epochs=2, progress=False).resolve())
    parts.method.start_epoch(1, parts.trainer)
    state = snapshot_run(parts, 1, [])["method"]
    assert sorted(state) == ["class_weights", "learner", "meta_step"]
    assert torch.equal(state["class_weights"], parts.method.class_weights)


def test_resume_refuses_checkpoint_of_another_config(tmp_path):
    run(Config(profile="smoke", epochs=1, progress=False), checkpoint_dir=tmp_path)
    (checkpoint,) = tmp_path.glob("*.pt")
    checkpoint.rename(tmp_path / checkpoint.name.replace(checkpoint.stem.split("-")[1], "0" * 16))
    other = Config(profile="smoke", epochs=1, progress=False, seed=1).resolve()
    from metakit.experiments import config_key
    (tmp_path / f"ce-0000000000000000.pt").rename(tmp_path / f"ce-{config_key(other)}.pt")
    with pytest.raises(ValueError, match="another config"):
        run(other, checkpoint_dir=tmp_path, resume=True)


def test_corrupted_checkpoint_is_refused(tmp_path):
    config = Config(profile="smoke", epochs=1, progress=False).resolve()
    from metakit.experiments import config_key
    (tmp_path / f"ce-{config_key(config)}.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        run(config, checkpoint_dir=tmp_path, resume=True)


def test_resume_needs_a_folder():
    with pytest.raises(ValueError, match="checkpoint_dir"):
        run(Config(profile="smoke", progress=False), resume=True)


def test_divergence_names_step_value_and_checkpoint(tmp_path):
    config = Config(profile="smoke", epochs=3, lr=1e30, schedule="fixed", progress=False)
    with pytest.raises(DivergenceError, match=r"step \d+ of \d+: loss=(nan|inf)") as err:
        run(config, checkpoint_dir=tmp_path)
    assert "Last good checkpoint" in str(err.value)


class Boobytrap:
    """Unpickling this would create a file: a stand-in for arbitrary code in a checkpoint."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_checkpoint_with_code_is_refused_without_running_it(tmp_path):
    config = Config(profile="smoke", epochs=1, progress=False).resolve()
    from metakit.experiments import config_key
    trap = tmp_path / "executed"
    torch.save({"format": 1, "net": Boobytrap(trap)}, tmp_path / f"ce-{config_key(config)}.pt")
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        run(config, checkpoint_dir=tmp_path, resume=True)
    assert not trap.exists()


class Stop(Exception):
    """Raised from a checkpoint listener: an in-process stand-in for a killed run."""


def test_frozen_mlrsnet_schedule_resumes_exactly(tmp_path):
    """A run driven by saved LR-net snapshots (frozen StagedSchedule: a switch each epoch, LSTM state mid-run)
    resumes bit-exactly."""
    source = run(Config(method="mlrsnet", profile="smoke", epochs=1, progress=False, device="cpu"))
    from metakit.learners.lr_net import save_schedule
    schedule_file = str(save_schedule(source.learner, tmp_path / "lr.pt", config=source.config))
    config = Config(method="mlrsnet", profile="smoke", epochs=3, seed=2, progress=False, device="cpu",
                    options={"schedule_file": schedule_file})
    from metakit.experiments.checkpoint import on_checkpoint

    def stop_after_first(path, state):
        raise Stop

    with pytest.raises(Stop), on_checkpoint(stop_after_first):
        run(config, checkpoint_dir=tmp_path / "ck")
    resumed = run(config, checkpoint_dir=tmp_path / "ck", resume=True)
    fresh = run(config)
    columns = [c for c in fresh.history.columns if c != "seconds"]
    pd.testing.assert_frame_equal(resumed.history[columns], fresh.history[columns])
    assert resumed.method.trace == fresh.method.trace and len(fresh.method.trace) > 0
