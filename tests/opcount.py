"""Count array operations on array-api-strict: every namespace function and every ``Array``
operator called from outside the library (calls made inside a counted call are not counted
again). The architecture issue's measure of a training step's size: the number of array
operations (each one a kernel launch on a GPU) per optimizer step."""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

_OPERATORS = (
    "__abs__", "__add__", "__and__", "__eq__", "__floordiv__", "__ge__", "__getitem__",
    "__gt__", "__iadd__", "__iand__", "__ifloordiv__", "__ilshift__", "__imatmul__",
    "__imod__", "__imul__", "__invert__", "__ior__", "__ipow__", "__irshift__", "__isub__",
    "__itruediv__", "__ixor__", "__le__", "__lshift__", "__lt__", "__matmul__", "__mod__",
    "__mul__", "__ne__", "__neg__", "__or__", "__pos__", "__pow__", "__radd__", "__rand__",
    "__rfloordiv__", "__rlshift__", "__rmatmul__", "__rmod__", "__rmul__", "__ror__",
    "__rpow__", "__rrshift__", "__rshift__", "__rsub__", "__rtruediv__", "__rxor__",
    "__setitem__", "__sub__", "__truediv__", "__xor__",
)  # fmt: skip


class OpCounter:
    """``counter.total`` and ``counter.by_name``: operations counted while installed."""

    def __init__(self) -> None:
        self.total = 0
        self.by_name: Counter[str] = Counter()
        self._depth = 0

    def wrap(self, name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if self._depth == 0:
                self.total += 1
                self.by_name[name] += 1
            self._depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1

        return counted


@contextmanager
def counting_ops(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpCounter]:
    """Install an :class:`OpCounter` on array_api_strict for the ``with`` block."""
    import array_api_strict
    from array_api_strict._array_object import Array

    counter = OpCounter()
    with monkeypatch.context() as patch:
        for name in dir(array_api_strict):
            fn = getattr(array_api_strict, name)
            if name.startswith("_") or not inspect.isfunction(fn):
                continue
            patch.setattr(array_api_strict, name, counter.wrap(name, fn))
        for name in _OPERATORS:
            if hasattr(Array, name):
                patch.setattr(Array, name, counter.wrap(name, getattr(Array, name)))
        yield counter
