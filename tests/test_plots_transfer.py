"""The schedule-transfer figures draw what results/ stores: hand curves computed from a row's config equal the
LRs its run recorded, stage curves equal the γ-share table, and the note names what is not stored."""
import numpy as np
import pandas as pd
import pytest

from metakit.plots.transfer import (hand_lr_curves, plot_final_lr_vs_accuracy, plot_gamma_vs_lr, stage_lr_curve,
                                    stored_lr_points, stored_note)
from metakit.studies import get_study, rerun_config
from metakit.studies.grid import read_csv
from metakit.teaching.results import REPO_ROOT

FOLDER = REPO_ROOT / "results" / "digits"
TABLE = FOLDER / "schedule_transfer_laptop.csv"
SHARE = REPO_ROOT / "results" / "schedule_gamma_share.csv"
needs_tables = pytest.mark.skipif(not (TABLE.is_file() and SHARE.is_file()), reason="committed tables not in this checkout")


@needs_tables
def test_hand_curves_from_a_rows_config_equal_the_lrs_its_run_stored():
    rows = read_csv(TABLE, momentum=True)
    same = rows[(rows.setting == "transfer_same") & (rows.momentum == 0.0) & rows.method.str.startswith("sched_")
                & (rows.method != "sched_mlrsnet") & (rows.variant.fillna("") == "")]
    configs = {m: rerun_config(get_study("schedule_transfer"), part.iloc[0].to_dict(), None, FOLDER).resolve()
               for m, part in same.groupby("method")}
    assert len(configs) >= 4
    curves = hand_lr_curves(configs)
    points = stored_lr_points(same)
    merged = points.merge(curves, on=["schedule", "epoch"], suffixes=("_stored", "_computed"))
    assert len(merged) == 2 * len(configs)                                # mid and final of every hand schedule
    # the curve averages 8 step starts an epoch, the run its real steps: equal to 0.1% of the base LR (0.1)
    np.testing.assert_allclose(merged.lr_computed, merged.lr_stored, rtol=0.01, atol=1e-4)


@needs_tables
def test_the_stage_curve_and_the_gamma_figure_hold_the_gamma_share_numbers():
    share = read_csv(SHARE, momentum=True)
    mine = share[(share.dataset == "digits") & (share.momentum == 0.0)]
    curve = stage_lr_curve(mine, 60)
    assert len(curve) == 60 and curve.lr.iloc[0] == pytest.approx(mine.lr_1.median())
    assert curve.lr.iloc[-1] == pytest.approx(mine.lr_3.median()) and curve.gamma.iloc[30] == pytest.approx(mine.gamma_2.median())
    ax = plot_gamma_vs_lr(share[share.dataset == "digits"])
    drawn = np.concatenate([c.get_offsets() for c in ax.collections])
    expected = np.concatenate([share[share.dataset == "digits"][[f"gamma_{k}", f"lr_{k}"]].to_numpy() for k in (1, 2, 3)])
    assert sorted(map(tuple, drawn.round(9))) == sorted(map(tuple, expected.round(9)))


def test_final_lr_figure_leaves_out_the_source_and_the_language_model_and_the_note_counts():
    rows = pd.DataFrame({"setting": ["transfer_source", "transfer_same", "transfer_same", "transfer_lm"],
                         "method": ["sched_mlrsnet", "sched_mlrsnet", "sched_cosine", "sched_mlrsnet"],
                         "variant": ["meta_train", "", "", ""], "momentum": 0.0, "seed": 0, "epochs": 4,
                         "mid_lr": [0.1, 0.05, 0.04, None], "final_lr": [0.1, 0.01, 0.001, None],
                         "test_acc": [90.0, 91.0, 92.0, None]})
    fig = plot_final_lr_vs_accuracy(rows)
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 2
    share = pd.DataFrame({"dataset": ["digits"], "setting": ["transfer_same"]})
    note = stored_note(rows, share, "digits")
    assert note.startswith("**Stored:** 2 image runs") and "per-epoch LR column" in note
    assert "γ of the frozen schedule in" not in note                     # γ is stored for the only image setting
    with pytest.raises(ValueError, match="share has no rows"):
        stage_lr_curve(share.iloc[:0], 4)
