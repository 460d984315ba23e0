"""The training loop: epochs of shuffled mini-batches, each one call of one step function.

Its shape follows scikit-learn's ``_fit`` / ``_fit_stochastic`` / ``_backprop`` split:

- :func:`fit` checks the arguments and runs the epochs;
- :func:`_prepare_data` validates the data and moves it to the device once (:class:`_Data`);
- :func:`_train_epoch` is the one epoch loop: for each batch it calls the step function
  (:class:`Step`: ``(theta, opt_state, batch, step_number) -> (theta, opt_state, sums)``, or
  its compiled form, the same call; a compiled loop of the full batches is its fast path) and
  keeps the batch's sums on the device. :meth:`Step.body` is the one step body, eager and
  compiled;
- :func:`_end_epoch` does the bookkeeping: the epoch's one host read, the divergence check,
  validation, the history, callbacks, the snapshot and the learning-rate schedule.

Data-parallel training is the same loop: the step's reduction (:mod:`anyarray_nn.distributed`:
:class:`~anyarray_nn.distributed.LocalReduction` for one process, one allreduce per step for
several) is the only difference.

Rules the loop keeps (see docs/ARCHITECTURE.md):

- **No host sync inside a step**, and no Python branch on an array value: the step could be
  traced or compiled. The loss and the metric statistics stay on the device and are read back
  once per epoch, in one transfer. The progress bar shows a live running loss only on host
  backends (NumPy, torch on the CPU), where a read costs nothing.
- **Data moves once.** ``X`` and ``y`` are moved to the device once per ``fit``; batches are
  taken there with ``xp.take`` and the shuffle indices (from the host RNG, keyed by the global
  epoch number) are the only per-epoch transfer. The exception is *streaming*: when ``X`` is a
  :class:`numpy.memmap` (or ``stream=True``), ``X`` stays on the host and each batch's rows are
  copied to the device as they are needed, so inputs larger than device memory train in the
  same order and to the same numbers.
- **The write-back rule.** The step returns the new parameter vector and optimizer state and
  the loop keeps them; where arrays can be written, they are the same buffers, updated in place.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import distributed as _distributed
from . import kernels as _kernels
from . import optimizers as _optimizers
from . import schedules as _schedules
from . import writeback
from .backend import check_computes, to_numpy
from .layers import Dense, Pass
from .progress import Progress
from .random import STREAM_SHUFFLE, DeviceStep, host_rng
from .sparse import dense_rows, is_sparse
from .state import History, Snapshot
from .sums import METRICS, Sums, batch_stats, evaluate_arrays, metric_names, ss_tot
from .validation import Interval

if TYPE_CHECKING:
    from .network import NN

Array = Any

EPOCHS = Interval("int", 0)
BATCH_SIZE = Interval("int", 1)
POSITIVE = Interval("real", 0.0, closed="neither")
SPLIT = Interval("real", 0.0, 1.0, closed="neither")


class TrainingDivergedError(FloatingPointError, ValueError):
    """The training loss (or a weight) became NaN or inf. The network keeps its last finite
    weights. A ``ValueError`` too, as scikit-learn raises for a diverged fit, so code that
    catches ``ValueError`` catches it."""


# -- gradient clipping -----------------------------------------------------------------------------
def clip_by_global_norm(xp: Any, grad: Array, max_norm: float) -> Array:
    """``grad`` (the flat gradient) scaled so its 2-norm is at most ``max_norm``.

    Computed on the device without a host sync (``scale = min(1, max_norm / (norm + 1e-6))``,
    the same rule as ``torch.nn.utils.clip_grad_norm_``)."""
    norm = xp.sqrt(xp.sum(grad * grad))
    ratio = max_norm / (norm + 1e-6)
    return grad * xp.clip(ratio, max=1.0)


# -- data: validated at the API and moved once ----------------------------------------------------
@dataclass
class Batch:
    """One step's data on the device: rows ``X``, targets ``T``, optional sample weights ``w``;
    ``row_offset`` is the first row's position in the global batch (data-parallel slices);
    ``weight`` the global batch's weight sum (weighted runs); ``share`` this process's share
    of the batch (``None`` when it has no rows of it)."""

    X: Array
    T: Array
    w: Array | None
    rows: int
    row_offset: int = 0
    weight: Array | None = None
    share: Any = 1.0


@dataclass
class _Data:
    """What one ``fit`` trains on: rows (on the device, or on the host when streaming or
    sparse), targets and optional sample weights on the device, optional validation arrays,
    and R²'s denominators."""

    X: Array  # device array, or host array when streaming (a CSR matrix when sparse)
    T: Array
    n: int
    stream: bool
    val: tuple[Array, Array] | None = None
    ss_tot: np.ndarray | None = None
    w: Array | None = None  # sample weights (device), or None
    val_w: Array | None = None  # validation sample weights (device), or None

    def batch(
        self, net: NN, order: np.ndarray, order_d: Array, start: int, stop: int, lo: int, hi: int
    ) -> Batch:
        """The rows ``order[lo:hi]`` of the global batch ``order[start:stop]``, on the device."""
        xp, whole = net.xp, (lo, hi) == (start, stop)
        weight = None
        if self.w is not None and not whole:  # the global batch's weight, for the shares
            weight = xp.sum(xp.take(self.w, order_d[start:stop], axis=0))
        if hi <= lo:  # this process has no rows of the batch
            return Batch(None, None, None, stop - start, 0, weight, None)
        idx = order_d[lo:hi]
        if self.stream:  # host rows of this batch -> device (the documented exception)
            xb = dense_rows(net, self.X, lo, hi, rows=order[lo:hi])
        else:
            xb = xp.take(self.X, idx, axis=0)
        w_rows = None if self.w is None else xp.take(self.w, idx, axis=0)
        if w_rows is not None and whole:
            weight = xp.sum(w_rows)
        if whole:
            share: Any = 1.0
        else:
            share = (hi - lo) / (stop - start) if w_rows is None else xp.sum(w_rows) / weight
        tb = xp.take(self.T, idx, axis=0)
        return Batch(xb, tb, w_rows, stop - start, lo - start, weight, share)


