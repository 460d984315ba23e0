"""Data-parallel training over MPI on scikit-learn's digits (mpiexec -n 2 python THIS_FILE).

Every rank loads the same data (embedded in scikit-learn, no download) and calls
``net.fit(..., comm=MPI.COMM_WORLD)``: each global batch is split across the ranks, one allreduce
per step sums their gradients, and every rank takes the same optimizer step, so N ranks train to
the numbers of one process with the same global batch. Rank 0 alone prints. Run without
``mpiexec`` (or without mpi4py) it trains as one process and says so.

    pip install -e ".[mpi]"
    mpiexec -n 2 python examples/distributed.py [--epochs 20] [--batch-size 128]
"""

from __future__ import annotations

import argparse
from typing import Any

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import anyarray_nn as ann
from anyarray_nn.distributed import limit_rank_threads


def world() -> tuple[Any, int, int]:
    """(communicator or None, this process's rank, the number of ranks)."""
    try:
        from mpi4py import MPI  # the mpi extra
    except ImportError:
        return None, 0, 1
    comm = MPI.COMM_WORLD
    return comm, comm.Get_rank(), comm.Get_size()


def main(epochs: int = 20, batch_size: int = 128) -> dict[str, float]:
    """Train a 64-64-10 MLP on digits over every rank; return the test metrics."""
    comm, rank, size = world()
    # each rank's BLAS on its share of the cores, not on all of them (every rank calls it)
    threads = limit_rank_threads(comm) if size > 1 else "one process"
    if rank == 0:
        how = "mpi4py" if comm is not None else "mpi4py is not installed"
        print(f"ranks: {size} ({how}); each global batch of {batch_size} rows split among them")
        print(threads)
        if size == 1:
            print("one rank: start it with mpiexec -n 2 python examples/distributed.py")
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )
    net = ann.NN([64, 64, 10], activation="relu", backend="numpy", seed=0)
    history = net.fit(
        X_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        optimizer="adam",
        lr=1e-3,
        comm=comm if size > 1 else None,
        verbose=0,
    )
    result = net.evaluate(X_test, y_test)
    if rank == 0:
        print(f"final training loss {history['loss'][-1]:.4f} after {epochs} epochs")
        print(f"test accuracy {result['accuracy']:.4f} on {len(y_test)} digits")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    main(args.epochs, args.batch_size)
