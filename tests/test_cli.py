"""The command line (anyarray_nn.cli): train, evaluate, gradcheck, backends, demo, exit codes.

Most tests call ``main([...])`` in-process (fast, with capsys); two run the real
``python -m anyarray_nn`` in a subprocess. Every run is a few epochs on small data.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import run_main
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.model_selection import train_test_split

import anyarray_nn as ann
from anyarray_nn import activations, cli, datasets

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--backend", "numpy", "--quiet"]


def table_value(out: str, metric: str, column: int = -1) -> float:
    """A number from the metrics table: the row starting with ``metric``, its last column."""
    match = re.search(rf"^{re.escape(metric)}((?:\s+[-+0-9.e]+)+)\s*$", out, flags=re.M)
    assert match, f"no {metric!r} row in:\n{out}"
    return float(match.group(1).split()[column])


def printed_confusion_matrix(out: str, k: int) -> np.ndarray:
    lines = out[out.index("confusion matrix (rows: true") :].splitlines()[2 : 2 + k]
    return np.array([[int(v) for v in line.split()[-k:]] for line in lines])


def assert_one_line_error(rc: int, err: str, *fragments: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("anyarray-nn") and ": error: " in lines[0], err
    for fragment in fragments:
        assert fragment in lines[0], err


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes (the format datasets.read_idx parses)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


# -- train, save, evaluate --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, loader, options",
    [
        ("iris", datasets.load_iris, ["--layers", "16", "--epochs", "20", "--lr", "1e-2"]),
        ("digits", datasets.load_digits, ["--layers", "32", "--epochs", "5", "--lr", "3e-3"]),
    ],
)
def test_train_save_evaluate_matches_an_independent_computation(
    tmp_path, capsys, name, loader, options
):
    model = tmp_path / f"{name}.safetensors"
    rc, out, _ = run_main(capsys, "train", "--data", name, *options, *FAST, "--save", model)
    assert rc == 0
    assert model.stat().st_size > 0 and f"saved the model to {model}" in out
    train_table_test_accuracy = table_value(out, "accuracy")

    rc, out, err = run_main(capsys, "evaluate", model, "--data", name, "--backend", "numpy")
    assert rc == 0, err
    # independently: our own copy of the model, the dataset's split, scikit-learn's metrics
    _, X_test, _, y_test = loader(split=True, seed=0)
    pred = ann.load(model, backend="numpy").predict_classes(X_test)
    expected = accuracy_score(y_test, pred)
    assert f"{len(y_test)} samples" in out
    assert table_value(out, "accuracy") == pytest.approx(expected, abs=5e-5)  # 4 decimals
    assert train_table_test_accuracy == pytest.approx(expected, abs=5e-5)
    correct = re.search(r"(\d+) of (\d+) test samples classified correctly", out)
    assert correct and (int(correct[1]), int(correct[2])) == (np.sum(pred == y_test), len(y_test))
    assert expected > 0.8  # it did learn something
    k = int(y_test.max()) + 1
    cm = sk_confusion_matrix(y_test, pred, labels=range(k))
    np.testing.assert_array_equal(printed_confusion_matrix(out, k), cm)
    for metric in ("precision (macro)", "recall (macro)", "f1 (macro)"):
        assert 0.0 <= table_value(out, metric) <= 1.0
    assert "macro avg" in out  # the per-class classification report
    if name == "iris":
        assert "versicolor" in out


def test_train_and_evaluate_runge_as_regression(tmp_path, capsys):
    model = tmp_path / "runge.npz"
    data = ["--data", "runge", "--n-samples", "300"]
    rc, out, _ = run_main(
        capsys, "train", *data, "--layers", "32,32", "--epochs", "40", "--lr", "3e-3", *FAST,
        "--save", model,
    )  # fmt: skip
    assert rc == 0
    assert "accuracy" not in out and table_value(out, "r2") > 0.5
    net = ann.load(model, backend="numpy")
    assert net.output.name == "identity" and net.loss_fn.name == "mse" and net.n_outputs == 1

    rc, out, _ = run_main(capsys, "evaluate", model, *data, "--backend", "numpy")
    assert rc == 0
    X, y = datasets.make_runge(300, seed=0)  # the CLI's documented split: --data-seed, --test-size
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    pred = net.predict(X_test)[:, 0]
    assert "60 samples" in out
    assert table_value(out, "mse") == pytest.approx(mean_squared_error(y_test, pred), rel=1e-3)
    assert table_value(out, "r2") == pytest.approx(r2_score(y_test, pred), abs=5e-5)
    assert "confusion matrix" not in out


@pytest.mark.parametrize(
    "train_on, evaluate_on",
    [
        (["--backend", "torch", "--device", "cpu"], ["--backend", "numpy"]),
        (["--backend", "numpy"], ["--backend", "array_api_strict", "--device", "device1"]),
    ],
    ids=["torch-to-numpy", "numpy-to-strict-device1"],
)
def test_train_and_evaluate_on_other_backends(tmp_path, capsys, train_on, evaluate_on):
    for option in (train_on, evaluate_on):
        pytest.importorskip(option[1])
    model = tmp_path / "m.safetensors"
    data = ["--data", "squares", "--n-samples", "200"]
    rc, out, err = run_main(
        capsys, "train", *data, "--layers", "8", "--epochs", "2", *train_on, "--quiet",
        "--save", model,
    )  # fmt: skip
    assert rc == 0, err
    assert f"Backend('{train_on[1]}'" in out
    rc, out, err = run_main(capsys, "evaluate", model, *data, *evaluate_on, "--dtype", "float64")
    assert rc == 0, err
    assert f"Backend('{evaluate_on[1]}'" in out and "float64" in out
    X, y = datasets.make_squares(200, seed=0)
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    reference = ann.load(model, backend="numpy", dtype="float64")
    expected = accuracy_score(y_test, reference.predict_classes(X_test))
    assert table_value(out, "accuracy") == pytest.approx(expected, abs=5e-5)


def test_mnist_dir_uses_the_files_own_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 60), ("t10k", 20)):
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", np.arange(n) % 10)
    model = tmp_path / "mnist.safetensors"
    spec = f"mnist:{tmp_path}"
    rc, out, _ = run_main(
        capsys, "train", "--data", spec, "--layers", "8", "--epochs", "1", *FAST, "--save", model
    )
    assert rc == 0
    rc, out, _ = run_main(capsys, "evaluate", model, "--data", spec, "--backend", "numpy")
    assert rc == 0 and "20 samples" in out
    correct = re.search(r"(\d+) of 20 test samples", out)
    images = datasets.read_idx(tmp_path / "t10k-images-idx3-ubyte").reshape(20, -1) / 255.0
    pred = ann.load(model).predict_classes(images)
    assert correct and int(correct[1]) == np.sum(pred == np.arange(20) % 10)


@pytest.mark.skipif(
    not Path(datasets.FASHION_MNIST_DIR).is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist_from_the_debian_package(tmp_path, capsys):
    model = tmp_path / "fashion.safetensors"
    rc, out, _ = run_main(
        capsys, "train", "--data", "fashion-mnist", "--limit", "500", "--layers", "16",
        "--epochs", "1", "--batch-size", "64", *FAST, "--save", model,
    )  # fmt: skip
    assert rc == 0 and "500 train" not in out  # --quiet: no header
    rc, out, _ = run_main(capsys, "evaluate", model, "--data", "fashion-mnist")
    assert rc == 0 and "10000 samples" in out and "Ankle boot" in out


def test_options_reach_the_network(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    rc, out, _ = run_main(
        capsys, "train", "--data", "spirals", "--n-samples", "200", "--layers", "6,5",
        "--activation", "tanh,elu", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "2",
        "--batch-size", "16", "--dropout", "0.1", "--l2", "1e-3", "--seed", "3", "--dtype",
        "float64", "--validation-split", "0", "--backend", "numpy", "--epoch-lines",
        "--save", model,
    )  # fmt: skip
    assert rc == 0
    assert "epoch 2/2" in out and "val_loss" not in out and "160 train / 40 test" in out
    net = ann.load(model)
    assert net.backend.dtype_name == "float64" and net.seed == 3 and net.l2 == 1e-3
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dropout"] * 2 + ["Dense"]
    assert [layer.activation.name for layer in net.layers[::2]] == ["tanh", "elu", "identity"]
    assert net.optimizer.config()["name"] == "sgd" and net.epochs_trained_ == 2


def test_limit_subsamples_the_training_split(capsys):
    rc, out, _ = run_main(
        capsys, "train", "--data", "iris", "--limit", "50", "--layers", "4", "--epochs", "1",
        "--backend", "numpy", "--epoch-lines",
    )  # fmt: skip
    assert rc == 0 and "50 train / 30 test" in out


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    rc, out, _ = run_main(
        capsys, "train", "--data", "iris", "--layers", "8", "--epochs", "3", *FAST, "--plot", png
    )
    assert rc == 0 and f"saved the training curves to {png}" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_plot_without_matplotlib_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli.train, "has_module", lambda name: name != "matplotlib")
    monkeypatch.setattr(ann.NN, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    rc, _, err = run_main(capsys, "train", "--data", "iris", "--plot", tmp_path / "c.png")
    assert_one_line_error(rc, err, "matplotlib", "pip install")


# -- gradcheck --------------------------------------------------------------------------------


def test_gradcheck_passes_for_a_correct_net(capsys):
    rc, out, _ = run_main(capsys, "gradcheck", "--layers", "8,6", "--activation", "tanh")
    assert rc == 0
    assert "NN([4, 8, 6, 3]" in out and "float64" in out
    for name in ("W1", "b1", "W2", "b2", "W3", "b3", "max"):
        assert re.search(rf"^{name}\s+\S+e-\d\d\s+\S+$", out, flags=re.M), out
    assert "PASS" in out


@pytest.mark.parametrize(
    "options",
    [
        ["--output", "sigmoid"],
        ["--output", "identity", "--outputs", "2", "--l2", "0.1"],
        ["--output", "softmax", "--loss", "mse"],
    ],
)
def test_gradcheck_other_outputs_and_losses(capsys, options):
    rc, out, _ = run_main(capsys, "gradcheck", "--layers", "5", "--samples", "8", *options)
    assert rc == 0, out


def test_gradcheck_fails_with_a_broken_derivative(capsys, monkeypatch):
    monkeypatch.setattr(activations.Tanh, "derivative", lambda self, xp, z, a: 1.1 * (1.0 - a * a))
    rc, out, _ = run_main(capsys, "gradcheck", "--activation", "tanh")
    assert rc == 1
    assert "FAIL" in out and "disagrees" in out


def test_gradcheck_tolerance_decides(capsys):
    assert run_main(capsys, "gradcheck", "--layers", "3", "--tol", "1e-30")[0] == 1
    assert run_main(capsys, "gradcheck", "--layers", "3", "--tol", "1e-3")[0] == 0


# -- errors and exit codes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["train", "--data", "foo"], ["unknown dataset 'foo'", "choose from digits, iris"]),
        (["train", "--data", "iris:/tmp"], ["takes no directory"]),
        (["train", "--data", "iris", "--epochs", "x"], ["--epochs", "--help"]),
        (["train", "--data", "iris", "--epochs", "0"], ["an int >= 1"]),
        (["train", "--data", "iris", "--layers", "8,-1"], ["128,64"]),
        (["train", "--data", "iris", "--activation", "foo"], ["unknown activation", "relu"]),
        (["train", "--data", "iris", "--optimizer", "foo"], ["adam"]),
        (["train", "--data", "iris", "--lr", "-1"], ["--lr"]),
        (["train", "--data", "iris", "--dropout", "1"], ["[0, 1)"]),
        (["train", "--data", "iris", "--backend", "nope"], ["Unknown backend 'nope'", "backends"]),
        (["train", "--data", "iris", "--layers", "8", "--activation", "relu,tanh"], ["2 names"]),
        (["train", "--data", "iris", "--save", "/no/such/dir/m.npz"], ["does not exist"]),
        (["train", "--data", "iris", "--save", "m.pt"], ["m.pt", "*.safetensors or *.npz"]),
        (["train", "--data", "runge", "--n-samples", "4"], ["--n-samples"]),
        (["train"], ["--data"]),
        (["evaluate", "--data", "iris"], ["MODEL"]),
        (["evaluate", "no-such-model.safetensors", "--data", "iris"], ["No model file"]),
        (["gradcheck", "--outputs", "1"], ["softmax", "2 units"]),
        (["frobnicate"], ["invalid choice"]),
        (["--epochs", "2", "train", "--data", "iris"], ["only applies to the demo"]),
        (["--backend", "nope"], ["Unknown backend 'nope'"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, fragments):
    rc, _, err = run_main(capsys, *argv)
    assert_one_line_error(rc, err, *fragments)


def test_unusable_backend_exits_2_with_a_hint(capsys, monkeypatch):
    import dataclasses

    import anyarray_nn.backend as backend_module

    missing = dataclasses.replace(backend_module.BACKENDS["cupy"], package="no_such_package_")
    monkeypatch.setitem(backend_module.BACKENDS, "cupy", missing)
    rc, _, err = run_main(capsys, "train", "--data", "iris", "--backend", "cupy")
    assert_one_line_error(rc, err, "'cupy' is not usable here", "anyarray-nn backends")


def test_missing_fashion_mnist_dir_exits_2_with_a_hint(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    rc, _, err = run_main(capsys, "train", "--data", f"fashion-mnist:{missing}")
    assert_one_line_error(rc, err, str(missing), "apt-get install dataset-fashion-mnist")
    assert "fashion-mnist:DIR" in err


def test_unreadable_or_mismatched_models_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model at all")
    rc, _, err = run_main(capsys, "evaluate", junk, "--data", "iris")
    assert_one_line_error(rc, err, "not a readable anyarray_nn model file")

    model = tmp_path / "iris-shaped.safetensors"
    ann.NN([4, 5, 3], backend="numpy", seed=0).save(model)
    rc, _, err = run_main(capsys, "evaluate", model, "--data", "digits")
    assert_one_line_error(rc, err, "expects 4 features but digits has 64")
    ann.NN([2, 5, 3], backend="numpy", seed=0).save(model, overwrite=True)
    rc, _, err = run_main(capsys, "evaluate", model, "--data", "doughnut")
    assert_one_line_error(rc, err, "3 outputs", "2 classes")
    rc, _, err = run_main(capsys, "evaluate", model, "--data", "runge")
    assert_one_line_error(rc, err, "features")


def test_diverged_training_exits_1(capsys, monkeypatch):
    def diverge(*args, **kwargs):
        raise ann.TrainingDivergedError("Training diverged: the loss became nan in epoch 2.\nmore")

    monkeypatch.setattr(ann.NN, "fit", diverge)
    rc, _, err = run_main(capsys, "train", "--data", "iris", *FAST)
    assert rc == 1 and err.count("\n") == 1 and "diverged" in err and "Traceback" not in err


def test_ctrl_c_exits_130(capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ann.NN, "fit", interrupt)
    rc, _, err = run_main(capsys, "train", "--data", "iris", *FAST)
    assert rc == 130 and "interrupted" in err


def test_exit_codes_are_documented_once_in_the_top_level_help(capsys):
    rc, out, _ = run_main(capsys, "--help")
    assert rc == 0 and "exit status" in out
    for code in ("0 ", "1 ", "2 ", "130", "141"):
        assert f"\n  {code}" in out, out
    for command in ("train", "evaluate", "predict", "gradcheck", "backends", "demo"):
        rc, out, _ = run_main(capsys, command, "--help")
        assert rc == 0 and "exit status" not in out and "\n  130" not in out, out
    doc = cli.__doc__
    assert "Exit status" in doc and all(f"    {c}" in doc for c in ("0 ", "1 ", "2 ", "130"))


# -- backends and the demo --------------------------------------------------------------------


def test_backends_lists_all_four(capsys):
    rc, out, _ = run_main(capsys, "backends")
    assert rc == 0
    for name in ("numpy", "cupy", "torch", "array_api_strict"):
        assert re.search(rf"^{name}\s+(available|unavailable: .+)$", out, flags=re.M), out
    assert re.search(r"^numpy\s+available$", out, flags=re.M)


@pytest.mark.parametrize("argv", [[], ["demo"]])
def test_no_command_and_demo_run_the_digits_demo(capsys, argv):
    rc, out, _ = run_main(capsys, *argv, "--epochs", "1", "--backend", "numpy", "--quiet")
    assert rc == 0 and "digits demo" in out and "test accuracy" in out


# -- the real command line ----------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _python_m(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anyarray_nn", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=_env(),
    )


def test_python_m_train_then_evaluate(tmp_path, capsys):
    proc = _python_m(
        "train", "--data", "doughnut", "--n-samples", "200", "--layers", "8", "--epochs", "3",
        "--backend", "numpy", "--epoch-lines", "--save", "model.safetensors", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3/3" in proc.stdout and "accuracy" in proc.stdout
    assert (tmp_path / "model.safetensors").stat().st_size > 0
    model = tmp_path / "model.safetensors"
    rc, out, _ = run_main(capsys, "evaluate", model, "--data", "doughnut", "--n-samples", "200")
    assert rc == 0 and table_value(out, "accuracy") == table_value(proc.stdout, "accuracy")


def test_python_m_bad_dataset_is_one_line_exit_2(tmp_path):
    proc = _python_m("train", "--data", "foo", cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "unknown dataset 'foo'", "choose from")


def test_closed_stdout_exits_141_quietly(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyarray_nn", "gradcheck", "--layers", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=_env(),
    )
    proc.stdout.close()  # like `anyarray-nn gradcheck | head -0`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b""


# -- everyday use: saved formats, logs, Ctrl-C, divergence, read-only targets, downloads -----


def test_saved_line_names_the_format(tmp_path, capsys):
    for name, fmt in (("m.safetensors", "safetensors"), ("m.npz", "npz")):
        rc, out, _ = run_main(
            capsys, "train", "--data", "iris", "--layers", "4", "--epochs", "1", *FAST,
            "--save", tmp_path / name,
        )  # fmt: skip
        assert rc == 0 and f"saved the model to {tmp_path / name} ({fmt})" in out


def test_a_wrong_save_extension_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ann.NN, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    rc, _, err = run_main(capsys, "train", "--data", "iris", "--save", tmp_path / "m.pt")
    assert_one_line_error(rc, err, "m.pt", "*.safetensors or *.npz")
    assert not (tmp_path / "m.pt").exists()


def _unwritable_directory(tmp_path: Path) -> Path:
    """A directory where no file can be created: read-only permissions, or (as root, who
    ignores them) /sys, which refuses new files even to root."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for candidate in (ro, Path("/sys")):
        try:
            (candidate / ".probe").write_bytes(b"")
        except OSError:
            return candidate
        (candidate / ".probe").unlink()
    pytest.skip("no unwritable directory here")


