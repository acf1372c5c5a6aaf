"""ImageNet (ILSVRC-2012) read from disk in torchvision's layout, streamed (it does not fit in memory).

Use it (``dataset="imagenet"``) where the ILSVRC-2012 images are on disk. ``--data-root`` is the
folder holding ``imagenet/``, laid out as ``torchvision.datasets.ImageNet`` writes it::

    <data_root>/imagenet/train/<wnid>/*.JPEG    the training pool, one folder a class
    <data_root>/imagenet/val/<wnid>/*.JPEG      the test set, sorted into class folders
    <data_root>/imagenet/meta.bin               optional: the class names

DataLoader workers decode the images with the standard ResNet transforms; the crop sizes and the
worker count are `ImageNetOptions` (``Config.data_options``), so tests run tiny images. How to
build this tree, and where the file list and transforms come from: docs/guide/design_notes.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metakit.data.folder_batches import FolderBatches
from metakit.data.registry import register_dataset
from metakit.options import option, parse

IMAGENET_MEAN = (0.485, 0.456, 0.406)   # of the training images, RGB in [0, 1] (torchvision's constants)
IMAGENET_STD = (0.229, 0.224, 0.225)
FOLDER = "imagenet"


@dataclass(frozen=True)
class ImageNetOptions:
    """How ImageNet is read (``Config.data_options`` with ``dataset="imagenet"``)."""

    image_size: int = option(224, "side of the training crop and of the evaluation centre crop", low=8)
    resize: int = option(256, "evaluation: the shorter side is resized to this before the centre crop "
                              "(>= image_size)", low=8)
    workers: int = option(8, "DataLoader processes decoding JPEGs (0: in the main process)", low=0)
    eval_batch_size: int = option(250, "images per evaluation batch (test set, full training loss)", low=1)


def imagenet_options(options: dict | None) -> ImageNetOptions:
    """Parse and check ImageNet's ``data_options``.

    Example:
        >>> imagenet_options({"image_size": 32, "resize": 36}).resize
        36
        >>> imagenet_options({"image_size": 64, "resize": 32})
        Traceback (most recent call last):
        ...
        ValueError: dataset='imagenet': resize=32 is smaller than image_size=64; use resize >= image_size (the standard pair: 256 and 224).
    """
    parsed = parse(ImageNetOptions, dict(options or {}), owner="dataset='imagenet'")
    if parsed.resize < parsed.image_size:
        raise ValueError(f"dataset='imagenet': resize={parsed.resize} is smaller than image_size={parsed.image_size}; "
                         f"use resize >= image_size (the standard pair: 256 and 224).")
    return parsed


def layout_fix(root: str | Path) -> str:
    """The one-line fix of a missing or malformed ImageNet folder.

    Example:
        >>> layout_fix("data").startswith("lay it out as data/imagenet/train/<wnid>/*.JPEG")
        True
    """
    where = Path(root) / FOLDER
    return (f"lay it out as {where}/train/<wnid>/*.JPEG and {where}/val/<wnid>/*.JPEG (torchvision's ImageFolder "
            f"layout, 1,000 class folders such as n01440764 in each; torchvision.datasets.ImageNet('{where}', "
            f"split='train' and 'val') writes it from the ILSVRC-2012 archives), or pass --data-root <the folder "
            f"that holds imagenet/>")


def scan(folder: Path, root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class folders, relative file paths and labels of one split, as torchvision's ImageFolder lists them.

    Returns:
        (wnids, files, labels): sorted class folder names; (N,) bytes paths relative to ``folder``
        (one numpy buffer, not N Python strings: workers that read a list of strings copy it
        page by page, pytorch/pytorch#13246); (N,) int64 labels.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    if not folder.is_dir():
        raise FileNotFoundError(f"data_root='{root}' holds no ImageNet: '{folder}' is missing; {layout_fix(root)}.")
    try:
        wnids, index = find_classes(folder)
        samples = make_dataset(folder, index, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as err:            # no class folder, or a class folder without an image
        raise FileNotFoundError(f"data_root='{root}': '{folder}' is not an ImageNet split ({err}); "
                                f"{layout_fix(root)}.") from None
    start = len(str(folder)) + 1
    files = np.array([path[start:].encode() for path, _ in samples], dtype=np.bytes_)
    return wnids, files, np.array([label for _, label in samples], dtype=np.int64)


def class_names(folder: Path, wnids: list[str]) -> list[str]:
    """The first name of each class from torchvision.datasets.ImageNet's ``meta.bin``, else the wnid."""
    meta = folder / "meta.bin"
    if not meta.is_file():
        return list(wnids)
    try:
        wnid_to_classes = torch.load(meta, weights_only=True)[0]
        return [str(wnid_to_classes[w][0]) if w in wnid_to_classes else w for w in wnids]
    except Exception as err:  # noqa: BLE001 — any unreadable meta.bin gets the same one line
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise ValueError(f"'{meta}' is not torchvision.datasets.ImageNet's meta file ({type(err).__name__}: {first}); "
                         f"delete it (classes are then named by their folders) or let torchvision write it "
                         f"again.") from None


