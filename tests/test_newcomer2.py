"""Issue 27, a newcomer's second round: ndonnx refused for training, boolean CSV columns,
plugins loaded by path, the label and text-column messages, one order for split data sets and
one rule for existing files, and --drop / --features on the command line.

Each expected result is computed independently: a model trained on the columns written by hand
(1/0 for True/False, the kept columns only) is the reference for the CLI's reading of them.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli_env
from helpers import one_line_error, run_main
from sklearn.datasets import load_iris

import anyarray_nn as ann
from anyarray_nn import datasets, tabular
from anyarray_nn.distributed import RANK_THREADS_ENV, THREAD_VARIABLES

FAST = ["--backend", "numpy", "--quiet", "--epochs", "3", "--layers", "8", "--seed", "0"]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _iris_rows() -> tuple[list[str], list[list[object]]]:
    bunch = load_iris()
    names = [n.replace(" (cm)", "").replace(" ", "_") for n in bunch.feature_names]
    labels = bunch.target_names[bunch.target]
    return [*names, "species"], [
        [*map(float, x), str(s)] for x, s in zip(bunch.data, labels, strict=True)
    ]


def _same_weights(a: Path, b: Path) -> None:
    for wa, wb in zip(ann.load(a).get_weights(), ann.load(b).get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


# -- 2. ndonnx records graphs for export; it is no training backend -------------------------


def test_ndonnx_is_refused_for_training_everywhere_in_one_line(capsys):
    for make in (
        lambda: ann.NN([4, 3], backend="ndonnx"),
        lambda: ann.NN([4, 3], backend="numpy").to("ndonnx"),
        lambda: ann.NNClassifier(backend="ndonnx").fit(np.zeros((4, 4)), [0, 1, 0, 1]),
    ):
        with pytest.raises(ValueError, match=r"cannot train or run.*export") as info:
            make()
        assert "\n" not in str(info.value)  # refused by name, installed or not
    rc, _, err = run_main(capsys, "train", "--data", "iris", "--backend", "ndonnx", "-q")
    one_line_error(rc, err, "'ndonnx' cannot train", "export")
    rc, out, _ = run_main(capsys, "backends")
    assert rc == 0
    line = next(line for line in out.splitlines() if line.startswith("ndonnx"))
    assert "not for training" in line and "export" in line
    rc, out, _ = run_main(capsys, "train", "--help")
    assert "ndonnx" not in out


# -- 3. boolean columns, as pandas writes get_dummies' output --------------------------------


def test_true_false_columns_train_as_one_and_zero(tmp_path, capsys):
    header, rows = _iris_rows()
    big = [float(r[0]) > 5.8 for r in rows]
    as_words = _write(
        tmp_path / "words.csv",
        [*header, "big", "small"],
        [[*r, str(b), str(not b)] for r, b in zip(rows, big, strict=True)],
    )
    _write(
        tmp_path / "numbers.csv",
        [*header, "big", "small"],
        [[*r, int(b), int(not b)] for r, b in zip(rows, big, strict=True)],
    )
    table = tabular.open_table(str(as_words))
    got = table.numeric([table.column("big"), table.column("small")])
    np.testing.assert_array_equal(got, np.column_stack([big, np.logical_not(big)]).astype(float))
    for name in ("words", "numbers"):
        rc, _, err = run_main(
            capsys, "train", "--data", tmp_path / f"{name}.csv", "--target", "species",
            *FAST, "--save", tmp_path / f"{name}.safetensors",
        )  # fmt: skip
        assert rc == 0, err
    _same_weights(tmp_path / "words.safetensors", tmp_path / "numbers.safetensors")
    rc, out, err = run_main(capsys, "predict", tmp_path / "words.safetensors", "--data", as_words)
    assert rc == 0, err
    assert len(out.splitlines()) == len(rows) + 1


def test_a_word_that_is_no_boolean_is_still_refused(tmp_path, capsys):
    path = _write(tmp_path / "d.csv", ["a", "flag", "y"], [[1, "True", 0], [2, "maybe", 1]] * 4)
    rc, _, err = run_main(capsys, "train", "--data", path, "--target", "y", *FAST)
    one_line_error(rc, err, "'flag'", "'maybe'", "--drop")


# -- 5. plugins: a module name, or the path of a .py file -------------------------------------

PLUGIN = """
from anyarray_nn.activations import Activation


class Cube(Activation):
    name = "cube_i27"

    def forward(self, xp, z):
        return z * z * z / 3.0

    def derivative(self, xp, z, a):
        return z * z
