"""What the example scripts share: the common flags, first line, tables, BLAS threads and plots.

examples/ is not a package, so a script imports this file as ``_common`` after putting its own
folder on ``sys.path``. That works both when it runs as ``python examples/NAME.py`` and when a test
loads it by path with ``importlib.util.spec_from_file_location``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from threadpoolctl import threadpool_limits

import anyarray_nn as ann

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def example_parser(
    doc: str, plot: str, fast: str = "tiny settings (for the tests)"
) -> argparse.ArgumentParser:
    """A parser with the flags of every example: --backend, --fast, --plot, --seed, --threads.

    ``doc`` is the script's docstring (its first line describes the script); ``plot`` and ``fast``
    are the help texts of --plot and --fast. The script adds its own options to the result.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--backend", default="auto", help="numpy, cupy, torch, ... (auto)")
    parser.add_argument("--fast", action="store_true", help=fast)
    parser.add_argument("--plot", metavar="PATH", help=plot)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS threads (0: the library's default)"
    )
    return parser


def announce(backend: str, threads: int, dtype: str | None = None, extra: str = "") -> str:
    """Print the line each example starts with (backend, BLAS threads); return the backend name."""
    resolved = ann.resolve(backend, dtype=dtype)
    print(f"backend: {resolved!r}   BLAS threads: {threads or 'default'}{extra}")
    return resolved.name


def blas_threads(threads: int) -> threadpool_limits:
    """``with blas_threads(n):`` runs its block on ``n`` BLAS threads (0: the library's default)."""
    return threadpool_limits(threads or None)


def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    """Print ``rows`` under ``headers`` in left-aligned columns, after a blank line and a title."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for k, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure (no GUI backend needed) with constrained layout; matplotlib on demand."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, path: str) -> None:
    """Write ``fig`` to ``path`` (PNG at 100 dpi, by the suffix) and say so."""
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")
