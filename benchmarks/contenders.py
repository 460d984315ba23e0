"""The training loops being timed, behind one interface.

A :class:`Problem` is the data and the recipe (sizes, activation, batch size, epochs, Adam's
learning rate, seed). A contender's :meth:`~Contender.prepare` does the untimed setup (build the
model with the problem's *initial weights*, the optimizer, buffers that a user would build once)
and returns a :class:`Trial`; ``trial.run()`` is the timed part: ``epochs`` epochs of shuffled
mini-batch Adam, returning the last epoch's mean training loss. ``trial.predict(X)`` gives the
trained model's outputs (probabilities or values) for sanity checks.

All contenders start from the same weights, those of ``anyarray_nn.NN(..., seed=problem.seed)``:

- anyarray_nn builds them itself from the seed;
- torch gets them copied into ``nn.Linear`` (``weight`` is ``W.T``);
- scikit-learn gets them through ``warm_start``: a throw-away ``fit`` on a few rows creates every
  fitted attribute, then ``coefs_``/``intercepts_`` are overwritten and the training counters
  reset, so the timed ``fit`` starts from our weights with a fresh Adam state;
- the hand-written NumPy loop copies them.

The shuffle orders differ between libraries (each uses its own RNG), which changes nothing in
the cost of an epoch.

What each timed ``run`` includes: anyarray_nn and scikit-learn, the whole public ``fit`` call
(input validation, label encoding, moving data to the device); torch, a plain loop over
``torch.from_numpy`` views (moving them to the GPU for CUDA); the NumPy loop, only the loop.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CONTENDERS",
    "Contender",
    "JaxLoop",
    "KerasJax",
    "NumpyLoop",
    "NumpyMLP",
    "Ours",
    "Problem",
    "Sklearn",
    "TorchLoop",
    "Trial",
    "by_name",
    "cross_entropy",
]


# -- the problem --------------------------------------------------------------------------------
@dataclass
class Problem:
    """Data plus training recipe. ``y``: int labels (classification) or values (regression)."""

    X: np.ndarray
    y: np.ndarray
    sizes: list[int]
    activation: str = "relu"
    task: str = "classification"
    batch_size: int = 128
    epochs: int = 1
    lr: float = 1e-3
    seed: int = 0
    _weights: list[np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.task not in ("classification", "regression"):
            raise ValueError(f"task must be classification or regression, got {self.task!r}")
        if self.X.ndim != 2 or self.X.shape[1] != self.sizes[0]:
            raise ValueError(f"X has shape {self.X.shape}; sizes[0] is {self.sizes[0]}")

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def dtype(self) -> str:
        return str(self.X.dtype)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def output(self) -> str:
        return "softmax" if self.task == "classification" else "identity"

    def new_net(self, backend: str = "numpy", device: Any = None) -> Any:
        import anyarray_nn as ann

        return ann.NN(
            self.sizes,
            activation=self.activation,
            output=self.output,
            backend=backend,
            device=device,
            dtype=self.dtype,
            seed=self.seed,
        )

    def initial_weights(self) -> list[np.ndarray]:
        """``W1, b1, W2, b2, ...`` (``W`` of shape ``(fan_in, fan_out)``) in the data's dtype."""
        if self._weights is None:
            self._weights = self.new_net("numpy").get_weights()
        return [w.copy() for w in self._weights]

    def replace(self, **changes: Any) -> Problem:
        """A copy with some fields changed (the cached initial weights are kept while the
        fields that determine them, sizes, activation, seed and dtype, stay the same)."""
        fields = {
            "X": self.X,
            "y": self.y,
            "sizes": list(self.sizes),
            "activation": self.activation,
            "task": self.task,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "lr": self.lr,
            "seed": self.seed,
        }
        fields.update(changes)
        out = Problem(**fields)
        if (out.sizes, out.activation, out.seed, out.dtype, out.task) == (
            self.sizes,
            self.activation,
            self.seed,
            self.dtype,
            self.task,
        ):
            out._weights = self._weights
        return out

    def head(self, n: int) -> Problem:
        """The first ``n`` rows (for warm-ups)."""
        n = min(n, self.n)
        return self.replace(X=self.X[:n], y=self.y[:n])


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p[label]`` (for sanity checks on ``predict`` output)."""
    p = np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), 1e-30, None)
    return float(-np.mean(np.log(p)))


# -- the interface ------------------------------------------------------------------------------
class Trial:
    """One prepared run: ``run()`` is what is timed."""

    def run(self) -> float:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    #: Facts worth recording (e.g. scikit-learn's compute dtype), set by each trial.
    info: dict[str, Any]


class Contender:
    """A training loop. ``name`` is short and unique; ``label`` says what it is."""

    name = "contender"
    label = ""

    def available(self) -> str | None:
        """``None`` if usable here, else the reason it is not."""
        return None

    def prepare(self, problem: Problem) -> Trial:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work (called before starting and stopping a timer)."""

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _has(module: str) -> str | None:
    import importlib.util

    return None if importlib.util.find_spec(module) is not None else f"{module} is not installed"


