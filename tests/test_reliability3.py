"""Reliability, third round (issue 26): the flat parameter vector misused (a replaced layer
parameter, ``bind``), schedules resumed, targets that cannot be taken, optimizer state of
another dtype, float64 model files on JAX without its 64-bit mode, ONNX export inputs.

Every expectation is the documented exception or an independent computation (NumPy float64,
a closed-form learning rate, an uninterrupted run)."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import cli_env

import anyarray_nn as ann

HAVE_JAX = importlib.util.find_spec("jax") is not None


def _net(spec, dtype="float64", sizes=(3, 5, 4, 2), **kw):
    return ann.NN(list(sizes), backend=spec.name, device=spec.device, dtype=dtype, seed=1, **kw)


def _data(n=12, d=3, k=2):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)), np.arange(n) % k


def _reference_forward(weights, X, act=np.tanh):
    """NumPy float64 forward of a Dense stack with hidden ``act`` and a softmax output."""
    h = np.asarray(X, dtype=np.float64)
    pairs = list(zip(weights[::2], weights[1::2], strict=True))
    for i, (W, b) in enumerate(pairs):
        h = h @ W + b
        if i < len(pairs) - 1:
            h = act(h)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- item 2: a parameter replaced from outside ----------------------------------------------------
BAD_SHAPES = {
    "W1": [(5, 3), (15,), (3, 6), (3, 5, 1), (2, 5)],
    "b1": [(4,), (6,), (5, 1), ()],
    "W3": [(2, 4), (4, 3)],
    "b3": [(1,), (3,)],
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_replaced_parameter_of_the_wrong_shape_is_refused_by_every_reader(backend, dtype):
    net = _net(backend, dtype, activation="tanh")
    X, y = _data()
    before = net.get_weights()
    layers = {"W1": net.layers[0], "b1": net.layers[0], "W3": net.layers[2], "b3": net.layers[2]}
    readers = {
        "predict": lambda: net.predict(X),
        "forward": lambda: net.forward(net.check_inputs(X)),
        "get_weights": net.get_weights,
        "theta": lambda: net.theta,
        "fit": lambda: net.fit(X, y, epochs=1),
        "evaluate": lambda: net.evaluate(X, y),
        "copy": net.copy,
        "pickle": lambda: pickle.dumps(net),
        "deepcopy": lambda: copy.deepcopy(net),
    }
    for label, shapes in BAD_SHAPES.items():
        for shape in shapes:
            for reader_name, reader in readers.items():
                layers[label].params[label[0]] = np.zeros(shape)
                with pytest.raises(ValueError, match=rf"{label} must have shape") as info:
                    reader()
                message = str(info.value)
                assert dtype in message and backend.name in message, (reader_name, message)
                # refused: the network is as it was, and the next reader works
                for got, want in zip(net.get_weights(), before, strict=True):
                    np.testing.assert_array_equal(got, want)
    assert net.step_ == 0


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_replaced_parameter_with_nan_or_inf_is_refused(backend, value):
    net = _net(backend)
    W = np.ones((3, 5))
    W[1, 2] = value
    net.layers[0].params["W"] = W
    with pytest.raises(ValueError, match="W1 contains NaN or inf"):
        net.predict(_data()[0])


def test_a_replaced_parameter_of_complex_numbers_or_strings_is_refused():
    net = _net(_spec("numpy"))
    for bad in (np.zeros((3, 5), complex), np.full((3, 5), "a")):
        net.layers[0].params["W"] = bad
        with pytest.raises(ValueError, match=r"W1 must have shape \(3, 5\).*got dtype"):
            net.get_weights()
    del net.layers[2].params["b"]
    with pytest.raises(ValueError, match="b3 is missing"):
        net.predict(_data()[0])


def _spec(name, device=None):
    from conftest import BackendSpec

    return BackendSpec(name, device)


def _foreign(backend_name, shape, dtype):
    """An array of another library (or dtype) than the network's."""
    host = np.linspace(-1.0, 1.0, math.prod(shape)).reshape(shape).astype(dtype)
    if backend_name != "torch" and importlib.util.find_spec("torch") is not None:
        import torch

        return torch.asarray(host), host
    return host, host


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_replaced_parameter_of_another_dtype_or_library_is_taken_by_every_reader(backend, dtype):
    """predict and forward took the layer's array directly (and crashed); now every reader
    sees the same converted parameters: compared with a NumPy float64 forward."""
    other = "float64" if dtype == "float32" else "float32"
    net = _net(backend, dtype, activation="tanh")
    X, y = _data()
    new_W, host_W = _foreign(backend.name, (5, 4), other)
    new_b, host_b = _foreign(backend.name, (2,), other)
    expected = net.get_weights()
    expected[2], expected[5] = host_W.astype(dtype), host_b.astype(dtype)
    reference = _reference_forward([w.astype(np.float64) for w in expected], X)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for first in ("predict", "forward", "evaluate"):  # each the first reader after replacing
        net.layers[1].params["W"] = new_W  # Dense 2 (W2)
        net.layers[2].params["b"] = new_b  # Dense 3 (b3)
        if first == "predict":
            got = net.predict(X)
        elif first == "forward":
            got = ann.backend.to_numpy(net.forward(net.check_inputs(X)))
        else:
            got = None
            loss = -np.mean(np.log(reference[np.arange(len(y)), y]))
            np.testing.assert_allclose(net.evaluate(X, y)["loss"], loss, rtol=tol)
        if got is not None:
            np.testing.assert_allclose(got, reference, rtol=tol, atol=tol)
        for got_w, want in zip(net.get_weights(), expected, strict=True):
            np.testing.assert_array_equal(got_w, want)
    for twin in (net.copy(), pickle.loads(pickle.dumps(net)), copy.deepcopy(net), copy.copy(net)):
        np.testing.assert_allclose(twin.predict(X), reference, rtol=tol, atol=tol)
        for got, want in zip(twin.get_weights(), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    net.fit(X, y, epochs=1, optimizer="sgd", lr=1e-300)  # too small to move: they stay
    for got, want in zip(net.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-200)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy.copy", "copy()", "save"])
def test_a_replaced_parameter_survives_every_way_of_copying(how, tmp_path):
    net = _net(_spec("numpy"))
    new = np.arange(15.0).reshape(3, 5) / 10
    net.layers[0].params["W"] = new
    if how == "pickle":
        twin = pickle.loads(pickle.dumps(net))
    elif how == "deepcopy":
        twin = copy.deepcopy(net)
    elif how == "copy.copy":
        twin = copy.copy(net)
    elif how == "copy()":
        twin = net.copy()
    else:
        net.save(tmp_path / "m.safetensors")
        twin = ann.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(twin.get_weights()[0], new)
    np.testing.assert_array_equal(twin.layers[0].params["W"], new)


def test_a_replaced_parameter_of_a_custom_layer_is_checked_too():
    net = ann.NN([ann.Dense(4, "relu", fan_in=3), ann.Dropout(0.5), ann.Dense(2)], seed=0,
                 backend="numpy")  # fmt: skip
    net.layers[2].params["W"] = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"W2 must have shape \(4, 2\)"):
        net.predict(_data()[0])


