"""Data-parallel training on MPI: step time split into compute and allreduce, on 1 and 2 ranks.

Run:  python benchmarks/distributed.py [--ranks 1,2] [--rows 60000] [--repeats 3]

The MNIST-shaped problem (60,000 x 784 float32, 784-128-64-10 ReLU, softmax cross-entropy, Adam
lr 1e-3), one epoch at global batches of 128 and 1024, on ``mpiexec -n N`` for each N, one BLAS
thread per rank. Each rank times its whole epoch and the allreduce calls inside it (the
communicator counts them), so compute = epoch - allreduce. A second part times a bare
allreduce of float32 buffers of several sizes between the ranks. Last, the ring-allreduce model
projects the parallel efficiency to 64 ranks at 10 and 100 Gbit/s (see
docs/scaling-out.md). Needs the mpi extra: ``pip install -e ".[mpi]"``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZES = (784, 128, 64, 10)
WIDE = (784, 4096, 4096, 4096, 10)
BATCHES = (128, 1024)
BUFFER_SIZES = (1_000, 10_000, 109_386, 1_000_000)


def n_params(sizes: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


# -- what each rank runs ---------------------------------------------------------------------
def worker(rows: int, repeats: int, out: str) -> None:
    from mpi4py import MPI
    from threadpoolctl import threadpool_limits

    import anyarray_nn as ann
    from anyarray_nn.distributed import MPIComm

    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(0)  # the same data on every rank
    X = rng.random((rows, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, 10, rows)
    results: dict[str, list[dict[str, float]]] = {}
    with threadpool_limits(1):
        for batch in BATCHES:
            runs = []
            for _ in range(repeats + 1):  # the first is a warm-up
                wrapped = MPIComm(comm)
                net = ann.NN(list(SIZES), backend="numpy", seed=0)
                comm.Barrier()
                start = time.perf_counter()
                net.fit(X, y, epochs=1, batch_size=batch, optimizer="adam", lr=1e-3,
                        metrics=[], comm=wrapped)  # fmt: skip
                total = time.perf_counter() - start
                runs.append({"epoch": total, "allreduce": wrapped.allreduce_seconds,
                             "calls": wrapped.allreduce_calls})  # fmt: skip
            results[str(batch)] = runs[1:]
        results["buffers"] = [_time_allreduce(comm, n, 200) for n in BUFFER_SIZES]
        results["serial_ms"] = _time_serial_part(ann, 200)
    if comm.Get_rank() == 0:
        Path(out).write_text(json.dumps(results))


def _time_serial_part(ann: object, reps: int) -> float:
    """Milliseconds of the part of a data-parallel step that every rank does whole: the Adam
    update of all parameters (one flat vector: the gradient is reduced as it is, with no
    packing)."""
    net = ann.NN(list(SIZES), backend="numpy", seed=0)
    xp = net.xp
    params = xp.asarray(net.theta, copy=True)
    grads = xp.ones_like(params) * 1e-3
    opt = ann.optimizers.get("adam", lr=1e-3)
    opt.build(params)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        params = opt.step(params, grads)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _time_allreduce(comm: object, n: int, reps: int) -> dict[str, float]:
    from mpi4py import MPI

    buffer = np.ones(n, dtype=np.float32)
    times = []
    for _ in range(reps):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        times.append(time.perf_counter() - start)
    return {"floats": n, "median_ms": 1e3 * statistics.median(times)}


# -- the launcher and the report -------------------------------------------------------------
def launch(n: int, rows: int, repeats: int) -> dict:
    mpiexec = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    out = REPO / "benchmarks" / "results" / f"distributed_{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [mpiexec, "-n", str(n), sys.executable, __file__, "--worker", "--rows", str(rows),
           "--repeats", str(repeats), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, timeout=1800)
    return json.loads(out.read_text())


def report(by_ranks: dict[int, dict], rows: int) -> dict[int, tuple[float, float]]:
    """Print the step-time table; return, per batch, the one-rank compute time of a step and
    the part of a step that does not divide among ranks (measured on its own)."""
    print(f"\nMNIST-shaped, {rows} rows, 784-128-64-10, Adam, one epoch, 1 BLAS thread per rank")
    print(f"{'ranks':>5} {'batch':>6} {'steps':>6} {'epoch s':>8} {'step ms':>8} "
          f"{'compute ms':>10} {'allreduce ms':>12} {'speedup':>8}")  # fmt: skip
    steps_of: dict[int, dict[int, float]] = {}
    for batch in BATCHES:
        base = None
        for n, result in sorted(by_ranks.items()):
            runs = result[str(batch)]
            epoch = statistics.median(r["epoch"] for r in runs)
            reduce = statistics.median(r["allreduce"] for r in runs)
            steps = -(-rows // batch)
            base = epoch if base is None else base
            print(f"{n:>5} {batch:>6} {steps:>6} {epoch:>8.3f} {1e3 * epoch / steps:>8.3f} "
                  f"{1e3 * (epoch - reduce) / steps:>10.3f} {1e3 * reduce / steps:>12.3f} "
                  f"{base / epoch:>7.2f}x")  # fmt: skip
            steps_of.setdefault(batch, {})[n] = (epoch - reduce) / steps
    for n, result in sorted(by_ranks.items()):
        if n < 2:
            continue
        print(f"\nallreduce of float32 buffers between {n} ranks (median of 200):")
        for b in result["buffers"]:
            print(f"  {b['floats']:>9,} floats ({4 * b['floats'] / 1e6:7.3f} MB): "
                  f"{b['median_ms']:.3f} ms")  # fmt: skip
    fixed = 1e-3 * min(r["serial_ms"] for r in by_ranks.values())
    print(
        f"\nthe part of a step every rank does whole (Adam update + packing): {1e3 * fixed:.3f} ms"
    )
    return {batch: (by_n[1], min(fixed, by_n[1])) for batch, by_n in steps_of.items() if 1 in by_n}


def scaling_model(step: float, fixed: float, batch: int) -> None:
    """Ring allreduce, ``2(p-1)/p * bytes / bandwidth + 2(p-1) * latency``, against a step's
    compute on p ranks, ``(step - fixed) / p + fixed``: the rows divide among the ranks, the
    rest of a step does not (every rank applies the whole optimizer update and packs the
    gradients; measured on its own). Efficiency = step / (p * T_p).
    The wide net's compute is scaled by its parameter count (~6 flops per parameter per row
    either way), its fixed part too (the optimizer update is per parameter)."""
    print(f"\nprojected parallel efficiency, global batch {batch} (ring allreduce model)")
    links = (("10 Gbit/s", 10e9 / 8, 20e-6), ("100 Gbit/s", 100e9 / 8, 5e-6))
    ranks = (2, 4, 8, 16, 32, 64)
    for name, sizes in (("784-128-64-10", SIZES), ("784-4096x3-10", WIDE)):
        params = n_params(sizes)
        scale = params / n_params(SIZES)
        compute, serial = step * scale, fixed * scale
        print(f"  {name}: {params:,} parameters ({4 * params / 1e6:.1f} MB float32), "
              f"one-rank step {1e3 * compute:.2f} ms")  # fmt: skip
        for link, bandwidth, latency in links:
            cells = []
            for p in ranks:
                ring = 2 * (p - 1) / p * 4 * params / bandwidth + 2 * (p - 1) * latency
                t_p = (compute - serial) / p + serial + ring
                cells.append(f"{p}:{compute / (p * t_p):5.0%}")
            print(f"    {link:>10} (latency {1e6 * latency:.0f} us)  " + "  ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", default="1,2", help="rank counts to run (default 1,2)")
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.rows, args.repeats, args.out)
        return
    by_ranks = {n: launch(n, args.rows, args.repeats) for n in map(int, args.ranks.split(","))}
    for batch, (step, fixed) in report(by_ranks, args.rows).items():
        scaling_model(step, fixed, batch)


if __name__ == "__main__":
    main()
