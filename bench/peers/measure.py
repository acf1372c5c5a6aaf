"""Timing and peak memory of a step function, shared by `bench/compare.py`.

- Time: round-robin (every entry once a round, after warm-up), so a machine whose load drifts
  slows every entry of a round alike; each round's time is divided by the same round's plain
  step and the median of those ratios is reported.
- Peak memory (CPU): the resident-set high-water mark (``VmHWM``) above the resident set before
  one step, after ``malloc_trim`` and a reset of the mark (``/proc/self/clear_refs``, Linux). It
  sees every tensor the CPU allocator touched (tracemalloc does not see torch's allocations).
  Under glibc's dynamic mmap threshold it also sees freed activations the heap keeps (on
  ResNet-32 a plain step reads 318–370 MiB that way, 235 MiB with the threshold fixed at 64 KiB),
  so `bench/compare.py` runs each entry in a fresh interpreter with ``MALLOC_MMAP_THRESHOLD_``
  fixed (`bench.compare.child_env`): then freed tensors leave the RSS and the mark counts live
  ones. On CUDA: ``max_memory_allocated`` above the start.
"""
from __future__ import annotations

import ctypes
import gc
import statistics
import time
from typing import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def round_robin(steps: dict[str, Callable[[], None]], warmup: int, rounds: int,
                device: torch.device = torch.device("cpu"), progress: Callable[[str], None] | None = None
                ) -> dict[str, list[float]]:
    """Seconds per call of every step, ``rounds`` interleaved rounds after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        for name, fn in steps.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
        if progress is not None:
            progress(f"round {r + 1}/{rounds}: plain {times[next(iter(steps))][-1]:.2f} s")
    return times


def paired_ratio(times: list[float], plain: list[float]) -> float:
    """Median over rounds of (this round's time / this round's plain step)."""
    return statistics.median(a / b for a, b in zip(times, plain))


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def peak_mib(step: Callable[[], None], repeats: int = 2, device: torch.device = torch.device("cpu")) -> float:
    """Largest extra peak memory (MiB) of one call of ``step`` over ``repeats`` calls."""
    peaks = []
    for _ in range(repeats):
        gc.collect()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            start = torch.cuda.memory_allocated(device)
            step()
            torch.cuda.synchronize(device)
            peaks.append((torch.cuda.max_memory_allocated(device) - start) / 2**20)
            continue
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:          # reset the high-water mark
            f.write("5")
        start = _rss_kib("VmRSS:")
        step()
        peaks.append((_rss_kib("VmHWM:") - start) / 1024)
    return max(peaks)
