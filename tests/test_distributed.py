"""Data-parallel training on MPI: N ranks train to the numbers of one process, one allreduce per
step, and a failure on any rank ends every rank quickly with a message naming it.

Each test launches ``mpiexec -n N`` on a small script (written here) as a subprocess with a
timeout; the reference is the same training in this process, without MPI. Without mpi4py and
an ``mpiexec`` the tests skip with a reason.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env
from sklearn.datasets import load_digits

import anyarray_nn as ann
from anyarray_nn.distributed import Communicator, DistributedError, agreement, slice_of

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and Path(MPIEXEC).exists()
needs_mpi = pytest.mark.skipif(
    not HAVE_MPI, reason="mpi4py or mpiexec missing (pip install 'anyarray_nn[mpi]')"
)

#: the contract: 3 epochs of Adam with L2, dropout and clip_norm, a last partial batch
TRAINING = dict(epochs=3, batch_size=128, optimizer="adam", lr=0.01, clip_norm=1.0)
COMMON = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from mpi4py import MPI
    from sklearn.datasets import load_digits
    import anyarray_nn as ann

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    X, y = load_digits(return_X_y=True)
    X, y = X[:500] / 16.0, y[:500]
    TRAINING = dict(epochs=3, batch_size=128, optimizer="adam", lr=0.01, clip_norm=1.0)

    def network(dtype, hidden=(32, 16), seed=None):
        # a different seed on every rank: rank 0's weights must win
        return ann.NN([64, *hidden, 10], backend="numpy", dtype=dtype, dropout=0.2, l2=1e-3,
                      seed=(3 if seed is None else seed) + 100 * rank)

    def report(**values):
        # one file per rank: stdout lines of several ranks may interleave
        with open(f"report_{rank}.jsonl", "a") as out:
            out.write(json.dumps({"rank": rank, **values}) + "\\n")
    """
)


