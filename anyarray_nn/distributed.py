"""Communicators for data-parallel training: one process (no-op), MPI (mpi4py), NCCL (CuPy).

``net.fit(X, y, ..., comm=MPI.COMM_WORLD)`` trains one network over many processes, on one
machine or many, through an existing engine: MPI, the engine under Horovod and ChainerMN, with
NCCL for CuPy arrays. There is no socket protocol of our own and no parameter server.

What the training loop needs from a communicator (:class:`Communicator`):

- ``rank`` and ``size``;
- :meth:`Communicator.allreduce`: the element-wise sum of one flat buffer over all ranks, the
  same numbers on every rank, called **once per training step** (all gradients, the loss and
  metric sums, and one status slot per rank travel together);
- :meth:`Communicator.broadcast` of host arrays and :meth:`Communicator.broadcast_object` of
  small host values, used when training starts (rank 0's weights and counters) and to spread
  the message of a rank that failed;
- :meth:`Communicator.abort`, the last resort when a rank cannot take part any more.

**Faults never hang the job.** Every collective is entered by every rank. A rank whose step
fails (an exception, a ``KeyboardInterrupt``, non-finite values in its rows) still takes part in
the step's reduction, with zeros and its status slot set; every rank then sees the slot and
raises :class:`DistributedError` naming the rank and the cause. Code outside the steps (data
preparation, callbacks at the end of an epoch) runs inside :func:`agreement`, which adds one
small reduction of the status slots. :meth:`Communicator.abort` is used only when an error
escapes outside these (e.g. inside the MPI library itself).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .backend import Backend, to_numpy

Array = Any

#: A rank's status in a step's or an agreement's reduction.
OK, FAILED, INTERRUPTED = 0.0, 1.0, 2.0


class DistributedError(RuntimeError):
    """A rank failed during data-parallel training; every rank raises this, naming it.

    Attributes:
        rank: the (first) rank that failed.
        interrupted: it was a ``KeyboardInterrupt`` (the command line then exits 130).
    """

    def __init__(self, message: str, rank: int, interrupted: bool = False) -> None:
        super().__init__(message)
        self.rank = rank
        self.interrupted = interrupted


class Communicator:
    """One process of a group: its ``rank`` in ``0..size-1``. The base class is the group of
    one (``comm=None``): every collective is the identity and nothing is counted as sent."""

    rank: int = 0
    size: int = 1

    def __init__(self) -> None:
        #: allreduce calls, their total seconds and bytes (for tests and benchmarks)
        self.allreduce_calls = 0
        self.allreduce_seconds = 0.0
        self.allreduce_bytes = 0

    @property
    def is_chief(self) -> bool:
        """Rank 0: the one that prints, shows progress and writes files."""
        return self.rank == 0

    def allreduce(self, buffer: Array, backend: Backend) -> Array:
        """The sum of ``buffer`` (a flat device array) over all ranks, on every rank."""
        return buffer

    def allreduce_host(self, buffer: np.ndarray) -> np.ndarray:
        """The sum of a small host array over all ranks (agreements, validation sums)."""
        return buffer

    def broadcast(self, arrays: Sequence[np.ndarray], root: int = 0) -> list[np.ndarray]:
        """Rank ``root``'s host arrays, on every rank (same shapes and dtypes everywhere)."""
        return list(arrays)

    def broadcast_object(self, value: Any, root: int = 0) -> Any:
        """Rank ``root``'s small host value (numbers, strings, tuples) on every rank."""
        return value

    def abort(self, code: int = 1) -> None:
        """End every process of the group at once (the last resort: no cleanup runs)."""
        raise SystemExit(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class MPIComm(Communicator):
    """A communicator over an mpi4py ``Comm`` (e.g. ``MPI.COMM_WORLD``).

    Device buffers go through CUDA-aware MPI when ``cuda_aware`` is true (default: when the
    environment says the MPI library is built for it: ``ANYARRAY_NN_CUDA_AWARE_MPI=1``, Open
    MPI's ``OMPI_MCA_opal_cuda_support=true`` or MPICH's ``MPIR_CVAR_ENABLE_GPU=1``), else
    they are staged through host memory: one device-to-host and one host-to-device copy per
    step. NumPy and CPU torch buffers are host memory already (torch through DLPack, without a
    copy).
    """

    def __init__(self, comm: Any, cuda_aware: bool | None = None) -> None:
        super().__init__()
        from mpi4py import MPI  # optional (the mpi extra): imported only when used

        self._mpi = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.cuda_aware = _cuda_aware_from_environment() if cuda_aware is None else cuda_aware

    def allreduce(self, buffer: Array, backend: Backend) -> Array:
        start = time.perf_counter()
        if backend.is_host or not self.cuda_aware:
            host = np.array(to_numpy(buffer))  # one transfer; a fresh, writable host buffer
            self.comm.Allreduce(self._mpi.IN_PLACE, host, op=self._mpi.SUM)
            result = host if backend.name == "numpy" else backend.asarray(host, dtype=buffer.dtype)
        else:  # CUDA-aware MPI reads and writes device memory itself
            # the buffer exposes __cuda_array_interface__ (CuPy) or DLPack (torch)
            self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
            result = buffer
        self._count(buffer, start)
        return result

    def _count(self, buffer: Array, start: float) -> None:
        self.allreduce_calls += 1
        self.allreduce_seconds += time.perf_counter() - start
        self.allreduce_bytes += int(np.prod(buffer.shape)) * _itemsize(buffer)

    def allreduce_host(self, buffer: np.ndarray) -> np.ndarray:
        out = np.array(buffer)
        self.comm.Allreduce(self._mpi.IN_PLACE, out, op=self._mpi.SUM)
        return out

    def broadcast(self, arrays: Sequence[np.ndarray], root: int = 0) -> list[np.ndarray]:
        out = []
        for array in arrays:
            # a fresh, writable buffer: the array may be a read-only view of a device array
            # (JAX's), and on the other ranks Bcast writes into it
            mine = np.array(array, order="C")
            self.comm.Bcast(mine, root=root)
            out.append(mine)
        return out

    def broadcast_object(self, value: Any, root: int = 0) -> Any:
        return self.comm.bcast(value, root=root)

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


class NCCLComm(MPIComm):
    """Reduces CuPy device buffers with NCCL (``cupy.cuda.nccl``), without a host round trip;
    the NCCL unique id is broadcast over the MPI communicator ``comm``, which also carries the
    small host-side collectives. Needs one GPU per rank (rank ``r`` uses its current device)."""

    def __init__(self, comm: Any) -> None:
        super().__init__(comm, cuda_aware=True)
        from cupy.cuda import nccl  # optional (a CUDA extra)

        self._nccl = nccl
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = comm.bcast(uid, root=0)
        self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)

    def allreduce(self, buffer: Array, backend: Backend) -> Array:
        if backend.name != "cupy":
            return super().allreduce(buffer, backend)
        import cupy  # present: the buffer is a CuPy array

        start = time.perf_counter()
        kinds = {np.dtype("float32"): self._nccl.NCCL_FLOAT32, np.dtype("float64"): None}
        kind = kinds.get(np.dtype(str(buffer.dtype))) or self._nccl.NCCL_FLOAT64
        self.nccl.allReduce(
            buffer.data.ptr,
            buffer.data.ptr,
            int(buffer.size),
            kind,
            self._nccl.NCCL_SUM,
            cupy.cuda.get_current_stream().ptr,
        )
        self._count(buffer, start)
        return buffer


