"""The command line on your own data: CSV, .npy/.npz and Parquet files through train, evaluate
and predict, the record a model file keeps of its training, and every data error as one line.

Each expected number is computed here independently: the split by scikit-learn's
train_test_split, the scaling by NumPy, the predictions by NN.load(model) on those arrays.
"""

from __future__ import annotations

import csv
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets as datasets_module
from helpers import one_line_error, run_main
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

import anyarray_nn as ann
from anyarray_nn import datasets, tabular

FAST = ["--backend", "numpy", "--quiet"]


def table_value(out: str, metric: str) -> float:
    match = re.search(rf"^{re.escape(metric)}\s+.*?([-+0-9.e]+)\s*$", out, flags=re.M)
    assert match, f"no {metric!r} row in:\n{out}"
    return float(match.group(1))


def write_csv(path: Path, header: list[str] | None, rows) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def iris() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Iris features, species names as labels, and the feature names (with spaces and
    parentheses, as scikit-learn spells them)."""
    bunch = load_iris()
    return bunch.data, bunch.target_names[bunch.target].astype(str), list(bunch.feature_names)


def iris_csv(path: Path, label_first: bool = False) -> Path:
    X, labels, features = iris()
    if label_first:
        return write_csv(
            path, ["species", *features], [[s, *x] for x, s in zip(X, labels, strict=True)]
        )
    return write_csv(
        path, [*features, "species"], [[*x, s] for x, s in zip(X, labels, strict=True)]
    )


def recorded_scaling(net) -> tuple[np.ndarray, np.ndarray]:
    scaler = net.metadata["scaler"]
    return np.asarray(scaler["mean"]), np.asarray(scaler["scale"])


# -- the round trip, through the real command line ---------------------------------------------


def test_csv_round_trip_train_evaluate_predict(tmp_path, run_cli):
    X, labels, features = iris()
    iris_csv(tmp_path / "flowers.csv")
    proc = run_cli("train", "--data", "flowers.csv", "--target", "species", "--layers", "16",
                   "--epochs", "30", "--lr", "1e-2", "--backend", "numpy",
                   "--save", "model.safetensors")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "data: flowers.csv: 120 train / 30 test samples, 4 features, 3 classes" in proc.stdout
    assert "saved the model to model.safetensors (safetensors)" in proc.stdout
    net = ann.load(tmp_path / "model.safetensors", backend="numpy")

    # the record: what it was trained on, how it was split and scaled, its classes
    X_train, X_test, _, y_test = train_test_split(
        X, labels, test_size=0.2, random_state=0, stratify=labels
    )
    meta = net.metadata
    assert meta["data"]["file"] == str((tmp_path / "flowers.csv").resolve())
    assert meta["data"]["target"] == "species" and meta["data"]["header"] is True
    assert meta["split"] == {"test_size": 0.2, "seed": 0, "limit": None}
    assert meta["n_features"] == 4 and meta["feature_names"] == features
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    mean, scale = recorded_scaling(net)
    np.testing.assert_allclose(mean, X_train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale, X_train.std(axis=0), rtol=1e-12)
    classes = np.array(meta["classes"])

    # evaluate MODEL alone: the held-out split, scored like scikit-learn does
    proc = run_cli("evaluate", "model.safetensors", "--backend", "numpy")
    assert proc.returncode == 0, proc.stderr
    expected = accuracy_score(y_test, classes[net.predict_classes((X_test - mean) / scale)])
    assert "held-out test split" in proc.stdout and "30 samples" in proc.stdout
    assert table_value(proc.stdout, "accuracy") == pytest.approx(expected, abs=5e-5)
    assert expected > 0.85 and "versicolor" in proc.stdout

    # predict: the file still has its species column (ignored); labels come back as strings
    proc = run_cli("predict", "model.safetensors", "--data", "flowers.csv", "--out", "pred.csv",
                   "--backend", "numpy")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "wrote 150 predicted labels to pred.csv" in proc.stdout
    with open(tmp_path / "pred.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["species"]
    expected_labels = classes[net.predict_classes((X - mean) / scale)]
    np.testing.assert_array_equal([row[0] for row in rows[1:]], expected_labels)

    proc = run_cli("predict", "model.safetensors", "--data", "flowers.csv", "--proba",
                   "--out", "proba.npy", "--backend", "numpy")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proba = np.load(tmp_path / "proba.npy")
    np.testing.assert_allclose(proba, net.predict((X - mean) / scale), rtol=1e-6, atol=1e-7)


# -- formats ---------------------------------------------------------------------------------


def test_npy_pair_and_npz_with_whole_number_labels(tmp_path, capsys):
    X, y = datasets.make_doughnut(300, seed=1)
    labels = np.where(y == 1, 7, 3)  # labels are values, not indices
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", labels)
    model = tmp_path / "m.npz"
    rc, out, err = run_main(
        capsys, "train", "--data", tmp_path / "X.npy", "--target", tmp_path / "y.npy",
        "--layers", "16", "--epochs", "40", "--lr", "1e-2", *FAST, "--save", model,
    )  # fmt: skip
    assert rc == 0, err
    net = ann.load(model)
    assert net.metadata["classes"] == [3, 7] and net.metadata["task"] == "classification"
    mean, scale = recorded_scaling(net)

    np.savez(tmp_path / "d.npz", X=X, y=labels)  # another file: every row is evaluated
    rc, out, err = run_main(capsys, "evaluate", model, "--data", tmp_path / "d.npz")
    assert rc == 0, err
    pred = np.array([3, 7])[net.predict_classes((X - mean) / scale)]
    assert "all rows, 300 samples" in out
    assert table_value(out, "accuracy") == pytest.approx(accuracy_score(labels, pred), abs=5e-5)

    rc, out, err = run_main(capsys, "predict", model, "--data", tmp_path / "d.npz",
                            "--out", tmp_path / "p.npy")  # fmt: skip
    assert rc == 0, err
    written = np.load(tmp_path / "p.npy")
    assert written.dtype.kind == "i"
    np.testing.assert_array_equal(written, pred)
    rc, out, err = run_main(capsys, "predict", model, "--data", tmp_path / "X.npy")
    assert rc == 0 and out.splitlines() == ["y", *map(str, pred)], err


def test_parquet_with_string_labels(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    X, labels, features = iris()
    columns = {name: X[:, j] for j, name in enumerate(features)}
    pq.write_table(pa.table({"species": labels, **columns}), tmp_path / "f.parquet")
    model = tmp_path / "m.safetensors"
    rc, _, err = run_main(capsys, "train", "--data", tmp_path / "f.parquet", "--target", "species",
                          "--layers", "8", "--epochs", "5", *FAST, "--save", model)  # fmt: skip
    assert rc == 0, err
    net = ann.load(model)
    mean, scale = recorded_scaling(net)
    assert net.metadata["feature_names"] == features
    rc, out, err = run_main(capsys, "predict", model, "--data", tmp_path / "f.parquet")
    assert rc == 0, err
    rows = list(csv.reader(out.splitlines()))
    classes = np.array(net.metadata["classes"])
    assert rows[0] == ["species"]
    np.testing.assert_array_equal(
        [r[0] for r in rows[1:]], classes[net.predict_classes((X - mean) / scale)]
    )


def test_parquet_without_pyarrow_names_what_to_install(tmp_path, capsys, monkeypatch):
    (tmp_path / "f.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setattr(ann.NN, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    rc, _, err = run_main(capsys, "train", "--data", tmp_path / "f.parquet", "--target", "y")
    one_line_error(rc, err, "needs pyarrow", "pip install 'anyarray_nn[parquet]'")


def test_headerless_csv_by_position_and_predict_ignoring_its_label_column(tmp_path, capsys):
    X = iris()[0]
    path = iris_csv(tmp_path / "raw.csv", label_first=True)
    path.write_text(path.read_text().split("\n", 1)[1])  # drop the header row
    model = tmp_path / "m.safetensors"
    rc, out, err = run_main(capsys, "train", "--data", path, "--target", "0", "--layers", "8",
                            "--epochs", "5", *FAST, "--save", model)  # fmt: skip
    assert rc == 0, err
    net = ann.load(model)
    assert net.metadata["data"]["header"] is False and net.metadata["feature_names"] is None
    assert net.metadata["target"] == "0"
    mean, scale = recorded_scaling(net)
    rc, out, err = run_main(capsys, "predict", model, "--data", path)  # 5 columns, label first
    assert rc == 0, err
    classes = np.array(net.metadata["classes"])
    assert out.splitlines()[1:] == list(classes[net.predict_classes((X - mean) / scale)])
    assert out.splitlines()[0] == "0"  # the label column's name: its position


def test_regression_from_a_csv(tmp_path, capsys):
    X, y = datasets.make_runge(300, seed=2)
    write_csv(tmp_path / "r.csv", ["x", "y"], [[a, b] for a, b in zip(X[:, 0], y, strict=True)])
    model = tmp_path / "r.npz"
    rc, out, err = run_main(capsys, "train", "--data", tmp_path / "r.csv", "--target", "y",
                            "--layers", "32,32", "--epochs", "60", "--lr", "3e-3", *FAST,
                            "--save", model)  # fmt: skip
    assert rc == 0, err
    net = ann.load(model)
    assert net.metadata["task"] == "regression" and net.metadata["classes"] is None
    mean, scale = recorded_scaling(net)
    rc, out, err = run_main(capsys, "evaluate", model)
    assert rc == 0, err
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    pred = net.predict((X_test - mean) / scale)[:, 0]
    assert table_value(out, "r2") == pytest.approx(r2_score(y_test, pred), abs=5e-5)
    rc, out, err = run_main(capsys, "predict", model, "--data", tmp_path / "r.csv")
    assert rc == 0, err
    written = np.array([float(v) for v in out.splitlines()[1:]])
    np.testing.assert_allclose(written, net.predict((X - mean) / scale)[:, 0], rtol=1e-6)


def test_csv_parsing_matches_numpy(tmp_path):
    """Quotes, a byte-order mark, blank lines and blanks around numbers, read like NumPy's
    independent (pure Python) genfromtxt reads them."""
    text = '\ufeffa,"b, with comma",label\n1.5, 2,x\n\n-3e-2,4.25,"y, z"\n7,  8,x\n'
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    table = tabular.open_table(tmp_path / "t.csv")
    assert table.header and table.names == ["a", "b, with comma", "label"]
    expected = np.genfromtxt(tmp_path / "t.csv", delimiter=",", skip_header=1, usecols=(0, 1))
    np.testing.assert_array_equal(table.numeric([0, 1]), expected)
    np.testing.assert_array_equal(table.labels(2), ["x", "y, z", "x"])
    (tmp_path / "na.csv").write_text("x,region\n1,NA\n2,EU\n")  # "NA" is a class here
    np.testing.assert_array_equal(tabular.open_table(tmp_path / "na.csv").labels(1), ["NA", "EU"])
    (tmp_path / "t.tsv").write_text("1\t2\tb\n3\t4\ta\n")
    table = tabular.open_table(tmp_path / "t.tsv")
    assert not table.header and table.names is None and table.column("-1") == 2
    np.testing.assert_array_equal(table.numeric([0, 1]), [[1, 2], [3, 4]])


# -- evaluate MODEL alone ----------------------------------------------------------------------


def test_evaluate_alone_uses_the_recorded_split_of_a_builtin_set(tmp_path, capsys):
    model = tmp_path / "iris.safetensors"
    rc, _, err = run_main(capsys, "train", "--data", "iris", "--test-size", "0.3", "--data-seed",
                          "3", "--layers", "8", "--epochs", "10", "--lr", "1e-2", *FAST,
                          "--save", model)  # fmt: skip
    assert rc == 0, err
    rc, out, err = run_main(capsys, "evaluate", model)
    assert rc == 0, err
    _, X_test, _, y_test = datasets.load_iris(split=True, test_size=0.3, seed=3)
    net = ann.load(model)
    assert "45 samples" in out
    expected = accuracy_score(y_test, net.predict_classes(X_test))
    assert table_value(out, "accuracy") == pytest.approx(expected, abs=5e-5)
    # the recorded scaling makes raw iris rows predictable too
    raw = write_csv(tmp_path / "raw.csv", None, load_iris().data.tolist())
    rc, out, err = run_main(capsys, "predict", model, "--data", raw)
    X_scaled = datasets.load_iris(scale=False)[0]
    mean, scale = recorded_scaling(net)
    assert rc == 0 and out.splitlines()[1:] == [
        str(c) for c in net.predict_classes((X_scaled - mean) / scale)
    ]


def test_evaluate_alone_warns_when_the_training_file_changed(tmp_path, capsys):
    path = iris_csv(tmp_path / "f.csv")
    model = tmp_path / "m.npz"
    args = ["--target", "species", "--layers", "4", "--epochs", "1", *FAST, "--save", model]
    assert run_main(capsys, "train", "--data", path, *args)[0] == 0
    path.write_text(path.read_text().replace("5.1,3.5", "5.2,3.5", 1))
    rc, out, err = run_main(capsys, "evaluate", model)
    assert rc == 0 and "has changed since" in err and "30 samples" in out
    path.unlink()
    one_line_error(*run_main(capsys, "evaluate", model)[::2], "not there any more", "--data")


# -- errors: one line, exit 2, before any training -----------------------------------------------

HEADER = "a,b,species\n"


@pytest.mark.parametrize(
    "content, argv, fragments",
    [
        (HEADER + "1,2,x\n3,4,y\n", ["--target", "nope"],
         ["has no column 'nope'", "its columns are a, b, species"]),
        ("a,color,city,species\n1,red,Oslo,x\n2,blue,Rome,y\n", ["--target", "species"],
         ["feature columns 'color', 'city' are not numeric", "line 2 has 'red'",
          "pandas.get_dummies"]),
        (HEADER + "1,2,x\n3,4,y\n5,,x\n6,7,y\n", ["--target", "species"],
         ["line 4: column 'b' is missing a value", "dropna"]),
        (HEADER + "1,2,x\n3,nan,y\n", ["--target", "species"], ["line 3: column 'b'"]),
        ("", ["--target", "0"], ["is empty"]),
        (HEADER, ["--target", "species"], ["header row but no data rows"]),
        (HEADER + "1,2,x\n3,4\n", ["--target", "species"], ["line 3 has 2 fields", "quote"]),
        (HEADER + "1,2,x\n3,4,\n", ["--target", "species"],
         ["line 3: the label column 'species' is empty"]),
        (HEADER + "1,2,x\n3,4,y\n", [], ["--target is required", "--target -1"]),
        (HEADER + "1,2,x\n3,4,x\n", ["--target", "species"], ["nothing to learn"]),
        (HEADER + "1,2,x\n3,4,y\n", ["--target", "species", "--task", "regression"],
         ["needs numeric labels"]),
        ("1,2,3\n4,5,6\n", ["--target", "9"], ["no column 9", "from 0 to 2"]),
    ],
    ids=["no-such-column", "words", "missing", "nan", "empty", "header-only", "ragged",
         "no-label", "no-target", "one-class", "text-regression", "index-out-of-range"],
)  # fmt: skip
def test_data_file_errors_are_one_line(tmp_path, capsys, monkeypatch, content, argv, fragments):
    (tmp_path / "d.csv").write_text(content)
    monkeypatch.setattr(ann.NN, "fit", lambda *a, **k: pytest.fail("trained anyway"))
    rc, _, err = run_main(capsys, "train", "--data", tmp_path / "d.csv", *argv, *FAST)
    one_line_error(rc, err, *fragments)


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["train", "--data", "iris", "--target", "species"], ["--target applies to --data FILE"]),
        (["train", "--data", "data.txt"], ["unknown dataset 'data.txt'", ".csv, .tsv"]),
        (["train", "--data", "missing.csv", "--target", "y"], ["no such file: 'missing.csv'"]),
        (["predict", "m.npz", "--data", "iris"], ["reads the rows of a data file"]),
        (["predict", "m.npz", "--data", "x.csv", "--out", "p.txt"], ["*.csv or *.npy"]),
        (["predict", "m.npz", "--data", "x.csv", "--out", "/no/such/dir/p.csv"],
         ["does not exist"]),
    ],
)  # fmt: skip
def test_argument_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, fragments):
    monkeypatch.chdir(tmp_path)
    one_line_error(*run_main(capsys, *argv)[::2], *fragments)


@pytest.fixture
def iris_model(tmp_path, capsys) -> Path:
    """A small model trained on an iris CSV with a header and string labels."""
    iris_csv(tmp_path / "flowers.csv")
    model = tmp_path / "m.safetensors"
    rc, _, err = run_main(capsys, "train", "--data", tmp_path / "flowers.csv", "--target",
                          "species", "--layers", "4", "--epochs", "1", *FAST,
                          "--save", model)  # fmt: skip
    assert rc == 0, err
    return model


def test_model_and_data_mismatches_are_one_line(tmp_path, capsys, iris_model):
    X, labels, features = iris()
    rows = [[*x, s] for x, s in zip(X, labels, strict=True)]
    rose = write_csv(tmp_path / "rose.csv", [*features, "species"], [[*X[0], "rose"], *rows])
    extra = write_csv(tmp_path / "extra.csv", [*features, "id"], [[*x, 1] for x in X])
    lacking = write_csv(tmp_path / "lacking.csv", features[1:], X[:, 1:].tolist())
    wide = write_csv(tmp_path / "wide.csv", None, [[*x, 0, 1] for x in X])
    cases = [
        (["evaluate", iris_model, "--data", rose], ["the label 'rose' is not one of the model's"]),
        (["predict", iris_model, "--data", extra], ["column(s) 'id' that the model was not"]),
        (["predict", iris_model, "--data", lacking], ["lacks the feature column(s)"]),
        (["predict", iris_model, "--data", wide], ["has 6 columns", "takes 4 features"]),
    ]
    for argv, fragments in cases:
        one_line_error(*run_main(capsys, *argv)[::2], *fragments)
    reordered = write_csv(tmp_path / "r.csv", features[::-1], X[:, ::-1].tolist())
    rc, by_name, _ = run_main(capsys, "predict", iris_model, "--data", reordered)
    assert rc == 0
    assert by_name == run_main(capsys, "predict", iris_model, "--data", tmp_path / "flowers.csv")[1]


def test_a_model_without_a_record_needs_data(tmp_path, capsys):
    model = tmp_path / "plain.safetensors"
    ann.NN([4, 5, 3], backend="numpy", seed=0).save(model)
    one_line_error(*run_main(capsys, "evaluate", model)[::2], "does not record", "--data")
    runge = tmp_path / "reg.safetensors"
    ann.NN([1, 4, 1], output="identity", loss="mse", backend="numpy", seed=0).save(runge)
    (tmp_path / "x.csv").write_text("0.5\n0.25\n")
    rc, _, err = run_main(capsys, "predict", runge, "--data", tmp_path / "x.csv", "--proba")
    one_line_error(rc, err, "regressor", "no probabilities")


def test_the_readme_round_trip_runs_as_written(tmp_path, capsys, monkeypatch):
    """Every command of the README's "Your own data" block, on iris CSVs of those names."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Your own data") :]
    block = re.search(r"```bash\n(.*?)\n```", section, flags=re.S).group(1)
    commands = [line.split("#")[0] for line in block.replace("\\\n", " ").splitlines()]
    monkeypatch.chdir(tmp_path)
    iris_csv(tmp_path / "flowers.csv")
    iris_csv(tmp_path / "more-flowers.csv")
    write_csv(tmp_path / "new-flowers.csv", iris()[2], iris()[0][::10].tolist())
    assert [c.split()[1] for c in commands] == [
        "train",
        "evaluate",
        "evaluate",
        "predict",
        "predict",
    ]
    for command in commands:
        rc, _, err = run_main(capsys, *shlex.split(command)[1:])
        assert rc == 0, (command, err)
    assert np.load(tmp_path / "proba.npy").shape == (15, 3)
    with open(tmp_path / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["species"] and set(r[0] for r in rows[1:]) <= set(iris()[1])


def test_many_whole_number_labels_default_to_regression_and_say_why(tmp_path, capsys):
    """60 distinct whole numbers in 60 rows: no classifier learns one row per class."""
    rows = [[i / 10, 100 + i] for i in range(60)]  # 60 distinct whole numbers
    write_csv(tmp_path / "n.csv", ["x", "count"], rows)
    argv = ["train", "--data", tmp_path / "n.csv", "--target", "count", "--layers", "4",
            "--epochs", "1", *FAST]  # fmt: skip
    rc, out, err = run_main(capsys, *argv)
    assert rc == 0 and err == "", err
    line = out.splitlines()[0]
    assert line.startswith("task: regression of 'count': 60 distinct whole numbers in 60 rows")
    assert "--task classification" in line
    rc, out, _ = run_main(capsys, *argv, "--task", "classification")
    assert rc == 0 and not out.startswith("task:") and "accuracy" in out  # a classifier


def test_a_regressor_evaluated_on_a_new_file_of_whole_numbers(tmp_path, capsys):
    """The task is the model's, not a guess from the new file's labels."""
    rows = [[i / 50, i / 25 + 0.5] for i in range(50)]
    write_csv(tmp_path / "r.csv", ["x", "y"], rows)
    model = tmp_path / "r.npz"
    argv = ["--target", "y", "--layers", "4", "--epochs", "1", *FAST, "--save", model]
    assert run_main(capsys, "train", "--data", tmp_path / "r.csv", *argv)[0] == 0
    write_csv(tmp_path / "whole.csv", ["x", "y"], [[1, 2], [2, 4], [3, 6]])
    rc, out, err = run_main(capsys, "evaluate", model, "--data", tmp_path / "whole.csv")
    assert rc == 0 and "r2" in out, err
    one_line_error(*run_main(capsys, "evaluate", model, "--data", "iris", "--target", "y")[::2],
                   "apply to --data FILE")  # fmt: skip


# -- scikit-learn's own CSVs, and which task a file's labels mean --------------------------------
SKLEARN_DATA = Path(datasets_module.__file__).parent / "data"


@pytest.mark.parametrize(
    ("name", "load", "n_classes"),
    [("wine_data.csv", load_wine, 3), ("breast_cancer.csv", load_breast_cancer, 2)],
)
def test_sklearn_bundled_csv_trains_evaluates_and_predicts_with_skip_rows(
    tmp_path, capsys, monkeypatch, name, load, n_classes
):
    """Their first line is a count header: without --skip-rows the error says to use it; with
    it, train, evaluate (the recorded split) and predict (the setting reused) all run."""
    data = tmp_path / name
    data.write_bytes((SKLEARN_DATA / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_main(capsys, "train", "--data", data, "--target", "-1", *FAST)
    one_line_error(rc, err, "line 2 has", "--skip-rows 1")
    rc, out, err = run_main(capsys, "train", "--data", data, "--skip-rows", "1", "--target", "-1",
                            "--layers", "16", "--epochs", "60", "--lr", "0.01", "--save", "m.npz", *FAST)  # fmt: skip
    assert rc == 0, err
    assert out.splitlines()[0].startswith("task: classification")
    assert f"{n_classes} classes" in out.splitlines()[0]
    rc, out, err = run_main(capsys, "evaluate", "m.npz")
    assert rc == 0 and "held-out test split" in out, err
    rc, _, err = run_main(capsys, "predict", "m.npz", "--data", data, "--out", "p.csv")
    assert rc == 0, err
    with open("p.csv", newline="") as handle:
        predicted = np.array([int(float(r[0])) for r in list(csv.reader(handle))[1:]])
    target = load().target
    assert len(predicted) == len(target)
    assert accuracy_score(target, predicted) > 0.9  # against scikit-learn's own labels


@pytest.mark.parametrize("written", ["decimals", "whole"])
def test_diabetes_csv_trains_as_regression_by_default(tmp_path, capsys, written):
    """The diabetes target as pandas writes it (151.0) or as integers (214 distinct values in
    442 rows): regression either way, with one line saying why."""
    X, y = load_diabetes(return_X_y=True)
    cells = [f"{v:.1f}" if written == "decimals" else str(int(v)) for v in y]
    write_csv(tmp_path / "d.csv", [f"x{i}" for i in range(10)] + ["target"],
              [[*x, c] for x, c in zip(X.tolist(), cells, strict=True)])  # fmt: skip
    rc, out, err = run_main(capsys, "train", "--data", tmp_path / "d.csv", "--target", "target",
                            "--layers", "8", "--epochs", "1", *FAST)  # fmt: skip
    assert rc == 0, err
    reason = "written as decimals" if written == "decimals" else "214 distinct whole numbers"
    assert out.splitlines()[0].startswith("task: regression of 'target'") and reason in out


def test_integer_coded_and_named_classes_stay_classes(tmp_path, capsys):
    X, y = load_wine(return_X_y=True)
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    for labels, reason in ((y, "whole numbers, 3 classes"), (names, "text")):
        rows = [[*x, c] for x, c in zip(X.tolist(), labels.tolist(), strict=True)]
        write_csv(tmp_path / "w.csv", None, rows)
        rc, out, err = run_main(capsys, "train", "--data", tmp_path / "w.csv", "--target", "-1",
                                "--layers", "8", "--epochs", "1", *FAST)  # fmt: skip
        assert rc == 0, err
        assert out.splitlines()[0].startswith("task: classification") and reason in out


def test_activation_help_lists_only_what_a_hidden_layer_takes(capsys):
    _, out, _ = run_main(capsys, "train", "--help")
    help_text = " ".join(out.split())
    listed = re.search(r"--activation ACTIVATION .*?any of ([\w, ]+)\)", help_text).group(1)
    assert "softmax" not in listed and "relu" in listed
    rc, _, err = run_main(capsys, "train", "--data", "iris", "--activation", "softmax", *FAST)
    one_line_error(rc, err, "'softmax' is an output activation, not a hidden one", "tanh")
