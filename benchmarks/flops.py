"""The GEMMs of one training epoch: their exact list, FLOP count and the time they take alone.

Per batch of ``b`` rows and per Dense layer ``fan_in -> fan_out``:

- forward ``X @ W``:        ``(b x fan_in) @ (fan_in x fan_out)``
- weight gradient ``X^T dZ``: ``(fan_in x b) @ (b x fan_out)``
- input gradient ``dZ W^T``:  ``(b x fan_out) @ (fan_out x fan_in)`` -- not for the first layer
  (nobody needs the gradient with respect to the data; anyarray_nn, scikit-learn and torch all
  skip it)

each ``2 * b * fan_in * fan_out`` FLOPs (a multiply and an add per term). Bias adds, activations,
the softmax and Adam are elementwise and are not counted. So an epoch over ``n`` rows costs

    FLOPs = 2 n (3 sum_l fan_in_l fan_out_l - sizes[0] sizes[1])

whatever the batch size: 27.264 GFLOP for 60,000 x 784-128-64-10 (39.306 GFLOP if the first
layer's input gradient were computed too).

The *GEMM-bound limit* of an epoch is the time of exactly those GEMMs and nothing else.
:class:`GemmOnly` is a contender, so it is timed alternately with the others, under the same
conditions: ``GemmOnly()`` ("gemm-shapes") runs every GEMM of the epoch on preallocated operands
with ``out=``, each shape's calls back to back, so its time is the *sum of per-shape times* (the
limit the targets use); ``GemmOnly(by_shape=False)`` ("gemm-sequence") runs them in a training
step's order, which is a little slower (operands are no longer hot in cache). :func:`time_gemms`
times each distinct shape on its own, for the per-shape GFLOP/s table.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .contenders import Contender, Problem, Trial


@dataclass(frozen=True)
class Gemm:
    """``count`` calls of ``(m x k) @ (k x n)`` in the given role."""

    role: str  # "fwd", "dW" or "dX"
    layer: int  # 1-based
    m: int
    k: int
    n: int
    count: int

    @property
    def flops(self) -> int:
        """FLOPs of one call."""
        return 2 * self.m * self.k * self.n

    @property
    def shape(self) -> str:
        return f"({self.m}x{self.k})@({self.k}x{self.n})"


def epoch_gemms(n_rows: int, sizes: Sequence[int], batch_size: int) -> list[Gemm]:
    """Every GEMM of one epoch, in a training step's order (forward by layer, then backward
    from the last layer), once for the full batches and once for the remainder, if any."""
    full, rest = divmod(n_rows, batch_size)
    layers = [(i + 1, sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
    out: list[Gemm] = []
    for b, count in ((batch_size, full), (rest, 1)):
        if b == 0 or count == 0:
            continue
        out += [Gemm("fwd", layer, b, fan_in, fan_out, count) for layer, fan_in, fan_out in layers]
        for layer, fan_in, fan_out in reversed(layers):
            out.append(Gemm("dW", layer, fan_in, b, fan_out, count))
            if layer > 1:
                out.append(Gemm("dX", layer, b, fan_out, fan_in, count))
    return out


def epoch_flops(n_rows: int, sizes: Sequence[int], batch_size: int) -> int:
    """FLOPs of the epoch's GEMMs, summed from :func:`epoch_gemms`."""
    return sum(g.flops * g.count for g in epoch_gemms(n_rows, sizes, batch_size))


def closed_form_flops(n_rows: int, sizes: Sequence[int], first_layer_dx: bool = False) -> int:
    """``2 n (3 sum fan_in fan_out - sizes[0] sizes[1])`` (``+ sizes[0] sizes[1]`` back in if
    the first layer's input gradient is counted)."""
    macs = sum(a * b for a, b in itertools.pairwise(sizes))
    skipped = 0 if first_layer_dx else sizes[0] * sizes[1]
    return 2 * n_rows * (3 * macs - skipped)


