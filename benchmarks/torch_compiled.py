"""Compiled torch ``fit`` against eager torch ``fit``: one epoch of 784-128-64-10 ReLU, Adam,
float32, on torch's CPU (or ``--device cuda``), the two alternated, medians and paired ratios;
compile time reported separately (paid once per batch shape, then reused by later epochs and
``fit`` calls).

    python benchmarks/torch_compiled.py [--n 60000] [--batch 128] [--repeats 7] [--threads N]

Target: the compiled epoch at most 0.75x the eager one at batch 128. Wall time and
the process's CPU time are both reported: on a shared machine the CPU time is the steadier of
the two. The data is moved to the device before timing (untimed). The exit status is 0 only
when the target was met (paired wall-time ratio).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common

SIZES = [784, 128, 64, 10]
TARGET = 0.75


def _fit(net, X, y, batch: int, compile: bool) -> tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of one epoch (Adam the first time, then continued)."""
    optimizer = "adam" if net.optimizer is None else None
    wall, cpu = time.perf_counter(), time.process_time()
    net.fit(X, y, epochs=1, batch_size=batch, optimizer=optimizer, lr=1e-3, metrics=[],
            compile=compile)  # fmt: skip
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args(argv)
    import torch

    import anyarray_nn as ann

    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = common.make_data("synthetic", args.n)
    print(common.describe_machine(common.machine_info()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    nets = {c: ann.NN(SIZES, backend="torch", device=args.device, seed=0) for c in (False, True)}
    be = nets[True].backend
    Xd, yd = be.asarray(X), be.asarray(y, dtype=be.index_dtype)
    start = time.perf_counter()
    history = nets[True].fit(Xd, yd, epochs=1, batch_size=args.batch, optimizer="adam",
                             lr=1e-3, metrics=[], compile=True)  # fmt: skip
    print(f"first compiled epoch {time.perf_counter() - start:.1f} s, of which compiling "
          f"{history.params.get('compile_seconds', 0.0):.1f} s")  # fmt: skip
    _fit(nets[False], Xd, yd, args.batch, False)  # warm-up
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(args.repeats):
        for c in (False, True) if r % 2 == 0 else (True, False):
            times[c].append(_fit(nets[c], Xd, yd, args.batch, c))
    status = 0
    for k, what in ((0, "wall"), (1, "cpu")):
        eager, comp = ([t[k] for t in times[c]] for c in (False, True))
        paired = statistics.median(a / b for a, b in zip(comp, eager, strict=True))
        ok = paired <= TARGET
        if k == 0:
            status = int(not ok)
        print(
            f"batch {args.batch} {what}: eager {statistics.median(eager):.3f} s, compiled "
            f"{statistics.median(comp):.3f} s (medians of {args.repeats}), paired ratio "
            f"{paired:.3f} (target <= {TARGET}: {'ok' if ok else 'MISSED'}); eager "
            f"{[round(t, 3) for t in eager]}, compiled {[round(t, 3) for t in comp]}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
