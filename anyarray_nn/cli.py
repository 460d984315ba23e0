"""Command line: ``anyarray-nn`` (or ``python -m anyarray_nn``).

Commands::

    anyarray-nn                      the digits demo (same as ``anyarray-nn demo``)
    anyarray-nn train --data iris --layers 128,64 --epochs 20 --save model.safetensors
    anyarray-nn evaluate model.safetensors --data iris
    anyarray-nn gradcheck --layers 8,6 --activation tanh --tol 1e-6
    anyarray-nn backends             which backends are usable here, and why not
    anyarray-nn demo                 train an MLP on scikit-learn's digits

``--data`` is one of ``digits``, ``iris``, ``fashion-mnist[:DIR]``, ``mnist[:DIR]`` (the four IDX
files in DIR; their own 60,000/10,000 split), ``runge`` (regression), ``doughnut``, ``squares`` or
``spirals``. The other sets are split by ``--test-size`` with ``--data-seed``; ``evaluate`` must
get the same ``--data`` options as ``train`` (the defaults agree) to see the same test split.

Exit status (scripts can rely on it):

    0    success
    1    a check failed: gradcheck's max relative error is not below --tol, or training diverged
    2    usage error: bad arguments, an unknown or missing dataset, an unusable backend or
         device, an unreadable model file, or a missing optional package (matplotlib for --plot)
    130  interrupted (Ctrl-C)
    141  the output was closed early (e.g. piped into head)

Components of your own (see the README's Extending section) become valid choices when their
module is imported first: ``ANYARRAY_NN_PLUGINS=mypackage.components anyarray-nn train ...``.

Errors are one line on stderr, ``anyarray-nn [COMMAND]: error: <what> (<hint>)``, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import activations as _activations
from . import datasets, metrics
from . import initializers as _initializers
from . import losses as _losses
from . import optimizers as _optimizers
from .backend import (
    DTYPE_NAMES,
    BackendUnavailableError,
    auto_backend,
    backend_names,
    backend_status,
    resolve,
)
from .datasets import DatasetNotFoundError
from .gradcheck import gradcheck
from .io import ModelFileError
from .network import NN, load
from .plotting import plot_history
from .training import TrainingDivergedError
from .validation import Interval

PROG = "anyarray-nn"
EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

EXIT_STATUS_HELP = """\
exit status:
  0    success
  1    a check failed: gradcheck's max relative error is not below --tol, or training diverged
  2    usage error: bad arguments, an unknown or missing dataset, an unusable backend or
       device, an unreadable model file, or a missing optional package (matplotlib for --plot)
  130  interrupted (Ctrl-C)
  141  the output was closed early (e.g. piped into head)"""

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
_BACKENDS_HINT = f"run '{PROG} backends' to see which backends are usable here"


class UsageError(Exception):
    """A problem with what the user asked for; reported as one line, exit status 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


# -- argument parsing ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: no usage dump, a pointer to ``--help`` instead."""

    def error(self, message: str) -> NoReturn:
        hint = "" if message.rstrip().endswith(")") else f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{hint}\n")


_positive_int = Interval("int", 1).parser()
_non_negative = Interval("real", 0.0).parser()
_positive = Interval("real", 0.0, closed="neither").parser()
_fraction = Interval("real", 0.0, 1.0, closed="neither").parser()  # (0, 1)
_rate = Interval("real", 0.0, 1.0, closed="left").parser()  # [0, 1)