def as_communicator(comm: Any) -> Communicator:
    """``None`` -> the group of one; an mpi4py ``Comm`` -> :class:`MPIComm`; one of ours as is."""
    if comm is None:
        return Communicator()
    if isinstance(comm, Communicator):
        return comm
    if hasattr(comm, "Allreduce") and hasattr(comm, "Get_rank"):
        return MPIComm(comm)
    raise TypeError(
        f"comm must be None, an mpi4py communicator (e.g. MPI.COMM_WORLD) or an "
        f"anyarray_nn.distributed.Communicator; got {type(comm).__name__}."
    )


def slice_of(start: int, stop: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous part of the global rows ``start:stop``: the first
    ``(stop - start) % size`` ranks get one row more, as ``numpy.array_split`` does."""
    n = stop - start
    base, extra = divmod(n, size)
    lo = start + rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def status_of(error: BaseException | None) -> float:
    if error is None:
        return OK
    return INTERRUPTED if isinstance(error, KeyboardInterrupt) else FAILED


def raise_if_failed(
    comm: Communicator, statuses: np.ndarray, error: BaseException | None, what: str
) -> None:
    """After a reduction of the status slots: if any rank failed, raise on every rank a
    :class:`DistributedError` naming the first one and its error (broadcast from it)."""
    failed = np.flatnonzero(statuses)
    if failed.size == 0:
        return
    rank = int(failed[0])
    mine = None if error is None else f"{type(error).__name__}: {error}".rstrip(": ")
    message = comm.broadcast_object(mine, root=rank)
    interrupted = statuses[rank] == INTERRUPTED
    text = (
        f"rank {rank} of {comm.size} was interrupted {what}"
        if interrupted
        else f"rank {rank} of {comm.size} failed {what}: {message}"
    )
    raise DistributedError(text, rank, bool(interrupted)) from error


@contextlib.contextmanager
def agreement(comm: Communicator, what: str) -> Iterator[None]:
    """Run the block on every rank; then agree (one small reduction) whether all succeeded.
    A failure anywhere becomes the same :class:`DistributedError` on every rank."""
    if comm.size == 1:
        yield
        return
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:  # KeyboardInterrupt included: the others must hear of it
        error = exc
    statuses = np.zeros(comm.size)
    statuses[comm.rank] = status_of(error)
    raise_if_failed(comm, comm.allreduce_host(statuses), error, what)


def _cuda_aware_from_environment() -> bool:
    env = os.environ
    return (
        env.get("ANYARRAY_NN_CUDA_AWARE_MPI") == "1"
        or env.get("OMPI_MCA_opal_cuda_support", "").lower() == "true"
        or env.get("MPIR_CVAR_ENABLE_GPU") == "1"
    )


def _itemsize(buffer: Array) -> int:
    return int(np.dtype(str(buffer.dtype).split(".")[-1]).itemsize)


def _edge_sums(a: Any, rows: int = 8) -> tuple[float, float]:
    """Sums of the first and the last ``rows`` rows of ``a`` (device, host or sparse)."""
    n = int(a.shape[0])
    sums = []
    for part in (a[: min(rows, n)], a[max(n - rows, 0) :]):
        host = part.toarray() if hasattr(part, "toarray") else to_numpy(part)
        sums.append(float(np.sum(np.asarray(host, dtype=np.float64))))
    return sums[0], sums[1]


def data_fingerprint(X: Any, T: Any) -> tuple:
    """A cheap description of a rank's training data: the shapes and the sums of the first and
    last rows of the features and targets (a few rows read back, once per fit)."""
    return (tuple(int(d) for d in X.shape), tuple(int(d) for d in T.shape),
            *_edge_sums(X), *_edge_sums(T))  # fmt: skip


def check_same_data(comm: Communicator, fingerprint: tuple) -> None:
    """Every rank must train on the same rows (each computes its slice of every global batch):
    compare each rank's :func:`data_fingerprint` with rank 0's; a rank whose data differ makes
    every rank raise :class:`DistributedError` naming it, before the first step."""
    if comm.size == 1:
        return
    chief = comm.broadcast_object(fingerprint)
    with agreement(comm, "when its data were compared with rank 0's"):
        if tuple(fingerprint) != tuple(chief):
            raise ValueError(
                f"its data (features {fingerprint[0]}, targets {fingerprint[1]}) differ from rank "
                f"0's (features {chief[0]}, targets {chief[1]})"
                + (" in their values" if fingerprint[:2] == chief[:2] else "")
                + "; give every rank the same data"
            )


def shared_settings(net: Any, **fit_args: Any) -> dict[str, Any]:
    """What every rank must give ``fit`` alike, by the names the user sets them under: the
    network's architecture, penalties, dtype and backend (not its seed or device: rank 0's seed
    is broadcast, and each rank may use its own GPU), and the ``fit`` arguments that shape the
    training (epochs, batch size, optimizer and its hyperparameters, learning rate, schedule,
    clipping, metrics, shuffling, validation, sample weights). Host values only."""
    config = net.config()
    settings: dict[str, Any] = {
        "architecture": _layers_text(config["layers"]),
        "output activation": config["output"],
        "loss": config["loss"],
        "l1": config["l1"],
        "l2": config["l2"],
        "dtype": config["dtype"],
        "backend": config["backend"],
    }
    optimizer, schedule = fit_args.pop("optimizer"), fit_args.pop("schedule")
    held = net.training_state.schedule
    settings["optimizer"] = _described(optimizer if optimizer is not None else net.optimizer)
    settings["schedule"] = _described(schedule)
    if schedule is not None:  # a later fit may continue the one each rank holds
        settings["schedule held from an earlier fit"] = (
            None if held is None else (_described(held), held.state_dict())
        )
    shuffle = fit_args.pop("shuffle")
    settings["shuffle"] = "a function" if callable(shuffle) else bool(shuffle)
    validation = fit_args.pop("validation_data")
    split = fit_args.pop("validation_split")
    rows = None if validation is None else _rows_of(validation[0])
    settings["validation"] = (
        f"validation_data of {rows} rows"
        if validation is not None
        else (f"validation_split={split}" if split else None)
    )
    settings["sample_weight"] = "given" if fit_args.pop("sample_weight") is not None else None
    settings.update(fit_args)  # epochs, batch_size, lr, clip_norm, metrics
    return settings


def _layers_text(layers: list[dict[str, Any]]) -> str:
    """``dense(64->32, relu), dropout(0.2), dense(32->10, identity)``."""
    parts = []
    for spec in layers:
        config = dict(spec["config"])
        if "units" in config:
            inner = f"{config.pop('fan_in', '?')}->{config.pop('units')}"
            inner += f", {config.pop('activation', None)}"
        else:
            inner = ""
        rest = ", ".join(
            f"{k}={v}" for k, v in sorted(config.items()) if k not in ("init", "bias_init")
        )
        parts.append(f"{spec['type']}({', '.join(p for p in (inner, rest) if p)})")
    return ", ".join(parts)


def _described(component: Any) -> Any:
    """A component (optimizer, schedule) as comparable host data: its config."""
    if component is None or isinstance(component, str | dict):
        return component
    try:
        return component.config()
    except Exception:  # a component of one's own that cannot describe itself: its class
        return type(component).__qualname__


def _rows_of(X: Any) -> Any:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape else (len(X) if hasattr(X, "__len__") else None)


def check_same_settings(comm: Communicator, settings_of: Callable[[], dict[str, Any]]) -> None:
    """Compare each rank's settings (``settings_of()``, e.g. :func:`shared_settings`) with rank
    0's before anything else is exchanged: a rank that differs makes every rank raise
    :class:`DistributedError` naming the setting and both values (ranks given different epochs
    would otherwise wait forever, and different batch sizes or widths end in the MPI library's
    "Message truncated"). A rank that cannot even describe its settings is named the same way."""
    if comm.size == 1:
        return
    error: BaseException | None = None
    try:
        settings = settings_of()
    except Exception as exc:  # reported inside the agreement, so that no rank waits
        settings, error = {}, exc
    chief = comm.broadcast_object(settings)
    with agreement(comm, "when its settings were compared with rank 0's"):
        if error is not None:
            raise error
        differ = [k for k in settings if settings[k] != chief.get(k)]
        if differ:
            text = "; ".join(_difference(k, settings[k], chief.get(k)) for k in differ)
            raise ValueError(f"{text}. Every rank must build the same network and call fit "
                             "with the same arguments")  # fmt: skip


def _difference(name: str, mine: Any, chief: Any) -> str:
    """``its NAME is MINE, rank 0's CHIEF``; of two configs, only the entries that differ."""
    if isinstance(mine, dict) and isinstance(chief, dict) and mine.get("name") == chief.get("name"):
        keys = [k for k in {**chief, **mine} if mine.get(k) != chief.get(k)]
        name = f"{name} ({chief.get('name') or 'the same kind'})"
        mine, chief = ({k: c.get(k) for k in keys} for c in (mine, chief))
    return f"its {name} is {mine!r}, rank 0's {chief!r}"


