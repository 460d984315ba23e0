"""``train`` and the digits demo: check every output first, fit with progress that suits where
the output goes, report, save (on Ctrl-C too: the last finished epoch)."""

from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

import numpy as np

from .. import datasets
from ..backend import BackendUnavailableError, resolve_computing
from ..distributed import limit_rank_threads
from ..io import format_for
from ..network import NN
from ..plotting import plot_history
from ..tabular import is_data_file
from .common import (
    BACKENDS_HINT,
    EXIT_OK,
    Interrupted,
    UsageError,
    check_output_path,
    first_line,
    has_module,
    progress_mode,
    refuse_existing_output,
    refuse_overwriting_input,
)
from .data import Data, ReadOptions, Scaler, load_source, prepare, subsample
from .record import make_record
from .report import metrics_table, scores

#: The demo's options and their defaults (the main job: ``anyarray-nn`` with no command).
DEMO_DEFAULTS: dict[str, Any] = {
    "backend": "auto",
    "epochs": 30,
    "seed": 0,
    "dtype": "float32",
    "quiet": False,
}


def resolve_backend(backend: str, device: Any, dtype: str | None) -> Any:
    """The Backend, or a UsageError pointing at ``anyarray-nn backends``."""
    try:
        return resolve_computing(backend, device, dtype or "float32")
    except (BackendUnavailableError, ValueError) as exc:
        raise UsageError(first_line(exc), BACKENDS_HINT) from exc


def model_format(path: str, option: str) -> str:
    """``"safetensors"`` or ``"npz"`` by extension, or a UsageError before any work."""
    try:
        return format_for(path)
    except ValueError:
        raise UsageError(
            f"{option} {path!r}: the extension names no model format",
            "name the file *.safetensors or *.npz",
        ) from None


def _check_outputs(args: argparse.Namespace) -> None:
    """Everything ``train`` will write, checked before it trains."""
    if args.plot is not None:
        if not has_module("matplotlib"):
            raise UsageError(
                "--plot needs matplotlib, which is not installed",
                "pip install 'anyarray_nn[plot]', or leave out --plot",
            )
        check_output_path(args.plot, "--plot")
    if args.save is not None:
        model_format(args.save, "--save")
        check_output_path(args.save, "--save")
    target = args.target if args.target is not None and is_data_file(args.target) else None
    for path, option in ((args.save, "--save"), (args.plot, "--plot")):
        if path is not None and args.data.is_file:
            refuse_overwriting_input(path, option, [args.data.path, target])
        refuse_existing_output(path, option, args.overwrite)


def training_data(args: argparse.Namespace) -> Data:
    """``--data`` read, split, scaled (``--scale``) and subsampled (``--limit``)."""
    if not args.data.is_file:
        for option in ("target", "header", "task", "skip_rows", "features", "drop"):
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise UsageError(f"{flag} applies to --data FILE, not to {args.data}")
    opts = ReadOptions(
        args.test_size, args.data_seed, args.n_samples, args.target, args.header, args.task
    )
    opts.task = args.task or "auto"
    opts.skip_rows = args.skip_rows or 0
    opts.select, opts.drop = args.features, args.drop
    source = load_source(args.data, opts)
    assert source.X_train is not None  # training data is always split
    if args.data.is_file and args.task is None:
        _say_task(source)
    scaler = {"auto": source.scaler, "standard": Scaler.standard(source.X_train), "none": None}
    scaler = scaler[args.scale]
    data = prepare(source, scaler, source.classes, source.class_names)
    return subsample(data, args.limit, args.data_seed)


def _say_task(source: Any) -> None:
    """One line: the task train chose for a data file, why, and how to choose the other."""
    task, other = ("regression", "classification")
    if not source.regression:
        task, other = other, task
    print(f"task: {task} of {source.target!r}: {source.task_reason} (--task {other} to change)")