def _prepare_data(
    net: NN,
    X: Any,
    y: Any,
    validation_data: Any,
    validation_split: float,
    stream: bool | None,
    names: list[str],
    sample_weight: Any = None,
) -> _Data:
    (Xt, yt, wt), val = _validation(net, X, y, sample_weight, validation_data, validation_split)
    sparse = is_sparse(Xt)
    stream = sparse or (isinstance(Xt, np.memmap) if stream is None else bool(stream))
    if stream and not sparse:
        X_rows = np.asarray(Xt) if not isinstance(Xt, np.ndarray) else Xt
        net.check_shape(tuple(X_rows.shape))
    else:
        X_rows = net.check_inputs(Xt)  # a validated CSR matrix (host) when sparse
    n = int(X_rows.shape[0])
    T = net.check_targets(yt, n)
    if n == 0:
        raise ValueError("X has no rows.")
    data = _Data(X_rows, T, n, stream, w=net.check_weights(wt, n))
    if val is not None:
        Xvd = net.check_inputs(val[0])
        if Xvd.shape[0] == 0:
            raise ValueError("validation_data has no rows; give at least one, or leave it out.")
        data.val = (Xvd, net.check_targets(val[1], Xvd.shape[0]))
        data.val_w = net.check_weights(val[2], Xvd.shape[0])
    if "r2" in names:
        data.ss_tot = ss_tot(net, T, data.w)
    return data


def _validation(
    net: NN, X: Any, y: Any, w: Any, validation_data: Any, validation_split: float
) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any] | None]:
    """``((X, y, w) to train on, (X_val, y_val, w_val) or None)``."""
    if validation_data is not None and validation_split:
        raise ValueError("Give either validation_data or validation_split, not both.")
    if validation_data is not None:
        if not (isinstance(validation_data, tuple | list) and len(validation_data) in (2, 3)):
            raise ValueError(
                "validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
                "sample_weight_val)."
            )
        return (X, y, w), (*validation_data, None)[:3]
    if not validation_split:
        return (X, y, w), None
    SPLIT.check("validation_split", validation_split)
    # deferred: scikit-learn's model_selection takes ~2 s to import; the core needs it only here
    from sklearn.model_selection import train_test_split

    Xh, yh = (X if is_sparse(X) else to_numpy(X)), to_numpy(y)
    arrays = [Xh, yh] if w is None else [Xh, yh, to_numpy(w)]
    labels = net.head.stratify_labels(yh)
    try:
        parts = train_test_split(
            *arrays, test_size=validation_split, random_state=net.seed % 2**32, stratify=labels
        )
    except ValueError:  # a class too rare to stratify: fall back to a plain random split
        parts = train_test_split(*arrays, test_size=validation_split, random_state=net.seed % 2**32)
    parts = [*parts, None, None]  # no weights: None for both
    return (parts[0], parts[2], parts[4]), (parts[1], parts[3], parts[5])