"""


def _console_script(work: Path, plugins: str, *argv: str) -> subprocess.CompletedProcess:
    """The command as its console script runs it, in ``work``: the launcher's directory, not
    the current one, first on the import path (``python -m`` would put the current directory
    there)."""
    bin_dir = work.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    launcher = bin_dir / "anyarray-nn"
    launcher.write_text("import sys\nfrom anyarray_nn.cli import main\nsys.exit(main())\n")
    return subprocess.run(
        [sys.executable, str(launcher), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=work,
        env=cli_env(ANYARRAY_NN_PLUGINS=plugins),
    )


def _work(tmp_path: Path, plugin: str = PLUGIN) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_components.py").write_text(plugin)
    return work


ARGV = ["train", "--data", "iris", "--activation", "cube_i27", *FAST]


def test_a_plugin_file_in_the_current_directory_loads_by_its_path(tmp_path):
    proc = _console_script(_work(tmp_path), "./my_components.py", *ARGV)
    assert proc.returncode == 0, proc.stderr
    assert "trained 3 epochs" in proc.stdout


def test_a_plugin_name_is_not_searched_for_in_the_current_directory(tmp_path):
    proc = _console_script(_work(tmp_path), "my_components", *ARGV)
    line = one_line_error(proc.returncode, proc.stderr, "my_components")
    assert "ANYARRAY_NN_PLUGINS=./my_components.py" in line


def test_the_documented_plugin_command_runs(tmp_path):
    """docs/extending.md's command, with its components from the page's own snippets."""
    text = (ROOT / "docs" / "extending.md").read_text()
    command = next(line for line in text.splitlines() if line.startswith("ANYARRAY_NN_PLUGINS="))
    env_part, _, argv = command.partition(" anyarray-nn ")
    assert env_part == "ANYARRAY_NN_PLUGINS=./my_components.py"
    snippets = [b for b in text.split("```python\n")[1:] if "class Swish" in b or "SignMo" in b]
    # the classes of each block, not the lines that try them
    source = "\n".join(b.split("```", 1)[0].split("rng = np.random")[0] for b in snippets)
    work = _work(tmp_path, "import numpy as np\n" + source)
    proc = _console_script(work, "./my_components.py", *argv.split(), "--epochs", "2", "-q")
    assert proc.returncode == 0, proc.stderr


# -- 7. messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(("labels", "found"), [([1, 2, 3], "1..3"), ([5, 6, 7], "5..7")])
def test_labels_out_of_range_name_the_labels_found(labels, found):
    net = ann.NN([2, 4, 3], backend="numpy", seed=0)
    with pytest.raises(ValueError, match=rf"found {found}, .*valid labels 0\.\.2.*y - {labels[0]}"):
        net.fit(np.zeros((6, 2)), labels * 2, epochs=1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_name_a_text_column_as_nn_does():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "city": ["x", "y", "x", "y"]})
    with pytest.raises(ValueError) as reference:
        ann.NN([2, 3], backend="numpy").fit(X, [0, 1, 0, 1])
    assert "'city'" in str(reference.value) and "OneHotEncoder" in str(reference.value)
    for est, y in ((ann.NNClassifier(), [0, 1, 0, 1]), (ann.NNRegressor(), [0.0, 1.0, 0.0, 1.0])):
        with pytest.raises(ValueError) as info:
            est.fit(X, y)
        assert str(info.value) == str(reference.value)
    fitted = ann.NNClassifier((4,), max_iter=5, tol=0).fit(X[["a"]], [0, 1, 0, 1])
    with pytest.raises(ValueError, match="'city'"):
        fitted.predict(X.rename(columns={"a": "b"})[["city"]])


# -- 8. one order for split data, one rule for existing files --------------------------------


def test_every_split_loader_returns_train_test_split_order(tmp_path):
    from test_datasets import N_TEST, N_TRAIN, fake_mnist

    fake_mnist(tmp_path)
    for parts in (datasets.load_mnist(tmp_path), datasets.load_fashion_mnist(tmp_path)):
        X_train, X_test, y_train, y_test = parts
        assert (len(X_train), len(X_test), len(y_train), len(y_test)) == (
            N_TRAIN, N_TEST, N_TRAIN, N_TEST,
        )  # fmt: skip
        assert X_train.ndim == 2 and y_train.ndim == 1
    X_train, X_test, y_train, y_test = datasets.load_digits(split=True)
    assert X_train.ndim == X_test.ndim == 2 and y_train.ndim == y_test.ndim == 1


def test_save_keeps_an_existing_file_unless_told(tmp_path):
    path = tmp_path / "m.safetensors"
    net = ann.NN([4, 3], backend="numpy", seed=0)
    net.save(path)
    before = path.read_bytes()
    other = ann.NN([4, 3], backend="numpy", seed=1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        other.save(path)
    assert path.read_bytes() == before
    other.save(path, overwrite=True)
    np.testing.assert_array_equal(ann.load(path).get_weights()[0], other.get_weights()[0])


def test_a_checkpoint_rewrites_its_own_file_every_epoch(tmp_path):
    path = tmp_path / "ck.safetensors"
    net = ann.NN([4, 3], backend="numpy", seed=0)
    X, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 3
    net.fit(X, y, epochs=3, callbacks=[ann.ModelCheckpoint(path, monitor="loss")])
    np.testing.assert_array_equal(ann.load(path).get_weights()[0], net.get_weights()[0])


def test_the_cli_keeps_existing_outputs_unless_told(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"keep me")
    rc, out, err = run_main(capsys, "train", "--data", "iris", *FAST, "--save", model)
    one_line_error(rc, err, "--save", "exists", "--overwrite")
    assert model.read_bytes() == b"keep me" and "trained" not in out
    rc, _, err = run_main(capsys, "train", "--data", "iris", *FAST, "--save", model, "--overwrite")
    assert rc == 0, err
    header, rows = _iris_rows()
    data = _write(tmp_path / "iris.csv", header, rows)
    rc, _, err = run_main(
        capsys, "train", "--data", data, "--target", "species", *FAST, "--save", model,
        "--overwrite",
    )  # fmt: skip
    assert rc == 0, err
    out_file = tmp_path / "p.csv"
    out_file.write_text("keep")
    rc, _, err = run_main(capsys, "predict", model, "--data", data, "--out", out_file)
    one_line_error(rc, err, "--out", "exists")
    assert out_file.read_text() == "keep"
    rc, _, err = run_main(
        capsys, "predict", model, "--data", data, "--out", out_file, "--overwrite"
    )
    assert rc == 0 and out_file.read_text().startswith("species"), err


# -- 9. --drop and --features ---------------------------------------------------------------


def _with_id_and_date(tmp_path: Path) -> tuple[Path, Path, Path]:
    """iris with an ID and a date column, the same without them, and new rows (no labels)."""
    header, rows = _iris_rows()
    full = _write(
        tmp_path / "full.csv",
        ["id", *header, "date"],
        [[i, *r, f"2024-01-{i % 28 + 1:02d}"] for i, r in enumerate(rows)],
    )
    plain = _write(tmp_path / "plain.csv", header, rows)
    new = _write(
        tmp_path / "new.csv",
        ["date", "id", *header[:-1]],
        [[f"2024-02-{i % 28 + 1:02d}", i, *r[:-1]] for i, r in enumerate(rows[::7])],
    )
    return full, plain, new


def test_drop_trains_the_model_of_the_file_without_those_columns(tmp_path, capsys):
    full, plain, new = _with_id_and_date(tmp_path)
    dropped, reference = tmp_path / "dropped.safetensors", tmp_path / "ref.safetensors"
    rc, _, err = run_main(
        capsys, "train", "--data", full, "--target", "species", "--drop", "id,date", *FAST,
        "--save", dropped,
    )  # fmt: skip
    assert rc == 0, err
    rc, _, err = run_main(
        capsys, "train", "--data", plain, "--target", "species", *FAST, "--save", reference
    )
    assert rc == 0, err
    _same_weights(dropped, reference)
    assert ann.load(dropped).metadata["data"]["read"]["drop"] == ["id", "date"]
    # evaluate (the recorded split, and a file with the extra columns) and predict (new rows
    # with the dropped columns, in another order) read the columns the model was trained on
    rc_a, out_a, _ = run_main(capsys, "evaluate", dropped)
    rc_b, out_b, _ = run_main(capsys, "evaluate", reference)
    assert rc_a == rc_b == 0 and out_a.split("metric", 1)[1] == out_b.split("metric", 1)[1]
    rc, pred_dropped, err = run_main(capsys, "predict", dropped, "--data", new)
    assert rc == 0, err
    header, rows = _iris_rows()
    plain_new = _write(tmp_path / "plain_new.csv", header[:-1], [r[:-1] for r in rows[::7]])
    rc, pred_reference, err = run_main(capsys, "predict", reference, "--data", plain_new)
    assert rc == 0, err
    assert pred_dropped == pred_reference
    rc, _, err = run_main(capsys, "predict", reference, "--data", new)  # not told: refused
    one_line_error(rc, err, "'date'", "--drop")


def test_features_selects_columns_by_name_or_position(tmp_path, capsys):
    full, _, new = _with_id_and_date(tmp_path)
    _, rows = _iris_rows()
    two = _write(
        tmp_path / "two.csv", ["petal_length", "sepal_length", "species"],
        [[r[2], r[0], r[4]] for r in rows],
    )  # fmt: skip
    chosen, reference = tmp_path / "chosen.safetensors", tmp_path / "ref.safetensors"
    rc, _, err = run_main(
        capsys, "train", "--data", full, "--target", "species",
        "--features", "petal_length,1", *FAST, "--save", chosen,
    )  # fmt: skip
    assert rc == 0, err
    rc, _, err = run_main(
        capsys, "train", "--data", two, "--target", "species", *FAST, "--save", reference
    )
    assert rc == 0, err
    _same_weights(chosen, reference)
    assert ann.load(chosen).metadata["feature_names"] == ["petal_length", "sepal_length"]
    rc, out, err = run_main(capsys, "predict", chosen, "--data", new)
    assert rc == 0 and len(out.splitlines()) == len(rows[::7]) + 1, err


def test_column_options_errors_are_one_line(tmp_path, capsys):
    full, _, _ = _with_id_and_date(tmp_path)
    base = ["train", "--data", full, "--target", "species", *FAST]
    rc, _, err = run_main(capsys, *base, "--drop", "idd")
    one_line_error(rc, err, "no column 'idd'", "did you mean 'id'")
    rc, _, err = run_main(capsys, *base, "--features", "species,id")
    one_line_error(rc, err, "--features", "label column")
    rc, _, err = run_main(capsys, "train", "--data", "iris", *FAST, "--drop", "0")
    one_line_error(rc, err, "--drop", "--data FILE")
    rc, _, err = run_main(capsys, *base, "--drop", "id", "--features", "id")
    assert rc == 2 and "not allowed with argument" in err


def test_the_cli_md_drop_block_runs_as_written(tmp_path, capsys, monkeypatch):
    """docs/cli.md's --drop example, on a CSV of those names with an ID and a date column."""
    text = (ROOT / "docs" / "cli.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n\s*```", text, flags=re.S)
    block = next(b for b in blocks if "--drop" in b)
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    header, rows = _iris_rows()
    header = ["patient_id", "date", *header[:-1], "outcome"]
    rows = [[i, f"2024-03-{i % 28 + 1:02d}", *r] for i, r in enumerate(rows)]
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "visits.csv", header, rows)
    _write(tmp_path / "new-visits.csv", header[:-1], [r[:-1] for r in rows[::10]])
    for command in commands:
        argv = command.split()[1:]
        rc, _, err = run_main(capsys, *argv, *(FAST if argv[0] == "train" else FAST[:2]))
        assert rc == 0, (command, err)


