"""Command line: ``anyarray-nn`` (or ``python -m anyarray_nn``).

Commands::

    anyarray-nn                      the digits demo (same as ``anyarray-nn demo``)
    anyarray-nn train --data iris --layers 128,64 --epochs 20 --save model.safetensors
    anyarray-nn train --data flowers.csv --target species --save model.safetensors
    anyarray-nn evaluate model.safetensors             the held-out split it was trained without
    anyarray-nn evaluate model.safetensors --data new.csv       every row of another file
    anyarray-nn predict model.safetensors --data new.csv --out predictions.csv [--proba]
    anyarray-nn gradcheck --layers 8,6 --activation tanh --tol 1e-6
    anyarray-nn backends             which backends are usable here, and why not
    anyarray-nn demo                 train an MLP on scikit-learn's digits

``--data`` is one of ``digits``, ``iris``, ``fashion-mnist[:DIR]``, ``mnist[:DIR]`` (the four IDX
files in DIR; their own 60,000/10,000 split; without DIR, mnist is downloaded from OpenML),
``runge`` (regression), ``doughnut``, ``squares`` or ``spirals``; or a file of your own
(``.csv``, ``.tsv``, ``.npy``, ``.npz``, ``.parquet``; see :mod:`anyarray_nn.tabular`) with
``--target COLUMN`` naming the labels. The other sets and files are split by ``--test-size``
with ``--data-seed``.

The model file records how ``train`` made it (in ``NN.metadata``): the data (a file by path and
SHA-256), the split, the task, the feature names, the class labels and the feature scaling. So
``evaluate MODEL`` alone re-evaluates on the same held-out split, labels come back as they were
written (strings stay strings), and ``predict`` scales new rows the way training did.

Progress is a bar per epoch only when stdout and stderr are terminals; otherwise (a log file, a
pipe) one line per epoch. Ctrl-C during ``train --save PATH`` saves the last finished epoch.

Exit status (scripts can rely on it):

    0    success
    1    a check failed: gradcheck's max relative error is not below --tol, or training diverged
    2    usage error: bad arguments, an unknown, missing or unreadable dataset or data file, an
         unusable backend or device, an unreadable model file, an output that cannot be written,
         or a missing optional package (matplotlib for --plot, pyarrow for Parquet)
    130  interrupted (Ctrl-C)
    141  the output was closed early (e.g. piped into head)

Components of your own (see docs/extending.md) become valid choices when their
module is imported first: ``ANYARRAY_NN_PLUGINS=mypackage.components anyarray-nn train ...``.

Errors are one line on stderr, ``anyarray-nn [COMMAND]: error: <what> (<hint>)``, never a
traceback.
"""

from __future__ import annotations

from .main import build_parser, main
from .train import demo

__all__ = ["build_parser", "demo", "main"]
