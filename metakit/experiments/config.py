"""`Config`: every choice of one experiment, its profiles (smoke / laptop / paper) and its validation.

Fields left ``None`` are filled from the profile (`PROFILES`) and then from the method's own
recipe by `Config.resolve`; `validate` gives every "argument, value, allowed, fix" error.

Example:
    >>> Config(method="ce", profile="smoke").resolve().epochs
    3
"""
from __future__ import annotations

import dataclasses
import os
import typing
import warnings
from dataclasses import dataclass
from typing import Any

from metakit.data.imagenet import imagenet_options
from metakit.data.longtail import LT_PROFILES
from metakit.data.mnist1d import TRAIN_PER_CLASS, generator_args
from metakit.data.noise import NOISE_KINDS
from metakit.data.sources import DATA_SIZES, DATASETS, STREAMED
from metakit.data.splits import SplitSpec
from metakit.methods import get_method
from metakit.models import MODELS, SIGNAL_MODELS, WIDTH_MODELS
from metakit.options import option
from metakit.options import parse as parse_options
from metakit.options import validate as check_options
from metakit.schedules import LR_SCHEDULES

OPTIMIZERS = ("sgd", "adam")
MNIST1D_EPOCHS = 20  # laptop: fits the long-tail table in 2.5 h on 2 cores (results/mnist1d_calibration.md)
# Profile defaults: what a field left None becomes. Smoke runs every code path in seconds.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="digits", data_size="full", epochs=3, batch_size=64, lr=0.1, momentum=0.9, nesterov=False,
                  weight_decay=5e-4, schedule="cosine", milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0,
                  meta_lr=1e-3, meta_every=1, meta_per_class=5, amp=False),
    "laptop": dict(dataset="digits", data_size="full", epochs=60, batch_size=64, lr=0.1, momentum=0.9, nesterov=False,
                   weight_decay=5e-4, schedule="cosine", milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0,
                   meta_lr=1e-3, meta_every=1, meta_per_class=5, amp=False),
    # LDAM-DRW long-tail recipe (Cao et al. 2019): ResNet-32, 200 epochs, batch 128, SGD 0.1 m 0.9,
    # wd 2e-4, 5-epoch warm-up, LR x0.01 at 160 and again at 180.
    "paper": dict(dataset="cifar10", data_size="full", epochs=200, batch_size=128, lr=0.1, momentum=0.9, nesterov=False,
                  weight_decay=2e-4, schedule="multistep", milestones=(160, 180), gamma=0.01, warmup_epochs=5,
                  meta_lr=1e-3, meta_every=1, meta_per_class=10, amp=True),
}
# What a dataset changes in a profile (after PROFILES, before the method's recipe). MNIST-1D
# follows CIFAR-10-LT's protocol: 5,000 a class before the long tail, a 10/class meta set,
# batch 128 (the model comes from DEFAULT_MODEL); smoke generates a small set (DATA_SIZES) so CI
# never waits for 70,000.
DATASET_PROFILES: dict[tuple[str, str], dict[str, Any]] = {
    ("smoke", "mnist1d"): dict(data_size="small", train_per_class=100, meta_per_class=10),
    ("laptop", "mnist1d"): dict(train_per_class=TRAIN_PER_CLASS, meta_per_class=10, batch_size=128,
                                epochs=MNIST1D_EPOCHS),
    ("paper", "mnist1d"): dict(train_per_class=TRAIN_PER_CLASS, meta_per_class=10, amp=False),
    # ImageNet, ResNet-50's standard recipe (torchvision's reference scripts): 90 epochs, batch 256,
    # SGD 0.1 m 0.9, wd 1e-4, LR x0.1 at 30 and 60; every training image (no meta set)
    ("paper", "imagenet"): dict(epochs=90, batch_size=256, lr=0.1, momentum=0.9, weight_decay=1e-4,
                                schedule="multistep", milestones=(30, 60), gamma=0.1, warmup_epochs=0,
                                meta_per_class=0),
}
PROFILE_NAMES = tuple(PROFILES)
# fields that resolve() always fills (from the profile, the recipe, or the dataset)
RESOLVED = ("dataset", "data_size", "meta_per_class", "model", "epochs", "batch_size", "lr", "momentum", "nesterov",
            "weight_decay", "schedule", "milestones", "gamma", "warmup_epochs", "meta_lr", "meta_every", "amp")
MAX_LR_FACTOR = 100.0  # an LR above this multiple of Config.lr counts as divergence
DEFAULT_MODEL = {"digits": "digits_cnn", "mnist1d": "resnet1d", "cifar10": "resnet32", "cifar100": "resnet32",
                 "imagenet": "resnet50"}


