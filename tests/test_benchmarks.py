"""Smoke tests of the benchmark harness in ``benchmarks/``.

Every contender trains on a tiny problem from the shared initial weights; the hand-written NumPy
loop (the benchmark's floor) is checked against anyarray_nn as an independent implementation of
the same math; FLOP counting matches its closed form; the memory subprocess and the runner work
end to end. A few seconds in all.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from anyarray_nn.random import STREAM_SHUFFLE, host_rng  # noqa: E402
from benchmarks import common, flops, memory, run  # noqa: E402
from benchmarks import contenders as C  # noqa: E402

HEADLINE = [784, 128, 64, 10]


def _problem(dtype=np.float32, task="classification", activation="relu", **kw) -> C.Problem:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 20)).astype(dtype)
    if task == "classification":
        y = np.argmax(X @ rng.standard_normal((20, 4)), axis=1).astype(np.int64)
        sizes = [20, 32, 16, 4]
    else:
        y = np.sin(X[:, :3].sum(axis=1)).astype(dtype)
        sizes = [20, 32, 16, 1]
    args = {"batch_size": 64, "epochs": 3, "lr": 1e-2, **kw}
    return C.Problem(X, y, sizes, activation=activation, task=task, **args)


# -- FLOPs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n, sizes, batch",
    [
        (60_000, HEADLINE, 1024),
        (60_000, HEADLINE, 128),
        (1000, [1, 100, 100, 1], 200),
        (150, [4, 16, 3], 16),
        (777, [5, 7], 100),
        (10, [3, 4, 5, 6, 2], 64),
    ],
)
def test_epoch_flops_match_the_closed_form(n, sizes, batch):
    # 2 n (3 sum(in*out) - in_1*out_1): three GEMMs per layer, no input gradient for layer 1
    macs = sum(a * b for a, b in itertools.pairwise(sizes))
    expected = 2 * n * (3 * macs - sizes[0] * sizes[1])
    assert flops.epoch_flops(n, sizes, batch) == expected == flops.closed_form_flops(n, sizes)


def test_headline_flop_counts():
    assert flops.epoch_flops(60_000, HEADLINE, 1024) == 27_264_000_000
    # the "about 39.3 GFLOP" also counts the first layer's input gradient
    assert flops.closed_form_flops(60_000, HEADLINE, first_layer_dx=True) == 39_306_240_000
    gemms = flops.epoch_gemms(60_000, HEADLINE, 1024)
    assert {(g.m, g.count) for g in gemms if g.role == "fwd"} == {(1024, 58), (608, 1)}
    assert not [g for g in gemms if g.role == "dX" and g.layer == 1]
    assert len(gemms) == 2 * (3 * 3 - 1)


def test_gemm_timing_and_gemm_only_contender():
    gemms = flops.epoch_gemms(300, [20, 8, 3], 128)
    rows = flops.time_gemms(gemms, block_s=1e-4, blocks=2)
    assert len(rows) == len(gemms) and all(r["gflops"] > 0 for r in rows)
    problem = _problem(epochs=1, batch_size=100)  # 512 rows: 5 full batches and one of 12
    expected = flops.epoch_gemms(problem.n, problem.sizes, problem.batch_size)
    for by_shape in (True, False):
        trial = flops.GemmOnly(by_shape).prepare(problem)
        calls = [(a.shape, b.shape) for count, group in trial.plan for a, b, _ in group * count]
        assert sorted(calls) == sorted(
            ((g.m, g.k), (g.k, g.n)) for g in expected for _ in range(g.count)
        )
        assert math.isnan(trial.run())


# -- every contender trains ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(C.CONTENDERS))
def test_contender_trains_from_the_shared_weights(name):
    contender = C.by_name(name)
    reason = contender.available()
    if reason:
        pytest.skip(reason)
    problem = _problem()
    before = C.cross_entropy(problem.new_net().predict(problem.X), problem.y)
    trial = contender.prepare(problem)
    # every contender starts from anyarray_nn's initial weights
    start = C.cross_entropy(trial.predict(problem.X), problem.y)
    assert start == pytest.approx(before, rel=1e-4)
    loss = trial.run()
    assert math.isfinite(loss)
    after = C.cross_entropy(trial.predict(problem.X), problem.y)
    assert after < 0.8 * before, (name, before, after)


def test_sklearn_keeps_float32_and_runs_the_requested_epochs():
    problem = _problem(epochs=2)
    trial = C.Sklearn().prepare(problem)
    trial.run()
    assert trial.info["compute_dtype"] == "float32"
    assert trial.info["n_iter"] == 2 and trial.info["t"] == 2 * problem.n


def test_regression_contenders_train():
    problem = _problem(task="regression", activation="tanh")
    for name in ("ours", "sklearn", "numpy-loop", "torch", "jax-loop"):
        contender = C.by_name(name)
        if contender.available():
            continue
        trial = contender.prepare(problem)
        err0 = np.mean((trial.predict(problem.X)[:, 0] - problem.y) ** 2)
        trial.run()
        err1 = np.mean((trial.predict(problem.X)[:, 0] - problem.y) ** 2)
        assert err1 < err0, name


@pytest.mark.parametrize("task, activation", [("classification", "relu"), ("regression", "tanh")])
def test_jax_loop_trains_like_the_numpy_loop(task, activation):
    """The hand-written JAX anchor is the same recipe as the hand-written NumPy loop (same
    weights, shuffle orders and Adam): after 3 epochs, 24 steps with a last partial batch each
    epoch, in float64, the two agree to rounding."""
    pytest.importorskip("jax")
    from conftest import enable_jax_x64

    enable_jax_x64()
    problem = _problem(np.float64, task, activation, batch_size=100)
    trial = C.JaxLoop().prepare(problem)
    trial.run()
    mlp = C.NumpyMLP(problem.initial_weights(), activation, task, lr=problem.lr)
    mlp.fit(problem.X, problem.y, problem.epochs, problem.batch_size, seed=problem.seed)
    assert trial.t == mlp.t == 3 * 6
    for a, b in zip(trial.params, mlp.params, strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-9, atol=1e-11)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras's own
@pytest.mark.parametrize("task, activation", [("classification", "relu"), ("regression", "tanh")])
def test_keras_contender_trains_like_the_numpy_loop(task, activation):
    """Keras 3 on JAX (optional) computes the same function as the hand-written NumPy loop:
    same weights, batches in order (Keras's shuffle switched off), 3 epochs of 6 steps with a
    partial last batch, in float64. Keras adds Adam's epsilon before the bias correction and
    torch after it, so with a vanishing epsilon the weights agree to 1e-5 (measured 4e-7:
    Keras keeps its learning rate in float32), and with the benchmark's 1e-8 the last
    epoch's loss agrees to 1e-4."""
    reason = C.KerasJax().available()
    if reason:
        pytest.skip(reason)
    from conftest import enable_jax_x64

    enable_jax_x64()
    problem = _problem(np.float64, task, activation, batch_size=100)
    for eps, tol in ((1e-30, 1e-5), (1e-8, None)):
        trial = C.KerasJax(epsilon=eps).prepare(problem)
        loss = trial.run(shuffle=False)
        mlp = C.NumpyMLP(problem.initial_weights(), activation, task, lr=problem.lr, eps=eps)
        ref = mlp.fit(problem.X, problem.y, problem.epochs, problem.batch_size,
                      order=lambda epoch: np.arange(problem.n))  # fmt: skip
        assert loss == pytest.approx(ref, rel=1e-4)
        if tol is not None:
            for a, b in zip(trial.model.get_weights(), mlp.params, strict=True):
                np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.max(np.abs(b)))


