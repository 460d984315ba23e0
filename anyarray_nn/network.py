"""The network: a stack of layers, an output activation and a loss, on one backend."""

from __future__ import annotations

import copy as _copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import activations as _activations
from . import losses as _losses
from . import optimizers as _optimizers
from .backend import Backend, resolve, to_numpy
from .layers import Dense, Dropout, Layer
from .random import STREAM_INIT, host_rng, new_seed

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
        dtype: ``"float32"`` (the default, unless ``backend`` is a Backend object, whose dtype
            is then kept) or ``"float64"``.
        seed: seed of the host RNG streams (weights, shuffling). ``None`` draws one and stores it
            in ``self.seed`` so the run can be repeated.
        alpha: negative-side slope of ``leaky_relu`` / ``elu`` hidden layers (their defaults if
            ``None``: 0.01 and 1.0).
        dropout: inverted-dropout rate after each hidden layer (one rate, or one per hidden
            layer; 0 disables). Active in ``fit`` only.
        l1, l2: penalties ``l1 * sum|W|`` and ``l2 * sum W**2`` over the weights (never the
            biases), added to the loss that ``loss``, ``gradients`` and ``fit`` use.

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
        dtype: Any = None,
        seed: int | None = None,
        alpha: float | None = None,
        dropout: float | Sequence[float] = 0.0,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        for name, value in (("l1", l1), ("l2", l2)):
            if not (isinstance(value, float | int) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        self.backend: Backend = resolve(backend, device, dtype)
        self.seed = int(seed) if seed is not None else new_seed()
        self.output = _activations.get(output)
        self.loss_fn = _losses.get(loss, self.output.name)
        self.l1, self.l2 = float(l1), float(l2)
        self.layers: list[Layer] = self._make_layers(layers, activation, init, alpha, dropout)
        self._build()
        self._fused = self.loss_fn.fused_with == self.output.name
        #: Optimizer used by the last ``fit`` (kept so that a later ``fit`` continues it).
        self.optimizer: _optimizers.Optimizer | None = None
        #: Optimizer steps and epochs taken so far: they key dropout masks and shuffle orders,
        #: so that fit(3 epochs) + fit(2 epochs) equals fit(5 epochs), also across save/load.
        self.step_ = 0
        self.epochs_trained_ = 0
        self.history_: Any = None
        self.stop_training = False

    # -- construction ------------------------------------------------------------------------
    @staticmethod
    def _make_layers(
        spec: Sequence[int] | Sequence[Layer],
        activation: str | Sequence[str],
        init: str | None,
        alpha: float | None,
        dropout: float | Sequence[float] = 0.0,
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
        rates = [dropout] * n_hidden if isinstance(dropout, float | int) else list(dropout)
        if len(rates) != n_hidden:
            raise ValueError(
                f"dropout lists {len(rates)} rates but the network has {n_hidden} hidden layers."
            )
        kwargs = {} if alpha is None else {"alpha": alpha}
        layers: list[Layer] = []
        for i, (act, rate) in enumerate(zip(acts, rates, strict=True)):
            act_kwargs = kwargs if str(act).lower() in ("leaky_relu", "elu") else {}
            layers.append(Dense(int(spec[i + 1]), act, init=init, **act_kwargs))
            if rate:
                layers.append(Dropout(rate))
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
        for index, layer in enumerate(self.layers):
            width = layer.build(self.backend, rng, width)
            if isinstance(layer, Dropout):
                layer.seed, layer.layer_index = self.seed, index
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
            new.append(self.backend.asarray(w, copy=True))  # never alias the caller's arrays
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
        if self.optimizer is not None and self.optimizer.state_arrays():
            self.optimizer.load_state_arrays(self._optimizer_state_on(target), self.optimizer.t)
        self.backend = target
        return self

    def _optimizer_state_on(self, target: Backend) -> dict[str, list[Array]]:
        """Fresh copies of the optimizer's state arrays on ``target`` (through the host)."""
        return {
            key: [target.asarray(to_numpy(a), copy=True) for a in arrays]
            for key, arrays in self.optimizer.state_arrays().items()
        }

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
        clone.optimizer = None
        if self.optimizer is not None:
            clone.optimizer = _optimizers.from_config(self.optimizer.config())
            state = self._optimizer_state_on(target)
            if state:
                clone.optimizer.build(
                    target.xp, [layer.params[n] for layer, n in clone.parameters()]
                )
                clone.optimizer.load_state_arrays(state, self.optimizer.t)
            clone.optimizer.t = self.optimizer.t
        clone.history_ = _copy.deepcopy(self.history_)
        return clone

    # -- input checking (public API only: host syncs allowed here) ----------------------------
    def _inputs(self, X: Any) -> Array:
        """Validate ``X`` and move it onto the device in the model's dtype."""
        if self.backend.owns(X):
            if X.ndim == 1 and self.n_features == 1:
                X = self.xp.reshape(X, (-1, 1))
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise ValueError(self._shape_message(tuple(X.shape)))
            X = self.xp.astype(X, self.backend.dtype) if X.dtype != self.backend.dtype else X
            xp = self.xp
            # a finite sum proves every entry finite in one pass with no temporary; only an
            # inf/NaN sum (or an overflow of huge values) needs the entrywise check
            with np.errstate(over="ignore", invalid="ignore"):  # NumPy would warn on overflow
                finite = bool(xp.isfinite(xp.sum(X))) or bool(xp.all(xp.isfinite(X)))
            if not finite:
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
        if not _all_finite(host):
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

    def _penalty(self, with_grad: bool) -> Array | float:
        """``l1 * sum|W| + l2 * sum W**2`` over Dense weights; adds its gradient to ``grads``."""
        if not (self.l1 or self.l2):
            return 0.0
        xp, total = self.xp, 0.0
        for layer in self.layers:
            if not isinstance(layer, Dense):
                continue
            W = layer.params["W"]
            if self.l2:
                total = total + self.l2 * xp.sum(W * W)
                if with_grad:
                    layer.grads["W"] = layer.grads["W"] + (2.0 * self.l2) * W
            if self.l1:
                total = total + self.l1 * xp.sum(xp.abs(W))
                if with_grad:
                    layer.grads["W"] = layer.grads["W"] + self.l1 * xp.sign(W)
        return total

    def _loss_and_grad(self, X: Array, T: Array, training: bool = False) -> tuple[Array, Array]:
        """Forward + backward on device arrays; fills ``layer.grads``.

        Returns the objective (0-d device array: mean loss plus penalties) and the output
        activations. No host sync.
        """
        xp, loss_fn, out = self.xp, self.loss_fn, self.output
        z = self._logits(X, training)
        if self._fused:
            loss, grad, a = loss_fn.fused(xp, z, T)
        else:
            a = out.forward(xp, z)
            loss = loss_fn.value(xp, a, T)
            grad = out.backward(xp, z, a, loss_fn.grad(xp, a, T))
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            grad = self.layers[i].backward(grad, need_input_grad=i > 0)
        return loss + self._penalty(with_grad=True), a

    def _loss_value(self, X: Array, T: Array) -> tuple[Array, Array]:
        """Objective (mean loss plus penalties) and output activations, inference mode."""
        xp = self.xp
        z = self._logits(X)
        a = self.output.forward(xp, z)
        if self._fused:
            loss = self.loss_fn.value_from_logits(xp, z, T)
        else:
            loss = self.loss_fn.value(xp, a, T)
        return loss + self._penalty(with_grad=False), a

    def _clear(self) -> None:
        for layer in self.layers:
            layer.clear_cache()

    # -- public API (NumPy in, NumPy out) -------------------------------------------------------
    def predict(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Outputs as a NumPy array: class probabilities for softmax/sigmoid, values otherwise.

        ``batch_size`` bounds device memory for large inputs (default: all at once). Host data
        (NumPy, ``np.memmap``) is then moved to the device one batch at a time, so inputs larger
        than device memory can be predicted.
        """
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")
        on_device = self.backend.owns(X)
        rows = X if on_device else np.asarray(X) if not isinstance(X, np.ndarray) else X
        n = rows.shape[0] if getattr(rows, "ndim", 0) >= 1 else 0
        step = max(batch_size or n, 1)
        parts = []
        for i in range(0, n, step):
            stop = min(i + step, n)
            chunk = rows if (i, stop) == (0, n) else rows[i:stop, ...]
            parts.append(to_numpy(self.forward(self._inputs(chunk))))
        if not parts:
            self._inputs(rows)  # the usual shape errors for empty or malformed input
            parts = [np.zeros((0, self.n_outputs), dtype=self.backend.dtype_name)]
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
        """The objective on ``(X, y)`` as a Python float: the mean loss plus any L1/L2 penalty
        (dropout off)."""
        Xd = self._inputs(X)
        value, _ = self._loss_value(Xd, self._targets(y, Xd.shape[0]))
        self._clear()
        return self.backend.float(value)

    def gradients(self, X: Any, y: Any) -> list[np.ndarray]:
        """Gradients of :meth:`loss` as NumPy arrays, in the order of :meth:`get_weights`
        (penalties included, dropout off)."""
        Xd = self._inputs(X)
        self._loss_and_grad(Xd, self._targets(y, Xd.shape[0]))
        grads = [np.array(to_numpy(layer.grads[name])) for layer, name in self.parameters()]
        self._clear()
        return grads

    def evaluate(self, X: Any, y: Any, batch_size: int | None = None) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` for classifiers, ``{"loss": ..., "r2": ...}`` else.

        ``loss`` is the same objective as :meth:`loss` (penalties included).
        """
        from .training import evaluate_arrays

        Xd = self._inputs(X)
        result = evaluate_arrays(self, Xd, self._targets(y, Xd.shape[0]), batch_size)
        self._clear()
        return result

    def fit(
        self,
        X: Any,
        y: Any,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float | None = None,
        optimizer: str | _optimizers.Optimizer | None = None,
        shuffle: bool = True,
        validation_data: tuple[Any, Any] | None = None,
        validation_split: float = 0.0,
        metrics: Sequence[str] | None = None,
        callbacks: Sequence[Any] = (),
        verbose: int = 0,
        schedule: Any = None,
        clip_norm: float | None = None,
        stream: bool | None = None,
    ) -> Any:
        """Train with shuffled mini-batches; returns a :class:`~anyarray_nn.training.History`
        (also kept as ``self.history_``).

        Args:
            X, y: training data (NumPy, lists, or arrays of any backend; see :meth:`loss`).
            epochs: passes over the data. A later ``fit`` continues where this one stopped
                (same optimizer and state, next shuffle orders and dropout masks).
            batch_size: rows per step (the last batch may be smaller).
            lr: learning rate; sets it on whatever optimizer is in use.
            optimizer: ``"sgd"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"`` or an
                :mod:`~anyarray_nn.optimizers` object. ``None`` keeps the previous one (plain SGD
                with lr 0.01 the first time).
            shuffle: reshuffle every epoch (the order is drawn from the host RNG by seed and
                epoch number, so it is the same on every backend).
            validation_data: ``(X_val, y_val)`` evaluated after each epoch (``val_*`` logs).
            validation_split: fraction of ``(X, y)`` held out for validation instead (a
                stratified split for class labels, seeded by ``seed``). This copies ``X``
                into memory; with a memmap, pass ``validation_data`` instead.
            metrics: ``["accuracy"]`` (classifiers) or ``["r2"]`` (regressors) by default;
                ``[]`` for none. Accumulated on the device during the epoch.
            callbacks: objects with ``on_epoch_end(net, epoch, logs)``, e.g.
                :class:`~anyarray_nn.callbacks.EarlyStopping`,
                :class:`~anyarray_nn.callbacks.ModelCheckpoint`.
            verbose: 0 silent, 1 a tqdm progress bar per epoch (one line per epoch without
                tqdm), 2 one line per epoch.
            schedule: learning-rate schedule (name or :mod:`~anyarray_nn.schedules` object),
                stepped after every epoch.
            clip_norm: clip gradients to this global 2-norm (on the device, no host sync).
            stream: keep ``X`` on the host and copy each batch to the device (default: only
                when ``X`` is a :class:`numpy.memmap`). Same numbers either way.

        Raises:
            TrainingDivergedError: the loss became NaN/inf; the epoch is named and the net keeps
                the weights of the last finite epoch.
        """
        from .training import fit

        return fit(
            self,
            X,
            y,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            shuffle=shuffle,
            validation_data=validation_data,
            validation_split=validation_split,
            metrics=metrics,
            callbacks=callbacks,
            verbose=verbose,
            schedule=schedule,
            clip_norm=clip_norm,
            stream=stream,
        )

    def save(self, path: Any, include_optimizer: bool = True) -> None:
        """Write architecture, weights and (optionally) optimizer state to ``path`` atomically.

        See :func:`anyarray_nn.io.save`.
        """
        from .io import save

        save(self, path, include_optimizer=include_optimizer)


def _all_finite(host: np.ndarray) -> bool:
    """True if no entry is NaN or inf. A finite float64 sum proves it in one pass without a
    temporary as large as the data (NaN/inf always poison the sum); only when the sum is not
    finite, which huge finite values can also cause, are the entries checked one by one."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(host, axis=None, dtype=np.float64)):
            return True
    return bool(np.all(np.isfinite(host)))


def _nonfinite_error(host: np.ndarray) -> ValueError:
    row, col = np.argwhere(~np.isfinite(host))[0]
    return ValueError(
        f"X contains NaN or inf (first at row {row}, column {col}). Clean or impute the data first."
    )
