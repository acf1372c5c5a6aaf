"""The ablation figure draws whichever shot groups the runs have, one group alone included."""
import pandas as pd

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
