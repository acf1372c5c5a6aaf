"""How long grading a class takes: N students' copies of one tour notebook, every code answer filled in
with the solution, graded as `make grade` does (bubblewrap sandbox, private checks, nbgrader scoring, feedback).

Usage (the numbers of docs/teaching.md, "Grading time"):
    METAKIT_PROFILE=smoke OMP_NUM_THREADS=1 python bench/grade_class.py --students 30 --workers 2

Prints the wall time, the seconds a student, the load average and each score's count. Manual answers
are left blank (they score 0 until the instructor grades them).
"""
from __future__ import annotations

import argparse
import collections
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from metakit.teaching import course
from metakit.teaching.student import BEGIN, END

ROOT = Path(__file__).resolve().parents[1]


def answered(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version with every code answer replaced by the instructor's solution (markers dropped)."""
    solutions = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in source.cells}
    filled = nbformat.from_dict(release)
    for cell in filled.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            cell.source = "\n".join(line for line in solutions[meta["grade_id"]].splitlines()
                                    if line.strip() not in (BEGIN, END))
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--notebook", default="00_welcome_and_data", help="a tour notebook's name, no suffix")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    path = ROOT / "notebooks" / f"{args.notebook}.ipynb"
    if not path.is_file():
        print(f"error: --notebook {args.notebook}: no {path}; give a name like 00_welcome_and_data", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        home, subs = Path(tmp) / "course", Path(tmp) / "subs"
        [release] = course.release([path], home)
        filled = answered(nbformat.read(release, as_version=4), nbformat.read(path, as_version=4))
        for i in range(args.students):
            (subs / f"s{i:03d}").mkdir(parents=True)
            nbformat.write(filled, subs / f"s{i:03d}" / path.name)
        start = time.perf_counter()
        totals, _ = course.grade(subs, home, workers=args.workers)
        wall = time.perf_counter() - start
        with open(totals, newline="") as f:
            scores = collections.Counter(f"{r['score']}/{r['max_score']} {r['status']}" for r in csv.DictReader(f))
    print(f"{args.students} students, {args.notebook}, profile {os.environ.get('METAKIT_PROFILE', 'laptop')}, "
          f"{args.workers} workers: {wall:.0f} s wall, {wall / args.students:.1f} s a student; "
          f"load average {os.getloadavg()[0]:.1f}; scores {dict(scores)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
