"""Backends: which array library the math runs on, on which device, in which dtype.

A :class:`Backend` is a small immutable object that belongs to a model. It carries the Array API
namespace ``xp`` (through array-api-compat, so NumPy, CuPy and PyTorch all look like the standard),
the device and the floating dtype. There is no global state: two models on two backends live side
by side in one process.

This module is also the **only** place where data crosses the host/device boundary:
:meth:`Backend.asarray` (host -> device) and :func:`to_numpy` (device -> host).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKEND_NAMES: tuple[str, ...] = ("numpy", "cupy", "torch", "array_api_strict")
DTYPE_NAMES: tuple[str, ...] = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """A backend was asked for whose package or device is missing on this machine."""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _cupy_status() -> str | None:
    if not _installed("cupy"):
        return "not installed (pip install 'anyarray_nn[cuda12]' or '[cuda13]')"
    try:
        import cupy

        if not cupy.is_available():
            return "installed, but no CUDA device is available"
    except Exception as exc:  # a broken CUDA install raises on import or query
        return f"installed, but CUDA failed to initialise ({type(exc).__name__}: {exc})"
    return None


def _torch_status() -> str | None:
    if not _installed("torch"):
        return "not installed (pip install 'anyarray_nn[torch]')"
    return None


def _strict_status() -> str | None:
    if not _installed("array_api_strict"):
        return "not installed (pip install array-api-strict)"
    return None


def backend_status() -> dict[str, str | None]:
    """Map each backend name to ``None`` if usable here, else to the reason it is not."""
    return {
        "numpy": None,
        "cupy": _cupy_status(),
        "torch": _torch_status(),
        "array_api_strict": _strict_status(),
    }


def available_backends() -> list[str]:
    """Names of the backends usable on this machine."""
    return [name for name, why in backend_status().items() if why is None]


def _availability_report() -> str:
    lines = []
    for name, why in backend_status().items():
        lines.append(f"  {name}: {'available' if why is None else why}")
    return "Backends on this machine:\n" + "\n".join(lines)


@dataclass(frozen=True, eq=False)
class Backend:
    """Where a model's arrays live.

    Attributes:
        name: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"`` or ``"custom"``.
        xp: the Array API namespace (array-api-compat wrapped where needed).
        device: the device object arrays are created on (``None`` for NumPy).
        dtype: the floating dtype of parameters and activations, an ``xp`` dtype.
    """

    name: str
    xp: Any
    device: Any
    dtype: Any
    _native: Any = field(default=None, repr=False)

    @property
    def dtype_name(self) -> str:
        return "float64" if self.dtype == self.xp.float64 else "float32"

    @property
    def device_name(self) -> str:
        """A string form of the device that :func:`resolve` accepts back."""
        if self.name == "numpy":
            return "cpu"
        if self.name == "cupy":
            return str(getattr(self.device, "id", self.device))
        if self.name == "array_api_strict":
            return str(self.device).split("'")[1] if "'" in str(self.device) else str(self.device)
        return str(self.device)

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, device={self.device_name!r}, dtype={self.dtype_name!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickle by name (modules and device handles are not picklable); unpickling resolves
        # the backend again, so a missing package or GPU gives the usual clear error.
        if self.name == "custom":
            raise TypeError("A Backend built from a custom namespace cannot be pickled.")
        return (resolve, (self.name, self.device_name, self.dtype_name))

    # -- host -> device: the one entry point -------------------------------------------------
    def asarray(self, x: Any, dtype: Any = None, copy: bool | None = None) -> Any:
        """Move ``x`` (NumPy, list, or any library's array) onto this backend's device.

        ``dtype`` defaults to the backend's floating dtype; pass an ``xp`` dtype to override.
        ``copy=True`` guarantees a fresh buffer (needed for anything updated in place: on the
        NumPy backend the result may otherwise share memory with ``x``).
        """
        dtype = self.dtype if dtype is None else dtype
        if not self.owns(x):
            x = to_numpy(x)
        return self.xp.asarray(x, dtype=dtype, device=self.device, copy=copy)

    def owns(self, x: Any) -> bool:
        """True if ``x`` is an array of this backend's namespace and device."""
        try:
            import array_api_compat

            if array_api_compat.array_namespace(x) is not self.xp:
                return False
            return self.device is None or array_api_compat.device(x) == self.device
        except TypeError:
            return False

    def to_numpy(self, x: Any) -> np.ndarray:
        """Device -> host copy as a NumPy array (see :func:`to_numpy`)."""
        return to_numpy(x)

    def float(self, x: Any) -> float:
        """Read a 0-d device array as a Python float (a host sync: public API only)."""
        return float(to_numpy(x))

    def int_dtype(self) -> Any:
        return self.xp.int64


def to_numpy(x: Any) -> np.ndarray:
    """Copy any array (NumPy, CuPy, torch, array-api-strict on any device) to a NumPy array.

    This is the only function in the package that converts device arrays to host memory.
    """
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        return x.detach().cpu().numpy()
    if module == "cupy":
        return x.get()
    if module == "array_api_strict":
        import array_api_strict

        cpu = array_api_strict.Device("CPU_DEVICE")
        if x.device != cpu:
            x = x.to_device(cpu)
        return np.asarray(x)
    return np.asarray(x)


def _dtype_name(dtype: Any) -> str:
    if dtype is None:
        return "float32"
    name = getattr(dtype, "__name__", None) or str(dtype)
    for candidate in DTYPE_NAMES:
        if name.endswith(candidate):
            return candidate
    raise ValueError(f"Unsupported dtype {dtype!r}: use one of {', '.join(DTYPE_NAMES)}.")


def resolve(
    backend: str | Any | Backend = "auto", device: Any = None, dtype: Any = None
) -> Backend:
    """Build a :class:`Backend` from a name (or an Array API namespace), a device and a dtype.

    Args:
        backend: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"``, ``"auto"`` (CuPy
            when a CUDA device is usable, else NumPy), an Array API namespace module, or a
            :class:`Backend` (returned with the given device/dtype applied).
        device: cupy: a device id (int); torch: ``"cpu"``, ``"cuda"`` or ``"cuda:1"``;
            array_api_strict: ``"CPU_DEVICE"`` or ``"device1"``; numpy: ``None`` or ``"cpu"``.
        dtype: ``"float32"`` or ``"float64"`` (also accepts dtype objects); ``None`` means the
            given Backend's dtype, else ``"float32"``.

    Raises:
        ValueError: an unknown backend name, device or dtype.
        BackendUnavailableError: the backend's package or GPU is missing here.
    """
    if dtype is None and isinstance(backend, Backend):
        dtype = backend.dtype_name
    dtype_name = _dtype_name(dtype)
    if isinstance(backend, Backend):
        if device is None:
            device = backend.device_name
        backend = backend.name if backend.name != "custom" else backend._native
    if not isinstance(backend, str):
        return _from_namespace(backend, device, dtype_name)
    name = backend.lower().replace("-", "_")
    if name in ("strict", "array_api_strict"):
        name = "array_api_strict"
    if name == "auto":
        name = "cupy" if _cupy_status() is None else "numpy"
    if name not in BACKEND_NAMES:
        raise ValueError(
            f"Unknown backend {backend!r}. Valid names: {', '.join((*BACKEND_NAMES, 'auto'))}, "
            "or an Array API namespace module.\n" + _availability_report()
        )
    why = backend_status()[name]
    if why is not None:
        raise BackendUnavailableError(
            f"Backend {name!r} is not usable here: {why}.\n{_availability_report()}\n"
            "Pick an available backend, e.g. backend='numpy', or backend='auto'."
        )
    return _BUILDERS[name](device, dtype_name)


def _build_numpy(device: Any, dtype_name: str) -> Backend:
    import array_api_compat.numpy as xp

    if device not in (None, "cpu", "CPU"):
        raise ValueError(f"The numpy backend runs on the CPU only; got device={device!r}.")
    return Backend("numpy", xp, "cpu", getattr(xp, dtype_name))


def _build_torch(device: Any, dtype_name: str) -> Backend:
    import array_api_compat.torch as xp
    import torch

    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"Invalid torch device {device!r}: use 'cpu', 'cuda' or 'cuda:N'. ({exc})"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch device {device!r} requested, but torch sees no CUDA device "
                f"(torch {torch.__version__}). Use device='cpu'.\n{_availability_report()}"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"torch device {device!r} requested, but only {torch.cuda.device_count()} "
                "CUDA device(s) exist."
            )
    return Backend("torch", xp, dev, getattr(xp, dtype_name))


