"""The training loop: epochs of shuffled mini-batches, validation, metrics, callbacks, progress.

Its shape follows scikit-learn's ``_fit`` / ``_fit_stochastic`` / ``_backprop`` split:

- :func:`fit` checks the arguments and runs the epochs;
- :func:`_prepare_data` validates the data and moves it to the device once (:class:`_Data`);
- :func:`_train_epoch` runs one epoch of steps: batch, :meth:`NN.backprop`, clipping, the
  optimizer step, and device-side sums of the loss and metrics (:class:`Sums`);
- :func:`_end_epoch` does the bookkeeping: the epoch's one host read, the divergence check,
  validation (:func:`evaluate_arrays`, which sums batches with the same :class:`Sums`), the
  history, callbacks, the snapshot and the learning-rate schedule.

Rules the loop keeps (see the README's Architecture section):

- **No host sync inside a training step.** The loss and the metric counts are accumulated on the
  device and read back once per epoch, in one transfer. The progress bar shows a live running loss
  only on host backends (NumPy, torch on the CPU), where a read costs nothing; on a device it
  shows the loss when the epoch ends.
- **Data moves once.** ``X`` and ``y`` are moved to the device once per ``fit``; batches are
  taken there with ``xp.take`` and the shuffle indices (from the host RNG, keyed by the global
  epoch number) are the only per-epoch transfer. The exception is *streaming*: when ``X`` is a
  :class:`numpy.memmap` (or ``stream=True``), ``X`` stays on the host and each batch's rows are
  copied to the device as they are needed, so inputs larger than device memory train in the
  same order and to the same numbers.
- **Mutation happens in one place:** the optimizer step updates parameters in place.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import distributed as _distributed
from . import optimizers as _optimizers
from . import schedules as _schedules
from .backend import to_numpy
from .layers import Pass
from .random import STREAM_SHUFFLE, host_rng
from .sparse import dense_rows, is_sparse
from .sums import METRICS, Sums, evaluate_arrays, metric_names, ss_tot
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


class History:
    """Per-epoch logs of one ``fit`` call: ``history["loss"]``, ``history["val_loss"]``, ...

    Attributes:
        history: ``{name: [value per epoch]}``, e.g. ``loss``, ``accuracy``, ``val_loss``,
            ``val_accuracy``, ``lr``.
        epoch: global epoch numbers (1-based, counting earlier ``fit`` calls).
        params: the arguments of the ``fit`` call.
        stopped_early: True when a callback stopped training.
    """

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = dict(params or {})
        self.stopped_early = False

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def truncate(self, n_epochs: int) -> None:
        """Keep the first ``n_epochs`` epochs (an interrupted run forgets the unfinished one)."""
        del self.epoch[n_epochs:]
        for values in self.history.values():
            del values[n_epochs:]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def keys(self) -> Iterable[str]:
        return self.history.keys()

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items() if v}
        return f"History({len(self)} epochs, last={last})"


# -- gradient clipping -----------------------------------------------------------------------------
def clip_by_global_norm(xp: Any, grads: list[Array], max_norm: float) -> Array:
    """Scale ``grads`` in place so their global 2-norm is at most ``max_norm``.

    Computed on the device without a host sync (``scale = min(1, max_norm / (norm + 1e-6))``,
    the same rule as ``torch.nn.utils.clip_grad_norm_``). Returns the norm before clipping.
    """
    norm = xp.sqrt(sum(xp.sum(g * g) for g in grads))
    scale = xp.minimum(max_norm / (norm + 1e-6), 1.0)
    for g in grads:
        g *= scale
    return norm


# -- progress display ------------------------------------------------------------------------------
class _Progress:
    """A tqdm bar per epoch (verbose=1) or one line per epoch (verbose=2, or tqdm missing)."""

    def __init__(self, verbose: int, n_batches: int, live: bool) -> None:
        self.verbose, self.n_batches, self.live = verbose, n_batches, live
        self.bar: Any = None
        self.tqdm: Any = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm  # optional (the progress extra)

                self.tqdm = tqdm
            except ImportError:
                self.verbose = 2
        self.every = max(1, n_batches // 20)

    def start(self, epoch: int, total_epochs: int) -> None:
        if self.tqdm is not None:
            self.bar = self.tqdm(
                total=self.n_batches,
                desc=f"epoch {epoch}/{total_epochs}",
                unit="batch",
                leave=True,
                dynamic_ncols=True,
            )

    def batch(self, i: int, sums: Sums) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if self.live and i % self.every == 0:
            self.bar.set_postfix(loss=f"{sums.running_loss():.4f}", refresh=False)

    def end(self, epoch: int, total_epochs: int, logs: dict[str, float]) -> None:
        text = "  ".join(f"{k} {v:.4g}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.close()
            self.bar = None
        elif self.verbose:
            print(f"epoch {epoch}/{total_epochs}  {text}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- data: validated at the API and moved once ----------------------------------------------------
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

    def batch(self, net: NN, order: np.ndarray, order_d: Array, start: int, stop: int) -> tuple:
        """The rows ``order[start:stop]`` of ``X``, ``T`` and the weights, on the device."""
        xp = net.xp
        idx = order_d[start:stop]
        if self.stream:  # host rows of this batch -> device (the documented exception)
            xb = dense_rows(net, self.X, start, stop, rows=order[start:stop])
        else:
            xb = xp.take(self.X, idx, axis=0)
        wb = None if self.w is None else xp.take(self.w, idx, axis=0)
        return xb, xp.take(self.T, idx, axis=0), wb


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
    labels = yh if (net.output.name == "softmax" and yh.ndim == 1) else None
    try:
        parts = train_test_split(
            *arrays, test_size=validation_split, random_state=net.seed % 2**32, stratify=labels
        )
    except ValueError:  # a class too rare to stratify: fall back to a plain random split
        parts = train_test_split(*arrays, test_size=validation_split, random_state=net.seed % 2**32)
    parts = [*parts, None, None]  # no weights: None for both
    return (parts[0], parts[2], parts[4]), (parts[1], parts[3], parts[5])


# -- optimizer, snapshots ------------------------------------------------------------------------
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
        opt.build(net.xp, net.parameter_arrays())
        net.optimizer = opt
    return opt


@dataclass
class _Snapshot:
    """Everything that describes the network after one finished epoch: device copies of the
    parameters, a clone of the optimizer, the step and epoch counters and the length of the
    history. Restored after divergence or an interrupt, so all of them agree again."""

    params: list[Array]
    optimizer: _optimizers.Optimizer | None
    step: int
    epochs_trained: int
    history_length: int

    @classmethod
    def take(cls, net: NN, history: History) -> _Snapshot:
        xp = net.xp
        params = [xp.asarray(p, copy=True) for p in net.parameter_arrays()]
        opt = None if net.optimizer is None else net.optimizer.clone()
        return cls(params, opt, net.step_, net.epochs_trained_, len(history))

    def restore(self, net: NN, history: History) -> None:
        for (layer, name), value in zip(net.parameters(), self.params, strict=True):
            layer.params[name] = value
        if net.optimizer is not None and self.optimizer is not None:
            net.optimizer.load_state_dict(self.optimizer.state_dict())
        net.step_ = self.step
        net.epochs_trained_ = self.epochs_trained
        history.truncate(self.history_length)


# -- the loop ------------------------------------------------------------------------------
@dataclass
class _Run:
    """The settings and running state of one ``fit`` call."""

    opt: _optimizers.Optimizer
    schedule: _schedules.LRSchedule | None
    batch_size: int
    shuffle: bool | Callable[[int, int], np.ndarray]
    clip_norm: float | None
    names: list[str]
    callbacks: Sequence[Any]
    progress: _Progress
    history: History
    first_epoch: int
    last_epoch: int
    snapshot: _Snapshot = field(repr=False, default=None)  # type: ignore[assignment]
    comm: _distributed.Communicator = field(default_factory=_distributed.Communicator)


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
            is one process. Every rank passes the same arguments; each computes the gradient
            of its contiguous part of every global batch of ``batch_size`` rows, and one
            allreduce per step gives every rank the batch's gradient, so N ranks train to the
            numbers of one process. Rank 0's weights are broadcast first; rank 0 alone prints
            and writes checkpoints. A failure on any rank raises
            :class:`~anyarray_nn.distributed.DistributedError` on every rank.

    Raises:
        TrainingDivergedError: the loss became NaN/inf; the epoch is named and the net keeps
            the weights of the last finite epoch.
    """
    epochs = EPOCHS.check("epochs", epochs)
    batch_size = BATCH_SIZE.check("batch_size", batch_size)
    if clip_norm is not None:
        clip_norm = POSITIVE.check("clip_norm", clip_norm)
    if verbose not in (0, 1, 2):
        raise ValueError("verbose must be 0 (silent), 1 (progress bar) or 2 (a line per epoch).")
    for cb in callbacks:
        if not hasattr(cb, "on_epoch_end"):
            raise TypeError(f"{cb!r} is not a callback: it needs on_epoch_end(net, epoch, logs).")
    names = metric_names(net, metrics)
    comm = _distributed.as_communicator(comm)
    net.comm_ = comm
    with _distributed.agreement(comm, "while checking the data"):
        data = _prepare_data(
            net, X, y, validation_data, validation_split, stream, names, sample_weight
        )
    if comm.size > 1:
        _distributed.check_same_data(comm, _distributed.data_fingerprint(data.X, data.T))
    _distributed.share_start(net, comm)
    verbose = verbose if comm.is_chief else 0  # rank 0 alone prints
    with _distributed.agreement(comm, "while starting to train"):
        run = _start_run(net, data, epochs, batch_size, lr, optimizer, shuffle, names,
                         callbacks, verbose, schedule, clip_norm)  # fmt: skip
    run.comm = comm
    if comm.size > 1:
        _distributed.share_optimizer(net, comm)
        run.snapshot = _Snapshot.take(net, run.history)
    train_epoch = _train_epoch if comm.size == 1 else _train_epoch_parallel
    try:
        for epoch in range(run.first_epoch, run.last_epoch):
            sums = train_epoch(net, data, run, epoch)
            if _end_epoch(net, data, run, epoch, sums):
                break
    except (KeyboardInterrupt, _distributed.DistributedError, TrainingDivergedError):
        # Leave the net as it was after the last finished epoch, consistent with its history.
        run.progress.close()
        run.snapshot.restore(net, run.history)
        if sys.exc_info()[0] is KeyboardInterrupt:
            warnings.warn(
                f"fit interrupted; the network keeps its state after epoch "
                f"{net.epochs_trained_} and net.history_ holds the finished epochs.",
                RuntimeWarning,
                stacklevel=2,
            )
        raise
    except BaseException as exc:  # uncoordinated on several ranks: the others would wait
        if comm.size > 1:
            _distributed.abort_all(comm, exc)
        raise
    finally:
        run.progress.close()
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(net, run.history.history)
    return run.history


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
    sched = _schedules.get(schedule) if schedule is not None else None
    if sched is not None:
        opt.lr = sched.start(opt.lr)
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
    progress = _Progress(verbose, n_batches, live=net.backend.is_host)
    order = shuffle if callable(shuffle) else bool(shuffle)
    run = _Run(opt, sched, batch_size, order, clip_norm, names, callbacks, progress,
               history, first, first + epochs)  # fmt: skip
    run.snapshot = _Snapshot.take(net, history)
    return run


