"""Command line: ``python -m metakit run --method ce --dataset digits --imbalance 10``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import typing
import warnings
from pathlib import Path

from metakit.distributed import is_main
from metakit.experiments import Config, run
from metakit.experiments.executors import make_executor
from metakit.experiments.grid_summary import command_line
from metakit.experiments.schedule_tables import write_table as write_schedule_table
from metakit.experiments.noise_tables import noise_grid
from metakit.experiments.noise_tables import write_table as write_noise_table
from metakit.experiments.grid import read_csv
from metakit.experiments.tables import long_tail_grid, read_rows, write_table
from metakit.experiments.mfm_tables import mfm_ablation
from metakit.experiments.mfm_tables import write_table as write_mfm_table
from metakit.experiments.mfm_transfer import METHODS as TRANSFER_METHODS, TARGETS, mfm_transfer
from metakit.experiments.schedule_transfer import MOMENTA, SOURCES, schedule_transfer
from metakit.experiments.schedule_transfer_report import write_table as write_transfer_table
from metakit.io import check_writable_file
from metakit.learners.store import save_learner
from metakit.methods import METHODS
from metakit.options import describe


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m metakit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    one = commands.add_parser("run", help="train and evaluate one configuration", epilog=methods_help(),
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              description="Train and evaluate one configuration. Flags left out take the "
                                          "profile's value (or the method's recipe).")
    add_config_flags(one)
    one.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                     help="method option, e.g. --option focal_gamma=2 (repeatable; each method's options are "
                          "listed below)")
    one.add_argument("--data-option", action="append", default=[], metavar="KEY=JSON",
                     help="MNIST-1D generator argument changed from the calibrated ones, e.g. --data-option "
                          "iid_noise_scale=0.1 (repeatable; see metakit.data.mnist1d)")
    one.add_argument("--no-progress", action="store_true", help="hide progress bars")
    one.add_argument("--checkpoint-dir", default=None, help="write a checkpoint there after every epoch")
    one.add_argument("--resume", action="store_true", help="continue the run checkpointed in --checkpoint-dir")
    one.add_argument("--save-learner", default=None, metavar="PATH",
                     help="after training, write the meta-learned network there (mlrsnet: its per-epoch snapshots, "
                          "the schedule_file of a meta-test; mwnet: the weight net; mfm: the modulation)")
    one.add_argument("--json", action="store_true", help="print the metrics as JSON")
    one.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    show = commands.add_parser("demo", help="run the notebook tour headless and collect its results")
    show.add_argument("--profile", default=None, help="smoke | laptop (default: $METAKIT_PROFILE or laptop)")
    show.add_argument("--jobs", type=int, default=None,
                      help="notebooks run at a time (default: 2, or 1 on a 1-core machine; each kernel is one thread)")
    add_table_parser(commands)
    table = commands.add_parser("schedule-table", help="compare LR schedules on one task, write a CSV")
    table.add_argument("task", help="cifar10 | cifar100 | noisy-cifar10 (digits at smoke/laptop) | transfer "
                                    "(a frozen MLR-SNet carried to other runs: digits, MNIST-1D)")
    table.add_argument("--profile", default=None, help="smoke | laptop | paper (default: $METAKIT_PROFILE or laptop)")
    table.add_argument("--seeds", type=int, nargs="+", default=[0])
    table.add_argument("--entries", nargs="+", default=None, help="subset of metakit.experiments.schedule_tables.ENTRIES")
    table.add_argument("--out", required=True, help="CSV of every run; the summary goes beside it")
    table.add_argument("--data-root", default=None, help="where CIFAR lives (paper profile)")
    table.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    table.add_argument("--source", default=None, choices=SOURCES, help="transfer: the dataset the schedule learns on")
    table.add_argument("--momentum", type=float, default=None, help=f"transfer: one of {list(MOMENTA)} (default 0)")
    table.add_argument("--variations", nargs="+", default=None,
                       help="transfer: subset of metakit.experiments.schedule_transfer.variations and lm")
    add_engine_flags(table)
    return parser


CLI_SKIPS = ("options", "data_options", "progress")  # given as --option / --data-option KEY=JSON, --no-progress


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `Config` field, with its type, choices, default and help from the field's `option`."""
    hints = typing.get_type_hints(Config)
    helps = {name: text for name, _, text in describe(Config)}
    for f in dataclasses.fields(Config):
        if f.name in CLI_SKIPS:
            continue
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        kind = meta.get("kind") or next((a for a in typing.get_args(hints[f.name]) or [hints[f.name]]
                                         if a in (int, float, str, bool)), str)
        allowed = [c for c in meta.get("choices") or () if c is not None] or \
            (list(METHODS) if f.name == "method" else [])
        text = (meta["help"] if allowed else helps[f.name]) + ("" if f.default is None else f" (default: {f.default})")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=text)
        elif f.name == "milestones":
            parser.add_argument(flag, type=float, nargs="+", default=None, metavar="M", help=text)
        else:
            parser.add_argument(flag, type=kind, default=f.default, choices=allowed or None, help=text)


