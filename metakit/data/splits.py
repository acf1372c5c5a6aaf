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
exactly the same images; a file whose content does not match its hash is refused, and so is one
whose content is not a split (`check_payload`: indices in range, disjoint, no duplicates, counts
that are the labels' bincount) or not this run's (`check_fits`: dataset, protocol, training pool).
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


def load_split(path: str | Path, spec: SplitSpec | None = None, pool_labels: np.ndarray | None = None,
               num_classes: int | None = None) -> Split:
    """Read a split file, refusing one whose content does not match its recorded hash or is not a split.

    Args:
        path: a file written by `save_split` (``python -m data_prep.splits``).
        spec: the run's `SplitSpec`: the file must be of the same dataset and protocol (`check_fits`).
        pool_labels: the dataset's training pool: indices must be in it, clean labels must be its labels.
        num_classes: the dataset's classes: one count each.

    Example:
        >>> load_split("no/such/file.json")
        Traceback (most recent call last):
        ...
        FileNotFoundError: split file 'no/such/file.json' does not exist; write one with `python -m data_prep.splits --out no/such/file.json ...`.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise ValueError(f"split file '{path}' is not a plain file; pass the JSON file data_prep.splits wrote.")
        raise FileNotFoundError(f"split file '{path}' does not exist; write one with "
                                f"`python -m data_prep.splits --out {path} ...`.")
    redo = "write it again with `python -m data_prep.splits`"
    try:
        record = json.loads(path.read_text())
        payload, recorded = record["split"], record["sha256"]
        digest = _digest(payload)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"split file '{path}' is not a metakit split ({type(err).__name__}: {err}); "
                         f"{redo}.") from None
    if digest != recorded:
        raise ValueError(f"split file '{path}' was modified: its content does not match its recorded sha256; "
                         f"refusing it. Write it again with `python -m data_prep.splits`.")
    if not isinstance(payload, dict) or payload.get("format") != SPLIT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise ValueError(f"split file '{path}' has format {found!r}, expected {SPLIT_FORMAT}; {redo}.")
    split = check_payload(payload, f"split file '{path}'")
    check_fits(split, spec, pool_labels, f"split file '{path}'", num_classes)
    return split


def check_payload(payload: dict, where: str = "split") -> Split:
    """The `Split` a file's payload holds, refused (one ValueError starting with ``where``) unless it is one:
    known keys, a valid spec, 1-D integer arrays of one length, non-negative indices without duplicates,
    a meta set disjoint from the training set, labels in [0, C), ``class_counts`` the clean labels' bincount.

    Example:
        >>> s = make_split(SplitSpec(meta_per_class=2), np.repeat(np.arange(2), 10))
        >>> check_payload(_payload(s)).class_counts
        [8, 8]
        >>> check_payload({**_payload(s), "meta_idx": s.train_idx[:2].tolist()}, "split file 's.json'")
        Traceback (most recent call last):
        ...
        ValueError: split file 's.json': meta_idx shares 2 indices with train_idx (e.g. 2): the meta set must be held out; write it again with `python -m data_prep.splits`.
    """
    redo = "write it again with `python -m data_prep.splits`"

    def refuse(what: str) -> None:
        raise ValueError(f"{where}: {what}; {redo}.")
    keys = set(_FIELDS) | {"format"}
    if set(payload) != keys:
        extra, missing = sorted(set(payload) - keys), sorted(keys - set(payload))
        refuse(f"holds {'unknown keys ' + str(extra) if extra else ''}{' and ' if extra and missing else ''}"
               f"{'no ' + str(missing) if missing else ''}")
    if not isinstance(payload["spec"], dict) or set(payload["spec"]) != set(SplitSpec.__dataclass_fields__):
        refuse(f"spec={payload['spec']!r} is not a SplitSpec (its fields: {list(SplitSpec.__dataclass_fields__)})")
    try:
        spec = SplitSpec(**payload["spec"]).validate()
    except (ValueError, TypeError) as err:
        refuse(f"its spec is invalid ({err})")
    arrays = {}
    for key in _FIELDS[1:5]:
        values = payload[key]
        array = np.asarray(values) if isinstance(values, list) else None
        if array is None or array.ndim != 1 or (array.size and array.dtype.kind != "i"):
            refuse(f"{key} is not a list of integers")
        arrays[key] = array.astype(np.int64)
    train, meta, counts = arrays["train_idx"], arrays["meta_idx"], payload["class_counts"]
    lengths = {k: len(arrays[k]) for k in ("train_idx", "train_labels", "clean_labels")}
    if len(set(lengths.values())) > 1:
        refuse(f"its lengths differ ({lengths}): one label each training index")
    for key, array in (("train_idx", train), ("meta_idx", meta)):
        if array.size and array.min() < 0:
            refuse(f"{key} holds a negative index ({array.min()})")
        if len(np.unique(array)) < len(array):
            refuse(f"{key} lists an index twice (e.g. {_repeated(array)})")
    shared = np.intersect1d(train, meta)
    if shared.size:
        refuse(f"meta_idx shares {shared.size} indices with train_idx (e.g. {shared[0]}): the meta set must be "
               f"held out")
    if not isinstance(counts, list) or len(counts) < 2 or not all(type(c) is int and c >= 0 for c in counts):
        refuse(f"class_counts={str(counts)[:40]} is not a list of (at least 2) counts")
    for key in ("train_labels", "clean_labels"):
        if arrays[key].size and not 0 <= arrays[key].min() <= arrays[key].max() < len(counts):
            refuse(f"{key} holds a label outside [0, {len(counts)})")
    if np.bincount(arrays["clean_labels"], minlength=len(counts)).tolist() != counts:
        refuse(f"class_counts={str(counts)[:60]} is not the bincount of clean_labels")
    if spec.noise_kind == "none" and not np.array_equal(arrays["train_labels"], arrays["clean_labels"]):
        refuse("train_labels differ from clean_labels but noise_kind='none'")
    transition = payload["transition"]
    if transition is not None:
        try:
            transition = np.asarray(transition, dtype=np.float64)
        except (ValueError, TypeError):
            transition = np.zeros(0)
        if transition.shape != (len(counts),) * 2 or not np.isfinite(transition).all():
            refuse(f"transition is not a finite {len(counts)} x {len(counts)} matrix")
    return Split(spec, train, arrays["train_labels"], arrays["clean_labels"], meta, list(counts), transition)


_FIELDS = ("spec", "train_idx", "train_labels", "clean_labels", "meta_idx", "class_counts", "transition")
# what a run's split must share: its protocol and its sizes
PROTOCOL = ("dataset", "imbalance", "lt_profile", "noise_kind", "noise_rate", "meta_per_class", "train_per_class")


def check_fits(split: Split, spec: SplitSpec | None, pool_labels: np.ndarray | None, where: str = "split",
               num_classes: int | None = None) -> None:
    """Refuse a split made for another dataset or protocol than ``spec`` (its seed may differ: a class shares
    one split), or whose indices and clean labels are not those of the training pool ``pool_labels`` (of
    ``num_classes`` classes; None: the pool's largest label + 1).

    Example:
        >>> s = make_split(SplitSpec(imbalance=2, meta_per_class=2), np.repeat(np.arange(2), 10))
        >>> check_fits(s, SplitSpec(imbalance=1), None, "split file 's.json'")
        Traceback (most recent call last):
        ...
        ValueError: split file 's.json' was made for imbalance=2 but this run has imbalance=1; pass --imbalance 2 (the split's), or write a split for this run with `python -m data_prep.splits`.
    """
    for name in PROTOCOL if spec is not None else ():
        theirs, ours = getattr(split.spec, name), getattr(spec, name)
        if theirs != ours:
            raise ValueError(f"{where} was made for {name}={theirs!r} but this run has {name}={ours!r}; pass "
                             f"--{name.replace('_', '-')} {theirs} (the split's), or write a split for this run with "
                             f"`python -m data_prep.splits`.")
    if pool_labels is None:
        return
    pool = np.asarray(pool_labels)
    classes = num_classes if num_classes is not None else int(pool.max()) + 1 if len(pool) else 0
    used = np.concatenate([split.train_idx, split.meta_idx])
    problem = ""
    if used.size and used.max() >= len(pool):
        problem = f"index {used.max()} is beyond the {len(pool)} images of the training pool"
    elif len(split.class_counts) != classes:
        problem = f"it has {len(split.class_counts)} classes, the dataset {classes}"
    elif not np.array_equal(pool[split.train_idx], split.clean_labels):
        problem = "its clean_labels are not the dataset's labels of train_idx"
    if problem:
        raise ValueError(f"{where} does not fit {split.spec.dataset}'s training pool ({problem}): it was made for "
                         f"other data; write it again with `python -m data_prep.splits` for this dataset and size.")


def _repeated(array: np.ndarray) -> int:
    values, counts = np.unique(array, return_counts=True)
    return int(values[counts > 1][0])
