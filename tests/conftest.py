"""The backend matrix: every test that takes ``backend`` runs on each of these.

- numpy
- array_api_strict on CPU_DEVICE, and on device1 (the GPU stand-in: it refuses implicit NumPy
  conversion and mixing devices), both under ArrayAPIStrictFlags(boolean_indexing=False,
  data_dependent_shapes=False)
- torch on the CPU
- jax on the CPU, in JAX's 64-bit mode (skipped with a reason when jax is not installed)
- cupy and torch on CUDA, marked ``gpu`` and skipped with a reason when no GPU is usable

Also: ``run_cli``, the real ``python -m anyarray_nn`` in a subprocess; and a quiet summary, one
line per skip reason with a count (``-rs`` still lists every skipped test).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@dataclass(frozen=True)
class BackendSpec:
    name: str
    device: Any = None

    @property
    def id(self) -> str:
        return self.name if self.device is None else f"{self.name}-{self.device}"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _cupy_ok() -> bool:
    if not _has("cupy"):
        return False
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:
        return False


def _torch_cuda_ok() -> bool:
    if not _has("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


MATRIX = [
    pytest.param(BackendSpec("numpy"), id="numpy"),
    pytest.param(
        BackendSpec("array_api_strict", "CPU_DEVICE"),
        id="strict-CPU_DEVICE",
        marks=pytest.mark.skipif(not _has("array_api_strict"), reason="array-api-strict missing"),
    ),
    pytest.param(
        BackendSpec("array_api_strict", "device1"),
        id="strict-device1",
        marks=pytest.mark.skipif(not _has("array_api_strict"), reason="array-api-strict missing"),
    ),
    pytest.param(
        BackendSpec("torch", "cpu"),
        id="torch-cpu",
        marks=pytest.mark.skipif(not _has("torch"), reason="torch not installed"),
    ),
    pytest.param(
        BackendSpec("jax", "cpu"),
        id="jax-cpu",
        marks=pytest.mark.skipif(not _has("jax"), reason="jax not installed (pip install .[jax])"),
    ),
    pytest.param(
        BackendSpec("cupy", 0),
        id="cupy",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not _cupy_ok(), reason="cupy.is_available() is False (no GPU)"),
        ],
    ),
    pytest.param(
        BackendSpec("torch", "cuda"),
        id="torch-cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not _torch_cuda_ok(), reason="torch.cuda.is_available() is False"),
        ],
    ),
]


@pytest.fixture(params=MATRIX)
def backend(request: pytest.FixtureRequest) -> Any:
    """A BackendSpec; strict backends run under the strict flags for the whole test."""
    spec: BackendSpec = request.param
    if spec.name == "array_api_strict":
        import array_api_strict

        with array_api_strict.ArrayAPIStrictFlags(
            boolean_indexing=False, data_dependent_shapes=False
        ):
            yield spec
    else:
        if spec.name == "jax":
            enable_jax_x64()
        yield spec


def enable_jax_x64() -> None:
    """JAX computes in float64 only in its 64-bit mode (a process-wide switch that affects
    JAX alone); the matrix's float64 tests need it. Tests of JAX without it run in a
    subprocess."""
    import jax

    jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (cupy or torch-cuda)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


# -- the real command line ---------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that imports this checkout's anyarray_nn."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(*argv, env={...}, timeout=...)``: ``python -m anyarray_nn ARGV`` in
    ``tmp_path``, output captured as text."""

    def run(*argv: Any, env: dict[str, str] | None = None, timeout: float = 120):
        return subprocess.run(
            [sys.executable, "-m", "anyarray_nn", *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
            env=cli_env(**(env or {})),
        )

    return run


# -- a quiet summary: one line per skip reason -------------------------------------------------


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Skips grouped by reason, one line each with its count, unless ``-r`` asks for pytest's
    own list of every skipped test."""
    if any(char in config.option.reportchars for char in "saA"):
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if r.skipped]
    counts = Counter(_skip_reason(report) for report in skipped)
    if counts:
        terminalreporter.write_sep("-", "skipped, by reason")
        for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            terminalreporter.write_line(f"{count:5d}  {reason}")


# -- CI's second run: the tests the first run skipped, now with the extras ---------------------

#: When set, the controlling process appends ``nodeid<TAB>reason`` for each skipped test that
#: is not marked ``gpu`` to this file (``.ci/run`` sets it for the README's test command, run
#: without the extras, and reruns those tests once the extras are installed).
SKIP_LOG_ENV = "ANYARRAY_NN_SKIP_LOG"
#: A skip reason saying an extra's package is missing: in the rerun, that is a failure.
MISSING_EXTRA = re.compile(
    r"\b(jax|ndonnx|onnx|mpi4py|mpiexec|mpich|dask|distributed)\b.*"
    r"(not installed|missing|no module named)|no module named '?(jax|ndonnx|onnx|mpi4py|dask)",
    re.I,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rerun-skipped",
        metavar="FILE",
        default=None,
        help="run only the tests FILE lists (written through $ANYARRAY_NN_SKIP_LOG), and fail "
        "any of them that skips because an extra's package is missing",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = config.getoption("--rerun-skipped")
    if path is None:
        return
    wanted = {line.split("\t", 1)[0] for line in Path(path).read_text().splitlines() if line}

    def listed(item: pytest.Item) -> bool:  # a test, or a whole module skipped when collected
        return item.nodeid in wanted or item.nodeid.split("::", 1)[0] in wanted

    config.hook.pytest_deselected(items=[item for item in items if not listed(item)])
    items[:] = [item for item in items if listed(item)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.config.getoption("--rerun-skipped") is not None:
        reason = _skip_reason(report)
        if MISSING_EXTRA.search(reason) and not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = f"skipped although the extras are installed: {reason}"


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module skipped as a whole when collected (``pytest.importorskip`` at its top)."""
    pytest_runtest_logreport(report)  # type: ignore[arg-type]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get(SKIP_LOG_ENV)
    if not path or not report.skipped or hasattr(report, "wasxfail"):
        return
    if "gpu" in getattr(report, "keywords", {}):
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller writes what workers report
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{report.nodeid}\t{_skip_reason(report)}\n")
