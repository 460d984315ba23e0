"""Save/load: no pickle, exact path, atomic, any backend to any backend, clear errors, exact
resume."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_iris

import anyarray_nn as ann
from anyarray_nn import io as ann_io


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(params=["safetensors", "npz"])
def file_format(request):
    """The format under test, which the file's extension selects."""
    return request.param


def _trained(spec=None, dtype="float64", **kw):
    name, device = (spec.name, spec.device) if spec else ("numpy", None)
    X, y = load_iris(return_X_y=True)
    net = ann.NN(
        [4, 10, 3],
        activation="leaky_relu",
        alpha=0.05,
        dropout=0.1,
        l2=1e-3,
        backend=name,
        device=device,
        dtype=dtype,
        seed=3,
        **kw,
    )
    net.fit((X - X.mean(0)) / X.std(0), y, epochs=2, optimizer="adam", lr=0.01)
    return net


def test_round_trip_from_every_backend_to_every_other(backend, tmp_path, iris, file_format):
    X, _ = iris
    src = _trained(backend)
    path = tmp_path / f"model.{file_format}"
    src.save(path)
    for target in ("numpy", "array_api_strict", "torch"):
        if target == "torch":
            pytest.importorskip("torch")
        net = ann.load(path, backend=target)
        assert net.backend.name == target
        for a, b in zip(src.get_weights(), net.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(net.predict(X), src.predict(X), rtol=1e-12)
        assert net.layers[0].activation.alpha == 0.05 and net.l2 == 1e-3
        assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dropout", "Dense"]
    default = ann.load(path)
    assert default.backend.name == src.backend.name
    assert default.backend.device_name == src.backend.device_name


def test_the_extension_decides_the_format_and_nothing_else_is_written(tmp_path):
    net = _trained()
    for name in ("model.npz", "model.safetensors", "MODEL.NPZ"):
        net.save(tmp_path / name)
    for name in ("model", "model.weights", "model.pt"):
        with pytest.raises(ValueError, match=r"\*\.safetensors .* \*\.npz"):
            net.save(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == ["MODEL.NPZ", "model.npz", "model.safetensors"]
    assert (tmp_path / "model.npz").read_bytes()[:4] == b"PK\x03\x04"  # a zip: NumPy's npz
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        assert npz["W1"].shape == (4, 10)
    header = (tmp_path / "model.safetensors").read_bytes()
    assert json.loads(header[8 : 8 + int.from_bytes(header[:8], "little")])["W1"]["shape"] == [
        4,
        10,
    ]
    # reading recognises the content: a renamed file still loads
    os.rename(tmp_path / "model.npz", tmp_path / "renamed.safetensors")
    np.testing.assert_array_equal(
        ann.load(tmp_path / "renamed.safetensors").get_weights()[0], net.get_weights()[0]
    )


def test_npz_files_open_without_pickle(tmp_path):
    path = tmp_path / "m.npz"
    _trained().save(path)
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["__metadata__"].tobytes())
        assert meta["format_version"] == ann_io.FORMAT_VERSION
        assert npz["W1"].shape == (4, 10)


def test_a_pickled_object_inside_is_refused(tmp_path):
    """An npz carrying an object array (which would need pickle) is rejected, never unpickled."""
    buf = io.BytesIO()
    meta = np.frombuffer(
        json.dumps({"format": "anyarray_nn", "format_version": 1}).encode(), dtype=np.uint8
    )
    np.savez(buf, __metadata__=meta, W1=np.array([{"evil": 1}], dtype=object))
    path = tmp_path / "evil.npz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(ann.ModelFileError):
        ann.load(path)


def test_truncated_files_raise_a_clear_error(tmp_path, file_format):
    path = tmp_path / f"m.{file_format}"
    _trained().save(path)
    data = path.read_bytes()
    for cut in (0, 3, 8, 20, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ann.ModelFileError, match=r"truncated or corrupted|not a readable"):
            ann.load(path)


def test_corrupted_and_foreign_files(tmp_path, file_format):
    path = tmp_path / f"m.{file_format}"
    _trained().save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(ann.ModelFileError, match="corrupted"):
        ann.load(path)
    # one flipped bit in the last tensor's data (finite values, a plausible file) is caught too
    path.unlink()
    _trained().save(path)
    data = bytearray(path.read_bytes())
    if file_format == "safetensors":
        data[-1] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(ann.ModelFileError, match="checksum"):
            ann.load(path)
    path.write_text("hello, I am a text file")
    with pytest.raises(ann.ModelFileError):
        ann.load(path)
    with pytest.raises(FileNotFoundError, match="No model file"):
        ann.load(tmp_path / "missing.safetensors")


def test_wrong_version_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(ann_io, "FORMAT_VERSION", 99)
    path = tmp_path / "future.safetensors"
    _trained().save(path)
    monkeypatch.setattr(ann_io, "FORMAT_VERSION", 1)
    with pytest.raises(ann.ModelFileError, match=r"format version 99.*Upgrade"):
        ann.load(path)


def test_atomic_save_keeps_the_old_file_on_a_crash(tmp_path, monkeypatch, file_format):
    path = tmp_path / f"model.{file_format}"
    net = _trained()
    net.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ann_io.os, "replace", crash)
    net.fit(np.ones((4, 4)), [0, 1, 2, 0], epochs=1)
    with pytest.raises(OSError, match="simulated"):
        net.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]  # no temp file left behind


