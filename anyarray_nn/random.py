"""Randomness. Host streams for everything drawn once; an on-device hash for dropout masks.

Initial weights and shuffle orders come from NumPy generators seeded by a
:class:`numpy.random.SeedSequence`, one independent stream per purpose, and are transferred to the
device. The same seed therefore gives the same start and the same batch order on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from .backend import info_for_namespace

#: Stream identifiers (``SeedSequence.spawn_key``) so that init and shuffling never share draws.
STREAM_INIT = 0
STREAM_SHUFFLE = 1


def new_seed() -> int:
    """A fresh 63-bit seed from OS entropy (stored on the model so the run can be repeated)."""
    return int(np.random.SeedSequence().generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


def host_rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    """An independent NumPy Generator for ``(seed, stream, *extra)``."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(stream, *extra)))


# -- on-device, counter-based dropout bits ------------------------------------------------------
# A 32-bit integer hash (Wellons' "lowbias32") of the element counter, keyed by (seed, step,
# layer). It is written in int64 standard ops with every intermediate below 2**63, so numpy,
# cupy, torch and array-api-strict compute the same bits (torch lacks uint32 shifts, and signed
# overflow must never happen). Nothing is transferred from the host but two Python ints.

_MASK32 = 0xFFFFFFFF


def _mul32(xp: Any, x: Any, c: int) -> Any:
    """``(x * c) mod 2**32`` for int64 ``x`` in [0, 2**32) and a 32-bit constant ``c``, without
    overflowing int64: split ``c`` into 16-bit halves. Updates ``x`` in place."""
    high = x * (c >> 16)
    high &= 0xFFFF
    high <<= 16
    x *= c & 0xFFFF
    x += high
    x &= _MASK32
    return x


def _mix32(xp: Any, x: Any) -> Any:
    """Wellons' lowbias32 on int64 ``x`` (values in [0, 2**32)), in place where possible."""
    x ^= x >> 16
    x = _mul32(xp, x, 0x7FEB352D)
    x ^= x >> 15
    x = _mul32(xp, x, 0x846CA68B)
    x ^= x >> 16
    return x


def _mix32_int(x: int) -> int:
    """The same mixer on a Python int (for keys computed on the host)."""
    x &= _MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def _key32(seed: int, step: int, layer: int) -> tuple[int, int]:
    """Two 32-bit keys from (seed, step, layer), chained through the mixer on the host."""
    k = _mix32_int(seed ^ (seed >> 32) ^ 0x9E3779B9)
    k = _mix32_int(k ^ (step & _MASK32))
    k = _mix32_int(k ^ (step >> 32) ^ 0x85EBCA6B)
    k1 = _mix32_int(k ^ layer)
    k2 = _mix32_int(k1 ^ 0xC2B2AE35)
    return k1, k2


def random_bits(
    xp: Any,
    shape: tuple[int, ...],
    seed: int,
    step: int | DeviceStep,
    layer: int,
    device: Any = None,
    offset: int = 0,
) -> Any:
    """Uniform 32-bit integers (values in [0, 2**32); dtype uint32, or int64 on torch) for each
    element of ``shape``, a pure function of ``(seed, step, layer, element index)``: identical
    on every backend.

    Element ``i`` (in C order) is counter ``offset + i``. A slice of rows ``r0:r1`` of a
    ``(rows, cols)`` block therefore gets the same bits as in the whole block when called with
    ``offset=r0 * cols``, which is how data-parallel ranks reproduce one process's masks.

    ``step`` is a Python int, or a :class:`DeviceStep` (the step number as device values, which
    a compiled training step carries and advances on the device).
    """
    n = 1
    for s in shape:
        n *= s
    if offset < 0 or offset + n > 2**32:
        raise ValueError(
            f"random_bits counts elements below 2**32; got {n} elements from offset {offset}."
        )
    if _native_uint32(xp):  # fast path: wrapping uint32 arithmetic, same bits
        if not _array_constants(xp, step):  # Python ints: nothing to copy to the device
            consts: Any = _PYTHON_CONSTS
            k1, k2 = _key32(seed, step, layer)  # type: ignore[arg-type]
        elif isinstance(step, DeviceStep):
            consts = _Uint32.on(xp, device)
            k1, k2 = _key32_device(consts, seed, step, layer)
        else:
            consts = _Uint32(xp, device)
            k1, k2 = map(consts, _key32(seed, step, layer))
        x = xp.reshape(xp.arange(offset, offset + n, dtype=xp.uint32, device=device), shape)
        x ^= k1
        x = _mix32_uint32(x, consts)
        x ^= k2
        return _mix32_uint32(x, consts)
    if isinstance(step, DeviceStep):
        k1, k2 = _key32_int64(xp, seed, step.lo, layer)
    else:
        k1, k2 = _key32(seed, step, layer)
    x = xp.reshape(xp.arange(offset, offset + n, dtype=xp.int64, device=device), shape)
    x ^= k1
    x = _mix32(xp, x)
    x ^= k2
    return _mix32(xp, x)


