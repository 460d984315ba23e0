"""The compiled training step on every compiler (issue 25): torch.compile on the CPU against
NumPy float64 (an independent library, op by op), dynamo's own counters for graph breaks and
recompiles, the cache that keeps no network alive, fused kernels only for the exact built-in
update, and the ``compile`` argument's rule.

Compiling with torch's inductor takes seconds per graph (minutes on a loaded machine with a cold
cache), so the torch cases share two configurations and are marked ``slow``.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest

import anyarray_nn as ann


def _problem(n: int = 203, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.integers(0, 3, n)


def _max_diff(a: ann.NN, b: ann.NN) -> float:
    return max(
        float(np.abs(u - v).max()) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


def _pair(backend: str, **kwargs: Any) -> tuple[ann.NN, ann.NN]:
    make = dict(layers=[6, 16, 8, 3], dtype="float64", seed=3, **kwargs)
    return ann.NN(backend="numpy", **make), ann.NN(backend=backend, **make)


def _torch() -> Any:
    return pytest.importorskip("torch", reason="torch not installed (pip install .[torch])")


#: The two torch configurations (each compiles two graphs: the full batch and the last one).
TORCH_CASES = {
    "adam": ({}, {"optimizer": "adam", "lr": 0.01}),
    "sgd-l2-dropout": (
        {"l2": 1e-3, "dropout": 0.3},
        {"optimizer": ann.optimizers.SGD(lr=0.05, momentum=0.9, dampening=0.1)},
    ),
}


def _fit_kwargs(case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    net_kwargs, fit_kwargs = TORCH_CASES[case]
    fit_kwargs = dict(fit_kwargs)
    if isinstance(fit_kwargs["optimizer"], ann.Optimizer):
        fit_kwargs["optimizer"] = fit_kwargs["optimizer"].clone()
    return net_kwargs, fit_kwargs


# -- torch.compile against NumPy ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_torch_compiled_equals_numpy_float64(case):
    """3 epochs of 203 rows in batches of 32 (a last batch of 11), compiled on torch's CPU,
    equal NumPy's eager numbers; so do the history and the optimizer's counter, read back
    from the device."""
    torch = _torch()
    from torch._dynamo.utils import counters

    X, y = _problem()
    net_kwargs, fit_kwargs = _fit_kwargs(case)
    ref, net = _pair("torch", **net_kwargs)
    ref.fit(X, y, epochs=3, batch_size=32, **fit_kwargs)
    counters.clear()
    history = net.fit(X, y, epochs=3, batch_size=32, compile=True, **_fit_kwargs(case)[1])
    assert history.params["compile_seconds"] > 0
    assert _max_diff(ref, net) < 1e-9
    np.testing.assert_allclose(history["loss"], ref.history_["loss"], rtol=1e-10)
    assert net.optimizer.t == ref.optimizer.t == 21 and net.step_ == 21
    assert isinstance(net.optimizer.count, torch.Tensor)  # the counter lives on the device
    assert sum(counters["graph_break"].values()) == 0
    assert counters["stats"]["unique_graphs"] <= 2  # one per batch shape


@pytest.mark.slow
def test_dynamo_compiles_once_per_batch_shape_and_nothing_for_a_continued_fit():
    """A 4-epoch compiled fit with a per-epoch schedule: no graph break, at most one graph per
    batch shape (the learning rate is a device buffer the schedule writes, never a constant);
    a continued fit with another rate compiles nothing new. The numbers are NumPy's, so every
    epoch's rate reached the compiled step. (Batches of 30: shapes no other test compiles.)"""
    _torch()
    from torch._dynamo.utils import counters

    X, y = _problem()
    ref, net = _pair("torch", **_fit_kwargs("adam")[0])
    counters.clear()
    for model in (ref, net):
        kwargs = {"compile": True} if model is net else {}
        model.fit(X, y, epochs=4, batch_size=30, schedule=ann.schedules.ExponentialDecay(0.5),
                  **_fit_kwargs("adam")[1], **kwargs)  # fmt: skip
    graphs = counters["stats"]["unique_graphs"]
    assert sum(counters["graph_break"].values()) == 0
    assert graphs == 2  # 6 batches of 30 rows, and one of 23
    assert _max_diff(ref, net) < 1e-9
    np.testing.assert_allclose(net.history_["lr"], [0.01, 0.005, 0.0025, 0.00125])
    for model in (ref, net):
        kwargs = {"compile": True} if model is net else {}
        model.fit(X, y, epochs=2, batch_size=30, lr=0.003, **kwargs)
    assert counters["stats"]["unique_graphs"] == graphs  # nothing recompiled
    assert sum(counters["graph_break"].values()) == 0
    assert _max_diff(ref, net) < 1e-9


