"""Atomic file writes: a crash leaves the old file or the new one, never half of one.

Each write goes through ``.<name>.<pid>.<random>.tmp`` beside the file and a rename. A write killed
before the rename (SIGKILL, power loss) leaves that temporary behind; the next write to the same
path removes it (`sweep_stale`). `check_writable_file` and `check_writable_folder` refuse, before
any work, an output path a write would fail on (a folder where a file goes, a dangling symlink or a
loop on the way, a place that cannot be written such as /proc).
"""
from __future__ import annotations

import errno
import io
import os
import tempfile
import time
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
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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


STARTED = time.time()  # a temporary older than this process, of a writer that is gone, is stale


def sweep_stale(path: str | Path) -> list[Path]:
    """Remove the temporaries that killed writes to ``path`` left; returns them.

    A temporary is stale when the process named in it is not running here and it is older than this
    process (so a live writer on another machine sharing the folder keeps its file).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> stale = folder / ".a.csv.999999999.x1y2.tmp"; stale.write_text("half a row")
        10
        >>> os.utime(stale, (0, 0)); [p.name for p in sweep_stale(folder / "a.csv")]
        ['.a.csv.999999999.x1y2.tmp']
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".")[0]
        try:
            old = tmp.lstat().st_mtime < STARTED
        except OSError:
            continue
        if old and not (pid.isdigit() and _alive(int(pid))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with the glob characters ``*?[`` taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid < 2**31     # someone else's process (or not a pid at all)
    return True


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


def check_writable_file(path: str | Path, argument: str, example: str = "runs/learner.pt", fix: str = "") -> Path:
    """Refuse, before any work, a file path that `atomic_write_bytes` could not write; creates nothing.

    ``path`` must not be a folder, a dangling symlink or anything but a plain file; the folders on its
    way must be folders (not files, dangling symlinks or loops), and the nearest one that exists must
    take a new file (the missing ones below it are made at write time). ``fix`` replaces the advice
    ("give a file under a folder you can write to, e.g. <argument> <example>").

    Example:
        >>> import tempfile
        >>> blocker = tempfile.NamedTemporaryFile(suffix=".txt").name; Path(blocker).write_text("a file")
        6
        >>> check_writable_file(f"{blocker}/lr.pt", "--save-learner")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --save-learner '/.../lr.pt' cannot be written ('/....txt' is not a writable folder (it is a file)); give a file under a folder you can write to, e.g. --save-learner runs/learner.pt
        >>> Path(blocker).unlink()
    """
    path = Path(path)
    fix = fix or f"give a file under a folder you can write to, e.g. {argument} {example}"
    problem = not_a_file(path)
    if problem:
        raise ValueError(f"{argument} '{path}' {problem}; {fix}")
    problem = _folder_problem(path.parent)
    if problem:
        raise ValueError(f"{argument} '{path}' cannot be written ({problem}); {fix}")
    return path


def check_writable_folder(path: str | Path, argument: str, example: str = "runs", fix: str = "") -> Path:
    """Refuse, before any work, a folder that files cannot be written into; creates nothing. ``fix``
    replaces the advice ("give a folder you can write to, e.g. <argument> <example>").

    Example:
        >>> import tempfile
        >>> check_writable_folder(tempfile.mkdtemp(), "--checkpoint-dir").is_dir()
        True
        >>> check_writable_folder("/proc/metakit", "--out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --out '/proc/metakit' cannot be used ('/proc' does not take new files: ...); give a folder you can write to, e.g. --out runs
    """
    path = Path(path)
    problem = _folder_problem(path)
    if problem:
        raise ValueError(f"{argument} '{path}' cannot be used ({problem}); "
                         f"{fix or f'give a folder you can write to, e.g. {argument} {example}'}")
    return path


def not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read or written as a plain file ('' when it can, or when nothing is there).

    Example:
        >>> not_a_file(Path("/")), not_a_file(Path("/dev/null")), not_a_file(Path("/no/such/file"))
        ('is a folder', 'is not a plain file (a device, pipe or socket)', '')
    """
    if path.is_symlink() and not path.exists():
        return _link_problem(path)
    if path.is_dir():
        return "is a folder"
    if path.exists() and not path.is_file():
        return "is not a plain file (a device, pipe or socket)"
    return ""


def _folder_problem(folder: Path) -> str:
    """Why files cannot be written into ``folder`` ('' when they can): walk up to the nearest folder that
    exists, refusing a file, a dangling symlink or a loop on the way, then try a temporary file there."""
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if folder.is_symlink() and not folder.exists():
        return f"'{folder}' {_link_problem(folder)}"
    if not folder.is_dir():
        return f"'{folder}' is not a writable folder (it is a file)"
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".metakit-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return f"'{folder}' does not take new files: {err.strerror or err}"
    return ""


def _link_problem(link: Path) -> str:
    try:
        link.resolve(strict=True)
    except RuntimeError:       # Python < 3.13 reports a loop so
        return "is a symlink loop"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symlink loop"
    return f"is a dangling symlink (to '{os.readlink(link)}')"
