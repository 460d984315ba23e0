"""Callbacks: objects with ``on_epoch_end(net, epoch, logs)`` (and optionally
``on_train_begin(net, logs)`` / ``on_train_end(net, logs)``).

``epoch`` is the 1-based global epoch number and ``logs`` the epoch's values (``loss``,
``accuracy``/``r2``, ``val_*``, ``lr``). A callback stops training by returning ``True`` or by
setting ``net.stop_training = True``. Any object with these methods works; subclassing
:class:`Callback` is optional.
"""

from __future__ import annotations

import math
import os
import string
import warnings
from typing import Any, ClassVar

from . import registry as _registry
from .io import format_for
from .registry import Component, Registry
from .validation import Interval, check_bool, check_choice

#: Every callback class, by name (a subclass that sets ``name`` is added automatically).
registry: Registry = _registry.callbacks

NON_NEGATIVE = Interval("real", 0.0)
PATIENCE = Interval("int", 0)


class Callback(Component):
    """Base class with no-op hooks. Setting ``name`` registers a subclass, so that
    ``callbacks.get("name", ...)`` builds it."""

    registry: ClassVar[Registry] = registry

    def on_train_begin(self, net: Any, logs: dict[str, float]) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, net: Any, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after every epoch; return True to stop training."""
        return None

    def on_train_end(self, net: Any, logs: dict[str, Any]) -> None:
        """Called once after the last epoch (not after an exception)."""


class _Monitor(Callback):
    """Shared logic: which value to watch and whether a new value is an improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        check_choice("mode", mode, ("auto", "min", "max"))
        self.monitor = monitor
        if mode == "auto":
            mode = "max" if monitor.split("val_")[-1] in ("accuracy", "r2") else "min"
        self.mode = mode
        self.min_delta = NON_NEGATIVE.check("min_delta", min_delta)
        self.best = math.inf if mode == "min" else -math.inf
        self._warned = False

    def _value(self, logs: dict[str, float]) -> float | None:
        if self.monitor in logs:
            return logs[self.monitor]
        fallback = self.monitor.removeprefix("val_")
        if not self._warned:
            warnings.warn(
                f"{type(self).__name__} monitors {self.monitor!r}, which is not in the logs "
                f"({', '.join(logs)}); give validation data or monitor={fallback!r}. "
                f"Using {fallback!r}."
                if fallback in logs
                else "Nothing to monitor.",
                RuntimeWarning,
                stacklevel=3,
            )
            self._warned = True
        return logs.get(fallback)

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: a key of the logs, default ``"val_loss"`` (``"loss"`` is used, with a warning,
            when there is no validation data).
        patience: epochs without improvement before stopping.
        min_delta: smallest change that counts as an improvement.
        restore_best_weights: at the end of training, put back the weights of the best epoch.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy/r2, min otherwise).
    """

    name = "early_stopping"

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = False,
        mode: str = "auto",
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = PATIENCE.check("patience", patience)
        self.restore_best_weights = check_bool("restore_best_weights", restore_best_weights)
        self.best_weights: list[Any] | None = None
        self.best_epoch = 0
        self.stopped_epoch = 0
        self.wait = 0

    def on_train_begin(self, net: Any, logs: dict[str, float]) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights, self.best_epoch, self.stopped_epoch, self.wait = None, 0, 0, 0

    def on_epoch_end(self, net: Any, epoch: int, logs: dict[str, float]) -> bool | None:
        value = self._value(logs)
        if value is None:
            return None
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = net.get_weights()
            return None
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            return True
        return None

    def on_train_end(self, net: Any, logs: dict[str, Any]) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            net.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the network to ``path`` after each epoch, or only when ``monitor`` improves.

    The file at ``path`` is replaced each time (it is the checkpoint's own; ``NN.save`` alone
    keeps an existing file unless ``overwrite=True``). The write is atomic (see
    :meth:`anyarray_nn.NN.save`), and a checkpoint is never written
    from an epoch whose loss is not finite, so a good file is never replaced by NaN weights.
    ``path`` ends in ``.safetensors`` or ``.npz`` and may contain ``{epoch}`` (one file per
    epoch) and the epoch's log values, e.g. ``"ck_{epoch:03d}_{val_loss:.3f}.safetensors"``.
    Both are checked when the callback is made, not after the first epoch. In data-parallel
    training (``fit(comm=...)``) only rank 0 writes.
    """

    name = "model_checkpoint"

    def __init__(
        self,
        path: str | os.PathLike[str],
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        include_optimizer: bool = True,
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.path = os.fspath(path)
        _check_path_template(self.path)
        self.save_best_only = save_best_only
        self.include_optimizer = include_optimizer
        self.saved: list[str] = []

    def on_epoch_end(self, net: Any, epoch: int, logs: dict[str, float]) -> bool | None:
        if not math.isfinite(logs.get("loss", math.nan)):
            return None
        if not getattr(getattr(net, "comm_", None), "is_chief", True):
            return None  # data-parallel training: rank 0 alone writes
        if self.save_best_only:
            value = self._value(logs)
            if value is None or not self._improved(value):
                return None
            self.best = value
        missing = sorted(_placeholders(self.path) - {"epoch"} - set(logs))
        if missing:
            raise ValueError(
                f"ModelCheckpoint path {self.path!r} uses {{{missing[0]}}}, but the epoch's logs "
                f"hold only {', '.join(logs)}. Give validation data or change the path."
            )
        target = self.path.format(epoch=epoch, **logs)
        # the checkpoint's own file, rewritten every epoch by design (the one exception to
        # save's rule of never replacing a file unless asked)
        net.save(target, include_optimizer=self.include_optimizer, overwrite=True)
        self.saved.append(target)
        return None


#: What a ModelCheckpoint path may name: the epoch, and the values an epoch's logs can hold.
_LOG_KEYS = ("loss", "accuracy", "r2", "lr")
PLACEHOLDERS = ("epoch", *_LOG_KEYS, *(f"val_{k}" for k in _LOG_KEYS if k != "lr"))


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _check_path_template(template: str) -> None:
    """Unknown placeholders, bad format specs and a wrong extension fail now, not after an
    epoch of training."""
    try:
        unknown = sorted(_placeholders(template) - set(PLACEHOLDERS))
        trial = None if unknown else template.format(**dict.fromkeys(PLACEHOLDERS, 1))
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(
            f"ModelCheckpoint path {template!r} is not a valid template ({exc})."
        ) from None
    if unknown:
        raise ValueError(
            f"ModelCheckpoint path {template!r} uses {{{unknown[0]}}}; a path may use "
            f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}."
        )
    format_for(trial)


def get(spec: str | dict[str, Any] | Callback, **kwargs: Any) -> Callback:
    """A callback from a name (``"early_stopping"``, ``"model_checkpoint"``), a config dict or
    an instance, e.g. ``get("early_stopping", patience=3)``."""
    return registry.get(spec, **kwargs)