@dataclass
class FolderSource:
    """ImageNet as file lists: the training pool, the test set (the official validation images), no
    validation split. The images stay on disk; `batches` streams them.

    Attributes:
        name: "imagenet".
        folder: ``<data_root>/imagenet``.
        train_files, test_files: (N,) bytes paths relative to ``folder/train`` and ``folder/val``.
        train_y, test_y: (N,) int64 labels (the sorted wnid's index).
        classes: class names (index = label).
        mean, std: per-channel normalisation of ``x / 255``.
        options: the `ImageNetOptions` in force.
        augment: "random_resized_crop_flip" (what the training batches do).
    """

    name: str
    folder: Path
    train_files: np.ndarray
    train_y: np.ndarray
    test_files: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    options: ImageNetOptions
    augment: str = "random_resized_crop_flip"
    val_x: None = None
    val_y: None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One input without the batch axis: (3, image_size, image_size)."""
        return 3, self.options.image_size, self.options.image_size

    def transform(self, train: bool):
        """The training (random resized crop, flip) or evaluation (resize, centre crop) transform."""
        from torchvision import transforms as T

        o = self.options
        crop = [T.RandomResizedCrop(o.image_size), T.RandomHorizontalFlip()] if train else \
            [T.Resize(o.resize), T.CenterCrop(o.image_size)]
        return T.Compose([*crop, T.ToTensor(), T.Normalize(self.mean, self.std)])

    def batches(self, part: str, index: np.ndarray | None, labels: np.ndarray, batch_size: int | None,
                device: torch.device, *, train: bool, seed: int = 0,
                sample_weights: np.ndarray | None = None) -> FolderBatches:
        """Batches of ``part`` ("train" or "test") images ``index`` (None: all) with ``labels``.

        ``train=True``: shuffled, augmented; else in order with the evaluation transform
        (``batch_size`` None: the ``eval_batch_size`` option).
        """
        files = self.train_files if part == "train" else self.test_files
        files = files if index is None else files[np.asarray(index)]
        return FolderBatches(self.folder / ("train" if part == "train" else "val"), files, labels,
                             batch_size or self.options.eval_batch_size, device, self.transform(train),
                             shuffle=train, seed=seed, sample_weights=sample_weights, workers=self.options.workers)


def load_imagenet(root: str | Path, options: dict | None = None) -> FolderSource:
    """ImageNet's file lists and labels from ``<root>/imagenet`` (see the module docstring).

    Args:
        root: the data root, the folder holding ``imagenet/``.
        options: `ImageNetOptions` fields to change (e.g. ``{"workers": 16}``).

    Example:
        >>> load_imagenet("/no/such/root")
        Traceback (most recent call last):
        ...
        FileNotFoundError: data_root='/no/such/root' holds no ImageNet: '/no/such/root/imagenet/train' is missing; lay it out as /no/such/root/imagenet/train/<wnid>/*.JPEG and /no/such/root/imagenet/val/<wnid>/*.JPEG (torchvision's ImageFolder layout, 1,000 class folders such as n01440764 in each; torchvision.datasets.ImageNet('/no/such/root/imagenet', split='train' and 'val') writes it from the ILSVRC-2012 archives), or pass --data-root <the folder that holds imagenet/>.
    """
    parsed = imagenet_options(options)
    root = Path(root)
    folder = root / FOLDER
    wnids, train_files, train_y = scan(folder / "train", root)
    val_wnids, test_files, test_y = scan(folder / "val", root)
    if val_wnids != wnids:
        only = sorted(set(wnids) ^ set(val_wnids))[:3]
        raise ValueError(f"data_root='{root}': '{folder}/train' has {len(wnids)} class folders and '{folder}/val' "
                         f"{len(val_wnids)}, not the same ones (e.g. {only}); {layout_fix(root)}.")
    return FolderSource("imagenet", folder, train_files, train_y, test_files, test_y,
                        class_names(folder, wnids), IMAGENET_MEAN, IMAGENET_STD, parsed)


@register_dataset("imagenet", options="image sizes, workers", streamed=True)
def imagenet_loader(name: str, root: Path, size: str, options: dict | None) -> FolderSource:
    """The registered loader of ``imagenet``: `load_imagenet`, ``options`` its `ImageNetOptions` changes.

    Example:
        >>> from metakit.data.registry import get_dataset
        >>> get_dataset("imagenet").load is imagenet_loader, get_dataset("imagenet").streamed
        (True, True)
    """
    return load_imagenet(root, options)
