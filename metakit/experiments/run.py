"""One entry point for notebooks, tests and the command line: ``run(Config(...))``.

`build` turns a resolved `Config` into its parts (data, split, method, model, optimiser,
schedule); `run` trains them through the one loop (`metakit.experiments.loop.fit`), with
checkpoints and resume.

Example:
    >>> r = run(Config(method="ce", imbalance=10, profile="smoke", progress=False))
    >>> sorted(r.history.columns)[:3], 0 <= r.metrics["test_acc"] <= 100
    (['epoch', 'few_acc', 'lr'], True)
"""
from __future__ import annotations

import dataclasses
import sys
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from metakit.experiments.checkpoint import (CHECKPOINT_FORMAT, check_checkpoint, load_checkpoint, rng_state,
                                           save_checkpoint, set_rng_state)
from metakit.data.batches import Batches
from metakit.data.stream import Stream
from metakit.data.sources import load_source
from metakit.data.splits import Split, load_split, make_split
from metakit.device import device as pick_device
from metakit.distributed import (average_gradients_before_step, init_from_env, is_main, local_device_name,
                                 shard_batches)
from metakit.methods import get_method
from metakit.methods.base import Method
from metakit.models import build_model
from metakit.schedules import build_schedule, full_train_loss
from metakit.experiments.config import MAX_LR_FACTOR, Config
from metakit.experiments.resume import (check_checkpoint_args, check_checkpoint_path, config_key, find_checkpoint,
                                        identity_key, run_identity, state_identity)
from metakit.experiments.feeds import make_feeds
from metakit.experiments.loop import Trainer, evaluate, fit

@dataclass
class Result:
    """What `run` returns.

    Attributes:
        config: the resolved config that ran.
        history: one row per epoch (see `metakit.experiments.loop.fit`).
        metrics: final metrics: test_acc, per_class_acc, many/medium/few_acc, test_loss, and
            val_acc (the validation split's accuracy, for model selection) where the dataset has one.
        net: the trained classifier.
        method: the method object (holds any meta-learner).
        split: the data split used.
        learner: the trained meta-learner (`Method.learner`: weight net, LR net or modulation;
            None for plain methods and cached results). Save it with
            ``metakit.learners.store.save_learner(result.learner, path, config=result.config)``.
    """

    config: Config
    history: pd.DataFrame
    metrics: dict
    net: nn.Module
    method: Method
    split: Split
    learner: nn.Module | None = None




def build_optimizer(config: Config, params) -> torch.optim.Optimizer:
    """The real step's optimiser: SGD (momentum, Nesterov, weight decay) or Adam (weight decay).

    Example:
        >>> opt = build_optimizer(Config(profile="smoke").resolve(), [torch.zeros(1, requires_grad=True)])
        >>> type(opt).__name__, opt.param_groups[0]["momentum"]
        ('SGD', 0.9)
    """
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    nesterov = bool(config.nesterov) and config.momentum > 0
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=nesterov,
                           weight_decay=config.weight_decay)