def _build_cupy(device: Any, dtype_name: str) -> Backend:
    import array_api_compat.cupy as xp
    import cupy

    index = 0 if device in (None, "cuda", "gpu") else device
    if isinstance(index, str) and index.startswith("cuda:"):
        index = index.split(":", 1)[1]
    try:
        index = int(index)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid cupy device {device!r}: use an integer device id.") from None
    count = cupy.cuda.runtime.getDeviceCount()
    if not 0 <= index < count:
        raise BackendUnavailableError(
            f"cupy device {index} requested, but only {count} CUDA device(s) exist."
        )
    return Backend("cupy", xp, cupy.cuda.Device(index), getattr(xp, dtype_name))


def _build_strict(device: Any, dtype_name: str) -> Backend:
    import array_api_strict as xp

    name = "CPU_DEVICE" if device in (None, "cpu") else str(device)
    valid = [str(d).split("'")[1] for d in xp.__array_namespace_info__().devices()]
    if name not in valid:
        raise ValueError(
            f"Invalid array_api_strict device {device!r}: use one of {', '.join(valid)}."
        )
    return Backend("array_api_strict", xp, xp.Device(name), getattr(xp, dtype_name))


_BUILDERS = {
    "numpy": _build_numpy,
    "torch": _build_torch,
    "cupy": _build_cupy,
    "array_api_strict": _build_strict,
}


def _from_namespace(namespace: Any, device: Any, dtype_name: str) -> Backend:
    """Accept an Array API namespace module (e.g. ``numpy``, ``torch``, ``array_api_strict``)."""
    module = getattr(namespace, "__name__", "")
    for key, name in (
        ("array_api_strict", "array_api_strict"),
        ("torch", "torch"),
        ("cupy", "cupy"),
        ("numpy", "numpy"),
    ):
        if key in module:
            return resolve(name, device, dtype_name)
    if not hasattr(namespace, "asarray") or not hasattr(namespace, "float32"):
        raise ValueError(
            f"backend={namespace!r} is neither a backend name nor an Array API namespace. "
            f"Valid names: {', '.join((*BACKEND_NAMES, 'auto'))}."
        )
    return Backend("custom", namespace, device, getattr(namespace, dtype_name), namespace)
