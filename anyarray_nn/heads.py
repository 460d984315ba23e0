"""The output head: what a network's last layer means.

A :class:`Head` owns the output activation and the loss, and everything that depends on the
task they define: how targets are checked and encoded, how the loss and its gradient come from
the logits (fused where the loss is fused with the activation), which metrics apply and how
outputs are decoded into labels. The task comes from the output activation's ``task``
(``multiclass``, ``multilabel`` or ``regression``) and the allowed targets from the loss's
``target_range``, never from comparing names, so a new output or loss is one registered class
(see the Extending guide).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import losses as _losses
from .activations import Activation
from .backend import Backend, to_numpy
from .inputs import all_finite, check_fits_dtype, nonfinite_error
from .losses import Loss

Array = Any

__all__ = ["Head"]


class Head:
    """Output activation + loss, and the task they define.

    Attributes:
        output: the output :class:`~anyarray_nn.activations.Activation`.
        loss: the :class:`~anyarray_nn.losses.Loss`.
        fused: the loss works straight from the logits (softmax + cross-entropy, sigmoid +
            binary cross-entropy, exp + Poisson).
        task: ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
    """

    def __init__(self, output: Activation, loss: Loss) -> None:
        self.output, self.loss = output, loss
        self.fused = loss.fused_with is not None and isinstance(output, loss.fused_with)
        self.task = output.task

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    def check_width(self, n_outputs: int) -> None:
        """Refuse an output layer too narrow for the task."""
        if self.task == "multiclass" and n_outputs < 2:
            raise ValueError(
                f"A {self.output.name} output needs at least 2 units. For binary classification "
                "use output='sigmoid'; for regression use output='identity'."
            )

    # -- targets ------------------------------------------------------------------------------
    def targets(self, backend: Backend, y: Any, n_samples: int, n_outputs: int) -> Array:
        """Validate ``y`` and return the ``(n, n_outputs)`` float target matrix on the device.

        A multiclass head accepts integer labels ``(n,)`` in ``[0, n_outputs)`` (one-hot rows
        are built on the device) or ``(n, n_outputs)`` rows; targets must lie in the loss's
        ``target_range`` (``[0, 1]`` for the cross-entropies, ``>= 0`` for Poisson). Targets
        already on the backend's device are checked there (a few reads), never copied to the
        host and back."""
        if backend.owns(y) and not isinstance(y, np.ndarray):
            return self._device_targets(backend, backend.info.detach(y), n_samples, n_outputs)
        host = np.asarray(to_numpy(y))
        if host.shape[:1] != (n_samples,):
            raise ValueError(
                f"y has {host.shape[0] if host.ndim else 0} rows but X has {n_samples}."
            )
        if not np.issubdtype(host.dtype, np.number) and host.dtype != np.bool_:
            raise ValueError(
                f"y must be numeric (got dtype {host.dtype}); encode string labels as integers "
                "0..n_classes-1 first (e.g. sklearn.preprocessing.LabelEncoder)."
            )
        if host.dtype.kind == "c":
            raise ValueError(
                f"y is complex ({host.dtype}); targets must be real numbers. Pass the real part "
                "(y.real) if that is what you mean."
            )
        if host.dtype.kind == "f" and not all_finite(host):
            raise nonfinite_error(host, "y")
        if self.task == "multiclass" and host.ndim == 1:
            return _one_hot(backend, host, n_outputs)
        if host.dtype.kind == "f":
            check_fits_dtype(host, backend.dtype_name, "y")  # never inf in a float32 network
        if host.ndim == 1:
            host = host.reshape(-1, 1)
        if host.ndim != 2 or host.shape[1] != n_outputs:
            kinds = "labels " if self.task == "multiclass" else "labels or values "
            raise ValueError(
                f"y has shape {host.shape}, but the network has {n_outputs} outputs: give "
                f"(n,) {kinds}or an (n, {n_outputs}) array."
            )
        self._check_range(host)
        return backend.asarray(host.astype(np.float64))

    def _device_targets(self, backend: Backend, y: Array, n_samples: int, k: int) -> Array:
        """:meth:`targets` for ``y`` on the device: the same checks, made there."""
        xp = backend.xp
        if y.ndim == 0 or y.shape[0] != n_samples:
            raise ValueError(f"y has {y.shape[0] if y.ndim else 0} rows but X has {n_samples}.")
        if xp.isdtype(y.dtype, "complex floating"):
            raise ValueError(f"y must be real numbers, got dtype {y.dtype}.")
        if xp.isdtype(y.dtype, "real floating") and not bool(xp.all(xp.isfinite(y))):
            raise nonfinite_error(np.asarray(to_numpy(y)), "y")  # the error path may read all
        if self.task == "multiclass" and y.ndim == 1:
            if xp.isdtype(y.dtype, "real floating") and not bool(xp.all(y == xp.round(y))):
                raise ValueError("Class labels must be integers 0..n_classes-1.")
            labels = xp.astype(y, backend.index_dtype)
            lo, hi = (int(xp.min(labels)), int(xp.max(labels))) if n_samples else (0, 0)
            _check_labels(lo, hi, k)
            classes = xp.arange(k, dtype=backend.index_dtype, device=backend.device)
            one_hot = xp.reshape(labels, (-1, 1)) == xp.reshape(classes, (1, -1))
            return xp.astype(one_hot, backend.dtype)
        T = xp.reshape(y, (-1, 1)) if y.ndim == 1 else y
        if T.ndim != 2 or T.shape[1] != k:
            raise ValueError(
                f"y has shape {tuple(y.shape)}, but the network has {k} outputs: give (n,) "
                f"labels or values or an (n, {k}) array."
            )
        with np.errstate(over="ignore"):  # an overflow is reported below, with its value
            cast = xp.astype(T, backend.dtype)
        narrowed = xp.isdtype(T.dtype, "real floating") and cast.dtype != T.dtype
        if narrowed and not bool(xp.all(xp.isfinite(cast))):
            check_fits_dtype(np.asarray(to_numpy(T)), backend.dtype_name, "y")
        T = cast
        if self.loss.target_range is not None and n_samples:
            self._check_bounds(float(xp.min(T)), float(xp.max(T)))
        return T

    def _check_range(self, host: np.ndarray) -> None:
        if self.loss.target_range is None or host.size == 0:
            return
        self._check_bounds(float(host.min()), float(host.max()))

    def _check_bounds(self, found_lo: float, found_hi: float) -> None:
        lo, hi = self.loss.target_range  # type: ignore[misc]
        if found_lo < lo or found_hi > hi:
            where = f"[{lo:g}, {hi:g}]" if np.isfinite(hi) else f">= {lo:g}"
            raise ValueError(
                f"Targets for the {self.loss.name} loss must be {where}; y holds values from "
                f"{found_lo:g} to {found_hi:g}. Rescale or clean the targets, or choose a loss "
                "that takes such values (e.g. loss='mse')."
            )

    # -- the loss -----------------------------------------------------------------------------
    def loss_and_grad(
        self, xp: Any, z: Array, T: Array, weights: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """``(mean loss, dL/dz, output activations)`` from the logits ``z``; ``weights`` (an
        ``(n,)`` device array) makes the loss the weighted mean ``sum(w l) / sum(w)``."""
        loss_fn, out = self.loss, self.output
        if weights is None:
            if self.fused:
                return loss_fn.fused(xp, z, T)
            a = out.forward(xp, z)
            return loss_fn.value(xp, a, T), out.backward(xp, z, a, loss_fn.grad(xp, a, T)), a
        factors = _losses.row_factors(xp, weights)
        if self.fused:
            _, grad, a = loss_fn.fused(xp, z, T)
            rows = loss_fn.row_values_from_logits(xp, z, T)
            grad = grad * factors
        else:
            a = out.forward(xp, z)
            rows = loss_fn.row_values(xp, a, T)
            grad = out.backward(xp, z, a, loss_fn.grad(xp, a, T) * factors)
        return _losses.weighted_mean(xp, rows, weights), grad, a

    def objective(
        self, xp: Any, z: Array, T: Array, weights: Array | None = None
    ) -> tuple[Array, Array]:
        """The mean (or weighted mean) loss and the output activations, without gradients."""
        loss_fn = self.loss
        a = self.output.forward(xp, z)
        if weights is not None:
            if self.fused:
                rows = loss_fn.row_values_from_logits(xp, z, T)
            else:
                rows = loss_fn.row_values(xp, a, T)
            return _losses.weighted_mean(xp, rows, weights), a
        if self.fused:
            return loss_fn.value_from_logits(xp, z, T), a
        return loss_fn.value(xp, a, T), a

    # -- metrics and decoding -----------------------------------------------------------------
    def default_metrics(self) -> list[str]:
        return ["accuracy"] if self.is_classifier else ["r2"]

    def stats(self, xp: Any, name: str, a: Array, T: Array, w: Array | None) -> Array:
        """One batch's statistic for metric ``name`` (device, no host sync): correct rows
        (or weights) for the accuracies, per-column squared errors for R²."""
        if name == "r2":
            d = T - a
            return (
                xp.sum(d * d, axis=0)
                if w is None
                else xp.sum(xp.reshape(w, (-1, 1)) * (d * d), axis=0)
            )
        if self.task == "multiclass":
            right = xp.argmax(a, axis=1) == xp.argmax(T, axis=1)
            if w is None:
                return xp.count_nonzero(right)  # one operation, an integer count
            return xp.sum(w * xp.astype(right, a.dtype))
        hits = xp.astype((a > 0.5) == (T > 0.5), a.dtype)  # per output
        if name == "accuracy":  # averaged over outputs
            hits = xp.sum(hits, axis=1) / float(a.shape[1])
        else:  # subset accuracy: every output right
            hits = xp.min(hits, axis=1)
        return xp.sum(hits) if w is None else xp.sum(w * hits)

    def decode(self, probs: np.ndarray) -> np.ndarray:
        """Labels from outputs (host): argmax for multiclass, ``p > 0.5`` per output for
        multilabel (a vector for one output)."""
        if self.task == "multilabel":
            labels = (probs > 0.5).astype(np.int64)
            return labels[:, 0] if labels.shape[1] == 1 else labels
        return np.argmax(probs, axis=1)

    def stratify_labels(self, y: np.ndarray) -> np.ndarray | None:
        """The labels a validation split can stratify on (class labels), else ``None``."""
        return y if (self.task == "multiclass" and y.ndim == 1) else None


def _one_hot(backend: Backend, labels: np.ndarray, k: int) -> Array:
    """Integer labels (host) -> one-hot rows on the device (built there by broadcasting)."""
    xp = backend.xp
    if not np.all(labels == np.round(labels)):
        raise ValueError("Class labels must be integers 0..n_classes-1.")
    if labels.size:
        _check_labels(int(labels.min()), int(labels.max()), k)
    device_labels = backend.asarray(labels.astype(np.int64), dtype=backend.index_dtype)
    classes = xp.arange(k, dtype=backend.index_dtype, device=backend.device)
    one_hot = xp.reshape(device_labels, (-1, 1)) == xp.reshape(classes, (1, -1))
    return xp.astype(one_hot, backend.dtype)


def _check_labels(lo: int, hi: int, k: int) -> None:
    if lo < 0 or hi >= k:
        fix = "Widen the output layer or re-encode y"
        if lo > 0 and hi - lo < k:  # e.g. classes numbered from 1
            fix = f"Labels count from 0: pass y - {lo}, or use NNClassifier (any labels)"
        raise ValueError(
            f"Labels out of range: found {lo}..{hi}, but the output layer has {k} units "
            f"(valid labels 0..{k - 1}). {fix}."
        )
