"""Activations and losses against closed forms and independent libraries (SciPy, torch)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import special

import anyarray_nn as ann
from anyarray_nn import activations, losses

CLOSED_FORMS = {
    "identity": lambda z: z,
    "sigmoid": special.expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "softmax": lambda z: special.softmax(z, axis=1),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_activation_values_and_vjp(backend, name, rng):
    be = ann.resolve(backend.name, backend.device, "float64")
    z = rng.normal(size=(6, 5)) * 3
    z[np.abs(z) < 1e-3] = 0.5  # away from kinks for the finite differences
    act = activations.get(name)
    a = act.forward(be.xp, be.asarray(z))
    np.testing.assert_allclose(ann.to_numpy(a), CLOSED_FORMS[name](z), rtol=1e-13, atol=1e-15)
    # VJP against central differences of the closed form: d/dz sum(g * f(z))
    g = rng.normal(size=z.shape)
    got = ann.to_numpy(act.backward(be.xp, be.asarray(z), a, be.asarray(g)))
    eps, num = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        f = CLOSED_FORMS[name]
        num[idx] = (np.sum(g * f(zp)) - np.sum(g * f(zm))) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_activations_are_stable_for_huge_inputs(name, dtype):
    be = ann.resolve("numpy", None, dtype)
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]])
    act = activations.get(name)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        a = act.forward(be.xp, be.asarray(z))
        if name != "softmax":
            d = act.derivative(be.xp, be.asarray(z), a)
            assert np.all(np.isfinite(d))
    assert np.all(np.isfinite(a))
    if name == "sigmoid":
        np.testing.assert_array_equal(a[0, [0, 4]], [0.0, 1.0])


def test_unknown_activation_lists_names():
    with pytest.raises(ValueError, match="relu") as err:
        activations.get("swishy")
    assert "leaky_relu" in str(err.value) and "softmax" in str(err.value)
    with pytest.raises(ValueError, match="Valid names"):
        ann.NN([2, 3, 2], activation="swishy", backend="numpy")


def test_unknown_loss_and_initializer_list_names():
    with pytest.raises(ValueError, match="cross_entropy"):
        ann.NN([2, 3, 2], loss="hinge", backend="numpy")
    with pytest.raises(ValueError, match="he_normal"):
        ann.NN([2, 3, 2], init="orthogonal", backend="numpy")


def _one_hot(y, k):
    return np.eye(k)[y]


def test_losses_match_torch_functional(backend, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    be = ann.resolve(backend.name, backend.device, "float64")
    xp = be.xp
    z = rng.normal(size=(7, 4)) * 5
    y = rng.integers(0, 4, size=7)
    t01 = rng.uniform(size=(7, 4)).round()
    tz = torch.tensor(z)
    ce = losses.CrossEntropy().value_from_logits(xp, be.asarray(z), be.asarray(_one_hot(y, 4)))
    assert be.float(ce) == pytest.approx(F.cross_entropy(tz, torch.tensor(y)).item(), rel=1e-13)
    bce = losses.BinaryCrossEntropy().value_from_logits(xp, be.asarray(z), be.asarray(t01))
    ref = F.binary_cross_entropy_with_logits(tz, torch.tensor(t01)).item()
    assert be.float(bce) == pytest.approx(ref, rel=1e-13)
    mse = losses.MSE().value(xp, be.asarray(z), be.asarray(t01))
    assert be.float(mse) == pytest.approx(F.mse_loss(tz, torch.tensor(t01)).item(), rel=1e-13)


def test_fused_losses_are_stable_for_huge_logits():
    be = ann.resolve("numpy", None, "float32")
    z = be.asarray(np.array([[1e4, -1e4], [-1e4, 1e4]]))
    t = be.asarray(np.array([[1.0, 0.0], [1.0, 0.0]]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ce = float(losses.CrossEntropy().value_from_logits(be.xp, z, t))
        bce = float(losses.BinaryCrossEntropy().value_from_logits(be.xp, z, t))
    # closed forms: row 1 costs 0, row 2 costs 2e4 -> CE mean 1e4; BCE mean (0+0+1e4+1e4)/4
    assert ce == pytest.approx(1e4)
    assert bce == pytest.approx(5e3)


def test_cross_entropy_matches_sklearn_log_loss(rng):
    from sklearn.metrics import log_loss

    net = ann.NN([5, 8, 3], backend="numpy", dtype="float64", seed=3)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40)
    assert net.loss(X, y) == pytest.approx(log_loss(y, net.predict(X), labels=[0, 1, 2]), 1e-12)


def test_select_equals_where_bit_for_bit(backend, rng):
    be = ann.resolve(backend.name, backend.device, "float32")
    z, a, b = (rng.normal(size=(64, 33)) for _ in range(3))
    z[0, :5] = 0.0
    b[1, :3] = 0.0
    got = activations.select(be.xp, be.asarray(z) > 0, be.asarray(a), be.asarray(b))
    want = np.where(z > 0, a.astype(np.float32), b.astype(np.float32))
    np.testing.assert_array_equal(ann.to_numpy(got), want)
