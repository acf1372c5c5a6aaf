"""One safe, versioned file format for every meta-learned network (weight net, LR net, modulation).

A learner file is a plain dict written atomically with ``torch.save`` and read back only with
``torch.load(weights_only=True)``, so opening one never runs code::

    {"format": "metakit.learner", "version": 1,
     "kind": "lr_net",                      # which learner (see `KINDS`)
     "init": {"num_classes": 10, ...},      # the learner's constructor arguments
     "config": {...} | None,                # the run's resolved Config as a plain dict, when known
     "metadata": {...},                     # free plain values (dataset, model, epochs, ...)
     "state_dict": {...}}                   # the weights and buffers

Each learner module declares its kind with `register_kind` (the class, how to read its
constructor arguments off a live instance, a few words on what it is). Any other file (text, a
pickle, a checkpoint, another kind, a newer version) is refused with one `ValueError` naming the
file and what was expected; a missing file gives one `FileNotFoundError`. So is a file whose content
cannot be meant (`check_learner`): a version that is not an int in [1, VERSION], constructor sizes
beyond `SIZE_LIMITS` or tensors other than the ones its constructor builds (checked on the meta device,
so a hostile file allocates nothing), a non-finite weight, or an LR ceiling γ that is not > 0.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from metakit.io import atomic_torch_save

FORMAT = "metakit.learner"
VERSION = 1
# Upper bounds of the constructor arguments that size a learner (an int, or each int of a list): a file
# asking for more is refused before anything is built. MAX_ITEMS bounds every list argument's length.
SIZE_LIMITS = {"hidden": 4096, "num_classes": 1_000_000, "count": 1000, "channels": 65536}
MAX_ITEMS = 1000
POSITIVE = {"lr_net": ("gamma", "loss_scale"), "lr_snapshots": ("gamma", "loss_scale")}  # buffers that must be > 0


@dataclass(frozen=True)
class Kind:
    """One kind of learner the store can write and rebuild.

    Attributes:
        name: the kind's name in the file, e.g. "lr_net".
        cls: the learner class; ``cls(**init)`` rebuilds an untrained one.
        init_args: a live learner → its constructor arguments (plain values).
        what: a few words for error messages, e.g. "an MLR-SNet LR net".
    """

    name: str
    cls: type
    init_args: Callable[[nn.Module], dict]
    what: str


KINDS: dict[str, Kind] = {}


def register_kind(name: str, cls: type, init_args: Callable[[nn.Module], dict], what: str) -> Kind:
    """Declare a learner kind (each learner module does it once, at import).

    Example:
        >>> sorted(KINDS)   # the kinds of metakit.learners
        ['lr_net', 'lr_snapshots', 'modulation', 'weight_net']
    """
    KINDS[name] = Kind(name, cls, init_args, what)
    return KINDS[name]


def kind_of(learner: nn.Module) -> Kind:
    """The registered kind of ``learner`` (its exact class).

    Example:
        >>> from metakit.learners import WeightNet
        >>> kind_of(WeightNet(hidden=4)).name
        'weight_net'
    """
    for kind in KINDS.values():
        if type(learner) is kind.cls:
            return kind
    raise TypeError(f"learner={type(learner).__name__} is not a metakit learner the store knows; "
                    f"save one of {[k.cls.__name__ for k in KINDS.values()]}.")


def plain(value: Any) -> Any:
    """``value`` as plain containers and scalars (dataclasses become dicts, the rest ``str``).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class C:
        ...     lr: float = 0.1
        ...     milestones: tuple = (2, 3)
        >>> plain(C())
        {'lr': 0.1, 'milestones': (2, 3)}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def save_learner(learner: nn.Module, path: str | Path, *, config: Any = None, **metadata: Any) -> Path:
    """Write ``learner`` (kind, constructor arguments, config, metadata, weights) atomically.

    Args:
        learner: a `WeightNet`, `MLRSNet` or `Modulation` (e.g. ``result.learner``).
        path: the ``.pt`` file to write.
        config: the run's resolved `Config` (or a dict) that made it, e.g. ``result.config``;
            kept as a plain dict so a reader knows the recipe. None when unknown.
        **metadata: plain values to keep beside the weights (dataset, model, epochs, ...).

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> from metakit.learners import WeightNet
        >>> p = save_learner(WeightNet(hidden=4), Path(tempfile.mkdtemp()) / "w.pt", dataset="digits")
        >>> net, header = load_learner(p, "weight_net")
        >>> net.mlp[0].out_features, header["metadata"]
        (4, {'dataset': 'digits'})
    """
    kind = kind_of(learner)
    state = {k: v.detach().cpu().clone() for k, v in learner.state_dict().items()}
    blob = {"format": FORMAT, "version": VERSION, "kind": kind.name, "init": plain(kind.init_args(learner)),
            "config": None if config is None else plain(config), "metadata": plain(metadata), "state_dict": state}
    return atomic_torch_save(blob, path)


