"""The training loop: epochs of shuffled mini-batches, validation, metrics, callbacks, progress.

Its shape follows scikit-learn's ``_fit`` / ``_fit_stochastic`` / ``_backprop`` split:

- :func:`fit` checks the arguments and runs the epochs;
- :func:`_prepare_data` validates the data and moves it to the device once (:class:`_Data`);
- :func:`_train_epoch` runs one epoch of steps: batch, :meth:`NN.backprop`, clipping, the
  optimizer step, and device-side sums of the loss and metrics (:class:`_Sums`);
- :func:`_end_epoch` does the bookkeeping: the epoch's one host read, the divergence check,
  validation (:func:`evaluate_arrays`, which sums batches with the same :class:`_Sums`), the
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
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import optimizers as _optimizers
from . import schedules as _schedules
from .backend import to_numpy
from .layers import Pass
from .random import STREAM_SHUFFLE, host_rng
from .sparse import SPARSE_BATCH, dense_rows, is_sparse
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


# -- metrics accumulated on the device -----------------------------------------------------------
#: ``accuracy``: the share of correct labels (for several sigmoid outputs, of correct outputs);
#: ``subset_accuracy``: the share of rows whose every output is correct (scikit-learn's
#: ``accuracy_score`` of multilabel targets); ``r2``: R², averaged over outputs.
METRICS = ("accuracy", "subset_accuracy", "r2")


def _metric_names(net: NN, metrics: Sequence[str] | None) -> list[str]:
    default = ["accuracy"] if net.is_classifier else ["r2"]
    names = default if metrics is None else [m.lower() for m in metrics]
    for name in names:
        if name not in METRICS:
            raise ValueError(f"Unknown metric {name!r}. Valid metrics: {', '.join(METRICS)}.")
        if name.endswith("accuracy") and not net.is_classifier:
            raise ValueError(f"{name} needs a softmax or sigmoid output; use metrics=['r2'].")
    return names


class _Sums:
    """Device-side running sums over batches: the objective times the rows, and each metric's
    statistic (hit counts, or per-column squared errors for R²). Read once, by :meth:`logs`.

    With sample weights each row counts with its weight: the sums are weighted, and so is the
    count they are divided by (kept on the device with them)."""

    def __init__(self, net: NN, names: list[str]) -> None:
        self.net, self.names = net, names
        self.total: Array = None
        self.stats: list[Array] = []
        self.rows = 0
        self.weight: Array = None  # the summed sample weights (device), when weighted
        self.bad_params: Array = None  # device count of non-finite parameter entries
        self.n_bad_params = 0  # the same count, once read by logs()

    def add(self, loss: Array, a: Array, T: Array, w: Array | None = None) -> None:
        """Add one batch (no host sync); ``w``: its sample weights, if any."""
        rows = int(T.shape[0])
        count = float(rows) if w is None else self.net.xp.sum(w)
        weighted = loss * count
        batch = self._batch_stats(a, T, w)
        if self.total is None:
            self.total, self.stats = weighted, batch
        else:
            self.total = self.total + weighted
            self.stats = [s + b for s, b in zip(self.stats, batch, strict=True)]
        self.rows += rows
        if w is not None:
            self.weight = count if self.weight is None else self.weight + count

    def _batch_stats(self, a: Array, T: Array, w: Array | None = None) -> list[Array]:
        xp, out = self.net.xp, []
        col = None if w is None else xp.reshape(w, (-1, 1))
        for name in self.names:
            if name == "r2":
                d = T - a
                sq = d * d if col is None else col * (d * d)
                out.append(xp.sum(sq, axis=0))
                continue
            if self.net.output.name == "softmax":
                hits = xp.astype(xp.argmax(a, axis=1) == xp.argmax(T, axis=1), a.dtype)
            else:  # sigmoid: per output
                hits = xp.astype((a > 0.5) == (T > 0.5), a.dtype)
                if name == "accuracy":  # averaged over outputs
                    hits = xp.sum(hits, axis=1) / float(a.shape[1])
                else:  # every output right
                    hits = xp.min(hits, axis=1)
            out.append(xp.sum(hits) if w is None else xp.sum(w * hits))
        return out

    def running_loss(self) -> float:
        """The mean objective so far (a host read: only for live progress on host backends)."""
        count = self.rows if self.weight is None else float(to_numpy(self.weight))
        return float(to_numpy(self.total)) / max(count, 1e-300)

    def check_parameters(self, params: list[Array]) -> None:
        """Count non-finite entries of ``params`` on the device, to be read with the sums: the
        last update of an epoch happens after its loss was measured, so only this catches a
        step that overflowed there."""
        xp, dtype = self.net.xp, self.net.backend.dtype
        self.bad_params = sum(xp.sum(xp.astype(~xp.isfinite(p), dtype)) for p in params)

    def flat(self) -> Array:
        """``[sum of objective x rows, (summed weights,) statistics..., bad parameter
        count]`` as one device vector (the count only after :meth:`check_parameters`)."""
        xp = self.net.xp
        head = [self.total] if self.weight is None else [self.total, self.weight]
        parts = [xp.reshape(v, (1,)) for v in head] + [xp.reshape(s, (-1,)) for s in self.stats]
        if self.bad_params is not None:
            parts.append(xp.reshape(self.bad_params, (1,)))
        return xp.concat(parts)

    def logs(self, ss_tot: np.ndarray | None) -> dict[str, float]:
        """The epoch's logs, from one device -> host transfer."""
        values = to_numpy(self.flat())
        if self.bad_params is not None:
            self.n_bad_params = int(values[-1])
        n = self.rows if self.weight is None else float(values[1])
        logs: dict[str, float] = {"loss": float(values[0]) / n}
        pos = 1 if self.weight is None else 2
        for name in self.names:
            if name != "r2":
                logs[name] = float(values[pos]) / n
                pos += 1
            else:
                k = len(ss_tot)
                ss_res = values[pos : pos + k]
                safe = np.where(ss_tot > 0, ss_tot, 1.0)
                logs[name] = float(np.mean(np.where(ss_tot > 0, 1.0 - ss_res / safe, 0.0)))
                pos += k
        return logs


