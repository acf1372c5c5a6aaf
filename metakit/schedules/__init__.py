"""Learning-rate schedules, all on one protocol (`metakit.schedules.base.LRSchedule`).

- `hand`: fixed, multistep, exp, cosine, SGDR (functions of the epoch progress);
- `hd`: hypergradient descent (Baydin et al. 2018), the LR follows ⟨g_t, g_{t−1}⟩;
- `learned`: a frozen MLR-SNet, the LR read off the training loss (one net, or the official staged
  meta-test over per-epoch snapshots with γ re-derived at each switch);
- `replay`: a loss trajectory through a frozen staged MLR-SNet (does the LR follow the loss?);
- `registry`: ``@register_schedule(name)`` and ``build_schedule(name, optimizer, ...)``, every one by name.

Add a schedule: a new file whose builder is decorated with ``@register_schedule(name)``, imported here.
"""
from metakit.schedules.base import NEEDS, LRSchedule
# each schedule file registers its builders on import, in this order (LR_SCHEDULES follows it)
from metakit.schedules.hand import SCHEDULES, Schedule, lr_function, sgdr_position
from metakit.schedules.hd import HypergradientLR
from metakit.schedules.learned import LearnedSchedule, StagedSchedule, full_train_loss, gamma_rule, switch_epochs
from metakit.schedules.registry import LR_SCHEDULES, ScheduleArgs, build_schedule, register_schedule

__all__ = ["LR_SCHEDULES", "NEEDS", "SCHEDULES", "HypergradientLR", "LRSchedule", "LearnedSchedule", "Schedule",
           "ScheduleArgs", "StagedSchedule", "build_schedule", "full_train_loss", "gamma_rule", "lr_function",
           "register_schedule", "sgdr_position", "switch_epochs"]