def test_crash_while_writing_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    _trained().save(path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class Half:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, payload):
            self.handle.write(payload[: len(payload) // 2])
            raise KeyboardInterrupt  # the process is killed mid-write

    monkeypatch.setattr(ann_io.os, "fdopen", lambda fd, mode: Half(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        _trained().save(path, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_resume_equals_uninterrupted(tmp_path, iris, file_format):
    X, y = iris
    kw = {"activation": "relu", "dropout": 0.2, "l2": 1e-3, "dtype": "float64", "seed": 9}
    straight = ann.NN([4, 12, 3], backend="numpy", **kw)
    straight.fit(X, y, epochs=5, batch_size=16, optimizer="adam", lr=0.01)
    first = ann.NN([4, 12, 3], backend="numpy", **kw)
    first.fit(X, y, epochs=3, batch_size=16, optimizer="adam", lr=0.01)
    first.save(tmp_path / f"ckpt.{file_format}")
    resumed = ann.load(
        tmp_path / f"ckpt.{file_format}", backend="array_api_strict", device="device1"
    )
    assert type(resumed.optimizer).__name__ == "Adam" and resumed.optimizer.t == 30
    resumed.fit(X, y, epochs=2, batch_size=16)
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def test_without_optimizer_state(tmp_path):
    path = tmp_path / "light.npz"
    _trained().save(path, include_optimizer=False)
    net = ann.load(path)
    assert net.optimizer is None and net.epochs_trained_ == 2


def test_dtype_override_and_unregistered_loss_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    _trained().save(path)
    assert ann.load(path, dtype="float32").get_weights()[0].dtype == np.float32

    class Unnamed(ann.Loss):  # no name: not registered, so it cannot be rebuilt from a file
        pass

    net = ann.NN([2, 3, 2], loss=Unnamed(), backend="numpy")
    with pytest.raises(ValueError, match=r"loss .* not registered.*name = "):
        net.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_saved_files_get_ordinary_permissions(tmp_path):
    path = tmp_path / "m.npz"
    _trained().save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    _trained().save(path, overwrite=True)  # overwriting keeps the file's mode
    assert path.stat().st_mode & 0o777 == 0o640


def test_initializer_with_arguments_or_custom_round_trips(tmp_path):
    """Found by the examples: a bound initializer (normal with std) saved as 'custom' and could
    not be loaded."""
    from anyarray_nn import initializers

    def mine(rng, fan_in, fan_out):
        return np.full((fan_in, fan_out), 0.5)

    for init in (initializers.get("normal", std=1.0), initializers.he_uniform, mine):
        net = ann.NN([4, 8, 3], init=init, backend="numpy", seed=0)
        net.save(tmp_path / "m.safetensors", overwrite=True)
        back = ann.load(tmp_path / "m.safetensors")
        for a, b in zip(net.get_weights(), back.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert initializers.spec(initializers.get("normal", std=1.0)) == {"name": "normal", "std": 1.0}
    assert initializers.get({"name": "uniform", "limit": 0.1}).keywords == {"limit": 0.1}


def test_metadata_is_saved_loaded_and_copied(tmp_path, file_format):
    net = _trained()
    net.metadata = {"dataset": "iris", "classes": ["setosa", "versicolor", "virginica"]}
    path = tmp_path / f"m.{file_format}"
    net.save(path)
    assert ann.load(path).metadata == net.metadata
    twin = net.copy()
    twin.metadata["dataset"] = "changed"
    assert net.metadata["dataset"] == "iris"


def test_diverged_training_is_a_value_error_too():
    assert issubclass(ann.TrainingDivergedError, ValueError)
    assert issubclass(ann.TrainingDivergedError, FloatingPointError)
