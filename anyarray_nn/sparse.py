"""``scipy.sparse`` input: recognised at the public API, densified one batch at a time.

A sparse ``X`` stays on the host as a CSR matrix (:meth:`anyarray_nn.NN.check_inputs` validates
it). Whoever needs its rows on the device (``fit``'s batches, ``predict``, ``evaluate``, L-BFGS's
chunks) calls :func:`dense_rows`, which densifies those rows only and moves them with
``Backend.asarray``, so the whole matrix is never dense in any memory. The Array API standard has
no scatter operation, so the densification itself is done by scipy, for one batch.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .network import NN

Array = Any

#: Rows densified at a time by ``predict`` and ``evaluate`` without a ``batch_size``.
SPARSE_BATCH = 1024


def is_sparse(X: Any) -> bool:
    """True for a ``scipy.sparse`` matrix or array (without importing scipy when it is not)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def dense_rows(net: NN, X: Any, start: int, stop: int, rows: Any = None) -> Array:
    """Rows ``start:stop`` of ``X`` (or, for host data, the rows ``rows``) on the device.

    A ``scipy.sparse`` ``X`` is densified for these rows only and a host array (a memmap) copied
    for these rows only; a device array is sliced (no copy when the slice is all of it).
    """
    if is_sparse(X):
        part = X[start:stop] if rows is None else X[rows]
        return net.backend.asarray(part.toarray())
    if rows is not None:
        return net.backend.asarray(np.asarray(X[rows]))
    return X if (start, stop) == (0, X.shape[0]) else X[start:stop, ...]
