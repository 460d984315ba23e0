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
