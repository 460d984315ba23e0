"""The write-back rule: an update produces new arrays, and the caller stores them.

Arithmetic that updates state (an optimizer's moments, the parameters themselves) goes through a
:class:`WriteBack`: on a library whose arrays can be written (NumPy, CuPy, PyTorch,
array-api-strict) ``wb.mul(m, beta)`` is ``m *= beta`` and returns ``m`` itself, so a training
step allocates nothing new for its state; on a library whose arrays are immutable (JAX) it is
``m * beta``, a new array. Either way the code reads the same::

    m = wb.add(wb.mul(m, beta1), (1.0 - beta1) * g)     # m <- beta1 m + (1 - beta1) g

and the caller keeps what it gets back. Code that never mutates (``m = beta1 * m + ...``) is
always correct too; it only allocates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat

Array = Any

__all__ = ["WriteBack", "for_array"]


@dataclass(frozen=True)
class WriteBack:
    """In-place arithmetic where arrays can be written, new arrays where they cannot.

    Every method returns the result; with ``mutable`` it is the first argument, updated."""

    mutable: bool

    def mul(self, a: Array, b: Any) -> Array:
        """``a * b``."""
        if self.mutable:
            a *= b
            return a
        return a * b

    def add(self, a: Array, b: Any) -> Array:
        """``a + b``."""
        if self.mutable:
            a += b
            return a
        return a + b

    def sub(self, a: Array, b: Any) -> Array:
        """``a - b``."""
        if self.mutable:
            a -= b
            return a
        return a - b

    def div(self, a: Array, b: Any) -> Array:
        """``a / b``."""
        if self.mutable:
            a /= b
            return a
        return a / b

    def set(self, a: Array, b: Array) -> Array:
        """``b``'s values in ``a``'s place (``a[...] = b``); ``b`` itself when immutable."""
        if self.mutable:
            a[...] = b
            return a
        return b


#: The two policies.
IN_PLACE, NEW_ARRAYS = WriteBack(True), WriteBack(False)


def for_array(x: Array) -> WriteBack:
    """The policy for ``x``'s library: in place when ``x`` can be written."""
    return IN_PLACE if array_api_compat.is_writeable_array(x) else NEW_ARRAYS
