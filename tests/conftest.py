"""The backend matrix: every test that takes ``backend`` runs on each of these.

- numpy
- array_api_strict on CPU_DEVICE, and on device1 (the GPU stand-in: it refuses implicit NumPy
  conversion and mixing devices), both under ArrayAPIStrictFlags(boolean_indexing=False,
  data_dependent_shapes=False)
- torch on the CPU
- cupy and torch on CUDA, marked ``gpu`` and skipped with a reason when no GPU is usable
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
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
        yield spec


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (cupy or torch-cuda)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
