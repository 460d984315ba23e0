"""The data a command works on: a built-in dataset or a file of your own, split into train and
test parts, scaled and labelled for the network.

A :class:`Source` is the raw data (features as read, labels as written in the file) with the
dataset's own scaling; :func:`prepare` turns it into :class:`Data`, the arrays the network
sees, with a given :class:`Scaler` and list of class labels (the model's, when it has them).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import datasets, tabular
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
FILE = "file"  # DataSpec.name of a data file of the user's own
FILE_TYPES = ", ".join(tabular.INPUT_TYPES)


@dataclass(frozen=True)
class DataSpec:
    """What ``--data`` names: a dataset (with a directory for the IDX sets), or a file."""

    name: str
    path: str | None = None

    @property
    def is_file(self) -> bool:
        """Whether this is a data file of the user's own (not a built-in dataset)."""
        return self.name == FILE

    def __str__(self) -> str:
        if self.is_file or self.path is None:
            return self.path or self.name
        return f"{self.name}:{self.path}"


def parse_data(text: str) -> DataSpec:
    """Parse ``--data``: a file (by extension), ``NAME``, or ``NAME:DIR`` (mnist and
    fashion-mnist only)."""
    if tabular.is_data_file(text):
        return DataSpec(FILE, text)
    name, sep, path = text.partition(":")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {name!r} (choose from {', '.join(DATASETS)}, or give a data file: "
            f"{FILE_TYPES})"
        )
    if sep and key not in _IDX_SETS:
        raise argparse.ArgumentTypeError(
            f"dataset {key!r} takes no directory (only mnist:DIR and fashion-mnist:DIR do)"
        )
    if sep and not path:
        raise argparse.ArgumentTypeError(f"empty directory after '{key}:' (write {key}:DIR)")
    return DataSpec(key, path or None)


# -- scaling ---------------------------------------------------------------------------------


@dataclass
class Scaler:
    """``x -> (x - mean) / scale``, per feature (arrays) or the same for all (scalars)."""

    mean: Any
    scale: Any

    @classmethod
    def standard(cls, X: np.ndarray) -> Scaler:
        """Zero mean and unit variance on ``X`` (a constant feature is only centred)."""
        std = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        X = X.astype(dtype, copy=False)
        return (X - np.asarray(self.mean, dtype)) / np.asarray(self.scale, dtype)

    def to_json(self) -> dict[str, Any]:
        """``{"mean": ..., "scale": ...}`` as numbers or lists (exact: JSON keeps every bit)."""
        return {"mean": np.asarray(self.mean).tolist(), "scale": np.asarray(self.scale).tolist()}

    @classmethod
    def from_json(cls, value: Any) -> Scaler | None:
        """The Scaler that :meth:`to_json` wrote, or None for no scaling."""
        if not isinstance(value, dict):
            return None
        return cls(np.asarray(value["mean"], np.float64), np.asarray(value["scale"], np.float64))


# -- raw sources -----------------------------------------------------------------------------


@dataclass
class ReadOptions:
    """How to read and split a source: from the command line, else the model's record."""

    test_size: float = 0.2
    data_seed: int = 0
    n_samples: int = 1000
    target: str | None = None
    header: bool | None = None
    task: str = "auto"
    features: list[str] | None = None  # the model's feature names: columns are chosen by name
    skip_rows: int = 0  # lines to ignore at the top of a CSV (--skip-rows)
    select: list[str] | None = None  # --features: only these columns are features
    drop: list[str] | None = None  # --drop: these columns are not features


@dataclass
class Source:
    """Raw data: features as read, labels as written (built-in sets: class indices), split into
    train and test parts (``X_train`` is ``None`` when all rows are for testing)."""

    name: str
    X_train: np.ndarray | None
    y_train: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    regression: bool
    classes: list[Any]  # label values, JSON-able (empty for regression)
    class_names: list[str]
    scaler: Scaler | None  # the dataset's own scaling (fitted on the training part)
    record: dict[str, Any]  # how to find the data again (saved in the model file)
    feature_names: list[str] | None = None
    target: str | None = None
    part: str = "test split"
    task_reason: str = ""  # why the task is what it is (said by train when it chose)


def load_source(spec: DataSpec, opts: ReadOptions, split: bool = True) -> Source:
    """Read ``spec``; ``split`` False keeps all the rows of a file as test rows."""
    if spec.is_file:
        return _file_source(spec, opts, split)
    if spec.name in _IDX_SETS:
        return _idx_source(spec)
    return _small_source(spec, opts)