def share_start(net: Any, comm: Communicator) -> None:
    """Give every rank rank 0's starting point: its seed (shuffle orders, dropout masks), step
    and epoch counters, and parameter vector, so ranks built with different seeds still agree."""
    if comm.size == 1:
        return
    seed, step, epochs = comm.broadcast_object((net.seed, net.step_, net.epochs_trained_))
    net.seed, net.step_, net.epochs_trained_ = seed, step, epochs
    for layer in net.layers:
        if hasattr(layer, "layer_index") and hasattr(layer, "seed"):
            layer.seed = seed
    (theta,) = comm.broadcast([to_numpy(net.theta)])
    net.bind(net.backend.asarray(theta, copy=True))


def share_optimizer(net: Any, comm: Communicator) -> None:
    """Give every rank rank 0's optimizer state (a continued fit starts where rank 0 is)."""
    if comm.size == 1 or net.optimizer is None:
        return
    state = net.optimizer.state_dict()
    t = comm.broadcast_object(state["t"])
    names = sorted(state["state"])
    arrays = comm.broadcast([to_numpy(state["state"][k]) for k in names])
    net.optimizer.load_state_dict(
        {"t": t, "state": dict(zip(names, arrays, strict=True))}, net.backend
    )


@contextlib.contextmanager
def abort_on_error(comm: Communicator) -> Iterator[None]:
    """Around collective calls that every rank must reach: an error on one rank ends every
    rank (:func:`abort_all`) instead of leaving the others waiting in the collective."""
    try:
        yield
    except BaseException as exc:
        if comm.size > 1:
            abort_all(comm, exc)
        raise