# -- the operands, in the layouts the training loop uses ----------------------------------------
def _operands(g: Gemm, dtype: Any, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``(A, B, out)`` with A and B in the memory layout the loop sees.

    fwd: ``X`` (b x in, C order) @ ``W`` (in x out, C order);
    dW:  ``X.T`` (a transposed view of a C-order b x in batch) @ ``dZ`` (b x out);
    dX:  ``dZ`` (b x out) @ ``W.T`` (a transposed view of a C-order in x out weight).
    """

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    if g.role == "fwd":
        a, b = rand(g.m, g.k), rand(g.k, g.n)
    elif g.role == "dW":
        a, b = rand(g.k, g.m).T, rand(g.k, g.n)
    else:
        a, b = rand(g.m, g.k), rand(g.n, g.k).T
    return a, b, np.empty((g.m, g.n), dtype)


def time_gemms(
    gemms: Sequence[Gemm], dtype: Any = np.float32, block_s: float = 0.02, blocks: int = 5
) -> list[dict[str, Any]]:
    """Seconds per call of each distinct GEMM, the best of ``blocks`` blocks of >= ``block_s``
    seconds each (a limit, so the best, not the median), with its GFLOP/s and its share of the
    epoch (``count * seconds``)."""
    rng = np.random.default_rng(0)
    rows = []
    for g in gemms:
        a, b, out = _operands(g, dtype, rng)
        for _ in range(3):
            np.matmul(a, b, out=out)
        reps, elapsed = 1, 0.0
        while True:  # calibrate the block length
            start = time.perf_counter()
            for _ in range(reps):
                np.matmul(a, b, out=out)
            elapsed = time.perf_counter() - start
            if elapsed >= block_s or reps >= 1 << 16:
                break
            reps *= 2
        per_call = [elapsed / reps]
        for _ in range(blocks - 1):
            start = time.perf_counter()
            for _ in range(reps):
                np.matmul(a, b, out=out)
            per_call.append((time.perf_counter() - start) / reps)
        seconds = min(per_call)  # a limit: the best the GEMM can do here
        rows.append(
            {
                "role": g.role,
                "layer": g.layer,
                "shape": g.shape,
                "count": g.count,
                "gflop_per_call": g.flops / 1e9,
                "seconds_per_call": seconds,
                "gflops": g.flops / seconds / 1e9,
                "epoch_seconds": seconds * g.count,
            }
        )
    return rows


# -- the GEMM-only epoch, as a contender --------------------------------------------------------
class _GemmTrial(Trial):
    def __init__(self, problem: Problem, by_shape: bool) -> None:
        self.problem = problem
        rng = np.random.default_rng(0)
        gemms = epoch_gemms(problem.n, problem.sizes, problem.batch_size)
        ops = [(g.count, _operands(g, problem.X.dtype, rng)) for g in gemms]
        if by_shape:  # each shape's calls back to back: the sum of per-shape times
            self.plan = [(1, [op] * count) for count, op in ops]
        else:  # a training step's order, repeated per batch (full batches, then the rest)
            groups: dict[int, list[tuple[np.ndarray, ...]]] = {}
            counts: dict[int, int] = {}
            for g, (count, op) in zip(gemms, ops, strict=True):
                b = g.k if g.role == "dW" else g.m
                groups.setdefault(b, []).append(op)
                counts[b] = count
            self.plan = [(counts[b], group) for b, group in groups.items()]
        self.info = {"flops": epoch_flops(problem.n, problem.sizes, problem.batch_size)}

    def run(self) -> float:
        matmul = np.matmul
        for _ in range(self.problem.epochs):
            for count, group in self.plan:
                for _ in range(count):
                    for a, b, out in group:
                        matmul(a, b, out=out)
        return float("nan")

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError("the GEMM-only contenders train nothing")


class GemmOnly(Contender):
    """Only the epoch's GEMMs (NumPy ``matmul`` into preallocated outputs).

    ``by_shape=True`` ("gemm-shapes"): all calls of one shape back to back, then the next shape:
    the *sum of per-shape times*, the GEMM-bound limit. ``by_shape=False`` ("gemm-sequence"):
    the GEMMs in a training step's order, batch after batch (operands cool between shapes, as in
    a real step).
    """

    def __init__(self, by_shape: bool = True) -> None:
        self.by_shape = by_shape
        self.name = "gemm-shapes" if by_shape else "gemm-sequence"
        self.label = "the epoch's GEMMs alone, " + (
            "grouped by shape (sum of per-shape times)" if by_shape else "in step order"
        )

    def prepare(self, problem: Problem) -> Trial:
        return _GemmTrial(problem, self.by_shape)