@dataclass(frozen=True)
class Config:
    """Every choice of one experiment. ``None`` means "take it from the profile / method recipe".

    Each field is an `metakit.options.option`: its help, allowed values and default give the CLI
    flags and ``--help`` (`metakit.cli`) and the checks of `validate`.
    """

    method: str = option("ce", "training method (each one's options are listed at the end of run --help)",
                         kind=str)
    profile: str | None = option(None, "smoke | laptop | paper; None: $METAKIT_PROFILE or laptop",
                                 choices=(None, *PROFILE_NAMES))
    dataset: str | None = option(None, "dataset; None: the profile's", choices=(None, *DATASETS))
    data_size: str | None = option(None, "full, or small: a CI-sized generated set (MNIST-1D only; others are "
                                         "unchanged); None: the profile's", choices=(None, *DATA_SIZES))
    data_options: dict = option({}, "generator arguments changed from the calibrated ones (MNIST-1D), e.g. "
                                    "{'iid_noise_scale': 0.1}; how ImageNet is read (image_size, resize, workers, "
                                    "eval_batch_size: metakit.data.imagenet)", kind=dict)
    imbalance: float = option(1.0, "largest/smallest class count of the training set (1 = balanced)", low=1,
                              example="10")
    lt_profile: str = option("exp", "long-tail shape", choices=LT_PROFILES)
    noise_kind: str = option("none", "label noise on the training part", choices=NOISE_KINDS)
    noise_rate: float = option(0.0, "label-noise probability", low=0, high=1, high_open=True, example="0.4")
    meta_per_class: int | None = option(None, "clean meta images per class, removed from training first; None: "
                                              "the profile's", low=0, nullable=True, example="10")
    train_per_class: int | None = option(None, "largest training class before the long tail (n_max); None: the "
                                               "dataset protocol's (MNIST-1D 5000) or all the meta set leaves",
                                         low=1, nullable=True, example="5000")
    model: str | None = option(None, "classifier; None: the dataset's default", choices=(None, *MODELS))
    width: int | None = option(None, f"the classifier's width (first-stage channels; hidden units of the MLP), for "
                                     f"{WIDTH_MODELS}; None: the model's own", low=1, high=4096, nullable=True,
                                 example="64")
    epochs: int | None = option(None, "passes over the training set; None: the profile's", low=1, nullable=True,
                                example="60")
    batch_size: int | None = option(None, "training images per step; None: the profile's", low=1, nullable=True,
                                    example="64")
    optimizer: str = option("sgd", "the real step's optimiser", choices=OPTIMIZERS)
    lr: float | None = option(None, "base (inner) learning rate of the real step; None: the profile's", low=0,
                              low_open=True, nullable=True, example="0.1")
    momentum: float | None = option(None, "SGD momentum; None: the profile's", low=0, high=1, nullable=True,
                                    example="0.9")
    nesterov: bool | None = option(None, "Nesterov momentum; None: the profile's", kind=bool, nullable=True)
    weight_decay: float | None = option(None, "L2 weight decay (also folded into the virtual step); None: the "
                                              "profile's", low=0, high=1, nullable=True, example="5e-4")
    schedule: str | None = option(None, "LR schedule (hd: hypergradient descent; staged / learned: a frozen "
                                        "MLR-SNet, its file in schedule_options); None: the profile's / method's",
                                  choices=(None, *LR_SCHEDULES))
    schedule_options: dict = option({}, "the schedule's own options, e.g. {'schedule_file': 'runs/snapshots.pt'} "
                                         "for staged (metakit.schedules.build_schedule)", kind=dict)
    milestones: tuple[float, ...] | None = option(None, "multistep boundaries, increasing (values < 1 are fractions "
                                                        "of the epochs); None: the profile's", nullable=True)
    gamma: float | None = option(None, "multistep factor per milestone / total exp decay; None: the profile's",
                                 low=0, low_open=True, nullable=True, example="0.1")
    warmup_epochs: float | None = option(None, "linear LR warm-up length in epochs; None: the profile's", low=0,
                                         nullable=True, example="5")
    meta_lr: float | None = option(None, "meta-optimiser learning rate; None: the profile's / method's", low=0,
                                   low_open=True, nullable=True, example="1e-3")
    meta_every: int | None = option(None, "meta-update every k steps; None: the profile's", low=1, nullable=True,
                                    example="1")
    options: dict = option({}, "method options, e.g. {'focal_gamma': 2} (see each method's options)", kind=dict)
    seed: int = option(0, "seeds the split, the init and the batch order", low=0)
    device: str | None = option(None, "cpu, cuda, cuda:1, mps; None: metakit.device()", kind=str, nullable=True,
                                example="'cpu'", nonempty=True)
    amp: bool | None = option(None, "bf16 autocast on CUDA for plain steps; None: the profile's", kind=bool,
                              nullable=True)
    data_root: str | None = option(None, "where CIFAR and ImageNet live; None: $METAKIT_DATA or ./data", kind=str,
                                   nullable=True, example="'data'", nonempty=True)
    split_file: str | None = option(None, "load this saved split (data_prep.splits) instead of making one",
                                    kind=str, nullable=True, example="'runs/split.json'", nonempty=True)
    progress: bool = option(True, "show tqdm progress bars", kind=bool)

    def resolve(self) -> "Config":
        """Validate, then fill every ``None`` from the profile and the method's recipe.

        Example:
            >>> Config(profile="smoke").resolve().epochs
            3
        """
        profile = self.profile or os.environ.get("METAKIT_PROFILE") or "laptop"
        if profile not in PROFILES:
            raise ValueError(f"profile={profile!r} is unknown; use one of {sorted(PROFILES)} "
                             f"(or set METAKIT_PROFILE to one of them).")
        method = get_method(self.method)
        recipe = method.recipe(profile)
        dataset = self.dataset or recipe.get("dataset") or PROFILES[profile]["dataset"]
        filled = {**PROFILES[profile], **DATASET_PROFILES.get((profile, dataset), {}), **recipe}
        values = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        for name, default in filled.items():
            if values.get(name) is None:
                values[name] = default
        values["profile"] = profile
        if values["model"] is None:
            values["model"] = DEFAULT_MODEL.get(values["dataset"], "digits_cnn")
        if isinstance(values["milestones"], list):
            values["milestones"] = tuple(values["milestones"])
        return validate(Config(**values))

    def canonical(self) -> dict:
        """The resolved config as plain values that identify the run (its cache and checkpoint key).

        Derived from the types: a float field given as an int is widened (``imbalance=10`` and
        ``10.0`` are one run), the method's options are parsed by its ``Options`` dataclass with
        every default filled in (``{}`` and ``{"focal_gamma": 1.0}`` are one run), and
        ``progress``, which changes no number, is left out.

        Example:
            >>> a = Config(method="focal", profile="smoke", imbalance=10).canonical()
            >>> a == Config(method="focal", profile="smoke", imbalance=10.0, options={"focal_gamma": 1}).canonical()
            True
        """
        resolved = self.resolve()
        hints = typing.get_type_hints(Config)
        values = {}
        for f in dataclasses.fields(Config):
            value = getattr(resolved, f.name)
            if float in typing.get_args(hints[f.name]) + (hints[f.name],) and isinstance(value, int) \
                    and not isinstance(value, bool):
                value = float(value)
            values[f.name] = value
        values.pop("progress")
        if not values["schedule_options"]:    # runs from before the field keep their keys
            values.pop("schedule_options")
        method = get_method(resolved.method)
        values["options"] = dataclasses.asdict(parse_options(method.Options, resolved.options,
                                                             owner=f"method={resolved.method!r}"))
        return values

    def split_spec(self) -> SplitSpec:
        """The `SplitSpec` of this (resolved) config."""
        return SplitSpec(self.dataset, self.imbalance, self.lt_profile, self.noise_kind, self.noise_rate,
                         self.meta_per_class, self.seed, self.train_per_class)