def methods_help() -> str:
    """Every registered method with what it meta-learns and its options (for ``run --help``)."""
    lines = ["methods (--method NAME) and their options (--option KEY=VALUE):"]
    for name, cls in METHODS.items():
        first = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        learns = f" [meta-learns {cls.learns}; φ enters the {cls.enters}]" if cls.learns else ""
        lines.append(f"  {name}: {first}{learns}")
        rows = describe(cls.Options)
        lines += [f"      {key}={default}: {text}" for key, default, text in rows] or ["      (no options)"]
    return "\n".join(lines)


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """--workers / --dask / --slurm: where a table's runs go (see metakit.experiments.executors)."""
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=int, default=None, help="run in a local pool of N processes")
    engine.add_argument("--dask", default=None, metavar="ADDRESS", help="run on a Dask cluster (tcp://host:8786)")
    engine.add_argument("--slurm", default=None, metavar="FOLDER", help="run each job on Slurm via submitit")


def add_table_parser(commands) -> None:
    """``table long-tail`` / ``table noise``: run a table's grid (resumable), write CSV + Markdown."""
    table = commands.add_parser("table", help="run a paper table's grid, write a CSV and a Markdown table")
    table.add_argument("kind", choices=["long-tail", "noise", "mfm-ablation", "mfm-transfer"], help="which table")
    table.add_argument("--profile", default=None, help="smoke | laptop | paper (default: $METAKIT_PROFILE or laptop)")
    table.add_argument("--datasets", nargs="+", default=None,
                       help="default: digits (smoke, laptop), cifar10 cifar100 (paper); noise: mnist1d")
    table.add_argument("--imbalances", nargs="+", type=float, default=None,
                       help="long-tail; default: 20 10 5 1 (digits), 200 100 50 20 10 1 (paper)")
    table.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    table.add_argument("--methods", nargs="+", default=None,
                       help="long-tail default: every method that is not an LR schedule; noise default: "
                            "ce mwnet sched_fixed sched_multistep sched_cosine sched_sgdr sched_mlrsnet")
    table.add_argument("--variants", nargs="+", default=None,
                       help="mfm-ablation: rows of metakit.experiments.mfm_tables.VARIANTS (default: all)")
    table.add_argument("--targets", nargs="+", default=None,
                       help=f"mfm-transfer: where the IF 100 modulator goes, of {list(TARGETS)} (default: all)")
    table.add_argument("--epochs", type=int, default=None, help="override the profile's epochs (quick looks)")
    table.add_argument("--out", default="runs/tables", help="folder for <kind>_<profile>.csv and .md")
    add_engine_flags(table)


