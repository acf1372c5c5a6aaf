"""The widget playground of notebook 06: one function from the controls' values to a plot.

`show_run` builds a `Config` from the controls, trains it through the results cache (moving a
control back to a setting already seen costs nothing), prints one line and returns the figure.
`controls` makes the ipywidgets; the notebook wires them with ``ipywidgets.interact`` so that
it also runs headless with the defaults.

Example:
    >>> config = playground_config("ce", 10, "uniform", 0.2, 5, "cosine", "smoke", epochs=1)
    >>> config.noise_kind, config.epochs
    ('uniform', 1)
"""
from __future__ import annotations

from metakit.experiments.cache import cached_run
from metakit.experiments import Config
from metakit.methods import METHODS
from metakit.plots.runs import run_figure
from metakit.schedules import SCHEDULES


def playground_config(method: str, imbalance: float, noise_kind: str, noise_rate: float, meta_per_class: int,
                      schedule: str, profile: str, seed: int = 0, epochs: int | None = None,
                      dataset: str | None = None) -> Config:
    """The `Config` of one playground setting; ``noise_kind="none"`` ignores the noise slider.

    ``dataset`` None is the profile's (digits); the notebook passes its ``DATASET``.

    Example:
        >>> c = playground_config("ce", 10, "none", 0.3, 5, "cosine", "smoke")
        >>> c.noise_rate, c.imbalance
        (0.0, 10.0)
        >>> playground_config("ce", 10, "none", 0.0, 10, "cosine", "smoke", dataset="mnist1d").resolve().model
        'resnet1d'
    """
    if noise_kind == "none" or noise_rate == 0:
        noise_kind, noise_rate = "none", 0.0
    return Config(method=method, imbalance=float(imbalance), noise_kind=noise_kind, noise_rate=float(noise_rate),
                  meta_per_class=int(meta_per_class), schedule=schedule, profile=profile, seed=seed,
                  epochs=epochs, dataset=dataset, progress=False)


def show_run(method: str, imbalance: float, noise_kind: str, noise_rate: float, meta_per_class: int,
             schedule: str, profile: str, seed: int = 0, epochs: int | None = None, dataset: str | None = None):
    """Train (or load) one setting, print its headline numbers, return its learning-curve figure."""
    result = cached_run(playground_config(method, imbalance, noise_kind, noise_rate, meta_per_class, schedule,
                                          profile, seed, epochs, dataset))
    m = result.metrics
    source = "cached" if result.cached else f"trained in {result.seconds:.0f} s"
    print(f"{method} on {result.config.dataset}: test accuracy {m['test_acc']:.1f}% (many {m['many_acc']:.1f}, medium {m['medium_acc']:.1f}, "
          f"few {m['few_acc']:.1f}) — {source}")
    config = result.config
    noise = "no noise" if config.noise_kind == "none" else f"{config.noise_kind} noise {config.noise_rate:g}"
    return run_figure(result.history, f"{method}, {config.dataset}, imbalance {imbalance:g}, {noise}")


def controls(imbalance: float = 10.0, noise_rate: float = 0.0, meta_per_class: int = 5, method: str = "ce",
             noise_kind: str = "none", schedule: str = "cosine") -> dict:
    """The playground's widgets, set to the given defaults (pass them to ``interact``).

    Example:
        >>> sorted(controls())
        ['imbalance', 'meta_per_class', 'method', 'noise_kind', 'noise_rate', 'schedule']
    """
    import ipywidgets as widgets

    style = {"description_width": "110px"}
    return {
        "method": widgets.Dropdown(options=sorted(METHODS), value=method, description="method", style=style),
        "imbalance": widgets.SelectionSlider(options=[1, 2, 5, 10, 20, 50], value=imbalance,
                                             description="imbalance", style=style),
        "noise_kind": widgets.Dropdown(options=["none", "uniform", "flip", "flip2"], value=noise_kind,
                                       description="noise kind", style=style),
        "noise_rate": widgets.FloatSlider(value=noise_rate, min=0.0, max=0.8, step=0.1, description="noise rate",
                                          style=style),
        "meta_per_class": widgets.IntSlider(value=meta_per_class, min=1, max=20, description="meta per class",
                                            style=style),
        "schedule": widgets.Dropdown(options=list(SCHEDULES), value=schedule, description="schedule", style=style),
    }
