"""JAX as a backend, and the compiled training step (issue 19).

The references are independent: NumPy float64 runs of the same library code (a different array
library, op by op, in place), central differences, and JAX's own tracer, which fails on any
read of a device value back to the host. The module runs in JAX's 64-bit mode (as the backend
matrix does); what JAX does without it is tested in a subprocess.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout
from typing import Any

import numpy as np
import pytest
from conftest import cli_env, enable_jax_x64
from helpers import PAIRS, make_targets

import anyarray_nn as ann
from anyarray_nn import compiled as _compiled
from anyarray_nn.random import DeviceStep, dropout_mask, random_bits
from anyarray_nn.training import Batch, Step

jax = pytest.importorskip("jax", reason="jax not installed (pip install .[jax])")
jnp = pytest.importorskip("jax.numpy")


@pytest.fixture(autouse=True)
def _x64() -> None:
    enable_jax_x64()


def _problem(rng: np.random.Generator, n: int = 203) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(n, 6)), rng.integers(0, 3, n)


def _max_diff(a: ann.NN, b: ann.NN) -> float:
    return max(
        float(np.abs(u - v).max()) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


def _pair(**kwargs: Any) -> tuple[ann.NN, ann.NN]:
    make = dict(layers=[6, 16, 8, 3], dtype="float64", seed=3, **kwargs)
    return ann.NN(backend="numpy", **make), ann.NN(backend="jax", **make)


# -- the backend record ---------------------------------------------------------------------------
def test_jax_numpy_namespace_gives_the_jax_backend():
    """``backend=jax.numpy`` is matched by its exact module name, never by the "numpy" in it."""
    for spec in (jnp, "jax", "JAX"):
        be = ann.resolve(spec, dtype="float64")
        assert be.name == "jax" and be.xp is jnp and be.device_name == "cpu:0"
    net = ann.NN([3, 2], backend=jnp, dtype="float64")
    assert net.backend.name == "jax"
    assert ann.resolve(np).name == "numpy"
    assert ann.backend._jax_uint32_wraps()  # the record's native_uint32=True holds


def test_float64_without_64_bit_mode_is_refused_and_float32_matches_numpy():
    """Without ``jax_enable_x64`` JAX would compute float64 as float32: refused, with the fix in
    the message; float32 trains to NumPy float32's numbers (a fresh process: the mode is
    process-wide)."""
    code = textwrap.dedent(
        """
        import warnings
        import numpy as np
        warnings.simplefilter("error")  # no int64 request may reach JAX in 32-bit mode
        import anyarray_nn as ann
        try:
            ann.NN([3, 2], backend="jax", dtype="float64")
        except ValueError as exc:
            print("REFUSED", "jax_enable_x64" in str(exc), "JAX_ENABLE_X64=1" in str(exc))
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(101, 6)), rng.integers(0, 3, 101)
        nets = [ann.NN([6, 16, 3], backend=b, seed=1, dropout=0.3, l2=1e-3) for b in
                ("numpy", "jax")]
        for net in nets:
            net.fit(X, y, epochs=3, batch_size=16, optimizer="adam", lr=0.01)
        w = [n.get_weights() for n in nets]
        print("DIFF", max(float(np.abs(a - b).max()) for a, b in zip(*w)))
        print("DTYPE", nets[1].theta.dtype)
        """
    )
    env = cli_env(JAX_ENABLE_X64="0")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["REFUSED"] == "True True"
    assert lines["DTYPE"] == "float32"
    assert float(lines["DIFF"]) < 1e-5  # float32 rounding over 21 steps, not a wrong mask


# -- numbers: JAX against NumPy ---------------------------------------------------------------------
@pytest.mark.parametrize(("output", "loss"), PAIRS)
def test_gradients_equal_numpy_float64(output, loss, rng):
    X = rng.normal(size=(40, 6))
    y = make_targets(output, loss, 40, 3, rng)
    w = rng.uniform(0.2, 2.0, 40)
    ref, net = _pair(output=output, loss=loss, l1=1e-3, l2=1e-2)
    for a, b in zip(ref.gradients(X, y, w), net.gradients(X, y, w), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
    assert ann.gradcheck(net, X[:10], y[:10]) < 1e-6  # central differences


@pytest.mark.parametrize("compile", [True, False], ids=["compiled", "eager"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "adagrad", "rmsprop", "adamw"])
def test_three_epochs_equal_numpy(compile, optimizer, rng):
    """Adam (and the others) + L2 + dropout, with a last batch smaller than the others: the
    compiled epoch (one lax.scan, then the last batch) and the eager one equal NumPy."""
    X, y = _problem(rng)
    opt = (
        ann.optimizers.get("sgd", lr=0.05, momentum=0.9)
        if optimizer == "sgd_momentum"
        else optimizer
    )
    nets = _pair(dropout=0.3, l2=1e-3)
    for net in nets:
        o = opt.clone() if isinstance(opt, ann.Optimizer) else opt
        net.fit(X, y, epochs=3, batch_size=32, optimizer=o,
                compile=compile if net.backend.name == "jax" else None)  # fmt: skip
    assert _max_diff(*nets) < 1e-9
    np.testing.assert_allclose(nets[1].history_["loss"], nets[0].history_["loss"], rtol=1e-12)
    assert nets[1].optimizer.t == nets[0].optimizer.t == 21


def test_weights_clipping_and_metrics_equal_numpy(rng):
    X, y = _problem(rng)
    w = rng.uniform(0.5, 2.0, len(y))
    nets = _pair(dropout=0.2)
    for net in nets:
        net.fit(X, y, epochs=2, batch_size=50, optimizer="adam", lr=0.05, sample_weight=w,
                clip_norm=0.5, validation_data=(X[:30], y[:30]))  # fmt: skip
    assert _max_diff(*nets) < 1e-9
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(nets[1].history_[key], nets[0].history_[key], rtol=1e-9)


def test_continuing_save_load_and_to_numpy_are_exact(rng, tmp_path):
    X, y = _problem(rng)
    ref, net = _pair(dropout=0.3, l2=1e-3)
    ref.fit(X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01)
    net.fit(X, y, epochs=2, batch_size=32, optimizer="adam", lr=0.01)
    path = tmp_path / "m.safetensors"
    net.save(path)
    loaded = ann.NN.load(path)
    assert loaded.backend.name == "jax"
    twin = net.copy()
    for model in (net, loaded, twin):
        model.fit(X, y, epochs=1, batch_size=32)  # continues: state, counters, masks
    for model in (loaded, twin):
        assert _max_diff(net, model) == 0.0
    assert _max_diff(ref, net) < 1e-9
    host = net.copy().to("numpy")
    assert host.backend.name == "numpy" and _max_diff(host, net) == 0.0
    host.fit(X, y, epochs=1, batch_size=32)
    net.fit(X, y, epochs=1, batch_size=32)
    assert _max_diff(host, net) < 1e-12
    back = pickle.loads(pickle.dumps(net))  # a trained JAX network pickles
    assert back.backend.name == "jax" and _max_diff(back, net) == 0.0
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


# -- the compiled step ------------------------------------------------------------------------------
def test_the_eager_step_traces_under_jit(rng):
    """Sync-freedom, proved by tracing: the training step (forward, backward, penalties,
    dropout, metrics, clipping, the optimizer) runs under ``jax.jit``, where reading any device
    value back to the host raises; and it gives the eager step's numbers."""
    X, y = _problem(rng, 64)
    nets = [ann.NN([6, 16, 8, 3], backend="jax", dtype="float64", seed=3, dropout=0.3,
                   l1=1e-4, l2=1e-3) for _ in range(2)]  # fmt: skip
    results = []
    for net, wrap in zip(nets, (jax.jit, lambda f: f), strict=True):
        opt = ann.optimizers.get("adam", lr=0.01)
        opt.build(net.theta)
        step = Step(net, opt, ["accuracy"], clip_norm=1.0)
        Xd, T = net.check_inputs(X), net.check_targets(y, len(y))

        def one(theta, state, Xd, T, step=step):
            return step(theta, state, Batch(Xd, T, None, 64), 7)

        results.append(wrap(one)(net.theta, opt.state, Xd, T))
    (t1, s1, sums1), (t2, s2, sums2) = results
    for key in s1:
        np.testing.assert_allclose(np.asarray(s1[key]), np.asarray(s2[key]), atol=1e-14)
    np.testing.assert_allclose(np.asarray(t1), np.asarray(t2), rtol=0, atol=1e-14)
    for a, b in zip(sums1, sums2, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)


