"""Figures for training curves, confusion matrices, decision boundaries and activations.

matplotlib is an optional extra (``pip install 'anyarray_nn[plot]'``) and is imported inside each
function. Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot state, no
global backend), returns it, and saves it as a PNG when given ``path=``. In a notebook the returned
figure displays itself; in a script, save it or attach it to your own canvas.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_activations",
    "plot_confusion_matrix",
    "plot_decision_boundary",
    "plot_history",
]

PathLike = str | os.PathLike[str] | None
#: The elementwise activations plotted by default (softmax is row-wise and has no f'(z) curve).
DEFAULT_ACTIVATIONS: tuple[str, ...] = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu")


def _figure(figsize: tuple[float, float]) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "Plotting needs matplotlib, an optional extra: pip install 'anyarray_nn[plot]' "
            "(or pip install matplotlib)."
        ) from exc
    return Figure(figsize=figsize, layout="constrained")


def _save(fig: Figure, path: PathLike) -> Figure:
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def _class_colors(k: int) -> list[Any]:
    import matplotlib

    if k <= 10:
        return list(matplotlib.colormaps["tab10"].colors[:k])
    if k <= 20:
        return list(matplotlib.colormaps["tab20"].colors[:k])
    return [matplotlib.colormaps["viridis"](i / (k - 1)) for i in range(k)]


# -- training curves --------------------------------------------------------------------------


def _history_dict(history: Any) -> dict[str, list[float]]:
    """Numeric per-epoch series from a mapping, ``.history``/``.history_``, or ``.loss_curve_``."""
    if isinstance(history, Mapping):
        source = history
    elif isinstance(getattr(history, "history", None), Mapping):
        source = history.history
    elif isinstance(getattr(history, "history_", None), Mapping):
        source = history.history_
    elif getattr(history, "loss_curve_", None) is not None:
        source = {"loss": history.loss_curve_}
    else:
        raise TypeError(
            "history must be a mapping like {'loss': [...], 'val_loss': [...]}, or an object with "
            f"a .history mapping (e.g. a History callback); got {type(history).__name__}."
        )
    series = {}
    for key, values in source.items():
        arr = np.asarray(values)
        if arr.ndim == 1 and arr.shape[0] > 0 and np.issubdtype(arr.dtype, np.number):
            series[str(key)] = arr.astype(np.float64).tolist()
    return series


def plot_history(
    history: Any,
    metrics: Sequence[str] | None = None,
    path: PathLike = None,
    title: str | None = None,
) -> Figure:
    """Per-epoch training curves: one axes per metric family, train and validation lines.

    ``history`` maps names to per-epoch lists, Keras style: ``"loss"``, ``"val_loss"``,
    ``"accuracy"``, ``"val_accuracy"``, ``"r2"``, ... (an object with a ``.history`` mapping,
    or a fitted ``NN`` with ``loss_curve_``, also works). ``metrics`` picks the families (e.g.
    ``("loss", "accuracy")``); by default every family found, loss first. ``"x"`` is drawn as
    "train" and ``"val_x"`` as "validation".
    """
    series = _history_dict(history)
    families: list[str] = []
    for key in series:
        family = key[4:] if key.startswith("val_") else key
        if family not in families and family not in ("epoch", "epochs"):
            families.append(family)
    families.sort(key=lambda f: f != "loss")  # loss first, the rest in the order found
    if metrics is None:
        chosen = families
    else:
        chosen = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [m for m in chosen if m not in families]
        if unknown:
            raise ValueError(
                f"No per-epoch values for {unknown} in the history; it has: "
                f"{', '.join(series) or 'nothing'}."
            )
    if not chosen:
        raise ValueError("The history holds no per-epoch values to plot.")
    fig = _figure((4.5 * len(chosen), 3.5))
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    for ax, family in zip(axes, chosen, strict=True):
        for key, label, style in ((family, "train", "-"), (f"val_{family}", "validation", "--")):
            if key in series:
                values = series[key]
                epochs = np.arange(1, len(values) + 1)
                marker = "o" if len(values) < 30 else None
                ax.plot(epochs, values, style, marker=marker, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(family)
        ax.set_title(family)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# -- confusion matrix -------------------------------------------------------------------------


def plot_confusion_matrix(
    cm: Any,
    labels: Sequence[Any] | None = None,
    *,
    y_pred: Any = None,
    normalize: str | None = None,
    path: PathLike = None,
    title: str = "Confusion matrix",
    cmap: str = "Blues",
) -> Figure:
    """A confusion matrix as a heat map with the count (or rate) written in each cell.

    Pass a square matrix ``cm`` (rows true, columns predicted), or the labels themselves as a
    tuple ``(y_true, y_pred)`` or as ``cm=y_true, y_pred=y_pred``. ``labels`` names the classes
    (for raw labels, also selects and orders them). ``normalize``: ``"true"`` (rows sum to 1),
    ``"pred"`` (columns) or ``"all"``.
    """
    from .metrics import confusion_matrix

    if y_pred is None and isinstance(cm, tuple) and len(cm) == 2:
        cm, y_pred = cm
    if y_pred is not None:
        y_true = np.asarray(cm)
        if labels is None:
            labels = np.unique(np.concatenate([y_true.ravel(), np.asarray(y_pred).ravel()]))
        matrix = confusion_matrix(y_true, y_pred, labels=labels).astype(np.float64)
    else:
        matrix = np.asarray(cm, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ValueError(
                f"cm must be a square (k, k) matrix, got shape {matrix.shape}. To plot from "
                "labels pass (y_true, y_pred) as a tuple."
            )
        if labels is None:
            labels = list(range(matrix.shape[0]))
    names = [str(label) for label in labels]
    k = matrix.shape[0]
    if len(names) != k:
        raise ValueError(f"labels has {len(names)} names for a {k} x {k} matrix.")
    fmt = "{:.0f}"
    if normalize is not None:
        axis = {"true": 1, "pred": 0, "all": None}
        if normalize not in axis:
            raise ValueError(f"normalize must be 'true', 'pred', 'all' or None, got {normalize!r}.")
        totals = matrix.sum(axis=axis[normalize], keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals != 0)
        fmt = "{:.2f}"
    size = max(4.0, 0.5 * k + 2.5)
    fig = _figure((size + 1.0, size))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap=cmap, interpolation="nearest")
    fig.colorbar(image, ax=ax)
    rotation = 45 if max(map(len, names)) > 3 else 0
    ax.set_xticks(range(k), names, rotation=rotation, ha="right" if rotation else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title(title)
    if k <= 30:  # beyond that the numbers would not be legible
        high = matrix.max() / 2.0
        for i in range(k):
            for j in range(k):
                color = "white" if matrix[i, j] > high else "black"
                ax.text(j, i, fmt.format(matrix[i, j]), ha="center", va="center", color=color)
    return _save(fig, path)


# -- decision boundary ------------------------------------------------------------------------


def plot_decision_boundary(
    model: Any,
    X: Any,
    y: Any = None,
    resolution: int = 200,
    path: PathLike = None,
    title: str = "Decision boundary",
    margin: float = 0.1,
    feature_names: Sequence[str] = ("x0", "x1"),
) -> Figure:
    """The regions a classifier assigns to each class over the plane, with the data on top.

    ``model`` is an object with ``predict_classes`` (e.g. an :class:`~anyarray_nn.NN`) or a
    callable mapping an ``(m, 2)`` array to ``m`` labels (an ``(m, k)`` score matrix is reduced by
    argmax). ``X`` has two features; ``y``, if given, colours the points by class. The grid spans
    the data's range plus ``margin`` of it on each side, at ``resolution`` points per axis.
    """
    points = np.asarray(X, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(
            f"plot_decision_boundary needs X of shape (n, 2), got {points.shape}. Project "
            "higher-dimensional data to 2-D first."
        )
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}.")
    predict = _predict_fn(model)
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - pad, hi + pad
    g0, g1 = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    xx, yy = np.meshgrid(g0, g1)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    regions = _as_labels(predict(grid), grid.shape[0])
    truth = None if y is None else np.asarray(y).ravel()
    if truth is not None and truth.shape[0] != points.shape[0]:
        raise ValueError(f"X has {points.shape[0]} rows but y has {truth.shape[0]} labels.")
    classes = np.unique(regions if truth is None else np.concatenate([regions, truth]))
    colors = _class_colors(classes.shape[0])

    from matplotlib.colors import ListedColormap

    fig = _figure((6.0, 5.0))
    ax = fig.add_subplot()
    step = (hi - lo) / (resolution - 1)  # grid points are pixel centres
    extent = (lo[0] - step[0] / 2, hi[0] + step[0] / 2, lo[1] - step[1] / 2, hi[1] + step[1] / 2)
    ax.imshow(
        np.searchsorted(classes, regions).reshape(resolution, resolution),
        origin="lower",
        extent=extent,
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=classes.shape[0] - 0.5,
        alpha=0.35,
        interpolation="nearest",
        aspect="auto",
    )
    _scatter_classes(ax, points, truth, classes, colors)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def _scatter_classes(
    ax: Any, points: np.ndarray, truth: np.ndarray | None, classes: np.ndarray, colors: list
) -> None:
    """The data points, coloured by their true class (black when there are no labels)."""
    if truth is None:
        ax.scatter(points[:, 0], points[:, 1], s=12, c="black", label="data")
        return
    for color, label in zip(colors, classes, strict=True):
        mine = truth == label
        if mine.any():
            ax.scatter(
                points[mine, 0],
                points[mine, 1],
                s=14,
                color=color,
                edgecolors="black",
                linewidths=0.4,
                label=f"class {label}",
            )


def _predict_fn(model: Any) -> Callable[[np.ndarray], Any]:
    if hasattr(model, "predict_classes"):
        return model.predict_classes
    if callable(model):
        return model
    raise TypeError(
        "model must have a predict_classes method (e.g. an anyarray_nn.NN) or be a callable "
        f"mapping an (m, 2) array to m labels; got {type(model).__name__}."
    )


def _as_labels(out: Any, m: int) -> np.ndarray:
    labels = np.asarray(out)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = np.argmax(labels, axis=1)
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    if labels.shape != (m,):
        raise ValueError(
            f"The model returned shape {np.shape(out)} for {m} grid points; it must return one "
            "label per point."
        )
    return labels


# -- activations ------------------------------------------------------------------------------


def plot_activations(
    names: Iterable[Any] | None = None,
    x_range: tuple[float, float] = (-4.0, 4.0),
    n_points: int = 401,
    path: PathLike = None,
    ncols: int = 3,
) -> Figure:
    """Each activation ``f(z)`` and its derivative ``f'(z)``, one axes per activation.

    ``names`` are activation names or instances (default: all elementwise ones). Values come from
    the library's own code on the NumPy backend in float64. Softmax is row-wise, with a Jacobian
    rather than a derivative curve, so it cannot be plotted here.
    """
    from . import activations
    from .backend import resolve, to_numpy

    chosen = [activations.get(n) for n in (DEFAULT_ACTIVATIONS if names is None else names)]
    if not chosen:
        raise ValueError("names is empty; pass activation names such as ['relu', 'tanh'].")
    if any(act.name == "softmax" for act in chosen):
        raise ValueError("softmax is not elementwise and has no f'(z) curve; leave it out.")
    backend = resolve("numpy", None, "float64")
    xp = backend.xp
    z_host = np.linspace(float(x_range[0]), float(x_range[1]), int(n_points))
    z = backend.asarray(z_host)
    ncols = max(1, min(int(ncols), len(chosen)))
    nrows = -(-len(chosen) // ncols)
    fig = _figure((3.6 * ncols, 3.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, act in zip(axes, chosen, strict=False):
        a = act.forward(xp, z)
        slope = act.derivative(xp, z, a)
        ax.plot(z_host, np.asarray(to_numpy(a)), label="f(z)")
        ax.plot(z_host, np.asarray(to_numpy(slope)), "--", label="f'(z)")
        config = ", ".join(f"{k}={v:g}" for k, v in act.config().items() if k != "name")
        ax.set_title(f"{act.name} ({config})" if config else act.name)
        ax.set_xlabel("z")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(chosen) :]:
        ax.remove()
    return _save(fig, path)
