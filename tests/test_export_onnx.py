"""ONNX export (anyarray_nn.export): the network's own forward traced on ndonnx, run in
onnxruntime and compared with ``predict`` (NumPy), for every built-in hidden activation and
output, both dtypes, and batches of 1, 7, 1000 and 0 rows; the estimators; the command line; and
the errors (a component that reads the host, a missing optional package)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import HIDDEN

import anyarray_nn as ann
from anyarray_nn.cli import main

ndx = pytest.importorskip("ndonnx", reason="ONNX export needs ndonnx: pip install -e '.[onnx]'")
onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the tests run models in onnxruntime")

OUTPUTS = ["softmax", "sigmoid", "identity", "exp"]
BATCHES = [1, 7, 1000, 0]
TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(path: Path, X: np.ndarray) -> dict[str, np.ndarray]:
    session = _session(path)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X}), strict=True))


def _assert_close(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    """Equal to ``TOLERANCE[dtype]`` relative to the output's scale (its largest magnitude, at
    least 1)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.size == 0:
        return
    scale = max(1.0, float(np.max(np.abs(want))))
    error = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    assert error <= TOLERANCE[dtype] * scale, (error, scale)


def _inputs(n: int, width: int, dtype: str, seed: int = 0) -> np.ndarray:
    return np.random.default_rng([seed, n]).normal(size=(n, width)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", HIDDEN)
def test_onnxruntime_equals_predict(tmp_path, activation, output, dtype):
    units = {"softmax": 4, "sigmoid": 3, "identity": 2, "exp": 2}[output]
    net = ann.NN(
        [12, 16, 8, units], activation=activation, output=output, backend="numpy", dtype=dtype,
        seed=3, dropout=0.2,
    )  # fmt: skip
    path = tmp_path / "model.onnx"
    outputs = "both" if net.is_classifier else "proba"
    model = net.export(path, outputs=outputs)
    constants = {tensor.name for tensor in model.graph.initializer}
    for node in model.graph.node:  # simplified: no size-0 branch, nothing left to fold
        assert node.op_type != "If"
        assert not node.input or not set(node.input) <= constants, node
    for n in BATCHES:
        X = _inputs(n, 12, dtype)
        got = _run(path, X)
        name = "probabilities" if net.is_classifier else "values"
        _assert_close(got[name], net.predict(X), dtype)
        if net.is_classifier:
            np.testing.assert_array_equal(got["label"], net.predict_classes(X))


def test_the_batch_dimension_is_dynamic_and_the_graph_has_no_empty_branches(tmp_path):
    net = ann.NN([784, 128, 64, 10], backend="numpy", seed=0)
    model = ann.export_onnx(net, tmp_path / "m.onnx")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == 784
    ops = [node.op_type for node in model.graph.node]
    assert "If" not in ops and ops.count("MatMul") == 3
    weights = sum(w.size * 4 for w in net.get_weights())
    assert (tmp_path / "m.onnx").stat().st_size < weights + 8_000  # the weights, little else


def test_a_single_sigmoid_unit_gives_binary_labels(tmp_path):
    net = ann.NN([5, 6, 1], output="sigmoid", backend="numpy", dtype="float64", seed=1)
    ann.export_onnx(net, tmp_path / "m.onnx", outputs="label")
    X = _inputs(50, 5, "float64")
    got = _run(tmp_path / "m.onnx", X)
    assert list(got) == ["label"]
    np.testing.assert_array_equal(got["label"], (net.predict(X)[:, 0] > 0.5).astype(np.int64))


def test_class_names_from_metadata_become_labels_and_metadata_props(tmp_path):
    net = ann.NN([4, 8, 3], backend="numpy", seed=2)
    net.metadata = {"classes": ["cat", "dog", "fish"]}
    model = ann.export_onnx(net, tmp_path / "m.onnx", outputs="both")
    X = _inputs(20, 4, "float32")
    got = _run(tmp_path / "m.onnx", X)
    np.testing.assert_array_equal(
        got["label"], np.array(["cat", "dog", "fish"])[net.predict_classes(X)]
    )
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == ["cat", "dog", "fish"]


def test_a_trained_network_exports(tmp_path):
    X, y = _inputs(200, 6, "float32"), np.random.default_rng(0).integers(0, 3, 200)
    net = ann.NN([6, 10, 3], backend="numpy", seed=0)
    net.fit(X, y, epochs=2, batch_size=32, verbose=0)
    ann.export_onnx(net, tmp_path / "m.onnx")
    _assert_close(_run(tmp_path / "m.onnx", X)["probabilities"], net.predict(X), "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fitted_classifier_with_class_names(tmp_path, dtype):
    from anyarray_nn.sklearn import NNClassifier

    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 4)).astype(dtype)
    y = np.array(["setosa", "versicolor", "virginica"])[np.argmax(X[:, :3], axis=1)]
    clf = NNClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0, dtype=dtype)
    clf.fit(X, y)
    ann.export_onnx(clf, tmp_path / "clf.onnx", outputs="both")
    got = _run(tmp_path / "clf.onnx", X)
    _assert_close(got["probabilities"], clf.predict_proba(X), "float32")
    np.testing.assert_array_equal(got["label"], clf.predict(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fitted_binary_classifier_and_regressor(tmp_path):
    from anyarray_nn.sklearn import NNClassifier, NNRegressor

    rng = np.random.default_rng(6)
    X = rng.normal(size=(100, 3))
    clf = NNClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0)
    clf.fit(X, np.where(X[:, 0] > 0, 7, 3))
    ann.export_onnx(clf, tmp_path / "bin.onnx", outputs="both")
    got = _run(tmp_path / "bin.onnx", X.astype(clf.net_.backend.dtype_name))
    _assert_close(got["probabilities"], clf.predict_proba(X), clf.net_.backend.dtype_name)
    np.testing.assert_array_equal(got["label"], clf.predict(X))
    reg = NNRegressor(hidden_layer_sizes=(6,), max_iter=20, random_state=0)
    reg.fit(X, X[:, 0] - 2 * X[:, 1])
    ann.export_onnx(reg, tmp_path / "reg.onnx")
    got = _run(tmp_path / "reg.onnx", X.astype(reg.net_.backend.dtype_name))
    _assert_close(got["values"], reg.predict(X), reg.net_.backend.dtype_name)


def test_a_user_registered_activation_exports(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    extending = importlib.import_module("extending_components")  # registers "swish"
    net = ann.NN([5, 7, 2], activation="swish", output="identity", backend="numpy", seed=0)
    assert isinstance(net.layers[0].activation, extending.Swish)
    ann.export_onnx(net, tmp_path / "m.onnx")
    X = _inputs(9, 5, "float32")
    _assert_close(_run(tmp_path / "m.onnx", X)["values"], net.predict(X), "float32")


class HostReading(ann.Activation):
    """Scales by the batch's largest value, read back to the host: not a graph."""

    name = "host_reading_test_only"

    def forward(self, xp, z):
        return z / float(xp.max(xp.abs(z)))


@pytest.fixture
def host_reading():
    yield "host_reading_test_only"
    ann.activations.registry.unregister("host_reading_test_only")


def test_a_component_that_reads_the_host_is_named(tmp_path, host_reading):
    net = ann.NN([3, 4, 2], activation=host_reading, output="identity", backend="numpy")
    net.predict(np.ones((2, 3)))  # it works eagerly
    with pytest.raises(ann.ExportError, match="HostReading 'host_reading_test_only'"):
        ann.export_onnx(net, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_an_existing_file_is_kept_and_bad_arguments_are_refused(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"precious")
    net = ann.NN([3, 4, 2], output="identity", backend="numpy")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ann.export_onnx(net, path)
    assert path.read_bytes() == b"precious"
    with pytest.raises(ann.ExportError, match="needs a classifier"):
        ann.export_onnx(net, tmp_path / "x.onnx", outputs="label")
    with pytest.raises(ann.ExportError, match="use one of proba, label, both"):
        ann.export_onnx(net, tmp_path / "x.onnx", outputs="probs")
    with pytest.raises(ann.ExportError, match="call fit first"):
        ann.export_onnx(ann.NNClassifier(), tmp_path / "x.onnx")


def test_missing_ndonnx_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ndonnx", None)  # import ndonnx now raises ImportError
    net = ann.NN([3, 4, 2], backend="numpy")
    with pytest.raises(ImportError, match=r"pip install 'anyarray_nn\[onnx\]'"):
        ann.export_onnx(net, tmp_path / "m.onnx")
    net.save(tmp_path / "m.safetensors")
    rc = main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "anyarray_nn[onnx]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_cli_exports_a_model_trained_by_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(loc=3.0, scale=2.0, size=(150, 3))
    species = np.array(["setosa", "versicolor", "virginica"])[np.argmax(X, axis=1)]
    lines = ["a,b,c,species"] + [
        f"{a},{b},{c},{s}" for (a, b, c), s in zip(X, species, strict=True)
    ]
    Path("flowers.csv").write_text("\n".join(lines) + "\n")
    argv = ["train", "--data", "flowers.csv", "--target", "species", "--epochs", "5"]
    assert main([*argv, "--save", "m.safetensors", "-q"]) == 0
    assert main(["export", "m.safetensors", "m.onnx", "--outputs", "both"]) == 0
    assert main(["predict", "m.safetensors", "--data", "flowers.csv", "--out", "labels.csv"]) == 0
    assert (
        main(["predict", "m.safetensors", "--data", "flowers.csv", "--out", "p.csv", "--proba"])
        == 0
    )
    capsys.readouterr()
    got = _run(tmp_path / "m.onnx", X.astype(np.float32))  # raw features: the model scales them
    want_labels = Path("labels.csv").read_text().split()[1:]
    assert got["label"].tolist() == want_labels
    want_proba = np.loadtxt("p.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(got["probabilities"], want_proba, atol=1e-6)
    rc = main(["export", "m.safetensors", "m.onnx"])
    err = capsys.readouterr().err
    assert rc == 2 and "--overwrite" in err


def test_benchmark_models_agree_with_skl2onnx_on_the_same_weights(tmp_path):
    """The benchmark's two models (ours, and skl2onnx converting an MLPClassifier that holds
    the same weights, an independent implementation of the math) give the same numbers."""
    pytest.importorskip("skl2onnx", reason="benchmark-only dependency: pip install skl2onnx")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    bench = importlib.import_module("benchmarks.onnx_export")
    X = _inputs(64, bench.SIZES[0], "float32")
    y = np.arange(64) % bench.SIZES[-1]
    net = ann.NN(bench.SIZES, backend="numpy", seed=0)
    theirs = bench.session(bench.skl2onnx_bytes(bench.sklearn_twin(net, X, y), bench.SIZES[0]))
    ann.export_onnx(net, tmp_path / "ours.onnx")
    ours = _run(tmp_path / "ours.onnx", X)["probabilities"]
    _assert_close(ours, theirs.run([theirs.get_outputs()[-1].name], {"X": X})[0], "float32")


def test_opset(tmp_path):
    net = ann.NN([4, 5, 3], backend="numpy", seed=0)
    model = ann.export_onnx(net, tmp_path / "m.onnx", opset=21)
    assert {o.domain: o.version for o in model.opset_import}[""] == 21
    with pytest.raises(ann.ExportError, match=r"opset=1: .*opsets 20 to"):
        ann.export_onnx(net, tmp_path / "old.onnx", opset=1)
    assert not (tmp_path / "old.onnx").exists()


# -- issue 26: what export refuses, and the opsets it writes -----------------------------------
@pytest.mark.parametrize(
    "scaling, problem",
    [
        ((0.0, 0.0), "scale holds 0"),
        ((0.0, np.array([1.0, 0.0, 2.0, 1.0])), "scale holds 0"),
        ((np.nan, 1.0), "mean holds NaN or inf"),
        ((np.array([0.0, np.inf, 0.0, 0.0]), 1.0), "mean holds NaN or inf"),
        ((0.0, np.nan), "scale holds NaN or inf"),
        ((1e39, 1.0), "beyond float32"),
        ((np.zeros(3), 1.0), r"mean has shape \(3,\).*\(4,\)"),
        ((0.0, np.ones(5)), r"scale has shape \(5,\)"),
        ((np.zeros((1, 4)), 1.0), r"mean has shape \(1, 4\)"),
        ((0.0, np.ones(4) + 1j), "scale must be real numbers"),
        ((0.0, ["a", "b", "c", "d"]), "scale must be real numbers"),
        ((0.0,), "a pair"),
        (np.zeros(4), "a pair"),
    ],
)
def test_bad_input_scaling_is_refused_and_nothing_is_written(tmp_path, scaling, problem):
    net = ann.NN([4, 5, 3], backend="numpy", seed=0)
    with pytest.raises(ann.ExportError, match=problem):
        ann.export_onnx(net, tmp_path / "m.onnx", input_scaling=scaling)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_good_input_scaling_computes_the_scaled_forward(tmp_path, dtype):
    """Per-feature and scalar scaling (negative scales included) equal predict on the scaled
    rows, computed here with NumPy."""
    net = ann.NN([4, 5, 3], backend="numpy", seed=0, dtype=dtype)
    X = _inputs(7, 4, dtype)
    for mean, scale in [(np.array([1.0, -2.0, 0.5, 0.0]), np.array([2.0, -0.5, 1.0, 3.0])),
                        (0.25, 4.0), ([0.5], [2.0])]:  # fmt: skip
        ann.export_onnx(net, tmp_path / "m.onnx", input_scaling=(mean, scale), overwrite=True)
        scaled = ((X.astype(np.float64) - np.asarray(mean)) / np.asarray(scale)).astype(dtype)
        _assert_close(_run(tmp_path / "m.onnx", X)["probabilities"], net.predict(scaled), dtype)


@pytest.mark.parametrize(
    "units, output, names",
    [
        (3, "softmax", ["a", "b"]),
        (3, "softmax", ["a", "b", "c", "d"]),
        (3, "softmax", []),
        (1, "sigmoid", ["yes"]),
        (1, "sigmoid", ["no", "yes", "maybe"]),
        (3, "softmax", [["a", "b", "c"]]),
    ],
)
@pytest.mark.parametrize("outputs", ["label", "both", "proba"])
def test_class_names_of_the_wrong_number_are_refused(tmp_path, units, output, names, outputs):
    net = ann.NN([4, 5, units], output=output, backend="numpy", seed=0)
    net.metadata["classes"] = names
    with pytest.raises(ann.ExportError, match=r"classes"):
        ann.export_onnx(net, tmp_path / "m.onnx", outputs=outputs)
    assert not (tmp_path / "m.onnx").exists()
    net.metadata["classes"] = "abc"  # not a list: three one-letter names would be a guess
    with pytest.raises(ann.ExportError, match="must be a list of class names"):
        ann.export_onnx(net, tmp_path / "m.onnx", outputs=outputs)


def test_class_names_of_the_right_number_label_the_output(tmp_path):
    net = ann.NN([4, 5, 3], backend="numpy", seed=0)
    net.metadata["classes"] = ["cat", "dog", "eel"]
    X = _inputs(9, 4, "float32")
    ann.export_onnx(net, tmp_path / "m.onnx", outputs="label")
    expected = np.array(["cat", "dog", "eel"])[np.argmax(net.predict(X), axis=1)]
    assert (_run(tmp_path / "m.onnx", X)["label"] == expected).all()


@pytest.mark.parametrize("opset", [1, 11, 13, 15, 17, 18, 19, 10**6, 20.0, "20", True])
def test_opsets_outside_the_supported_range_are_refused_with_the_range(tmp_path, opset):
    net = ann.NN([4, 5, 3], backend="numpy", seed=0)
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(ann.ExportError, match=rf"opsets 20 to {newest}"):
        ann.export_onnx(net, tmp_path / "m.onnx", opset=opset)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("opset", [20, 21, 22])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_every_supported_opset_runs_in_onnxruntime(tmp_path, opset, output):
    units = 3 if output == "softmax" else 1
    net = ann.NN([4, 6, units], activation="elu", output=output, backend="numpy", seed=0,
                 dtype="float64")  # fmt: skip
    outputs = "both" if output != "identity" else "proba"
    model = ann.export_onnx(net, tmp_path / "m.onnx", opset=opset, outputs=outputs)
    assert {o.domain: o.version for o in model.opset_import}[""] == opset
    X = _inputs(6, 4, "float64")
    got = _run(tmp_path / "m.onnx", X)
    _assert_close(got["probabilities" if output != "identity" else "values"], net.predict(X),
                  "float64")  # fmt: skip
