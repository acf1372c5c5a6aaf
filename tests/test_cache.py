"""Results cache: hits, misses, invalidation, safe loading, and concurrent writers."""
import dataclasses
import json
import multiprocessing as mp

import pandas as pd
import pytest

from metakit.experiments import cache
from metakit.experiments.cache import cache_key, cached_run, entry_path
from metakit.experiments import Config

SMOKE = Config(profile="smoke", epochs=1, imbalance=5, progress=False, device="cpu")


def test_second_call_loads_the_same_numbers_without_training(tmp_path):
    first = cached_run(SMOKE, cache_dir=tmp_path)
    assert first.cached is False and first.net is not None
    again = cached_run(SMOKE, cache_dir=tmp_path)
    assert again.cached is True and again.net is None and again.split is None   # loaded, nothing trained
    assert json.dumps(again.metrics) == json.dumps(first.metrics)  # exact, NaN (empty group) included
    pd.testing.assert_frame_equal(again.history, first.history, check_dtype=False)
    assert again.seconds == pytest.approx(first.seconds)
    assert again.config == first.config


def test_refresh_trains_again(tmp_path):
    cached_run(SMOKE, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.json")
    entry.write_text(entry.read_text().replace('"seconds"', '"seconds_"', 1))   # mark the stored entry
    fresh = cached_run(SMOKE, cache_dir=tmp_path, refresh=True)
    assert fresh.cached is False and fresh.net is not None                       # trained: a live net
    assert '"seconds_"' not in entry.read_text()                                 # and stored over the old one


def test_key_follows_results_not_cosmetics(monkeypatch):
    assert cache_key(SMOKE) == cache_key(dataclasses.replace(SMOKE, progress=True))
    assert cache_key(SMOKE) == cache_key(dataclasses.replace(SMOKE, batch_size=64))  # the smoke default
    assert cache_key(SMOKE) == cache_key(dataclasses.replace(SMOKE, imbalance=5.0))     # int or float
    assert cache_key(SMOKE) != cache_key(dataclasses.replace(SMOKE, seed=1))
    assert cache_key(SMOKE) != cache_key(dataclasses.replace(SMOKE, options={}, lr=0.05))
    before = cache_key(SMOKE)
    monkeypatch.setattr(cache, "source_hash", lambda: "edited code")
    assert cache_key(SMOKE) != before


def test_version_changes_key(monkeypatch):
    before = cache_key(SMOKE)
    monkeypatch.setattr(cache.metakit, "__version__", "9.9.9")
    assert cache_key(SMOKE) != before


def test_source_hash_sees_an_edit(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = cache.source_hash(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert cache.source_hash(tmp_path) != before


def test_corrupt_entry_warns_and_retrains(tmp_path):
    path = entry_path(SMOKE, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format": 1, "key": "trunc')
    with pytest.warns(UserWarning, match="unreadable"):
        result = cached_run(SMOKE, cache_dir=tmp_path)
    assert result.cached is False
    assert json.loads(path.read_text())["key"] == path.stem


def test_bad_config_fails_before_any_file(tmp_path):
    with pytest.raises(ValueError, match="imbalance"):
        cached_run(dataclasses.replace(SMOKE, imbalance=0.5), cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def _write_same_entry(folder, barrier):
    barrier.wait()
    cached_run(SMOKE, cache_dir=folder, refresh=True)


@pytest.mark.slow
def test_two_processes_writing_one_entry_leave_one_valid_file(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_same_entry, args=(str(tmp_path), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [entry_path(SMOKE, tmp_path).name]  # no temporary file left behind
    loaded = cache.load(tmp_path / files[0], SMOKE)
    assert loaded is not None and len(loaded.history) == 1


def test_diverged_run_writes_nothing_to_the_cache(tmp_path):
    from metakit.experiments.loop import DivergenceError

    with pytest.raises(DivergenceError, match="diverged"):
        cached_run(Config(profile="smoke", epochs=2, lr=1e30, schedule="fixed", progress=False), cache_dir=tmp_path)
    assert list(tmp_path.rglob("*")) == []


def test_key_reads_method_options_through_their_types():
    base = Config(method="ldam_drw", profile="smoke", imbalance=10)
    assert cache.cache_key(base) == cache.cache_key(dataclasses.replace(base, options={"s": 30, "max_m": 0.5}))
    assert cache.cache_key(base) != cache.cache_key(dataclasses.replace(base, options={"s": 20}))