def _layer_sizes(text: str) -> tuple[int, ...]:
    """``"128,64"`` -> ``(128, 64)``; ``""`` or ``"none"`` -> no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths like 128,64, got {text!r}"
        )
    return sizes


def _activation_names(text: str) -> str | list[str]:
    """One activation for all hidden layers, or a comma-separated name per hidden layer (any
    registered activation, aliases included)."""
    registry = _activations.registry
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in registry:
            valid = ", ".join(registry.names())
            raise argparse.ArgumentTypeError(f"unknown activation {name!r} (choose from {valid})")
    names = [registry.canonical(name) for name in names]
    return names[0] if len(names) == 1 else names


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


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (evaluate needs the same values as train)")
    g.add_argument(
        "--data",
        type=parse_data,
        required=True,
        metavar="NAME[:DIR]",
        help=f"dataset: {', '.join(DATASETS)}; mnist:DIR / fashion-mnist:DIR read the four IDX "
        "files from DIR (fashion-mnist defaults to Debian's dataset-fashion-mnist directory)",
    )
    g.add_argument(
        "--test-size",
        type=_fraction,
        default=0.2,
        help="test fraction for the sets without their own split (default 0.2)",
    )
    g.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="seed of the synthetic data and the train/test split (default 0)",
    )
    g.add_argument(
        "--n-samples",
        type=_positive_int,
        default=1000,
        help="points drawn for runge, doughnut, squares, spirals (default 1000)",
    )


def _add_backend_options(p: argparse.ArgumentParser, dtype_default: str | None) -> None:
    g = p.add_argument_group("backend")
    g.add_argument(
        "--backend",
        default="auto",
        help=f"{', '.join(backend_names())} or auto (default: CuPy if a GPU is usable, else NumPy)",
    )
    g.add_argument("--device", default=None, help="device on that backend, e.g. cuda:1, 0, device1")
    g.add_argument(
        "--dtype",
        default=dtype_default,
        choices=DTYPE_NAMES,
        help=f"parameter dtype (default {dtype_default or 'the saved one'})",
    )


#: The demo's options and their defaults (the main job: ``anyarray-nn`` with no command).
DEMO_DEFAULTS: dict[str, Any] = {
    "backend": "auto",
    "epochs": 30,
    "seed": 0,
    "dtype": "float32",
    "quiet": False,
}


def _add_demo_options(p: argparse.ArgumentParser, top_level: bool) -> None:
    """The demo's options; on the top-level parser they default to None so that giving them
    before another command can be detected (they would be silently ignored otherwise)."""
    prefix = "demo_" if top_level else ""
    g = p.add_argument_group("demo options") if top_level else p
    options: dict[str, dict[str, Any]] = {
        "backend": {"metavar": "BACKEND", "help": f"{', '.join(backend_names())} or auto"},
        "epochs": {"metavar": "EPOCHS", "type": _positive_int},
        "seed": {"metavar": "SEED", "type": int},
        "dtype": {"choices": DTYPE_NAMES},
        "quiet": {"action": "store_true", "help": "no progress bar"},
    }
    for name, kwargs in options.items():
        flags = ("-q", "--quiet") if name == "quiet" else (f"--{name}",)
        default = DEMO_DEFAULTS[name]
        kwargs.setdefault("help", "")
        if name != "quiet":
            kwargs["help"] = f"{kwargs['help']} (default {default})".lstrip()
        g.add_argument(*flags, dest=prefix + name, default=None if top_level else default, **kwargs)


def _add_progress_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-v",
        "--verbose",
        dest="verbose",
        action="store_const",
        const=1,
        default=1,
        help="a progress bar per epoch (tqdm if installed; the default)",
    )
    g.add_argument(
        "-q",
        "--quiet",
        dest="verbose",
        action="store_const",
        const=0,
        help="no progress, print the results only",
    )
    g.add_argument(
        "--epoch-lines",
        dest="verbose",
        action="store_const",
        const=2,
        help="one line per epoch instead of a bar (for logs)",
    )


def _registered(registry: Any) -> Callable[[str], str]:
    """An argparse type accepting any name in ``registry`` (aliases and spelling variants too),
    giving its registered spelling."""

    def parse(text: str) -> str:
        if text not in registry:
            raise argparse.ArgumentTypeError(
                f"unknown {registry.kind} {text!r} (choose from {', '.join(registry.names())})"
            )
        return registry.canonical(text)

    parse.__name__ = registry.kind
    return parse


def _add_penalty_options(g: Any) -> None:
    g.add_argument("--l1", type=_non_negative, default=0.0, help="L1 penalty (default 0)")
    g.add_argument("--l2", type=_non_negative, default=0.0, help="L2 penalty (default 0)")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="Dense neural networks on any Array API backend. With no command, run the "
        "digits demo.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=formatter,
    )
    parser.set_defaults(handler=_cmd_default)
    _add_demo_options(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        p = sub.add_parser(
            name, help=help, description=help, epilog=EXIT_STATUS_HELP, formatter_class=formatter
        )
        p.set_defaults(handler=handler)
        return p

    _add_train_options(
        command("train", "train an MLP on a dataset, report test metrics, save it", _cmd_train)
    )
    e = command("evaluate", "evaluate a saved model on a dataset's test split", _cmd_evaluate)
    e.add_argument("model", metavar="MODEL", help="a file written by 'train --save' or net.save")
    _add_data_options(e)
    _add_backend_options(e, None)
    _add_gradcheck_options(
        command(
            "gradcheck",
            "compare backprop with central differences on a random float64 net",
            _cmd_gradcheck,
        )
    )
    command("backends", "list backends and whether they are usable here", _cmd_backends)
    d = command("demo", "train an MLP on scikit-learn's digits (the default)", _cmd_demo)
    _add_demo_options(d, top_level=False)
    return parser


def _add_train_options(t: argparse.ArgumentParser) -> None:
    _add_data_options(t)
    m = t.add_argument_group("model and training")
    _add_architecture_options(m, (128, 64), "relu")
    m.add_argument(
        "--init",
        type=_registered(_initializers.registry),
        default=None,
        help=f"weight initializer, one of {', '.join(_initializers.registry.names())} "
        "(default: He for the ReLU family, Glorot otherwise)",
    )
    m.add_argument(
        "--optimizer",
        type=_registered(_optimizers.registry),
        default="adam",
        help=f"one of {', '.join(_optimizers.registry.names())} (default adam)",
    )
    m.add_argument("--lr", type=_positive, default=1e-3, help="learning rate (default 1e-3)")
    m.add_argument("--epochs", type=_positive_int, default=20, help="default 20")
    m.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    m.add_argument(
        "--dropout",
        type=_rate,
        default=0.0,
        help="dropout rate after each hidden layer, in [0, 1) (default 0)",
    )
    _add_penalty_options(m)
    m.add_argument(
        "--seed", type=int, default=0, help="seed of weights, shuffling, dropout (default 0)"
    )
    m.add_argument(
        "--validation-split",
        type=_rate,
        default=0.1,
        help="fraction of the training data held out for validation (default 0.1)",
    )
    m.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train on a random subset of N training samples (quick runs)",
    )
    _add_backend_options(t, "float32")
    o = t.add_argument_group("output")
    o.add_argument("--save", metavar="PATH", help="write the trained model (safetensors or npz)")
    o.add_argument("--plot", metavar="PNG", help="plot the training curves (needs matplotlib)")
    _add_progress_options(o)


def _add_architecture_options(g: Any, layers: tuple[int, ...], activation: str) -> None:
    widths = ",".join(map(str, layers))
    g.add_argument(
        "--layers",
        type=_layer_sizes,
        default=layers,
        metavar="W1,W2,...",
        help=f"hidden layer widths (default {widths}; 'none' for no hidden layer)",
    )
    g.add_argument(
        "--activation",
        type=_activation_names,
        default=activation,
        help=f"hidden activation, or one per hidden layer like relu,tanh (default {activation}; "
        f"any of {', '.join(_activations.registry.names())})",
    )


def _add_gradcheck_options(g: argparse.ArgumentParser) -> None:
    _add_architecture_options(g, (8, 6), "tanh")
    g.add_argument(
        "--output",
        type=_registered(_activations.registry),
        default="softmax",
        help="output activation: softmax, sigmoid, identity, ... (default softmax)",
    )
    g.add_argument(
        "--loss",
        type=_registered(_losses.registry),
        default=None,
        help=f"one of {', '.join(_losses.registry.names())} (default: the natural loss of "
        "--output)",
    )
    g.add_argument("--inputs", type=_positive_int, default=4, help="input features (default 4)")
    g.add_argument("--outputs", type=_positive_int, default=3, help="output units (default 3)")
    g.add_argument("--samples", type=_positive_int, default=16, help="random samples (default 16)")
    _add_penalty_options(g)
    g.add_argument("--eps", type=_positive, default=1e-5, help="finite-difference step")
    g.add_argument(
        "--tol",
        type=_positive,
        default=1e-6,
        help="pass if the max relative error is below this (default 1e-6)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")


# -- data ------------------------------------------------------------------------------------


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


def _first_line(exc: BaseException | str) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


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
            raise UsageError(_first_line(exc), _idx_hint(name)) from exc
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


def _subsample(data: Data, limit: int | None, seed: int) -> Data:
    if limit is None or limit >= len(data.X_train):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data.X_train))[:limit])
    data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    return data


# -- metrics and tables ----------------------------------------------------------------------


def scores(net: Any, X: np.ndarray, y: np.ndarray, regression: bool) -> dict[str, float]:
    """The metrics the CLI reports, in display order (host-side, from ``anyarray_nn.metrics``)."""

    loss = net.evaluate(X, y, batch_size=4096)["loss"]
    if regression:
        pred = net.predict(X, batch_size=4096)
        return {"loss": loss, "mse": metrics.mse(y, pred), "r2": metrics.r2_score(y, pred)}
    pred = net.predict_classes(X, batch_size=4096)
    p, r, f1 = metrics.precision_recall_f1(y, pred, average="macro")
    return {
        "loss": loss,
        "accuracy": metrics.accuracy(y, pred),
        "precision (macro)": p,
        "recall (macro)": r,
        "f1 (macro)": f1,
    }


def _fmt(value: float) -> str:
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4f}"


def metrics_table(columns: dict[str, dict[str, float]]) -> str:
    """Rows of metrics, one column per data part, e.g. ``{"train": {...}, "test": {...}}``."""
    names = list(next(iter(columns.values())))
    width = max(len("metric"), *(len(n) for n in names))
    cells = {part: [_fmt(values[n]) for n in names] for part, values in columns.items()}
    widths = {part: max(len(part), *(len(c) for c in col)) for part, col in cells.items()}
    lines = [f"{'metric':<{width}}" + "".join(f"  {p:>{widths[p]}}" for p in columns)]
    for i, n in enumerate(names):
        lines.append(f"{n:<{width}}" + "".join(f"  {cells[p][i]:>{widths[p]}}" for p in columns))
    return "\n".join(lines)


def confusion_table(cm: np.ndarray, class_names: Sequence[str]) -> str:
    """A confusion matrix as text: rows are true classes, columns predicted classes (by index)."""
    k = cm.shape[0]
    corner = "true \\ pred"
    rows = [f"{i} {n}" if n != str(i) else str(i) for i, n in enumerate(class_names)]
    label_w = max(len(corner), *(len(r) for r in rows))
    cell_w = max(len(str(k - 1)), len(str(int(cm.max(initial=0)))))
    head = f"{corner:<{label_w}}" + "".join(f" {j:>{cell_w}}" for j in range(k))
    body = [
        f"{rows[i]:<{label_w}}" + "".join(f" {int(c):>{cell_w}}" for c in cm[i]) for i in range(k)
    ]
    return "\n".join([head, *body])


# -- commands --------------------------------------------------------------------------------


def _resolve_backend(backend: str, device: Any, dtype: str | None) -> Any:
    try:
        return resolve(backend, device, dtype or "float32")
    except BackendUnavailableError as exc:
        raise UsageError(_first_line(exc), _BACKENDS_HINT) from exc
    except ValueError as exc:
        raise UsageError(_first_line(exc), _BACKENDS_HINT) from exc


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _check_output_path(path: str, option: str) -> None:
    """Fail before training, not after, when ``path`` cannot be written."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"{option} {path!r} is a directory", "give a file name")
    if not parent.is_dir():
        raise UsageError(f"{option} {path!r}: directory {str(parent)!r} does not exist")


