"""Backends: which array library the math runs on, on which device, in which dtype.

A :class:`Backend` is a small immutable object that belongs to a model. It carries the Array API
namespace ``xp`` (through array-api-compat, so NumPy, CuPy and PyTorch all look like the standard),
the device and the floating dtype. There is no global state: two models on two backends live side
by side in one process.

Everything that differs between array libraries lives here, as **one** :class:`BackendInfo`
record per library in :data:`BACKENDS`: how to probe that it is usable, how to parse a device
argument, whether its memory is host memory, whether it has wrapping ``uint32`` arithmetic, and
how to copy its arrays to NumPy. Adding a backend is one entry there (plus its tests).

This module is also the **only** place where data crosses the host/device boundary:
:meth:`Backend.asarray` (host -> device) and :func:`to_numpy` (device -> host).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import numpy as np

from .registry import normalise

DTYPE_NAMES: tuple[str, ...] = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """A backend was asked for whose package or device is missing on this machine."""


class DtypeUnavailableError(ValueError):
    """A backend cannot compute in the dtype asked for here (JAX's float64 without its 64-bit
    mode): raised alike by ``NN(...)``, ``NN.load`` and ``to()``."""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# -- the per-library pieces ------------------------------------------------------------------------
def _cupy_probe() -> str | None:
    import cupy  # optional: imported only when asked about

    if not cupy.is_available():
        return "installed, but no CUDA device is available"
    return None


def _numpy_device(device: Any) -> Any:
    if device not in (None, "cpu", "CPU"):
        raise ValueError(f"The numpy backend runs on the CPU only; got device={device!r}.")
    return "cpu"


def _torch_device(device: Any) -> Any:
    import torch  # optional

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
        if dev.index is None:  # the tensors made there say cuda:N; so must the backend
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _cupy_device(device: Any) -> Any:
    import cupy  # optional

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
    return cupy.cuda.Device(index)


def _strict_device(device: Any) -> Any:
    import array_api_strict as xp  # optional (a test extra)

    name = "CPU_DEVICE" if device in (None, "cpu") else str(device)
    valid = [_strict_device_name(d) for d in xp.__array_namespace_info__().devices()]
    if name not in valid:
        raise ValueError(
            f"Invalid array_api_strict device {device!r}: use one of {', '.join(valid)}."
        )
    return xp.Device(name)


def _jax_x64() -> bool:
    import jax  # optional

    return bool(jax.config.jax_enable_x64)


def _jax_device(device: Any) -> Any:
    import jax  # optional

    if device is None:
        return jax.devices()[0]
    if isinstance(device, jax.Device):
        return device
    platform, _, index = str(device).lower().partition(":")
    platform = {"cuda": "gpu", "rocm": "gpu"}.get(platform, platform)
    try:
        devices = jax.devices(platform)
        return devices[int(index or 0)]
    except RuntimeError:
        raise BackendUnavailableError(
            f"jax device {device!r} requested, but JAX finds no {platform!r} device here "
            f"(it has {', '.join(_jax_device_name(d) for d in jax.devices())})."
        ) from None
    except (IndexError, ValueError):
        raise ValueError(
            f"Invalid jax device {device!r}: use 'cpu', 'gpu', 'tpu' or 'PLATFORM:N'."
        ) from None


def _jax_device_name(device: Any) -> str:
    return f"{device.platform}:{device.id}"


def _jax_dtype_problem(dtype_name: str) -> str | None:
    if dtype_name == "float64" and not _jax_x64():
        return (
            "JAX computes in float32 unless 64-bit mode is on, so dtype='float64' would "
            "silently be float32. Enable it before creating arrays: "
            "jax.config.update('jax_enable_x64', True), or set JAX_ENABLE_X64=1 in the "
            "environment; or use dtype='float32'"
        )
    return None


def _jax_jit(fn: Callable[..., Any], device: Any = None) -> Any:
    import jax  # optional

    return jax.jit(fn)


class _TorchCompiled:
    """``torch.compile`` of a step: one graph per call (``fullgraph``: a graph break is an
    error, not a silent slow path), static shapes (one graph per batch shape), inductor's
    scalar arithmetic computed once per call rather than once per vector element
    (``realize_opcount_threshold``); on a CUDA device ``mode="reduce-overhead"``: the graph is
    captured as a CUDA graph and replayed.

    :meth:`warm` calls it once the signature has compiled, checking only the guards that tell
    its graphs apart (``skip_guard_eval_unsafe``): dynamo's guards over every object the step
    reads cost more than the step's elementwise work on the CPU. That is safe here because a
    compiled step is kept per :meth:`anyarray_nn.training.Step.settings`, the complete list of
    what the step bakes in: the same check dynamo's guards repeat on every call."""

    def __init__(self, fn: Callable[..., Any], device: Any) -> None:
        import torch  # optional

        self._cuda = getattr(device, "type", None) == "cuda"
        #: On CUDA, the next replay of the graph overwrites the step's outputs (its loss and
        #: statistics): the caller copies what it keeps (``compiled.CompiledStep`` does).
        self.replay_overwrites_outputs = self._cuda
        self._torch = torch
        self._fn = torch.compile(
            fn,
            fullgraph=True,
            dynamic=False,
            mode="reduce-overhead" if self._cuda else None,
            options=None if self._cuda else {"realize_opcount_threshold": 2},
        )

    def __call__(self, *args: Any) -> Any:
        if self._cuda:  # the step's own buffers, updated in place: captured by address
            self._static(args[:3])
            self._torch.compiler.cudagraph_mark_step_begin()  # a new step: see warm
        with warnings.catch_warnings():  # array-api-compat's cached type checks: pure, traced
            warnings.filterwarnings("ignore", "Dynamo detected a call to a `functools.lru_cache`")
            return self._fn(*args)

    def _static(self, buffers: Any) -> None:
        """Mark the tensors of ``buffers`` (the parameter vector, the optimizer's state and the
        step's counters: the compiled step's first three arguments, which it updates in place
        and which keep their addresses from call to call) as static, so that the CUDA graph
        captures them instead of copying them, and mutating them does not disable it."""
        leaves = self._torch.utils._pytree.tree_leaves(buffers)
        for leaf in leaves:
            if isinstance(leaf, self._torch.Tensor):
                self._torch._dynamo.mark_static_address(leaf)

    def warm(self, *args: Any) -> Any:
        if self._cuda:  # each call is a new step: the previous one's outputs, already copied
            self._torch.compiler.cudagraph_mark_step_begin()  # by the caller, may be reused
        with self._torch.compiler.set_stance(skip_guard_eval_unsafe=True):
            return self._fn(*args)


