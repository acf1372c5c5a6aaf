"""What one meta-step costs next to a plain SGD step: ResNet-32, batch 100, meta batch 100.

Times, side by side in one run (round-robin, after warm-up; medians), on the CPU and on CUDA
when available:

- a plain SGD step (forward, backward, step);
- metakit's `MetaStep` per entry: φ in the step size (lr rule), φ in per-sample weights
  (Meta-Weight-Net, JVP rule), φ in the forward pass (per-stage feature scale and shift,
  general rule), and the general rule forced for the lr and loss entries;
- the same Meta-Weight-Net step written with the `higher` library and in Meta-Weight-Net's
  own copy-the-model style (a fresh model loaded with the weights, double backward);
- peak extra memory of each (CPU: resident-set high-water mark above the start, after
  ``malloc_trim``; approximate. CUDA: ``max_memory_allocated`` above the start);
- the amortised cost with ``meta_every=k`` (k = 1, 10, 300): (meta-step + (k−1) real-only
  steps) / (k plain steps).

Ratios: each round's time over the same round's plain step, median over rounds (robust to a
machine whose load drifts), and the fastest over the fastest plain step ("min/min").

Run: ``PYTHONPATH=. python bench/meta_step.py [--repeats 7] [--threads 1]``. On a shared CPU
use one thread: two threads on two busy cores stall on each other.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import statistics

import higher
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from bench.peers.measure import round_robin
from metakit.meta import MetaLearner, MetaStep
from metakit.learners import WeightNet
from metakit.models import build_model


class LossLR(MetaLearner):
    """φ in the step size: α = base·2σ(MLP(log ℓ)), a stand-in for MLR-SNet's LSTM."""
    enters = "lr"

    def __init__(self, hidden: int = 50):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def inner_lr(self, loss, base_lr):
        return base_lr * 2 * torch.sigmoid(self.mlp(loss.log().view(1, 1))).squeeze()


class StageAffine(MetaLearner):
    """φ in the forward pass: per-channel scale and shift after each ResNet stage (MFM-like)."""
    enters = "forward"

    def __init__(self, channels=(16, 32, 64)):
        super().__init__()
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(c)) for c in channels])
        self.shifts = nn.ParameterList([nn.Parameter(torch.zeros(c)) for c in channels])

    def attach(self, net: nn.Module) -> None:
        for i, name in enumerate(net.stage_names):
            getattr(net, name).register_forward_hook(
                lambda m, inp, out, i=i: out * self.scales[i].view(1, -1, 1, 1) + self.shifts[i].view(1, -1, 1, 1))
        net.meta_affine = self                                        # φ lives inside the net


