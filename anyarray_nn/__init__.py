"""anyarray_nn: dense neural networks with from-scratch backprop, written once against the
Python Array API standard, running on NumPy, CuPy, PyTorch or array-api-strict."""

from . import callbacks, datasets, initializers, metrics, optimizers, schedules
from .activations import Activation
from .backend import (
    Backend,
    BackendUnavailableError,
    available_backends,
    backend_status,
    resolve,
    to_numpy,
)
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .gradcheck import GradcheckReport, gradcheck, numerical_gradients
from .io import ModelFileError, load
from .layers import Dense, Dropout, Layer
from .losses import Loss
from .network import NN
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
from .training import History, TrainingDivergedError

__version__ = "0.1.0"


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
    "BackendUnavailableError",
    "Callback",
    "Constant",
    "CosineAnnealing",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "ExponentialDecay",
    "GradcheckReport",
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
    "RMSProp",
    "ReduceLROnPlateau",
    "StepDecay",
    "TrainingDivergedError",
    "__version__",
    "available_backends",
    "backend_status",
    "callbacks",
    "datasets",
    "gradcheck",
    "initializers",
    "load",
    "metrics",
    "numerical_gradients",
    "optimizers",
    "resolve",
    "schedules",
    "to_numpy",
]
