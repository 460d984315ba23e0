"""Losses, each the **mean** over samples (and over outputs for MSE and BCE), as in PyTorch.

Targets ``t`` always arrive as float matrices of shape ``(n, d)``; the network turns integer
labels into one-hot rows at its public API. A loss works on the output activation ``a``
(:meth:`Loss.value`, :meth:`Loss.grad`). Two pairs are *fused*: softmax + cross-entropy and
sigmoid + binary cross-entropy work straight from the logits ``z``, which is both stable
(log-sum-exp, ``log1p(exp(-|z|))``) and cheap, with the textbook gradients

    softmax + CE:   dL/dz = (softmax(z) - t) / n
    sigmoid + BCE:  dL/dz = (sigmoid(z) - t) / (n d)

Any other pair (e.g. a softmax output trained with MSE) goes through the activation's full
vector-Jacobian product.

**Sample weights.** Every built-in loss is a mean over samples of per-sample terms, which
:meth:`Loss.row_values` returns. The weighted loss is then ``sum(w_i l_i) / sum(w_i)``
(scikit-learn's and PyTorch's convention), and its gradient is the unweighted one with row ``i``
multiplied by ``n w_i / sum(w)`` (:func:`row_factors`); :meth:`anyarray_nn.NN.backprop` does
this for any loss that implements ``row_values``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from . import registry as _registry
from .activations import Activation, Exp, Sigmoid, Softmax
from .registry import Component, Registry
from .validation import Interval

Array = Any

#: Every loss, by name (a subclass that sets ``name`` is added automatically).
registry: Registry = _registry.losses


class Loss(Component):
    """Base class: :meth:`value` and :meth:`grad` on the output activations ``a``.

    A loss fused with an output activation (``fused_with``) also implements the ``*_from_logits``
    methods. Setting ``name`` registers a subclass, so networks using it save and load.
    """

    registry: ClassVar[Registry] = registry
    #: The output activation this loss is fused with, if any (it then implements the
    #: ``*_from_logits`` methods and :meth:`fused`).
    fused_with: ClassVar[type[Activation] | None] = None
    #: The closed interval targets must lie in (``None``: any finite value); checked by the
    #: network's output head before training or evaluating.
    target_range: ClassVar[tuple[float, float] | None] = None

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        """Mean loss (0-d array) of outputs ``a`` against targets ``t``."""
        raise NotImplementedError

    def grad(self, xp: Any, a: Array, t: Array) -> Array:
        """``dL/da``."""
        raise NotImplementedError

    def value_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        raise NotImplementedError

    def grad_from_logits(self, xp: Any, z: Array, a: Array, t: Array) -> Array:
        """``dL/dz`` for the fused pair; ``a`` is the output activation already computed."""
        raise NotImplementedError

    def fused(self, xp: Any, z: Array, t: Array) -> tuple[Array, Array, Array]:
        """``(loss, dL/dz, a)`` in one pass over the logits (the training hot path).

        The default composes the three methods; subclasses share intermediate results.
        """
        a = self.output_activation().forward(xp, z)
        return self.value_from_logits(xp, z, t), self.grad_from_logits(xp, z, a, t), a

    def output_activation(self) -> Activation:
        raise NotImplementedError

    def row_values(self, xp: Any, a: Array, t: Array) -> Array:
        """Per-sample losses, shape ``(n,)``, whose mean is :meth:`value` (sample weights need
        them)."""
        raise NotImplementedError(
            f"The loss {self.name or type(self).__name__!r} does not support sample weights: "
            "give it row_values(xp, a, t) (and row_values_from_logits(xp, z, t) if it is fused)."
        )

    def row_values_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        """:meth:`row_values` of the fused pair, from the logits."""
        return self.row_values(xp, self.output_activation().forward(xp, z), t)


def row_factors(xp: Any, w: Array) -> Array:
    """``n * w / sum(w)`` as an ``(n, 1)`` column: the per-row factors that turn the gradient of
    a mean loss into the gradient of the weighted mean ``sum(w l) / sum(w)``."""
    return xp.reshape(w * (float(w.shape[0]) / xp.sum(w)), (-1, 1))


def weighted_mean(xp: Any, rows: Array, w: Array) -> Array:
    """``sum(w * rows) / sum(w)``: the weighted mean of per-sample losses (a 0-d array)."""
    return xp.sum(w * rows) / xp.sum(w)


def _count(x: Array) -> float:
    n = 1
    for s in x.shape:
        n *= s
    return float(n)


class MSE(Loss):
    """``mean((a - t)**2)`` over samples and outputs; ``dL/da = 2 (a - t) / (n d)``."""

    name = "mse"

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        d = a - t
        return xp.sum(d * d) / _count(d)

    def grad(self, xp: Any, a: Array, t: Array) -> Array:
        return (a - t) * (2.0 / _count(a))

    def row_values(self, xp: Any, a: Array, t: Array) -> Array:
        d = a - t
        return xp.sum(d * d, axis=1) / float(d.shape[1])


class CrossEntropy(Loss):
    """Categorical cross-entropy ``-sum(t * log p) / n`` for one-hot (or probability) rows ``t``."""

    name = "cross_entropy"
    fused_with = Softmax
    target_range = (0.0, 1.0)

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return -xp.sum(t * xp.log(xp.clip(a, min=tiny))) / float(a.shape[0])

    def grad(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return -t / xp.clip(a, min=tiny) / float(a.shape[0])

    def row_values(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return -xp.sum(t * xp.log(xp.clip(a, min=tiny)), axis=1)

    def row_values_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        zmax = xp.max(z, axis=-1, keepdims=True)
        lse = zmax + xp.log(xp.sum(xp.exp(z - zmax), axis=-1, keepdims=True))
        return xp.sum(t * (lse - z), axis=1)

    def value_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        zmax = xp.max(z, axis=-1, keepdims=True)
        lse = zmax + xp.log(xp.sum(xp.exp(z - zmax), axis=-1, keepdims=True))
        return xp.sum(t * (lse - z)) / float(z.shape[0])

    def grad_from_logits(self, xp: Any, z: Array, a: Array, t: Array) -> Array:
        return (a - t) * (1.0 / float(z.shape[0]))

    def fused(self, xp: Any, z: Array, t: Array) -> tuple[Array, Array, Array]:
        # one exp: e = exp(z - max), softmax = e / s, log-sum-exp = max + log(s)
        zmax = xp.max(z, axis=-1, keepdims=True)
        shifted = z - zmax
        e = xp.exp(shifted)
        s = xp.sum(e, axis=-1, keepdims=True)
        a = e / s
        n = float(z.shape[0])
        loss = xp.sum(t * (xp.log(s) - shifted)) / n
        grad = a - t
        grad *= 1.0 / n
        return loss, grad, a

    def output_activation(self) -> Activation:
        return Softmax()


class BinaryCrossEntropy(Loss):
    """``-mean(t log p + (1 - t) log(1 - p))`` over samples and outputs."""

    name = "binary_cross_entropy"
    fused_with = Sigmoid
    target_range = (0.0, 1.0)

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        ll = t * xp.log(xp.clip(a, min=tiny)) + (1.0 - t) * xp.log(xp.clip(1.0 - a, min=tiny))
        return -xp.sum(ll) / _count(a)

    def grad(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return (a - t) / xp.clip(a * (1.0 - a), min=tiny) / _count(a)

    def row_values(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        ll = t * xp.log(xp.clip(a, min=tiny)) + (1.0 - t) * xp.log(xp.clip(1.0 - a, min=tiny))
        return -xp.sum(ll, axis=1) / float(a.shape[1])

    def row_values_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        per = xp.clip(z, min=0.0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
        return xp.sum(per, axis=1) / float(z.shape[1])

    def value_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        # log(1 + e^z) - t z, written without overflow
        per = xp.clip(z, min=0.0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
        return xp.sum(per) / _count(z)

    def grad_from_logits(self, xp: Any, z: Array, a: Array, t: Array) -> Array:
        return (a - t) * (1.0 / _count(z))

    def output_activation(self) -> Activation:
        return Sigmoid()


#: The probability clip of scikit-learn's log-losses: between 0 and 1/2.
CLIP = Interval("real", 0.0, 0.5, closed="neither")


class _Clipped:
    """Bounds a negative log-probability as clipping the probability to ``[eps, 1 - eps]``
    does: ``-log(clip(p)) = min(max(-log p, -log(1 - eps)), -log(eps))``."""

    eps: float

    def _bound(self, xp: Any, nll: Array) -> Array:
        return xp.clip(nll, min=-math.log1p(-self.eps), max=-math.log(self.eps))


class ClippedCrossEntropy(_Clipped, CrossEntropy):
    """:class:`CrossEntropy` whose *value* clips probabilities to ``[eps, 1 - eps]``, as
    scikit-learn's ``log_loss`` does (with ``eps`` the dtype's machine epsilon), so that one
    sample contributes at most ``-log(eps)`` (36.04 in float64). The gradient is the unclipped
    one, ``(softmax(z) - t) / n``, as in scikit-learn's MLP: its reported loss and stopping rule
    use the clipped value, its steps the unclipped gradient."""

    name = "clipped_cross_entropy"

    def __init__(self, eps: float = 2.220446049250313e-16) -> None:
        self.eps = CLIP.check("eps", eps)

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        return xp.sum(self.row_values(xp, a, t)) / float(a.shape[0])

    def row_values(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return xp.sum(t * self._bound(xp, -xp.log(xp.clip(a, min=tiny))), axis=1)

    def value_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        return xp.sum(self.row_values_from_logits(xp, z, t)) / float(z.shape[0])

    def row_values_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        zmax = xp.max(z, axis=-1, keepdims=True)
        lse = zmax + xp.log(xp.sum(xp.exp(z - zmax), axis=-1, keepdims=True))
        return xp.sum(t * self._bound(xp, lse - z), axis=1)

    def fused(self, xp: Any, z: Array, t: Array) -> tuple[Array, Array, Array]:
        shifted = z - xp.max(z, axis=-1, keepdims=True)
        e = xp.exp(shifted)
        s = xp.sum(e, axis=-1, keepdims=True)
        a = e / s
        n = float(z.shape[0])
        loss = xp.sum(t * self._bound(xp, xp.log(s) - shifted)) / n
        grad = a - t
        grad *= 1.0 / n
        return loss, grad, a


class ClippedBinaryCrossEntropy(_Clipped, BinaryCrossEntropy):
    """:class:`BinaryCrossEntropy` whose *value* clips probabilities to ``[eps, 1 - eps]``
    (scikit-learn's ``binary_log_loss``); the gradient is the unclipped one (see
    :class:`ClippedCrossEntropy`). The value is computed from the probabilities, as
    scikit-learn computes it, rounding included: ``log(1 - p)`` of a confident ``p`` loses
    digits there (from the logits it would not), and the reported losses must agree."""

    name = "clipped_binary_cross_entropy"

    def __init__(self, eps: float = 2.220446049250313e-16) -> None:
        self.eps = CLIP.check("eps", eps)

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        return xp.sum(self._terms(xp, a, t)) / _count(a)

    def row_values(self, xp: Any, a: Array, t: Array) -> Array:
        return xp.sum(self._terms(xp, a, t), axis=1) / float(a.shape[1])

    def value_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        return xp.sum(self._terms_from_logits(xp, z, t)) / _count(z)

    def row_values_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        return xp.sum(self._terms_from_logits(xp, z, t), axis=1) / float(z.shape[1])

    def _terms(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        nll_1 = self._bound(xp, -xp.log(xp.clip(a, min=tiny)))
        nll_0 = self._bound(xp, -xp.log(xp.clip(1.0 - a, min=tiny)))
        return t * nll_1 + (1.0 - t) * nll_0

    def _terms_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        return self._terms(xp, Sigmoid().forward(xp, z), t)


def _xlogx(xp: Any, t: Array) -> Array:
    """``t log t`` with ``0 log 0 = 0`` (scipy's ``xlogy(t, t)``); 0 for ``t <= 0``."""
    return t * xp.log(xp.where(t > 0, t, xp.ones_like(t)))


class Poisson(Loss):
    """Half the Poisson deviance, ``mean(a - t log a + t log t - t)`` over samples and outputs,
    for predicted means ``a = exp(z)`` (fused with the ``exp`` output, the log link). Its
    minimum, 0, is at ``a = t``; from the logits, ``dL/dz = (exp(z) - t) / (n d)``. This is
    scikit-learn's ``MLPRegressor(loss="poisson")`` loss, divided by the number of outputs.
    Targets are counts or rates, ``t >= 0``."""

    name = "poisson"
    fused_with = Exp
    target_range = (0.0, math.inf)

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        return xp.sum(self._terms(xp, a, xp.log(a), t)) / _count(a)

    def grad(self, xp: Any, a: Array, t: Array) -> Array:
        return (1.0 - t / a) / _count(a)

    def value_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        return xp.sum(self._terms(xp, xp.exp(z), z, t)) / _count(z)

    def grad_from_logits(self, xp: Any, z: Array, a: Array, t: Array) -> Array:
        return (a - t) * (1.0 / _count(z))

    def fused(self, xp: Any, z: Array, t: Array) -> tuple[Array, Array, Array]:
        a = xp.exp(z)
        loss = xp.sum(self._terms(xp, a, z, t)) / _count(z)
        return loss, (a - t) * (1.0 / _count(z)), a

    def row_values(self, xp: Any, a: Array, t: Array) -> Array:
        return xp.sum(self._terms(xp, a, xp.log(a), t), axis=1) / float(a.shape[1])

    def row_values_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        return xp.sum(self._terms(xp, xp.exp(z), z, t), axis=1) / float(z.shape[1])

    @staticmethod
    def _terms(xp: Any, a: Array, log_a: Array, t: Array) -> Array:
        return a - t * log_a + _xlogx(xp, t) - t

    def output_activation(self) -> Activation:
        return Exp()


registry.alias("mean_squared_error", "mse")
registry.alias("squared_error", "mse")  # scikit-learn's name
registry.alias("categorical_cross_entropy", "cross_entropy")
registry.alias("log_loss", "cross_entropy")  # scikit-learn's name
registry.alias("bce", "binary_cross_entropy")


def get(spec: str | dict[str, Any] | Loss | None, output: Activation | None = None) -> Loss:
    """A :class:`Loss` from a name, a config dict or an instance; ``None`` picks the natural
    loss of the ``output`` activation (its ``default_loss``: cross-entropy for softmax, binary
    cross-entropy for sigmoid, Poisson for exp, else MSE)."""
    if spec is None:
        spec = "mse" if output is None else output.default_loss
    return registry.get(spec)