def sgd(params, lr=0.1):
    return torch.optim.SGD(params, lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


def plain_variant(base, data):
    net = copy.deepcopy(base)
    opt = sgd(net.parameters())

    def step():
        loss = F.cross_entropy(net(data["x"]), data["y"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def metakit_variant(base, data, learner, rule="auto", meta=True, first_order=False):
    net, learner = copy.deepcopy(base), learner.to(data["x"].device)
    if isinstance(learner, StageAffine):
        learner.attach(net)
    params = [p for p in net.parameters() if all(p is not q for q in learner.parameters())]
    step = MetaStep(net, learner, sgd(params), torch.optim.Adam(learner.parameters(), 1e-3, weight_decay=1e-4),
                    weight_decay=5e-4, rule=rule, first_order=first_order)
    meta_batch = (data["xm"], data["ym"]) if meta else None
    return lambda: step((data["x"], data["y"]), meta_batch)


def higher_variant(base, data):
    """Meta-Weight-Net's step with `higher`: unrolled differentiable SGD, then a real step."""
    net, weight_net = copy.deepcopy(base), WeightNet().to(data["x"].device)
    opt, meta_opt = sgd(net.parameters()), torch.optim.Adam(weight_net.parameters(), 1e-3, weight_decay=1e-4)
    inner = torch.optim.SGD(net.parameters(), 0.1, weight_decay=5e-4)

    def step():
        with higher.innerloop_ctx(net, inner, copy_initial_weights=False) as (fnet, diffopt):
            per_sample = F.cross_entropy(fnet(data["x"]), data["y"], reduction="none")
            diffopt.step((weight_net.weights(per_sample.detach()) * per_sample).sum())
            meta_loss = F.cross_entropy(fnet(data["xm"]), data["ym"])
            meta_opt.zero_grad(set_to_none=True)
            grads = torch.autograd.grad(meta_loss, list(weight_net.parameters()))
        for p, g in zip(weight_net.parameters(), grads):
            p.grad = g
        meta_opt.step()
        real_step(net, weight_net, opt, data)
    return step


def copy_style_variant(base, data):
    """Meta-Weight-Net's own code: build a model, load the weights, double backward, real step."""
    net, weight_net = copy.deepcopy(base), WeightNet().to(data["x"].device)
    opt, meta_opt = sgd(net.parameters()), torch.optim.Adam(weight_net.parameters(), 1e-3, weight_decay=1e-4)

    def step():
        meta_net = build_model("resnet32", 10).to(data["x"].device)
        meta_net.load_state_dict(net.state_dict())
        per_sample = F.cross_entropy(meta_net(data["x"]), data["y"], reduction="none")
        loss = (weight_net.weights(per_sample.detach()) * per_sample).sum()
        params = dict(meta_net.named_parameters())
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        virtual = {n: p - 0.1 * (g + 5e-4 * p) for (n, p), g in zip(params.items(), grads)}
        meta_loss = F.cross_entropy(functional_call(meta_net, virtual, (data["xm"],)), data["ym"])
        meta_opt.zero_grad(set_to_none=True)
        meta_loss.backward(inputs=list(weight_net.parameters()))
        meta_opt.step()
        real_step(net, weight_net, opt, data)
    return step


def real_step(net, weight_net, opt, data):
    per_sample = F.cross_entropy(net(data["x"]), data["y"], reduction="none")
    with torch.no_grad():
        weights = weight_net.weights(per_sample)
    opt.zero_grad(set_to_none=True)
    (weights * per_sample).sum().backward()
    opt.step()


def variants(base, data):
    """name → (one iteration, the name of its real-only counterpart for meta_every > 1)."""
    return {
        "plain SGD step": (plain_variant(base, data), None),
        "lr entry, lr rule": (metakit_variant(base, data, LossLR()), "lr entry, real step only"),
        "lr entry, general rule": (metakit_variant(base, data, LossLR(), "general"), "lr entry, real step only"),
        "loss entry (MW-Net), JVP rule": (metakit_variant(base, data, WeightNet()), "loss entry, real step only"),
        "loss entry (MW-Net), general rule": (metakit_variant(base, data, WeightNet(), "general"),
                                              "loss entry, real step only"),
        "forward entry, general rule": (metakit_variant(base, data, StageAffine()), "forward entry, real step only"),
        "forward entry, first order": (metakit_variant(base, data, StageAffine(), first_order=True),
                                       "forward entry, real step only"),
        "MW-Net with higher": (higher_variant(base, data), None),
        "MW-Net copy-the-model style": (copy_style_variant(base, data), None),
        "lr entry, real step only": (metakit_variant(base, data, LossLR(), meta=False), None),
        "loss entry, real step only": (metakit_variant(base, data, WeightNet(), meta=False), None),
        "forward entry, real step only": (metakit_variant(base, data, StageAffine(), meta=False), None),
    }


def _rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def peak_memory_mib(fn, device):
    """Extra peak memory of one call of ``fn`` above the memory in use before it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - start) / 2**20
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:     # reset the RSS high-water mark (Linux)
        f.write("5")
    start = _rss_kib("VmRSS:")
    fn()
    return (_rss_kib("VmHWM:") - start) / 1024


def bench(device, warmup, repeats):
    torch.manual_seed(0)
    base = build_model("resnet32", 10).to(device)
    data = {"x": torch.randn(100, 3, 32, 32, device=device), "y": torch.randint(0, 10, (100,), device=device),
            "xm": torch.randn(100, 3, 32, 32, device=device), "ym": torch.randint(0, 10, (100,), device=device)}
    table = variants(base, data)
    times = round_robin({n: fn for n, (fn, _) in table.items()}, warmup, repeats, device)
    memory = {n: peak_memory_mib(fn, device) for n, (fn, _) in table.items()}
    plain = times["plain SGD step"]
    # ratio to the plain step of the same round (drift-robust), median over rounds; and min/min
    paired = {n: statistics.median(a / b for a, b in zip(t, plain)) for n, t in times.items()}
    fastest = {n: min(t) / min(plain) for n, t in times.items()}
    print(f"\n== {device} (threads={torch.get_num_threads()}, {repeats} rounds after {warmup} warm-up) ==")
    print(f"{'variant':38s} {'min ms':>8s} {'x plain':>8s} {'min/min':>8s} {'peak MiB':>9s} {'k=10':>6s} {'k=300':>6s}")
    for name, (_, only) in table.items():
        amort = ["" if only is None else f"{(paired[name] + (k - 1) * paired[only]) / k:6.2f}" for k in (10, 300)]
        print(f"{name:38s} {1e3 * min(times[name]):8.1f} {paired[name]:8.2f} {fastest[name]:8.2f} "
              f"{memory[name]:9.1f} {amort[0]:>6s} {amort[1]:>6s}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (1 on a shared machine)")
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    for device in devices:
        bench(device, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