def _idx_source(spec: DataSpec) -> Source:
    name = spec.name
    if name == "mnist" and spec.path is None:
        _announce_download()
    loader = datasets.load_fashion_mnist if name == "fashion-mnist" else datasets.load_mnist
    try:
        X_train, X_test, y_train, y_test = loader(spec.path, scale=False)
    except datasets.DatasetNotFoundError as exc:
        raise UsageError(first_line(exc), _idx_hint(name)) from exc
    k = len(_FASHION_CLASSES)
    names = list(_FASHION_CLASSES) if name == "fashion-mnist" else [str(i) for i in range(k)]
    record = {"dataset": name}
    if spec.path is not None:
        record["dir"] = str(Path(spec.path).resolve())
    X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    scaler = Scaler(0.0, 255.0)  # pixels in [0, 1]
    return Source(
        str(spec), X_train, y_train, X_test, y_test, False, list(range(k)), names, scaler, record
    )


def _announce_download() -> None:
    from sklearn.datasets import get_data_home  # deferred: a slow import

    print(
        "mnist: no directory given, so fetching 'mnist_784' from OpenML: a download the first "
        f"time, then scikit-learn's cache in {get_data_home()} (or give --data mnist:DIR)",
        file=sys.stderr,
        flush=True,
    )


def _idx_hint(name: str) -> str:
    files = "train-images-idx3-ubyte[.gz] and the three other IDX files"
    if name == "fashion-mnist":
        return (
            "install it with 'apt-get install dataset-fashion-mnist', or download it from "
            f"https://github.com/zalandoresearch/fashion-mnist and pass --data fashion-mnist:DIR, "
            f"DIR holding {files}"
        )
    return f"pass --data mnist:DIR, DIR holding {files}, or run once online"


def _small_source(spec: DataSpec, opts: ReadOptions) -> Source:
    """iris, digits and the synthetic sets, split by ``opts``."""
    name, seed, test_size = spec.name, opts.data_seed, opts.test_size
    scaler: Scaler | None = None
    record: dict[str, Any] = {"dataset": name}
    if name in ("iris", "digits"):
        loader = datasets.load_iris if name == "iris" else datasets.load_digits
        X_train, X_test, y_train, y_test = loader(
            split=True, test_size=test_size, scale=False, seed=seed
        )
        # iris: standardized with the training statistics; digits: pixels / 16
        scaler = Scaler.standard(X_train) if name == "iris" else Scaler(0.0, 16.0)
    else:  # synthetic sets: already O(1) in scale, so they are used as drawn
        record["n_samples"] = opts.n_samples
        X, y = getattr(datasets, f"make_{name}")(n_samples=opts.n_samples, seed=seed)
        X_train, X_test, y_train, y_test = _split(X, y, test_size, seed, name in _REGRESSION_SETS)
    regression = name in _REGRESSION_SETS
    classes = [] if regression else list(range(_n_classes(y_train, y_test)))
    return Source(
        name, X_train, y_train, X_test, y_test, regression, classes,
        _class_names(name, classes), scaler, record,
    )  # fmt: skip


def _n_classes(*labels: np.ndarray) -> int:
    return int(max(int(np.max(y, initial=0)) for y in labels)) + 1


def _class_names(name: str, classes: list[Any]) -> list[str]:
    if name == "iris":
        from sklearn.datasets import load_iris  # deferred, like model_selection

        return [str(n) for n in load_iris().target_names]
    return [str(c) for c in classes]


def _split(
    X: np.ndarray,
    y: np.ndarray,
    test_size: float,
    seed: int,
    regression: bool,
    hint: str = "raise --n-samples or change --test-size",
) -> list[np.ndarray]:
    """A train/test split, stratified by class when every class is common enough."""
    # deferred: scikit-learn's model_selection takes ~2 s to import
    from sklearn.model_selection import train_test_split

    n_test = math.ceil(test_size * len(X))
    if min(n_test, len(X) - n_test) < 2:
        raise UsageError(
            f"--test-size {test_size:g} of {len(X)} samples leaves fewer than 2 samples in the "
            "train or test part",
            hint,
        )
    if not regression:
        try:
            return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
        except ValueError:  # a class too rare to stratify: a plain random split instead
            pass
    return train_test_split(X, y, test_size=test_size, random_state=seed)


