"""anyarray_nn: dense neural networks with from-scratch backprop, written once against the
Python Array API standard, running on NumPy, CuPy, PyTorch, JAX or array-api-strict; the training
step compiled where the backend has a compiler (JAX's ``jax.jit``, ``torch.compile``)."""

from . import callbacks, datasets, initializers, metrics, optimizers, registry, schedules, writeback
from ._version import __version__
from .activations import Activation
from .backend import (
    Backend,
    BackendInfo,
    BackendUnavailableError,
    available_backends,
    backend_status,
    register_backend,
    resolve,
    to_numpy,
)
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .export import ExportError, export_onnx
from .gradcheck import GradcheckReport, check_layer_backward, gradcheck, numerical_gradients
from .heads import Head
from .io import ModelFileError
from .layers import Dense, Dropout, Layer, Pass
from .losses import Loss
from .network import NN, load
from .optimizers import SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp
from .schedules import (
    Constant,
    CosineAnnealing,
    ExponentialDecay,
    InverseScaling,
    LRSchedule,
    ReduceLROnPlateau,
    StepDecay,
)
from .state import History, TrainingState
from .training import TrainingDivergedError


def __getattr__(name: str) -> object:
    # The scikit-learn estimators import a lot of scikit-learn: load them on first use only.
    if name in ("NNClassifier", "NNRegressor"):
        from . import sklearn as _sklearn

        return getattr(_sklearn, name)
    raise AttributeError(f"module 'anyarray_nn' has no attribute {name!r}")


__all__ = [
    "NN",
    "SGD",
    "Activation",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Backend",
    "BackendInfo",
    "BackendUnavailableError",
    "Callback",
    "Constant",
    "CosineAnnealing",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "ExponentialDecay",
    "ExportError",
    "GradcheckReport",
    "Head",
    "History",
    "InverseScaling",
    "LRSchedule",
    "Layer",
    "Loss",
    "ModelCheckpoint",
    "ModelFileError",
    "NNClassifier",
    "NNRegressor",
    "Optimizer",
    "Pass",
    "RMSProp",
    "ReduceLROnPlateau",
    "StepDecay",
    "TrainingDivergedError",
    "TrainingState",
    "__version__",
    "available_backends",
    "backend_status",
    "callbacks",
    "check_layer_backward",
    "datasets",
    "export_onnx",
    "gradcheck",
    "initializers",
    "load",
    "metrics",
    "numerical_gradients",
    "optimizers",
    "register_backend",
    "registry",
    "resolve",
    "schedules",
    "to_numpy",
    "writeback",
]
