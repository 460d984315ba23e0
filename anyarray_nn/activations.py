"""Activation functions: value and vector-Jacobian product, in standard Array API ops only.

Each activation maps pre-activations ``z`` to ``a = f(z)``. Backpropagation needs
``dL/dz = J_f(z)^T dL/da``; for elementwise functions that is ``f'(z) * dL/da``, for softmax it is
``a * (g - sum(g * a))`` per row. Every formula is written so that no intermediate overflows for
``|z|`` up to 1e4 in float32 or float64 (e.g. sigmoid uses ``exp(-|z|)``, never ``exp(-z)``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import registry as _registry
from .registry import Component, Registry

Array = Any

#: Every activation, by name (a subclass that sets ``name`` is added automatically).
registry: Registry = _registry.activations


def select(xp: Any, cond: Array, if_true: Array, if_false: Array) -> Array:
    """``xp.where(cond, if_true, if_false)`` for finite operands, computed as arithmetic.

    With ``c = float(cond)`` in {0, 1}, ``c * if_true`` is exactly the chosen value or zero, and
    so is ``(c - 1) * if_false``; their difference is therefore the same number ``where`` picks.
    Why: NumPy's and torch's CPU ``where`` branch per element and run about 10x slower than a
    multiply on the unpredictable masks of hidden layers. (A NaN or inf in the operand *not*
    chosen would leak through, so this is only for values that are finite by construction.)
    """
    c = xp.astype(cond, if_true.dtype)
    out = c * if_true
    c -= 1.0
    c *= if_false
    out -= c
    return out


class Activation(Component):
    """Base class. Subclasses implement :meth:`forward` and :meth:`derivative` (elementwise), or
    :meth:`backward` (the vector-Jacobian product) for a function that is not elementwise.

    Setting ``name`` registers a subclass (see :mod:`anyarray_nn.registry`); constructor
    arguments stored under their own names (like ``alpha``) are saved and loaded with it.
    """

    registry: ClassVar[Registry] = registry
    #: Default weight initializer for layers using this activation.
    default_init: ClassVar[str] = "glorot_uniform"
    #: What a network with this *output* activation predicts (see :mod:`anyarray_nn.heads`):
    #: ``"multiclass"`` (one class per row: probabilities that sum to 1), ``"multilabel"``
    #: (an independent probability per output: binary or multilabel classification) or
    #: ``"regression"`` (values).
    task: ClassVar[str] = "regression"
    #: The loss a network with this output activation trains with when it names none.
    default_loss: ClassVar[str] = "mse"

    def forward(self, xp: Any, z: Array) -> Array:
        raise NotImplementedError

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        """Elementwise ``f'(z)``; ``a = f(z)`` is passed so it need not be recomputed."""
        raise NotImplementedError

    def backward(self, xp: Any, z: Array, a: Array, grad_a: Array) -> Array:
        """Vector-Jacobian product ``dL/dz`` from ``dL/da``."""
        return self.derivative(xp, z, a) * grad_a


class Identity(Activation):
    name = "identity"

    def forward(self, xp: Any, z: Array) -> Array:
        return z

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        return xp.ones_like(z)

    def backward(self, xp: Any, z: Array, a: Array, grad_a: Array) -> Array:
        return grad_a


class Sigmoid(Activation):
    """``1 / (1 + exp(-z))``, evaluated as ``e/(1+e)`` or ``1/(1+e)`` with ``e = exp(-|z|)``."""

    name = "sigmoid"
    task = "multilabel"
    default_loss = "binary_cross_entropy"

    def forward(self, xp: Any, z: Array) -> Array:
        e = xp.exp(-xp.abs(z))  # in (0, 1]: never overflows
        p = 1.0 / (1.0 + e)  # sigmoid(|z|)
        return select(xp, z >= 0, p, e * p)  # sigmoid(-|z|) = e / (1 + e)

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        return a * (1.0 - a)


class Tanh(Activation):
    name = "tanh"

    def forward(self, xp: Any, z: Array) -> Array:
        return xp.tanh(z)  # saturates cleanly; no clipping needed

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        return 1.0 - a * a


