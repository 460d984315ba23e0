"""The model file format: named tensors plus a JSON document, never pickle.

This module owns the file format and the model schema: :func:`write` and :func:`read` handle
the bytes (atomic writes, checksums, size checks), and :func:`save_model` / :func:`load_model`
(behind :meth:`anyarray_nn.NN.save` and :meth:`anyarray_nn.NN.load`) decide what goes in and
rebuild the network from what comes out.

The file's extension decides its format: ``.safetensors`` is
`safetensors <https://github.com/huggingface/safetensors>`_ (a core dependency), ``.npz`` is NumPy's
``.npz`` written and read with ``allow_pickle=False``; any other extension is refused before
anything is written. Either way it holds:

- ``W1, b1, W2, b2, ...`` in the model's dtype;
- optionally the optimizer state as ``optimizer.<state name>.<parameter index>`` (e.g.
  ``optimizer.exp_avg.0`` for Adam's first moment of ``W1``);
- a JSON document (safetensors metadata, or the ``__metadata__`` uint8 array of the npz) with
  ``format`` (``"anyarray_nn"``), ``format_version``, ``library_version``, the architecture
  (``model``: a list of ``{"type", "config"}`` layers, the output activation, the loss,
  ``l1``/``l2``, seed, dtype, backend, device), the training counters (``training``: optimizer
  steps and epochs, which key shuffling and dropout), the optimizer's config, step count ``t``
  and number of state arrays (``optimizer``), the tensor names, and a SHA-256 of all tensors
  (``sha256``), checked on read, so corruption inside tensor data is caught too.

Reading never executes code: the JSON names registered components only. Reading recognises
the format by content (a renamed file still loads), and writing goes to exactly the path given.
Writing is atomic: the file is written to a temporary name in the same directory, flushed to
disk, then renamed over the path, so a crash mid-save leaves any previous file intact.
"""

from __future__ import annotations

import contextlib
import glob
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
import safetensors.numpy

from ._version import __version__
from .backend import (
    BackendUnavailableError,
    DtypeUnavailableError,
    backend_status,
    resolve,
    to_numpy,
)
from .layers import Dense
from .layers import registry as _layer_registry

if TYPE_CHECKING:
    from .network import NN

#: 2 since 0.2: the checksum covers the metadata too. Version 1 files still load, with a warning.
FORMAT_VERSION = 2
_NPZ_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, of another format, or from a newer version."""


#: File extension -> format. The extension decides the format, never the environment.
FORMATS = {".safetensors": "safetensors", ".npz": "npz"}


def format_for(path: str | os.PathLike[str]) -> str:
    """``"safetensors"`` or ``"npz"``, by ``path``'s extension; any other is a ValueError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"Cannot tell the model format from {str(path)!r}: name the file *.safetensors "
            "(safetensors, the default choice) or *.npz (NumPy, read with allow_pickle=False)."
        )
    return FORMATS[suffix]


