"""Epoch time of this checkout's NumPy training against another revision's, side by side.

    python benchmarks/revisions.py BASELINE_REV [--rounds 5] [--n 60000] [--threads 1]

The baseline is checked out into a temporary git worktree. Each measurement runs in a fresh
subprocess (two versions of the package cannot share one interpreter) that builds the same
synthetic data (float32, 784 features, 10 classes), warms up with one epoch, then times
``--epochs`` epochs of ``fit`` (784-128-64-10 ReLU, Adam, lr 1e-3) and prints the median epoch.
Rounds alternate the two trees, so slow spells of a shared machine hit both; the ratio is the
median over rounds of (this / baseline), per batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, statistics, sys, time
import numpy as np
import anyarray_nn as ann
n, batch, epochs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.random((n, 784), dtype=np.float32)
y = rng.integers(0, 10, n)
net = ann.NN([784, 128, 64, 10], backend="numpy", dtype="float32", seed=0)
net.fit(X, y, epochs=1, batch_size=batch, optimizer="adam", lr=1e-3, metrics=[])
times = []
for _ in range(epochs):
    start = time.perf_counter()
    net.fit(X, y, epochs=1, batch_size=batch, metrics=[])
    times.append(time.perf_counter() - start)
print(json.dumps({"epoch": statistics.median(times), "file": ann.__file__}))
"""


def measure(tree: Path, n: int, batch: int, epochs: int, threads: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(batch), str(epochs)],
        env=env, cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).resolve().is_relative_to(tree.resolve()), result
    return float(result["epoch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", help="a git revision to compare with (e.g. a commit)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n", type=int, default=60000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", default="128,1024")
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.baseline],
                       cwd=ROOT, check=True)  # fmt: skip
        try:
            ratios: dict[int, list[float]] = {b: [] for b in batches}
            times: dict[tuple[str, int], list[float]] = {}
            for r in range(args.rounds):
                for batch in batches:
                    order = [("this", ROOT), ("baseline", base)]
                    results = {}
                    for name, tree in order if r % 2 == 0 else order[::-1]:
                        results[name] = measure(tree, args.n, batch, args.epochs, args.threads)
                        times.setdefault((name, batch), []).append(results[name])
                    ratios[batch].append(results["this"] / results["baseline"])
                    print(f"round {r + 1} batch {batch}: this {results['this']:.3f} s, "
                          f"baseline {results['baseline']:.3f} s", flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT,
                           check=False)  # fmt: skip
    print(f"\nNumPy epoch, {args.n} x 784, 784-128-64-10 Adam, {args.threads} thread(s); "
          f"medians of {args.rounds} alternated rounds")  # fmt: skip
    for batch in batches:
        this = statistics.median(times["this", batch])
        base_t = statistics.median(times["baseline", batch])
        print(
            f"  batch {batch:>5}: this {this:.3f} s  baseline {base_t:.3f} s  "
            f"this/baseline {statistics.median(ratios[batch]):.3f} (paired median)"
        )


if __name__ == "__main__":
    main()
