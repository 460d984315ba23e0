"""Reliability, second round (issue 17): the command line on users' files. Each test is one of
the issue's probes: a non-zero exit, one line naming the problem, no traceback, and no partial
or clobbered output. References are the files as written here (their bytes, NumPy's reading)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import one_line_error, run_main
from sklearn.datasets import load_iris

from anyarray_nn.cli import main

FAST = ["--backend", "numpy", "--quiet", "--epochs", "2"]
ROOT = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def iris_csv(path: Path, header: str = "a,b,c,d,label") -> Path:
    X, y = load_iris(return_X_y=True)
    rows = [",".join(f"{v:g}" for v in x) + f",{t}" for x, t in zip(X, y, strict=True)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


# -- 2. a FIFO or a device as --data ---------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_as_data_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    result: list = []
    worker = threading.Thread(
        target=lambda: result.append(main(["train", "--data", str(fifo), *FAST])), daemon=True
    )
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(fifo, "w"):
            pass
        worker.join(5)
        pytest.fail("train blocked on a FIFO")
    one_line_error(result[0], capsys.readouterr().err, "not a regular file", str(fifo))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_link_to_dev_zero_as_data_is_refused(tmp_path, capsys):
    link = tmp_path / "zeros.csv"
    link.symlink_to("/dev/zero")
    rc, _, err = run_main(capsys, "train", "--data", link, *FAST, "--target", "-1")
    one_line_error(rc, err, "not a regular file")


# -- 3. a .npy/.npz header that claims a huge shape ------------------------------------------
def _huge_header_npy(path: Path) -> Path:
    """A .npy whose header (written by NumPy) declares 900e9 x 3 float64 but holds 12 values."""
    with open(path, "wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (900_000_000_000, 3)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(np.zeros(12).tobytes())
    return path


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_a_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path, capsys, kind):
    import zipfile

    npy = _huge_header_npy(tmp_path / "X.npy")
    assert b"900000000000" in npy.read_bytes()
    if kind == "npz":
        path = tmp_path / "data.npz"
        with zipfile.ZipFile(path, "w") as archive:
            archive.write(npy, "X.npy")
            archive.writestr("y.npy", (tmp_path / "X.npy").read_bytes())
    else:
        path = npy
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "0", *FAST)
    one_line_error(rc, err, "declares more data than the file holds")


# -- 4. output written over its own input ----------------------------------------------------
def test_predict_refuses_to_write_over_its_data_also_through_a_link(tmp_path, capsys):
    data = iris_csv(tmp_path / "iris.csv")
    model = tmp_path / "m.npz"
    rc, _, err = run_main(capsys, "train", "--data", data, "--target", "label", *FAST,
                          "--save", model)  # fmt: skip
    assert rc == 0, err
    before = digest(data)
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    for out in (data, link):
        rc, _, err = run_main(capsys, "predict", model, "--data", data, "--out", out)
        one_line_error(rc, err, "--out", "would replace the data")
        assert digest(data) == before
    X = np.load  # the .npy case: features in a .npy, predictions to the same .npy
    npy = tmp_path / "X.npy"
    np.save(npy, np.asarray(load_iris().data))
    rc, _, err = run_main(capsys, "predict", model, "--data", npy, "--out", npy)
    one_line_error(rc, err, "would replace the data")
    np.testing.assert_array_equal(X(npy), load_iris().data)


def test_train_refuses_to_save_the_model_over_its_training_data(tmp_path, capsys):
    X, y = load_iris(return_X_y=True)
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y)
    before = digest(path)
    rc, _, err = run_main(capsys, "train", "--data", path, *FAST, "--save", path)
    one_line_error(rc, err, "--save", "would replace the data")
    assert digest(path) == before


# -- 5. duplicate column names ---------------------------------------------------------------
def test_duplicate_column_names_are_refused(tmp_path, capsys):
    data = iris_csv(tmp_path / "dup.csv", header="a,a,c,d,label")
    rc, _, err = run_main(capsys, "train", "--data", data, "--target", "label", *FAST)
    one_line_error(rc, err, "'a' appears more than once")


# -- 6. a regression target of inf or 1e400 --------------------------------------------------
@pytest.mark.parametrize("bad", ["inf", "1e400"])
@pytest.mark.parametrize("task", [None, "regression"])
def test_a_non_finite_regression_target_is_named_with_its_line(tmp_path, capsys, bad, task):
    rng = np.random.default_rng(0)
    lines = ["x1,x2,y"] + [
        f"{a:.3f},{b:.3f},{a + b + 0.123:.3f}" for a, b in rng.normal(size=(60, 2))
    ]
    lines[7] = lines[7].rsplit(",", 1)[0] + f",{bad}"  # line 8 of the file
    path = tmp_path / "reg.csv"
    path.write_text("\n".join(lines) + "\n")
    task_args = [] if task is None else ["--task", task]
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "y", *task_args, *FAST)
    one_line_error(rc, err, "line 8", repr(bad), "not a finite number")


def test_task_regression_names_the_first_text_label(tmp_path, capsys):
    path = tmp_path / "reg.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(20)) + "21,oops\n")
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "y",
                          "--task", "regression", *FAST)  # fmt: skip
    one_line_error(rc, err, "'oops'", "row 20")


# -- 7. the labels file of --data X.npy --target y.npy changed -------------------------------
def test_evaluate_notices_a_changed_labels_file(tmp_path, capsys):
    X, y = load_iris(return_X_y=True)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    model = tmp_path / "m.safetensors"
    rc, _, err = run_main(capsys, "train", "--data", tmp_path / "X.npy", "--target",
                          tmp_path / "y.npy", *FAST, "--save", model)  # fmt: skip
    assert rc == 0, err
    rc, _, err = run_main(capsys, "evaluate", model)
    assert rc == 0, err
    np.save(tmp_path / "y.npy", np.roll(y, 7))
    rc, _, err = run_main(capsys, "evaluate", model)
    one_line_error(rc, err, "y.npy", "has changed")


# -- 11. zero-row data files -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["npy", "npz", "parquet"])
def test_a_data_file_without_rows_is_one_line(tmp_path, capsys, kind):
    X = np.zeros((0, 4))
    if kind == "npy":
        path = tmp_path / "X.npy"
        np.save(path, X)
    elif kind == "npz":
        path = tmp_path / "d.npz"
        np.savez(path, X=X, y=np.zeros(0))
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        path = tmp_path / "d.parquet"
        pq.write_table(
            pa.table({"a": pa.array([], pa.float64()), "y": pa.array([], pa.int64())}), path
        )
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "-1", *FAST)
    one_line_error(rc, err, "has no rows")


# -- 1. one failing rank must not hang the others --------------------------------------------
MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
HAVE_MPI = Path(MPIEXEC).exists() and __import__("importlib").util.find_spec("mpi4py") is not None


@pytest.mark.skipif(
    not HAVE_MPI, reason="mpi4py or mpiexec missing (pip install 'anyarray_nn[mpi]')"
)
@pytest.mark.parametrize("problem", ["save", "data"])
def test_one_rank_failing_before_fit_stops_every_rank(tmp_path, problem):
    iris_csv(tmp_path / "iris.csv")
    script = tmp_path / "job.py"
    # rank 0 gets a bad --save directory, or rank 1 a data file that is not there
    script.write_text(
        textwrap.dedent(f"""
        import sys
        from mpi4py import MPI
        from anyarray_nn.cli import main
        rank = MPI.COMM_WORLD.Get_rank()
        data = "missing.csv" if {problem!r} == "data" and rank == 1 else "iris.csv"
        save = "no/such/dir/m.npz" if {problem!r} == "save" else "m.npz"
        sys.exit(main(["train", "--distributed", "--data", data, "--target", "label",
                       "--backend", "numpy", "--quiet", "--epochs", "2", "--save", save]))
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    # two ranks write to one stderr, so their lines may run together: count the messages
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("anyarray-nn train: error: ") == 2, proc.stderr
    fragment = "no/such/dir" if problem == "save" else "missing.csv"
    assert proc.stderr.count(fragment) >= 2, proc.stderr
    assert not (tmp_path / "m.npz").exists()


