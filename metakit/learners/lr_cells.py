"""The official MLR-SNet code's training cell, for the ``official_cell`` ablation of method mlrsnet.

metakit's LR net uses one `torch.nn.LSTMCell` (`metakit.learners.lr_net.MLRSNet`, ``cell="lstm"``);
``cell="official"`` swaps in `OfficialCell`, the cell the official code (xjtushujun/MLR-SNet)
meta-trains with. Its test-time cell (hidden/2 maps, no −1 forget bias, another gate order) is
not reproduced: a training cell's weights do not fit it.
"""
from __future__ import annotations

import torch
from torch import nn

CELLS = ("lstm", "official")


class OfficialCell(nn.Module):
    """The official code's training cell: input and state through small ReLU MLPs, forget bias −1.

    gates = MLP_i(x) + MLP_h(h) → (in, forget, out, transform), each (B, H); the forget gate is
    sigmoid(· − 1); weights of the maps start uniform in [−0.1, 0.1] (biases at PyTorch's default).
    Selected by ``MLRSNet(cell="official")`` (the ``official_cell`` ablation of method mlrsnet).

    Example:
        >>> h, c = OfficialCell(1, 4)(torch.ones(2, 1), (torch.zeros(2, 4), torch.zeros(2, 4)))
        >>> tuple(h.shape), bool((h.abs() < 1).all())
        ((2, 4), True)
    """

    def __init__(self, inputs: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.fc_i2h = nn.Sequential(nn.Linear(inputs, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 4 * hidden_size))
        self.fc_h2h = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                                    nn.Linear(hidden_size, 4 * hidden_size))
        for layer in (*self.fc_i2h, *self.fc_h2h):
            if isinstance(layer, nn.Linear):
                nn.init.uniform_(layer.weight, -0.1, 0.1)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state                                                                   # (B, H) each
        gates = (self.fc_i2h(x) + self.fc_h2h(h)).split(self.hidden_size, 1)           # 4 × (B, H)
        in_gate, forget, out_gate = torch.sigmoid(gates[0]), torch.sigmoid(gates[1] - 1), torch.sigmoid(gates[2])
        c = forget * c + in_gate * torch.tanh(gates[3])
        return out_gate * torch.tanh(c), c
