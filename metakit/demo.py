"""``make demo``: train every registered method on the bundled digits-LT and print a table."""
from __future__ import annotations

import time

import pandas as pd

from metakit.experiments import Config, run
from metakit.methods import METHODS


def demo(profile: str = "laptop", imbalance: float = 10.0, seed: int = 0) -> pd.DataFrame:
    """Run each method once on digits-LT and return one row per method.

    Example:
        >>> df = demo("smoke")  # doctest: +SKIP
    """
    rows = []
    for name in sorted(METHODS):
        start = time.perf_counter()
        result = run(Config(method=name, dataset="digits", imbalance=imbalance, profile=profile, seed=seed,
                            progress=False))
        m = result.metrics
        rows.append({"method": name, "test_acc": m["test_acc"], "many_acc": m["many_acc"],
                     "medium_acc": m["medium_acc"], "few_acc": m["few_acc"],
                     "seconds": time.perf_counter() - start})
        print(f"  {name:<12} test accuracy {m['test_acc']:5.1f}%  ({rows[-1]['seconds']:.0f} s)", flush=True)
    return pd.DataFrame(rows)


def main(profile: str = "laptop") -> None:
    print(f"metakit demo: digits-LT (imbalance 10), profile {profile}, seed 0", flush=True)
    table = demo(profile)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
