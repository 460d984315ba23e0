"""Optimizers: small state machines that update parameters in place.

Each optimizer follows the single-tensor update of its ``torch.optim`` namesake exactly (same
hyperparameter names, defaults and formulas), written with standard Array API ops only. The life
cycle is::

    opt = get("adam", lr=1e-3)
    opt.build(xp, params)          # allocate state next to the parameters
    for batch in batches:
        opt.step(params, grads)    # p -= ... in place; state updated in place
    opt.lr = 0.5 * opt.lr          # schedules change lr between epochs

Rules kept inside :meth:`Optimizer.step`: scalars are Python floats (a float32 model stays
float32), every array op comes from the ``xp`` given to :meth:`Optimizer.build`, and nothing reads a
device value back to the host (branches depend only on host hyperparameters and the host step
counter ``t``). ``g`` below is the gradient, ``t`` counts steps from 1, ``lr`` is read at each step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import array_api_compat

from . import registry as _registry
from .registry import Component, Registry
from .validation import Interval, check_bool

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
    """Base class: holds ``lr``, the step counter ``t`` and per-parameter state arrays.

    Subclasses list their state names in ``_state_names()`` and implement ``_update`` for one
    parameter. The state is allocated by :meth:`build` with ``xp.zeros_like(p)`` (same shape,
    dtype and device as the parameter) and updated in place. Setting ``name`` registers a
    subclass; its constructor arguments, stored under their own names, are its :meth:`config`.

    The state round trip lives here, in the style of ``torch.optim``: :meth:`state_dict`,
    :meth:`load_state_dict` (optionally onto another backend) and :meth:`clone`. Moving a
    network, copying it, saving and loading it, and the training loop's snapshots all use them.
    """

    registry: ClassVar[Registry] = registry

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.t: int = 0
        self._xp: Any = None
        self._meta: list[tuple[tuple[int, ...], Any, Any]] = []  # (shape, dtype, device) per param
        self._state: dict[str, list[Array]] = {}

    # -- lr: public and mutable, validated on every assignment -----------------------------------
    @property
    def lr(self) -> float:
        """Learning rate used by the next :meth:`step` (a Python float >= 0)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = NON_NEGATIVE.check("lr", value)

    # -- what subclasses provide ------------------------------------------------------------------
    def _state_names(self) -> tuple[str, ...]:
        return ()

    def _init_state(self, xp: Any, p: Array, name: str) -> Array:
        return xp.zeros_like(p)

    def _update(self, xp: Any, i: int, p: Array, g: Array, lr: float) -> None:
        raise NotImplementedError

    # -- pickling (scikit-learn persistence): modules are not picklable, arrays are ----------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_xp"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        arrays = [a for per_param in self._state.values() for a in per_param]
        if arrays:
            self._xp = array_api_compat.array_namespace(*arrays)

    # -- life cycle -------------------------------------------------------------------------------
    def build(self, xp: Any, params: Sequence[Array]) -> None:
        """Allocate state for ``params`` on their device, in their dtype; reset ``t`` to 0."""
        self.t = 0
        self._allocate(xp, params)

    def _allocate(self, xp: Any, params: Sequence[Array]) -> None:
        params = list(params)
        self._xp = xp
        self._meta = [(tuple(p.shape), p.dtype, array_api_compat.device(p)) for p in params]
        self._state = {
            name: [self._init_state(xp, p, name) for p in params] for name in self._state_names()
        }

    def step(self, params: Sequence[Array], grads: Sequence[Array]) -> None:
        """Update every ``params[i]`` in place from ``grads[i]``; ``t`` is incremented first.

        Without a prior :meth:`build` (or :meth:`load_state_arrays`), the first call allocates
        fresh state from ``params`` themselves and keeps ``t``.
        """
        if self._xp is None:
            self._allocate(array_api_compat.array_namespace(*params), params)
        if not len(params) == len(grads) == len(self._meta):
            raise ValueError(
                f"{type(self).__name__} was built for {len(self._meta)} parameters, but step() got "
                f"{len(params)} parameters and {len(grads)} gradients."
            )
        for i, (p, g, (shape, _, _)) in enumerate(zip(params, grads, self._meta, strict=True)):
            if tuple(p.shape) != shape or tuple(g.shape) != shape or g.dtype != p.dtype:
                raise ValueError(
                    f"Parameter {i}: built for shape {shape}; got a parameter of shape "
                    f"{tuple(p.shape)} ({p.dtype}) and a gradient of shape {tuple(g.shape)} "
                    f"({g.dtype}). Gradients must match their parameter's shape and dtype."
                )
        self.t += 1
        lr = self.lr
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self._update(self._xp, i, p, g, lr)
        if self.t % FLUSH_EVERY == 0 and self._state:
            self._flush_tiny_state()

    def _flush_tiny_state(self) -> None:
        """Set state entries with ``|x| < FLUSH_BELOW * smallest_normal`` to zero.

        Why: running averages of units whose gradient is zero (dead ReLUs, saturated sigmoids)
        decay geometrically into the *subnormal* range, where x86 CPUs compute 10-100x slower;
        a few thousand such entries made an epoch of a 784-128-64-10 net 6x slower in our
        measurements. Entries that small move a parameter by less than ~1e-20 of its value, so
        zeroing them is invisible in float32 and float64, and every ``FLUSH_EVERY`` steps is
        often enough that a decaying entry (by 0.9 per step) never reaches the subnormal range.
        """
        xp = self._xp
        for arrays in self._state.values():
            for a in arrays:
                floor = FLUSH_BELOW * float(xp.finfo(a.dtype).smallest_normal)
                a *= xp.astype(xp.abs(a) >= floor, a.dtype)

    def state_arrays(self) -> dict[str, list[Array]]:
        """The live state arrays by name, one list entry per parameter (``{}`` if stateless)."""
        return {name: list(arrays) for name, arrays in self._state.items()}

    def load_state_arrays(self, arrays: dict[str, Sequence[Array]], t: int) -> None:
        """Replace the state with copies of ``arrays`` and set the step count ``t``.

        ``arrays`` has exactly the keys of :meth:`state_arrays`, one array per parameter, all in
        one namespace on the parameters' device. Namespace, device and dtype are taken from the
        arrays, so a model moved to another backend or dtype needs no new :meth:`build`; shapes
        must match the parameters given to :meth:`build`, if it was called.
        """
        names = self._state_names()
        if set(arrays) != set(names):
            raise ValueError(f"{self!r} keeps state {sorted(names)}, got {sorted(arrays)}.")
        t = NON_NEGATIVE_INT.check("t", t)
        if not names:
            self.t = t
            return
        given = {name: list(arrays[name]) for name in names}
        count = len(self._meta) if self._xp is not None else len(given[names[0]])
        for name in names:
            if len(given[name]) != count:
                raise ValueError(
                    f"State {name!r} has {len(given[name])} arrays; expected one per parameter "
                    f"({count})."
                )
        meta = []
        for i, first in enumerate(given[names[0]]):
            shape, dtype = tuple(first.shape), first.dtype
            if self._xp is not None and shape != self._meta[i][0]:
                raise ValueError(
                    f"State {names[0]!r}[{i}] has shape {shape}; the parameter has shape "
                    f"{self._meta[i][0]}."
                )
            for name in names[1:]:
                a = given[name][i]
                if tuple(a.shape) != shape or a.dtype != dtype:
                    raise ValueError(
                        f"State {name!r}[{i}] has shape {tuple(a.shape)} and dtype {a.dtype}; "
                        f"expected {shape} and {dtype} like {names[0]!r}[{i}]."
                    )
            meta.append((shape, dtype, array_api_compat.device(first)))
        everything = [a for arrs in given.values() for a in arrs]
        xp = array_api_compat.array_namespace(*everything) if everything else self._xp
        # Copies, so two optimizers never update the same buffer in place.
        self._state = {
            name: [
                xp.asarray(a, dtype=dtype, device=device, copy=True)
                for a, (_, dtype, device) in zip(given[name], meta, strict=True)
            ]
            for name in names
        }
        self._xp, self._meta, self.t = xp, meta, int(t)

    # -- the state round trip (torch.optim style) -------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"t": steps taken, "state": {name: [array per parameter]}}``.

        The arrays are the live ones, on the parameters' device (nothing is copied): pass the
        dict to :meth:`load_state_dict`, which copies, or to a writer that reads them once.
        """
        return {"t": self.t, "state": self.state_arrays()}

    def load_state_dict(self, state: dict[str, Any], backend: Any = None) -> None:
        """Take ``t`` and copies of the state arrays from ``state`` (see :meth:`state_dict`).

        ``backend`` (a :class:`~anyarray_nn.backend.Backend`) first moves each array onto its
        device and dtype, e.g. host arrays read from a file or another model's state. An empty
        state leaves the allocation to the first :meth:`step`.
        """
        arrays = state["state"]
        if backend is not None:
            arrays = {k: [backend.asarray(a) for a in v] for k, v in arrays.items()}
        if arrays or not self._state_names():
            self.load_state_arrays(arrays, state["t"])
        else:
            self.t = NON_NEGATIVE_INT.check("t", state["t"])

    def clone(self, backend: Any = None) -> Optimizer:
        """An independent copy: same hyperparameters, step count and state (copied, on
        ``backend`` if given). Works for any subclass, registered or not."""
        twin = copy.copy(self)
        for key, value in self.__dict__.items():
            if key not in ("_state", "_xp", "_meta") and not isinstance(value, _IMMUTABLE):
                setattr(twin, key, copy.deepcopy(value))  # a subclass's own mutable attributes
        if backend is None and self._xp is not None:  # same device: plain copies (every epoch)
            twin._state = {
                k: [self._xp.asarray(a, copy=True) for a in v] for k, v in self._state.items()
            }
            twin._meta = list(self._meta)
            return twin
        twin._state, twin._xp, twin._meta = {}, None, []
        twin.load_state_dict(self.state_dict(), backend)
        return twin


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

    def _update(self, xp: Any, i: int, p: Array, g: Array, lr: float) -> None:
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * p
        if self.momentum != 0.0:
            buf = self._state["momentum_buffer"][i]
            if self.t == 1:
                buf[...] = g
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= lr * g


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

    def _init_state(self, xp: Any, p: Array, name: str) -> Array:
        return xp.full_like(p, self.initial_accumulator_value)

    def _update(self, xp: Any, i: int, p: Array, g: Array, lr: float) -> None:
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * p
        clr = lr / (1.0 + (self.t - 1) * self.lr_decay)
        s = self._state["sum"][i]
        s += g * g
        p -= clr * (g / (xp.sqrt(s) + self.eps))


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

    def _update(self, xp: Any, i: int, p: Array, g: Array, lr: float) -> None:
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * p
        v = self._state["square_avg"][i]
        v *= self.alpha
        v += (1.0 - self.alpha) * (g * g)
        if self.centered:
            a = self._state["grad_avg"][i]
            a += (1.0 - self.alpha) * (g - a)
            den = xp.sqrt(v - a * a) + self.eps
        else:
            den = xp.sqrt(v) + self.eps
        if self.momentum > 0.0:
            b = self._state["momentum_buffer"][i]
            b *= self.momentum
            b += g / den
            p -= lr * b
        else:
            p -= lr * (g / den)


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

    def _update(self, xp: Any, i: int, p: Array, g: Array, lr: float) -> None:
        if self.weight_decay != 0.0:
            if self._decoupled:
                p *= 1.0 - lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m = self._state["exp_avg"][i]
        v = self._state["exp_avg_sq"][i]
        # In-place forms of torch's update; three temporaries per parameter instead of eight.
        m *= self.beta1  # m = beta1 * m + (1 - beta1) * g
        m += (1.0 - self.beta1) * g
        g2 = g * g  # v = beta2 * v + (1 - beta2) * g**2
        g2 *= 1.0 - self.beta2
        v *= self.beta2
        v += g2
        if self.amsgrad:
            vmax = self._state["max_exp_avg_sq"][i]
            vmax[...] = xp.maximum(vmax, v)
            v = vmax
        step_size, v_scale = self._bias_corrections(lr)
        update = xp.sqrt(v)  # p -= step_size * m / (sqrt(v) * v_scale + eps)
        update *= v_scale
        update += self.eps
        update = m / update
        update *= step_size
        p -= update

    def _bias_corrections(self, lr: float) -> tuple[float, float]:
        """``(step_size, v_scale)`` of ``p -= step_size * m / (sqrt(v) * v_scale + eps)``:
        torch's placement, ``eps`` added after the second moment's bias correction."""
        return lr / (1.0 - self.beta1**self.t), 1.0 / (1.0 - self.beta2**self.t) ** 0.5


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    The parameter shrinks before the Adam step (which then sees no L2 term)::

        p <- p * (1 - lr * weight_decay)
        p <- Adam step of p with g   (weight_decay not added to g)
    """

    name = "adamw"
    _decoupled = True

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

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        betas: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, 0.0, False, betas)

    def _bias_corrections(self, lr: float) -> tuple[float, float]:
        # scikit-learn's placement: eps added to sqrt(v) before the bias correction
        step_size = lr * (1.0 - self.beta2**self.t) ** 0.5 / (1.0 - self.beta1**self.t)
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
