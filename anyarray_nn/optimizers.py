"""Optimizers: small state machines over the flat parameter vector.

Each optimizer follows the single-tensor update of its ``torch.optim`` namesake exactly (same
hyperparameter names, defaults and formulas), written with standard Array API ops only, and
applied to all parameters at once: a network keeps its parameters in one flat vector
(:mod:`anyarray_nn.flat`), so an update is a fixed handful of operations whatever the depth.
The life cycle is::

    opt = get("adam", lr=1e-3)
    opt.build(params)                  # state vectors next to the flat parameter vector
    for batch in batches:
        params = opt.step(params, grads)   # in place where arrays can be written
    opt.lr = 0.5 * opt.lr              # schedules change lr between epochs

Rules kept inside an update: scalars are Python floats (a float32 model stays float32), every
array op comes from ``xp``, nothing reads a device value back to the host (branches depend only
on host hyperparameters), and new values are returned, never only written (the write-back rule,
:mod:`anyarray_nn.writeback`), so the same code runs on immutable arrays. ``g`` below is the
gradient, ``t`` counts steps from 1, ``lr`` is read at each step.

**Numbers that change from step to step** (the learning rate, Adam's bias corrections, SGD's
first step, the flush of tiny state entries) are computed by :meth:`Optimizer.scalars_at` from
the learning rate and the step counter, and handed to :meth:`Optimizer.apply`, which never
reads the counter ``t``. Both come in as they are kept (:meth:`Optimizer.advance`):

- **eagerly**, the counter :attr:`Optimizer.count` is a Python int and the learning rate a
  Python float, so these numbers are host floats that every library takes as kernel
  arguments (no extra array operation, no transfer; torch's default, non-capturable Adam);
- **in a compiled or captured step** (:mod:`anyarray_nn.compiled`), the counter is a 0-d
  integer array on the device and the learning rate a 0-d array that assigning ``opt.lr``
  writes in place (:meth:`Optimizer.lr_on`), and the same arithmetic runs inside the step on
  the device: nothing that changes between steps comes from the host (torch's
  ``capturable=True``, optax's ``count``), so one compiled function, or one captured graph,
  serves every step.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar

import array_api_compat

from . import kernels, writeback
from . import registry as _registry
from .backend import info_for_array, to_numpy
from .registry import Component, Registry
from .validation import Interval, check_bool
from .writeback import WriteBack

Array = Any

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSProp",
    "SklearnAdam",
    "from_config",
    "get",
    "registry",
]

#: Every optimizer, by name (a subclass that sets ``name`` is added automatically).
registry: Registry = _registry.optimizers


#: Every this many steps, state entries below ``FLUSH_BELOW`` times the smallest normal number
#: are set to zero (see :meth:`Optimizer._flush_tiny_state`).
FLUSH_EVERY = 64
FLUSH_BELOW = 2.0**26


NON_NEGATIVE = Interval("real", 0.0)
DECAY_RATE = Interval("real", 0.0, 1.0, closed="left")  # momentum and moment decay: [0, 1)
FRACTION = Interval("real", 0.0, 1.0)
NON_NEGATIVE_INT = Interval("int", 0)


class Optimizer(Component):
    """Base class: holds ``lr``, the step counter ``t`` and the state arrays.

    All parameters of a network live in one flat buffer (see :mod:`anyarray_nn.flat`), so an
    optimizer sees one parameter vector, one gradient vector and one vector per state name
    (``exp_avg``, ...), and an update is a handful of whole-buffer operations whatever the
    network's depth. Subclasses list their state names in ``_state_names()`` and implement
    :meth:`update`, which follows the write-back rule (:mod:`anyarray_nn.writeback`): it
    returns the new parameters and state, updated in place where the arrays can be written.
    Setting ``name`` registers a subclass; its constructor arguments, stored under their own
    names, are its :meth:`config`.

    The state round trip is :meth:`state_dict` / :meth:`load_state_dict` (torch.optim's):
    moving a network, copying it, saving and loading it and the training loop's snapshots all
    use it (:meth:`clone` is a copy through it).
    """

    registry: ClassVar[Registry] = registry

    def __init__(self, lr: float) -> None:
        self._lr_device: Array | None = None
        self.lr = lr
        #: Steps taken: a Python int, or a 0-d integer device array while a compiled step
        #: trains (see the module docstring); :attr:`t` reads it either way.
        self.count: Any = 0
        #: The state arrays by name, each shaped like the flat parameter vector.
        self.state: dict[str, Array] = {}
        self._size: int | None = None  # length of the parameter vector built for

    # -- lr: public and mutable, validated on every assignment -----------------------------------
    @property
    def lr(self) -> float:
        """Learning rate used by the next :meth:`step` (a Python float >= 0). Assigning it also
        writes the device copy a compiled step reads (:meth:`lr_on`), in place where arrays
        can be written."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = NON_NEGATIVE.check("lr", value)
        if getattr(self, "_lr_device", None) is not None:
            self._lr_device = _write_scalar(self._lr_device, self._lr)

    def lr_on(self, backend: Any) -> Array:
        """The learning rate as a 0-d array on ``backend``'s device and dtype: made once, then
        kept and written by every assignment to :attr:`lr` (so a compiled step, or a captured
        CUDA graph, reads each epoch's rate from the same buffer)."""
        current = getattr(self, "_lr_device", None)
        if current is None or current.dtype != backend.dtype or not backend.owns(current):
            current = backend.asarray(self._lr)
        self._lr_device = current
        return current

    # -- the step counter t: kept in count, on the host or on the device ------------------------
    @property
    def t(self) -> int:
        """Steps taken, as a Python int (a read from the device when :attr:`count` is there:
        public API only, never inside a step)."""
        count = self.count
        if not hasattr(count, "shape"):
            return int(count)
        return int(to_numpy(count))

    @t.setter
    def t(self, value: int) -> None:
        self.count = NON_NEGATIVE_INT.check("t", value)

    def count_on(self, backend: Any) -> Array:
        """:attr:`count` as a 0-d integer array on ``backend``'s device (moved there once;
        a compiled step then advances it on the device)."""
        count = self.count
        if not hasattr(count, "shape") or not backend.owns(count):
            count = backend.asarray(self.t, dtype=backend.index_dtype, copy=True)
        self.count = count
        return count

    # -- what subclasses provide ------------------------------------------------------------------
    def _state_names(self) -> tuple[str, ...]:
        return ()

    def _init_state(self, xp: Any, params: Array, name: str) -> Array:
        return xp.zeros_like(params)

    def update(
        self, xp: Any, p: Array, g: Array, state: dict[str, Array], lr: float, wb: WriteBack
    ) -> tuple[Array, dict[str, Array]]:
        """One step: ``(new p, new state)`` from ``p``, the gradient ``g`` and ``state``.

        ``self.t`` already counts this step. Use ``wb`` for updates that may be in place
        (``m = wb.mul(m, beta)``), or plain arithmetic (``m = beta * m``), which is always
        correct and only allocates. (The built-in optimizers implement :meth:`scalars_at` and
        :meth:`apply` instead; an update that reads ``self.t`` runs eagerly only.)"""
        if type(self).apply is Optimizer.apply:
            raise NotImplementedError(f"{type(self).__name__} implements neither update nor apply.")
        return self.apply(xp, p, g, state, self.scalars(lr), wb)

    def scalars_at(self, xp: Any, lr: Any, t: Any) -> dict[str, Any]:
        """The numbers of a step that change from step to step, from the learning rate ``lr``
        and the step count ``t`` (this step included): Python numbers eagerly, 0-d device
        arrays (``t`` in the parameters' floating dtype) in a compiled step. Plain arithmetic
        serves both; :func:`at_most_one` is a ``min(x, 1)`` for both."""
        return {"lr": lr}

    def scalars(self, lr: float) -> dict[str, float]:
        """This step's :meth:`scalars_at` as host floats, at ``t = self.t``. (Before
        :meth:`scalars_at` existed a subclass overrode this one to read ``self.t``; such an
        optimizer still runs, eagerly: see :meth:`reads_t_on_host`.)"""
        return self.scalars_at(None, lr, self.t)

    def apply(
        self, xp: Any, p: Array, g: Array, state: dict[str, Array], s: dict[str, Any], wb: WriteBack
    ) -> tuple[Array, dict[str, Array]]:
        """:meth:`update` with this step's numbers ``s`` (from :meth:`scalars_at`: host floats,
        or 0-d arrays in a compiled step) and no read of ``t``. By default, ``update`` with
        ``s["lr"]``."""
        return self.update(xp, p, g, state, s["lr"], wb)

    def reads_t_on_host(self) -> bool:
        """True for an optimizer written against the older API, whose :meth:`scalars` reads
        ``self.t`` on the host: it runs eagerly (``fit(compile=True)`` refuses it)."""
        return type(self).scalars is not Optimizer.scalars

    def advance(
        self, xp: Any, p: Array, g: Array, state: dict[str, Array], count: Any, lr: Any,
        wb: WriteBack, kernel: Any = None, owed: Any = None,
    ) -> tuple[Array, dict[str, Array], Any]:  # fmt: skip
        """One update as a function of everything that changes between steps: the
        parameters, the gradient, the state, the counter ``count`` and the learning rate
        ``lr`` (host numbers eagerly, 0-d device arrays in a compiled step). Returns
        ``(p, state, count)``, the counter advanced by one. The one update of
        :meth:`step` and of the training step, eager or compiled. ``kernel`` is a
        one-kernel form of :meth:`apply` (:mod:`anyarray_nn.kernels`), chosen once per ``fit``.

        ``owed`` (a compiled loop's form, see :meth:`anyarray_nn.compiled.CompiledStep`): a
        0-d boolean device array, true where the previous step left its flush of the state
        (:func:`flush_tiny_state`) to this one. The incoming state is flushed there first and
        this step's own flush is left to the caller, who owes it (the next step, or
        ``flush_tiny_state`` after the loop): the same numbers, but the new state is then the
        loop's output as the update computes it, so a compiler writes it once, in place,
        instead of recomputing it in a second pass (and copying the old state to keep it)."""
        if owed is not None:
            state = {k: wb.set(a, flush_tiny_where(xp, a, owed)) for k, a in state.items()}
        on_device = hasattr(count, "shape")
        count = wb.add(count, 1) if on_device else count + 1
        if not on_device:
            self.count = count  # code that reads self.t sees this step counted
        if kernel is not None:
            p = kernel(self, p, g, state, count, lr)
        elif self.reads_t_on_host():
            p, state = self.apply(xp, p, g, state, self.scalars(lr), wb)
        else:
            t = xp.astype(count, p.dtype) if on_device else count
            p, state = self.apply(xp, p, g, state, self.scalars_at(xp, lr, t), wb)
        if owed is not None:
            return p, state, count
        return p, flush_tiny_state(xp, state, count, wb), count

    # -- life cycle -------------------------------------------------------------------------------
    def build(self, params: Array) -> None:
        """Allocate state next to the flat parameter vector ``params``; reset ``t`` to 0."""
        xp = array_api_compat.array_namespace(params)
        self.t = 0
        self._size = int(params.shape[0])
        self.state = {name: self._init_state(xp, params, name) for name in self._state_names()}

    def step(self, params: Array, grads: Array, wb: WriteBack | None = None) -> Array:
        """Update from the flat gradient ``grads``; returns the new parameter vector (``params``
        itself, updated in place, where the arrays can be written). ``t`` is incremented first.

        Without a prior :meth:`build` (or :meth:`load_state_dict`), the first call allocates
        fresh state and keeps ``t``."""
        if self._size is None:
            t = self.t
            self.build(params)
            self.t = t
        shape = (self._size,)
        if tuple(params.shape) != shape or tuple(grads.shape) != shape:
            raise ValueError(
                f"{type(self).__name__} was built for {self._size} parameters; step() got "
                f"parameters of shape {tuple(params.shape)} and gradients of shape "
                f"{tuple(grads.shape)}."
            )
        if grads.dtype != params.dtype:
            raise ValueError(
                f"Gradients ({grads.dtype}) must have their parameters' dtype ({params.dtype})."
            )
        xp = array_api_compat.array_namespace(params)
        wb = writeback.for_array(params) if wb is None else wb
        kernel = kernels.kernel_for(self, info_for_array(params), params) if wb.mutable else None
        params, state, count = self.advance(
            xp, params, grads, dict(self.state), self.count, self.lr, wb, kernel
        )
        self.state, self.count = state, count
        return params

    # -- the state round trip (torch.optim style) -------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"t": steps taken, "state": {name: flat array}}``.

        The arrays are the live ones (nothing is copied): pass the dict to
        :meth:`load_state_dict`, which copies, or to a writer that reads them once."""
        return {"t": self.t, "state": dict(self.state)}

    def load_state_dict(self, state: dict[str, Any], backend: Any = None) -> None:
        """Take ``t`` and copies of the state arrays from ``state`` (see :meth:`state_dict`).

        ``backend`` (a :class:`~anyarray_nn.backend.Backend`) first moves each array onto its
        device and dtype (host arrays read from a file, another model's state). An empty state
        of an optimizer that keeps some leaves the allocation to the first :meth:`step`.

        Without ``backend``, arrays of another dtype or array library than the state this
        optimizer holds (e.g. float32 moments for a float64 optimizer) are **refused** with a
        ``ValueError``, never cast silently: pass ``backend=`` (``net.backend``) to convert
        them. The optimizer is then left as it was."""
        arrays = dict(state["state"])
        t = NON_NEGATIVE_INT.check("t", state["t"])
        names = self._state_names()
        if not arrays and names:
            self.count, self.state, self._size = t, {}, None
            return
        if set(arrays) != set(names):
            raise ValueError(f"{self!r} keeps state {sorted(names)}, got {sorted(arrays)}.")
        if backend is not None:
            arrays = {k: backend.asarray(a) for k, a in arrays.items()}
        sizes = {k: tuple(a.shape) for k, a in arrays.items()}
        first = next(iter(arrays.values()), None)
        for key, a in arrays.items():
            if a.ndim != 1 or sizes[key] != tuple(first.shape) or a.dtype != first.dtype:
                raise ValueError(
                    f"State {key!r} has shape {sizes[key]} and dtype {a.dtype}: every state "
                    "array must be one flat vector of the parameters' length and dtype."
                )
        if first is not None and self._size is not None and first.shape[0] != self._size:
            raise ValueError(
                f"The state is for {first.shape[0]} parameters; this optimizer was built "
                f"for {self._size}."
            )
        if backend is None:  # (with a backend, the arrays were just converted to it)
            _check_same_kind(self.state, first)
        xp = None if first is None else array_api_compat.array_namespace(first)
        # Copies, so two optimizers never update the same buffer in place.
        self.state = {k: xp.asarray(a, copy=True) for k, a in arrays.items()}
        self.count = t
        if first is not None:
            self._size = int(first.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lr_device"] = None  # a device buffer of lr, made again where it is needed
        state["count"] = self.t  # the counter travels as a number
        return state

    def clone(self, backend: Any = None) -> Optimizer:
        """An independent copy (same hyperparameters, step count and copied state, on
        ``backend`` if given), made through :meth:`state_dict` / :meth:`load_state_dict`.
        Works for any subclass, registered or not. A counter on the device is copied there
        (no read to the host) unless the copy goes to another backend."""
        twin = copy.copy(self)
        for key, value in self.__dict__.items():
            if key not in _OWN and not isinstance(value, _IMMUTABLE):
                setattr(twin, key, copy.deepcopy(value))  # a subclass's own mutable attributes
        twin.state, twin._lr_device = {}, None
        twin.load_state_dict({"t": 0, "state": dict(self.state)}, backend)
        count = self.count
        if hasattr(count, "shape") and (backend is None or backend.owns(count)):
            twin.count = array_api_compat.array_namespace(count).asarray(count, copy=True)
        else:
            twin.count = self.t
        return twin


def _check_same_kind(held: dict[str, Array], new: Array | None) -> None:
    """Refuse state arrays of another dtype or library than the state ``held`` (see
    :meth:`Optimizer.load_state_dict`)."""
    mine = next(iter(held.values()), None)
    if mine is None or new is None:
        return
    same_library = array_api_compat.array_namespace(mine) is array_api_compat.array_namespace(new)
    if same_library and mine.dtype == new.dtype:
        return
    raise ValueError(
        f"The state arrays are {new.dtype} ({type(new).__module__.split('.')[0]}) but this "
        f"optimizer's state is {mine.dtype} ({type(mine).__module__.split('.')[0]}): they are "
        "not cast silently. Pass backend=net.backend to load_state_dict to convert them."
    )


#: What :meth:`Optimizer.clone` copies itself instead of deep-copying.
_OWN = frozenset({"state", "count", "_lr_device"})


def _write_scalar(a: Array, value: float) -> Array:
    """The 0-d array ``a`` holding ``value``: written in place where arrays can be written
    (the buffer a compiled step or captured graph reads stays the same), else a new one."""
    if writeback.for_array(a).mutable:
        a[...] = value
        return a
    xp = array_api_compat.array_namespace(a)
    return xp.asarray(value, dtype=a.dtype, device=array_api_compat.device(a))


def one_minus_power(xp: Any, base: float, t: Any) -> Any:
    """``1 - base**t`` (Adam's bias corrections) for a host number ``t``, or a 0-d device
    array: there as ``-expm1(t * log(base))``, with the logarithm taken on the host in float64,
    so a float32 step keeps float32's precision where ``1 - 0.999**t`` would cancel digits
    (a relative error near 1e-4 at small ``t``)."""
    if not hasattr(t, "shape"):
        return 1.0 - base**t
    if base == 0.0:
        return 1.0 + 0.0 * t
    return -xp.expm1(t * math.log(base))


def at_most_one(xp: Any, x: Any) -> Any:
    """``min(x, 1)`` for a host number or a 0-d device array (for :meth:`Optimizer.scalars_at`)."""
    return min(x, 1) if not hasattr(x, "shape") else xp.clip(x, max=1.0)


def flush_tiny_state(
    xp: Any, state: dict[str, Array], count: Any, wb: WriteBack
) -> dict[str, Array]:
    """The state with tiny entries flushed every ``FLUSH_EVERY`` steps (see
    :func:`_flush_tiny`): a host branch on a host counter; on a device counter, a masked
    product decided on the device (:func:`flush_tiny_where`), which a compiler fuses into the
    update."""
    if not state:
        return state
    if not hasattr(count, "shape"):
        if count % FLUSH_EVERY:
            return state
        return {k: _flush_tiny(xp, a, wb) for k, a in state.items()}
    on = (count % FLUSH_EVERY) == 0
    return {k: wb.set(a, flush_tiny_where(xp, a, on)) for k, a in state.items()}


def flush_tiny_where(xp: Any, a: Array, on: Array) -> Array:
    """:func:`_flush_tiny` where the 0-d boolean ``on`` is true, ``a`` unchanged elsewhere (the
    compiled step's form: ``on`` is ``t % FLUSH_EVERY == 0``, computed on the device)."""
    floor = FLUSH_BELOW * float(xp.finfo(a.dtype).smallest_normal)
    return a * xp.astype(xp.logical_or(xp.abs(a) >= floor, xp.logical_not(on)), a.dtype)


def _flush_tiny(xp: Any, a: Array, wb: WriteBack) -> Array:
    """``a`` with entries ``|x| < FLUSH_BELOW * smallest_normal`` set to zero.

    Why: running averages of units whose gradient is zero (dead ReLUs, saturated sigmoids)
    decay geometrically into the *subnormal* range, where x86 CPUs compute 10-100x slower; a
    few thousand such entries made an epoch of a 784-128-64-10 net 6x slower in our
    measurements. Entries that small move a parameter by less than ~1e-20 of its value, so
    zeroing them is invisible in float32 and float64, and every ``FLUSH_EVERY`` steps is often
    enough that a decaying entry (by 0.9 per step) never reaches the subnormal range.
    """
    floor = FLUSH_BELOW * float(xp.finfo(a.dtype).smallest_normal)
    return wb.mul(a, xp.astype(xp.abs(a) >= floor, a.dtype))


_IMMUTABLE = (int, float, bool, str, bytes, tuple, frozenset, type(None))


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Nesterov momentum and L2 decay.

    Update, with ``wd = weight_decay``, ``mu = momentum``, ``tau = dampening``::

        g <- g + wd * p
        b <- g                          if t == 1   (torch starts the buffer at the first gradient)
        b <- mu * b + (1 - tau) * g     otherwise
        d <- g + mu * b  if nesterov else  b        (d = g when mu == 0)
        p <- p - lr * d
    """

    name = "sgd"

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self.momentum = DECAY_RATE.check("momentum", momentum)
        self.dampening = FRACTION.check("dampening", dampening)
        self.nesterov = check_bool("nesterov", nesterov)
        self.weight_decay = NON_NEGATIVE.check("weight_decay", weight_decay)
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(
                "nesterov=True requires momentum > 0 and dampening == 0 (as in torch.optim.SGD); "
                f"got momentum={momentum!r}, dampening={dampening!r}."
            )

    def _state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0.0 else ()

    def scalars_at(self, xp: Any, lr: Any, t: Any) -> dict[str, Any]:
        # The first step starts the buffer at g (torch's rule): b <- mu * 0 + 1 * g, as the
        # buffer starts at zeros; later steps b <- mu * b + (1 - dampening) * g.
        if self.dampening == 0.0:
            return {"lr": lr, "keep": self.momentum, "new": 1.0}
        later = at_most_one(xp, t - 1.0)  # 0 at the first step, 1 after
        return {"lr": lr, "keep": self.momentum, "new": 1.0 - self.dampening * later}

    def apply(
        self, xp: Any, p: Array, g: Array, state: dict[str, Array], s: dict[str, Any], wb: WriteBack
    ) -> tuple[Array, dict[str, Array]]:
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * p
        if self.momentum != 0.0:
            buf = wb.add(wb.mul(state["momentum_buffer"], s["keep"]), s["new"] * g)
            state["momentum_buffer"] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        return wb.sub(p, s["lr"] * g), state


class AdaGrad(Optimizer):
    r"""AdaGrad: per-coordinate steps shrink with the accumulated squared gradient.

    Update, with ``s`` starting at ``initial_accumulator_value``::

        g  <- g + weight_decay * p
        s  <- s + g * g
        p  <- p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
    """

    name = "adagrad"

    def __init__(
        self,
        lr: float = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(lr)
        self.lr_decay = NON_NEGATIVE.check("lr_decay", lr_decay)
        self.weight_decay = NON_NEGATIVE.check("weight_decay", weight_decay)
        self.initial_accumulator_value = NON_NEGATIVE.check(
            "initial_accumulator_value", initial_accumulator_value
        )
        self.eps = NON_NEGATIVE.check("eps", eps)

    def _state_names(self) -> tuple[str, ...]:
        return ("sum",)

    def _init_state(self, xp: Any, params: Array, name: str) -> Array:
        return xp.full_like(params, self.initial_accumulator_value)

    def scalars_at(self, xp: Any, lr: Any, t: Any) -> dict[str, Any]:
        return {"lr": lr / (1.0 + (t - 1.0) * self.lr_decay)}

    def apply(
        self, xp: Any, p: Array, g: Array, state: dict[str, Array], s: dict[str, Any], wb: WriteBack
    ) -> tuple[Array, dict[str, Array]]:
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * p
        acc = wb.add(state["sum"], g * g)
        return wb.sub(p, s["lr"] * (g / (xp.sqrt(acc) + self.eps))), {"sum": acc}


class RMSProp(Optimizer):
    r"""RMSProp, optionally centered and with momentum.

    Update, with ``v``, ``a``, ``b`` starting at zero::

        g   <- g + weight_decay * p
        v   <- alpha * v + (1 - alpha) * g * g
        a   <- a + (1 - alpha) * (g - a)                    (centered only)
        den <- sqrt(v - a * a) + eps  if centered  else  sqrt(v) + eps
        b   <- momentum * b + g / den;   p <- p - lr * b    (momentum > 0)
        p   <- p - lr * g / den                             (momentum == 0)
    """

    name = "rmsprop"

    def __init__(
        self,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(lr)
        self.alpha = DECAY_RATE.check("alpha", alpha)
        self.eps = NON_NEGATIVE.check("eps", eps)
        self.weight_decay = NON_NEGATIVE.check("weight_decay", weight_decay)
        self.momentum = DECAY_RATE.check("momentum", momentum)
        self.centered = check_bool("centered", centered)

    def _state_names(self) -> tuple[str, ...]:
        names = ("square_avg",)
        if self.centered:
            names += ("grad_avg",)
        if self.momentum > 0.0:
            names += ("momentum_buffer",)
        return names

    def apply(
        self, xp: Any, p: Array, g: Array, state: dict[str, Array], s: dict[str, Any], wb: WriteBack
    ) -> tuple[Array, dict[str, Array]]:
        lr = s["lr"]
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * p
        v = wb.add(wb.mul(state["square_avg"], self.alpha), (1.0 - self.alpha) * (g * g))
        state["square_avg"] = v
        if self.centered:
            a = wb.add(state["grad_avg"], (1.0 - self.alpha) * (g - state["grad_avg"]))
            state["grad_avg"] = a
            den = xp.sqrt(v - a * a) + self.eps
        else:
            den = xp.sqrt(v) + self.eps
        if self.momentum > 0.0:
            b = wb.add(wb.mul(state["momentum_buffer"], self.momentum), g / den)
            state["momentum_buffer"] = b
            return wb.sub(p, lr * b), state
        return wb.sub(p, lr * (g / den)), state


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), optionally AMSGrad, with coupled L2 ``weight_decay``.

    Update, with ``m``, ``v``, ``vmax`` starting at zero and ``t`` counting from 1::

        g    <- g + weight_decay * p
        m    <- beta1 * m + (1 - beta1) * g
        v    <- beta2 * v + (1 - beta2) * g * g
        vmax <- max(vmax, v);  vhat = vmax  if amsgrad  else  v
        p    <- p - lr / (1 - beta1**t) * m / (sqrt(vhat) / sqrt(1 - beta2**t) + eps)

    ``betas=(beta1, beta2)`` is accepted too, as in ``torch.optim.Adam``.
    """

    name = "adam"
    _decoupled: ClassVar[bool] = False
    #: The kind of one-kernel form of this update a library may have (anyarray_nn.kernels).
    kernel_kind: ClassVar[str | None] = "adam"

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        betas: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(lr)
        if betas is not None:
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.")
            if (beta1, beta2) not in ((0.9, 0.999), tuple(betas)):
                raise ValueError("Pass either betas=(beta1, beta2) or beta1/beta2, not both.")
            beta1, beta2 = betas
        self.beta1 = DECAY_RATE.check("beta1", beta1)
        self.beta2 = DECAY_RATE.check("beta2", beta2)
        self.eps = NON_NEGATIVE.check("eps", eps)
        self.weight_decay = NON_NEGATIVE.check("weight_decay", weight_decay)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def _state_names(self) -> tuple[str, ...]:
        return (
            ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
            if self.amsgrad
            else ("exp_avg", "exp_avg_sq")
        )

    def scalars_at(self, xp: Any, lr: Any, t: Any) -> dict[str, Any]:
        step_size, v_scale = self._bias_corrections(xp, lr, t)
        # p -= step_size * m / (sqrt(v) * v_scale + eps), with v_scale divided out
        return {"lr": lr, "eps": self.eps / v_scale, "step": step_size / v_scale}

    def apply(
        self, xp: Any, p: Array, g: Array, state: dict[str, Array], s: dict[str, Any], wb: WriteBack
    ) -> tuple[Array, dict[str, Array]]:
        if self.weight_decay != 0.0:
            if self._decoupled:
                p = wb.mul(p, 1.0 - s["lr"] * self.weight_decay)
            else:
                g = g + self.weight_decay * p
        m = wb.add(wb.mul(state["exp_avg"], self.beta1), (1.0 - self.beta1) * g)
        v = wb.add(wb.mul(state["exp_avg_sq"], self.beta2), (1.0 - self.beta2) * (g * g))
        state["exp_avg"], state["exp_avg_sq"] = m, v
        if self.amsgrad:
            v = wb.set(state["max_exp_avg_sq"], xp.maximum(state["max_exp_avg_sq"], v))
            state["max_exp_avg_sq"] = v
        # p -= step_size * m / (sqrt(v) * v_scale + eps), with v_scale divided out: five
        # whole-buffer operations, and the same number up to rounding (see scalars)
        den = wb.add(xp.sqrt(v), s["eps"])
        update = wb.mul(m / den, s["step"])
        return wb.sub(p, update), state

    def _bias_corrections(self, xp: Any, lr: Any, t: Any) -> tuple[Any, Any]:
        """``(step_size, v_scale)`` of ``p -= step_size * m / (sqrt(v) * v_scale + eps)`` at
        step ``t``: torch's placement, ``eps`` added after the second moment's bias
        correction."""
        first, second = one_minus_power(xp, self.beta1, t), one_minus_power(xp, self.beta2, t)
        return lr / first, 1.0 / second**0.5


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    The parameter shrinks before the Adam step (which then sees no L2 term)::

        p <- p * (1 - lr * weight_decay)
        p <- Adam step of p with g   (weight_decay not added to g)
    """

    name = "adamw"
    _decoupled = True
    kernel_kind = "adamw"

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
        betas: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay, amsgrad, betas)


class SklearnAdam(Adam):
    r"""Adam as scikit-learn's MLP writes it (``sklearn.neural_network``'s ``AdamOptimizer``):
    ``eps`` is added to ``sqrt(v)`` before the bias correction rather than after::

        p <- p - lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)

    which is :class:`Adam` with ``eps / sqrt(1 - beta2**t)`` in place of ``eps``. The two differ
    where gradients are as small as ``eps``; the scikit-learn estimators use this one for
    ``solver="adam"`` so that they take scikit-learn's steps.
    """

    name = "sklearn_adam"
    kernel_kind = None  # eps where scikit-learn puts it: no library kernel does that

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        betas: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, 0.0, False, betas)

    def _bias_corrections(self, xp: Any, lr: Any, t: Any) -> tuple[Any, Any]:
        # scikit-learn's placement: eps added to sqrt(v) before the bias correction
        first, second = one_minus_power(xp, self.beta1, t), one_minus_power(xp, self.beta2, t)
        step_size = lr * second**0.5 / first
        return step_size, 1.0


def get(
    spec: str | dict[str, Any] | Optimizer | type[Optimizer] | None = None, **kwargs: Any
) -> Optimizer:
    """An optimizer from a name (case, ``_`` and ``-`` ignored), a config dict, a class, or an
    instance (returned as is).

    ``None`` gives :class:`SGD`. ``kwargs`` are hyperparameters, e.g.
    ``get("adam", lr=1e-3, amsgrad=True)``.
    """
    return registry.get(spec, **kwargs)


def from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from :meth:`Optimizer.config` output."""
    return registry.from_config(config)
