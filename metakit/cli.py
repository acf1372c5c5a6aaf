"""Command line: ``python -m metakit run --method ce --dataset digits --imbalance 10``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import typing
import warnings
from pathlib import Path

from metakit.distributed import is_main
from metakit.experiments import Config, run
from metakit.experiments.checkpoint import on_checkpoint
from metakit.experiments.resume import check_checkpoint_args, no_checkpoint_message
from metakit.experiments.executors import make_executor
from metakit.studies import STUDIES, Plan, get_study, run_study, write_study
from metakit.studies.grid import read_csv
from metakit.studies.report import command_line
from metakit.io import check_writable_file, check_writable_folder
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
    one.add_argument("--schedule-option", action="append", default=[], metavar="KEY=JSON",
                     help="option of --schedule, e.g. --schedule staged --schedule-option schedule_file=runs/lr.pt "
                          "(repeatable)")
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
    add_study_parsers(commands)
    return parser


CLI_SKIPS = ("options", "data_options", "schedule_options", "progress")  # --option/--data-option/--schedule-option, --no-progress


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


# a study choice's flag: (type, nargs); any other choice is a list of words
CHOICE_FLAGS = {"imbalances": (float, "+"), "momentum": (float, None), "source": (str, None), "task": (str, None)}
TABLE_KINDS = ("long-tail", "noise", "mfm-ablation", "mfm-transfer")   # `table <kind>`: the study of that name
SCHEDULE_TASKS = ("cifar10", "cifar100", "noisy-cifar10", "transfer")  # `schedule-table <task>`


def add_study_flags(parser: argparse.ArgumentParser, out_help: str, positional: str = "") -> None:
    """The flags every study takes, then one flag per choice any study declares (its help from there)."""
    parser.add_argument("--profile", default=None, help="smoke | laptop | paper (default: $METAKIT_PROFILE or laptop)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="one run per seed (default: 0 1 2)")
    parser.add_argument("--out", default=None, help=out_help)
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs (quick looks)")
    parser.add_argument("--data-root", default=None, help="where CIFAR lives (paper profile)")
    helps: dict[str, list[str]] = {}
    for study in STUDIES.values():
        for name, text in study.choices.items():
            helps.setdefault(name, []).append(f"{study.name}: {text}")
    for name, texts in helps.items():
        if name == positional:
            continue
        kind, nargs = CHOICE_FLAGS.get(name, (str, "+"))
        parser.add_argument("--" + name, type=kind, nargs=nargs, default=None, help="; ".join(texts))
    add_engine_flags(parser)


def add_study_parsers(commands) -> None:
    """``study <name>``, and the older spellings ``table <kind>`` and ``schedule-table <task>``."""
    study = commands.add_parser("study", help="run a study's grid (resumable), write its table and findings")
    study.add_argument("name", choices=sorted(STUDIES), help="which study")
    add_study_flags(study, "the CSV of every run (default: runs/tables/<name>_<profile>.csv); the markdown, "
                           "summary and findings go beside it")
    table = commands.add_parser("table", help="the same as `study` for a paper table (older spelling)")
    table.add_argument("kind", choices=TABLE_KINDS, help="which table")
    add_study_flags(table, "folder for <kind>_<profile>.csv and .md (default: runs/tables)")
    schedules = commands.add_parser("schedule-table", help="the same as `study schedules` / `study "
                                                           "schedule_transfer` (older spelling)")
    schedules.add_argument("task", choices=SCHEDULE_TASKS, help="cifar10 | cifar100 | noisy-cifar10 (digits at "
                           "smoke/laptop) | transfer (a frozen MLR-SNet carried to other runs)")
    add_study_flags(schedules, "the CSV of every run; the summary and markdown go beside it", positional="task")
    schedules.set_defaults(seeds=[0])   # the older spelling's default
    findings = commands.add_parser("findings", help="recompute every committed table's findings page and the "
                                                    "README's results lines from results/")
    findings.add_argument("--check", action="store_true", help="only check they are up to date (exit 1 if not)")


def study_of(args: argparse.Namespace) -> tuple[str, dict]:
    """(the study name, the choices the spelling fixes) of a ``study``/``table``/``schedule-table`` command."""
    if args.command == "table":
        return args.kind.replace("-", "_"), {}
    if args.command == "schedule-table":
        return ("schedule_transfer", {}) if args.task == "transfer" else ("schedules", {"task": args.task})
    return args.name, {}


def study_main(args: argparse.Namespace) -> int:
    """Run one study's grid (resuming its CSV), then write and print its markdown and findings."""
    name, fixed = study_of(args)
    study = get_study(name)
    spelling = f"{args.command} {getattr(args, 'kind', None) or getattr(args, 'task', None) or name}"
    flags = {n for f in STUDIES.values() for n in f.choices} - ({"task"} if args.command == "schedule-table" else set())
    for flag in sorted(flags):
        if getattr(args, flag, None) is not None and flag not in study.choices:
            raise ValueError(f"--{flag} does not apply to {spelling} (its choices: "
                             f"{', '.join('--' + c for c in study.choices) or 'none'}); leave it out.")
    if args.data_root is not None and name not in ("schedules",):
        raise ValueError(f"--data-root applies to the CIFAR schedule tables only, not {spelling}; leave it out.")
    profile = args.profile or os.environ.get("METAKIT_PROFILE") or "laptop"
    choices = {c: getattr(args, c) for c in study.choices if c in flags and getattr(args, c) is not None} | fixed
    overrides = {k: v for k, v in (("epochs", args.epochs), ("data_root", args.data_root)) if v is not None}
    plan = Plan(profile, tuple(args.seeds or (0, 1, 2)), choices, overrides)
    out = csv_path(args, study, profile)
    check_study_outputs(args, out)
    run_study(study, plan, out, executor=make_executor(args.workers, args.dask, args.slurm),
              log=lambda line: print(line, flush=True))
    detail = {"source": f" from {choices.get('source')}", "task": f" {choices.get('task')}"}
    title = study.title + "".join(detail[c] for c in ("source", "task") if c in choices) + f", profile {profile}"
    # the markdown summarises the whole CSV: a table made in chunks (one --seeds value at a time) shows every seed
    text = write_study(study, read_csv(out, momentum=study.momentum), out.with_suffix(".md"), command_line(vars(args)),
                       title)
    print()
    print(text)
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_name(out.stem + '_findings.md')}")
    return 0