# -- files of your own -----------------------------------------------------------------------


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes: the record of which file a model was trained on."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_target(table: tabular.Table, target: str | None) -> tuple[np.ndarray, int | None, str]:
    """The labels named by ``--target``: (values, their column or None, their name)."""
    if target is None:
        if table.array("y") is not None:  # an .npz with X and y
            return table.array("y"), None, "y"
        raise UsageError(
            f"{table.path}: which column holds the labels? --target is required",
            "name it, e.g. --target species, or give its position, e.g. --target -1 for the last",
        )
    values = table.array(target)
    if values is not None:  # an array of the .npz, or a second .npy file (recorded in full)
        name = str(Path(target).resolve()) if tabular.is_data_file(target) else target
        return values, None, name
    column = table.column(target)
    name = table.names[column] if table.names is not None else str(column)
    return table.labels(column), column, name


def feature_columns(
    table: tabular.Table,
    names: list[str] | None,
    skip: int | None,
    target: str | None,
    opts: ReadOptions | None = None,
) -> list[int]:
    """The feature columns of ``table``: by ``names`` (the model's) when the file has names
    too, in the model's order, with only the label column ``target`` allowed besides them
    (and the columns the model was told to leave out: ``--drop``'s, or all but ``--features``');
    else every column but ``skip``, as ``--features`` / ``--drop`` choose."""
    select, drop = (opts.select, opts.drop) if opts is not None else (None, None)
    if table.names is None or names is None:
        return selected_columns(table, skip, select, drop)
    missing = [n for n in names if n not in table.names]
    if missing:
        raise UsageError(
            f"{table.path} lacks the feature column(s) {', '.join(map(repr, missing))} that the "
            "model was trained on"
        )
    left_out = set(drop or ()) if select is None else set(table.names)
    extra = [n for n in table.names if n not in names and n != target and n not in left_out]
    if extra:
        raise UsageError(
            f"{table.path} has column(s) {', '.join(map(repr, extra))} that the model was not "
            "trained on",
            "drop them: besides the features, only the label column may be there (or train "
            "with --drop or --features, which the model then remembers)",
        )
    return [table.names.index(n) for n in names]


def selected_columns(
    table: tabular.Table, skip: int | None, select: list[str] | None, drop: list[str] | None
) -> list[int]:
    """Every column but the label column ``skip``; only ``select``'s (in its order), or all
    but ``drop``'s, each a name or a position."""
    if select is not None:
        columns = [table.column(spec) for spec in select]
        if skip is not None and skip in columns:
            raise UsageError(f"--features names the label column {table.label(skip)}")
        if len(set(columns)) < len(columns):
            raise UsageError("--features names a column twice")
        return columns
    dropped = {table.column(spec) for spec in drop or ()}
    return [c for c in range(table.n_columns) if c != skip and c not in dropped]


#: A classifier needs several examples of each class: with fewer rows than this per distinct
#: value on average (and more than MANY_CLASSES values), whole numbers are taken as quantities.
ROWS_PER_CLASS = 5
MANY_CLASSES = 20


def choose_task(y: np.ndarray, task: str, where: str, decimals: bool = False) -> tuple[bool, str]:
    """``(regression?, why)`` for labels ``y``: ``task`` when given, else from the labels.

    Text and integer-coded labels are classes; values with fractions, values written as
    decimals (``151.0``, ``decimals``) and whole numbers with far more distinct values than a
    classifier can learn from the rows (under ``ROWS_PER_CLASS`` rows each) are regression."""
    numeric = y.dtype.kind == "f"
    if task == "regression":
        if not numeric:
            row = next(i for i, v in enumerate(y.tolist()) if not _is_float(v))
            raise UsageError(
                f"{where}: --task regression needs numeric labels, but row {row} (counting "
                f"data rows from 0) has {y[row]!r}"
            )
        return True, "--task regression"
    if task == "classification":
        return False, "--task classification"
    if not numeric:
        return False, "the labels are text"
    if not bool(np.all(y == np.round(y))):
        return True, "the labels have fractions"
    if decimals:
        return True, "the labels are written as decimals, like 151.0"
    n_values = len(np.unique(y))
    if n_values > MANY_CLASSES and n_values * ROWS_PER_CLASS > len(y):
        return True, (
            f"{n_values} distinct whole numbers in {len(y)} rows are too many to learn as classes"
        )
    return False, f"the labels are whole numbers, {n_values} classes"


