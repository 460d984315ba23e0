"""CuPy's "compiler": the training step captured once as a CUDA graph and replayed.

CuPy runs every array operation as its own kernel launch, so a small-batch step is bound by
the host's launch cost, not by the GPU. :class:`GraphStep` is the cupy backend record's
``compile`` (:attr:`anyarray_nn.backend.BackendInfo.compile`): it runs the compiled step's
function (:meth:`anyarray_nn.compiled.CompiledStep`'s traced step, which reads nothing back to
the host and keeps every per-step number in a device buffer it advances itself) once
eagerly, captures its second call as a CUDA graph, and from then on replays that graph: one
launch per step instead of one per operation. The capture itself is behind a small interface
(:class:`CupyCapture` on a GPU; the tests drive the same class with an emulator on NumPy).

The rules, per **signature** (the shapes, dtypes and ``None``-ness of every argument):

- **First call**: eager (CuPy compiles its kernels then, which must not happen during a
  capture). A signature seen once, such as the last, shorter batch of a one-epoch fit, is
  never captured.
- **Second call**: static buffers are allocated for the batch ``(X, T, w)`` (new arrays every
  step); the parameter vector, the optimizer state and the counters are the caller's own
  buffers, updated in place, and are captured where they are. The function is captured on a
  side stream with a private memory pool for everything it allocates (kept with the graph, so
  no other code ever gets those addresses), then the batch is copied into the static buffers
  and the graph is launched on the current stream. A capture executes nothing, so the state
  advances once, by that launch. Where the step returns a new array instead of updating one
  of the caller's buffers, the capture copies it back into that buffer.
- **Later calls**: copy the batch into the static buffers, launch. The outputs returned are
  the caller's buffers and the graph's own loss and statistics arrays, which the next launch
  overwrites: ``replay_overwrites_outputs`` tells the caller to copy what it keeps
  (:class:`~anyarray_nn.compiled.CompiledStep` does, for the per-batch sums).
- **Other buffers** (another network or optimizer state of the same settings, weights
  replaced between epochs): the graph of that signature is dropped and the call captures
  again. A graph is never replayed against addresses it was not captured with; it holds the
  buffers it reads, so they cannot be freed and reused while it lives. :meth:`GraphStep.release`
  (at the end of every ``fit``) drops every graph: the cache of compiled steps keeps no
  network's memory.
- **A failed capture** (an operation that synchronizes with the host, or that CUDA cannot
  capture) ends the capture cleanly, warns once naming the cause, and the step runs eagerly
  from then on, with the same numbers.

Whether the graphs pay is measured by ``benchmarks/gpu.py`` (``ours-cupy-graph``); see
docs/performance.md. This path has not been run on a GPU in this project yet, so
``fit(compile=None)`` does not choose it: ``fit(compile=True)`` asks for it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Array = Any

__all__ = ["Capture", "CupyCapture", "GraphStep", "leaves"]


def leaves(tree: Any) -> list[Any]:
    """The arrays of a nest of tuples, lists and dicts (dicts in their order), ``None``
    included, depth first."""
    if isinstance(tree, tuple | list):
        return [leaf for item in tree for leaf in leaves(item)]
    if isinstance(tree, dict):
        return [leaf for item in tree.values() for leaf in leaves(item)]
    return [tree]


def structure(tree: Any) -> Any:
    """The shape of the nest without its arrays: equal for two nests whose leaves pair up."""
    if isinstance(tree, tuple | list):
        return (type(tree).__name__, tuple(structure(item) for item in tree))
    if isinstance(tree, dict):
        return ("dict", tuple((k, structure(v)) for k, v in tree.items()))
    return None if tree is None else "array"


def signature(tree: Any) -> tuple[Any, ...]:
    """What a captured graph is specific to: the nest's structure and each array's shape and
    dtype."""
    arrays = tuple(None if x is None else (tuple(x.shape), str(x.dtype)) for x in leaves(tree))
    return (structure(tree), arrays)


class Capture(Protocol):
    """What :class:`GraphStep` needs from a graph library."""

    def empty_like(self, x: Array) -> Array:
        """A new buffer shaped like ``x`` (contents undefined), made outside any capture."""

    def copy_into(self, dst: Array, src: Array) -> None:
        """``dst[...] = src``, ordered on the current stream (or recorded, in a capture)."""

    def capture(self, body: Callable[[], Any], buffers: Sequence[Array]) -> tuple[Any, Any]:
        """``(graph, outputs)``: ``body()`` recorded, not run (``outputs`` are arrays the
        graph writes on each launch). ``buffers`` are the arrays the graph reads and writes
        besides its own (an emulator needs them; a GPU does not). A failure leaves no
        capture open and raises."""

    def launch(self, graph: Any) -> None:
        """Run ``graph`` once, on the current stream."""

    def release(self, graph: Any) -> None:
        """Forget ``graph`` (and its memory) once no launch of it can be running."""


class _Graph:
    """One captured step: its static batch buffers, the caller's buffers it was captured
    with, and the outputs each launch writes."""

    def __init__(
        self, handle: Any, static: tuple[Any, ...], held: list[Any], returns: tuple[Any, ...],
        sums: list[Array],
    ) -> None:  # fmt: skip
        self.handle, self.static, self.held, self.returns, self.sums = (
            handle, static, held, returns, sums
        )  # fmt: skip

    def captured_with(self, buffers: list[Any]) -> bool:
        return len(buffers) == len(self.held) and all(
            a is b for a, b in zip(buffers, self.held, strict=True)
        )

    def run(self, capture: Capture, batch: Sequence[Array | None]) -> tuple[Any, ...]:
        for buffer, x in zip(self.static, batch, strict=True):
            if buffer is not None:
                capture.copy_into(buffer, x)
        capture.launch(self.handle)
        theta, state, counters = self.returns
        return theta, state, counters, list(self.sums)


class GraphStep:
    """``fn(theta, state, counters, batch) -> (theta, state, counters, sums)`` replayed as a
    captured graph (the rules are the module's). ``captures`` and ``launches`` count graphs
    captured and launched; ``failure`` is the cause of a failed capture (the step then runs
    eagerly), else ``None``."""

    #: The ``sums`` a launch returns are overwritten by the next launch: copy what you keep.
    replay_overwrites_outputs = True

    def __init__(self, fn: Callable[..., Any], capture: Capture) -> None:
        self._fn, self._capture = fn, capture
        self._graphs: dict[tuple[Any, ...], _Graph] = {}
        self._seen: set[tuple[Any, ...]] = set()
        self.captures = 0
        self.launches = 0
        self.failure: str | None = None

    def __call__(
        self, theta: Array, state: dict[str, Array], counters: Any, batch: Sequence[Any]
    ) -> Any:
        args = (theta, state, counters, tuple(batch))
        if self.failure is not None:
            return self._fn(*args)
        key = signature(args)
        held = leaves(args[:3])
        graph = self._graphs.get(key)
        if graph is not None and not graph.captured_with(held):
            self._drop(key)  # other buffers: never replay against the captured addresses
            graph = None
        if graph is None:
            if key not in self._seen:  # first call: eager (kernels compile outside a capture)
                self._seen.add(key)
                return self._fn(*args)
            graph = self._record(key, theta, state, counters, args[3])
            if graph is None:
                return self._fn(*args)
        out = graph.run(self._capture, args[3])
        self.launches += 1
        return out

    def _record(
        self, key: tuple[Any, ...], theta: Array, state: dict[str, Array], counters: Any,
        batch: tuple[Any, ...],
    ) -> _Graph | None:  # fmt: skip
        capture = self._capture
        static = tuple(None if x is None else capture.empty_like(x) for x in batch)
        held = leaves((theta, state, counters))
        returns = (theta, state, counters)

        def body() -> list[Array]:
            out = self._fn(theta, state, counters, static)
            if structure(tuple(out[:3])) != structure(returns):
                raise TypeError("the step returned its state in another structure")
            for mine, new in zip(held, leaves(tuple(out[:3])), strict=True):
                if new is not mine:  # a new array: the graph writes it into the caller's
                    capture.copy_into(mine, new)
            return list(out[3])

        try:
            handle, sums = capture.capture(body, [*held, *(s for s in static if s is not None)])
        except Exception as exc:
            self._fail(exc)
            return None
        graph = _Graph(handle, static, held, returns, list(sums))
        self._graphs[key] = graph
        self.captures += 1
        return graph

    def _fail(self, exc: Exception) -> None:
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
        self.failure = cause
        self.release()
        warnings.warn(
            f"Capturing the training step as a CUDA graph failed ({cause}); it runs eagerly, "
            "op by op, from now on (same numbers, no graph). Something in the step "
            "synchronizes with the host or cannot be captured; fit(compile=False) runs "
            "eagerly without trying.",
            RuntimeWarning,
            stacklevel=2,
        )

    def _drop(self, key: tuple[Any, ...]) -> None:
        graph = self._graphs.pop(key)
        self._capture.release(graph.handle)

    def release(self) -> None:
        """Drop every graph (and with it the buffers it holds); signatures already run stay
        compiled, so the next call of one captures at once."""
        for key in list(self._graphs):
            self._drop(key)


class CupyCapture:
    """:class:`Capture` with ``cupy.cuda.Graph`` on one device: a capture on a non-blocking
    stream in CuPy's default (relaxed) mode, allocating from a private
    ``cupy.cuda.MemoryPool`` kept with the graph; launches on the current stream, so the
    copies into the static buffers before a launch and the reads of its outputs after it are
    ordered with it. ``cupy`` is the module (a stand-in in the tests)."""

    def __init__(self, device: Any, cupy: Any = None) -> None:
        if cupy is None:
            import cupy  # optional: only on the cupy backend

        self._cp, self._device = cupy, device

    def empty_like(self, x: Array) -> Array:
        with self._device:
            return self._cp.empty_like(x)

    def copy_into(self, dst: Array, src: Array) -> None:
        dst[...] = src

    def capture(self, body: Callable[[], Any], buffers: Sequence[Array]) -> tuple[Any, Any]:
        cp = self._cp
        pool = cp.cuda.MemoryPool()
        stream = cp.cuda.Stream(non_blocking=True)
        with self._device, cp.cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture()
            try:
                outputs = body()
            except BaseException:
                _end_abandoned(stream)
                raise
            graph = stream.end_capture()  # raises when the capture was invalidated
        return (graph, pool, stream), outputs

    def launch(self, graph: Any) -> None:
        with self._device:
            graph[0].launch(stream=self._cp.cuda.get_current_stream())

    def release(self, graph: Any) -> None:
        with self._device:  # its memory goes back with the pool: no launch may be running
            self._cp.cuda.get_current_stream().synchronize()


def _end_abandoned(stream: Any) -> None:
    """End a capture that failed part-way (its graph is discarded), whatever CUDA says."""
    with contextlib.suppress(Exception):  # an invalidated capture's error: it has ended
        stream.end_capture()
    if stream.is_capturing():  # pragma: no cover - CUDA ends a capture on end_capture
        raise RuntimeError("a failed CUDA graph capture could not be ended")
