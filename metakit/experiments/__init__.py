"""Experiments: `Config`, `run`, the one training loop, checkpoints, the results cache,
executors and the grids that make tables.

Example:
    >>> from metakit.experiments import Config, run
    >>> run(Config(method="ce", profile="smoke", epochs=1, progress=False)).config.epochs
    1
"""
from metakit.experiments.config import PROFILES, Config, validate
from metakit.experiments.run import Result, build, build_optimizer, config_key, run, seed_everything

__all__ = ["PROFILES", "Config", "Result", "build", "build_optimizer", "config_key", "run", "seed_everything",
           "validate"]
