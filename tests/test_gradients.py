"""The claim of the product: hand-written backprop is right, and the same on every backend.

Ground truth is (1) central differences in float64 and (2) torch autograd on the same weights.
Parity is every backend against NumPy float64 (and NumPy float32 for float32 runs).
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from helpers import HIDDEN, PAIRS, WIDTHS, away_from_kinks, make_targets

import anyarray_nn as ann


def _net(sizes, act, output, loss, spec=None, dtype="float64", seed=0):
    name, device = (spec.name, spec.device) if spec else ("numpy", None)
    return ann.NN(
        sizes,
        activation=act,
        output=output,
        loss=loss,
        backend=name,
        device=device,
        dtype=dtype,
        seed=seed,
    )


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "-".join(p))
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
def test_gradient_parity_float64(backend, depth, pair, rng):
    output, loss = pair
    sizes = [6, *WIDTHS[:depth], 3]
    X = rng.normal(size=(11, 6))
    y = make_targets(output, loss, 11, 3, rng)
    for act in HIDDEN:
        ref = _net(sizes, act, output, loss).gradients(X, y)
        got = _net(sizes, act, output, loss, backend).gradients(X, y)
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == np.float64
            scale = np.max(np.abs(r))
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12 * scale, err_msg=act)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "-".join(p))
def test_gradient_parity_float32(backend, pair, rng):
    output, loss = pair
    sizes = [6, 9, 5, 3]
    X = rng.normal(size=(16, 6))
    y = make_targets(output, loss, 16, 3, rng)
    for act in HIDDEN:
        ref = _net(sizes, act, output, loss, dtype="float32").gradients(X, y)
        got = _net(sizes, act, output, loss, backend, dtype="float32").gradients(X, y)
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == np.float32
            scale = np.max(np.abs(r))
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * scale, err_msg=act)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "-".join(p))
@pytest.mark.parametrize("act", HIDDEN)
def test_gradcheck_every_activation_and_pair(act, pair, rng):
    output, loss = pair
    net = _net([5, 7, 6, 3], act, output, loss, seed=2)
    X = away_from_kinks(net, rng.normal(size=(40, 5)))[:12]
    y = make_targets(output, loss, len(X), 3, rng)
    assert len(X) >= 8
    assert ann.gradcheck(net, X, y) < 1e-7


def test_gradcheck_six_hidden_layers_of_different_widths(rng):
    """The write-ups' check (six hidden layers, sigmoid/ReLU) at machine-precision level."""
    net = ann.NN(
        [4, 8, 6, 7, 5, 9, 4, 3],
        activation=["sigmoid", "relu"] * 3,
        backend="numpy",
        dtype="float64",
        seed=5,
    )
    X = away_from_kinks(net, rng.normal(size=(60, 4)))[:16]
    y = rng.integers(0, 3, size=len(X))
    report = ann.gradcheck(net, X, y, per_parameter=True)
    assert report.max_relative_error < 1e-7
    assert report.max_abs_error < 1e-9
    assert list(report.relative_error) == net.parameter_names()


def test_gradcheck_detects_a_wrong_gradient(rng, monkeypatch):
    """The check can fail: break the sigmoid derivative and it must notice."""
    from anyarray_nn import activations

    net = _net([4, 5, 3], "sigmoid", "softmax", "cross_entropy")
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    monkeypatch.setattr(activations.Sigmoid, "derivative", lambda self, xp, z, a: a)
    assert ann.gradcheck(net, X, y) > 1e-2


def test_gradcheck_runs_in_float64_on_a_float32_torch_net(rng):
    pytest.importorskip("torch")
    net = ann.NN([4, 6, 3], activation="tanh", backend="torch", dtype="float32", seed=1)
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    assert ann.gradcheck(net, X, y) < 1e-7
    assert net.backend.name == "torch" and net.backend.dtype_name == "float32"


def _torch_reference(net, X, y, output, loss):
    """Loss and gradients from torch autograd, sharing nothing with our backward pass."""
    import torch

    F = torch.nn.functional
    weights = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    fns = {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "elu": F.elu,
    }
    h = torch.tensor(X)
    hidden = [layer.activation.name for layer in net.layers[:-1]]
    for i in range(len(net.layers)):
        h = h @ weights[2 * i] + weights[2 * i + 1]
        if i < len(hidden):
            h = fns[hidden[i]](h)
    n, k = h.shape
    if (output, loss) == ("softmax", "cross_entropy"):
        value = F.cross_entropy(h, torch.tensor(y))
    elif (output, loss) == ("sigmoid", "binary_cross_entropy"):
        value = F.binary_cross_entropy_with_logits(h, torch.tensor(y))
    else:
        a = {
            "softmax": lambda z: torch.softmax(z, 1),
            "sigmoid": torch.sigmoid,
            "identity": lambda z: z,
        }[output](h)
        t = torch.tensor(np.eye(k)[y] if output == "softmax" else y)
        value = F.mse_loss(a, t) if loss == "mse" else -(t * torch.log(a)).sum() / n
    value.backward()
    return value.item(), [w.grad.numpy() for w in weights]


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "-".join(p))
def test_gradients_equal_torch_autograd(backend, pair, rng):
    pytest.importorskip("torch")
    output, loss = pair
    X = rng.normal(size=(13, 5))
    y = make_targets(output, loss, 13, 4, rng)
    for act in HIDDEN:
        net = _net([5, 8, 6, 4], act, output, loss, backend)
        ref_loss, ref_grads = _torch_reference(net, X, y, output, loss)
        assert net.loss(X, y) == pytest.approx(ref_loss, rel=1e-12)
        for g, r in zip(net.gradients(X, y), ref_grads, strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-13, err_msg=act)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_and_gradients_keep_namespace_device_dtype(backend, dtype, rng):
    net = _net([5, 8, 3], "relu", "softmax", "cross_entropy", backend, dtype=dtype)
    be = net.backend
    X = net.check_inputs(rng.normal(size=(6, 5)))
    T = net.check_targets(rng.integers(0, 3, size=6), 6)
    loss, out, grads = net.backprop(X, T)
    arrays = [net.forward(X), loss, out, X, T, *grads]
    arrays += [layer.params[n] for layer, n in net.parameters()]
    for arr in arrays:
        assert array_api_compat.array_namespace(arr) is be.xp
        assert array_api_compat.device(arr) == be.device
        assert arr.dtype == be.dtype
