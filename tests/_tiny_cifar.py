"""Tiny CIFAR-10/100 files in the exact on-disk format, for the loader and downloader tests.

The pickles carry the real keys (b"data" uint8 (n, 3072) with the red, green and blue planes one
after the other, b"labels" or b"fine_labels"/b"coarse_labels", b"batch_label", b"filenames"),
written as Python 2 protocol-2 pickles like the originals. Images are made in HWC (what PIL and torchvision
show) and flattened the way CIFAR stores them, so a loader that mixes up CHW and HWC fails.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from metakit.data.cifar import CIFAR, CifarFiles


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: byte strings become py2 ``str`` (BINSTRING), not bytes objects.

    That is what the real files hold, and why they load with bytes keys under ``encoding="bytes"``
    and str keys under ``encoding="latin1"`` (torchvision's choice).
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def python2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    # The originals name numpy's array rebuilder by its pre-2.0 module, as numpy 1.x wrote it.
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _write(path: Path, record: dict) -> None:
    path.write_bytes(python2_pickle(record))


def _batch(rng: np.random.Generator, n: int, num_classes: int, name: str, hundred: bool,
           first: int | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    hwc = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)                       # (n, H, W, C)
    labels = rng.integers(0, num_classes, n) if first is None else (first + np.arange(n)) % num_classes
    record = {b"batch_label": name.encode(),
              b"data": hwc.transpose(0, 3, 1, 2).reshape(n, 3072),                    # RGB planes, rows first
              b"filenames": [f"img_{name}_{i}.png".encode() for i in range(n)]}
    if hundred:
        record[b"fine_labels"] = labels.tolist()
        record[b"coarse_labels"] = (labels // 5).tolist()
    else:
        record[b"labels"] = labels.tolist()
    return record, hwc, labels


def write_tiny(root: Path, name: str, n: int = 6, seed: int = 0, balanced: bool = False) -> dict:
    """Write tiny ``name`` files under ``root/<folder>``; returns the expected content and a table.

    ``balanced``: labels cycle through the classes across the batch files (0, 1, 2, ...), so
    every class has an image once a split holds at least as many images as classes; otherwise
    they are drawn at random.

    Returns:
        dict with train_hwc (N, 32, 32, 3), train_y, test_hwc, test_y, classes, and ``table``: the
        dataset's `CifarFiles` with the tiny files' MD5s (archive MD5 left as the real one).
    """
    real = CIFAR[name]
    hundred = name == "cifar100"
    num_classes = 100 if hundred else 10
    folder = Path(root) / real.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for part, files in (("train", real.train), ("test", real.test)):
        images, labels = [], []
        for filename, _ in files:
            first = sum(len(y) for y in labels) if balanced else None
            record, hwc, y = _batch(rng, n, num_classes, filename, hundred, first)
            _write(folder / filename, record)
            images.append(hwc)
            labels.append(y)
        out[f"{part}_hwc"], out[f"{part}_y"] = np.concatenate(images), np.concatenate(labels)
    classes = [f"class_{c}" for c in range(num_classes)]
    if hundred:
        meta = {b"fine_label_names": [c.encode() for c in classes],
                b"coarse_label_names": [f"super_{c}".encode() for c in range(20)]}
    else:
        meta = {b"num_cases_per_batch": n, b"label_names": [c.encode() for c in classes], b"num_vis": 3072}
    _write(folder / real.meta[0], meta)
    out["classes"] = classes
    out["table"] = dataclasses.replace(
        real, train=tuple((f, md5(folder / f)) for f, _ in real.train),
        test=tuple((f, md5(folder / f)) for f, _ in real.test), meta=(real.meta[0], md5(folder / real.meta[0])))
    return out


def make_tarball(src_root: Path, folder: str, dest: Path, extra: dict[str, bytes] | None = None) -> str:
    """Pack ``src_root/folder`` as a .tar.gz with ``folder`` on top (plus ``extra`` raw members); returns its MD5."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(Path(src_root) / folder, arcname=folder)
        for member, data in (extra or {}).items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return md5(dest)


class _Canary:
    """Unpickling this object creates the file ``path``: proof that a pickle was loaded."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def booby_trapped_pickle(canary: Path) -> bytes:
    """A pickle whose loading writes ``canary`` (never load one except to prove that it does)."""
    return python2_pickle({b"data": _Canary(canary)})
