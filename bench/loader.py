"""Throughput of metakit's device-resident `Batches` vs torchvision's `DataLoader`, side by side.

    PYTHONPATH=. python bench/loader.py                     # 50,000 CIFAR-shaped images, batch 128
    PYTHONPATH=. python bench/loader.py --n 10000 --workers 0,2 --rounds 3

`measure` returns the rates; `bench/compare.py` records them in results/bench_cpu.csv (``work=data``).

Every side produces the same thing, one epoch of normalised, randomly cropped (pad 4) and flipped
32x32 batches on the same device, from the same random uint8 images:

- metakit: `Batches(..., augment="crop_flip")`, whole-batch tensor ops (no per-sample Python);
- torchvision (``pil``): a `torchvision.datasets.CIFAR10`-style dataset (PIL image per sample) with
  ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize``,
  batched by `torch.utils.data.DataLoader`, then moved to the device;
- torch (``tensor``): a DataLoader over the same uint8 tensor (C, H, W) per sample with
  torchvision's v2 transforms on tensors (no PIL): the fairest DataLoader over the same tensors.

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
from torchvision.transforms import v2
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


class TensorImages(torch.utils.data.Dataset):
    """The same images as one uint8 tensor (N, C, H, W): a v2 transform per sample, no PIL."""

    def __init__(self, x: torch.Tensor, targets: list[int], transform):
        self.x, self.targets, self.transform = x, targets, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.transform(self.x[index]), self.targets[index]


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


def measure(n: int = 50_000, batch_size: int = 128, workers: list[int] = (0, 2), rounds: int = 3, seed: int = 0,
            dev: torch.device | None = None) -> dict[str, float]:
    """Images per second (median of interleaved epochs): ``metakit``, then ``dataloader_{pil,tensor}_w{k}``."""
    dev = pick_device() if dev is None else dev
    rng = np.random.default_rng(seed)
    hwc = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)                    # (N, H, W, C)
    labels = rng.integers(0, 10, n)
    x = torch.from_numpy(hwc).permute(0, 3, 1, 2).contiguous()                      # (N, C, H, W)
    mean, std = channel_stats(x)
    batches = Batches(x, labels, batch_size, dev, mean, std, augment="crop_flip", seed=seed)
    pil = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                              transforms.ToTensor(), transforms.Normalize(mean, std)])
    tensor = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                         v2.Normalize(mean, std)])
    datasets = {"pil": ArrayCifar(hwc, labels.tolist(), pil), "tensor": TensorImages(x, labels.tolist(), tensor)}
    loaders = {f"dataloader_{kind}_w{w}": DataLoader(ds, batch_size, shuffle=True, num_workers=w,
                                                    pin_memory=dev.type == "cuda", persistent_workers=w > 0)
               for kind, ds in datasets.items() for w in workers}
    next(iter(batches))                                                             # warm-up
    for loader in loaders.values():
        next(iter(loader))
    results: dict[str, list[float]] = {"metakit": [], **{name: [] for name in loaders}}
    for _ in range(rounds):
        results["metakit"].append(time_batches(batches, dev))
        for name, loader in loaders.items():
            results[name].append(time_loader(loader, dev))
    return {name: statistics.median(rates) for name, rates in results.items()}


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
    rates = measure(args.n, args.batch_size, workers, args.rounds, args.seed, dev)
    print(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, n={args.n}, "
          f"batch {args.batch_size}, median of {args.rounds} interleaved epochs (seed {args.seed})")
    ours = rates.pop("metakit")
    print(f"  metakit Batches (crop_flip, on {dev}):       {ours:>12,.0f} images/s")
    for name, theirs in rates.items():
        print(f"  {name:38s} {theirs:>12,.0f} images/s   ratio {ours / theirs:5.1f}x")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if dev.type == "cpu" and torch.get_num_threads() > 1 and load > cores:
        print(f"note: the CPU is busy (load {load:.1f} on {cores} cores); torch's {torch.get_num_threads()} "
              f"intra-op threads then wait on each other. Compare with --threads 1.")


if __name__ == "__main__":
    main()
