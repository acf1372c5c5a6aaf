"""A bubblewrap sandbox for the kernel that runs one student's notebook.

The kernel sees a read-only system (``/usr``, ``/etc``), this Python, its virtual environment,
the metakit package and the course files the notebooks read (``results/``, the data root), each
bound read-only at its own path, and nothing else of the host: not the checkout's other folders
(the instructor notebooks), not the course directory (sources, gradebook), not other students'
files. Its home and working folder are private in-memory folders (``tmpfs``), gone when it ends.
It runs as ``nobody`` in new user, mount, PID, network, IPC and UTS namespaces: no network but its
own loopback, no capabilities, no way to see or signal processes outside. Each kernel process is
limited in CPU time and address space (``prlimit``); wall-clock limits are the executor's
(`metakit.teaching.grading.execute`). The grader (nbclient) stays outside and talks to the kernel
over Unix sockets in one folder that is bound into the sandbox (``runtime``).

Example:
    >>> argv = bwrap_argv(Sandbox(), runtime="/tmp/k", command=["python", "-c", "print(1)"])
    >>> argv[0], "--unshare-all" in argv, argv[-3:]
    ('bwrap', True, ['python', '-c', 'print(1)'])
"""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

import metakit

SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt")   # read-only, where present
PASSED_ENV = ("METAKIT_PROFILE", "METAKIT_DATASET", "METAKIT_DATA", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LANG",
              "PYTHONPATH")


class SandboxError(RuntimeError):
    """bubblewrap is missing or cannot create its namespaces here; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """Limits and views of one grading kernel. Raise ``cell_timeout`` for notebooks graded at the laptop profile."""

    cell_timeout: int = 300         # seconds one cell may run; past it the cell is interrupted and gets an error
    notebook_timeout: int = 1800    # wall seconds for the whole notebook; past it the kernel is killed
    cpu_seconds: int = 3600         # CPU seconds of each kernel process (RLIMIT_CPU): stops spinning threads
    memory_gb: float = 8.0          # address space of each kernel process (RLIMIT_AS); torch needs ~4 to import
    disk_mb: int = 1024             # size of the private /tmp and home, and the largest file a kernel may write
    reads: tuple[str, ...] = ()     # more read-only paths the notebooks read (results/, the data root)
    user_namespace: bool = True     # run as nobody in a new user namespace; False only where none can be made


def code_paths() -> list[str]:
    """What the kernel must read to run: this Python, its environment and the metakit package (not the checkout).

    Example:
        >>> str(Path(metakit.__file__).parent) in code_paths()
        True
    """
    paths = {sys.base_prefix, sys.prefix, str(Path(metakit.__file__).resolve().parent)}
    paths.add(str(Path(sys.executable).resolve().parent.parent))
    return sorted(p for p in paths if Path(p).exists())


def bwrap_argv(sandbox: Sandbox, runtime: str, command: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``command`` in the sandbox, ``runtime`` bound writable at its path.

    Args:
        sandbox: the limits and extra read-only paths.
        runtime: the host folder of the kernel's connection file and sockets (private to this kernel).
        command: the kernel's command line, with absolute paths that the sandbox shows.
        env: the variables the kernel gets (everything else is cleared); default: `PASSED_ENV` from ours.
    """
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    if sandbox.user_namespace:
        argv += ["--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534"]
    for path in SYSTEM:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    size = str(sandbox.disk_mb * 2**20)
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/home",
             "--dir", "/home/student/work", "--chdir", "/home/student/work"]
    for path in [*code_paths(), *sandbox.reads]:
        if Path(path).exists():
            argv += ["--ro-bind", str(Path(path).resolve()), str(Path(path).resolve())]
    argv += ["--bind", runtime, runtime, "--remount-ro", "/"]   # the root's own folders are read-only too
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ} if env is None else env
    env = {**env, "HOME": "/home/student", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "MPLBACKEND": "Agg", "METAKIT_DEVICE": "cpu", "PYTHONDONTWRITEBYTECODE": "1"}
    for name, value in sorted(env.items()):
        argv += ["--setenv", name, value]
    limits = [f"--cpu={sandbox.cpu_seconds}", f"--as={int(sandbox.memory_gb * 2**30)}", f"--fsize={size}", "--core=0"]
    return argv + ["--", shutil.which("prlimit") or "/usr/bin/prlimit", *limits, "--", *command]


@functools.lru_cache(maxsize=2)
def probe(user_namespace: bool = True) -> None:
    """Raise `SandboxError` unless bubblewrap runs a command in the sandbox here (cached).

    Example:
        >>> probe() if shutil.which("bwrap") else None
    """
    if shutil.which("bwrap") is None:
        raise SandboxError("bwrap (bubblewrap) is not installed: `apt-get install bubblewrap` (Debian; "
                           "`make system-deps` does it as root), then grade again.")
    runtime = "/tmp"
    argv = bwrap_argv(Sandbox(user_namespace=user_namespace), runtime, [sys.executable, "-c", "import metakit"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        hint = ("user namespaces look unavailable (a container without them, or "
                "kernel.unprivileged_userns_clone=0): enable them, or run as root with "
                "Sandbox(user_namespace=False)") if user_namespace else "see bwrap's message"
        raise SandboxError(f"bwrap could not run a command in the sandbox ({done.stderr.strip()[-300:]}); {hint}.")


class SandboxedKernelManager(AsyncKernelManager):
    """A Jupyter kernel manager whose kernel starts inside `bwrap_argv`, reached over Unix sockets in ``runtime``.

    Use it through `metakit.teaching.grading.execute`; set ``sandbox`` and ``runtime`` before starting.
    """

    def __init__(self, sandbox: Sandbox, runtime: str, **kwargs):
        super().__init__(transport="ipc", ip=os.path.join(runtime, "kernel"),
                         connection_file=os.path.join(runtime, "kernel.json"), **kwargs)
        self.sandbox, self.runtime = sandbox, runtime

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        # the kernel's own chatter (banners, warnings) goes to a log beside its sockets, not to the grader's console
        with open(os.path.join(self.runtime, "kernel.log"), "ab") as log:
            await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": log, "stderr": log})

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        return bwrap_argv(self.sandbox, self.runtime, command)

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"   # a signal would reach bwrap, not the kernel inside it
            spec.env = {}
        return spec