def _cmd_train(args: argparse.Namespace) -> int:

    if args.plot is not None:
        if not _has_module("matplotlib"):
            raise UsageError(
                "--plot needs matplotlib, which is not installed",
                "pip install 'anyarray_nn[plot]', or leave out --plot",
            )
        _check_output_path(args.plot, "--plot")
    if args.save is not None:
        _check_output_path(args.save, "--save")
    backend = _resolve_backend(args.backend, args.device, args.dtype)
    data = load_data(args.data, args.test_size, args.data_seed, args.n_samples)
    data = _subsample(data, args.limit, args.data_seed)
    n_out = 1 if data.regression else data.n_classes
    net = NN(
        [data.n_features, *args.layers, n_out],
        activation=args.activation,
        init=args.init,
        output="identity" if data.regression else "softmax",
        loss="mse" if data.regression else "cross_entropy",
        backend=backend,
        dtype=backend.dtype_name,  # NN's own default would override the Backend's dtype
        seed=args.seed,
        dropout=args.dropout,
        l1=args.l1,
        l2=args.l2,
    )
    say = print if args.verbose else (lambda *a, **k: None)
    say(f"data: {data.describe()}")
    say(f"model: {net}")
    start = time.perf_counter()
    history = net.fit(
        data.X_train,
        data.y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        validation_split=args.validation_split,
        verbose=args.verbose,
    )
    elapsed = time.perf_counter() - start
    epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    print(f"trained {epochs} in {elapsed:.2f} s on {net.backend}")
    train = scores(net, data.X_train, data.y_train, data.regression)
    test = scores(net, data.X_test, data.y_test, data.regression)
    print(metrics_table({"train": train, "test": test}))
    if args.save is not None:
        net.save(args.save)
        print(f"saved the model to {args.save}")
    if args.plot is not None:
        families = [f for f in ("loss", "accuracy", "r2") if f in history]
        sizes = ",".join(map(str, [data.n_features, *args.layers, n_out]))
        title = f"{data.name}: MLP {sizes}, {args.optimizer} lr {args.lr:g}"
        plot_history(history, metrics=families, path=args.plot, title=title)
        print(f"saved the training curves to {args.plot}")
    return EXIT_OK


