"""Run one submission in the sandbox, from the trusted side, and hand its outputs to nbgrader.

`execute_submission` (one worker thread per submission, started by `metakit.teaching.course`) does what
nbgrader's autograde does before it executes: the sanitising preprocessors (outputs cleared,
locked and check cells overwritten from the gradebook's sources, hidden tests included), then
rewrites the check cells (`metakit.teaching.grading.private`), runs the notebook with nbclient in
this process and its kernel in the sandbox (`metakit.teaching.grading.sandbox`), puts the original
check sources back, keeps a check's points only if it printed its token (`seal`), and writes the
executed notebook. A cell past ``cell_timeout`` is interrupted and gets an error; past
``notebook_timeout`` the kernel is killed and every check not reached scores 0.

nbgrader's own ``autograde`` then runs with `Replay` in place of its ``Execute``: it copies those
outputs into the notebook it sanitised (refusing one whose cells differ) and scores them as usual.
"""
from __future__ import annotations

import dataclasses
import secrets
import tempfile
import threading
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

from metakit.teaching.grading.private import module_specs, rewrite_check, seal
from metakit.teaching.grading.sandbox import Sandbox, SandboxedKernelManager


@dataclasses.dataclass
class Job:
    """One submission to execute."""

    submitted: str          # the student's notebook in nbgrader's submitted/ folder
    executed: str           # where the executed notebook goes (outside the sandbox)
    db_url: str             # the gradebook, read for the source cells
    assignment: str         # nbgrader assignment id (the notebook's stem)
    student: str            # student id
    sandbox: dict           # `Sandbox` fields


def is_check(cell) -> bool:
    """An autograded test cell: graded, code, not an answer."""
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def sanitised(job: Job) -> nbformat.NotebookNode:
    """The submission as nbgrader's autograde prepares it, before it executes."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec

    notebook = nbformat.read(job.submitted, as_version=4)
    resources = {"nbgrader": {"db_url": job.db_url, "assignment": job.assignment, "student": job.student,
                              "notebook": Path(job.submitted).stem}}
    for step in (ClearOutput(), DeduplicateIds(), OverwriteKernelspec(), OverwriteCells(), CheckCellMetadata()):
        notebook, resources = step.preprocess(notebook, resources)
    return notebook


def run_sandboxed(notebook: nbformat.NotebookNode, sandbox: Sandbox) -> str:
    """Execute ``notebook`` in place, its kernel in the sandbox; returns "" or why it stopped early."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    with tempfile.TemporaryDirectory(prefix="metakit-kernel-") as runtime:
        km = SandboxedKernelManager(sandbox, runtime, kernel_name="python3")
        client = NotebookClient(notebook, km=km, timeout=sandbox.cell_timeout, allow_errors=True,
                                interrupt_on_timeout=True, extra_arguments=["--HistoryManager.hist_file=:memory:"],
                                error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran past "
                                                  f"{sandbox.cell_timeout} s", "traceback": ["CellTimeoutError"]})
        stopped = []

        def kill():
            stopped.append(f"stopped after {sandbox.notebook_timeout} s")
            if km.provisioner is not None and km.provisioner.process is not None:
                km.provisioner.process.kill()

        timer = threading.Timer(sandbox.notebook_timeout, kill)
        timer.start()
        try:
            client.execute()
        except DeadKernelError:
            stopped.append("the kernel died (memory or CPU limit, or it exited)")
        finally:
            timer.cancel()
        return stopped[0] if stopped else ""


def execute_submission(job: Job) -> dict:
    """Sanitise, rewrite the checks, run sandboxed, seal; write ``job.executed``.

    Returns:
        ``{"stopped": why the run ended early or "", "checks": {grade_id: passed}}``.
    """
    notebook = sanitised(job)
    specs, nonces, originals = module_specs(), {}, {}
    for index, cell in enumerate(notebook.cells):
        if is_check(cell):
            nonces[index], originals[index] = secrets.token_hex(16), cell.source
            cell.source = rewrite_check(cell.source, specs, nonces[index], cell.metadata.nbgrader["grade_id"])
    stopped = run_sandboxed(notebook, Sandbox(**job.sandbox))
    checks = {}
    for index, nonce in nonces.items():
        cell = notebook.cells[index]
        cell.source = originals[index]
        checks[cell.metadata.nbgrader["grade_id"]] = seal(cell, nonce)
    Path(job.executed).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, job.executed)
    return {"stopped": stopped, "checks": checks}


class Replay(Preprocessor):
    """nbgrader's ``Execute`` replaced: outputs from the notebook `execute_submission` wrote for this submission."""

    executed_root = Unicode(help="folder of <student>/<assignment>/<notebook>.ipynb executed notebooks").tag(config=True)
    enabled = Bool(True)   # nbconvert runs a preprocessor only when enabled

    def preprocess(self, nb, resources):
        ids = resources["nbgrader"]
        path = Path(self.executed_root) / ids["student"] / ids["assignment"] / f"{ids['notebook']}.ipynb"
        executed = nbformat.read(path, as_version=4)
        if [(c.cell_type, c.source) for c in executed.cells] != [(c.cell_type, c.source) for c in nb.cells]:
            raise ValueError(f"{path} does not match the notebook nbgrader prepared; grade this submission again.")
        for cell, done in zip(nb.cells, executed.cells):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = done.outputs, done.execution_count
        return nb, resources
