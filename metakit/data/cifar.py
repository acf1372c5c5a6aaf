"""CIFAR-10/100 from torchvision's on-disk layout, loaded only after every checksum matches.

Layout (what ``python -m data_prep.cifar`` writes, the same as ``torchvision.datasets``)::

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/cifar-100-python/{train, test, meta}

The files are Python pickles, and unpickling runs code chosen by whoever wrote the file, so
`load_cifar` reads each file's bytes, checks their MD5 against the published table below (the
checksums torchvision uses) and unpickles those very bytes only once every file has matched.
Reference: Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html.
"""
from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metakit.data.registry import register_dataset
from metakit.data.source import Source, channel_stats


@dataclass(frozen=True)
class CifarFiles:
    """Where one CIFAR dataset comes from and what its files must hash to.

    Attributes:
        folder: top folder inside the archive and under the data root.
        url: the official tarball.
        archive: the tarball's file name.
        archive_md5: MD5 of the tarball.
        train: (file name, MD5) of each training batch, in order.
        test: (file name, MD5) of each test batch.
        meta: (file name, MD5) of the file holding the class names.
        label_key: key of the labels in a batch.
        names_key: key of the class names in the meta file.
    """

    folder: str
    url: str
    archive: str
    archive_md5: str
    train: tuple[tuple[str, str], ...]
    test: tuple[tuple[str, str], ...]
    meta: tuple[str, str]
    label_key: bytes
    names_key: bytes

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """Every (file name, MD5) of the dataset."""
        return self.train + self.test + (self.meta,)