def test_dropout_keys_stay_uint32_under_tracing():
    """A step number given as device values (what a compiled step gets) yields the host key's
    bits, as uint32, inside jax.jit, for steps past 2**32 too."""
    for step in (0, 9, 2**40 + 3):
        host = np.asarray(random_bits(jnp, (5, 7), seed=2024, step=step, layer=3))

        @jax.jit
        def traced(lo, hi):
            return random_bits(jnp, (5, 7), seed=2024, step=DeviceStep(lo, hi), layer=3)

        got = traced(*DeviceStep.halves(step))
        assert got.dtype == jnp.uint32
        np.testing.assert_array_equal(np.asarray(got), host)
        ref = random_bits(np, (5, 7), seed=2024, step=step, layer=3)  # NumPy's bits too
        np.testing.assert_array_equal(np.asarray(got), ref)
    mask = jax.jit(lambda lo, hi: dropout_mask(jnp, (4, 6), 0.5, 1, DeviceStep(lo, hi), 2,
                                               jnp.float64))(*DeviceStep.halves(5))  # fmt: skip
    np.testing.assert_array_equal(
        np.asarray(mask), dropout_mask(np, (4, 6), 0.5, 1, 5, 2, np.float64)
    )


def test_compiled_once_per_batch_shape_and_reused(rng):
    """Two shapes (the full batches' loop, the last batch) compile once, whatever the number
    of epochs and fit calls, and a new network of the same configuration reuses them."""
    X, y = _problem(rng)
    net = ann.NN([6, 16, 3], backend="jax", dtype="float64", seed=11, dropout=0.1)
    net.fit(X, y, epochs=3, batch_size=32, optimizer="adam")
    key = Step(net, net.optimizer, ["accuracy"]).settings()
    compiled = _compiled._CACHE[key]
    assert compiled.compiles == 2 and compiled.compile_seconds > 0
    traces = (compiled._once._cache_size(), compiled._epoch._cache_size())  # JAX's own count
    assert traces == (1, 1)
    net.fit(X, y, epochs=2, batch_size=32)
    twin = ann.NN([6, 16, 3], backend="jax", dtype="float64", seed=11, dropout=0.1)
    twin.fit(X, y, epochs=1, batch_size=32, optimizer="adam")
    assert compiled.compiles == 2
    assert (compiled._once._cache_size(), compiled._epoch._cache_size()) == traces
    # without dropout the seed is not baked in, and lr never is: other seeds and rates reuse it
    plain = [ann.NN([6, 16, 3], backend="jax", dtype="float64", seed=s) for s in (1, 2)]
    plain[0].fit(X, y, epochs=1, batch_size=32, optimizer="adam", lr=0.01)
    counts = [c.compiles for c in _compiled._CACHE.values()]
    plain[1].fit(X, y, epochs=1, batch_size=32, optimizer="adam", lr=0.1)
    assert [c.compiles for c in _compiled._CACHE.values()] == counts
    ref = ann.NN([6, 16, 3], backend="numpy", dtype="float64", seed=2)
    ref.fit(X, y, epochs=1, batch_size=32, optimizer="adam", lr=0.1)
    assert _max_diff(ref, plain[1]) < 1e-12


