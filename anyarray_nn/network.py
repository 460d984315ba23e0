"""The network: a stack of layers and an output head, on one backend.

:class:`NN` is the model: its layers, the forward and backward passes, its parameters (one flat
vector, :mod:`anyarray_nn.flat`, that each layer sees through views) and its configuration. It
has two faces:

- the **public API** (NumPy or any array library in, NumPy out): ``fit``, ``predict``,
  ``evaluate``, ``loss``, ``gradients``, ``get_weights``/``set_weights``, ``to``, ``copy``,
  ``save``/``load``, ``config``/``from_config``;
- a small **device-level interface** for training (:mod:`anyarray_nn.training`), L-BFGS and
  data-parallel training: :meth:`NN.check_inputs`, :meth:`NN.check_targets` and
  :meth:`NN.check_weights` validate data and move it to the device once;
  :meth:`NN.backprop` is one forward and backward pass on device arrays (no host sync),
  returning the objective, the outputs and the flat gradient; :meth:`NN.objective` is the same
  without gradients; :attr:`NN.theta` and :meth:`NN.bind` are the flat parameter vector and how
  a new one is stored (the write-back rule).

What lives elsewhere: data checks in :mod:`anyarray_nn.inputs`, the task (targets, loss,
metrics, decoding) in the output head (:mod:`anyarray_nn.heads`), everything training changes
besides the weights in a :class:`~anyarray_nn.state.TrainingState`, and the file schema in
:mod:`anyarray_nn.io`.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Any

import array_api_compat
import numpy as np

from . import activations as _activations
from . import inputs as _inputs
from . import io as _io
from . import lbfgs as _lbfgs
from . import losses as _losses
from . import training as _training
from .backend import Backend, resolve, resolve_computing, to_numpy
from .flat import FlatLayout
from .heads import Head
from .layers import Dense, Dropout, Layer, Pass
from .random import STREAM_INIT, host_rng, new_seed
from .sparse import SPARSE_BATCH, dense_rows, is_sparse
from .state import TrainingState
from .sums import evaluate_arrays
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
        output: output activation: ``"softmax"`` (default), ``"sigmoid"``, ``"identity"``,
            ``"exp"`` or any registered activation.
        loss: ``"cross_entropy"``, ``"binary_cross_entropy"``, ``"mse"``, ``"poisson"`` (or any
            registered loss) or ``None`` to pick the natural loss for ``output``. Softmax +
            cross-entropy, sigmoid + BCE and exp + Poisson are fused.
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
        l1, l2: penalties ``l1 * sum|W|`` and ``l2 * sum W**2`` over the weights (never the
            biases), added to the loss that ``loss``, ``gradients`` and ``fit`` use.

    ``activation``, ``init``, ``alpha`` and ``dropout`` describe the layers built from a list of
    sizes; with a list of Layer objects they are refused (set them on the layers).

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
        self.backend: Backend = resolve_computing(backend, device, dtype)
        self.seed = int(seed) if seed is not None else new_seed()
        output_fn = _activations.get(output)
        self.head = Head(output_fn, _losses.get(loss, output_fn))
        self.layers: list[Layer] = _make_layers(layers, activation, init, alpha, dropout)
        #: Everything training changes besides the weights (optimizer, counters, history).
        self.training_state = TrainingState()
        #: Free-form JSON-able information saved with the model (e.g. how it was trained: the
        #: command line records the dataset, split and class labels here).
        self.metadata: dict[str, Any] = {}
        self._build()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        first = self.layers[0]
        fan_in = getattr(first, "fan_in", None)
        if fan_in is None:
            raise ValueError("The first layer needs its input width: Dense(units, fan_in=...).")
        self.n_features = int(fan_in)
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        for layer in dense[:-1]:
            if layer.activation.task == "multiclass":
                raise ValueError(
                    f"{layer.activation.name} is an output activation (rows that sum to 1), not "
                    "a hidden one: a hidden softmax layer trains to chance. Use relu, tanh, ... "
                    "for hidden layers and output='softmax' for the output."
                )
        rng = host_rng(self.seed, STREAM_INIT)
        width = self.n_features
        for index, layer in enumerate(self.layers):
            width = layer.build(self.backend, rng, width)
            if isinstance(layer, Dropout):
                layer.seed, layer.layer_index = self.seed, index
        self.n_outputs = width
        self.head.check_width(width)
        pairs = self.parameters()
        self.layout = FlatLayout.of(
            self.parameter_names(),
            [tuple(layer.params[name].shape) for layer, name in pairs],
            [name in layer.penalised_params for layer, name in pairs],
        )
        self._mask: Array = None  # the penalty mask (made when first used)
        self.bind(self._pack_layer_params())

    def _pack_layer_params(self) -> Array:
        """A new flat vector holding the layers' current parameter arrays."""
        arrays = [self.backend.asarray(p) for p in self._layer_arrays()]
        return self.layout.pack(self.xp, arrays) if arrays else self._empty()

    def _empty(self) -> Array:
        be = self.backend
        return be.xp.zeros((0,), dtype=be.dtype, device=be.device)

    def _layer_arrays(self) -> list[Array]:
        return [layer.params[name] for layer, name in self.parameters()]

    # -- the flat parameter vector (the write-back rule) ---------------------------------------
    @property
    def theta(self) -> Array:
        """Every parameter in one flat device vector, in the order of :meth:`parameters` (the
        layers' ``params`` are views of it). Replace it with :meth:`bind`."""
        self._adopt_replaced_params()
        return self._theta

    def bind(self, theta: Array) -> None:
        """Make the flat vector ``theta`` the network's parameters: the caller's half of the
        write-back rule. An update done in place gives back the same vector, and nothing
        changes; a new vector (an immutable library, a restored snapshot) gets new views.

        ``theta`` must be a 1-D array of this network's backend (its library and device), of
        its dtype and of length ``net.layout.size``; it is stored as it is, never converted
        (the caller keeps updating it in place). Anything else raises a ``ValueError`` naming
        what is expected, and the network keeps its parameters. To set parameters from other
        arrays, use :meth:`set_weights`.

        Raises:
            ValueError: ``theta`` is not such a vector.
        """
        if theta is getattr(self, "_theta", None):
            return
        self._check_vector(theta)
        self._bind_views(theta)  # the network's dtype and device: the penalty mask still fits

    def _rebind(self, theta: Array) -> None:
        """Bind ``theta`` even if it is the vector bound now (fresh views), for a new device,
        dtype or copy of the network."""
        self._bind_views(theta)
        self._mask = None  # the penalty mask follows the vector's device and dtype

    def _bind_views(self, theta: Array) -> tuple[Array, list[Array]]:
        """Give the layers views of ``theta``; returns the binding it replaced."""
        previous = (getattr(self, "_theta", None), getattr(self, "_views", None))
        self._theta = theta
        self._views = self.layout.views(self.xp, theta)
        for (layer, name), view in zip(self.parameters(), self._views, strict=True):
            layer.params[name] = view
        return previous

    def _restore_binding(self, previous: tuple[Array, list[Array]]) -> None:
        """Undo :meth:`_bind_views`: the vector and the views it replaced."""
        self._theta, self._views = previous
        for (layer, name), view in zip(self.parameters(), self._views, strict=True):
            layer.params[name] = view

    @contextlib.contextmanager
    def bound(self, theta: Array) -> Iterator[None]:
        """A scoped binding: inside the block the layers see views of ``theta`` (a traced or
        candidate vector); after it, whatever happens, the network is bound as before."""
        previous = self._bind_views(theta)
        try:
            yield
        finally:
            self._restore_binding(previous)

    def _check_vector(self, theta: Any) -> None:
        """Refuse (before anything is stored) what :meth:`bind` cannot take as the vector."""
        be, size = self.backend, self.layout.size
        expected = f"a 1-D {be.dtype_name} array of length {size} on {be!r}"
        try:
            namespace = array_api_compat.array_namespace(theta)
        except TypeError:
            namespace = None
        if namespace is not be.xp:
            raise ValueError(
                f"bind() takes {expected}, got {type(theta).__name__}. Convert it with "
                "net.backend.asarray(theta), or set the weights with net.set_weights(...)."
            )
        shape, dtype = tuple(theta.shape), theta.dtype
        where = _device_of(theta)
        if shape != (size,) or dtype != be.dtype or (where is not None and where != be.device):
            got = f"shape {shape}, dtype {dtype}" + ("" if where is None else f", device {where}")
            raise ValueError(
                f"bind() takes {expected} (the network's parameters), got {got}. The network "
                "keeps its parameters."
            )

    def _adopt_replaced_params(self) -> None:
        """If code replaced a layer's parameter array (``layer.params["W"] = ...``) instead of
        writing into it, take the layers' arrays as the parameters: the one place where a
        replaced array is adopted, passed through by every reader of the parameters
        (:attr:`theta`, :meth:`parameter_arrays`, :meth:`logits` and so ``forward``,
        ``predict``, ``fit``, ``evaluate``; ``get_weights``, ``copy``, ``to``, ``save``,
        pickling and ``copy.copy``/``copy.deepcopy``).

        A replacement is checked as :meth:`set_weights` checks its arrays (each must have its
        parameter's shape and finite real values; another dtype or array library is converted
        to the network's); a bad one raises a ``ValueError`` naming it (``W1``, ``b2``, ...),
        and the network keeps its previous parameters (the layers get their views back)."""
        pairs = self.parameters()
        replaced = [
            i
            for i, ((layer, name), view) in enumerate(zip(pairs, self._views, strict=True))
            if layer.params.get(name) is not view
        ]
        if not replaced:
            return
        arrays = list(self._views)
        try:
            for i in replaced:
                layer, name = pairs[i]
                arrays[i] = self._adoptable(i, layer.params.get(name))
        except ValueError:
            for (layer, name), view in zip(pairs, self._views, strict=True):
                layer.params[name] = view  # the network as it was
            raise
        self._rebind(self.layout.pack(self.xp, arrays) if arrays else self._empty())

    def _adoptable(self, index: int, value: Any) -> Array:
        """A replaced parameter ``value`` checked (as :meth:`set_weights` checks) and on the
        device in the network's dtype."""
        label, shape = self.layout.names[index], self.layout.shapes[index]
        be = self.backend
        if value is None:
            raise ValueError(
                f"{label} is missing from its layer's params: give it back an array of shape "
                f"{shape} ({be.dtype_name}, {be!r}), or use net.set_weights(...)."
            )
        return be.asarray(_check_weight(label, shape, value, be), copy=True)

    # -- training state, under the names scikit-learn and Keras users know --------------------
    optimizer = property(
        lambda self: self.training_state.optimizer,
        lambda self, v: setattr(self.training_state, "optimizer", v),
        doc="The optimizer of the last ``fit`` (a later ``fit`` continues it).",
    )
    step_ = property(
        lambda self: self.training_state.step,
        lambda self, v: setattr(self.training_state, "step", int(v)),
        doc="Optimizer steps taken (they key dropout masks).",
    )
    epochs_trained_ = property(
        lambda self: self.training_state.epochs_trained,
        lambda self, v: setattr(self.training_state, "epochs_trained", int(v)),
        doc="Epochs finished (they key shuffle orders).",
    )
    history_ = property(
        lambda self: self.training_state.history,
        lambda self, v: setattr(self.training_state, "history", v),
        doc="The History of the last ``fit``.",
    )
    stop_training = property(
        lambda self: self.training_state.stop_training,
        lambda self, v: setattr(self.training_state, "stop_training", bool(v)),
        doc="Set by a callback to end ``fit`` after the current epoch.",
    )
    comm_ = property(
        lambda self: self.training_state.comm,
        doc="The communicator of the last ``fit`` (``fit(comm=...)``; one process otherwise).",
    )

    # -- identity -------------------------------------------------------------------------------
    @property
    def xp(self) -> Any:
        return self.backend.xp

    @property
    def output(self) -> _activations.Activation:
        """The output activation (owned by :attr:`head`)."""
        return self.head.output

    @property
    def loss_fn(self) -> _losses.Loss:
        """The loss (owned by :attr:`head`)."""
        return self.head.loss

    @property
    def is_classifier(self) -> bool:
        return self.head.is_classifier

    def __getstate__(self) -> dict[str, Any]:
        # The flat vector alone: the layers' views would be pickled as copies of it.
        self._adopt_replaced_params()  # a replaced layer.params entry travels with the copy
        state = self.__dict__.copy()
        state["_mask"] = None
        del state["_views"]
        state["layers"] = [_copy.copy(layer) for layer in self.layers]
        for layer in state["layers"]:
            layer.params = {}
        return state

    def __repr__(self) -> str:
        sizes = [self.n_features] + [d.units for d in self.layers if isinstance(d, Dense)]
        return (
            f"NN({sizes}, output={self.output.name!r}, loss={self.loss_fn.name!r}, "
            f"backend={self.backend!r})"
        )

    # -- parameters ----------------------------------------------------------------------------
    def views_of(self, theta: Array) -> dict[Layer, dict[str, Array]]:
        """``{layer: {name: view of theta}}``: what a :class:`Pass` gives the layers to run on
        ``theta`` without binding it (nothing of the network changes)."""
        views: dict[Layer, dict[str, Array]] = {layer: {} for layer in self.layers}
        for (layer, name), view in zip(self.parameters(), self.layout.views(self.xp, theta),
                                       strict=True):  # fmt: skip
            views[layer][name] = view
        return views

    def parameters(self) -> list[tuple[Layer, str]]:
        """``(layer, name)`` pairs in the order W1, b1, W2, b2, ..."""
        return [(layer, name) for layer in self.layers for name in layer.param_names]

    def parameter_arrays(self) -> list[Array]:
        """The live parameter arrays (device views of :attr:`theta`), in the order of
        :meth:`parameters`."""
        self._adopt_replaced_params()
        return list(self._views)

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
        return self.layout.split(np.asarray(to_numpy(self.theta)))

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Replace all parameters (NumPy or any array library), checking count and shapes."""
        weights = list(weights)
        if len(weights) != len(self.layout.names):
            raise ValueError(
                f"set_weights expects {len(self.layout.names)} arrays, got {len(weights)}."
            )
        host = [
            _check_weight(label, shape, w, self.backend).reshape(-1)
            for label, shape, w in zip(self.layout.names, self.layout.shapes, weights, strict=True)
        ]
        flat = np.concatenate(host) if host else np.zeros(0)
        self.bind(self.backend.asarray(flat, copy=True))  # never alias the caller's arrays

    def to(self, backend: str | Any, device: Any = None, dtype: Any = None) -> NN:
        """Move the parameters and the training state to another backend/device/dtype, in
        place. Returns ``self``. Values are carried over bit-exactly (through host memory)
        unless the dtype changes."""
        self._refuse_during_fit("to()")
        target = resolve_computing(backend, device, dtype or self.backend.dtype_name)
        theta = np.asarray(to_numpy(self.theta))
        for layer in self.layers:
            layer.backend = target
        self.backend = target
        self._rebind(target.asarray(theta, copy=True))
        self.training_state.move(target)
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
        theta = self.theta
        clone = _copy.copy(self)
        clone.layers = [_copy.copy(layer) for layer in self.layers]
        for twin in clone.layers:
            twin.params = dict(twin.params)
            twin.backend = target
        clone.backend = target
        clone._rebind(target.asarray(to_numpy(theta), copy=True))  # never shared with self
        clone.training_state = self.training_state.copy(target)
        clone.metadata = _copy.deepcopy(self.metadata)
        return clone

    def _refuse_during_fit(self, what: str) -> None:
        if getattr(self, "_fitting", False):
            raise RuntimeError(
                f"net.{what} was called while fit() is running (from a callback?): the "
                "training loop holds the parameters and optimizer state on their current "
                "backend, device and dtype. Call it after fit() returns, or stop training "
                "first (net.stop_training = True) and call it then."
            )

    def __setstate__(self, state: dict[str, Any]) -> None:
        theta = state.pop("_theta")
        self.__dict__.update(state)
        self._rebind(theta)  # the layers' views, which pickling does not keep

    # -- the device-level interface (see the module docstring) ----------------------------------
    def check_inputs(self, X: Any) -> Array:
        """Validate ``X`` and move it onto the device in the model's dtype, by the rules of
        :mod:`anyarray_nn.inputs` (the same on every backend; a public-API boundary, where
        host reads are allowed).

        A ``scipy.sparse`` matrix is validated and returned as a CSR matrix that stays on the
        host: ``fit``, ``predict`` and ``evaluate`` densify one batch of its rows at a time on
        the way to the device (see :func:`dense_rows`), never the whole matrix."""
        if is_sparse(X):
            return _inputs.sparse_features(X, self.n_features)
        return _inputs.features_to_device(self.backend, X, self.n_features)

    def check_weights(self, sample_weight: Any, n_samples: int) -> Array | None:
        """Per-sample weights on the device (see :func:`anyarray_nn.inputs.weights_to_device`)."""
        return _inputs.weights_to_device(self.backend, sample_weight, n_samples)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise the usual error unless ``shape`` is ``(n_samples, n_features)``."""
        _inputs.check_shape(tuple(shape), self.n_features)

    def check_targets(self, y: Any, n_samples: int) -> Array:
        """Validate ``y`` and return the ``(n, n_outputs)`` float target matrix on the device
        (the output head's rules: :meth:`anyarray_nn.heads.Head.targets`)."""
        _inputs.require_rows(n_samples)
        return self.head.targets(self.backend, y, n_samples, self.n_outputs)

    def logits(self, X: Array, ctx: Pass | None = None) -> Array:
        """Pre-activations of the output layer for a device array ``X``."""
        ctx = Pass(record=False) if ctx is None else ctx
        if ctx.views is None:  # a pass with its own views reads nothing of the binding
            self._adopt_replaced_params()
        h = X
        for layer in self.layers:
            h = layer.forward(h, ctx)
        return h

    def forward(self, X: Array, ctx: Pass | None = None) -> Array:
        """Output activations for a device array ``X`` (no checks, no conversion)."""
        return self.output.forward(self.xp, self.logits(X, ctx))

    def _penalty_mask(self) -> Array:
        if self._mask is None:
            self._mask = self.backend.asarray(self.layout.penalty_mask())
        return self._mask

    def penalty(
        self, grad: Array | None = None, theta: Array | None = None
    ) -> tuple[Array | float, Array | None]:
        """``(l1 * sum|W| + l2 * sum W**2, grad + its gradient)`` over the weights (never the
        biases), on the flat vector (the bound one, or ``theta``): a few whole-vector
        operations."""
        if not (self.l1 or self.l2):
            return 0.0, grad
        if theta is None:
            self._adopt_replaced_params()
            theta = self._theta
        xp, total = self.xp, 0.0
        weights = theta * self._penalty_mask()  # biases zeroed
        if self.l2:
            total = total + self.l2 * xp.sum(weights * weights)
            if grad is not None:
                grad = grad + (2.0 * self.l2) * weights
        if self.l1:
            signs = xp.sign(weights)
            total = total + self.l1 * xp.sum(xp.abs(weights))
            if grad is not None:
                grad = grad + self.l1 * signs
        return total, grad

    def backprop(
        self, X: Array, T: Array, ctx: Pass | None = None, weights: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """One forward and backward pass on device arrays, with no host sync.

        ``ctx`` carries the training flag and the dropout key (default: a fresh inference-mode
        pass). ``weights`` (an ``(n,)`` device array, see :meth:`check_weights`) makes the loss
        the weighted mean ``sum(w l) / sum(w)``. Returns the objective (a 0-d device array:
        mean loss plus penalties), the output activations and the gradient of the objective as
        one flat vector laid out like :attr:`theta`.
        """
        ctx = Pass() if ctx is None else ctx
        z = self.logits(X, ctx)
        loss, grad, a = self.head.loss_and_grad(self.xp, z, T, weights)
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            grad = self.layers[i].backward(grad, ctx, need_input_grad=i > 0)
        grads = [ctx.grads[layer][name] for layer, name in self.parameters()]
        flat = self.layout.pack(self.xp, grads) if grads else self._empty()
        if not (self.l1 or self.l2):
            return loss, a, flat
        penalty, flat = self.penalty(flat, ctx.theta)
        return loss + penalty, a, flat

    def objective(self, X: Array, T: Array, weights: Array | None = None) -> tuple[Array, Array]:
        """The objective (mean loss plus penalties, a 0-d device array) and the output
        activations, in inference mode; ``weights`` as in :meth:`backprop`."""
        loss, a = self.head.objective(self.xp, self.logits(X), T, weights)
        if not (self.l1 or self.l2):
            return loss, a
        return loss + self.penalty()[0], a

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
        return self.head.decode(self.predict(X, batch_size))

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
        _, _, grad = self.backprop(Xd, T, None, w)
        return self.layout.split(np.asarray(to_numpy(grad)))

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
        return evaluate_arrays(self, Xd, T, batch_size, weights=w)

    #: Training: see :func:`anyarray_nn.training.fit` (its signature and docs are this method's).
    fit = _training.fit
    #: Full-batch L-BFGS training: see :func:`anyarray_nn.lbfgs.fit_lbfgs`.
    fit_lbfgs = _lbfgs.fit_lbfgs

    # -- description, saving and loading (the schema lives in anyarray_nn.io) -------------------
    def config(self) -> dict[str, Any]:
        """The architecture as JSON-able data: layers (type and config), output activation,
        loss, penalties, seed, dtype, backend and device. :meth:`from_config` rebuilds it."""
        return _io.model_config(self)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], backend: Any = None, device: Any = None, dtype: Any = None
    ) -> NN:
        """A fresh network from :meth:`config` output (only registered components are built).

        ``backend``, ``device`` and ``dtype`` default to the ones in ``config``."""
        return cls(**_io.constructor_arguments(config, backend, device, dtype))

    def save(
        self, path: str | os.PathLike[str], include_optimizer: bool = True, overwrite: bool = False
    ) -> None:
        """Write architecture, weights and (optionally) optimizer state to exactly ``path``,
        atomically (see :mod:`anyarray_nn.io` for the format): ``*.safetensors`` or ``*.npz``.
        An existing file at ``path`` is replaced only with ``overwrite=True`` (as ``export``).

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False (nothing written).
            ValueError: another extension, an unregistered component, or non-finite weights
                (nothing is written then; an existing file at ``path`` is left as it was).
        """
        _io.save_model(self, path, include_optimizer, overwrite)

    def export(self, path: str | os.PathLike[str], **options: Any) -> Any:
        """Write the network as an ONNX file: :func:`anyarray_nn.export_onnx` (same options)."""
        from .export import export_onnx

        return export_onnx(self, path, **options)

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
        return _io.load_model(cls, path, backend, device, dtype)


