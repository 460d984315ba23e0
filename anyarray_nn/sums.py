"""Device-side sums of the loss and the metrics over batches, read back once.

:class:`Sums` keeps each batch's loss and metric statistics (hit counts; per-column squared
errors for R²) on the device while an epoch or an evaluation runs, and turns them into logs with
one device-to-host transfer. A training step adds nothing to them but its own results: the
batches' values are kept as they are and combined when the epoch ends (in stacks of at most
``FOLD_EVERY``), so summing costs no operation per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import to_numpy
from .distributed import Communicator, slice_of
from .sparse import SPARSE_BATCH, dense_rows, is_sparse

if TYPE_CHECKING:
    from .network import NN

Array = Any

#: ``accuracy``: the share of correct labels (for several sigmoid outputs, of correct outputs);
#: ``subset_accuracy``: the share of rows whose every output is correct (scikit-learn's
#: ``accuracy_score`` of multilabel targets); ``r2``: R², averaged over outputs.
METRICS = ("accuracy", "subset_accuracy", "r2")

#: Batch values kept before they are folded into one (bounds memory on long epochs).
FOLD_EVERY = 256


def metric_names(net: NN, metrics: Sequence[str] | None) -> list[str]:
    names = net.head.default_metrics() if metrics is None else [m.lower() for m in metrics]
    for name in names:
        if name not in METRICS:
            raise ValueError(f"Unknown metric {name!r}. Valid metrics: {', '.join(METRICS)}.")
        if name.endswith("accuracy") and not net.is_classifier:
            raise ValueError(f"{name} needs a softmax or sigmoid output; use metrics=['r2'].")
    return names


def batch_stats(net: NN, names: list[str], a: Array, T: Array, w: Array | None) -> list[Array]:
    """One batch's metric statistics (device, no host sync), in the order of ``names``."""
    return [net.head.stats(net.xp, name, a, T, w) for name in names]


class _Stack:
    """Device values added one at a time and summed once (folded every ``FOLD_EVERY``)."""

    def __init__(self, xp: Any) -> None:
        self.xp, self.values = xp, []

    def add(self, value: Array) -> None:
        self.values.append(value)
        if len(self.values) >= FOLD_EVERY:
            self.values = [self.total()]

    def total(self) -> Array:
        if len(self.values) == 1:
            return self.values[0]
        return self.xp.sum(self.xp.stack(self.values), axis=0)


