"""Dropout: counter-based masks that are bit-identical on every backend, with the right statistics,
reused in backward, active only in training."""

from __future__ import annotations

import numpy as np
import pytest

import anyarray_nn as ann
from anyarray_nn.layers import Dropout
from anyarray_nn.random import _key32, dropout_mask, random_bits


def _lowbias32_uint32(x: np.ndarray) -> np.ndarray:
    """Independent reference: the same mixer in native wrapping uint32 arithmetic."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def test_bits_equal_a_native_uint32_implementation(backend):
    be = ann.resolve(backend.name, backend.device, "float32")
    shape = (37, 53)
    got = ann.to_numpy(random_bits(be.xp, shape, seed=2024, step=9, layer=3, device=be.device))
    k1, k2 = _key32(2024, 9, 3)
    counter = np.arange(37 * 53, dtype=np.uint32).reshape(shape)
    want = _lowbias32_uint32(_lowbias32_uint32(counter ^ np.uint32(k1)) ^ np.uint32(k2))
    np.testing.assert_array_equal(got, want.astype(np.int64))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masks_are_bit_identical_across_backends(backend, dtype):
    ref_be = ann.resolve("numpy", None, dtype)
    be = ann.resolve(backend.name, backend.device, dtype)
    for step in (0, 1, 2**33 + 5):
        ref = dropout_mask(ref_be.xp, (64, 33), 0.3, 7, step, 1, ref_be.dtype)
        got = dropout_mask(be.xp, (64, 33), 0.3, 7, step, 1, be.dtype, be.device)
        assert got.dtype == be.dtype
        np.testing.assert_array_equal(ann.to_numpy(got), ref)


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.8])
def test_keep_rate_within_three_standard_errors(rate):
    be = ann.resolve("numpy", None, "float64")
    kept = dropout_mask(be.xp, (500, 400), rate, 3, 11, 0, be.dtype) > 0
    n, p = kept.size, 1.0 - rate
    assert abs(kept.mean() - p) < 3 * np.sqrt(p * (1 - p) / n)
    # inverted dropout keeps the expectation: kept values are exactly 1/(1-rate)
    values = dropout_mask(be.xp, (10, 10), rate, 3, 11, 0, be.dtype)
    assert set(np.unique(values)) <= {0.0, 1.0 / (1.0 - rate)}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_no_correlation_between_rows_steps_or_layers():
    be = ann.resolve("numpy", None, "float64")
    shape, rate = (256, 512), 0.5
    m0 = dropout_mask(be.xp, shape, rate, 5, 100, 2, be.dtype) > 0
    m_step = dropout_mask(be.xp, shape, rate, 5, 101, 2, be.dtype) > 0
    m_layer = dropout_mask(be.xp, shape, rate, 5, 100, 3, be.dtype) > 0
    m_seed = dropout_mask(be.xp, shape, rate, 6, 100, 2, be.dtype) > 0
    bound = 3 / np.sqrt(m0.size)  # 3 standard errors of a correlation of independent bits
    assert abs(_corr(m0, m_step)) < bound
    assert abs(_corr(m0, m_layer)) < bound
    assert abs(_corr(m0, m_seed)) < bound
    rows = abs(_corr(m0[:-1], m0[1:]))  # each row with the next
    cols = abs(_corr(m0[:, :-1], m0[:, 1:]))
    assert rows < 3 / np.sqrt(m0[1:].size) and cols < 3 / np.sqrt(m0[:, 1:].size)
    # a pattern repeated every row would show up as equal row means; it does not
    row_means = m0.mean(axis=1)
    assert np.std(row_means) == pytest.approx(np.sqrt(0.25 / shape[1]), rel=0.25)


def test_backward_reuses_the_forward_mask(backend, rng):
    be = ann.resolve(backend.name, backend.device, "float64")
    layer = Dropout(0.4)
    layer.build(be, None, 6)
    layer.seed, layer.layer_index = 1, 2
    ctx = ann.Pass(training=True, step=3)
    x = rng.normal(size=(50, 6)) + 5.0  # never zero, so zeros in y mark dropped units
    y = ann.to_numpy(layer.forward(be.asarray(x), ctx))
    g = rng.normal(size=(50, 6))
    back = ann.to_numpy(layer.backward(be.asarray(g), ctx))
    mask = y / x
    np.testing.assert_allclose(back, g * mask, rtol=1e-15)
    assert set(np.round(np.unique(mask), 12)) == {0.0, round(1 / 0.6, 12)}
    inference = ann.to_numpy(layer.forward(be.asarray(x)))
    np.testing.assert_array_equal(inference, x)


def test_dropout_gradients_match_central_differences_for_a_fixed_mask(rng):
    """Training-mode backprop through dropout, against finite differences of the same masked
    objective."""
    net = ann.NN(
        [5, 9, 7, 3], activation="tanh", dropout=0.3, backend="numpy", dtype="float64", seed=4
    )
    X, y = rng.normal(size=(12, 5)), rng.integers(0, 3, size=12)
    Xd, T = net.check_inputs(X), net.check_targets(y, 12)

    def objective() -> float:
        return float(net.backprop(Xd, T, ann.Pass(training=True, step=0))[0])

    flat_grad = np.array(net.backprop(Xd, T, ann.Pass(training=True, step=0))[2])
    analytic = net.layout.split(flat_grad)
    eps = 1e-6
    for (layer, name), g in zip(net.parameters(), analytic, strict=True):
        w = layer.params[name]
        flat = w.reshape(-1)
        for i in range(0, flat.size, 3):
            orig = flat[i]
            flat[i] = orig + eps
            plus = objective()
            flat[i] = orig - eps
            minus = objective()
            flat[i] = orig
            assert (plus - minus) / (2 * eps) == pytest.approx(g.reshape(-1)[i], abs=1e-8)


def test_dropout_is_off_outside_training(rng):
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, size=20)
    with_dropout = ann.NN([4, 8, 3], dropout=0.5, backend="numpy", dtype="float64", seed=1)
    plain = ann.NN([4, 8, 3], backend="numpy", dtype="float64", seed=1)
    np.testing.assert_array_equal(with_dropout.predict(X), plain.predict(X))
    assert with_dropout.loss(X, y) == plain.loss(X, y)
    for a, b in zip(with_dropout.gradients(X, y), plain.gradients(X, y), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_rates():
    for rate in (-0.1, 1.0, 1.5, "0.5"):
        with pytest.raises(ValueError, match="Dropout rate"):
            Dropout(rate)
    with pytest.raises(ValueError, match="dropout lists 1 rates"):
        ann.NN([4, 5, 5, 3], dropout=[0.1], backend="numpy")


@pytest.mark.parametrize("native", [True, False], ids=["uint32-fast-path", "int64-reference"])
def test_both_hash_paths_give_the_same_bits(monkeypatch, native):
    """The uint32 fast path (NumPy, CuPy, strict) and the int64 emulation (torch) agree."""
    import anyarray_nn.random as rnd

    monkeypatch.setattr(rnd, "_native_uint32", lambda xp: native)
    be = ann.resolve("numpy", None, "float32")
    got = ann.to_numpy(random_bits(be.xp, (19, 23), seed=5, step=2**40 + 3, layer=7))
    k1, k2 = _key32(5, 2**40 + 3, 7)
    counter = np.arange(19 * 23, dtype=np.uint32).reshape(19, 23)
    want = _lowbias32_uint32(_lowbias32_uint32(counter ^ np.uint32(k1)) ^ np.uint32(k2))
    np.testing.assert_array_equal(got.astype(np.int64), want.astype(np.int64))
