"""fit end to end: optimizers by name, parity across backends, zero host syncs per step,
callbacks, divergence, interruption, validation, streaming, clipping, schedules."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score

import anyarray_nn as ann
from anyarray_nn import writeback
from anyarray_nn.callbacks import Callback, EarlyStopping, ModelCheckpoint
from anyarray_nn.training import TrainingDivergedError


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _net(spec, sizes=(4, 16, 12, 3), dtype="float64", **kw):
    name, device = (spec.name, spec.device) if spec is not None else ("numpy", None)
    return ann.NN(list(sizes), backend=name, device=device, dtype=dtype, seed=0, **kw)


def test_cross_backend_training_parity_adam_l2_dropout(backend, iris):
    X, y = iris
    kw = {"activation": "relu", "dropout": 0.2, "l2": 1e-3}
    ref = _net(None, **kw)
    ref.fit(X, y, epochs=3, batch_size=16, optimizer="adam", lr=0.01)
    net = _net(backend, **kw)
    net.fit(X, y, epochs=3, batch_size=16, optimizer="adam", lr=0.01)
    for a, b in zip(ref.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert ref.step_ == net.step_ == 3 * 10


class _SyncCounter:
    """Counts host syncs on array_api_strict arrays: conversions to Python scalars, truth
    values, indices, DLPack exports and device->host copies."""

    METHODS = ("__float__", "__bool__", "__int__", "__index__", "__dlpack__", "__array__")

    def __init__(self, monkeypatch):
        import array_api_strict._array_object as mod

        self.count = 0
        for name in self.METHODS:
            original = getattr(mod.Array, name, None)
            if original is None:
                continue

            def wrapped(self_arr, *a, _orig=original, **k):
                self.count += 1
                return _orig(self_arr, *a, **k)

            monkeypatch.setattr(mod.Array, name, wrapped)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_host_syncs_per_epoch_do_not_grow_with_batches(monkeypatch, optimizer, iris):
    import array_api_strict

    X, y = iris
    counts = {}
    with array_api_strict.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False):
        for batch_size in (75, 5):  # 2 batches vs 30 batches per epoch
            net = ann.NN(
                [4, 8, 3],
                dropout=0.1,
                l1=1e-4,
                l2=1e-4,
                backend="array_api_strict",
                device="device1",
                seed=0,
            )
            Xd, yd = net.backend.asarray(X), net.backend.asarray(y, dtype=net.xp.int64)
            counter = _SyncCounter(monkeypatch)
            net.fit(
                Xd,
                yd,
                epochs=2,
                batch_size=batch_size,
                optimizer=optimizer,
                clip_norm=1.0,
                validation_data=(Xd, yd),
            )
            counts[batch_size] = counter.count
            monkeypatch.undo()
    assert counts[5] == counts[75], counts
    assert counts[5] <= 12  # a handful per fit call (input checks, one read per epoch)


def test_data_is_moved_once_per_fit(monkeypatch, iris):
    X, y = iris
    calls = {}
    for batch_size in (75, 5):
        net = _net(None)
        real = type(net.backend).asarray
        n = [0]

        def counting(self, x, dtype=None, _real=real, _n=n):
            _n[0] += 1
            return _real(self, x, dtype)

        monkeypatch.setattr(type(net.backend), "asarray", counting)
        net.fit(X, y, epochs=3, batch_size=batch_size, optimizer="adam")
        monkeypatch.undo()
        calls[batch_size] = n[0]
    assert calls[5] == calls[75]  # X, y once; the shuffle order once per epoch


def test_history_values_are_what_they_claim(iris):
    X, y = iris
    Xt, yt, Xv, yv = X[::2], y[::2], X[1::2], y[1::2]
    net = _net(None)
    history = net.fit(
        Xt, yt, epochs=2, batch_size=25, optimizer="sgd", lr=1e-13, validation_data=(Xv, yv)
    )
    assert history is net.history_
    assert set(history.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert len(history) == 2 and history.epoch == [1, 2]
    # with a vanishing step the weights do not move, so the running epoch values equal the
    # independent full-data values
    assert history["loss"][-1] == pytest.approx(net.loss(Xt, yt), rel=1e-9)
    assert history["accuracy"][-1] == pytest.approx(accuracy_score(yt, net.predict_classes(Xt)))
    assert history["val_loss"][-1] == pytest.approx(net.loss(Xv, yv), rel=1e-12)
    assert history["val_accuracy"][-1] == pytest.approx(accuracy_score(yv, net.predict_classes(Xv)))


def test_regression_history_reports_r2(rng):
    from sklearn.metrics import r2_score

    X = rng.uniform(-1, 1, size=(200, 2))
    y = np.stack([X[:, 0] ** 2, np.sin(2 * X[:, 1])], axis=1)
    net = ann.NN(
        [2, 32, 2], activation="tanh", output="identity", backend="numpy", dtype="float64", seed=0
    )
    history = net.fit(X, y, epochs=3, optimizer="adam", lr=1e-13, validation_data=(X, y))
    assert history["val_r2"][-1] == pytest.approx(r2_score(y, net.predict(X)), rel=1e-9)
    assert history["r2"][-1] == pytest.approx(r2_score(y, net.predict(X)), rel=1e-6)


def test_lr_sets_the_optimizer_in_use(iris):
    X, y = iris
    net = _net(None)
    net.fit(X, y, epochs=1, optimizer="adam", lr=0.05)
    opt = net.optimizer
    assert type(opt).__name__ == "Adam" and opt.lr == 0.05
    net.fit(X, y, epochs=1, lr=0.01)
    assert net.optimizer is opt and opt.lr == 0.01 and opt.t == 10
    net.fit(X, y, epochs=1)
    assert net.optimizer is opt and opt.lr == 0.01


def test_two_fits_equal_one_longer_fit(iris):
    X, y = iris
    a = _net(None, dropout=0.3)
    a.fit(X, y, epochs=5, optimizer="adam", lr=0.01)
    b = _net(None, dropout=0.3)
    b.fit(X, y, epochs=3, optimizer="adam", lr=0.01)
    b.fit(X, y, epochs=2)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_validation_split_is_stratified_and_seeded(iris):
    X, y = iris
    h = _net(None).fit(X, y, epochs=1, validation_split=0.2)
    assert h.params["n_samples"] == 120
    with pytest.raises(ValueError, match="validation_split"):
        _net(None).fit(X, y, validation_split=1.5)
    with pytest.raises(ValueError, match="not both"):
        _net(None).fit(X, y, validation_split=0.2, validation_data=(X, y))


def test_early_stopping_restores_the_best_weights(rng):
    # a wide net on few noisy points overfits: validation loss turns up after a while
    X, y = rng.normal(size=(30, 5)), rng.integers(0, 3, size=30)
    Xv, yv = rng.normal(size=(200, 5)), rng.integers(0, 3, size=200)
    seen = {}

    class Record(Callback):
        def on_epoch_end(self, net, epoch, logs):
            seen[epoch] = net.get_weights()

    stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    net = ann.NN([5, 64, 3], backend="numpy", dtype="float64", seed=0)
    history = net.fit(
        X,
        y,
        epochs=200,
        batch_size=10,
        optimizer="adam",
        lr=0.01,
        validation_data=(Xv, yv),
        callbacks=[Record(), stop],
    )
    val = history["val_loss"]
    best = int(np.argmin(val)) + 1
    assert history.stopped_early and len(val) == best + 4 < 200
    assert stop.best_epoch == best
    for got, want in zip(net.get_weights(), seen[best], strict=True):
        np.testing.assert_array_equal(got, want)
    assert net.loss(Xv, yv) == pytest.approx(min(val), rel=1e-12)


def test_plain_callback_protocol_and_stop_flag(iris):
    X, y = iris
    calls = []

    class Plain:  # no base class: the protocol is just the method
        def on_epoch_end(self, net, epoch, logs):
            calls.append((epoch, sorted(logs)))
            if epoch == 2:
                net.stop_training = True

    h = _net(None).fit(X, y, epochs=10, callbacks=[Plain()])
    assert [c[0] for c in calls] == [1, 2] and len(h) == 2
    assert calls[0][1] == ["accuracy", "loss", "lr"]
    with pytest.raises(TypeError, match="on_epoch_end"):
        _net(None).fit(X, y, callbacks=[object()])


def test_divergence_names_the_epoch_and_keeps_a_good_checkpoint(tmp_path, iris):
    X, y = iris
    path = tmp_path / "best.safetensors"
    net = _net(None, sizes=(4, 8, 3))
    net.fit(X, y, epochs=2, optimizer="sgd", lr=0.1, callbacks=[ModelCheckpoint(path)])
    good = net.get_weights()
    saved = path.read_bytes()
    Xbig = X * 1e150
    with pytest.raises(TrainingDivergedError, match="epoch 3"), np.errstate(all="ignore"):
        net.fit(Xbig, y, epochs=3, lr=1e3, callbacks=[ModelCheckpoint(path)])
    assert path.read_bytes() == saved  # never overwritten with NaN weights
    for a, b in zip(net.get_weights(), good, strict=True):  # last finite weights kept
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(w).all() for w in ann.load(path).get_weights())


def test_keyboard_interrupt_keeps_a_usable_net_and_the_finished_epochs(monkeypatch, iris):
    X, y = iris
    reference = _net(None)
    reference.fit(X, y, epochs=2, batch_size=30, optimizer="adam", lr=0.01)
    net = _net(None)
    net.fit(X, y, epochs=0, optimizer="adam", lr=0.01)
    real_step = net.optimizer.advance  # the one update of every training step
    count = [0]

    def step(*args):
        count[0] += 1
        if count[0] == 13:  # in the middle of epoch 3 (5 steps per epoch)
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(net.optimizer, "advance", step)
    with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning, match="after epoch 2"):
        net.fit(X, y, epochs=5, batch_size=30)
    assert len(net.history_) == 2 and net.epochs_trained_ == 2
    for a, b in zip(net.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert net.predict(X).shape == (150, 3)


def test_streaming_from_a_memmap_gives_the_same_numbers(tmp_path, iris):
    X, y = iris
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    a = _net(None).fit(X, y, epochs=2, optimizer="adam")
    net_b = _net(None)
    b = net_b.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, epochs=2, optimizer="adam")
    assert a["loss"] == b["loss"]
    torch_net = _net(ann.resolve("numpy"))
    torch_net.fit(X, y, epochs=2, optimizer="adam", stream=True)
    for w1, w2 in zip(net_b.get_weights(), torch_net.get_weights(), strict=True):
        np.testing.assert_array_equal(w1, w2)


def test_clip_by_global_norm_matches_torch(backend, rng):
    torch = pytest.importorskip("torch")
    from anyarray_nn.training import clip_by_global_norm

    be = ann.resolve(backend.name, backend.device, "float64")
    for scale in (5.0, 0.01):  # clipped, and left as it is
        host = [rng.normal(size=(4, 3)) * scale, rng.normal(size=3) * scale]
        flat = be.asarray(np.concatenate([g.reshape(-1) for g in host]))  # the flat gradient
        clipped = np.asarray(ann.to_numpy(clip_by_global_norm(be.xp, flat, 1.5)))
        tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in host]
        for t, g in zip(tensors, host, strict=True):
            t.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(tensors, 1.5)
        expected = np.concatenate([t.grad.numpy().reshape(-1) for t in tensors])
        np.testing.assert_allclose(clipped, expected, rtol=1e-12)


def test_schedule_drives_the_learning_rate(iris):
    from anyarray_nn.schedules import StepDecay

    X, y = iris
    h = _net(None).fit(X, y, epochs=5, optimizer="sgd", lr=0.1, schedule=StepDecay(2, 0.5))
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


@pytest.mark.parametrize("l1,l2", [(0.0, 0.01), (0.01, 0.0), (0.02, 0.03)])
def test_gradcheck_with_penalties(l1, l2, rng):
    net = ann.NN(
        [4, 6, 3], activation="tanh", l1=l1, l2=l2, backend="numpy", dtype="float64", seed=1
    )
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    assert min(np.min(np.abs(w)) for w in net.get_weights()[::2]) > 1e-4  # away from |W| kink
    assert ann.gradcheck(net, X, y) < 1e-7
    plain = ann.NN([4, 6, 3], activation="tanh", backend="numpy", dtype="float64", seed=1)
    W = net.get_weights()[::2]
    expected = (
        plain.loss(X, y) + l1 * sum(np.abs(w).sum() for w in W) + l2 * sum((w**2).sum() for w in W)
    )
    assert net.loss(X, y) == pytest.approx(expected, rel=1e-12)
    # biases carry no penalty: their gradients equal the unpenalised ones
    for g, p in zip(net.gradients(X, y)[1::2], plain.gradients(X, y)[1::2], strict=True):
        np.testing.assert_allclose(g, p, rtol=1e-12)


def test_penalised_gradients_equal_torch_autograd(backend, rng):
    torch = pytest.importorskip("torch")
    net = _net(backend, sizes=(4, 6, 3), activation="tanh", l1=0.01, l2=0.02)
    X, y = rng.normal(size=(9, 4)), rng.integers(0, 3, size=9)
    ws = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    h = torch.tanh(torch.tensor(X) @ ws[0] + ws[1]) @ ws[2] + ws[3]
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss = loss + sum(0.01 * w.abs().sum() + 0.02 * (w**2).sum() for w in ws[::2])
    loss.backward()
    for g, w in zip(net.gradients(X, y), ws, strict=True):
        np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_progress_output(capsys, iris):
    X, y = iris
    _net(None).fit(X, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "loss" in out
    pytest.importorskip("tqdm")
    _net(None).fit(X, y, epochs=2, verbose=1)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "batch" in err


def test_bad_fit_arguments(iris):
    X, y = iris
    net = _net(None)
    with pytest.raises(ValueError, match="Valid names"):
        net.fit(X, y, optimizer="adamax")
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        net.fit(X, y, validation_data=X)
    with pytest.raises(ValueError, match="Unknown metric"):
        net.fit(X, y, metrics=["f1"])
    with pytest.raises(ValueError, match="verbose"):
        net.fit(X, y, verbose=5)
    with pytest.raises(ValueError, match="clip_norm"):
        net.fit(X, y, clip_norm=-1.0)
    with pytest.raises(ValueError, match="lr"):
        net.fit(X, y, lr=float("nan"))
    with pytest.raises(ValueError, match="expects"):
        net.fit(X, y, validation_data=(X[:, :2], y))


def test_float32_end_to_end_and_in_place_updates(backend, iris):
    """No silent float64 promotion anywhere in a training run, and parameters and optimizer
    state are updated in place (the same device arrays before and after fit)."""
    import array_api_compat

    X, y = iris  # float64 host data: converted once to float32 on the way in
    net = _net(backend, dtype="float32", dropout=0.2, l1=1e-4, l2=1e-4)
    net.fit(X, y, epochs=1, optimizer="adam", lr=0.01)
    before = [layer.params[n] for layer, n in net.parameters()]
    theta_before, state_before = net.theta, dict(net.optimizer.state)
    history = net.fit(X, y, epochs=2, clip_norm=1.0, validation_data=(X, y))
    after = [layer.params[n] for layer, n in net.parameters()]
    if writeback.for_array(theta_before).mutable:  # JAX's arrays cannot be written
        assert all(a is b for a, b in zip(before, after, strict=True))
        assert net.theta is theta_before
        assert all(net.optimizer.state[k] is a for k, a in state_before.items())
    xp = net.xp
    every = [*after, net.theta, *net.optimizer.state.values()]
    Xd = net.check_inputs(X)
    ctx = ann.Pass(training=True, step=net.step_)
    loss, out, grad = net.backprop(Xd, net.check_targets(y, len(y)), ctx)
    every += [loss, out, grad]
    every += [ctx.saved(layer)[1] for layer in net.layers if isinstance(layer, ann.Dense)]
    for arr in every:
        assert arr.dtype == xp.float32, arr.dtype
        assert array_api_compat.array_namespace(arr) is xp
    assert all(isinstance(v, float) for v in history["loss"])