@dataclass(frozen=True)
class DeviceStep:
    """An optimizer step number as device scalars, so that a compiled training step takes it
    as an argument (and advances it) instead of baking it in: its low and high 32 bits as two
    ``uint32`` scalars where ``uint32`` arithmetic wraps, else (``hi`` is ``None``) the whole
    number as one ``int64`` scalar in ``lo`` (torch)."""

    lo: Any
    hi: Any = None

    @staticmethod
    def halves(step: int) -> tuple[np.uint32, np.uint32]:
        """The host values of ``lo`` and ``hi`` for ``step``."""
        return np.uint32(step & _MASK32), np.uint32((step >> 32) & _MASK32)

    @staticmethod
    def on_device(backend: Any, step: int) -> DeviceStep:
        """``step`` moved to ``backend``'s device, in the form its library computes keys in."""
        if backend.native_uint32:
            lo, hi = DeviceStep.halves(step)
            u32 = backend.xp.uint32
            return DeviceStep(backend.asarray(lo, dtype=u32), backend.asarray(hi, dtype=u32))
        return DeviceStep(backend.asarray(step, dtype=backend.xp.int64, copy=True))

    def parts(self) -> tuple[Any, ...]:
        """The arrays, for a compiled function's arguments (:meth:`from_parts` inverts)."""
        return (self.lo,) if self.hi is None else (self.lo, self.hi)

    @staticmethod
    def from_parts(parts: tuple[Any, ...]) -> DeviceStep:
        return DeviceStep(*parts)

    def advanced(self, xp: Any, wb: Any) -> DeviceStep:
        """The next step number, computed on the device (in place where arrays can be
        written); the high half carries when the low half wraps."""
        if self.hi is None:
            return DeviceStep(wb.add(self.lo, 1))
        lo = self.lo + 1
        hi = self.hi + xp.astype(lo == 0, self.hi.dtype)
        return DeviceStep(wb.set(self.lo, lo), wb.set(self.hi, hi))


class _Uint32:
    """Makes 0-d ``uint32`` arrays (every key and constant is one, so no Python int above
    2**31 meets an array: JAX without 64-bit mode would overflow it), with the mixer's two
    multipliers ready. ``kept`` (see :meth:`on`) keeps each array it made, by value."""

    def __init__(self, xp: Any, device: Any, kept: dict[int, Any] | None = None) -> None:
        self.xp, self.device, self.kept = xp, device, kept
        self.c1, self.c2 = self(0x7FEB352D), self(0x846CA68B)

    def __call__(self, value: int) -> Any:
        if self.kept is not None and value in self.kept:
            return self.kept[value]
        made = self.xp.asarray(value, dtype=self.xp.uint32, device=self.device)
        if self.kept is not None:
            self.kept[value] = made  # never written: every use makes a new array from it
        return made

    @staticmethod
    def on(xp: Any, device: Any) -> _Uint32:
        """The maker for a compiled step on ``device``: where the backend keeps constants
        (:attr:`~anyarray_nn.backend.BackendInfo.keeps_constants`: CuPy, whose captured CUDA
        graph cannot copy host numbers to the device), one per namespace and device whose
        arrays are made once, by the step's first, eager call, and reused by the capture;
        elsewhere (traced arrays) a new one."""
        if not info_for_namespace(xp).keeps_constants:
            return _Uint32(xp, device)
        key = (id(xp), str(device))
        if key not in _KEPT:
            _KEPT[key] = _Uint32(xp, device, {})
        return _KEPT[key]


