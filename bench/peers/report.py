"""``results/bench_cpu.csv`` and ``.md`` from the benchmark's rows, written atomically, with the targets read off."""
from __future__ import annotations

import csv
import importlib.metadata
import io
import subprocess
from dataclasses import asdict
from pathlib import Path

import torch

from metakit.io import atomic_write_text

COLUMNS = ["work", "library", "variant", "status", "exact", "hyper_rel_err", "cosine", "ms", "ratio", "peak_mib",
           "peak_mem_ratio", "rounds", "note", "commit", "command"]
# issue 19's targets: the metakit default's ratio to a plain step, per work
RATIO_TARGETS = {"lr": 2.0, "weight": 3.5, "forward": 4.5}
EXACT_PEERS = ("higher", "torchopt", "betty", "copy")


def commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def versions() -> str:
    out = [f"torch {torch.__version__}"]
    for name in ("higher", "torchopt", "betty-ml"):
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} not installed")
    return ", ".join(out)


def _fmt(value, digits: int = 2) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2e}" if (value and abs(value) < 1e-2) else f"{value:.{digits}f}"
    return str(value)


def to_rows(specs, meta: dict) -> list[dict]:
    rev = meta.get("commit") or commit()
    rows = []
    for spec in specs:
        row = {"work": spec.work, "library": spec.library, "variant": spec.variant, **spec.result,
               "commit": rev, "command": meta["command"]}
        rows.append({c: row.get(c, "") for c in COLUMNS})
    return rows


def targets(rows: list[dict]) -> list[str]:
    """One line per target of issue 19: met or missed, with the numbers it compares."""
    find = {(r["work"], r["library"], r["variant"]): r for r in rows}
    lines = []
    for work, target in RATIO_TARGETS.items():
        ours = find.get((work, "metakit", "default"), {})
        if ours.get("ratio") in (None, ""):
            lines.append(f"- {work}: metakit default not timed ({ours.get('status', 'missing')})")
            continue
        r = ours["ratio"]
        lines.append(f"- {work}: metakit {r:.2f}x a plain step, target <= {target}: {'met' if r <= target else 'MISSED'}")
        peers = [find[(work, lib, "default")] for lib in EXACT_PEERS if (work, lib, "default") in find]
        same = [p for p in peers if p.get("ratio") not in (None, "") and p.get("exact") is True]
        other = [p for p in peers if p.get("ratio") not in (None, "") and p.get("exact") is not True]
        if same:
            best = min(same, key=lambda p: p["ratio"])
            ok = all(r < p["ratio"] for p in same)
            lines.append(f"  - faster than every exact peer (fastest: {best['library']} {best['ratio']:.2f}x): "
                         f"{'met' if ok else 'MISSED'}")
            mems = [p for p in same if p.get("peak_mem_ratio") not in (None, "")]
            if mems and ours.get("peak_mem_ratio") not in (None, ""):
                low = min(mems, key=lambda p: p["peak_mem_ratio"])
                ok = ours["peak_mem_ratio"] <= low["peak_mem_ratio"]
                lines.append(f"  - peak memory {ours['peak_mem_ratio']:.2f}x plain's, best exact peer "
                             f"{low['library']} {low['peak_mem_ratio']:.2f}x: {'met' if ok else 'MISSED'}")
        for p in other:
            lines.append(f"  - {p['library']} ({p['status']}, rel. error {_fmt(p['hyper_rel_err'])}): "
                         f"{p['ratio']:.2f}x, not the same hypergradient")
        if work == "lr" and ours.get("peak_mem_ratio") not in (None, ""):
            m = ours["peak_mem_ratio"]
            lines.append(f"  - peak memory {m:.2f}x plain's, target <= 1.5: {'met' if m <= 1.5 else 'MISSED'}")
        epoch = find.get((work, "metakit", "meta_every_epoch"))
        if epoch:
            e = epoch["ratio"]
            lines.append(f"  - amortised once per epoch {e:.3f}x, target <= 1.05: {'met' if e <= 1.05 else 'MISSED'}")
    loaders = [r for r in rows if r["work"] == "data" and r["library"] != "metakit"]
    for r in loaders:
        lines.append(f"- data: metakit Batches {r['ratio']:.1f}x faster than {r['variant']}, target >= 10: "
                     f"{'met' if r['ratio'] >= 10 else 'MISSED'}")
    return lines


def markdown(rows: list[dict], meta: dict) -> str:
    setup = asdict(meta["setup"])
    lb, la = meta["load_before"], meta["load_after"]
    head = ["work", "library", "variant", "status", "hyper rel. err", "ms", "x plain", "peak MiB", "peak x plain", "note"]
    out = [f"# `bench/compare.py` — meta-step cost next to peer libraries (CPU)", "",
           "Command (commit `" + rows[0]["commit"] + "`):", "", "    " + meta["command"], "",
           f"{versions()}; {meta['threads']} intra-op thread(s); model {setup['model']}, batch {setup['batch']} "
           f"+ meta batch {setup['meta_batch']}, {setup['dtype']}; {meta['seconds'] / 60:.1f} min.",
           f"Load average (uptime) before: {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}; after: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}.",
           f"Peak memory: {meta['memory_mode']} (RSS high-water mark above the step's start, see bench/peers/measure.py).",
           "x plain: median over rounds of the round's time over the same round's plain SGD step; hyper rel. err: "
           f"‖g − g_copy‖/‖g_copy‖ from the same start, in {meta.get('check_dtype', 'float32')}. Reading and discussion: bench/compare.md.", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["work"], r["library"], r["variant"], r["status"], _fmt(r["hyper_rel_err"]), _fmt(r["ms"], 0),
                 _fmt(r["ratio"]), _fmt(r["peak_mib"], 0), _fmt(r["peak_mem_ratio"]), r["note"]]
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    out += ["", "## Targets (issue 19)", "", *targets(rows), ""]
    return "\n".join(out)


def write_results(specs, out: str, meta: dict) -> list[dict]:
    rows = to_rows(specs, meta)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(f"{out}.csv", buf.getvalue())
    atomic_write_text(f"{out}.md", markdown(rows, meta))
    return rows
