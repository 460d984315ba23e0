"""Initial weights: identical on every backend for a seed, with the documented statistics."""

from __future__ import annotations

import numpy as np
import pytest

import anyarray_nn as ann
from anyarray_nn import initializers
from anyarray_nn.random import STREAM_INIT, host_rng


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_initial_weights_bit_identical_across_backends(backend, dtype):
    ref = ann.NN([9, 17, 5, 3], activation=["relu", "tanh"], backend="numpy", dtype=dtype, seed=7)
    net = ann.NN(
        [9, 17, 5, 3],
        activation=["relu", "tanh"],
        backend=backend.name,
        device=backend.device,
        dtype=dtype,
        seed=7,
    )
    for a, b in zip(ref.get_weights(), net.get_weights(), strict=True):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)


def test_weights_are_the_documented_host_draws():
    """Independent recomputation: the first layer is He-normal from the init stream."""
    net = ann.NN([30, 20, 4], activation="relu", backend="numpy", dtype="float64", seed=11)
    expected = host_rng(11, STREAM_INIT).normal(0.0, np.sqrt(2.0 / 30), size=(30, 20))
    np.testing.assert_array_equal(net.get_weights()[0], expected)
    np.testing.assert_array_equal(net.get_weights()[1], np.zeros(20))


def test_different_seeds_differ_and_none_is_recorded():
    a = ann.NN([4, 5, 2], backend="numpy", seed=1).get_weights()[0]
    b = ann.NN([4, 5, 2], backend="numpy", seed=2).get_weights()[0]
    assert not np.array_equal(a, b)
    net = ann.NN([4, 5, 2], backend="numpy")
    again = ann.NN([4, 5, 2], backend="numpy", seed=net.seed)
    np.testing.assert_array_equal(net.get_weights()[0], again.get_weights()[0])


VARIANCES = {
    "normal": lambda fi, fo: 0.01**2,
    "uniform": lambda fi, fo: 0.05**2 / 3,
    "glorot_normal": lambda fi, fo: 2 / (fi + fo),
    "glorot_uniform": lambda fi, fo: 2 / (fi + fo),
    "he_normal": lambda fi, fo: 2 / fi,
    "he_uniform": lambda fi, fo: 2 / fi,
    "lecun_normal": lambda fi, fo: 1 / fi,
    "lecun_uniform": lambda fi, fo: 1 / fi,
}


@pytest.mark.parametrize("name", sorted(VARIANCES))
def test_initializer_variance_matches_closed_form(name):
    fan_in, fan_out = 400, 300
    w = initializers.get(name)(np.random.default_rng(0), fan_in, fan_out)
    assert w.shape == (fan_in, fan_out)
    var = VARIANCES[name](fan_in, fan_out)
    # the sample variance of 120k draws is within ~1% (4 sigma of its own spread)
    assert np.var(w) == pytest.approx(var, rel=0.02)
    assert abs(np.mean(w)) < 4 * np.sqrt(var / w.size)
    if "uniform" in name:
        assert np.max(np.abs(w)) <= np.sqrt(3 * var) + 1e-12


def test_zeros_and_aliases():
    assert not initializers.get("zeros")(np.random.default_rng(0), 3, 2).any()
    assert initializers.get("kaiming_normal") is initializers.he_normal
    assert initializers.get("xavier_uniform") is initializers.glorot_uniform
