"""Components written outside the package, exactly as docs/extending.md shows them.

Importing this module registers them (tests/test_extending.py imports it, and passes it to the
command line through ANYARRAY_NN_PLUGINS). Nothing here is special-cased anywhere in anyarray_nn.
"""

from __future__ import annotations

from typing import Any

import array_api_strict
import numpy as np

import anyarray_nn as ann
from anyarray_nn.activations import Activation
from anyarray_nn.layers import INFERENCE, Layer, Pass
from anyarray_nn.losses import Loss
from anyarray_nn.optimizers import Optimizer


# -- recipe: an activation ----------------------------------------------------------------------
class Swish(Activation):
    """swish(z) = z * sigmoid(beta * z); swish'(z) = s + beta * z * s * (1 - s)."""

    name = "swish"  # registers the class: NN(activation="swish") now works, and saves/loads

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = float(beta)  # stored under its own name: saved and loaded with the model

    def forward(self, xp: Any, z: Any) -> Any:
        return z * ann.activations.get("sigmoid").forward(xp, self.beta * z)

    def derivative(self, xp: Any, z: Any, a: Any) -> Any:
        s = ann.activations.get("sigmoid").forward(xp, self.beta * z)
        return s + self.beta * z * s * (1.0 - s)


# -- recipe: an optimizer -----------------------------------------------------------------------
class SignMomentum(Optimizer):
    """signSGD with momentum: b <- mu * b + (1 - mu) * g;  p <- p - lr * sign(b)."""

    name = "sign_momentum"

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = float(momentum)

    def _state_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",)  # a vector like the parameters', saved with the model

    def update(self, xp: Any, p: Any, g: Any, state: dict, lr: float, wb: Any) -> tuple:
        # p, g and the state are flat vectors holding every parameter of the network.
        # wb.mul/wb.add/wb.sub update in place where arrays can be written (NumPy, CuPy,
        # torch) and return new arrays where they cannot (JAX): keep what they return.
        b = wb.add(wb.mul(state["momentum_buffer"], self.momentum), (1.0 - self.momentum) * g)
        return wb.sub(p, lr * xp.sign(b)), {"momentum_buffer": b}


# -- recipe: an initializer ---------------------------------------------------------------------
@ann.initializers.register("orthogonal")
def orthogonal(rng: np.random.Generator, fan_in: int, fan_out: int, gain: float = 1.0) -> Any:
    """A random matrix with orthonormal columns (or rows), times ``gain`` (Saxe et al.)."""
    a = rng.standard_normal((max(fan_in, fan_out), min(fan_in, fan_out)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # a uniformly distributed rotation
    return gain * (q if fan_in >= fan_out else q.T)


# -- recipe: a layer ----------------------------------------------------------------------------
class Scale(Layer):
    """``y = x * s``: one learned scale per feature, starting at 1."""

    name = "scale"
    param_names = ("s",)

    def build(self, backend: Any, rng: np.random.Generator, fan_in: int) -> int:
        self.backend = backend
        self.params = {"s": backend.asarray(np.ones(fan_in))}
        return fan_in

    def forward(self, x: Any, ctx: Pass = INFERENCE) -> Any:
        ctx.save_for_backward(self, x)
        return x * self.params["s"]

    def backward(self, grad_out: Any, ctx: Pass, need_input_grad: bool = True) -> Any:
        (x,) = ctx.saved(self)
        ctx.grads[self] = {"s": self.xp.sum(grad_out * x, axis=0)}
        return grad_out * self.params["s"] if need_input_grad else None


# -- recipe: a loss ---------------------------------------------------------------------------
class Huber(Loss):
    """Huber loss, mean over samples and outputs: ``d**2 / 2`` for ``|d| <= delta``, else
    ``delta (|d| - delta / 2)``, with ``d = a - t``; its gradient is ``clip(d, -delta, delta)``
    divided by the count."""

    name = "huber"  # registers it: NN(loss="huber"), model files and the CLI's --loss

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = float(delta)

    def row_values(self, xp: Any, a: Any, t: Any) -> Any:  # per sample: sample weights work
        d = xp.abs(a - t)
        small = xp.clip(d, max=self.delta)  # |d| below delta, else delta
        return xp.sum(small * (d - 0.5 * small), axis=1) / float(d.shape[1])

    def value(self, xp: Any, a: Any, t: Any) -> Any:
        return xp.mean(self.row_values(xp, a, t))

    def grad(self, xp: Any, a: Any, t: Any) -> Any:
        d = a - t
        return xp.clip(d, min=-self.delta, max=self.delta) / float(d.shape[0] * d.shape[1])


# -- recipe: a backend --------------------------------------------------------------------------
def _strict_gpu_device(device: Any) -> Any:
    if device not in (None, "device1"):
        raise ValueError(f"strict_gpu has one device, 'device1'; got {device!r}.")
    return array_api_strict.Device("device1")


STRICT_GPU = ann.register_backend(
    ann.BackendInfo(
        "strict_gpu",
        package="array_api_strict",
        namespace="array_api_strict",
        install="pip install array-api-strict",
        make_device=_strict_gpu_device,
        device_name=lambda device: "device1",
        to_numpy=lambda x: np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE"))),
        is_host=lambda device: False,  # behaves like a GPU: no live reads in the progress bar
    )
)
