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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metakit.data.sources import DATASETS
from metakit.data.splits import SplitSpec
from metakit.methods import get_method
from metakit.models import MODELS

OPTIMIZERS = ("sgd", "adam")
# Profile defaults: what a field left None becomes. Smoke runs every code path in seconds.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="digits", epochs=3, batch_size=64, lr=0.1, momentum=0.9, nesterov=False,
                  weight_decay=5e-4, schedule="cosine", milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0,
                  meta_lr=1e-3, meta_every=1, meta_per_class=5, amp=False),
    "laptop": dict(dataset="digits", epochs=60, batch_size=64, lr=0.1, momentum=0.9, nesterov=False,
                   weight_decay=5e-4, schedule="cosine", milestones=(0.5, 0.75), gamma=0.1, warmup_epochs=0,
                   meta_lr=1e-3, meta_every=1, meta_per_class=5, amp=False),
    # LDAM-DRW long-tail recipe (DESIGN.md): ResNet-32, 200 epochs, batch 128, SGD 0.1 m 0.9,
    # wd 2e-4, 5-epoch warm-up, LR x0.01 at 160 and again at 180.
    "paper": dict(dataset="cifar10", epochs=200, batch_size=128, lr=0.1, momentum=0.9, nesterov=False,
                  weight_decay=2e-4, schedule="multistep", milestones=(160, 180), gamma=0.01, warmup_epochs=5,
                  meta_lr=1e-3, meta_every=1, meta_per_class=10, amp=True),
}
MAX_LR_FACTOR = 100.0  # an LR above this multiple of Config.lr counts as divergence
DEFAULT_MODEL = {"digits": "digits_cnn", "cifar10": "resnet32", "cifar100": "resnet32"}


@dataclass(frozen=True)
class Config:
    """Every choice of one experiment. ``None`` means "take it from the profile / method recipe"."""

    method: str = "ce"                       # training method, see metakit.methods.METHODS
    profile: str | None = None               # smoke | laptop | paper; None: $METAKIT_PROFILE or "laptop"
    dataset: str | None = None               # digits | cifar10 | cifar100
    imbalance: float = 1.0                   # largest/smallest class of the training set (1 = balanced)
    lt_profile: str = "exp"                  # long-tail shape: exp | step
    noise_kind: str = "none"                 # label noise: none | uniform | flip | flip2
    noise_rate: float = 0.0                  # label-noise probability in [0, 1)
    meta_per_class: int | None = None        # clean meta images per class, removed from training first
    model: str | None = None                 # resnet32 | resnet18 | wrn28_10 | digits_cnn | mlp
    epochs: int | None = None                # passes over the training set
    batch_size: int | None = None            # training images per step
    optimizer: str = "sgd"                   # real-step optimiser: sgd | adam
    lr: float | None = None                  # base (inner) learning rate of the real step
    momentum: float | None = None            # SGD momentum
    nesterov: bool | None = None             # Nesterov momentum
    weight_decay: float | None = None        # L2 weight decay (also folded into the virtual step)
    schedule: str | None = None              # LR schedule, see metakit.schedules
    milestones: tuple[float, ...] | None = None  # multistep boundaries (fractions < 1 or epochs)
    gamma: float | None = None               # multistep factor per milestone / total exp decay
    warmup_epochs: float | None = None       # linear LR warm-up length in epochs
    meta_lr: float | None = None             # meta-optimiser learning rate (Adam)
    meta_every: int | None = None            # meta-update every k steps
    options: dict = field(default_factory=dict)  # method-specific options, e.g. {"focal_gamma": 2}
    seed: int = 0                            # seeds the split, the init and the batch order
    device: str | None = None                # "cpu", "cuda", ...; None: metakit.device()
    amp: bool | None = None                  # bf16 autocast on CUDA for plain steps
    data_root: str | None = None             # where CIFAR lives; None: $METAKIT_DATA or ./data
    split_file: str | None = None            # load this saved split instead of making one
    progress: bool = True                    # show tqdm progress bars

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
        filled = {**PROFILES[profile], **method.recipe(profile)}
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, default in filled.items():
            if values.get(name) is None:
                values[name] = default
        values["profile"] = profile
        if values["model"] is None:
            values["model"] = DEFAULT_MODEL.get(values["dataset"], "digits_cnn")
        if isinstance(values["milestones"], list):
            values["milestones"] = tuple(values["milestones"])
        return validate(Config(**values))

    def split_spec(self) -> SplitSpec:
        """The `SplitSpec` of this (resolved) config."""
        return SplitSpec(self.dataset, self.imbalance, self.lt_profile, self.noise_kind, self.noise_rate,
                         self.meta_per_class, self.seed)


def _check_number(name: str, value: Any, low: float, high: float = float("inf"), *, integer: bool = False,
                  low_open: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name}={value!r} must be {kind} in {'(' if low_open else '['}{low}, {high}].")
    if not np.isfinite(value) or value < low or (low_open and value == low) or value > high:
        raise ValueError(f"{name}={value!r} is out of range; use a value in {'(' if low_open else '['}{low}, {high}].")


def validate(config: Config) -> Config:
    """Raise a clear error naming the field, the value and the allowed values; returns config.

    Example:
        >>> validate(Config(profile="smoke").resolve()).method
        'ce'
    """
    if config.dataset not in DATASETS:
        raise ValueError(f"dataset={config.dataset!r} is unknown; use one of {DATASETS}.")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={config.optimizer!r} is unknown; use one of {OPTIMIZERS}.")
    if config.model not in MODELS:
        raise ValueError(f"model={config.model!r} is unknown; use one of {MODELS}.")
    config.split_spec().validate()
    _check_number("epochs", config.epochs, 1, integer=True)
    _check_number("batch_size", config.batch_size, 1, integer=True)
    _check_number("lr", config.lr, 0, low_open=True)
    _check_number("momentum", config.momentum, 0, 1)
    _check_number("weight_decay", config.weight_decay, 0)
    _check_number("gamma", config.gamma, 0, low_open=True)
    _check_number("warmup_epochs", config.warmup_epochs, 0)
    _check_number("meta_lr", config.meta_lr, 0, low_open=True)
    _check_number("meta_every", config.meta_every, 1, integer=True)
    if not isinstance(config.options, dict):
        raise TypeError(f"options={config.options!r} must be a dict of method options, e.g. {{'focal_gamma': 2}}.")
    if get_method(config.method).uses_meta_set and config.meta_per_class < 1:
        raise ValueError(f"meta_per_class={config.meta_per_class} but method={config.method!r} needs a meta set; "
                         f"use meta_per_class >= 1.")
    return config


