"""Command line: ``anyarray-nn`` (or ``python -m anyarray_nn``).

Commands::

    anyarray-nn                      the digits demo (same as ``anyarray-nn demo``)
    anyarray-nn train --data iris --layers 128,64 --epochs 20 --save model.safetensors
    anyarray-nn evaluate model.safetensors --data iris
    anyarray-nn gradcheck --layers 8,6 --activation tanh --tol 1e-6
    anyarray-nn backends             which backends are usable here, and why not
    anyarray-nn demo                 train an MLP on scikit-learn's digits

``--data`` is one of ``digits``, ``iris``, ``fashion-mnist[:DIR]``, ``mnist[:DIR]`` (the four IDX
files in DIR; their own 60,000/10,000 split), ``runge`` (regression), ``doughnut``, ``squares`` or
``spirals``. The other sets are split by ``--test-size`` with ``--data-seed``; ``evaluate`` must
get the same ``--data`` options as ``train`` (the defaults agree) to see the same test split.

Exit status (scripts can rely on it):

    0    success
    1    a check failed: gradcheck's max relative error is not below --tol, or training diverged
    2    usage error: bad arguments, an unknown or missing dataset, an unusable backend or
         device, an unreadable model file, or a missing optional package (matplotlib for --plot)
    130  interrupted (Ctrl-C)
    141  the output was closed early (e.g. piped into head)

Components of your own (see the README's Extending section) become valid choices when their
module is imported first: ``ANYARRAY_NN_PLUGINS=mypackage.components anyarray-nn train ...``.

Errors are one line on stderr, ``anyarray-nn [COMMAND]: error: <what> (<hint>)``, never a
traceback.
"""

from __future__ import annotations

from .commands import demo
from .main import main

__all__ = ["demo", "main"]
