"""The compiled training step: the same step function, traced once and run by a compiler.

On a backend whose record has a compiler (:attr:`~anyarray_nn.backend.BackendInfo.compile`:
JAX's ``jax.jit``), ``fit`` runs the training step of :mod:`anyarray_nn.training` as a compiled
function instead of op by op. Nothing in the math changes: the layers' forward and backward, the
output head, the penalties and the optimizer's :meth:`~anyarray_nn.optimizers.Optimizer.apply`
are the library's own code, traced with abstract arrays.

What makes one compiled function serve every step: everything that changes from step to step is
an argument, never a constant baked in at tracing time:

- the parameter vector and the optimizer's state vectors;
- the data (the whole training arrays, on the device) and the batch's row indices;
- the step number that keys the dropout masks, as two ``uint32`` scalars
  (:class:`~anyarray_nn.random.DeviceStep`);
- the optimizer's step-dependent numbers (the learning rate, Adam's bias corrections, SGD's
  first step), computed on the host by :meth:`~anyarray_nn.optimizers.Optimizer.scalars`, and
  whether this step flushes tiny state entries.

While it traces, the optimizer's counter ``t`` is replaced by an object that refuses to be read,
so an optimizer whose update reads ``t`` fails loudly instead of baking one step's value in.

Where the backend also has a ``scan`` (``jax.lax.scan``), a whole epoch's full batches run as one
call: the step is the body of a compiled loop, and the host computes every step's numbers up
front. The compiled functions are kept per network (and per batch shape by the compiler), so
later epochs and later ``fit`` calls reuse them. The eager step in :mod:`anyarray_nn.training`
stays the reference; tests compare the two.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .layers import Dense, Pass
from .optimizers import FLUSH_EVERY, flush_tiny_where
from .random import DeviceStep
from .sums import batch_stats
from .writeback import NEW_ARRAYS

if TYPE_CHECKING:
    from .training import Step

Array = Any

__all__ = ["CompiledStep", "compiled_step_for"]

#: Compiled steps by what they bake in (see :func:`_key`), the most recently used last.
_CACHE: OrderedDict[tuple[Any, ...], CompiledStep] = OrderedDict()
#: How many compiled steps are kept.
CACHE_SIZE = 16


class _CounterUnavailable:
    """Stands for ``Optimizer.t`` while a step is traced: any use of it is an error."""

    def _refuse(self, *args: Any) -> Any:
        raise TypeError(
            "The optimizer's update read its step counter t inside a compiled step, where it "
            "would be frozen at one value. Compute t-dependent numbers in "
            "Optimizer.scalars(lr) and read them in apply(..., s, wb), or fit(compile=False)."
        )

    __int__ = __index__ = __float__ = __bool__ = __eq__ = __ne__ = __lt__ = __le__ = _refuse
    __gt__ = __ge__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __pow__ = __rpow__ = __mod__ = __rmod__ = __truediv__ = __rtruediv__ = _refuse
    __floordiv__ = __rfloordiv__ = __hash__ = _refuse  # type: ignore[assignment]


class CompiledStep:
    """The step of one network, optimizer and metric list, compiled.

    ``step_once`` runs one batch; ``run_epoch`` runs many full batches as one compiled loop
    (when the backend has a ``scan``). Both return ``(theta, opt_state, sums)`` where ``sums``
    is ``(losses, [statistics...], weight sums or None)``: stacked over the batches for
    ``run_epoch``, one batch's for ``step_once``.
    """

    def __init__(self, step: Step) -> None:
        info = step.net.backend.info
        self.step = step
        self.compile_seconds = 0.0
        self.compiles = 0
        self._once = info.compile(self._traced_step)  # type: ignore[misc]
        self._scan = info.scan
        self.can_scan = info.scan is not None
        self._epoch = info.compile(self._traced_epoch) if info.scan is not None else None  # type: ignore[misc]

    # -- the traced functions -------------------------------------------------------------------
    def _traced_step(
        self,
        theta: Array,
        state: dict[str, Array],
        data: tuple[Array, Array, Array | None],
        idx: Array,
        step: tuple[Array, Array, dict[str, Array], Array],
    ) -> tuple[Array, dict[str, Array], tuple[Array, list[Array], Array | None]]:
        """One step on traced arrays: the batch's rows ``idx`` of ``data = (X, T, w)``,
        ``step = (step_lo, step_hi, optimizer scalars, flush flag)``."""
        self.compiles += 1  # runs only while tracing
        net, opt, xp = self.step.net, self.step.opt, self.step.net.xp
        X, T, w = data
        lo, hi, scalars, flush = step
        xb, tb = xp.take(X, idx, axis=0), xp.take(T, idx, axis=0)
        wb = None if w is None else xp.take(w, idx, axis=0)
        t = opt.t
        try:
            net.bind(theta)  # the layers see traced views (undone by _timed, outside the trace)
            opt.t = _CounterUnavailable()  # type: ignore[assignment]
            ctx = Pass(training=True, step=DeviceStep(lo, hi))
            loss, a, grad = net.backprop(xb, tb, ctx, wb)
            stats = batch_stats(net, self.step.names, a, tb, wb)
            grad = self.step.clip(grad)
            theta, state = opt.apply(xp, theta, grad, dict(state), scalars, NEW_ARRAYS)
        finally:
            opt.t = t
        state = {k: flush_tiny_where(xp, v, flush) for k, v in state.items()}
        return theta, state, (loss, stats, None if wb is None else xp.sum(wb))

    def _traced_epoch(
        self,
        theta: Array,
        state: dict[str, Array],
        data: tuple[Array, Array, Array | None],
        idx: Array,
        steps: tuple[Array, Array, dict[str, Array], Array],
    ) -> tuple[Array, dict[str, Array], Any]:
        """Every row of ``idx`` (one batch each) in one compiled loop."""

        def body(carry: Any, xs: Any) -> Any:
            theta, state = carry
            rows, lo, hi, scalars, flush = xs
            theta, state, sums = self._traced_step(
                theta, state, data, rows, (lo, hi, scalars, flush)
            )
            return (theta, state), sums

        lo, hi, scalars, flush = steps
        (theta, state), sums = self._scan(body, (theta, state), (idx, lo, hi, scalars, flush))  # type: ignore[misc]
        return theta, state, sums

    # -- host side ------------------------------------------------------------------------------
    def _host_steps(self, first_step: int, count: int) -> tuple[Any, Any, Any, Any]:
        """Advance the optimizer's counter by ``count`` steps; each step's numbers as host
        arrays ``(step_lo, step_hi, {name: values}, flush)``."""
        opt, dtype = self.step.opt, self.step.net.backend.dtype_name
        rows, flush = [], []
        for _ in range(count):
            opt.t += 1
            rows.append(opt.scalars(opt.lr))
            flush.append(opt.t % FLUSH_EVERY == 0)
        steps = [DeviceStep.halves(first_step + i) for i in range(count)]
        lo = np.array([s[0] for s in steps], dtype=np.uint32)
        hi = np.array([s[1] for s in steps], dtype=np.uint32)
        scalars = {k: np.array([r[k] for r in rows], dtype=dtype) for k in rows[0]}
        return lo, hi, scalars, np.array(flush)

    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``; when it traced, the time it took counts as compiling, and the
        network's layers get their views of the real parameter vector back (tracing bound
        traced ones, and anything computed inside a trace is traced). A failed call takes
        back the optimizer steps it counted."""
        net = self.step.net
        steps = 1 if fn is self._once else int(args[3].shape[0])  # args[3]: row indices
        compiles, start, before = self.compiles, time.perf_counter(), net.theta
        try:
            return fn(*args)
        except BaseException:
            self.step.opt.t -= steps
            raise
        finally:
            if self.compiles != compiles:  # traced and compiled in this call
                self.compile_seconds += time.perf_counter() - start
                net._theta = None  # type: ignore[assignment]
                net.bind(before)

    def step_once(
        self, theta: Array, state: dict[str, Array], data: tuple[Any, ...], idx: np.ndarray,
        step_number: int,
    ) -> tuple[Array, dict[str, Array], Any]:  # fmt: skip
        """One batch (the rows ``idx`` of ``data``) at optimizer step ``step_number``."""
        lo, hi, scalars, flush = self._host_steps(step_number, 1)
        scalars = {k: v[0] for k, v in scalars.items()}
        return self._timed(self._once, theta, state, data, idx, (lo[0], hi[0], scalars, flush[0]))

    def run_epoch(
        self, theta: Array, state: dict[str, Array], data: tuple[Any, ...], idx: np.ndarray,
        first_step: int,
    ) -> tuple[Array, dict[str, Array], Any]:  # fmt: skip
        """The batches ``idx[0], idx[1], ...`` (equal sizes) from step ``first_step`` on."""
        steps = self._host_steps(first_step, int(idx.shape[0]))
        return self._timed(self._epoch, theta, state, data, idx, steps)


