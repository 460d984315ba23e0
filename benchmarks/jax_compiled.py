"""Compiled JAX ``fit`` against the NumPy backend: one epoch of 784-128-64-10 ReLU, Adam, at
batch 128 and 1024, the two contenders alternated (``common.alternate``), medians and paired
ratios; compile time reported separately (it is paid once per batch shape and reused).

    python benchmarks/jax_compiled.py [--n 60000] [--repeats 7]

Targets (issue 19): compiled JAX at most 0.6x NumPy at batch 128, 0.7x at batch 1024. The JAX
contender's data is moved to its device before timing (untimed, reported), as a JAX user keeps
it; the NumPy backend needs no move.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.contenders import Problem, by_name

SIZES = [784, 128, 64, 10]
TARGETS = {128: 0.6, 1024: 0.7}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    X, y = common.make_data("synthetic", args.n)
    contenders = [by_name("ours"), by_name("ours-jax")]
    print(common.describe_machine(common.machine_info()))
    status = 0
    for batch, limit in TARGETS.items():
        problem = Problem(X, y, SIZES, batch_size=batch, epochs=1, lr=1e-3)
        timings = common.alternate(contenders, problem, args.repeats, problem.head(2048))
        ours, jax_ = timings["ours"], timings["ours-jax"]
        ratio, paired = common.ratio(jax_, ours)
        ok = paired <= limit
        status |= not ok
        print(
            f"batch {batch}: numpy {ours.median:.4f} s, jax compiled {jax_.median:.4f} s "
            f"(medians of {args.repeats}, alternated); ratio {ratio:.3f}, paired "
            f"{paired:.3f} (target <= {limit}: {'ok' if ok else 'MISSED'}); compile "
            f"{jax_.info.get('compile_s', 0.0):.2f} s, data to device "
            f"{jax_.info.get('to_device_s', 0.0):.3f} s; numpy times "
            f"{[round(t, 4) for t in ours.times]}, jax times "
            f"{[round(t, 4) for t in jax_.times]}; loss spread "
            f"{abs(statistics.median(ours.losses) - statistics.median(jax_.losses)):.2e}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
