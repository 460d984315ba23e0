"""The compiled training step: the one step body, traced once and run by a compiler.

On a backend whose record has a compiler (:attr:`~anyarray_nn.backend.BackendInfo.compile`:
JAX's ``jax.jit``; ``torch.compile``, which on a CUDA device also captures the step as a CUDA
graph; on CuPy the step captured as a CUDA graph and replayed, :mod:`anyarray_nn.graphs`, not
yet run on a GPU in this project), ``fit`` runs the training step compiled instead of op by op.
Nothing in the math changes: the step is :meth:`anyarray_nn.training.Step.body`, the body the
eager step runs (the layers' forward and backward, the output head, the penalties, clipping
and :meth:`~anyarray_nn.optimizers.Optimizer.advance`), traced with abstract arrays. This module
holds only what is specific to compiling:

- **Everything that changes from step to step is an argument that lives on the device**: the
  parameter vector and the optimizer's state vectors, the batch (or, for a compiled loop, the
  training arrays and the batches' row indices), the optimizer's step counter
  (:meth:`~anyarray_nn.optimizers.Optimizer.count_on`), the learning rate
  (:meth:`~anyarray_nn.optimizers.Optimizer.lr_on`, written in place when a schedule changes
  it) and the dropout key's step (:class:`~anyarray_nn.random.DeviceStep`). The step advances
  the counters itself, so no number is computed on the host per step, and a captured graph can
  be replayed as it is.
- While it traces, the optimizer's counter reads as an object that refuses to be read, so an
  update that reads ``t`` fails loudly instead of baking one step's value in.
- **A replayed CUDA graph overwrites its previous outputs** (torch's ``reduce-overhead``,
  CuPy's graphs: the compiler's ``replay_overwrites_outputs``): each step's loss and
  statistics are copied before the epoch's sums keep them, and the parameter vector, optimizer
  state and counters returned are the caller's own buffers (values the step returned elsewhere
  are copied into them).
- Where the backend also has a ``scan`` (``jax.lax.scan``; torch's ``scan`` on its CPU), a
  whole epoch's full batches run as one call: the step is the body of a compiled loop
  (:func:`anyarray_nn.training._train_epoch` takes that fast path, then calls the single step
  for the last, smaller batch). The loop's body returns new arrays, and where every layer reads
  its parameters through the pass (:attr:`~anyarray_nn.layers.Layer.params_from_pass`) it
  gives them views of its own parameter vector instead of binding the network: dynamo refuses
  a loop body that changes Python objects, so on torch a network with a layer that reads
  ``self.params`` runs one compiled call per step instead.

**The cache keeps compiled code, not networks.** A :class:`CompiledStep` is kept per
:meth:`~anyarray_nn.training.Step.settings` (the one key, next to the fields it describes), so
later epochs, later ``fit`` calls and networks of the same configuration reuse it; it refers
to the fit's :class:`~anyarray_nn.training.Step` only while that fit runs
(:meth:`CompiledStep.release`), so a network is garbage-collected once the user drops it. The
compiler itself compiles once per shape of the arguments (batch size, epoch length).
"""

from __future__ import annotations

import time
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import writeback
from .graphs import leaves
from .layers import reads_params_from_pass
from .optimizers import FLUSH_EVERY, flush_tiny_state
from .random import DeviceStep

if TYPE_CHECKING:
    from .training import Batch, Step, _Data

Array = Any

__all__ = ["CompiledStep", "compiled_step_for"]

#: Compiled steps by :meth:`Step.settings`, the most recently used last.
_CACHE: OrderedDict[tuple[Any, ...], CompiledStep] = OrderedDict()
#: How many compiled steps are kept.
CACHE_SIZE = 16


