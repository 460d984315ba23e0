"""Layers. ``forward`` saves what ``backward`` needs in the pass's context; ``backward`` returns
the input gradient and records the parameter gradients there. Neither mutates parameters: that
happens only in the optimizer step.

A layer is *built* on a :class:`~anyarray_nn.backend.Backend` (which gives it ``xp``, the device and
the dtype) before use; :class:`~anyarray_nn.network.NN` does this for you.

A network keeps all parameters in one flat vector (:mod:`anyarray_nn.flat`): after ``build``,
``params["W"]`` is a view of its slice, so a layer reads and never replaces its parameters.

Every forward/backward pass has its own :class:`Pass` (torch's ``ctx.save_for_backward`` idiom):
the training flag, the dropout key (optimizer step and row offset), the arrays the layers saved
and the gradients they produced all live there, never on the layers. Two passes through the same
network, even on two threads, therefore never see each other's intermediate arrays.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from . import registry as _registry
from .backend import Backend
from .random import dropout_mask
from .registry import Component, Registry
from .validation import Interval

Array = Any

#: A dropout rate: in [0, 1).
RATE = Interval("real", 0.0, 1.0, closed="left")

#: Every layer type, by name (a subclass that sets ``name`` is added automatically).
registry: Registry = _registry.layers


class Pass:
    """One forward (and possibly backward) pass through a stack of layers.

    Attributes:
        training: dropout is active (and what backward needs is saved).
        step: the optimizer step, the dropout masks' key.
        row_offset: position of this batch's first row in the global batch (data-parallel
            ranks each pass a slice; dropout masks follow the global row).
        record: keep what backward needs (a pass for inference alone saves nothing).
        grads: ``{layer: {param name: gradient}}``, filled by ``backward``.
        theta, views: ``None`` for a pass over the network's bound parameters (what layers
            see as ``layer.params``); else a parameter vector and ``{layer: {name: view}}``
            of it, for a pass that must not touch the network (a compiled loop's body, see
            :meth:`params_of`).
    """

    __slots__ = ("_saved", "grads", "record", "row_offset", "step", "theta", "training", "views")

    def __init__(
        self, training: bool = False, step: int = 0, row_offset: int = 0, record: bool = True,
        theta: Array | None = None, views: dict[Layer, dict[str, Array]] | None = None,
    ) -> None:  # fmt: skip
        self.training = training
        self.step = step
        self.row_offset = row_offset
        self.record = record
        self.theta, self.views = theta, views
        self._saved: dict[Layer, tuple[Array, ...]] = {}
        self.grads: dict[Layer, dict[str, Array]] = {}

    def params_of(self, layer: Layer) -> dict[str, Array]:
        """``layer``'s parameters in this pass: the views it was given, else the layer's
        own (bound) ``params``. Built-in layers read their parameters here, so a compiled
        loop's body can run them on views of its own vector without binding the network (a
        side effect some compilers refuse inside a loop; see
        :attr:`Layer.params_from_pass`)."""
        return layer.params if self.views is None else self.views[layer]

    def save_for_backward(self, layer: Layer, *arrays: Array) -> None:
        """Keep ``arrays`` for ``layer.backward`` (nothing is kept when not recording)."""
        if self.record:
            self._saved[layer] = arrays

    def saved(self, layer: Layer) -> tuple[Array, ...]:
        """What ``layer`` saved in this pass's forward."""
        try:
            return self._saved[layer]
        except KeyError:
            raise RuntimeError(
                f"{layer!r}.backward called without a recorded forward in this pass: run "
                "forward with the same Pass (record=True) first."
            ) from None


#: The context of a plain inference call (``layer.forward(x)``): saves nothing.
INFERENCE = Pass(record=False)


