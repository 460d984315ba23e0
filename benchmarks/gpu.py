"""The GPU table in one run: epoch times against a plain PyTorch CUDA loop, kernels per step,
and host syncs inside the steps, for anyarray_nn on CuPy and on torch CUDA.

    python benchmarks/gpu.py [--rows 60000] [--repeats 5] [--out gpu.json]
    python benchmarks/gpu.py --dry-run      # the same code on torch's CPU, tiny sizes (a test)

What it measures (784-128-64-10 ReLU, Adam lr 1e-3, float32, batches 128 and 1024):

- **epoch**: one ``fit`` epoch (``metrics=[]``, data already on the device), median of
  ``--repeats`` after a warm-up, for ``ours-cupy``, ``ours-torch-cuda`` and ``torch-loop``
  (``nn.Sequential`` + ``torch.optim.Adam`` with its defaults, ``randperm`` batches on the device,
  ``zero_grad(set_to_none=True)``: the loop a PyTorch user writes); each ratio is ours over the
  torch loop, measured in the same run. ``ours-torch-compiled`` and ``ours-cupy-graph`` are
  the same fits with ``fit(compile=True)`` (torch.compile with CUDA graphs; CuPy's step captured
  as a CUDA graph, anyarray_nn/graphs.py), compiled by the untimed warm-up; where the installed
  library refuses to compile on that backend (or the compiler fails), the row prints
  ``not available: <reason>`` and the run goes on. The dry run has
  ``ours-torch-cpu-compiled`` and lists the GPU rows as not available.
- **kernels/step**: CUDA kernels (memcpy/memset counted apart) seen by ``torch.profiler``
  (CUPTI sees CuPy's kernels too) in one epoch, divided by its steps.
- **syncs/step**: synchronizing calls inside the steps of an epoch: torch's sync debug mode
  (``torch.cuda.set_sync_debug_mode("warn")``) and CuPy's ``cupyx.allow_synchronize(False)``,
  switched on around every call of the step function and the batch gather only (the epoch's one
  read of its sums, after the steps, is outside).
- **subnormals**: whether CuPy's float32 kernels keep subnormal numbers (the optimizer flushes
  its state before it gets there on every backend; this says whether a GPU would have needed it).

The machine, the libraries and the date are recorded with the results.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import anyarray_nn as ann
from anyarray_nn import training

SIZES = [784, 128, 64, 10]


# -- contenders -----------------------------------------------------------------------------------
def ours(
    backend: str,
    device: Any,
    X: np.ndarray,
    y: np.ndarray,
    batch: int,
    compile: bool | None = None,
) -> Callable[[], Any]:
    """One epoch of our fit, data on the device; the first call (untimed) builds the optimizer
    and, with ``compile=True`` (``fit``'s public switch: torch.compile / CUDA graphs on torch,
    graph capture on CuPy, where the installed library has them), compiles the step."""
    net = ann.NN(SIZES, backend=backend, device=device, dtype="float32", seed=0)
    Xd = net.backend.asarray(X)
    yd = net.backend.asarray(y, dtype=net.backend.index_dtype)
    fit_args = {"epochs": 1, "batch_size": batch, "metrics": [], "compile": compile}
    net.fit(Xd, yd, optimizer="adam", lr=1e-3, **fit_args)
    return lambda: net.fit(Xd, yd, **fit_args)


def compiled_row(backend: str, device: Any, X: np.ndarray, y: np.ndarray, batch: int) -> Any:
    """``ours(..., compile=True)``, or the reason it is not available (a string): the
    installed library may refuse to compile on this backend, or the compiler may fail here."""
    try:
        return ours(backend, device, X, y, batch, compile=True)
    except Exception as exc:  # the library's refusal (ValueError) or a compiler's failure
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def torch_loop(device: str, X: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], Any]:
    """The plain PyTorch loop (the anchor)."""
    import torch

    torch.manual_seed(0)
    layers: list[Any] = []
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    n = Xt.shape[0]

    def epoch() -> None:
        perm = torch.randperm(n, device=device)
        for start in range(0, n, batch):
            idx = perm[start : start + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            opt.step()

    epoch()
    return epoch


# -- measurements ---------------------------------------------------------------------------------
def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    with contextlib.suppress(Exception):
        import cupy

        if cupy.cuda.is_available():
            cupy.cuda.Device().synchronize()


def epoch_seconds(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        run()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kernels_per_step(run: Callable[[], Any], steps: int) -> dict[str, float]:
    """CUDA kernels and copies/sets per step in one epoch (torch.profiler, CUPTI)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        synchronize()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    copies = [e for e in events if "memcpy" in e.name.lower() or "memset" in e.name.lower()]
    return {
        "kernels": (len(events) - len(copies)) / steps,
        "copies_and_sets": len(copies) / steps,
    }


@contextlib.contextmanager
def around_steps(wrap: Callable[[], contextlib.AbstractContextManager]) -> Iterator[None]:
    """Enter ``wrap()`` around every call of the step function and the batch gather."""
    step_call, batch_call = training.Step.__call__, training._Data.batch

    def step(self: Any, *args: Any, **kwargs: Any) -> Any:
        with wrap():
            return step_call(self, *args, **kwargs)

    def batch(self: Any, *args: Any, **kwargs: Any) -> Any:
        with wrap():
            return batch_call(self, *args, **kwargs)

    training.Step.__call__, training._Data.batch = step, batch  # type: ignore[method-assign]
    try:
        yield
    finally:
        training.Step.__call__, training._Data.batch = step_call, batch_call  # type: ignore[method-assign]