def abort_all(comm: Communicator, error: BaseException) -> None:
    """The last resort: an error escaped where the other ranks cannot hear of it (they would
    wait in the next collective forever), so end them all, saying why."""
    print(
        f"anyarray_nn: rank {comm.rank} of {comm.size}: {type(error).__name__}: {error}; "
        "aborting every rank (MPI Abort) so that none waits forever.",
        file=sys.stderr,
        flush=True,
    )
    comm.abort(1)


def weights_checksum(net: Any) -> float:
    """A cheap fingerprint of the weights: their float64 sum (bitwise equal on every rank when
    the weights are)."""
    xp = net.xp
    return float(to_numpy(xp.sum(xp.astype(net.theta, xp.float64))))


def end_of_epoch(comm: Communicator, net: Any, hooks: Any, epoch: int) -> None:
    """Run the epoch's hooks (callbacks, schedule) on this rank, then one small reduction
    tells every rank whether any failed or asked to stop, and compares the ranks' weights
    (bitwise, by :func:`weights_checksum`): they must never drift apart."""
    error: BaseException | None = None
    try:
        hooks()
    except BaseException as exc:  # a callback's error, or Ctrl-C, on this rank only
        error = exc
    size = comm.size
    vector = np.zeros(2 * size + 1)
    vector[comm.rank] = status_of(error)
    vector[size + comm.rank] = weights_checksum(net) if error is None else 0.0
    vector[-1] = float(bool(net.stop_training))
    reduced = comm.allreduce_host(vector)
    raise_if_failed(comm, reduced[:size], error, f"at the end of epoch {epoch}")
    sums = reduced[size : 2 * size]
    if np.any(sums != sums[0]):
        differ = [r for r in range(size) if sums[r] != sums[0]]
        raise DistributedError(
            f"after epoch {epoch} the weights of rank(s) {differ} differ from rank 0's "
            f"(checksums {sums.tolist()}): the ranks no longer train the same network. Were "
            "they given different data, or was a rank's network changed outside fit?",
            differ[0],
        )
    net.stop_training = bool(reduced[-1])


