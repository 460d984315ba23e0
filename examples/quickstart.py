"""The README's quick start as a script: python examples/quickstart.py [--backend torch]."""

from __future__ import annotations

import argparse

from sklearn.datasets import load_iris

import anyarray_nn as ann


def main(backend: str = "numpy") -> dict[str, float]:
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    net = ann.NN(
        [4, 16, 16, 3],
        activation="relu",
        output="softmax",
        loss="cross_entropy",
        backend=backend,
        dtype="float64",
        seed=0,
    )
    print(net)
    print(f"gradcheck: max relative error {ann.gradcheck(net, X[:20], y[:20]):.2e}")
    net.fit(X, y, epochs=20, batch_size=32, lr=0.1)
    result = net.evaluate(X, y)
    print(f"after 20 epochs of SGD: {result}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="numpy")
    main(parser.parse_args().backend)
