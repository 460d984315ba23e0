"""Host data handed to a backend (issue 25, item 6): memory is shared where promised, the
numbers equal the copying path and the NumPy backend's, the user's array is never written, and
bad input is refused with the same message on every backend.

Sharing is observed directly: a torch tensor's ``data_ptr()`` and a JAX array's
``unsafe_buffer_pointer()`` against the NumPy array's address (``ctypes.data``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import enable_jax_x64

import anyarray_nn as ann
from anyarray_nn.backend import XLA_CPU_ALIGNMENT, aligned_empty
from anyarray_nn.inputs import all_finite


def _aligned(x: np.ndarray) -> np.ndarray:
    out = aligned_empty(x.shape, x.dtype)
    out[...] = x
    return out


def _unaligned(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``x`` whose address is 8 bytes past a 64-byte boundary."""
    raw = aligned_empty((x.nbytes + 8,), np.uint8)
    out = raw[8 : 8 + x.nbytes].view(x.dtype).reshape(x.shape)
    out[...] = x
    assert out.ctypes.data % XLA_CPU_ALIGNMENT == 8
    return out


def _data(dtype: str = "float64", n: int = 301) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 5)).astype(dtype), rng.integers(0, 3, n)


# -- sharing -------------------------------------------------------------------------------------
def test_aligned_empty_is_aligned_and_c_contiguous() -> None:
    for shape, dtype in (((7, 3), "float32"), ((0, 4), "float64"), ((5,), "int32")):
        a = aligned_empty(shape, dtype)
        assert a.shape == shape and a.dtype == np.dtype(dtype) and a.flags.c_contiguous
        assert a.size == 0 or a.ctypes.data % XLA_CPU_ALIGNMENT == 0  # empty: no address


@pytest.fixture
def jax_mod():
    jax = pytest.importorskip("jax", reason="jax not installed (pip install .[jax])")
    enable_jax_x64()
    return jax


def test_jax_cpu_uses_an_aligned_array_in_place(jax_mod) -> None:
    X, _ = _data("float64")
    X = _aligned(X)
    net = ann.NN([5, 4, 3], backend="jax", dtype="float64", seed=0)
    for device in (net.backend.asarray(X), net.check_inputs(X)):
        assert device.unsafe_buffer_pointer() == X.ctypes.data  # no copy
        np.testing.assert_array_equal(np.asarray(device), X)


def test_jax_cpu_copies_what_it_cannot_share(jax_mod) -> None:
    """Unaligned, another dtype, not C-contiguous, read-only, or copy=True: a private copy,
    with the same values (cast as NumPy casts)."""
    X, _ = _data("float64")
    net = ann.NN([5, 4, 3], backend="jax", dtype="float64", seed=0)
    ro = _aligned(X)
    ro.flags.writeable = False
    cases = {
        "unaligned": (_unaligned(X), X),
        "float32": (_aligned(X.astype(np.float32)), X.astype(np.float32).astype(np.float64)),
        "fortran": (np.asfortranarray(X), X),
        "read-only": (ro, X),
    }
    for name, (host, expected) in cases.items():
        device = net.check_inputs(host)
        assert device.unsafe_buffer_pointer() != host.ctypes.data, name
        assert device.unsafe_buffer_pointer() % XLA_CPU_ALIGNMENT == 0, name
        np.testing.assert_array_equal(np.asarray(device), expected, err_msg=name)
    aligned = _aligned(X)
    fresh = net.backend.asarray(aligned, copy=True)
    assert fresh.unsafe_buffer_pointer() != aligned.ctypes.data
    f32 = ann.NN([5, 4, 3], backend="jax", dtype="float32", seed=0).check_inputs(aligned)
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(f32), X.astype(np.float32))


def test_jax_keeps_a_shared_array_alive(jax_mod) -> None:
    """JAX holds a reference: dropping the NumPy name does not free the memory it reads."""
    X = _aligned(np.arange(40.0).reshape(8, 5))
    device = ann.NN([5, 3], backend="jax", dtype="float64").backend.asarray(X)
    del X
    import gc

    gc.collect()
    np.testing.assert_array_equal(np.asarray(device), np.arange(40.0).reshape(8, 5))


def test_torch_cpu_shares_matching_data() -> None:
    pytest.importorskip("torch")
    X, _ = _data("float32")
    net = ann.NN([5, 4, 3], backend="torch", dtype="float32", seed=0)
    assert net.check_inputs(X).data_ptr() == X.ctypes.data
    assert net.check_inputs(X.astype(np.float64)).data_ptr() != X.ctypes.data  # cast: a copy


def _need(backend: str) -> None:
    if backend != "numpy":
        pytest.importorskip(backend, reason=f"{backend} not installed")
    if backend == "jax":
        enable_jax_x64()


def test_numpy_shares_matching_data() -> None:
    X, _ = _data("float32")
    net = ann.NN([5, 4, 3], backend="numpy", dtype="float32", seed=0)
    assert np.shares_memory(net.check_inputs(X), X)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_fit_never_writes_into_shared_data(backend: str) -> None:
    _need(backend)
    X, y = _data("float64")
    X = _aligned(X)
    before = X.copy()
    net = ann.NN([5, 8, 3], backend=backend, dtype="float64", seed=0, dropout=0.1)
    net.fit(X, y, epochs=2, batch_size=32, optimizer="adam", lr=1e-2, verbose=0,
            validation_data=(X, y))  # fmt: skip
    net.predict(X)
    np.testing.assert_array_equal(X, before)


