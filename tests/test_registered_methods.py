"""A method registered at runtime (in a notebook, or a module of one's own) is part of the cache key,
and reaches worker processes by its module, or is refused in one line when it lives in ``__main__``."""
import concurrent.futures as cf
import sys
import textwrap

import pytest

from metakit.experiments import Config
from metakit.experiments.cache import cache_key
from metakit.experiments.executors import make_executor
from metakit.studies.sweep import ablate
from metakit.methods import METHODS, register
from metakit.methods.registry import source_hash, worker_modules

SOURCE = '''
import torch.nn.functional as F
from metakit.methods import Method, register

@register
class Smoothed(Method):
    """Cross-entropy with label smoothing {eps}."""
    name = "smoothed_test"

    def per_sample_loss(self, logits, targets):
        return F.cross_entropy(logits, targets, reduction="none", label_smoothing={eps})
'''


def define(eps: float, module: str = "__main__"):
    """Define and register the method as a notebook cell would (exec'd: no source file behind it)."""
    namespace = {"__name__": module}
    exec(compile(SOURCE.format(eps=eps), "<cell>", "exec"), namespace)
    return namespace["Smoothed"]


@pytest.fixture(autouse=True)
def clean_registry():
    yield
    METHODS.pop("smoothed_test", None)


def test_the_method_code_is_in_the_cache_key():
    config = Config(method="smoothed_test", profile="smoke")
    define(0.1)
    first = cache_key(config)
    define(0.1)                                       # the same code again: the same key (no addresses in it)
    assert cache_key(config) == first
    define(0.2)                                       # edited in the notebook: trains again
    assert cache_key(config) != first
    assert source_hash("ce") is None and source_hash("smoothed_test") is not None


def test_reregistering_a_builtin_name_changes_its_key(monkeypatch):
    before = cache_key(Config(method="ce", profile="smoke"))
    cls = define(0.1)
    monkeypatch.setitem(METHODS, "ce", cls)
    assert cache_key(Config(method="ce", profile="smoke")) != before


def test_a_notebook_method_with_workers_is_refused_in_one_line(tmp_path):
    define(0.1)
    with cf.ThreadPoolExecutor(1) as pool, pytest.raises(ValueError) as info:
        ablate({"imbalance": [1, 10]}, Config(method="smoothed_test", profile="smoke", epochs=1), cache=tmp_path,
               progress=False, executor=pool)
    message = str(info.value)
    assert "\n" not in message and "method='smoothed_test' is defined in '__main__'" in message
    assert "my_methods.py" in message and "executor=None" in message
    assert not list(tmp_path.iterdir())               # refused before anything ran


def test_a_notebook_method_without_workers_runs(tmp_path):
    define(0.1)
    table = ablate({"imbalance": [10]}, Config(method="smoothed_test", profile="smoke", epochs=1), cache=tmp_path,
                   progress=False)
    assert table["error"].isna().all() and 0 <= table["test_acc"].iloc[0] <= 100


def test_a_sweep_whose_every_run_fails_reports_each_run(tmp_path):
    cls = define(0.1)
    cls.per_sample_loss = lambda self, logits, targets: 1 / 0
    with pytest.warns(UserWarning, match="run failed"):
        table = ablate({"imbalance": [1, 10]}, Config(method="smoothed_test", profile="smoke", epochs=1),
                       cache=tmp_path, progress=False)
    assert table["error"].str.contains("ZeroDivisionError").all() and not table["cached"].any()
    assert table["test_acc"].isna().all()


@pytest.mark.slow
def test_a_method_from_a_module_works_in_spawned_workers(tmp_path, monkeypatch):
    (tmp_path / "my_methods_test.py").write_text(textwrap.dedent(SOURCE.format(eps=0.1)))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_methods_test  # noqa: F401  registers smoothed_test here

    assert worker_modules(["ce", "smoothed_test"]) == ("my_methods_test",)
    executor = make_executor(workers=1)               # spawned: a fresh interpreter that never saw the class
    try:
        table = ablate({"imbalance": [10]}, Config(method="smoothed_test", profile="smoke", epochs=1),
                       cache=tmp_path / "cache", progress=False, executor=executor)
    finally:
        executor.shutdown()
        sys.modules.pop("my_methods_test", None)
    assert table["error"].isna().all(), table["error"].iloc[0]
    assert 0 <= table["test_acc"].iloc[0] <= 100
