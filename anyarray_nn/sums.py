"""Device-side sums of the loss and the metrics over batches, read back once.

:class:`Sums` keeps, on the device, the objective times the rows (or the weights' sum) and each
metric's statistic (hit counts; per-column squared errors for R²) while an epoch or an evaluation
runs, and turns them into logs with one device-to-host transfer. The training loop, evaluation
and data-parallel training (whose ranks reduce each batch's :meth:`Sums.parts`) all use it.
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


def metric_names(net: NN, metrics: Sequence[str] | None) -> list[str]:
    default = ["accuracy"] if net.is_classifier else ["r2"]
    names = default if metrics is None else [m.lower() for m in metrics]
    for name in names:
        if name not in METRICS:
            raise ValueError(f"Unknown metric {name!r}. Valid metrics: {', '.join(METRICS)}.")
        if name.endswith("accuracy") and not net.is_classifier:
            raise ValueError(f"{name} needs a softmax or sigmoid output; use metrics=['r2'].")
    return names


class Sums:
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

    def parts(self, loss: Array, a: Array, T: Array, w: Array | None = None) -> list[Array]:
        """One batch's contributions (device arrays, no host sync): ``[objective x count,
        (count,) statistics...]``, ``count`` being the rows or, weighted, the weights' sum.
        Data-parallel ranks reduce these across ranks before :meth:`add_parts`."""
        count = float(T.shape[0]) if w is None else self.net.xp.sum(w)
        head = [loss * count] if w is None else [loss * count, count]
        return head + self._batch_stats(a, T, w)

    def zero_parts(self, weighted: bool) -> list[Array]:
        """:meth:`parts` of no rows at all (a rank whose slice of a batch is empty)."""
        be = self.net.backend
        zero = be.xp.zeros((), dtype=be.dtype, device=be.device)
        width = (self.net.n_outputs,)
        stats = [
            be.xp.zeros(width, dtype=be.dtype, device=be.device) if name == "r2" else zero
            for name in self.names
        ]
        return [zero, zero, *stats] if weighted else [zero, *stats]

    def add_parts(self, parts: list[Array], rows: int) -> None:
        """Accumulate :meth:`parts` of batches holding ``rows`` rows in all."""
        weighted = len(parts) == len(self.names) + 2
        total, count = parts[0], (parts[1] if weighted else None)
        stats = parts[2:] if weighted else parts[1:]
        if self.total is None:
            self.total, self.stats, self.weight = total, list(stats), count
        else:
            self.total = self.total + total
            self.stats = [s + b for s, b in zip(self.stats, stats, strict=True)]
            self.weight = None if count is None else self.weight + count
        self.rows += rows

    def add(self, loss: Array, a: Array, T: Array, w: Array | None = None) -> None:
        """Add one batch (no host sync); ``w``: its sample weights, if any."""
        self.add_parts(self.parts(loss, a, T, w), int(T.shape[0]))

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

    def logs(self, ss_tot: np.ndarray | None, values: np.ndarray | None = None) -> dict[str, float]:
        """The epoch's logs, from one device -> host transfer of :meth:`flat` (or from
        ``values``, that vector already on the host, e.g. summed over ranks)."""
        values = to_numpy(self.flat()) if values is None else values
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
    step = max(int(batch_size) if batch_size else default, 1)
    sums = Sums(net, names)
    for start in range(lo, hi, step):
        stop = min(start + step, hi)
        whole = (start, stop) == (0, n)
        tb = T if whole else T[start:stop, :]
        wb = weights if weights is None or whole else weights[start:stop]
        loss, a = net.objective(dense_rows(net, X, start, stop), tb, wb)
        sums.add(loss, a, tb, wb)
    denominators = ss_tot(net, T, weights) if "r2" in names else None
    if not parallel:
        return sums.logs(denominators)
    if sums.total is None:
        sums.add_parts(sums.zero_parts(weights is not None), 0)
    sums.rows = n
    return sums.logs(denominators, to_numpy(comm.allreduce(sums.flat(), net.backend)))
