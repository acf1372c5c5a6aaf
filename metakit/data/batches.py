"""Device-resident batches: the whole split is one tensor on the device.

`Batches` keeps uint8 images (or float signals) on the chosen device and does augmentation on whole batches
with tensor indexing (CIFAR: random 32x32 crop of the zero-padded 40x40 image and a horizontal
flip; digits: a random shift of up to one pixel), so there is no per-sample Python in the hot
loop. Compare with `bench/loader.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from metakit.options import require

AUGMENTS = ("none", "shift", "crop_flip")
_PAD = {"shift": 1, "crop_flip": 4}


@dataclass
class Batch:
    """One batch: normalised float inputs (B, C, H, W) or (B, C, L), labels (B,), pool positions (B,)."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


def _offsets(b: int, pad: int, generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image crop offsets (oy, ox) in [0, 2*pad], drawn on the CPU generator (rows first)."""
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu").to(device)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device="cpu").to(device)
    return oy, ox


def _window(x: torch.Tensor, pad: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Gather the (B, H, W) window given by ``rows`` (B, H) and ``cols`` (B, W) of the zero-padded x."""
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)).view(b, c, -1)        # (B, C, (H+2p)(W+2p))
    pixel = (rows * (w + 2 * pad))[:, :, None] + cols[:, None, :]                   # (B, H, W)
    # One gather; the index is shared by the channels (expand: no copy).
    return padded.gather(2, pixel.view(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and take a random HxW crop per image, as one gather.

    Example:
        >>> x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
        >>> random_crop(x, 0, torch.Generator().manual_seed(0)).equal(x)
        True
    """
    return crop_flip(x, pad, False, generator)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2.

    Example:
        >>> x = torch.arange(4.).view(1, 1, 1, 4)
        >>> random_flip(x, torch.Generator().manual_seed(0)).shape
        torch.Size([1, 1, 1, 4])
    """
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)        # (B,)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def crop_flip(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """`random_crop`, then `random_flip` when ``flip``, fused into one gather.

    It draws the same random numbers in the same order as the two steps, so it returns exactly
    ``random_flip(random_crop(x, pad, g), g)`` at a fraction of the memory traffic.

    Args:
        x: (B, C, H, W) images (any dtype; padding is zeros).
        pad: largest shift in pixels (CIFAR: 4, digits: 1).
        flip: also mirror each image left-right with probability 1/2.
        generator: CPU generator driving the draws.

    Returns:
        (B, C, H, W) augmented images, same dtype and device as x.

    Example:
        >>> x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
        >>> crop_flip(x, 0, True, torch.Generator().manual_seed(0)).equal(x.flip(-1))
        True
    """
    b, _, h, w = x.shape
    oy, ox = _offsets(b, pad, generator, x.device)                                  # (B,), (B,)
    j = torch.arange(w, device=x.device)                                            # (W,)
    cols = ox[:, None] + j                                                          # (B, W)
    if flip:
        mirror = (torch.rand(b, generator=generator) < 0.5).to(x.device)          # (B,)
        cols = torch.where(mirror[:, None], ox[:, None] + (w - 1 - j), cols)
    rows = oy[:, None] + torch.arange(h, device=x.device)                           # (B, H)
    return _window(x, pad, rows, cols)


class Batches:
    """Iterate over (augmented, normalised) mini-batches of images held on one device.

    Args:
        x: (N, C, H, W) uint8 images, or float inputs of any shape (N, C, ...) such as
            MNIST-1D's (N, 1, 40) signals (normalised as they are, not divided by 255).
        y: (N,) labels.
        batch_size: images per batch.
        device: where the tensors live and the work happens.
        mean: per-channel mean of x/255 (uint8) or of x (float), for normalisation.
        std: per-channel std, likewise.
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
        require("augment", augment, object, choices=AUGMENTS)
        require("batch_size", batch_size, int, low=1, example="128")
        self.x = x.to(device)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.long).to(device)
        self.batch_size, self.device, self.augment = int(batch_size), device, augment
        self.shuffle, self.drop_last = shuffle, drop_last
        if augment != "none" and x.dim() != 4:
            raise ValueError(f"augment={augment!r} shifts images (N, C, H, W) but the inputs have shape "
                             f"{tuple(x.shape)}; use augment='none'.")
        stats = (1, -1) + (1,) * (x.dim() - 2)                                    # broadcast over positions
        self.mean = torch.tensor(mean, device=device).view(*stats)
        self.std = torch.tensor(std, device=device).view(*stats)
        range_ = 255.0 if x.dtype == torch.uint8 else 1.0                        # uint8 images are x/255
        self.scale, self.shift = 1.0 / (range_ * self.std), -self.mean / self.std  # (1, C, 1, ...)
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
        """Augment and normalise a batch: returns float (B, C, ...)."""
        if self.augment != "none":
            x = crop_flip(x, _PAD[self.augment], self.augment == "crop_flip", self.generator)  # (B, C, H, W)
        return x.float().mul_(self.scale).add_(self.shift)                        # (x/255 - mean) / std

    def __iter__(self) -> Iterator[Batch]:
        order = self.order().to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            # index_select, not x[idx]: advanced indexing copies byte by byte (~50x slower on CPU).
            yield Batch(self.transform(self.x.index_select(0, idx)), self.y.index_select(0, idx), idx)