def _resolve_optimizer(net: NN, optimizer: Any, lr: float | None) -> _optimizers.Optimizer:
    if optimizer is None and net.optimizer is not None:
        opt = net.optimizer
    elif optimizer is None:
        opt = _optimizers.get("sgd", lr=lr if lr is not None else 0.01)
    elif isinstance(optimizer, str):
        opt = _optimizers.get(optimizer, **({} if lr is None else {"lr": lr}))
    else:
        opt = _optimizers.get(optimizer)
    if lr is not None:
        opt.lr = POSITIVE.check("lr", lr)
    if opt is not net.optimizer:
        old = net.optimizer
        if old is not None and old.t > 0:
            warnings.warn(
                f"fit(optimizer=...) replaces {type(old).__name__}, which has taken {old.t} "
                "steps: its state (e.g. Adam's moments) is discarded, so this run does not "
                "continue the previous one exactly. Leave optimizer=None to continue it (lr= "
                "still sets its learning rate).",
                UserWarning,
                stacklevel=4,
            )
        opt.build(net.theta)
        net.optimizer = opt
    return opt


def _resolve_schedule(
    net: NN, schedule: Any, lr: float | None, opt: _optimizers.Optimizer
) -> _schedules.LRSchedule | None:
    """The schedule of this ``fit``, with the optimizer's rate for its first epoch. One of the
    same kind and arguments as the schedule the training state holds continues that one at
    the global epoch (``lr=`` then sets its base rate); any other starts here, from the
    optimizer's rate. The training state keeps a copy, never the caller's object."""
    if schedule is None:
        return None
    given = _schedules.get(schedule)
    held, epoch = net.training_state.schedule, net.epochs_trained_
    if (
        held is not None
        and held.base_lr is not None
        and held.origin <= epoch
        and _same_schedule(held, given)
    ):
        if lr is not None and lr != held.base_lr:
            held.rebase(lr)
        with contextlib.suppress(NotImplementedError):  # no closed form, no record: keep
            opt.lr = held.resume(epoch - held.origin)
        return held
    sched = copy.deepcopy(given)
    opt.lr = sched.start(opt.lr)
    sched.origin = epoch
    net.training_state.schedule = sched
    return sched


def _same_schedule(a: _schedules.LRSchedule, b: _schedules.LRSchedule) -> bool:
    return type(a) is type(b) and a.config() == b.config()


