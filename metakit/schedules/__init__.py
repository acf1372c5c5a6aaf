"""Learning-rate schedules: one object owns the optimiser's LR and sets it before every step.

- `hand`: fixed, multistep, exp, cosine, SGDR (functions of the epoch progress);
- `hd`: hypergradient descent (Baydin et al. 2018), the LR follows ⟨g_t, g_{t−1}⟩;
- `learned`: a frozen MLR-SNet LR net, the LR read off the training loss.
"""
from metakit.schedules.hand import SCHEDULES, Schedule, lr_function, sgdr_position
from metakit.schedules.hd import HypergradientLR
from metakit.schedules.learned import LearnedSchedule

__all__ = ["SCHEDULES", "HypergradientLR", "LearnedSchedule", "Schedule", "lr_function", "sgdr_position"]
