"""A device backend's ``fit`` given NumPy arrays, against the same ``fit`` given arrays already on
the device, and against the NumPy backend: what moving and checking host data costs. One epoch of
784-128-64-10 ReLU, Adam, at batch 128 and 1024.

    python benchmarks/host_data.py [--n 60000] [--repeats 5] [--backend jax]
    python benchmarks/host_data.py --baseline REV --rounds 3     # this checkout against REV
    python benchmarks/host_data.py --threads 1      # one BLAS thread (steadier on a busy box)

Each tree (this checkout, and ``REV`` exported with ``git archive`` into a temporary folder)
is measured in a fresh subprocess (two versions of the package cannot share one interpreter).
The subprocess makes the data (synthetic float32 60k x 784, or ``--data fashion``), compiles
once (an untimed throw-away ``fit`` of each kind), then in every repeat times, in an order
rotated per repeat:

- ``numpy``: ``fit`` on the NumPy backend;
- ``host``: ``fit`` on ``--backend`` given the NumPy arrays (checks and the move included);
- ``device``: the same ``fit`` given arrays moved to the device beforehand (untimed);
- ``move``: ``net.check_inputs(X)`` alone (the checks and the move of ``X``, waited for).

Each timed ``fit`` trains a fresh copy of one network. Reported: medians and the medians of the
per-repeat ratios (``paired``); with ``--baseline``, rounds alternate the two trees, so slow
spells of a shared machine hit both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("numpy", "host", "device", "move")

CHILD = r"""
import json, sys, time
sys.path.append(sys.argv[1])  # benchmarks.common, where the tree has none
from benchmarks.common import make_data
import anyarray_nn as ann

backend, data, n, repeats = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
batches = [int(b) for b in sys.argv[6].split(",")]
X, y = make_data(data, n)
base = ann.NN([784, 128, 64, 10], backend=backend, dtype="float32", seed=0)
be = base.backend
Xd, yd = be.asarray(X), be.asarray(y, dtype=be.index_dtype)
plain = ann.NN([784, 128, 64, 10], backend="numpy", dtype="float32", seed=0)
out = {"file": ann.__file__, "batches": {}}


def fit(net, a, b, batch):
    net.fit(a, b, epochs=1, batch_size=batch, optimizer="adam", lr=1e-3, metrics=[])


def move():
    return be.float(net_move.check_inputs(X)[0, 0])  # the read waits for the move


net_move = base.copy()
for batch in batches:
    runs = {
        "numpy": lambda: fit(plain.copy(), X, y, batch),
        "host": lambda: fit(base.copy(), X, y, batch),
        "device": lambda: fit(base.copy(), Xd, yd, batch),
        "move": move,
    }
    for run in runs.values():  # compile and warm up, untimed
        run()
    times = {k: [] for k in runs}
    names = list(runs)
    for r in range(repeats):
        for j in range(len(names)):
            name = names[(j + r) % len(names)]
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    out["batches"][str(batch)] = times
print(json.dumps(out))
"""


def measure(tree: Path, args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    if args.threads:  # BLAS/OpenMP threads (a loaded machine stalls multi-threaded GEMMs)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
    cmd = [sys.executable, "-c", CHILD, str(ROOT), args.backend, args.data, str(args.n),
           str(args.repeats), ",".join(map(str, args.batches))]  # fmt: skip
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the measurement in {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(result["file"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{tree}: imported anyarray_nn from {result['file']}")
    return result["batches"]


def export(rev: str, folder: Path) -> Path:
    """``rev``'s files (``git archive``) in ``folder``; no worktree is registered."""
    archive = folder / "tree.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=fh, check=True)
    tree = folder / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def paired(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def summarise(label: str, rounds: list[dict]) -> dict:
    """Medians over every repeat of every round, and the paired ratios."""
    summary = {}
    for batch in rounds[0]:
        t = {k: [s for r in rounds for s in r[batch][k]] for k in KINDS}
        row = {f"{k}_s": statistics.median(t[k]) for k in KINDS}
        row["host/device"] = paired(t["host"], t["device"])
        row["host/numpy"] = paired(t["host"], t["numpy"])
        row["device/numpy"] = paired(t["device"], t["numpy"])
        summary[batch] = row
        cells = "  ".join(f"{k} {v:.3f}" for k, v in row.items())
        print(f"{label:<10} batch {batch:>5}: {cells}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="jax")
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "fashion"])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")],
                    default=[128, 1024])  # fmt: skip
    ap.add_argument("--baseline", default=None, help="a git revision to compare with")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="cap BLAS/OpenMP threads")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this": ROOT}
        if args.baseline:
            trees["baseline"] = export(args.baseline, Path(tmp))
        rounds: dict[str, list[dict]] = {name: [] for name in trees}
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in order:
                rounds[name].append(measure(trees[name], args))
    print(f"backend {args.backend}, {args.n} rows, {args.rounds} round(s) x {args.repeats} "
          f"repeats, threads {args.threads or 'default'}; seconds are medians, ratios "
          "paired")  # fmt: skip
    results = {name: summarise(name, runs) for name, runs in rounds.items()}
    if args.baseline:
        for batch in results["this"]:
            pairs = zip(rounds["this"], rounds["baseline"], strict=True)
            host = [paired(a[batch]["host"], b[batch]["host"]) for a, b in pairs]
            results.setdefault("this/baseline host", {})[batch] = statistics.median(host)
            print(f"batch {batch:>5}: host fit, this / baseline {statistics.median(host):.3f}")
    results["raw"] = rounds
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
