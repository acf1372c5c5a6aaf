"""The forest plot draws each verdict's paired interval exactly where stats.paired_delta (and scipy) put it."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from metakit.plots.forest import forest, verdict_frame, verdict_table
from metakit.studies.stats import Verdict, paired_delta
from metakit.teaching.verdicts import compare

SEEDS = [0, 1, 2, 3, 4]


def table(rng) -> pd.DataFrame:
    """Five seeds of ce and of three rivals, one clearly ahead, one clearly behind, one mixed."""
    ce = 80 + rng.normal(0, 1, len(SEEDS))
    shifts = {"ahead": 3.0, "behind": -3.0, "mixed": 0.0}
    rows = [{"dataset": "d", "setting": "s", "method": "ce", "variant": "", "seed": s, "test_acc": a}
            for s, a in zip(SEEDS, ce)]
    for method, shift in shifts.items():
        rows += [{"dataset": "d", "setting": "s", "method": method, "variant": "", "seed": s,
                  "test_acc": a + shift + rng.normal(0, 0.3 if shift else 2.0)} for s, a in zip(SEEDS, ce)]
    return pd.DataFrame(rows)


def test_plotted_intervals_equal_paired_delta_and_scipys_interval():
    rows = table(np.random.default_rng(0))
    methods = ["ahead", "behind", "mixed"]
    ax = forest([compare(rows, m, "ce") for m in methods])
    segments = ax.collections[0].get_segments()
    dots = ax.collections[1].get_offsets()
    ce = rows[rows.method == "ce"].sort_values("seed").test_acc.to_numpy()
    for y, method in enumerate(methods):
        mine = rows[rows.method == method].sort_values("seed").test_acc.to_numpy()
        mean, low, high = paired_delta(mine, ce)
        ci = scipy_stats.ttest_1samp(mine - ce, 0.0).confidence_interval(0.95)   # an independent computation
        np.testing.assert_allclose(segments[y], [[low, y], [high, y]], rtol=0, atol=1e-12)
        np.testing.assert_allclose([low, high], [ci.low, ci.high], rtol=0, atol=1e-9)
        np.testing.assert_allclose(dots[y], [mean, y], atol=1e-12)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"d s: {m} vs ce" for m in methods]
    colours = [tuple(np.round(c, 3)) for c in ax.collections[0].get_colors()]
    assert colours[0] != colours[1] and colours[2] not in colours[:2]     # ahead, behind, not separated differ


def test_a_verdict_without_an_interval_is_a_dot_only_and_the_table_keeps_every_verdict():
    verdicts = [Verdict("a", "b", "d s", 4, 1.0, 0.2, 1.8), Verdict("c", "b", "d s", 1, -2.0, math.nan, math.nan),
                Verdict("e", "b", "d s", 0, math.nan, math.nan, math.nan)]
    ax = forest(verdicts, margin=-1.0)
    assert len(ax.collections[0].get_segments()) == 1 and len(ax.collections[1].get_offsets()) == 3
    assert [line.get_xdata()[0] for line in ax.lines] == [0.0, -1.0]             # no difference, the margin
    frame = verdict_frame(verdicts)
    assert frame.verdict.tolist() == ["ahead", "too few seeds to tell", "no seed ran both"]
    html = verdict_table(frame).to_html()
    assert "+1.00" in html and "–" in html and "color: tab:green" in html


def test_an_empty_forest_and_a_bad_label_are_refused():
    with pytest.raises(ValueError, match="verdicts is empty"):
        forest([])
    with pytest.raises(ValueError, match="label='x'"):
        forest([Verdict("a", "b", "d s", 3, 1.0, 0.5, 1.5)], label="x")
