"""Atomic file writes: a crash leaves the old file or the new one, never half of one."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _file_mode(path: Path) -> int:
    """The permission bits for ``path``: its own if it exists, else what ``open()`` creates under the umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "a.bin", b"hi")
        >>> p.read_bytes()
        b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; keep the mode open() would give (or the old file's)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write_bytes` for UTF-8 text.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "hi").read_text()
        'hi'
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` that never leaves a half-written file; load it with ``weights_only=True``.

    Example:
        >>> import tempfile, pathlib, torch
        >>> p = atomic_torch_save({"w": torch.ones(2)}, pathlib.Path(tempfile.mkdtemp()) / "w.pt")
        >>> torch.load(p, weights_only=True)["w"].tolist()
        [1.0, 1.0]
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def check_writable_file(path: str | Path, argument: str) -> Path:
    """Refuse, before any work, a file path that `atomic_write_bytes` could not write; creates nothing.

    The nearest folder that exists must be a writable folder (the missing ones below it are made
    at write time) and ``path`` itself must not be a folder.

    Example:
        >>> import tempfile
        >>> blocker = tempfile.NamedTemporaryFile(suffix=".txt").name; Path(blocker).write_text("a file")
        6
        >>> check_writable_file(f"{blocker}/lr.pt", "--save-learner")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --save-learner '/.../lr.pt' cannot be written ('/....txt' is not a writable folder); give a file under a folder you can write to, e.g. --save-learner runs/learner.pt
        >>> Path(blocker).unlink()
    """
    path = Path(path)
    fix = f"give a file under a folder you can write to, e.g. {argument} runs/learner.pt"
    if path.is_dir():
        raise ValueError(f"{argument} '{path}' is a folder; {fix}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{argument} '{path}' cannot be written ('{folder}' is not a writable folder); {fix}")
    return path
