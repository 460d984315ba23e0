"""The Extending recipes (docs/extending.md), each proved on a component defined outside the package
(tests/extending_components.py): it trains, copies, saves and loads, moves with to(), and is a
valid choice of the command line and the scikit-learn estimators, like a built-in one.

Every number is checked against something independent: closed forms of the new activation,
optimizer and initializer, central differences, or the same run on a built-in backend.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

import anyarray_nn as ann
from anyarray_nn import backend as backend_mod
from anyarray_nn import registry

# short scikit-learn fits here test wiring, not convergence
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
REGISTERED = [
    (registry.activations, "swish"),
    (registry.optimizers, "sign_momentum"),
    (registry.initializers, "orthogonal"),
    (registry.layers, "scale"),
    (registry.losses, "huber"),
]


@pytest.fixture(scope="module")
def user():
    """Import the user's module (registering its components); unregister them afterwards."""
    sys.path.insert(0, str(TESTS))
    module = importlib.import_module("extending_components")
    yield module
    for reg, name in REGISTERED:
        reg.unregister(name)
    del backend_mod.BACKENDS["strict_gpu"]
    del sys.modules["extending_components"]
    sys.path.remove(str(TESTS))


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _same(a: ann.NN, b: ann.NN, X: np.ndarray, rtol: float = 1e-12) -> None:
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=rtol, atol=1e-15)