class Sums:
    """Device-side sums over batches: the objective times the rows (or the weights' sum), and
    each metric's statistic. Read once, by :meth:`logs`.

    With sample weights each row counts with its weight: the sums are weighted, and so is the
    count they are divided by (kept on the device with them)."""

    def __init__(self, net: NN, names: list[str]) -> None:
        self.net, self.names, self.xp = net, names, net.xp
        self.losses: dict[int, _Stack] = {}  # unweighted: batch losses by batch rows
        self.weighted: _Stack | None = None  # weighted: loss x weight sum, per batch
        self.weight: _Stack | None = None  # weighted: the weight sums
        self.stats = [_Stack(self.xp) for _ in names]
        self.rows = 0
        self.bad_params: Array = None  # device count of non-finite parameter entries
        self.n_bad_params = 0  # the same count, once read by logs()

    def add(self, loss: Array, stats: list[Array], rows: int, weight: Array | None = None) -> None:
        """Add one batch of ``rows`` rows (no host sync): its mean ``loss``, its statistics and,
        when weighted, its weights' sum."""
        if weight is None:
            self.losses.setdefault(rows, _Stack(self.xp)).add(loss)
        else:
            if self.weighted is None:
                self.weighted, self.weight = _Stack(self.xp), _Stack(self.xp)
            self.weighted.add(loss * weight)
            self.weight.add(weight)  # type: ignore[union-attr]
        for stack, value in zip(self.stats, stats, strict=True):
            stack.add(value)
        self.rows += rows

    def add_many(
        self, losses: Array, stats: list[Array], rows: int, weights: Array | None = None
    ) -> None:
        """Add ``len(losses)`` batches of ``rows`` rows each at once: their stacked mean
        losses, stacked statistics and, when weighted, stacked weight sums (what a compiled
        epoch returns)."""
        xp, count = self.xp, int(losses.shape[0])
        if count == 0:
            return
        if weights is None:
            self.losses.setdefault(rows, _Stack(xp)).add(xp.sum(losses))
        else:
            if self.weighted is None:
                self.weighted, self.weight = _Stack(xp), _Stack(xp)
            self.weighted.add(xp.sum(losses * weights))
            self.weight.add(xp.sum(weights))  # type: ignore[union-attr]
        for stack, value in zip(self.stats, stats, strict=True):
            stack.add(xp.sum(value, axis=0))
        self.rows += rows * count

    def running_loss(self) -> float:
        """The mean objective so far (a host read: only for live progress on host backends)."""
        values = to_numpy(self.flat(with_bad=False))
        count = self.rows if self.weight is None else float(values[1])
        return float(values[0]) / max(count, 1e-300)

    def check_parameters(self, theta: Array) -> None:
        """Count non-finite entries of the parameter vector on the device, to be read with the
        sums: the last update of an epoch happens after its loss was measured, so only this
        catches a step that overflowed there."""
        xp = self.xp
        self.bad_params = xp.sum(xp.astype(~xp.isfinite(theta), self.net.backend.dtype))

    def flat(self, with_bad: bool = True) -> Array:
        """``[sum of objective x rows, (summed weights,) statistics..., bad parameter
        count]`` as one device vector (the count only after :meth:`check_parameters`)."""
        xp, be = self.xp, self.net.backend
        zero = xp.zeros((1,), dtype=be.dtype, device=be.device)
        if self.weighted is not None:
            head = [self.weighted.total(), self.weight.total()]  # type: ignore[union-attr]
        else:
            parts = [float(rows) * s.total() for rows, s in self.losses.items()]
            head = [sum(parts[1:], parts[0]) if parts else zero]
        stats = [
            xp.astype(s.total(), be.dtype) if s.values else self._zero_stat(name)
            for s, name in zip(self.stats, self.names, strict=True)
        ]
        vectors = [xp.reshape(v, (-1,)) for v in head + stats]
        if with_bad and self.bad_params is not None:
            vectors.append(xp.reshape(self.bad_params, (1,)))
        return xp.concat(vectors)

    def _zero_stat(self, name: str) -> Array:
        be = self.net.backend
        width = (self.net.n_outputs,) if name == "r2" else ()
        return be.xp.zeros(width, dtype=be.dtype, device=be.device)

    def logs(self, ss_tot: np.ndarray | None, values: np.ndarray | None = None) -> dict[str, float]:
        """The epoch's logs, from one device -> host transfer of :meth:`flat` (or from
        ``values``, that vector already on the host, e.g. summed over ranks)."""
        values = to_numpy(self.flat()) if values is None else values
        if self.bad_params is not None:
            self.n_bad_params = int(values[-1])
        n = self.rows if self.weighted is None else float(values[1])
        logs: dict[str, float] = {"loss": float(values[0]) / n}
        pos = 1 if self.weighted is None else 2
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


def ss_tot(net: NN, T: Array, w: Array | None = None) -> np.ndarray:
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
    comm: Communicator | None = None,
) -> dict[str, float]:
    """Objective and metrics of ``net`` on device arrays (``X`` may also be a validated
    ``scipy.sparse`` matrix, densified ``batch_size`` rows at a time), read back in one
    transfer; ``weights`` (device, ``(n,)``) weights the loss and the metrics.

    With a communicator of several ranks, each rank evaluates its contiguous shard of the rows
    and one allreduce sums the shards: every rank gets the logs of all the rows."""
    names = metric_names(net, metrics)
    n = X.shape[0]
    parallel = comm is not None and comm.size > 1
    lo, hi = slice_of(0, n, comm.rank, comm.size) if parallel else (0, n)
    default = SPARSE_BATCH if is_sparse(X) else n
    chunk = max(int(batch_size) if batch_size else default, 1)
    sums = Sums(net, names)
    for start in range(lo, hi, chunk):
        stop = min(start + chunk, hi)
        whole = (start, stop) == (0, n)
        tb = T if whole else T[start:stop, :]
        w_rows = weights if weights is None or whole else weights[start:stop]
        loss, a = net.objective(dense_rows(net, X, start, stop), tb, w_rows)
        count = None if w_rows is None else net.xp.sum(w_rows)
        sums.add(loss, batch_stats(net, names, a, tb, w_rows), stop - start, count)
    denominators = ss_tot(net, T, weights) if "r2" in names else None
    if not parallel:
        return sums.logs(denominators)
    if weights is not None and sums.weighted is None:  # an empty shard: weighted zeros
        zero = net.xp.zeros((), dtype=net.backend.dtype, device=net.backend.device)
        sums.add(zero, [sums._zero_stat(m) for m in names], 0, zero)
    sums.rows = n
    return sums.logs(denominators, to_numpy(comm.allreduce(sums.flat(), net.backend)))
