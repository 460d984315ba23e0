"""The commands that use a saved model or none: evaluate, predict, gradcheck, backends."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics, tabular
from ..backend import BACKENDS, auto_backend, backend_status
from ..gradcheck import gradcheck
from ..network import NN, load
from .common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    UsageError,
    check_output_path,
    refuse_existing_output,
    refuse_overwriting_input,
)
from .data import FILE_TYPES, Data
from .record import Record, evaluation_data, prediction_features
from .report import confusion_table, metrics_table, scores
from .train import resolve_backend


def _check_compatible(net: Any, data: Data, model: str) -> None:
    hint = "evaluate a model on the kind of data it was trained on"
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


def _load_model(args: argparse.Namespace) -> NN:
    resolve_backend(args.backend, args.device, args.dtype)  # clear errors before reading
    return load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Scores, a per-class report and a confusion matrix on held-out (or new) data."""
    net = _load_model(args)
    data = evaluation_data(args, Record.of(net.metadata, args.model), args.model)
    _check_compatible(net, data, args.model)
    X, y = data.X_test, data.y_test
    part = data.source.part if data.source is not None else "test split"
    print(f"model: {args.model}: {net}")
    print(f"data: {data.name}, {part}, {len(X)} samples")
    with np.errstate(all="ignore"):
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


def cmd_predict(args: argparse.Namespace) -> int:
    """Labels (or probabilities, or numbers) for every row of ``--data``, to ``--out``."""
    try:
        tabular.output_type(args.out)
    except tabular.DataFileError as exc:
        raise UsageError(f"--out {args.out!r}: {exc}", exc.hint) from None
    if args.out != "-":
        check_output_path(args.out, "--out")
    if not args.data.is_file:
        raise UsageError(
            f"predict reads the rows of a data file, not the dataset {args.data}",
            f"give --data FILE ({FILE_TYPES})",
        )
    refuse_overwriting_input(args.out, "--out", [args.data.path, args.model])
    refuse_existing_output(args.out, "--out", args.overwrite)
    net = _load_model(args)
    record = Record.of(net.metadata, args.model)
    X = prediction_features(args, record, net)
    values, columns, what = _predictions(net, X, record, args)
    tabular.write_predictions(args.out, values, columns)
    if args.out != "-":
        print(f"wrote {len(X)} {what} to {args.out}")
    return EXIT_OK


def _predictions(
    net: NN, X: np.ndarray, record: Record | None, args: argparse.Namespace
) -> tuple[np.ndarray, list[str], str]:
    """``(values, column names, what they are)`` for ``predict``."""
    with np.errstate(all="ignore"):
        out = net.predict(X, batch_size=4096)
    name = (record.target if record is not None else None) or "prediction"
    if tabular.is_data_file(name):  # labels from a second .npy file: name the column after it
        name = Path(name).stem
    if not net.is_classifier:
        if args.proba:
            raise UsageError(f"{args.model} is a regressor: it has no probabilities")
        if out.shape[1] == 1:
            return out[:, 0], [name], "predictions"
        return out, [f"{name}_{j}" for j in range(out.shape[1])], "predictions"
    n_classes = 2 if out.shape[1] == 1 else out.shape[1]
    classes = record.classes if record is not None else []
    if len(classes) != n_classes:
        classes = list(range(n_classes))
    if args.proba:
        columns = [str(c) for c in classes] if out.shape[1] == n_classes else ["proba"]
        return out, columns, "rows of class probabilities"
    index = net.predict_classes(X, batch_size=4096)
    labels = np.asarray([classes[i] for i in index.tolist()])
    return labels, [name], "predicted labels"


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
    """Backprop against central differences on a random float64 network; exit 1 above --tol."""
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
    """Each backend: usable here, or why not; and what ``auto`` picks."""
    status = backend_status()
    for name, why in status.items():
        state = "available" if why is None else "unavailable: " + why
        purpose = BACKENDS[name].purpose
        if purpose is not None:  # ndonnx: export only
            state = f"not for training or running: it {purpose}; {state}"
        print(f"{name:<18}{state}")
    print(f"{'auto':<18}-> {auto_backend()}")
    return EXIT_OK