# -- the step function ---------------------------------------------------------------------------
@dataclass
class Step:
    """The training step, one function of the state it changes::

        step(theta, opt_state, batch, step_number) -> (theta, opt_state, sums)

    ``theta`` is the flat parameter vector, ``opt_state`` the optimizer's state vectors,
    ``sums`` the batch's ``[loss, metric statistics...]`` (device arrays). It reads nothing
    back to the host and branches on no array value, so it can be traced and compiled: its
    :meth:`body` is the one step every path runs (this eager call, and
    :mod:`anyarray_nn.compiled`'s traced step on every compiler). The data-parallel reduction
    (``reduction``) wraps the local gradient and is a no-op for one process. Where arrays can
    be written, the returned ``theta`` and ``opt_state`` are the buffers that came in, updated
    in place."""

    net: NN
    opt: _optimizers.Optimizer
    names: list[str]
    clip_norm: float | None = None
    reduction: _distributed.LocalReduction = field(default_factory=_distributed.LocalReduction)
    #: A one-kernel form of the optimizer's update (:func:`anyarray_nn.kernels.kernel_for`,
    #: chosen once per ``fit``), or None.
    kernel: Any = None
    _wb: Any = field(default=None, init=False, repr=False, compare=False)

    def settings(self) -> tuple[Any, ...]:
        """Everything this step bakes in besides its arguments: the network's architecture,
        penalties and seed (the dropout key's host part; left out for a stack of Dense
        layers), backend, device and dtype; the optimizer's class and hyperparameters (not
        ``lr``, an argument) and state names; the metrics, the clipping norm and the
        reduction. A compiled step is kept under this key (:mod:`anyarray_nn.compiled`), so
        a setting added to the step belongs here, next to the fields it describes."""
        opt, net = self.opt, self.net
        config = net.config()
        if all(type(layer) is Dense for layer in net.layers):  # the seed keys dropout only
            config.pop("seed", None)
        hyper = {k: v for k, v in opt.config().items() if k != "lr"}  # lr is an argument
        return (
            repr(config), repr(net.backend), net.l1, net.l2, type(opt), repr(hyper),
            tuple(opt.state), tuple(self.names), self.clip_norm, type(self.reduction),
        )  # fmt: skip

    def __call__(
        self, theta: Array, opt_state: dict[str, Array], batch: Batch, step_number: int
    ) -> tuple[Array, dict[str, Array], list[Array]]:
        """One eager step: the optimizer's counter and learning rate as they are kept
        (host numbers), the dropout key's step ``step_number``."""
        opt = self.opt
        self.net.bind(theta)  # nothing to do unless theta is a new vector
        if self._wb is None:  # the library's policy, looked up once
            self._wb = writeback.for_array(theta)
        counters = (opt.count, opt.lr, step_number)
        theta, state, counters, sums = self.body(theta, dict(opt_state), counters, batch, self._wb)
        opt.state, opt.count = state, counters[0]
        return theta, state, sums

    def body(
        self, theta: Array, state: dict[str, Array], counters: tuple[Any, Any, Any],
        batch: Batch, wb: writeback.WriteBack, owed: Any = None, own_views: bool = False,
    ) -> tuple[Array, dict[str, Array], tuple[Any, Any, Any], list[Array]]:  # fmt: skip
        """The step itself, on every path: ``counters = (optimizer count, learning rate,
        dropout step)``, host numbers eagerly or device scalars (a
        :class:`~anyarray_nn.random.DeviceStep` for the dropout step) in a compiled step.
        Returns ``(theta, state, counters advanced by one step, [loss, statistics...])``.
        The layers must see views of ``theta``: the caller binds it, or with ``own_views``
        the pass gives them views of ``theta`` and the network is not touched (a compiled
        loop's body; layers with :attr:`~anyarray_nn.layers.Layer.params_from_pass` only).
        ``owed`` is a compiled loop's deferred flush of the optimizer state
        (:meth:`Optimizer.advance`)."""
        net = self.net
        count, lr, dropout_step = counters
        views = net.views_of(theta) if own_views else None

        def local() -> tuple[Array, list[Array]]:
            ctx = Pass(training=True, step=dropout_step, row_offset=batch.row_offset,
                       theta=theta if own_views else None, views=views)  # fmt: skip
            loss, a, grad = net.backprop(batch.X, batch.T, ctx, batch.w)
            return grad, [loss, *batch_stats(net, self.names, a, batch.T, batch.w)]

        grad, sums = self.reduction(local, batch.share)
        theta, state, count = self.opt.advance(
            net.xp, theta, self.clip(grad), state, count, lr, wb, self.kernel, owed
        )
        if isinstance(dropout_step, DeviceStep):
            dropout_step = dropout_step.advanced(net.xp, wb)
        else:
            dropout_step = dropout_step + 1
        return theta, state, (count, lr, dropout_step), sums

    @staticmethod
    def whole_batch(X: Array, T: Array, w: Array | None) -> Batch:
        """A batch of one process: the rows ``X``, targets ``T`` and sample weights ``w``."""
        return Batch(X, T, w, X.shape[0])

    def clip(self, grad: Array) -> Array:
        """``grad`` clipped to the global norm ``clip_norm`` (as it is without one)."""
        if self.clip_norm is None:
            return grad
        return clip_by_global_norm(self.net.xp, grad, self.clip_norm)


# -- the loop ------------------------------------------------------------------------------------
@dataclass
class _Run:
    """The settings and running state of one ``fit`` call."""

    step: Step
    schedule: _schedules.LRSchedule | None
    batch_size: int
    shuffle: bool | Callable[[int, int], np.ndarray]
    callbacks: Sequence[Any]
    progress: Progress
    history: History
    first_epoch: int
    last_epoch: int
    snapshot: Snapshot = field(repr=False, default=None)  # type: ignore[assignment]
    comm: _distributed.Communicator = field(default_factory=_distributed.Communicator)
    compiled: Any = None  # a compiled.CompiledStep when the step runs compiled

    @property
    def opt(self) -> _optimizers.Optimizer:
        return self.step.opt

    @property
    def names(self) -> list[str]:
        return self.step.names

    def take_snapshot(self, net: NN) -> None:
        self.snapshot = net.training_state.snapshot(net.xp, net.theta)

    def restore(self, net: NN) -> None:
        net.bind(net.training_state.restore(self.snapshot))


