"""The core's rules, each checked against an independent reference: the output head decides the
task and refuses targets its loss cannot take; training works on immutable arrays (the
write-back rule); the parameters are one vector that the layers view; the training state moves
and copies as one."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_iris

import anyarray_nn as ann


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


# -- the output head ---------------------------------------------------------------------------
def test_poisson_refuses_a_negative_target(rng):
    X = rng.normal(size=(20, 3))
    y = rng.poisson(2.0, size=20).astype(float)
    net = ann.NN([3, 8, 1], output="exp", loss="poisson", backend="numpy", seed=0)
    net.fit(X, y, epochs=1)  # counts are fine
    y[7] = -1.0
    before = net.get_weights()
    with pytest.raises(ValueError, match=r"poisson loss must be >= 0; y holds values from -1"):
        net.fit(X, y, epochs=1)
    for a, b in zip(net.get_weights(), before, strict=True):  # refused before any step
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="poisson"):
        net.evaluate(X, y)
    with pytest.raises(ValueError, match="poisson"):
        ann.NNRegressor((8,), loss="poisson", max_iter=5).fit(X, y)


@pytest.mark.parametrize("loss", ["clipped_cross_entropy", "cross_entropy"])
def test_cross_entropies_refuse_targets_outside_0_1(rng, loss):
    X = rng.normal(size=(10, 3))
    T = np.eye(2)[rng.integers(0, 2, 10)]
    net = ann.NN([3, 4, 2], loss=loss, backend="numpy", seed=0)
    net.fit(X, T, epochs=1)
    T[3, 0] = 1.5
    with pytest.raises(
        ValueError, match=rf"{loss} loss must be \[0, 1\]; y holds values from 0 to 1.5"
    ):
        net.fit(X, T, epochs=1)


def test_the_task_comes_from_the_output_activation_not_its_name(rng, iris):
    """A user's output activation with a task is a classifier like softmax, with no name
    comparison anywhere: its metrics, labels and decoding follow its task."""

    class SoftmaxTwin(ann.Activation):
        name = "softmax_twin_for_tests"
        task = "multiclass"
        default_loss = "mse"

        def forward(self, xp, z):
            e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
            return e / xp.sum(e, axis=-1, keepdims=True)

        def backward(self, xp, z, a, grad_a):
            return a * (grad_a - xp.sum(grad_a * a, axis=-1, keepdims=True))

    try:
        X, y = iris
        net = ann.NN([4, 8, 3], output="softmax_twin_for_tests", backend="numpy", seed=0)
        assert net.is_classifier and not net.head.fused
        history = net.fit(X, y, epochs=3, lr=0.1)
        assert "accuracy" in history
        probs = net.predict(X)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(net.predict_classes(X), probs.argmax(axis=1))
    finally:
        ann.activations.registry.unregister("softmax_twin_for_tests")


# -- the write-back rule: training on immutable arrays --------------------------------------------
def _immutable_strict(monkeypatch):
    """array-api-strict made to behave like JAX: ``a += b`` rebinds ``a`` to a new array (the
    original is untouched), item assignment is refused, and arrays report themselves
    unwritable."""
    import array_api_compat
    from array_api_strict._array_object import Array

    def rebinding(op):
        return lambda self, other: getattr(self, op)(other)

    for inplace, op in [("__iadd__", "__add__"), ("__isub__", "__sub__"),
                        ("__imul__", "__mul__"), ("__itruediv__", "__truediv__")]:  # fmt: skip
        monkeypatch.setattr(Array, inplace, rebinding(op))

    def refuse(self, key, value):
        raise TypeError("immutable array: item assignment is not supported")

    monkeypatch.setattr(Array, "__setitem__", refuse)
    real = array_api_compat.is_writeable_array
    monkeypatch.setattr(
        array_api_compat, "is_writeable_array", lambda x: False if isinstance(x, Array) else real(x)
    )


@pytest.mark.parametrize(
    ("optimizer", "kwargs"),
    [
        ("adam", {"amsgrad": True}),
        ("sgd", {"momentum": 0.9}),
        ("rmsprop", {"centered": True}),
        ("adagrad", {}),
    ],
)
def test_fit_on_immutable_arrays_equals_numpy(monkeypatch, iris, optimizer, kwargs):
    """Before the write-back rule, such a library trained with a constant loss and no weight
    moved (``p -= ...`` rebound a local name). Now it takes NumPy's steps exactly."""
    X, y = iris
    spec = {"activation": "relu", "dropout": 0.2, "l2": 1e-3, "dtype": "float64", "seed": 3}
    opt = ann.optimizers.get(optimizer, lr=0.01, **kwargs)
    ref = ann.NN([4, 16, 3], backend="numpy", **spec)
    h_ref = ref.fit(X, y, epochs=3, batch_size=16, optimizer=opt.clone(), clip_norm=5.0)
    _immutable_strict(monkeypatch)
    net = ann.NN([4, 16, 3], backend="array_api_strict", **spec)
    theta0 = net.theta
    h = net.fit(X, y, epochs=3, batch_size=16, optimizer=opt.clone(), clip_norm=5.0)
    assert net.theta is not theta0  # new vectors, bound back to the layers
    assert h["loss"][0] != h["loss"][-1]
    np.testing.assert_allclose(h["loss"], h_ref["loss"], rtol=1e-12)
    for a, b in zip(net.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


# -- one parameter vector -----------------------------------------------------------------------
def test_layers_see_views_of_one_parameter_vector(iris):
    X, y = iris
    net = ann.NN([4, 6, 3], backend="numpy", dtype="float64", seed=0)
    W1 = net.layers[0].params["W"]
    theta = ann.to_numpy(net.theta)
    assert theta.shape == (4 * 6 + 6 + 6 * 3 + 3,)
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in net.get_weights()]), theta)
    net.fit(X, y, epochs=1, optimizer="adam")
    assert net.layers[0].params["W"] is W1  # updated in place, through the vector
    np.testing.assert_array_equal(W1.ravel(), ann.to_numpy(net.theta)[:24])


