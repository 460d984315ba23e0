"""Full-batch L-BFGS training: SciPy's L-BFGS-B over the flattened parameters, on any backend.

This is scikit-learn's ``solver="lbfgs"``. SciPy's optimizer runs on the host in float64; the
objective and its gradient are computed on the device. Each evaluation is **one host round
trip**: the candidate parameter vector goes to the device once, the network's objective and
gradients over the whole data set are computed there (in chunks of rows, summed on the device,
with no host sync), and the loss and the flat gradient come back together in one transfer.

The objective is the network's: the mean loss (or weighted mean, with ``sample_weight``) plus its
L1/L2 penalties, in inference mode (dropout off). It is full batch, so a chunk size only bounds
device memory; a ``scipy.sparse`` ``X`` is densified one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import to_numpy
from .sparse import SPARSE_BATCH, dense_rows, is_sparse
from .validation import Interval

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

    from .network import NN

Array = Any

_COUNT = Interval("int", 1)
_NON_NEGATIVE = Interval("real", 0.0)
_POSITIVE = Interval("real", 0.0, closed="neither")


class FlatObjective:
    """``theta -> (f, grad)`` for SciPy: ``theta`` is every parameter of ``net`` flattened in
    the order of :meth:`NN.parameters` (float64, host); ``f`` and ``grad`` are ``scale`` times
    the network's objective and its gradient over all of ``(X, T, w)``.

    Calling it makes ``theta`` the network's parameter vector (:meth:`NN.bind`).
    """

    def __init__(
        self,
        net: NN,
        X: Any,
        T: Array,
        w: Array | None = None,
        batch_size: int | None = None,
        scale: float = 1.0,
    ) -> None:
        self.net, self.X, self.T, self.w, self.scale = net, X, T, w, float(scale)
        self.n = int(T.shape[0])
        default = SPARSE_BATCH if is_sparse(X) else self.n
        self.chunk = max(int(batch_size) if batch_size else default, 1)
        self.total_w = None if w is None else net.xp.sum(w)
        #: number of evaluations so far
        self.nfev = 0

    def theta(self) -> np.ndarray:
        """The network's current parameters as one float64 vector (one transfer)."""
        return np.asarray(to_numpy(self.net.theta), dtype=np.float64)

    def set(self, theta: np.ndarray) -> None:
        """Make ``theta`` the network's parameter vector (one transfer)."""
        self.net.bind(self.net.backend.asarray(np.asarray(theta), copy=True))

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(theta), grad f(theta))`` as a float and a float64 vector."""
        self.set(theta)
        net, xp, n = self.net, self.net.xp, self.n
        total = None
        for start in range(0, n, self.chunk):
            stop = min(start + self.chunk, n)
            whole = (start, stop) == (0, n)
            tb = self.T if whole else self.T[start:stop, :]
            w_rows = self.w if self.w is None or whole else self.w[start:stop]
            loss, _, grad = net.backprop(dense_rows(net, self.X, start, stop), tb, None, w_rows)
            flat = xp.concat([xp.reshape(loss, (1,)), grad])
            if not whole:  # chunks combine as a (weighted) mean; the penalty is in each once
                part = (stop - start) / n if w_rows is None else xp.sum(w_rows) / self.total_w
                flat = flat * part
            total = flat if total is None else total + flat
        values = np.asarray(to_numpy(total), dtype=np.float64) * self.scale
        self.nfev += 1
        return float(values[0]), values[1:]


def fit_lbfgs(
    net: NN,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    max_iter: int = 200,
    max_fun: int = 15000,
    tol: float = 1e-5,
    batch_size: int | None = None,
    loss_scale: float = 1.0,
    callback: Callable[[int, float], Any] | None = None,
) -> OptimizeResult:
    """Minimise the network's objective on ``(X, y)`` with SciPy's L-BFGS-B, in place.

    Args:
        net: the network; its current parameters are the starting point, and the best point
            found replaces them.
        X, y: the data (as for :meth:`NN.fit`; ``X`` may be ``scipy.sparse``).
        sample_weight: optional per-row weights (weighted mean loss).
        max_iter: at most this many L-BFGS iterations (SciPy's ``maxiter``).
        max_fun: at most this many objective evaluations (``maxfun``), each one round trip.
        tol: stop when the largest gradient component is at most ``tol`` (``gtol``).
        batch_size: rows per chunk of the full-batch sums (default: all rows at once for dense
            ``X``, 1024 for sparse ``X``); it bounds device memory, not the result.
        loss_scale: the function SciPy sees is ``loss_scale`` times the objective (the
            scikit-learn estimators use it to minimise scikit-learn's units of loss).
        callback: ``callback(iteration, loss)`` after every iteration (``loss`` scaled).

    Returns:
        SciPy's ``OptimizeResult`` (``nit``, ``nfev``, ``status``, ``message``, ``fun`` in
        scaled units, ...) with ``loss_curve``: the scaled loss after each iteration.
    """
    from scipy.optimize import minimize  # deferred: the core needs scipy only here

    checks = [("max_iter", max_iter, _COUNT), ("max_fun", max_fun, _COUNT),
              ("tol", tol, _NON_NEGATIVE), ("loss_scale", loss_scale, _POSITIVE),
              ("batch_size", 1 if batch_size is None else batch_size, _COUNT)]  # fmt: skip
    for name, value, interval in checks:
        interval.check(name, value)
    Xd = net.check_inputs(X)
    n = int(Xd.shape[0])
    if n == 0:
        raise ValueError("X has no rows.")
    T, w = net.check_targets(y, n), net.check_weights(sample_weight, n)
    fun = FlatObjective(net, Xd, T, w, batch_size, loss_scale)
    curve: list[float] = []

    def record(intermediate_result: OptimizeResult) -> None:
        curve.append(float(intermediate_result.fun))
        if callback is not None:
            callback(len(curve), curve[-1])

    options = {"maxiter": int(max_iter), "maxfun": int(max_fun), "gtol": float(tol)}
    result = minimize(
        fun, fun.theta(), method="L-BFGS-B", jac=True, options=options, callback=record
    )
    fun.set(result.x)
    result.loss_curve = curve
    return result


__all__ = ["FlatObjective", "fit_lbfgs"]