# -- CUDA graphs (a GPU) ---------------------------------------------------------------------------
@pytest.mark.gpu
def test_torch_cuda_compiled_replays_cuda_graphs_and_equals_numpy():
    """On CUDA, ``compile=True`` captures the step as a CUDA graph (``reduce-overhead``): no
    graph break, no cudagraph skipped (nothing that changes between steps comes from the host,
    and the step's buffers are static), NumPy float64's numbers in float64."""
    torch = _torch()
    if not torch.cuda.is_available():
        pytest.skip("torch.cuda.is_available() is False")
    from torch._dynamo.utils import counters

    X, y = _problem()
    ref, net = _pair("torch", dropout=0.3, l2=1e-3)
    net.to("torch", device="cuda")
    theta = net.theta
    counters.clear()
    for model in (ref, net):
        kwargs = {"compile": True} if model is net else {}
        model.fit(X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01,
                  schedule=ann.schedules.ExponentialDecay(0.5), **kwargs)  # fmt: skip
    assert sum(counters["graph_break"].values()) == 0
    assert counters["inductor"].get("cudagraph_skips", 0) == 0
    assert counters["stats"]["unique_graphs"] <= 2
    assert _max_diff(ref, net) < 1e-9
    assert net.optimizer.t == 21
    # each batch's loss was copied before the next replay overwrote it (the epoch sums it)
    np.testing.assert_allclose(net.history_["loss"], ref.history_["loss"], rtol=1e-9)
    assert net.theta is theta  # the step updated the network's own vector, in place


def test_float32_bias_corrections_on_the_device_keep_float32_precision():
    """Adam's ``1 - beta2**t`` computed on the device in float32 would cancel digits (a
    relative error near 1e-4 at small t); computed as ``-expm1(t log beta)`` the compiled
    float32 fit stays as close to a float64 NumPy reference as NumPy's own float32 fit."""
    pytest.importorskip("jax")
    from conftest import enable_jax_x64

    enable_jax_x64()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(512, 20)).astype(np.float32), rng.integers(0, 4, 512)
    nets = {}
    for name, backend, dtype in (("ref", "numpy", "float64"), ("numpy32", "numpy", "float32"),
                                 ("jax32", "jax", "float32")):  # fmt: skip
        nets[name] = ann.NN([20, 32, 4], backend=backend, dtype=dtype, seed=0)
        nets[name].fit(X, y, epochs=3, batch_size=64, optimizer="adam", lr=0.01)
    eager = _max_diff(nets["ref"], nets["numpy32"])
    assert _max_diff(nets["ref"], nets["jax32"]) < 3 * eager + 1e-7


def test_the_compiled_loop_flushes_the_optimizer_state_at_the_eager_steps():
    """The compiled epoch defers each step's flush of tiny optimizer state to the next step
    (and the loop's end): the state is flushed at the same steps as the eager one, never at
    the loop's first step (the caller's state is as it left it), and the final state is the
    flushed one. Tiny first and second moments at weights whose gradient is zero (inputs that
    are zero) decay across flush points: which of them are zero afterwards tells when the
    flushes ran."""
    pytest.importorskip("jax")
    from conftest import enable_jax_x64

    enable_jax_x64()
    X, y = _problem(701)
    X[:, :2] = 0.0  # W1's first two rows (entries 0..31) get a zero gradient
    numpy_net, jax_net = _pair("jax")
    floor = ann.optimizers.FLUSH_BELOW * np.finfo(np.float64).smallest_normal
    tiny = floor * np.logspace(-2.0, 8.0, 32)  # below the floor to well above it
    for net in (numpy_net, jax_net):
        net.fit(X[:16], y[:16], epochs=1, batch_size=8, optimizer="adam", lr=0.01)
        opt = net.optimizer
        state = {k: ann.to_numpy(a).copy() for k, a in opt.state.items()}
        for a in state.values():
            a[:32] = tiny
        opt.state = {k: net.backend.asarray(a) for k, a in state.items()}
        opt.t = ann.optimizers.FLUSH_EVERY  # the loop starts right after a flush step
    # 40 full batches and a last one (steps 65..105: no flush), then 87 (106..192: flushes
    # at step 128 inside the loop and 192 at its end) and a last one
    for rows in (325, 701):
        for net, compile in ((numpy_net, False), (jax_net, True)):
            net.fit(X[:rows], y[:rows], epochs=1, batch_size=8, compile=compile)
        for name in numpy_net.optimizer.state:
            want = ann.to_numpy(numpy_net.optimizer.state[name])[:32]
            got = ann.to_numpy(jax_net.optimizer.state[name])[:32]
            np.testing.assert_array_equal(got == 0.0, want == 0.0)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)
            kept = np.count_nonzero(want)  # none flushed yet, then some
            assert (kept == 32 and want[0] < floor) if rows == 325 else 0 < kept < 32
    assert jax_net.optimizer.t == numpy_net.optimizer.t
    assert _max_diff(numpy_net, jax_net) < 1e-10


