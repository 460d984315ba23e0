"""Datasets: scikit-learn's embedded sets, MNIST-format (IDX) files, and the write-ups' toy sets.

Host-side by design: everything here is NumPy, and every loader returns NumPy arrays (features
``float64`` for the small sets, ``float32`` for the image sets; labels ``int64``). Nothing is ever
unpickled: IDX files are parsed byte by byte from their documented header.

IDX format (big-endian): two zero bytes, a dtype code (``0x08`` ubyte, ``0x09`` sbyte,
``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions,
one ``uint32`` per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FASHION_MNIST_DIR",
    "MNIST_FILES",
    "DatasetNotFoundError",
    "load_digits",
    "load_fashion_mnist",
    "load_iris",
    "load_mnist",
    "make_doughnut",
    "make_runge",
    "make_spirals",
    "make_squares",
    "read_idx",
]

#: Where Debian's ``dataset-fashion-mnist`` package puts the four IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: The four standard file names (each may also end in ``.gz``).
MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

_HOW_TO_GET_MNIST = (
    "To get the data, either\n"
    "  - pass path= a local directory holding the four MNIST IDX files "
    f"({', '.join(MNIST_FILES.values())}, each optionally .gz), e.g. from "
    "https://yann.lecun.com/exdb/mnist/ or a mirror; or\n"
    "  - run online once so scikit-learn's fetch_openml('mnist_784') can download and cache it; "
    "or\n"
    "  - use Fashion-MNIST, the same format and size, available offline on Debian/Ubuntu: "
    "`apt-get install dataset-fashion-mnist`, then load_fashion_mnist()."
)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on this machine (and could not be downloaded)."""


# -- scikit-learn's embedded sets -------------------------------------------------------------


def _finish_split(
    X: np.ndarray,
    y: np.ndarray,
    split: bool,
    test_size: float,
    seed: int | None,
    standardize: bool,
) -> tuple[np.ndarray, ...]:
    y = y.astype(np.int64)
    if not split:
        if standardize:
            X = (X - X.mean(axis=0)) / _safe_std(X)
        return X, y
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}.")
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed
    )
    if standardize:
        # statistics from the training part only, so nothing leaks from the test part
        mean, std = X_train.mean(axis=0), _safe_std(X_train)
        X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    return X_train, X_test, y_train, y_test


def _safe_std(X: np.ndarray) -> np.ndarray:
    std = X.std(axis=0)
    return np.where(std > 0, std, 1.0)  # a constant feature stays 0 instead of NaN


def load_iris(
    split: bool = False, test_size: float = 0.2, scale: bool = True, seed: int | None = 0
) -> tuple[np.ndarray, ...]:
    """Fisher's Iris (150 x 4, 3 classes) from scikit-learn.

    Returns ``(X, y)``, or ``(X_train, X_test, y_train, y_test)`` when ``split`` (a stratified
    ``train_test_split`` with ``random_state=seed``). ``scale`` standardizes the features with the
    training statistics (the whole set when not split).
    """
    from sklearn.datasets import load_iris as _load

    X, y = _load(return_X_y=True)
    return _finish_split(np.asarray(X, dtype=np.float64), y, split, test_size, seed, scale)


def load_digits(
    split: bool = False, test_size: float = 0.2, scale: bool = True, seed: int | None = 0
) -> tuple[np.ndarray, ...]:
    """scikit-learn's 1,797 handwritten 8x8 digits (64 features in 0..16, 10 classes).

    Same returns as :func:`load_iris`; ``scale`` divides the pixels by 16 (into [0, 1]).
    """
    from sklearn.datasets import load_digits as _load

    X, y = _load(return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    if scale:
        X = X / 16.0
    return _finish_split(X, y, split, test_size, seed, standardize=False)


# -- IDX (MNIST format) -----------------------------------------------------------------------


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not, detected by its magic bytes) as a NumPy array.

    The result has native byte order and the file's dtype and shape.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a valid IDX file (bad gzip stream, bad magic, unknown dtype
            code, fewer data bytes than the header promises, or trailing bytes after the data).
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = _inflate_idx(raw, str(path))
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(
                f"{path}: corrupted or truncated gzip stream ({exc}). Download the file again."
            ) from None
    return _parse_idx(raw, str(path))


#: deflate's best case: no gzip stream inflates by more than this factor.
_MAX_DEFLATE_RATIO = 1032


def _inflate_idx(compressed: bytes, name: str) -> bytes:
    """Inflate a gzipped IDX file, reading at most what its header declares plus one byte (so
    that trailing bytes are still detected): a small file declaring little data that inflates
    to gigabytes (a gzip bomb) is refused after reading a few bytes, not after inflating."""
    with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as stream:
        head = stream.read(4)
        if len(head) < 4 or head[:2] != b"\0\0":
            return head  # _parse_idx names what is wrong
        ndim = head[3]
        dims = stream.read(4 * ndim)
        if len(dims) < 4 * ndim:
            return head + dims
        expected = _IDX_DTYPES.get(head[2], np.dtype("u1")).itemsize
        for dim in struct.unpack(f">{ndim}I", dims):
            expected *= dim
        if expected > _MAX_DEFLATE_RATIO * len(compressed):
            raise ValueError(
                f"{name}: its header declares {expected} data bytes, more than a "
                f"{len(compressed)}-byte gzip file can hold: it is corrupted. Download it again."
            )
        return head + dims + stream.read(expected + 1)