# -- the numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("compile_", [None, False])
def test_jax_fit_from_shared_memory_equals_the_copying_path_and_numpy(jax_mod, compile_) -> None:
    """The same fit from an aligned (shared) array, an unaligned one (copied) and a device
    array gives the same weights; the NumPy backend (an independent library, op by op) agrees
    to 1e-9 in float64."""
    X, y = _data("float64")
    results = {}
    for name, data in (("shared", _aligned(X)), ("copied", _unaligned(X)), ("device", None)):
        net = ann.NN([5, 8, 3], backend="jax", dtype="float64", seed=0)
        Xa = net.backend.asarray(X) if data is None else data
        net.fit(Xa, y, epochs=3, batch_size=64, optimizer="adam", lr=1e-2, verbose=0,
                compile=compile_)  # fmt: skip
        results[name] = net.get_weights()
    ref = ann.NN([5, 8, 3], backend="numpy", dtype="float64", seed=0)
    ref.fit(X, y, epochs=3, batch_size=64, optimizer="adam", lr=1e-2, verbose=0)
    for name, weights in results.items():
        for w, r, s in zip(weights, ref.get_weights(), results["copied"], strict=True):
            np.testing.assert_allclose(w, s, rtol=0, atol=1e-13, err_msg=name)
            np.testing.assert_allclose(w, r, rtol=0, atol=1e-9, err_msg=name)


# -- bad input: the same refusal on every backend -------------------------------------------------
def _bad_inputs() -> dict[str, np.ndarray]:
    X, _ = _data("float64", n=20)
    nan, inf, big = X.copy(), X.copy(), X.copy()
    nan[3, 2], inf[7, 0], big[5, 4] = np.nan, -np.inf, 1e300
    return {"nan": nan, "inf": inf, "big": big, "shape": X[:, :4], "complex": X + 1j,
            "nan32": nan.astype(np.float32)}  # fmt: skip


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_bad_host_input_is_refused_with_the_same_message(case: str) -> None:
    X = _bad_inputs()[case]
    y = np.zeros(len(X), dtype=np.int64)
    messages = {}
    for backend in [b for b in ("numpy", "torch", "jax") if b in ann.available_backends()]:
        _need(backend)
        net = ann.NN([5, 4, 3], backend=backend, dtype="float32", seed=0)
        with pytest.raises(ValueError) as err:
            net.fit(_aligned(X) if X.flags.c_contiguous else X, y, epochs=1, verbose=0)
        messages[backend] = str(err.value)
    assert len(set(messages.values())) == 1, messages
    expected = {"nan": "NaN or inf (first at row 3, column 2)", "nan32": "row 3, column 2",
                "inf": "row 7, column 0", "big": "overflows float32", "shape": "(20, 4)",
                "complex": "complex"}  # fmt: skip
    assert expected[case] in messages["numpy"]


def test_all_finite_agrees_with_isfinite_in_every_dtype() -> None:
    """The one-sum check against NumPy's entrywise isfinite, including sums that overflow
    although every value is finite (then the entrywise check decides)."""
    rng = np.random.default_rng(1)
    for dtype in ("float16", "float32", "float64"):
        top = float(np.finfo(dtype).max)
        base = rng.normal(size=(50, 7)).astype(dtype)
        huge = np.full((4, 3), top, dtype=dtype)  # finite, but the sum overflows
        cases = [base, huge, -huge, base[:0]]
        for bad in (np.nan, np.inf, -np.inf):
            x = base.copy()
            x[11, 4] = bad
            cases.append(x)
            y = huge.copy()
            y[2, 1] = bad
            cases.append(y)
        for x in cases:
            assert all_finite(x) == bool(np.all(np.isfinite(x))), (dtype, x)


@pytest.mark.parametrize("backend", ["jax", "numpy"])
def test_an_immutable_array_is_checked_for_nan_once(monkeypatch, backend: str) -> None:
    """A JAX array cannot change, so ``fit`` checks it for NaN/inf once and later calls given
    the same array do not read it again; another array is checked (and refused when it holds
    a NaN). A NumPy array can change between calls, so it is checked every time."""
    if backend == "jax":
        pytest.importorskip("jax")
    from anyarray_nn import inputs

    reads = []
    device_check, host_check = inputs._device_all_finite, inputs.all_finite
    monkeypatch.setattr(
        inputs, "_device_all_finite", lambda xp, X: reads.append(1) or device_check(xp, X)
    )
    monkeypatch.setattr(inputs, "all_finite", lambda X: reads.append(1) or host_check(X))
    net = ann.NN([4, 5, 3], backend=backend, seed=0)
    rng = np.random.default_rng(0)
    host = rng.normal(size=(40, 4)).astype(np.float32)
    X, y = net.backend.asarray(host), rng.integers(0, 3, 40)
    for _ in range(3):
        net.fit(X, y, epochs=1, batch_size=16)
    assert len(reads) == (1 if backend == "jax" else 3)
    host[7, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        net.fit(net.backend.asarray(host), y, epochs=1)
    if backend == "numpy":  # the same array, changed in place, is read again and refused
        X[7, 2] = np.nan
        with pytest.raises(ValueError, match="NaN or inf"):
            net.fit(X, y, epochs=1)
