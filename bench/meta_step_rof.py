"""Reverse over forward ("rof") vs the double backward ("general") for φ in the forward pass (MFM).

Two parts, one run:

- ``agreement`` (float64): the hypergradient along random directions of φ from the double
  backward, the rof rule, and the rof rule on PyTorch's fused normalisation kernels (the old,
  wrong variant), each against a central difference of the look-ahead meta loss
  L_meta(θ'(φ); φ) computed from scratch. Nets: ResNet-32 with γ/β after every block
  (`metakit.learners.modulation.attach`), ResNet-32 with γ/β after every stage and on fc, and a
  small conv-BN net with γ/β upstream of its BatchNorm; meta forward in train and eval mode;
  weight decay in the virtual step, SGD momentum in the real optimiser.
- ``speed`` (float32, one thread): round-robin, after warm-up, the full `MetaStep` call and the
  hypergradient phase alone for each rule; median of the per-round ratio rof / general; peak
  extra resident memory of one hypergradient (CPU, approximate: after ``malloc_trim``).

Run: ``PYTHONPATH=. python bench/meta_step_rof.py [--batch 100] [--repeats 10] [--fd-batch 8]``.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.learners.modulation import attach
from metakit.meta import MetaStep, cloned_buffers, theta
from metakit.meta.rules import general_rule, rof_rule
from metakit.models import build_model

RULES = {"general": general_rule, "rof": rof_rule,
         "rof, fused norms": lambda step, t, m: rof_rule(step, t, m, exact_norms=False)}


class SmallConvBN(nn.Module):
    """conv → conv → BatchNorm → ReLU → pool → linear; γ/β attach after conv1 (upstream of the BN)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn, self.fc = nn.BatchNorm2d(8), nn.Linear(8, classes)

    def forward(self, x):
        out = F.relu(self.bn(self.conv2(self.conv1(x))))                          # (B, 8, H, W)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))                  # (B, classes)


