"""Layers. ``forward`` caches what ``backward`` needs; ``backward`` returns the input gradient and
fills ``self.grads``. Neither mutates parameters: that happens only in the optimizer step.

A layer is *built* on a :class:`~anyarray_nn.backend.Backend` (which gives it ``xp``, the device and
the dtype) before use; :class:`~anyarray_nn.network.NN` does this for you.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from .backend import Backend
from .random import dropout_mask

Array = Any


class Layer:
    """Base class: a layer with (possibly no) parameters."""

    #: Parameter names in the order used by ``get_weights``.
    param_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}

    @property
    def xp(self) -> Any:
        if self.backend is None:
            raise RuntimeError(f"{self!r} is not built yet: add it to an NN (or call build()).")
        return self.backend.xp

    def build(self, backend: Backend, rng: np.random.Generator, fan_in: int) -> int:
        """Create parameters on ``backend``; return this layer's output width."""
        self.backend = backend
        return fan_in

    def forward(self, x: Array, training: bool = False) -> Array:
        raise NotImplementedError

    def backward(self, grad_out: Array, need_input_grad: bool = True) -> Array | None:
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Drop arrays cached by ``forward`` (frees device memory between calls)."""

    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments (used by save/load and ``copy``)."""
        return {}

    def move(self, backend: Backend) -> None:
        """Re-home parameters on ``backend`` (bit-exact through the host)."""
        self.clear_cache()
        self.params = {
            k: backend.asarray(backend.to_numpy(v), copy=True) for k, v in self.params.items()
        }
        self.grads = {}
        self.backend = backend


class Dense(Layer):
    """Fully connected layer ``a = f(x @ W + b)`` with ``W`` of shape ``(fan_in, fan_out)``.

    Backward, for ``dz = f'(z) * da`` (or the activation's full VJP)::

        dW = x^T dz        db = sum_rows(dz)        dx = dz W^T

    Args:
        units: output width (``fan_out``).
        activation: name or :class:`~anyarray_nn.activations.Activation` (default identity).
        init: weight initializer name or callable; default is the activation's own
            (He for the ReLU family, Glorot otherwise).
        bias_init: initializer for ``b`` (default zeros).
        fan_in: input width; optional, inferred from the previous layer when built in an NN.
    """

    param_names = ("W", "b")

    def __init__(
        self,
        units: int,
        activation: str | _activations.Activation | None = None,
        init: str | dict[str, Any] | _initializers.Initializer | None = None,
        bias_init: str | dict[str, Any] | _initializers.Initializer | None = "zeros",
        fan_in: int | None = None,
        **activation_kwargs: float,
    ) -> None:
        super().__init__()
        if not isinstance(units, int | np.integer) or units < 1:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}.")
        self.units = int(units)
        self.fan_in = fan_in
        self.activation = _activations.get(activation, **activation_kwargs)
        self.init = init or self.activation.default_init
        self.bias_init = bias_init or "zeros"
        _initializers.get(self.init)  # fail early on an unknown name
        _initializers.get(self.bias_init)

    def build(self, backend: Backend, rng: np.random.Generator, fan_in: int) -> int:
        if self.fan_in is not None and self.fan_in != fan_in:
            raise ValueError(
                f"Dense layer declared fan_in={self.fan_in} but receives {fan_in} inputs."
            )
        self.fan_in = fan_in
        self.backend = backend
        w = _initializers.get(self.init)(rng, fan_in, self.units)
        b = _initializers.get(self.bias_init)(rng, 1, self.units)[0]
        self.params = {"W": backend.asarray(w), "b": backend.asarray(b)}
        self.grads = {}
        return self.units

    def forward(self, x: Array, training: bool = False) -> Array:
        z = x @ self.params["W"]
        z += self.params["b"]  # in place on the fresh product: one allocation, not two
        a = self.activation.forward(self.xp, z)
        self._x, self._z, self._a = x, z, a
        return a

    def backward(self, grad_out: Array, need_input_grad: bool = True) -> Array | None:
        xp = self.xp
        dz = self.activation.backward(xp, self._z, self._a, grad_out)
        self.grads["W"] = xp.matrix_transpose(self._x) @ dz
        self.grads["b"] = xp.sum(dz, axis=0)
        if not need_input_grad:
            return None
        return dz @ xp.matrix_transpose(self.params["W"])

    def clear_cache(self) -> None:
        self._x = self._z = self._a = None

    def config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "activation": self.activation.name,
            **self.activation.config(),
            # None (a user's own function) rebuilds with the default; saved weights win anyway
            "init": _initializers.spec(self.init),
            "bias_init": _initializers.spec(self.bias_init),
            "fan_in": self.fan_in,
        }

    def __repr__(self) -> str:
        return f"Dense({self.fan_in}->{self.units}, activation={self.activation.name!r})"


class Dropout(Layer):
    """Inverted dropout: in training, ``y = x * mask`` with ``mask = keep / (1 - rate)``.

    The mask is drawn on the device by :func:`anyarray_nn.random.dropout_mask`, a counter-based
    hash of ``(seed, step, layer, element)``: bit-identical on every backend, with no host round
    trip. The network sets ``seed``, ``layer_index`` and, before every training step, ``step``.
    Backward reuses the forward pass's mask. Outside training (``predict``, ``evaluate``,
    ``loss``, ``gradients``) the layer is the identity.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        if not isinstance(rate, float | int) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}.")
        self.rate = float(rate)
        self.seed = 0
        self.layer_index = 0
        self.step = 0
        self._mask: Array | None = None

    def forward(self, x: Array, training: bool = False) -> Array:
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        self._mask = dropout_mask(
            self.xp,
            tuple(x.shape),
            self.rate,
            self.seed,
            self.step,
            self.layer_index,
            x.dtype,
            self.backend.device,
        )
        return x * self._mask

    def backward(self, grad_out: Array, need_input_grad: bool = True) -> Array | None:
        if not need_input_grad:
            return None
        return grad_out if self._mask is None else grad_out * self._mask

    def clear_cache(self) -> None:
        self._mask = None

    def config(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


LAYERS: dict[str, type[Layer]] = {"Dense": Dense, "Dropout": Dropout}


def from_config(kind: str, config: dict[str, Any]) -> Layer:
    """Rebuild a layer from :meth:`Layer.config` output (no code execution: a fixed registry)."""
    if kind not in LAYERS:
        raise ValueError(f"Unknown layer type {kind!r}. Known: {', '.join(LAYERS)}.")
    return LAYERS[kind](**config)
