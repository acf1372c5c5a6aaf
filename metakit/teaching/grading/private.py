"""Check cells that the student's kernel cannot patch by replacing the checks.

Before a submission runs, the grader rewrites each autograded check cell (never the committed
notebooks) so that, in the kernel, it

1. re-imports the check modules (`CHECK_MODULES`: ``guard`` and every ``*checks.py``) privately: a fresh module object per file,
   read from the read-only installed source, its SHA-256 compared with the digest the trusted
   grader computed (`module_specs`); imports between check modules resolve to the private copies,
   never through ``sys.modules`` or the student's names;
2. runs the cell's original code with ``checks``/``run_checks`` (every name bound to a check module
   or one of its functions) pointing at the private copies;
3. prints a one-time token (`TOKEN` and a random nonce) as its last act. The trusted grader
   (`seal`) counts the check as passed only if the token is in the cell's output: a check that was
   skipped, interrupted, timed out or silenced scores nothing, whatever the kernel reports.

So replacing ``checks.check_*`` with no-ops, patching ``sys.modules`` or ``importlib``, or rebinding
``checks`` gets 0 for those checks. Limits: the student's code shares the interpreter, so code
written against this grader (an IPython input transformer that rewrites check cells, patched
builtins ``open``/``compile``/``exec``/``hashlib``, torch or metakit's reference functions patched,
or an answer function that edits the check's frame while it is called) can still forge a pass; the
sandbox confines that to the student's own grade.

Example:
    >>> cell = rewrite_check("assert 1 + 1 == 2", {}, nonce="abc")
    >>> scope = {}
    >>> exec(cell, scope)
    metakit-check-passed abc
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
from pathlib import Path

import nbformat

TOKEN = "metakit-check-passed"
TEACHING = Path(__file__).resolve().parents[1]
# the check modules: metakit.teaching.guard and every metakit/teaching/*checks.py (checks, run_checks, table_checks …)
CHECK_MODULES = tuple(f"metakit.teaching.{p.stem}" for p in [TEACHING / "guard.py", *sorted(TEACHING.glob("*checks.py"))])


def module_specs(names: tuple[str, ...] = CHECK_MODULES) -> dict[str, tuple[str, str]]:
    """name → (source file, SHA-256 of its bytes) of each check module present, read by the trusted grader.

    Example:
        >>> path, digest = module_specs()["metakit.teaching.checks"]
        >>> path.endswith("checks.py"), len(digest)
        (True, 64)
    """
    specs = {}
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            path = Path(spec.origin).resolve()
            specs[name] = (str(path), hashlib.sha256(path.read_bytes()).hexdigest())
    return specs


def run_private(source: str, specs: dict, scope: dict, label: str) -> None:
    """Run a check cell's ``source`` in ``scope`` (the kernel's globals) against private copies of ``specs``.

    This function's own source is pasted into each rewritten check cell, so it imports only builtins
    modules and names nothing of metakit.
    """
    import builtins
    import hashlib
    import sys

    modules, real_import = {}, builtins.__import__

    def load(name):
        path, digest = specs[name]
        with open(path, "rb") as file:
            code = file.read()
        if hashlib.sha256(code).hexdigest() != digest:
            raise RuntimeError(f"grader: {path} is not the checks the grader verified; this check scores 0.")
        module = type(sys)(name)
        module.__file__, module.__package__ = path, name.rpartition(".")[0]
        module.__dict__["__builtins__"] = safe
        modules[name] = module
        exec(compile(code, path, "exec", dont_inherit=True), module.__dict__)
        return module

    def private_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            package = (globals or {}).get("__package__") or ""
            base = package.rsplit(".", level - 1)[0] if level > 1 else package
            name, level = f"{base}.{name}" if name else base, 0
        if name in specs and fromlist:
            return modules.get(name) or load(name)
        private = [f for f in fromlist or () if f"{name}.{f}" in specs]
        if not private:
            return real_import(name, globals, locals, fromlist, level)
        found, rest = type(sys)(name), [f for f in fromlist if f not in private]
        try:   # the package's other names, as they are; then the private check modules over them
            found.__dict__.update(vars(real_import(name, globals, locals, rest or ["__doc__"], level)))
        except ImportError:
            if rest:
                raise
        for f in private:
            setattr(found, f, modules.get(f"{name}.{f}") or load(f"{name}.{f}"))
        return found

    safe = dict(vars(builtins), __import__=private_import)
    for name in specs:
        modules.get(name) or load(name)
    private = {id(m): m for m in modules.values()}
    local = dict(scope, __builtins__=safe)
    for key, value in scope.items():
        name = getattr(value, "__name__", None) if isinstance(value, type(sys)) else None
        owner = modules.get(getattr(value, "__module__", None)) if callable(value) else None
        if name in modules:
            local[key] = modules[name]
        elif owner is not None and hasattr(owner, getattr(value, "__name__", "")):
            local[key] = getattr(owner, value.__name__)
    for name, module in modules.items():
        local[name.rpartition(".")[2]] = module
    private.update({id(v): v for k, v in local.items() if scope.get(k) is not v})
    try:
        exec(compile(source, f"<check {label}>", "exec", dont_inherit=True), local)
    finally:   # what the cell bound before it failed stays bound, as in a plain cell
        for key, value in local.items():
            if key != "__builtins__" and id(value) not in private and scope.get(key) is not value:
                scope[key] = value


def rewrite_check(source: str, specs: dict, nonce: str, label: str = "check") -> str:
    """The code that replaces a check cell's ``source`` at grading time: private checks, then the token.

    Example:
        >>> "run_private(" in rewrite_check("checks.check_counts([1], 1, 1)", module_specs(), "n")
        True
    """
    helper = inspect.getsource(run_private)
    return (f"# metakit grader: the checks below run on private, verified copies of the check modules\n"
            f"{helper}\nrun_private({source!r}, {specs!r}, globals(), {label!r})\ndel run_private\n"
            f"print({TOKEN!r}, {nonce!r})\n")


def seal(cell: nbformat.NotebookNode, nonce: str) -> bool:
    """Whether the executed check ``cell`` printed its token; removes the token, else adds an error output.

    Example:
        >>> cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("stream", text="✓ ok\\n" + TOKEN + " n\\n")])
        >>> seal(cell, "n"), cell.outputs[0].text
        (True, '✓ ok\\n')
    """
    line = f"{TOKEN} {nonce}\n"
    for output in cell.outputs:
        if output.output_type == "stream" and output.name == "stdout" and line in output.text:
            output.text = output.text.replace(line, "", 1)
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.text == "")]
            return True
    if not any(o.output_type == "error" for o in cell.outputs):
        cell.outputs.append(nbformat.v4.new_output(
            "error", ename="CheckDidNotFinish", evalue="this check did not run to its end (skipped, interrupted, "
            "timed out, or the kernel stopped), so it scores 0", traceback=["CheckDidNotFinish: the check did not finish"]))
    return False
