"""The official MLR-SNet code's two cells: the one it meta-trains, and the one its snapshots run in.

metakit's LR net uses one `torch.nn.LSTMCell` (`metakit.learners.lr_net.MLRSNet`, ``cell="lstm"``);
``cell="official"`` swaps in `OfficialCell`, the training cell of the official code
(xjtushujun/MLR-SNet, ``module.py``), and ``cell="official_test"`` `OfficialTestCell`, the cell of
its meta-test (``meta-test/model/network.py``), which the authors' released snapshots load into
(`metakit.learners.official`). A training cell's weights do not fit the test cell.
"""
from __future__ import annotations

import torch
from torch import nn

CELLS = ("lstm", "official", "official_test")


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


class OfficialTestCell(nn.Module):
    """The official meta-test cell: maps through hidden/2 units, gates (in, forget, transform, out), no bias shift.

    gates = MLP_i(x) + MLP_h(h), each MLP ``Linear → ReLU → Linear`` through hidden // 2 units; the
    forget gate is a plain sigmoid (the training cell's −1 is absent) and the gate order differs
    from `OfficialCell`'s. Selected by ``MLRSNet(cell="official_test")``; its weights come from the
    authors' snapshot files.

    Example:
        >>> cell = OfficialTestCell(1, 50)
        >>> cell.fc_i2h[0].out_features, cell.fc_h2h[2].out_features
        (25, 200)
        >>> h, c = cell(torch.ones(1, 1), (torch.zeros(1, 50), torch.zeros(1, 50)))
        >>> tuple(h.shape)
        (1, 50)
    """

    def __init__(self, inputs: int, hidden_size: int):
        super().__init__()
        self.hidden_size, half = hidden_size, hidden_size // 2
        self.fc_i2h = nn.Sequential(nn.Linear(inputs, half), nn.ReLU(), nn.Linear(half, 4 * hidden_size))
        self.fc_h2h = nn.Sequential(nn.Linear(hidden_size, half), nn.ReLU(), nn.Linear(half, 4 * hidden_size))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state                                                                   # (B, H) each
        gates = (self.fc_i2h(x) + self.fc_h2h(h)).split(self.hidden_size, 1)           # 4 × (B, H)
        in_gate, forget, out_gate = torch.sigmoid(gates[0]), torch.sigmoid(gates[1]), torch.sigmoid(gates[3])
        c = forget * c + in_gate * torch.tanh(gates[2])
        return out_gate * torch.tanh(c), c
