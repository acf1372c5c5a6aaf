"""`torchrun --nproc_per_node 2` (gloo, CPU): ranks stay identical, the loss falls, one writer."""
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

RANK_SCRIPT = textwrap.dedent("""
    import sys, torch
    from metakit.distributed import rank, world_size
    from metakit.experiments import Config, run
    out, method = sys.argv[1], sys.argv[2]
    r = run(Config(method=method, imbalance=5, profile="smoke", epochs=4, seed=0, device="cpu", progress=False),
            checkpoint_dir=out + "/ckpt")
    assert world_size() == 2
    state = {"params": torch.cat([p.detach().flatten() for p in r.net.parameters()]),
             "buffers": torch.cat([b.detach().float().flatten() for b in r.net.buffers()]),
             "meta": torch.cat([p.detach().flatten() for p in (r.learner.parameters() if r.learner else [])]
                               or [torch.zeros(0)]),
             "loss": torch.tensor(r.history["train_loss"].tolist())}
    torch.save(state, f"{out}/rank{rank()}.pt")
""")

METHODS = ["ce", "mwnet", "mlrsnet", "mfm"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_two_ranks_stay_identical_and_learn(tmp_path, method):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(script), str(tmp_path), method]
    proc = subprocess.run(cmd, capture_output=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(a["params"], b["params"]) and torch.equal(a["meta"], b["meta"])
    assert torch.allclose(a["buffers"], b["buffers"])
    assert a["loss"][-1] < a["loss"][0]
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 1