def csv_path(args: argparse.Namespace, study, profile: str) -> Path:
    """The study's CSV: ``--out`` (a folder for ``table``), else its default; ``_e<N>`` with ``--epochs``."""
    suffix = "" if args.epochs is None else f"_e{args.epochs}"
    if args.command == "table":
        return Path(args.out or "runs/tables") / f"{study.name}_{profile}{suffix}.csv"
    if args.out is None:
        return study.default_csv(profile + suffix)
    out = Path(args.out)
    if out.suffix != ".csv":
        raise ValueError(f"--out={args.out!r} must be a CSV path, e.g. {study.default_csv(profile)}.")
    return out


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


def check_checkpoint_dir(folder: str | None, resume: bool = False) -> None:
    """Refuse a --checkpoint-dir that is empty, is not a folder one can write into (a file, a dangling symlink,
    a loop, /proc) or, with --resume, does not exist, before any data is read; creates nothing."""
    check_checkpoint_args(folder, resume)
    if folder is None:
        return
    if resume and not Path(folder).is_dir():
        raise ValueError(no_checkpoint_message(folder))
    check_writable_folder(folder, "--checkpoint-dir", "runs/checkpoints")


def check_study_outputs(args: argparse.Namespace, out: Path) -> None:
    """Refuse, before any run, a --out where the study's CSV, markdown, summary, findings or lock file could
    not be written (``table``'s --out is a folder, the others' a CSV path)."""
    if args.command == "table" and args.out is not None:
        check_writable_folder(args.out, "--out", "runs/tables")
    stem = out.with_suffix("")
    for path in (out, Path(f"{out}.lock"), out.with_suffix(".md"), stem.with_name(stem.name + "_summary.csv"),
                 stem.with_name(stem.name + "_findings.md")):
        check_writable_file(path, "--out", fix=f"move '{path}' aside, or pass another --out")


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
                    schedule_options=parse_options(args.schedule_option, "--schedule-option"), progress=not args.no_progress)
    resolved = config.resolve()  # every bad value is refused here, before any data or folder is touched
    check_save_learner(args.save_learner, resolved)
    check_checkpoint_dir(args.checkpoint_dir, args.resume)
    result = run(config, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    if not is_main():  # under torchrun, rank 0 reports
        return 0
    print_metrics(result, args.json)
    if args.save_learner:  # after the metrics (a failed save loses no number), atomically: no half file
        save_learner(result.learner, args.save_learner, config=result.config, dataset=result.config.dataset,
                     model=result.config.model, epochs=result.config.epochs)
    return 0


def print_metrics(result, as_json: bool) -> None:
    """The run's config line, class counts, metrics and per-class accuracy (or one JSON object, NaN as null)."""
    metrics = {k: v for k, v in result.metrics.items() if k != "per_class_acc"}
    if as_json:
        def finite(value):  # JSON has no NaN: a metric with no class to average (e.g. many_acc) is null
            if isinstance(value, dict):
                return {k: finite(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [finite(v) for v in value]
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value

        print(json.dumps(finite({"config": dataclasses.asdict(result.config), "metrics": result.metrics}),
                         default=str, allow_nan=False), flush=True)
        return
    c = result.config
    print(f"method={c.method} dataset={c.dataset} imbalance={c.imbalance:g} noise={c.noise_kind}:{c.noise_rate:g} "
          f"model={c.model} epochs={c.epochs} profile={c.profile} seed={c.seed}")
    print(f"training images per class: {result.split.class_counts}")
    print("  ".join(f"{k}={v:.2f}" for k, v in metrics.items()))
    print("per-class accuracy: " + " ".join(f"{a:.0f}" for a in result.metrics["per_class_acc"]), flush=True)


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """The command line; every error is one line on stderr with exit status 2 (``--debug``: the traceback).

    Ctrl-C is one line too (what was saved, how to go on) with exit status 130.
    """
    args = build_parser().parse_args(argv)
    warnings.formatwarning = one_line_warning
    saved: list[tuple[Path, int, int]] = []   # the last checkpoint written: (path, epochs done, epochs)

    def note(path: Path, state: dict) -> None:
        saved[:] = [(path, state.get("epochs_done"), (state.get("config") or {}).get("epochs"))]

    try:
        with on_checkpoint(note):
            return command(args)
    except KeyboardInterrupt:
        if getattr(args, "debug", False):
            raise
        print(interrupted_line(args, saved[-1] if saved else None), file=sys.stderr, flush=True)
        return 130


def interrupted_line(args: argparse.Namespace, last: tuple[Path, int, int] | None) -> str:
    """The one line of a Ctrl-C: what is on disk, and how to go on."""
    if args.command == "run":
        if last is not None:
            path, done, total = last
            return (f"interrupted: the last checkpoint is {path} (epoch {done} of {total}); run the same command "
                    f"with --resume to go on from there.")
        if args.checkpoint_dir is None:
            return ("interrupted: nothing saved (no --checkpoint-dir); pass --checkpoint-dir DIR to make a run "
                    "resumable.")
        if args.resume:
            return (f"interrupted: no new checkpoint written; the one it resumed from is still in "
                    f"{args.checkpoint_dir}; run the same command to go on from there.")
        return (f"interrupted before the first epoch ended: nothing saved in {args.checkpoint_dir}; run the same "
                f"command to start again.")
    if args.command in ("study", "table", "schedule-table"):
        return ("interrupted: every finished run is kept in the study's CSV; run the same command to go on with "
                "the rest.")
    return "interrupted; run the same command to start again."


def command(args: argparse.Namespace) -> int:
    """Run the parsed command; every error is one line on stderr with exit status 2."""
    try:
        if args.command == "demo":
            from metakit.teaching.demo import main as demo_main

            from metakit.teaching.demo import DEFAULT_JOBS

            return demo_main(args.profile or os.environ.get("METAKIT_PROFILE") or "laptop",
                             DEFAULT_JOBS if args.jobs is None else args.jobs)
        if args.command in ("study", "table", "schedule-table"):
            return study_main(args)
        if args.command == "findings":
            from metakit.studies.committed import main as findings_main

            return findings_main(check=args.check)
        return run_main(args)
    except Exception as err:  # noqa: BLE001 — the CLI's one error line; --debug re-raises
        if getattr(args, "debug", False):
            raise
        kind = "" if isinstance(err, (ValueError, TypeError, FileNotFoundError)) else f"{type(err).__name__}: "
        print(f"error: {kind}{err}".splitlines()[0], file=sys.stderr)
        return 2