def test_a_replaced_layer_array_is_adopted(iris):
    """``layer.params["W"] = new`` (instead of writing into it) is noticed: training, saving and
    the gradients use the new values."""
    X, y = iris
    net = ann.NN([4, 6, 3], backend="numpy", dtype="float64", seed=0)
    new = np.full((4, 6), 0.1)
    net.layers[0].params["W"] = new.copy()
    np.testing.assert_array_equal(net.get_weights()[0], new)
    twin = ann.NN([4, 6, 3], backend="numpy", dtype="float64", seed=0)
    twin.set_weights([new, *twin.get_weights()[1:]])
    for a, b in zip(net.gradients(X, y), twin.gradients(X, y), strict=True):
        np.testing.assert_array_equal(a, b)


def test_pickling_keeps_the_layers_views(iris):
    X, y = iris
    net = ann.NN([4, 6, 3], backend="numpy", seed=0)
    net.fit(X, y, epochs=1, optimizer="adam")
    again = pickle.loads(pickle.dumps(net))
    again.fit(X, y, epochs=1)
    net.fit(X, y, epochs=1)
    for a, b in zip(again.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # trained the vector the layers see
    assert again.layers[0].params["W"].base is not None


# -- the training state ---------------------------------------------------------------------------
def test_moving_or_retyping_the_net_during_fit_is_refused(iris):
    X, y = iris

    class Mover(ann.Callback):
        def on_epoch_end(self, net, epoch, logs):
            net.to("numpy", dtype="float32")

    net = ann.NN([4, 6, 3], backend="numpy", dtype="float64", seed=0)
    with pytest.raises(RuntimeError, match=r"net.to\(\) was called while fit\(\) is running"):
        net.fit(X, y, epochs=3, callbacks=[Mover()])
    assert net.epochs_trained_ == 1 and net.backend.dtype_name == "float64"
    net.fit(X, y, epochs=1)  # still consistent: trains on
    net.to("numpy", dtype="float32")  # and moves once fit has returned
    assert net.predict(X).dtype == np.float32


def test_the_training_state_copies_and_moves_as_one(iris):
    X, y = iris
    net = ann.NN([4, 6, 3], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=2, optimizer="adam", lr=0.01)
    twin = net.copy(backend="array_api_strict")
    state, twin_state = net.training_state, twin.training_state
    assert twin_state is not state and twin_state.optimizer is not state.optimizer
    assert (twin.step_, twin.epochs_trained_, twin.optimizer.t) == (net.step_, 2, net.optimizer.t)
    assert twin.history_["loss"] == net.history_["loss"] and twin.history_ is not net.history_
    net.fit(X, y, epochs=1)
    twin.fit(X, y, epochs=1)
    for a, b in zip(twin.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# -- no host-to-device copy inside a step ---------------------------------------------------------
def _torch_transfers_per_fit(monkeypatch, steps: int, **fit_kwargs) -> int:
    """Calls that turn Python or NumPy data into a torch tensor during one ``fit`` of ``steps``
    optimizer steps (each one a host-to-device copy, and a host sync, on a GPU)."""
    torch = pytest.importorskip("torch")
    count = [0]

    def counting(name):
        real = getattr(torch, name)

        def wrapper(*args, **kwargs):
            count[0] += 1
            return real(*args, **kwargs)

        return wrapper

    rng = np.random.default_rng(0)
    batch = 16
    X = rng.normal(size=(steps * batch, 6))
    y = rng.integers(0, 3, steps * batch)
    net = ann.NN([6, 8, 8, 3], activation="relu", dropout=0.1, l1=1e-4, l2=1e-4,
                 backend="torch", seed=0)  # fmt: skip
    Xd, yd = net.backend.asarray(X), net.backend.asarray(y, dtype=net.xp.int64)
    with monkeypatch.context() as patch:
        for name in ("asarray", "tensor", "as_tensor", "scalar_tensor", "from_numpy"):
            patch.setattr(torch, name, counting(name))
        net.fit(Xd, yd, epochs=1, batch_size=batch, **fit_kwargs)
    return count[0]


@pytest.mark.parametrize(
    "fit_kwargs",
    [
        {"optimizer": "adam", "clip_norm": 1.0},
        {"optimizer": "sgd", "lr": 0.1},
        {"optimizer": "rmsprop", "metrics": ["accuracy"]},
    ],
)
def test_no_host_to_device_copy_inside_a_step_on_torch(monkeypatch, fit_kwargs):
    """A Python scalar passed with a tensor to a two-argument function (``maximum(z, 0.0)``)
    becomes a tensor copied from the host on every call; on a GPU, a sync per call. Counted on
    torch's CPU build: the fit of 2S steps makes no more such copies than the fit of S."""
    few = _torch_transfers_per_fit(monkeypatch, 4, **fit_kwargs)
    many = _torch_transfers_per_fit(monkeypatch, 8, **fit_kwargs)
    assert few > 0  # the counter sees the per-fit copies (the shuffle order, ...)
    assert many == few, (few, many)


def test_device_targets_are_checked_on_the_device(backend, monkeypatch, iris):
    """y already on the device gets the host rules (shape, finiteness, label range, the loss's
    target range) without a round trip through the host; the one-hot rows equal the host's."""
    _, y = iris
    net = ann.NN([4, 5, 3], backend=backend.name, device=backend.device, seed=0)
    be = net.backend
    host_T = ann.to_numpy(net.check_targets(y, 150))
    yd = be.asarray(y, dtype=be.xp.int64)
    if not isinstance(yd, np.ndarray):  # on NumPy the host is the device
        monkeypatch.setattr(ann.heads, "to_numpy", _no_host_copy)
    np.testing.assert_array_equal(ann.to_numpy(net.check_targets(yd, 150)), host_T)
    with pytest.raises(ValueError, match=r"Labels out of range: found 0\.\.3"):
        net.check_targets(be.asarray(np.where(y == 2, 3, y), dtype=be.xp.int64), 150)
    with pytest.raises(ValueError, match="y has 149 rows but X has 150"):
        net.check_targets(yd[:149], 150)
    with pytest.raises(ValueError, match="integers"):
        net.check_targets(be.asarray(y + 0.5), 150)
    poisson = ann.NN([4, 5, 1], output="exp", backend=backend.name, device=backend.device)
    with pytest.raises(ValueError, match="poisson loss must be >= 0"):
        poisson.check_targets(be.asarray(y - 1.0), 150)


def _no_host_copy(x):
    raise AssertionError("device targets were copied to the host")
