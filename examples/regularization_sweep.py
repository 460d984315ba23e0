"""L1 and L2 sweeps on Iris, with the loss curves checked against plain PyTorch.

Write-up: "loss curves on Iris against PyTorch with the same architecture (5-10-5 sigmoid,
300 epochs, four L2 strengths)". Iris has 4 features and 3 classes, so we read "5-10-5" as the
hidden layers: a 4-5-10-5-3 network with sigmoid hidden units and a softmax output, trained on
the 120 training flowers (80/20 stratified split, standardized) full-batch with Adam (lr 0.01)
for 300 epochs in float64, for four L2 strengths (0, 1e-4, 1e-3, 1e-2) and the same four L1
strengths. The penalty is ``l2 * sum(W**2)`` or ``l1 * sum(|W|)`` over the weights, never the
biases, added to the mean cross-entropy.

If torch is installed, the same network is trained in plain torch (``torch.nn.functional``,
``torch.optim.Adam``) from the same initial weights (``net.get_weights()``) on the same full
batch, with the same penalty written into its loss; the two loss curves should agree to
floating-point rounding (we print the max abs difference per strength). Without torch that
column says "torch not installed".

Run:  python examples/regularization_sweep.py [--backend auto] [--fast] [--plot reg.png]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import anyarray_nn as ann
from anyarray_nn.datasets import load_iris

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common.py is next to this file
from _common import announce, blas_threads, example_parser, new_figure, print_table, save_figure

HIDDEN = [5, 10, 5]
WRITEUP = {"setting": "5-10-5 sigmoid, 300 epochs, four L2 strengths", "result": "loss curves"}


def torch_curve(
    weights: list[np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    kind: str,
    lam: float,
    epochs: int,
    lr: float,
) -> np.ndarray:
    """The same training run in plain torch: per-epoch loss (before each step), float64."""
    import torch

    params = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in weights]
    opt = torch.optim.Adam(params, lr=lr)
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(y)
    losses = []
    for _ in range(epochs):
        opt.zero_grad()
        h = Xt
        for W, b in zip(params[:-2:2], params[1:-2:2], strict=True):
            h = torch.sigmoid(h @ W + b)
        loss = torch.nn.functional.cross_entropy(h @ params[-2] + params[-1], yt)
        if lam:
            Ws = params[::2]
            if kind == "l2":
                loss = loss + lam * sum((W * W).sum() for W in Ws)
            else:
                loss = loss + lam * sum(W.abs().sum() for W in Ws)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def main(
    backend: str = "auto",
    fast: bool = False,
    plot: str | None = None,
    seed: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    epochs, strengths = (30, [0.0, 1e-3]) if fast else (300, [0.0, 1e-4, 1e-3, 1e-2])
    lr = 0.01
    has_torch = importlib.util.find_spec("torch") is not None
    torch_note = f"   torch: {'yes' if has_torch else 'not installed'}"
    backend_name = announce(backend, threads, dtype="float64", extra=torch_note)
    Xtr, Xte, ytr, yte = load_iris(split=True, seed=seed)
    sizes = [4, *HIDDEN, 3]
    result: dict[str, Any] = {
        "backend": backend_name,
        "epochs": epochs,
        "torch": has_torch,
        "runs": [],
    }
    curves: dict[tuple[str, float], tuple[np.ndarray, np.ndarray | None]] = {}
    rows = []
    start = time.perf_counter()
    with blas_threads(threads):
        for kind in ("l2", "l1"):
            for lam in strengths:
                net = ann.NN(
                    sizes,
                    activation="sigmoid",
                    backend=backend,
                    dtype="float64",
                    seed=seed,
                    **{kind: lam},
                )
                w0 = net.get_weights()
                history = net.fit(
                    Xtr,
                    ytr,
                    epochs=epochs,
                    batch_size=len(Xtr),
                    shuffle=False,
                    optimizer=ann.Adam(lr=lr),
                )
                ours = np.array(history["loss"])
                theirs = torch_curve(w0, Xtr, ytr, kind, lam, epochs, lr) if has_torch else None
                diff = float(np.max(np.abs(ours - theirs))) if theirs is not None else None
                curves[(kind, lam)] = (ours, theirs)
                Ws = net.get_weights()[::2]
                run = {
                    "penalty": kind,
                    "strength": lam,
                    "final_loss": float(ours[-1]),
                    "test_accuracy": float(np.mean(net.predict_classes(Xte) == yte)),
                    "sum_sq_weights": float(sum((W * W).sum() for W in Ws)),
                    "sum_abs_weights": float(sum(np.abs(W).sum() for W in Ws)),
                    "max_abs_diff_vs_torch": diff,
                }
                result["runs"].append(run)
                rows.append(
                    [
                        kind.upper(),
                        f"{lam:g}",
                        f"{run['final_loss']:.4f}",
                        f"{run['test_accuracy']:.3f}",
                        f"{run['sum_sq_weights']:.1f}",
                        f"{run['sum_abs_weights']:.1f}",
                        "torch not installed" if diff is None else f"{diff:.1e}",
                    ]
                )
    result["seconds"] = time.perf_counter() - start
    diffs = [
        r["max_abs_diff_vs_torch"] for r in result["runs"] if r["max_abs_diff_vs_torch"] is not None
    ]
    result["max_abs_diff_vs_torch"] = max(diffs) if diffs else None
    print_table(
        f"Iris, 4-{'-'.join(map(str, HIDDEN))}-3 sigmoid, full batch, Adam lr {lr}, {epochs} "
        f"epochs, float64, {result['seconds']:.1f} s",
        [
            "penalty",
            "strength",
            "final train loss",
            "test accuracy",
            "sum W^2",
            "sum |W|",
            "max |loss ours - torch| over epochs",
        ],
        rows,
    )
    worst = "n/a (torch not installed)" if not diffs else f"{max(diffs):.1e}"
    print_table(
        "write-up vs ours",
        ["task", "write-up", "ours"],
        [
            [
                "loss curves vs PyTorch, same architecture",
                "curves shown side by side",
                f"identical curves: max abs difference {worst}",
            ]
        ],
    )
    if plot:
        _plot(curves, plot)
    return result


def _plot(curves: dict[tuple[str, float], tuple[np.ndarray, Any]], path: str) -> None:
    fig = new_figure(11, 4)
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("l2", "l1"), strict=True):
        mine = [(lam, pair) for (which, lam), pair in curves.items() if which == kind]
        for k, (lam, (ours, theirs)) in enumerate(mine):
            color = f"C{k}"
            epochs = np.arange(1, len(ours) + 1)
            ax.plot(epochs, ours, color=color, label=f"{kind} {lam:g} (anyarray_nn)")
            if theirs is not None:
                ax.plot(
                    epochs, theirs, "--", color="black", lw=0.8, label="torch" if k == 0 else None
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("training objective (loss + penalty)")
        ax.set_title(f"{kind.upper()} sweep")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    return example_parser(__doc__, plot="save the loss curves as a PNG")


if __name__ == "__main__":
    main(**vars(build_parser().parse_args()))
