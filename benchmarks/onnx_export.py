"""ONNX export against skl2onnx: file size and onnxruntime latency for the same MLP.

    python benchmarks/onnx_export.py                   # 784-128-64-10, relu, float32
    python benchmarks/onnx_export.py --repeats 2000

One network, two exports: ``anyarray_nn.export_onnx`` (the library's forward traced on ndonnx)
and skl2onnx converting a scikit-learn ``MLPClassifier`` that carries the *same* weights
(``coefs_``/``intercepts_`` set from ``net.get_weights()``), with ``zipmap=False`` and
probabilities as the output. Both models run in onnxruntime with one intra-op thread, timed
alternately in one process (median of the repeats); the script checks that they agree and
prints the ratios ours / skl2onnx's. Targets: file size and batch-1000 latency at most 1.5x.
The exit status is 1 when a target is missed.

skl2onnx is a benchmark-only dependency: ``pip install skl2onnx`` (plus the ``onnx`` extra).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from anyarray_nn import NN, export_onnx  # noqa: E402

SIZES = [784, 128, 64, 10]
TARGET = 1.5


def sklearn_twin(net: NN, X: np.ndarray, y: np.ndarray):
    """An MLPClassifier with the network's weights (fitted one step for its attributes)."""
    from sklearn.neural_network import MLPClassifier

    hidden = tuple(SIZES[1:-1])
    clf = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    weights = net.get_weights()
    clf.coefs_ = [w.astype(np.float64) for w in weights[0::2]]
    clf.intercepts_ = [b.astype(np.float64) for b in weights[1::2]]
    return clf


def skl2onnx_bytes(clf, n_features: int) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    model = to_onnx(
        clf,
        initial_types=[("X", FloatTensorType([None, n_features]))],
        options={id(clf): {"zipmap": False}},
        target_opset=21,
    )
    return model.SerializeToString()


def session(data: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def time_alternating(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each callable, called in turn ``repeats`` times."""
    for call in calls.values():
        for _ in range(20):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.random((1000, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], 1000)
    net = NN(SIZES, activation="relu", backend="numpy", dtype="float32", seed=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ours.onnx")
        export_onnx(net, path)
        ours = Path(path).read_bytes()
    theirs = skl2onnx_bytes(sklearn_twin(net, X, y), SIZES[0])
    sessions = {"anyarray_nn": session(ours), "skl2onnx": session(theirs)}
    outputs = {name: s.get_outputs()[-1].name for name, s in sessions.items()}
    for name, s in sessions.items():
        got = s.run([outputs[name]], {"X": X})[0]
        error = float(np.max(np.abs(got - net.predict(X))))
        print(f"{name:12s} max |proba - predict| = {error:.2e}")
    sizes = {"anyarray_nn": len(ours), "skl2onnx": len(theirs)}
    print(
        f"\nfile size: ours {sizes['anyarray_nn']} B, skl2onnx {sizes['skl2onnx']} B, "
        f"ratio {sizes['anyarray_nn'] / sizes['skl2onnx']:.3f}"
    )
    ok = sizes["anyarray_nn"] <= TARGET * sizes["skl2onnx"]
    for batch in (1, 1000):
        rows = X[:batch]
        calls = {
            name: (lambda s=s, o=outputs[name], rows=rows: s.run([o], {"X": rows}))
            for name, s in sessions.items()
        }
        median = time_alternating(calls, args.repeats)
        ratio = median["anyarray_nn"] / median["skl2onnx"]
        print(
            f"batch {batch:5d}: ours {median['anyarray_nn'] * 1e6:8.1f} us, skl2onnx "
            f"{median['skl2onnx'] * 1e6:8.1f} us, ratio {ratio:.3f}"
        )
        if batch == 1000:
            ok = ok and ratio <= TARGET
    print(
        f"\ntargets (size and batch-1000 latency <= {TARGET}x skl2onnx): "
        f"{'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