def _ss_tot(net: NN, T: Array, w: Array | None = None) -> np.ndarray:
    """R²'s per-column denominators ``sum(w (T - weighted mean)**2)`` (``w = 1`` without
    weights), as NumPy."""
    xp = net.xp
    if w is None:
        centred = T - xp.mean(T, axis=0, keepdims=True)
        return to_numpy(xp.sum(centred * centred, axis=0))
    col = xp.reshape(w, (-1, 1))
    centred = T - xp.sum(col * T, axis=0, keepdims=True) / xp.sum(w)
    return to_numpy(xp.sum(col * (centred * centred), axis=0))


def evaluate_arrays(
    net: NN,
    X: Array,
    T: Array,
    batch_size: int | None = None,
    metrics: Sequence[str] | None = None,
    weights: Array | None = None,
) -> dict[str, float]:
    """Objective and metrics of ``net`` on device arrays (``X`` may also be a validated
    ``scipy.sparse`` matrix, densified ``batch_size`` rows at a time), read back in one
    transfer; ``weights`` (device, ``(n,)``) weights the loss and the metrics."""
    names = _metric_names(net, metrics)
    n = X.shape[0]
    default = SPARSE_BATCH if is_sparse(X) else n
    step = max(int(batch_size) if batch_size else default, 1)
    sums = _Sums(net, names)
    for start in range(0, n, step):
        stop = min(start + step, n)
        whole = (start, stop) == (0, n)
        tb = T if whole else T[start:stop, :]
        wb = weights if weights is None or whole else weights[start:stop]
        loss, a = net.objective(dense_rows(net, X, start, stop), tb, wb)
        sums.add(loss, a, tb, wb)
    return sums.logs(_ss_tot(net, T, weights) if "r2" in names else None)


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

    def batch(self, i: int, sums: _Sums) -> None:
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
        data.ss_tot = _ss_tot(net, T, data.w)
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
    names = _metric_names(net, metrics)
    data = _prepare_data(net, X, y, validation_data, validation_split, stream, names, sample_weight)
    run = _start_run(net, data, epochs, batch_size, lr, optimizer, shuffle, names, callbacks,
                     verbose, schedule, clip_norm)  # fmt: skip
    try:
        for epoch in range(run.first_epoch, run.last_epoch):
            sums = _train_epoch(net, data, run, epoch)
            if _end_epoch(net, data, run, epoch, sums):
                break
    except KeyboardInterrupt:
        # Leave the net as it was after the last finished epoch, consistent with its history.
        run.progress.close()
        run.snapshot.restore(net, run.history)
        warnings.warn(
            f"fit interrupted; the network keeps its state after epoch {net.epochs_trained_} "
            "and net.history_ holds the finished epochs.",
            RuntimeWarning,
            stacklevel=2,
        )
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


def _train_epoch(net: NN, data: _Data, run: _Run, epoch: int) -> _Sums:
    """One pass over the shuffled data; returns the epoch's device-side sums (no host read)."""
    xp, n, size = net.xp, data.n, run.batch_size
    order = _epoch_order(net, run.shuffle, epoch, n)
    order_d = net.backend.asarray(order, dtype=xp.int64)
    sums = _Sums(net, run.names)
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


def _end_epoch(net: NN, data: _Data, run: _Run, epoch: int, sums: _Sums) -> bool:
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
            net, *data.val, max(run.batch_size, 1024), run.names, weights=data.val_w
        )
        logs.update({f"val_{k}": v for k, v in val.items()})
    logs["lr"] = run.opt.lr
    net.epochs_trained_ = epoch + 1
    run.history.append(epoch + 1, logs)
    run.progress.end(epoch + 1, run.last_epoch, logs)
    # the epoch is finished: from here on (callbacks included) an interrupt keeps it whole
    run.snapshot = _Snapshot.take(net, run.history)
    for cb in run.callbacks:
        if cb.on_epoch_end(net, epoch + 1, logs) is True:
            net.stop_training = True
    if run.schedule is not None:
        run.opt.lr = float(run.schedule.next(epoch - run.first_epoch, logs))
    if net.stop_training:
        run.history.stopped_early = True
    return net.stop_training


__all__ = [
    "METRICS",
    "History",
    "TrainingDivergedError",
    "clip_by_global_norm",
    "evaluate_arrays",
    "fit",
]
