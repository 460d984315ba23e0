"""The data a command works on: built-in datasets, loaded, scaled and split."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from .. import datasets
from .common import UsageError, first_line

DATASETS: tuple[str, ...] = (
    "digits",
    "iris",
    "fashion-mnist",
    "mnist",
    "runge",
    "doughnut",
    "squares",
    "spirals",
)
_IDX_SETS = ("fashion-mnist", "mnist")  # the ones that take :DIR and come pre-split
_REGRESSION_SETS = ("runge",)
_ALIASES = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist"}
_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class DataSpec:
    """What ``--data`` names: a dataset and, for the IDX sets, an optional directory."""

    name: str
    path: str | None = None

    def __str__(self) -> str:
        return self.name if self.path is None else f"{self.name}:{self.path}"


def parse_data(text: str) -> DataSpec:
    """Parse ``--data``: ``NAME`` or ``NAME:DIR`` (DIR only for mnist and fashion-mnist)."""
    name, sep, path = text.partition(":")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})"
        )
    if sep and key not in _IDX_SETS:
        raise argparse.ArgumentTypeError(
            f"dataset {key!r} takes no directory (only mnist:DIR and fashion-mnist:DIR do)"
        )
    if sep and not path:
        raise argparse.ArgumentTypeError(f"empty directory after '{key}:' (write {key}:DIR)")
    return DataSpec(key, path or None)


@dataclass
class Data:
    """A dataset split into train and test parts, ready for the network (scaled, NumPy)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    regression: bool
    class_names: list[str]  # empty for regression

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        kind = "regression" if self.regression else f"{self.n_classes} classes"
        return (
            f"{self.name}: {len(self.X_train)} train / {len(self.X_test)} test samples, "
            f"{self.n_features} features, {kind}"
        )


def _idx_hint(name: str) -> str:
    files = "train-images-idx3-ubyte[.gz] and the three other IDX files"
    if name == "fashion-mnist":
        return (
            "install it with 'apt-get install dataset-fashion-mnist', or download it from "
            f"https://github.com/zalandoresearch/fashion-mnist and pass --data fashion-mnist:DIR, "
            f"DIR holding {files}"
        )
    return (
        f"pass --data mnist:DIR, DIR holding {files}, or run once online so that scikit-learn "
        "can download and cache MNIST"
    )


def load_data(spec: DataSpec, test_size: float = 0.2, seed: int = 0, n_samples: int = 1000) -> Data:
    """Load, scale and split the dataset ``spec`` (see the module docstring)."""

    name = spec.name
    if name in _IDX_SETS:
        loader = datasets.load_fashion_mnist if name == "fashion-mnist" else datasets.load_mnist
        try:
            X_train, y_train, X_test, y_test = loader(spec.path)  # pixels scaled to [0, 1]
        except datasets.DatasetNotFoundError as exc:
            raise UsageError(first_line(exc), _idx_hint(name)) from exc
    elif name in ("iris", "digits"):
        # iris: standardized with the training statistics; digits: pixels / 16
        loader = datasets.load_iris if name == "iris" else datasets.load_digits
        X_train, X_test, y_train, y_test = loader(split=True, test_size=test_size, seed=seed)
    else:  # synthetic sets: already O(1) in scale, so they are used as drawn
        maker = getattr(datasets, f"make_{name}")
        X, y = maker(n_samples=n_samples, seed=seed)
        X_train, X_test, y_train, y_test = _split(X, y, test_size, seed, name in _REGRESSION_SETS)
    regression = name in _REGRESSION_SETS
    return Data(
        str(spec),
        np.asarray(X_train),
        np.asarray(y_train),
        np.asarray(X_test),
        np.asarray(y_test),
        regression,
        [] if regression else _class_names(name, y_train, y_test),
    )


def _split(
    X: np.ndarray, y: np.ndarray, test_size: float, seed: int, regression: bool
) -> list[np.ndarray]:
    # deferred: scikit-learn's model_selection takes ~2 s to import
    from sklearn.model_selection import train_test_split

    n_test = math.ceil(test_size * len(X))
    if min(n_test, len(X) - n_test) < 2:
        raise UsageError(
            f"--test-size {test_size:g} of {len(X)} samples leaves fewer than 2 samples in the "
            "train or test part",
            "raise --n-samples or change --test-size",
        )
    if not regression:
        try:
            return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
        except ValueError:  # a class too rare to stratify: a plain random split instead
            pass
    return train_test_split(X, y, test_size=test_size, random_state=seed)


def _class_names(name: str, *labels: np.ndarray) -> list[str]:
    k = int(max(int(np.max(y, initial=0)) for y in labels)) + 1
    if name == "iris":
        from sklearn.datasets import load_iris  # deferred, like model_selection

        return [str(n) for n in load_iris().target_names]
    if name == "fashion-mnist" and k == len(_FASHION_CLASSES):
        return list(_FASHION_CLASSES)
    return [str(i) for i in range(k)]


def subsample(data: Data, limit: int | None, seed: int) -> Data:
    if limit is None or limit >= len(data.X_train):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data.X_train))[:limit])
    data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    return data
