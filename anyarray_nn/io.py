"""Save and load networks: tensors plus JSON metadata, never pickle.

The file is `safetensors <https://github.com/huggingface/safetensors>`_ when that package is
installed (``pip install 'anyarray_nn[io]'``), else NumPy ``.npz`` written and read with
``allow_pickle=False``. Either way it holds:

- ``W1, b1, W2, b2, ...`` in the model's dtype;
- optionally the optimizer state as ``optimizer.<name>.<index>`` (e.g. ``optimizer.m.0``);
- a JSON document (safetensors metadata, or the ``__metadata__`` uint8 array of the npz) with
  ``format_version``, the architecture (a list of ``{"type", "config"}`` layers, the output
  activation, the loss, ``l1``/``l2``, seed, dtype), the training counters (optimizer steps and
  epochs, which key shuffling and dropout), the optimizer's config and step count ``t``, and a
  SHA-256 of all tensors, checked on load, so corruption inside tensor data is caught too.

Loading reads data and rebuilds objects from a fixed registry of layer, optimizer and schedule
names: no code in the file is ever executed. The format is detected from the content, not the
extension, and ``save(path)`` writes exactly to ``path``. Saving is atomic: the file is written to
a temporary name in the same directory, flushed to disk, then renamed over ``path``, so a crash
mid-save leaves any previous file intact.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import backend_status, to_numpy

if TYPE_CHECKING:
    from .network import NN

FORMAT_VERSION = 1
_NPZ_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, of another format, or from a newer version."""


def _has_safetensors() -> bool:
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _metadata(net: NN, include_optimizer: bool) -> dict[str, Any]:
    from . import __version__
    from .losses import LOSSES

    if net.loss_fn.name not in LOSSES:
        raise ValueError(f"Cannot save a custom loss object ({net.loss_fn!r}); use a named loss.")
    opt = net.optimizer
    return {
        "format": "anyarray_nn",
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "model": {
            "layers": [
                {"type": type(layer).__name__, "config": layer.config()} for layer in net.layers
            ],
            "output": net.output.name,
            "loss": net.loss_fn.name,
            "l1": net.l1,
            "l2": net.l2,
            "seed": net.seed,
            "dtype": net.backend.dtype_name,
            "backend": net.backend.name,
            "device": net.backend.device_name,
        },
        "training": {"step": net.step_, "epochs_trained": net.epochs_trained_},
        "optimizer": None
        if (opt is None or not include_optimizer)
        else {
            "config": opt.config(),
            "t": opt.t,
            "state": {k: len(v) for k, v in opt.state_arrays().items()},
        },
        "tensors": net.parameter_names(),
    }


def save(net: NN, path: str | os.PathLike[str], include_optimizer: bool = True) -> None:
    """Write ``net`` to exactly ``path`` (atomically; see the module docstring)."""
    meta = _metadata(net, include_optimizer)
    tensors = dict(zip(meta["tensors"], net.get_weights(), strict=True))
    if meta["optimizer"] is not None:
        for key, arrays in net.optimizer.state_arrays().items():
            for i, array in enumerate(arrays):
                tensors[f"optimizer.{key}.{i}"] = np.array(to_numpy(array))
    meta["sha256"] = _digest(tensors)
    text = json.dumps(meta)
    if _has_safetensors():
        import safetensors.numpy

        payload = safetensors.numpy.save(
            {k: np.ascontiguousarray(v) for k, v in tensors.items()},
            metadata={"anyarray_nn": text},
        )
    else:
        buffer = _io.BytesIO()
        np.savez(buffer, __metadata__=np.frombuffer(text.encode(), dtype=np.uint8), **tensors)
        payload = buffer.getvalue()
    _atomic_write(Path(path), payload)