# -- 12. a malformed training record ---------------------------------------------------------
def _drop(key):
    return lambda r: r["data"].pop(key)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_drop("sha256"), "data.sha256"),
        (lambda r: r["data"].update(file=7), "data.file"),
        (lambda r: r.update(classes="setosa"), "classes"),
        (lambda r: r["split"].update(test_size="0.2"), "split.test_size"),
        (lambda r: r["scaler"].pop("scale"), "scaler"),
        (lambda r: r.update(feature_names=[1, 2, 3, 4]), "feature_names"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_malformed_training_record_is_one_line_naming_the_field(
    tmp_path, capsys, edit, fragment, command
):
    import anyarray_nn as ann

    data = iris_csv(tmp_path / "iris.csv")
    model = tmp_path / "m.npz"
    rc, _, err = run_main(capsys, "train", "--data", data, "--target", "label", *FAST,
                          "--save", model)  # fmt: skip
    assert rc == 0, err
    net = ann.load(model)
    edit(net.metadata)
    net.save(model, overwrite=True)
    extra = ["--data", data, "--out", tmp_path / "p.csv"] if command == "predict" else []
    rc, _, err = run_main(capsys, command, model, *extra)
    one_line_error(rc, err, "training record", fragment)
    assert not (tmp_path / "p.csv").exists()


def test_a_record_naming_an_unknown_dataset_says_a_newer_version_wrote_it(tmp_path, capsys):
    import anyarray_nn as ann

    model = tmp_path / "m.npz"
    rc, _, err = run_main(capsys, "train", "--data", "iris", *FAST, "--save", model)
    assert rc == 0, err
    net = ann.load(model)
    net.metadata["data"]["dataset"] = "cifar-100"
    net.save(model, overwrite=True)
    rc, _, err = run_main(capsys, "evaluate", model)
    one_line_error(rc, err, "'cifar-100'", "newer anyarray_nn", "upgrade")


# -- 21. option typos ------------------------------------------------------------------------
def test_an_unknown_option_points_to_the_commands_help(capsys):
    rc, out, err = run_main(capsys, "train", "--data", "iris", "--learning-rate", "0.1")
    line = one_line_error(rc, err, "--learning-rate", "see 'anyarray-nn train --help'")
    assert line.startswith("anyarray-nn train: error:")
    assert main(["train", "--help"]) == 0 and "--lr" in capsys.readouterr().out
    assert out == ""


def test_option_prefixes_are_not_taken_as_the_full_name(capsys):
    rc, _, err = run_main(capsys, "train", "--data", "iris", "--layer", "8", *FAST)
    one_line_error(rc, err, "unrecognized arguments: --layer 8")


# -- 22. the unknown-column error ------------------------------------------------------------
def test_an_unknown_column_lists_every_column_and_the_closest_first(tmp_path, capsys):
    names = [f"feature_{i}" for i in range(14)] + ["cultivar"]
    rng = np.random.default_rng(0)
    rows = [",".join(f"{v:.3f}" for v in rng.normal(size=14)) + f",{i % 3}" for i in range(30)]
    path = tmp_path / "wine.csv"
    path.write_text(",".join(names) + "\n" + "\n".join(rows) + "\n")
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "Cultivars", *FAST)
    line = one_line_error(rc, err, "has no column 'Cultivars'", "did you mean 'cultivar'?")
    assert all(name in line for name in names), line


