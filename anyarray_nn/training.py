"""The training loop: epochs of shuffled mini-batches, validation, metrics, callbacks, progress.

Rules the loop keeps (see DESIGN.md):

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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import optimizers as _optimizers
from . import schedules as _schedules
from .backend import to_numpy
from .random import STREAM_SHUFFLE, host_rng

if TYPE_CHECKING:
    from .network import NN

Array = Any


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or inf. The network keeps its last finite weights."""


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
def _metric_names(net: NN, metrics: Sequence[str] | None) -> list[str]:
    default = ["accuracy"] if net.is_classifier else ["r2"]
    names = default if metrics is None else [m.lower() for m in metrics]
    for name in names:
        if name not in ("accuracy", "r2"):
            raise ValueError(f"Unknown metric {name!r}. Valid metrics: accuracy, r2.")
        if name == "accuracy" and not net.is_classifier:
            raise ValueError("accuracy needs a softmax or sigmoid output; use metrics=['r2'].")
    return names


def _batch_stats(net: NN, names: list[str], a: Array, T: Array) -> list[Array]:
    """Device sums for each metric over one batch: hit counts or per-column squared errors."""
    xp, out = net.xp, []
    for name in names:
        if name == "accuracy" and net.output.name == "softmax":
            hits = xp.argmax(a, axis=1) == xp.argmax(T, axis=1)
            out.append(xp.sum(xp.astype(hits, a.dtype)))
        elif name == "accuracy":  # sigmoid: per-output hits, averaged over outputs
            hits = (a > 0.5) == (T > 0.5)
            out.append(xp.sum(xp.astype(hits, a.dtype)) / float(a.shape[1]))
        else:
            d = T - a
            out.append(xp.sum(d * d, axis=0))
    return out


def _ss_tot(net: NN, T: Array) -> Array:
    xp = net.xp
    centred = T - xp.mean(T, axis=0, keepdims=True)
    return xp.sum(centred * centred, axis=0)


def _finish(names: list[str], values: np.ndarray, n: int, ss_tot: np.ndarray | None) -> dict:
    """Turn the epoch's flat vector [loss_sum, stats...] (read once) into logs."""
    logs: dict[str, float] = {"loss": float(values[0]) / n}
    pos = 1
    for name in names:
        if name == "accuracy":
            logs[name] = float(values[pos]) / n
            pos += 1
        else:
            k = len(ss_tot)
            ss_res = values[pos : pos + k]
            safe = np.where(ss_tot > 0, ss_tot, 1.0)
            logs[name] = float(np.mean(np.where(ss_tot > 0, 1.0 - ss_res / safe, 0.0)))
            pos += k
    return logs


def _flat(xp: Any, total: Array, stats: list[Array]) -> Array:
    return xp.concat([xp.reshape(total, (1,))] + [xp.reshape(s, (-1,)) for s in stats])