def plain(value: Any) -> Any:
    """A numpy scalar (``np.int64(3)``, ``np.float32(0.1)``) as the Python number it stands for, also inside a
    tuple or list; anything else unchanged. The validator accepts numpy numbers, and a run computes the same
    with either, so a config holds (and its keys hash) the plain value.

    Example:
        >>> import numpy as np
        >>> plain(np.int64(3)), plain((np.float64(0.5), 1))
        (3, (0.5, 1))
    """
    if isinstance(value, (tuple, list)):
        return type(value)(plain(v) for v in value)
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item) and not isinstance(value, (bool, str)):
        return item()
    return value


def check_data(config: Config) -> None:
    """Refuse a model that cannot read the dataset's inputs, and generator options for a dataset that is not
    generated, before any data is read.

    Example:
        >>> check_data(Config(dataset="mnist1d", model="cnn1d"))
    """
    signals = config.dataset == "mnist1d"
    if config.model is not None and config.model != "mlp" and (config.model in SIGNAL_MODELS) != signals:
        kind = "(C, L) signals" if config.model in SIGNAL_MODELS else "(C, H, W) images"
        fits = [m for m in MODELS if m == "mlp" or (m in SIGNAL_MODELS) == signals]
        raise ValueError(f"model={config.model!r} takes {kind} but dataset={config.dataset!r} has "
                         f"{'signals' if signals else 'images'}; use one of {fits}.")
    if config.width is not None and config.model is not None and config.model not in WIDTH_MODELS:
        raise ValueError(f"width={config.width} but model={config.model!r} has a fixed width; use width with one of "
                         f"{WIDTH_MODELS}, or leave it out.")
    if config.dataset in STREAMED:
        check_streamed(config)
    elif config.data_options:
        if not signals:
            raise ValueError(f"data_options={config.data_options!r} but dataset={config.dataset!r} is not generated; "
                             f"use data_options only with dataset='mnist1d' (or 'imagenet': image sizes, workers).")
        generator_args(**config.data_options)