def _digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes: safetensors itself carries no
    checksum, so without this a flipped bit inside a tensor would load silently."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _file_mode(path: Path) -> int:
    """The mode an ordinary ``open(path, "wb")`` would give: the existing file's, or 0666 less
    the umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _atomic_write(path: Path, payload: bytes) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse either format into (metadata, tensors), turning every failure into one error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"No model file at {str(path)!r}.") from None
    bad = f"{str(path)!r} is not a readable anyarray_nn model file"
    try:
        if data[:4] == _NPZ_MAGIC:
            with np.load(_io.BytesIO(data), allow_pickle=False) as npz:
                tensors = {k: npz[k] for k in npz.files}
            text = tensors.pop("__metadata__").tobytes().decode()
        else:
            if not _has_safetensors():
                raise ModelFileError(
                    f"{bad}: it is not an .npz file, and reading safetensors needs "
                    "`pip install 'anyarray_nn[io]'` (or safetensors)."
                )
            import safetensors.numpy

            text = _safetensors_metadata(data).get("anyarray_nn")
            tensors = safetensors.numpy.load(data)
            if text is None:
                raise ModelFileError(f"{bad}: it is a safetensors file without our metadata.")
        meta = json.loads(text)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{bad} (truncated or corrupted: {type(e).__name__}: {e}).") from e
    except Exception as e:  # safetensors raises its own SafetensorError
        raise ModelFileError(f"{bad} (truncated or corrupted: {type(e).__name__}: {e}).") from e
    if not isinstance(meta, dict) or meta.get("format") != "anyarray_nn":
        raise ModelFileError(f"{bad}: its metadata does not describe an anyarray_nn model.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(
            f"{str(path)!r} has format version {version!r}; this anyarray_nn reads versions "
            f"1..{FORMAT_VERSION}. Upgrade anyarray_nn to load it."
        )
    if meta.get("sha256") != _digest(tensors):
        raise ModelFileError(f"{bad}: its checksum does not match its contents (corrupted).")
    return meta, tensors


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file: an 8-byte little-endian header length, then
    a JSON header (the format's documented layout). The tensors are read by safetensors."""
    size = int.from_bytes(data[:8], "little")
    if len(data) < 8 or size > len(data) - 8:
        raise ValueError("the header is cut short")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


def load(
    path: str | os.PathLike[str],
    backend: str | Any | None = None,
    device: Any = None,
    dtype: Any = None,
) -> NN:
    """Rebuild a network saved by :func:`save` (on any backend) onto any backend.

    Args:
        path: the file.
        backend: where to put it; ``None`` means the backend it was saved from when that is
            usable here, else ``"auto"`` (with a warning).
        device: device on that backend (default: the saved one when the backend is the same).
        dtype: ``"float32"``/``"float64"``; default the saved dtype.

    Raises:
        ModelFileError: truncated, corrupted, foreign or newer-version files.
    """
    from . import optimizers as _optimizers
    from .layers import from_config
    from .network import NN

    path = Path(path)
    meta, tensors = _read(path)
    try:
        model = meta["model"]
        if backend is None:
            saved = model["backend"]
            if backend_status().get(saved, "unknown") is None:
                backend = saved
                device = model.get("device") if device is None else device
            else:
                warnings.warn(
                    f"{str(path)!r} was saved from backend {saved!r}, which is not usable here; "
                    "loading it with backend='auto'.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                backend = "auto"
        layers = [from_config(spec["type"], dict(spec["config"])) for spec in model["layers"]]
        net = NN(
            layers,
            output=model["output"],
            loss=model["loss"],
            backend=backend,
            device=device,
            dtype=dtype or model["dtype"],
            seed=model["seed"],
            l1=model["l1"],
            l2=model["l2"],
        )
        names = net.parameter_names()
        if names != meta["tensors"] or any(name not in tensors for name in names):
            raise ModelFileError(f"{str(path)!r}: its tensors do not match its architecture.")
        net.set_weights([tensors[name] for name in names])
        net.step_ = int(meta["training"]["step"])
        net.epochs_trained_ = int(meta["training"]["epochs_trained"])
        opt_meta = meta.get("optimizer")
        if opt_meta:
            opt = _optimizers.from_config(opt_meta["config"])
            opt.build(net.xp, [layer.params[n] for layer, n in net.parameters()])
            state = {
                key: [net.backend.asarray(tensors[f"optimizer.{key}.{i}"]) for i in range(count)]
                for key, count in opt_meta["state"].items()
            }
            if state:
                opt.load_state_arrays(state, int(opt_meta["t"]))
            opt.t = int(opt_meta["t"])
            net.optimizer = opt
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(
            f"{str(path)!r} has inconsistent metadata or tensors ({type(e).__name__}: {e})."
        ) from e
    return net
