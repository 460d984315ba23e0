"""Weight initializers, drawn on the host so that a seed means the same numbers everywhere.

Each initializer is a function ``(rng, fan_in, fan_out) -> np.ndarray`` (float64, shape
``(fan_in, fan_out)``) using a seeded :class:`numpy.random.Generator`. The network casts the draw to
its dtype and moves it to its device once, so the same seed gives bit-identical initial weights on
NumPy, CuPy, torch and array-api-strict.

Formulas (``U`` uniform, ``N`` normal with the given variance):

==================  ===============================================
zeros               0
normal(std)         N(0, std**2), std = 0.01 by default
uniform(limit)      U(-limit, limit), limit = 0.05 by default
glorot_normal       N(0, 2 / (fan_in + fan_out))      (Xavier)
glorot_uniform      U(+-sqrt(6 / (fan_in + fan_out)))  (Xavier)
he_normal           N(0, 2 / fan_in)                   (Kaiming)
he_uniform          U(+-sqrt(6 / fan_in))              (Kaiming)
lecun_normal        N(0, 1 / fan_in)
lecun_uniform       U(+-sqrt(3 / fan_in))
==================  ===============================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from . import registry as _registry
from .registry import Registry

Initializer = Callable[[np.random.Generator, int, int], np.ndarray]

#: Every initializer, by name.
registry: Registry = _registry.initializers


def zeros(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return np.zeros((fan_in, fan_out))


def normal(rng: np.random.Generator, fan_in: int, fan_out: int, std: float = 0.01) -> np.ndarray:
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def uniform(rng: np.random.Generator, fan_in: int, fan_out: int, limit: float = 0.05) -> np.ndarray:
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def glorot_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return normal(rng, fan_in, fan_out, std=math.sqrt(2.0 / (fan_in + fan_out)))


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return uniform(rng, fan_in, fan_out, limit=math.sqrt(6.0 / (fan_in + fan_out)))


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return normal(rng, fan_in, fan_out, std=math.sqrt(2.0 / fan_in))


def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return uniform(rng, fan_in, fan_out, limit=math.sqrt(6.0 / fan_in))


def lecun_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return normal(rng, fan_in, fan_out, std=math.sqrt(1.0 / fan_in))


def lecun_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return uniform(rng, fan_in, fan_out, limit=math.sqrt(3.0 / fan_in))


for _name, _function, _aliases in (
    ("zeros", zeros, ()),
    ("normal", normal, ()),
    ("uniform", uniform, ()),
    ("glorot_normal", glorot_normal, ("xavier_normal",)),
    ("glorot_uniform", glorot_uniform, ("xavier_uniform",)),
    ("he_normal", he_normal, ("kaiming_normal",)),
    ("he_uniform", he_uniform, ("kaiming_uniform",)),
    ("lecun_normal", lecun_normal, ()),
    ("lecun_uniform", lecun_uniform, ()),
):
    registry.register(_name, _function, aliases=_aliases)


def register(name: str, function: Initializer | None = None) -> Any:
    """Register an initializer ``(rng, fan_in, fan_out, **kwargs) -> np.ndarray`` by name, so
    that layers using it save and load. Use as ``register("orthogonal", fn)`` or as a decorator
    ``@register("orthogonal")``."""
    return registry.register(name, function)


def get(spec: str | dict[str, Any] | Initializer, **kwargs: float) -> Initializer:
    """An initializer by name (``"he_normal"``, ``"xavier_uniform"``, ...), by a saved spec
    ``{"name": "normal", "std": 0.1}`` (see :func:`spec`), or a callable.

    Keyword arguments (``std=`` for normal, ``limit=`` for uniform) are bound to it.
    """
    return registry.get(spec, **kwargs)


def spec(init: str | Initializer) -> str | dict[str, Any] | None:
    """A JSON-able description of ``init`` that :func:`get` accepts back: its name, or
    ``{"name": ..., **kwargs}`` for a registered initializer with bound arguments (as returned
    by ``get("normal", std=0.1)``). ``None`` for a function that is not registered, which cannot
    be saved by name."""
    if isinstance(init, str | dict):
        return init
    func, kwargs = (init.func, dict(init.keywords)) if isinstance(init, partial) else (init, {})
    name = registry.name_of(func)
    if name is None:
        return None
    return {"name": name, **kwargs} if kwargs else name