def fit(
    net: NN,
    X: Any,
    y: Any,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float | None = None,
    optimizer: str | _optimizers.Optimizer | None = None,
    shuffle: bool = True,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    metrics: Sequence[str] | None = None,
    callbacks: Sequence[Any] = (),
    verbose: int = 0,
    schedule: str | _schedules.LRSchedule | None = None,
    clip_norm: float | None = None,
    stream: bool | None = None,
    sample_weight: Any = None,
    comm: Any = None,
    compile: bool | None = None,
) -> History:
    """Train with shuffled mini-batches; returns a :class:`~anyarray_nn.training.History`
    (also kept as ``net.history_``).

    Args:
        X, y: training data (NumPy, lists, or arrays of any backend; see :meth:`NN.loss`).
        epochs: passes over the data. A later ``fit`` continues where this one stopped
            (same optimizer and state, next shuffle orders and dropout masks).
        batch_size: rows per step (the last batch may be smaller).
        lr: learning rate; sets it on whatever optimizer is in use.
        optimizer: a registered optimizer name (``"sgd"``, ``"adagrad"``, ``"rmsprop"``,
            ``"adam"``, ``"adamw"``, ...) or an :mod:`~anyarray_nn.optimizers` object. ``None``
            keeps the previous one (plain SGD with lr 0.01 the first time).
        shuffle: reshuffle every epoch (the order is drawn from the host RNG by seed and
            epoch number, so it is the same on every backend). A function
            ``shuffle(epoch, n)`` returning a permutation of ``range(n)`` sets the order itself
            (the scikit-learn estimators use it to follow ``MLPClassifier``'s random stream).
        validation_data: ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``,
            evaluated after each epoch (``val_*`` logs).
        validation_split: fraction of ``(X, y)`` held out for validation instead (a
            stratified split for class labels, seeded by ``seed``). This copies ``X``
            into memory; with a memmap, pass ``validation_data`` instead.
        metrics: ``["accuracy"]`` (classifiers) or ``["r2"]`` (regressors) by default;
            ``[]`` for none. Accumulated on the device during the epoch.
        callbacks: objects with ``on_epoch_end(net, epoch, logs)``, e.g.
            :class:`~anyarray_nn.callbacks.EarlyStopping`,
            :class:`~anyarray_nn.callbacks.ModelCheckpoint`.
        verbose: 0 silent, 1 a tqdm progress bar per epoch (one line per epoch without
            tqdm), 2 one line per epoch.
        schedule: learning-rate schedule (name or :mod:`~anyarray_nn.schedules` object),
            stepped after every epoch.
        clip_norm: clip gradients to this global 2-norm (on the device, no host sync).
        stream: keep ``X`` on the host and copy each batch to the device (default: only
            when ``X`` is a :class:`numpy.memmap`). Same numbers either way. A
            ``scipy.sparse`` ``X`` always stays on the host, and each batch is densified on its
            way to the device.
        sample_weight: one non-negative weight per row of ``X``: each batch's loss is the
            weighted mean ``sum(w l) / sum(w)`` (and the logged loss and metrics are weighted
            means). A ``validation_split`` splits the weights along.
        comm: train data-parallel over the ranks of an mpi4py communicator (e.g.
            ``MPI.COMM_WORLD``) or an :mod:`anyarray_nn.distributed` communicator; ``None``
            is one process. Every rank passes the same arguments (compared with rank 0's
            when ``fit`` starts, with the network's architecture, dtype and backend: a
            difference raises :class:`~anyarray_nn.distributed.DistributedError` on every
            rank, naming the setting and both values); each computes the gradient
            of its contiguous part of every global batch of ``batch_size`` rows, and one
            allreduce per step gives every rank the batch's gradient, so N ranks train to the
            numbers of one process. Rank 0's weights are broadcast first; rank 0 alone prints
            and writes checkpoints. A failure on any rank raises
            :class:`~anyarray_nn.distributed.DistributedError` on every rank.
        compile: run the training step compiled, on a backend that has a compiler (JAX:
            ``jax.jit``, and a whole epoch's full batches as one ``jax.lax.scan``; torch:
            ``torch.compile``, the full batches as one loop on the CPU and the step replayed
            as a CUDA graph on a CUDA device; CuPy: the step captured as a CUDA graph and
            replayed, :mod:`anyarray_nn.graphs`); see
            :mod:`anyarray_nn.compiled`. ``None`` (the default) compiles where the backend's
            record says it pays by default (JAX; not torch, where compiling takes seconds: see
            docs/performance.md; not yet CuPy) and the data is on the device in one process
            (not streamed, no ``comm``); ``False`` runs op by op; ``True`` compiles on JAX,
            torch and CuPy and is refused on a backend without a compiler. Only ``None``,
            ``True`` and ``False`` (NumPy's booleans too) are accepted. The same numbers
            either way, up to rounding; compiling happens once per batch shape and is reused
            by later epochs and ``fit`` calls (``verbose`` reports how long it took).

    Raises:
        TrainingDivergedError: the loss became NaN/inf; the epoch is named and the net keeps
            the weights of the last finite epoch.
    """
    comm = _distributed.as_communicator(comm)
    # an argument refused on one rank only must not leave the others waiting in a collective
    with _distributed.agreement(comm, "while checking fit's arguments"):
        epochs = EPOCHS.check("epochs", epochs)
        batch_size = BATCH_SIZE.check("batch_size", batch_size)
        clip_norm = None if clip_norm is None else POSITIVE.check("clip_norm", clip_norm)
        compile = _check_settings(net, verbose, callbacks, compile)
        names = metric_names(net, metrics)
    net.training_state.comm = comm
    if comm.size > 1:  # before any exchange whose size or count these settings decide
        _distributed.check_same_settings(comm, lambda: _distributed.shared_settings(
            net, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
            schedule=schedule, clip_norm=clip_norm, metrics=names, shuffle=shuffle,
            validation_data=validation_data, validation_split=validation_split,
            sample_weight=sample_weight))  # fmt: skip
    with _distributed.agreement(comm, "while checking the data"):
        data = _prepare_data(
            net, X, y, validation_data, validation_split, stream, names, sample_weight
        )
    if comm.size > 1:
        _distributed.check_same_data(comm, _distributed.data_fingerprint(data.X, data.T))
    with _distributed.abort_on_error(comm):
        _distributed.share_start(net, comm)
    verbose = verbose if comm.is_chief else 0  # rank 0 alone prints
    with _distributed.agreement(comm, "while starting to train"):
        run = _start_run(net, data, epochs, batch_size, lr, optimizer, shuffle, names,
                         callbacks, verbose, schedule, clip_norm)  # fmt: skip
    run.comm = comm
    if comm.size > 1:
        with _distributed.abort_on_error(comm):
            _start_parallel(net, run, comm)
    _choose_step(net, run, data, comm, compile)
    _run_epochs(net, data, run)
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(net, run.history.history)
    return run.history