# -- item 3: bind -------------------------------------------------------------------------------
def test_bind_refuses_what_is_not_the_networks_vector_and_keeps_the_network(backend):
    net = _net(backend, "float64")
    X, _ = _data()
    before, out = net.get_weights(), net.predict(X)
    size = net.layout.size
    xp = net.xp
    be = net.backend
    bad = {
        "too long": be.asarray(np.zeros(size + 1)),
        "too short": be.asarray(np.zeros(size - 1)),
        "2-D": be.asarray(np.zeros((1, size))),
        "empty": be.asarray(np.zeros(0)),
        "float32": be.asarray(np.zeros(size), dtype=xp.float32),
        "a list": [0.0] * size,
        "a tuple": (0.0,) * size,
        "a scalar": 0.0,
    }
    if backend.name != "numpy":
        bad["numpy"] = np.zeros(size)
    if backend.name == "array_api_strict":  # the right library on the other device
        other = "CPU_DEVICE" if backend.device == "device1" else "device1"
        bad["other device"] = xp.asarray(np.zeros(size), dtype=xp.float64,
                                         device=xp.Device(other))  # fmt: skip
    if backend.name != "torch" and importlib.util.find_spec("torch") is not None:
        import torch

        bad["torch"] = torch.zeros(size, dtype=torch.float64)
    for what, theta in bad.items():
        with pytest.raises(
            ValueError, match=rf"bind\(\) takes a 1-D float64 array of length {size}"
        ):
            net.bind(theta)
        for got, want in zip(net.get_weights(), before, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=what)
        np.testing.assert_array_equal(net.predict(X), out, err_msg=what)
    good = be.asarray(np.full(size, 0.5), copy=True)
    net.bind(good)
    assert net.theta is good
    np.testing.assert_array_equal(net.get_weights()[0], np.full((3, 5), 0.5))


