"""CuPy's captured training step (:mod:`anyarray_nn.graphs`), on the CPU through an emulator
of graph capture and replay, and on a GPU (marked ``gpu``).

The emulator (:class:`FakeCapture`) runs on NumPy and is as strict about replay as a CPU can
be: a capture runs nothing (every buffer the graph reads and writes is put back as it was, and
the outputs are NaN until a launch); a launch re-runs the captured function on the captured
buffers and writes its results into the same output arrays, after filling them with NaN, so
a kept reference to a previous launch's output reads the latest one, as on a GPU. A compiled
fit through it is compared with an eager NumPy fit, an independent path (no graph, no device
counters).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

import anyarray_nn as ann
from anyarray_nn import backend as backend_module
from anyarray_nn import compiled
from anyarray_nn.graphs import CupyCapture, GraphStep


def _garbage(a: Any) -> Any:
    a = np.asarray(a)
    return np.nan if a.dtype.kind == "f" else np.iinfo(a.dtype).max


class FakeGraph:
    def __init__(self, body: Any, outputs: list[np.ndarray], buffers: list[Any]) -> None:
        self.body, self.outputs, self.buffers = body, outputs, buffers


class FakeCapture:
    """The :class:`anyarray_nn.graphs.Capture` interface on NumPy (see the module docstring).
    ``fail``: the error a capture raises after recording (an invalidated capture)."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.capturing = False
        self.graphs: list[FakeGraph] = []
        self.launches = 0
        self.released = 0

    def empty_like(self, x: Any) -> np.ndarray:
        assert not self.capturing
        out = np.empty_like(x)
        out[...] = _garbage(out)
        return out

    def copy_into(self, dst: Any, src: Any) -> None:
        dst[...] = src

    def capture(self, body: Any, buffers: list[Any]) -> tuple[FakeGraph, list[np.ndarray]]:
        assert not self.capturing
        saved = [np.array(b, copy=True) for b in buffers]
        self.capturing = True
        try:
            outputs = body()
            if self.fail:
                raise RuntimeError(self.fail)
        finally:
            self.capturing = False
            for buffer, before in zip(buffers, saved, strict=True):
                buffer[...] = before  # a capture records; it runs nothing
        fixed = [np.full_like(np.asarray(o), _garbage(o)) for o in outputs]
        graph = FakeGraph(body, fixed, list(buffers))
        self.graphs.append(graph)
        return graph, fixed

    def launch(self, graph: FakeGraph) -> None:
        assert not self.capturing and graph in self.graphs
        for out in graph.outputs:  # the previous launch's outputs are overwritten
            out[...] = _garbage(out)
        for out, new in zip(graph.outputs, graph.body(), strict=True):
            out[...] = new
        self.launches += 1

    def release(self, graph: FakeGraph) -> None:
        self.graphs.remove(graph)
        self.released += 1


@pytest.fixture
def fake(monkeypatch):
    """NumPy's record with the emulator as its compiler (off by default, so ``compile=False``
    and ``None`` run eagerly), and an empty cache of compiled steps."""
    capture = FakeCapture()
    info = dataclasses.replace(
        backend_module.BACKENDS["numpy"],
        compile=lambda fn, device=None: GraphStep(fn, capture),
        compile_by_default=False,
    )
    monkeypatch.setitem(backend_module.BACKENDS, "numpy", info)
    monkeypatch.setattr(compiled, "_CACHE", OrderedDict())
    return capture


CASES = {
    "adam-schedule": ({}, {"optimizer": "adam", "lr": 0.01, "schedule": 0.5}),
    "sgd-l2-dropout": (
        {"l2": 1e-3, "dropout": 0.3},
        {"optimizer": ann.optimizers.SGD(lr=0.05, momentum=0.9, dampening=0.1)},
    ),
}


