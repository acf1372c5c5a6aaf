"""Command line: ``python -m metakit run --method ce --dataset digits --imbalance 10``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from metakit.experiments import Config, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metakit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="train and evaluate one configuration")
    for f in dataclasses.fields(Config):
        if f.name in ("options", "progress"):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name == "milestones":
            one.add_argument(flag, type=float, nargs="+", default=None, help="multistep boundaries")
        elif f.name == "nesterov" or f.name == "amp":
            one.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"imbalance": float, "noise_rate": float, "lr": float, "weight_decay": float, "gamma": float,
                    "momentum": float, "warmup_epochs": float, "meta_lr": float, "epochs": int,
                    "batch_size": int, "seed": int, "meta_per_class": int, "meta_every": int}.get(f.name, str)
            one.add_argument(flag, type=kind, default=f.default)
    one.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                     help="method option, e.g. --option focal_gamma=2 (repeatable)")
    one.add_argument("--no-progress", action="store_true", help="hide progress bars")
    one.add_argument("--json", action="store_true", help="print the metrics as JSON")
    show = commands.add_parser("demo", help="run the notebook tour headless and collect its results")
    show.add_argument("--profile", default=None, help="smoke | laptop (default: $METAKIT_PROFILE or laptop)")
    return parser


def parse_options(pairs: list[str]) -> dict:
    """``["k=1", "name=\\"x\\""]`` → ``{"k": 1, "name": "x"}`` (values are JSON, else strings)."""
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--option {pair!r} must look like KEY=VALUE, e.g. --option focal_gamma=2")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        import os

        from metakit.demo import main as demo_main

        return demo_main(args.profile or os.environ.get("METAKIT_PROFILE") or "laptop")
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    if fields.get("milestones") is not None:
        fields["milestones"] = tuple(fields["milestones"])
    try:
        config = Config(**fields, options=parse_options(args.option), progress=not args.no_progress)
        result = run(config)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    metrics = {k: v for k, v in result.metrics.items() if k != "per_class_acc"}
    if args.json:
        print(json.dumps({"config": dataclasses.asdict(result.config), "metrics": result.metrics}, default=str))
        return 0
    c = result.config
    print(f"method={c.method} dataset={c.dataset} imbalance={c.imbalance:g} noise={c.noise_kind}:{c.noise_rate:g} "
          f"model={c.model} epochs={c.epochs} profile={c.profile} seed={c.seed}")
    print(f"training images per class: {result.split.class_counts}")
    print("  ".join(f"{k}={v:.2f}" for k, v in metrics.items()))
    print("per-class accuracy: " + " ".join(f"{a:.0f}" for a in result.metrics["per_class_acc"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
