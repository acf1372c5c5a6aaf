"""One run on several processes/GPUs under ``torchrun``, without DistributedDataParallel.

DDP's reducer cannot follow the meta-step's ``torch.autograd.grad`` calls, so metakit uses plain
collectives. Every rank holds the same model, meta-learner and batch order (same seeds) and
trains on its own slice ``rank::world`` of every global batch (`shard_batches`); an optimiser
pre-step hook averages the gradients across ranks before every step, the real step's and the
meta-learner's (`average_gradients_before_step`), so θ and φ stay identical everywhere.
BatchNorm normalises with each rank's local batch, and the running statistics are averaged after
every epoch (`sync_buffers`); only rank 0 writes files (`is_main`). Each rank's virtual step uses
its own shard's gradient: the meta-gradient is the mean of per-shard look-ahead hypergradients.

Launch: ``torchrun --nproc_per_node 2 -m metakit run --method mwnet ...`` (gloo on CPU,
nccl on GPUs; ``LOCAL_RANK`` picks the GPU).
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    """Number of processes of this run (1 without ``torchrun``).

    Example:
        >>> world_size() >= 1
        True
    """
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without ``torchrun``).

    Example:
        >>> rank()
        0
    """
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that writes files (rank 0).

    Example:
        >>> is_main()
        True
    """
    return rank() == 0


def init_from_env() -> bool:
    """Join the process group that ``torchrun`` describes in the environment, once.

    Returns:
        True when running with more than one process.

    Example:
        >>> init_from_env()  # not under torchrun
        False
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return world_size() > 1


def local_device_name() -> str | None:
    """``cuda:LOCAL_RANK`` under torchrun on GPUs, else None (let `metakit.device` choose)."""
    if world_size() > 1 and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return None


def _average(tensors: list[torch.Tensor]) -> None:
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over all ranks (itself with one process); not differentiable.

    Use it for anything that decides a shared quantity, e.g. the loss an LR net reads.

    Example:
        >>> mean_over_ranks(torch.tensor(2.0)).item()
        2.0
    """
    if world_size() == 1:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def average_gradients_before_step(optimizer: torch.optim.Optimizer) -> None:
    """Average the gradients of ``optimizer``'s parameters across ranks before each of its steps.

    A parameter without a gradient on some rank is treated as a zero gradient there, so the
    collective stays in step on every rank.
    """
    def hook(opt, args, kwargs):
        params = [p for group in opt.param_groups for p in group["params"]]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        _average([p.grad for p in params])

    optimizer.register_step_pre_hook(hook)


@torch.no_grad()
def sync_buffers(net: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) across ranks."""
    _average([b for b in net.buffers() if b.is_floating_point()])


class ShardedBatches:
    """Each rank's slice ``rank::world`` of every global batch of a `Batches`."""

    def __init__(self, batches):
        self.batches = batches

    def __getattr__(self, name):
        return getattr(self.batches, name)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        r, w = rank(), world_size()
        for batch in self.batches:
            yield type(batch)(batch.x[r::w], batch.y[r::w], batch.index[r::w])


def shard_batches(batches):
    """Wrap training batches so each rank trains on its own slice (identity with one process).

    Example:
        >>> shard_batches([1, 2]) == [1, 2]
        True
    """
    return ShardedBatches(batches) if world_size() > 1 else batches
