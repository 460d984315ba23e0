"""Central-difference gradient check: the ground truth that backprop is tested against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
