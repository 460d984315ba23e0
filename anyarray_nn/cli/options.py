"""Argument parsing: argparse types and the option groups of each command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from .. import activations as _activations
from .. import initializers as _initializers
from .. import losses as _losses
from .. import optimizers as _optimizers
from ..backend import BACKENDS, DTYPE_NAMES
from ..validation import Interval
from . import commands, export, train
from .common import EXIT_STATUS_HELP, EXIT_USAGE, PROG
from .data import DATASETS, FILE_TYPES, parse_data
from .export import add_export_options
from .train import DEMO_DEFAULTS


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: no usage dump, a pointer to ``--help`` instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False  # --layer is not silently --layers
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = "" if message.rstrip().endswith(")") else f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{hint}\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse's, but an unknown option is reported by the command it was given to,
        pointing to that command's help (which lists its options)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            prog = self.prog if command is None else f"{self.prog} {command}"
            self.exit(
                EXIT_USAGE,
                f"{prog}: error: unrecognized arguments: {' '.join(extras)} "
                f"(see '{prog} --help')\n",
            )
        return parsed


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


def _hidden_activations() -> list[str]:
    """The registered activations a hidden layer may use: all but softmax, which NN refuses
    there (an output activation: a hidden softmax layer trains to chance)."""
    return [name for name in _activations.registry.names() if name != "softmax"]


def _activation_names(text: str) -> str | list[str]:
    """One activation for all hidden layers, or a comma-separated name per hidden layer (any
    registered activation, aliases included, but softmax)."""
    registry = _activations.registry
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in registry or registry.canonical(name) == "softmax":
            valid = ", ".join(_hidden_activations())
            what = f"unknown activation {name!r}"
            if name in registry:
                what = f"{name!r} is an output activation, not a hidden one"
            raise argparse.ArgumentTypeError(f"{what} (choose from {valid})")
    names = [registry.canonical(name) for name in names]
    return names[0] if len(names) == 1 else names


def _skip_rows(text: str) -> int:
    """``--skip-rows``: a count of lines, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of lines (0 or more), got {text!r}")
    return value


def _header(text: str) -> bool | None:
    """``--header``: auto (None), yes (True) or no (False)."""
    choices = {"auto": None, "yes": True, "no": False}
    if text.lower() not in choices:
        raise argparse.ArgumentTypeError(f"expected auto, yes or no, got {text!r}")
    return choices[text.lower()]


_DATA_HELP = (
    f"a dataset: {', '.join(DATASETS)} (mnist:DIR and fashion-mnist:DIR read the four IDX files "
    "in DIR; fashion-mnist defaults to Debian's dataset-fashion-mnist directory); or a data file "
    f"of your own: {FILE_TYPES} (Parquet needs pyarrow)"
)


def _column_list(text: str) -> list[str]:
    """``--features`` / ``--drop``: comma-separated column names or positions."""
    columns = [c.strip() for c in text.split(",")]
    if not all(columns):
        raise argparse.ArgumentTypeError(f"{text!r}: give column names or positions, a,b,c")
    return columns


def _add_file_options(g: Any, command: str) -> None:
    """--target and --header: how to read a data file."""
    target_help = {
        "train": "the labels of --data FILE: a column name, or a position (0 first, -1 last); "
        "an .npz's array (default y) or a second .npy file with one label per row",
        "evaluate": "the label column of --data FILE (default: the one the model was trained on)",
        "predict": "a label column to ignore in --data FILE (default: the model's, if present)",
    }[command]
    g.add_argument("--target", metavar="COLUMN", default=None, help=target_help)
    g.add_argument(
        "--header",
        type=_header,
        default=None,
        metavar="auto|yes|no",
        help="whether a CSV's first row names the columns (default auto: yes when none of its "
        "fields is a number)",
    )
    g.add_argument(
        "--skip-rows",
        type=_skip_rows,
        default=None,
        metavar="N",
        help="lines to ignore at the top of a CSV, before its header or first row (e.g. 1 for "
        "scikit-learn's bundled CSVs, whose first line holds counts); evaluate and predict "
        "default to the model's",
    )


