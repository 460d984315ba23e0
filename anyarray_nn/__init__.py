"""anyarray_nn: dense neural networks with from-scratch backprop, written once against the
Python Array API standard, running on NumPy, CuPy, PyTorch or array-api-strict."""

from .activations import Activation
from .backend import (
    Backend,
    BackendUnavailableError,
    available_backends,
    backend_status,
    resolve,
    to_numpy,
)
from .gradcheck import GradcheckReport, gradcheck, numerical_gradients
from .layers import Dense, Layer
from .losses import Loss
from .network import NN

__version__ = "0.1.0"

__all__ = [
    "NN",
    "Activation",
    "Backend",
    "BackendUnavailableError",
    "Dense",
    "GradcheckReport",
    "Layer",
    "Loss",
    "__version__",
    "available_backends",
    "backend_status",
    "gradcheck",
    "numerical_gradients",
    "resolve",
    "to_numpy",
]
