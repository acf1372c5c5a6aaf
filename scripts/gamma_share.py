"""What sets the frozen MLR-SNet's LR: γ or the LSTM? LR / γ per stage of the staged meta-test.

Usage:  OMP_NUM_THREADS=1 python scripts/gamma_share.py [--sources digits mnist1d] [--momenta 0 0.9]
            [--seeds 0 1 2] [--workers 2] [--profile laptop] [--folder results] [--out results]

For each (source, momentum) the committed source schedule of the transfer table
(``<folder>/<source>/schedules/``, made by ``python -m metakit schedule-table transfer``) runs frozen
on its own task, the table's ``transfer_same`` row. Each run's row holds, per stage of the staged
meta-test (`metakit.schedules.learned.stage_shares`), γ (re-derived at the switch), the mean LR and
LR / γ, the LSTM's own output: one that stays put from stage to stage means γ's formula alone shapes
the schedule. Rows go to ``<out>/schedule_gamma_share.csv`` (resumable, the results format), the
summary to its ``.md``.
"""
from __future__ import annotations

import argparse
import sys
import time

from metakit.experiments import Config, run
from metakit.experiments.executors import make_executor
from metakit.studies.grid import GridRun, read_csv, run_grid
from metakit.studies.report import write_outputs
from metakit.studies.stats import summarise
from metakit.studies.schedule_transfer import MOMENTA, SOURCES, schedule_path, target_config
from metakit.schedules.learned import stage_shares

STAGES = (1, 2, 3)
COLUMNS = [f"{name}_{k}" for k in STAGES for name in ("gamma", "lr", "lr_over_gamma")]


def share_job(config: Config) -> dict[str, float]:
    """A grid job: run the frozen schedule, return its accuracy and γ, LR and LR / γ of each stage."""
    start = time.perf_counter()
    result = run(config)
    stages = stage_shares(result.history["lr"].tolist(), result.method.trainer.schedule.switches)
    out = {f"{name}_{k}": w[name] for k, w in zip(STAGES, stages) for name in ("gamma", "lr", "lr_over_gamma")}
    return out | {"test_acc": float(result.metrics["test_acc"]), "seconds": time.perf_counter() - start}


def grid(sources: list[str], momenta: list[float], seeds: list[int], profile: str, folder: str) -> list[GridRun]:
    """One frozen own-task run per (source, momentum, seed), labelled as the transfer table's row."""
    runs = []
    for source in sources:
        for momentum in momenta:
            path = schedule_path(f"{folder}/{source}", source, momentum, profile)
            if not path.is_file():
                raise SystemExit(f"--folder={folder}: {path} is not there; make it with `python -m metakit "
                                 f"schedule-table transfer --profile {profile} --source {source} --momentum "
                                 f"{momentum:g} --out {folder}/{source}/schedule_transfer_{profile}.csv`.")
            runs += [GridRun(target_config(source, momentum, {}, "mlrsnet", seed, profile, path), "sched_mlrsnet",
                             tags={"profile": profile}, setting="transfer_same") for seed in seeds]
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--momenta", type=float, nargs="+", default=list(MOMENTA), choices=list(MOMENTA))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profile", default="laptop", choices=["smoke", "laptop"])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--folder", default="results", help="where the transfer tables' schedules are")
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    runs = grid(args.sources, args.momenta, args.seeds, args.profile, args.folder)
    csv = f"{args.out}/schedule_gamma_share.csv"
    run_grid(runs, csv, job=share_job, executor=make_executor(args.workers), momentum=True, log=print,
             desc="gamma share")
    df = read_csv(csv, momentum=True)   # every run so far, also those of earlier calls
    summary = summarise(df, [*COLUMNS, "test_acc"])   # one row per (source, momentum)
    lines = ["| source, momentum | seeds | " + " | ".join(f"stage {k}: γ, LR, LR / γ" for k in STAGES) + " | test acc |",
             "|---|---|" + "---|" * (len(STAGES) + 1)]
    for r in summary.to_dict("records"):
        cells = [f"{r[f'gamma_{k}_mean']:.4f}, {r[f'lr_{k}_mean']:.4f}, {r[f'lr_over_gamma_{k}_mean']:.3f} ± "
                 f"{r[f'lr_over_gamma_{k}_std']:.3f}" for k in STAGES]
        lines.append(f"| {r['dataset']}, {r['momentum']:g} | {r['seeds']} | " + " | ".join(cells)
                     + f" | {r['test_acc_mean']:.2f} |")
    text = ("Per stage: mean over seeds of γ and of the stage's mean LR, and LR / γ (mean ± std over seeds).\n\n"
            + "\n".join(lines) + "\n")
    write_outputs(df, f"{args.out}/schedule_gamma_share", text,
                  "OMP_NUM_THREADS=1 python scripts/gamma_share.py " + " ".join(argv or sys.argv[1:]),
                  "Frozen MLR-SNet: LR / γ per stage of its own task")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