class ReLU(Activation):
    name = "relu"
    default_init = "he_normal"

    def forward(self, xp: Any, z: Array) -> Array:
        # clip takes a Python scalar natively everywhere; maximum(z, 0.0) makes torch (through
        # array-api-compat) copy the 0.0 to the device, a host sync per call on a GPU
        return xp.clip(z, min=0.0)

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        return xp.astype(z > 0, z.dtype)

    def backward(self, xp: Any, z: Array, a: Array, grad_a: Array) -> Array:
        mask = xp.astype(z > 0, grad_a.dtype)  # a multiply, not a branchy where (see select)
        mask *= grad_a
        return mask


class LeakyReLU(Activation):
    """``z`` for ``z > 0``, ``alpha * z`` otherwise."""

    name = "leaky_relu"
    default_init = "he_normal"

    def __init__(self, alpha: float = 0.01) -> None:
        if not alpha >= 0:
            raise ValueError(f"leaky_relu alpha must be >= 0, got {alpha!r}.")
        self.alpha = float(alpha)

    def forward(self, xp: Any, z: Array) -> Array:
        # max(z, alpha z) for alpha <= 1 (min for alpha > 1): the same values as the
        # piecewise definition, without a branchy where
        scaled = self.alpha * z
        return xp.maximum(z, scaled) if self.alpha <= 1.0 else xp.minimum(z, scaled)

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, self.alpha))

    def backward(self, xp: Any, z: Array, a: Array, grad_a: Array) -> Array:
        return select(xp, z > 0, grad_a, self.alpha * grad_a)


class ELU(Activation):
    """``z`` for ``z > 0``, ``alpha * (exp(z) - 1)`` otherwise (``expm1`` of ``min(z, 0)``)."""

    name = "elu"
    default_init = "he_normal"

    def __init__(self, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise ValueError(f"elu alpha must be > 0, got {alpha!r}.")
        self.alpha = float(alpha)

    def forward(self, xp: Any, z: Array) -> Array:
        return select(xp, z > 0, z, self.alpha * xp.expm1(xp.clip(z, max=0.0)))

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        # for z <= 0: d/dz alpha*(e^z - 1) = alpha*e^z = a + alpha
        return select(xp, z > 0, xp.ones_like(z), a + self.alpha)

    def backward(self, xp: Any, z: Array, a: Array, grad_a: Array) -> Array:
        return select(xp, z > 0, grad_a, (a + self.alpha) * grad_a)


class Exp(Activation):
    """``exp(z)``: the output of a log-link model, such as a Poisson regression (fused with
    :class:`~anyarray_nn.losses.Poisson`). Unlike the others it overflows for large ``z`` (above
    88 in float32, 709 in float64), as any exponential output does."""

    name = "exp"
    default_loss = "poisson"

    def forward(self, xp: Any, z: Array) -> Array:
        return xp.exp(z)

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        return a


class Softmax(Activation):
    """Row-wise ``exp(z - max z) / sum exp(z - max z)``."""

    name = "softmax"
    task = "multiclass"
    default_loss = "cross_entropy"

    def forward(self, xp: Any, z: Array) -> Array:
        e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def derivative(self, xp: Any, z: Array, a: Array) -> Array:
        raise TypeError("softmax has no elementwise derivative; use backward() (a full VJP).")

    def backward(self, xp: Any, z: Array, a: Array, grad_a: Array) -> Array:
        # J = diag(a) - a a^T, so J^T g = a * (g - <g, a>)
        return a * (grad_a - xp.sum(grad_a * a, axis=-1, keepdims=True))


registry.alias("linear", "identity")
registry.alias("logistic", "sigmoid")  # scikit-learn's name


def get(spec: str | dict[str, Any] | Activation | None, **kwargs: Any) -> Activation:
    """An :class:`Activation` from a name (``"relu"``, ``"leaky_relu"``, ...), a config dict
    (``{"name": "elu", "alpha": 0.5}``) or an instance.

    ``None`` means identity. Extra keyword arguments (e.g. ``alpha``) go to the constructor.
    The aliases ``"linear"`` (identity) and ``"logistic"`` (sigmoid, scikit-learn's name) are
    accepted too.
    """
    return registry.get(spec, **kwargs)