def _train_epoch(net: NN, data: _Data, run: _Run, epoch: int) -> Sums:
    """One pass over the shuffled data; returns the epoch's device-side sums (no host read)."""
    xp, n, size = net.xp, data.n, run.batch_size
    order = _epoch_order(net, run.shuffle, epoch, n)
    order_d = net.backend.asarray(order, dtype=xp.int64)
    sums = Sums(net, run.names)
    params = net.parameter_arrays()
    run.progress.start(epoch + 1, run.last_epoch)
    for i, start in enumerate(range(0, n, size)):
        xb, tb, wb = data.batch(net, order, order_d, start, min(start + size, n))
        loss, a, grads = net.backprop(xb, tb, Pass(training=True, step=net.step_), wb)
        if run.clip_norm is not None:
            clip_by_global_norm(xp, grads, run.clip_norm)
        run.opt.step(params, grads)
        net.step_ += 1
        sums.add(loss, a, tb, wb)
        run.progress.batch(i, sums)
    sums.check_parameters(params)
    return sums


def _train_epoch_parallel(net: NN, data: _Data, run: _Run, epoch: int) -> Sums:
    """One epoch over several ranks. Each global batch ``order[start:stop]`` is split into
    contiguous slices, one per rank (:func:`~anyarray_nn.distributed.slice_of`); a rank
    backpropagates its slice (dropout keyed by the rows' global positions), weighs its
    gradients by its share of the batch, and ONE allreduce of a flat buffer (gradients, loss
    and metric parts, a status slot per rank) gives every rank the batch's gradient and sums.
    Every rank then takes the same optimizer step."""
    comm, xp, be = run.comm, net.xp, net.backend
    n, size = data.n, run.batch_size
    order = _epoch_order(net, run.shuffle, epoch, n)
    order_d = be.asarray(order, dtype=xp.int64)
    sums = Sums(net, run.names)
    params = net.parameter_arrays()
    statuses = None  # summed status slots, read at the epoch's end on device backends
    error: BaseException | None = None
    run.progress.start(epoch + 1, run.last_epoch)
    for i, start in enumerate(range(0, n, size)):
        stop = min(start + size, n)
        parts, error = _rank_parts(net, data, run, order, order_d, start, stop, sums, error)
        slots = np.zeros(comm.size)
        slots[comm.rank] = _distributed.status_of(error)
        flat = xp.concat([xp.reshape(p, (-1,)) for p in parts] + [be.asarray(slots)])
        reduced = comm.allreduce(flat, be)
        status = reduced[flat.shape[0] - comm.size :]
        if be.is_host:  # free to read: a failure anywhere stops every rank now
            _distributed.raise_if_failed(comm, to_numpy(status), error, f"in epoch {epoch + 1}")
        else:
            statuses = status if statuses is None else statuses + status
        grads, sum_parts = _unflatten(xp, reduced, parts, len(params))
        if run.clip_norm is not None:
            clip_by_global_norm(xp, grads, run.clip_norm)
        run.opt.step(params, grads)
        net.step_ += 1
        sums.add_parts(sum_parts, stop - start)
        run.progress.batch(i, sums)
    if statuses is not None:
        _distributed.raise_if_failed(comm, to_numpy(statuses), error, f"in epoch {epoch + 1}")
    sums.check_parameters(params)
    return sums