def _problem(n: int = 203, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.integers(0, 3, n)


def _net(**kwargs: Any) -> ann.NN:
    kwargs.setdefault("seed", 3)
    return ann.NN([6, 16, 8, 3], backend="numpy", dtype="float64", **kwargs)


def _fit_kwargs(case: str) -> dict[str, Any]:
    kwargs = dict(CASES[case][1])
    if isinstance(kwargs["optimizer"], ann.Optimizer):
        kwargs["optimizer"] = kwargs["optimizer"].clone()
    if "schedule" in kwargs:  # a per-epoch rate, written into the step's device buffer
        kwargs["schedule"] = ann.schedules.ExponentialDecay(kwargs["schedule"])
    return kwargs


def _max_diff(a: ann.NN, b: ann.NN) -> float:
    return max(
        float(np.abs(u - v).max()) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


def _graph_step() -> GraphStep:
    (step,) = [c._once for c in compiled._CACHE.values()]
    assert isinstance(step, GraphStep)
    return step


def _pair(case: str, epochs: int = 3, **fit: Any) -> tuple[ann.NN, ann.NN, Any, Any]:
    X, y = _problem()
    ref, net = _net(**CASES[case][0]), _net(**CASES[case][0])
    want = ref.fit(X, y, epochs=epochs, batch_size=32, compile=False, **_fit_kwargs(case), **fit)
    got = net.fit(X, y, epochs=epochs, batch_size=32, compile=True, **_fit_kwargs(case), **fit)
    return ref, net, want, got


@pytest.mark.parametrize("case", list(CASES))
def test_a_replayed_fit_equals_an_eager_numpy_fit(fake, case):
    """3 epochs of 203 rows in batches of 32 (a last batch of 11): the weights, the loss and
    accuracy history and the optimizer's counter equal the eager fit's. Each signature runs
    eagerly once, is captured at its second call and replayed after: the full batches from
    the first epoch's second step, the last batch from the second epoch."""
    ref, net, want, got = _pair(case)
    assert _max_diff(ref, net) < 1e-12
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=0)
    assert net.optimizer.t == ref.optimizer.t == 21 and net.step_ == 21
    step = _graph_step()
    assert step.captures == 2 and step.failure is None
    assert step.launches == fake.launches == (6 * 3 - 1) + (3 - 1)
    assert fake.graphs == [] and fake.released == 2  # fit's end drops the graphs


def test_the_emulator_catches_a_kept_output_that_a_replay_overwrites(fake, monkeypatch):
    """Without the copy of each step's loss and statistics the history is wrong (every
    batch's entry reads the last launch's): the emulator is strict enough to tell."""
    monkeypatch.setattr(GraphStep, "replay_overwrites_outputs", False)
    ref, net, want, got = _pair("adam-schedule", epochs=1)
    assert _max_diff(ref, net) < 1e-12  # the weights are right; the logs are not
    assert abs(got["loss"][0] - want["loss"][0]) > 1e-6


def test_the_emulator_catches_a_batch_not_copied_into_the_static_buffers(fake, monkeypatch):
    """A replay reads the batch from the buffers it was captured with: a step that copied
    only the first batch there would train on it over and over."""

    def first_batch_only(self: FakeCapture, dst: Any, src: Any) -> None:
        if self.capturing or np.isnan(dst).any():  # later batches' copies are lost
            dst[...] = src

    monkeypatch.setattr(FakeCapture, "copy_into", first_batch_only)
    ref, net, _, _ = _pair("adam-schedule", epochs=1)
    assert _max_diff(ref, net) > 1e-6


def test_other_buffers_are_captured_again_never_replayed_against(fake, monkeypatch):
    """A graph is tied to the buffers it was captured with. Weights replaced after every
    epoch (a new parameter vector), and a second network of the same settings while the first
    one's graphs are kept (fit's end would drop them): each is captured again, and the
    numbers are the eager fit's."""
    X, y = _problem()

    class Reload:
        def on_epoch_end(self, net, epoch, logs):
            net.set_weights(net.get_weights())  # same values, a new vector

    ref, net = _net(), _net()
    for model, flag in ((ref, False), (net, True)):
        model.fit(X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01,
                  callbacks=[Reload()], compile=flag)  # fmt: skip
    assert _max_diff(ref, net) < 1e-12
    step = _graph_step()
    # epoch 1 captures the full batches; epochs 2 and 3 capture them again (a new vector)
    # and the last batch in each (captured at its second call, then captured again)
    assert step.captures == 1 + 2 * 2

    monkeypatch.setattr(GraphStep, "release", lambda self: None)  # keep graphs across fits
    first, second, refs = _net(), _net(seed=4), (_net(), _net(seed=4))
    for model in (first, second):
        model.fit(X, y, epochs=2, batch_size=32, optimizer="adam", lr=0.01, compile=True)
    for model in refs:
        model.fit(X, y, epochs=2, batch_size=32, optimizer="adam", lr=0.01, compile=False)
    assert _max_diff(refs[0], first) < 1e-12 and _max_diff(refs[1], second) < 1e-12
    assert step.captures == 5 + 2 + 2  # two signatures per network, none replayed across


def test_a_failed_capture_warns_once_and_runs_eagerly_with_the_same_numbers(fake):
    """An error while capturing (here an invalidated capture) is one RuntimeWarning naming
    the cause; the step runs eagerly from then on (no launch), with the eager numbers, and
    the optimizer's counter and the network's binding are as they were."""
    fake.fail = "cudaErrorStreamCaptureInvalidated: operation not permitted when capturing"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref, net, want, got = _pair("sgd-l2-dropout")
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "cudaErrorStreamCaptureInvalidated" in messages[0]
    assert "eagerly" in messages[0]
    assert not fake.capturing and fake.launches == 0
    assert _max_diff(ref, net) < 1e-12
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-12, atol=0)
    assert net.optimizer.t == 21 and _graph_step().failure is not None


