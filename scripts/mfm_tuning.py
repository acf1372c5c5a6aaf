"""MFM vs cross-entropy on digits-LT (laptop profile, imbalance 20): does any faithful MFM setting clearly win?

Usage:  PYTHONPATH=. python scripts/mfm_tuning.py SETTING [SETTING ...] [--seeds 5] [--out runs/]

Each SETTING names a row of `SETTINGS` (method, Config changes, options). Rows are appended to
runs/mfm_tuning.csv; `--table` prints mean ± std per setting and the paired difference to the
cross-entropy run of the same seed and epochs.

The experimental knobs live in `MFMProbe` (``mfm_probe``), registered here only:
``meta_schedule="follow"`` scales the meta-Adam LR with the inner LR's schedule (``"inverse"``: by
1 − lr_t/lr_0, so φ moves most once θ has settled), ``meta_eval`` runs the meta forward with BN in eval mode,
``virtual_scale`` multiplies the look-ahead's step size, ``meta_steps`` meta-updates per iteration,
``meta_opt="sgd"`` meta-updates by SGD (momentum 0.9) instead of Adam, ``fc_bias=False`` removes fc's bias (a diagnostic: can the real step still undo β at the pooled feature?).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from metakit.experiments import Config, run
from metakit.meta import MetaStep
from metakit.methods import register
from metakit.methods.mfm import MFM


class _ScaledStep(MetaStep):
    scale = 1.0
    meta_eval = False
    gate = None

    def hypergradient(self, train_batch, meta_batch):
        if self.gate is not None:   # train_only: the meta forward sees the bare classifier
            net, forward, calls, gate = self.net, self.net.forward, [0], self.gate

            def gated(x):
                calls[0] += 1
                gate[0] = calls[0] != 2
                try:
                    return forward(x)
                finally:
                    gate[0] = True
            net.forward = gated
            try:
                return super().hypergradient(train_batch, meta_batch)
            finally:
                del net.forward
        if not self.meta_eval:
            return super().hypergradient(train_batch, meta_batch)
        # the meta forward in eval mode: BN uses the running statistics, as at test time
        net, forward, calls = self.net, self.net.forward, [0]

        def forward_switch(x):
            calls[0] += 1
            if calls[0] == 2:   # the hypergradient's second forward is the meta forward
                net.eval()
                try:
                    return forward(x)
                finally:
                    net.train()
            return forward(x)
        net.forward = forward_switch
        try:
            return super().hypergradient(train_batch, meta_batch)
        finally:
            del net.forward

    @property
    def base_lr(self) -> float:  # used by the virtual step only (the real step of enters="forward" uses the optimiser's)
        return self.scale * self.optimizer.param_groups[0]["lr"]


@register
class MFMProbe(MFM):
    name = "mfm_probe"
    option_names = MFM.option_names + ("meta_schedule", "virtual_scale", "meta_steps", "fc_bias", "meta_eval", "meta_opt",
                                       "meta_start", "train_only", "kind")

    def __init__(self, num_classes, class_counts, config=None, **options):
        self.meta_schedule = options.pop("meta_schedule", "fixed")
        self.virtual_scale = float(options.pop("virtual_scale", 1.0))
        self.meta_steps = int(options.pop("meta_steps", 1))
        self.fc_bias = bool(options.pop("fc_bias", True))
        self.meta_eval = bool(options.pop("meta_eval", False))
        self.meta_opt = options.pop("meta_opt", "adam")
        self.meta_start = float(options.pop("meta_start", 0.0))
        self.train_only = bool(options.pop("train_only", False))
        self.kind = options.pop("kind", "film")
        self.meta_on = self.meta_start == 0.0
        super().__init__(num_classes, class_counts, config, **options)

    def prepare(self, net: nn.Module) -> nn.Module:
        if not self.fc_bias:
            nn.init.zeros_(net.fc.bias)
            net.fc.bias.requires_grad_(False)
        net = super().prepare(net)
        if self.train_only:  # modulation in the training forwards only: off in eval mode and in the meta forward
            from metakit.modulation.attach import FC
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
        step = self.meta_step
        step.__class__ = _ScaledStep
        step.scale = self.virtual_scale
        step.meta_eval = self.meta_eval
        step.gate = getattr(self, "gate", None)
        if self.meta_opt == "sgd":  # moves φ in proportion to the hypergradient (Adam: ~meta_lr per step always)
            step.meta_optimizer = torch.optim.SGD(self.modulation.parameters(), lr=self.config.meta_lr, momentum=0.9)
        self.meta_lr0 = step.meta_optimizer.param_groups[0]["lr"]

    def start_epoch(self, epoch, trainer):
        self.meta_on = epoch >= self.meta_start * self.config.epochs

    def train_step(self, trainer, batch, meta_batch):
        if not self.meta_on:   # before meta_start: plain steps through the identity modulation (= CE)
            from metakit.methods.base import Method
            return Method.train_step(self, trainer, batch, None)
        if self.meta_schedule in ("follow", "inverse"):
            sched = trainer.schedule
            factor = sched.lr_fn(sched.iteration / sched.iters_per_epoch) / self.config.lr
            factor = factor if self.meta_schedule == "follow" else 1.0 - factor
            for g in self.meta_step.meta_optimizer.param_groups:
                g["lr"] = self.meta_lr0 * factor
        if meta_batch is not None:
            for _ in range(self.meta_steps - 1):
                self.meta_step.meta_update((batch.x, batch.y), (meta_batch.x, meta_batch.y))
        return super().train_step(trainer, batch, meta_batch)


SETTINGS = {
    "ce": ("ce", {}, {}),
    "logit_adj": ("logit_adj", {}, {}),
    "mwnet": ("mwnet", {}, {}),
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
    "mfm_steps5": ("mfm_probe", {}, {"meta_steps": 5}),
    "mfm_evalbn": ("mfm_probe", {}, {"meta_eval": True}),
    "mfm_fc_evalbn": ("mfm_probe", {}, {"meta_eval": True, "where": "fc"}),
    "mfm_fc_evalbn_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"meta_eval": True, "where": "fc"}),
    "mfm_fc_lr3e-3": ("mfm", {"meta_lr": 3e-3}, {"where": "fc"}),
    "mfm_fc_lr1e-2": ("mfm", {"meta_lr": 1e-2}, {"where": "fc"}),
    "mfm_fc_direct_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"where": "fc", "virtual_scale": 0.0}),
    "mfm_fc_direct": ("mfm_probe", {}, {"where": "fc", "virtual_scale": 0.0}),
    "mfm_fc_inverse_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"where": "fc", "meta_schedule": "inverse"}),
    "mfm_inverse_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2}, {"meta_schedule": "inverse"}),
    "mfm_fc_inverse_lr3e-2": ("mfm_probe", {"meta_lr": 3e-2}, {"where": "fc", "meta_schedule": "inverse"}),
    "mfm_fc_inverse_evalbn_lr1e-2": ("mfm_probe", {"meta_lr": 1e-2},
                                     {"where": "fc", "meta_schedule": "inverse", "meta_eval": True}),
    "mfm_fc_sgd0.1": ("mfm_probe", {"meta_lr": 0.1}, {"where": "fc", "meta_opt": "sgd"}),
    "mfm_fc_sgd1": ("mfm_probe", {"meta_lr": 1.0}, {"where": "fc", "meta_opt": "sgd"}),
    "mfm_fc_sgd0.01": ("mfm_probe", {"meta_lr": 0.01}, {"where": "fc", "meta_opt": "sgd"}),
    "mfm_fc_sgd0.001": ("mfm_probe", {"meta_lr": 0.001}, {"where": "fc", "meta_opt": "sgd"}),
    "mfm_sgd0.1": ("mfm_probe", {"meta_lr": 0.1}, {"meta_opt": "sgd"}),
    **{f"mfm_{w}_start{st}_lr{lr}{'_evalbn' if ev else ''}": ("mfm_probe", {"meta_lr": float(lr)},
       {"where": "fc" if w == "fc" else "blocks+fc", "meta_start": st, "meta_eval": ev})
       for w in ("fc", "all") for st in (0.5, 0.75, 0.8, 0.9) for lr in ("1e-3", "3e-3", "1e-2", "3e-2") for ev in (False, True)},
    **{f"mfmT_{w}_lr{lr}": ("mfm_probe", {"meta_lr": float(lr)}, {"where": w, "train_only": True})
       for w in ("fc", "blocks+fc", "blocks") for lr in ("1e-3", "3e-3", "1e-2", "3e-2", "1e-1")},
    **{f"mfm_{w}_start{st}_lr{lr}_evalbn_k{k}": ("mfm_probe", {"meta_lr": float(lr)},
       {"where": "fc" if w == "fc" else "blocks+fc", "meta_start": st, "meta_eval": True, "meta_steps": k})
       for w in ("fc", "all") for st in (0.75, 0.8, 0.9) for lr in ("3e-3", "1e-2", "3e-2") for k in (3, 5, 10)},
    "mfmnet_fc_start0.9_lr1e-3_evalbn_k5": ("mfm_probe", {"meta_lr": 1e-3},
        {"where": "fc", "meta_start": 0.9, "meta_eval": True, "meta_steps": 5, "kind": "net"}),
    "mfmnet_fc_start0.9_lr1e-2_evalbn_k5": ("mfm_probe", {"meta_lr": 1e-2},
        {"where": "fc", "meta_start": 0.9, "meta_eval": True, "meta_steps": 5, "kind": "net"}),
    "mfmLA_fc_start0.9_lr1e-2_evalbn_k5": ("mfm_probe", {"meta_lr": 1e-2},
        {"where": "fc", "meta_start": 0.9, "meta_eval": True, "meta_steps": 5, "logit_adj": True}),
    "mfm_wd0": ("mfm", {"weight_decay": 0.0}, {}),
    "ce_wd0": ("ce", {"weight_decay": 0.0}, {}),
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
    path = Path(args.out) / "mfm_tuning.csv"
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