def table_main(args) -> int:
    """Run the table's grid (resuming its CSV), then write and print the markdown."""
    profile = args.profile or os.environ.get("METAKIT_PROFILE") or "laptop"
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    name = args.kind.replace("-", "_")
    stem = Path(args.out) / (f"{name}_{profile}" + ("" if args.epochs is None else f"_e{args.epochs}"))
    engine = dict(csv_path=stem.with_suffix(".csv"), overrides=overrides, log=lambda s: print(s, flush=True),
                  executor=make_executor(args.workers, args.dask, args.slurm))
    title = f"{args.kind} table, profile {profile}"
    if args.variants is not None and args.kind != "mfm-ablation":
        raise ValueError(f"--variants={args.variants} applies to table mfm-ablation only; leave it out.")
    if args.targets is not None and args.kind != "mfm-transfer":
        raise ValueError(f"--targets={args.targets} applies to table mfm-transfer only; leave it out.")
    if args.kind == "mfm-transfer":
        if args.imbalances is not None or args.datasets is not None:
            raise ValueError("--imbalances and --datasets do not apply to table mfm-transfer (MNIST-1D, its "
                             "settings are --targets); leave them out.")
        mfm_transfer(args.targets or list(TARGETS), args.seeds, profile, args.methods or TRANSFER_METHODS, args.out,
                     **engine)
        text = write_mfm_table(read_csv(engine["csv_path"]), stem.with_suffix(".md"), title, command_line(vars(args)))
    elif args.kind == "noise":
        if args.imbalances is not None:
            raise ValueError(f"--imbalances={args.imbalances} does not apply to the noise table (balanced, noisy "
                             f"labels); leave it out.")
        noise_grid(args.methods, args.datasets or ["mnist1d"], seeds=args.seeds, profile=profile, **engine)
        # the markdown summarises the whole CSV: a table made in chunks (one --seeds value at a time) shows every seed
        text = write_noise_table(read_csv(engine["csv_path"], momentum=True), stem.with_suffix(".md"), title,
                                 command_line(vars(args)))
    elif args.kind == "mfm-ablation":
        if args.methods is not None:
            raise ValueError(f"--methods={args.methods} does not apply to table mfm-ablation: choose its rows with "
                             f"--variants (metakit.experiments.mfm_tables.VARIANTS).")
        mfm_ablation(args.datasets or ["mnist1d"], args.imbalances or [100], args.seeds, profile, args.variants,
                     **engine)
        text = write_mfm_table(read_csv(engine["csv_path"]), stem.with_suffix(".md"), title, command_line(vars(args)))
    else:
        long_tail_grid(args.methods, args.datasets, args.imbalances, args.seeds, profile, **engine)
        text = write_table(read_rows(engine["csv_path"]), stem.with_suffix(".md"), title, command_line(vars(args)))
    print()
    print(text)
    print(f"wrote {stem.with_suffix('.csv')} and {stem.with_suffix('.md')}")
    return 0


def schedule_transfer_main(args: argparse.Namespace) -> int:
    """``python -m metakit schedule-table transfer --source digits --momentum 0 --seeds 0 1 2 3 4 --out <csv>``."""
    if args.source is None:
        raise ValueError(f"schedule-table transfer needs --source, one of {list(SOURCES)}, e.g. --source digits.")
    if args.data_root is not None:
        raise ValueError("--data-root does not apply to schedule-table transfer (digits and MNIST-1D); leave it out.")
    profile = args.profile or os.environ.get("METAKIT_PROFILE") or "laptop"
    out = Path(args.out)
    if out.suffix != ".csv":
        raise ValueError(f"--out={args.out!r} must be a CSV path, e.g. results/{args.source}/schedule_transfer_{profile}.csv.")
    overrides = {"epochs": args.epochs} if args.epochs is not None else None
    schedule_transfer(args.source, 0.0 if args.momentum is None else args.momentum, args.variations, args.seeds,
                             profile, args.entries, out, overrides, log=lambda line: print(line, flush=True),
                             executor=make_executor(args.workers, args.dask, args.slurm))
    title = f"Schedule transfer from {args.source}, profile {profile}"
    # the markdown summarises the whole CSV: both momentum blocks, every chunk so far
    print(write_transfer_table(read_csv(out, momentum=True), out.with_suffix(".md"), title, command_line(vars(args))))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def parse_options(pairs: list[str], flag: str = "--option") -> dict:
    """``["k=1", "name=\\"x\\""]`` → ``{"k": 1, "name": "x"}`` (values are JSON, else strings).

    Example:
        >>> parse_options(["focal_gamma=2", "where=fc"])
        {'focal_gamma': 2, 'where': 'fc'}
    """
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{flag} {pair!r} must look like KEY=VALUE, e.g. {flag} "
                             f"{'iid_noise_scale=0.1' if flag == '--data-option' else 'focal_gamma=2'}")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def check_checkpoint_dir(folder: str | None) -> None:
    """Refuse a --checkpoint-dir that cannot be created or written, before any data is read."""
    if folder is None:
        return
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-")
        probe.close()
    except OSError as err:
        raise ValueError(f"--checkpoint-dir {folder!r} cannot be used ({err.strerror or err}); "
                         f"give a folder you can write to, e.g. --checkpoint-dir runs/checkpoints") from None