def _check_compatible(net: Any, data: Data, model: str) -> None:
    hint = "evaluate a model on the dataset (and --data options) it was trained on"
    if net.n_features != data.n_features:
        raise UsageError(
            f"{model} expects {net.n_features} features but {data.name} has {data.n_features}",
            hint,
        )
    if data.regression and net.is_classifier:
        raise UsageError(f"{model} is a classifier but {data.name} is a regression set", hint)
    if not data.regression:
        if not net.is_classifier:
            raise UsageError(f"{model} is a regressor but {data.name} has class labels", hint)
        expected = 1 if net.output.name == "sigmoid" and data.n_classes == 2 else data.n_classes
        if net.n_outputs != expected:
            raise UsageError(
                f"{model} has {net.n_outputs} outputs but {data.name} has {data.n_classes} classes",
                hint,
            )


def _cmd_evaluate(args: argparse.Namespace) -> int:

    _resolve_backend(args.backend, args.device, args.dtype)  # clear errors before reading
    net = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    data = load_data(args.data, args.test_size, args.data_seed, args.n_samples)
    _check_compatible(net, data, args.model)
    X, y = data.X_test, data.y_test
    print(f"model: {args.model}: {net}")
    print(f"data: {data.name} test split, {len(X)} samples")
    result = scores(net, X, y, data.regression)
    print(metrics_table({"test": result}))
    if data.regression:
        return EXIT_OK
    pred = net.predict_classes(X, batch_size=4096)
    print(f"{int(np.sum(pred == y))} of {len(y)} test samples classified correctly")
    labels = list(range(data.n_classes))
    print()
    print(metrics.classification_report(y, pred, labels=labels, target_names=data.class_names))
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(confusion_table(metrics.confusion_matrix(y, pred, labels=labels), data.class_names))
    return EXIT_OK