def _is_float(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def label_values(y: np.ndarray) -> list[Any]:
    """The sorted distinct labels as JSON-able values (int for whole numbers)."""
    values = np.unique(y)
    if values.dtype.kind == "f" and np.all(values == np.round(values)):
        return [int(v) for v in values]
    return values.tolist()


def _file_source(spec: DataSpec, opts: ReadOptions, split: bool) -> Source:
    path = str(spec.path)
    table = tabular.open_table(path, opts.header, opts.skip_rows)
    y, target_column, target = _read_target(table, opts.target)
    columns = feature_columns(table, opts.features, target_column, target, opts)
    if not columns:
        raise UsageError(f"{path} has no feature columns besides the labels {target!r}")
    X = table.numeric(columns)
    if len(y) != len(X):
        raise UsageError(f"{path}: {len(X)} rows of features but {len(y)} labels")
    regression, reason = choose_task(y, opts.task, path, table.decimal_labels)
    classes = [] if regression else label_values(y)
    if not regression and len(classes) < 2:
        raise UsageError(f"{path}: every label is {classes[0]!r}: there is nothing to learn")
    record = {"file": str(Path(path).resolve()), "sha256": file_digest(path), "target": target}
    record["header"] = table.header
    record["read"] = {  # as given: for new files
        "header": opts.header, "skip_rows": opts.skip_rows, "features": opts.select,
        "drop": opts.drop,
    }  # fmt: skip
    if target_column is None and tabular.is_data_file(target):  # labels in a second file
        record["target_sha256"] = file_digest(target)
    names = None if table.names is None else [table.names[c] for c in columns]
    source = Source(
        path, None, None, X, y, regression, classes, [str(c) for c in classes], None, record,
        names, target, "all rows", reason,
    )  # fmt: skip
    if split:
        parts = _split(X, y, opts.test_size, opts.data_seed, regression, "change --test-size")
        source.X_train, source.X_test, source.y_train, source.y_test = parts
        source.part = (
            f"the held-out test split (test size {opts.test_size:g}, seed {opts.data_seed})"
        )
    source.scaler = Scaler.standard(source.X_train if split else X)
    return source


# -- ready for the network -------------------------------------------------------------------


@dataclass
class Data:
    """Data ready for the network: scaled features, labels as class indices (or numbers)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    regression: bool
    class_names: list[str]  # empty for regression
    classes: list[Any] = field(default_factory=list)  # the label of each class index
    scaler: Scaler | None = None
    source: Source | None = None

    @property
    def n_features(self) -> int:
        """Columns of the features."""
        return int(self.X_test.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.class_names)

    def describe(self) -> str:
        """One line: name, train/test sizes, features, classes."""
        kind = "regression" if self.regression else f"{self.n_classes} classes"
        return (
            f"{self.name}: {len(self.X_train)} train / {len(self.X_test)} test samples, "
            f"{self.n_features} features, {kind}"
        )


def encode_labels(y: np.ndarray, classes: list[Any], where: str) -> np.ndarray:
    """Labels as indices into ``classes`` (compared as text for strings, else as numbers)."""
    text = any(isinstance(c, str) for c in classes)
    key = str if text else float
    index = {key(c): i for i, c in enumerate(classes)}
    values = y.astype(str) if text else y
    codes = []
    for value in values.tolist():
        try:
            codes.append(index[key(value)])
        except (KeyError, ValueError):  # a new label, or text where the model has numbers
            shown = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
            raise UsageError(
                f"{where}: the label {value!r} is not one of the model's classes ({shown})",
                "evaluate on data with the classes the model was trained on",
            ) from None
    return np.array(codes, dtype=np.int64)


def prepare(
    source: Source, scaler: Scaler | None, classes: list[Any], class_names: list[str]
) -> Data:
    """Scale ``source``'s features and encode its labels for the network."""

    def features(X: np.ndarray | None) -> np.ndarray:
        if X is None:
            return np.empty((0, source.X_test.shape[1]))
        return X if scaler is None else scaler(X)

    def labels(y: np.ndarray | None) -> np.ndarray:
        if y is None:
            return np.empty(0, dtype=np.float64 if source.regression else np.int64)
        if source.regression:
            return y.astype(np.float64)
        return encode_labels(y, classes, source.name)

    return Data(
        source.name, features(source.X_train), labels(source.y_train), features(source.X_test),
        labels(source.y_test), source.regression, [] if source.regression else class_names,
        classes, scaler, source,
    )  # fmt: skip


def subsample(data: Data, limit: int | None, seed: int) -> Data:
    """Keep a random ``limit`` of the training rows (all when ``limit`` is None or larger)."""
    if limit is None or limit >= len(data.X_train):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data.X_train))[:limit])
    data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    return data