def read_header(path: str | Path, kind: str | tuple[str, ...] | None = None, *, argument: str = "path") -> dict:
    """The file's header (format, version, kind, init, config, metadata), checked, without weights.

    Args:
        path: a file written by `save_learner`.
        kind: the kind (or kinds) expected ("weight_net", "lr_net", "modulation", ...); None accepts any.
        argument: the caller's argument name, used in error messages (e.g. "schedule_file").

    Returns:
        The header dict.

    Example:
        >>> import tempfile
        >>> from metakit.learners import WeightNet
        >>> p = save_learner(WeightNet(hidden=4), Path(tempfile.mkdtemp()) / "w.pt")
        >>> read_header(p)["init"]
        {'hidden': 4, 'normalize': 'sum'}
    """
    return {k: v for k, v in _read(path, kind, argument).items() if k != "state_dict"}


def load_learner(path: str | Path, kind: str | tuple[str, ...] | None = None, *,
                 argument: str = "path") -> tuple[nn.Module, dict]:
    """Rebuild the learner saved at ``path``; returns (learner, header).

    Args:
        path: a file written by `save_learner`.
        kind: the kind expected, or a tuple of kinds accepted; a file of another kind is refused.
            None accepts any.
        argument: the caller's argument name, used in error messages.

    Returns:
        The learner on the CPU with the saved weights, and the header (see `read_header`).

    Example:
        >>> import tempfile
        >>> from metakit.learners import MLRSNet
        >>> p = save_learner(MLRSNet(10, hidden=4, gamma=0.2), Path(tempfile.mkdtemp()) / "s.pt")
        >>> try:
        ...     load_learner(p, "weight_net")
        ... except ValueError as err:
        ...     print(str(err).split(" holds ")[1])
        a lr_net (an MLR-SNet LR net), expected a weight_net (a Meta-Weight-Net weight net).
    """
    blob = _read(path, kind, argument)
    spec, where = KINDS[blob["kind"]], f"{argument}={str(path)!r}"
    check_learner(blob, where)
    try:
        learner = spec.cls(**blob["init"])
        learner.load_state_dict(blob["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{where} does not rebuild {spec.what} ({_first_line(err)}); "
                         f"re-save it with metakit.learners.store.save_learner.") from None
    return learner, {k: v for k, v in blob.items() if k != "state_dict"}


def _read(path: str | Path, kind: str | tuple[str, ...] | None, argument: str) -> dict:
    """Load and check a learner file; every failure is one FileNotFoundError or ValueError."""
    path = Path(path)
    where = f"{argument}={str(path)!r}"
    kinds = (kind,) if isinstance(kind, str) else kind
    expected = "a metakit learner" if kinds is None else " or ".join(f"a {k} ({KINDS[k].what})" for k in kinds)
    if not path.is_file():
        raise FileNotFoundError(f"{where} does not exist; expected {expected} written by "
                                f"metakit.learners.store.save_learner(learner, path).")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # text, a pickle with code, a truncated zip: never unpickled unsafely
        raise ValueError(f"{where} is not a metakit learner file: torch.load(weights_only=True) refused it "
                         f"({type(err).__name__}: {_first_line(err)}); expected {expected}.") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{where} is not a metakit learner file ({_describe(blob)}); expected {expected} "
                         f"written by metakit.learners.store.save_learner.")
    version = blob.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise ValueError(f"{where} has format version {version!r}, newer than this metakit reads ({VERSION}); "
                         f"upgrade metakit to load it.")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{where} is a damaged metakit learner file (version={version!r}, not an integer in "
                         f"[1, {VERSION}]); save the learner again with metakit.learners.store.save_learner.")
    found = blob.get("kind")
    if found not in KINDS or not isinstance(blob.get("init"), dict) or not isinstance(blob.get("state_dict"), dict):
        raise ValueError(f"{where} is a damaged metakit learner file (kind={found!r}); expected {expected}.")
    if kinds is not None and found not in kinds:
        raise ValueError(f"{where} holds a {found} ({KINDS[found].what}), expected {expected}.")
    return blob


