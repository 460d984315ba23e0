"""The network: a stack of layers, an output activation and a loss, on one backend.

:class:`NN` has two faces:

- the **public API** (NumPy or any array library in, NumPy out): ``fit``, ``predict``,
  ``evaluate``, ``loss``, ``gradients``, ``get_weights``/``set_weights``, ``to``, ``copy``,
  ``save``/``load``, ``config``/``from_config``;
- a small **device-level interface** for the training loop (:mod:`anyarray_nn.training`) and
  data-parallel training (:mod:`anyarray_nn.distributed`): :meth:`NN.check_inputs` and
  :meth:`NN.check_targets` validate data and move it to the device once; :meth:`NN.backprop`
  is one forward and backward pass on device arrays (no host sync), returning the objective,
  the outputs and the gradients; :meth:`NN.objective` is the same without gradients. Like
  Thinc's ``begin_update``, each call has its own :class:`~anyarray_nn.layers.Pass`, so the
  network holds no intermediate arrays between calls.
"""

from __future__ import annotations

import copy as _copy
import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import activations as _activations
from . import inputs as _inputs
from . import io as _io
from . import lbfgs as _lbfgs
from . import losses as _losses
from . import optimizers as _optimizers
from . import training as _training
from .backend import Backend, BackendUnavailableError, backend_status, resolve, to_numpy
from .layers import Dense, Dropout, Layer, Pass
from .layers import registry as _layer_registry
from .random import STREAM_INIT, host_rng, new_seed
from .sparse import SPARSE_BATCH, dense_rows, is_sparse
from .validation import Interval

Array = Any
PENALTY = Interval("real", 0.0)