class Layer(Component):
    """Base class: a layer with (possibly no) parameters.

    Subclasses implement :meth:`forward` and :meth:`backward`, and :meth:`build` when they have
    parameters. Setting ``name`` registers a subclass, so networks using it save and load (its
    :meth:`config` must then be JSON-able).
    """

    registry: ClassVar[Registry] = registry
    #: Parameter names in the order used by ``get_weights``.
    param_names: ClassVar[tuple[str, ...]] = ()
    #: The parameters L1/L2 penalties apply to (weights, not biases).
    penalised_params: ClassVar[tuple[str, ...]] = ()
    #: ``forward`` and ``backward`` read the parameters as ``ctx.params_of(self)`` (never
    #: ``self.params``), so they can run on views a :class:`Pass` gives them without the
    #: network being bound: what lets torch's compiler run a whole epoch as one loop. A class
    #: declares it itself; it is not inherited (:func:`reads_params_from_pass`).
    params_from_pass: ClassVar[bool] = False

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.params: dict[str, Array] = {}

    @property
    def xp(self) -> Any:
        if self.backend is None:
            raise RuntimeError(f"{self!r} is not built yet: add it to an NN (or call build()).")
        return self.backend.xp

    def build(self, backend: Backend, rng: np.random.Generator, fan_in: int) -> int:
        """Create parameters on ``backend``; return this layer's output width."""
        self.backend = backend
        return fan_in

    def forward(self, x: Array, ctx: Pass = INFERENCE) -> Array:
        """The layer's output for input ``x``; saves what backward needs in ``ctx``."""
        raise NotImplementedError

    def backward(self, grad_out: Array, ctx: Pass, need_input_grad: bool = True) -> Array | None:
        """From ``dL/d output``: records ``dL/d param`` in ``ctx.grads[self]`` and returns
        ``dL/d input`` (``None`` when ``need_input_grad`` is False)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Dense(Layer):
    """Fully connected layer ``a = f(x @ W + b)`` with ``W`` of shape ``(fan_in, fan_out)``.

    Backward, for ``dz = f'(z) * da`` (or the activation's full VJP)::

        dW = x^T dz        db = sum_rows(dz)        dx = dz W^T

    Args:
        units: output width (``fan_out``).
        activation: name, config dict or :class:`~anyarray_nn.activations.Activation` (default
            identity).
        init: weight initializer name, spec or callable; default is the activation's own
            (He for the ReLU family, Glorot otherwise).
        bias_init: initializer for ``b`` (default zeros).
        fan_in: input width; optional, inferred from the previous layer when built in an NN.
        activation_kwargs: arguments of the activation, e.g. ``alpha=0.1`` for leaky_relu.
    """

    name = "dense"
    params_from_pass = True
    param_names = ("W", "b")
    penalised_params = ("W",)

    def __init__(
        self,
        units: int,
        activation: str | dict[str, Any] | _activations.Activation | None = None,
        init: str | dict[str, Any] | _initializers.Initializer | None = None,
        bias_init: str | dict[str, Any] | _initializers.Initializer | None = "zeros",
        fan_in: int | None = None,
        **activation_kwargs: float,
    ) -> None:
        super().__init__()
        if not isinstance(units, int | np.integer) or isinstance(units, bool) or units < 1:
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
        return self.units

    def forward(self, x: Array, ctx: Pass = INFERENCE) -> Array:
        params = ctx.params_of(self)
        z = x @ params["W"]
        z += params["b"]  # in place on the fresh product: one allocation, not two
        a = self.activation.forward(self.xp, z)
        ctx.save_for_backward(self, x, z, a)
        return a

    def backward(self, grad_out: Array, ctx: Pass, need_input_grad: bool = True) -> Array | None:
        xp = self.xp
        x, z, a = ctx.saved(self)
        dz = self.activation.backward(xp, z, a, grad_out)
        ctx.grads[self] = {"W": xp.matrix_transpose(x) @ dz, "b": xp.sum(dz, axis=0)}
        if not need_input_grad:
            return None
        return dz @ xp.matrix_transpose(ctx.params_of(self)["W"])

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "activation": self.activation.spec(),
            # None (a function that is not registered) rebuilds with the default; saved
            # weights win anyway
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
    trip. The network sets ``seed`` and ``layer_index`` when it builds the layer; the step and
    the row offset come with each training :class:`Pass`. Backward reuses the forward pass's
    mask. Outside training (``predict``, ``evaluate``, ``loss``, ``gradients``) the layer is the
    identity.
    """

    name = "dropout"
    params_from_pass = True

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = RATE.check("Dropout rate", rate)
        self.seed = 0
        self.layer_index = 0

    def forward(self, x: Array, ctx: Pass = INFERENCE) -> Array:
        if not ctx.training or self.rate == 0.0:
            ctx.save_for_backward(self, None)
            return x
        mask = dropout_mask(
            self.xp,
            tuple(x.shape),
            self.rate,
            self.seed,
            ctx.step,
            self.layer_index,
            x.dtype,
            self.backend.device,
            row_offset=ctx.row_offset,
        )
        ctx.save_for_backward(self, mask)
        return x * mask

    def backward(self, grad_out: Array, ctx: Pass, need_input_grad: bool = True) -> Array | None:
        if not need_input_grad:
            return None
        (mask,) = ctx.saved(self)
        return grad_out if mask is None else grad_out * mask

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


def reads_params_from_pass(layer: Layer) -> bool:
    """Whether ``layer``'s class declares :attr:`Layer.params_from_pass` itself (a subclass
    that does not may read ``self.params``)."""
    return bool(type(layer).__dict__.get("params_from_pass", False))