def write(
    path: str | os.PathLike[str], tensors: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Write ``tensors`` and the JSON-able ``meta`` to exactly ``path``, atomically.

    ``meta`` gets the format's envelope (``format``, ``format_version``, ``library_version``
    and the tensors' ``sha256``) added.
    """
    meta = {
        "format": "anyarray_nn",
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        **meta,
    }
    check_metadata_depth(meta, ValueError)
    meta["sha256"] = _digest(tensors, meta)
    try:
        text = json.dumps(meta, allow_nan=False)
    except ValueError as e:  # NaN or inf: load would refuse the file
        raise ValueError(f"the model's metadata cannot be saved as JSON: {e}") from None
    check_metadata_size(text)
    if format_for(path) == "safetensors":
        payload = safetensors.numpy.save(
            {k: np.ascontiguousarray(v) for k, v in tensors.items()},
            metadata={"anyarray_nn": text},
        )
    else:
        buffer = _io.BytesIO()
        np.savez(buffer, __metadata__=np.frombuffer(text.encode(), dtype=np.uint8), **tensors)
        payload = buffer.getvalue()
    _atomic_write(Path(path), payload)


def _digest(tensors: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, then (format version 2 on)
    over the metadata as canonical JSON (sorted keys, no whitespace, without ``sha256``): a
    flipped bit anywhere, in a tensor or in a hyperparameter, is caught on read. Safetensors
    itself carries no checksum. Version 1 files hashed the tensors only (``meta=None``)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    if meta is not None:
        fields = {k: v for k, v in meta.items() if k != "sha256"}
        h.update(b"metadata|" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
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
    _remove_stale_temporaries(directory, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=directory)
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


def _remove_stale_temporaries(directory: Path, name: str) -> None:
    """Delete temporaries of ``name`` left by a save that was killed (SIGKILL, power loss).

    A temporary is named ``.NAME.PID.XXXXXXXX.tmp``; it is stale when process PID no longer
    exists on this machine. A save in progress elsewhere (another live process, or another
    thread of this one) is never touched.
    """
    prefix = f".{name}."
    for entry in directory.glob(f"{glob.escape(prefix)}*.tmp"):
        pid_text = entry.name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse either format into ``(metadata, tensors)``, checking the envelope and the hash;
    every failure becomes one :class:`ModelFileError` (a missing file: ``FileNotFoundError``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"No model file at {str(path)!r}.") from None
    bad = f"{str(path)!r} is not a readable anyarray_nn model file"
    try:
        if data[:4] == _NPZ_MAGIC:
            _check_npz_sizes(data, bad)
            with np.load(_io.BytesIO(data), allow_pickle=False) as npz:
                tensors = {k: npz[k] for k in npz.files}
            text = tensors.pop("__metadata__").tobytes().decode()
        else:
            text = _safetensors_metadata(data).get("anyarray_nn")
            tensors = safetensors.numpy.load(data)
            if text is None:
                raise ModelFileError(f"{bad}: it is a safetensors file without our metadata.")
        meta = parse_metadata(text, bad)
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
    if meta.get("sha256") != _digest(tensors, meta if version >= 2 else None):
        raise ModelFileError(f"{bad}: its checksum does not match its contents (corrupted).")
    check_fields(meta, bad)
    if version == 1:
        warnings.warn(
            f"{str(path)!r} was written by anyarray_nn {meta.get('library_version', '0.1')} "
            "(format version 1), whose checksum covers the tensors but not the metadata "
            "(architecture, hyperparameters, counters). Save it again to protect those too.",
            UserWarning,
            stacklevel=3,
        )
    return meta, tensors


#: The most bytes of JSON a model file's metadata may take (safetensors refuses headers over
#: 100 MB; the same limit holds for .npz so that a model saves in either format).
MAX_METADATA_BYTES = 64 * 2**20
#: The deepest nesting of lists and objects in the metadata (copying and hashing recurse).
MAX_METADATA_DEPTH = 64


def check_metadata_size(text: str) -> None:
    """ValueError when the metadata's JSON is too large to save."""
    size = len(text.encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"the model's metadata takes {size} bytes as JSON, more than the "
            f"{MAX_METADATA_BYTES} a model file holds: keep large data out of net.metadata"
        )


def check_metadata_depth(value: Any, error: type[Exception], where: str = "metadata") -> None:
    """``error`` when lists and objects in ``value`` nest deeper than MAX_METADATA_DEPTH."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > MAX_METADATA_DEPTH:
                raise error(
                    f"{where}: the metadata nests lists or objects more than "
                    f"{MAX_METADATA_DEPTH} deep"
                )
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ModelFileError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ModelFileError(f"it holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ModelFileError(f"it holds the number {text}, which does not fit a float64")
    return value


def parse_metadata(text: str, bad: str) -> dict[str, Any]:
    """The metadata JSON of a model file, strictly: no duplicate keys (two readers would
    disagree on which value counts), no Infinity/NaN or out-of-range numbers, bounded depth."""
    try:
        meta = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except ModelFileError as e:
        raise ModelFileError(f"{bad}: its metadata is not valid: {e}.") from None
    except RecursionError:
        raise ModelFileError(
            f"{bad}: the metadata nests lists or objects more than {MAX_METADATA_DEPTH} deep"
        ) from None
    check_metadata_depth(meta, ModelFileError, bad)
    return meta


def _count(value: Any, name: str, bad: str, optional: bool = False) -> None:
    """ModelFileError unless ``value`` is a whole number >= 0 (or None when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelFileError(f"{bad}: its {name} is {value!r}, not a whole number >= 0.")


def check_fields(meta: dict[str, Any], bad: str) -> None:
    """Type- and range-check the counters of a model file's metadata (the architecture is
    checked by the registries when it is rebuilt)."""
    model, training = meta.get("model"), meta.get("training")
    if not isinstance(model, dict) or not isinstance(training, dict):
        raise ModelFileError(f"{bad}: its metadata lacks the 'model' or 'training' section.")
    _count(model.get("seed"), "model.seed", bad, optional=True)
    _count(training.get("step"), "training.step", bad)
    _count(training.get("epochs_trained"), "training.epochs_trained", bad)
    optimizer = meta.get("optimizer")
    if optimizer is not None:
        if not isinstance(optimizer, dict):
            raise ModelFileError(f"{bad}: its 'optimizer' section is not an object.")
        _count(optimizer.get("t"), "optimizer.t", bad)
    if not isinstance(meta.get("metadata") or {}, dict):
        raise ModelFileError(f"{bad}: its 'metadata' section is not an object.")


#: An npz member may inflate to at most this many times the whole file's size (NumPy writes
#: them stored, so a real file needs 1x; a compressed one may need more).
MAX_INFLATION = 64


def _check_npz_sizes(data: bytes, bad: str) -> None:
    """Refuse an npz whose members declare more bytes than the file could honestly hold,
    before anything is inflated (a zip bomb would otherwise exhaust memory)."""
    with zipfile.ZipFile(_io.BytesIO(data)) as archive:
        declared = sum(info.file_size for info in archive.infolist())
    if declared > MAX_INFLATION * len(data) + 2**20:
        raise ModelFileError(
            f"{bad}: its entries declare {declared} bytes in a {len(data)}-byte file "
            "(refused before reading)."
        )


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file: an 8-byte little-endian header length, then
    a JSON header (the format's documented layout). The tensors are read by safetensors."""
    size = int.from_bytes(data[:8], "little")
    if len(data) < 8 or size > len(data) - 8:
        raise ValueError("the header is cut short")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


# -- the model schema: what a network file holds, and how a network is rebuilt from it -----------
def model_config(net: NN) -> dict[str, Any]:
    """:meth:`NN.config`: layers (type and config), output activation, loss, penalties, seed,
    dtype, backend and device, as JSON-able data."""
    for part, obj in (("output activation", net.output), ("loss", net.loss_fn)):
        _require_registered(part, obj)
    for layer in net.layers:
        _require_registered("layer", layer)
        activation = getattr(layer, "activation", None)
        if activation is not None:
            _require_registered("activation", activation)
    return {
        "layers": [
            {"type": layer.name, "config": _without_name(layer.config())} for layer in net.layers
        ],
        "output": net.output.spec(),
        "loss": net.loss_fn.spec(),
        "l1": net.l1,
        "l2": net.l2,
        "seed": net.seed,
        "dtype": net.backend.dtype_name,
        "backend": net.backend.name,
        "device": net.backend.device_name,
    }


def constructor_arguments(
    config: dict[str, Any], backend: Any = None, device: Any = None, dtype: Any = None
) -> dict[str, Any]:
    """``NN(**...)`` arguments that rebuild :func:`model_config` output (registered layer
    types only); ``backend``, ``device`` and ``dtype`` default to the config's."""
    layers = [
        _layer_registry.from_config({**spec["config"], "name": spec["type"]})
        for spec in config["layers"]
    ]
    return {
        "layers": layers,
        "output": config["output"],
        "loss": config["loss"],
        "backend": config["backend"] if backend is None else backend,
        "device": config.get("device") if backend is None and device is None else device,
        "dtype": dtype or config["dtype"],
        "seed": config["seed"],
        "l1": config["l1"],
        "l2": config["l2"],
    }


def refuse_existing(path: str | os.PathLike[str], overwrite: bool) -> None:
    """The one rule of every file the library writes at a path the user names (``save``,
    ``export``, the command line's ``--save``/``--out``): an existing file is never replaced
    unless asked to (``overwrite=True``, ``--overwrite``)."""
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(
            f"{os.fspath(path)} exists; pick another path or pass overwrite=True (--overwrite)."
        )


def save_model(
    net: NN, path: str | os.PathLike[str], include_optimizer: bool = True, overwrite: bool = False
) -> None:
    """:meth:`NN.save`: weights ``W1, b1, ...``, the optimizer state as
    ``optimizer.<name>.<parameter index>`` tensors, and the JSON document. An existing file
    at ``path`` is kept (FileExistsError) unless ``overwrite``."""
    format_for(path)  # a wrong extension fails before any work
    refuse_existing(path, overwrite)
    weights = net.get_weights()
    tensors = dict(zip(net.parameter_names(), weights, strict=True))
    for name, array in tensors.items():
        if not np.all(np.isfinite(array)):
            raise ValueError(
                f"{name} contains NaN or inf: refusing to write a model that load() would "
                f"reject ({str(path)!r} is left as it was). Train again from finite weights."
            )
    training = net.training_state.state_dict(include_optimizer)
    opt_meta = training.pop("optimizer")
    if opt_meta is not None:
        _require_registered("optimizer", net.optimizer)
        for key, flat in opt_meta["state"].items():
            for i, array in enumerate(net.layout.split(np.asarray(to_numpy(flat)))):
                tensors[f"optimizer.{key}.{i}"] = array
        opt_meta["state"] = {k: len(weights) for k in opt_meta["state"]}
    meta = {
        "model": model_config(net),
        "training": training,
        "optimizer": opt_meta,
        "tensors": net.parameter_names(),
        "metadata": net.metadata,
    }
    write(path, tensors, meta)


def load_model(
    cls: type[NN],
    path: str | os.PathLike[str],
    backend: str | Any | None = None,
    device: Any = None,
    dtype: Any = None,
) -> NN:
    """:meth:`NN.load`: rebuild a network of class ``cls`` from a file."""
    path = Path(path)
    meta, tensors = read(path)
    try:
        model = meta["model"]
        _check_declared_shapes(model["layers"], tensors, str(path))
        if backend is None:
            backend, device = _saved_or_fallback(model, device, str(path))
        net = cls.from_config(model, backend, device, dtype)
        _load_state(net, meta, tensors, str(path))
    except (ModelFileError, DtypeUnavailableError):
        raise  # (the second: the file is fine, this process cannot compute in its dtype)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(
            f"{str(path)!r} has inconsistent metadata or tensors ({type(e).__name__}: {e})."
        ) from e
    return net


def _load_state(net: NN, meta: dict[str, Any], tensors: dict[str, np.ndarray], path: str) -> None:
    """Weights, counters and optimizer state read from a model file."""
    names = net.parameter_names()
    if names != meta["tensors"] or any(name not in tensors for name in names):
        raise ModelFileError(f"{path!r}: its tensors do not match its architecture.")
    net.set_weights([tensors[name] for name in names])
    net.metadata = dict(meta.get("metadata") or {})
    training = dict(meta["training"])
    opt_meta = meta.get("optimizer")
    if opt_meta:  # per-parameter tensors in the file, one vector per state name in memory
        state = {
            key: np.concatenate(
                [np.asarray(tensors[f"optimizer.{key}.{i}"]).reshape(-1) for i in range(count)]
            )
            for key, count in opt_meta["state"].items()
        }
        training["optimizer"] = {"config": opt_meta["config"], "t": int(opt_meta["t"]),
                                 "state": state}  # fmt: skip
    net.training_state.load_state_dict(training, net.theta, net.backend)


def _saved_or_fallback(model: dict[str, Any], device: Any, path: str) -> tuple[Any, Any]:
    """Where ``load(path)`` puts a model by default: the backend and device it was saved from;
    when those are not usable here, that backend's default device, else ``"auto"``."""
    saved, saved_device = model["backend"], model.get("device") if device is None else device
    if backend_status().get(saved, "unknown") is None:
        try:
            resolve(saved, saved_device, model.get("dtype"))
            return saved, saved_device
        except BackendUnavailableError:  # e.g. saved on a GPU this machine lacks
            fallback, where = (saved, None), f"{saved} on its default device"
    else:
        fallback, where = ("auto", None), "backend='auto'"
    warnings.warn(
        f"{path!r} was saved from {saved} on device {saved_device!r}, which is not usable "
        f"here; loading it with {where}.",
        RuntimeWarning,
        stacklevel=5,
    )
    return fallback


def _check_declared_shapes(
    layers: list[dict[str, Any]], tensors: dict[str, np.ndarray], path: str
) -> None:
    """Compare every Dense layer's declared ``fan_in``/``units`` with its stored tensors before
    anything is built, so a file claiming a huge layer is refused without allocating it.

    Parameters are numbered by parametrised layer (``W1, b1, W2, ...``); a layer type's
    ``param_names`` tell without building it whether it has any.
    """
    k = 0
    for spec in layers:
        kind = _layer_registry.lookup(spec["type"])
        if not kind.param_names:
            continue
        k += 1
        if kind is not Dense:
            continue
        config = spec["config"]
        declared = {f"W{k}": (config.get("fan_in"), config["units"]), f"b{k}": (config["units"],)}
        for name, shape in declared.items():
            stored = tensors.get(name)
            if stored is None or tuple(stored.shape) != shape:
                found = "missing" if stored is None else f"stored as {tuple(stored.shape)}"
                raise ModelFileError(
                    f"{path!r}: layer {k} declares {name} of shape {shape} but it is {found} "
                    "(an inconsistent or tampered file; nothing was built)."
                )


def _require_registered(part: str, obj: Any) -> None:
    if not type(obj).is_registered():
        raise ValueError(
            f"Cannot describe the {part} {obj!r} by name: its class {type(obj).__name__} is not "
            f"registered. Give it a class attribute name = '...' (see docs/extending.md)."
        )


def _without_name(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "name"}