def _key(step: Step) -> tuple[Any, ...]:
    """What a compiled step bakes in: the network's architecture, penalties and seed (the
    dropout key's host part; left out for a stack of Dense layers), backend, device and dtype;
    the optimizer's type and hyperparameters (not ``lr``: an argument); the metrics and the
    clipping norm. Networks that agree on all of it
    (copies, a fresh network of the same configuration) share one compiled step."""
    opt, net = step.opt, step.net
    config = net.config()
    if all(type(layer) is Dense for layer in net.layers):  # the seed keys dropout masks only
        config.pop("seed", None)
    hyper = {k: v for k, v in opt.config().items() if k != "lr"}  # lr is an argument
    return (
        repr(config), repr(net.backend), net.l1, net.l2, type(opt), repr(hyper),
        tuple(opt.state), tuple(step.names), step.clip_norm,
    )  # fmt: skip


def compiled_step_for(step: Step) -> CompiledStep:
    """The compiled step for ``step``'s settings (made once, then reused by later epochs,
    ``fit`` calls and networks of the same configuration). The compiler itself compiles once
    per shape of the arguments (batch size, epoch length)."""
    key = _key(step)
    compiled = _CACHE.pop(key, None) or CompiledStep(step)
    _CACHE[key] = compiled
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    compiled.step = step  # the same settings: this fit's network and optimizer objects
    return compiled
