"""Learning-rate schedules: host-side rules that pick the lr for each epoch.

A schedule never touches device arrays. The training loop calls::

    opt.lr = schedule.start(base_lr)                  # lr for epoch 0
    for epoch in range(epochs):
        ...train one epoch, collect logs such as {"loss": 0.31, "val_loss": 0.35}...
        opt.lr = schedule.next(epoch, logs)           # lr for epoch + 1

Epochs are 0-based. The closed-form schedules depend only on the epoch, so resuming at any
epoch gives the same values; :class:`ReduceLROnPlateau` reacts to the monitored metric.

**A schedule's position is part of the training state.** ``fit`` keeps (a copy of) the
schedule it steps in ``net.training_state.schedule``, with its base rate, the global epoch its
epoch 0 fell on (:attr:`LRSchedule.origin`) and whatever else it tracks (the plateau's best
value and patience count): :meth:`LRSchedule.state_dict` / :meth:`LRSchedule.load_state_dict`.
So ``fit(3, schedule=s)`` then ``fit(2, schedule=s)`` equals ``fit(5, schedule=s)``, also across
save/load, ``copy()`` and ``to()``: a later ``fit`` given a schedule of the same kind and
arguments continues the one it holds (:meth:`LRSchedule.resume` gives the rate of the epoch it
has reached). A schedule of another kind or other arguments starts afresh: its epoch 0 is that
``fit``'s first epoch and its base rate the optimizer's rate then.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from . import registry as _registry
from .registry import Component, Registry
from .validation import Interval, check_choice

__all__ = [
    "Constant",
    "CosineAnnealing",
    "ExponentialDecay",
    "InverseScaling",
    "LRSchedule",
    "ReduceLROnPlateau",
    "StepDecay",
    "from_config",
    "get",
    "registry",
]

#: Every schedule, by name (a subclass that sets ``name`` is added automatically).
registry: Registry = _registry.schedules

NON_NEGATIVE = Interval("real", 0.0)
DECAY = Interval("real", 0.0, 1.0, closed="right")  # (0, 1]
FACTOR = Interval("real", 0.0, 1.0, closed="neither")
COUNT = Interval("int", 0)
POSITIVE_COUNT = Interval("int", 1)


class LRSchedule(Component):
    """Base class. Subclasses implement :meth:`lr_at` (closed form) or override :meth:`next`.

    Setting ``name`` registers a subclass; its constructor arguments, stored under their own
    names, are its :meth:`config`.
    """

    registry: ClassVar[Registry] = registry

    def __init__(self) -> None:
        self.base_lr: float | None = None
        #: The global epoch (``net.epochs_trained_`` when it started) that is its epoch 0.
        self.origin = 0

    def start(self, base_lr: float) -> float:
        """Reset the schedule for a run starting at ``base_lr``; return the lr for epoch 0."""
        self.base_lr = NON_NEGATIVE.check("base_lr", base_lr)
        return self.lr_at(0)

    def resume(self, epoch: int) -> float:
        """The lr for its 0-based ``epoch`` when a later ``fit`` continues the schedule
        (the closed form, by default; a schedule without one keeps its own record)."""
        return self.lr_at(COUNT.check("epoch", epoch))

    def rebase(self, base_lr: float) -> None:
        """A new base rate (``fit(lr=...)`` with a continued schedule); the position stays."""
        self.base_lr = NON_NEGATIVE.check("base_lr", base_lr)

    def state_dict(self) -> dict[str, Any]:
        """Its position and what it tracks, as JSON-able numbers (saved with the model)."""
        return {"base_lr": self.base_lr, "origin": self.origin}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state_dict` output (checked: a file may hold anything)."""
        base = state.get("base_lr")
        self.base_lr = None if base is None else NON_NEGATIVE.check("base_lr", base)
        self.origin = COUNT.check("origin", state.get("origin", 0))

    def next(self, epoch: int, logs: dict[str, float]) -> float:
        """Called after 0-based ``epoch`` ends, with its ``logs``; return the lr for ``epoch+1``."""
        self._started()
        return self.lr_at(COUNT.check("epoch", epoch) + 1)

    def lr_at(self, epoch: int) -> float:
        """The lr for 0-based ``epoch`` (closed-form schedules)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed form; use next().")

    def _started(self) -> float:
        if self.base_lr is None:
            raise RuntimeError(f"{type(self).__name__}: call start(base_lr) before next().")
        return self.base_lr


class Constant(LRSchedule):
    """``lr = base_lr`` for every epoch."""

    name = "constant"

    def lr_at(self, epoch: int) -> float:
        return self._started()


class StepDecay(LRSchedule):
    """``lr = base_lr * gamma ** (epoch // step_size)``, as ``torch.optim.lr_scheduler.StepLR``."""

    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        self.step_size = POSITIVE_COUNT.check("step_size", step_size)
        self.gamma = DECAY.check("gamma", gamma)

    def lr_at(self, epoch: int) -> float:
        return self._started() * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(LRSchedule):
    """``lr = base_lr * gamma ** epoch``, as ``torch.optim.lr_scheduler.ExponentialLR``."""

    name = "exponential"

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = DECAY.check("gamma", gamma)

    def lr_at(self, epoch: int) -> float:
        return self._started() * self.gamma**epoch


class InverseScaling(LRSchedule):
    """``lr = base_lr / (epoch + 1) ** power_t``.

    scikit-learn's ``learning_rate="invscaling"`` idea, counted in epochs: scikit-learn divides
    by ``t ** power_t`` with ``t`` the number of *samples* seen, here ``t`` is the epoch number
    (from 1), so the lr stays constant within an epoch.
    """

    name = "invscaling"

    def __init__(self, power_t: float = 0.5) -> None:
        super().__init__()
        self.power_t = NON_NEGATIVE.check("power_t", power_t)

    def lr_at(self, epoch: int) -> float:
        return self._started() / (epoch + 1) ** self.power_t


class CosineAnnealing(LRSchedule):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

    The closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR``: ``base_lr`` at epoch 0,
    ``eta_min`` at epoch ``T_max``. Like torch's, it is periodic (period ``2 * T_max``), so past
    ``T_max`` the lr rises again; set ``T_max`` to the number of epochs to anneal once.
    """

    name = "cosine"

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__()
        self.T_max = POSITIVE_COUNT.check("T_max", T_max)
        self.eta_min = NON_NEGATIVE.check("eta_min", eta_min)

    def lr_at(self, epoch: int) -> float:
        base = self._started()
        cosine = 1.0 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base - self.eta_min) * cosine / 2.0


class ReduceLROnPlateau(LRSchedule):
    """Multiply the lr by ``factor`` when ``monitor`` stops improving.

    After each epoch the monitored value ``x`` is compared with the best value so far::

        improved = x <= best - min_delta   (mode "min";  x >= best + min_delta in mode "max")
        wait     = 0 if improved else wait + 1
        best     = min(best, x)            (max in mode "max": best follows any strict gain)
        if wait > patience:  lr = max(lr * factor, min_lr);  wait = 0

    The defaults reproduce scikit-learn's ``MLP*(learning_rate="adaptive")`` with
    ``n_iter_no_change=2`` (the "two consecutive epochs" of its docs; ``patience`` plays the role
    of ``n_iter_no_change``, ``min_delta`` of ``tol``): the lr is divided by 5 at the end of the
    third consecutive epoch whose loss is not at least ``tol=1e-4`` below the best. Unlike
    scikit-learn it never stops training (scikit-learn stops once lr <= 1e-6); pass
    ``patience=10`` for scikit-learn's current default ``n_iter_no_change``.

    Relation to ``torch.optim.lr_scheduler.ReduceLROnPlateau``: the same as torch's with
    ``threshold=min_delta, threshold_mode="abs", cooldown=0, eps=0`` and the same ``patience``,
    ``factor`` and ``min_lr``, except that torch moves ``best`` only on a gain of more than
    ``threshold`` (a gain of exactly ``threshold`` counts as none), while here, as in
    scikit-learn, ``best`` follows every strict gain. The two agree whenever no epoch's gain
    over the best lies in ``(0, min_delta]``.

    Args:
        monitor: key of the epoch logs to watch; a missing ``"val_..."`` key falls back to the
            training key (``"val_loss"`` -> ``"loss"``), so the default works without validation.
        mode: ``"min"`` for losses, ``"max"`` for scores such as accuracy.
        factor: multiplier in (0, 1) applied on a plateau (0.2 = divide by 5).
        patience: epochs without improvement tolerated; the lr drops on the next one.
        min_delta: smallest change that counts as an improvement (absolute).
        min_lr: lower bound on the lr.
    """

    name = "plateau"

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        factor: float = 0.2,
        patience: int = 2,
        min_delta: float = 1e-4,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                f"monitor must be a non-empty log key like 'val_loss', got {monitor!r}."
            )
        self.monitor = monitor
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.factor = FACTOR.check("factor", factor)
        self.patience = COUNT.check("patience", patience)
        self.min_delta = NON_NEGATIVE.check("min_delta", min_delta)
        self.min_lr = NON_NEGATIVE.check("min_lr", min_lr)
        self._reset()

    def _reset(self) -> None:
        self.lr: float | None = self.base_lr
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0

    def start(self, base_lr: float) -> float:
        self.base_lr = NON_NEGATIVE.check("base_lr", base_lr)
        self._reset()
        return self.base_lr

    def resume(self, epoch: int) -> float:
        return self._started() if self.lr is None else self.lr

    def rebase(self, base_lr: float) -> None:
        super().rebase(base_lr)
        self.lr = self.base_lr

    def state_dict(self) -> dict[str, Any]:
        best = self.best if math.isfinite(self.best) else None  # JSON has no infinity
        return {**super().state_dict(), "lr": self.lr, "best": best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        lr, best = state.get("lr"), state.get("best")
        self.lr = None if lr is None else NON_NEGATIVE.check("lr", lr)
        self.best = (math.inf if self.mode == "min" else -math.inf) if best is None else best
        if not isinstance(self.best, int | float) or isinstance(self.best, bool):
            raise ValueError(f"ReduceLROnPlateau state: best must be a number, got {best!r}.")
        self.best = float(self.best)
        self.wait = COUNT.check("wait", state.get("wait", 0))

    def _value(self, logs: dict[str, float]) -> float:
        key = self.monitor
        if key not in logs and key.startswith("val_") and key[4:] in logs:
            key = key[4:]
        if key not in logs:
            raise ValueError(
                f"ReduceLROnPlateau monitors {self.monitor!r}, but the epoch logs hold only "
                f"{sorted(logs)}. Pass monitor= one of those."
            )
        return float(logs[key])

    def next(self, epoch: int, logs: dict[str, float]) -> float:
        lr = self._started() if self.lr is None else self.lr
        x = self._value(logs)  # NaN never improves and never becomes best
        if self.mode == "min":
            improved = x <= self.best - self.min_delta
            better = x < self.best
        else:
            improved = x >= self.best + self.min_delta
            better = x > self.best
        if better:
            self.best = x
        self.wait = 0 if improved else self.wait + 1
        if self.wait > self.patience:
            lr = max(lr * self.factor, self.min_lr)
            self.wait = 0
        self.lr = lr
        return lr


for _alias, _name in (
    ("none", "constant"),
    ("steplr", "step"),
    ("stepdecay", "step"),
    ("exponentiallr", "exponential"),
    ("exponentialdecay", "exponential"),
    ("exp", "exponential"),
    ("inversescaling", "invscaling"),
    ("cosineannealing", "cosine"),
    ("cosineannealinglr", "cosine"),
    ("reducelronplateau", "plateau"),
    ("adaptive", "plateau"),  # scikit-learn's name
):
    registry.alias(_alias, _name)


def get(
    spec: str | dict[str, Any] | LRSchedule | type[LRSchedule] | None = None, **kwargs: Any
) -> LRSchedule:
    """A schedule from a name (case, ``_`` and ``-`` ignored), a config dict, a class, or an
    instance.

    ``None`` and ``"constant"`` give :class:`Constant`; ``"adaptive"`` (scikit-learn's name) is
    :class:`ReduceLROnPlateau`. ``kwargs`` go to the constructor.
    """
    return registry.get(spec, **kwargs)


def from_config(config: dict[str, Any]) -> LRSchedule:
    """Rebuild a schedule from :meth:`LRSchedule.config` output."""
    return registry.from_config(config)
