"""The training state: everything about a network that training changes besides its weights.

One :class:`TrainingState` per network holds the optimizer (with its state), the learning-rate
schedule (with its position), the step and epoch counters that key dropout masks and shuffle
orders, the history of the last ``fit``, the stop flag callbacks set, and the communicator of a
data-parallel run. It has one snapshot/restore path
(:meth:`TrainingState.snapshot`, :meth:`TrainingState.restore`) and one copy/move path, which
``NN.to``, ``NN.copy``, save/load, divergence and Ctrl-C recovery and the start of a
data-parallel run all use.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import array_api_compat

from .optimizers import Optimizer

Array = Any

__all__ = ["History", "Snapshot", "TrainingState"]


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


@dataclass(frozen=True)
class Snapshot:
    """The network after one finished epoch: a copy of the parameter vector, a copy of the
    optimizer, the counters and the length of the history."""

    theta: Array
    optimizer: Optimizer | None
    step: int
    epochs_trained: int
    history_length: int


@dataclass
class TrainingState:
    """What training changes besides the weights (see the module docstring).

    Attributes:
        optimizer: the optimizer of the last ``fit`` (a later ``fit`` continues it).
        step: optimizer steps taken (keys the dropout masks).
        epochs_trained: epochs finished (keys the shuffle orders).
        history: the :class:`History` of the last ``fit``.
        stop_training: set by a callback to end ``fit`` after the current epoch.
        comm: the communicator of the last ``fit`` (never pickled: it belongs to its process).
        schedule: the learning-rate schedule ``fit`` stepped last (a copy of the one it was
            given, with its position: a later ``fit`` given the same kind of schedule continues
            it; see :mod:`anyarray_nn.schedules`).
    """

    optimizer: Optimizer | None = None
    step: int = 0
    epochs_trained: int = 0
    history: History | None = None
    stop_training: bool = False
    comm: Any = field(default=None, repr=False)
    schedule: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["comm"] = None  # an MPI communicator belongs to its process
        return state

    def snapshot(self, xp: Any, theta: Array) -> Snapshot:
        """A copy of the current state and of the parameter vector ``theta``."""
        opt = None if self.optimizer is None else self.optimizer.clone()
        length = 0 if self.history is None else len(self.history)
        return Snapshot(xp.asarray(theta, copy=True), opt, self.step, self.epochs_trained, length)

    def restore(self, snap: Snapshot) -> Array:
        """Go back to ``snap``; returns the parameter vector to bind (a fresh copy)."""
        if self.optimizer is not None and snap.optimizer is not None:
            self.optimizer.load_state_dict(snap.optimizer.state_dict())
        self.step, self.epochs_trained = snap.step, snap.epochs_trained
        if self.history is not None:
            self.history.truncate(snap.history_length)
        return array_api_compat.array_namespace(snap.theta).asarray(snap.theta, copy=True)

    def state_dict(self, include_optimizer: bool = True) -> dict[str, Any]:
        """``{"step", "epochs_trained", "optimizer": None or {"config", "t", "state"}}``: the
        counters and the optimizer (its state vectors are the live arrays), for a file."""
        opt = self.optimizer if include_optimizer else None
        described = None
        if opt is not None:
            described = {"config": opt.config(), **opt.state_dict()}
        return {
            "step": self.step,
            "epochs_trained": self.epochs_trained,
            "optimizer": described,
            "schedule": self._described_schedule(),
        }

    def _described_schedule(self) -> dict[str, Any] | None:
        """``{"config", "state"}`` of the schedule, for a file (``None``: none, or one that
        is not registered and so cannot be rebuilt by name)."""
        sched = self.schedule
        if sched is None or not type(sched).is_registered():
            return None
        return {"config": sched.config(), "state": sched.state_dict()}

    def load_state_dict(self, state: dict[str, Any], theta: Array, backend: Any) -> None:
        """The counters and (if any) the optimizer from :meth:`state_dict` output; the
        optimizer is rebuilt from its config next to the parameter vector ``theta`` and its
        state arrays are moved onto ``backend``."""
        from .optimizers import from_config  # the one registry lookup, by name
        from .schedules import from_config as schedule_from_config

        self.step = int(state["step"])
        self.epochs_trained = int(state["epochs_trained"])
        described_schedule = state.get("schedule")
        self.schedule = None
        if described_schedule:  # (files written before schedules were saved have none)
            self.schedule = schedule_from_config(described_schedule["config"])
            self.schedule.load_state_dict(described_schedule["state"])
        described = state.get("optimizer")
        if described:
            opt = from_config(described["config"])
            opt.build(theta)
            opt.load_state_dict({"t": described["t"], "state": described["state"]}, backend)
            self.optimizer = opt

    def move(self, backend: Any) -> None:
        """Move the optimizer state onto ``backend`` (device and dtype), in place."""
        if self.optimizer is not None:
            self.optimizer.load_state_dict(self.optimizer.state_dict(), backend)

    def copy(self, backend: Any = None) -> TrainingState:
        """An independent copy (optimizer state copied, onto ``backend`` if given); the
        communicator is not copied."""
        opt = None if self.optimizer is None else self.optimizer.clone(backend)
        return TrainingState(
            opt,
            self.step,
            self.epochs_trained,
            _copy.deepcopy(self.history),
            self.stop_training,
            schedule=_copy.deepcopy(self.schedule),
        )