def _parse_idx(raw: bytes, name: str) -> np.ndarray:
    if len(raw) < 4:
        raise ValueError(
            f"{name}: not an IDX file: {len(raw)} bytes, too short for the 4-byte magic number."
        )
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise ValueError(
            f"{name}: not an IDX file: the magic number {raw[:4].hex()} does not start with "
            "two zero bytes (is it an image, an archive, or a different format?)."
        )
    if code not in _IDX_DTYPES:
        valid = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX dtype code 0x{code:02X} (valid: {valid}).")
    if ndim == 0:
        raise ValueError(f"{name}: corrupted IDX header: it declares 0 dimensions.")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header_len} header bytes, "
            f"the file has {len(raw)}."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _IDX_DTYPES[code]
    expected = dtype.itemsize
    for dim in shape:
        expected *= dim  # Python ints: no overflow for absurd headers
    have = len(raw) - header_len
    if have < expected:
        raise ValueError(
            f"{name}: truncated IDX file: the header promises shape {shape} of {dtype.name} "
            f"({expected} data bytes) but only {have} follow. Download the file again."
        )
    if have > expected:
        raise ValueError(
            f"{name}: corrupted IDX file: {have - expected} unexpected trailing bytes after the "
            f"{expected} data bytes of shape {shape}."
        )
    data = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    # the standard name, gzipped or not; also the "train-images.idx3-ubyte" spelling of some mirrors
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _load_idx_dir(
    path: str | os.PathLike[str], flatten: bool, scale: bool, dataset: str, hint: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    directory = Path(path)
    if not directory.exists():
        raise DatasetNotFoundError(f"{dataset}: directory {directory} does not exist.\n{hint}")
    if not directory.is_dir():
        raise ValueError(
            f"{dataset}: path must be a directory holding the four IDX files, got the file "
            f"{directory}. Pass its parent directory instead."
        )
    found = {key: _find_idx(directory, stem) for key, stem in MNIST_FILES.items()}
    missing = [MNIST_FILES[key] for key, file in found.items() if file is None]
    if missing:
        raise DatasetNotFoundError(
            f"{dataset}: {directory} lacks {', '.join(f + '[.gz]' for f in missing)}.\n{hint}"
        )
    arrays = {key: read_idx(file) for key, file in found.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{dataset}: {found[f'{part}_images']} has shape {images.shape} and "
                f"{found[f'{part}_labels']} has shape {labels.shape}; expected (n, rows, cols) "
                "images and (n,) labels with the same n."
            )
    return (
        _images(arrays["train_images"], flatten, scale),
        _images(arrays["test_images"], flatten, scale),
        arrays["train_labels"].astype(np.int64),
        arrays["test_labels"].astype(np.int64),
    )


def _images(images: np.ndarray, flatten: bool, scale: bool) -> np.ndarray:
    if flatten:
        images = images.reshape(images.shape[0], -1)
    if scale:
        return images.astype(np.float32) / np.float32(255.0)
    return images


def load_mnist(
    path: str | os.PathLike[str] | None = None, flatten: bool = True, scale: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as ``(X_train, X_test, y_train, y_test)``: 60,000 + 10,000 28x28 digits (the
    order of scikit-learn's ``train_test_split`` and of every loader here that splits).

    Args:
        path: a directory with the four standard IDX files (``train-images-idx3-ubyte``,
            ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
            each optionally ``.gz``). ``None`` tries scikit-learn's ``fetch_openml("mnist_784")``
            (needs the internet once, then scikit-learn's cache), split 60,000 / 10,000. Offline,
            it fails at once (one quick retry) with DatasetNotFoundError.
        flatten: images as rows of 784 features; else shape ``(n, 28, 28)``.
        scale: ``float32`` pixels in [0, 1]; else the raw ``uint8`` values.

    Labels are ``int64``.

    Raises:
        DatasetNotFoundError: the files are missing, or the download failed; the message says
            how to get the data.
    """
    if path is not None:
        return _load_idx_dir(path, flatten, scale, "MNIST", _HOW_TO_GET_MNIST)
    X, y = _fetch_mnist()
    images = np.asarray(X).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y).astype(np.int64)
    n_train = 60_000  # OpenML keeps the original order: 60,000 training then 10,000 test digits
    return (
        _images(images[:n_train], flatten, scale),
        _images(images[n_train:], flatten, scale),
        labels[:n_train],
        labels[n_train:],
    )


def _fetch_mnist() -> tuple[Any, Any]:
    """``fetch_openml("mnist_784")``: scikit-learn's cache, else one download attempt and one
    quick retry (its default of 3 retries a second apart makes an offline machine wait)."""
    try:
        from sklearn.datasets import fetch_openml

        with warnings.catch_warnings():  # "A network error occurred ... Retrying..."
            warnings.filterwarnings("ignore", message="A network error", category=UserWarning)
            return fetch_openml(
                "mnist_784", version=1, as_frame=False, return_X_y=True, n_retries=1, delay=0.1
            )
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetNotFoundError(
            f"MNIST: cannot download 'mnist_784' from OpenML ({type(exc).__name__}: {reason}); "
            f"this machine is probably offline.\n{_HOW_TO_GET_MNIST}"
        ) from exc


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None, flatten: bool = True, scale: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zalando's Fashion-MNIST as ``(X_train, X_test, y_train, y_test)`` (the order of
    scikit-learn's ``train_test_split``), MNIST's format and size.

    ``path`` defaults to :data:`FASHION_MNIST_DIR`, where Debian/Ubuntu's package installs it
    (``apt-get install dataset-fashion-mnist``). ``flatten`` and ``scale`` as in
    :func:`load_mnist`.
    """
    hint = (
        "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in "
        f"{FASHION_MNIST_DIR}), or download the four files from "
        "https://github.com/zalandoresearch/fashion-mnist and pass path= their directory."
    )
    directory = FASHION_MNIST_DIR if path is None else path
    return _load_idx_dir(directory, flatten, scale, "Fashion-MNIST", hint)


# -- the write-ups' synthetic sets ------------------------------------------------------------


def _check_n(n_samples: Any, minimum: int = 1) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise ValueError(f"n_samples must be an int, got {n_samples!r}.")
    if n_samples < minimum:
        raise ValueError(f"n_samples must be >= {minimum}, got {n_samples}.")
    return int(n_samples)


def _check_noise(noise: float) -> float:
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}.")
    return float(noise)


def _split_counts(n_samples: int, n_classes: int) -> list[int]:
    """``n_samples`` spread over the classes as evenly as possible (first classes get extras)."""
    base, extra = divmod(n_samples, n_classes)
    return [base + (k < extra) for k in range(n_classes)]


def make_runge(
    n_samples: int = 1000, noise: float = 0.1, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Runge's function ``y = 1 / (1 + 25 x^2) + N(0, noise^2)``, ``x ~ U[-1, 1]``.

    Returns ``X`` of shape ``(n, 1)`` and ``y`` of shape ``(n,)``, both ``float64``.
    """
    n = _check_n(n_samples)
    noise = _check_noise(noise)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 1))
    y = 1.0 / (1.0 + 25.0 * X[:, 0] ** 2) + rng.normal(0.0, noise, size=n)
    return X, y


def make_doughnut(
    n_samples: int = 1000,
    noise: float = 0.1,
    seed: int | None = 0,
    radii: Sequence[float] = (1.0, 2.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Concentric rings ("doughnut"): class ``k`` lies around the circle of radius ``radii[k]``.

    Angles are uniform; radii get ``N(0, noise^2)`` jitter. Two classes by default (an inner disc
    ring and an outer one); pass more radii for more rings. Rows are shuffled.
    """
    n = _check_n(n_samples)
    noise = _check_noise(noise)
    radii = [float(r) for r in radii]
    if len(radii) < 2 or min(radii) < 0:
        raise ValueError(f"radii must list at least two non-negative radii, got {radii!r}.")
    rng = np.random.default_rng(seed)
    counts = _split_counts(n, len(radii))
    y = np.repeat(np.arange(len(radii), dtype=np.int64), counts)
    r = np.asarray(radii)[y] + rng.normal(0.0, noise, size=n)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    order = rng.permutation(n)
    return X[order], y[order]


def make_squares(
    n_samples: int = 1000, grid: int = 2, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A checkerboard on ``[-1, 1]^2``: ``grid x grid`` squares in two alternating classes.

    Points are uniform; the label of the square in column ``i``, row ``j`` is ``(i + j) % 2``.
    ``grid=2`` is XOR of the quadrants: label 1 where ``x0 * x1 < 0``.
    """
    n = _check_n(n_samples)
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"grid must be an int >= 2, got {grid!r}.")
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    cells = np.minimum(np.floor((X + 1.0) / 2.0 * grid), grid - 1).astype(np.int64)
    y = (cells[:, 0] + cells[:, 1]) % 2
    return X, y


def make_spirals(
    n_samples: int = 1000,
    n_classes: int = 2,
    noise: float = 0.1,
    seed: int | None = 0,
    turns: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class.

    Arm ``k`` is the curve ``r = t``, ``angle = 2 pi (turns t + k / n_classes)`` for
    ``t ~ U[0, 1]``; both coordinates get ``N(0, noise^2)`` jitter. Rows are shuffled.
    """
    n = _check_n(n_samples)
    noise = _check_noise(noise)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ValueError(f"n_classes must be an int, got {n_classes!r}.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}.")
    if not turns > 0:
        raise ValueError(f"turns must be > 0, got {turns!r}.")
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), _split_counts(n, n_classes))
    t = rng.uniform(0.0, 1.0, size=n)
    angle = 2.0 * np.pi * (turns * t + y / n_classes)
    X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    X = X + rng.normal(0.0, noise, size=X.shape)
    order = rng.permutation(n)
    return X[order], y[order]
