"""Every meta-learned network, in one room.

- `weight_net.WeightNet`: Meta-Weight-Net's loss → sample weight MLP (``enters="loss"``);
- `lr_net.MLRSNet`: MLR-SNet's LSTM, loss → learning rate (``enters="lr"``), and `lr_net.LRSnapshots`,
  one such net after every epoch of meta-training (`lr_cells.OfficialCell`: the official code's cell);
- `modulation`: MFM's per-channel γ/β and the modulator network (``enters="forward"``).

Each is a `metakit.meta.MetaLearner`: its ``enters`` says where φ enters the inner step.
"""
from metakit.learners.lr_net import LRSnapshots, MLRSNet
from metakit.learners.modulation import FeatureModulation, Modulation, ModulatorNet, attach
from metakit.learners.weight_net import WeightNet

__all__ = ["FeatureModulation", "LRSnapshots", "MLRSNet", "Modulation", "ModulatorNet", "WeightNet", "attach"]
