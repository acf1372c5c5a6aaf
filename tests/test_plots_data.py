"""Notebook 00's pictures for both offline datasets: images as pictures, MNIST-1D signals as lines."""
from metakit.data import load_source
from metakit.plots.data import class_counts_table, samples_figure


def test_images_are_pictures_and_signals_are_lines():
    digits = samples_figure(load_source("digits"), per_class=3)
    assert len(digits.axes) == 30 and all(len(ax.images) == 1 and not ax.lines for ax in digits.axes)
    signals = samples_figure(load_source("mnist1d", size="small"), per_class=3)
    assert len(signals.axes) == 30 and all(len(ax.lines) == 1 and not ax.images for ax in signals.axes)
    assert len(signals.axes[0].lines[0].get_ydata()) == 40 and "signals" in signals._suptitle.get_text()


def test_class_counts_follow_the_protocols_cap():
    source = load_source("mnist1d", size="small")                   # 110 pool samples a class
    free = class_counts_table(source, [1, 10], ["exp"], meta_per_class=10)
    capped = class_counts_table(source, [1, 10], ["exp"], meta_per_class=10, train_per_class=50)
    assert free["count"].max() == 100 and capped["count"].max() == 50
    assert capped.query("imbalance == 10")["count"].min() == 5      # int(50 / 10) in the last class