def test_compile_time_is_reported_once(rng):
    X, y = _problem(rng)
    net = ann.NN([6, 5, 3], backend="jax", dtype="float64", seed=12)
    out = io.StringIO()
    with redirect_stdout(out):
        net.fit(X, y, epochs=2, batch_size=40, verbose=2)
    assert out.getvalue().count("compiled the training step in") == 1
    assert net.history_.params["compile_seconds"] > 0


def test_compile_true_is_refused_where_there_is_no_compiler(rng):
    X, y = _problem(rng, 20)
    net = ann.NN([6, 3], backend="numpy", seed=0)
    with pytest.raises(ValueError, match=r"has no compiler.*backend='jax'"):
        net.fit(X, y, compile=True)
    net.fit(X, y, compile=False)  # accepted: runs eagerly, as always


@pytest.mark.filterwarnings("ignore:fit.optimizer=.... replaces")
def test_an_optimizer_that_reads_t_fails_loudly_when_compiled(rng):
    """A user's update that reads the step counter would freeze it at one value: refused with
    the fix; the same optimizer runs eagerly, and one that does not read t compiles."""

    class Decaying(ann.Optimizer):  # unregistered: reads t in update
        def update(self, xp, p, g, state, lr, wb):
            return p - (lr / self.t) * g, state

    class Plain(ann.Optimizer):
        def update(self, xp, p, g, state, lr, wb):
            return p - lr * g, state

    X, y = _problem(rng, 40)
    net = ann.NN([6, 3], backend="jax", dtype="float64", seed=0)
    with pytest.raises(TypeError, match=r"Optimizer.scalars_at\(xp, lr, t\).*compile=False"):
        net.fit(X, y, optimizer=Decaying(0.1))
    assert net.optimizer.t == 0 and net.step_ == 0  # the refused step did not count
    ref = ann.NN([6, 3], backend="numpy", dtype="float64", seed=0)
    for model, compile in ((net, False), (ref, None)):
        model.fit(X, y, epochs=2, optimizer=Decaying(0.1), compile=compile)
    assert _max_diff(net, ref) < 1e-12
    for model in (net, ref):
        model.fit(X, y, epochs=2, optimizer=Plain(0.1))
    assert _max_diff(net, ref) < 1e-12