def _check_settings(net: NN, verbose: int, callbacks: Sequence[Any], compile: Any) -> bool | None:
    """fit's settings that are not numbers in a range; returns ``compile`` as None or a bool."""
    check_computes(net.backend)  # a copy traced on ndonnx for export cannot train
    if verbose not in (0, 1, 2):
        raise ValueError("verbose must be 0 (silent), 1 (progress bar) or 2 (a line per epoch).")
    for cb in callbacks:
        if not hasattr(cb, "on_epoch_end"):
            raise TypeError(f"{cb!r} is not a callback: it needs on_epoch_end(net, epoch, logs).")
    if compile is not None and not isinstance(compile, bool | np.bool_):  # 0 is not False
        raise ValueError(
            f"compile must be None, True or False (NumPy's booleans too), got {compile!r}."
        )
    compile = None if compile is None else bool(compile)
    if compile and net.backend.info.compile is None:
        raise ValueError(
            f"fit(compile=True): the {net.backend.name} backend has no compiler; compiling "
            "needs backend='jax', 'torch' or 'cupy'. Leave compile=None to compile where possible."
        )
    return compile


def _start_parallel(net: NN, run: _Run, comm: _distributed.Communicator) -> None:
    """Several ranks: rank 0's optimizer state everywhere, and the step's allreduce."""
    _distributed.share_optimizer(net, comm)
    run.step.reduction = _distributed.AllReduction(comm, net, _stat_shapes(net, run.names))
    run.take_snapshot(net)


