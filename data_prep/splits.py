"""Write a split file a whole class shares, or check one.

    python -m data_prep.splits --dataset digits --imbalance 10 --noise-kind uniform \\
        --noise-rate 0.4 --meta-per-class 10 --seed 0 --out splits/x.json
    python -m data_prep.splits --dataset mnist1d --data-size small --train-per-class 100 --meta-per-class 10 \\
        --imbalance 10 --out splits/m.json                 # fits a smoke-profile MNIST-1D run
    python -m data_prep.splits --check splits/x.json

Load the file with ``Config(split_file="splits/x.json")``. For CIFAR the labels come from
``load_source(dataset, --root)``, so the data must be downloaded first
(``python -m data_prep.cifar``). Exit codes: 0 done, 1 the data or the file failed a check,
2 bad arguments (nothing written).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from data_prep import Parser
from metakit.data.longtail import LT_PROFILES
from metakit.data.noise import NOISE_KINDS
from metakit.data.sources import DATA_SIZES, DATASETS, load_source
from metakit.data.splits import Split, SplitSpec, check_fits, load_split, make_split, save_split
from metakit.io import check_writable_file


def describe(split: Split) -> str:
    """A few lines on a split: its spec, class counts, meta set size and realised noise.

    Example:
        >>> s = make_split(SplitSpec(imbalance=2, meta_per_class=2), np.repeat(np.arange(2), 10))
        >>> print(describe(s))
        dataset digits, imbalance 2 (exp), noise none 0.0, meta_per_class 2, seed 0
        training images: 12, class counts [8, 4]
        meta images: 4 (2 per class)
        realised noise: 0 of 12 training labels differ from the clean ones (0.000)
    """
    spec, n = split.spec, len(split.train_idx)
    flipped = int(np.sum(split.train_labels != split.clean_labels))
    return "\n".join([
        f"dataset {spec.dataset}, imbalance {spec.imbalance:g} ({spec.lt_profile}), noise {spec.noise_kind} "
        f"{spec.noise_rate}, meta_per_class {spec.meta_per_class}, seed {spec.seed}",
        f"training images: {n}, class counts {list(split.class_counts)}",
        f"meta images: {len(split.meta_idx)} ({spec.meta_per_class} per class)",
        f"realised noise: {flipped} of {n} training labels differ from the clean ones ({flipped / max(n, 1):.3f})",
    ])


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m data_prep.splits",
                    description="Write a split file (meta set, long tail, label noise) or check one.")
    parser.add_argument("--dataset", default="digits", choices=DATASETS, help="the training pool (default: digits)")
    parser.add_argument("--imbalance", type=float, default=1.0, help="largest / smallest class, >= 1 (default: 1)")
    parser.add_argument("--lt-profile", default="exp", choices=LT_PROFILES, help="long-tail shape (default: exp)")
    parser.add_argument("--noise-kind", default="none", choices=NOISE_KINDS, help="label noise (default: none)")
    parser.add_argument("--noise-rate", type=float, default=0.0, help="noise probability in [0, 1) (default: 0)")
    parser.add_argument("--meta-per-class", type=int, default=10, help="clean meta images per class (default: 10)")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help="largest training class before the long tail (n_max); a run's train_per_class, e.g. "
                             "100 for mnist1d at the smoke profile (default: all the meta set leaves)")
    parser.add_argument("--data-size", default="full", choices=DATA_SIZES,
                        help="the pool's size: small for MNIST-1D at the smoke profile (default: full)")
    parser.add_argument("--seed", type=int, default=0, help="the split's seed (default: 0)")
    parser.add_argument("--root", default=None, help="CIFAR folder (default: $METAKIT_DATA or ./data)")
    parser.add_argument("--out", default=None, help="the split file to write, e.g. splits/cifar10_if100_s0.json")
    parser.add_argument("--check", default=None, metavar="FILE", help="verify FILE's hash and summarise it")
    return parser


def _spec_error(parser: argparse.ArgumentParser, err: Exception) -> None:
    """Re-raise a SplitSpec error as a usage error naming the command-line flag (exit 2)."""
    field = str(err).split("=", 1)[0]
    flag = "--" + field.replace("_", "-")
    parser.error(f"argument {flag}: {err}" if field.isidentifier() else str(err))


def _check(parser: argparse.ArgumentParser, path: Path) -> int:
    """Verify a split file's hash and content (and, for digits, its indices against the bundled pool)."""
    if not path.is_file():
        parser.error(f"argument --check: '{path}' does not exist; pass a split file written with --out.")
    try:
        split = load_split(path)
        if split.spec.dataset == "digits":      # bundled: its pool is always at hand
            digits = load_source("digits")
            check_fits(split, None, digits.train_y, f"split file '{path}'", digits.num_classes)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{path}: sha256 {json.loads(path.read_text())['sha256']} matches its content, which is a consistent split")
    print(describe(split))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m data_prep.splits``: returns the exit code (2: bad arguments, 1: a check failed)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.check is not None:
        if args.out is not None:
            parser.error("argument --check: use --check FILE alone, or --out FILE to write a split, not both.")
        return _check(parser, Path(args.check))
    if args.out is None:
        parser.error("argument --out: missing; name the file to write, e.g. --out splits/x.json "
                     "(or --check FILE to verify one).")
    out = Path(args.out)
    try:
        check_writable_file(out, "--out", "splits/x.json")           # before the data is read
    except ValueError as err:
        parser.error(f"argument {err}")
    spec = SplitSpec(args.dataset, args.imbalance, args.lt_profile, args.noise_kind, args.noise_rate,
                     args.meta_per_class, args.seed, args.train_per_class)
    try:
        spec.validate()
    except (ValueError, TypeError) as err:
        _spec_error(parser, err)
    try:
        labels = load_source(args.dataset, args.root, args.data_size).train_y   # CIFAR: checksums verified first
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        split = make_split(spec, labels)
    except ValueError as err:
        _spec_error(parser, err)
    save_split(split, out)                                           # atomic: all or nothing
    print(f"wrote {out}")
    print(describe(split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