def check_save_learner(path: str | None, config: Config) -> None:
    """Refuse a --save-learner for a method that meta-learns nothing, or a path that cannot be written."""
    if path is None:
        return
    if not METHODS[config.method].learns:
        learners = [name for name, cls in METHODS.items() if cls.learns]
        raise ValueError(f"--save-learner {path!r} but method={config.method!r} meta-learns nothing; use it with "
                         f"one of {learners}, or leave it out.")
    check_writable_file(path, "--save-learner")


def run_main(args: argparse.Namespace) -> int:
    """``run``: build the Config from the flags, train, print the metrics."""
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    if fields.get("milestones") is not None:
        fields["milestones"] = tuple(fields["milestones"])
    config = Config(**fields, options=parse_options(args.option), data_options=parse_options(args.data_option, "--data-option"),
                    progress=not args.no_progress)
    resolved = config.resolve()  # every bad value is refused here, before any data or folder is touched
    check_save_learner(args.save_learner, resolved)
    check_checkpoint_dir(args.checkpoint_dir)
    result = run(config, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    if not is_main():  # under torchrun, rank 0 reports
        return 0
    if args.save_learner:  # written once the run has finished, atomically: a failed run leaves no file
        save_learner(result.learner, args.save_learner, config=result.config, dataset=result.config.dataset,
                     model=result.config.model, epochs=result.config.epochs)
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


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """The command line; every error is one line on stderr with exit status 2 (``--debug``: the traceback)."""
    args = build_parser().parse_args(argv)
    warnings.formatwarning = one_line_warning
    try:
        if args.command == "demo":
            from metakit.teaching.demo import main as demo_main

            from metakit.teaching.demo import DEFAULT_JOBS

            return demo_main(args.profile or os.environ.get("METAKIT_PROFILE") or "laptop",
                             DEFAULT_JOBS if args.jobs is None else args.jobs)
        if args.command == "table":
            return table_main(args)
        if args.command == "schedule-table":
            return schedule_table_main(args)
        return run_main(args)
    except Exception as err:  # noqa: BLE001 — the CLI's one error line; --debug re-raises
        if getattr(args, "debug", False):
            raise
        kind = "" if isinstance(err, (ValueError, TypeError, FileNotFoundError)) else f"{type(err).__name__}: "
        print(f"error: {kind}{err}".splitlines()[0], file=sys.stderr)
        return 2


def schedule_table_main(args: argparse.Namespace) -> int:
    """``python -m metakit schedule-table noisy-cifar10 --profile paper --out runs/noisy.csv``."""
    transfer_only = {"--source": args.source, "--momentum": args.momentum, "--variations": args.variations}
    if args.task == "transfer":
        return schedule_transfer_main(args)
    given = [flag for flag, value in transfer_only.items() if value is not None]
    if given:
        raise ValueError(f"{given[0]} applies to schedule-table transfer only, not task={args.task!r}; leave it out.")
    overrides = {k: v for k, v in (("data_root", args.data_root), ("epochs", args.epochs)) if v is not None}
    write_schedule_table(args.task, args.out, args.profile or os.environ.get("METAKIT_PROFILE") or "laptop",
                         args.seeds, args.entries, executor=make_executor(args.workers, args.dask, args.slurm),
                         command=command_line(vars(args)), **overrides)
    out = Path(args.out)
    print(out.with_suffix(".md").read_text())
    print(f"wrote {out}, {out.with_name(out.stem + '_summary.csv')} and {out.with_suffix('.md')}")
    return 0