def torch_syncs_per_step(run: Callable[[], Any], steps: int) -> float:
    """Synchronizing calls inside the steps of one epoch (torch's sync debug mode)."""
    import torch

    @contextlib.contextmanager
    def warn_on_sync() -> Iterator[None]:
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")

    with warnings.catch_warnings(record=True) as caught, around_steps(warn_on_sync):
        warnings.simplefilter("always")
        run()
    return sum("synchroniz" in str(w.message).lower() for w in caught) / steps


def cupy_syncs_per_step(run: Callable[[], Any], steps: int) -> float:
    """Synchronizations inside the steps of one epoch: CuPy raises at the first; 0 or 'some'."""
    import cupyx

    try:
        with around_steps(lambda: cupyx.allow_synchronize(False)):
            run()
    except Exception as exc:  # cupyx raises DeviceSynchronized
        print(f"    cupy: a synchronization inside a step: {exc!r}")
        return float("nan")
    return 0.0


def cupy_keeps_subnormals() -> bool:
    import cupy

    x = cupy.full(4, 1e-30, dtype=cupy.float32)
    for _ in range(20):
        x *= 0.01  # through the subnormal range (below 1.18e-38) toward zero
        if bool(cupy.any((x > 0) & (x < np.finfo(np.float32).smallest_normal))):
            return True
    return False


# -- the run --------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"date": datetime.date.today().isoformat(), "host": platform.node(),
                            "python": platform.python_version(), "numpy": np.__version__,
                            "anyarray_nn": ann.__version__}  # fmt: skip
    with contextlib.suppress(Exception):
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    with contextlib.suppress(Exception):
        import cupy

        info["cupy"] = cupy.__version__
    return info


#: the rows that need a GPU, skipped with this reason in the dry run
GPU_ROWS = ("ours-cupy", "ours-cupy-graph", "ours-torch-cuda", "ours-torch-compiled")


def contenders(gpu: bool, X: np.ndarray, y: np.ndarray, batch: int) -> dict[str, Any]:
    """Each row's one-epoch function, or the reason (a string) it is not available."""
    if not gpu:  # the dry run: the same code on torch's CPU
        out: dict[str, Any] = {
            "torch-loop": torch_loop("cpu", X, y, batch),
            "ours-torch-cpu": ours("torch", "cpu", X, y, batch),
            "ours-torch-cpu-compiled": compiled_row("torch", "cpu", X, y, batch),
        }
        return out | {name: "no CUDA GPU (dry run on torch's CPU)" for name in GPU_ROWS}
    out = {"torch-loop": torch_loop("cuda", X, y, batch)}
    cupy = ann.backend_status()["cupy"]
    if cupy is None:
        out["ours-cupy"] = ours("cupy", None, X, y, batch)
        out["ours-cupy-graph"] = compiled_row("cupy", None, X, y, batch)
    else:
        out["ours-cupy"] = out["ours-cupy-graph"] = f"cupy: {cupy}"
    out["ours-torch-cuda"] = ours("torch", "cuda", X, y, batch)
    out["ours-torch-compiled"] = compiled_row("torch", "cuda", X, y, batch)
    return out


def measure_row(name: str, run: Any, repeats: int, steps: int, gpu: bool) -> dict[str, Any]:
    """One row: the epoch time and, on a GPU, kernels and syncs per step; a row that is not
    available keeps its reason instead."""
    if isinstance(run, str):
        return {"not_available": run}
    row: dict[str, Any] = {"epoch_s": epoch_seconds(run, repeats)}
    if gpu:
        row.update(kernels_per_step(run, steps))
        # eager rows only: the detectors wrap Step.__call__ and the batch gather, which a
        # compiled or graph-replayed epoch need not call
        if name == "ours-torch-cuda":
            row["syncs_per_step"] = torch_syncs_per_step(run, steps)
        if name == "ours-cupy":
            row["syncs_per_step"] = cupy_syncs_per_step(run, steps)
    return row


def measure(args: argparse.Namespace, gpu: bool) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], args.rows)
    results: dict[str, Any] = {"machine": machine(), "rows": args.rows, "batches": {}}
    for batch in args.batch_sizes:
        steps = -(-args.rows // batch)
        runs = contenders(gpu, X, y, batch)
        table = {
            name: measure_row(name, run, args.repeats, steps, gpu) for name, run in runs.items()
        }
        anchor = table["torch-loop"]["epoch_s"]
        for row in table.values():
            if "epoch_s" in row:
                row["vs_torch_loop"] = row["epoch_s"] / anchor
        results["batches"][str(batch)] = table
        print(f"batch {batch} ({steps} steps/epoch)")
        for name, row in table.items():
            cells = "  ".join(
                f"{k} {v:.4g}" if k != "not_available" else f"not available: {v}"
                for k, v in row.items()
            )
            print(f"  {name:<24} {cells}", flush=True)
    if gpu and "cupy" in ann.available_backends():
        results["cupy_keeps_float32_subnormals"] = cupy_keeps_subnormals()
        print("cupy keeps float32 subnormals:", results["cupy_keeps_float32_subnormals"])
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=lambda s: [int(b) for b in s.split(",")],
                        default=[128, 1024])  # fmt: skip
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument(
        "--dry-run", action="store_true", help="torch's CPU, 512 rows, 1 repeat: the script runs"
    )
    args = parser.parse_args(argv)
    import torch

    gpu = torch.cuda.is_available() and not args.dry_run
    if args.dry_run:
        args.rows, args.repeats = 512, 1
    elif not gpu:
        parser.error("no CUDA GPU here (torch.cuda.is_available() is False); use --dry-run")
    results = measure(args, gpu)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
