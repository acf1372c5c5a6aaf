"""bench/gpu.sh's CPU smoke mode runs every row the GPU run prints (its time is mostly importing torch in a
subprocess); the data path's rates come back by name."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_sh_smoke_mode_prints_every_row_on_cpu():
    proc = subprocess.run(["bash", "bench/gpu.sh", "--device", "cpu", "--steps", "1", "--warmup", "0", "--batch", "2",
                           "--epoch-images", "4", "--epoch-batch", "4"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for method in ("plain", "MW-Net", "MFM", "MLR-SNet"):
        for dtype in ("fp32", "bf16"):
            row = re.search(rf"^{re.escape(method)}\s+{dtype}\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)$", out, re.M)
            assert row, (method, dtype, out)
            assert float(row.group(1)) > 0
        epoch = re.search(rf"^epoch {re.escape(method)}\s+fp32\s+([\d.]+) s, 1 iterations of batch 4", out, re.M)
        assert epoch, (method, out)
    assert re.search(r"^plain\s+fp32\s+[\d.]+\s+1\.00\s", out, re.M)            # the ratios' unit
    assert "synthetic (CIFAR-10 absent)" in out or "(CIFAR-10)" in out


def test_loader_measure_returns_every_loader_by_name():
    from bench.loader import measure

    rates = measure(n=256, batch_size=64, workers=[0], rounds=1)
    assert set(rates) == {"metakit", "dataloader_pil_w0", "dataloader_tensor_w0"}
    assert all(r > 0 for r in rates.values())
