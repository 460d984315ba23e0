"""anyarray_nn.datasets: IDX files written byte by byte here, scikit-learn's sets, toy sets."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_digits
from sklearn.datasets import load_iris as sk_iris
from sklearn.model_selection import train_test_split

from anyarray_nn import datasets

# IDX dtype code -> (struct format char, the NumPy dtype the reader must return, sample values)
IDX_TYPES = {
    0x08: ("B", np.uint8, [0, 1, 127, 128, 255, 7]),
    0x09: ("b", np.int8, [-128, -1, 0, 1, 127, 5]),
    0x0B: ("h", np.int16, [-32768, -2, 0, 3, 32767, 258]),
    0x0C: ("i", np.int32, [-(2**31), -5, 0, 6, 2**31 - 1, 65536]),
    0x0D: ("f", np.float32, [-1.5, 0.0, 0.25, 3.0e8, -7.0, 1.0]),
    0x0E: ("d", np.float64, [-1.5e300, 0.0, 0.1, np.pi, -7.0, 1.0]),
}


def idx_bytes(code: int, shape: tuple[int, ...], values: list) -> bytes:
    """An IDX file by the spec: 0x0000, dtype code, ndim, big-endian dims, big-endian data."""
    fmt = IDX_TYPES[code][0]
    header = struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    return header + struct.pack(f">{len(values)}{fmt}", *values)


def write(path: Path, data: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# -- read_idx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(IDX_TYPES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_every_dtype_raw_and_gzip(tmp_path: Path, code: int, gz: bool) -> None:
    _, dtype, values = IDX_TYPES[code]
    path = write(tmp_path / f"x-{code}.idx", idx_bytes(code, (2, 3), values), gz)
    arr = datasets.read_idx(path)
    assert arr.dtype == np.dtype(dtype)  # native byte order
    assert arr.dtype.isnative
    assert arr.shape == (2, 3)
    np.testing.assert_array_equal(arr, np.array(values, dtype=dtype).reshape(2, 3))
    arr[0, 0] = 1  # writable, not a view of a read-only buffer


def test_read_idx_detects_gzip_by_magic_not_extension(tmp_path: Path) -> None:
    data = idx_bytes(0x08, (4,), [1, 2, 3, 4])
    gz_named_raw = write(tmp_path / "labels-idx1-ubyte", data, gz=True)
    raw_named_gz = write(tmp_path / "labels-idx1-ubyte.gz", data, gz=False)
    for path in (gz_named_raw, raw_named_gz):
        np.testing.assert_array_equal(datasets.read_idx(path), [1, 2, 3, 4])
    assert datasets.read_idx(str(raw_named_gz)).shape == (4,)  # str paths too


def test_read_idx_three_dims_like_mnist_images(tmp_path: Path) -> None:
    values = list(range(2 * 3 * 4))
    path = write(tmp_path / "img", idx_bytes(0x08, (2, 3, 4), values), gz=True)
    arr = datasets.read_idx(path)
    assert arr.shape == (2, 3, 4)
    assert arr[1, 2, 3] == 23 and arr[0, 1, 0] == 4  # C order: row-major within each image


GOOD = idx_bytes(0x0B, (2, 2), [1, 2, 3, 4])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (b"\x01\x00" + GOOD[2:], "magic number"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "magic number"),
        (b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX dtype code 0x0A"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 5), "truncated IDX header"),
        (GOOD[:-1], "truncated IDX file"),
        (GOOD[:12], r"only 0 follow"),
        (struct.pack(">HBB3I", 0, 0x08, 3, 60000, 28, 28) + b"\x00" * 100, r"47040000"),
        (GOOD + b"\x00", "1 unexpected trailing bytes"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_corrupt_files_naming_file_and_problem(
    tmp_path: Path, data: bytes, message: str, gz: bool
) -> None:
    path = write(tmp_path / "broken-idx", data, gz)
    with pytest.raises(ValueError, match=message) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda z: z[: len(z) // 2],  # cut off mid-stream
        lambda z: z[:-4],  # missing the length trailer
        lambda z: z[:10] + bytes(b ^ 0xFF for b in z[10:20]) + z[20:],  # flipped bits
    ],
)
def test_read_idx_bad_gzip_stream(tmp_path: Path, mangle) -> None:
    data = idx_bytes(0x0E, (50,), [float(i) for i in range(50)])
    path = tmp_path / "bad.gz"
    path.write_bytes(mangle(gzip.compress(data)))
    with pytest.raises(ValueError, match="gzip") as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "nope")


# -- MNIST-format directories -----------------------------------------------------------------

N_TRAIN, N_TEST, ROWS, COLS = 6, 4, 3, 5


def fake_mnist(directory: Path, gz_train: bool = True, gz_test: bool = False) -> dict:
    """Write the four files (train gzipped, test raw by default) and return what they hold."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, size=(N_TRAIN, ROWS, COLS)),
        "train_labels": rng.integers(0, 10, size=N_TRAIN),
        "test_images": rng.integers(0, 256, size=(N_TEST, ROWS, COLS)),
        "test_labels": rng.integers(0, 10, size=N_TEST),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for key, arr in arrays.items():
        gz = gz_train if key.startswith("train") else gz_test
        name = datasets.MNIST_FILES[key] + (".gz" if gz else "")
        write(directory / name, idx_bytes(0x08, arr.shape, arr.ravel().tolist()), gz)
    return arrays