# -- CupyCapture's own logic, with a stand-in for the cupy module ---------------------------------
class _Stream:
    def __init__(self, log: list[str], invalid: bool) -> None:
        self.log, self.invalid, self.capturing = log, invalid, False

    def __enter__(self) -> _Stream:
        self.log.append("enter stream")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.log.append("exit stream")

    def begin_capture(self) -> None:
        self.capturing = True

    def end_capture(self) -> Any:
        self.capturing = False
        if self.invalid:
            raise RuntimeError("cudaErrorStreamCaptureInvalidated")
        return self

    def is_capturing(self) -> bool:
        return self.capturing


class _Cupy:
    """Enough of ``cupy.cuda`` to follow CupyCapture's calls."""

    def __init__(self, invalid: bool = False) -> None:
        self.log: list[str] = []
        self.streams: list[_Stream] = []
        outer = self

        class Cuda:
            class MemoryPool:
                def malloc(self, n: int) -> None:
                    outer.log.append("private malloc")

            @staticmethod
            def Stream(non_blocking: bool) -> _Stream:  # cupy's name
                assert non_blocking
                outer.streams.append(_Stream(outer.log, invalid))
                return outer.streams[-1]

            @staticmethod
            def using_allocator(malloc: Any) -> Any:
                import contextlib

                outer.log.append("allocator")
                return contextlib.nullcontext()

        self.cuda = Cuda


class _Device:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        pass


@pytest.mark.parametrize("where", ["body", "end"])
def test_cupy_capture_never_leaves_a_stream_capturing(where):
    """A failure inside the captured function, or an invalidated capture at its end, raises
    with the capture ended."""
    cp = _Cupy(invalid=where == "end")
    capture = CupyCapture(_Device(), cupy=cp)

    def body() -> list[Any]:
        if where == "body":
            raise RuntimeError("operation not permitted when stream is capturing")
        return []

    with pytest.raises(RuntimeError, match=r"capturing|Invalidated"):
        capture.capture(body, [])
    assert cp.streams and not cp.streams[0].is_capturing()
    assert cp.log[:2] == ["allocator", "enter stream"]  # a private pool, a side stream


# -- on a GPU ---------------------------------------------------------------------------------------
def _cupy() -> Any:
    cupy = pytest.importorskip("cupy", reason="cupy not installed (pip install .[cuda12])")
    if not cupy.is_available():
        pytest.skip("cupy.is_available() is False (no GPU)")
    return cupy


@pytest.mark.gpu
def test_cupy_graph_fit_equals_numpy_float64():
    """``fit(compile=True)`` on CuPy: 3 epochs with dropout, L2, Adam and a per-epoch
    schedule, 203 rows in batches of 32 (a last batch of 11), in float64: NumPy's eager
    numbers to 1e-9, the same loss history, both signatures captured, no fallback."""
    _cupy()
    X, y = _problem()
    make = dict(layers=[6, 16, 8, 3], dtype="float64", seed=3, dropout=0.3, l2=1e-3)
    ref, net = ann.NN(backend="numpy", **make), ann.NN(backend="cupy", **make)
    kwargs = dict(epochs=3, batch_size=32, optimizer="adam", lr=0.01)
    want = ref.fit(X, y, schedule=ann.schedules.ExponentialDecay(0.5), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed capture warns
        got = net.fit(X, y, compile=True, schedule=ann.schedules.ExponentialDecay(0.5), **kwargs)
    assert _max_diff(ref, net) < 1e-9
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-9)
    np.testing.assert_allclose(got["lr"], want["lr"], rtol=1e-12)
    assert net.optimizer.t == 21 and net.step_ == 21
    steps = [c._once for c in compiled._CACHE.values() if isinstance(c._once, GraphStep)]
    step = steps[-1]
    assert step.failure is None and step.captures == 2
    assert step.launches == (6 * 3 - 1) + (3 - 1)
    # a continued fit captures again (fit's end dropped the graphs) and stays exact
    for model, flag in ((ref, False), (net, True)):
        model.fit(X, y, epochs=1, batch_size=32, compile=flag)
    assert _max_diff(ref, net) < 1e-9 and step.captures == 3