# -- the step's reduction: a no-op for one process, one allreduce for several -------------------
class LocalReduction:
    """One process: it computes every row of a batch, and the step's reduction does nothing."""

    size = 1
    epoch = 0

    def start_epoch(self, epoch: int) -> None:
        """The epoch (0-based) whose steps follow, for messages."""
        self.epoch = epoch

    def rows(self, start: int, stop: int) -> tuple[int, int]:
        """The rows of the global batch ``start:stop`` this process computes."""
        return start, stop

    def __call__(
        self, compute: Callable[[], tuple[Array, list[Array]]], share: Any
    ) -> tuple[Array, list[Array]]:
        """``(gradient, [loss, statistics...])`` of the batch."""
        return compute()

    def end_epoch(self, epoch: int) -> None:
        """Nothing to check."""


class AllReduction(LocalReduction):
    """Data-parallel ranks: each computes its contiguous slice of a global batch
    (:func:`slice_of`), weighs its gradient and loss by its share of the batch, and ONE
    allreduce of one flat vector (gradient, loss, statistics, a status slot per rank) gives
    every rank the batch's gradient, loss and statistics.

    Failures are data, not exceptions that would leave a rank behind: a failing rank
    contributes zeros and its status, every rank reaches every allreduce, and all raise the
    same :class:`DistributedError` (at once on host backends, at the epoch's end on devices,
    whose status slots are read only then)."""

    def __init__(self, comm: Communicator, net: Any, stat_shapes: list[tuple[int, ...]]) -> None:
        self.comm, self.net, self.stat_shapes = comm, net, stat_shapes
        self.size = comm.size
        self.error: BaseException | None = None
        self.statuses: Array = None

    def rows(self, start: int, stop: int) -> tuple[int, int]:
        return slice_of(start, stop, self.comm.rank, self.comm.size)

    def __call__(
        self, compute: Callable[[], tuple[Array, list[Array]]], share: Any
    ) -> tuple[Array, list[Array]]:
        be, comm = self.net.backend, self.comm
        xp = be.xp
        parts = None
        if self.error is None and share is not None:
            try:
                grad, (loss, *stats) = compute()
                parts = [grad * share, xp.reshape(loss * share, (1,))]
                parts += [xp.reshape(xp.astype(s, be.dtype), (-1,)) for s in stats]
            except BaseException as exc:  # KeyboardInterrupt too: the others must hear of it
                self.error = exc
        if parts is None:  # failed, or an empty slice: zeros, so that no rank waits
            width = self.net.layout.size + 1 + sum(math.prod(s) for s in self.stat_shapes)
            parts = [xp.zeros((width,), dtype=be.dtype, device=be.device)]
        slots = np.zeros(comm.size)
        slots[comm.rank] = status_of(self.error)
        flat = xp.concat([*parts, be.asarray(slots)])
        reduced = comm.allreduce(flat, be)
        status = reduced[flat.shape[0] - comm.size :]
        if be.is_host:  # free to read: a failure anywhere stops every rank now
            raise_if_failed(comm, to_numpy(status), self.error, f"in epoch {self.epoch + 1}")
        else:
            self.statuses = status if self.statuses is None else self.statuses + status
        return self._split(reduced)

    def _split(self, reduced: Array) -> tuple[Array, list[Array]]:
        xp, n = self.net.xp, self.net.layout.size
        out, offset = [reduced[n : n + 1][0]], n + 1
        for shape in self.stat_shapes:
            count = math.prod(shape)
            out.append(xp.reshape(reduced[offset : offset + count], shape))
            offset += count
        return reduced[:n], out

    def end_epoch(self, epoch: int) -> None:
        """On device backends, read the epoch's summed status slots once."""
        if self.statuses is not None:
            statuses, self.statuses = self.statuses, None
            raise_if_failed(self.comm, to_numpy(statuses), self.error, f"in epoch {epoch + 1}")