def _choose_step(net: NN, run: _Run, data: _Data, comm: Any, compile: bool | None) -> None:
    """Once per fit: the compiled step (:mod:`anyarray_nn.compiled`) or the eager one, with
    the update kernel where one applies (eager steps only)."""
    info, opt = net.backend.info, run.opt
    wanted = info.compile is not None and (compile or (compile is None and info.compile_by_default))
    if wanted and opt.reads_t_on_host():
        if compile:
            raise TypeError(
                f"fit(compile=True): {type(opt).__name__}.scalars(lr) reads the step counter "
                "t on the host, which a compiled step cannot. Compute those numbers in "
                "scalars_at(xp, lr, t) from its t argument (docs/extending.md), or "
                "fit(compile=False)."
            )
        wanted = False
    if wanted and not data.stream and comm.size == 1:
        from .compiled import compiled_step_for  # only on backends with a compiler

        run.compiled = compiled_step_for(run.step)
        return
    opt.count = opt.t  # an eager step counts on the host (a counter left on the device: read once)
    run.step.kernel = _kernels.kernel_for(opt, info, net.theta)


def _stat_shapes(net: NN, names: list[str]) -> list[tuple[int, ...]]:
    return [(net.n_outputs,) if name == "r2" else () for name in names]


def _run_epochs(net: NN, data: _Data, run: _Run) -> None:
    """The epochs of one ``fit``; on an interrupt, a divergence or a failure on any rank, the
    network goes back to the end of its last finished epoch."""
    comm = run.comm
    net._fitting = True
    try:
        for epoch in range(run.first_epoch, run.last_epoch):
            sums = _train_epoch(net, data, run, epoch)
            if _end_epoch(net, data, run, epoch, sums):
                break
    except (KeyboardInterrupt, _distributed.DistributedError, TrainingDivergedError):
        # Leave the net as it was after the last finished epoch, consistent with its history.
        run.progress.close()
        run.restore(net)
        if sys.exc_info()[0] is KeyboardInterrupt:
            warnings.warn(
                f"fit interrupted; the network keeps its state after epoch "
                f"{net.epochs_trained_} and net.history_ holds the finished epochs.",
                RuntimeWarning,
                stacklevel=3,
            )
        raise
    except BaseException as exc:  # uncoordinated on several ranks: the others would wait
        if comm.size > 1:
            _distributed.abort_all(comm, exc)
        raise
    finally:
        net._fitting = False
        run.progress.close()
        if run.compiled is not None:
            run.compiled.release()  # the cache keeps compiled code, never this network


def _start_run(
    net: NN,
    data: _Data,
    epochs: int,
    batch_size: int,
    lr: float | None,
    optimizer: Any,
    shuffle: bool,
    names: list[str],
    callbacks: Sequence[Any],
    verbose: int,
    schedule: Any,
    clip_norm: float | None,
) -> _Run:
    """Resolve the optimizer and schedule, open the history, call ``on_train_begin``."""
    opt = _resolve_optimizer(net, optimizer, lr)
    sched = _resolve_schedule(net, schedule, lr, opt)
    n_batches = math.ceil(data.n / batch_size)
    history = History(
        {"epochs": epochs, "batch_size": batch_size, "optimizer": opt.config(), "n_samples": data.n}
    )
    net.history_ = history
    net.stop_training = False
    for cb in callbacks:
        if hasattr(cb, "on_train_begin"):
            cb.on_train_begin(net, {})
    first = net.epochs_trained_
    progress = Progress(verbose, n_batches, live=net.backend.is_host)
    order = shuffle if callable(shuffle) else bool(shuffle)
    step = Step(net, opt, names, clip_norm)
    run = _Run(step, sched, batch_size, order, callbacks, progress, history, first,
               first + epochs)  # fmt: skip
    run.take_snapshot(net)
    return run