def check_learner(blob: dict, where: str) -> None:
    """Refuse a learner file whose content its constructor could not have made: sizes beyond `SIZE_LIMITS`,
    tensors of other names or shapes than ``cls(**init)`` builds (built on the meta device: nothing is
    allocated), non-finite values, or a `POSITIVE` buffer (γ, the loss scale) that is not > 0.

    Example:
        >>> from metakit.learners import WeightNet
        >>> blob = {"kind": "weight_net", "init": {"hidden": 4, "normalize": "sum"},
        ...         "state_dict": WeightNet(4).state_dict()}
        >>> check_learner(blob, "path='w.pt'")
        >>> check_learner({**blob, "init": {"hidden": 10**9}}, "path='w.pt'")
        Traceback (most recent call last):
        ...
        ValueError: path='w.pt' asks for hidden=1000000000, beyond 4096: it is damaged or hostile; save the learner again with metakit.learners.store.save_learner.
    """
    resave = "save the learner again with metakit.learners.store.save_learner"
    for key, value in blob["init"].items():
        items = value if isinstance(value, (list, tuple)) else [value]
        if len(items) > MAX_ITEMS:
            raise ValueError(f"{where} asks for {key} with {len(items)} items, beyond {MAX_ITEMS}: it is damaged or "
                             f"hostile; {resave}.")
        limit = SIZE_LIMITS.get(key)
        big = [v for v in items if limit is not None and isinstance(v, int) and not isinstance(v, bool) and v > limit]
        if big:
            raise ValueError(f"{where} asks for {key}={big[0]!r}, beyond {limit}: it is damaged or hostile; {resave}.")
    state = blob["state_dict"]
    try:
        with torch.device("meta"):
            probe = KINDS[blob["kind"]].cls(**blob["init"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{where} does not rebuild {KINDS[blob['kind']].what} ({_first_line(err)}); "
                         f"{resave}.") from None
    wanted = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    found = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in state.items()}
    if wanted != found:
        diff = sorted(k for k in set(wanted) | set(found) if wanted.get(k) != found.get(k))
        raise ValueError(f"{where} holds tensors its constructor does not build ({diff[:3]}: file "
                         f"{[found.get(k) for k in diff[:3]]}, built {[wanted.get(k) for k in diff[:3]]}); {resave}.")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{where} holds NaN or inf in {name}; {resave}.")
        if name.rsplit(".", 1)[-1] in POSITIVE.get(blob["kind"], ()) and not (tensor > 0).all():
            raise ValueError(f"{where} holds {name}={tensor.flatten()[:3].tolist()}, which must be > 0 (an LR "
                             f"ceiling, a loss scale); {resave}.")


def _describe(blob: Any) -> str:
    if not isinstance(blob, dict):
        return f"it holds a {type(blob).__name__}"
    meta = blob.get("metadata") if isinstance(blob.get("metadata"), dict) else {}
    legacy = meta.get("format") or (blob.get("meta") and "metakit modulator/1")
    if legacy:
        return f"it is in the retired format {legacy!r}; re-create it and save it with save_learner"
    keys = sorted(str(k) for k in blob)[:6]
    return f"a dict with keys {keys}, e.g. a model checkpoint"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 160 else line[:157] + "..."
