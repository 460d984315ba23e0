"""Central-difference gradient checks: the ground truth that backprop is tested against.

- :func:`gradcheck` compares a whole network's backprop with central differences, entry by entry,
  on a float64 NumPy copy.
- :func:`check_layer_backward` checks one layer's ``backward`` along one random direction
  (Chainer's ``check_backward``): cheap enough for any layer size and any backend, and the test
  to write for a new layer or activation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import to_numpy
from .layers import Layer, Pass


@dataclass
class GradcheckReport:
    """Per-parameter comparison of backprop with central differences.

    ``relative_error[name] = ||g_backprop - g_numeric|| / max(||g_backprop|| + ||g_numeric||,
    1e-12)`` (2-norms over the parameter tensor, so tiny single entries do not dominate);
    ``abs_error[name]`` is the largest absolute entrywise difference.
    """

    relative_error: dict[str, float] = field(default_factory=dict)
    abs_error: dict[str, float] = field(default_factory=dict)
    eps: float = 1e-5

    @property
    def max_relative_error(self) -> float:
        return max(self.relative_error.values(), default=0.0)

    @property
    def max_abs_error(self) -> float:
        return max(self.abs_error.values(), default=0.0)

    def __str__(self) -> str:
        rows = [f"{'param':<8}{'rel. error':>14}{'abs. error':>14}"]
        for name in self.relative_error:
            rows.append(f"{name:<8}{self.relative_error[name]:>14.3e}{self.abs_error[name]:>14.3e}")
        rows.append(f"{'max':<8}{self.max_relative_error:>14.3e}{self.max_abs_error:>14.3e}")
        return "\n".join(rows)


def numerical_gradients(net: Any, X: Any, y: Any, eps: float = 1e-5) -> list[np.ndarray]:
    """Central differences ``(L(w + eps) - L(w - eps)) / (2 eps)`` of ``net.loss`` for every
    parameter entry, on a float64 NumPy copy of ``net`` (``net`` itself is not touched)."""
    ref = net.copy(backend="numpy", dtype="float64")
    weights = ref.get_weights()
    grads = []
    for _k, w in enumerate(weights):
        g = np.empty_like(w)
        flat_w, flat_g = w.reshape(-1), g.reshape(-1)
        for i in range(flat_w.size):
            orig = flat_w[i]
            flat_w[i] = orig + eps
            ref.set_weights(weights)
            plus = ref.loss(X, y)
            flat_w[i] = orig - eps
            ref.set_weights(weights)
            minus = ref.loss(X, y)
            flat_w[i] = orig
            flat_g[i] = (plus - minus) / (2.0 * eps)
        grads.append(g)
        ref.set_weights(weights)
    return grads


def gradcheck(
    net: Any, X: Any, y: Any, eps: float = 1e-5, per_parameter: bool = False
) -> float | GradcheckReport:
    """Compare backprop with central differences, both in float64 on a NumPy copy of ``net``.

    Whatever the network's own backend and dtype, the check runs on a float64 copy, so it
    measures the *math* of backprop rather than float32 rounding.

    ``eps = 1e-5`` balances the truncation error of central differences (~eps**2) against
    float64 round-off in the loss (~1e-16 / eps).

    Returns:
        The maximum relative error over all parameters (see :class:`GradcheckReport`), or the
        full report when ``per_parameter=True``. Values near 1e-9 or below mean agreement to
        the accuracy of finite differences.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}.")
    ref = net.copy(backend="numpy", dtype="float64")
    analytic = ref.gradients(X, y)
    numeric = numerical_gradients(ref, X, y, eps)
    report = GradcheckReport(eps=eps)
    for name, a, n in zip(ref.parameter_names(), analytic, numeric, strict=True):
        scale = max(float(np.linalg.norm(a) + np.linalg.norm(n)), 1e-12)
        report.relative_error[name] = float(np.linalg.norm(a - n)) / scale
        report.abs_error[name] = float(np.max(np.abs(a - n), initial=0.0))
    return report if per_parameter else report.max_relative_error


@dataclass
class DirectionalCheck:
    """One directional-derivative comparison: ``analytic`` is ``<backward's gradients,
    direction>``, ``numeric`` the central difference of ``<forward, grad_out>`` along the
    direction; ``error`` is their absolute difference."""

    analytic: float
    numeric: float
    tolerance: float

    @property
    def error(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance  # False for NaN


def check_layer_backward(
    layer: Layer,
    x: Any,
    grad_out: Any,
    eps: float = 1e-6,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    seed: int = 0,
    training: bool = False,
    step: int = 0,
) -> DirectionalCheck:
    """Check ``layer.backward`` against central differences along one random direction.

    With ``f(x, params) = sum(layer.forward(x) * grad_out)``, backward must give ``df``: the
    check draws one random direction ``d`` for the input and every parameter and compares
    ``<backward's gradients, d>`` with ``(f(. + eps d) - f(. - eps d)) / (2 eps)``. One random
    direction exercises every entry at once (Chainer's ``check_backward``), so it is cheap for
    large layers; a wrong entry would have to be orthogonal to a random vector to pass.

    Args:
        layer: a built layer (e.g. one of ``net.layers``, or ``layer.build(backend, rng, fan_in)``);
            use a float64 backend for tight tolerances.
        x: an input batch; grad_out: an upstream gradient of the output's shape (any arrays).
        eps: the finite-difference step; atol, rtol: the tolerance
            ``atol + rtol * |numeric|``.
        seed: seed of the random direction.
        training, step: the :class:`~anyarray_nn.layers.Pass` mode and dropout step to check
            (dropout masks depend on them only, so every evaluation sees the same mask).

    Returns:
        The :class:`DirectionalCheck`.

    Raises:
        AssertionError: the two numbers differ by more than the tolerance.
    """
    be = layer.backend
    if be is None:
        raise ValueError(f"{layer!r} is not built: build it (or add it to an NN) first.")
    xp = be.xp
    x, g = be.asarray(x), be.asarray(grad_out)
    ctx = Pass(training=training, step=step)
    layer.forward(x, ctx)
    dx = layer.backward(g, ctx, need_input_grad=True)
    grads = ctx.grads.get(layer, {})
    rng = np.random.default_rng(seed)
    d_x = be.asarray(rng.standard_normal(tuple(x.shape)))
    d_params = {k: be.asarray(rng.standard_normal(tuple(p.shape))) for k, p in layer.params.items()}
    analytic = float(to_numpy(xp.sum(dx * d_x)))
    for k, d in d_params.items():
        analytic += float(to_numpy(xp.sum(grads[k] * d)))
    original = dict(layer.params)

    def f(sign: float) -> float:
        layer.params = {k: p + (sign * eps) * d_params[k] for k, p in original.items()}
        out = layer.forward(
            x + (sign * eps) * d_x, Pass(training=training, step=step, record=False)
        )
        return float(to_numpy(xp.sum(out * g)))

    try:
        numeric = (f(1.0) - f(-1.0)) / (2.0 * eps)
    finally:
        layer.params = original
    check = DirectionalCheck(analytic, numeric, atol + rtol * abs(numeric))
    if not check.ok:
        raise AssertionError(
            f"{layer!r}.backward disagrees with central differences along a random direction: "
            f"analytic {analytic!r}, numeric {numeric!r} (|difference| {check.error:.3e} > "
            f"tolerance {check.tolerance:.3e})."
        )
    return check
