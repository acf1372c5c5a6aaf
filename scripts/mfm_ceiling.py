"""How much can γ/β fix, at best? Fit them on the meta set with the trained CE net frozen.

Usage:  PYTHONPATH=. python scripts/mfm_ceiling.py [--seeds 5] [--where fc|blocks+fc|...]

Per seed: train cross-entropy (laptop profile, digits-LT imbalance 20), then attach FiLM where
asked (default: fc's input) and fit only γ, β by Adam on the 50 balanced meta images (BN in eval
mode), θ frozen.
This is not MFM (no look-ahead, no co-training): it bounds what the modulation's capacity plus
the 50-image meta set can buy when the real step cannot undo it.
"""
from __future__ import annotations

import argparse

import pandas as pd
import torch
import torch.nn.functional as F

from metakit.data.batches import Batches
from metakit.data.sources import load_source
from metakit.experiments import Config, run
from metakit.meta import freeze
from metakit.learners.modulation import attach, detach
from metakit.experiments.loop import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--where", default="fc", help="where to attach γ/β (metakit.learners.modulation.WHERE)")
    parser.add_argument("--bn-train", action="store_true",
                        help="fit with BN in train mode on the meta batch (as MFM's meta forward does)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    source, cpu, rows = load_source("digits"), torch.device("cpu"), []
    test = Batches(source.test_x, source.test_y, 500, cpu, source.mean, source.std, shuffle=False)
    for seed in range(args.seeds):
        r = run(Config(method="ce", dataset="digits", imbalance=20, profile="laptop", progress=False,
                       device="cpu", seed=seed))
        meta = Batches(source.train_x[r.split.meta_idx], source.train_y[r.split.meta_idx], 1000, cpu,
                       source.mean, source.std, shuffle=False)
        (x_meta, y_meta), = [(b.x, b.y) for b in meta]                                # (50, 1, 8, 8), (50,)
        row = {"seed": seed, "ce": evaluate(r.net, test, r.method.class_counts)["test_acc"]}
        freeze(r.net.parameters())
        for lr in (1e-3, 1e-2):
            mod = attach(r.net, args.where)
            opt = torch.optim.Adam(mod.parameters(), lr=lr)
            r.net.eval()
            if args.bn_train:  # batch statistics of the meta batch; running stats restored after
                saved = {k: v.clone() for k, v in r.net.state_dict().items()}
                r.net.train()
            for _ in range(args.steps):
                loss = F.cross_entropy(r.net(x_meta), y_meta)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if args.bn_train:
                r.net.load_state_dict({**r.net.state_dict(), **{k: v for k, v in saved.items() if "running" in k or "num_batches" in k}})
            row[f"film_{args.where}_lr{lr:g}"] = evaluate(r.net, test, r.method.class_counts)["test_acc"]
            detach(r.net)
        rows.append(row)
        print(row, flush=True)
    df = pd.DataFrame(rows)
    print(df.mean().round(2).to_string())
    deltas = df.drop(columns=["seed", "ce"]).sub(df.ce, axis=0)
    print("paired delta vs ce:\n", pd.DataFrame({"mean": deltas.mean(), "std": deltas.std()}).round(2))


if __name__ == "__main__":
    main()