def _cupy_reason() -> str | None:
    reason = _has("cupy")
    if reason:
        return reason
    try:
        import cupy

        return None if cupy.is_available() else "cupy.is_available() is False"
    except Exception as exc:  # a broken CUDA install raises all sorts of things
        return f"cupy unusable: {exc}"


def _torch_cuda_reason() -> str | None:
    reason = _has("torch")
    if reason:
        return reason
    import torch

    return None if torch.cuda.is_available() else "torch.cuda.is_available() is False"


# -- anyarray_nn --------------------------------------------------------------------------------
class _OursTrial(Trial):
    def __init__(self, problem: Problem, contender: Ours) -> None:
        self.problem, self.contender = problem, contender
        self.net = problem.new_net(contender.backend, contender.device)
        self.info = {"backend": repr(self.net.backend)}
        self.X, self.y = problem.X, problem.y
        if contender.compiled:
            self._prepare_compiled()

    def _prepare_compiled(self) -> None:
        """Untimed: the data moved to the device once (as a JAX user keeps it), and the step
        compiled for this problem's batch shapes by one throw-away fit of a copy (the compiled
        step is cached by architecture, so the timed fit reuses it); compile time reported.
        (``fit`` reads the epoch's sums and the weights' check back, so it returns only when
        the device has finished: no extra sync is needed.)"""
        if not self.contender.host_data:
            start = time.perf_counter()
            self.X = self.net.backend.asarray(self.problem.X)
            be, labels = self.net.backend, self.problem.task == "classification"
            self.y = be.asarray(self.problem.y, dtype=be.index_dtype if labels else None)
            self.info["to_device_s"] = time.perf_counter() - start
        key = (id(self.problem), self.problem.n, self.problem.batch_size)
        if key not in self.contender.warmed:
            history = self.net.copy().fit(
                self.X, self.y, epochs=1, batch_size=self.problem.batch_size,
                optimizer="adam", lr=self.problem.lr, metrics=self._metrics(),
            )  # fmt: skip
            self.contender.warmed[key] = history.params.get("compile_seconds", 0.0)
        self.info["compile_s"] = self.contender.warmed[key]

    def _metrics(self) -> list[str] | None:
        return None if self.contender.metrics is None else list(self.contender.metrics)

    def run(self, **fit_kwargs: Any) -> float:
        p = self.problem
        metrics = self._metrics()
        history = self.net.fit(
            self.X,
            self.y,
            epochs=p.epochs,
            batch_size=p.batch_size,
            optimizer="adam",
            lr=p.lr,
            metrics=metrics,
            verbose=0,
            **fit_kwargs,
        )
        return history["loss"][-1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.net.predict(X)


class Ours(Contender):
    """``anyarray_nn.NN(...).fit(X, y, epochs, batch_size, optimizer="adam", lr, metrics)``.

    ``metrics=()`` disables the per-batch metric (the benchmark's main configuration);
    ``metrics=None`` keeps ``fit``'s default (accuracy or r2, accumulated every batch).
    A compiled backend's data is moved to the device before timing (as a JAX user keeps it),
    unless ``host_data=True``: then the timed ``fit`` is given the NumPy arrays.
    """

    def __init__(
        self,
        backend: str = "numpy",
        device: Any = None,
        metrics: Sequence[str] | None = (),
        name: str | None = None,
        host_data: bool = False,
    ) -> None:
        self.backend, self.device, self.metrics = backend, device, metrics
        self.host_data = host_data
        #: compile time per (problem, batch size) warmed, reported as info["compile_s"]
        self.warmed: dict[tuple[int, int, int], float] = {}
        self.compiled = backend == "jax"
        where = backend if device is None else f"{backend}-{device}"
        plain = metrics is not None and not metrics
        self.name = name or ("ours-" + where + ("" if plain else "+metrics"))
        self.label = (
            f"anyarray_nn backend={backend!r}"
            + (f" device={device!r}" if device is not None else "")
            + (", metrics=[]" if plain else ", default metrics")
        )

    def available(self) -> str | None:
        if self.backend == "cupy":
            return _cupy_reason()
        if self.backend == "array_api_strict":
            return _has("array_api_strict")
        if self.backend == "torch":
            return _torch_cuda_reason() if str(self.device).startswith("cuda") else _has("torch")
        if self.backend == "jax":
            return _has("jax")
        return None

    def prepare(self, problem: Problem) -> Trial:
        return _OursTrial(problem, self)

    def sync(self) -> None:
        if self.backend == "cupy":
            import cupy

            cupy.cuda.Device().synchronize()
        elif self.backend == "torch" and str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize()


# -- scikit-learn ------------------------------------------------------------------------------
class _SklearnTrial(Trial):
    def __init__(self, problem: Problem) -> None:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        self.problem = problem
        cls = MLPClassifier if problem.task == "classification" else MLPRegressor
        est = cls(
            hidden_layer_sizes=tuple(problem.sizes[1:-1]),
            activation=problem.activation,
            solver="adam",
            alpha=0.0,
            batch_size=problem.batch_size,
            learning_rate_init=problem.lr,
            max_iter=1,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=10**9,
            random_state=problem.seed,
            warm_start=True,
        )
        # A throw-away fit on a few rows (every class present) creates every fitted attribute...
        rows = _rows_with_every_class(problem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning, batch_size > rows
            est.fit(problem.X[rows], problem.y[rows])
        # ... then our initial weights replace sklearn's, and the counters start afresh. With
        # warm_start the next fit() keeps coefs_ and builds a new Adam optimizer (t = 0).
        weights = problem.initial_weights()
        dtype = problem.X.dtype
        est.coefs_ = [w.astype(dtype, copy=True) for w in weights[0::2]]
        est.intercepts_ = [b.astype(dtype, copy=True) for b in weights[1::2]]
        est._best_coefs = [c.copy() for c in est.coefs_]
        est._best_intercepts = [b.copy() for b in est.intercepts_]
        est.n_iter_, est.t_ = 0, 0
        est.loss_curve_, est.best_loss_, est._no_improvement_count = [], np.inf, 0
        est.set_params(max_iter=problem.epochs)
        self.est = est
        self.info: dict[str, Any] = {}

    def run(self) -> float:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # max_iter is reached by design; "batch_size larger than sample size" is clipped
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            self.est.fit(self.problem.X, self.problem.y)
        self.info = {
            "compute_dtype": str(self.est.coefs_[0].dtype),
            "n_iter": int(self.est.n_iter_),
            "t": int(self.est.t_),
        }
        return float(self.est.loss_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.problem.task == "classification":
            return self.est.predict_proba(X)
        return self.est.predict(X).reshape(len(X), -1)


def _rows_with_every_class(problem: Problem, extra: int = 32) -> np.ndarray:
    if problem.task != "classification":
        return np.arange(min(problem.n, extra))
    _, first = np.unique(problem.y, return_index=True)
    return np.unique(np.concatenate([first, np.arange(min(problem.n, extra))]))


class Sklearn(Contender):
    """``MLPClassifier``/``MLPRegressor(solver="adam", alpha=0, tol=0, batch_size, max_iter)``."""

    name = "sklearn"
    label = "scikit-learn MLPClassifier/MLPRegressor, adam, alpha=0 (warm-started on our weights)"

    def prepare(self, problem: Problem) -> Trial:
        return _SklearnTrial(problem)


# -- PyTorch --------------------------------------------------------------------------------
class _TorchTrial(Trial):
    def __init__(self, problem: Problem, device: str) -> None:
        import torch
        from torch import nn

        self.problem, self.device = problem, device
        dtype = getattr(torch, problem.dtype)
        weights = problem.initial_weights()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[problem.activation]
        layers: list[Any] = []
        n_layers = len(problem.sizes) - 1
        for i in range(n_layers):
            linear = nn.Linear(problem.sizes[i], problem.sizes[i + 1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights[2 * i].T)))
                linear.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
            layers.append(linear)
            if i < n_layers - 1:
                layers.append(act())
        self.model = nn.Sequential(*layers).to(device=device, dtype=dtype)
        self.loss_fn = nn.CrossEntropyLoss() if problem.task == "classification" else nn.MSELoss()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=problem.lr)
        self.gen = torch.Generator().manual_seed(problem.seed)
        if problem.task == "classification":
            self.y_host = np.asarray(problem.y, dtype=np.int64)
        else:
            self.y_host = np.asarray(problem.y, dtype=problem.X.dtype).reshape(problem.n, -1)
        self.info = {"threads": torch.get_num_threads(), "device": device}

    def run(self) -> float:
        import torch

        p, device = self.problem, self.device
        X = torch.from_numpy(p.X).to(device)
        y = torch.from_numpy(self.y_host).to(device)
        n, bs = p.n, p.batch_size
        model, loss_fn, opt = self.model, self.loss_fn, self.opt
        model.train()
        total = torch.zeros((), device=device)
        for _ in range(p.epochs):
            perm = torch.randperm(n, generator=self.gen).to(device)
            total = torch.zeros((), device=device)
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                xb, yb = X[idx], y[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                total += loss.detach() * xb.shape[0]
        return float(total) / n

    def predict(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(X)).to(self.device))
            if self.problem.task == "classification":
                out = torch.softmax(out, dim=1)
        return out.cpu().numpy()


class TorchLoop(Contender):
    """An idiomatic PyTorch loop: ``nn.Sequential`` of ``Linear``/activation,
    ``CrossEntropyLoss`` (or ``MSELoss``), ``torch.optim.Adam`` with its defaults, batches by
    slicing a ``torch.randperm``; torch's default thread count."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.name = "torch" if device == "cpu" else f"torch-{device}"
        self.label = f"plain PyTorch loop on {device} (nn.Sequential, torch.optim.Adam)"

    def available(self) -> str | None:
        return _torch_cuda_reason() if self.device.startswith("cuda") else _has("torch")

    def prepare(self, problem: Problem) -> Trial:
        return _TorchTrial(problem, self.device)

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()


# -- the hand-written NumPy loop -----------------------------------------------------------------
class NumpyMLP:
    """The same math as anyarray_nn, written directly in NumPy: the floor for overhead.

    Forward ``a = f(x @ W + b)``, fused softmax + cross-entropy (or identity + MSE, the mean over
    samples and outputs), backward ``dW = x^T dz``, ``db = sum(dz)``, ``dx = dz W^T`` (none for
    the first layer), and torch's Adam, all float32 (or the weights' dtype) into preallocated
    buffers with in-place updates.
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        activation: str = "relu",
        task: str = "classification",
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if activation not in ("relu", "tanh"):
            raise ValueError(f"NumpyMLP supports relu and tanh, not {activation!r}")
        self.params = [np.array(w, copy=True) for w in weights]
        self.W, self.b = self.params[0::2], self.params[1::2]
        self.dtype = self.params[0].dtype
        self.activation, self.task = activation, task
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.tmp = [np.empty_like(p) for p in self.params]
        self.grads = [np.empty_like(p) for p in self.params]
        self.t = 0
        self._rows = 0

    def _alloc(self, rows: int) -> None:
        if rows <= self._rows:
            return
        dt = self.dtype
        self.xbuf = np.empty((rows, self.W[0].shape[0]), dt)
        self.a = [np.empty((rows, W.shape[1]), dt) for W in self.W]  # activations (in place of z)
        self.d = [np.empty((rows, W.shape[1]), dt) for W in self.W]  # dL/dz
        self.scratch = [np.empty((rows, W.shape[1]), dt) for W in self.W]
        self.arange = np.arange(rows)
        self._rows = rows

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits (classification) or outputs (regression) of the last layer; fills ``self.a``."""
        m = x.shape[0]
        self._alloc(m)
        h = x
        last = len(self.W) - 1
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            z = self.a[i][:m]
            np.matmul(h, W, out=z)
            z += b
            if i < last:
                if self.activation == "relu":
                    np.maximum(z, 0, out=z)
                else:
                    np.tanh(z, out=z)
            h = z
        return h

    def backward(self, x: np.ndarray, target: np.ndarray) -> float:
        """Gradients of the mean loss into ``self.grads``; returns the summed batch loss."""
        m = x.shape[0]
        out = self.forward(x)
        last = len(self.W) - 1
        d = self.d[last][:m]
        if self.task == "classification":
            rows = self.arange[:m]
            np.subtract(out, out.max(axis=1, keepdims=True), out=d)  # shifted logits
            picked = float(d[rows, target].sum())
            np.exp(d, out=d)
            s = d.sum(axis=1, keepdims=True)
            loss = float(np.log(s).sum()) - picked
            d /= s
            d[rows, target] -= 1.0
            d *= 1.0 / m
        else:
            np.subtract(out, target, out=d)
            loss = float(np.vdot(d, d)) / d.shape[1]
            d *= 2.0 / d.size
        for i in range(last, -1, -1):
            h = x if i == 0 else self.a[i - 1][:m]
            np.matmul(h.T, d, out=self.grads[2 * i])
            np.sum(d, axis=0, out=self.grads[2 * i + 1])
            if i == 0:
                break
            dh = self.d[i - 1][:m]
            np.matmul(d, self.W[i].T, out=dh)
            if self.activation == "relu":
                # a multiply by the bool mask: branch-free, unlike copyto(where=)/np.where,
                # which are ~20x slower on a random ~50% mask
                np.multiply(dh, h > 0, out=dh)
            else:
                s = self.scratch[i - 1][:m]
                np.multiply(h, h, out=s)
                np.subtract(1, s, out=s)
                dh *= s
            d = dh
        return loss

    def gradients(self, x: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
        """Copies of the gradients for one batch (order ``W1, b1, W2, b2, ...``)."""
        self.backward(x, target)
        return [g.copy() for g in self.grads]

    def adam_step(self) -> None:
        """torch.optim.Adam's update, in place."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step = self.lr / (1.0 - b1**self.t)
        inv_bc2 = 1.0 / math.sqrt(1.0 - b2**self.t)
        for p, g, m, v, tmp in zip(self.params, self.grads, self.m, self.v, self.tmp, strict=True):
            m *= b1
            np.multiply(g, 1.0 - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp *= inv_bc2
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int = 128,
        seed: int = 0,
        order: Callable[[int], np.ndarray] | None = None,
    ) -> float:
        """Shuffled mini-batch Adam; returns the last epoch's mean loss.

        ``order(epoch)`` gives the row order (default: ``default_rng((seed, epoch))``).
        """
        n = X.shape[0]
        self._alloc(min(batch_size, n))
        targets = y if self.task == "classification" else y.reshape(n, -1).astype(self.dtype)
        total = 0.0
        for epoch in range(epochs):
            if order is None:
                idx_all = np.random.default_rng((seed, epoch)).permutation(n)
            else:
                idx_all = order(epoch)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = idx_all[start : start + batch_size]
                xb = self.xbuf[: len(idx)]
                np.take(X, idx, axis=0, out=xb, mode="clip")  # "raise" buffers: 3x slower
                total += self.backward(xb, targets[idx])
                self.adam_step()
        return total / n

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.forward(X).copy()
        if self.task == "classification":
            out -= out.max(axis=1, keepdims=True)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
        return out