# -- the NumPy loop is the same math as anyarray_nn -------------------------------------------------
@pytest.mark.parametrize("task, activation", [("classification", "relu"), ("regression", "tanh")])
def test_numpy_loop_first_step_gradients_match_anyarray_nn(task, activation):
    problem = _problem(np.float64, task, activation)
    net = problem.new_net()
    xb, yb = problem.X[:64], problem.y[:64]
    ours = net.gradients(xb, yb)
    mlp = C.NumpyMLP(problem.initial_weights(), activation, task)
    target = yb if task == "classification" else yb.reshape(-1, 1)
    loop = mlp.gradients(xb, target)
    assert [g.shape for g in loop] == [g.shape for g in ours]
    for a, b in zip(ours, loop, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)
    # and the loss the loop reports is anyarray_nn's (summed over the batch)
    assert mlp.backward(xb, target) / len(xb) == pytest.approx(net.loss(xb, yb), rel=1e-10)


@pytest.mark.parametrize("task, activation", [("classification", "relu"), ("regression", "tanh")])
def test_numpy_loop_epochs_match_anyarray_nn_fit(task, activation):
    # same weights, same shuffle order: two epochs of Adam end in the same weights
    problem = _problem(np.float64, task, activation, batch_size=100)  # a ragged last batch
    net = problem.new_net()
    history = net.fit(
        problem.X, problem.y, epochs=2, batch_size=100, optimizer="adam", lr=1e-2, metrics=[]
    )
    mlp = C.NumpyMLP(problem.initial_weights(), activation, task, lr=1e-2)
    loss = mlp.fit(
        problem.X,
        problem.y,
        epochs=2,
        batch_size=100,
        order=lambda e: host_rng(problem.seed, STREAM_SHUFFLE, e).permutation(problem.n),
    )
    for a, b in zip(net.get_weights(), mlp.params, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert loss == pytest.approx(history["loss"][-1], rel=1e-9)


# -- harness pieces ---------------------------------------------------------------------------------
class _Recorder(C.Contender):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def prepare(self, problem):
        log, name = self.log, self.name

        class T(C.Trial):
            def __init__(self):
                self.info = {}

            def run(self):
                log.append(name)
                return 1.0

        return T()


def test_alternate_warms_up_then_rotates_the_order():
    log: list[str] = []
    cs = [_Recorder(n, log) for n in "abc"]
    timings = common.alternate(cs, _problem(), repeats=3)
    assert log == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(len(t.times) == 3 and t.losses == [1.0] * 3 for t in timings.values())
    assert common.ratio(timings["a"], timings["a"]) == (1.0, 1.0)


def test_synthetic_data_is_deterministic_float32():
    X1, y1 = common.make_data("synthetic", 300, seed=0)
    X2, y2 = common.make_data("synthetic", 300, seed=0)
    assert X1.dtype == np.float32 and X1.shape == (300, 784) and y1.dtype == np.int64
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert set(np.unique(y1)) <= set(range(10)) and len(np.unique(y1)) > 5


def test_memory_subprocess_reports_peak_and_epoch_rss():
    spec = {
        "contender": "ours",
        "data": "synthetic",
        "n": 400,
        "seed": 0,
        "sizes": [784, 16, 10],
        "batch_size": 128,
        "epochs": 2,
        "lr": 1e-3,
        "per_epoch": True,
    }
    res = memory.run_subprocess(spec, timeout=120)
    assert res["contender"] == "ours" and res["peak"] >= res["baseline"] > 0
    assert res["peak_delta"] >= 0 and len(res["epoch_rss"]) == 2
    assert math.isfinite(res["loss"])


def test_runner_end_to_end(tmp_path, capsys, monkeypatch):
    make_config = run.make_config

    def tiny(args):
        cfg = make_config(args)
        cfg.iris_epochs = 3
        return cfg

    monkeypatch.setattr(run, "make_config", tiny)
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    out = tmp_path / "r.json"
    argv = ["--quick", "--only", "iris", "--repeats", "1", "--threads", "1", "--out", str(out)]
    assert run.main(argv) == 0
    if torch:  # --threads is undone when main returns
        assert torch.get_num_threads() == threads
    text = capsys.readouterr().out
    assert "QUICK MODE" in text and "steps/s ours / sklearn" in text
    payload = json.loads(out.read_text())
    assert payload["config"]["quick"] and payload["config"]["threads"] == 1
    assert payload["cases"]["iris"]["steps"] == 3 * 10
    assert payload["machine"]["versions"]["numpy"] == np.__version__
    assert {t["status"] for t in payload["targets"]} <= {"PASS", "FAIL", "pass", "fail"}


def test_the_gpu_script_runs_on_the_cpu(tmp_path):
    """benchmarks/gpu.py (the GPU table in one run) cannot rot unnoticed: its dry run is the same
    code on torch's CPU."""
    pytest.importorskip("torch")
    from benchmarks import gpu

    out = tmp_path / "gpu.json"
    results = gpu.main(["--dry-run", "--out", str(out)])
    assert json.loads(out.read_text()) == results
    for table in results["batches"].values():
        assert table["torch-loop"]["vs_torch_loop"] == 1.0
        assert table["ours-torch-cpu"]["epoch_s"] > 0
        # fit(compile=True): timed where the library compiles on torch, else the reason
        compiled = table["ours-torch-cpu-compiled"]
        assert compiled.get("epoch_s", 0) > 0 or "compile" in compiled["not_available"]
        for name in gpu.GPU_ROWS:  # listed, with why they did not run
            assert table[name] == {"not_available": "no CUDA GPU (dry run on torch's CPU)"}


def test_around_steps_wraps_every_step_and_batch_gather():
    """The GPU sync checks switch their detector on around exactly the step function and the
    batch gather: counted here on the CPU."""
    import contextlib

    import anyarray_nn as ann
    from benchmarks.gpu import around_steps

    entered = [0]

    @contextlib.contextmanager
    def counting():
        entered[0] += 1
        yield

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((100, 5)), rng.integers(0, 3, 100)
    net = ann.NN([5, 4, 3], backend="numpy", seed=0)
    with around_steps(counting):
        net.fit(X, y, epochs=2, batch_size=25)
    assert entered[0] == 2 * 4 * 2  # epochs x steps x (gather + step)
    net.fit(X, y, epochs=1, batch_size=25)
    assert entered[0] == 16  # unwrapped again