def gradcheck_data(net: Any, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs and targets that suit ``net``'s output and loss."""
    rng = np.random.default_rng([seed, 1])  # independent of the weight stream
    n, k = samples, net.n_outputs
    X = rng.normal(size=(n, net.n_features))
    loss, output = net.loss_fn.name, net.output.name
    if output == "softmax" and loss == "cross_entropy":
        y = rng.integers(0, k, size=n)
    elif loss == "cross_entropy":
        y = rng.dirichlet(np.ones(k), size=n)  # probability rows
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(n, k)).astype(np.float64)
    elif output == "identity":
        y = rng.normal(size=(n, k))
    else:
        y = rng.uniform(size=(n, k))
    return X, y


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    net = NN(
        [args.inputs, *args.layers, args.outputs],
        activation=args.activation,
        output=args.output,
        loss=args.loss,
        backend="numpy",
        dtype="float64",
        seed=args.seed,
        l1=args.l1,
        l2=args.l2,
    )
    X, y = gradcheck_data(net, args.samples, args.seed)
    print(f"gradcheck: {net}, {args.samples} samples, eps {args.eps:g}")
    with np.errstate(all="ignore"):  # a NaN result is reported as a failure below
        report = gradcheck(net, X, y, eps=args.eps, per_parameter=True)
    print(report)
    worst = report.max_relative_error
    if worst < args.tol:  # False for NaN
        print(f"PASS: max relative error {worst:.3e} < tol {args.tol:g}")
        return EXIT_OK
    why = (
        "backprop disagrees with central differences"
        if math.isfinite(worst)
        else "the loss or its gradients are not finite (does --loss suit --output?)"
    )
    print(f"FAIL: max relative error {worst:.3e} is not below tol {args.tol:g}: {why}")
    return EXIT_CHECK_FAILED