# -- the cache keeps compiled code, never a network -----------------------------------------------
def _collected_after_fit(backend: str, **fit_kwargs: Any) -> bool:
    X, y = _problem(64)
    net = ann.NN([6, 8, 3], backend=backend, dtype="float64", seed=0)
    net.fit(X, y, epochs=1, batch_size=16, **fit_kwargs)
    ref = weakref.ref(net)
    del net
    gc.collect()
    return ref() is None


def test_a_fitted_compiled_jax_network_is_garbage_collected():
    pytest.importorskip("jax", reason="jax not installed (pip install .[jax])")
    from conftest import enable_jax_x64

    from anyarray_nn import compiled

    enable_jax_x64()
    assert _collected_after_fit("jax", compile=True)
    assert compiled._CACHE  # the compiled step is kept, and holds no network
    assert all(c.step is None for c in compiled._CACHE.values())


@pytest.mark.slow
def test_a_fitted_compiled_torch_network_is_garbage_collected():
    _torch()
    assert _collected_after_fit("torch", compile=True)


# -- optimizers written against the documented API ------------------------------------------------
class HostDecay(ann.Optimizer):
    """The older documented API: ``scalars(lr)`` reads ``self.t`` on the host; ``apply``."""

    def scalars(self, lr):
        return {"lr": lr / self.t}

    def apply(self, xp, p, g, state, s, wb):
        return wb.sub(p, s["lr"] * g), state


def test_an_optimizer_with_host_scalars_runs_eagerly_everywhere():
    """Compiling it would freeze t: compile=None runs it eagerly (NumPy's numbers on every
    backend with a compiler), compile=True refuses it, naming the fix."""
    X, y = _problem(40)
    for backend in ("torch", "jax"):
        pytest.importorskip(backend)
        if backend == "jax":
            from conftest import enable_jax_x64

            enable_jax_x64()
        ref, net = _pair(backend)
        with pytest.raises(TypeError, match=r"scalars_at\(xp, lr, t\).*compile=False"):
            net.fit(X, y, epochs=1, optimizer=HostDecay(0.1), compile=True)
        for model in (ref, net):
            model.fit(X, y, epochs=2, batch_size=8, optimizer=HostDecay(0.1))
        assert net.history_.params.get("compile_seconds") is None
        assert net.optimizer.t == 10
        assert _max_diff(ref, net) < 1e-12


# -- fused kernels only for the exact built-in update ---------------------------------------------
class HalfAdam(ann.optimizers.Adam):
    """A user's Adam with its own update: half of each built-in step."""

    def apply(self, xp, p, g, state, s, wb):
        return super().apply(xp, p, g, state, {**s, "step": 0.5 * s["step"]}, wb)


def test_a_subclass_that_overrides_the_update_runs_its_own_code_on_torch(monkeypatch):
    """torch's fused Adam is chosen once per fit for Adam itself, never for a subclass that
    changes the update: the subclass's numbers are NumPy's (where the fused kernel would give
    plain Adam's)."""
    torch = _torch()
    calls = [0]
    real = torch._fused_adam_

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adam_", counting)
    X, y = _problem(64)
    ref, net = _pair("torch")
    for model in (ref, net):
        model.fit(X, y, epochs=2, batch_size=16, optimizer=HalfAdam(lr=0.01))
    assert calls[0] == 0 and _max_diff(ref, net) < 1e-12
    plain = _pair("torch")[1]
    plain.fit(X, y, epochs=2, batch_size=16, optimizer="adam", lr=0.01)
    assert calls[0] == 8  # Adam itself: the fused kernel, once per step
    assert _max_diff(plain, net) > 1e-4  # and plain Adam's numbers differ from HalfAdam's


