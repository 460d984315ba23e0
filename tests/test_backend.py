"""Backend resolution, errors that name the fix, and the single conversion point."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import anyarray_nn as ann
from anyarray_nn import backend as backend_mod


def test_resolve_every_backend_keeps_namespace_device_dtype(backend):
    for dtype in ("float32", "float64"):
        be = ann.resolve(backend.name, backend.device, dtype)
        x = be.asarray(np.arange(6.0).reshape(2, 3))
        assert array_api_compat.array_namespace(x) is be.xp
        assert x.dtype == getattr(be.xp, dtype)
        assert be.owns(x)
        np.testing.assert_array_equal(ann.to_numpy(x), np.arange(6.0).reshape(2, 3))


def test_auto_is_cupy_only_with_a_gpu():
    expected = "cupy" if backend_mod.BACKENDS["cupy"].status() is None else "numpy"
    assert ann.resolve("auto").name == expected


def test_namespace_objects_are_accepted():
    import array_api_strict
    import numpy

    assert ann.resolve(numpy).name == "numpy"
    assert ann.resolve(array_api_strict, "device1").name == "array_api_strict"


def test_unknown_backend_lists_valid_names():
    with pytest.raises(ValueError) as err:
        ann.resolve("tensorflow")
    msg = str(err.value)
    for name in ("numpy", "cupy", "torch", "array_api_strict", "auto"):
        assert name in msg


def test_bad_dtype_and_device_are_named():
    with pytest.raises(ValueError, match="float32, float64"):
        ann.resolve("numpy", dtype="float16")
    with pytest.raises(ValueError, match="CPU only"):
        ann.resolve("numpy", device="cuda")
    with pytest.raises(ValueError, match="device1"):
        ann.resolve("array_api_strict", device="device7")


@pytest.mark.skipif(backend_mod.BACKENDS["cupy"].status() is None, reason="a GPU is usable here")
def test_cupy_without_gpu_says_why_and_lists_alternatives():
    with pytest.raises(ann.BackendUnavailableError) as err:
        ann.NN([2, 3, 2], backend="cupy")
    msg = str(err.value)
    assert "cupy" in msg and ("not installed" in msg or "no CUDA device" in msg)
    assert "numpy: available" in msg


def test_missing_package_is_reported(monkeypatch):
    real = backend_mod._installed
    monkeypatch.setattr(backend_mod, "_installed", lambda m: False if m == "torch" else real(m))
    with pytest.raises(ann.BackendUnavailableError, match=r"torch.*not installed"):
        ann.resolve("torch")
    assert "torch" not in ann.available_backends()


def test_torch_cuda_without_gpu_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ann.BackendUnavailableError, match="no CUDA device"):
        ann.resolve("torch", "cuda")


def test_strict_device1_refuses_implicit_numpy_conversion():
    be = ann.resolve("array_api_strict", "device1", "float64")
    x = be.asarray(np.ones((2, 2)))
    with pytest.raises(RuntimeError):
        np.asarray(x)
    np.testing.assert_array_equal(ann.to_numpy(x), np.ones((2, 2)))


def test_two_models_on_two_backends_in_one_process():
    X = np.random.default_rng(0).normal(size=(5, 3))
    a = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=1)
    b = ann.NN([3, 4, 2], backend="array_api_strict", device="device1", dtype="float32", seed=1)
    pa, pb = a.predict(X), b.predict(X)
    assert a.backend.name == "numpy" and b.backend.name == "array_api_strict"
    assert pa.dtype == np.float64 and pb.dtype == np.float32
    np.testing.assert_allclose(pa, pb, rtol=1e-5)


def test_a_backend_object_keeps_its_dtype_unless_overridden():
    be = ann.resolve("numpy", dtype="float64")
    assert ann.NN([2, 3, 2], backend=be).backend.dtype_name == "float64"
    assert ann.NN([2, 3, 2], backend=be, dtype="float32").backend.dtype_name == "float32"
    assert ann.NN([2, 3, 2], backend="numpy").backend.dtype_name == "float32"


def test_torch_cuda_resolves_to_the_concrete_current_device(monkeypatch):
    """Tensors made on ``"cuda"`` report ``cuda:N``; a backend that kept plain ``"cuda"`` failed
    every device equality (owning its own arrays included). Checked without a GPU by telling
    torch it has two and the current one is 1."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    be = ann.resolve("torch", "cuda")
    assert be.device == torch.device("cuda", 1) and be.device_name == "cuda:1"
    assert ann.resolve("torch", "cuda:0").device == torch.device("cuda", 0)