def _check_weight(label: str, shape: tuple[int, ...], value: Any, backend: Backend) -> np.ndarray:
    """``value`` as a host array, checked as a value for the parameter ``label`` of ``shape``
    (:meth:`NN.set_weights` and a replaced ``layer.params`` entry): the exact shape, real
    numbers (another float dtype or array library is converted), all finite."""
    expected = f"(an array of real numbers, taken as {backend.dtype_name} on {backend!r})"
    try:
        host = np.asarray(to_numpy(value))
    except Exception as exc:
        raise ValueError(
            f"{label} must have shape {shape} {expected}, got {type(value).__name__} ({exc})."
        ) from exc
    if tuple(host.shape) != shape:
        raise ValueError(
            f"{label} must have shape {shape} {expected}, got {tuple(host.shape)}. (W has "
            "shape (fan_in, fan_out), b has shape (fan_out,).)"
        )
    if host.dtype.kind not in "biuf":
        raise ValueError(f"{label} must have shape {shape} {expected}, got dtype {host.dtype}.")
    if not np.all(np.isfinite(host)):
        raise ValueError(f"{label} contains NaN or inf.")
    return host


def _device_of(x: Any) -> Any:
    """``x``'s device, or ``None`` where it cannot be told (a traced array)."""
    try:
        return array_api_compat.device(x)
    except Exception:
        return None


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


#: ``anyarray_nn.load(path, backend=None, device=None, dtype=None)``: :meth:`NN.load`.
load = NN.load