def _launch(
    n: int, body: str, tmp_path: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    script = tmp_path / f"job_{n}.py"
    script.write_text(COMMON + textwrap.dedent(body))
    env = cli_env(OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(
        [MPIEXEC, "-n", str(n), sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env,
    )


def _reports(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for f in tmp_path.glob("report_*.jsonl") for line in f.open()]


def _reference(dtype: str) -> list[np.ndarray]:
    X, y = load_digits(return_X_y=True)
    net = ann.NN([64, 32, 16, 10], backend="numpy", dtype=dtype, dropout=0.2, l2=1e-3, seed=3)
    net.fit(X[:500] / 16.0, y[:500], **TRAINING)
    return net.get_weights()


def _assert_ranks_hold(
    tmp_path: Path, prefix: str, n: int, expected: list[np.ndarray], rtol: float
) -> None:
    """Every rank saved (``{prefix}_{rank}.npz``) the ``expected`` weights to ``rtol``, and
    all ranks' weights are bit for bit rank 0's."""
    with np.load(tmp_path / f"{prefix}_0.npz") as first:
        reference = [first[f"arr_{i}"] for i in range(len(expected))]
    for rank in range(n):
        with np.load(tmp_path / f"{prefix}_{rank}.npz") as saved:
            got = [saved[f"arr_{i}"] for i in range(len(expected))]
        for a, b, r in zip(got, expected, reference, strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
            np.testing.assert_array_equal(a, r)


@needs_mpi
@pytest.mark.parametrize("n", [1, 2, 3])
def test_n_ranks_train_to_the_numbers_of_one_process(n, tmp_path):
    proc = _launch(
        n,
        """
        out = {}
        for dtype in ("float64", "float32"):
            net = network(dtype)
            history = net.fit(X, y, comm=comm, **TRAINING)
            np.savez(f"w_{dtype}_{rank}.npz", *net.get_weights())
            out[dtype] = {"calls": net.comm_.allreduce_calls, "loss": history["loss"]}
        report(**out)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    reports = _reports(tmp_path)
    assert sorted(r["rank"] for r in reports) == list(range(n))
    steps = 3 * int(np.ceil(500 / 128))  # 4 steps per epoch, the last one of 116 rows
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        _assert_ranks_hold(tmp_path, f"w_{dtype}", n, _reference(dtype), rtol)
        # exactly one allreduce per step (none at all for one rank), and the same logs
        assert {r[dtype]["calls"] for r in reports} == {steps if n > 1 else 0}
        assert len({json.dumps(r[dtype]["loss"]) for r in reports}) == 1


@needs_mpi
def test_one_allreduce_per_step_whatever_the_depth_and_sharded_validation(tmp_path):
    proc = _launch(
        2,
        """
        for hidden in ((8,), (32, 32, 16, 16, 8)):
            net = network("float64", hidden=hidden)
            net.fit(X, y, epochs=2, batch_size=100, comm=comm)
            calls = net.comm_.allreduce_calls
            net.fit(X, y, epochs=1, batch_size=100, comm=comm, validation_data=(X[:50], y[:50]))
            report(layers=len(hidden), calls=calls, val_calls=net.comm_.allreduce_calls,
                   val_loss=net.history_["val_loss"][0],
                   expected=net.evaluate(X[:50], y[:50])["loss"])
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    reports = _reports(tmp_path)
    assert len(reports) == 4
    for report in reports:
        assert report["calls"] == 2 * 5  # 500 rows / 100: 5 steps an epoch
        assert report["val_calls"] == 5 + 1  # the steps, plus the validation shards' sum
        assert report["val_loss"] == pytest.approx(report["expected"], rel=1e-12)


@needs_mpi
def test_a_failing_callback_on_one_rank_ends_every_rank_and_the_checkpoint_survives(tmp_path):
    start = time.perf_counter()
    proc = _launch(
        2,
        """
        class Fail(ann.Callback):
            def on_epoch_end(self, net, epoch, logs):
                if rank == 1 and epoch == 2:
                    raise RuntimeError("injected on purpose")

        net = network("float64")
        try:
            net.fit(X, y, epochs=5, comm=comm,
                    callbacks=[ann.ModelCheckpoint("ck.safetensors", monitor="loss"), Fail()])
        except ann.distributed.DistributedError as exc:
            report(error=str(exc))
            sys.exit(3)
        """,
        tmp_path,
    )
    assert time.perf_counter() - start < 45
    assert proc.returncode != 0
    errors = [r["error"] for r in _reports(tmp_path)]
    assert len(errors) == 2, proc.stdout + proc.stderr
    for error in errors:
        assert (
            "rank 1 of 2 failed at the end of epoch 2: RuntimeError: injected on purpose" in error
        )
    saved = ann.load(tmp_path / "ck.safetensors")  # written by rank 0 before the failure
    assert saved.epochs_trained_ in (1, 2)


@needs_mpi
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("nan", "rank 1 of 2 failed while checking the data: ValueError: X contains NaN"),
        ("interrupt", "rank 1 of 2 was interrupted in epoch 2"),
    ],
)
def test_a_fault_on_one_rank_is_named_on_every_rank(fault, expected, tmp_path):
    proc = _launch(
        2,
        f"""
        fault = {fault!r}
        net = network("float64")
        if rank == 1 and fault == "nan":
            X = X.copy()
            X[3, 5] = np.nan
        if rank == 1 and fault == "interrupt":
            real = net.backprop
            def backprop(*args, **kwargs):
                if net.step_ == 20:  # epoch 2 (16 steps an epoch)
                    raise KeyboardInterrupt
                return real(*args, **kwargs)
            net.backprop = backprop
        try:
            net.fit(X, y, epochs=3, comm=comm)
        except ann.distributed.DistributedError as exc:
            report(error=str(exc))
            sys.exit(3)
        """,
        tmp_path,
    )
    assert proc.returncode != 0
    errors = [r["error"] for r in _reports(tmp_path)]
    assert len(errors) == 2 and all(expected in e for e in errors), proc.stdout + proc.stderr


@needs_mpi
def test_a_failure_inside_the_start_collectives_ends_every_rank(tmp_path):
    """Rank 1 fails just before the collectives that hand out rank 0's starting point; rank 0
    is already waiting in them. Every rank must end (MPI Abort), saying which rank failed and
    why, instead of rank 0 waiting forever."""
    start = time.perf_counter()
    proc = _launch(
        2,
        """
        if rank == 1:
            def fail(net, comm):
                raise RuntimeError("injected before the broadcast")
            ann.distributed.share_start = fail
        network("float64").fit(X, y, epochs=1, comm=comm)
        report(finished=True)
        """,
        tmp_path,
        timeout=90,
    )
    assert time.perf_counter() - start < 60
    assert proc.returncode != 0 and not _reports(tmp_path)
    assert "rank 1 of 2: RuntimeError: injected before the broadcast" in proc.stderr
    assert "aborting every rank" in proc.stderr


@needs_mpi
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_jax_ranks_train_to_the_numbers_of_one_numpy_process(tmp_path):
    """Two JAX ranks (float64, in JAX's 64-bit mode; the step runs eagerly across processes)
    end with one NumPy process's weights, and agree bit for bit."""
    proc = _launch(
        2,
        """
        net = ann.NN([64, 32, 16, 10], backend="jax", dtype="float64", dropout=0.2, l2=1e-3,
                     seed=3 + 100 * rank)
        history = net.fit(X, y, comm=comm, **TRAINING)
        np.savez(f"w_{rank}.npz", *net.get_weights())
        report(calls=net.comm_.allreduce_calls, loss=history["loss"])
        """,
        tmp_path,
        timeout=120,
        env={"JAX_ENABLE_X64": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    reports = _reports(tmp_path)
    assert len(reports) == 2 and {r["calls"] for r in reports} == {3 * 4}
    _assert_ranks_hold(tmp_path, "w", 2, _reference("float64"), 1e-12)


@needs_mpi
def test_the_command_line_trains_on_several_ranks(tmp_path):
    env = cli_env(OMP_NUM_THREADS="1")
    argv = ["train", "--data", "digits", "--distributed", "--epochs", "2", "--epoch-lines"]
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, "-m", "anyarray_nn", *argv, "--save", "m.npz"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("epoch 2/2") == 1  # rank 0 alone prints
    assert proc.stdout.splitlines()[0].startswith("distributed: 2 MPI ranks, ")  # + threads
    assert "found one MPI rank" not in proc.stderr
    single = subprocess.run(
        [sys.executable, "-m", "anyarray_nn", *argv[:3], *argv[4:], "--save", "one.npz"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert single.returncode == 0, single.stderr
    for a, b in zip(
        ann.load(tmp_path / "m.npz").get_weights(),
        ann.load(tmp_path / "one.npz").get_weights(),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # float32, other sum order


# -- in-process pieces (no MPI needed) ------------------------------------------------------------
def test_slices_cover_every_global_batch_in_order():
    for rows in (0, 1, 2, 5, 127, 128):
        for size in (1, 2, 3, 4):
            bounds = [slice_of(10, 10 + rows, r, size) for r in range(size)]
            assert bounds[0][0] == 10 and bounds[-1][1] == 10 + rows
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            lengths = [hi - lo for lo, hi in bounds]
            assert max(lengths) - min(lengths) <= 1


class _FakeGroup(Communicator):
    """Two 'ranks' in one process: this one (rank 1) and a silent partner, to check that a
    local failure becomes the group's error."""

    rank, size = 1, 2

    def allreduce_host(self, buffer):
        return buffer

    def broadcast_object(self, value, root=0):
        return value


def test_agreement_turns_a_local_failure_into_the_groups_error():
    failed = pytest.raises(DistributedError, match="rank 1 of 2 failed while testing: ValueError")
    with failed, agreement(_FakeGroup(), "while testing"):
        raise ValueError("x")
    interrupted = pytest.raises(DistributedError, match="rank 1 of 2 was interrupted")
    with interrupted as info, agreement(_FakeGroup(), "while testing"):
        raise KeyboardInterrupt
    assert info.value.interrupted and info.value.rank == 1
    with agreement(_FakeGroup(), "while testing"):
        pass


def test_fit_refuses_what_is_not_a_communicator():
    net = ann.NN([4, 3, 2], backend="numpy", seed=0)
    with pytest.raises(TypeError, match="mpi4py communicator"):
        net.fit(np.zeros((4, 4)), [0, 1, 0, 1], comm="world")


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_MPI, reason="mpi4py or mpiexec missing")
def test_nccl_on_two_gpus_equals_one_process(tmp_path):
    """Two ranks on two GPUs reduce CuPy buffers with NCCL; runs the day a machine has them."""
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available() or cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two CUDA devices")
    proc = _launch(
        2,
        """
        import cupy
        cupy.cuda.Device(rank).use()
        from anyarray_nn.distributed import NCCLComm
        net = ann.NN([64, 32, 16, 10], backend="cupy", device=rank, dtype="float64",
                     dropout=0.2, l2=1e-3, seed=3)
        net.fit(X, y, comm=NCCLComm(comm), **TRAINING)
        np.savez(f"w_float64_{rank}.npz", *net.get_weights())
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "w_float64_0.npz") as saved:
        for i, b in enumerate(_reference("float64")):
            np.testing.assert_allclose(saved[f"arr_{i}"], b, rtol=1e-12, atol=1e-15)


def test_a_trained_network_pickles_without_its_communicator():
    import pickle

    net = ann.NN([4, 3, 2], backend="numpy", seed=0)
    net.fit(np.zeros((4, 4)), [0, 1, 0, 1], epochs=1)
    assert isinstance(net.comm_, Communicator)
    twin = pickle.loads(pickle.dumps(net))
    assert twin.comm_ is None and twin.predict(np.ones((1, 4))).shape == (1, 2)


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="mpi4py missing")
def test_distributed_without_mpiexec_warns_that_it_found_one_rank(tmp_path):
    env = cli_env(OMP_NUM_THREADS="1")
    argv = ["train", "--data", "iris", "--distributed", "--epochs", "1", "--epoch-lines"]
    proc = subprocess.run(
        [sys.executable, "-m", "anyarray_nn", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("distributed: 1 MPI rank, ")
    assert "--distributed found one MPI rank" in proc.stderr and "mpiexec -n N" in proc.stderr