class NN:
    """A multi-layer perceptron whose backprop is written once against the Array API standard.

    Args:
        layers: either a list of sizes ``[n_inputs, hidden..., n_outputs]`` or a list of
            :class:`~anyarray_nn.layers.Layer` objects (the first ``Dense`` needs ``fan_in=``).
        activation: hidden-layer activation when ``layers`` is a list of sizes: one name for all,
            or one per hidden layer (any registered activation, or an Activation object;
            default ``"relu"``). Softmax is an output activation only.
        output: output activation: ``"softmax"`` (default), ``"sigmoid"`` or ``"identity"``.
        loss: ``"cross_entropy"``, ``"binary_cross_entropy"``, ``"mse"`` (or any registered
            loss) or ``None`` to pick the natural loss for ``output``. Softmax + cross-entropy
            and sigmoid + BCE are fused.
        init: weight initializer for all layers (default: per activation, He or Glorot).
        backend: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"``, ``"auto"``, an
            Array API namespace, or a :class:`~anyarray_nn.backend.Backend`.
        device: device on that backend (see :func:`anyarray_nn.backend.resolve`).
        dtype: ``"float32"`` (the default, unless ``backend`` is a Backend object, whose dtype
            is then kept) or ``"float64"``.
        seed: seed of the host RNG streams (weights, shuffling). ``None`` draws one and stores it
            in ``self.seed`` so the run can be repeated.
        alpha: negative-side slope of hidden activations that take one (``leaky_relu``,
            ``elu``; their defaults if ``None``: 0.01 and 1.0).
        dropout: inverted-dropout rate after each hidden layer (one rate, or one per hidden
            layer; 0 disables). Active in ``fit`` only.

    ``activation``, ``init``, ``alpha`` and ``dropout`` describe the layers built from a list of
    sizes; with a list of Layer objects they are refused (set them on the layers).
        l1, l2: penalties ``l1 * sum|W|`` and ``l2 * sum W**2`` over the weights (never the
            biases), added to the loss that ``loss``, ``gradients`` and ``fit`` use.

    The loss is the mean over samples (and over outputs for MSE/BCE), as with PyTorch's
    ``reduction="mean"``.
    """

    def __init__(
        self,
        layers: Sequence[int] | Sequence[Layer],
        activation: str | Sequence[str] | None = None,
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
        self.l1, self.l2 = PENALTY.check("l1", l1), PENALTY.check("l2", l2)
        self.backend: Backend = resolve(backend, device, dtype)
        self.seed = int(seed) if seed is not None else new_seed()
        self.output = _activations.get(output)
        self.loss_fn = _losses.get(loss, self.output.name)
        self.layers: list[Layer] = _make_layers(layers, activation, init, alpha, dropout)
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
        #: The communicator of the last ``fit`` (``fit(comm=...)``; one process otherwise):
        #: its counters say how many allreduce calls training made. Not pickled.
        self.comm_: Any = None
        #: Free-form JSON-able information saved with the model (e.g. how it was trained: the
        #: command line records the dataset, split and class labels here).
        self.metadata: dict[str, Any] = {}

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        first = self.layers[0]
        fan_in = getattr(first, "fan_in", None)
        if fan_in is None:
            raise ValueError("The first layer needs its input width: Dense(units, fan_in=...).")
        self.n_features = int(fan_in)
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        for layer in dense[:-1]:
            if layer.activation.name == "softmax":
                raise ValueError(
                    "softmax is an output activation (rows that sum to 1), not a hidden one: "
                    "a hidden softmax layer trains to chance. Use relu, tanh, ... for hidden "
                    "layers and output='softmax' for the output."
                )
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

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["comm_"] = None  # an MPI communicator belongs to its process
        return state

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

    def parameter_arrays(self) -> list[Array]:
        """The live parameter arrays (device), in the order of :meth:`parameters`."""
        return [layer.params[name] for layer, name in self.parameters()]

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
        return [np.array(to_numpy(p)) for p in self.parameter_arrays()]

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
        if self.optimizer is not None:
            self.optimizer.load_state_dict(self.optimizer.state_dict(), target)
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
        clone = _copy.copy(self)
        clone.layers = [_copy.copy(layer) for layer in self.layers]
        for twin in clone.layers:
            twin.move(target)  # fresh arrays, never shared with the original
        clone.backend = target
        clone.optimizer = None if self.optimizer is None else self.optimizer.clone(target)
        clone.history_ = _copy.deepcopy(self.history_)
        clone.metadata = _copy.deepcopy(self.metadata)
        return clone

    # -- the device-level interface (see the module docstring) ----------------------------------
    def check_inputs(self, X: Any) -> Array:
        """Validate ``X`` and move it onto the device in the model's dtype, by the rules of
        :mod:`anyarray_nn.inputs` (the same on every backend; a public-API boundary, where
        host reads are allowed).

        A ``scipy.sparse`` matrix is validated and returned as a CSR matrix that stays on the
        host: ``fit``, ``predict`` and ``evaluate`` densify one batch of its rows at a time on
        the way to the device (see :func:`dense_rows`), never the whole matrix."""
        if is_sparse(X):
            return self._check_sparse_inputs(X)
        return _inputs.features_to_device(self.backend, X, self.n_features)

    def _check_sparse_inputs(self, X: Any) -> Any:
        """A validated CSR copy of a ``scipy.sparse`` ``X`` (host): shape, real dtype, finite
        stored values. Its values keep their dtype until a batch is densified."""
        X = X.tocsr()
        self.check_shape(tuple(X.shape))
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"X must be real numbers, got dtype {X.dtype}.")
        if X.dtype.kind == "f" and not _inputs.all_finite(X.data):
            first = int(np.argmax(~np.isfinite(X.data)))
            row = int(np.searchsorted(X.indptr, first, side="right")) - 1
            raise ValueError(
                f"X contains NaN or inf (first in row {row}). Clean or impute the data first."
            )
        return X

    def check_weights(self, sample_weight: Any, n_samples: int) -> Array | None:
        """Validate per-sample weights and move them onto the device as an ``(n,)`` array in
        the model's dtype (``None`` stays ``None``: every sample counts once).

        Weights must be finite and non-negative with a positive sum. The loss becomes the
        weighted mean ``sum(w l) / sum(w)`` and the metrics weighted ones."""
        if sample_weight is None:
            return None
        w = np.asarray(to_numpy(sample_weight))
        if w.ndim == 0:
            w = np.full(n_samples, float(w))
        if w.shape != (n_samples,):
            raise ValueError(
                f"sample_weight must have shape ({n_samples},) (one weight per row of X), "
                f"got {w.shape}."
            )
        if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
            raise ValueError(f"sample_weight must be real numbers, got dtype {w.dtype}.")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.sum(w) > 0:
            raise ValueError(
                "sample_weight must be finite and non-negative, with a positive sum; drop the "
                "rows it would exclude instead of weighting them all 0."
            )
        return self.backend.asarray(_inputs.weights_in_dtype(w, self.backend.dtype_name))

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise the usual error unless ``shape`` is ``(n_samples, n_features)``."""
        _inputs.check_shape(tuple(shape), self.n_features)

    def check_targets(self, y: Any, n_samples: int) -> Array:
        """Validate ``y`` and return the ``(n, n_outputs)`` float target matrix on the device.

        Softmax/cross-entropy accepts integer labels ``(n,)`` in ``[0, n_outputs)`` (turned into
        one-hot rows on the device) or one-hot/probability rows ``(n, n_outputs)``.
        """
        _inputs.require_rows(n_samples)
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
        if host.dtype.kind == "f" and not _inputs.all_finite(host):
            raise _inputs.nonfinite_error(host, "y")
        if self.output.name == "softmax" and host.ndim == 1:
            return self._one_hot(host)
        k = self.n_outputs
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

    def _one_hot(self, labels: np.ndarray) -> Array:
        """Integer labels (host) -> one-hot rows on the device (built there by broadcasting)."""
        k, xp = self.n_outputs, self.xp
        if not np.all(labels == np.round(labels)):
            raise ValueError("Class labels must be integers 0..n_classes-1.")
        lo, hi = labels.min(initial=0), labels.max(initial=0)
        if lo < 0 or hi >= k:
            raise ValueError(
                f"Labels out of range: found {int(lo)}..{int(hi)}, but the output layer has "
                f"{k} units (valid labels 0..{k - 1}). Widen the output layer or re-encode y."
            )
        device_labels = self.backend.asarray(labels.astype(np.int64), dtype=xp.int64)
        classes = xp.arange(k, dtype=xp.int64, device=self.backend.device)
        one_hot = xp.reshape(device_labels, (-1, 1)) == xp.reshape(classes, (1, -1))
        return xp.astype(one_hot, self.backend.dtype)

    def logits(self, X: Array, ctx: Pass | None = None) -> Array:
        """Pre-activations of the output layer for a device array ``X``."""
        ctx = Pass(record=False) if ctx is None else ctx
        h = X
        for layer in self.layers:
            h = layer.forward(h, ctx)
        return h

    def forward(self, X: Array, ctx: Pass | None = None) -> Array:
        """Output activations for a device array ``X`` (no checks, no conversion)."""
        return self.output.forward(self.xp, self.logits(X, ctx))

    def penalty(self, grads: dict[Layer, dict[str, Array]] | None = None) -> Array | float:
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
                if grads is not None:
                    grads[layer]["W"] = grads[layer]["W"] + (2.0 * self.l2) * W
            if self.l1:
                total = total + self.l1 * xp.sum(xp.abs(W))
                if grads is not None:
                    grads[layer]["W"] = grads[layer]["W"] + self.l1 * xp.sign(W)
        return total

    def backprop(
        self, X: Array, T: Array, ctx: Pass | None = None, weights: Array | None = None
    ) -> tuple[Array, Array, list[Array]]:
        """One forward and backward pass on device arrays, with no host sync.

        ``ctx`` carries the training flag and the dropout key (default: a fresh inference-mode
        pass). ``weights`` (an ``(n,)`` device array, see :meth:`check_weights`) makes the loss
        the weighted mean ``sum(w l) / sum(w)``. Returns the objective (a 0-d device array:
        mean loss plus penalties), the output activations and the gradients of the objective in
        the order of :meth:`parameters`.
        """
        ctx = Pass() if ctx is None else ctx
        z = self.logits(X, ctx)
        if weights is None:
            loss, grad, a = self._loss_and_grad(z, T)
        else:
            loss, grad, a = self._weighted_loss_and_grad(z, T, weights)
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            grad = self.layers[i].backward(grad, ctx, need_input_grad=i > 0)
        objective = loss + self.penalty(ctx.grads)
        return objective, a, [ctx.grads[layer][name] for layer, name in self.parameters()]

    def _loss_and_grad(self, z: Array, T: Array) -> tuple[Array, Array, Array]:
        """``(mean loss, dL/dz, output activations)`` from the logits."""
        xp, loss_fn, out = self.xp, self.loss_fn, self.output
        if self._fused:
            return loss_fn.fused(xp, z, T)
        a = out.forward(xp, z)
        return loss_fn.value(xp, a, T), out.backward(xp, z, a, loss_fn.grad(xp, a, T)), a

    def _weighted_loss_and_grad(
        self, z: Array, T: Array, weights: Array
    ) -> tuple[Array, Array, Array]:
        """:meth:`_loss_and_grad` for the weighted mean loss: the per-sample losses averaged
        with ``weights``, and the mean loss's gradient rows scaled by ``n w / sum(w)``."""
        xp, loss_fn, out = self.xp, self.loss_fn, self.output
        factors = _losses.row_factors(xp, weights)
        if self._fused:
            _, grad, a = loss_fn.fused(xp, z, T)
            rows = loss_fn.row_values_from_logits(xp, z, T)
            grad = grad * factors
        else:
            a = out.forward(xp, z)
            rows = loss_fn.row_values(xp, a, T)
            grad = out.backward(xp, z, a, loss_fn.grad(xp, a, T) * factors)
        return _losses.weighted_mean(xp, rows, weights), grad, a

    def objective(self, X: Array, T: Array, weights: Array | None = None) -> tuple[Array, Array]:
        """The objective (mean loss plus penalties, a 0-d device array) and the output
        activations, in inference mode; ``weights`` as in :meth:`backprop`."""
        xp, loss_fn = self.xp, self.loss_fn
        z = self.logits(X)
        a = self.output.forward(xp, z)
        if weights is not None:
            if self._fused:
                rows = loss_fn.row_values_from_logits(xp, z, T)
            else:
                rows = loss_fn.row_values(xp, a, T)
            loss = _losses.weighted_mean(xp, rows, weights)
        elif self._fused:
            loss = loss_fn.value_from_logits(xp, z, T)
        else:
            loss = loss_fn.value(xp, a, T)
        return loss + self.penalty(), a

    # -- public API (NumPy in, NumPy out) -------------------------------------------------------
    def predict(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Outputs as a NumPy array: class probabilities for softmax/sigmoid, values otherwise.

        ``batch_size`` bounds device memory for large inputs (default: all at once). Host data
        (NumPy, ``np.memmap``) is then moved to the device one batch at a time, so inputs larger
        than device memory can be predicted.
        """
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")
        if is_sparse(X):
            return self._predict_sparse(X, batch_size)
        if self.backend.owns(X) and not isinstance(X, np.ndarray):
            rows = X
        else:  # host rows (a memmap stays a memmap: batches are moved one at a time)
            rows = _inputs.host_rows(X)
        n = rows.shape[0] if getattr(rows, "ndim", 0) >= 1 else 0
        step = max(batch_size or n, 1)
        parts = []
        for i in range(0, n, step):
            stop = min(i + step, n)
            chunk = rows if (i, stop) == (0, n) else rows[i:stop, ...]
            parts.append(to_numpy(self.forward(self.check_inputs(chunk))))
        if not parts:
            self.check_inputs(rows)  # the usual shape errors for empty or malformed input
            parts = [np.zeros((0, self.n_outputs), dtype=self.backend.dtype_name)]
        return np.concatenate(parts, axis=0)

    def _predict_sparse(self, X: Any, batch_size: int | None) -> np.ndarray:
        """:meth:`predict` for a ``scipy.sparse`` ``X``: one densified batch on the device at a
        time (``SPARSE_BATCH`` rows unless ``batch_size`` says otherwise)."""
        X = self.check_inputs(X)
        n, step = X.shape[0], batch_size or SPARSE_BATCH
        parts = [
            to_numpy(self.forward(dense_rows(self, X, i, min(i + step, n))))
            for i in range(0, n, step)
        ]
        if not parts:
            return np.zeros((0, self.n_outputs), dtype=self.backend.dtype_name)
        return np.concatenate(parts, axis=0)

    def predict_classes(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Predicted class indices: argmax for softmax, ``p > 0.5`` for sigmoid."""
        probs = self.predict(X, batch_size)
        if self.output.name == "sigmoid":
            labels = (probs > 0.5).astype(np.int64)
            return labels[:, 0] if labels.shape[1] == 1 else labels
        return np.argmax(probs, axis=1)

    def loss(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The objective on ``(X, y)`` as a Python float: the mean loss (weighted by
        ``sample_weight`` if given) plus any L1/L2 penalty (dropout off)."""
        Xd = self._dense_inputs(X, "loss")
        n = Xd.shape[0]
        T, w = self.check_targets(y, n), self.check_weights(sample_weight, n)
        value, _ = self.objective(Xd, T, w)
        return self.backend.float(value)

    def gradients(self, X: Any, y: Any, sample_weight: Any = None) -> list[np.ndarray]:
        """Gradients of :meth:`loss` as NumPy arrays, in the order of :meth:`get_weights`
        (penalties included, dropout off). A pure function of the weights and the data."""
        Xd = self._dense_inputs(X, "gradients")
        n = Xd.shape[0]
        T, w = self.check_targets(y, n), self.check_weights(sample_weight, n)
        _, _, grads = self.backprop(Xd, T, None, w)
        return [np.array(to_numpy(g)) for g in grads]

    def _dense_inputs(self, X: Any, what: str) -> Array:
        if is_sparse(X):
            raise ValueError(
                f"NN.{what} takes dense X: pass X.toarray(). (fit, predict and evaluate take "
                "scipy.sparse X and densify one batch at a time.)"
            )
        return self.check_inputs(X)

    def evaluate(
        self, X: Any, y: Any, batch_size: int | None = None, sample_weight: Any = None
    ) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` for classifiers, ``{"loss": ..., "r2": ...}`` else.

        ``loss`` is the same objective as :meth:`loss` (penalties included); with
        ``sample_weight`` the loss and the metric are weighted means. ``X`` may be a
        ``scipy.sparse`` matrix (evaluated ``batch_size`` rows at a time).
        """
        Xd = self.check_inputs(X)
        n = Xd.shape[0]
        T, w = self.check_targets(y, n), self.check_weights(sample_weight, n)
        return _training.evaluate_arrays(self, Xd, T, batch_size, weights=w)

    #: Training: see :func:`anyarray_nn.training.fit` (its signature and docs are this method's).
    fit = _training.fit
    #: Full-batch L-BFGS training: see :func:`anyarray_nn.lbfgs.fit_lbfgs`.
    fit_lbfgs = _lbfgs.fit_lbfgs

    # -- description, saving and loading ------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The architecture as JSON-able data: layers (type and config), output activation,
        loss, penalties, seed, dtype, backend and device. :meth:`from_config` rebuilds it."""
        for part, obj in (("output activation", self.output), ("loss", self.loss_fn)):
            _require_registered(part, obj)
        for layer in self.layers:
            _require_registered("layer", layer)
            if isinstance(layer, Dense):
                _require_registered("activation", layer.activation)
        return {
            "layers": [
                {"type": layer.name, "config": _without_name(layer.config())}
                for layer in self.layers
            ],
            "output": self.output.spec(),
            "loss": self.loss_fn.spec(),
            "l1": self.l1,
            "l2": self.l2,
            "seed": self.seed,
            "dtype": self.backend.dtype_name,
            "backend": self.backend.name,
            "device": self.backend.device_name,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], backend: Any = None, device: Any = None, dtype: Any = None
    ) -> NN:
        """A fresh network from :meth:`config` output (only registered components are built).

        ``backend``, ``device`` and ``dtype`` default to the ones in ``config``.
        """
        layers = [
            _layer_registry.from_config({**spec["config"], "name": spec["type"]})
            for spec in config["layers"]
        ]
        return cls(
            layers,
            output=config["output"],
            loss=config["loss"],
            backend=config["backend"] if backend is None else backend,
            device=config.get("device") if backend is None and device is None else device,
            dtype=dtype or config["dtype"],
            seed=config["seed"],
            l1=config["l1"],
            l2=config["l2"],
        )

    def save(self, path: str | os.PathLike[str], include_optimizer: bool = True) -> None:
        """Write architecture, weights and (optionally) optimizer state to exactly ``path``,
        atomically (see :mod:`anyarray_nn.io` for the format): ``*.safetensors`` or ``*.npz``.

        Raises:
            ValueError: another extension, an unregistered component, or non-finite weights
                (nothing is written then; an existing file at ``path`` is left as it was).
        """
        _io.format_for(path)  # a wrong extension fails before any work
        tensors = dict(zip(self.parameter_names(), self.get_weights(), strict=True))
        for name, array in tensors.items():
            if not np.all(np.isfinite(array)):
                raise ValueError(
                    f"{name} contains NaN or inf: refusing to write a model that load() would "
                    f"reject ({str(path)!r} is left as it was). Train again from finite weights."
                )
        opt = self.optimizer if include_optimizer else None
        opt_meta = None
        if opt is not None:
            _require_registered("optimizer", opt)
            state = opt.state_dict()
            for key, arrays in state["state"].items():
                for i, array in enumerate(arrays):
                    tensors[f"optimizer.{key}.{i}"] = np.array(to_numpy(array))
            opt_meta = {
                "config": opt.config(),
                "t": state["t"],
                "state": {k: len(v) for k, v in state["state"].items()},
            }
        meta = {
            "model": self.config(),
            "training": {"step": self.step_, "epochs_trained": self.epochs_trained_},
            "optimizer": opt_meta,
            "tensors": self.parameter_names(),
            "metadata": self.metadata,
        }
        _io.write(path, tensors, meta)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        backend: str | Any | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> NN:
        """Rebuild a network saved by :meth:`save` (on any backend) onto any backend.

        Args:
            path: the file.
            backend: where to put it; ``None`` means the backend and device it was saved from
                when usable here; else, with a warning, that backend on its default device
                (a model saved on torch's GPU loads on torch's CPU), or ``"auto"``.
            device: device on that backend (default: the saved one when the backend is the same).
            dtype: ``"float32"``/``"float64"``; default the saved dtype.

        Raises:
            ModelFileError: truncated, corrupted, foreign or newer-version files.
        """
        path = Path(path)
        meta, tensors = _io.read(path)
        try:
            model = meta["model"]
            _check_declared_shapes(model["layers"], tensors, str(path))
            if backend is None:
                backend, device = _saved_or_fallback(model, device, str(path))
            net = cls.from_config(model, backend, device, dtype)
            net._load_state(meta, tensors, str(path))
        except _io.ModelFileError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise _io.ModelFileError(
                f"{str(path)!r} has inconsistent metadata or tensors ({type(e).__name__}: {e})."
            ) from e
        return net

    def _load_state(self, meta: dict[str, Any], tensors: dict[str, np.ndarray], path: str) -> None:
        """Weights, counters and optimizer state read from a model file."""
        names = self.parameter_names()
        if names != meta["tensors"] or any(name not in tensors for name in names):
            raise _io.ModelFileError(f"{path!r}: its tensors do not match its architecture.")
        self.set_weights([tensors[name] for name in names])
        self.metadata = dict(meta.get("metadata") or {})
        self.step_ = int(meta["training"]["step"])
        self.epochs_trained_ = int(meta["training"]["epochs_trained"])
        opt_meta = meta.get("optimizer")
        if opt_meta:
            opt = _optimizers.from_config(opt_meta["config"])
            opt.build(self.xp, self.parameter_arrays())
            state = {
                key: [tensors[f"optimizer.{key}.{i}"] for i in range(count)]
                for key, count in opt_meta["state"].items()
            }
            opt.load_state_dict({"t": int(opt_meta["t"]), "state": state}, self.backend)
            self.optimizer = opt


def _saved_or_fallback(model: dict[str, Any], device: Any, path: str) -> tuple[Any, Any]:
    """Where ``load(path)`` puts a model by default: the backend and device it was saved from;
    when those are not usable here, that backend's default device, else ``"auto"``."""
    saved, saved_device = model["backend"], model.get("device") if device is None else device
    if backend_status().get(saved, "unknown") is None:
        try:
            resolve(saved, saved_device, model.get("dtype"))
            return saved, saved_device
        except BackendUnavailableError:  # e.g. saved on a GPU this machine lacks
            fallback, where = (saved, None), f"{saved} on its default device"
    else:
        fallback, where = ("auto", None), "backend='auto'"
    warnings.warn(
        f"{path!r} was saved from {saved} on device {saved_device!r}, which is not usable "
        f"here; loading it with {where}.",
        RuntimeWarning,
        stacklevel=4,
    )
    return fallback


def _check_declared_shapes(
    layers: list[dict[str, Any]], tensors: dict[str, np.ndarray], path: str
) -> None:
    """Compare every Dense layer's declared ``fan_in``/``units`` with its stored tensors before
    anything is built, so a file claiming a huge layer is refused without allocating it.

    Parameters are numbered by parametrised layer (``W1, b1, W2, ...``); a layer type's
    ``param_names`` tell without building it whether it has any.
    """
    k = 0
    for spec in layers:
        kind = _layer_registry.lookup(spec["type"])
        if not kind.param_names:
            continue
        k += 1
        if kind is not Dense:
            continue
        config = spec["config"]
        declared = {f"W{k}": (config.get("fan_in"), config["units"]), f"b{k}": (config["units"],)}
        for name, shape in declared.items():
            stored = tensors.get(name)
            if stored is None or tuple(stored.shape) != shape:
                found = "missing" if stored is None else f"stored as {tuple(stored.shape)}"
                raise _io.ModelFileError(
                    f"{path!r}: layer {k} declares {name} of shape {shape} but it is {found} "
                    "(an inconsistent or tampered file; nothing was built)."
                )


def _make_layers(
    spec: Sequence[int] | Sequence[Layer],
    activation: str | Sequence[str] | None,
    init: str | None,
    alpha: float | None,
    dropout: float | Sequence[float] = 0.0,
) -> list[Layer]:
    """The layers of ``NN(sizes, ...)``: Dense (and Dropout) per hidden layer, a linear output."""
    spec = list(spec)
    if spec and all(isinstance(s, Layer) for s in spec):
        given = {"activation": activation, "init": init, "alpha": alpha}
        given = [name for name, value in given.items() if value is not None]
        given += ["dropout"] if _any_rate(dropout) else []
        if given:
            raise ValueError(
                f"NN({', '.join(f'{n}=' for n in given)}...) applies to a list of sizes; with a "
                "list of Layer objects, set it on the layers instead: "
                "Dense(units, activation, init=..., alpha=...) and Dropout(rate)."
            )
        return spec
    if len(spec) < 2 or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0 for s in spec
    ):
        raise ValueError(
            "layers must be a list of at least two positive ints, e.g. [784, 128, 10] "
            f"(inputs, hidden..., outputs), or a list of Layer objects; got {spec!r}."
        )
    n_hidden = len(spec) - 2
    activation = "relu" if activation is None else activation
    acts = [activation] * n_hidden if _is_single(activation) else list(activation)
    if len(acts) != n_hidden:
        raise ValueError(
            f"activation lists {len(acts)} names but the network has {n_hidden} hidden layers."
        )
    rates = [dropout] * n_hidden if isinstance(dropout, numbers.Real) else list(dropout)
    if len(rates) != n_hidden:
        raise ValueError(
            f"dropout lists {len(rates)} rates but the network has {n_hidden} hidden layers."
        )
    layers: list[Layer] = []
    for i, (act, rate) in enumerate(zip(acts, rates, strict=True)):
        layers.append(Dense(int(spec[i + 1]), _hidden_activation(act, alpha), init=init))
        if rate:
            layers.append(Dropout(rate))
    # The last Dense is linear: the output activation is applied by the network (so that
    # softmax/sigmoid can be fused with their loss).
    layers.append(Dense(int(spec[-1]), None, init=init or "glorot_uniform"))
    layers[0].fan_in = int(spec[0])
    return layers


def _any_rate(dropout: Any) -> bool:
    if isinstance(dropout, numbers.Real):
        return bool(dropout)
    return any(dropout)


def _is_single(activation: Any) -> bool:
    return isinstance(activation, str | dict | _activations.Activation)


def _hidden_activation(spec: Any, alpha: float | None) -> _activations.Activation:
    """An activation from ``spec``, given ``alpha`` when its constructor takes one."""
    takes_alpha = isinstance(spec, str) and "alpha" in _activations.registry.parameters(spec)
    if alpha is not None and takes_alpha:
        return _activations.get(spec, alpha=alpha)
    return _activations.get(spec)


def _require_registered(part: str, obj: Any) -> None:
    if not type(obj).is_registered():
        raise ValueError(
            f"Cannot describe the {part} {obj!r} by name: its class {type(obj).__name__} is not "
            f"registered. Give it a class attribute name = '...' (see the README's Extending "
            "section)."
        )


def _without_name(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "name"}


#: ``anyarray_nn.load(path, backend=None, device=None, dtype=None)``: :meth:`NN.load`.
load = NN.load
