"""Benchmarks of anyarray_nn against scikit-learn, PyTorch and a hand-written NumPy loop.

Run ``python benchmarks/run.py --quick`` (or ``python -m benchmarks.run``); see
``benchmarks/README.md``. Modules:

- :mod:`benchmarks.contenders`: the training loops being timed, behind one interface, plus
  :class:`~benchmarks.contenders.NumpyMLP`, the hand-written NumPy floor;
- :mod:`benchmarks.flops`: exact GEMM lists and FLOP counts of an epoch, GEMM timing;
- :mod:`benchmarks.memory`: peak/epoch RSS of one contender in a fresh subprocess;
- :mod:`benchmarks.common`: data, the alternating timer, statistics, machine description;
- :mod:`benchmarks.run`: the runner (cases, targets, table, JSON);
- :mod:`benchmarks.profile_epoch`: cProfile of one epoch, anyarray_nn vs the NumPy loop.
"""
