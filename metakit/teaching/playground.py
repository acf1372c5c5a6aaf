"""The widget playground of notebook 06: one function from the controls' values to a plot, run on a button.

`show_run` builds a `Config` from the controls, trains it through the results cache (moving a
control back to a setting already seen costs nothing), prints one line and returns the figure.
`controls` makes the ipywidgets; `Playground` lays them out with a Run button: moving a slider
only marks the settings as changed, a press trains (or loads) exactly one run. It runs once with
the defaults when built, so the notebook also runs headless.

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
    """The playground's widgets, set to the given defaults (`Playground` lays them out with its Run button).

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


class Playground:
    """The controls, a Run button, a status line and an output area; one run per press, none per slider tick.

    ``interact`` would retrain on every tick of a slider (each tick is a value change); here a
    change only updates the status line, and `run` (the button) trains the current setting once.

    Args:
        runner: called as ``runner(**values, **fixed)`` for a run (default `show_run`).
        fixed: keyword arguments every run gets besides the controls (profile, seed, epochs, dataset).
        **defaults: the controls' starting values (see `controls`).

    Example:
        >>> calls = []
        >>> pg = Playground(lambda **kw: calls.append(kw["imbalance"]), fixed={"profile": "smoke"}, imbalance=10)
        >>> pg.controls["imbalance"].value = 20; pg.controls["imbalance"].value = 50; calls
        [10]
        >>> pg.button.click(); calls, pg.status.value
        ([10, 50], 'up to date (run 2)')
    """

    def __init__(self, runner=None, *, fixed: dict | None = None, **defaults):
        import ipywidgets as widgets

        self.runner, self.fixed = runner or show_run, dict(fixed or {})
        clash = sorted(set(self.fixed) & set(controls()))
        if clash:
            raise ValueError(f"fixed={self.fixed!r} sets {clash}, which are controls; pass them as defaults "
                             f"(e.g. Playground({clash[0]}=...)) instead.")
        self.controls = controls(**defaults)
        self.button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.status = widgets.Label()
        self.output = widgets.Output()
        self.runs = 0
        self.button.on_click(lambda _button: self.run())
        for widget in self.controls.values():
            widget.observe(self._changed, names="value")
        self.run()

    def values(self) -> dict:
        """The controls' current values, by name."""
        return {name: widget.value for name, widget in self.controls.items()}

    def _changed(self, change) -> None:
        self.status.value = f"changed ({change['owner'].description} → {change['new']}): press Run"

    def run(self):
        """Train (or load from the cache) the current setting once and show it; returns what the runner did."""
        from IPython import get_ipython
        from IPython.display import display

        values = self.values()
        self.status.value = "running…"
        self.runs += 1
        if get_ipython() is None:                    # a plain Python process (tests, scripts): nothing to show in
            shown = self.runner(**values, **self.fixed)
        else:
            with self.output:
                self.output.clear_output(wait=True)
                shown = self.runner(**values, **self.fixed)
                if shown is not None:
                    display(shown)
        self.status.value = f"up to date (run {self.runs})"
        return shown

    def widget(self):
        """The whole playground as one ipywidgets box."""
        import ipywidgets as widgets

        return widgets.VBox([widgets.HBox([widgets.VBox(list(self.controls.values())[:3]),
                                           widgets.VBox(list(self.controls.values())[3:])]),
                             widgets.HBox([self.button, self.status]), self.output])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget())
