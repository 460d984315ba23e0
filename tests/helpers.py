"""Shared test helpers: data that keeps ReLU-family pre-activations away from their kink, and
the command line run in-process (its exit code and output, its one-line errors)."""

from __future__ import annotations

import numpy as np

import anyarray_nn as ann

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu"]
# (output activation, loss): fused pairs, the regression pair and non-fused pairs
PAIRS = [
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
    ("identity", "mse"),
    ("softmax", "mse"),
    ("sigmoid", "mse"),
    ("sigmoid", "cross_entropy"),
]
WIDTHS = [7, 5, 9, 4, 6, 8]


def make_targets(output: str, loss: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if output == "softmax":
        return rng.integers(0, k, size=n)
    if output == "sigmoid":
        return rng.integers(0, 2, size=(n, k)).astype(float)
    return rng.normal(size=(n, k))


def away_from_kinks(net: ann.NN, X: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Rows of X whose every hidden pre-activation is at least ``margin`` from 0."""
    ref = net.copy(backend="numpy", dtype="float64")
    ctx = ann.Pass()
    ref.forward(ref.backend.asarray(X), ctx)
    keep = np.ones(len(X), dtype=bool)
    for layer in ref.layers[:-1]:
        _, z, _ = ctx.saved(layer)  # Dense saves (x, z, a)
        keep &= np.min(np.abs(ann.to_numpy(z)), axis=1) > margin
    return X[keep]


def run_main(capsys, *argv) -> tuple[int, str, str]:
    """``anyarray-nn ARGV`` in this process: ``(exit code, stdout, stderr)``."""
    from anyarray_nn.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str, *fragments: str) -> str:
    """Assert the CLI's error rule (exit 2, one line, no traceback, naming ``fragments``);
    returns the line."""
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("anyarray-nn") and ": error: " in lines[0], err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]
