"""Device-resident batches: the whole split is one tensor on the device.

`Batches` keeps uint8 images on the chosen device and does augmentation on whole batches
with tensor indexing (CIFAR: random 32x32 crop of the zero-padded 40x40 image and a horizontal
flip; digits: a random shift of up to one pixel), so there is no per-sample Python in the hot
loop. Compare with `bench/loader.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

AUGMENTS = ("none", "shift", "crop_flip")
_PAD = {"shift": 1, "crop_flip": 4}


@dataclass
class Batch:
    """One batch: normalised float images (B, C, H, W), labels (B,), pool positions (B,)."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and take a random HxW crop per image, as one gather.

    Example:
        >>> x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
        >>> random_crop(x, 0, torch.Generator().manual_seed(0)).equal(x)
        True
    """
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))                       # (B, C, H+2p, W+2p)
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu").to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu").to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]    # (B, 1, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]    # (B, 1, 1, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows, cols]                                             # (B, C, H, W)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 1, 4)
        >>> random_flip(x, torch.Generator().manual_seed(0)).shape
        torch.Size([1, 1, 1, 4])
    """
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)        # (B,)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


class Batches:
    """Iterate over (augmented, normalised) mini-batches of images held on one device.

    Args:
        x: (N, C, H, W) uint8 images.
        y: (N,) labels.
        batch_size: images per batch.
        device: where the tensors live and the work happens.
        mean: per-channel mean of x/255, for normalisation.
        std: per-channel std of x/255.
        augment: "none", "shift" (digits) or "crop_flip" (CIFAR).
        shuffle: reshuffle every epoch; turn off for evaluation.
        seed: seeds the shuffling and augmentation (the same seed gives the same batches).
        sample_weights: (N,) draw batches with replacement in proportion to these
            (class-balanced re-sampling); an epoch is still N images.
        drop_last: drop a final short batch (keeps every batch the same size).

    Example:
        >>> x = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)
        >>> b = Batches(x, np.arange(10) % 2, 4, torch.device("cpu"), (0.5,), (0.5,))
        >>> [len(batch.y) for batch in b]
        [4, 4, 2]
    """

    def __init__(self, x: torch.Tensor, y: np.ndarray | torch.Tensor, batch_size: int, device: torch.device,
                 mean: Sequence[float], std: Sequence[float], *, augment: str = "none", shuffle: bool = True,
                 seed: int = 0, sample_weights: np.ndarray | None = None, drop_last: bool = False):
        if augment not in AUGMENTS:
            raise ValueError(f"augment={augment!r} is unknown; use one of {AUGMENTS}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be a positive integer, e.g. 128.")
        self.x = x.to(device)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.long).to(device)
        self.batch_size, self.device, self.augment = int(batch_size), device, augment
        self.shuffle, self.drop_last = shuffle, drop_last
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.generator = torch.Generator().manual_seed(seed)
        self.sample_weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float64)

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self) -> torch.Tensor:
        """The image order of one epoch (a permutation, or a weighted draw with replacement)."""
        n = len(self.y)
        if self.sample_weights is not None:
            return torch.multinomial(self.sample_weights, n, replacement=True, generator=self.generator)
        return torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Augment (uint8) and normalise a batch: returns float (B, C, H, W)."""
        if self.augment != "none":
            x = random_crop(x, _PAD[self.augment], self.generator)
            if self.augment == "crop_flip":
                x = random_flip(x, self.generator)
        return (x.float() / 255.0 - self.mean) / self.std

    def __iter__(self) -> Iterator[Batch]:
        order = self.order().to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield Batch(self.transform(self.x[idx]), self.y[idx], idx)

    def forever(self) -> Iterator[Batch]:
        """Endless batches, reshuffled each pass (for the meta set drawn every step).

        Example:
            >>> b = Batches(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), [0, 1, 0], 2, torch.device("cpu"), (0.,), (1.,))
            >>> it = b.forever(); [len(next(it).y) for _ in range(3)]
            [2, 1, 2]
        """
        while True:
            yield from self