# -- 4. MPI ranks on one machine: each its share of the cores --------------------------------

MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or not Path(MPIEXEC).exists(),
    reason="mpi4py or mpiexec missing (pip install 'anyarray_nn[mpi]')",
)
PROBE = """
from mpi4py import MPI
from threadpoolctl import threadpool_info
from anyarray_nn.distributed import limit_rank_threads
line = limit_rank_threads(MPI.COMM_WORLD)
pools = sorted({i["num_threads"] for i in threadpool_info()})
rank = MPI.COMM_WORLD.Get_rank()
with open(f"rank{rank}.txt", "w") as handle:  # not stdout: mpiexec may interleave the ranks'
    handle.write(f"{rank} {pools} {line}")
"""


def _unsized_env(**extra: str) -> dict[str, str]:
    env = cli_env(**extra)
    for name in (*THREAD_VARIABLES, RANK_THREADS_ENV):
        if name not in extra:
            env.pop(name, None)
    return env


@needs_mpi
def test_each_rank_gets_its_share_of_the_cores(tmp_path):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = max(1, cores // 2)
    runs = {"": share, "3": 3, "all": None}
    for given, expected in runs.items():
        env = _unsized_env(**({RANK_THREADS_ENV: given} if given else {}))
        proc = subprocess.run(
            [MPIEXEC, "-n", "2", sys.executable, "-c", PROBE],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        lines = [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)]
        assert [line.split()[0] for line in lines] == ["0", "1"]
        for line in lines:
            if expected is None:
                assert "left as they are" in line
            else:
                assert f"[{expected}] {expected} BLAS/OpenMP thread" in line, line
                assert f"2 ranks on {cores} cores" in line


@needs_mpi
def test_the_cli_reports_the_threads_first_and_takes_an_override(tmp_path):
    argv = [MPIEXEC, "-n", "2", sys.executable, "-m", "anyarray_nn", "train", "--data", "iris",
            "--distributed", "--backend", "numpy", "--epochs", "1", "-q"]  # fmt: skip
    proc = subprocess.run(
        [*argv, "--threads-per-rank", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_unsized_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("distributed: 2 MPI ranks, 1 BLAS/OpenMP thread per rank (as asked")
    proc = subprocess.run(
        [*argv, "--threads-per-rank", "0"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_unsized_env(),
    )  # fmt: skip
    assert proc.returncode == 2 and "threads per rank '0'" in proc.stderr
