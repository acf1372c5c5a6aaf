"""Command-line data preparation, run once per machine or class (never at import time).

- ``python -m data_prep.cifar --root data --dataset cifar10|cifar100|all``: download CIFAR,
  check the archive and every file against the published MD5s, extract it safely.
- ``python -m data_prep.splits --dataset digits --imbalance 10 ... --out splits/x.json``:
  write a split file a whole class shares; ``--check FILE`` verifies one and summarises it.
"""
from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr, naming the argument and the fix (exit status 2),
    not ten lines of usage first.

    Example:
        >>> Parser(prog="python -m data_prep.splits").format_usage().startswith("usage:")
        True
    """

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")
