"""The ``export`` command: a saved model as an ONNX file (see :mod:`anyarray_nn.export`)."""

from __future__ import annotations

import argparse
import os

from ..export import OUTPUT_KINDS, export_onnx
from ..network import load
from .common import EXIT_OK, UsageError, check_output_path
from .record import Record


def add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a file written by 'train --save'")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument(
        "--outputs",
        choices=OUTPUT_KINDS,
        default="proba",
        help="proba: probabilities (classifiers) or values (regressors); label: the predicted "
        "label; both: label, then probabilities (default: proba)",
    )
    p.add_argument(
        "--dtype", choices=("float32", "float64"), default=None, help="default: the model's"
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: ndonnx's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.onnx")


def cmd_export(args: argparse.Namespace) -> int:
    """Write MODEL as OUT.onnx: the features' scaling from training, the network, and the
    class labels from its record."""
    if os.path.exists(args.out) and not args.overwrite:
        raise UsageError(f"{args.out!r} exists", "pick another name, or pass --overwrite")
    check_output_path(args.out, "OUT.onnx")
    net = load(args.model, backend="numpy")
    record = Record.of(net.metadata)
    classes = record.classes if record is not None and net.is_classifier else []
    n_classes = 2 if net.n_outputs == 1 else net.n_outputs
    if len(classes) == n_classes:
        net.metadata = {**net.metadata, "classes": classes}
    scaler = record.scaler if record is not None else None
    scaling = None if scaler is None else (scaler.mean, scaler.scale)
    export_onnx(
        net,
        args.out,
        dtype=args.dtype,
        opset=args.opset,
        outputs=args.outputs,
        input_scaling=scaling,
        overwrite=args.overwrite,
    )
    scaled = "; it scales raw features as training did" if scaling is not None else ""
    print(f"wrote {args.out} (input 'X', {net.n_features} features{scaled})")
    return EXIT_OK
