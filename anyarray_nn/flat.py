"""Flat buffers: every parameter of a network in one contiguous vector.

A network's parameters ``W1, b1, W2, b2, ...`` are slices of one 1-D array, ``theta``; each
layer's ``params["W"]`` is a reshaped view of its slice, so layer code reads like the textbook
(``x @ W + b``) while everything that treats the parameters as a whole works on one array:

- an optimizer update is a handful of whole-vector operations, whatever the depth;
- the gradient is one vector too (``concat(..., axis=None)`` of the layers' gradients, or, on
  immutable arrays, slice updates of one vector: see :meth:`FlatLayout.pack`), which a
  data-parallel step reduces as it is, with no packing;
- snapshots, ``to()``, save/load and L-BFGS move one array.

Where arrays can be written, updates stay in place and the views stay valid; where they cannot
(JAX), the network re-derives the views from the new vector (:meth:`FlatLayout.views`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import device as array_device
from array_api_compat import is_writeable_array

Array = Any

__all__ = ["FlatLayout"]


@dataclass(frozen=True)
class FlatLayout:
    """Where each parameter lives in the flat vector.

    Attributes:
        names: ``("W1", "b1", ...)``, in order.
        shapes: each parameter's shape.
        offsets: each parameter's first index in the vector.
        penalised: whether L1/L2 penalties apply to it (weights yes, biases no).
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    penalised: tuple[bool, ...]

    @classmethod
    def of(
        cls, names: Sequence[str], shapes: Sequence[tuple[int, ...]], penalised: Sequence[bool]
    ) -> FlatLayout:
        """The layout of parameters of these ``shapes``, packed in order."""
        offsets, start = [], 0
        for shape in shapes:
            offsets.append(start)
            start += math.prod(shape)
        return cls(tuple(names), tuple(map(tuple, shapes)), tuple(offsets), tuple(penalised))

    @property
    def size(self) -> int:
        """The length of the vector."""
        return (self.offsets[-1] + math.prod(self.shapes[-1])) if self.shapes else 0

    def views(self, xp: Any, theta: Array) -> list[Array]:
        """Each parameter as a reshaped slice of ``theta`` (views where the library has them)."""
        return [
            xp.reshape(theta[start : start + math.prod(shape)], shape)
            for start, shape in zip(self.offsets, self.shapes, strict=True)
        ]

    def pack(self, xp: Any, arrays: Sequence[Array]) -> Array:
        """One vector holding ``arrays`` (the parameters, or their gradients), in order.

        On arrays that can be written this is one ``concat``. On immutable arrays (JAX) it is
        a chain of slice updates of a zero vector (array-api-extra's ``at(...).set``), which a
        compiler does in place, slice by slice. Why: inside a compiled loop, XLA's CPU
        concatenate kernel (jaxlib 0.10) took 5-13 ms per step on some calls instead of
        microseconds, making a compiled epoch up to 15x slower than NumPy's; the updates ran
        steadily. Both give the same vector, bit for bit."""
        arrays = list(arrays)
        if not arrays or is_writeable_array(arrays[0]):
            return xp.concat(arrays, axis=None)
        try:
            import array_api_extra as xpx
        except ImportError:  # pragma: no cover - installed with the jax extra
            return xp.concat(arrays, axis=None)
        flat = xp.zeros(self.size, dtype=arrays[0].dtype, device=array_device(arrays[0]))
        for start, a in zip(self.offsets, arrays, strict=True):
            stop = start + math.prod(a.shape)
            flat = xpx.at(flat, slice(start, stop)).set(xp.reshape(a, (-1,)))
        return flat

    def split(self, theta: np.ndarray) -> list[np.ndarray]:
        """A host vector cut into the parameters' shapes (copies)."""
        return [
            np.array(theta[start : start + math.prod(shape)].reshape(shape))
            for start, shape in zip(self.offsets, self.shapes, strict=True)
        ]

    def penalty_mask(self) -> np.ndarray:
        """``1.0`` at the entries penalties apply to, ``0.0`` elsewhere (host, float64)."""
        mask = np.zeros(self.size)
        for start, shape, on in zip(self.offsets, self.shapes, self.penalised, strict=True):
            mask[start : start + math.prod(shape)] = float(on)
        return mask