#: Constant makers kept by namespace and device (:meth:`_Uint32.on`); their values are a few
#: per seed and dropout layer.
_KEPT: dict[tuple[int, str], _Uint32] = {}


def _key32_device(consts: _Uint32, seed: int, step: DeviceStep, layer: int) -> tuple[Any, Any]:
    """:func:`_key32` with the step on the device: the same chain in uint32 ops."""
    k = consts(_mix32_int(seed ^ (seed >> 32) ^ 0x9E3779B9)) ^ step.lo
    k = _mix32_uint32(k, consts)
    k = _mix32_uint32(k ^ step.hi ^ consts(0x85EBCA6B), consts)
    k1 = _mix32_uint32(k ^ consts(layer), consts)
    k2 = _mix32_uint32(k1 ^ consts(0xC2B2AE35), consts)
    return k1, k2


def _key32_int64(xp: Any, seed: int, step: Any, layer: int) -> tuple[Any, Any]:
    """:func:`_key32` with the step an ``int64`` device scalar: the same chain in the exact
    ``int64`` emulation of the mixer (libraries without wrapping ``uint32``)."""
    k = _mix32_int(seed ^ (seed >> 32) ^ 0x9E3779B9)
    k = _mix32(xp, (step & _MASK32) ^ k)
    k = _mix32(xp, k ^ (step >> 32) ^ 0x85EBCA6B)
    k1 = _mix32(xp, k ^ layer)
    k2 = _mix32(xp, k1 ^ 0xC2B2AE35)
    return k1, k2


def _array_constants(xp: Any, step: Any) -> bool:
    """Whether keys and constants must be ``uint32`` arrays: for a step traced on the device,
    or a library without ``int64`` (JAX without 64-bit mode), where a Python int above 2**31
    overflows. Elsewhere they stay Python ints, which no library copies to the device."""
    info = info_for_namespace(xp)
    return (isinstance(step, DeviceStep) and info.native_uint32) or not info.has_int64()


#: The mixer's multipliers as Python ints (where no array constants are needed).
_PYTHON_CONSTS = SimpleNamespace(c1=0x7FEB352D, c2=0x846CA68B)


def _native_uint32(xp: Any) -> bool:
    """Whether ``xp`` wraps ``uint32`` arithmetic (its backend record says; torch does not)."""
    return info_for_namespace(xp).native_uint32


def _mix32_uint32(x: Any, consts: _Uint32) -> Any:
    """lowbias32 in native (wrapping) uint32 ops, in place where arrays can be written: the
    reference the int64 form emulates."""
    x ^= x >> 16
    x *= consts.c1
    x ^= x >> 15
    x *= consts.c2
    x ^= x >> 16
    return x


def dropout_mask(
    xp: Any,
    shape: tuple[int, ...],
    rate: float,
    seed: int,
    step: int | DeviceStep,
    layer: int,
    dtype: Any,
    device: Any = None,
    row_offset: int = 0,
) -> Any:
    """Inverted-dropout mask: ``1 / (1 - rate)`` where kept, ``0`` where dropped.

    An element is kept when its 32-bit hash is ``>= round(rate * 2**32)``, so the keep
    probability is ``1 - rate`` to within 2**-32, and the comparison is exact integer math.
    ``row_offset`` is the position of the first row in the whole batch (see
    :func:`random_bits`): a slice of a batch gets exactly its rows' part of the batch's mask.
    """
    threshold = min(round(rate * 2**32), 2**32 - 1)
    cols = 1
    for s in shape[1:]:
        cols *= s
    bits = random_bits(xp, shape, seed, step, layer, device, offset=row_offset * cols)
    if isinstance(step, DeviceStep) and info_for_namespace(xp).keeps_constants:
        mask = xp.astype(bits >= _Uint32.on(xp, device)(threshold), dtype)  # made once
    elif _array_constants(xp, step):  # a Python int above 2**31 would overflow JAX's int32
        mask = xp.astype(bits >= xp.asarray(threshold, dtype=bits.dtype, device=device), dtype)
    else:  # a Python int: no copy to the device on every step
        mask = xp.astype(bits >= threshold, dtype)
    mask *= 1.0 / (1.0 - rate)
    return mask
