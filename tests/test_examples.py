"""Every script in examples/ runs in its fast mode on NumPy and returns sane numbers.

Each example is imported by path (examples/ is not a package) and its ``main(fast=True,
backend="numpy")`` is called; the assertions check the result dict, not the exact numbers, except
where the write-up's claim is reachable even in the fast settings (the toy fits, the torch match).
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import cli_env

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = [
    "iris_adagrad",
    "grid_search_momentum",
    "toy_fits",
    "runge_regression",
    "optimizer_cost",
    "regularization_sweep",
    "init_comparison",
    "dropout_digits",
    "fashion_mnist",
]
HAS_TORCH = importlib.util.find_spec("torch") is not None


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fraction(x: float) -> bool:
    return 0.0 <= x <= 1.0


@pytest.mark.parametrize("name", EXAMPLES)
def test_cli_matches_main(name: str) -> None:
    """Every example has the common flags, and each CLI option is a parameter of main()."""
    module = load(name)
    args = module.build_parser().parse_args(["--fast", "--backend", "numpy", "--plot", "x.png"])
    assert args.fast is True and args.backend == "numpy" and args.plot == "x.png"
    assert module.build_parser().parse_args([]).backend == "auto"
    params = inspect.signature(module.main).parameters
    assert set(vars(args)) <= set(params)
    assert params["backend"].default == "auto" and params["fast"].default is False


def test_runs_as_a_script() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / "iris_adagrad.py"), "--fast", "--backend", "numpy"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "write-up" in out and "0.9722" in out


def test_iris_adagrad() -> None:
    r = load("iris_adagrad").main(fast=True, backend="numpy")
    assert r["backend"] == "numpy" and r["n_folds"] == 5
    assert 0.8 <= r["final_val_accuracy_mean"] <= 1.0
    assert (
        r["final_val_accuracy_min"] <= r["final_val_accuracy_mean"] <= r["best_val_accuracy_mean"]
    )
    assert fraction(r["logreg_val_accuracy_mean"]) and r["seconds"] > 0


def test_grid_search_momentum(tmp_path: Path) -> None:
    plot = tmp_path / "grid.png"
    r = load("grid_search_momentum").main(fast=True, backend="numpy", plot=str(plot))
    assert plot.stat().st_size > 0
    for key in ("write_up_grid_MSE", "sensible_grid_MSE", "sensible_grid_cross_entropy"):
        assert all(fraction(v) for row in r[key]["scores"] for v in row)
    # even 20 epochs on one fold beat the write-up's 0.5833 with a sensible learning rate
    assert r["sensible_grid_cross_entropy"]["best_val_accuracy"] >= 0.9
    assert r["write_up_grid_MSE"]["best_lr"] == 1e-3


def test_toy_fits(tmp_path: Path) -> None:
    r = load("toy_fits").main(fast=True, backend="numpy", plot=str(tmp_path / "toy.png"))
    assert r["doughnut"]["best"] >= 0.99  # "fits fully" with 3 sigmoid units even in fast mode
    assert r["squares"]["best"] >= 0.95
    assert fraction(r["squares_no_gap"]["best"])
    assert (tmp_path / "toy_doughnut.png").stat().st_size > 0
    assert (tmp_path / "toy_squares.png").stat().st_size > 0


def test_runge_regression() -> None:
    r = load("runge_regression").main(fast=True, backend="numpy")
    assert 0.5 < r["r2_noisy_ceiling"] < 0.95  # noise std 0.1 caps R^2 on noisy targets
    assert r["ours_r2_noisy"] <= r["r2_noisy_ceiling"] + 0.05
    assert r["ours_r2_clean"] > 0.9
    for key in ("sklearn_r2_noisy", "sklearn_r2_clean", "ours_r2_noise_free_training"):
        assert math.isfinite(r[key])
    assert r["ours_seconds"] > 0 and r["sklearn_seconds"] > 0
    assert r["time_ratio_ours_over_sklearn"] > 0


def test_optimizer_cost() -> None:
    r = load("optimizer_cost").main(fast=True, backend="numpy")
    assert r["sgd"]["ratio_vs_sgd"] == 1.0
    for name in ("sgd", "rmsprop", "adam"):
        assert r[name]["ms_per_epoch"] > 0 and r[name]["step_us"] > 0
        assert math.isfinite(r[name]["final_loss"]) and math.isfinite(r[name]["final_r2"])
        assert math.isfinite(r[name]["ratio_vs_sgd"]) and r[name]["ratio_vs_sgd"] > 0


def test_regularization_sweep() -> None:
    r = load("regularization_sweep").main(fast=True, backend="numpy")
    assert len(r["runs"]) == 4
    for run in r["runs"]:
        assert math.isfinite(run["final_loss"]) and fraction(run["test_accuracy"])
    if HAS_TORCH:
        assert r["max_abs_diff_vs_torch"] < 1e-10  # same weights, batch, optimizer: same curve
    else:
        assert r["max_abs_diff_vs_torch"] is None


def test_init_comparison(tmp_path: Path) -> None:
    r = load("init_comparison").main(fast=True, backend="numpy", plot=str(tmp_path / "i.png"))
    for arch in ("64-128-10", "64-128-64-10"):
        for v in r[arch].values():
            assert fraction(v["test_accuracy"]) and fraction(v["dead_fraction"])
    # He beats a tiny N(0, 0.01^2) init in the 2-hidden-layer net, even after 5 epochs
    deep = r["64-128-64-10"]
    assert deep["he_normal"]["test_accuracy"] > deep["normal_0.01"]["test_accuracy"] + 0.2
    dying = r["dying_relu_lr0.1"]
    assert dying["normal_1"]["dead_fraction"] >= dying["he_normal"]["dead_fraction"]


def test_dropout_digits() -> None:
    r = load("dropout_digits").main(fast=True, backend="numpy")
    for regime in ("short", "converged"):
        for rate in (0.0, 0.2, 0.5):
            v = r[regime][f"dropout_{rate}"]
            assert 0.5 < v["test_accuracy"] <= 1.0 and fraction(v["train_accuracy"])


def test_fashion_mnist() -> None:
    module = load("fashion_mnist")
    r = module.main(fast=True, backend="numpy")
    if r["skipped"]:
        pytest.skip(f"Fashion-MNIST absent: {r['reason']}")
    fm = r["fashion_mnist"]
    assert fm["n_train"] == 2000 and fm["n_test"] == 1000
    assert 0.5 < fm["test_accuracy"] <= 1.0
    assert len(fm["test_accuracy_per_epoch"]) == r["epochs"]


def test_fashion_mnist_mnist_dir_path() -> None:
    """--mnist-dir reads any MNIST-format directory; Fashion-MNIST stands in for MNIST here."""
    module = load("fashion_mnist")
    from anyarray_nn.datasets import FASHION_MNIST_DIR

    if not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip("Fashion-MNIST absent")
    r = module.main(fast=True, backend="numpy", mnist_dir=FASHION_MNIST_DIR, epochs=1)
    assert fraction(r["mnist"]["test_accuracy"])


def test_fashion_mnist_skips_cleanly_without_data(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("fashion_mnist")
    from anyarray_nn.datasets import DatasetNotFoundError

    def missing() -> None:
        raise DatasetNotFoundError("Fashion-MNIST: directory /nowhere does not exist.")

    monkeypatch.setattr(module, "load_fashion_mnist", missing)
    r = module.main(fast=True, backend="numpy")
    assert r["skipped"] is True and "/nowhere" in r["reason"]


def test_fashion_mnist_without_data_exits_with_how_to_get_it(tmp_path: Path) -> None:
    """Run as a script with no data, it exits non-zero with one line on how to get the data."""
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES_DIR / "fashion_mnist.py"),
            "--fast",
            "--backend",
            "numpy",
            "--data-dir",
            str(tmp_path / "nowhere"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    message = proc.stderr.strip()
    assert "\n" not in message and str(tmp_path / "nowhere") in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir DIR" in message
    assert "path=" not in message


def test_results_md_lists_every_example() -> None:
    text = (EXAMPLES_DIR / "RESULTS.md").read_text()
    for name in EXAMPLES:
        assert f"examples/{name}.py" in text, name


def test_results_md_is_what_make_results_writes() -> None:
    """RESULTS.md is examples/make_results.py's output: it says so at its top, it is in the
    script's format (parsed and rendered again, it is the same text), and the script runs
    every example there is, so neither the file nor the script's list can go stale."""
    module = load("make_results")
    text = (EXAMPLES_DIR / "RESULTS.md").read_text()
    assert text.splitlines()[2] == module.NOTICE
    runs, machine = module.parse(text)
    names = [name for name, _ in module.EXAMPLES]
    assert [run.name for run in runs] == names
    assert module.render(runs, machine) == text
    scripts = {p.stem for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_")}
    assert scripts - {"make_results"} == set(names) and set(EXAMPLES) <= set(names)
    assert all("(exit" not in run.wall and run.output for run in runs), "an example failed"


MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")


@pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or not Path(MPIEXEC).exists(),
    reason="mpi4py or mpiexec missing (pip install 'anyarray_nn[mpi]')",
)
def test_distributed_runs_under_mpiexec_and_equals_one_process(tmp_path: Path) -> None:
    """examples/distributed.py on 2 ranks: it says so first, rank 0 alone prints, and the test
    accuracy is the one-process run's (same global batch: the same training)."""
    env = cli_env(OMP_NUM_THREADS="1")
    script = str(EXAMPLES_DIR / "distributed.py")
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, script, "--epochs", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ranks: 2 ") and proc.stdout.count("test accuracy") == 1
    accuracy = float(lines[-1].split()[2])
    reference = load("distributed").main(epochs=3)["accuracy"]
    assert accuracy == pytest.approx(reference, abs=1e-4)  # printed to 4 decimals
