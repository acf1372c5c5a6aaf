"""An endless, resumable stream of batches (the meta set drawn at every meta-step).

Unlike a generator, a `Stream` can save and restore its exact position, so a resumed run draws
the same meta batches as an uninterrupted one.
"""
from __future__ import annotations

import torch

from metakit.data.batches import Batch, Batches


class Stream:
    """Endless batches from ``batches``, reshuffled at every pass; ``next(stream)`` gives one.

    Example:
        >>> b = Batches(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), [0, 1, 0], 2, torch.device("cpu"), (0.,), (1.,))
        >>> s = Stream(b); [len(next(s).y) for _ in range(3)]
        [2, 1, 2]
    """

    def __init__(self, batches: Batches):
        self.batches = batches
        self.order: torch.Tensor | None = None
        self.position = 0

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Batch:
        b = self.batches
        if self.order is None or self.position >= len(b) * b.batch_size:
            self.order, self.position = b.order().to(b.device), 0
        idx = self.order[self.position:self.position + b.batch_size]
        self.position += b.batch_size
        return Batch(b.transform(b.x.index_select(0, idx)), b.y.index_select(0, idx), idx)  # as Batches.__iter__

    def state_dict(self) -> dict:
        """Generator state, current pass order and position."""
        return {"generator": self.batches.generator.get_state(), "position": self.position,
                "order": None if self.order is None else self.order.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.batches.generator.set_state(state["generator"])
        self.position = int(state["position"])
        self.order = None if state["order"] is None else state["order"].to(self.batches.device)
