"""anyarray_nn.plotting: figure content (lines, labels, legends, images) and saved PNGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip(
    "matplotlib", reason="matplotlib not installed (pip install 'anyarray_nn[plot]')"
)

import matplotlib.image
from matplotlib.figure import Figure
from scipy.special import expit
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from anyarray_nn import plotting


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def assert_png_not_blank(path: Path, fig: Figure) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    img = matplotlib.image.imread(path)
    width, height = fig.get_size_inches() * 100  # saved at dpi=100
    assert img.shape[:2] == (round(height), round(width))
    rgb = img[..., :3]
    assert rgb.std() > 0.02  # not one flat colour
    assert np.mean(rgb.min(axis=-1) < 0.9) > 0.01  # more than a few non-white pixels


# -- plot_history -----------------------------------------------------------------------------

HISTORY = {
    "loss": [1.0, 0.6, 0.4, 0.3, 0.25],
    "val_loss": [1.1, 0.7, 0.5, 0.45, 0.44],
    "accuracy": [0.5, 0.7, 0.8, 0.85, 0.9],
    "val_accuracy": [0.45, 0.65, 0.75, 0.8, 0.82],
}


def test_plot_history_one_axes_per_family_with_train_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "history.png"
    fig = plotting.plot_history(HISTORY, path=path, title="run 1")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax, family in zip(fig.axes, ["loss", "accuracy"], strict=True):
        lines = ax.get_lines()
        assert len(lines) == 2
        assert [line.get_label() for line in lines] == ["train", "validation"]
        assert legend_texts(ax) == ["train", "validation"]
        np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3, 4, 5])
        np.testing.assert_allclose(lines[0].get_ydata(), HISTORY[family])
        np.testing.assert_allclose(lines[1].get_ydata(), HISTORY[f"val_{family}"])
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == family
    assert fig.get_suptitle() == "run 1"
    assert_png_not_blank(path, fig)


def test_plot_history_from_object_regression_and_selection() -> None:
    fitted = SimpleNamespace(history={"r2": [0.1, 0.5, 0.9], "loss": [3.0, 2.0, 1.0], "lr": 0.1})
    fig = plotting.plot_history(fitted)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "r2"]  # loss first; scalar lr dropped
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]
    assert legend_texts(fig.axes[1]) == ["train"]
    fig = plotting.plot_history(HISTORY, metrics=("accuracy",))
    assert [ax.get_title() for ax in fig.axes] == ["accuracy"]
    fig = plotting.plot_history({"val_loss": [2.0, 1.0]})  # validation only
    assert legend_texts(fig.axes[0]) == ["validation"]
    fig = plotting.plot_history(SimpleNamespace(loss_curve_=[0.9, 0.5]))  # a fitted NN
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [0.9, 0.5])


def test_plot_history_errors() -> None:
    with pytest.raises(ValueError, match=r"No per-epoch values for \['r2'\].*loss, val_loss"):
        plotting.plot_history(HISTORY, metrics=["loss", "r2"])
    with pytest.raises(TypeError, match="mapping"):
        plotting.plot_history([1.0, 2.0])
    with pytest.raises(ValueError, match="no per-epoch values"):
        plotting.plot_history({"loss": []})


# -- plot_confusion_matrix --------------------------------------------------------------------


def cell_texts(ax) -> dict[tuple[int, int], str]:
    return {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }


def test_plot_confusion_matrix_from_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, 3, 60))
    ref = sk_confusion_matrix(y_true, y_pred)
    path = tmp_path / "cm.png"
    fig = plotting.plot_confusion_matrix((y_true, y_pred), path=path)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), ref)
    texts = cell_texts(ax)
    assert len(texts) == 9
    for (i, j), text in texts.items():
        assert text == str(ref[i, j])
    assert ax.get_xlabel() == "Predicted label" and ax.get_ylabel() == "True label"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert ax.get_title() == "Confusion matrix"
    assert len(fig.axes) == 2  # heat map and colour bar
    assert_png_not_blank(path, fig)
    # the same through the keyword form
    again = plotting.plot_confusion_matrix(y_true, y_pred=y_pred)
    np.testing.assert_array_equal(again.axes[0].images[0].get_array(), ref)


def test_plot_confusion_matrix_from_matrix_with_names_and_normalized() -> None:
    cm = np.array([[5, 1, 0], [2, 6, 2], [0, 0, 4]])
    fig = plotting.plot_confusion_matrix(cm, labels=["cat", "dog", "emu"], normalize="true")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), cm / cm.sum(axis=1, keepdims=True))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "emu"]
    texts = cell_texts(ax)
    assert texts[(1, 1)] == "0.60" and texts[(0, 0)] == "0.83" and texts[(2, 2)] == "1.00"
    col = plotting.plot_confusion_matrix(cm, normalize="pred").axes[0].images[0].get_array()
    np.testing.assert_allclose(col, cm / cm.sum(axis=0, keepdims=True))


def test_plot_confusion_matrix_errors() -> None:
    with pytest.raises(ValueError, match="square"):
        plotting.plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels has 2 names for a 3 x 3"):
        plotting.plot_confusion_matrix(np.eye(3), labels=["a", "b"])
    with pytest.raises(ValueError, match="normalize"):
        plotting.plot_confusion_matrix(np.eye(2), normalize="rows")


# -- plot_decision_boundary -------------------------------------------------------------------


def _two_blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 30)
    X = rng.normal(size=(60, 2)) + np.where(y[:, None] == 1, 2.0, -2.0)
    return X, y


def test_plot_decision_boundary_regions_are_the_model_on_the_grid(tmp_path: Path) -> None:
    X, y = _two_blobs()

    def above_diagonal(P: np.ndarray) -> np.ndarray:
        return (P[:, 0] + P[:, 1] > 0).astype(int)

    path = tmp_path / "boundary.png"
    fig = plotting.plot_decision_boundary(above_diagonal, X, y, resolution=50, path=path)
    ax = fig.axes[0]
    # the test's own grid: the data range plus 10% on each side, 50 points per axis
    lo, hi = X.min(0), X.max(0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 50), np.linspace(lo[1], hi[1], 50))
    np.testing.assert_array_equal(ax.images[0].get_array(), (xx + yy > 0).astype(int))
    assert ax.images[0].origin == "lower"  # row 0 of the grid is the bottom of the plot
    x0, x1, y0, y1 = ax.images[0].get_extent()
    assert x0 < X[:, 0].min() and x1 > X[:, 0].max() and y0 < X[:, 1].min() and y1 > X[:, 1].max()
    assert legend_texts(ax) == ["class 0", "class 1"]
    assert len(ax.collections) == 2
    np.testing.assert_allclose(ax.collections[1].get_offsets(), X[y == 1])
    assert ax.get_xlabel() == "x0" and ax.get_ylabel() == "x1"
    assert_png_not_blank(path, fig)


def test_plot_decision_boundary_with_predict_classes_and_probabilities() -> None:
    X, y = _two_blobs()
    y_signed = np.where(y == 1, 1, -1)

    class Model:
        def __init__(self) -> None:
            self.calls: list[tuple[int, ...]] = []

        def predict_classes(self, P: np.ndarray) -> np.ndarray:
            self.calls.append(P.shape)
            return np.where(P[:, 0] > 0, 1, -1)

    model = Model()
    fig = plotting.plot_decision_boundary(model, X, y_signed, resolution=30)
    assert model.calls == [(900, 2)]  # one batched call over the whole grid
    grid = fig.axes[0].images[0].get_array()
    assert set(np.unique(grid)) == {0, 1}  # class -1 -> colour 0, class 1 -> colour 1
    assert legend_texts(fig.axes[0]) == ["class -1", "class 1"]

    def probabilities(P: np.ndarray) -> np.ndarray:  # (m, 3) scores -> argmax
        return np.stack([P[:, 0], P[:, 1], np.zeros(len(P))], axis=1)

    fig = plotting.plot_decision_boundary(probabilities, X, resolution=20)
    assert legend_texts(fig.axes[0]) == ["data"]
    assert set(np.unique(fig.axes[0].images[0].get_array())) == {0, 1, 2}


def test_plot_decision_boundary_with_a_real_network() -> None:
    import anyarray_nn as ann

    X, y = _two_blobs()
    net = ann.NN(
        [2, 8, 2], activation="tanh", output="softmax", backend="numpy", dtype="float64", seed=0
    )
    fig = plotting.plot_decision_boundary(net, X, y, resolution=25)
    lo, hi = X.min(0), X.max(0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 25), np.linspace(lo[1], hi[1], 25))
    P = np.column_stack([xx.ravel(), yy.ravel()])
    # independent forward pass from the weights: tanh hidden layer, argmax of the logits
    W1, b1, W2, b2 = net.get_weights()
    expected = np.argmax(np.tanh(P @ W1 + b1) @ W2 + b2, axis=1).reshape(25, 25)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), expected)


def test_plot_decision_boundary_errors() -> None:
    X, y = _two_blobs()
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        plotting.plot_decision_boundary(lambda P: P[:, 0] > 0, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="one label per point"):
        plotting.plot_decision_boundary(lambda P: np.zeros(3), X, resolution=10)
    with pytest.raises(ValueError, match="60 rows but y has 59"):
        plotting.plot_decision_boundary(lambda P: P[:, 0] > 0, X, y[:-1], resolution=10)
    with pytest.raises(TypeError, match="predict_classes"):
        plotting.plot_decision_boundary(object(), X)


# -- plot_activations -------------------------------------------------------------------------


def test_plot_activations_curves_match_closed_forms(tmp_path: Path) -> None:
    path = tmp_path / "activations.png"
    fig = plotting.plot_activations(n_points=201, path=path)
    expected = {
        "identity": (lambda z: z, lambda z: np.ones_like(z)),
        "sigmoid": (expit, lambda z: expit(z) * (1 - expit(z))),
        "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
        "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
        "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1, 0.01)),
        "elu": (lambda z: np.where(z > 0, z, np.expm1(z)), lambda z: np.where(z > 0, 1, np.exp(z))),
    }
    assert len(fig.axes) == len(expected)
    for ax, (name, (f, df)) in zip(fig.axes, expected.items(), strict=True):
        assert ax.get_title().split(" ")[0] == name
        value, slope = ax.get_lines()
        assert len(ax.get_lines()) == 2
        assert legend_texts(ax) == ["f(z)", "f'(z)"]
        z = value.get_xdata()
        np.testing.assert_allclose(z, np.linspace(-4, 4, 201))
        np.testing.assert_allclose(value.get_ydata(), f(z), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(slope.get_ydata(), df(z), rtol=1e-12, atol=1e-15)
    assert fig.axes[4].get_title() == "leaky_relu (alpha=0.01)"
    assert_png_not_blank(path, fig)


def test_plot_activations_selection_and_errors() -> None:
    fig = plotting.plot_activations(["relu", "tanh"], ncols=3)
    assert [ax.get_title() for ax in fig.axes] == ["relu", "tanh"]  # unused axes removed
    with pytest.raises(ValueError, match="softmax"):
        plotting.plot_activations(["relu", "softmax"])
    with pytest.raises(ValueError, match="Unknown activation"):
        plotting.plot_activations(["swish"])


# -- no pyplot, no global backend, a clear message without matplotlib -------------------------


def test_missing_matplotlib_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'anyarray_nn\[plot\]'"):
        plotting.plot_history(HISTORY)


def test_plots_leave_pyplot_and_the_backend_alone(tmp_path: Path) -> None:
    code = (
        "import sys, matplotlib\n"
        "before = matplotlib.rcParams._get_backend_or_none()\n"
        "from anyarray_nn import plotting\n"
        f"plotting.plot_history({{'loss': [2.0, 1.0]}}, path={str(tmp_path / 'h.png')!r})\n"
        "plotting.plot_confusion_matrix([[1, 2], [3, 4]])\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
        "assert matplotlib.rcParams._get_backend_or_none() == before, 'backend changed'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "h.png").is_file()