def test_save_into_a_read_only_directory_fails_before_training(tmp_path, run_cli):
    target = _unwritable_directory(tmp_path) / "m.safetensors"
    proc = run_cli("train", "--data", "iris", "--epochs", "2", "--backend", "numpy",
                   "--save", target)  # fmt: skip
    assert_one_line_error(proc.returncode, proc.stderr, "--save", "cannot write in directory")
    assert "trained" not in proc.stdout and "epoch" not in proc.stdout


def test_a_diverged_run_prints_only_its_one_line_error(run_cli):
    proc = run_cli("train", "--data", "iris", "--optimizer", "sgd", "--lr", "100", "--epochs",
                   "5", "--backend", "numpy", "--quiet")  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "RuntimeWarning" not in proc.stderr, proc.stderr
    assert lines[0].startswith("anyarray-nn train: error: Training diverged: the loss became")
    assert "--lr" in lines[0] and "clip_norm=" not in lines[0]


def test_clip_norm_reaches_fit(capsys, monkeypatch):
    seen = {}
    real_fit = ann.NN.fit

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(ann.NN, "fit", spy)
    rc, _, _ = run_main(capsys, "train", "--data", "iris", "--layers", "4", "--epochs", "1",
                        "--clip-norm", "0.5", *FAST)  # fmt: skip
    assert rc == 0 and seen["clip_norm"] == 0.5


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "iris", "--layers", "4", "--epochs", "2", "--backend", "numpy"],
        ["--epochs", "2", "--backend", "numpy"],  # the demo
    ],
    ids=["train", "demo"],
)
def test_redirected_output_gets_one_line_per_epoch_and_no_bars(run_cli, argv):
    proc = run_cli(*argv)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" in proc.stdout and "epoch 2/2" in proc.stdout
    assert "\r" not in proc.stdout + proc.stderr and "batch/s" not in proc.stdout + proc.stderr
    assert proc.stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_a_terminal_gets_progress_bars(tmp_path):
    import fcntl
    import pty
    import termios

    pytest.importorskip("tqdm")
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    argv = ["train", "--data", "iris", "--layers", "4", "--epochs", "2", "--backend", "numpy"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyarray_nn", *argv],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, cwd=tmp_path, env=_env(),
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=120) == 0
    text = b"".join(chunks).decode()
    assert "\repoch 2/2: 100%" in text and "batch/s" in text


