"""The network: a stack of layers, an output activation and a loss, on one backend."""

from __future__ import annotations

import copy as _copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import activations as _activations
from . import losses as _losses
from .backend import Backend, resolve, to_numpy
from .layers import Dense, Layer
from .random import STREAM_INIT, STREAM_SHUFFLE, host_rng, new_seed

Array = Any


class NN:
    """A multi-layer perceptron whose backprop is written once against the Array API standard.

    Args:
        layers: either a list of sizes ``[n_inputs, hidden..., n_outputs]`` or a list of
            :class:`~anyarray_nn.layers.Layer` objects (the first ``Dense`` needs ``fan_in=``).
        activation: hidden-layer activation when ``layers`` is a list of sizes: one name for all,
            or one per hidden layer.
        output: output activation: ``"softmax"`` (default), ``"sigmoid"`` or ``"identity"``.
        loss: ``"cross_entropy"``, ``"binary_cross_entropy"``, ``"mse"`` or ``None`` to pick the
            natural loss for ``output``. Softmax + cross-entropy and sigmoid + BCE are fused.
        init: weight initializer for all layers (default: per activation, He or Glorot).
        backend: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"``, ``"auto"``, an
            Array API namespace, or a :class:`~anyarray_nn.backend.Backend`.
        device: device on that backend (see :func:`anyarray_nn.backend.resolve`).
        dtype: ``"float32"`` (default) or ``"float64"``.
        seed: seed of the host RNG streams (weights, shuffling). ``None`` draws one and stores it
            in ``self.seed`` so the run can be repeated.
        alpha: negative-side slope of ``leaky_relu`` / ``elu`` hidden layers (their defaults if
            ``None``: 0.01 and 1.0).

    The loss is the mean over samples (and over outputs for MSE/BCE), as with PyTorch's
    ``reduction="mean"``.
    """

    def __init__(
        self,
        layers: Sequence[int] | Sequence[Layer],
        activation: str | Sequence[str] = "relu",
        output: str = "softmax",
        loss: str | _losses.Loss | None = None,
        init: str | None = None,
        backend: str | Any = "auto",
        device: Any = None,
        dtype: Any = "float32",
        seed: int | None = None,
        alpha: float | None = None,
    ) -> None:
        self.backend: Backend = resolve(backend, device, dtype)
        self.seed = int(seed) if seed is not None else new_seed()
        self.output = _activations.get(output)
        self.loss_fn = _losses.get(loss, self.output.name)
        self.layers: list[Layer] = self._make_layers(layers, activation, init, alpha)
        self._build()
        self._fused = self.loss_fn.fused_with == self.output.name
        self.history_: Any = None

    # -- construction ------------------------------------------------------------------------
    @staticmethod
    def _make_layers(
        spec: Sequence[int] | Sequence[Layer],
        activation: str | Sequence[str],
        init: str | None,
        alpha: float | None,
    ) -> list[Layer]:
        spec = list(spec)
        if spec and all(isinstance(s, Layer) for s in spec):
            return spec
        if len(spec) < 2 or not all(isinstance(s, int | np.integer) and s > 0 for s in spec):
            raise ValueError(
                "layers must be a list of at least two positive ints, e.g. [784, 128, 10] "
                f"(inputs, hidden..., outputs), or a list of Layer objects; got {spec!r}."
            )
        n_hidden = len(spec) - 2
        acts = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(acts) != n_hidden:
            raise ValueError(
                f"activation lists {len(acts)} names but the network has {n_hidden} hidden layers."
            )
        kwargs = {} if alpha is None else {"alpha": alpha}
        layers: list[Layer] = []
        for i, act in enumerate(acts):
            act_kwargs = kwargs if str(act).lower() in ("leaky_relu", "elu") else {}
            layers.append(Dense(int(spec[i + 1]), act, init=init, **act_kwargs))
        # The last Dense is linear: the output activation is applied by the network (so that
        # softmax/sigmoid can be fused with their loss).
        layers.append(Dense(int(spec[-1]), None, init=init or "glorot_uniform"))
        layers[0].fan_in = int(spec[0])
        return layers

    def _build(self) -> None:
        first = self.layers[0]
        fan_in = getattr(first, "fan_in", None)
        if fan_in is None:
            raise ValueError("The first layer needs its input width: Dense(units, fan_in=...).")
        self.n_features = int(fan_in)
        rng = host_rng(self.seed, STREAM_INIT)
        width = self.n_features
        for layer in self.layers:
            width = layer.build(self.backend, rng, width)
        self.n_outputs = width
        if self.output.name == "softmax" and width < 2:
            raise ValueError(
                "A softmax output needs at least 2 units. For binary classification use "
                "output='sigmoid'; for regression use output='identity'."
            )

    @property
    def xp(self) -> Any:
        return self.backend.xp

    @property
    def is_classifier(self) -> bool:
        return self.output.name in ("softmax", "sigmoid")

    def __repr__(self) -> str:
        sizes = [self.n_features] + [d.units for d in self.layers if isinstance(d, Dense)]
        return (
            f"NN({sizes}, output={self.output.name!r}, loss={self.loss_fn.name!r}, "
            f"backend={self.backend!r})"
        )

    # -- parameters ----------------------------------------------------------------------------
    def parameters(self) -> list[tuple[Layer, str]]:
        """``(layer, name)`` pairs in the order W1, b1, W2, b2, ..."""
        return [(layer, name) for layer in self.layers for name in layer.param_names]

    def parameter_names(self) -> list[str]:
        """``["W1", "b1", "W2", "b2", ...]`` numbered by parametrised layer."""
        names, k = [], 0
        for layer in self.layers:
            if layer.param_names:
                k += 1
                names += [f"{name}{k}" for name in layer.param_names]
        return names

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all parameters as NumPy arrays, in the order W1, b1, W2, b2, ..."""
        return [np.array(to_numpy(layer.params[name])) for layer, name in self.parameters()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Replace all parameters (NumPy or any array library), checking count and shapes."""
        pairs = self.parameters()
        weights = list(weights)
        if len(weights) != len(pairs):
            raise ValueError(f"set_weights expects {len(pairs)} arrays, got {len(weights)}.")
        new = []
        for (layer, name), label, w in zip(pairs, self.parameter_names(), weights, strict=True):
            w = to_numpy(w)
            shape = tuple(layer.params[name].shape)
            if tuple(w.shape) != shape:
                raise ValueError(f"{label} must have shape {shape}, got {tuple(w.shape)}.")
            if not np.all(np.isfinite(w)):
                raise ValueError(f"{label} contains NaN or inf.")
            new.append(self.backend.asarray(w))
        for (layer, name), arr in zip(pairs, new, strict=True):
            layer.params[name] = arr

    def to(self, backend: str | Any, device: Any = None, dtype: Any = None) -> NN:
        """Move every parameter (and optimizer state) to another backend/device/dtype, in place.

        Returns ``self``. Values are carried over bit-exactly (through host memory) unless the
        dtype changes.
        """
        target = resolve(backend, device, dtype or self.backend.dtype_name)
        for layer in self.layers:
            layer.move(target)
        self.backend = target
        return self

    def copy(self, backend: str | Any | None = None, device: Any = None, dtype: Any = None) -> NN:
        """A deep copy, optionally on another backend/device/dtype (default: this one)."""
        if backend is None and device is None and dtype is None:
            target = self.backend
        else:
            target = resolve(
                self.backend if backend is None else backend,
                device,
                dtype or self.backend.dtype_name,
            )
        self._clear()
        clone = _copy.copy(self)
        clone.layers = [_copy.copy(layer) for layer in self.layers]
        for twin in clone.layers:
            twin.move(target)  # fresh arrays, never shared with the original
        clone.backend = target
        return clone

    # -- input checking (public API only: host syncs allowed here) ----------------------------
    def _inputs(self, X: Any) -> Array:
        """Validate ``X`` and move it onto the device in the model's dtype."""
        if self.backend.owns(X):
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise ValueError(self._shape_message(tuple(X.shape)))
            X = self.xp.astype(X, self.backend.dtype) if X.dtype != self.backend.dtype else X
            if not bool(self.xp.all(self.xp.isfinite(X))):
                raise _nonfinite_error(to_numpy(X))
            return X
        host = np.asarray(to_numpy(X))
        if host.ndim == 1 and self.n_features == 1:
            host = host.reshape(-1, 1)
        if host.ndim != 2 or host.shape[1] != self.n_features:
            raise ValueError(self._shape_message(host.shape))
        if not np.issubdtype(host.dtype, np.number) or np.issubdtype(
            host.dtype, np.complexfloating
        ):
            raise ValueError(f"X must be real numbers, got dtype {host.dtype}.")
        if not np.all(np.isfinite(host)):
            raise _nonfinite_error(host)
        return self.backend.asarray(host)

    def _shape_message(self, shape: tuple[int, ...]) -> str:
        return (
            f"X has shape {shape}, but this network expects (n_samples, {self.n_features}). "
            "Reshape X or build the network with a matching input size."
        )

    def _targets(self, y: Any, n_samples: int) -> Array:
        """Validate ``y`` and return the ``(n, n_outputs)`` float target matrix on the device.

        Softmax/cross-entropy accepts integer labels ``(n,)`` in ``[0, n_outputs)`` (turned into
        one-hot rows on the device) or one-hot/probability rows ``(n, n_outputs)``.
        """
        host = np.asarray(to_numpy(y))
        k = self.n_outputs
        if host.shape[:1] != (n_samples,):
            raise ValueError(
                f"y has {host.shape[0] if host.ndim else 0} rows but X has {n_samples}."
            )
        if not np.issubdtype(host.dtype, np.number) and host.dtype != np.bool_:
            raise ValueError(
                f"y must be numeric (got dtype {host.dtype}); encode string labels as integers "
                "0..n_classes-1 first (e.g. sklearn.preprocessing.LabelEncoder)."
            )
        if not np.all(np.isfinite(host)):
            raise ValueError("y contains NaN or inf.")
        xp = self.xp
        if self.output.name == "softmax" and host.ndim == 1:
            if not np.all(host == np.round(host)):
                raise ValueError("Class labels must be integers 0..n_classes-1.")
            lo, hi = host.min(initial=0), host.max(initial=0)
            if lo < 0 or hi >= k:
                raise ValueError(
                    f"Labels out of range: found {int(lo)}..{int(hi)}, but the output layer has "
                    f"{k} units (valid labels 0..{k - 1}). Widen the output layer or re-encode y."
                )
            labels = self.backend.asarray(host.astype(np.int64), dtype=xp.int64)
            classes = xp.arange(k, dtype=xp.int64, device=self.backend.device)
            one_hot = xp.reshape(labels, (-1, 1)) == xp.reshape(classes, (1, -1))
            return xp.astype(one_hot, self.backend.dtype)
        if host.ndim == 1:
            host = host.reshape(-1, 1)
        if host.ndim != 2 or host.shape[1] != k:
            raise ValueError(
                f"y has shape {host.shape}, but the network has {k} outputs: give "
                f"(n,) labels{' ' if self.output.name == 'softmax' else ' or values '}"
                f"or an (n, {k}) array."
            )
        if self.loss_fn.name in ("binary_cross_entropy", "cross_entropy") and (
            host.min() < 0 or host.max() > 1
        ):
            raise ValueError(f"Targets for {self.loss_fn.name} must lie in [0, 1].")
        return self.backend.asarray(host.astype(np.float64))

    # -- the math ------------------------------------------------------------------------------
    def _logits(self, X: Array, training: bool = False) -> Array:
        h = X
        for layer in self.layers:
            h = layer.forward(h, training)
        return h

    def forward(self, X: Array, training: bool = False) -> Array:
        """Output activations for a device array ``X`` (no checks, no conversion)."""
        return self.output.forward(self.xp, self._logits(X, training))

    def _loss_and_grad(self, X: Array, T: Array, training: bool = False) -> Array:
        """Forward + backward on device arrays; fills ``layer.grads`` and returns the loss (0-d
        device array). No host sync."""
        xp, loss_fn, out = self.xp, self.loss_fn, self.output
        z = self._logits(X, training)
        a = out.forward(xp, z)
        if self._fused:
            loss = loss_fn.value_from_logits(xp, z, T)
            grad = loss_fn.grad_from_logits(xp, z, a, T)
        else:
            loss = loss_fn.value(xp, a, T)
            grad = out.backward(xp, z, a, loss_fn.grad(xp, a, T))
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            grad = self.layers[i].backward(grad, need_input_grad=i > 0)
        return loss

    def _loss_value(self, X: Array, T: Array) -> Array:
        xp = self.xp
        z = self._logits(X)
        if self._fused:
            return self.loss_fn.value_from_logits(xp, z, T)
        return self.loss_fn.value(xp, self.output.forward(xp, z), T)

    def _clear(self) -> None:
        for layer in self.layers:
            layer.clear_cache()

    # -- public API (NumPy in, NumPy out) -------------------------------------------------------
    def predict(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Outputs as a NumPy array: class probabilities for softmax/sigmoid, values otherwise.

        ``batch_size`` bounds device memory for large inputs (default: all at once).
        """
        Xd = self._inputs(X)
        n = Xd.shape[0]
        step = n if not batch_size else int(batch_size)
        parts = [
            to_numpy(self.forward(Xd[i : min(i + step, n), :])) for i in range(0, n, max(step, 1))
        ] or [np.zeros((0, self.n_outputs))]
        self._clear()
        return np.concatenate(parts, axis=0)

    def predict_classes(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Predicted class indices: argmax for softmax, ``p > 0.5`` for sigmoid."""
        probs = self.predict(X, batch_size)
        if self.output.name == "sigmoid":
            labels = (probs > 0.5).astype(np.int64)
            return labels[:, 0] if labels.shape[1] == 1 else labels
        return np.argmax(probs, axis=1)

    def loss(self, X: Any, y: Any) -> float:
        """The mean loss on ``(X, y)`` as a Python float."""
        Xd = self._inputs(X)
        value = self._loss_value(Xd, self._targets(y, Xd.shape[0]))
        self._clear()
        return self.backend.float(value)

    def gradients(self, X: Any, y: Any) -> list[np.ndarray]:
        """Gradients of :meth:`loss` as NumPy arrays, in the order of :meth:`get_weights`."""
        Xd = self._inputs(X)
        self._loss_and_grad(Xd, self._targets(y, Xd.shape[0]))
        grads = [np.array(to_numpy(layer.grads[name])) for layer, name in self.parameters()]
        self._clear()
        return grads

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` for classifiers, ``{"loss": ..., "r2": ...}`` else."""
        Xd = self._inputs(X)
        T = self._targets(y, Xd.shape[0])
        xp = self.xp
        z = self._logits(Xd)
        a = self.output.forward(xp, z)
        if self._fused:
            loss = self.loss_fn.value_from_logits(xp, z, T)
        else:
            loss = self.loss_fn.value(xp, a, T)
        result = {"loss": self.backend.float(loss)}
        result.update(self._metric(a, T))
        self._clear()
        return result

    def _metric(self, a: Array, T: Array) -> dict[str, float]:
        """Accuracy (classifiers) or R^2 (regressors) on device arrays; one host read."""
        xp = self.xp
        if self.output.name == "softmax":
            hits = xp.argmax(a, axis=1) == xp.argmax(T, axis=1)
            return {"accuracy": self.backend.float(xp.mean(xp.astype(hits, a.dtype)))}
        if self.output.name == "sigmoid":
            hits = (a > 0.5) == (T > 0.5)
            return {"accuracy": self.backend.float(xp.mean(xp.astype(hits, a.dtype)))}
        ss_res = xp.sum((T - a) ** 2, axis=0)
        ss_tot = xp.sum((T - xp.mean(T, axis=0, keepdims=True)) ** 2, axis=0)
        r2 = 1.0 - ss_res / xp.where(ss_tot > 0, ss_tot, 1.0)
        return {"r2": self.backend.float(xp.mean(r2))}

    def fit(
        self,
        X: Any,
        y: Any,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 0.01,
        shuffle: bool = True,
        verbose: int = 0,
    ) -> NN:
        """Plain mini-batch SGD on the mean loss.

        The data moves to the device once; batches are taken there with ``xp.take``. The shuffle
        order comes from the host RNG stream of ``seed``, so one seed gives the same trajectory
        on every backend. The loss is accumulated on the device and read once per epoch.
        """
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {epochs!r}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}.")
        xp, be = self.xp, self.backend
        Xd = self._inputs(X)
        T = self._targets(y, Xd.shape[0])
        n = Xd.shape[0]
        rng = host_rng(self.seed, STREAM_SHUFFLE)
        losses = []
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            idx_all = be.asarray(order, dtype=xp.int64)
            total = xp.zeros((), dtype=be.dtype, device=be.device)
            for start in range(0, n, batch_size):
                idx = idx_all[start : min(start + batch_size, n)]
                xb, tb = xp.take(Xd, idx, axis=0), xp.take(T, idx, axis=0)
                loss = self._loss_and_grad(xb, tb, training=True)
                total = total + loss * float(idx.shape[0])
                for layer, name in self.parameters():
                    layer.params[name] = layer.params[name] - lr * layer.grads[name]
            epoch_loss = be.float(total) / n
            losses.append(epoch_loss)
            if not np.isfinite(epoch_loss):
                self._clear()
                raise FloatingPointError(
                    f"Training diverged: the loss became non-finite in epoch {epoch + 1}. "
                    "Lower the learning rate or scale the inputs."
                )
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}  loss {epoch_loss:.6f}")
        self._clear()
        self.loss_curve_ = losses
        return self


def _nonfinite_error(host: np.ndarray) -> ValueError:
    row, col = np.argwhere(~np.isfinite(host))[0]
    return ValueError(
        f"X contains NaN or inf (first at row {row}, column {col}). Clean or impute the data first."
    )
