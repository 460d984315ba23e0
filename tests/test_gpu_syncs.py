"""No host sync inside a training step, checked on a GPU by the libraries' own detectors:
torch's sync debug mode (``"error"``) and CuPy's ``cupyx.allow_synchronize(False)``, switched on
around every call of the step function and the batch gather (the epoch's one read of its sums,
after the steps, is outside). Without a GPU these skip; the CPU-side proofs are the torch-CPU
transfer counter (tests/test_core_rules.py) and the array-api-strict counters."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import anyarray_nn as ann

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.gpu import around_steps  # noqa: E402

pytestmark = pytest.mark.gpu


def _data(net):
    rng = np.random.default_rng(0)
    X = net.backend.asarray(rng.standard_normal((512, 20)))
    y = net.backend.asarray(rng.integers(0, 4, 512), dtype=net.xp.int64)
    return X, y


FITS = [
    {"optimizer": "adam", "lr": 1e-3},
    {"optimizer": "sgd", "lr": 0.1, "clip_norm": 1.0},
    {"optimizer": "rmsprop", "lr": 1e-3, "metrics": ["accuracy"]},
]


@pytest.mark.parametrize("fit_kwargs", FITS)
def test_no_sync_in_a_step_on_torch_cuda(fit_kwargs):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch.cuda.is_available() is False")
    net = ann.NN([20, 32, 16, 4], backend="torch", device="cuda", dropout=0.1, l2=1e-4, seed=0)
    X, y = _data(net)
    net.fit(X, y, epochs=1, batch_size=64, **fit_kwargs)

    class ErrorOnSync:
        def __enter__(self):
            torch.cuda.set_sync_debug_mode("error")

        def __exit__(self, *exc):
            torch.cuda.set_sync_debug_mode("default")

    with around_steps(ErrorOnSync):
        net.fit(X, y, epochs=2, batch_size=64)  # raises at the first sync inside a step


@pytest.mark.parametrize("fit_kwargs", FITS)
def test_no_sync_in_a_step_on_cupy(fit_kwargs):
    cupy = pytest.importorskip("cupy")
    if not cupy.cuda.is_available():
        pytest.skip("cupy.is_available() is False (no GPU)")
    import cupyx

    net = ann.NN([20, 32, 16, 4], backend="cupy", dropout=0.1, l2=1e-4, seed=0)
    X, y = _data(net)
    net.fit(X, y, epochs=1, batch_size=64, **fit_kwargs)
    with around_steps(lambda: cupyx.allow_synchronize(False)):
        net.fit(X, y, epochs=2, batch_size=64)
