"""Metrics and the tables the command line prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import metrics


def scores(net: Any, X: np.ndarray, y: np.ndarray, regression: bool) -> dict[str, float]:
    """The metrics the CLI reports, in display order (host-side, from ``anyarray_nn.metrics``)."""

    loss = net.evaluate(X, y, batch_size=4096)["loss"]
    if regression:
        pred = net.predict(X, batch_size=4096)
        return {"loss": loss, "mse": metrics.mse(y, pred), "r2": metrics.r2_score(y, pred)}
    pred = net.predict_classes(X, batch_size=4096)
    p, r, f1 = metrics.precision_recall_f1(y, pred, average="macro")
    return {
        "loss": loss,
        "accuracy": metrics.accuracy(y, pred),
        "precision (macro)": p,
        "recall (macro)": r,
        "f1 (macro)": f1,
    }


def _fmt(value: float) -> str:
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4f}"


def metrics_table(columns: dict[str, dict[str, float]]) -> str:
    """Rows of metrics, one column per data part, e.g. ``{"train": {...}, "test": {...}}``."""
    names = list(next(iter(columns.values())))
    width = max(len("metric"), *(len(n) for n in names))
    cells = {part: [_fmt(values[n]) for n in names] for part, values in columns.items()}
    widths = {part: max(len(part), *(len(c) for c in col)) for part, col in cells.items()}
    lines = [f"{'metric':<{width}}" + "".join(f"  {p:>{widths[p]}}" for p in columns)]
    for i, n in enumerate(names):
        lines.append(f"{n:<{width}}" + "".join(f"  {cells[p][i]:>{widths[p]}}" for p in columns))
    return "\n".join(lines)


def confusion_table(cm: np.ndarray, class_names: Sequence[str]) -> str:
    """A confusion matrix as text: rows are true classes, columns predicted classes (by index)."""
    k = cm.shape[0]
    corner = "true \\ pred"
    rows = [f"{i} {n}" if n != str(i) else str(i) for i, n in enumerate(class_names)]
    label_w = max(len(corner), *(len(r) for r in rows))
    cell_w = max(len(str(k - 1)), len(str(int(cm.max(initial=0)))))
    head = f"{corner:<{label_w}}" + "".join(f" {j:>{cell_w}}" for j in range(k))
    body = [
        f"{rows[i]:<{label_w}}" + "".join(f" {int(c):>{cell_w}}" for c in cm[i]) for i in range(k)
    ]
    return "\n".join([head, *body])
