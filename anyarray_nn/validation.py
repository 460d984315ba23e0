"""Checks of hyperparameters and options: one :class:`Interval` for every range, one
:func:`check_choice` for every set of names, one :func:`check_bool`.

The optimizers, schedules, callbacks, the network, the training loop, the scikit-learn estimators
and the command line all check their numbers with these, so a bad value gets the same kind of
message everywhere: what it must be, and what was given. Python and NumPy scalars are accepted
alike (``np.int64(2)`` is an int, ``np.float32(0.2)`` a real number); booleans are never numbers,
and device arrays are refused (reading one would be a host sync).
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["Interval", "check_bool", "check_choice"]


@dataclass(frozen=True)
class Interval:
    """Numbers between ``low`` and ``high`` (``None``: unbounded), of ``kind`` int or real.

    Args:
        kind: ``"real"`` (any finite real number; ints too) or ``"int"``.
        low, high: the bounds, or ``None`` for none.
        closed: which ends belong to the interval: ``"both"``, ``"left"``, ``"right"`` or
            ``"neither"``.
        allow_inf: accept ``inf`` as the upper end (e.g. "never stop" counts).

    ``Interval("real", 0, 1, closed="left").check("dropout", x)`` returns ``x`` as a Python float
    when ``0 <= x < 1`` and raises ``ValueError("dropout must be a real number in [0, 1), got
    ...")`` otherwise.
    """

    kind: Literal["real", "int"]
    low: float | None = None
    high: float | None = None
    closed: Literal["both", "left", "right", "neither"] = "both"
    allow_inf: bool = False

    def __contains__(self, value: Any) -> bool:
        is_int = isinstance(value, numbers.Integral)
        if isinstance(value, bool) or not (is_int or isinstance(value, numbers.Real)):
            return False
        x = float(value)
        if math.isnan(x) or (math.isinf(x) and not (self.allow_inf and x > 0)):
            return False
        if self.kind == "int" and not (is_int or math.isinf(x)):
            return False
        if self.low is not None and (x < self.low or (x == self.low and not self._left_closed)):
            return False
        return self.high is None or x < self.high or (x == self.high and self._right_closed)

    @property
    def _left_closed(self) -> bool:
        return self.closed in ("both", "left")

    @property
    def _right_closed(self) -> bool:
        return self.closed in ("both", "right")

    def __str__(self) -> str:
        what = "an int" if self.kind == "int" else "a real number"
        inf = " (or inf)" if self.allow_inf else ""
        if self.low is None and self.high is None:
            return what + inf
        if self.high is None:
            return f"{what} {'>=' if self._left_closed else '>'} {self.low:g}{inf}"
        if self.low is None:
            return f"{what} {'<=' if self._right_closed else '<'} {self.high:g}"
        left = "[" if self._left_closed else "("
        right = "]" if self._right_closed else ")"
        return f"{what} in {left}{self.low:g}, {self.high:g}{right}"

    def check(self, name: str, value: Any) -> Any:
        """``value`` as a Python int or float if it lies in the interval, else ``ValueError``."""
        if value not in self:
            raise ValueError(f"{name} must be {self}, got {value!r}.")
        if self.kind == "int" and not math.isinf(float(value)):
            return int(value)
        return float(value)

    def parser(self) -> Callable[[str], Any]:
        """An ``argparse`` ``type=``: parses the text and checks it (``ArgumentTypeError``)."""
        convert = int if self.kind == "int" else float

        def parse(text: str) -> Any:
            try:
                value = convert(text)
            except ValueError:
                value = None
            if value is None or value not in self:
                raise argparse.ArgumentTypeError(f"expected {self}, got {text!r}")
            return value

        parse.__name__ = str(self)  # argparse names the type in some messages
        return parse


def check_choice(name: str, value: Any, choices: Iterable[str], hint: str = "") -> str:
    """``value`` if it is one of ``choices`` (exact strings), else a ``ValueError`` naming them."""
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    valid = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name} must be one of {valid}; got {value!r}.{hint}")


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool if it is ``True``/``False`` (NumPy's too), else ``ValueError``."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}.")
