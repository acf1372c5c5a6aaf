"""Deterministic splits: balanced meta set, long-tailed training set, label noise.

A split is a pure function of its `SplitSpec` (dataset, protocol, seed) and the dataset's
training pool. Order of operations (Meta-Weight-Net convention):

1. take ``meta_per_class`` clean images of every class out of the training pool;
2. subsample the rest to the long-tail counts, with ``n_max`` = the smallest remaining class
   (for CIFAR with a 10/class meta set: 4,990), capped at ``train_per_class`` when given
   (MNIST-1D: 5,000 of a 5,500 pool, so IF 100 keeps 5000…50; its noise protocol: 1,200);
   a dataset of `NATURAL_SIZES` (ImageNet, whose classes hold 732–1,300 images) keeps every
   remaining image instead, its standard protocol, and refuses a long tail;
3. corrupt the labels of the training part only, recording the realised transition matrix.

Splits are saved to small JSON files with a SHA-256 of their content, so a whole class shares
exactly the same images; a file whose content does not match its hash is refused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from metakit.data.longtail import LT_PROFILES, check_imbalance, longtail_counts
from metakit.data.noise import check_noise, corrupt_labels
from metakit.data.sources import DATASETS
from metakit.io import atomic_write_text
from metakit.options import require

SPLIT_FORMAT = 1
NATURAL_SIZES = ("imagenet",)  # classes of unequal size, all kept: no subsampling to the smallest


@dataclass(frozen=True)
class SplitSpec:
    """Everything a split depends on.

    Attributes:
        dataset: one of "digits", "cifar10", "cifar100".
        imbalance: largest / smallest class size of the training set (1 = balanced).
        lt_profile: "exp" or "step" long tail.
        noise_kind: "none", "uniform", "flip" or "flip2".
        noise_rate: corruption probability in [0, 1).
        meta_per_class: clean images per class moved to the meta set (0 = no meta set).
        seed: the split's seed.
        train_per_class: largest class of the training set before the long tail (``n_max``);
            None: all the meta set leaves.
    """

    dataset: str = "digits"
    imbalance: float = 1.0
    lt_profile: str = "exp"
    noise_kind: str = "none"
    noise_rate: float = 0.0
    meta_per_class: int = 10
    seed: int = 0
    train_per_class: int | None = None

    def validate(self) -> "SplitSpec":
        """Raise a clear error on any bad field; returns self.

        Example:
            >>> SplitSpec(imbalance=10).validate().imbalance
            10
        """
        require("dataset", self.dataset, object, choices=DATASETS)
        check_imbalance(self.imbalance)
        require("lt_profile", self.lt_profile, object, choices=LT_PROFILES)
        check_noise(self.noise_kind, self.noise_rate)
        require("meta_per_class", self.meta_per_class, int, low=0, example="10")
        require("seed", self.seed, int, low=0, example="0")
        if self.train_per_class is not None:
            require("train_per_class", self.train_per_class, int, low=1, example="5000")
        if self.dataset in NATURAL_SIZES and (self.imbalance != 1 or self.train_per_class is not None):
            raise ValueError(f"dataset={self.dataset!r} keeps every training image of its classes (the standard "
                             f"protocol), so imbalance={self.imbalance!r} and train_per_class={self.train_per_class!r} "
                             f"do not apply; use imbalance=1 and train_per_class=None.")
        return self


@dataclass
class Split:
    """Indices into a source's training pool, and the labels the learner sees.

    Attributes:
        spec: what produced it.
        train_idx: (N,) indices of the long-tailed training images.
        train_labels: (N,) their labels after noise (what training sees).
        clean_labels: (N,) their true labels.
        meta_idx: (M,) indices of the clean, balanced meta images.
        class_counts: training images per class (the long tail).
        transition: realised (C, C) clean→noisy label transition matrix.
    """

    spec: SplitSpec
    train_idx: np.ndarray
    train_labels: np.ndarray
    clean_labels: np.ndarray
    meta_idx: np.ndarray
    class_counts: list[int] = field(default_factory=list)
    transition: np.ndarray | None = None


def make_split(spec: SplitSpec, pool_labels: np.ndarray) -> Split:
    """Build the split of ``spec`` over a training pool with labels ``pool_labels``.

    Example:
        >>> import numpy as np
        >>> labels = np.repeat(np.arange(3), 30)
        >>> s = make_split(SplitSpec(imbalance=4, meta_per_class=5), labels)
        >>> s.class_counts, len(s.meta_idx)
        ([25, 12, 6], 15)
        >>> make_split(SplitSpec("imagenet", meta_per_class=0), np.array([0, 0, 0, 1])).class_counts
        [3, 1]
    """
    spec.validate()
    pool_labels = np.asarray(pool_labels, dtype=np.int64)
    num_classes = int(pool_labels.max()) + 1
    rng = np.random.default_rng([spec.seed, 0x6D6B])                     # 'mk'
    per_class = [rng.permutation(np.flatnonzero(pool_labels == c)) for c in range(num_classes)]
    smallest = min(len(ix) for ix in per_class)
    if spec.meta_per_class >= smallest:
        raise ValueError(f"meta_per_class={spec.meta_per_class} leaves no training images: the smallest class "
                         f"of {spec.dataset} has {smallest}; use meta_per_class < {smallest}.")
    meta = [ix[:spec.meta_per_class] for ix in per_class]
    rest = [ix[spec.meta_per_class:] for ix in per_class]
    n_max = min(len(ix) for ix in rest)
    if spec.train_per_class is not None:
        if spec.train_per_class > n_max:
            raise ValueError(f"train_per_class={spec.train_per_class} exceeds the {n_max} images per class that "
                             f"meta_per_class={spec.meta_per_class} leaves in {spec.dataset}; use "
                             f"train_per_class <= {n_max}.")
        n_max = spec.train_per_class
    if spec.dataset in NATURAL_SIZES:  # every image stays: the classes keep their own sizes
        counts = [len(ix) for ix in rest]
    else:
        counts = longtail_counts(n_max, num_classes, spec.imbalance, spec.lt_profile)
    if min(counts) < 1:
        raise ValueError(f"imbalance={spec.imbalance} leaves a class of {spec.dataset} with no training image; "
                         f"use imbalance <= {n_max}.")
    train_idx = np.concatenate([ix[:n] for ix, n in zip(rest, counts)])
    clean = pool_labels[train_idx]
    noisy, transition = corrupt_labels(clean, num_classes, spec.noise_kind, spec.noise_rate, rng)
    return Split(spec, train_idx, noisy, clean, np.concatenate(meta).astype(np.int64), counts, transition)


def _payload(split: Split) -> dict:
    return {
        "format": SPLIT_FORMAT,
        "spec": asdict(split.spec),
        "train_idx": split.train_idx.tolist(),
        "train_labels": split.train_labels.tolist(),
        "clean_labels": split.clean_labels.tolist(),
        "meta_idx": split.meta_idx.tolist(),
        "class_counts": list(split.class_counts),
        "transition": None if split.transition is None else split.transition.tolist(),
    }


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def save_split(split: Split, path: str | Path) -> Path:
    """Write a split as JSON with the SHA-256 of its content (atomically).

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> s = make_split(SplitSpec(), np.repeat(np.arange(2), 20))
        >>> p = save_split(s, pathlib.Path(tempfile.mkdtemp()) / "s.json")
        >>> load_split(p).class_counts == s.class_counts
        True
    """
    payload = _payload(split)
    atomic_write_text(Path(path), json.dumps({"sha256": _digest(payload), "split": payload}))
    return Path(path)


def load_split(path: str | Path) -> Split:
    """Read a split file, refusing one whose content does not match its recorded hash.

    Example:
        >>> load_split("no/such/file.json")
        Traceback (most recent call last):
        ...
        FileNotFoundError: split file 'no/such/file.json' does not exist; write one with `python -m data_prep.splits --out no/such/file.json ...`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file '{path}' does not exist; write one with "
                                f"`python -m data_prep.splits --out {path} ...`.")
    try:
        record = json.loads(path.read_text())
        payload, recorded = record["split"], record["sha256"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"split file '{path}' is not a metakit split ({err}); write it again with "
                         f"`python -m data_prep.splits`.") from None
    if _digest(payload) != recorded:
        raise ValueError(f"split file '{path}' was modified: its content does not match its recorded sha256; "
                         f"refusing it. Write it again with `python -m data_prep.splits`.")
    if payload.get("format") != SPLIT_FORMAT:
        raise ValueError(f"split file '{path}' has format {payload.get('format')!r}, expected {SPLIT_FORMAT}.")
    arr = lambda key: np.asarray(payload[key], dtype=np.int64)  # noqa: E731
    transition = None if payload["transition"] is None else np.asarray(payload["transition"])
    return Split(SplitSpec(**payload["spec"]), arr("train_idx"), arr("train_labels"), arr("clean_labels"),
                 arr("meta_idx"), list(payload["class_counts"]), transition)