def _add_data_options(p: argparse.ArgumentParser, command: str) -> None:
    """--data and how to read and split it; evaluate takes the model's record as defaults."""
    train = command == "train"
    title = "data" if train else "data (default: the data and split the model was trained on)"
    g = p.add_argument_group(title)
    g.add_argument(
        "--data", type=parse_data, required=train, metavar="NAME[:DIR]|FILE", help=_DATA_HELP
    )
    _add_file_options(g, command)
    default = (lambda value: value) if train else (lambda value: None)
    g.add_argument(
        "--test-size",
        type=_fraction,
        default=default(0.2),
        help="the held-out test fraction, for the sets without their own split (default 0.2)",
    )
    g.add_argument(
        "--data-seed",
        type=int,
        default=default(0),
        help="seed of the synthetic data and the train/test split (default 0)",
    )
    g.add_argument(
        "--n-samples",
        type=_positive_int,
        default=default(1000),
        help="points drawn for runge, doughnut, squares, spirals (default 1000)",
    )
    if train:
        columns = g.add_mutually_exclusive_group()
        columns.add_argument(
            "--features",
            type=_column_list,
            default=None,
            metavar="COLS",
            help="only these columns of --data FILE are features (names or positions, "
            "comma-separated); recorded, so evaluate and predict ignore the others",
        )
        columns.add_argument(
            "--drop",
            type=_column_list,
            default=None,
            metavar="COLS",
            help="columns of --data FILE that are not features, e.g. an ID or a date (names or "
            "positions, comma-separated); recorded, so evaluate and predict ignore them too",
        )
        g.add_argument(
            "--task",
            choices=("classification", "regression"),
            default=None,
            help="what to learn from --data FILE (default: classification when the labels "
            "are text or whole numbers, else regression)",
        )
        g.add_argument(
            "--scale",
            choices=("auto", "standard", "none"),
            default="auto",
            help="feature scaling, saved with the model (default auto: the dataset's own; "
            "standard, from the training part, for files)",
        )


def _computing() -> list[str]:
    """The backends a network can train and run on (not ndonnx, which records graphs)."""
    return [name for name, info in BACKENDS.items() if info.purpose is None]


def _add_backend_options(p: argparse.ArgumentParser, dtype_default: str | None) -> None:
    g = p.add_argument_group("backend")
    g.add_argument(
        "--backend",
        default="auto",
        help=f"{', '.join(_computing())} or auto (default: CuPy if a GPU is usable, else NumPy)",
    )
    g.add_argument("--device", default=None, help="device on that backend, e.g. cuda:1, 0, device1")
    g.add_argument(
        "--dtype",
        default=dtype_default,
        choices=DTYPE_NAMES,
        help=f"parameter dtype (default {dtype_default or 'the saved one'})",
    )


def _add_demo_options(p: argparse.ArgumentParser, top_level: bool) -> None:
    """The demo's options; on the top-level parser they default to None so that giving them
    before another command can be detected (they would be silently ignored otherwise)."""
    prefix = "demo_" if top_level else ""
    g = p.add_argument_group("demo options") if top_level else p
    options: dict[str, dict[str, Any]] = {
        "backend": {"metavar": "BACKEND", "help": f"{', '.join(_computing())} or auto"},
        "epochs": {"metavar": "EPOCHS", "type": _positive_int},
        "seed": {"metavar": "SEED", "type": int},
        "dtype": {"choices": DTYPE_NAMES},
        "quiet": {
            "action": "store_true",
            "help": "no progress (else a bar on a terminal, a line per epoch in a log)",
        },
    }
    for name, kwargs in options.items():
        flags = ("-q", "--quiet") if name == "quiet" else (f"--{name}",)
        default = DEMO_DEFAULTS[name]
        kwargs.setdefault("help", "")
        if name != "quiet":
            kwargs["help"] = f"{kwargs['help']} (default {default})".lstrip()
        g.add_argument(*flags, dest=prefix + name, default=None if top_level else default, **kwargs)