def _network(args: argparse.Namespace, data: Data, backend: Any) -> NN:
    n_out = 1 if data.regression else data.n_classes
    return NN(
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


def _communicator(args: argparse.Namespace) -> Any:
    """``MPI.COMM_WORLD`` for ``--distributed``, else ``None`` (one process)."""
    if not getattr(args, "distributed", False):
        return None
    try:
        from mpi4py import MPI  # optional (the mpi extra)
    except ImportError:
        raise UsageError(
            "--distributed needs mpi4py, which is not installed",
            "pip install 'anyarray_nn[mpi]', then start it with mpiexec -n N",
        ) from None
    try:
        threads = limit_rank_threads(MPI.COMM_WORLD, args.threads_per_rank)
    except ValueError as exc:
        raise UsageError(first_line(exc)) from None
    _announce_ranks(MPI.COMM_WORLD, threads)
    return MPI.COMM_WORLD


def _announce_ranks(comm: Any, threads: str) -> None:
    """Rank 0 says how many ranks train, and with how many threads each; a single one (no
    ``mpiexec``) is warned about."""
    if comm.Get_rank() != 0:
        return
    size = comm.Get_size()
    print(f"distributed: {size} MPI rank{'s' if size != 1 else ''}, {threads}")
    if size == 1:
        print(
            "warning: --distributed found one MPI rank, so this trains as one process; "
            "start it with mpiexec -n N anyarray-nn train ... --distributed",
            file=sys.stderr,
        )


def cmd_train(args: argparse.Namespace) -> int:
    """Train on ``--data``, print train and test metrics, save the model and the curves.

    With ``--distributed`` every MPI rank runs this; rank 0 alone prints and writes files."""
    comm = _communicator(args)
    if comm is not None and comm.Get_rank() != 0:
        with redirect_stdout(io.StringIO()):  # the other ranks train silently
            args.save = args.plot = None
            return _train(args, comm)
    return _train(args, comm)


def _prepare(args: argparse.Namespace) -> tuple[Any, Data]:
    _check_outputs(args)
    return resolve_backend(args.backend, args.device, args.dtype), training_data(args)


def _prepare_everywhere(args: argparse.Namespace, comm: Any) -> tuple[Any, Data]:
    """:func:`_prepare` on every rank, then agree that all are ready before the first
    collective: a rank that failed (a bad --save, a missing file) must not leave the others
    waiting in fit; every rank then stops with its message."""
    if comm is None:
        return _prepare(args)
    error: Exception | None = None
    try:
        prepared = _prepare(args)
    except Exception as exc:  # any failure: the other ranks must hear of it
        error = exc
    messages = comm.allgather(None if error is None else first_line(error))
    if error is not None:
        raise error
    for rank, message in enumerate(messages):
        if message is not None:
            raise UsageError(f"rank {rank} of {len(messages)} could not start: {message}")
    return prepared


def _train(args: argparse.Namespace, comm: Any) -> int:
    backend, data = _prepare_everywhere(args, comm)
    net = _network(args, data, backend)
    net.metadata = make_record(data, args)
    verbose = progress_mode(args.verbose)
    if verbose:
        print(f"data: {data.describe()}")
        print(f"model: {net}")
    start = time.perf_counter()
    history = _fit(net, data, args, verbose, comm)
    elapsed = time.perf_counter() - start
    epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    print(f"trained {epochs} in {elapsed:.2f} s on {net.backend}")
    with np.errstate(all="ignore"):  # huge but finite weights: the table shows it
        train = scores(net, data.X_train, data.y_train, data.regression)
        test = scores(net, data.X_test, data.y_test, data.regression)
    print(metrics_table({"train": train, "test": test}))
    if args.save is not None:
        net.save(args.save, overwrite=args.overwrite)
        print(f"saved the model to {args.save} ({model_format(args.save, '--save')})")
    if args.plot is not None:
        families = [f for f in ("loss", "accuracy", "r2") if f in history]
        sizes = ",".join(map(str, [data.n_features, *args.layers, net.n_outputs]))
        title = f"{data.name}: MLP {sizes}, {args.optimizer} lr {args.lr:g}"
        plot_history(history, metrics=families, path=args.plot, title=title)
        print(f"saved the training curves to {args.plot}")
    return EXIT_OK


@contextmanager
def _quiet_numerics() -> Iterator[None]:
    """No NumPy overflow warnings (a diverging run is reported once, as an error) and not
    fit's own interruption warning (the command line says what happened instead)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.filterwarnings("ignore", message="fit interrupted", category=RuntimeWarning)
        yield


def _fit(net: NN, data: Data, args: argparse.Namespace, verbose: int, comm: Any = None) -> Any:
    try:
        with _quiet_numerics():
            return net.fit(
                data.X_train,
                data.y_train,
                epochs=args.epochs,
                batch_size=args.batch_size,
                optimizer=args.optimizer,
                lr=args.lr,
                validation_split=args.validation_split,
                clip_norm=args.clip_norm,
                verbose=verbose,
                comm=comm,
            )
    except KeyboardInterrupt:
        raise Interrupted(_save_interrupted(net, args)) from None


def _save_interrupted(net: NN, args: argparse.Namespace) -> str:
    """After Ctrl-C (fit has restored the last finished epoch): save it; say what happened."""
    done = net.epochs_trained_
    where = f"interrupted in epoch {done + 1} of {args.epochs}"
    if args.save is None:
        return f"{where} (nothing saved: no --save)"
    if done == 0:
        return f"{where}, before any epoch finished: nothing saved"
    net.save(args.save, overwrite=args.overwrite)
    epochs = f"{done} epoch{'s' if done != 1 else ''}"
    return f"{where}: saved the model after {epochs} to {args.save} ({format_for(args.save)})"


# -- the demo (the README's main job) --------------------------------------------------------


def _run_demo(backend: str, epochs: int, seed: int, dtype: str, quiet: bool) -> int:
    resolve_backend(backend, None, dtype)
    demo(backend, epochs, seed, dtype, verbose=0 if quiet else progress_mode(None))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``anyarray-nn demo``."""
    return _run_demo(args.backend, args.epochs, args.seed, args.dtype, args.quiet)


def cmd_default(args: argparse.Namespace) -> int:
    """No command: the demo, with the options given before any command."""
    given = {name: getattr(args, "demo_" + name) for name in DEMO_DEFAULTS}
    values = {n: DEMO_DEFAULTS[n] if v is None else v for n, v in given.items()}
    return _run_demo(**values)


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
