"""The extension points every component shares: check_layer_backward, the Interval validator,
the optimizer state round trip, per-call passes, and dropout masks keyed by the global row."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import HIDDEN

import anyarray_nn as ann
from anyarray_nn.random import dropout_mask
from anyarray_nn.validation import Interval, check_bool, check_choice


def _built(layer, spec, fan_in, dtype="float64"):
    be = ann.resolve(spec.name, spec.device, dtype)
    layer.build(be, np.random.default_rng(0), fan_in)
    return layer


@pytest.mark.parametrize("activation", HIDDEN)
def test_check_layer_backward_passes_for_every_builtin_activation(backend, activation, rng):
    layer = _built(ann.Dense(5, activation), backend, 4)
    x = rng.normal(size=(9, 4)) + 0.05  # ReLU kinks have measure zero; a shift avoids exact 0
    check = ann.check_layer_backward(layer, x, rng.normal(size=(9, 5)))
    assert check.ok and check.error <= check.tolerance


def test_check_layer_backward_covers_dropout_in_training(backend, rng):
    layer = _built(ann.Dropout(0.5), backend, 6)
    x, g = rng.normal(size=(8, 6)), rng.normal(size=(8, 6))
    ann.check_layer_backward(layer, x, g, training=True, step=7)


def test_check_layer_backward_catches_a_wrong_derivative(rng):
    class Wrong(ann.Activation):  # tanh with its derivative off by 1%
        def forward(self, xp, z):
            return xp.tanh(z)

        def derivative(self, xp, z, a):
            return 1.01 * (1.0 - a * a)

    layer = _built(ann.Dense(3, Wrong()), ann.resolve("numpy"), 4)
    with pytest.raises(AssertionError, match="disagrees with central differences"):
        ann.check_layer_backward(layer, rng.normal(size=(5, 4)), rng.normal(size=(5, 3)))


def test_interval_checks_and_messages():
    unit = Interval("real", 0.0, 1.0, closed="left")
    assert unit.check("rate", np.float32(0.25)) == 0.25  # NumPy scalars are numbers
    assert isinstance(Interval("int", 1).check("epochs", np.int64(3)), int)
    for bad in (1.0, -0.1, float("nan"), True, "0.5", None):
        with pytest.raises(ValueError, match=r"rate must be a real number in \[0, 1\)"):
            unit.check("rate", bad)
    with pytest.raises(ValueError, match="an int >= 1"):
        Interval("int", 1).check("epochs", 2.0)
    with pytest.raises(ValueError, match="inf"):
        Interval("real", 0.0).check("l2", float("inf"))
    assert Interval("int", 1, allow_inf=True).check("n", float("inf")) == float("inf")
    assert check_bool("flag", np.bool_(True)) is True
    with pytest.raises(ValueError, match="one of 'a', 'b'"):
        check_choice("mode", "c", ("a", "b"))


def test_optimizer_state_round_trip_across_backends(backend, rng):
    """state_dict -> load_state_dict(onto another backend) -> the same next steps as the
    original, and clone() shares no buffer with it."""
    be = ann.resolve(backend.name, backend.device, "float64")
    host = ann.resolve("numpy", dtype="float64")
    p0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) for _ in range(6)]
    opt = ann.optimizers.get("adam", lr=0.05, amsgrad=True)
    p = host.asarray(p0.reshape(-1), copy=True)  # a network's flat parameter vector
    opt.build(p)
    for g in grads[:3]:
        p = opt.step(p, host.asarray(g.reshape(-1)))
    twin = opt.clone(be)
    q = be.asarray(ann.to_numpy(p), copy=True)
    assert twin.t == 3 and twin.config() == opt.config()
    for g in grads[3:]:
        p = opt.step(p, host.asarray(g.reshape(-1)))
        q = twin.step(q, be.asarray(g.reshape(-1)))
    np.testing.assert_allclose(ann.to_numpy(q), ann.to_numpy(p), rtol=1e-13)
    assert all(opt.state[k] is not twin.state[k] for k in opt.state)
    fresh = ann.optimizers.get("adam", lr=0.05, amsgrad=True)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.t == opt.t
    with pytest.raises(ValueError, match="keeps state"):
        ann.optimizers.get("sgd", momentum=0.9).load_state_dict(opt.state_dict())


def test_gradients_is_a_pure_function_from_several_threads(rng):
    """Each call has its own Pass: four threads computing gradients at once get the numbers a
    single thread gets."""
    net = ann.NN([6, 32, 32, 3], activation="tanh", backend="numpy", dtype="float64", seed=0)
    batches = [(rng.normal(size=(64, 6)), rng.integers(0, 3, size=64)) for _ in range(4)]
    expected = [net.gradients(X, y) for X, y in batches]
    results: list = [None] * 4

    def work(i: int) -> None:
        for _ in range(20):
            results[i] = net.gradients(*batches[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_slice_of_rows_gets_its_part_of_the_whole_batch_mask(backend):
    """Dropout masks are keyed by the row's position in the global batch (row_offset), so a
    rank holding rows r0:r1 draws exactly those rows of the one-process mask."""
    be = ann.resolve(backend.name, backend.device, "float64")
    whole = ann.to_numpy(dropout_mask(be.xp, (10, 7), 0.4, 3, 5, 1, be.dtype, be.device))
    for r0, r1 in ((0, 4), (4, 7), (7, 10), (3, 9)):
        part = dropout_mask(be.xp, (r1 - r0, 7), 0.4, 3, 5, 1, be.dtype, be.device, row_offset=r0)
        np.testing.assert_array_equal(ann.to_numpy(part), whole[r0:r1])


def test_fit_has_one_signature_and_one_docstring():
    from anyarray_nn import training

    assert ann.NN.fit is training.fit
    assert "validation_split" in ann.NN.fit.__doc__
