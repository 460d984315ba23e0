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
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import registry as _registry
from .activations import Activation, Sigmoid, Softmax
from .registry import Component, Registry

Array = Any

#: Every loss, by name (a subclass that sets ``name`` is added automatically).
registry: Registry = _registry.losses


class Loss(Component):
    """Base class: :meth:`value` and :meth:`grad` on the output activations ``a``.

    A loss fused with an output activation (``fused_with``) also implements the ``*_from_logits``
    methods. Setting ``name`` registers a subclass, so networks using it save and load.
    """

    registry: ClassVar[Registry] = registry
    #: Name of the output activation this loss is fused with, if any.
    fused_with: ClassVar[str | None] = None

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


class CrossEntropy(Loss):
    """Categorical cross-entropy ``-sum(t * log p) / n`` for one-hot (or probability) rows ``t``."""

    name = "cross_entropy"
    fused_with = Softmax.name

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return -xp.sum(t * xp.log(xp.maximum(a, tiny))) / float(a.shape[0])

    def grad(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return -t / xp.maximum(a, tiny) / float(a.shape[0])

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
    fused_with = Sigmoid.name

    def value(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        ll = t * xp.log(xp.maximum(a, tiny)) + (1.0 - t) * xp.log(xp.maximum(1.0 - a, tiny))
        return -xp.sum(ll) / _count(a)

    def grad(self, xp: Any, a: Array, t: Array) -> Array:
        tiny = xp.finfo(a.dtype).smallest_normal
        return (a - t) / xp.maximum(a * (1.0 - a), tiny) / _count(a)

    def value_from_logits(self, xp: Any, z: Array, t: Array) -> Array:
        # log(1 + e^z) - t z, written without overflow
        per = xp.maximum(z, 0.0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
        return xp.sum(per) / _count(z)

    def grad_from_logits(self, xp: Any, z: Array, a: Array, t: Array) -> Array:
        return (a - t) * (1.0 / _count(z))

    def output_activation(self) -> Activation:
        return Sigmoid()


#: The registry itself, under the name this module always exported (a read-only mapping).
LOSSES = registry
registry.alias("mean_squared_error", "mse")
registry.alias("squared_error", "mse")  # scikit-learn's name
registry.alias("categorical_cross_entropy", "cross_entropy")
registry.alias("log_loss", "cross_entropy")  # scikit-learn's name
registry.alias("bce", "binary_cross_entropy")

#: The loss chosen when ``loss=None``, by output activation.
DEFAULT_LOSS_FOR_OUTPUT = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy"}


def get(spec: str | dict[str, Any] | Loss | None, output: str = "identity") -> Loss:
    """A :class:`Loss` from a name, a config dict or an instance; ``None`` picks the natural
    loss for ``output`` (cross-entropy for softmax, binary cross-entropy for sigmoid, else MSE)."""
    if spec is None:
        spec = DEFAULT_LOSS_FOR_OUTPUT.get(output, "mse")
    return registry.get(spec)