def test_ctrl_c_saves_the_last_finished_epoch_and_exits_130(tmp_path):
    import signal

    model = tmp_path / "m.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyarray_nn", "train", "--data", "digits", "--layers", "16",
         "--epochs", "100000", "--batch-size", "16", "--backend", "numpy", "--epoch-lines",
         "--save", model],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env(),
    )  # fmt: skip
    watchdog = threading.Timer(120, proc.kill)  # never hang the suite
    watchdog.start()
    for line in proc.stdout:
        if line.startswith("epoch 2/"):
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    watchdog.cancel()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Warning" not in err and len(err.splitlines()) == 1, err
    done = re.fullmatch(
        rf"anyarray-nn train: interrupted in epoch (\d+) of 100000: saved the model after (\d+) "
        rf"epochs to {re.escape(str(model))} \(safetensors\)\n",
        err,
    )
    assert done and int(done[1]) == int(done[2]) + 1 and int(done[2]) >= 2, err
    net = ann.load(model)
    assert net.epochs_trained_ == int(done[2])
    assert net.metadata["data"] == {"dataset": "digits"}


def test_ctrl_c_before_the_first_epoch_saves_nothing(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ann.NN, "fit", interrupt)
    model = tmp_path / "m.npz"
    rc, _, err = run_main(capsys, "train", "--data", "iris", *FAST, "--save", model)
    assert rc == 130 and not model.exists()
    assert (
        err == "anyarray-nn train: interrupted in epoch 1 of 20, before any epoch finished: "
        "nothing saved\n"
    )


