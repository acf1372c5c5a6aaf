"""Checks for the exercises on tables and modules (notebooks 02 and 06), in the style of `metakit.teaching.checks`.

Each runs the student's function on the notebook's table and on small tables of its own, built so
that the plausible wrong answers (the median, the best seed, one row, the test split) point
elsewhere than the right one; a hint names the mistake, never the right value.

Example:
    >>> check_few_shot_gain(lambda rows, label: 0.0, [])
    Traceback (most recent call last):
    AssertionError: Not yet. Hint: few_shot_gain(rows, 'mfm') gives 0 on rows of the check's own; the gain is the mean few_acc of the label minus the mean few_acc of 'ce', each over every seed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from metakit.studies.sweep import FIELDS
from metakit.teaching.checks import _call, _number, _ok, _require


def check_grid(grid: dict, runs: int, must_vary: tuple[str, ...] = (), expect: dict | None = None) -> None:
    """``grid`` is a valid `metakit.studies.sweep.ablate` grid of ``runs`` configurations varying ``must_vary``.

    Args:
        grid: the student's field → values.
        runs: how many configurations the exercise asks for.
        must_vary: fields that must take at least two values; with it, no other field may vary.
        expect: the values the exercise asks for, per field (compared as sets); the hint names the
            field, never the values.

    Example:
        >>> check_grid({"imbalance": [1, 10], "noise_rate": [0.0]}, runs=2)
        ✓ a grid of 2 configurations over imbalance, noise_rate.
    """
    from metakit.experiments import Config
    from metakit.studies.sweep import jobs

    _require(isinstance(grid, dict) and len(grid) > 0, "a grid is a non-empty dict: field name → list of values.")
    for name, values in grid.items():
        _require(name in FIELDS, f"{name!r} is not a Config field; fields are {FIELDS}.")
        _require(isinstance(values, list) and len(values) > 0, f"grid[{name!r}] must be a non-empty list.")
        _require(len({repr(v) for v in values}) == len(values), f"grid[{name!r}] repeats a value: every "
                                                                "configuration would run twice.")
    for name in must_vary:
        _require(len(grid.get(name, [])) > 1, f"vary {name!r}: give it at least two values.")
    others = [name for name, values in grid.items() if len(values) > 1 and name not in must_vary]
    _require(not must_vary or not others, f"the exercise varies {', '.join(must_vary)} only; {others} varies too.")
    try:
        jobs(grid, Config(profile="smoke"))                       # resolves every config: bad values say why
    except (ValueError, TypeError) as err:
        raise AssertionError(f"Not yet. Hint: a configuration of your grid is not valid: {err}") from None
    size = int(np.prod([len(v) for v in grid.values()]))
    _require(size == runs, f"your grid has {size} configurations (the product of the list lengths); we asked for {runs}.")
    for name, values in (expect or {}).items():
        _require({repr(v) for v in grid.get(name, [])} == {repr(v) for v in values},
                 f"grid[{name!r}] = {grid.get(name)!r} holds other values than the exercise asks for; reread it.")
    _ok(f"a grid of {size} configurations over {', '.join(grid)}.")


def _best_tables(field: str) -> list[pd.DataFrame]:
    """Tables on which the single best run, the median, the max, the first seed and the test split all point
    elsewhere than the mean validation accuracy."""
    runs = {"a": ([90.0, 10.0, 10.0], None),      # the single best run, the best maximum and first seed
            "b": ([40.0, 45.0, 70.0], None),      # the best mean val_acc: the answer
            "c": ([50.0, 50.0, 50.0], None),      # the best median
            "d": ([20.0, 20.0, 20.0], None),      # the lowest mean
            "e": ([30.0, 30.0, 30.0], 70.0)}      # the best mean test_acc
    tables = []
    for values in ((3, 7, 11, 15, 19), (13, 9, 15, 5, 1)):         # b is 7, then 9: never first or last by value
        label = dict(zip("abcde", values))
        tables.append(pd.DataFrame([{field: label[k], "seed": s, "val_acc": acc, "test_acc": test or acc}
                                    for k, (accs, test) in runs.items() for s, acc in enumerate(accs)]))
    return tables


def check_best(fn: Callable[[pd.DataFrame, str], object], table: pd.DataFrame, field: str) -> None:
    """``fn(table, field)`` returns the value of ``field`` with the highest mean validation accuracy (``val_acc``) over seeds.

    ``fn`` runs on two small tables of the check's own, on which the single best run, the median,
    the maximum and the test accuracy point to another value than the mean validation accuracy,
    then on ``table`` when it has a ``val_acc`` column.

    Example:
        >>> t = pd.DataFrame({"lr": [0.1, 0.1, 0.5, 0.5], "seed": [0, 1, 0, 1], "val_acc": [80, 90, 99, 60],
        ...                   "test_acc": [80, 90, 99, 99]})
        >>> check_best(lambda t, f: t.groupby(f)["val_acc"].mean().idxmax(), t, "lr")
        ✓ best lr = 0.1 (mean validation accuracy 85.0% over seeds).
    """
    __tracebackhide__ = True
    ours = _best_tables(field)
    for t in [*ours, *([table] if "val_acc" in table else [])]:
        means = t.groupby(field)["val_acc"].mean()
        want, got = means.idxmax(), _call(fn, t.copy(), field, what="best_setting")
        _require(np.ndim(got) == 0 and not isinstance(got, (dict, pd.DataFrame, pd.Series)),
                 f"return one value of {field!r}, not a {type(got).__name__}.")
        if got == want:
            continue
        by_seed = t.groupby(field)["val_acc"]
        _require(got in set(means.index), f"yours {got!r} is not a value of {field!r} in the table.")
        _require(got != t.groupby(field)["test_acc"].mean().idxmax(),
                 "yours selects on test_acc: select on the validation accuracy (val_acc); the test set only reports.")
        _require(got != t.loc[t["val_acc"].idxmax(), field], "yours is the setting of the single best run: "
                                                            "average val_acc over the seeds first.")
        _require(got != by_seed.median().idxmax() and got != by_seed.max().idxmax(),
                 "average over seeds with the mean (not the median or the maximum).")
        _require(got != means.idxmin(), "yours has the lowest mean: take the highest.")
        _require(False, f"yours {got!r} is not the value of {field!r} with the highest mean val_acc over seeds.")
    if "val_acc" not in table:
        _ok("best_setting picks the highest mean validation accuracy on the check's tables (this table has no "
            "val_acc column).")
        return
    means = table.groupby(field)["val_acc"].mean()
    _ok(f"best {field} = {means.idxmax()} (mean validation accuracy {means.max():.1f}% over seeds).")


# few-shot accuracy by seed: mean, median, best seed, first and last row each give another gain
GAIN_ROWS = {"ce": [10.0, 20.0, 90.0], "mfm": [80.0, 60.0, 1.0], "mwnet": [35.0, 5.0, 96.0]}


def check_few_shot_gain(fn: Callable[[list, str], float], rows: list[dict]) -> None:
    """``fn(rows, label)`` is the mean ``few_acc`` of ``label`` minus that of ``"ce"``, each over every seed (notebook 02).

    Runs on ``rows`` and on rows of its own with three seeds, on which the median, the best seed
    and the first row give other gains than the mean.

    Example:
        >>> check_few_shot_gain(lambda rows, label: pd.DataFrame(rows).groupby("method")["few_acc"].mean().pipe(
        ...     lambda m: m[label] - m["ce"]), [])
        ✓ few_shot_gain averages few_acc over every seed of each method, then subtracts ce's.
    """
    __tracebackhide__ = True
    ours = [{"method": m, "seed": s, "test_acc": 50.0 + s, "many_acc": 99.0, "medium_acc": 50.0, "few_acc": acc}
            for s in range(3) for m, accs in GAIN_ROWS.items() for acc in accs[s:s + 1]]
    for table in (ours, rows):
        frame = pd.DataFrame(table)
        if frame.empty:
            continue
        by = frame.groupby("method")["few_acc"]
        for label in [m for m in by.mean().index if m != "ce"] + ["ce"]:
            got = _number(_call(fn, [dict(r) for r in table], label, what="few_shot_gain"), "few_shot_gain")
            want = by.mean()[label] - by.mean()["ce"]
            if np.isclose(got, want):
                continue
            wrong = {"the median": by.median(), "the best seed": by.max(), "the first row": by.first(),
                     "the last row": by.last()}
            for what, stat in wrong.items():
                _require(not np.isclose(got, stat[label] - stat["ce"]), f"yours takes {what} of each method; "
                                                                       "average few_acc over every seed (the mean).")
            _require(not np.isclose(got, -want), "the sign is flipped: the gain is the label's minus ce's.")
            _require(not np.isclose(got, by.mean()[label]), "subtract ce's mean few-shot accuracy.")
            where = "rows of the check's own" if table is ours else "the notebook's rows"
            _require(False, f"few_shot_gain(rows, {label!r}) gives {got:.4g} on {where}; the gain is "
                            f"the mean few_acc of the label minus the mean few_acc of 'ce', each over every seed.")
    _ok("few_shot_gain averages few_acc over every seed of each method, then subtracts ce's.")


def check_beta_change(change, net: torch.nn.Module, x: torch.Tensor) -> None:
    """``change`` is the change of ``net``'s logits on ``x`` when modulation on ``fc`` alone has every β at 1 (notebook 02).

    ``net`` must carry that modulation (``attach(net, "fc")``, γ = 1, β = 1); the check recomputes
    the change by switching the modulation off and on.
    """
    __tracebackhide__ = True
    _require(change is not None, "change is still None: compute it in the cell above.")
    _require(torch.is_tensor(change), f"change is a tensor, not {type(change).__name__}.")
    mod = getattr(net, "modulation", None)
    _require(mod is not None, "net has no modulation: attach it to 'fc' on the fresh classifier (attach).")
    _require(list(mod.names) == ["fc"], f"net is modulated at {mod.names}: attach to 'fc' only.")
    layer = mod.layer("fc")
    _require(torch.all(layer.beta == 1).item(), "set every β of the fc modulation to 1.")
    _require(torch.all(layer.gamma == 1).item(), "leave γ at 1: the exercise moves β alone.")
    training, enabled = net.training, mod.enabled
    try:
        net.eval()
        with torch.no_grad():
            mod.enabled = True
            after = net(x)
            mod.enabled = False
            want = after - net(x)                                       # (B, num_classes)
    finally:
        mod.enabled = enabled
        net.train(training)
    _require(tuple(change.shape) == tuple(want.shape), f"change has shape {tuple(change.shape)}: it is the change of "
                                                        f"the logits on the batch x, one row per image {tuple(want.shape)}.")
    change = change.detach().to(want.dtype)
    _require(not torch.allclose(change, -want, atol=1e-5), "the sign is flipped: the logits with β = 1 minus before.")
    _require(torch.allclose(change, want, atol=1e-5), "change differs from what the logits do when β goes from 0 "
                                                      "to 1 on this net and this x: compute both with the net in eval mode.")
    _ok("change is what β = 1 adds to the logits — the same for every image: a bias in disguise (which tensor of "
        "net.fc is it?).")
