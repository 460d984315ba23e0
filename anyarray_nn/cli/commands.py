"""The commands: train, evaluate, gradcheck, backends and the digits demo."""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import datasets, metrics
from ..backend import BackendUnavailableError, auto_backend, backend_status, resolve
from ..gradcheck import gradcheck
from ..network import NN, load
from ..plotting import plot_history
from .common import BACKENDS_HINT, EXIT_CHECK_FAILED, EXIT_OK, UsageError, first_line
from .data import Data, load_data, subsample
from .report import confusion_table, metrics_table, scores

#: The demo's options and their defaults (the main job: ``anyarray-nn`` with no command).
DEMO_DEFAULTS: dict[str, Any] = {
    "backend": "auto",
    "epochs": 30,
    "seed": 0,
    "dtype": "float32",
    "quiet": False,
}


def _resolve_backend(backend: str, device: Any, dtype: str | None) -> Any:
    try:
        return resolve(backend, device, dtype or "float32")
    except BackendUnavailableError as exc:
        raise UsageError(first_line(exc), BACKENDS_HINT) from exc
    except ValueError as exc:
        raise UsageError(first_line(exc), BACKENDS_HINT) from exc


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _check_output_path(path: str, option: str) -> None:
    """Fail before training, not after, when ``path`` cannot be written."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"{option} {path!r} is a directory", "give a file name")
    if not parent.is_dir():
        raise UsageError(f"{option} {path!r}: directory {str(parent)!r} does not exist")


def cmd_train(args: argparse.Namespace) -> int:

    if args.plot is not None:
        if not _has_module("matplotlib"):
            raise UsageError(
                "--plot needs matplotlib, which is not installed",
                "pip install 'anyarray_nn[plot]', or leave out --plot",
            )
        _check_output_path(args.plot, "--plot")
    if args.save is not None:
        _check_output_path(args.save, "--save")
    backend = _resolve_backend(args.backend, args.device, args.dtype)
    data = load_data(args.data, args.test_size, args.data_seed, args.n_samples)
    data = subsample(data, args.limit, args.data_seed)
    n_out = 1 if data.regression else data.n_classes
    net = NN(
        [data.n_features, *args.layers, n_out],
        activation=args.activation,
        init=args.init,
        output="identity" if data.regression else "softmax",
        loss="mse" if data.regression else "cross_entropy",
        backend=backend,
        dtype=backend.dtype_name,  # NN's own default would override the Backend's dtype
        seed=args.seed,
        dropout=args.dropout,
        l1=args.l1,
        l2=args.l2,
    )
    say = print if args.verbose else (lambda *a, **k: None)
    say(f"data: {data.describe()}")
    say(f"model: {net}")
    start = time.perf_counter()
    history = net.fit(
        data.X_train,
        data.y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        validation_split=args.validation_split,
        verbose=args.verbose,
    )
    elapsed = time.perf_counter() - start
    epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    print(f"trained {epochs} in {elapsed:.2f} s on {net.backend}")
    train = scores(net, data.X_train, data.y_train, data.regression)
    test = scores(net, data.X_test, data.y_test, data.regression)
    print(metrics_table({"train": train, "test": test}))
    if args.save is not None:
        net.save(args.save)
        print(f"saved the model to {args.save}")
    if args.plot is not None:
        families = [f for f in ("loss", "accuracy", "r2") if f in history]
        sizes = ",".join(map(str, [data.n_features, *args.layers, n_out]))
        title = f"{data.name}: MLP {sizes}, {args.optimizer} lr {args.lr:g}"
        plot_history(history, metrics=families, path=args.plot, title=title)
        print(f"saved the training curves to {args.plot}")
    return EXIT_OK


def _check_compatible(net: Any, data: Data, model: str) -> None:
    hint = "evaluate a model on the dataset (and --data options) it was trained on"
    if net.n_features != data.n_features:
        raise UsageError(
            f"{model} expects {net.n_features} features but {data.name} has {data.n_features}",
            hint,
        )
    if data.regression and net.is_classifier:
        raise UsageError(f"{model} is a classifier but {data.name} is a regression set", hint)
    if not data.regression:
        if not net.is_classifier:
            raise UsageError(f"{model} is a regressor but {data.name} has class labels", hint)
        expected = 1 if net.output.name == "sigmoid" and data.n_classes == 2 else data.n_classes
        if net.n_outputs != expected:
            raise UsageError(
                f"{model} has {net.n_outputs} outputs but {data.name} has {data.n_classes} classes",
                hint,
            )


def cmd_evaluate(args: argparse.Namespace) -> int:

    _resolve_backend(args.backend, args.device, args.dtype)  # clear errors before reading
    net = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    data = load_data(args.data, args.test_size, args.data_seed, args.n_samples)
    _check_compatible(net, data, args.model)
    X, y = data.X_test, data.y_test
    print(f"model: {args.model}: {net}")
    print(f"data: {data.name} test split, {len(X)} samples")
    result = scores(net, X, y, data.regression)
    print(metrics_table({"test": result}))
    if data.regression:
        return EXIT_OK
    pred = net.predict_classes(X, batch_size=4096)
    print(f"{int(np.sum(pred == y))} of {len(y)} test samples classified correctly")
    labels = list(range(data.n_classes))
    print()
    print(metrics.classification_report(y, pred, labels=labels, target_names=data.class_names))
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(confusion_table(metrics.confusion_matrix(y, pred, labels=labels), data.class_names))
    return EXIT_OK


def gradcheck_data(net: Any, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs and targets that suit ``net``'s output and loss."""
    rng = np.random.default_rng([seed, 1])  # independent of the weight stream
    n, k = samples, net.n_outputs
    X = rng.normal(size=(n, net.n_features))
    loss, output = net.loss_fn.name, net.output.name
    if output == "softmax" and loss == "cross_entropy":
        y = rng.integers(0, k, size=n)
    elif loss == "cross_entropy":
        y = rng.dirichlet(np.ones(k), size=n)  # probability rows
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(n, k)).astype(np.float64)
    elif output == "identity":
        y = rng.normal(size=(n, k))
    else:
        y = rng.uniform(size=(n, k))
    return X, y


