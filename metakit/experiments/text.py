"""Text as well as images: a word-level LSTM language model through the same loop and schedules.

The corpus, word ids and BPTT chunks are `metakit.data.text`'s, the model is
`metakit.models.lm.LSTMLanguageModel` and the methods are `metakit.methods.lm`'s; this module
runs them through `metakit.experiments.loop.fit` with an LR schedule built by
`metakit.schedules.build_schedule` (or MLR-SNet meta-trained by the ``mlrsnet`` method, its meta
set the validation text). The loop's score is perplexity, exp(mean cross-entropy per word), on
the validation text.

Example:
    >>> r = run_lm(profile="smoke", schedule="cosine", epochs=1)
    >>> r.test_ppl > 1, list(r.history.columns)[:3]
    (True, ['epoch', 'train_loss', 'valid_ppl'])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from metakit.data.text import TextBatches, chunks, cycle_batches, load_corpus, tokenize
from metakit.device import device as pick_device
from metakit.experiments.loop import DivergenceError, fit
from metakit.learners.lr_net import MLRSNet
from metakit.methods.base import Trainer
from metakit.methods.lm import NextWord, NextWordMLRSNet
from metakit.models.lm import LSTMLanguageModel
from metakit.schedules import SCHEDULES, build_schedule
from metakit.options import require

__all__ = ["LM_PROFILES", "LM_SCHEDULES", "LMResult", "load_corpus", "perplexity", "run_lm", "tokenize"]

LM_SCHEDULES = (*SCHEDULES, "hd", "adam", "learned", "mlrsnet")
# profile → defaults; paper: 2-layer 650-unit LSTM on PTB (MLR-SNet Sec. 5.2 uses PTB with 2/3-layer LSTMs)
LM_PROFILES = {
    "smoke": dict(corpus="tiny", epochs=2, batch_size=16, bptt=20, emb=32, hidden=32, dropout=0.0, lr=3.0),
    "laptop": dict(corpus="tiny", epochs=15, batch_size=16, bptt=20, emb=64, hidden=64, dropout=0.0, lr=3.0),
    "paper": dict(corpus="ptb", epochs=40, batch_size=20, bptt=35, emb=650, hidden=650, dropout=0.5, lr=1.0),
}


@dataclass
class LMResult:
    """What `run_lm` returns: per-epoch history, test perplexity, the model and the LR net (if any)."""

    history: pd.DataFrame
    test_ppl: float
    net: nn.Module
    lr_net: MLRSNet | None
    vocab_size: int


@torch.no_grad()
def perplexity(net: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """exp(mean per-word cross-entropy) over ``pairs``.

    Example:
        >>> net = LSTMLanguageModel(5, emb=3, hidden=3)
        >>> 1 < perplexity(net, chunks(torch.arange(40) % 5, 2, 4, torch.device("cpu"))) < 10
        True
    """
    was_training = net.training
    net.eval()
    total = sum(F.cross_entropy(net(x), y.flatten(), reduction="sum").item() for x, y in pairs)
    words = sum(y.numel() for _, y in pairs)
    net.train(was_training)
    return math.exp(total / max(words, 1))


def valid_perplexity(net: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """The loop's score for a language model: ``{"valid_ppl": perplexity(net, pairs)}``."""
    return {"valid_ppl": perplexity(net, pairs)}


def _optimizer(schedule: str, net: nn.Module, lr: float) -> torch.optim.Optimizer:
    if schedule == "adam":
        return torch.optim.Adam(net.parameters(), lr=lr / 100)
    return torch.optim.SGD(net.parameters(), lr=lr)