def seed_everything(seed: int) -> None:
    """Seed torch and numpy's global generators (splits and batches have their own seeds)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class Parts:
    """Everything one run is made of, built fresh from a resolved config (see `build`)."""

    config: Config
    split: Split
    method: Method
    trainer: Trainer
    train: Batches
    test: Batches
    meta: Stream | None
    val: Batches | None = None  # the validation split (model selection); None where the dataset has none


def build(config: Config) -> Parts:
    """Data, split, method, model, optimiser and schedule of a resolved config, seeded.

    Example:
        >>> parts = build(Config(profile="smoke").resolve())
        >>> type(parts.trainer.optimizer).__name__
        'SGD'
    """
    distributed = init_from_env()
    dev = pick_device(config.device or local_device_name())
    source = load_source(config.dataset, config.data_root, config.data_size, config.data_options)
    split = load_split(config.split_file, config.split_spec(), source.train_y, source.num_classes) \
        if config.split_file else make_split(config.split_spec(), source.train_y)
    seed_everything(config.seed)
    method = get_method(config.method)(num_classes=source.num_classes, class_counts=split.class_counts,
                                       config=config, **config.options)
    feeds = make_feeds(source, split, config, dev, method)
    train, test, val, meta = feeds.train, feeds.test, feeds.val, feeds.meta
    net = build_model(config.model, source.num_classes, feeds.input_shape, config.width)
    net = method.prepare(net).to(dev)
    if dev.type == "cuda" and config.amp:
        net = net.to(memory_format=torch.channels_last)
    if config.batch_size > len(split.train_labels):
        warnings.warn(f"batch_size={config.batch_size} exceeds the {len(split.train_labels)} training images: every "
                      f"step uses the whole training set (one step an epoch); use a batch_size <= "
                      f"{len(split.train_labels)} for minibatch training.", stacklevel=2)
    optimizer = build_optimizer(config, method.classifier_parameters(net))
    trainer = Trainer(net, optimizer, None, dev, amp=bool(config.amp), train_eval=feeds.train_eval)
    # a method that declares its schedule (hd, mlrsnet) overrides Config.schedule and its schedule_options
    name, options = method.lr_schedule() or (config.schedule, dict(
        base_lr=config.lr, milestones=config.milestones, gamma=config.gamma, warmup_epochs=config.warmup_epochs)
        | config.schedule_options)
    trainer.schedule = build_schedule(name, optimizer, iters_per_epoch=len(train), epochs=config.epochs,
                                      num_classes=source.num_classes, full_loss=partial(full_train_loss, trainer),
                                      **options)
    method.setup(trainer)
    if distributed:  # identical updates on every rank: average every optimiser's gradients first
        step = method.current_meta_step()
        for opt in [optimizer] + ([] if step is None else [step.meta_optimizer]):
            average_gradients_before_step(opt)
        train = shard_batches(train)
    return Parts(config, split, method, trainer, train, test, meta, val)


def scorer(val: Batches | None, class_counts: list[int]):
    """Each epoch's score: `evaluate` on the test batches, plus ``val_acc`` on the validation split.

    Model selection (epochs, hyper-parameters) reads ``val_acc``; ``test_acc`` is only reported.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> b = Batches(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), np.array([0, 1]), 2, torch.device("cpu"), (0.,), (1.,))
        >>> sorted(scorer(b, [5, 5])(net, b))[-2:]
        ['test_loss', 'val_acc']
    """
    def score(net: nn.Module, test: Batches) -> dict:
        out = evaluate(net, test, class_counts)
        if val is not None:
            out["val_acc"] = evaluate(net, val, class_counts)["test_acc"]
        return out
    return score


def run(config: Config, *, checkpoint_dir: str | Path | None = None, resume: bool = False) -> Result:
    """Train and evaluate one configuration.

    Args:
        config: the experiment; ``None`` fields come from its profile.
        checkpoint_dir: write a checkpoint there after every epoch (atomically), named by
            `config_key`. Use it for anything longer than a few minutes.
        resume: continue from this config's checkpoint in ``checkpoint_dir`` (a killed run picks up
            where it stopped and ends with exactly the numbers of an uninterrupted run on CPU), and say so
            on stderr. Refused (ValueError) if the folder holds no checkpoint of this config: the error
            names the nearest checkpoint there and the fields that differ.

    Returns:
        A `Result` with ``.history`` (DataFrame) and ``.metrics`` (dict, ``test_acc`` in %).
    """
    config = config.resolve()
    check_checkpoint_args(checkpoint_dir, resume)
    source = find_checkpoint(config, checkpoint_dir) if resume else None   # refused before any data is read
    state = None if source is None else check_checkpoint(load_checkpoint(source), source, config.epochs)
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{config.method}-{config_key(config)}.pt"
    check_checkpoint_path(source or path)                                  # written after the first epoch
    if config.split_file:   # its content and protocol, before any data is read (build checks it against the pool)
        load_split(config.split_file, config.split_spec())
    parts = build(config)
    start, rows = 0, []
    if source is not None:
        start, rows = restore_run(parts, state, source)
        path = source   # keep writing where the run was found (a file under an older key goes on)
        if is_main():
            print(f"resuming from epoch {start} of {config.epochs} ({source})", file=sys.stderr, flush=True)

    def on_epoch_end(epoch: int, rows: list[dict]) -> None:
        if is_main():  # one writer under torchrun
            save_checkpoint(path, snapshot_run(parts, epoch + 1, rows))

    score = scorer(parts.val, parts.split.class_counts)
    history = fit(parts.trainer, parts.method, parts.train, parts.test, config.epochs, parts.split.class_counts,
                  meta=parts.meta, progress=config.progress, start_epoch=start, history=rows,
                  on_epoch_end=None if path is None else on_epoch_end, max_lr=MAX_LR_FACTOR * config.lr,
                  last_good=path, score=score)
    metrics = score(parts.trainer.net, parts.test)
    return Result(config, history, metrics, parts.trainer.net, parts.method, parts.split, parts.method.learner)


def snapshot_run(parts: Parts, epochs_done: int, rows: list[dict]) -> dict:
    """The checkpoint of a run after ``epochs_done`` epochs (loadable with ``weights_only=True``)."""
    return {"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(parts.config), "key": config_key(parts.config),
            "identity": run_identity(parts.config),
            "epochs_done": epochs_done, "history": rows, "net": parts.trainer.net.state_dict(),
            "optimizer": parts.trainer.optimizer.state_dict(), "schedule": parts.trainer.schedule.state_dict(),
            "method": parts.method.state_dict(), "train_generator": parts.train.generator.get_state(),
            "meta": None if parts.meta is None else parts.meta.state_dict(), "rng": rng_state()}


def restore_run(parts: Parts, state: dict, path: Path) -> tuple[int, list[dict]]:
    """Load a checkpoint into freshly built parts; returns (epochs done, history rows)."""
    check_checkpoint(state, path, parts.config.epochs)
    identity = state_identity(state)
    if state["key"] != config_key(parts.config) and (identity is None or identity_key(identity) != config_key(parts.config)):
        theirs = state.get("config", {})
        diff = {k: (theirs.get(k), v) for k, v in dataclasses.asdict(parts.config).items() if theirs.get(k) != v}
        raise ValueError(f"checkpoint '{path}' belongs to another config (differs in {diff}); "
                         f"resume with the same config, or move the file aside and drop --resume.")
    try:
        parts.trainer.net.load_state_dict(state["net"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint '{path}' does not fit model={parts.config.model!r}: {err}") from None
    parts.trainer.optimizer.load_state_dict(state["optimizer"])
    parts.trainer.schedule.load_state_dict(state["schedule"])
    parts.method.load_state_dict(state["method"])
    parts.train.generator.set_state(state["train_generator"])
    if parts.meta is not None:
        parts.meta.load_state_dict(state["meta"])
    set_rng_state(state["rng"])
    return int(state["epochs_done"]), list(state["history"])