def cmd_gradcheck(args: argparse.Namespace) -> int:
    net = NN(
        [args.inputs, *args.layers, args.outputs],
        activation=args.activation,
        output=args.output,
        loss=args.loss,
        backend="numpy",
        dtype="float64",
        seed=args.seed,
        l1=args.l1,
        l2=args.l2,
    )
    X, y = gradcheck_data(net, args.samples, args.seed)
    print(f"gradcheck: {net}, {args.samples} samples, eps {args.eps:g}")
    with np.errstate(all="ignore"):  # a NaN result is reported as a failure below
        report = gradcheck(net, X, y, eps=args.eps, per_parameter=True)
    print(report)
    worst = report.max_relative_error
    if worst < args.tol:  # False for NaN
        print(f"PASS: max relative error {worst:.3e} < tol {args.tol:g}")
        return EXIT_OK
    why = (
        "backprop disagrees with central differences"
        if math.isfinite(worst)
        else "the loss or its gradients are not finite (does --loss suit --output?)"
    )
    print(f"FAIL: max relative error {worst:.3e} is not below tol {args.tol:g}: {why}")
    return EXIT_CHECK_FAILED


def cmd_backends(args: argparse.Namespace) -> int:
    status = backend_status()
    for name, why in status.items():
        print(f"{name:<18}{'available' if why is None else 'unavailable: ' + why}")
    print(f"{'auto':<18}-> {auto_backend()}")
    return EXIT_OK


def _run_demo(backend: str, epochs: int, seed: int, dtype: str, quiet: bool) -> int:
    _resolve_backend(backend, None, dtype)
    demo(backend, epochs, seed, dtype, verbose=0 if quiet else 1)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    return _run_demo(args.backend, args.epochs, args.seed, args.dtype, args.quiet)


def cmd_default(args: argparse.Namespace) -> int:
    """No command: the demo, with the options given before any command."""
    given = {name: getattr(args, "demo_" + name) for name in DEMO_DEFAULTS}
    values = {n: DEMO_DEFAULTS[n] if v is None else v for n, v in given.items()}
    return _run_demo(**values)


def demo(
    backend: str = "auto",
    epochs: int = 30,
    seed: int = 0,
    dtype: str = "float32",
    verbose: int = 1,
) -> float:
    """Train a 64-64-32-10 ReLU MLP with Adam on scikit-learn's digits (10% of the training
    images held out for validation); print progress; return the test accuracy."""
    X_train, X_test, y_train, y_test = datasets.load_digits(split=True, seed=seed)
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