CIFAR = {  # the checksums published with torchvision.datasets.CIFAR10 / CIFAR100
    "cifar10": CifarFiles(
        "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        (("data_batch_1", "c99cafc152244af753f735de768cd75f"), ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
         ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"), ("data_batch_4", "634d18415352ddfa80567beed471001a"),
         ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")),
        (("test_batch", "40351d587109b95175f43aff81a1287e"),),
        ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"), b"labels", b"label_names"),
    "cifar100": CifarFiles(
        "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
        (("train", "16019d7e3df5f24257cddd939b257f8d"),), (("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
        ("meta", "7973b15100ade9c7d40fb424638fde48"), b"fine_labels", b"fine_label_names"),
}


def download_command(name: str, root: str | Path) -> str:
    """The shell command that downloads and verifies dataset ``name`` into ``root``.

    Example:
        >>> download_command("cifar10", "data")
        'python -m data_prep.cifar --root data --dataset cifar10'
    """
    return f"python -m data_prep.cifar --root {root} --dataset {name}"


def md5_bytes(data: bytes) -> str:
    """MD5 hex digest of ``data`` (a checksum against corruption, as torchvision publishes it).

    Example:
        >>> md5_bytes(b"")
        'd41d8cd98f00b204e9800998ecf8427e'
    """
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty"; p.write_bytes(b"")
        0
        >>> md5_file(p)
        'd41d8cd98f00b204e9800998ecf8427e'
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_name(name: str) -> CifarFiles:
    """The file table of ``name``, or a clear error.

    Example:
        >>> check_name("cifar100").folder
        'cifar-100-python'
    """
    if name not in CIFAR:
        raise ValueError(f"dataset={name!r} is not a CIFAR dataset; use one of {tuple(CIFAR)}.")
    return CIFAR[name]


def read_verified(name: str, root: str | Path) -> dict[str, bytes]:
    """Read every file of dataset ``name`` and check its MD5; unpickles nothing.

    Returns:
        File name -> the bytes whose MD5 matched.

    Raises:
        FileNotFoundError: a file is missing (the message holds the download command).
        ValueError: a file's MD5 does not match (the message names the file and the fix).

    Example:
        >>> read_verified("cifar10", "/no/such/root")
        Traceback (most recent call last):
        ...
        FileNotFoundError: cifar10 is not in '/no/such/root': '/no/such/root/cifar-10-batches-py/data_batch_1' is missing. Download and verify it (about 170 MB) with `python -m data_prep.cifar --root /no/such/root --dataset cifar10`.
    """
    table, root = check_name(name), Path(root)
    verified = {}
    for filename, expected in table.files:
        path = root / table.folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"{name} is not in '{root}': '{path}' is missing. Download and verify it "
                                    f"(about 170 MB) with "
                                    f"`{download_command(name, root)}`.")
        data = path.read_bytes()
        if (actual := md5_bytes(data)) != expected:
            raise ValueError(f"'{path}' failed its checksum (MD5 {actual}, expected {expected}): it is corrupt or "
                             f"not the official {name} file, so it was not loaded. Re-download it with "
                             f"`{download_command(name, root)}` (it replaces files that fail the check).")
        verified[filename] = data
    return verified


def _unpickle(data: bytes, path: str) -> dict:
    """Unpickle a verified CIFAR file (Python 2 pickles: keys and strings come back as bytes)."""
    record = pickle.loads(data, encoding="bytes")
    if not isinstance(record, dict):
        raise ValueError(f"'{path}' holds a {type(record).__name__}, not a CIFAR batch dict.")
    return record


def _batch(data: bytes, path: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 3, 32, 32) uint8 and labels (n,) int64 of one verified batch file."""
    record = _unpickle(data, path)
    images = np.asarray(record[b"data"], dtype=np.uint8)                           # (n, 3072)
    labels = np.asarray(record[label_key], dtype=np.int64)                         # (n,)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32 or len(labels) != len(images):
        raise ValueError(f"'{path}' has data {images.shape} and {len(labels)} labels; expected (n, 3072) and n.")
    # Each row holds the red, green and blue 32x32 planes one after the other, rows first: CHW.
    return images.reshape(-1, 3, 32, 32), labels                                   # (n, 3, 32, 32)


def _stack(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, np.ndarray]:
    images = np.concatenate([x for x, _ in parts])                                 # (N, 3, 32, 32)
    return torch.from_numpy(np.ascontiguousarray(images)), np.concatenate([y for _, y in parts])


def load_cifar(name: str, root: str | Path) -> Source:
    """CIFAR-10 or CIFAR-100 (fine labels) as a `Source`, after checking every file's MD5.

    Args:
        name: "cifar10" or "cifar100".
        root: the folder holding ``cifar-10-batches-py`` / ``cifar-100-python``.

    Returns:
        A `Source`: 50,000 training and 10,000 test images, uint8 (N, 3, 32, 32), int64 labels,
        the class names from the meta file, mean/std of the training images, augment "crop_flip".

    Example:
        >>> load_cifar("cifar100", "/no/such/root")
        Traceback (most recent call last):
        ...
        FileNotFoundError: cifar100 is not in '/no/such/root': '/no/such/root/cifar-100-python/train' is missing. Download and verify it (about 170 MB) with `python -m data_prep.cifar --root /no/such/root --dataset cifar100`.
    """
    table, root = check_name(name), Path(root)
    verified = read_verified(name, root)          # every file checked before anything is unpickled
    where = lambda f: str(root / table.folder / f)  # noqa: E731
    train_x, train_y = _stack([_batch(verified[f], where(f), table.label_key) for f, _ in table.train])
    test_x, test_y = _stack([_batch(verified[f], where(f), table.label_key) for f, _ in table.test])
    meta_file = table.meta[0]
    classes = [c.decode() if isinstance(c, bytes) else str(c)
               for c in _unpickle(verified[meta_file], where(meta_file))[table.names_key]]
    for split, labels in (("training", train_y), ("test", test_y)):
        if labels.min() < 0 or labels.max() >= len(classes):
            raise ValueError(f"{name} {split} labels span {labels.min()}..{labels.max()} but the meta file "
                             f"names {len(classes)} classes; re-download with `{download_command(name, root)}`.")
    mean, std = channel_stats(train_x)
    return Source(name, train_x, train_y, test_x, test_y, classes, mean, std, "crop_flip")


@register_dataset("cifar100")
@register_dataset("cifar10")           # decorators apply bottom-up: cifar10 is registered first
def cifar_loader(name: str, root: Path, size: str, options: dict | None) -> Source:
    """The registered loader of ``cifar10`` and ``cifar100``: `load_cifar` (one size, no options).

    Example:
        >>> cifar_loader("cifar10", Path("/no/such/root"), "full", None)
        Traceback (most recent call last):
        ...
        FileNotFoundError: cifar10 is not in '/no/such/root': '/no/such/root/cifar-10-batches-py/data_batch_1' is missing. Download and verify it (about 170 MB) with `python -m data_prep.cifar --root /no/such/root --dataset cifar10`.
    """
    return load_cifar(name, root)