# -- item 5 and 6: targets that cannot be taken ------------------------------------------------
def _regressor(spec, dtype="float32", outputs=1):
    return ann.NN([3, 4, outputs], output="identity", backend=spec.name, device=spec.device,
                  dtype=dtype, seed=0)  # fmt: skip


def _on_device(net, host):
    return net.backend.asarray(host, dtype=getattr(net.xp, str(host.dtype)))


@pytest.mark.parametrize("outputs", [1, 2])
def test_complex_targets_are_refused_on_the_host_and_on_the_device(backend, outputs):
    net = _regressor(backend, "float64", outputs)
    X = _data(6)[0]
    y = (np.arange(6 * outputs).reshape(6, outputs) + 0.5j).astype(np.complex128)
    y = y[:, 0] if outputs == 1 else y
    for given in (y, _on_device(net, y)):
        for call in (net.fit, net.evaluate, net.loss):
            with pytest.raises(ValueError, match="complex"):
                call(X, given)
    assert net.step_ == 0


@pytest.mark.parametrize("value", [1e39, -3.5e38, 1e300])
@pytest.mark.parametrize("two_d", [False, True])
def test_targets_beyond_float32_are_refused_in_a_float32_network(backend, value, two_d):
    net = _regressor(backend, "float32")
    X = _data(6)[0]
    y = np.array([0.5, 1.0, value, 2.0, 0.0, 1.0])
    y = y.reshape(-1, 1) if two_d else y
    for given in (y, _on_device(net, y)):
        for call in (net.fit, net.evaluate):
            with pytest.raises(ValueError, match=r"y has a value beyond the float32 range.*row 2"):
                call(X, given)
    # in float64 the same targets are numbers: evaluate's loss is the NumPy mean squared error
    wide = _regressor(backend, "float64")
    if abs(value) < 1e150:
        pred = wide.predict(X)[:, 0]
        expected = np.mean((pred - y.reshape(-1)) ** 2)
        np.testing.assert_allclose(wide.evaluate(X, y)["loss"], expected, rtol=1e-12)


def test_float32_targets_at_float32s_edge_are_taken():
    net = _regressor(_spec("numpy"), "float32")
    y = np.full(6, np.finfo(np.float32).max, dtype=np.float64)
    net.check_targets(y, 6)  # the largest float32 fits