# -- the compile argument (issue 26, item 10) ------------------------------------------------------
@pytest.mark.parametrize("value", [0, 1, "yes", 0.0])
def test_compile_takes_none_true_or_false_only(value):
    """``compile=0`` is not ``False``: anything but None and a boolean is refused."""
    X, y = _problem(20)
    net = ann.NN([6, 3], backend="numpy", seed=0)
    with pytest.raises(ValueError, match="compile must be None, True or False"):
        net.fit(X, y, compile=value)
    assert net.step_ == 0


def test_numpy_booleans_are_booleans_for_compile():
    """``np.False_`` runs eagerly, as ``False`` does (on JAX, which compiles by default)."""
    pytest.importorskip("jax")
    from conftest import enable_jax_x64

    enable_jax_x64()
    X, y = _problem(21)
    net = ann.NN([6, 7, 3], backend="jax", dtype="float64", seed=0)  # a shape no other test uses
    history = net.fit(X, y, epochs=1, batch_size=7, compile=np.False_)
    assert history.params.get("compile_seconds") is None
    history = net.fit(X, y, epochs=1, batch_size=7, compile=np.True_)
    assert history.params.get("compile_seconds", 0) > 0


# -- the scoped binding ----------------------------------------------------------------------------
def test_a_scoped_binding_restores_the_network_whatever_happens():
    """Inside ``net.bound(theta)`` the layers compute with ``theta`` (their outputs equal a
    NumPy forward pass with those weights); after the block, even one that raised, the network
    predicts with its own weights again."""
    X, _ = _problem(10)
    net = ann.NN([6, 4, 3], backend="numpy", dtype="float64", seed=0, output="identity",
                 loss="mse", activation="identity")  # fmt: skip
    before = net.predict(X)
    other = np.random.default_rng(1).normal(size=net.theta.shape)
    W1, b1, W2, b2 = net.layout.split(other)
    with net.bound(other):
        np.testing.assert_allclose(net.predict(X), (X @ W1 + b1) @ W2 + b2, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), before)
    with pytest.raises(RuntimeError, match="inside"), net.bound(other):
        raise RuntimeError("inside")
    np.testing.assert_array_equal(net.predict(X), before)


# -- torch's compiled loop (a whole epoch's full batches as one call) -----------------------------
class _ScaleFromPass(ann.layers.Layer):
    """``y = x * s`` reading ``s`` through the pass: it declares ``params_from_pass``."""

    name = "scale_from_pass_test"
    param_names = ("s",)
    params_from_pass = True

    def build(self, backend: Any, rng: np.random.Generator, fan_in: int) -> int:
        self.backend = backend
        self.params = {"s": backend.asarray(np.linspace(0.5, 1.5, fan_in))}
        return fan_in

    def forward(self, x: Any, ctx: Any = ann.layers.INFERENCE) -> Any:
        ctx.save_for_backward(self, x)
        return x * ctx.params_of(self)["s"]

    def backward(self, grad_out: Any, ctx: Any, need_input_grad: bool = True) -> Any:
        (x,) = ctx.saved(self)
        ctx.grads[self] = {"s": self.xp.sum(grad_out * x, axis=0)}
        return grad_out * ctx.params_of(self)["s"] if need_input_grad else None


class _ScaleFromSelf(_ScaleFromPass):
    """The same layer reading ``self.params`` (the documented recipe); it inherits, but does
    not declare, ``params_from_pass``."""

    name = "scale_from_self_test"

    def forward(self, x: Any, ctx: Any = ann.layers.INFERENCE) -> Any:
        ctx.save_for_backward(self, x)
        return x * self.params["s"]

    def backward(self, grad_out: Any, ctx: Any, need_input_grad: bool = True) -> Any:
        (x,) = ctx.saved(self)
        ctx.grads[self] = {"s": self.xp.sum(grad_out * x, axis=0)}
        return grad_out * self.params["s"] if need_input_grad else None


