"""metakit's meta-step next to higher, TorchOpt, Betty and copy-the-model, in one run (issue 19).

Every library runs the same three works (`bench.peers.common`: φ in the step size — MLR-SNet's
LSTM; in per-sample weights — Meta-Weight-Net; in the forward pass — MFM's γ/β after every stage)
on the same model (ResNet-32), batches (100 + 100 meta) and hypergradient (one plain-SGD look-ahead,
wd 5e-4). In order:

1. check: each entry's hypergradient from the same start against the copy-the-model one
   (relative L2 error, float64 by default: float32 rounding alone reached 7e-5 on the forward
   work, too close to the 1e-4 tolerance to tell a wrong term from rounding); an exact entry off by more than ``--tol`` is not timed; an approximation
   by design (Betty's darts, metakit's ``first_order``) is timed with its error reported;
2. time: round-robin, ``--rounds`` rounds after ``--warmup``, median of the per-round ratio to a
   plain SGD step; metakit's real-only calls give the amortised cost at meta_every = k, checked by
   a measured ``meta_every=10`` run;
3. peak memory of one step, each entry in a fresh subprocess whose allocator returns freed tensors
   (``--mmap-threshold``; see `child_env` and `bench.peers.measure`);
4. the data path: metakit's device-resident `Batches` against DataLoaders (`bench/loader.py`).

Writes ``results/bench_cpu.csv`` (one row per entry) and ``results/bench_cpu.md`` atomically.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/compare.py                       # the recorded table
    PYTHONPATH=. python bench/compare.py --model digits_cnn --input-shape 1,8,8 --batch 8 \\
        --rounds 2 --warmup 1 --memory inline --loader-n 0 --out /tmp/bench     # a seconds-long smoke run
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from bench.peers.common import WORKS, Setup, Unavailable, flat, make_data
from bench.peers.measure import paired_ratio, peak_mib, round_robin
from bench.peers.report import commit, write_results

ROOT = Path(__file__).resolve().parents[1]
EPOCH_IMAGES = 50_000                      # CIFAR-10's training set: MLR-SNet meta-updates about once an epoch


@dataclass
class Spec:
    """One row: what it runs and how to build it."""

    work: str
    library: str
    variant: str
    build: Callable[[str, Setup, dict], object]
    result: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.work}/{self.library}/{self.variant}"


def default_specs() -> list[Spec]:
    """Every entry of the recorded table; peers import lazily (a missing one is a row's reason)."""
    from bench.peers.betty_entry import Betty
    from bench.peers.libraries import Copy, Higher, Metakit, Plain, TorchOpt

    specs = [Spec("plain", "torch", "default", lambda w, s, d: Plain("weight", s, d))]
    for work in WORKS:
        specs += [Spec(work, "metakit", "default", Metakit)]
        if work == "weight":
            specs += [Spec(work, "metakit", "rule_general", lambda w, s, d: Metakit(w, s, d, rule="general"))]
        if work == "forward":
            specs += [Spec(work, "metakit", "first_order", lambda w, s, d: Metakit(w, s, d, first_order=True))]
        specs += [Spec(work, "higher", "default", Higher), Spec(work, "torchopt", "default", TorchOpt),
                  Spec(work, "betty", "default", Betty), Spec(work, "copy", "default", Copy),
                  Spec(work, "metakit", "real_only", lambda w, s, d: Metakit(w, s, d, meta=False))]
    return specs


def check(specs: list[Spec], setup: Setup, data: dict, tol: float, log) -> None:
    """Hypergradient of every entry from the same start vs the copy-the-model one (fresh entries)."""
    from bench.peers.betty_entry import alpha_scaled_error

    for work in WORKS:
        ref_spec = next((s for s in specs if s.work == work and s.library == "copy"), None)
        if ref_spec is None:
            continue
        ref_entry = ref_spec.build(work, setup, data)
        like = list(ref_entry.learner.parameters())
        ref = ref_entry.hypergradient()
        for spec in (s for s in specs if s.work == work and s.variant != "real_only"):
            try:
                entry = spec.build(work, setup, data)
                grads = entry.hypergradient()
            except Unavailable as err:
                spec.result.update(status=str(err))
                log(f"check {spec.key:34s} {spec.result['status']}")
                continue
            except Exception as err:                                  # a peer that cannot run: say why
                spec.result.update(status=f"cannot run: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
                log(f"check {spec.key:34s} {spec.result['status']}")
                continue
            err = float((flat(grads, like) - flat(ref, like)).norm() / flat(ref, like).norm())
            exact = getattr(entry, "exact", True) and spec.variant != "first_order"
            spec.result.update(hyper_rel_err=err, exact=exact)
            if not exact:
                scaled, cosine = alpha_scaled_error(grads, ref, like, setup.inner_lr)
                spec.result.update(status="approximate by design", cosine=cosine,
                                   note=(getattr(entry, "note", "") or "first order: drops the mixed term"))
                if spec.library == "betty":
                    spec.result["note"] += f"; error of α·g {scaled:.3g}"
            elif err > tol:
                spec.result.update(status=f"hypergradient mismatch (rel. error {err:.2e} > {tol:g}); not timed")
            else:
                spec.result.update(status="ok")
            log(f"check {spec.key:34s} rel. error {err:.2e}  {spec.result['status']}")
    for spec in specs:
        spec.result.setdefault("status", "ok")


def runnable(spec: Spec) -> bool:
    status = spec.result.get("status", "ok")
    return status in ("ok", "approximate by design")


def time_entries(specs: list[Spec], setup: Setup, data: dict, warmup: int, rounds: int, log) -> None:
    """Round-robin timing of every runnable entry; ratio to the plain step of the same round."""
    entries = {s.key: s.build(s.work, setup, data) for s in specs if runnable(s)}
    times = round_robin({k: e.step for k, e in entries.items()}, warmup, rounds, progress=log)
    plain = times[specs[0].key]
    for spec in specs:
        if spec.key in times:
            spec.result.update(ms=1e3 * sorted(times[spec.key])[len(times[spec.key]) // 2],
                               ratio=paired_ratio(times[spec.key], plain), rounds=rounds)


def measured_meta_every(specs: list[Spec], setup: Setup, data: dict, k: int, rounds: int, log) -> list[Spec]:
    """Rows ``meta_every_k_measured``: k consecutive MetaStep(meta_every=k) calls over k plain steps."""
    from bench.peers.libraries import Metakit, Plain

    rows = []
    for work in WORKS:
        if not any(s.work == work and s.library == "metakit" and runnable(s) for s in specs):
            continue
        meta, plain = Metakit(work, setup, data, meta_every=k), Plain("weight", setup, data)
        run_k = (lambda f: lambda: [f() for _ in range(k)])
        times = round_robin({"plain": run_k(plain.step), "meta": run_k(meta.step)}, 1, rounds)
        spec = Spec(work, "metakit", f"meta_every_{k}_measured", None)
        spec.result.update(status="ok", exact=True, ratio=paired_ratio(times["meta"], times["plain"]),
                           ms=1e3 * statistics.median(times["meta"]) / k, rounds=rounds,
                           note=f"{rounds} rounds of {k} calls (1 meta + {k - 1} real) over {k} plain steps")
        log(f"measured meta_every={k} {work}: {spec.result['ratio']:.3f}")
        rows.append(spec)
    return rows


def amortised(specs: list[Spec], epoch_steps: int) -> list[Spec]:
    """(one meta-iteration + (k−1) real-only calls) / k plain steps, from the measured ratios."""
    rows = []
    for work in WORKS:
        meta = next((s for s in specs if s.key == f"{work}/metakit/default" and "ratio" in s.result), None)
        real = next((s for s in specs if s.key == f"{work}/metakit/real_only" and "ratio" in s.result), None)
        if meta is None or real is None:
            continue
        for k, name in ((1, "meta_every_1"), (10, "meta_every_10"), (100, "meta_every_100"),
                        (epoch_steps, "meta_every_epoch")):
            spec = Spec(work, "metakit", name, None)
            spec.result.update(status="ok", exact=True,
                               ratio=(meta.result["ratio"] + (k - 1) * real.result["ratio"]) / k,
                               peak_mem_ratio=meta.result.get("peak_mem_ratio"),
                               note=f"computed: k={k}" + (f" (one epoch: {EPOCH_IMAGES} images / batch)"
                                                          if name == "meta_every_epoch" else ""))
            rows.append(spec)
    return rows


def child_env(mmap_threshold: int) -> dict[str, str]:
    """A memory child's environment: ``MALLOC_MMAP_THRESHOLD_`` fixed at ``mmap_threshold`` bytes
    (0: glibc's own dynamic threshold). Fixed, every block that large is its own mapping, returned
    to the system when freed, so the RSS high-water mark counts live tensors (what
    ``max_memory_allocated`` counts on a GPU); glibc's dynamic threshold rises after the first
    large free and then keeps freed activations in its heap, which the high-water mark counts too.

    Example:
        >>> child_env(65536)["MALLOC_MMAP_THRESHOLD_"], "MALLOC_MMAP_THRESHOLD_" in child_env(0)
        ('65536', False)
    """
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    env["PYTHONPATH"] = str(ROOT)
    if mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    return env


def memory(specs: list[Spec], setup: Setup, data: dict, mode: str, argv: list[str], log,
           mmap_threshold: int = 65536) -> None:
    """Peak extra memory of one step of every timed entry and its ratio to the plain step's
    (``subprocess`` children run under `child_env`; ``inline`` under this process's allocator)."""
    if mode == "none":
        return
    for spec in (s for s in specs if runnable(s)):
        if mode == "inline":
            entry = spec.build(spec.work, setup, data)
            entry.step()
            spec.result["peak_mib"] = peak_mib(entry.step)
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--memory-of", spec.key]
            out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(mmap_threshold))
            if out.returncode != 0:
                spec.result["note"] = (spec.result.get("note", "") + f"; memory child failed: {out.stderr[-200:]}")
                continue
            spec.result["peak_mib"] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]
        log(f"memory {spec.key:34s} {spec.result['peak_mib']:8.1f} MiB")
    base = specs[0].result.get("peak_mib")
    for spec in specs:
        if base and "peak_mib" in spec.result:
            spec.result["peak_mem_ratio"] = spec.result["peak_mib"] / base


def memory_child(key: str, setup: Setup) -> None:
    """Fresh interpreter: build one entry, two warm-up steps, then the peak of one step (JSON line)."""
    spec = next(s for s in default_specs() if s.key == key)
    data = make_data(setup)
    entry = spec.build(spec.work, setup, data)
    entry.step()
    entry.step()
    print(json.dumps({"key": key, "peak_mib": peak_mib(entry.step)}))


def data_path(n: int, batch: int, rounds: int, log) -> list[Spec]:
    """Rows ``work=data``: epoch time of each DataLoader over metakit's device-resident batches'."""
    from bench.loader import measure

    rates = measure(n=n, batch_size=batch, workers=[0, 2], rounds=rounds)
    ours = rates.pop("metakit")
    rows = [Spec("data", "metakit", "default", None, {"status": "ok", "ratio": 1.0, "ms": 1e3 * batch / ours,
                                                       "note": f"{ours:,.0f} images/s, Batches crop_flip"})]
    for name, rate in rates.items():
        rows.append(Spec("data", "torch", name, None, {"status": "ok", "ratio": ours / rate, "ms": 1e3 * batch / rate,
                                                      "note": f"{rate:,.0f} images/s"}))
        log(f"data {name}: metakit is {ours / rate:.1f}x faster")
    return rows


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet32")
    p.add_argument("--input-shape", default="3,32,32", help="one input without the batch axis, e.g. 1,8,8")
    p.add_argument("--batch", type=int, default=100, help="training and meta batch")
    p.add_argument("--rounds", type=int, default=20, help="timed rounds (the median is reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--tol", type=float, default=1e-4, help="largest relative hypergradient error of an exact entry")
    p.add_argument("--check-dtype", default="float64", choices=("float64", "float32"),
                   help="dtype of the equality check (float64: rounding far below --tol)")
    p.add_argument("--meta-every-rounds", type=int, default=3, help="rounds of the measured meta_every=10 run (0: skip)")
    p.add_argument("--memory", choices=("subprocess", "inline", "none"), default="subprocess")
    p.add_argument("--mmap-threshold", type=int, default=65536,
                   help="MALLOC_MMAP_THRESHOLD_ (bytes) of the memory children, so that their RSS counts live "
                        "tensors; 0: glibc's dynamic default, which also counts its cached heap")
    p.add_argument("--loader-n", type=int, default=10_000, help="images of the data-path comparison (0: skip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "results" / "bench_cpu"), help="path prefix of the .csv and .md")
    p.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mmap_threshold < 0:
        p.error(f"--mmap-threshold={args.mmap_threshold}: a size in bytes is >= 0 (0 keeps glibc's dynamic default)")
    return args


def main(argv: list[str] | None = None) -> list[Spec]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    setup = Setup(model=args.model, input_shape=tuple(int(v) for v in args.input_shape.split(",")),
                  batch=args.batch, meta_batch=args.batch)
    if args.memory_of:
        memory_child(args.memory_of, setup)
        return []
    started, load_before, rev = time.time(), os.getloadavg(), commit()          # the code that ran, at its start
    log = lambda msg: print(f"[{time.time() - started:6.0f} s] {msg}", flush=True)      # noqa: E731
    specs, data = default_specs(), make_data(setup)
    check_setup = replace(setup, dtype=getattr(torch, args.check_dtype))
    check(specs, check_setup, make_data(check_setup), args.tol, log)
    time_entries(specs, setup, data, args.warmup, args.rounds, log)
    child_argv = [a for a in argv if not a.startswith("--memory-of")]
    memory(specs, setup, data, args.memory, child_argv, log, args.mmap_threshold)
    rows = specs + amortised(specs, math.ceil(EPOCH_IMAGES / args.batch))
    if args.meta_every_rounds:
        rows += measured_meta_every(specs, setup, data, 10, args.meta_every_rounds, log)
    if args.loader_n:
        rows += data_path(args.loader_n, 128, 3, log)
    meta = {"command": "PYTHONPATH=. OMP_NUM_THREADS=1 python bench/compare.py " + " ".join(argv),
            "commit": rev, "load_before": load_before, "load_after": os.getloadavg(), "seconds": time.time() - started,
            "setup": setup, "threads": args.threads, "memory_mode": args.memory + (f", MALLOC_MMAP_THRESHOLD_={args.mmap_threshold}"
                                           if args.memory == "subprocess" and args.mmap_threshold else ""), "check_dtype": args.check_dtype}
    write_results(rows, args.out, meta)
    log(f"wrote {args.out}.csv and {args.out}.md")
    return rows


if __name__ == "__main__":
    main()