# -- item 8: optimizer state of another dtype or library ----------------------------------------
@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "rmsprop", "adagrad", "adamw"])
def test_load_state_dict_refuses_state_of_another_dtype_and_keeps_its_own(name):
    opt = (
        ann.optimizers.get("sgd", lr=0.1, momentum=0.9)
        if name == "sgd_momentum"
        else ann.optimizers.get(name, lr=0.1)
    )
    opt.build(np.zeros(5))
    g = np.linspace(-1, 1, 5)
    p = opt.step(np.zeros(5), g)
    own = {k: np.array(v) for k, v in opt.state.items()}
    foreign = {k: v.astype(np.float32) for k, v in own.items()}
    with pytest.raises(ValueError, match=r"float32.*float64.*backend="):
        opt.load_state_dict({"t": 7, "state": foreign})
    assert opt.t == 1 and all(opt.state[k].dtype == np.float64 for k in own)
    for k, v in own.items():
        np.testing.assert_array_equal(opt.state[k], v)
    if importlib.util.find_spec("torch") is not None:
        import torch

        with pytest.raises(ValueError, match="not cast silently"):
            opt.load_state_dict({"t": 7, "state": {k: torch.asarray(v) for k, v in own.items()}})
    # with a backend, the arrays are converted to it (float64 here), as documented
    be = ann.backend.resolve("numpy", dtype="float64")
    opt.load_state_dict({"t": 7, "state": foreign}, be)
    assert opt.t == 7 and all(v.dtype == np.float64 for v in opt.state.values())
    assert p.dtype == np.float64


def test_a_float64_network_keeps_float64_moments_through_load_state_dict():
    net = _net(_spec("numpy"))
    X, y = _data()
    net.fit(X, y, epochs=1, optimizer="adam", lr=0.01)
    state = net.optimizer.state_dict()
    state32 = {
        "t": state["t"],
        "state": {k: v.astype(np.float32) for k, v in state["state"].items()},
    }
    with pytest.raises(ValueError, match="not cast silently"):
        net.optimizer.load_state_dict(state32)
    net.fit(X, y, epochs=1)  # still trains, in float64
    assert all(v.dtype == np.float64 for v in net.optimizer.state.values())


# -- item 9: a float64 model file on JAX without 64-bit mode ------------------------------------
@pytest.mark.skipif(not HAVE_JAX, reason="jax not installed (pip install .[jax])")
def test_loading_float64_onto_jax_without_x64_gives_the_constructors_refusal(tmp_path):
    path = tmp_path / "m64.safetensors"
    _net(_spec("numpy")).save(path)
    script = textwrap.dedent(
        f"""
        import anyarray_nn as ann
        from anyarray_nn.io import ModelFileError
        messages = []
        for make in (lambda: ann.NN([3, 5, 4, 2], backend="jax", dtype="float64"),
                     lambda: ann.load({str(path)!r}, backend="jax"),
                     lambda: ann.load({str(path)!r}).to("jax"),
                     lambda: ann.load({str(path)!r}).copy(backend="jax")):
            try:
                make()
            except ModelFileError as exc:
                raise SystemExit("blamed the file: " + str(exc))
            except ValueError as exc:
                messages.append(str(exc))
        assert len(messages) == 4, messages
        assert len(set(messages)) == 1, messages
        print(messages[0])
        net = ann.load({str(path)!r}, backend="jax", dtype="float32")
        assert net.backend.dtype_name == "float32"
        """
    )
    env = cli_env(JAX_ENABLE_X64="0")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cannot compute in float64" in proc.stdout and "jax_enable_x64" in proc.stdout


# -- item 4: a schedule's position is part of the training state --------------------------------
BASE = 0.1
#: each built-in schedule and its closed form (global 0-based epoch e -> lr), written here
SCHEDULES = {
    "step": (lambda: ann.schedules.StepDecay(2, 0.5), lambda e: BASE * 0.5 ** (e // 2)),
    "cosine": (
        lambda: ann.schedules.CosineAnnealing(4, 0.01),
        lambda e: 0.01 + (BASE - 0.01) * (1 + math.cos(math.pi * e / 4)) / 2,
    ),
    "invscaling": (lambda: ann.schedules.InverseScaling(0.5), lambda e: BASE / math.sqrt(e + 1)),
    "exponential": (lambda: ann.schedules.ExponentialDecay(0.7), lambda e: BASE * 0.7**e),
    "constant": (lambda: ann.schedules.Constant(), lambda e: BASE),
    # the first loss improves on +inf; after it, every loss falls by less than min_delta=10:
    # the lr drops after every epoch but the first
    "plateau": (
        lambda: ann.schedules.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0),
        lambda e: BASE * 0.2 ** max(e - 1, 0),
    ),
}


def _schedule_data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(40, 3)), rng.integers(0, 2, 40)