def _layers(middle: Any) -> list[Any]:
    return [ann.Dense(16, "relu", fan_in=6), middle, ann.Dense(3, activation="softmax")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layer", "in_loop"),
    [(None, True), (_ScaleFromPass, True), (_ScaleFromSelf, False)],
    ids=["dense", "declares-params-from-pass", "reads-self-params"],
)
def test_torch_runs_full_batches_as_one_loop_when_every_layer_reads_the_pass(
    monkeypatch, layer, in_loop
):
    """On torch's CPU the compiled fit runs each epoch's full batches as one compiled loop
    (then the last, smaller batch as one step) when every layer reads its parameters through
    the pass; a layer that reads ``self.params`` (not declaring ``params_from_pass`` on its
    own class) gets one compiled call per batch instead, since dynamo refuses a loop body that
    rebinds the network. Either way the numbers are NumPy float64's, op by op."""
    _torch()
    from anyarray_nn.compiled import CompiledStep

    calls = {"run_epoch": 0, "step": 0}
    run_epoch, step = CompiledStep.run_epoch, CompiledStep.__call__

    def counted_epoch(self, *args):
        calls["run_epoch"] += 1
        return run_epoch(self, *args)

    def counted_step(self, *args):
        calls["step"] += 1
        return step(self, *args)

    monkeypatch.setattr(CompiledStep, "run_epoch", counted_epoch)
    monkeypatch.setattr(CompiledStep, "__call__", counted_step)
    X, y = _problem()
    nets = []
    for backend in ("numpy", "torch"):
        layers = [6, 16, 8, 3] if layer is None else _layers(layer())
        nets.append(ann.NN(layers, backend=backend, dtype="float64", seed=3, l2=1e-3,
                           **({"dropout": 0.3} if layer is None else {})))  # fmt: skip
    ref, net = nets
    ref.fit(X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01)
    net.fit(X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01, compile=True)
    assert _max_diff(ref, net) < 1e-9
    np.testing.assert_allclose(net.history_["loss"], ref.history_["loss"], rtol=1e-10)
    # 203 rows in batches of 32: 6 full batches and one of 11 per epoch
    expected = {"run_epoch": 3, "step": 3} if in_loop else {"run_epoch": 0, "step": 21}
    assert calls == expected


def test_a_pass_with_its_own_views_leaves_the_network_untouched():
    """``Pass(views=...)`` runs the layers on views of another vector: the output is the
    closed form computed from that vector's weights, and the network keeps its own."""
    net = ann.NN([4, 5, 3], dtype="float64", seed=0, l2=0.1)
    before = [w.copy() for w in net.get_weights()]
    theta = np.linspace(-1.0, 1.0, net.theta.shape[0])
    W1, b1, W2, b2 = (np.asarray(v) for v in net.layout.views(np, theta))
    X = np.arange(8.0).reshape(2, 4) / 8
    ctx = ann.layers.Pass(theta=theta, views=net.views_of(theta))
    z = net.logits(X, ctx)
    np.testing.assert_allclose(z, np.maximum(X @ W1 + b1, 0) @ W2 + b2, rtol=1e-12)
    loss, _, grad = net.backprop(X, np.eye(3)[[0, 2]], ann.layers.Pass(
        training=True, theta=theta, views=net.views_of(theta)))  # fmt: skip
    bound_loss, _, _ = net.backprop(X, np.eye(3)[[0, 2]])
    weights = np.concatenate([W1.ravel(), W2.ravel()])
    penalty = 0.1 * float(np.sum(weights**2))  # the penalty of theta's weights, not the net's
    assert abs(float(loss) - float(bound_loss)) > 1e-6
    data = net.objective(X, np.eye(3)[[0, 2]])[0]  # the bound network's objective, unchanged
    assert abs(float(data) - float(bound_loss)) < 1e-12
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[[0, 1], [0, 2]])) + penalty
    assert abs(float(loss) - expected) < 1e-12
    T = np.eye(3)[[0, 2]]

    def f(v: np.ndarray) -> float:
        return float(net.backprop(X, T, ann.layers.Pass(theta=v, views=net.views_of(v)))[0])

    eps = 1e-6
    for i in range(0, theta.shape[0], 3):  # central differences of the pass's own vector
        e = np.zeros_like(theta)
        e[i] = eps
        assert abs((f(theta + e) - f(theta - e)) / (2 * eps) - grad[i]) < 1e-7
    for a, b in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
