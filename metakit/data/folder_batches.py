"""Batches of images decoded from files by DataLoader workers: `Batches`' interface for data that does
not fit in memory (ImageNet, `metakit.data.imagenet`).

The epoch's order is drawn from the object's own ``generator`` exactly as `Batches.order` draws
it (a permutation, or a weighted draw with replacement), and the DataLoader takes its workers'
seeds from the same generator, so saving ``generator``'s state at an epoch's end (what a run's
checkpoint does) makes a resumed run read the same images in the same order. Workers are
started afresh every epoch (no ``persistent_workers``), so an epoch's seeds follow its order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from metakit.data.batches import Batch
from metakit.options import require


class ImageFiles(Dataset):
    """(transformed image, label, position) of file ``folder / files[i]``, decoded as RGB by PIL.

    Example:
        >>> import tempfile, pathlib, PIL.Image
        >>> d = pathlib.Path(tempfile.mkdtemp()); PIL.Image.new("L", (5, 4)).save(d / "a.JPEG")
        >>> x, y, i = ImageFiles(d, np.array([b"a.JPEG"]), np.array([3]), lambda im: im.size + (im.mode,))[0]
        >>> x, y, i
        ((5, 4, 'RGB'), 3, 0)
    """

    def __init__(self, folder: Path, files: np.ndarray, labels: np.ndarray, transform: Callable):
        self.folder, self.files, self.labels, self.transform = Path(folder), files, labels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.folder / self.files[i].decode()) as image:        # grey and CMYK JPEGs become RGB
            rgb = image.convert("RGB")
        return self.transform(rgb), int(self.labels[i]), i


class FolderBatches:
    """Iterate over (augmented, normalised) mini-batches of image files, decoded in worker processes.

    Args:
        folder: the folder the paths are relative to.
        files: (N,) bytes paths.
        labels: (N,) labels (what training sees).
        batch_size: images per batch.
        device: where each batch goes.
        transform: PIL image → normalised float tensor (C, H, W); random for training.
        shuffle: reshuffle every epoch; turn off for evaluation.
        seed: seeds the order and the workers (the same seed gives the same batches).
        sample_weights: (N,) draw with replacement in proportion to these (as `Batches`).
        workers: DataLoader worker processes (0: decode in this process).

    Example:
        >>> import tempfile, pathlib, PIL.Image
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for i in range(3): PIL.Image.new("RGB", (4, 4)).save(d / f"{i}.JPEG")
        >>> from torchvision.transforms import ToTensor
        >>> b = FolderBatches(d, np.array([b"0.JPEG", b"1.JPEG", b"2.JPEG"]), np.array([0, 1, 0]), 2,
        ...                   torch.device("cpu"), ToTensor(), workers=0)
        >>> [tuple(batch.x.shape) for batch in b], len(b)
        ([(2, 3, 4, 4), (1, 3, 4, 4)], 2)
    """

    def __init__(self, folder: Path, files: np.ndarray, labels: np.ndarray | torch.Tensor, batch_size: int,
                 device: torch.device, transform: Callable, *, shuffle: bool = True, seed: int = 0,
                 sample_weights: np.ndarray | None = None, workers: int = 0):
        require("batch_size", batch_size, int, low=1, example="256")
        require("workers", workers, int, low=0, example="8")
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(files):
            raise ValueError(f"labels has {len(labels)} entries but files {len(files)}; give one label a file.")
        self.dataset = ImageFiles(folder, files, labels, transform)
        self.y = torch.as_tensor(labels)                                           # (N,) on the CPU
        self.batch_size, self.device, self.shuffle, self.workers = int(batch_size), device, shuffle, int(workers)
        self.generator = torch.Generator().manual_seed(seed)
        self.sample_weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float64)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def order(self) -> torch.Tensor:
        """The image order of one epoch (a permutation, or a weighted draw with replacement)."""
        n = len(self.y)
        if self.sample_weights is not None:
            return torch.multinomial(self.sample_weights, n, replacement=True, generator=self.generator)
        return torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)

    def __iter__(self) -> Iterator[Batch]:
        order = self.order().tolist()
        pin = self.device.type == "cuda"
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=order, num_workers=self.workers,
                            pin_memory=pin, generator=self.generator, drop_last=False)
        for x, y, index in loader:                                                 # (B, C, H, W), (B,), (B,)
            yield Batch(x.to(self.device, non_blocking=pin), y.to(self.device, non_blocking=pin), index.to(self.device))