def _train_epoch(net: NN, data: _Data, run: _Run, epoch: int) -> Sums:
    """One pass over the shuffled data: one call of the step function per batch (the eager
    :class:`Step` or the compiled one, the same call). Where the compiled step has a loop
    (JAX's ``lax.scan``) the full batches run as one call first: the fast path. Returns the
    epoch's device-side sums (no host read)."""
    n, size, reduction, compiled = data.n, run.batch_size, run.step.reduction, run.compiled
    order = _epoch_order(net, run.shuffle, epoch, n)
    order_d = net.backend.asarray(order, dtype=net.backend.index_dtype)
    sums = Sums(net, run.names)
    theta, opt_state = net.theta, run.opt.state
    step = run.step if compiled is None else compiled
    seconds = 0.0 if compiled is None else compiled.compile_seconds
    reduction.start_epoch(epoch)
    run.progress.start(epoch + 1, run.last_epoch)
    done = (n // size) * size if compiled is not None and compiled.can_scan else 0
    if done:
        idx = net.xp.reshape(order_d[:done], (-1, size))
        theta, opt_state, parts = compiled.run_epoch(theta, opt_state, data, idx, net.step_)
        net.step_ += done // size
        sums.add_many(parts[0], parts[1], size, parts[2])
        for i in range(done // size):
            run.progress.batch(i, sums)
    for i, start in enumerate(range(done, n, size), start=done // size):
        stop = min(start + size, n)
        batch = data.batch(net, order, order_d, start, stop, *reduction.rows(start, stop))
        theta, opt_state, parts = step(theta, opt_state, batch, net.step_)
        net.step_ += 1
        sums.add(parts[0], parts[1:], batch.rows, batch.weight)
        run.progress.batch(i, sums)
    run.opt.state = opt_state
    net.bind(theta)
    reduction.end_epoch(epoch)
    sums.check_parameters(theta)
    if compiled is not None and compiled.compile_seconds != seconds:
        took = compiled.compile_seconds - seconds
        run.progress.note(f"compiled the training step in {took:.2f} s")
        run.history.params["compile_seconds"] = took
    return sums


def _epoch_order(net: NN, shuffle: Any, epoch: int, n: int) -> np.ndarray:
    """The epoch's row order: drawn by seed and epoch, given by a ``shuffle`` function, or
    ``0..n-1``."""
    if callable(shuffle):
        order = np.asarray(shuffle(epoch, n))
        if order.shape != (n,):
            raise ValueError(f"shuffle(epoch, n) must return a permutation of range({n}).")
        return order
    if shuffle:
        return host_rng(net.seed, STREAM_SHUFFLE, epoch).permutation(n)
    return np.arange(n)


def _end_epoch(net: NN, data: _Data, run: _Run, epoch: int, sums: Sums) -> bool:
    """The epoch's bookkeeping, after its one host read; returns True to stop training."""
    logs = sums.logs(data.ss_tot)
    if not math.isfinite(logs["loss"]) or sums.n_bad_params:
        run.restore(net)
        what = (
            f"the loss became {logs['loss']}"
            if not math.isfinite(logs["loss"])
            else f"{sums.n_bad_params} weights became NaN or inf (in an update after the last "
            "loss was measured)"
        )
        raise TrainingDivergedError(
            f"Training diverged: {what} in epoch {epoch + 1}. The network keeps the weights "
            "from the end of the last finite epoch. Lower the learning rate, scale the inputs, "
            "or use clip_norm=."
        )
    if data.val is not None:
        val = evaluate_arrays(
            net, *data.val, max(run.batch_size, 1024), run.names, data.val_w, run.comm
        )
        logs.update({f"val_{k}": v for k, v in val.items()})
    logs["lr"] = run.opt.lr
    net.epochs_trained_ = epoch + 1
    run.history.append(epoch + 1, logs)
    # the epoch is finished: from here on (its line, callbacks) an interrupt keeps it whole
    run.take_snapshot(net)
    run.progress.end(epoch + 1, run.last_epoch, logs)
    if run.comm.size == 1:
        _epoch_hooks(net, run, epoch, logs)
    else:  # every rank learns of a failure, a stop, or weights that drifted apart
        _distributed.end_of_epoch(
            run.comm, net, lambda: _epoch_hooks(net, run, epoch, logs), epoch + 1
        )
    if net.stop_training:
        run.history.stopped_early = True
    return net.stop_training


def _epoch_hooks(net: NN, run: _Run, epoch: int, logs: dict[str, float]) -> None:
    """Callbacks, then the learning-rate schedule, after an epoch."""
    for cb in run.callbacks:
        if cb.on_epoch_end(net, epoch + 1, logs) is True:
            net.stop_training = True
    if run.schedule is not None:  # the schedule's own epoch (it may have started earlier)
        run.opt.lr = float(run.schedule.next(epoch - run.schedule.origin, logs))


__all__ = [
    "METRICS",
    "Batch",
    "History",
    "Step",
    "TrainingDivergedError",
    "clip_by_global_norm",
    "evaluate_arrays",
    "fit",
]
