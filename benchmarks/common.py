"""Data, the alternating timer, statistics and the machine description."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .contenders import Contender, Problem

REPO = Path(__file__).resolve().parents[1]

#: Environment variables that change BLAS/OpenMP behaviour (recorded with every result).
BLAS_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_WAIT_POLICY",
)


# -- data -----------------------------------------------------------------------------------------
def make_data(kind: str = "synthetic", n: int = 60_000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``(X, y)``: ``n`` rows of 784 float32 features in [0, 1) and int64 labels 0..9.

    ``synthetic`` (default, deterministic, no files): uniform pixels and labels from a fixed
    random linear map, so there is something to learn. ``fashion``: the first ``n`` rows of
    Fashion-MNIST's training set from :func:`anyarray_nn.datasets.load_fashion_mnist`.
    """
    if kind == "fashion":
        from anyarray_nn.datasets import load_fashion_mnist

        X, _, y, _ = load_fashion_mnist()
        if n > len(X):
            raise ValueError(f"Fashion-MNIST has {len(X)} training rows, asked for {n}")
        return np.ascontiguousarray(X[:n], dtype=np.float32), y[:n].astype(np.int64)
    if kind != "synthetic":
        raise ValueError(f"unknown data kind {kind!r} (synthetic or fashion)")
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784), dtype=np.float32)  # float32 straight away: no float64 temporary
    proj = rng.standard_normal((784, 10)).astype(np.float32)
    scores = (X - 0.5) @ proj + rng.standard_normal((n, 10)).astype(np.float32)
    return X, np.argmax(scores, axis=1).astype(np.int64)


def iris_data() -> tuple[np.ndarray, np.ndarray]:
    """Fisher's iris, standardized, float32."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64)


def runge_data(n: int = 1000, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Runge's function ``1 / (1 + 25 x^2)`` on ``x ~ U[-1, 1]``, float32.

    Uses :func:`anyarray_nn.datasets.make_runge` (``noise`` is its Gaussian noise). Returns
    ``X, y, grid, clean``: training data and a 2001-point grid over [-1, 1] with the clean
    function, against which R² is measured.
    """
    from anyarray_nn.datasets import make_runge

    X, y = make_runge(n, noise=noise, seed=seed)
    grid = np.linspace(-1.0, 1.0, 2001).reshape(-1, 1)
    clean = 1.0 / (1.0 + 25.0 * grid[:, 0] ** 2)
    f32 = np.float32
    return X.astype(f32), y.astype(f32), grid.astype(f32), clean


def r2_score(pred: np.ndarray, truth: np.ndarray) -> float:
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1)
    return float(1.0 - np.sum((pred - truth) ** 2) / np.sum((truth - truth.mean()) ** 2))


def limit_threads(n: int | None) -> Callable[[], None]:
    """Cap BLAS/OpenMP pools (threadpoolctl) and torch's intra-op threads at ``n``; ``None``
    leaves every library's default. Call it after the libraries are imported. Returns a function
    that restores the previous settings."""
    if not n:
        return lambda: None
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None  # before threadpoolctl
    limiter = threadpool_limits(limits=int(n))
    if torch is not None:
        torch.set_num_threads(int(n))

    def restore() -> None:
        limiter.restore_original_limits()
        if torch is not None and before is not None:
            torch.set_num_threads(before)

    return restore


# -- timing ---------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds of each timed repeat of one contender (plus what its runs returned)."""

    name: str
    label: str = ""
    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "times": self.times,
            "min": min(self.times),
            "median": self.median,
            "max": max(self.times),
            "losses": self.losses,
            "info": self.info,
        }


def time_trial(contender: Contender, problem: Problem) -> tuple[float, float, Any]:
    """Prepare (untimed), then time one ``run``. Returns ``(seconds, loss, trial)``."""
    trial = contender.prepare(problem)
    gc.collect()
    contender.sync()
    start = time.perf_counter()
    loss = trial.run()
    contender.sync()
    return time.perf_counter() - start, float(loss), trial


def alternate(
    contenders: Sequence[Contender],
    problem: Problem,
    repeats: int,
    warmup: Problem | None = None,
    after_run: Any = None,
) -> dict[str, Timing]:
    """Time every contender ``repeats`` times, alternating them within each repeat.

    Each contender is first warmed up once (on ``warmup``, default the problem itself). Repeat
    ``r`` runs the contenders in the list's order rotated by ``r`` (so none is always first or
    always after the same neighbour). ``after_run(name, trial)`` is called after each timed run
    (outside the timer).
    """
    out = {c.name: Timing(c.name, c.label) for c in contenders}
    for c in contenders:
        c.prepare(warmup or problem).run()
    k = len(contenders)
    for r in range(repeats):
        for j in range(k):
            c = contenders[(j + r) % k]
            seconds, loss, trial = time_trial(c, problem)
            out[c.name].times.append(seconds)
            out[c.name].losses.append(loss)
            out[c.name].info.update(getattr(trial, "info", {}) or {})
            if after_run is not None:
                after_run(c.name, trial)
            del trial
    return out


def ratio(a: Timing, b: Timing) -> tuple[float, float]:
    """``(median(a) / median(b), median of the per-repeat ratios a_r / b_r)``."""
    paired = [x / y for x, y in zip(a.times, b.times, strict=False)]
    return a.median / b.median, statistics.median(paired)


# -- the machine ----------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:
        return None
    return str(getattr(mod, "__version__", "?"))


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()

    try:
        return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Cores, CPU, load, BLAS/threading configuration and versions (call after the imports)."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total_gib": _mem_total_gib(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ.get(k) for k in BLAS_ENV},
        "versions": {
            m: _version(m)
            for m in (
                "numpy",
                "scipy",
                "sklearn",
                "torch",
                "array_api_strict",
                "array_api_compat",
                "cupy",
                "anyarray_nn",
            )
        },
        "git": _git(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            | {"lib": os.path.basename(p.get("filepath", ""))}
            for p in threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    if "torch" in sys.modules:
        import torch

        info["torch"] = {
            "num_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        }
    return info


def describe_machine(info: dict[str, Any]) -> str:
    v = info["versions"]
    pools = info.get("threadpools")
    blas = (
        "; ".join(
            f"{p['internal_api']} {p['version']} {p['architecture']} x{p['num_threads']} "
            f"({p['lib']})"
            for p in pools
        )
        if isinstance(pools, list)
        else str(pools)
    )
    env = ", ".join(f"{k}={val}" for k, val in info["env"].items() if val is not None) or "none"
    load = info.get("loadavg")
    lines = [
        f"machine : {info['cpu_model']}, {info['usable_cpus']}/{info['logical_cpus']} usable "
        f"CPUs, {info['mem_total_gib']} GiB, load average {load and [round(x, 2) for x in load]}",
        "versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
        + f", python {info['python']}",
        f"BLAS    : {blas}",
        f"env     : {env}",
    ]
    if "torch" in info:
        lines.append(f"torch   : {info['torch']}")
    git = info.get("git") or {}
    if git:
        lines.append(
            f"git     : {git.get('commit', '?')[:12]}{' (dirty)' if git.get('dirty') else ''}"
        )
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable))
    tmp.replace(path)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)