def _offline_env(tmp_path: Path) -> dict[str, str]:
    """No cached MNIST, and every download refused at once by a proxy that is not there."""
    dead = "http://127.0.0.1:9"
    return {"SCIKIT_LEARN_DATA": str(tmp_path / "sk"), "http_proxy": dead,
            "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "no_proxy": "",
            "NO_PROXY": ""}  # fmt: skip


def test_mnist_without_a_directory_says_it_downloads_then_fails_in_one_line(tmp_path, run_cli):
    proc = run_cli("train", "--data", "mnist", "--backend", "numpy", env=_offline_env(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    notice, error = proc.stderr.strip().splitlines()  # nothing else: no retry warnings
    assert "fetching 'mnist_784' from OpenML" in notice and str(tmp_path / "sk") in notice
    assert error.startswith("anyarray-nn train: error: MNIST: cannot download 'mnist_784'")
    assert "offline" in error and "mnist:DIR" in error


def test_load_mnist_fails_fast_when_offline(tmp_path, monkeypatch):
    import time
    import urllib.request

    for name, value in _offline_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(urllib.request, "_opener", None)  # rebuilt with the proxies above
    start = time.perf_counter()
    with pytest.raises(datasets.DatasetNotFoundError, match="offline"):
        datasets.load_mnist()
    assert time.perf_counter() - start < 1.5  # scikit-learn's default retries took 3 s
