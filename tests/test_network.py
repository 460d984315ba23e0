"""NN behaviour on every backend: moving, weights, fitting, predicting, and errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

import anyarray_nn as ann
from anyarray_nn.random import STREAM_SHUFFLE, host_rng


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _net(spec, sizes=(4, 16, 16, 3), dtype="float64", **kw):
    return ann.NN(list(sizes), backend=spec.name, device=spec.device, dtype=dtype, seed=0, **kw)


def test_predict_returns_numpy_probabilities(backend, iris):
    X, _ = iris
    probs = _net(backend).predict(X)
    assert isinstance(probs, np.ndarray) and probs.shape == (150, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    batched = _net(backend).predict(X, batch_size=32)
    np.testing.assert_allclose(batched, probs, rtol=1e-12)


def test_predict_matches_an_independent_numpy_forward(backend, iris):
    X, _ = iris
    net = _net(backend, activation="tanh")
    W1, b1, W2, b2, W3, b3 = net.get_weights()
    logits = np.tanh(np.tanh(X @ W1 + b1) @ W2 + b2) @ W3 + b3
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(net.predict(X), e / e.sum(1, keepdims=True), rtol=1e-12)


def test_fit_is_plain_sgd_on_the_documented_batches(backend, iris):
    """One epoch of fit equals an independent NumPy SGD loop over the host RNG's order."""
    X, y = iris
    net = _net(backend, sizes=(4, 6, 3), activation="sigmoid")
    W1, b1, W2, b2 = net.get_weights()
    order = host_rng(net.seed, STREAM_SHUFFLE, 0).permutation(len(X))  # epoch 0
    lr, bs = 0.3, 32
    for s in range(0, len(X), bs):
        idx = order[s : s + bs]
        xb, t = X[idx], np.eye(3)[y[idx]]
        h = 1 / (1 + np.exp(-(xb @ W1 + b1)))
        z = h @ W2 + b2
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz = (p - t) / len(idx)
        dh = dz @ W2.T * h * (1 - h)
        W2, b2, W1, b1 = (
            W2 - lr * h.T @ dz,
            b2 - lr * dz.sum(0),
            W1 - lr * xb.T @ dh,
            b1 - lr * dh.sum(0),
        )
    net.fit(X, y, epochs=1, batch_size=bs, lr=lr)
    for got, want in zip(net.get_weights(), [W1, b1, W2, b2], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_same_seed_same_trajectory_on_every_backend(backend, iris):
    X, y = iris
    ref = _net(ann.resolve("numpy"), activation="relu")
    ref.fit(X, y, epochs=3, batch_size=16, lr=0.1)
    net = _net(backend, activation="relu")
    net.fit(X, y, epochs=3, batch_size=16, lr=0.1)
    for a, b in zip(ref.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def test_fit_learns_iris(backend, iris):
    X, y = iris
    net = _net(backend, dtype="float32")
    net.fit(X, y, epochs=60, batch_size=16, lr=0.1)
    result = net.evaluate(X, y)
    assert result["accuracy"] > 0.95
    assert result["loss"] == pytest.approx(net.loss(X, y), rel=1e-6)
    assert net.history_["loss"][-1] < net.history_["loss"][0] / 5


def test_to_moves_everything_and_keeps_gradients(backend, iris):
    X, y = iris
    net = _net(ann.resolve("numpy"))
    before_w, before_g = net.get_weights(), net.gradients(X, y)
    assert net.to(backend.name, backend.device) is net
    assert net.backend.name == backend.name
    for a, b in zip(before_w, net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(before_g, net.gradients(X, y), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    net.to("numpy", dtype="float32")
    assert all(w.dtype == np.float32 for w in net.get_weights())


def test_copy_is_independent(backend, iris):
    X, y = iris
    net = _net(backend)
    twin = net.copy()
    twin.fit(X, y, epochs=1, lr=0.1)
    assert not np.array_equal(net.get_weights()[0], twin.get_weights()[0])
    assert net.copy(backend="numpy").backend.name == "numpy"


def test_get_set_weights_round_trip_and_checks():
    net = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    w = [np.full_like(a, i) for i, a in enumerate(net.get_weights())]
    net.set_weights(w)
    for a, b in zip(net.get_weights(), w, strict=True):
        np.testing.assert_array_equal(a, b)
    assert net.parameter_names() == ["W1", "b1", "W2", "b2"]
    with pytest.raises(ValueError, match="expects 4 arrays"):
        net.set_weights(w[:2])
    with pytest.raises(ValueError, match=r"W1 must have shape \(3, 4\)"):
        net.set_weights([np.zeros((4, 3)), *w[1:]])
    with pytest.raises(ValueError, match="NaN"):
        net.set_weights([np.full((3, 4), np.nan), *w[1:]])
    np.testing.assert_array_equal(net.get_weights()[1], w[1])  # nothing half-applied


def test_regression_and_binary_outputs(backend, rng):
    X = rng.uniform(-1, 1, size=(200, 1))
    y = np.sin(3 * X[:, 0])
    reg = _net(backend, sizes=(1, 32, 1), activation="tanh", output="identity")
    reg.fit(X, y, epochs=200, batch_size=20, lr=0.1)
    assert reg.loss_fn.name == "mse"
    assert reg.evaluate(X, y)["r2"] > 0.95
    yb = (X[:, 0] > 0).astype(float)
    clf = _net(backend, sizes=(1, 8, 1), output="sigmoid")
    clf.fit(X, yb, epochs=50, lr=0.5)
    assert clf.loss_fn.name == "binary_cross_entropy"
    assert clf.evaluate(X, yb)["accuracy"] > 0.95
    assert set(np.unique(clf.predict_classes(X))) <= {0, 1}


def test_build_from_layers():
    net = ann.NN(
        [ann.Dense(8, "elu", fan_in=3), ann.Dense(4, "leaky_relu", alpha=0.2), ann.Dense(2)],
        backend="numpy",
        seed=0,
    )
    assert [w.shape for w in net.get_weights()] == [(3, 8), (8,), (8, 4), (4,), (4, 2), (2,)]
    assert net.layers[1].activation.alpha == 0.2
    with pytest.raises(ValueError, match="fan_in"):
        ann.NN([ann.Dense(3), ann.Dense(2)], backend="numpy")


# -- bad input: every error names the problem and the fix ------------------------------------
def test_feature_count_mismatch(backend):
    net = _net(backend)
    with pytest.raises(ValueError, match=r"expects \(n_samples, 4\)"):
        net.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"expects \(n_samples, 4\)"):
        net.fit(np.zeros((3, 5)), [0, 1, 2])
    with pytest.raises(ValueError, match="expects"):
        net.predict(np.zeros(4))


def test_labels_out_of_range(backend):
    net = _net(backend)
    with pytest.raises(ValueError, match=r"Labels out of range: found 0\.\.3.*0\.\.2"):
        net.fit(np.zeros((4, 4)), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="out of range"):
        net.gradients(np.zeros((2, 4)), [-1, 0])
    with pytest.raises(ValueError, match="integers"):
        net.loss(np.zeros((2, 4)), [0.5, 1])
    with pytest.raises(ValueError, match="rows but X has"):
        net.loss(np.zeros((2, 4)), [0, 1, 1])
    with pytest.raises(ValueError, match="LabelEncoder"):
        net.loss(np.zeros((2, 4)), np.array(["a", "b"]))


def test_nan_or_inf_in_data(backend):
    net = _net(backend)
    X = np.zeros((3, 4))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at row 1, column 2\)"):
        net.fit(X, [0, 1, 2])
    with pytest.raises(ValueError, match="NaN or inf"):
        net.predict(np.full((2, 4), np.inf))
    with pytest.raises(ValueError, match="y contains NaN"):
        _net(backend, output="identity", sizes=(4, 3, 1)).fit(np.zeros((2, 4)), [1.0, np.nan])
    device_X = net.backend.asarray(X)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.predict(device_X)


def test_bad_architecture_and_hyperparameters():
    with pytest.raises(ValueError, match="at least two positive ints"):
        ann.NN([4], backend="numpy")
    with pytest.raises(ValueError, match="2 hidden layers"):
        ann.NN([4, 5, 5, 3], activation=["relu"], backend="numpy")
    with pytest.raises(ValueError, match="output='sigmoid'"):
        ann.NN([4, 5, 1], backend="numpy")
    net = ann.NN([4, 5, 3], backend="numpy")
    with pytest.raises(ValueError, match="epochs"):
        net.fit(np.zeros((2, 4)), [0, 1], epochs=-1)
    with pytest.raises(ValueError, match="batch_size"):
        net.fit(np.zeros((2, 4)), [0, 1], batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        net.fit(np.zeros((2, 4)), [0, 1], lr=0)


def test_divergence_raises_naming_the_epoch():
    X = np.random.default_rng(0).normal(size=(64, 3)) * 100
    net = ann.NN([3, 16, 1], activation="relu", output="identity", backend="numpy", seed=0)
    with pytest.raises(ann.TrainingDivergedError, match="epoch 1"), np.errstate(all="ignore"):
        net.fit(X, X[:, 0] * 1e6, epochs=3, lr=10.0)


def test_inputs_from_another_library_are_converted(iris):
    torch = pytest.importorskip("torch")
    X, _y = iris
    net = _net(ann.resolve("numpy"))
    np.testing.assert_allclose(net.predict(torch.tensor(X)), net.predict(X), rtol=1e-15)


def test_parameters_never_alias_caller_or_clone_arrays(iris):
    X, y = iris
    net = ann.NN([4, 5, 3], backend="numpy", dtype="float64", seed=0)
    mine = [w.copy() for w in net.get_weights()]
    given = [w.copy() for w in mine]
    net.set_weights(given)
    twin = net.copy()
    net.fit(X, y, epochs=2, optimizer="adam", lr=0.1)  # in-place updates
    for a, b in zip(given, mine, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(twin.get_weights(), mine, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pickle_round_trip_continues_identically(backend, iris):
    """Python pickling (scikit-learn's persistence) keeps the backend, weights and optimizer."""
    import pickle

    X, y = iris
    net = _net(backend, dropout=0.1)
    net.fit(X, y, epochs=2, optimizer="adam", lr=0.01)
    twin = pickle.loads(pickle.dumps(net))
    assert twin.backend.name == net.backend.name
    assert twin.backend.device_name == net.backend.device_name
    net.fit(X, y, epochs=1)
    twin.fit(X, y, epochs=1)
    for a, b in zip(net.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_huge_but_finite_inputs_are_accepted(backend):
    """The fast finiteness check (a sum) overflows on huge values; the fallback must accept."""
    net = _net(backend, sizes=(4, 3, 2))
    X = np.full((3, 4), 1e308)
    with np.errstate(over="ignore"):
        assert np.isinf(X.sum())
    assert ann.to_numpy(net.check_inputs(X)).shape == (3, 4)  # accepted: no ValueError
    assert ann.to_numpy(net.check_inputs(net.backend.asarray(X))).shape == (3, 4)  # device too
    X[2, 1] = -np.inf
    with pytest.raises(ValueError, match=r"row 2, column 1"):
        net.predict(X)


def test_predict_in_batches_streams_host_data(backend, tmp_path, iris, monkeypatch):
    X, _ = iris
    net = _net(backend)
    whole = net.predict(X)
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    calls = []
    real = type(net.backend).asarray
    monkeypatch.setattr(
        type(net.backend),
        "asarray",
        lambda self, x, *a, **k: calls.append(len(x)) or real(self, x, *a, **k),
    )
    batched = net.predict(np.load(tmp_path / "X.npy", mmap_mode="r"), batch_size=64)
    monkeypatch.undo()
    np.testing.assert_allclose(batched, whole, rtol=1e-12)
    # one transfer (on NumPy: one cast) per batch, never the whole array
    assert calls == [64, 64, 22]
    with pytest.raises(ValueError, match="batch_size"):
        net.predict(X, batch_size=0)
    assert net.predict(np.zeros((0, 4))).shape == (0, 3)
    with pytest.raises(ValueError, match="expects"):
        net.predict(np.zeros((0, 5)))