class _NumpyTrial(Trial):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.mlp = NumpyMLP(
            problem.initial_weights(), problem.activation, problem.task, lr=problem.lr
        )
        self.info = {}

    def run(self) -> float:
        p = self.problem
        return self.mlp.fit(p.X, p.y, p.epochs, p.batch_size, seed=p.seed)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.mlp.predict(np.ascontiguousarray(X, dtype=self.mlp.dtype))


class NumpyLoop(Contender):
    name = "numpy-loop"
    label = "hand-written NumPy loop, same math, preallocated buffers, in-place Adam"

    def prepare(self, problem: Problem) -> Trial:
        return _NumpyTrial(problem)


# -- a hand-written JAX loop ---------------------------------------------------------------------
class _JaxLoopTrial(Trial):
    """What a JAX user writes by hand: the MLP as a pure function, ``jax.value_and_grad``,
    Adam as torch computes it, and an epoch's full batches in one ``jax.jit``-compiled
    ``jax.lax.scan`` (a last, smaller batch is one call of the compiled single step). Data and
    weights live on JAX's default device, the data passed as arguments (not baked in as
    constants). Preparing (moving the data, compiling both shapes once per contender and
    recipe) is untimed, as in :class:`_OursTrial`."""

    def __init__(self, problem: Problem, contender: JaxLoop) -> None:
        import jax
        import jax.numpy as jnp

        self.problem, self.jax, self.jnp = problem, jax, jnp
        start = time.perf_counter()
        self.X = jnp.asarray(problem.X)
        classify = problem.task == "classification"
        self.y = jnp.asarray(problem.y if classify else problem.y.reshape(problem.n, -1))
        self.info = {"to_device_s": time.perf_counter() - start, "device": str(self.X.device)}
        self.params = [jnp.asarray(w) for w in problem.initial_weights()]
        self.m = [jnp.zeros_like(w) for w in self.params]
        self.v = [jnp.zeros_like(w) for w in self.params]
        self.t, self.epoch = 0, 0
        key = (tuple(problem.sizes), problem.activation, problem.task, problem.lr)
        if key not in contender.compiled:
            step = _jax_loop_step(problem)

            def epoch(state: Any, data: Any, xs: Any) -> Any:
                return jax.lax.scan(lambda carry, b: step(carry, b, data), state, xs)

            contender.compiled[key] = (jax.jit(step), jax.jit(epoch))
        self._step, self._epoch = contender.compiled[key]
        start = time.perf_counter()
        self._warm()
        self.info["compile_s"] = time.perf_counter() - start

    def _batches(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.problem
        order = np.random.default_rng((p.seed, self.epoch)).permutation(p.n).astype(np.int32)
        full = (p.n // p.batch_size) * p.batch_size
        return order[:full].reshape(-1, p.batch_size), order[full:]

    def _scalar(self, t: int) -> Any:
        return self.problem.X.dtype.type(t)

    def _warm(self) -> None:
        """Compile both shapes (a no-op after the first trial of a recipe), on throw-away
        results."""
        full, rest = self._batches()
        state, data = (self.params, self.m, self.v), (self.X, self.y)
        if len(full):
            t = np.arange(1, len(full) + 1).astype(self.problem.X.dtype)
            self.jax.block_until_ready(self._epoch(state, data, (full, t)))
        if len(rest):
            self.jax.block_until_ready(self._step(state, (rest, self._scalar(1)), data))

    def run(self) -> float:
        state, data, total = (self.params, self.m, self.v), (self.X, self.y), 0.0
        for _ in range(self.problem.epochs):
            full, rest = self._batches()
            total = 0.0
            if len(full):
                t = np.arange(self.t + 1, self.t + len(full) + 1).astype(self.problem.X.dtype)
                state, losses = self._epoch(state, data, (full, t))
                self.t += len(full)
                total += float(self.jnp.sum(losses))
            if len(rest):
                self.t += 1
                state, value = self._step(state, (rest, self._scalar(self.t)), data)
                total += float(value)
            self.epoch += 1
        self.params, self.m, self.v = state
        return total / self.problem.n

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = _jax_mlp(self.problem, self.params, self.jnp.asarray(X))
        if self.problem.task == "classification":
            out = self.jax.nn.softmax(out, axis=1)
        return np.asarray(out)


def _jax_mlp(problem: Problem, params: list[Any], h: Any) -> Any:
    """The MLP's output layer values (logits for classification)."""
    import jax

    act = jax.nn.relu if problem.activation == "relu" else jax.numpy.tanh
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = act(h)
    return h


def _jax_loop_step(problem: Problem) -> Callable[..., Any]:
    """``step((params, m, v), (rows, t), (X, y)) -> ((params, m, v), loss * len(rows))``."""
    import jax
    import jax.numpy as jnp

    classify, lr, b1, b2, eps = problem.task == "classification", problem.lr, 0.9, 0.999, 1e-8

    def loss(params: list[Any], xb: Any, yb: Any) -> Any:
        out = _jax_mlp(problem, params, xb)
        if classify:
            logp = jax.nn.log_softmax(out, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))
        return jnp.mean((out - yb) ** 2)  # torch.nn.MSELoss, as the other loops

    def step(state: Any, batch: Any, data: Any) -> Any:
        (params, m, v), (rows, t), (X, y) = state, batch, data
        value, grads = jax.value_and_grad(loss)(params, X[rows], y[rows])
        m = [b1 * a + (1 - b1) * g for a, g in zip(m, grads, strict=True)]
        v = [b2 * a + (1 - b2) * g * g for a, g in zip(v, grads, strict=True)]
        size, root = lr / (1 - b1**t), jnp.sqrt(1 - b2**t)
        params = [
            w - size * a / (jnp.sqrt(s) / root + eps) for w, a, s in zip(params, m, v, strict=True)
        ]
        return (params, m, v), value * rows.shape[0]

    return step


class JaxLoop(Contender):
    name = "jax-loop"
    label = "hand-written JAX MLP: value_and_grad, Adam, jit + lax.scan over an epoch"

    def __init__(self) -> None:
        #: the compiled (step, epoch) functions per recipe, reused by every trial
        self.compiled: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def available(self) -> str | None:
        return _has("jax")

    def prepare(self, problem: Problem) -> Trial:
        return _JaxLoopTrial(problem, self)


# -- Keras 3 on JAX (optional) ---------------------------------------------------------------------
def _keras_reason() -> str | None:
    """Why Keras 3 on JAX cannot run here (``None`` when it can). ``KERAS_BACKEND`` is set to
    ``jax`` when unset, before keras is first imported; another backend is refused."""
    import os

    reason = _has("keras") or _has("jax")
    if reason:
        return f"{reason} (optional: pip install keras; KERAS_BACKEND=jax needs no tensorflow)"
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        if os.environ["KERAS_BACKEND"] != "jax":
            return f"KERAS_BACKEND={os.environ['KERAS_BACKEND']} is set; keras-jax needs jax"
    import keras

    if not keras.__version__.startswith("3.") or keras.backend.backend() != "jax":
        return f"keras {keras.__version__} runs on {keras.backend.backend()}; needs Keras 3 on jax"
    return None


class _KerasTrial(Trial):
    """What a Keras user writes: a ``keras.Sequential`` of ``Dense`` layers,
    ``compile(Adam, SparseCategoricalCrossentropy(from_logits=True) or MeanSquaredError,
    jit_compile=True)`` and ``model.fit(X, y, batch_size, epochs, shuffle=True)`` on the NumPy
    arrays (Keras's own batching; its train step is ``jax.jit``-compiled, one call per batch).
    One model per recipe is kept by the contender and reset to the initial weights and a zero
    Adam state for each trial, so the compiled step is reused; the first trial of a problem
    runs one untimed epoch to compile both batch shapes (compile time reported)."""

    def __init__(self, problem: Problem, contender: KerasJax) -> None:
        reason = _keras_reason()  # sets KERAS_BACKEND before keras is imported
        if reason:
            raise RuntimeError(f"keras-jax is not available: {reason}")
        self.problem = problem
        key = (tuple(problem.sizes), problem.activation, problem.task, problem.dtype)
        if key not in contender.models:
            contender.models[key] = _keras_model(problem, contender.epsilon)
        self.model = contender.models[key]
        warm = (id(problem), problem.n, problem.batch_size, key)
        if warm not in contender.warmed:
            start = time.perf_counter()
            self._reset()
            self.run()
            contender.warmed[warm] = time.perf_counter() - start
        self._reset()
        self.info = {"compile_s": contender.warmed[warm], "jit_compile": True}

    def _reset(self) -> None:
        import keras

        self.model.set_weights(self.problem.initial_weights())
        opt = self.model.optimizer
        for var in opt.variables:  # the step counter, m and v; not the learning rate
            if not var.path.endswith("learning_rate"):
                var.assign(keras.ops.zeros(var.shape, dtype=var.dtype))
        opt.learning_rate = self.problem.lr

    def run(self, shuffle: bool = True) -> float:
        p = self.problem
        history = self.model.fit(
            p.X, p.y, batch_size=p.batch_size, epochs=p.epochs, shuffle=shuffle, verbose=0
        )
        return float(history.history["loss"][-1])

    def predict(self, X: np.ndarray) -> np.ndarray:
        import keras

        out = self.model.predict(np.asarray(X, dtype=self.problem.dtype), verbose=0)
        if self.problem.task == "classification":
            out = keras.ops.softmax(out, axis=1)
        return np.asarray(out)


def _keras_model(problem: Problem, epsilon: float = 1e-8) -> Any:
    import keras

    layers: list[Any] = [keras.Input((problem.sizes[0],), dtype=problem.dtype)]
    for i, width in enumerate(problem.sizes[1:]):
        act = problem.activation if i < len(problem.sizes) - 2 else None
        layers.append(keras.layers.Dense(width, activation=act, dtype=problem.dtype))
    model = keras.Sequential(layers)
    classify = problem.task == "classification"
    model.compile(
        # torch's and our Adam hyperparameters (Keras's default epsilon is 1e-7); Keras adds
        # epsilon to sqrt(v) before the bias correction, torch after it: the same function up
        # to how a vanishing gradient is damped
        optimizer=keras.optimizers.Adam(problem.lr, beta_1=0.9, beta_2=0.999, epsilon=epsilon),
        loss=(
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            if classify
            else keras.losses.MeanSquaredError()
        ),
        jit_compile=True,
    )
    return model


class KerasJax(Contender):
    """Keras 3 on JAX, ``model.fit`` with its ``jax.jit``-compiled train step (optional: skipped
    when keras is not installed)."""

    name = "keras-jax"
    label = "Keras 3 on JAX: Sequential Dense, Adam, model.fit (jit-compiled train step)"

    def __init__(self, epsilon: float = 1e-8) -> None:
        #: Adam's epsilon (torch's default; a test sets a vanishing one to compare exactly)
        self.epsilon = epsilon
        #: one compiled model per recipe, and the compile time per problem warmed
        self.models: dict[tuple[Any, ...], Any] = {}
        self.warmed: dict[tuple[Any, ...], float] = {}

    def available(self) -> str | None:
        return _keras_reason()

    def prepare(self, problem: Problem) -> Trial:
        return _KerasTrial(problem, self)


# -- registry -----------------------------------------------------------------------------------
def all_contenders() -> list[Contender]:
    """Every contender this module knows (check ``available()`` before use)."""
    return [
        Ours("numpy", name="ours"),
        Ours("numpy", metrics=None, name="ours+metrics"),
        Ours("torch", "cpu", name="ours-torch"),
        Ours("array_api_strict", name="ours-strict"),
        Ours("jax", name="ours-jax"),
        Ours("jax", name="ours-jax-numpy", host_data=True),
        Ours("cupy", name="ours-cupy"),
        Ours("torch", "cuda", name="ours-torch-cuda"),
        Sklearn(),
        TorchLoop("cpu"),
        TorchLoop("cuda"),
        NumpyLoop(),
        JaxLoop(),
        KerasJax(),
    ]


CONTENDERS: dict[str, Contender] = {c.name: c for c in all_contenders()}


def by_name(name: str) -> Contender:
    if name not in CONTENDERS:
        raise KeyError(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")
    return CONTENDERS[name]