def _continued(net, how, tmp_path):
    """``net`` carried over the way a user may: as is, saved and loaded, copied, moved."""
    if how == "same":
        return net
    if how == "save/load":
        net.save(tmp_path / f"{id(net)}.safetensors")
        return ann.load(tmp_path / f"{id(net)}.safetensors")
    if how == "copy()":
        return net.copy()
    if how == "to()":
        return net.to("array_api_strict").to("numpy")
    return pickle.loads(pickle.dumps(net))


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
@pytest.mark.parametrize("how", ["same", "save/load", "copy()", "to()", "pickle"])
@pytest.mark.parametrize("second", ["same object", "new object", "by name"])
def test_a_continued_fit_continues_the_schedule(kind, how, second, tmp_path):
    make, closed_form = SCHEDULES[kind]
    X, y = _schedule_data()
    kw = dict(batch_size=8, lr=BASE)
    whole = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    s = make()
    whole.fit(X, y, epochs=5, schedule=s, **kw)
    expected = [closed_form(e) for e in range(5)]
    np.testing.assert_allclose(whole.history_["lr"], expected, rtol=1e-12)

    net = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=3, schedule=s, **kw)  # the same object again: a copy is kept
    lrs = list(net.history_["lr"])
    net = _continued(net, how, tmp_path)
    again = {"same object": s, "new object": make(), "by name": make().config()}[second]
    net.fit(X, y, epochs=2, schedule=again, **kw)
    np.testing.assert_allclose(lrs + list(net.history_["lr"]), expected, rtol=1e-12)
    for got, want in zip(net.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_continued_fit_without_lr_and_an_interrupted_one_continue_the_schedule():
    make, closed_form = SCHEDULES["invscaling"]
    X, y = _schedule_data()
    net = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=2, batch_size=8, lr=BASE, schedule=make())
    net.fit(X, y, epochs=1, batch_size=8)  # no schedule: the rate stays where it was
    assert net.history_["lr"] == [pytest.approx(closed_form(2 - 1 + 1))]
    net.fit(X, y, epochs=2, batch_size=8, schedule=make())  # its position counts every epoch
    np.testing.assert_allclose(net.history_["lr"], [closed_form(3), closed_form(4)], rtol=1e-12)


def test_a_different_schedule_starts_afresh_from_the_current_rate():
    X, y = _schedule_data()
    net = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=3, batch_size=8, lr=BASE, schedule=ann.schedules.StepDecay(2, 0.5))
    net.fit(X, y, epochs=3, batch_size=8, schedule=ann.schedules.StepDecay(1, 0.5))
    np.testing.assert_allclose(net.history_["lr"], [0.05, 0.025, 0.0125], rtol=1e-12)
    net.fit(X, y, epochs=2, batch_size=8, lr=0.3, schedule=ann.schedules.ExponentialDecay(0.5))
    np.testing.assert_allclose(net.history_["lr"], [0.3, 0.15], rtol=1e-12)


def test_a_given_schedule_object_is_not_changed_by_fit():
    X, y = _schedule_data()
    s = ann.schedules.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0)
    net = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=3, batch_size=8, lr=BASE, schedule=s)
    assert s.base_lr is None and s.wait == 0  # the training state holds its own copy
    assert net.training_state.schedule is not s and net.training_state.schedule.lr < BASE