def _add_progress_options(p: Any) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-v",
        "--verbose",
        dest="verbose",
        action="store_const",
        const=None,
        default=None,
        help="progress (the default): a bar per epoch when the output is a terminal (tqdm if "
        "installed), else one line per epoch",
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
        help="one line per epoch, also on a terminal",
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
    """The ``anyarray-nn`` parser: the demo's options, then one subparser per command. The exit
    status block is in the top-level help only."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="Dense neural networks on any Array API backend. With no command, run the "
        "digits demo.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=formatter,
    )
    parser.set_defaults(handler=train.cmd_default)
    _add_demo_options(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        p = sub.add_parser(name, help=help, description=help, formatter_class=formatter)
        p.set_defaults(handler=handler)
        return p

    _add_train_options(
        command("train", "train an MLP, report test metrics, save it", train.cmd_train)
    )
    e = command("evaluate", "evaluate a saved model on held-out or new data", commands.cmd_evaluate)
    e.add_argument("model", metavar="MODEL", help="a file written by 'train --save'")
    _add_data_options(e, "evaluate")
    _add_backend_options(e, None)
    _add_predict_options(
        command("predict", "predict labels or numbers for the rows of a file", commands.cmd_predict)
    )
    _add_gradcheck_options(
        command("gradcheck", "compare backprop with central differences", commands.cmd_gradcheck)
    )
    add_export_options(command("export", "write a saved model as an ONNX file", export.cmd_export))
    command("backends", "list backends and whether they are usable here", commands.cmd_backends)
    d = command("demo", "train an MLP on scikit-learn's digits (the default)", train.cmd_demo)
    _add_demo_options(d, top_level=False)
    return parser


def _add_predict_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a file written by 'train --save'")
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        type=parse_data,
        required=True,
        metavar="FILE",
        help=f"the rows to predict: {FILE_TYPES}; a label column may stay (it is ignored)",
    )
    _add_file_options(g, "predict")
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        default="-",
        metavar="FILE",
        help="where to write: *.csv (a header row, then one row per input row), *.npy, or - for "
        "CSV on standard output (the default)",
    )
    o.add_argument("--proba", action="store_true", help="class probabilities, one column per class")
    o.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    _add_backend_options(p, None)


def _add_train_options(t: argparse.ArgumentParser) -> None:
    _add_data_options(t, "train")
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
        "--clip-norm",
        type=_positive,
        default=None,
        metavar="NORM",
        help="clip the gradients to this global 2-norm (steadies a diverging run)",
    )
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
    _add_train_output_options(t)


def _add_train_output_options(t: argparse.ArgumentParser) -> None:
    s = t.add_argument_group("scale-out")
    s.add_argument(
        "--distributed",
        action="store_true",
        help="train data-parallel over the MPI ranks this command runs on "
        "(mpiexec -n 4 anyarray-nn train --distributed ...); rank 0 prints and saves; needs "
        "mpi4py: pip install 'anyarray_nn[mpi]'",
    )
    s.add_argument(
        "--threads-per-rank",
        default=None,
        metavar="N|all",
        help="BLAS/OpenMP threads of each rank with --distributed (default: its share of the "
        "cores, cores // ranks on the machine, or $ANYARRAY_NN_RANK_THREADS; all: leave them)",
    )
    o = t.add_argument_group("output")
    o.add_argument(
        "--save",
        metavar="PATH",
        help="write the trained model: *.safetensors or *.npz (the extension decides); on "
        "Ctrl-C, the last finished epoch is saved",
    )
    o.add_argument("--plot", metavar="PNG", help="plot the training curves (needs matplotlib)")
    o.add_argument(
        "--overwrite", action="store_true", help="replace an existing --save or --plot file"
    )
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
        f"any of {', '.join(_hidden_activations())})",
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
