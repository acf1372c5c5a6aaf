"""How long each tour notebook and each exercise takes, read off a `make demo` run (``docs/students.md``).

A demo run (`metakit.teaching.demo`) leaves ``summary.json`` (per notebook: wall seconds, the kernel's CPU
seconds) and the executed notebooks, whose cells carry papermill's ``duration``. This writes one row per
notebook part in the results format (``setting``: the notebook, ``method``: ``tour``, ``variant``: the part,
``seed``: the notebooks' ``SEED``, 0; ``test_acc`` empty): ``whole`` (CPU seconds: what an idle core takes, whatever else ran
beside it) and each code exercise ``exN`` (its answer and check cells, wall seconds, the solution in place),
with the profile, the commit and the command; and renders the students' table from that CSV between the markers of
``docs/students.md``, which a test compares with the CSV.

Usage: ``python -m metakit.teaching.tour_times runs/latest --out results/tour_times_laptop.csv
[--docs docs/students.md]``

Example:
    >>> rows = [{"setting": "00_a", "variant": "whole", "seconds": 12.3}, {"setting": "00_a", "variant": "ex1",
    ...          "seconds": 0.04}, {"setting": "00_a", "variant": "ex2", "seconds": 2.51}]
    >>> timings(rows)
    {'00_a': ('12 s', 'ex1 < 0.1 s, ex2 2.5 s')}
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from pathlib import Path

import nbformat

from metakit.io import atomic_write_text

FIELDS = ["dataset", "setting", "method", "variant", "seed", "test_acc", "seconds", "profile", "commit", "command"]
BEGIN, END = "<!-- tour-times: begin -->", "<!-- tour-times: end -->"


def measure(run: Path) -> list[dict]:
    """The rows of a demo run folder: each notebook's CPU seconds, then its exercises' seconds."""
    summary = json.loads((run / "summary.json").read_text())
    labels = {"dataset": summary.get("dataset", "digits"), "method": "tour", "seed": 0, "test_acc": "",   # timing only
              "profile": summary["profile"]}
    rows = []
    for name in sorted(summary["cpu_seconds"]):
        rows.append({**labels, "setting": name, "variant": "whole", "seconds": round(summary["cpu_seconds"][name], 1)})
        parts: dict[str, float] = {}
        for cell in nbformat.read(run / "notebooks" / f"{name}.ipynb", as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if cell.cell_type == "code" and re.fullmatch(r"ex\d+_(answer|check)", grade_id):
                part = grade_id.split("_")[0]
                parts[part] = parts.get(part, 0.0) + (cell.metadata.get("papermill", {}).get("duration") or 0.0)
        rows += [{**labels, "setting": name, "variant": part, "seconds": round(seconds, 2)}
                 for part, seconds in parts.items()]
    return rows


def _seconds(value: float) -> str:
    return "< 0.1 s" if value < 0.1 else f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def timings(rows: list[dict]) -> dict[str, tuple[str, str]]:
    """Per notebook: (whole notebook, per exercise) as the students' table shows them."""
    out: dict[str, tuple[str, list[str]]] = {}
    for row in rows:
        whole, parts = out.get(row["setting"], ("", []))
        seconds = float(row["seconds"])
        if row["variant"] == "whole":
            whole = _seconds(seconds)
        else:
            parts.append(f"{row['variant']} {_seconds(seconds)}")
        out[row["setting"]] = (whole, parts)
    return {name: (whole, ", ".join(parts) or "none") for name, (whole, parts) in out.items()}


def read(path: Path) -> list[dict]:
    """The rows of a tour-times CSV, checked: every row's fields, a number of seconds."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for line, row in enumerate(rows, start=2):
        if set(row) != set(FIELDS) or any(v is None for v in row.values()):
            raise ValueError(f"{path} line {line}: expected the columns {FIELDS}; write it again with this command.")
        try:
            float(row["seconds"])
        except ValueError:
            raise ValueError(f"{path} line {line}: seconds={row['seconds']!r} is not a number.") from None
    return rows


def render(docs: str, rows: list[dict]) -> str:
    """``docs`` with the times between `BEGIN` and `END` taken from ``rows`` (the table keeps its other columns)."""
    start, stop = docs.find(BEGIN), docs.find(END)
    if not 0 <= start < stop:
        raise ValueError(f"the page has no table between {BEGIN!r} and {END!r} lines; put them around its table.")
    lines = docs[start:stop].splitlines()
    times = timings(rows)
    for i, line in enumerate(lines):
        cells = line.split("|")
        name = cells[1].strip().strip("`") if len(cells) > 4 else ""
        if name in times:
            cells[-3], cells[-2] = f" {times[name][0]} ", f" {times[name][1]} "
            lines[i] = "|".join(cells)
    return docs[:start] + "\n".join(lines) + "\n" + docs[stop:]


def main(argv: list[str] | None = None) -> int:
    from metakit.studies.grid import git_commit

    parser = argparse.ArgumentParser(prog="python -m metakit.teaching.tour_times", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a demo run folder, e.g. runs/latest")
    parser.add_argument("--out", type=Path, required=True, help="the CSV, e.g. results/tour_times_laptop.csv")
    parser.add_argument("--docs", type=Path, default=Path("docs/students.md"), help="the page whose table it fills")
    args = parser.parse_args(argv)
    if not (args.run / "summary.json").is_file():
        print(f"error: run {args.run}: no summary.json; give a finished `make demo` folder (runs/latest).",
              file=sys.stderr)
        return 2
    command = "python -m metakit.teaching.tour_times " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = [{**row, "commit": git_commit(), "command": command} for row in measure(args.run)]
    try:
        page = render(args.docs.read_text(), rows)
    except (OSError, ValueError) as err:
        print(f"error: --docs {args.docs}: {err}", file=sys.stderr)
        return 2
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(args.out, text.getvalue())
    atomic_write_text(args.docs, page)
    print(f"wrote {args.out} ({len(rows)} rows) and the table of {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