def _method_and_schedule(schedule: str, optimizer: torch.optim.Optimizer, p: dict, vocab_size: int,
                         iters_per_epoch: int, schedule_file: str | None, meta_every: int, dev: torch.device):
    """The method and the LR schedule of ``schedule``: (method, schedule, LR net or None)."""
    classes = [1] * vocab_size
    if schedule == "mlrsnet":   # meta-trained here; the method declares its schedule ("fixed")
        method = NextWordMLRSNet(vocab_size, classes, variant="final_net", meta_every=meta_every)  # no full-loss pass
        name, options = method.lr_schedule()
        return method, build_schedule(name, optimizer, iters_per_epoch=iters_per_epoch, **options), method.lr_net
    if schedule == "learned":   # the shape transfers, the scale belongs to this optimiser: γ := 2 × base LR
        s = build_schedule("learned", optimizer, iters_per_epoch=iters_per_epoch, schedule_file=schedule_file,
                           num_classes=vocab_size, base_lr=p["lr"])
        s.net.to(dev)
        return NextWord(vocab_size, classes), s, s.net
    name = "fixed" if schedule == "adam" else schedule
    return NextWord(vocab_size, classes), build_schedule(name, optimizer, iters_per_epoch=iters_per_epoch,
                                                         epochs=p["epochs"]), None


def run_lm(profile: str = "smoke", schedule: str = "cosine", *, epochs: int | None = None, lr: float | None = None,
           corpus: str | None = None, schedule_file: str | None = None, meta_every: int = 10, seed: int = 0,
           data_root: str | None = None, device: str | None = None) -> LMResult:
    """Train the LSTM language model under one LR schedule; returns history and test perplexity.

    Args:
        profile: smoke | laptop | paper (see ``LM_PROFILES``).
        schedule: a hand-designed schedule (fixed, multistep, exp, cosine, sgdr), "hd" (hypergradient
            descent on SGD, β 1e-3), "adam" (Adam at
            lr/100, fixed), "learned" (a frozen MLR-SNet from ``schedule_file``, its ceiling γ re-set
            to 2 × this run's base LR, as the image nets' LR scale does not fit an LM) or "mlrsnet"
            (meta-trained here, meta set = validation batches, every ``meta_every`` steps).
        epochs, lr, corpus: override the profile.
        schedule_file: the saved LR net for "learned".
        meta_every: "mlrsnet" meta-updates every this many steps.
        seed: initialisation and batch order.
        data_root: folder holding ``ptb/`` (paper profile).
        device: "cpu", "cuda", ... (default `metakit.device`'s choice).

    Returns:
        An `LMResult`; ``history`` has columns epoch, train_loss, valid_ppl, lr, seconds.
    """
    require("profile", profile, object, choices=sorted(LM_PROFILES))
    require("schedule", schedule, object, choices=LM_SCHEDULES)
    if schedule == "learned" and schedule_file is None:
        raise ValueError("schedule='learned' needs schedule_file=<a file saved by metakit.learners.lr_net.save_schedule>.")
    p = {**LM_PROFILES[profile], **{k: v for k, v in (("epochs", epochs), ("lr", lr), ("corpus", corpus)) if v is not None}}
    dev = pick_device(device)
    ids, vocab = tokenize(load_corpus(p["corpus"], data_root))
    train, valid, test = (chunks(ids[s], p["batch_size"], p["bptt"], dev) for s in ("train", "valid", "test"))
    torch.manual_seed(seed)
    net = LSTMLanguageModel(len(vocab), p["emb"], p["hidden"], 2, p["dropout"]).to(dev)
    optimizer = _optimizer(schedule, net, p["lr"])
    method, lr_schedule, lr_net = _method_and_schedule(schedule, optimizer, p, len(vocab), len(train), schedule_file,
                                                       meta_every, dev)
    trainer = Trainer(net, optimizer, lr_schedule, dev)
    method.setup(trainer)
    meta = cycle_batches(valid) if method.uses_meta_set else None     # the meta set: validation text
    try:
        history = fit(trainer, method, TextBatches(train, seed), valid, p["epochs"], meta=meta, progress=False,
                      score=valid_perplexity)
    except DivergenceError as err:
        raise DivergenceError(f"the language model diverged; lower lr (now {p['lr']}). {err}") from None
    history = history[["epoch", "train_loss", "valid_ppl", "lr", "seconds"]]
    return LMResult(history, perplexity(net, test), net, lr_net, len(vocab))