def test_load_mnist_from_directory(tmp_path: Path) -> None:
    ref = fake_mnist(tmp_path)
    X_train, X_test, y_train, y_test = datasets.load_mnist(tmp_path)
    assert X_train.shape == (N_TRAIN, ROWS * COLS) and X_test.shape == (N_TEST, ROWS * COLS)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(X_train, ref["train_images"].reshape(N_TRAIN, -1) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(X_test, ref["test_images"].reshape(N_TEST, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_train, ref["train_labels"])
    np.testing.assert_array_equal(y_test, ref["test_labels"])
    assert X_train.min() >= 0.0 and X_train.max() <= 1.0


def test_load_mnist_unscaled_unflattened(tmp_path: Path) -> None:
    ref = fake_mnist(tmp_path, gz_train=False, gz_test=True)
    X_train, X_test, y_train, _ = datasets.load_mnist(str(tmp_path), flatten=False, scale=False)
    assert X_train.shape == (N_TRAIN, ROWS, COLS) and X_train.dtype == np.uint8
    assert y_train.dtype == np.int64  # labels are int64 either way
    np.testing.assert_array_equal(X_train, ref["train_images"])
    np.testing.assert_array_equal(X_test, ref["test_images"])


def test_load_mnist_accepts_dotted_mirror_names(tmp_path: Path) -> None:
    ref = fake_mnist(tmp_path)
    for file in tmp_path.iterdir():
        file.rename(tmp_path / file.name.replace("-idx", ".idx"))
    _, _, y_train, _ = datasets.load_mnist(tmp_path)
    np.testing.assert_array_equal(y_train, ref["train_labels"])


def test_load_mnist_directory_errors(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(datasets.DatasetNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\]"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(datasets.DatasetNotFoundError, match="does not exist"):
        datasets.load_mnist(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="must be a directory"):
        datasets.load_mnist(tmp_path / "train-labels-idx1-ubyte.gz")


def test_load_mnist_label_count_mismatch(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    labels = idx_bytes(0x08, (N_TEST + 1,), list(range(N_TEST + 1)))
    write(tmp_path / "t10k-labels-idx1-ubyte", labels, gz=False)
    with pytest.raises(ValueError, match="same n"):
        datasets.load_mnist(tmp_path)


def test_load_mnist_offline_says_how_to_get_the_data(monkeypatch) -> None:
    import sklearn.datasets

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.load_mnist()
    text = str(info.value)
    assert "path=" in text and "apt-get install dataset-fashion-mnist" in text
    assert "Name or service not known" in text


def test_load_mnist_from_openml_splits_60000_10000(monkeypatch) -> None:
    import sklearn.datasets

    n = 70_000
    X = np.zeros((n, 784), dtype=np.uint8)  # OpenML gives float64 0..255; uint8 keeps it small
    X[:, 0] = np.arange(n) % 256  # to check that the order is kept
    y = np.array([str(i % 10) for i in range(n)], dtype=object)  # OpenML labels are strings
    calls = []

    def fake_fetch(name, **kwargs):
        calls.append((name, kwargs))
        return X, y

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch)
    X_train, X_test, y_train, y_test = datasets.load_mnist(scale=False, flatten=False)
    assert calls[0][0] == "mnist_784" and calls[0][1]["as_frame"] is False
    assert X_train.shape == (60_000, 28, 28) and X_test.shape == (10_000, 28, 28)
    assert y_train.dtype == np.int64 and y_test[0] == 60_000 % 10 and y_train[13] == 3
    assert X_test[1, 0, 0] == (60_001 % 256)


def test_fashion_mnist_missing_names_apt_get(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(
        datasets.DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"
    ):
        datasets.load_fashion_mnist()


def test_fashion_mnist_reads_a_given_directory(tmp_path: Path) -> None:
    ref = fake_mnist(tmp_path)
    _, _, _, y_test = datasets.load_fashion_mnist(tmp_path)
    np.testing.assert_array_equal(y_test, ref["test_labels"])


@pytest.mark.skipif(
    not Path(datasets.FASHION_MNIST_DIR).is_dir(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist() -> None:
    X_train, X_test, y_train, y_test = datasets.load_fashion_mnist()
    assert X_train.shape == (60_000, 784) and X_test.shape == (10_000, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)


# -- scikit-learn's embedded sets -------------------------------------------------------------


def test_load_iris_standardized_whole_set() -> None:
    raw, target = sk_iris(return_X_y=True)
    X, y = datasets.load_iris()
    np.testing.assert_allclose(X, (raw - raw.mean(0)) / raw.std(0), rtol=1e-12)
    np.testing.assert_array_equal(y, target)
    assert y.dtype == np.int64
    X, _ = datasets.load_iris(scale=False)
    np.testing.assert_array_equal(X, raw)


@pytest.mark.parametrize("seed", [0, 3])
def test_load_iris_split_is_stratified_and_uses_train_statistics(seed: int) -> None:
    raw, target = sk_iris(return_X_y=True)
    r_train, r_test, t_train, t_test = train_test_split(
        raw, target, test_size=0.2, stratify=target, random_state=seed
    )
    X_train, X_test, y_train, y_test = datasets.load_iris(split=True, seed=seed)
    mean, std = r_train.mean(0), r_train.std(0)
    np.testing.assert_allclose(X_train, (r_train - mean) / std, rtol=1e-12)
    np.testing.assert_allclose(X_test, (r_test - mean) / std, rtol=1e-12)
    np.testing.assert_array_equal(y_train, t_train)
    np.testing.assert_array_equal(y_test, t_test)
    np.testing.assert_array_equal(np.bincount(y_test), [10, 10, 10])
    np.testing.assert_allclose(X_train.mean(0), 0.0, atol=1e-12)
    assert not np.allclose(X_test.mean(0), 0.0, atol=1e-6)  # test stats are not used
    with pytest.raises(ValueError, match="test_size"):
        datasets.load_iris(split=True, test_size=1.5)


def test_load_digits_scaled_by_16_and_split() -> None:
    raw, target = sk_digits(return_X_y=True)
    X, y = datasets.load_digits()
    np.testing.assert_array_equal(X, raw / 16.0)
    assert X.shape == (1797, 64) and X.max() == 1.0 and y.dtype == np.int64
    X_train, X_test, y_train, y_test = datasets.load_digits(split=True, test_size=0.25, seed=1)
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64) and y_train.shape == (1347,)
    np.testing.assert_allclose(np.bincount(y_test) / 450, np.bincount(target) / 1797, atol=0.01)
    other = datasets.load_digits(split=True, test_size=0.25, seed=2)[1]
    assert not np.array_equal(X_test, other)


# -- the write-ups' synthetic sets ------------------------------------------------------------


def test_make_runge_closed_form_and_noise() -> None:
    X, y = datasets.make_runge(n_samples=500, noise=0.0, seed=4)
    assert X.shape == (500, 1) and y.shape == (500,)
    assert X.min() >= -1.0 and X.max() <= 1.0 and X.min() < -0.95 and X.max() > 0.95
    np.testing.assert_allclose(y, 1.0 / (1.0 + 25.0 * X[:, 0] ** 2), rtol=1e-15)
    X, y = datasets.make_runge(n_samples=20_000, noise=0.1, seed=4)
    residual = y - 1.0 / (1.0 + 25.0 * X[:, 0] ** 2)
    assert abs(residual.mean()) < 0.005 and abs(residual.std() - 0.1) < 0.003


@pytest.mark.parametrize(
    "make",
    [datasets.make_runge, datasets.make_doughnut, datasets.make_squares, datasets.make_spirals],
)
def test_synthetic_sets_are_seeded(make) -> None:
    a, b, c = make(n_samples=101, seed=1), make(n_samples=101, seed=1), make(n_samples=101, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape[0] == a[1].shape[0] == 101
    with pytest.raises(ValueError, match="n_samples"):
        make(n_samples=0)


def test_make_doughnut_rings() -> None:
    X, y = datasets.make_doughnut(n_samples=401, noise=0.0, seed=0)
    assert X.shape == (401, 2) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [201, 200])
    np.testing.assert_allclose(np.hypot(X[:, 0], X[:, 1]), np.where(y == 0, 1.0, 2.0))
    assert 0 < y[:200].sum() < 200  # shuffled, not sorted by class
    X, y = datasets.make_doughnut(n_samples=2000, noise=0.1, seed=0, radii=(1.0, 2.0, 3.0))
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.mean(np.digitize(r, [1.5, 2.5]) == y) > 0.99
    with pytest.raises(ValueError, match="noise"):
        datasets.make_doughnut(noise=-1.0)


@pytest.mark.parametrize("grid", [2, 3, 4])
def test_make_squares_checkerboard(grid: int) -> None:
    X, y = datasets.make_squares(n_samples=3000, grid=grid, seed=0)
    assert X.shape == (3000, 2) and np.all(np.abs(X) <= 1.0)
    edges = np.linspace(-1.0, 1.0, grid + 1)[1:-1]
    col, row = np.digitize(X[:, 0], edges), np.digitize(X[:, 1], edges)
    np.testing.assert_array_equal(y, (col + row) % 2)
    if grid == 2:
        np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(int))
    assert 0.4 < y.mean() < 0.6
    with pytest.raises(ValueError, match="grid"):
        datasets.make_squares(grid=1)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_make_spirals_arms(n_classes: int) -> None:
    X, y = datasets.make_spirals(n_samples=301, n_classes=n_classes, noise=0.0, seed=0, turns=1.0)
    counts = np.bincount(y)
    assert counts.sum() == 301 and counts.max() - counts.min() <= 1
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() <= 1.0
    # on arm k the polar angle is 2 pi (r + k / n_classes) modulo 2 pi
    offset = np.mod(np.arctan2(X[:, 1], X[:, 0]) - 2 * np.pi * r, 2 * np.pi)
    expected = 2 * np.pi * y / n_classes
    gap = np.abs(np.angle(np.exp(1j * (offset - expected))))
    assert gap.max() < 1e-9
    with pytest.raises(ValueError, match="n_classes"):
        datasets.make_spirals(n_classes=1)
