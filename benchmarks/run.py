"""Benchmark runner: anyarray_nn vs scikit-learn, PyTorch, a hand-written NumPy loop and the
GEMM-bound limit, with the project's speed targets checked side by side in one run.

    python benchmarks/run.py [--quick] [--repeats N] [--out PATH] [--only CASE,...]
                             [--data synthetic|fashion] [--n ROWS] [--threads N]

Cases (``--only``): b128, b1024, runge, iris, memory, batch_sweep, width_sweep.

Every timed number is the median of ``--repeats`` runs (min and max shown too); within a repeat
the contenders run one after another, in an order rotated each repeat, and each is warmed up
once before timing. Ratios are ratios of medians measured in the same run ("paired" is the
median of the per-repeat ratios, steadier when the machine is shared). Results go to
``benchmarks/results/latest.json`` (git-ignored) with a description of the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common, flops, memory
from benchmarks.common import Timing, ratio
from benchmarks.contenders import Contender, Problem, by_name

CASES = ("b128", "b1024", "runge", "iris", "memory", "batch_sweep", "width_sweep")
SIZES = [784, 128, 64, 10]
MIB = 2**20


@dataclass
class Config:
    quick: bool
    repeats: int
    data: str
    n: int
    threads: int | None
    warm_rows: int
    runge_epochs: int
    iris_epochs: int
    memory_rows: int
    growth_epochs: int
    sweep_rows: int
    sweep_repeats: int
    batch_sizes: list[int]
    width_rows: int
    widths: list[int]


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            quick=True,
            repeats=args.repeats or 3,
            data=args.data,
            n=args.n or 10_000,
            threads=args.threads,
            warm_rows=2048,
            runge_epochs=200,
            iris_epochs=50,
            memory_rows=args.n or 10_000,
            growth_epochs=3,
            sweep_rows=5000,
            sweep_repeats=1,
            batch_sizes=[32, 256, 2048],
            width_rows=2000,
            widths=[64, 256, 1024],
        )
    else:
        cfg = Config(
            quick=False,
            repeats=args.repeats or 5,
            data=args.data,
            n=args.n or 60_000,
            threads=args.threads,
            warm_rows=8192,
            runge_epochs=500,
            iris_epochs=200,
            memory_rows=args.n or 60_000,
            growth_epochs=5,
            sweep_rows=20_000,
            sweep_repeats=min(args.repeats or 3, 3),
            batch_sizes=[32, 64, 128, 256, 512, 1024, 2048, 4096],
            width_rows=10_000,
            widths=[64, 128, 256, 512, 1024, 2048],
        )
    return cfg


# -- results and targets ------------------------------------------------------------------------
@dataclass
class Target:
    case: str
    what: str
    value: float
    op: str  # "<=" or ">="
    limit: float
    primary: bool = True
    paired: float | None = None

    @property
    def ok(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    @property
    def status(self) -> str:
        word = "PASS" if self.ok else "FAIL"
        return word if self.primary else word.lower()

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "target": self.what,
            "value": self.value,
            "paired": self.paired,
            "op": self.op,
            "limit": self.limit,
            "primary": self.primary,
            "status": self.status,
        }


@dataclass
class Report:
    cfg: Config
    machine: dict[str, Any]
    cases: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def ratio_target(
        self,
        case: str,
        timings: dict[str, Timing],
        num: str,
        den: str,
        limit: float,
        primary: bool = True,
        what: str | None = None,
    ) -> None:
        if num not in timings or den not in timings:
            return
        value, paired = ratio(timings[num], timings[den])
        what = what or f"time {num} / {den}"
        self.targets.append(Target(case, what, value, "<=", limit, primary, paired))


def say(text: str = "") -> None:
    print(text, flush=True)


def fmt(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.1f}"
    if seconds >= 1:
        return f"{seconds:.3f}"
    return f"{seconds:.4f}"


def usable(names: list[str], report: Report) -> list[Contender]:
    out = []
    for name in names:
        c = by_name(name)
        reason = c.available()
        if reason:
            report.skipped[name] = reason
            say(f"  (skipping {name}: {reason})")
        else:
            out.append(c)
    return out


def timing_table(timings: dict[str, Timing], steps: int | None = None) -> None:
    head = f"  {'contender':<16}{'min s':>10}{'median s':>10}{'max s':>10}"
    head += f"{'steps/s':>10}" if steps else ""
    say(head + "  last loss   notes")
    for t in timings.values():
        row = f"  {t.name:<16}{fmt(min(t.times)):>10}{fmt(t.median):>10}{fmt(max(t.times)):>10}"
        if steps:
            row += f"{steps / t.median:>10.0f}"
        notes = ", ".join(f"{k}={v}" for k, v in t.info.items() if k in ("compute_dtype", "r2"))
        loss = "-" if t.losses[-1] != t.losses[-1] else f"{t.losses[-1]:.4g}"  # nan: no loss
        say(f"{row}  {loss:<10}  {notes}")


def store(report: Report, case: str, timings: dict[str, Timing], **extra: Any) -> None:
    report.cases[case] = {"contenders": {k: t.summary() for k, t in timings.items()}, **extra}


# -- cases --------------------------------------------------------------------------------------
def case_b128(cfg: Config, report: Report, X: np.ndarray, y: np.ndarray) -> None:
    names = [
        "ours",
        "ours+metrics",
        "ours-torch",
        "ours-strict",
        "ours-jax",
        "ours-cupy",
        "ours-torch-cuda",
        "sklearn",
        "torch",
        "torch-cuda",
        "numpy-loop",
        "jax-loop",
        "keras-jax",
    ]
    contenders = usable(names, report)
    problem = Problem(X, y, SIZES, batch_size=128, epochs=1, lr=1e-3)
    timings = common.alternate(contenders, problem, cfg.repeats, problem.head(cfg.warm_rows))
    timing_table(timings, problem.steps)
    sk_dtype = timings["sklearn"].info.get("compute_dtype") if "sklearn" in timings else None
    if sk_dtype:
        say(f"  scikit-learn computed in {sk_dtype} (its coefs_ dtype after fit)")
    store(report, "b128", timings, rows=problem.n, steps=problem.steps, sklearn_dtype=sk_dtype)
    for ours, primary in (("ours", True), ("ours+metrics", False)):
        report.ratio_target("b128", timings, ours, "sklearn", 0.80, primary)
        report.ratio_target("b128", timings, ours, "torch", 0.60, primary)
        report.ratio_target("b128", timings, ours, "numpy-loop", 1.05, primary)
    report.ratio_target("b128", timings, "ours-torch", "ours", 3.0)
    report.ratio_target("b128", timings, "ours-strict", "ours", 3.0)
    report.ratio_target("b128", timings, "ours-jax", "ours", 0.6)
    report.ratio_target("b128", timings, "ours-jax", "jax-loop", 1.10, primary=False)
    report.ratio_target("b128", timings, "ours-jax", "keras-jax", 0.85, primary=False)
    _compile_times(timings)
    report.ratio_target("b128", timings, "ours-cupy", "torch-cuda", 1.0, primary=False)
    report.ratio_target("b128", timings, "ours-torch-cuda", "torch-cuda", 1.0, primary=False)


def _compile_times(timings: dict[str, Timing]) -> None:
    """Compile time of the compiled contenders, paid once before the timed epochs."""
    for name, timing in timings.items():
        if "compile_s" in timing.info:
            say(f"  {name}: compiled in {timing.info['compile_s']:.2f} s (once, not timed)")


def case_b1024(cfg: Config, report: Report, X: np.ndarray, y: np.ndarray) -> None:
    problem = Problem(X, y, SIZES, batch_size=1024, epochs=1, lr=1e-3)
    total = flops.epoch_flops(problem.n, SIZES, 1024)
    closed = flops.closed_form_flops(problem.n, SIZES)
    with_dx1 = flops.closed_form_flops(problem.n, SIZES, first_layer_dx=True)
    assert total == closed, (total, closed)
    say(
        f"  epoch GEMM FLOPs: {total:,} ({total / 1e9:.3f} GFLOP; closed form "
        f"2n(3*sum(in*out) - 784*128) agrees). Counting the first layer's unneeded input "
        f"gradient too would give {with_dx1 / 1e9:.3f} GFLOP."
    )
    rows = flops.time_gemms(
        flops.epoch_gemms(problem.n, SIZES, 1024), block_s=0.01 if cfg.quick else 0.03
    )
    say(f"  {'GEMM':<26}{'role':>5}{'count':>6}{'us/call':>10}{'GFLOP/s':>9}{'epoch s':>9}")
    for r in rows:
        say(
            f"  {r['shape']:<26}{r['role'] + str(r['layer']):>5}{r['count']:>6}"
            f"{r['seconds_per_call'] * 1e6:>10.1f}{r['gflops']:>9.1f}{r['epoch_seconds']:>9.4f}"
        )
    per_shape = sum(r["epoch_seconds"] for r in rows)
    say(
        f"  table total (each shape timed alone, best of blocks): {fmt(per_shape)} s = "
        f"{total / per_shape / 1e9:.1f} GFLOP/s"
    )
    contenders = [
        *usable(
            ["ours", "ours+metrics", "ours-jax", "jax-loop", "keras-jax", "numpy-loop"], report
        ),
        flops.GemmOnly(by_shape=True),
        flops.GemmOnly(by_shape=False),
    ]
    timings = common.alternate(contenders, problem, cfg.repeats, problem.head(cfg.warm_rows))
    timing_table(timings)
    limit = timings["gemm-shapes"].median
    seq = timings["gemm-sequence"].median
    say(
        f"  GEMM-bound limit = sum of per-shape times, timed alternately with the contenders: "
        f"{fmt(limit)} s = {total / limit / 1e9:.1f} GFLOP/s (in step order: {fmt(seq)} s = "
        f"{total / seq / 1e9:.1f} GFLOP/s)"
    )
    store(
        report,
        "b1024",
        timings,
        rows=problem.n,
        flops=total,
        flops_with_first_layer_dx=with_dx1,
        gemms=rows,
        per_shape_table_limit=per_shape,
        limit=limit,
        sequence_limit=seq,
    )
    report.ratio_target("b1024", timings, "ours-jax", "ours", 0.7)
    report.ratio_target("b1024", timings, "ours-jax", "jax-loop", 1.10, primary=False)
    report.ratio_target("b1024", timings, "ours-jax", "keras-jax", 0.85, primary=False)
    _compile_times(timings)
    for name, primary in (("ours", True), ("ours+metrics", False), ("numpy-loop", False)):
        report.ratio_target(
            "b1024", timings, name, "gemm-shapes", 1.35, primary, f"time {name} / GEMM limit"
        )
    report.ratio_target(
        "b1024",
        timings,
        "ours",
        "gemm-sequence",
        1.35,
        False,
        "time ours / GEMMs in step order",
    )


def case_runge(cfg: Config, report: Report) -> None:
    X, y, grid, clean = common.runge_data(1000, noise=0.0, seed=0)
    problem = Problem(
        X,
        y,
        [1, 100, 100, 1],
        activation="tanh",
        task="regression",
        batch_size=200,  # scikit-learn's batch_size="auto" for 1000 rows
        epochs=cfg.runge_epochs,
        lr=1e-3,
    )
    say(
        f"  1000 clean samples of 1/(1+25x^2), 1-100-100-1 tanh, Adam lr 1e-3, batch 200, "
        f"{problem.epochs} epochs; R² on a 2001-point grid against the clean function"
    )
    r2: dict[str, float] = {}

    def after(name: str, trial: Any) -> None:
        r2[name] = common.r2_score(trial.predict(grid), clean)

    contenders = usable(["ours", "ours+metrics", "sklearn", "torch", "numpy-loop"], report)
    warm = problem.replace(epochs=max(1, problem.epochs // 50))
    timings = common.alternate(contenders, problem, cfg.repeats, warm, after_run=after)
    for name, t in timings.items():
        t.info["r2"] = round(r2[name], 6)
    timing_table(timings, problem.steps)
    store(report, "runge", timings, epochs=problem.epochs, r2=r2)
    report.ratio_target("runge", timings, "ours", "sklearn", 1.0)
    report.ratio_target("runge", timings, "ours+metrics", "sklearn", 1.0, primary=False)
    for name, primary in (("ours", True), ("sklearn", False)):
        if name in r2:
            report.targets.append(Target("runge", f"R² {name}", r2[name], ">=", 0.999, primary))


def case_iris(cfg: Config, report: Report) -> None:
    X, y = common.iris_data()
    problem = Problem(X, y, [4, 16, 3], batch_size=16, epochs=cfg.iris_epochs, lr=1e-3)
    say(f"  iris 150x4, 4-16-3 relu, batch 16, {problem.epochs} epochs = {problem.steps} steps")
    contenders = usable(["ours", "ours+metrics", "sklearn", "torch", "numpy-loop"], report)
    warm = problem.replace(epochs=max(1, problem.epochs // 10))
    timings = common.alternate(contenders, problem, cfg.repeats, warm)
    timing_table(timings, problem.steps)
    sps = {k: problem.steps / t.median for k, t in timings.items()}
    store(report, "iris", timings, steps=problem.steps, steps_per_second=sps)
    for name, primary in (("ours", True), ("ours+metrics", False)):
        if name in sps and "sklearn" in sps:
            report.targets.append(
                Target(
                    "iris",
                    f"steps/s {name} / sklearn",
                    sps[name] / sps["sklearn"],
                    ">=",
                    1.0,
                    primary,
                    ratio(timings["sklearn"], timings[name])[1],
                )
            )


def case_memory(cfg: Config, report: Report) -> None:
    base = {
        "data": cfg.data,
        "n": cfg.memory_rows,
        "seed": 0,
        "sizes": SIZES,
        "batch_size": 128,
        "lr": 1e-3,
        "threads": cfg.threads,
    }
    say(
        f"  fresh subprocess per contender, {cfg.memory_rows}x784 float32 "
        f"({cfg.memory_rows * 784 * 4 / MIB:.0f} MiB), batch 128; "
        "delta = peak RSS during fit - RSS before fit (after imports, data, model)"
    )
    results: dict[str, Any] = {}
    wanted = ["ours", "ours+metrics", "sklearn", "torch", "numpy-loop"]
    if cfg.quick:  # the subprocesses' start-up (torch's import above all) dominates quick runs
        wanted = ["ours", "sklearn", "numpy-loop"]
    names = [c.name for c in usable(wanted, report)]
    say(f"  {'contender':<16}{'baseline MiB':>13}{'peak MiB':>10}{'delta MiB':>11}  peak reset")
    for name in names:
        res = memory.run_subprocess({**base, "contender": name, "epochs": 1})
        results[name] = res
        say(
            f"  {name:<16}{res['baseline'] / MIB:>13.1f}{res['peak'] / MIB:>10.1f}"
            f"{res['peak_delta'] / MIB:>11.1f}  {res['peak_reset']}"
        )
    growth: dict[str, Any] = {}
    for name in [n for n in ("ours", "ours+metrics") if n in names]:
        res = memory.run_subprocess(
            {**base, "contender": name, "epochs": cfg.growth_epochs, "per_epoch": True}
        )
        rss = [r / MIB for r in res["epoch_rss"]]
        growth[name] = {"epoch_rss_mib": rss, "growth_mib": rss[-1] - rss[0], "raw": res}
        say(
            f"  {name}: RSS after each of {len(rss)} epochs (MiB): "
            + ", ".join(f"{r:.1f}" for r in rss)
            + f"  -> growth {rss[-1] - rss[0]:+.2f} MiB"
        )
    report.cases["memory"] = {"rows": cfg.memory_rows, "peak": results, "growth": growth}
    sk = results.get("sklearn")
    for name, primary in (("ours", True), ("ours+metrics", False)):
        if name in results and sk:
            ours = results[name]
            report.targets.append(
                Target(
                    "memory",
                    f"fit peak-RSS delta {name} / sklearn",
                    ours["peak_delta"] / max(sk["peak_delta"], 1),
                    "<=",
                    1.2,
                    primary,
                )
            )
            report.targets.append(
                Target(
                    "memory",
                    f"absolute peak RSS {name} / sklearn",
                    ours["peak"] / sk["peak"],
                    "<=",
                    1.2,
                    False,
                )
            )
    for name, g in growth.items():
        report.targets.append(
            Target(
                "memory",
                f"RSS growth epoch 1 -> {len(g['epoch_rss_mib'])}, {name} (MiB)",
                g["growth_mib"],
                "<=",
                4.0,
                name == "ours",
            )
        )


def _sweep(
    cfg: Config,
    report: Report,
    case: str,
    label: str,
    points: list[int],
    make: Any,
) -> None:
    contenders = usable(["ours", "sklearn", "torch", "numpy-loop"], report)
    names = [c.name for c in contenders]
    say(
        f"  {label:>7}"
        + "".join(f"{n:>12}" for n in names)
        + f"{'ours/sk':>9}{'ours/torch':>11}{'ours/loop':>10}"
    )
    table: dict[int, Any] = {}
    for point in points:
        problem = make(point)
        timings = common.alternate(contenders, problem, cfg.sweep_repeats, problem.head(1024))
        med = {k: t.median for k, t in timings.items()}

        def r(a: str, b: str, med: dict[str, float] = med) -> str:
            return f"{med[a] / med[b]:.2f}" if a in med and b in med else "-"

        say(
            f"  {point:>7}"
            + "".join(f"{fmt(med[n]):>12}" for n in names)
            + f"{r('ours', 'sklearn'):>9}{r('ours', 'torch'):>11}{r('ours', 'numpy-loop'):>10}"
        )
        table[point] = {k: t.summary() for k, t in timings.items()}
    report.cases[case] = {"rows": cfg.sweep_rows if case == "batch_sweep" else cfg.width_rows}
    report.cases[case]["points"] = table


def case_batch_sweep(cfg: Config, report: Report, X: np.ndarray, y: np.ndarray) -> None:
    n = min(cfg.sweep_rows, len(X))
    say(f"  epoch seconds over {n} rows, 784-128-64-10, {cfg.sweep_repeats} repeat(s) per point")
    Xs, ys = X[:n], y[:n]
    _sweep(
        cfg,
        report,
        "batch_sweep",
        "batch",
        cfg.batch_sizes,
        lambda b: Problem(Xs, ys, SIZES, batch_size=b, epochs=1, lr=1e-3),
    )


def case_width_sweep(cfg: Config, report: Report, X: np.ndarray, y: np.ndarray) -> None:
    n = min(cfg.width_rows, len(X))
    say(
        f"  epoch seconds over {n} rows, 784-w-(w/2)-10, batch 128, "
        f"{cfg.sweep_repeats} repeat(s) per point"
    )
    Xs, ys = X[:n], y[:n]
    _sweep(
        cfg,
        report,
        "width_sweep",
        "width",
        cfg.widths,
        lambda w: Problem(Xs, ys, [784, w, w // 2, 10], batch_size=128, epochs=1, lr=1e-3),
    )


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k rows, 3 repeats, reduced sweeps")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per contender")
    ap.add_argument("--out", type=Path, default=common.REPO / "benchmarks/results/latest.json")
    ap.add_argument("--only", default="", help=f"comma-separated cases: {','.join(CASES)}")
    ap.add_argument("--data", choices=("synthetic", "fashion"), default="synthetic")
    ap.add_argument("--n", type=int, default=None, help="rows for b128/b1024/memory")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="cap BLAS/OpenMP/torch threads (default: each library's own default)",
    )
    args = ap.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        ap.error("--repeats must be >= 1")
    args.cases = [c.strip() for c in args.only.split(",") if c.strip()] or list(CASES)
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = make_config(args)
    with contextlib.suppress(ImportError):  # import torch now: machine_info sees its pools
        import torch  # noqa: F401
    restore_threads = common.limit_threads(cfg.threads)
    try:
        return _main(args, cfg)
    finally:
        restore_threads()


def _main(args: argparse.Namespace, cfg: Config) -> int:
    started = time.perf_counter()
    machine = common.machine_info()
    report = Report(cfg, machine)
    say("anyarray_nn benchmarks")
    say(common.describe_machine(machine))
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        say(
            "WARNING: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set and slow a current NumPy; to "
            "benchmark, unset both for this command only: "
            "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py"
        )
    if cfg.quick:
        say(
            f"QUICK MODE: {cfg.n:,} rows instead of 60,000, {cfg.repeats} repeats, "
            f"{cfg.runge_epochs} Runge epochs, {cfg.iris_epochs} iris epochs, reduced sweeps "
            "(1 repeat): a smoke run of the harness, not a measurement to quote."
        )
    load, cpus = machine.get("loadavg"), machine.get("usable_cpus")
    if load and cpus and load[0] > 0.5 * cpus:
        say(
            f"WARNING: the machine is busy (1-min load {load[0]:.2f} on {cpus} CPUs): absolute "
            "times and multi-threaded BLAS/OpenMP runs are noisy. `--threads 1` is steadier."
        )
    say(
        f"mode: {'quick' if cfg.quick else 'full'}; {cfg.repeats} repeats (median), contenders "
        f"alternated; data {cfg.data}; threads {cfg.threads or 'library defaults'}"
    )
    needs_data = {"b128", "b1024", "batch_sweep", "width_sweep"} & set(args.cases)
    X, y = common.make_data(cfg.data, cfg.n) if needs_data else (None, None)
    titles = {
        "b128": f"batch 128, one epoch, {cfg.n:,}x784 float32, 784-128-64-10 relu, Adam 1e-3",
        "b1024": f"batch 1024, one epoch, {cfg.n:,} rows: GEMM-bound limit",
        "runge": "Runge regression (1-100-100-1 tanh)",
        "iris": "tiny network: iris",
        "memory": "memory (RSS)",
        "batch_sweep": "epoch time vs batch size",
        "width_sweep": "epoch time vs width",
    }
    for case in args.cases:
        say(f"\n== {case}: {titles[case]} ==")
        t0 = time.perf_counter()
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if case in ("b128", "b1024", "batch_sweep", "width_sweep"):
            globals()[f"case_{case}"](cfg, report, X, y)
        else:
            globals()[f"case_{case}"](cfg, report)
        if case in report.cases:
            report.cases[case]["wall_seconds"] = time.perf_counter() - t0
            report.cases[case]["loadavg_1min_before"] = load_before
        say(f"  ({time.perf_counter() - t0:.1f} s)")

    say("\n== targets (ratios of medians from this run; lower-case status = informational) ==")
    say(f"  {'case':<8}{'target':<52}{'value':>9}{'paired':>9}  {'limit':<10}status")
    for t in report.targets:
        paired = f"{t.paired:.3f}" if t.paired is not None else "-"
        value = f"{t.value:.5f}" if t.what.startswith("R²") else f"{t.value:.3f}"
        limit = f"{t.op} {t.limit:g}"
        say(f"  {t.case:<8}{t.what:<52}{value:>9}{paired:>9}  {limit:<10}{t.status}")
    primary = [t for t in report.targets if t.primary]
    passed = sum(t.ok for t in primary)
    say(f"  {passed}/{len(primary)} primary targets pass")
    elapsed = time.perf_counter() - started
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    payload = {
        "config": {k: v for k, v in vars(cfg).items()} | {"cases": args.cases},
        "machine": machine,
        "cases": report.cases,
        "targets": [t.as_dict() for t in report.targets],
        "skipped": report.skipped,
        "wall_seconds": elapsed,
    }
    common.write_json(args.out, payload)
    say(f"\nwrote {args.out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
