"""The ablation figure draws whichever shot groups the runs have, one group alone included, and with a hue
splits every panel by the swept field and names it in the legend."""
import matplotlib.colors as mcolors
import pandas as pd
import pytest

from metakit.plots.runs import ablation_figure


def legend(fig):
    return [t.get_text() for t in fig.axes[1].get_legend().get_texts()]


def test_shot_groups_present_are_drawn_and_one_alone_works():
    nan = float("nan")
    t = pd.DataFrame({"imbalance": [1, 1, 10, 10], "seed": [0, 1, 0, 1], "test_acc": [52.0, 56.0, 19.0, 20.0],
                      "many_acc": nan, "medium_acc": [52.0, 56.0, 27.0, 28.0], "few_acc": [nan, nan, 0.0, 1.0]})
    assert legend(ablation_figure(t, x="imbalance")) == ["medium-shot", "few-shot"]
    alone = ablation_figure(t.assign(few_acc=nan), x="imbalance")   # one hue level: no dodge (seaborn divides by 0)
    assert legend(alone) == ["medium-shot"]
    full = ablation_figure(t.assign(many_acc=90.0), x="imbalance")
    assert legend(full) == ["many-shot", "medium-shot", "few-shot"]


HUED = pd.DataFrame({"imbalance": [1, 1, 10, 10] * 2, "method": ["ce"] * 4 + ["mwnet"] * 4, "seed": [0, 1] * 4,
                     "test_acc": [52.0, 56.0, 19.0, 20.0, 60.0, 62.0, 30.0, 32.0], "many_acc": float("nan"),
                     "medium_acc": [52.0, 56.0, 27.0, 28.0, 50.0, 54.0, 21.0, 23.0],
                     "few_acc": [None, None, 0.0, 1.0, None, None, 10.0, 12.0]})


def means(ax) -> dict:
    """colour → the y values of the point line drawn in it (the first line of each colour: the means)."""
    out = {}
    for line in ax.lines:
        if len(line.get_xdata()) and mcolors.to_hex(line.get_color()) not in out:
            out[mcolors.to_hex(line.get_color())] = (list(line.get_xdata()), list(line.get_ydata()))
    return out


def test_a_hue_splits_every_panel_by_the_swept_field_and_names_it():
    fig = ablation_figure(HUED, x="imbalance", hue="method")
    assert [ax.get_title() for ax in fig.axes] == ["all classes", "medium-shot", "few-shot"]
    legend = fig.axes[0].get_legend()
    assert legend.get_title().get_text() == "method" and [t.get_text() for t in legend.get_texts()] == ["ce", "mwnet"]
    colour = {t.get_text(): mcolors.to_hex(h.get_color()) for t, h in zip(legend.get_texts(), legend.legend_handles)}
    few = means(fig.axes[2])                          # per method, not pooled: ce 0.5, mwnet 11 at imbalance 10
    assert [round(y, 6) for y in few[colour["ce"]][1]] == [0.5]
    assert [round(y, 6) for y in few[colour["mwnet"]][1]] == [11.0]
    assert round(few[colour["ce"]][0][0]) == 1        # at imbalance 10's position, as in the other panels
    medium = means(fig.axes[1])
    assert medium[colour["ce"]][1] == [54.0, 27.5] and medium[colour["mwnet"]][1] == [52.0, 22.0]


def test_bad_columns_are_named():
    with pytest.raises(ValueError, match="hue='noise' is not a column of the table; use one of"):
        ablation_figure(HUED, x="imbalance", hue="noise")
    with pytest.raises(ValueError, match="hue='imbalance' is also x"):
        ablation_figure(HUED, x="imbalance", hue="imbalance")
