"""Compiled JAX ``fit`` against the NumPy backend and against a hand-written JAX loop: one epoch
of 784-128-64-10 ReLU, Adam, at batch 128 and 1024, the three contenders alternated
(``common.alternate``), medians and paired ratios; compile time reported separately (it is paid
once per batch shape and reused).

    python benchmarks/jax_compiled.py [--n 60000] [--repeats 7] [--out result.json]

Targets:

- compiled JAX at most 0.6x the NumPy backend at batch 128, 0.7x at batch 1024 (set by a
  prototype measured on a quiet 2-thread machine; see docs/jax.md);
- compiled JAX at most 1.10x the hand-written ``jax.jit`` + ``lax.scan`` loop (``jax-loop`` in
  ``contenders.py``) on the same device, at batch 128 and 1024;
- compiled JAX at most 0.85x Keras 3 on JAX (``keras-jax``: ``model.fit`` with its
  jit-compiled train step, given the NumPy arrays as a Keras user does). Keras is optional:
  without it (``pip install keras``) the row says why it is skipped and the target is not
  checked.

JAX runs on its default device (a GPU where JAX's CUDA build finds one). Both JAX contenders'
data is moved to the device before timing (untimed, reported), as a JAX user keeps it; the
NumPy backend needs no move. The exit status is 0 only when every target was met.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.contenders import Problem, by_name

SIZES = [784, 128, 64, 10]
#: batch size -> (most ours-jax / ours, most ours-jax / jax-loop)
TARGETS = {128: (0.6, 1.10), 1024: (0.7, 1.10)}
#: most ours-jax / keras-jax, at every batch size
VS_KERAS = 0.85


def _device() -> str:
    import jax

    dev = jax.devices()[0]
    return f"{dev.platform}: {getattr(dev, 'device_kind', '')} (jax {jax.__version__})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    X, y = common.make_data("synthetic", args.n)
    names = ["ours", "ours-jax", "jax-loop"]
    keras_reason = by_name("keras-jax").available()
    if keras_reason is None:
        names.append("keras-jax")
    contenders = [by_name(name) for name in names]
    print(common.describe_machine(common.machine_info()))
    print(f"jax device: {_device()}")
    if keras_reason:
        print(f"keras-jax: not available: {keras_reason}")
    status, results = 0, {"device": _device(), "rows": args.n, "cases": {}}
    for batch, (vs_numpy, vs_loop) in TARGETS.items():
        problem = Problem(X, y, SIZES, batch_size=batch, epochs=1, lr=1e-3)
        timings = common.alternate(contenders, problem, args.repeats, problem.head(2048))
        ours, jax_, loop = (timings[name] for name in names[:3])
        row = {
            name: {"median_s": t.median, "times_s": list(t.times)} for name, t in timings.items()
        }
        checks = [("numpy", ours, vs_numpy), ("jax-loop", loop, vs_loop)]
        if "keras-jax" in timings:
            checks.append(("keras-jax", timings["keras-jax"], VS_KERAS))
        for label, den, limit in checks:
            ratio, paired = common.ratio(jax_, den)
            ok = paired <= limit
            status |= not ok
            row[f"ours-jax / {label}"] = {"ratio": ratio, "paired": paired, "limit": limit}
            print(
                f"batch {batch}: ours-jax / {label}: ratio {ratio:.3f}, paired {paired:.3f} "
                f"(target <= {limit}: {'ok' if ok else 'MISSED'})"
            )
        print(
            f"batch {batch}: medians of {args.repeats}, alternated: numpy {ours.median:.4f} s, "
            f"ours-jax {jax_.median:.4f} s, jax-loop {loop.median:.4f} s; compile ours-jax "
            f"{jax_.info.get('compile_s', 0.0):.2f} s; times: numpy "
            f"{[round(t, 4) for t in ours.times]}, ours-jax "
            f"{[round(t, 4) for t in jax_.times]}, jax-loop {[round(t, 4) for t in loop.times]}; "
            f"loss spread numpy vs ours-jax "
            f"{abs(statistics.median(ours.losses) - statistics.median(jax_.losses)):.2e}"
        )
        if "keras-jax" in timings:
            keras = timings["keras-jax"]
            times = [round(t, 4) for t in keras.times]
            compile_s = keras.info["compile_s"]
            print(f"batch {batch}: keras-jax {keras.median:.4f} s, times {times}, compile "
                  f"{compile_s:.2f} s")  # fmt: skip
        results["cases"][f"b{batch}"] = row
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