# -- threads: each rank its share of the node's cores ---------------------------------------

#: Threads each rank's BLAS and OpenMP pools may use: a number, or ``all`` to leave them as
#: they are. Unset: the rank's share of the cores (see :func:`limit_rank_threads`).
RANK_THREADS_ENV = "ANYARRAY_NN_RANK_THREADS"
#: Variables with which a user already sized the pools; when one is set, it is respected.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def ranks_on_this_node(comm: Any) -> int:
    """How many ranks of the mpi4py communicator ``comm`` share this machine's memory."""
    from mpi4py import MPI  # only reached with an mpi4py communicator

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return int(local.Get_size())
    finally:
        local.Free()


def limit_rank_threads(comm: Any, threads: int | str | None = None) -> str:
    """Limit this process's BLAS and OpenMP threads (threadpoolctl; torch's own pool too) to
    its share of the cores, so N ranks on one machine do not each run BLAS on every core.

    ``threads``: a number, ``"all"`` (leave the pools alone), or ``None``: the value of
    ``$ANYARRAY_NN_RANK_THREADS``, else the pools as the user sized them through
    ``OMP_NUM_THREADS`` & co., else ``cores available to this rank // ranks on this node``
    (at least 1). Every rank must call it (it is collective over ``comm``). Returns a line
    that says what it did, for the run's first lines."""
    local = ranks_on_this_node(comm)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    given = os.environ.get(RANK_THREADS_ENV) if threads is None else threads
    set_by = [v for v in THREAD_VARIABLES if os.environ.get(v)]
    if str(given).strip().lower() == "all" or (given is None and set_by):
        why = f"as {set_by[0]} sets them" if given is None else "as asked"
        return f"BLAS/OpenMP threads per rank left as they are ({why}); {cores} cores here"
    n = max(1, cores // local) if given is None else _thread_count(given)
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    threadpool_limits(limits=n)  # the pools loaded now; the variables, those loaded later
    os.environ.update({name: str(n) for name in THREAD_VARIABLES})
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    how = "its share" if given is None else "as asked"
    return (
        f"{n} BLAS/OpenMP thread{'s' if n != 1 else ''} per rank ({how}: {local} rank"
        f"{'s' if local != 1 else ''} on {cores} cores here; {RANK_THREADS_ENV}=N or 'all' "
        "changes it)"
    )


def _thread_count(value: int | str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"threads per rank {value!r} (--threads-per-rank or {RANK_THREADS_ENV}): give a "
            "whole number >= 1, or 'all' to leave the BLAS and OpenMP pools as they are"
        )
    return n
