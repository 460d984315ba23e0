"""Where an epoch's time goes: cProfile of anyarray_nn's ``fit`` vs the hand-written NumPy loop.

    python -m benchmarks.profile_epoch [--n 20000] [--batch 128] [--top 25] [--metrics]
                                       [--threads N]

Prints, for each, the plain time of an epoch (best of 3) with its minor page faults per step,
then the wall time of one profiled epoch (profiling inflates Python-heavy code, so compare the
two under the profiler, not with the runner's numbers) and the functions with the most own time.
Array operators (``@``, ``+``, ``*``) run inside the Python function that uses them, so a
layer's ``forward`` own time is mostly its GEMM and elementwise work.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.contenders import NumpyLoop, Ours, Problem


def profile(label: str, contender, problem: Problem, top: int) -> None:
    contender.prepare(problem.head(2048)).run()  # warm-up
    plain = []
    for _ in range(3):  # the plain time (best of 3), without the profiler
        trial = contender.prepare(problem)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        trial.run()
        plain.append(time.perf_counter() - start)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    best = min(plain)
    print(
        f"\n== {label}: {best:.3f} s per epoch without the profiler (best of 3), "
        f"{best / problem.steps * 1e6:.0f} us/step, {faults / problem.steps:.1f} minor page "
        "faults/step =="
    )
    trial = contender.prepare(problem)
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    trial.run()
    prof.disable()
    wall = time.perf_counter() - start
    print(f"   under cProfile: {wall:.3f} s, {wall / problem.steps * 1e6:.0f} us/step")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    print(text[text.find("   ncalls") :].rstrip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--metrics", action="store_true", help="also profile fit's default metrics")
    ap.add_argument("--threads", type=int, default=None, help="cap BLAS threads (1: steadier)")
    args = ap.parse_args(argv)
    common.limit_threads(args.threads)  # for the rest of this process
    X, y = common.make_data("synthetic", args.n)
    problem = Problem(X, y, [784, 128, 64, 10], batch_size=args.batch, epochs=1, lr=1e-3)
    print(f"{args.n} rows, batch {args.batch}, 784-128-64-10 relu, Adam; {problem.steps} steps")
    for label, c in [("numpy-loop", NumpyLoop()), ("ours (metrics=[])", Ours("numpy"))] + (
        [("ours (default metrics)", Ours("numpy", metrics=None))] if args.metrics else []
    ):
        profile(label, c, problem, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