def check_streamed(config: Config) -> None:
    """ImageNet (read from disk batch by batch) runs at the paper profile, without a meta set, with
    methods that draw no meta batches (plain training, a frozen MLR-SNet schedule).

    Example:
        >>> check_streamed(Config(dataset="imagenet", profile="smoke"))
        Traceback (most recent call last):
        ...
        ValueError: dataset='imagenet' runs at the paper profile only (it needs a GPU and the full ImageNet on disk); pass --profile paper.
    """
    if config.profile is not None and config.profile != "paper":
        raise ValueError(f"dataset={config.dataset!r} runs at the paper profile only (it needs a GPU and the full "
                         f"ImageNet on disk); pass --profile paper.")
    if get_method(config.method).needs_meta_set(config.options):
        raise ValueError(f"method={config.method!r} draws meta batches, but dataset={config.dataset!r} is streamed "
                         f"from disk and has no meta set here; use a method without one (ce, or mlrsnet frozen: "
                         f"--option schedule_file=<snapshots>).")
    if config.meta_per_class not in (None, 0):
        raise ValueError(f"meta_per_class={config.meta_per_class} but dataset={config.dataset!r} has no meta set "
                         f"here (every training image trains); pass --meta-per-class 0.")
    imagenet_options(config.data_options)


def warn_meaningless(config: Config, bounds: list[float]) -> None:
    """Warn (one line) about values that are valid but make part of the run do nothing or run away: a warm-up as
    long as the run, a multistep milestone at or after its last epoch, SGD momentum 1 (a velocity that never
    decays)."""
    if config.warmup_epochs and config.warmup_epochs >= config.epochs:
        warnings.warn(f"warmup_epochs={config.warmup_epochs:g} >= epochs={config.epochs}: the whole run is warm-up "
                      f"and the schedule never starts; use warmup_epochs < {config.epochs} (e.g. 0).", stacklevel=3)
    if config.optimizer == "sgd" and config.momentum == 1:
        warnings.warn("momentum=1: the SGD velocity never decays, so every gradient is applied again at every later "
                      "step; use momentum < 1 (e.g. 0.9).", stacklevel=3)
    late = [m for m, b in zip(config.milestones, bounds) if b >= config.epochs]
    if config.schedule == "multistep" and late:
        warnings.warn(f"milestones={config.milestones!r}: {', '.join(f'{m:g}' for m in late)} is at or beyond the "
                      f"last epoch (epochs={config.epochs}), so its LR drop never happens; use milestones < "
                      f"{config.epochs}, or fractions of the epochs (e.g. 0.5 0.75).", stacklevel=3)


def validate(config: Config) -> Config:
    """Raise a clear error naming the field, the value and the allowed values; returns config.

    Example:
        >>> validate(Config(profile="smoke").resolve()).method
        'ce'
    """
    check_options(config)
    for name in RESOLVED:
        if getattr(config, name) is None:
            raise ValueError(f"{name}=None after resolve; call config.resolve() first, or give {name}=...")
    config.split_spec().validate()
    milestones = config.milestones
    if not isinstance(milestones, tuple) or not all(isinstance(m, (int, float)) and not isinstance(m, bool)
                                                    and m > 0 for m in milestones):
        raise TypeError(f"milestones={milestones!r} must be a tuple of positive numbers, e.g. (80, 90).")
    bounds = [m * config.epochs if m < 1 else m for m in milestones]
    if bounds != sorted(bounds) or len(set(bounds)) < len(bounds):
        raise ValueError(f"milestones={milestones!r} must increase (each boundary after the one before); "
                         f"sort them, e.g. {tuple(sorted(set(milestones)))}.")
    warn_meaningless(config, bounds)
    if not isinstance(config.options, dict):
        raise TypeError(f"options={config.options!r} must be a dict of method options, e.g. {{'focal_gamma': 2}}.")
    check_data(config)
    if get_method(config.method).needs_meta_set(config.options) and config.meta_per_class < 1:
        raise ValueError(f"meta_per_class={config.meta_per_class} but method={config.method!r} needs a meta set; "
                         f"use meta_per_class >= 1.")
    return config


