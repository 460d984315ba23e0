"""The README's quick start as a script: python examples/quickstart.py [--backend torch].

The body of main() between the ``fmt`` markers is the README's "Quick start" snippet as written
there (tests/test_readme.py checks that it stays so) with one change: ``backend=backend`` where the
README has ``backend="numpy"``. The default, ``--backend numpy``, is the README's code exactly;
``--backend torch`` runs it on torch tensors. The snippet's imports are at the top of this file.
After the snippet, main() prints what the gradient check found and returns the evaluation.
"""

# ruff: noqa: E501  (one line of the README's snippet is 101 characters once indented)

from __future__ import annotations

import argparse

from sklearn.datasets import load_iris

import anyarray_nn as ann


def main(backend: str = "numpy") -> dict[str, float]:
    # fmt: off
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)

    net = ann.NN([4, 16, 16, 3], activation="relu", output="softmax", loss="cross_entropy",
                 backend=backend, dtype="float64", seed=0)
    grads = net.gradients(X, y)      # list of NumPy arrays, same order as net.get_weights()
    err = ann.gradcheck(net, X, y)   # max relative error of backprop vs central differences (~1e-10)
    net.fit(X, y, epochs=20, batch_size=32, lr=0.1)   # mini-batch SGD
    probs = net.predict(X)           # NumPy probabilities, shape (150, 3)
    print(net.evaluate(X, y))        # {'loss': ..., 'accuracy': ...}
    # fmt: on
    print(
        f"gradcheck: max relative error {err:.2e} over {len(grads)} arrays; "
        f"predict: probabilities of shape {probs.shape}"
    )
    return net.evaluate(X, y)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numpy", help="the backend the network runs on")
    main(parser.parse_args().backend)