def _cmd_backends(args: argparse.Namespace) -> int:
    status = backend_status()
    for name, why in status.items():
        print(f"{name:<18}{'available' if why is None else 'unavailable: ' + why}")
    print(f"{'auto':<18}-> {auto_backend()}")
    return EXIT_OK


def _run_demo(backend: str, epochs: int, seed: int, dtype: str, quiet: bool) -> int:
    _resolve_backend(backend, None, dtype)
    demo(backend, epochs, seed, dtype, verbose=0 if quiet else 1)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    return _run_demo(args.backend, args.epochs, args.seed, args.dtype, args.quiet)


def _cmd_default(args: argparse.Namespace) -> int:
    """No command: the demo, with the options given before any command."""
    given = {name: getattr(args, "demo_" + name) for name in DEMO_DEFAULTS}
    values = {n: DEMO_DEFAULTS[n] if v is None else v for n, v in given.items()}
    return _run_demo(**values)


# -- the demo (the README's main job) --------------------------------------------------------


def demo(
    backend: str = "auto",
    epochs: int = 30,
    seed: int = 0,
    dtype: str = "float32",
    verbose: int = 1,
) -> float:
    """Train a 64-64-32-10 ReLU MLP with Adam on scikit-learn's digits (10% of the training
    images held out for validation); print progress; return the test accuracy."""
    X_train, X_test, y_train, y_test = datasets.load_digits(split=True, seed=seed)
    net = NN([64, 64, 32, 10], activation="relu", backend=backend, dtype=dtype, seed=seed)
    print(f"anyarray_nn digits demo on {net.backend}")
    print(f"data: {len(X_train)} train / {len(X_test)} test images of 8x8 digits; model: {net}")
    start = time.perf_counter()
    net.fit(
        X_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        optimizer="adam",
        lr=3e-3,
        validation_split=0.1,
        verbose=verbose,
    )
    elapsed = time.perf_counter() - start
    result = net.evaluate(X_test, y_test)
    print(
        f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f} "
        f"({epochs} epochs in {elapsed:.2f} s)"
    )
    return result["accuracy"]


# -- entry point -----------------------------------------------------------------------------


def _fail(
    message: str, hint: str | None = None, status: int = EXIT_USAGE, command: str | None = None
) -> int:
    """Print ``anyarray-nn[ COMMAND]: error: <first line of message> (<hint>)``; return status."""
    text = _first_line(message)
    if hint:
        text = f"{text.rstrip('.')} ({hint})"
    prog = PROG if command is None else f"{PROG} {command}"
    print(f"{prog}: error: {text}", file=sys.stderr)
    return status


def _run(args: argparse.Namespace) -> int:
    def fail(exc: BaseException, hint: str | None = None, status: int = EXIT_USAGE) -> int:
        return _fail(str(exc), hint, status, args.command)

    try:
        return args.handler(args)
    except UsageError as exc:
        return fail(exc, exc.hint)
    except TrainingDivergedError as exc:
        return fail(exc, "lower --lr or scale the data", EXIT_CHECK_FAILED)
    except BackendUnavailableError as exc:
        return fail(exc, _BACKENDS_HINT)
    except ModelFileError as exc:
        return fail(exc, f"was it written by '{PROG} train --save' or net.save?")
    except DatasetNotFoundError as exc:
        return fail(exc)
    except ImportError as exc:
        return fail(exc, "install the missing optional package")
    except BrokenPipeError:
        raise
    except (ValueError, OSError) as exc:
        return fail(exc)


#: Modules imported before the arguments are parsed (comma-separated), so that the components
#: they register (activations, optimizers, losses, backends, ...) are valid choices.
PLUGINS_ENV = "ANYARRAY_NN_PLUGINS"


def _import_plugins() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except Exception as exc:  # any failure in a user's module: one line, exit 2
            raise UsageError(
                f"{PLUGINS_ENV} names {module!r}, which failed to import "
                f"({type(exc).__name__}: {_first_line(exc)})",
                "check the module name and PYTHONPATH",
            ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        _import_plugins()
    except UsageError as exc:
        return _fail(str(exc), exc.hint)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is not None:
        given = [n for n in DEMO_DEFAULTS if getattr(args, "demo_" + n) is not None]
        if given:
            options = ", ".join(f"--{n}" for n in given)
            return _fail(
                f"{options} before the command {args.command!r} only applies to the demo",
                f"write it after '{args.command}'",
                command=args.command,
            )
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush at exit
    does not raise again (the recipe of Python's signal module documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
