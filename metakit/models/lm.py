"""The word-level LSTM language model (Zaremba et al. 2014's medium/large shape at the paper profile)."""
from __future__ import annotations

import torch
from torch import nn


class LSTMLanguageModel(nn.Module):
    """Embedding → 2-layer LSTM → linear decoder; ``forward(x (T, B)) → logits (T·B, V)``.

    Each call starts from a zero LSTM state, so a step is a pure function of (θ, batch).

    Example:
        >>> net = LSTMLanguageModel(vocab_size=7, emb=4, hidden=5)
        >>> net(torch.zeros(3, 2, dtype=torch.long)).shape
        torch.Size([6, 7])
    """

    def __init__(self, vocab_size: int, emb: int = 64, hidden: int = 64, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb)
        self.lstm = nn.LSTM(emb, hidden, layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.drop(self.embed(x)))                                  # (T, B, H), zero state
        return self.fc(self.drop(out)).flatten(0, 1)                                  # (T·B, V)