def test_the_schedule_is_saved_in_the_training_section(tmp_path):
    X, y = _schedule_data()
    net = ann.NN([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=1, batch_size=8, lr=BASE, schedule=ann.schedules.StepDecay(2))
    path = tmp_path / "m.safetensors"
    net.save(path)
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    meta = json.loads(header["__metadata__"]["anyarray_nn"])
    assert meta["training"]["schedule"]["config"] == {"name": "step", "step_size": 2, "gamma": 0.1}
    assert meta["training"]["schedule"]["state"] == {"base_lr": BASE, "origin": 0}


@pytest.mark.parametrize(
    "schedule",
    [
        {"config": {"name": "step", "step_size": 2}, "state": {"base_lr": -1.0, "origin": 0}},
        {"config": {"name": "step", "step_size": 2}, "state": {"base_lr": 0.1, "origin": -3}},
        {"config": {"name": "nonesuch"}, "state": {}},
        {"config": {"name": "plateau"}, "state": {"base_lr": 0.1, "best": "low"}},
    ],
)
def test_a_model_file_with_a_bad_schedule_section_is_refused(schedule, tmp_path):
    from test_reliability2 import _forge

    path = tmp_path / "forged.safetensors"
    _forge(path, lambda meta: json.dumps({**meta, "training": {**meta["training"],
                                                                "schedule": schedule}}))  # fmt: skip
    with pytest.raises(ann.io.ModelFileError):
        ann.load(path)


# -- item 12: the command line names a --skip-rows it took from the model -------------------------
def _write(path, header, rows):
    lines = ([",".join(header)] if header else []) + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def counted_model(tmp_path, capsys, monkeypatch):
    """A model trained with --skip-rows 1 on a file whose first line holds counts (as
    scikit-learn's bundled CSVs), with a header naming the label column after it."""
    from helpers import run_main

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(80, 3)), 4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    rows = [[*x, t] for x, t in zip(X.tolist(), y.tolist(), strict=True)]
    (tmp_path / "counted.csv").write_text(
        "80,3,no,yes\nf0,f1,f2,label\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    )
    rc, _, err = run_main(capsys, "train", "--data", "counted.csv", "--skip-rows", "1",
                          "--target", "label", "--epochs", "2", "--backend", "numpy",
                          "--save", "m.safetensors")  # fmt: skip
    assert rc == 0, err
    return X, rows


def test_predict_names_the_recorded_skip_rows_in_its_error(counted_model, tmp_path, capsys):
    from helpers import one_line_error, run_main

    _X, rows = counted_model
    _write(tmp_path / "plain.csv", ["f0", "f1", "f2", "label"], rows[:7])  # no count line
    rc, _, err = run_main(capsys, "predict", "m.safetensors", "--data", "plain.csv", "--out", "-")
    one_line_error(rc, err, "--skip-rows 1", "--skip-rows 0", "plain.csv")
    rc, _out, err = run_main(capsys, "predict", "m.safetensors", "--data", "plain.csv",
                            "--skip-rows", "0", "--out", "p.csv")  # fmt: skip
    assert rc == 0 and not err, err
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 1 + 7  # a header, every row


def test_predict_says_which_lines_the_recorded_skip_rows_left_out(counted_model, tmp_path, capsys):
    """A file without a header: the recorded skip drops its first row. The output says so on
    stderr (it was silent), and --skip-rows 0 predicts every row."""
    from helpers import run_main

    X, _ = counted_model
    _write(tmp_path / "bare.csv", None, X[:6].tolist())
    rc, _, err = run_main(
        capsys, "predict", "m.safetensors", "--data", "bare.csv", "--out", "a.csv"
    )
    assert rc == 0 and "--skip-rows 1" in err and "--skip-rows 0" in err and "bare.csv" in err
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 1 + 5
    rc, _, err = run_main(capsys, "predict", "m.safetensors", "--data", "bare.csv",
                          "--skip-rows", "0", "--out", "b.csv")  # fmt: skip
    assert rc == 0 and not err
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 1 + 6
    # the training file itself is read as train read it, without a note
    rc, _, err = run_main(
        capsys, "predict", "m.safetensors", "--data", "counted.csv", "--out", "c.csv"
    )
    assert rc == 0 and not err, err
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 1 + 80


def test_evaluate_names_the_recorded_skip_rows_in_its_error(counted_model, tmp_path, capsys):
    from helpers import one_line_error, run_main

    _, rows = counted_model
    _write(tmp_path / "plain.csv", ["f0", "f1", "f2", "label"], rows[:9])
    rc, _, err = run_main(capsys, "evaluate", "m.safetensors", "--data", "plain.csv")
    one_line_error(rc, err, "--skip-rows 1", "--skip-rows 0")
    rc, _out, err = run_main(capsys, "evaluate", "m.safetensors", "--data", "plain.csv",
                            "--skip-rows", "0")  # fmt: skip
    assert rc == 0, err


# -- item 1: MPI ranks that disagree on a setting -------------------------------------------------
RANK_DIFFERENCES = {
    # name in the message: (rank 0's value, rank 1's, the job, with {v} the rank's value)
    "epochs": (3, 2, 'network("float64").fit(X, y, epochs={v}, comm=comm)'),
    "batch_size": (128, 64, 'network("float64").fit(X, y, epochs=1, batch_size={v}, comm=comm)'),
    "architecture": ((32, 16), (32, 8),
                             'network("float64", hidden={v}).fit(X, y, epochs=1, comm=comm)'),
    "optimizer (adam)": (0.9, 0.8, 'network("float64").fit(X, y, epochs=1, comm=comm, '
                            'optimizer=ann.Adam(lr=0.01, beta1={v}))'),
    "lr": (0.01, 0.02, 'network("float64").fit(X, y, epochs=1, optimizer="adam", lr={v}, '
                       "comm=comm)"),
    "schedule": ("step", None, 'network("float64").fit(X, y, epochs=1, comm=comm, '
                               "schedule=None if {v} is None else ann.StepDecay(2))"),
    "dtype": ("float32", "float64", "network({v}).fit(X, y, epochs=1, comm=comm)"),
    "clip_norm": (1.0, None, 'network("float64").fit(X, y, epochs=1, clip_norm={v}, comm=comm)'),
    "l2": (0.001, 0.01, "ann.NN([64, 8, 10], backend='numpy', dtype='float64', l2={v}, seed=rank)"
                        ".fit(X, y, epochs=1, comm=comm)"),
}  # fmt: skip


def _mpi():
    from test_distributed import HAVE_MPI, _launch, _reports

    if not HAVE_MPI:
        pytest.skip("mpi4py or mpiexec missing (pip install 'anyarray_nn[mpi]')")
    return _launch, _reports


def _every_rank_raises(body: str, tmp_path) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run ``body`` (ending in an open ``try:``) on 2 ranks, each reporting the
    DistributedError it raises; returns the errors (every rank's, asserted) and the process."""
    launch, reports = _mpi()
    body += """
    except ann.distributed.DistributedError as exc:
        report(error=str(exc))
        sys.exit(3)
    report(finished=True)
    """
    proc = launch(2, body, tmp_path, timeout=90)
    got = reports(tmp_path)
    errors = [r.get("error", "") for r in got]
    assert len(got) == 2 and all(errors), proc.stdout + proc.stderr
    return errors, proc


@pytest.mark.parametrize("setting", sorted(RANK_DIFFERENCES))
def test_ranks_that_differ_in_a_setting_all_raise_naming_it(setting, tmp_path):
    """Before: different epochs hung rank 0 in an allreduce forever; different batch sizes or
    widths ended in MPICH's "Message truncated". Now every rank raises DistributedError naming
    the setting and both values, within the timeout."""
    mine, theirs, job = RANK_DIFFERENCES[setting]
    body = f"""
    value = {mine!r} if rank == 0 else {theirs!r}
    try:
        {job.format(v="value")}
    """
    errors, proc = _every_rank_raises(body, tmp_path)
    for error in errors:
        assert "rank 1 of 2" in error and f"its {setting} is" in error, error
        assert "rank 0's" in error
    shown = {"schedule": ("step", "None"), "architecture": ("32->8", "32->16"),
             "optimizer (adam)": ("'beta1': 0.8", "'beta1': 0.9")}.get(setting, (repr(theirs), repr(mine)))  # fmt: skip
    assert all(all(v.strip("'") in e for v in shown) for e in errors), errors
    assert proc.returncode != 0


@pytest.mark.parametrize("job", ["fit(X, y, epochs=-1 if rank == 1 else 1, comm=comm)",
                                 "fit(X, y, epochs=1, metrics=['nope'] if rank == 1 else None, "
                                 "comm=comm)"])  # fmt: skip
def test_an_argument_refused_on_one_rank_only_ends_every_rank(job, tmp_path):
    """Arguments are checked before the ranks compare settings: one refused on rank 1 alone
    used to leave rank 0 waiting in the comparison's collective. Now both ranks raise
    DistributedError naming rank 1 and its error, within the timeout."""
    body = f"""
    try:
        network("float64").{job}
    """
    errors, _ = _every_rank_raises(body, tmp_path)
    assert all("rank 1" in e and "argument" in e for e in errors), errors


def test_ranks_with_different_seeds_still_agree_and_so_do_same_settings(tmp_path):
    """The seed is not a setting to compare: rank 0's is broadcast (documented), so ranks built
    with different seeds train one network; with equal settings nothing is refused."""
    launch, reports = _mpi()
    body = """
    net = network("float64", seed=7 * rank)
    net.fit(X, y, epochs=1, batch_size=128, optimizer="adam", lr=0.01,
            schedule=ann.StepDecay(1), validation_data=(X[:50], y[:50]), comm=comm)
    report(checksum=float(sum(w.sum() for w in net.get_weights())))
    """
    proc = launch(2, body, tmp_path, timeout=90)
    got = reports(tmp_path)
    assert len(got) == 2 and proc.returncode == 0, proc.stdout + proc.stderr
    assert got[0]["checksum"] == got[1]["checksum"]


def test_a_replaced_weight_is_what_the_penalty_sees():
    """``penalty`` (public) read the old vector: now the replaced W1, by the closed form."""
    net = ann.NN([3, 5, 2], backend="numpy", dtype="float64", seed=0, l1=0.1, l2=0.01)
    W1 = np.arange(15.0).reshape(3, 5) - 7
    net.layers[0].params["W"] = W1
    W2 = net.get_weights()[2]
    expected = sum(0.1 * np.abs(W).sum() + 0.01 * (W * W).sum() for W in (W1, W2))
    net2 = ann.NN([3, 5, 2], backend="numpy", dtype="float64", seed=0, l1=0.1, l2=0.01)
    net2.layers[0].params["W"] = W1
    np.testing.assert_allclose(float(net2.penalty()[0]), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["step", "cosine", "plateau"])
def test_a_continued_schedule_is_exact_on_every_backend(backend, kind):
    make, closed_form = SCHEDULES[kind]
    X, y = _schedule_data()
    kw = dict(batch_size=8, lr=BASE, optimizer=None)
    whole = _net(backend, sizes=(3, 4, 2))
    whole.fit(X, y, epochs=5, schedule=make(), **kw)
    net = _net(backend, sizes=(3, 4, 2))
    net.fit(X, y, epochs=3, schedule=make(), **kw)
    first = list(net.history_["lr"])
    net.fit(X, y, epochs=2, schedule=make(), **kw)
    lrs = first + list(net.history_["lr"])
    np.testing.assert_allclose(lrs, [closed_form(e) for e in range(5)], rtol=1e-12)
    for got, want in zip(net.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
