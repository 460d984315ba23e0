"""Reliability: each probe that once failed (issue 13, and the no-surprises items of issue 11)
reproduced as a test. Independent references: a straight run of the same training, NumPy's own
reading of the data, and files written by hand in the documented format."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from sklearn.datasets import load_iris

import anyarray_nn as ann
from anyarray_nn import datasets
from anyarray_nn import io as ann_io

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _net(spec=None, **kw):
    name, device = (spec.name, spec.device) if spec else ("numpy", None)
    kw.setdefault("dtype", "float64")
    return ann.NN([4, 8, 3], backend=name, device=device, seed=0, **kw)


# -- 1. divergence in the last step of an epoch --------------------------------------------------
def test_divergence_in_the_last_step_is_caught_and_the_good_checkpoint_survives(tmp_path, iris):
    X, y = iris
    path = tmp_path / "ck.safetensors"
    net = _net(dtype="float32")
    ck = ann.ModelCheckpoint(path, monitor="loss")
    net.fit(X, y, epochs=2, batch_size=30, lr=0.1, callbacks=[ck])
    good = net.get_weights()
    # one batch per epoch: the loss is measured before the only update, which overflows
    diverged = pytest.raises(ann.TrainingDivergedError, match=r"weights became NaN or inf.*epoch 3")
    with diverged, np.errstate(all="ignore"):
        net.fit(X * 1e3, y, epochs=1, batch_size=150, lr=1e37, callbacks=[ck])
    for a, b in zip(net.get_weights(), good, strict=True):
        np.testing.assert_array_equal(a, b)
    assert net.epochs_trained_ == 2 and net.step_ == 10
    for a, b in zip(ann.load(path).get_weights(), good, strict=True):
        np.testing.assert_array_equal(a, b)
    # the issue's own reproduction (several batches per epoch) raises too
    with pytest.raises(ann.TrainingDivergedError), np.errstate(all="ignore"):
        net.fit(X * 1e3, y, epochs=1, batch_size=30, lr=1e37, callbacks=[ck])
    assert ann.load(path).epochs_trained_ == 2


def test_save_refuses_non_finite_weights_and_keeps_the_old_file(tmp_path):
    net = _net()
    path = tmp_path / "m.npz"
    net.save(path)
    before = path.read_bytes()
    net.layers[0].params["W"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"W1 contains NaN or inf: refusing"):
        net.save(path, overwrite=True)
    assert path.read_bytes() == before


# -- 2. an interrupt inside a callback -----------------------------------------------------------
def test_interrupt_in_a_callback_keeps_one_consistent_epoch(iris):
    X, y = iris

    class StopAt3(ann.Callback):
        def on_epoch_end(self, net, epoch, logs):
            if epoch == 3:
                raise KeyboardInterrupt

    straight3, straight5 = _net(dropout=0.2), _net(dropout=0.2)
    straight3.fit(X, y, epochs=3, optimizer="adam", lr=0.01)
    straight5.fit(X, y, epochs=5, optimizer="adam", lr=0.01)
    net = _net(dropout=0.2)
    with pytest.warns(RuntimeWarning, match="after epoch 3"), pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, optimizer="adam", lr=0.01, callbacks=[StopAt3()])
    assert net.epochs_trained_ == 3 and len(net.history_) == 3 and net.history_.epoch[-1] == 3
    for a, b in zip(net.get_weights(), straight3.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    net.fit(X, y, epochs=2)  # resuming is exact
    for a, b in zip(net.get_weights(), straight5.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- 3. options that would be ignored ------------------------------------------------------------
def test_size_options_with_a_list_of_layers_are_refused():
    layers = [ann.Dense(5, fan_in=4), ann.Dense(3)]
    with pytest.raises(ValueError, match=r"NN\(activation=, dropout=\.\.\.\).*Dropout\(rate\)"):
        ann.NN(layers, dropout=0.5, activation="tanh", backend="numpy")
    with pytest.raises(ValueError, match="init="):
        ann.NN(layers, init="he_normal", backend="numpy")
    assert ann.NN(layers, backend="numpy").layers[0].activation.name == "identity"


# -- 4, 6, 13. the same input rules on every backend ---------------------------------------------
def test_values_beyond_float32_are_one_clear_error_everywhere(backend):
    net = _net(backend, dtype="float32")
    with pytest.raises(ValueError, match=r"1e\+39 at row 0, column 0\): it overflows float32"):
        net.predict([[1e39, 0.0, 0.0, 0.0]])
    wide = ann.resolve(backend.name, backend.device, "float64")
    on_device = wide.asarray(np.array([[0.0, 1.0, 2.0, 3.0], [5e38, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"row 1, column 0\): it overflows float32"):
        net.predict(on_device)
    assert _net(backend, dtype="float64").predict([[1e39, 0.0, 0.0, 0.0]]).shape == (1, 3)


def test_dtype_rules_are_the_same_on_every_backend(backend, iris):
    X, _ = iris
    net = _net(backend)
    with pytest.raises(ValueError, match="complex"):
        net.predict(X[:3] + 1j)
    with pytest.raises(ValueError, match="real numbers, got dtype <U"):
        net.predict(X[:3].astype(str))
    flags = X[:5] > 0
    np.testing.assert_allclose(net.predict(flags), net.predict(flags.astype(float)), rtol=1e-12)
    np.testing.assert_allclose(net.predict(X[:5].astype(np.int32)), net.predict(np.trunc(X[:5])))


def test_predict_and_fit_accept_what_the_other_accepts(iris):
    torch = pytest.importorskip("torch")
    import array_api_strict as xps

    X, y = iris
    net = _net()
    expected = net.predict(X)
    strict_x = xps.asarray(X, device=xps.Device("device1"))
    np.testing.assert_allclose(net.predict(strict_x), expected, rtol=1e-12)
    np.testing.assert_allclose(net.predict(torch.tensor(X, requires_grad=True)), expected)
    grads = net.gradients(torch.tensor(X, requires_grad=True), torch.tensor(y))
    np.testing.assert_allclose(grads[0], net.gradients(X, y)[0], rtol=1e-12)


# -- 5. autograd graphs never leak into the parameters -------------------------------------------
def test_a_requires_grad_tensor_is_detached_at_the_boundary(iris):
    torch = pytest.importorskip("torch")
    X, y = iris
    net = ann.NN([4, 8, 3], backend="torch", dtype="float64", seed=0)
    Xt = torch.tensor(X, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's requires_grad UserWarning included
        net.fit(Xt, torch.tensor(y), epochs=2, validation_data=(Xt, torch.tensor(y)))
        net.predict(Xt)
    for p in net.parameter_arrays():
        assert p.grad_fn is None and not p.requires_grad
    assert Xt.grad is None
    ref = ann.NN([4, 8, 3], backend="numpy", dtype="float64", seed=0)
    ref.fit(X, y, epochs=2)
    for a, b in zip(net.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


# -- 8, 9. files that attack the reader ----------------------------------------------------------
def _rewrite(path: Path, edit) -> None:
    """Edit a saved file's metadata and write it back with a *valid* checksum (an attacker can
    recompute it: the hash protects against corruption, the shape checks against lies)."""
    meta, tensors = ann_io.read(path)
    edit(meta)
    for key in ("format", "format_version", "library_version", "sha256"):
        meta.pop(key)
    ann_io.write(path, tensors, meta)


@pytest.mark.parametrize("units", [10**12, 2 * 10**7])
def test_metadata_claiming_a_huge_layer_is_refused_before_allocating(tmp_path, units):
    path = tmp_path / "m.safetensors"
    _net().save(path)
    _rewrite(path, lambda m: m["model"]["layers"][0]["config"].update(units=units))
    tracemalloc.start()
    try:
        with pytest.raises(ann.ModelFileError, match=r"declares W1 of shape \(4, \d+\)"):
            ann.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak


# the JSON sits escaped inside the safetensors header: \"l2\": 0.0
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (rb"l2\": 0.0", rb"l2\": 8.0"),
        (rb"\"relu\"", rb"\"tanh\""),
        (rb"epochs_trained\": 2", rb"epochs_trained\": 9"),
    ],
)
def test_the_checksum_covers_the_metadata(tmp_path, old, new):
    path = tmp_path / "m.safetensors"
    net = _net()
    net.fit(np.ones((4, 4)), [0, 1, 2, 0], epochs=2)
    net.save(path)
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))  # one edit, same length: the header still parses
    with pytest.raises(ann.ModelFileError, match="checksum"):
        ann.load(path)


def test_files_of_format_version_1_still_load_with_a_warning(tmp_path):
    """A 0.1.0 file, written here by hand: its SHA-256 covers the tensors only (name, dtype
    string, shape, bytes, in sorted order)."""
    net = _net()
    weights = dict(zip(net.parameter_names(), net.get_weights(), strict=True))
    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    meta = {
        "format": "anyarray_nn",
        "format_version": 1,
        "library_version": "0.1.0",
        "model": net.config(),
        "training": {"step": 0, "epochs_trained": 0},
        "optimizer": None,
        "tensors": net.parameter_names(),
        "sha256": digest.hexdigest(),
    }
    path = tmp_path / "old.safetensors"
    path.write_bytes(safetensors.numpy.save(weights, metadata={"anyarray_nn": json.dumps(meta)}))
    with pytest.warns(UserWarning, match="format version 1"):
        back = ann.load(path)
    for a, b in zip(back.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_npz_whose_entries_inflate_beyond_the_file_is_refused(tmp_path):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, __metadata__=np.zeros(4, np.uint8), W1=np.zeros(2**24))
    path = tmp_path / "bomb.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ann.ModelFileError, match="declare"):
        ann.load(path)


# -- 10. a gzip bomb as an IDX file --------------------------------------------------------------
def test_a_gzip_bomb_is_refused_after_reading_only_what_the_header_declares(tmp_path):
    header = struct.pack(">HBBI", 0, 0x08, 1, 10)  # ubyte, 1 dimension of 10 values
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(64 * 2**20), compresslevel=9))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="trailing bytes"):
            datasets.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak
    liar = struct.pack(">HBBIII", 0, 0x08, 3, 60000, 28, 28000)  # 47 GB from a tiny file
    path.write_bytes(gzip.compress(liar + bytes(100)))
    with pytest.raises(ValueError, match=r"more than a \d+-byte gzip file can hold"):
        datasets.read_idx(path)


# -- 11. a model saved on a GPU loads on a machine without one -----------------------------------
def test_a_model_saved_on_an_absent_gpu_falls_back_to_the_cpu(tmp_path, iris):
    pytest.importorskip("torch")
    X, _ = iris
    path = tmp_path / "gpu.safetensors"
    net = ann.NN([4, 8, 3], backend="torch", seed=0)
    net.save(path)
    _rewrite(path, lambda m: m["model"].update(device="cuda:7"))  # as if saved on a GPU
    with pytest.warns(RuntimeWarning, match=r"device 'cuda:7', which is not usable here"):
        back = ann.load(path)
    assert back.backend.name == "torch" and back.backend.device_name == "cpu"
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=1e-6)


# -- 12. clear errors for hyperparameters and callbacks ------------------------------------------
def test_numpy_scalars_are_numbers_and_bad_values_fail_early(tmp_path, iris):
    X, y = iris
    net = ann.NN([4, 8, 3], dropout=np.float32(0.2), l2=np.float64(1e-4), backend="numpy", seed=0)
    history = net.fit(X, y, epochs=np.int64(2), batch_size=np.int64(16), lr=np.float32(0.05))
    assert len(history) == 2 and net.layers[1].rate == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"l2 must be a real number >= 0, got inf"):
        ann.NN([4, 8, 3], l2=float("inf"), backend="numpy")
    with pytest.raises(ValueError, match=r"uses \{step\}; a path may use \{epoch\}"):
        ann.ModelCheckpoint(tmp_path / "ck_{step}.safetensors")
    with pytest.raises(ValueError, match=r"\*\.safetensors"):
        ann.ModelCheckpoint(tmp_path / "ck_{epoch}.pt")
    ck = ann.ModelCheckpoint(tmp_path / "ck_{epoch:02d}_{loss:.3f}.npz", monitor="loss")
    net.fit(X, y, epochs=1, callbacks=[ck])
    assert Path(ck.saved[0]).name.startswith("ck_03_") and Path(ck.saved[0]).exists()
    bad_y = y.astype(float)
    bad_y[5] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN or inf \(first at row 5\)"):
        net.fit(X, bad_y, epochs=1)


# -- issue 11: no surprises ----------------------------------------------------------------------
def test_replacing_an_optimizer_that_has_state_warns(iris):
    X, y = iris
    net = _net()
    net.fit(X, y, epochs=1, optimizer="adam")
    with pytest.warns(UserWarning, match=r"replaces Adam, which has taken 5 steps"):
        net.fit(X, y, epochs=1, optimizer="adam")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.fit(X, y, epochs=1, lr=0.01)  # continuing: no warning


def test_a_hidden_softmax_is_refused():
    with pytest.raises(ValueError, match="softmax is an output activation"):
        ann.NN([4, 8, 3], activation="softmax", backend="numpy")
    with pytest.raises(ValueError, match="softmax is an output activation"):
        ann.NN([ann.Dense(8, "softmax", fan_in=4), ann.Dense(3)], backend="numpy")
    assert ann.NN([4, 8, 3], activation="logistic", backend="numpy").layers[0].activation.name == (
        "sigmoid"
    )


def test_a_pandas_column_that_is_not_numbers_is_named():
    pd = pytest.importorskip("pandas")
    net = ann.NN([2, 4, 2], backend="numpy", seed=0)
    frame = pd.DataFrame({"size": [1.0, 2.0], "color": ["red", "blue"]})
    with pytest.raises(
        ValueError, match=r"Column 'color' of X has dtype (object|str).*get_dummies"
    ):
        net.predict(frame)
    frame["color"] = frame["color"].astype("category")
    with pytest.raises(ValueError, match=r"Column 'color' of X has dtype category"):
        net.fit(frame, [0, 1], epochs=1)
    numeric = pd.DataFrame({"a": [1.0, 2.0], "b": [True, False]})
    assert net.predict(numeric).shape == (2, 2)


def test_predicting_a_read_only_memmap_on_torch_does_not_warn(tmp_path, iris):
    pytest.importorskip("torch")
    X, _ = iris
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    net = ann.NN([4, 8, 3], backend="torch", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net.predict(mm, batch_size=64)
    np.testing.assert_allclose(out, net.predict(np.array(mm)), rtol=1e-6)


def test_a_save_killed_mid_write_leaves_a_temporary_the_next_save_removes(tmp_path):
    """Reproduced for real: a process is SIGKILLed while its temporary file exists."""
    path = tmp_path / "m.safetensors"
    script = f"""
import os, time, anyarray_nn as ann
from anyarray_nn import io as ann_io
ann_io.os.replace = lambda *a: (print("written", flush=True), time.sleep(60))
ann.NN([4, 8, 3], backend="numpy", seed=0).save({str(path)!r})
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"written"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    stale = list(tmp_path.glob(".m.safetensors.*.tmp"))
    assert len(stale) == 1 and not path.exists()
    # a temporary of a live process (this one's parent) is never touched
    live = tmp_path / f".m.safetensors.{os.getppid()}.abcdefgh.tmp"
    live.write_bytes(b"in progress")
    _net().save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.safetensors", live.name])
