"""Throughput of metakit's device-resident `Batches` vs torchvision's `DataLoader`, side by side.

    PYTHONPATH=. python bench/loader.py                     # 50,000 CIFAR-shaped images, batch 128
    PYTHONPATH=. python bench/loader.py --n 10000 --workers 0,2 --rounds 3

Both sides produce the same thing, one epoch of normalised, randomly cropped (pad 4) and flipped
32x32 batches on the same device, from the same random uint8 images:

- metakit: `Batches(..., augment="crop_flip")`, whole-batch tensor ops (no per-sample Python);
- torchvision: a `torchvision.datasets.CIFAR10`-style dataset (PIL image per sample) with
  ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize``,
  batched by `torch.utils.data.DataLoader`, then moved to the device.

On a shared, busy CPU torch's intra-op threads wait on each other and whole-batch ops slow
down many times over; ``--threads 1`` measures both sides on one core for the compute (the
DataLoader's per-sample work is single-threaded anyway; its workers are extra processes).
The rounds are interleaved (metakit, then each DataLoader) so a busy machine slows all of them
alike; the median of the rounds is printed, with the ratio metakit / DataLoader.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import VisionDataset

from metakit import device as pick_device
from metakit.data.batches import Batches
from metakit.data.sources import channel_stats


class ArrayCifar(VisionDataset):
    """CIFAR10's ``__getitem__`` over in-memory (N, 32, 32, 3) uint8 images: PIL image, then transforms."""

    def __init__(self, data: np.ndarray, targets: list[int], transform):
        super().__init__(root="", transform=transform)
        self.data, self.targets = data, targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_batches(batches: Batches, dev: torch.device) -> float:
    """Images per second over one epoch of metakit batches."""
    start, seen = time.perf_counter(), 0
    for batch in batches:
        seen += len(batch.y)
    _sync(dev)
    return seen / (time.perf_counter() - start)


def time_loader(loader: DataLoader, dev: torch.device) -> float:
    """Images per second over one epoch of DataLoader batches moved to ``dev``."""
    start, seen = time.perf_counter(), 0
    for x, y in loader:
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)    # (B, 3, 32, 32), (B,)
        seen += len(y)
    _sync(dev)
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="images in the pool (default: 50000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", default="0,2", help="DataLoader num_workers to compare, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is printed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); 1 helps on a busy CPU")
    args = parser.parse_args(argv)
    for flag, value in (("--n", args.n), ("--batch-size", args.batch_size), ("--rounds", args.rounds)):
        if value < 1:
            parser.error(f"argument {flag}: {value} must be >= 1.")
    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"argument --workers: {args.workers!r} must be comma-separated integers, e.g. 0,2.")

    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"argument --threads: {args.threads} must be >= 1.")
        torch.set_num_threads(args.threads)
    dev = pick_device()
    rng = np.random.default_rng(args.seed)
    hwc = rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)               # (N, H, W, C)
    labels = rng.integers(0, 10, args.n)
    x = torch.from_numpy(hwc).permute(0, 3, 1, 2).contiguous()                      # (N, C, H, W)
    mean, std = channel_stats(x)
    batches = Batches(x, labels, args.batch_size, dev, mean, std, augment="crop_flip", seed=args.seed)
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(mean, std)])
    dataset = ArrayCifar(hwc, labels.tolist(), tf)
    loaders = {w: DataLoader(dataset, args.batch_size, shuffle=True, num_workers=w, pin_memory=dev.type == "cuda",
                             persistent_workers=w > 0) for w in workers}
    next(iter(batches))                                                             # warm-up
    for loader in loaders.values():
        next(iter(loader))

    results: dict[str, list[float]] = {"metakit": [], **{f"w{w}": [] for w in workers}}
    for _ in range(args.rounds):
        results["metakit"].append(time_batches(batches, dev))
        for w, loader in loaders.items():
            results[f"w{w}"].append(time_loader(loader, dev))

    print(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, n={args.n}, "
          f"batch {args.batch_size}, median of {args.rounds} interleaved epochs (seed {args.seed})")
    ours = statistics.median(results["metakit"])
    print(f"  metakit Batches (crop_flip, on {dev}):      {ours:>12,.0f} images/s")
    for w in workers:
        theirs = statistics.median(results[f"w{w}"])
        print(f"  torchvision DataLoader, num_workers={w}:    {theirs:>12,.0f} images/s   "
              f"ratio {ours / theirs:5.1f}x")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if dev.type == "cpu" and torch.get_num_threads() > 1 and load > cores:
        print(f"note: the CPU is busy (load {load:.1f} on {cores} cores); torch's {torch.get_num_threads()} "
              f"intra-op threads then wait on each other. Compare with --threads 1.")


if __name__ == "__main__":
    main()