def _cli(tmp_path, *argv: str, plugin: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    if plugin:
        env["ANYARRAY_NN_PLUGINS"] = "extending_components"
    return subprocess.run(
        [sys.executable, "-m", "anyarray_nn", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )


def _round_trips(net: ann.NN, X: np.ndarray, y: np.ndarray, tmp_path: Path) -> ann.NN:
    """fit, copy, save/load and to(): every form predicts the same and keeps training alike."""
    net.fit(X, y, epochs=2, batch_size=16)
    twin = net.copy()
    _same(net, twin, X)
    path = tmp_path / "model.safetensors"
    net.save(path)
    loaded = ann.load(path)
    assert loaded.config() == net.config()
    _same(net, loaded, X)
    moved = net.copy().to("array_api_strict", "device1")
    _same(net, moved, X, rtol=1e-10)
    # continuing from each form gives the same next epoch as continuing the original
    for other in (twin, loaded):
        other.fit(X, y, epochs=1, batch_size=16)
    net.fit(X, y, epochs=1, batch_size=16)
    _same(net, twin, X)
    _same(net, loaded, X)
    return loaded


# -- activation -------------------------------------------------------------------------------
def test_activation_recipe(user, iris, tmp_path, rng):
    act = ann.activations.get({"name": "swish", "beta": 1.5})
    z = np.linspace(-6, 6, 101)
    be = ann.resolve("numpy", dtype="float64")
    closed = z / (1 + np.exp(-1.5 * z))
    np.testing.assert_allclose(ann.to_numpy(act.forward(be.xp, be.asarray(z))), closed, rtol=1e-13)
    # backprop through it: central differences, whole network and one layer
    net = ann.NN([4, 6, 3], activation={"name": "swish", "beta": 1.5}, backend="numpy", seed=0)
    X, y = iris
    assert ann.gradcheck(net, X[:20], y[:20]) < 1e-7
    layer = ann.Dense(5, act)
    layer.build(be, np.random.default_rng(0), 4)
    ann.check_layer_backward(layer, rng.normal(size=(7, 4)), rng.normal(size=(7, 5)))
    loaded = _round_trips(
        ann.NN([4, 8, 3], activation="swish", backend="numpy", dtype="float64", seed=1), X, y,
        tmp_path,
    )  # fmt: skip
    assert loaded.layers[0].activation.name == "swish"
    assert net.config()["layers"][0]["config"]["activation"] == {"name": "swish", "beta": 1.5}


def test_activation_recipe_in_the_cli_and_scikit_learn(user, iris, tmp_path):
    X, y = iris
    clf = ann.NNClassifier(
        (8,), activation="swish", learning_rate_init=0.01, max_iter=60, random_state=0
    )
    assert clf.fit(X, y).score(X, y) > 0.9
    assert clf.net_.layers[0].activation.name == "swish"
    proc = _cli(tmp_path, "train", "--data", "iris", "--activation", "swish", "--epochs", "2",
                "--epoch-lines", "--save", "m.safetensors")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout
    proc = _cli(tmp_path, "evaluate", "m.safetensors", "--data", "iris")
    assert proc.returncode == 0, proc.stderr
    # without the user's module, the file names a component nobody registered: a clear error
    proc = _cli(tmp_path, "evaluate", "m.safetensors", "--data", "iris", plugin=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Unknown activation 'swish'" in proc.stderr
    proc = _cli(tmp_path, "train", "--data", "iris", "--activation", "swish", plugin=False)
    assert proc.returncode == 2 and "unknown activation 'swish'" in proc.stderr


# -- optimizer --------------------------------------------------------------------------------
def test_optimizer_recipe_matches_its_closed_form(user):
    be = ann.resolve("numpy", dtype="float64")
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=6)  # a network's parameters, as the optimizer sees them: one vector
    grads = [rng.normal(size=6) for _ in range(4)]
    expected, b = p0.copy(), np.zeros_like(p0)
    for g in grads:
        b = 0.8 * b + 0.2 * g
        expected -= 0.1 * np.sign(b)
    for wb in (ann.writeback.IN_PLACE, ann.writeback.NEW_ARRAYS):  # mutable and immutable arrays
        opt = ann.optimizers.get("sign_momentum", lr=0.1, momentum=0.8)
        p = be.asarray(p0, copy=True)
        opt.build(p)
        for g in grads:
            p = opt.step(p, be.asarray(g), wb)
        np.testing.assert_allclose(ann.to_numpy(p), expected, rtol=1e-15)
    assert opt.config() == {"name": "sign_momentum", "lr": 0.1, "momentum": 0.8}


def test_optimizer_recipe_round_trips(user, iris, tmp_path):
    X, y = iris
    net = ann.NN([4, 8, 3], backend="numpy", dtype="float64", seed=2)
    net.fit(X, y, epochs=1, optimizer="sign_momentum", lr=0.01)
    loaded = _round_trips(net, X, y, tmp_path)
    assert isinstance(loaded.optimizer, user.SignMomentum)
    # copy() and gradcheck() of a network trained with it work
    assert ann.gradcheck(net, X[:10], y[:10]) < 1e-7


def test_optimizer_recipe_in_the_cli_and_scikit_learn(user, iris, tmp_path):
    X, y = iris
    clf = ann.NNClassifier((8,), solver="sign_momentum", learning_rate_init=0.01, max_iter=40,
                           random_state=0)  # fmt: skip
    assert clf.fit(X, y).score(X, y) > 0.8
    assert isinstance(clf.net_.optimizer, user.SignMomentum)
    proc = _cli(tmp_path, "train", "--data", "iris", "--optimizer", "sign_momentum", "--lr",
                "0.01", "--epochs", "2", "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_an_unregistered_optimizer_still_copies_but_cannot_be_saved(iris, tmp_path):
    class Plain(ann.Optimizer):  # no name: trains and copies, but a file could not rebuild it
        def update(self, xp, p, g, state, lr, wb):
            return p - lr * g, state  # plain arithmetic: a new vector, which fit keeps

    X, y = iris
    net = ann.NN([4, 5, 3], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=1, optimizer=Plain(0.1))
    twin = net.copy()
    net.fit(X, y, epochs=1)
    twin.fit(X, y, epochs=1)
    _same(net, twin, X)
    assert ann.gradcheck(net, X[:10], y[:10]) < 1e-7
    with pytest.raises(ValueError, match=r"not registered.*name = "):
        net.save(tmp_path / "m.npz")
    net.save(tmp_path / "m.npz", include_optimizer=False)


# -- initializer ------------------------------------------------------------------------------
def test_initializer_recipe(user, iris, tmp_path):
    X, y = iris
    net = ann.NN([4, 16, 3], init={"name": "orthogonal", "gain": 2.0}, backend="numpy",
                 dtype="float64", seed=3)  # fmt: skip
    W1, _, W2, _ = net.get_weights()
    np.testing.assert_allclose(W1 @ W1.T, 4.0 * np.eye(4), atol=1e-12)  # orthogonal rows, x2
    np.testing.assert_allclose(W2.T @ W2, 4.0 * np.eye(3), atol=1e-12)
    loaded = _round_trips(net, X, y, tmp_path)
    assert loaded.layers[0].config()["init"] == {"name": "orthogonal", "gain": 2.0}
    proc = _cli(tmp_path, "train", "--data", "iris", "--init", "orthogonal", "--epochs", "1", "-q")
    assert proc.returncode == 0, proc.stderr


# -- layer ------------------------------------------------------------------------------------
def test_layer_recipe(user, iris, tmp_path, rng):
    be = ann.resolve("numpy", dtype="float64")
    layer = user.Scale()
    layer.build(be, None, 4)
    layer.params["s"] = be.asarray(rng.normal(size=4))
    ann.check_layer_backward(layer, rng.normal(size=(6, 4)), rng.normal(size=(6, 4)))
    X, y = iris
    net = ann.NN([ann.Dense(8, "tanh", fan_in=4), user.Scale(), ann.Dense(3)], backend="numpy",
                 dtype="float64", seed=4)  # fmt: skip
    assert net.parameter_names() == ["W1", "b1", "s2", "W3", "b3"]
    assert ann.gradcheck(net, X[:15], y[:15]) < 1e-7
    _round_trips(net, X, y, tmp_path)


# -- loss ---------------------------------------------------------------------------------------
def test_loss_recipe(user, tmp_path, rng):
    """A loss is one class: the output head takes it with no other change (gradients by central
    differences, its closed form, sample weights, copy, save/load and to())."""
    X = rng.normal(size=(30, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(2, size=30)  # heavy tails
    net = ann.NN([3, 6, 1], output="identity", loss={"name": "huber", "delta": 0.5},
                 activation="tanh", backend="numpy", dtype="float64", seed=2)  # fmt: skip
    assert not net.head.fused and not net.is_classifier
    assert ann.gradcheck(net, X, y) < 1e-7
    d = np.abs(net.predict(X)[:, 0] - y)
    closed = np.mean(np.where(d <= 0.5, 0.5 * d**2, 0.5 * (d - 0.25)))
    assert net.loss(X, y) == pytest.approx(closed, rel=1e-12)
    w = rng.uniform(0.5, 2.0, size=30)
    assert net.loss(X, y, sample_weight=w) == pytest.approx(
        np.sum(w * np.where(d <= 0.5, 0.5 * d**2, 0.5 * (d - 0.25))) / w.sum(), rel=1e-12
    )
    loaded = _round_trips(net, X, y, tmp_path)
    assert loaded.loss_fn.config() == {"name": "huber", "delta": 0.5}


# -- backend ----------------------------------------------------------------------------------
def test_backend_recipe(user, iris, tmp_path):
    X, y = iris
    net = ann.NN([4, 8, 3], backend="strict_gpu", dtype="float64", seed=5, dropout=0.2)
    assert net.backend.name == "strict_gpu" and not net.backend.is_host
    ref = ann.NN([4, 8, 3], backend="numpy", dtype="float64", seed=5, dropout=0.2)
    for model in (net, ref):
        model.fit(X, y, epochs=2, optimizer="adam", lr=0.01)
    _same(net, ref, X, rtol=1e-10)  # the same run as on NumPy, dropout masks included
    loaded = _round_trips(net, X, y, tmp_path)
    assert loaded.backend.name == "strict_gpu"  # the file names the backend it came from
    assert "strict_gpu" not in {ann.resolve("auto").name}
    clf = ann.NNClassifier((8,), backend="strict_gpu", max_iter=5, random_state=0)
    assert clf.fit(X, y).net_.backend.name == "strict_gpu"
    proc = _cli(tmp_path, "backends")
    assert proc.returncode == 0 and "strict_gpu" in proc.stdout
    proc = _cli(tmp_path, "train", "--data", "iris", "--backend", "strict_gpu", "--epochs", "1",
                "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "strict_gpu" in proc.stdout


def test_backend_names_cannot_be_taken_twice(user):
    with pytest.raises(ValueError, match="already taken"):
        ann.register_backend(user.STRICT_GPU)


def test_registry_rules():
    reg = registry.Registry("thing")
    reg.register("leaky_relu", dict, aliases=("lrelu",))
    assert "Leaky-ReLU" in reg and "LRELU" in reg and reg.canonical("lrelu") == "leaky_relu"
    with pytest.raises(ValueError, match="already registered"):
        reg.register("leakyrelu", list)
    with pytest.raises(ValueError, match=r"Unknown thing 'x'. Valid names: leaky_relu"):
        reg.lookup("x")
    reg.unregister("leaky_relu")
    assert "lrelu" not in reg and len(reg) == 0