def evaluate_arrays(
    net: NN,
    X: Array,
    T: Array,
    batch_size: int | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Objective and metrics of ``net`` on device arrays, read back in one transfer."""
    xp, names = net.xp, _metric_names(net, metrics)
    n = X.shape[0]
    step = n if not batch_size else int(batch_size)
    total, stats = None, None
    for start in range(0, n, max(step, 1)):
        stop = min(start + step, n)
        xb, tb = (X, T) if stop - start == n else (X[start:stop, :], T[start:stop, :])
        loss, a = net._loss_value(xb, tb)
        batch = _batch_stats(net, names, a, tb)
        total = loss * float(stop - start) if total is None else total + loss * float(stop - start)
        stats = batch if stats is None else [s + b for s, b in zip(stats, batch, strict=True)]
    net._clear()
    ss_tot = to_numpy(_ss_tot(net, T)) if "r2" in names else None
    return _finish(names, to_numpy(_flat(xp, total, stats)), n, ss_tot)


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

    def __init__(self, verbose: int, epochs: int, n_batches: int, live: bool) -> None:
        self.verbose, self.epochs, self.n_batches, self.live = verbose, epochs, n_batches, live
        self.bar: Any = None
        self.tqdm: Any = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm

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

    def batch(self, i: int, running: Any) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if self.live and i % self.every == 0:
            self.bar.set_postfix(loss=f"{float(running()):.4f}", refresh=False)

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


# -- the loop ------------------------------------------------------------------------------
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
        if not (isinstance(lr, float | int) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}.")
        opt.lr = float(lr)
    if opt is not net.optimizer:
        opt.build(net.xp, [layer.params[n] for layer, n in net.parameters()])
        net.optimizer = opt
    return opt


def _validation(
    net: NN, X: Any, y: Any, validation_data: Any, validation_split: float
) -> tuple[Any, Any, Any, Any]:
    if validation_data is not None and validation_split:
        raise ValueError("Give either validation_data or validation_split, not both.")
    if validation_data is not None:
        if not (isinstance(validation_data, tuple | list) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val).")
        return X, y, validation_data[0], validation_data[1]
    if not validation_split:
        return X, y, None, None
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}.")
    from sklearn.model_selection import train_test_split

    Xh, yh = to_numpy(X), to_numpy(y)
    labels = yh if (net.output.name == "softmax" and yh.ndim == 1) else None
    try:
        Xt, Xv, yt, yv = train_test_split(
            Xh, yh, test_size=validation_split, random_state=net.seed % 2**32, stratify=labels
        )
    except ValueError:  # a class too rare to stratify: fall back to a plain random split
        Xt, Xv, yt, yv = train_test_split(
            Xh, yh, test_size=validation_split, random_state=net.seed % 2**32
        )
    return Xt, yt, Xv, yv


def _snapshot(net: NN) -> tuple[list[Array], dict[str, list[Array]], int, int]:
    """Device copies of parameters and optimizer state (restored after divergence/interrupt)."""
    xp = net.xp
    params = [xp.asarray(layer.params[n], copy=True) for layer, n in net.parameters()]
    opt = net.optimizer
    state = {}
    if opt is not None:
        state = {k: [xp.asarray(a, copy=True) for a in v] for k, v in opt.state_arrays().items()}
    return params, state, (opt.t if opt is not None else 0), net.step_


def _restore(net: NN, snap: tuple[list[Array], dict[str, list[Array]], int, int]) -> None:
    params, state, t, step = snap
    for (layer, name), value in zip(net.parameters(), params, strict=True):
        layer.params[name] = value
    if net.optimizer is not None:
        if state:
            net.optimizer.load_state_arrays(state, t)
        net.optimizer.t = t
    net.step_ = step


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
) -> History:
    """Train ``net`` with mini-batches; see :meth:`anyarray_nn.NN.fit` for the arguments."""
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0 (or None), got {clip_norm!r}.")
    if verbose not in (0, 1, 2):
        raise ValueError("verbose must be 0 (silent), 1 (progress bar) or 2 (a line per epoch).")
    for cb in callbacks:
        if not hasattr(cb, "on_epoch_end"):
            raise TypeError(f"{cb!r} is not a callback: it needs on_epoch_end(net, epoch, logs).")
    names = _metric_names(net, metrics)
    xp, be = net.xp, net.backend

    # -- data: checked at the API, moved once (or streamed from host memory) --
    Xt, yt, Xv, yv = _validation(net, X, y, validation_data, validation_split)
    stream = isinstance(Xt, np.memmap) if stream is None else bool(stream)
    if stream:
        X_host = np.asarray(Xt) if not isinstance(Xt, np.ndarray) else Xt
        if X_host.ndim != 2 or X_host.shape[1] != net.n_features:
            raise ValueError(net._shape_message(tuple(X_host.shape)))
        n = X_host.shape[0]
        Xd = None
    else:
        Xd = net._inputs(Xt)
        n = Xd.shape[0]
    T = net._targets(yt, n)
    if n == 0:
        raise ValueError("X has no rows.")
    if Xv is not None:
        Xvd = net._inputs(Xv)
        Tv = net._targets(yv, Xvd.shape[0])
    ss_tot = to_numpy(_ss_tot(net, T)) if "r2" in names else None

    opt = _resolve_optimizer(net, optimizer, lr)
    sched = _schedules.get(schedule) if schedule is not None else None
    if sched is not None:
        opt.lr = sched.start(opt.lr)
    params = [layer.params[name] for layer, name in net.parameters()]
    dropouts = [layer for layer in net.layers if hasattr(layer, "rate")]
    n_batches = math.ceil(n / batch_size)
    live = be.name == "numpy" or (be.name == "torch" and str(be.device) == "cpu")
    progress = _Progress(verbose, epochs, n_batches, live)
    history = History(
        {"epochs": epochs, "batch_size": batch_size, "optimizer": opt.config(), "n_samples": n}
    )
    net.history_ = history
    net.stop_training = False
    for cb in callbacks:
        if hasattr(cb, "on_train_begin"):
            cb.on_train_begin(net, {})
    first_epoch = net.epochs_trained_
    last_epoch = first_epoch + epochs
    snap = _snapshot(net)
    try:
        for epoch in range(first_epoch, last_epoch):
            rng = host_rng(net.seed, STREAM_SHUFFLE, epoch)
            order = rng.permutation(n) if shuffle else np.arange(n)
            order_d = be.asarray(order, dtype=xp.int64)
            total = xp.zeros((), dtype=be.dtype, device=be.device)
            stats: list[Array] | None = None
            progress.start(epoch + 1, last_epoch)
            for i, start in enumerate(range(0, n, batch_size)):
                stop = min(start + batch_size, n)
                idx = order_d[start:stop]
                if stream:  # host rows of this batch -> device (the documented exception)
                    xb = be.asarray(X_host[order[start:stop]])
                else:
                    xb = xp.take(Xd, idx, axis=0)
                tb = xp.take(T, idx, axis=0)
                for layer in dropouts:
                    layer.step = net.step_
                loss, a = net._loss_and_grad(xb, tb, training=True)
                grads = [layer.grads[name] for layer, name in net.parameters()]
                if clip_norm is not None:
                    clip_by_global_norm(xp, grads, float(clip_norm))
                opt.step(params, grads)
                net.step_ += 1
                total = total + loss * float(stop - start)
                batch = _batch_stats(net, names, a, tb)
                stats = (
                    batch if stats is None else [s + b for s, b in zip(stats, batch, strict=True)]
                )
                progress.batch(i, lambda total=total, stop=stop: to_numpy(total) / stop)
            net._clear()
            # -- the one read of the epoch --
            logs = _finish(names, to_numpy(_flat(xp, total, stats or [])), n, ss_tot)
            if not math.isfinite(logs["loss"]):
                _restore(net, snap)
                raise TrainingDivergedError(
                    f"Training diverged: the loss became {logs['loss']} in epoch {epoch + 1}. "
                    "The network keeps the weights from the end of the last finite epoch. "
                    "Lower the learning rate, scale the inputs, or use clip_norm=."
                )
            if Xv is not None:
                val = evaluate_arrays(net, Xvd, Tv, max(batch_size, 1024), names)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["lr"] = opt.lr
            net.epochs_trained_ = epoch + 1
            history.append(epoch + 1, logs)
            progress.end(epoch + 1, last_epoch, logs)
            for cb in callbacks:
                if cb.on_epoch_end(net, epoch + 1, logs) is True:
                    net.stop_training = True
            snap = _snapshot(net)
            if sched is not None:
                opt.lr = float(sched.next(epoch - first_epoch, logs))
            if net.stop_training:
                history.stopped_early = True
                break
    except KeyboardInterrupt:
        # Leave the net as it was after the last finished epoch, consistent with its history.
        progress.close()
        _restore(net, snap)
        net._clear()
        warnings.warn(
            f"fit interrupted; the network keeps its state after epoch {net.epochs_trained_} "
            "and net.history_ holds the finished epochs.",
            RuntimeWarning,
            stacklevel=2,
        )
        raise
    finally:
        progress.close()
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(net, history.history)
    return history