def _torch_compile(fn: Callable[..., Any], device: Any = None) -> Any:
    return _TorchCompiled(fn, device)


def _cupy_graphs(fn: Callable[..., Any], device: Any = None) -> Any:
    from .graphs import CupyCapture, GraphStep  # library-specific code lives there

    return GraphStep(fn, CupyCapture(device))


def _torch_update_kernel(kind: str, params: Any) -> Any:
    from .kernels import torch_kernel  # library-specific code lives there

    return torch_kernel(kind, params)


def _torch_scan(f: Callable[..., Any], carry: Any, xs: Any) -> Any:
    from torch._higher_order_ops.scan import scan  # optional; a prototype in torch 2.13

    return scan(f, carry, xs)


def _torch_scan_on(device: Any) -> Callable[..., Any] | None:
    """torch's loop on the CPU; none on CUDA, where the compiled step is replayed as a CUDA
    graph instead (inductor runs a loop's iterations from the host there)."""
    if getattr(device, "type", None) == "cuda":
        return None
    try:
        from torch._higher_order_ops.scan import scan  # noqa: F401
    except ImportError:  # a torch without it: one compiled call per step
        return None
    return _torch_scan


def _jax_scan(f: Callable[..., Any], carry: Any, xs: Any) -> Any:
    import jax  # optional

    return jax.lax.scan(f, carry, xs)


#: XLA's CPU client uses a NumPy buffer in place, without a copy, when its address is a multiple
#: of this many bytes (and it is C-contiguous, in the requested dtype); NumPy's allocator
#: aligns large arrays to 16 bytes only.
XLA_CPU_ALIGNMENT = 64