def test_flat_vector_from_immutable_arrays_equals_numpy_concatenate(rng):
    """On JAX the gradient vector is built by slice updates, not ``concat`` (see
    ``FlatLayout.pack``); eagerly and under ``jit`` it holds numpy's concatenation bit for bit,
    and the backprop gradient still equals numpy's."""
    net = ann.NN([6, 16, 8, 3], backend="jax", dtype="float64", seed=3)
    parts = [rng.normal(size=shape) for shape in net.layout.shapes]
    expected = np.concatenate([p.ravel() for p in parts])
    arrays = [jnp.asarray(p) for p in parts]
    eager = net.layout.pack(jnp, arrays)
    traced = jax.jit(lambda *a: net.layout.pack(jnp, a))(*arrays)
    for got in (eager, traced):
        assert got.shape == expected.shape
        np.testing.assert_array_equal(np.asarray(got), expected)
    assert "concatenate" not in jax.jit(lambda *a: net.layout.pack(jnp, a)).lower(*arrays).as_text()


def test_streaming_a_memmap_equals_numpy(rng, tmp_path):
    """A ``numpy.memmap`` streams its batches to the device (the eager step: the data is not
    on the device for a compiled loop) and trains to NumPy's numbers."""
    X, y = _problem(rng, 150)
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    ref, net = _pair(dropout=0.1, l2=1e-3)
    ref.fit(X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01)
    history = net.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, epochs=3, batch_size=32,
                      optimizer="adam", lr=0.01)  # fmt: skip
    assert history.params.get("compile_seconds") is None  # streamed: eager
    assert _max_diff(net, ref) < 1e-12
    np.testing.assert_allclose(history["loss"], ref.history_["loss"], rtol=1e-12)


def test_the_command_line_trains_on_jax_to_numpys_numbers(tmp_path):
    """``anyarray-nn train --backend jax`` on a user's CSV (float64, JAX's 64-bit mode from
    the environment) saves the weights that ``--backend numpy`` saves."""
    data = np.random.default_rng(0).normal(size=(120, 5))
    labels = (data[:, 0] + data[:, 1] > 0).astype(int)
    path = tmp_path / "points.csv"
    np.savetxt(path, np.column_stack([data, labels]), delimiter=",", fmt="%.17g")
    models = {}
    for backend in ("jax", "numpy"):
        models[backend] = tmp_path / f"{backend}.safetensors"
        proc = subprocess.run(
            [sys.executable, "-m", "anyarray_nn", "train", "--data", str(path), "--target", "-1",
             "--layers", "8", "--epochs", "3", "--batch-size", "32", "--dtype", "float64",
             "--backend", backend, "--save", str(models[backend]), "--epoch-lines"],
            capture_output=True, text=True, timeout=180, env=cli_env(JAX_ENABLE_X64="1"),
            cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"on Backend('{backend}'" in proc.stdout
        assert ("compiled the training step" in proc.stdout) == (backend == "jax")
    on_jax, on_numpy = (ann.load(models[b]) for b in ("jax", "numpy"))
    assert _max_diff(on_jax, on_numpy) < 1e-12
    assert on_jax.epochs_trained_ == on_numpy.epochs_trained_ == 3