class _CounterUnavailable:
    """Stands for ``Optimizer.count`` while a step is traced: any use of it is an error."""

    def _refuse(self, *args: Any) -> Any:
        raise TypeError(
            "The optimizer's update read its step counter t inside a compiled step, where it "
            "would be frozen at one value. Compute t-dependent numbers in "
            "Optimizer.scalars_at(xp, lr, t) from its t argument (scalars(lr) runs eagerly), "
            "and read them in apply(..., s, wb), or fit(compile=False)."
        )

    __int__ = __index__ = __float__ = __bool__ = __eq__ = __ne__ = __lt__ = __le__ = _refuse
    __gt__ = __ge__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __pow__ = __rpow__ = __mod__ = __rmod__ = __truediv__ = __rtruediv__ = _refuse
    __floordiv__ = __rfloordiv__ = __hash__ = _refuse  # type: ignore[assignment]


_UNREADABLE = _CounterUnavailable()


class CompiledStep:
    """The compiled functions of one step's settings.

    Called like the eager step, ``compiled(theta, opt_state, batch, step_number)`` runs one
    batch; :meth:`run_epoch` runs many full batches as one compiled loop (when the backend
    has a ``scan``). ``compiles`` counts the argument shapes compiled for and
    ``compile_seconds`` the time those first calls took.
    """

    def __init__(self, step: Step) -> None:
        net = step.net
        info = net.backend.info
        self.step: Step | None = None
        self.compile_seconds = 0.0
        self.compiles = 0
        self._seen: set[tuple[Any, ...]] = set()
        self._wb = writeback.for_array(net.theta)
        device = net.backend.device
        self._once = info.compile(_own_code(self._traced_step), device)  # type: ignore[misc]
        # a loop body that binds the network (layers that read ``self.params``) needs a
        # compiler that allows side effects in loop bodies (JAX's trace; not dynamo's)
        self._own_views = all(reads_params_from_pass(layer) for layer in net.layers)
        self._scan = info.scan_on(device) if info.scan_on is not None else None
        if not (self._own_views or info.scan_binds):
            self._scan = None
        self.can_scan = self._scan is not None
        self._epoch = (
            info.compile(_own_code(self._traced_epoch), device) if self.can_scan else None  # type: ignore[misc]
        )
        #: A replay overwrites the previous call's loss and statistics (CUDA graphs): they
        #: are copied before the loop keeps them, and the buffers the step updates in place
        #: are checked to be the caller's.
        self._replays = bool(getattr(self._once, "replay_overwrites_outputs", False))
        self._dropout_step: DeviceStep | None = None
        self._dropout_at = -1
        self._placed: tuple[Any, Any] = (None, None)  # the counter and rate last handed over

    # -- the traced functions -------------------------------------------------------------------
    def _traced_step(
        self,
        theta: Array,
        state: dict[str, Array],
        counters: tuple[Array, Array, tuple[Array, ...]],
        batch: tuple[Array, Array, Array | None],
        owed: Any = None,
        in_loop: bool = False,
    ) -> tuple[Array, dict[str, Array], Any, list[Array]]:
        """:meth:`Step.body` on traced arrays: ``counters = (count, lr, dropout step parts)``,
        ``batch = (X, T, w)``; ``owed`` as in :meth:`Optimizer.advance`. The layers see views
        of the traced ``theta`` for the trace's length; the network is bound as before when it
        returns. ``in_loop``: the body of a compiled loop, which returns new arrays and, where
        the layers allow it, touches nothing outside (the optimizer's counter is made
        unreadable around the whole loop instead)."""
        step = self.step
        assert step is not None
        net, opt = step.net, step.opt
        X, T, w = batch
        count, lr, parts = counters
        own_views = in_loop and self._own_views
        previous = None if own_views else net._bind_views(theta)
        kept = opt.count
        if not in_loop:
            opt.count = _UNREADABLE
        try:  # a capture that fails part-way (anyarray_nn.graphs) leaves both as they were
            theta, state, counters, sums = step.body(
                theta, dict(state), (count, lr, DeviceStep(*parts)), step.whole_batch(X, T, w),
                writeback.NEW_ARRAYS if in_loop else self._wb, owed, own_views,
            )  # fmt: skip
        finally:
            if not in_loop:
                opt.count = kept
            if previous is not None:
                net._restore_binding(previous)
        count, lr, dropout_step = counters
        return theta, state, (count, lr, dropout_step.parts()), sums

    def _traced_epoch(
        self,
        theta: Array,
        state: dict[str, Array],
        counters: Any,
        data: tuple[Array, Array, Array | None],
        idx: Array,
    ) -> tuple[Array, dict[str, Array], Any, Any]:
        """Every row of ``idx`` (one batch's row indices each) in one compiled loop.

        Each step leaves its flush of the optimizer state (:func:`flush_tiny_state`) to the
        next, which does it on the state it reads, and the loop's end does the last one: the
        same numbers as flushing at each step's end, but the state each step returns is the
        update's own output, which XLA writes in place instead of computing the update twice
        and copying the old state every step."""
        X, T, w = data
        assert self.step is not None
        xp, opt = self.step.net.xp, self.step.opt
        # the loop's constants: the first step (a copy: no loop input may alias another) and
        # the rate (not carried: a loop body may not return one of its inputs unchanged)
        first, lr = xp.asarray(counters[0], copy=True), counters[1]

        def body(carry: Any, rows: Array) -> Any:
            theta, state, (count, parts) = carry
            # the previous step's flush (none before the loop's first step: its caller did it)
            owed = xp.logical_and(count % FLUSH_EVERY == 0, count != first)
            w_rows = None if w is None else xp.take(w, rows, axis=0)
            batch = (xp.take(X, rows, axis=0), xp.take(T, rows, axis=0), w_rows)
            theta, state, (count, _, parts), sums = self._traced_step(
                theta, state, (count, lr, parts), batch, owed, in_loop=True
            )
            if w_rows is None:  # (no None among a loop's outputs)
                return (theta, state, (count, parts)), (sums[0], sums[1:])
            return (theta, state, (count, parts)), (sums[0], sums[1:], xp.sum(w_rows))

        kept, opt.count = opt.count, _UNREADABLE
        carry = (theta, state, (counters[0], counters[2]))
        (theta, state, (count, parts)), sums = self._scan(body, carry, idx)  # type: ignore[misc]
        opt.count = kept
        counters = (count, lr, parts)
        state = flush_tiny_state(xp, dict(state), count, writeback.NEW_ARRAYS)
        if w is None:
            sums = (*sums, None)
        return theta, state, counters, sums

    # -- host side ------------------------------------------------------------------------------
    def using(self, step: Step) -> CompiledStep:
        """Run ``step``'s network and optimizer (same settings) until :meth:`release`."""
        self.step = step
        net = step.net
        if net.l1 or net.l2:
            net._penalty_mask()  # made before tracing: a constant of the trace, not an op
        return self

    def release(self) -> None:
        """Forget the fit's step and network (the cache keeps compiled code, and the dropout
        step's device buffer, never a network)."""
        self.step, self._dropout_at, self._placed = None, -1, (None, None)
        for fn in (self._once, self._epoch):
            getattr(fn, "release", lambda: None)()  # captured graphs hold the fit's buffers

    def _counters(self, step_number: int) -> tuple[Array, Array, tuple[Array, ...]]:
        """The device counters at ``step_number``: moved there once per fit, then carried.
        The dropout step keeps its buffer from fit to fit (written in place where arrays can
        be written), so a captured CUDA graph reads it where it was captured."""
        assert self.step is not None
        net, opt = self.step.net, self.step.opt
        if self._dropout_step is None or self._dropout_at != step_number:
            fresh = DeviceStep.on_device(net.backend, step_number)
            old = self._dropout_step
            if old is None or not self._wb.mutable or not net.backend.owns(old.lo):
                self._dropout_step = fresh
            else:
                for mine, value in zip(old.parts(), fresh.parts(), strict=True):
                    mine[...] = value
            self._dropout_at = step_number
        if opt.count is not self._placed[0] or opt._lr_device is not self._placed[1]:
            self._placed = (opt.count_on(net.backend), opt.lr_on(net.backend))  # checked once
        return (*self._placed, self._dropout_step.parts())

    def _keep(self, counters: Any, step_number: int) -> None:
        assert self.step is not None
        self.step.opt.count = counters[0]
        self._dropout_step, self._dropout_at = DeviceStep(*counters[2]), step_number

    def _timed(self, fn: Callable[..., Any], signature: tuple[Any, ...], *args: Any) -> Any:
        """``fn(*args)``; the first call with a new ``signature`` (argument shapes) compiles,
        and the time it took counts as compiling. A failed call leaves the network bound as
        before and the optimizer's counter as it was."""
        assert self.step is not None
        net, opt = self.step.net, self.step.opt
        new, start = signature not in self._seen, time.perf_counter()
        previous, count = (net._theta, net._views), opt.count
        try:
            out = fn(*args) if new else getattr(fn, "warm", fn)(*args)
        except BaseException:
            net._restore_binding(previous)
            opt.count = count
            raise
        if new:
            self._seen.add(signature)
            self.compiles += 1
            self.compile_seconds += time.perf_counter() - start
        return out

    def __call__(
        self, theta: Array, opt_state: dict[str, Array], batch: Batch, step_number: int
    ) -> tuple[Array, dict[str, Array], list[Array]]:
        """One batch at dropout step ``step_number``: the eager step's call, compiled."""
        signature = ("step", tuple(batch.X.shape), batch.w is None)
        counters = self._counters(step_number)
        arrays = (batch.X, batch.T, batch.w)
        given = (theta, opt_state, counters)
        theta, state, counters, sums = self._timed(
            self._once, signature, theta, opt_state, counters, arrays
        )
        if self._replays:
            theta, state, counters = self._in_callers_buffers(given, (theta, state, counters))
            xp = self.step.net.xp  # type: ignore[union-attr]
            sums = [xp.asarray(s, copy=True) for s in sums]  # the next replay overwrites them
        self._keep(counters, step_number + 1)
        return theta, state, sums

    def _in_callers_buffers(self, given: Any, got: Any) -> Any:
        """``got`` as the caller's buffers ``given`` (the same nest): where a replayed step
        returned another array than the one it was given (the graph's own memory, which the
        next replay reuses), its values are copied into the caller's. Nothing to do, and no
        operation, where the step updated them in place."""
        for mine, new in zip(leaves(given), leaves(got), strict=True):
            if new is not mine:
                mine[...] = new
        theta, state, counters = given
        return theta, dict(state), counters

    def run_epoch(
        self, theta: Array, opt_state: dict[str, Array], data: _Data, idx: Array,
        step_number: int,
    ) -> tuple[Array, dict[str, Array], Any]:  # fmt: skip
        """The batches ``idx[0], idx[1], ...`` (equal sizes, row indices into ``data``) from
        dropout step ``step_number`` on, as one call; returns the stacked
        ``(losses, [statistics...], weight sums or None)``."""
        signature = ("epoch", tuple(idx.shape), tuple(data.X.shape), data.w is None)
        counters = self._counters(step_number)
        arrays = (data.X, data.T, data.w)
        theta, state, counters, sums = self._timed(
            self._epoch,
            signature,
            theta,
            opt_state,
            counters,
            arrays,
            idx,  # type: ignore[arg-type]
        )
        self._keep(counters, step_number + int(idx.shape[0]))
        return theta, state, sums


def _own_code(method: Any) -> Any:
    """``method`` bound to a copy of its function with its own code object: a compiler that
    caches per code object (dynamo) then keeps each compiled step's graphs apart, within its
    limit of graphs per function."""
    fn = method.__func__
    twin = types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    return types.MethodType(twin, method.__self__)


def compiled_step_for(step: Step) -> CompiledStep:
    """The compiled step for ``step``'s settings (made once, then reused by later epochs,
    ``fit`` calls and networks of the same configuration), running ``step`` until released.
    The compiler itself compiles once per shape of the arguments (batch size, epoch
    length)."""
    key = step.settings()
    compiled = _CACHE.pop(key, None) or CompiledStep(step)
    _CACHE[key] = compiled
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled.using(step)