# -- 15, 16. CSV errors name the right line, the column and the file -------------------------
def _iris_lines() -> list[str]:
    X, y = load_iris(return_X_y=True)
    return ["a,b,c,d,label"] + [
        ",".join(f"{v:g}" for v in x) + f",{t}" for x, t in zip(X[:60], y[:60], strict=True)
    ]


@pytest.mark.parametrize(
    ("line", "text", "fragments"),
    [
        (4, '"5.1,3.5,1.4,0.2,0', ["line 4", "not closed"]),
        (2, "5.1," + "9" * (1 << 20) + ",1.4,0.2,0", ["line 2", "is this a CSV file"]),
        (6, b"5.1,3.5,1.4,0.2,caf\xe9", ["line 6", "not UTF-8"]),
        (6, ",,,,", ["line 6"]),
        (5, "1_000,3.5,1.4,0.2,0", ["line 5", "column 'a'", "'1_000'"]),
        (5, "\u0665.1,3.5,1.4,0.2,0", ["line 5", "column 'a'"]),
        (5, "   ", ["line 5", "delete the blank line"]),
    ],
    ids=["open-quote", "huge-field", "latin-1", "empty-fields", "underscore", "arabic", "blank"],
)
def test_csv_errors_name_the_file_the_line_and_the_column(tmp_path, capsys, line, text, fragments):
    lines = [s.encode() for s in _iris_lines()]
    lines[line - 1] = text if isinstance(text, bytes) else text.encode()
    path = tmp_path / "data.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "label", *FAST)
    one_line_error(rc, err, str(path), *fragments)


def test_a_parquet_label_column_of_lists_is_one_line(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    table = pa.table({"a": [float(i) for i in range(20)], "y": [[i, i] for i in range(20)]})
    pq.write_table(table, path)
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "y", *FAST)
    one_line_error(rc, err, "label column 'y'", "not one number or text per row")
