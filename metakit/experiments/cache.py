"""Results cache: re-running a cell with the same config and the same code loads the stored result.

Use `cached_run` instead of `metakit.experiments.run` where a cell may run again (notebooks,
sweeps). An entry is one JSON file ``<cache_dir>/<key>.json`` (the resolved config, the metrics,
the per-epoch history and the wall time), keyed by a SHA-256 of the resolved config, the device
type, ``metakit.__version__``, every source file of the package, the content of ``split_file``
and, for a method registered outside the package, its class's code: any code change invalidates
every entry. Only history and metrics are stored: a cached `Result` has ``net=None``,
``method=None`` and ``split=None``. Entries are written atomically and read as plain JSON, never
unpickled; why the key holds what it holds: docs/guide/design_notes.md.

Example:
    >>> import tempfile
    >>> c, folder = Config(profile="smoke", epochs=1, progress=False), tempfile.mkdtemp()
    >>> first = cached_run(c, cache_dir=folder)                      # trains and stores
    >>> again = cached_run(c, cache_dir=folder)                      # loads
    >>> again.net is None, again.metrics["test_acc"] == first.metrics["test_acc"]
    (True, True)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path

import pandas as pd

import metakit
from metakit.data.splits import load_split
from metakit.device import device as pick_device
from metakit.experiments import Config, Result, run
from metakit.io import atomic_write_text
from metakit.methods.registry import source_hash as method_source_hash

CACHE_FORMAT = 1
PACKAGE_DIR = Path(metakit.__file__).resolve().parent


def default_cache_dir() -> Path:
    """``$METAKIT_CACHE`` or ``./.metakit_cache``.

    Example:
        >>> str(default_cache_dir()) == os.environ.get("METAKIT_CACHE", ".metakit_cache")
        True
    """
    return Path(os.environ.get("METAKIT_CACHE", ".metakit_cache")).expanduser()


def source_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over every ``*.py`` file of the package (relative path and bytes), in path order.

    Example:
        >>> len(source_hash())
        64
    """
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(config: Config) -> str:
    """The cache key of ``config`` (resolved first, so ``None`` and its default agree).

    Example:
        >>> cache_key(Config(profile="smoke")) == cache_key(Config(profile="smoke", epochs=3))
        True
    """
    resolved = config.resolve()
    fields = resolved.canonical()  # imbalance=10 and 10.0, options {} and their defaults: one key
    fields["device"] = pick_device(resolved.device).type
    if resolved.split_file:   # refused by its content first (and a pipe of that name is never read)
        load_split(resolved.split_file, resolved.split_spec())
        fields["split_file_sha256"] = hashlib.sha256(Path(resolved.split_file).read_bytes()).hexdigest()
    key = {"config": fields, "version": metakit.__version__, "source": source_hash(), "format": CACHE_FORMAT}
    method_source = method_source_hash(resolved.method)
    if method_source is not None:             # a method registered outside metakit: its own code counts too
        key["method_source"] = method_source
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def entry_path(config: Config, cache_dir: str | Path | None = None) -> Path:
    """Where the entry of ``config`` lives.

    Example:
        >>> entry_path(Config(profile="smoke"), "/tmp/c").suffix
        '.json'
    """
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{cache_key(config)}.json"


def _clean(value):
    """JSON-safe copy: NaN/inf floats become None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def store(path: Path, result: Result, seconds: float) -> Path:
    """Write one entry atomically: history (split orient), metrics, config and wall time."""
    history = result.history.to_dict(orient="split")
    entry = {"format": CACHE_FORMAT, "key": path.stem, "seconds": seconds,
             "config": dataclasses.asdict(result.config), "metrics": result.metrics,
             "history": {"columns": history["columns"], "data": history["data"]}}
    return atomic_write_text(path, json.dumps(_clean(entry), default=str, allow_nan=False))


def load(path: Path, config: Config) -> Result | None:
    """The stored `Result` at ``path`` (``net``/``method``/``split`` None), or None if absent/unreadable."""
    try:
        entry = json.loads(path.read_text())
        if entry.get("format") != CACHE_FORMAT or entry.get("key") != path.stem:
            raise ValueError("format or key mismatch")
        history = pd.DataFrame(entry["history"]["data"], columns=entry["history"]["columns"]).astype(float)
        metrics = {k: float("nan") if v is None else v for k, v in entry["metrics"].items()}
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        warnings.warn(f"cache entry {path} is unreadable ({err}); training again and overwriting it.")
        return None
    history["epoch"] = history["epoch"].astype(int)
    result = Result(config.resolve(), history, metrics, None, None, None)
    result.seconds = float(entry["seconds"])  # wall time of the run that made the entry
    result.cached = True
    return result


def cached_run(config: Config, *, refresh: bool = False, cache_dir: str | Path | None = None) -> Result:
    """`metakit.experiments.run` with a results cache: same config + same code → stored result.

    Use it in notebooks and sweeps so that re-running a cell costs nothing; use ``refresh=True``
    to train again (e.g. to time a run) and overwrite the entry.

    Args:
        config: the experiment.
        refresh: ignore a stored entry, train, and store the new result.
        cache_dir: the cache folder; default ``$METAKIT_CACHE`` or ``./.metakit_cache``.

    Returns:
        A `Result`; loaded ones have ``net=None``, ``method=None``, ``split=None``. Every result
        carries ``.cached`` (bool) and ``.seconds`` (wall time of the training run).

    Example:
        >>> import tempfile
        >>> r = cached_run(Config(profile="smoke", epochs=1, progress=False), cache_dir=tempfile.mkdtemp())
        >>> r.cached, list(r.history["epoch"])
        (False, [1])
    """
    path = entry_path(config, cache_dir)  # resolves and validates before any work
    if not refresh:
        stored = load(path, config)
        if stored is not None:
            return stored
    start = time.perf_counter()
    result = run(config)
    seconds = time.perf_counter() - start
    store(path, result, seconds)
    result.seconds, result.cached = seconds, False
    return result

