"""ms/step and peak memory of plain, MW-Net, MFM and MLR-SNet steps on one GPU, and one paper-profile epoch.

Run by ``bench/gpu.sh`` (which caps it at 8 minutes). Two parts:

1. steps: ResNet-32, batch 128 (+ 128 meta), fp32 and bf16, ``--steps`` timed steps after
   ``--warmup``; the median ms/step, its ratio to the plain step of the same dtype, and the peak
   memory of one step (CUDA: ``max_memory_allocated`` above the start; CPU: RSS high-water mark).
   bf16 = ``torch.autocast`` for the plain step and ``MetaStep(amp=True)``, which autocasts only the
   real step's own forward: every pass the hypergradient differentiates stays fp32 (by design), so
   where the real step reuses the meta-step's forward (MW-Net's JVP rule, MLR-SNet's lr rule at
   meta_every 1) bf16 changes nothing.
2. epoch: one epoch of CIFAR-10-LT (IF 100: 12,406 training images, batch 100 as in MW-Net's
   recipe, crop/flip on device, a 100-image meta set) per method in fp32; real CIFAR-10 when
   ``$METAKIT_DATA/cifar-10-batches-py`` verifies, else random uint8 tensors of the same shape.

The works and learners are those of `bench/compare.py` (`bench.peers.common`). Smoke mode on a CPU:

    PYTHONPATH=. python bench/gpu.py --device cpu --steps 2 --warmup 1 --batch 8 --epoch-images 16 --epoch-batch 8
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench.peers.common import Setup, make_data, make_pair, meta_optimizer, real_optimizer
from bench.peers.libraries import Metakit, Plain
from bench.peers.measure import peak_mib
from metakit.data.batches import Batches
from metakit.data.longtail import longtail_counts
from metakit.data.source import default_root
from metakit.data.sources import channel_stats
from metakit.meta import MetaStep

METHODS = {"plain": None, "MW-Net": "weight", "MFM": "forward", "MLR-SNet": "lr"}


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def entry(method: str, setup: Setup, data: dict, amp: bool):
    work = METHODS[method]
    return Plain("weight", setup, data, amp=amp) if work is None else Metakit(work, setup, data, amp=amp)


def time_steps(method: str, setup: Setup, data: dict, amp: bool, warmup: int, steps: int) -> tuple[float, float]:
    """(median ms/step, peak MiB of one step)."""
    dev = torch.device(setup.device)
    e = entry(method, setup, data, amp)
    for _ in range(warmup):
        e.step()
    times = []
    for _ in range(steps):
        sync(dev)
        start = time.perf_counter()
        e.step()
        sync(dev)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), peak_mib(e.step, repeats=1, device=dev)


def cifar10_lt(n_images: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray, str]:
    """CIFAR-10-LT IF 100 training images (uint8, the first ``n_images`` if > 0) and a 10-a-class meta
    set taken out first (MW-Net's convention); random tensors of the same shape when CIFAR is absent."""
    counts = longtail_counts(5000, 10, 100)                                    # 5000, 2997, ..., 50
    rng = np.random.default_rng(seed)
    try:
        from metakit.data.cifar import load_cifar
        source = load_cifar("cifar10", default_root())
        x_all, y_all, origin = source.train_x, np.asarray(source.train_y), "CIFAR-10"
    except (FileNotFoundError, OSError, ValueError):
        x_all, y_all, origin = None, np.repeat(np.arange(10), [10 + n for n in counts]), "synthetic (CIFAR-10 absent)"
    meta_idx, train_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y_all == c))
        meta_idx += list(idx[:10])
        train_idx += list(idx[10:10 + counts[c]])
    train_idx = rng.permutation(train_idx)[:n_images or None]
    meta_idx = np.array(meta_idx)
    if x_all is None:                                                          # only the images we index
        x_all = torch.zeros(len(y_all), 3, 32, 32, dtype=torch.uint8)
        used = np.concatenate([train_idx, meta_idx])
        x_all[used] = torch.from_numpy(rng.integers(0, 256, (len(used), 3, 32, 32), dtype=np.uint8))
    return x_all[train_idx], y_all[train_idx], x_all[meta_idx], y_all[meta_idx], origin


def one_epoch(method: str, setup: Setup, images: int) -> tuple[float, int, str]:
    """Seconds for one epoch of ``method`` over CIFAR-10-LT, its iterations, and the data's origin."""
    dev = torch.device(setup.device)
    x, y, xm, ym, origin = cifar10_lt(images, setup.seed)
    mean, std = channel_stats(x)
    train = Batches(x, y, setup.batch, dev, mean, std, augment="crop_flip", seed=setup.seed)
    meta = Batches(xm, ym, min(setup.meta_batch, len(ym)), dev, mean, std, augment="crop_flip", seed=setup.seed + 1)
    work = METHODS[method]
    net, learner = make_pair(work or "weight", setup)
    opt = real_optimizer(net, learner, setup)
    step = None if work is None else MetaStep(net, learner, opt, meta_optimizer(learner, setup),
                                              weight_decay=setup.weight_decay)
    meta_iter, iterations = iter(meta), 0
    sync(dev)
    start = time.perf_counter()
    for batch in train:
        if step is None:
            loss = F.cross_entropy(net(batch.x), batch.y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            try:
                m = next(meta_iter)
            except StopIteration:
                meta_iter = iter(meta)
                m = next(meta_iter)
            step((batch.x, batch.y), (m.x, m.y))
        iterations += 1
    sync(dev)
    return time.perf_counter() - start, iterations, origin


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu for the smoke mode")
    p.add_argument("--steps", type=int, default=30, help="timed steps per entry")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=128, help="batch of the step table (the epoch uses 100)")
    p.add_argument("--epoch-images", type=int, default=0, help="cap the epoch's images (0: all 12,406)")
    p.add_argument("--epoch-batch", type=int, default=100, help="the epoch's batch (MW-Net's recipe: 100)")
    p.add_argument("--dtypes", default="fp32,bf16")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available; use --device cpu for the smoke mode.")
    dev = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), torch "
          f"{torch.__version__}, ResNet-32, batch {args.batch} + {args.batch} meta, {args.steps} steps "
          f"after {args.warmup}")
    setup = Setup(batch=args.batch, meta_batch=args.batch, device=args.device)
    data = make_data(setup)
    print(f"{'method':10s} {'dtype':5s} {'ms/step':>9s} {'x plain':>8s} {'peak MiB':>9s}")
    for dtype in args.dtypes.split(","):
        plain_ms = None
        for method in METHODS:
            ms, mib = time_steps(method, setup, data, dtype == "bf16", args.warmup, args.steps)
            plain_ms = ms if plain_ms is None else plain_ms
            print(f"{method:10s} {dtype:5s} {ms:9.2f} {ms / plain_ms:8.2f} {mib:9.1f}", flush=True)
    epoch_setup = Setup(batch=args.epoch_batch, meta_batch=args.epoch_batch, device=args.device)
    for method in METHODS:
        seconds, iterations, origin = one_epoch(method, epoch_setup, args.epoch_images)
        print(f"epoch {method:10s} fp32 {seconds:8.2f} s, {iterations} iterations of batch {args.epoch_batch} "
              f"({origin}); 100 epochs ≈ {100 * seconds / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
