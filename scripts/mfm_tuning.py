"""MFM vs cross-entropy on digits-LT (laptop profile, imbalance 20): does any faithful MFM setting clearly win?

Usage:  PYTHONPATH=. python scripts/mfm_tuning.py SETTING [SETTING ...] [--seeds 5] [--out runs/]

Each SETTING names a row of `SETTINGS` (method, Config changes, options). Rows are appended to
runs/mfm_tuning.csv; `--table` prints mean ± std per setting and the paired difference to the
cross-entropy run of the same seed and epochs.

Settings named mfm_* without "start" reproduce session 1's MFM meta-learned from the first step
(`FROM_START`); mfm_<where>_start<f>_lr<lr>[_evalbn][_k<n>] set the deferred start's options
(meta_start, meta_mode, meta_steps, now `MFM` options); mfm_default is the method's defaults.

The knobs that are not MFM options live in `MFMProbe` (``mfm_probe``), registered here only:
``meta_schedule="follow"`` scales the meta-Adam LR with the inner LR's schedule (``"inverse"``: by
1 − lr_t/lr_0, so φ moves most once θ has settled), ``virtual_scale`` multiplies the look-ahead's
step size, ``meta_opt="sgd"`` meta-updates by SGD (momentum 0.9) instead of Adam, ``fc_bias=False``
removes fc's bias (a diagnostic: can the real step still undo β at the pooled feature?),
``train_only`` applies the modulation in the training forwards only (a training aid: off in the
meta forward and at test), ``kind="net"`` uses modulator networks.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from metakit.experiments import Config, run
from metakit.meta import MetaStep
from metakit.methods.registry import register
from metakit.methods.mfm import MFM, MFMOptions
from metakit.options import option
from metakit.learners.modulation.attach import FC


class _ProbeStep(MetaStep):
    """A `MetaStep` whose look-ahead takes ``scale`` × the optimiser's LR and, with a ``gate``,
    runs the hypergradient's meta forward (the classifier's second call) without modulation."""

    def __init__(self, *args, scale: float = 1.0, gate: list[bool] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale, self.gate = scale, gate

    def hypergradient(self, train_batch, meta_batch):
        if self.gate is None:
            return super().hypergradient(train_batch, meta_batch)
        # train_only: the hypergradient's second forward (the meta forward) sees the bare classifier;
        # forward hooks on the net count its calls and close the gate around the second one
        calls, gate = [0], self.gate

        def before(module, inputs):
            calls[0] += 1
            gate[0] = calls[0] != 2

        def after(module, inputs, output):
            gate[0] = True

        handles = [self.net.register_forward_pre_hook(before), self.net.register_forward_hook(after)]
        try:
            return super().hypergradient(train_batch, meta_batch)
        finally:
            gate[0] = True
            for handle in handles:
                handle.remove()

    @property
    def base_lr(self) -> float:  # used by the virtual step only (the real step of enters="forward" uses the optimiser's)
        return self.scale * self.optimizer.param_groups[0]["lr"]


@dataclass(frozen=True)
class ProbeOptions(MFMOptions):
    """MFM's options plus the knobs of this study's readings."""

    meta_schedule: str = option("fixed", "how the meta-LR moves", kind=str)
    virtual_scale: float = option(1.0, "the virtual step's LR as a multiple of the real one (0: fit φ to θ directly)", low=0)
    fc_bias: bool = option(True, "keep the head's bias trainable")
    meta_opt: str = option("adam", "the meta-optimiser", choices=("adam", "sgd"))
    train_only: bool = option(False, "modulate the training forwards only (off in eval and in the meta forward)")
    kind: str = option("film", "the modulation kind", choices=("film", "net"))


@register
class MFMProbe(MFM):
    name = "mfm_probe"
    Options = ProbeOptions

    def __init__(self, num_classes, class_counts, config=None, **options):
        super().__init__(num_classes, class_counts, config, **options)
        o = self.options
        self.meta_schedule, self.virtual_scale, self.fc_bias = o.meta_schedule, o.virtual_scale, o.fc_bias
        self.meta_opt, self.train_only, self.kind = o.meta_opt, o.train_only, o.kind

    def prepare(self, net: nn.Module) -> nn.Module:
        if not self.fc_bias:
            nn.init.zeros_(net.fc.bias)
            net.fc.bias.requires_grad_(False)
        net = super().prepare(net)
        if self.train_only:  # modulation in the training forwards only: off in eval mode and in the meta forward
            mod, self.gate = self.modulation, [True]
            for h in mod.handles:
                h.remove()
            mod.handles.clear()
            for name in mod.names:
                layer = mod.layer(name)
                if name == FC:
                    mod.handles.append(net.fc.register_forward_pre_hook(
                        lambda m, i, layer=layer: (layer(i[0]),) if m.training and self.gate[0] else i))
                else:
                    mod.handles.append(net.get_submodule(name).register_forward_hook(
                        lambda m, i, o, layer=layer: layer(o) if m.training and self.gate[0] else o))
        return net

    def setup(self, trainer) -> None:
        super().setup(trainer)
        base = self.meta_step   # MFM's MetaStep, rebuilt with the same settings as a _ProbeStep
        meta_optimizer = base.meta_optimizer
        if self.meta_opt == "sgd":  # moves φ in proportion to the hypergradient (Adam: ~meta_lr per step always)
            meta_optimizer = torch.optim.SGD(self.modulation.parameters(), lr=self.config.meta_lr, momentum=0.9)
        self.meta_step = _ProbeStep(base.net, base.learner, base.optimizer, meta_optimizer,
                                    per_sample_loss=base.per_sample_loss, meta_every=base.meta_every,
                                    weight_decay=base.weight_decay, meta_clip=base.meta_clip,
                                    rule="general" if base.rule == "general" else "auto",
                                    first_order=base.first_order, amp=base.amp, meta_mode=base.meta_mode,
                                    scale=self.virtual_scale, gate=getattr(self, "gate", None))
        self.meta_lr0 = meta_optimizer.param_groups[0]["lr"]

    def train_step(self, trainer, batch, meta_batch):
        if self.meta_schedule in ("follow", "inverse"):
            sched = trainer.schedule
            factor = sched.lr_fn(sched.iteration / sched.iters_per_epoch) / self.config.lr
            factor = factor if self.meta_schedule == "follow" else 1.0 - factor
            for g in self.meta_step.meta_optimizer.param_groups:
                g["lr"] = self.meta_lr0 * factor
        return super().train_step(trainer, batch, meta_batch)


# Session 1 (2026-11-25) measured MFM meta-learned from the first step: these options and meta-Adam 1e-3.
FROM_START = {"where": "blocks+fc", "meta_start": 0.0, "meta_steps": 1, "meta_mode": "train"}


def _from_start(method, changes, options):
    return method, {"meta_lr": 1e-3, **changes}, {**FROM_START, **options}


def _late(where, start, lr, mode, k, **more):
    """A deferred-start setting (session 2, 2026-11-30)."""
    return "mfm_probe" if more else "mfm", {"meta_lr": float(lr)}, {
        "where": where, "meta_start": start, "meta_mode": mode, "meta_steps": k, **more}


SETTINGS = {
    "ce": ("ce", {}, {}),
    "logit_adj": ("logit_adj", {}, {}),
    "mwnet": ("mwnet", {}, {}),
    "mfm_default": ("mfm", {}, {}),
    "mfm_net_default": ("mfm_net", {}, {}),
    "ce_wd0": ("ce", {"weight_decay": 0.0}, {}),
    **{name: _from_start(*setting) for name, setting in {
        "mfm": ("mfm", {}, {}),
        "mfm_fc": ("mfm", {}, {"where": "fc"}),
        "mfm_blocks": ("mfm", {}, {"where": "blocks"}),
        "mfm_lr3e-3": ("mfm", {"meta_lr": 3e-3}, {}),
        "mfm_lr1e-2": ("mfm", {"meta_lr": 1e-2}, {}),
        "mfm_lr1e-4": ("mfm", {"meta_lr": 1e-4}, {}),
        "mfm_follow_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"meta_schedule": "follow"}),
        "mfm_follow_lr3e-3": ("mfm_probe", {"meta_lr": 3e-3}, {"meta_schedule": "follow"}),
        "mfm_nobias": ("mfm_probe", {}, {"fc_bias": False}),
        "ce_nobias": ("mfm_probe", {"meta_lr": 1e-12}, {"fc_bias": False}),
        "mfm_nobias_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"fc_bias": False}),
        "mfm_virtual10": ("mfm_probe", {}, {"virtual_scale": 10.0}),
        "mfm_steps5": ("mfm", {}, {"meta_steps": 5}),
        "mfm_evalbn": ("mfm", {}, {"meta_mode": "eval"}),
        "mfm_fc_evalbn": ("mfm", {}, {"meta_mode": "eval", "where": "fc"}),
        "mfm_fc_evalbn_lr1e-2": ("mfm", {"meta_lr": 1e-2}, {"meta_mode": "eval", "where": "fc"}),
        "mfm_fc_lr3e-3": ("mfm", {"meta_lr": 3e-3}, {"where": "fc"}),
        "mfm_fc_lr1e-2": ("mfm", {"meta_lr": 1e-2}, {"where": "fc"}),
        "mfm_fc_direct_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"where": "fc", "virtual_scale": 0.0}),
        "mfm_fc_direct": ("mfm_probe", {}, {"where": "fc", "virtual_scale": 0.0}),
        "mfm_fc_inverse_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"where": "fc", "meta_schedule": "inverse"}),
        "mfm_inverse_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"meta_schedule": "inverse"}),
        "mfm_fc_inverse_lr3e-2": ("mfm_probe", {"meta_lr": 3e-2}, {"where": "fc", "meta_schedule": "inverse"}),
        "mfm_fc_inverse_evalbn_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2},
                                         {"where": "fc", "meta_schedule": "inverse", "meta_mode": "eval"}),
        "mfm_fc_sgd0.1": ("mfm_probe", {"meta_lr": 0.1}, {"where": "fc", "meta_opt": "sgd"}),
        "mfm_fc_sgd1": ("mfm_probe", {"meta_lr": 1.0}, {"where": "fc", "meta_opt": "sgd"}),
        "mfm_fc_sgd0.01": ("mfm_probe", {"meta_lr": 0.01}, {"where": "fc", "meta_opt": "sgd"}),
        "mfm_fc_sgd0.001": ("mfm_probe", {"meta_lr": 0.001}, {"where": "fc", "meta_opt": "sgd"}),
        "mfm_sgd0.1": ("mfm_probe", {"meta_lr": 0.1}, {"meta_opt": "sgd"}),
        "mfm_wd0": ("mfm", {"weight_decay": 0.0}, {}),
        # modulation as a training aid only: on in the training forwards, off in the meta forward and at test
        **{f"mfmT_{w}_lr{lr}": ("mfm_probe", {"meta_lr": float(lr)}, {"where": w, "train_only": True})
           for w in ("fc", "blocks+fc", "blocks") for lr in ("1e-3", "3e-3", "1e-2", "3e-2", "1e-1")},
    }.items()},
    # deferred start: mfm_<where>_start<fraction>_lr<meta lr>[_evalbn][_k<meta-updates per step>]
    **{f"mfm_{w}_start{st}_lr{lr}{'_evalbn' if mode == 'eval' else ''}{f'_k{k}' if k > 1 else ''}":
       _late("fc" if w == "fc" else "blocks+fc", st, lr, mode, k)
       for w in ("fc", "all") for st in (0.5, 0.75, 0.8, 0.9) for lr in ("1e-3", "3e-3", "1e-2", "3e-2")
       for mode in ("train", "eval") for k in (1, 3, 5, 10)},
    **{f"mfm_net_{w}_start{st}_lr{lr}": ("mfm_net", {"meta_lr": float(lr)},
                                          {"where": "fc" if w == "fc" else "blocks+fc", "meta_start": st})
       for w in ("fc", "all") for st in (0.8, 0.9) for lr in ("3e-4", "1e-3", "3e-3")},
    "mfmnet_fc_start0.9_lr1e-3_evalbn_k5": _late("fc", 0.9, "1e-3", "eval", 5, kind="net"),
    "mfmnet_fc_start0.9_lr1e-2_evalbn_k5": _late("fc", 0.9, "1e-2", "eval", 5, kind="net"),
    "mfmLA_fc_start0.9_lr1e-2_evalbn_k5": ("mfm", {"meta_lr": 1e-2}, {
        "where": "fc", "meta_start": 0.9, "meta_mode": "eval", "meta_steps": 5, "logit_adj": True}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", default="runs")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    unknown = [name for name in args.settings if name not in SETTINGS]
    if unknown:
        parser.error(f"settings {unknown} are unknown; use some of {sorted(SETTINGS)}")
    path = Path(args.out) / "mfm_tuning.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in args.settings:
        method, changes, options = SETTINGS[name]
        for seed in range(args.seeds):
            base = dict(dataset="digits", imbalance=20, profile="laptop", progress=False, device="cpu",
                        epochs=args.epochs)
            start = time.perf_counter()
            r = run(Config(**{**base, **changes, "method": method, "options": options, "seed": seed}))
            row = {"setting": name, "epochs": args.epochs, "seed": seed, **{k: r.metrics[k] for k in
                   ("test_acc", "many_acc", "medium_acc", "few_acc")}, "seconds": time.perf_counter() - start}
            pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists(), index=False)
            print(row, flush=True)
    if args.table:
        table(pd.read_csv(path))


def table(df: pd.DataFrame) -> None:
    df = df.drop_duplicates(["setting", "epochs", "seed"], keep="last")
    ce = df[df.setting == "ce"].set_index(["epochs", "seed"]).test_acc
    df = df.assign(delta=df.test_acc.values - ce.reindex(list(zip(df.epochs, df.seed))).values)
    g = df.groupby(["epochs", "setting"], sort=False)
    out = pd.DataFrame({"acc": g.test_acc.mean(), "std": g.test_acc.std(), "few": g.few_acc.mean(),
                        "d_vs_ce": g.delta.mean(), "d_std": g.delta.std(), "d_min": g.delta.min(),
                        "d_max": g.delta.max(), "n": g.seed.nunique()})
    print(out.round(2).to_string())


if __name__ == "__main__":
    main()
