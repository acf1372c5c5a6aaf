"""MFM ablation on digits-LT (imbalance 20, laptop profile, 5 seeds): where × meta_lr, and baselines.

Usage:  PYTHONPATH=. python scripts/mfm_ablation.py grid|baselines|net|transfer [--seeds 5] [--out runs/]

grid: mfm over where x meta_lr. baselines: ce, logit adjustment, mfm (+logit_adj), mfm_net (+logit_adj)
at --where/--meta-lr. net: mfm_net (+logit_adj) at its recipe's meta_lr. transfer: per seed, learn a
modulator with mfm_net on the source long tail, then train on a step-profile long tail with ce, mfm_net
from scratch, the modulator frozen, and the modulator fine-tuned.
Writes one CSV per part (one row per run) and prints mean ± std per setting.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from metakit.experiments import Config, run
from metakit.modulation.ablation import config_grid, run_grid, summarize


def transfer(base: Config, seeds, out: Path):
    """Learn a modulator per seed on ``base``, then train on a step long tail four ways."""
    import pandas as pd

    rows = []
    for seed in seeds:
        source = run(Config(**{**base.__dict__, "method": "mfm_net", "seed": seed}))
        path = source.method.save(out / f"mfm_net_modulator_seed{seed}.pt")
        target = {**base.__dict__, "lt_profile": "step", "seed": seed}
        settings = {"ce": ("ce", {}), "scratch": ("mfm_net", {}),
                    "frozen": ("mfm_net", {"modulator": str(path), "freeze": True}),
                    "fine-tuned": ("mfm_net", {"modulator": str(path), "freeze": False})}
        for label, (method, options) in settings.items():
            frame = run_grid([Config(**{**target, "method": method, "options": options})], ["method"])
            rows.append(frame.assign(setting=label))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["grid", "baselines", "net", "transfer"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default="runs")
    parser.add_argument("--where", default="blocks+fc", help="MFM placement for the baselines part")
    parser.add_argument("--meta-lr", type=float, default=1e-3, help="MFM meta_lr for the baselines part")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = range(args.seeds)
    base = Config(dataset="digits", imbalance=20, profile="laptop", progress=False, device="cpu")
    if args.part == "grid":
        grid = {"options.where": ["blocks", "fc", "blocks+fc"], "meta_lr": [1e-4, 1e-3, 1e-2]}
        configs = config_grid(Config(**{**base.__dict__, "method": "mfm"}), grid, seeds)
        df = run_grid(configs, ["method", "options.where", "meta_lr"])
        by = ["options.where", "meta_lr"]
    elif args.part == "net":
        configs = [Config(**{**base.__dict__, "method": "mfm_net", "options": o, "seed": s})
                   for o in ({}, {"logit_adj": True}) for s in seeds]
        df = run_grid(configs, ["method", "options.logit_adj", "meta_lr"])
        by = ["method", "options.logit_adj", "meta_lr"]
    elif args.part == "transfer":
        df, by = transfer(base, seeds, Path(args.out)), ["method", "setting"]
    else:
        mfm = {"where": args.where}
        settings = [("ce", {}, None), ("logit_adj", {}, None), ("mfm", mfm, args.meta_lr),
                    ("mfm", {**mfm, "logit_adj": True}, args.meta_lr), ("mfm_net", mfm, None),
                    ("mfm_net", {**mfm, "logit_adj": True}, None)]  # mfm_net: its recipe's meta_lr
        configs = [Config(**{**base.__dict__, "method": m, "options": o, "meta_lr": lr, "seed": s})
                   for m, o, lr in settings for s in seeds]
        df = run_grid(configs, ["method", "options.logit_adj"])
        by = ["method", "options.logit_adj"]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    df.to_csv(Path(args.out) / f"mfm_ablation_{args.part}.csv", index=False)
    summary = summarize(df, by)
    if "meta_lr" in summary:
        summary["meta_lr"] = summary["meta_lr"].map("{:g}".format)
    summary["seconds"] = df.groupby(by, sort=False)["seconds"].mean().values
    print(summary.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