def aligned_empty(
    shape: tuple[int, ...], dtype: Any, alignment: int = XLA_CPU_ALIGNMENT
) -> np.ndarray:
    """An uninitialised C-contiguous NumPy array whose data starts at a multiple of
    ``alignment`` bytes (a view into a slightly larger byte buffer, which it keeps alive)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _shareable(x: np.ndarray, dtype: np.dtype, alignment: int) -> bool:
    """True when ``x`` can be used in place by a library that needs ``alignment``: the dtype,
    C order and alignment match, and it is ordinary writable memory (a read-only array, such
    as a ``numpy.memmap`` of a file that another process may change or truncate, is copied)."""
    return (
        x.dtype == dtype
        and x.flags.c_contiguous
        and x.flags.writeable
        and not isinstance(x, np.memmap)
        and x.ctypes.data % alignment == 0
    )


def _jax_from_host(x: np.ndarray, dtype: Any, device: Any, copy: bool | None) -> Any:
    """A NumPy array onto a JAX device in one transfer (``jax.device_put``; ``jnp.asarray``
    with ``device=`` converted through a much slower path: 0.33 s against 0.09 s for 60k x 784
    float32). On JAX's CPU, a C-contiguous, 64-byte-aligned array of the requested dtype is
    used **in place** (no copy; JAX never writes into it); any other array, or ``copy=True``,
    is first copied (and cast) into a fresh aligned host buffer that JAX then takes in place:
    one host copy (~20 ms here) instead of XLA's own copy (~90 ms, page faults on a buffer
    of its own)."""
    import jax  # optional

    target = np.dtype(dtype)
    if device.platform != "cpu":  # cast on the host: the transfer moves the final bytes only
        return jax.device_put(np.asarray(x, dtype=target), device)
    if copy or not _shareable(x, target, XLA_CPU_ALIGNMENT):
        if copy is False:
            raise ValueError("copy=False: this array cannot be used in place by JAX")
        out = aligned_empty(x.shape, target)
        np.copyto(out, x, casting="unsafe")  # range and finiteness are checked by the caller
        x = out
    return jax.device_put(x, device)


def _jax_uint32_wraps() -> bool:
    import jax.numpy as jnp  # optional

    return int(jnp.asarray(0xFFFFFFFF, dtype=jnp.uint32) + jnp.asarray(1, dtype=jnp.uint32)) == 0


def _strict_device_name(device: Any) -> str:
    text = str(device)  # "Device('CPU_DEVICE')"
    return text.split("'")[1] if "'" in text else text


def _strict_to_numpy(x: Any) -> np.ndarray:
    import array_api_strict  # only reached for its arrays, so it is installed

    cpu = array_api_strict.Device("CPU_DEVICE")
    if x.device != cpu:
        x = x.to_device(cpu)
    return np.asarray(x)


def _ndonnx_device(device: Any) -> Any:
    import ndonnx  # optional (the onnx extra)

    if device not in (None, "cpu", "onnx"):
        raise ValueError(f"The ndonnx backend has one device, 'onnx'; got device={device!r}.")
    return ndonnx.__array_namespace_info__().default_device()


@dataclass(frozen=True)
class BackendInfo:
    """Everything specific to one array library.

    Attributes:
        name: the backend's name, as :func:`resolve` takes it.
        package: the import name of the library (probed to tell if it is installed, and the
            top-level module of its array type).
        namespace: the module giving its Array API namespace (array-api-compat's wrapper).
        install: how to install it, for error messages.
        make_device: turns a user's ``device=`` argument into a device object (ValueError for
            a bad one, :class:`BackendUnavailableError` for a missing one).
        device_name: turns a device object back into a string that ``make_device`` accepts.
        to_numpy: copies one of its arrays into a NumPy array.
        is_host: True when arrays on that device live in host memory, so reading a value back
            costs no transfer (the progress bar then shows a live loss).
        native_uint32: True when ``uint32`` arithmetic wraps modulo 2**32 (the dropout hash
            then runs in ``uint32``; otherwise in an exact ``int64`` emulation).
        probe: returns ``None`` when the library is usable here beyond being installed, else
            why not (e.g. no GPU).
        aliases: other names :func:`resolve` accepts.
        auto: ``backend="auto"`` picks this backend when it is usable (a GPU library).
        detach: returns an array without any autograd history (torch's ``requires_grad``
            tensors), so that no graph leaks into the parameters.
        copies_host_memory: False when ``asarray`` of a NumPy array may share its memory;
            then a read-only array (a ``numpy.memmap`` opened for reading) is copied first
            (by ``from_host`` itself where the record has one).
        dtype_problem: returns why a dtype name cannot be computed in here (JAX without
            64-bit mode and ``"float64"``), else ``None``; :func:`resolve` refuses it.
        has_int64: whether ``int64`` arrays exist (index arrays are ``int32`` otherwise).
        compile: ``compile(fn, device)`` turns a function of arrays into a compiled one for
            arrays on ``device`` (``jax.jit``; ``torch.compile``, with CUDA graphs on a CUDA
            device; on CuPy the step captured as a CUDA graph and replayed,
            :mod:`anyarray_nn.graphs`); ``None`` when the library runs eagerly only. ``fit``
            then compiles its step with it (:mod:`anyarray_nn.compiled`).
        compile_by_default: ``fit(compile=None)`` compiles (JAX: compiling takes about a
            second and pays within an epoch); False where compiling takes long enough that the
            user should ask for it (torch: see docs/performance.md; CuPy: its graphs have not
            been run on a GPU in this project yet).
        keeps_constants: device constants that a compiled step makes from host numbers
            (the dropout hash's ``uint32`` keys) may be made once and reused: its arrays are
            concrete, not traced, and a CUDA graph capture cannot copy host numbers to the
            device (CuPy).
        scan_on: ``scan_on(device)`` is the library's ``scan(f, carry, xs) -> (carry, ys)``
            for arrays on ``device``, which runs ``f`` once per leading entry of ``xs`` inside
            a compiled function (``jax.lax.scan``; torch's ``scan`` on its CPU), or ``None``:
            ``fit`` then runs a whole epoch's full batches as one call. ``None`` when the
            library has none.
        scan_binds: a loop body may change Python objects (JAX traces it as plain Python);
            False for dynamo, which refuses side effects in a loop body: a network with a
            layer that reads ``self.params`` (one without
            :attr:`~anyarray_nn.layers.Layer.params_from_pass`) then runs one compiled call
            per step.

        purpose: ``None`` for a backend that computes; else what it is for instead (ndonnx
            records ONNX graphs for export): a network can then be traced on it, but not
            built, moved, trained or run there (:func:`check_computes`).
        from_host: ``from_host(x, dtype, device, copy)`` moves a NumPy array onto ``device``
            in ``dtype`` where the namespace's ``asarray`` is not the best way (JAX:
            ``jax.device_put``, in place on its CPU); ``None``: ``xp.asarray``.
        immutable: the library's arrays never change once made (JAX), so a check of one
            (``fit``'s NaN/inf check of ``X``) holds for as long as the array lives and is
            not repeated by later calls given the same array.
        update_kernel: ``update_kernel(kind, params)`` is the library's one-kernel form of
            an optimizer update of that kind (``"adam"``, ``"adamw"``) for ``params``' dtype
            and device, or ``None`` (:mod:`anyarray_nn.kernels`, chosen once per ``fit``).
    """

    name: str
    package: str
    namespace: str
    install: str
    make_device: Callable[[Any], Any]
    device_name: Callable[[Any], str] = str
    to_numpy: Callable[[Any], np.ndarray] = np.asarray
    is_host: Callable[[Any], bool] = lambda device: True
    native_uint32: bool = True
    probe: Callable[[], str | None] = lambda: None
    aliases: tuple[str, ...] = ()
    auto: bool = False
    detach: Callable[[Any], Any] = lambda x: x
    copies_host_memory: bool = True
    dtype_problem: Callable[[str], str | None] = lambda dtype_name: None
    has_int64: Callable[[], bool] = lambda: True
    compile: Callable[..., Any] | None = None
    compile_by_default: bool = True
    keeps_constants: bool = False
    scan_on: Callable[[Any], Callable[..., Any] | None] | None = None
    scan_binds: bool = True
    purpose: str | None = None
    from_host: Callable[[np.ndarray, Any, Any, bool | None], Any] | None = None
    update_kernel: Callable[[str, Any], Any] = lambda kind, params: None
    immutable: bool = False

    def status(self) -> str | None:
        """``None`` if this backend is usable here, else the reason it is not."""
        if not _installed(self.package):
            return f"not installed ({self.install})"
        try:
            return self.probe()
        except Exception as exc:  # a broken install (e.g. CUDA) raises on import or query
            return f"installed, but failed to initialise ({type(exc).__name__}: {exc})"


#: One record per backend.
BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo(
            "numpy",
            package="numpy",
            namespace="array_api_compat.numpy",
            install="pip install numpy",
            make_device=_numpy_device,
            device_name=lambda device: "cpu",
        ),
        BackendInfo(
            "cupy",
            package="cupy",
            namespace="array_api_compat.cupy",
            install="pip install 'anyarray_nn[cuda12]' or '[cuda13]'",
            make_device=_cupy_device,
            device_name=lambda device: str(getattr(device, "id", device)),
            to_numpy=lambda x: x.get(),
            is_host=lambda device: False,
            probe=_cupy_probe,
            auto=True,
            compile=_cupy_graphs,  # the step captured as a CUDA graph: anyarray_nn.graphs
            compile_by_default=False,  # not yet run on a GPU here: fit(compile=True) asks
            keeps_constants=True,
        ),
        BackendInfo(
            "torch",
            package="torch",
            namespace="array_api_compat.torch",
            install="pip install 'anyarray_nn[torch]'",
            make_device=_torch_device,
            to_numpy=lambda x: x.detach().cpu().numpy(),
            is_host=lambda device: str(device) == "cpu",
            native_uint32=False,  # torch lacks uint32 shifts and multiplies
            detach=lambda x: x.detach(),
            copies_host_memory=False,  # torch.asarray shares a NumPy array's memory
            compile=_torch_compile,
            compile_by_default=False,  # compiling takes seconds: fit(compile=True) asks
            scan_on=_torch_scan_on,
            scan_binds=False,
            update_kernel=_torch_update_kernel,
        ),
        BackendInfo(
            "array_api_strict",
            package="array_api_strict",
            namespace="array_api_strict",
            install="pip install array-api-strict",
            make_device=_strict_device,
            device_name=_strict_device_name,
            to_numpy=_strict_to_numpy,
            is_host=lambda device: _strict_device_name(device) == "CPU_DEVICE",
            aliases=("strict",),
        ),
        # Arrays that build an ONNX graph (anyarray_nn.export); to_numpy reads a constant.
        BackendInfo(
            "ndonnx",
            package="ndonnx",
            namespace="ndonnx",
            install="pip install 'anyarray_nn[onnx]'",
            make_device=_ndonnx_device,
            device_name=lambda device: "onnx",
            to_numpy=lambda x: x.unwrap_numpy(),
            is_host=lambda device: False,
            native_uint32=False,
            purpose=(
                "records ONNX graphs for export (net.export, anyarray_nn.export_onnx, "
                "anyarray-nn export) and computes no numbers"
            ),
        ),
        BackendInfo(
            "jax",
            package="jax",
            namespace="jax.numpy",
            install="pip install 'anyarray_nn[jax]'",
            make_device=_jax_device,
            device_name=_jax_device_name,
            is_host=lambda device: device.platform == "cpu",
            native_uint32=True,  # checked by a test: _jax_uint32_wraps()
            dtype_problem=_jax_dtype_problem,
            has_int64=_jax_x64,
            compile=_jax_jit,
            scan_on=lambda device: _jax_scan,
            copies_host_memory=False,  # a 64-byte-aligned array is used in place on its CPU
            from_host=_jax_from_host,
            immutable=True,
        ),
    )
}
#: The built-in backends' names (:func:`backend_names` includes registered ones).
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)


def register_backend(info: BackendInfo) -> BackendInfo:
    """Add a backend: after this, ``resolve(info.name)``, ``NN(backend=info.name)``, model
    files saved from it, ``anyarray-nn backends`` and ``--backend`` know it. A name that is
    taken (by a name or an alias) is an error."""
    taken = {normalise(n) for i in BACKENDS.values() for n in (i.name, *i.aliases)}
    taken |= {"auto", "custom"}
    clash = sorted(n for n in (info.name, *info.aliases) if normalise(n) in taken)
    if clash:
        raise ValueError(
            f"Backend name(s) {', '.join(map(repr, clash))} already taken (names are compared "
            "ignoring case, '_', '-', '.' and spaces)."
        )
    BACKENDS[info.name] = info
    return info


def backend_names() -> tuple[str, ...]:
    """Every backend's name, built-in and registered."""
    return tuple(BACKENDS)


#: For a namespace that is none of the above: nothing assumed (no live reads, no uint32 path).
_CUSTOM = BackendInfo(
    "custom",
    package="",
    namespace="",
    install="",
    make_device=lambda device: device,
    is_host=lambda device: False,
    native_uint32=False,
)


def check_computes(backend: Backend) -> Backend:
    """``backend``, or a one-line ValueError when it does not compute (ndonnx: export only),
    so a network cannot be built, moved, trained or run on it."""
    _refuse_non_computing(backend.info)
    return backend


def resolve_computing(
    backend: str | Any | Backend, device: Any = None, dtype: Any = None
) -> Backend:
    """:func:`resolve` for a network that computes: a backend that does not (ndonnx) is
    refused by name first, whether or not it is installed here (installing it would not help)."""
    if isinstance(backend, str) and normalise(backend) != "auto":
        _refuse_non_computing(_lookup(backend))
    return check_computes(resolve(backend, device, dtype))


def _refuse_non_computing(info: BackendInfo) -> None:
    if info.purpose is not None:
        raise ValueError(
            f"Backend {info.name!r} cannot train or run a network: it {info.purpose}. "
            "Train on a computing backend (e.g. backend='numpy'), then export."
        )


def backend_status() -> dict[str, str | None]:
    """Map each backend name to ``None`` if usable here, else to the reason it is not."""
    return {name: info.status() for name, info in BACKENDS.items()}


def available_backends() -> list[str]:
    """Names of the backends usable on this machine."""
    return [name for name, why in backend_status().items() if why is None]


def auto_backend() -> str:
    """What ``backend="auto"`` picks here: the first usable backend marked ``auto`` (CuPy, when
    a GPU is usable), else NumPy."""
    for info in BACKENDS.values():
        if info.auto and info.status() is None:
            return info.name
    return "numpy"


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
        device: the device object arrays are created on (``"cpu"`` for NumPy).
        dtype: the floating dtype of parameters and activations, an ``xp`` dtype.
        info: the library's :class:`BackendInfo` record.
    """

    name: str
    xp: Any
    device: Any
    dtype: Any
    _native: Any = field(default=None, repr=False)
    info: BackendInfo = field(default=_CUSTOM, repr=False)

    @property
    def dtype_name(self) -> str:
        return "float64" if self.dtype == self.xp.float64 else "float32"

    @property
    def device_name(self) -> str:
        """A string form of the device that :func:`resolve` accepts back."""
        return self.info.device_name(self.device)

    @property
    def is_host(self) -> bool:
        """True when the arrays live in host memory (reading a value back is free)."""
        return self.info.is_host(self.device)

    @property
    def index_dtype(self) -> Any:
        """The integer dtype of index arrays: ``int64``, or ``int32`` where the library has
        no ``int64`` (JAX without 64-bit mode)."""
        return self.xp.int64 if self.info.has_int64() else self.xp.int32

    @property
    def native_uint32(self) -> bool:
        """True when ``uint32`` arithmetic wraps modulo 2**32 on this backend."""
        return self.info.native_uint32

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
        ``copy=True`` guarantees a fresh buffer (needed for anything updated in place).
        Otherwise the result may **share memory** with a NumPy ``x`` where the device memory is
        host memory and the dtype and layout already match: NumPy, torch on the CPU, JAX on
        the CPU (a 64-byte-aligned ``x``). The library never writes into such a result
        (training writes only the parameters and the optimizer state, which are always
        fresh copies); see "Data on the device" in docs/jax.md for what that means for users.
        """
        dtype = self.dtype if dtype is None else dtype
        if self.owns(x) and not isinstance(x, np.ndarray):
            return self.xp.asarray(self.info.detach(x), dtype=dtype, device=self.device, copy=copy)
        x = to_numpy(x)
        if self.info.from_host is not None:
            return self.info.from_host(x, dtype, self.device, copy)
        if not self.info.copies_host_memory and not x.flags.writeable:
            x = np.array(x)  # never hand a read-only buffer to a library that may share it
        return self.xp.asarray(x, dtype=dtype, device=self.device, copy=copy)

    def owns(self, x: Any) -> bool:
        """True if ``x`` is an array of this backend's namespace and device."""
        try:
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


def info_for_array(x: Any) -> BackendInfo | None:
    """The record of ``x``'s library (by its array type's top-level package), or ``None``."""
    package = type(x).__module__.split(".")[0]
    for info in BACKENDS.values():
        if info.package == package:
            return info
    return None


def info_for_namespace(xp: Any) -> BackendInfo:
    """The record of the library behind the Array API namespace ``xp`` (a neutral record, with
    nothing assumed, for a namespace that is none of :data:`BACKENDS`)."""
    module = getattr(xp, "__name__", "")
    for info in BACKENDS.values():
        if module == info.namespace:
            return info
    return _CUSTOM


def to_numpy(x: Any) -> np.ndarray:
    """Copy any array (NumPy, CuPy, torch, array-api-strict on any device) to a NumPy array.

    This is the only function in the package that converts device arrays to host memory.
    """
    if isinstance(x, np.ndarray):
        return x
    info = info_for_array(x)
    return np.asarray(x) if info is None else info.to_numpy(x)


def _dtype_name(dtype: Any) -> str:
    if dtype is None:
        return "float32"
    name = getattr(dtype, "__name__", None) or str(dtype)
    for candidate in DTYPE_NAMES:
        if name.endswith(candidate):
            return candidate
    raise ValueError(f"Unsupported dtype {dtype!r}: use one of {', '.join(DTYPE_NAMES)}.")


def _lookup(name: str) -> BackendInfo:
    key = normalise(name)
    if key == "auto":
        key = normalise(auto_backend())
    for info in BACKENDS.values():
        if key in {normalise(n) for n in (info.name, *info.aliases)}:
            return info
    raise ValueError(
        f"Unknown backend {name!r}. Valid names: {', '.join((*backend_names(), 'auto'))}, "
        "or an Array API namespace module.\n" + _availability_report()
    )


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
    info = _lookup(backend)
    why = info.status()
    if why is not None:
        raise BackendUnavailableError(
            f"Backend {info.name!r} is not usable here: {why}.\n{_availability_report()}\n"
            "Pick an available backend, e.g. backend='numpy', or backend='auto'."
        )
    problem = info.dtype_problem(dtype_name)
    if problem is not None:
        raise DtypeUnavailableError(
            f"Backend {info.name!r} cannot compute in {dtype_name}: {problem}."
        )
    xp = importlib.import_module(info.namespace)
    return Backend(info.name, xp, info.make_device(device), getattr(xp, dtype_name), info=info)


def _from_namespace(namespace: Any, device: Any, dtype_name: str) -> Backend:
    """Accept an Array API namespace module (e.g. ``numpy``, ``torch``, ``array_api_strict``)."""
    module = getattr(namespace, "__name__", "")
    # exact module names: "jax.numpy" contains "numpy" but is JAX's
    for info in BACKENDS.values():
        if module in (info.namespace, info.package):
            return resolve(info.name, device, dtype_name)
    if not hasattr(namespace, "asarray") or not hasattr(namespace, "float32"):
        raise ValueError(
            f"backend={namespace!r} is neither a backend name nor an Array API namespace. "
            f"Valid names: {', '.join((*backend_names(), 'auto'))}."
        )
    raise ValueError(
        f"Unsupported backend namespace {module!r}: no backend record describes it. Register "
        "one with anyarray_nn.backend.register_backend(BackendInfo(...)), or pass a backend "
        f"name: {', '.join((*backend_names(), 'auto'))}."
    )
