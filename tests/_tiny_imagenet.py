"""A tiny ImageNet in the exact on-disk layout: ``<root>/imagenet/{train,val}/<wnid>/*.JPEG``.

Real JPEGs (PIL), of varied sizes and aspect ratios as ImageNet's are, named as ILSVRC-2012 names
them (``n01440764_10026.JPEG``, ``ILSVRC2012_val_00000293.JPEG``), among them a greyscale and a
CMYK JPEG (ImageNet holds both; they must come out RGB). Each class has its own mean colour, so a
classifier can learn something and a mixed-up label shows. Optionally torchvision.datasets.ImageNet's
``meta.bin`` (wnid → class names), which makes the folder a valid root of that dataset too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

WNIDS = ("n01440764", "n01443537", "n01484850")          # the first three ILSVRC-2012 classes
NAMES = {"n01440764": ("tench", "Tinca tinca"), "n01443537": ("goldfish", "Carassius auratus"),
         "n01484850": ("great white shark", "white shark")}


def _image(rng: np.random.Generator, label: int, size: tuple[int, int]) -> np.ndarray:
    colour = np.array([60, 120, 200])[np.roll(np.arange(3), label)]               # one hue per class
    w, h = size
    return np.clip(colour + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)  # (H, W, C)


def write_tiny_imagenet(root: Path, train_per_class: int = 4, val_per_class: int = 2, seed: int = 0,
                        meta: bool = False, wnids: tuple[str, ...] = WNIDS) -> dict:
    """Write the tree under ``root/imagenet``; returns {"train": [(path, label)], "val": [...], "wnids"}."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "imagenet"
    out: dict = {"wnids": list(wnids), "train": [], "val": []}
    count = 0
    for part, per_class in (("train", train_per_class), ("val", val_per_class)):
        for label, wnid in enumerate(wnids):
            (folder / part / wnid).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                count += 1
                size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))   # (W, H), not square
                image = Image.fromarray(_image(rng, label, size))
                if count % 5 == 0:
                    image = image.convert("L")                                  # a greyscale JPEG
                elif count % 7 == 0:
                    image = image.convert("CMYK")                               # a CMYK JPEG
                name = f"{wnid}_{1000 + i}.JPEG" if part == "train" else f"ILSVRC2012_val_{count:08d}.JPEG"
                image.save(folder / part / wnid / name, quality=90)
                out[part].append((str(folder / part / wnid / name), label))
    if meta:
        torch.save(({w: NAMES.get(w, (w,)) for w in wnids}, [w for w, _ in out["val"]]), folder / "meta.bin")
    out["train"].sort()
    out["val"].sort()
    return out
