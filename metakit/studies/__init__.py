"""Studies: the tables behind every claim, each a `Study` declaration run by one pipeline.

Importing this package registers every study; ``python -m metakit study <name>`` runs one.
"""
# each module declares and registers one study
from metakit.studies import long_tail, long_tail_tuning, noise, schedules, schedule_transfer, lr_net_learning, mfm_ablation, mfm_transfer  # noqa: F401,I001
from metakit.studies.registry import STUDIES, get_study, register
from metakit.studies.findings import Claim
from metakit.studies.study import Plan, Source, Study, rerun_config, run_study, write_study

__all__ = ["STUDIES", "Claim", "Plan", "Source", "Study", "get_study", "register", "rerun_config", "run_study",
           "write_study"]