def _rank_parts(
    net: NN,
    data: _Data,
    run: _Run,
    order: np.ndarray,
    order_d: Array,
    start: int,
    stop: int,
    sums: Sums,
    error: BaseException | None,
) -> tuple[list[Array], BaseException | None]:
    """This rank's share of one global batch: its weighted gradients and :meth:`Sums.parts`,
    or zeros when its slice is empty or it has failed (it still takes part in the reduction,
    so the others never wait)."""
    xp, comm = net.xp, run.comm
    lo, hi = _distributed.slice_of(start, stop, comm.rank, comm.size)
    if error is None and hi > lo:
        try:
            xb, tb, wb = data.batch(net, order, order_d, lo, hi)
            ctx = Pass(training=True, step=net.step_, row_offset=lo - start)
            loss, a, grads = net.backprop(xb, tb, ctx, wb)
            if wb is None:
                share = (hi - lo) / (stop - start)
            else:
                share = xp.sum(wb) / xp.sum(xp.take(data.w, order_d[start:stop], axis=0))
            return [g * share for g in grads] + sums.parts(loss, a, tb, wb), None
        except BaseException as exc:  # KeyboardInterrupt too: the others must hear of it
            error = exc
    be = net.backend
    zeros = [
        xp.zeros(tuple(p.shape), dtype=be.dtype, device=be.device) for p in net.parameter_arrays()
    ]
    return zeros + sums.zero_parts(data.w is not None), error


def _unflatten(xp: Any, flat: Array, like: list[Array], n_grads: int) -> tuple[list, list]:
    """Split a reduced flat buffer back into arrays shaped like ``like`` (views, no copies):
    the first ``n_grads`` are gradients, the rest :meth:`Sums.parts`."""
    out, offset = [], 0
    for array in like:
        count = math.prod(array.shape)
        out.append(xp.reshape(flat[offset : offset + count], tuple(array.shape)))
        offset += count
    return out[:n_grads], out[n_grads:]


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
        run.snapshot.restore(net, run.history)
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
    run.progress.end(epoch + 1, run.last_epoch, logs)
    # the epoch is finished: from here on (callbacks included) an interrupt keeps it whole
    run.snapshot = _Snapshot.take(net, run.history)
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
    if run.schedule is not None:
        run.opt.lr = float(run.schedule.next(epoch - run.first_epoch, logs))


__all__ = [
    "METRICS",
    "History",
    "TrainingDivergedError",
    "clip_by_global_norm",
    "evaluate_arrays",
    "fit",
]
