"""Resident memory of one contender's ``fit``, measured in a fresh subprocess.

Each measurement is a new Python process (``python -m benchmarks.memory SPEC``), so contenders
cannot pollute each other's heaps or peaks. Inside it:

1. import the contender's libraries, build the data (float32 straight away, no float64
   temporary) and prepare the trial (model with the shared initial weights);
2. return free heap pages to the OS (glibc ``malloc_trim``: memory freed while loading the data
   must not absorb the fit's allocations unseen); ``baseline`` = current RSS
   (``/proc/self/statm``); reset the kernel's peak-RSS mark (``echo 5 > /proc/self/clear_refs``,
   Linux >= 4.0);
3. run the trial (``epochs`` epochs); ``peak`` = ``VmHWM`` from ``/proc/self/status``
   (``ru_maxrss`` where that file is missing); for anyarray_nn also the RSS after every epoch
   (a callback);
4. print one JSON line: ``peak_delta`` = ``peak - baseline`` is the memory that ``fit`` itself
   needed on top of the data and the libraries.

If the peak mark cannot be reset, ``peak_delta`` is ``max(0, ru_maxrss - baseline)`` and
``peak_reset`` is false: a peak from before the fit would then hide the fit's own.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
REPO = Path(__file__).resolve().parents[1]


def rss_now() -> int:
    """Current resident set size in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Reset the peak-RSS mark (VmHWM) to the current RSS; False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak resident set size in bytes since start or the last :func:`reset_peak`."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def trim_heap() -> bool:
    """Give free heap memory back to the OS (glibc ``malloc_trim``), so that memory freed while
    loading the data cannot silently absorb the fit's allocations. False where unavailable."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


class _EpochRSS:
    """An anyarray_nn callback recording the RSS after every epoch."""

    def __init__(self) -> None:
        self.rss: list[int] = []

    def on_epoch_end(self, net: Any, epoch: int, logs: dict[str, float]) -> None:
        gc.collect()
        self.rss.append(rss_now())


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in *this* process (the subprocess side). ``spec``: contender, data, n, seed, sizes,
    batch_size, epochs, lr."""
    from .common import limit_threads, make_data
    from .contenders import Problem, by_name

    contender = by_name(spec["contender"])
    X, y = make_data(spec["data"], spec["n"], spec["seed"])
    problem = Problem(
        X,
        y,
        list(spec["sizes"]),
        batch_size=spec["batch_size"],
        epochs=spec["epochs"],
        lr=spec["lr"],
        seed=spec["seed"],
    )
    trial = contender.prepare(problem)
    restore_threads = limit_threads(spec.get("threads"))
    gc.collect()
    trimmed = trim_heap()
    baseline = rss_now()
    reset = reset_peak()
    before_peak = peak_rss()
    per_epoch = _EpochRSS()
    if spec.get("per_epoch") and hasattr(trial, "net"):
        loss = trial.run(callbacks=[per_epoch])
    else:
        loss = trial.run()
    peak = peak_rss()
    gc.collect()
    after = rss_now()
    restore_threads()
    return {
        "contender": contender.name,
        "baseline": baseline,
        "peak": peak,
        "peak_delta": max(0, peak - baseline),
        "peak_reset": reset,
        "heap_trimmed": trimmed,
        "peak_before_fit": before_peak,
        "after": after,
        "epoch_rss": per_epoch.rss,
        "loss": loss,
        "data_bytes": int(X.nbytes + y.nbytes),
        "info": getattr(trial, "info", {}),
    }


def run_subprocess(spec: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Measure ``spec`` in a fresh ``python -m benchmarks.memory`` process."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", json.dumps(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"memory subprocess for {spec['contender']} failed (rc {proc.returncode}):\n"
            f"{proc.stderr[-2000:]}"
        )
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m benchmarks.memory '<json spec>'", file=sys.stderr)
        return 2
    print(json.dumps(measure(json.loads(argv[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
