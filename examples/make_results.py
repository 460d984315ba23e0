"""Regenerate examples/RESULTS.md from the examples: run each with its defaults, time it, and
write what it printed (its own "write-up vs ours" table), with the machine it ran on.

    python examples/make_results.py                 # every example: several minutes on 2 cores
    python examples/make_results.py --only toy_fits # rerun some; keep the others' sections
    python examples/make_results.py --render-only   # the recorded runs in this script's format

RESULTS.md is never edited by hand. ``tests/test_examples.py`` checks that the file is in this
script's format (``render(parse(text)) == text``) and has a section for every example, so the
file cannot drift from the script or miss an example.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
#: Every example, in the file's order: its name and the arguments of its default run.
EXAMPLES: list[tuple[str, list[str]]] = [
    ("quickstart", []),
    ("iris_adagrad", ["--backend", "numpy"]),
    ("grid_search_momentum", ["--backend", "numpy"]),
    ("toy_fits", ["--backend", "numpy"]),
    ("runge_regression", ["--backend", "numpy"]),
    ("optimizer_cost", ["--backend", "numpy"]),
    ("regularization_sweep", ["--backend", "numpy"]),
    ("init_comparison", ["--backend", "numpy"]),
    ("dropout_digits", ["--backend", "numpy"]),
    ("fashion_mnist", ["--backend", "numpy"]),
    ("distributed", []),  # under mpiexec -n 2
]
NOTICE = (
    "*This file is written by `python examples/make_results.py`, which runs every example: do "
    "not edit it by hand; change an example or the script, then run the script.*"
)
INTRO = """\
Each section below is one script of `examples/` run with its defaults on the NumPy backend, as
its command shows: the wall time of the whole process (start-up, imports, data, training) and
what the script printed, including its own "write-up vs ours" table. The docstring at the top of
each script explains the setting and how the write-up's wording was interpreted; `--fast` runs a
tiny version (what `tests/test_examples.py` runs), `--threads N` sets the BLAS threads (default 1:
on a shared 2-core machine OpenBLAS's worker threads made medium-sized products slower and
erratic). Wall times depend on the machine and its load (below)."""


class Run(NamedTuple):
    """One example's section: its name, command, wall time and what it printed."""

    name: str
    command: str
    wall: str
    output: str


def command_of(name: str, args: list[str]) -> list[str]:
    """The command that runs an example (``distributed`` under ``mpiexec -n 2``)."""
    script = ["python", f"examples/{name}.py", *args]
    return ["mpiexec", "-n", "2", *script] if name == "distributed" else script


def run_example(name: str, args: list[str]) -> Run:
    """Run one example from the repository's root and time the whole process."""
    argv = command_of(name, args)
    shown = " ".join(argv)
    real = [sys.executable if a == "python" else a for a in argv]
    if real[0] == "mpiexec":
        found = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
        if not Path(found).exists():
            return Run(name, shown, "not run", "not run: mpiexec is missing (pip install '.[mpi]')")
        real[0] = found
    # this checkout's anyarray_nn, whatever is installed
    path = os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    start = time.perf_counter()
    proc = subprocess.run(
        real, capture_output=True, text=True, cwd=HERE.parent, env=env, check=False
    )
    wall = f"{time.perf_counter() - start:.1f} s"
    output = proc.stdout.strip()
    if proc.returncode != 0:
        wall += f" (exit {proc.returncode})"
        output += "\n" + proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    return Run(name, shown, wall, output)


def machine(load: str = "") -> str:
    """The machine and library versions, as the file's last section lists them; ``load``: the
    load averages measured while the examples ran."""
    import numpy as np
    import sklearn

    blas = next(
        (f"{c['internal_api']} {c['version']}" for c in _blas_info() if c.get("version")), "?"
    )
    lines = [
        f"- {platform.machine()}, {_cores()} CPU cores, {platform.system()}; no GPU used.",
        f"- Python {platform.python_version()}, NumPy {np.__version__} ({blas}), "
        f"scikit-learn {sklearn.__version__}{_torch()}.",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d}.",
    ]
    if load:
        lines.append(f"- Load average (1 min) before each example: {load}.")
    return "\n".join(lines)


def _blas_info() -> list[dict[str, str]]:
    from threadpoolctl import threadpool_info

    return [i for i in threadpool_info() if i.get("user_api") == "blas"]


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _torch() -> str:
    try:
        import torch
    except ImportError:
        return ""
    return f", torch {torch.__version__}"


def _docline(name: str) -> str:
    """The first line of an example's docstring."""
    text = (HERE / f"{name}.py").read_text()
    return re.search(r'"""(.*?)\n', text).group(1).strip()


def render(runs: list[Run], machine_text: str) -> str:
    """RESULTS.md for ``runs`` (in :data:`EXAMPLES`' order) and the machine's description."""
    out = ["# The write-ups' experiments, reproduced", "", NOTICE, "", INTRO, ""]
    out += ["| example | wall time |", "|---|---|"]
    out += [f"| [`examples/{r.name}.py`](#examples{r.name}py) | {r.wall} |" for r in runs]
    for r in runs:
        out += ["", f"## `examples/{r.name}.py`", "", _docline(r.name), ""]
        out += [f"`{r.command}`: {r.wall}", "", "```text", r.output, "```"]
    out += ["", "## Machine", "", machine_text, ""]
    return "\n".join(out)


SECTION = re.compile(
    r"^## `examples/(\w+)\.py`\n\n.*?\n\n`(.*?)`: (.*?)\n\n```text\n(.*?)\n```$", re.M | re.S
)


def parse(text: str) -> tuple[list[Run], str]:
    """The runs and machine description of a RESULTS.md that :func:`render` wrote."""
    runs = [Run(*m.groups()) for m in SECTION.finditer(text)]
    machine_text = text.split("\n## Machine\n\n", 1)[1].rstrip("\n") if "## Machine" in text else ""
    return runs, machine_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="rerun these examples only")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing: write the file's recorded runs again (after a change of this script)",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        RESULTS.write_text(render(*parse(RESULTS.read_text())))
        return 0
    names = [name for name, _ in EXAMPLES]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"no example {', '.join(unknown)}; the examples: {', '.join(names)}")
    old = {r.name: r for r in parse(RESULTS.read_text())[0]} if RESULTS.exists() else {}
    runs, loads = [], []
    for name, extra in EXAMPLES:
        if args.only and name not in args.only and name in old:
            runs.append(old[name])
            continue
        print(f"running {name} ...", flush=True)
        if hasattr(os, "getloadavg"):  # the machine may be shared: say how busy it was
            loads.append(f"{os.getloadavg()[0]:.1f}")
        runs.append(run_example(name, extra))
        print(f"  {runs[-1].wall}", flush=True)
    RESULTS.write_text(render(runs, machine(", ".join(loads))))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
