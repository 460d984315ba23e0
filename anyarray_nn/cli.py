"""Command line: ``python -m anyarray_nn`` (or ``anyarray-nn``) runs the digits demo."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from .backend import BackendUnavailableError, backend_status, resolve


def _load_digits(seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 -> 0..1
    return tuple(train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y))


def demo(
    backend: str = "auto",
    epochs: int = 30,
    seed: int = 0,
    dtype: str = "float32",
    verbose: int = 1,
) -> float:
    """Train a 64-64-32-10 ReLU MLP with Adam on scikit-learn's digits (10% of the training
    images held out for validation); print progress; return the test accuracy."""
    from .network import NN

    X_train, X_test, y_train, y_test = _load_digits(seed)
    net = NN([64, 64, 32, 10], activation="relu", backend=backend, dtype=dtype, seed=seed)
    print(f"anyarray_nn digits demo on {net.backend}")
    print(f"data: {len(X_train)} train / {len(X_test)} test images of 8x8 digits; model: {net}")
    start = time.perf_counter()
    net.fit(
        X_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        optimizer="adam",
        lr=3e-3,
        validation_split=0.1,
        verbose=verbose,
    )
    elapsed = time.perf_counter() - start
    result = net.evaluate(X_test, y_test)
    print(
        f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f} "
        f"({epochs} epochs in {elapsed:.2f} s)"
    )
    return result["accuracy"]


def _backends() -> int:
    for name, why in backend_status().items():
        print(f"{name:<18}{'available' if why is None else 'unavailable: ' + why}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="anyarray-nn", description="Dense neural networks on any Array API backend."
    )
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="train an MLP on scikit-learn's digits (the default)")
    for p in (parser, d):
        p.add_argument(
            "--backend", default="auto", help="numpy, torch, cupy, array_api_strict, auto"
        )
        p.add_argument("--epochs", type=int, default=30)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    sub.add_parser("backends", help="list backends and whether they are usable here")
    args = parser.parse_args(argv)
    if args.command == "backends":
        return _backends()
    try:
        resolve(args.backend, None, args.dtype)
        demo(args.backend, args.epochs, args.seed, args.dtype)
    except (ValueError, BackendUnavailableError) as exc:
        print(f"anyarray-nn: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