def setup(name: str, batch: int, dtype: torch.dtype, meta_mode: str = "train", seed: int = 0):
    """A net with MFM modulation (φ moved off the identity), its MetaStep and a train/meta batch pair."""
    torch.manual_seed(seed)
    if name == "small conv-BN":
        net, where = SmallConvBN(), ["conv1"]
    else:
        net, where = build_model("resnet32", 10), ("blocks" if name == "resnet32 blocks" else "stages+fc")
    net = net.to(dtype)
    modulation = attach(net, where)
    with torch.no_grad():
        for p in modulation.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for _ in range(3):                                    # running statistics away from (0, 1)
            net(torch.randn(batch, 3, 32, 32, dtype=dtype))
    optimizer = torch.optim.SGD(theta(net, modulation).values(), 0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    step = MetaStep(net, modulation, optimizer, torch.optim.Adam(modulation.parameters(), 1e-3),
                    weight_decay=5e-4, meta_mode=meta_mode)
    batches = [(torch.randn(batch, 3, 32, 32, dtype=dtype), torch.randint(0, 10, (batch,))) for _ in range(2)]
    return step, batches


def look_ahead_loss(step: MetaStep, train_batch, meta_batch) -> float:
    """L_meta(θ'(φ); φ) from scratch, independent of the rules."""
    (x, y), (xm, ym) = train_batch, meta_batch
    params = theta(step.net, step.learner)
    loss = F.cross_entropy(functional_call(step.net, {**params, **cloned_buffers(step.net)}, (x,)), y)
    grads = torch.autograd.grad(loss, list(params.values()))
    virtual = {n: p - step.base_lr * (g + step.weight_decay * p) for (n, p), g in zip(params.items(), grads)}
    meta_net = copy.deepcopy(step.net).train(step.meta_mode == "train")
    return F.cross_entropy(functional_call(meta_net, {**virtual, **cloned_buffers(step.net)}, (xm,)), ym).item()


def central_difference(step: MetaStep, batches, direction, eps: float) -> float:
    def shift(scale):
        with torch.no_grad():
            for p, r in zip(step.meta_params, direction):
                p.add_(scale * r)
    shift(eps)
    plus = look_ahead_loss(step, *batches)
    shift(-2 * eps)
    minus = look_ahead_loss(step, *batches)
    shift(eps)
    return (plus - minus) / (2 * eps)


def agreement(fd_batch: int, eps_list: list[float], directions: int) -> None:
    print(f"== agreement, float64, batch {fd_batch} (train and meta), central differences along random φ directions")
    print(f"{'net':18s} {'meta':5s} {'dir':>3s} {'eps':>7s} {'fd':>12s} " + " ".join(f"{r:>17s}" for r in RULES))
    for name in ("small conv-BN", "resnet32 blocks", "resnet32 stages+fc"):
        for meta_mode in ("train", "eval"):
            step, batches = setup(name, fd_batch, torch.float64, meta_mode)
            grads = {r: fn(step, *batches).grads for r, fn in RULES.items()}
            for k in range(directions):
                gen = torch.Generator().manual_seed(k)
                direction = [torch.randn(p.shape, dtype=p.dtype, generator=gen) for p in step.meta_params]
                along = {r: sum((g * d).sum() for g, d in zip(gs, direction)).item() for r, gs in grads.items()}
                for eps in eps_list:
                    fd = central_difference(step, batches, direction, eps)
                    errs = " ".join(f"{abs(a - fd) / abs(fd):17.2e}" for a in along.values())
                    print(f"{name:18s} {meta_mode:5s} {k:3d} {eps:7.0e} {fd:12.6f} {errs}")
            flat = {r: torch.cat([g.flatten() for g in gs]) for r, gs in grads.items()}
            ref = flat["general"]
            print(f"{'':18s} {meta_mode:5s} full vector, rel. to general: "
                  + ", ".join(f"{r} {((v - ref).norm() / ref.norm()).item():.2e}" for r, v in flat.items()))


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def peak_extra_mib(fn) -> float:
    """Resident-set high-water mark of one call of ``fn`` above the memory in use before it (Linux)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    start = _rss_kib("VmRSS:")
    fn()
    return (_rss_kib("VmHWM:") - start) / 1024


def speed(batch: int, warmup: int, repeats: int) -> None:
    print(f"\n== speed, float32, ResNet-32 γ/β after every block, batch {batch} (meta batch {batch}), "
          f"{torch.get_num_threads()} thread(s), {repeats} rounds after {warmup} warm-up")
    step, (train_batch, meta_batch) = setup("resnet32 blocks", batch, torch.float32)
    runs = {}
    for rule in ("general", "rof"):
        s = copy.copy(step)
        s.rule = rule
        runs[f"MetaStep call, {rule}"] = lambda s=s: s(train_batch, meta_batch)
    for rule, fn in RULES.items():
        runs[f"hypergradient only, {rule}"] = lambda fn=fn: fn(step, train_batch, meta_batch)
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    memory = {name: peak_extra_mib(fn) for name, fn in runs.items() if name.startswith("hypergradient")}
    print(f"{'variant':38s} {'median s':>9s} {'min s':>7s} {'ratio to general (median/round)':>33s} {'peak MiB':>9s}")
    for name, t in times.items():
        ref = times["MetaStep call, general" if name.startswith("MetaStep") else "hypergradient only, general"]
        ratio = statistics.median(a / b for a, b in zip(t, ref))
        mib = f"{memory[name]:9.0f}" if name in memory else ""
        print(f"{name:38s} {statistics.median(t):9.3f} {min(t):7.3f} {ratio:33.3f} {mib:>9s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100, help="speed part: train and meta batch size")
    parser.add_argument("--repeats", type=int, default=10, help="speed part: timed rounds")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--fd-batch", type=int, default=8, help="agreement part: batch size (float64)")
    parser.add_argument("--eps", type=float, nargs="+", default=[1e-7, 1e-8, 1e-9])
    parser.add_argument("--directions", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", choices=("agreement", "speed"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.skip != "agreement":
        agreement(args.fd_batch, args.eps, args.directions)
    if args.skip != "speed":
        speed(args.batch, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
