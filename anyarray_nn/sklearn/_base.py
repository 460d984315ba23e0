"""What the two estimators share: the parameters, their checks, the network they build, and the
two solvers (mini-batch epochs through :meth:`anyarray_nn.NN.fit`, full-batch L-BFGS through
:func:`anyarray_nn.lbfgs.fit_lbfgs`) with scikit-learn's bookkeeping around them."""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import Tags, check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import activations as _activations
from .. import losses as _losses
from .. import optimizers as _optimizers
from ..inputs import refuse_non_numeric_columns
from ..layers import Dense, Dropout, Layer
from ..network import NN
from ..sparse import is_sparse
from ..training import TrainingDivergedError
from ..validation import Interval, check_bool, check_choice
from ._monitor import EpochMonitor, SklearnOrder

LBFGS = "lbfgs"
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
_GPU_BACKENDS = ("cupy", "auto")
_FLOAT32_MAX = float(np.finfo(np.float32).max)

# hyperparameter ranges (checked in fit, never in __init__/set_params, as scikit-learn requires)
_NON_NEGATIVE = Interval("real", 0.0)
_POSITIVE = Interval("real", 0.0, closed="neither")
_DECAY = Interval("real", 0.0, 1.0, closed="left")
_OPEN_UNIT = Interval("real", 0.0, 1.0, closed="neither")
_COUNT = Interval("int", 1)

DIVERGED = (
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed"
)


@dataclass
class Layout:
    """What the targets ask of a new network: its outputs, their activation, the factor from
    the network's loss to scikit-learn's (``_scale``), and the estimator attributes to set
    once the network is built (``classes_``, ...)."""

    n_outputs: int
    output: str
    scale: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)


def hidden_activations() -> list[str]:
    """The hidden activations the estimators accept: every registered one but softmax, plus
    the aliases (scikit-learn's ``"logistic"``)."""
    names = [n for n in _activations.registry.names() if n != "softmax"]
    return [*names, *(a for a, n in _activations.registry.aliases().items() if n in names)]


def solvers() -> list[str]:
    """``"lbfgs"`` and every registered optimizer."""
    return [LBFGS, *_optimizers.registry.names()]


def _loss(output: str, dtype: str) -> _losses.Loss | str | None:
    """scikit-learn's loss for the output: its log-losses clip probabilities to
    ``[eps, 1 - eps]`` in the value they report (not in the gradient)."""
    eps = float(np.finfo(dtype).eps)
    if output == "softmax":
        return _losses.ClippedCrossEntropy(eps)
    if output == "sigmoid":
        return _losses.ClippedBinaryCrossEntropy(eps)
    return "poisson" if output == "exp" else None


def store_parameters(est: BaseEstimator, params: dict[str, Any]) -> None:
    """Set the constructor's arguments as attributes of the same name (scikit-learn's rule:
    no logic in ``__init__``)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


class BaseNN(BaseEstimator):
    """Shared parameters, checks and training of :class:`NNClassifier` and :class:`NNRegressor`
    (their ``__init__`` lists the parameters)."""

    # -- tags and read-only views ---------------------------------------------------------------
    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # Same random_state, same numbers on the CPU; GPU reductions may differ in the last bits.
        gpu = self.backend in _GPU_BACKENDS or (
            self.backend == "torch" and str(self.device or "cpu").startswith("cuda")
        )
        tags.non_deterministic = bool(gpu)
        return tags

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices ``W`` of shape ``(fan_in, fan_out)``, as NumPy copies (like MLP's)."""
        return self.net_.get_weights()[0::2]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, as NumPy copies (like MLP's)."""
        return self.net_.get_weights()[1::2]

    @coefs_.setter
    def coefs_(self, value: Any) -> None:
        self._read_only("coefs_")

    @intercepts_.setter
    def intercepts_(self, value: Any) -> None:
        self._read_only("intercepts_")

    def _read_only(self, name: str) -> None:
        raise AttributeError(
            f"{type(self).__name__}.{name} is a read-only copy of the network's weights (not "
            "supported: assigning it); set them with est.net_.set_weights([W1, b1, W2, b2, ...])."
        )

    # -- checks ------------------------------------------------------------------------------
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a sequence of positive ints, "
                f"e.g. (100,) or (64, 32); got {self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _check_hyperparameters(self, incremental: bool = False) -> None:
        name = type(self).__name__
        if incremental and self.early_stopping:
            raise ValueError(f"{name}: partial_fit does not support early_stopping=True.")
        self._hidden_sizes()
        check_choice("activation", self.activation, hidden_activations())
        check_choice("solver", self.solver, solvers())
        _NON_NEGATIVE.check("alpha", self.alpha)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _COUNT.check("batch_size ('auto' or an int)", self.batch_size)
        check_choice("learning_rate", self.learning_rate, _LEARNING_RATES)
        for param, interval in (
            ("learning_rate_init", _POSITIVE),
            ("power_t", _NON_NEGATIVE),
            ("max_iter", _COUNT),
            ("tol", _NON_NEGATIVE),
            ("momentum", _DECAY),
            ("validation_fraction", _OPEN_UNIT),
            ("beta_1", _DECAY),
            ("beta_2", _DECAY),
            ("epsilon", _POSITIVE),
            ("max_fun", _COUNT),
            ("dropout", _DECAY),
        ):
            interval.check(param, getattr(self, param))
        for param in ("shuffle", "nesterovs_momentum", "early_stopping", "warm_start"):
            check_bool(param, getattr(self, param))
        if not (isinstance(self.n_iter_no_change, float) and self.n_iter_no_change == math.inf):
            _COUNT.check("n_iter_no_change (an int or np.inf)", self.n_iter_no_change)
        self._dtype_name()
        if self.solver == LBFGS and self.dropout:
            raise ValueError(
                f"{name}: solver='lbfgs' does not support dropout={self.dropout!r}: L-BFGS needs "
                "a deterministic objective. Use dropout=0.0, or a mini-batch solver ('adam')."
            )

    def _dtype_name(self, X: Any = None) -> str:
        """The network's dtype: ``dtype`` if given, else float32 for float32 ``X`` and
        float64 otherwise (scikit-learn's rule)."""
        if self.dtype is None:
            return "float32" if X is not None and X.dtype == np.float32 else "float64"
        try:
            name = np.dtype(self.dtype).name
        except TypeError:
            name = str(self.dtype)
        if name not in ("float32", "float64"):
            raise ValueError(
                f"dtype must be None (follow X), 'float32' or 'float64'; got {self.dtype!r}."
            )
        return name

    def _check_range(self, X: Any, y: np.ndarray | None = None) -> None:
        """Finite values beyond float32's range would silently become inf in a float32 network."""
        if self.net_.backend.dtype_name != "float32":
            return
        for what, values in (("X", X.data if is_sparse(X) else X), ("y", y)):
            if values is None or values.dtype == np.float32 or values.size == 0:
                continue
            largest = float(np.max(np.abs(values)))
            if largest > _FLOAT32_MAX:
                raise ValueError(
                    f"{type(self).__name__}: {what} has finite values up to {largest:.3g}, "
                    f"beyond float32's range (±{_FLOAT32_MAX:.3g}), and this network is "
                    "float32: they would become inf. Scale the data, or use dtype='float64' "
                    "(or dtype=None, which follows X's dtype)."
                )

    def _sample_weight(self, sample_weight: Any, X: Any) -> np.ndarray | None:
        if sample_weight is None:
            return None
        w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(w < 0) or not np.sum(w) > 0:
            raise ValueError(
                f"{type(self).__name__}: sample_weight must be non-negative with a positive sum."
            )
        return w

    # -- the network -------------------------------------------------------------------------
    def _initialize(self, X: Any, n_outputs: int, output: str, rng: np.random.RandomState) -> None:
        """Build a fresh network with scikit-learn's initial weights (drawn from ``rng`` in
        MLP's order) and reset the training record."""
        sizes = [X.shape[1], *self._hidden_sizes(), n_outputs]
        factor = 2.0 if _activations.get(self.activation).name == "sigmoid" else 6.0
        bounds = [math.sqrt(factor / (a + b)) for a, b in itertools.pairwise(sizes)]
        weights = []
        for (fan_in, fan_out), bound in zip(itertools.pairwise(sizes), bounds, strict=True):
            weights.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
            weights.append(rng.uniform(-bound, bound, fan_out))
        if isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state)
        else:
            seed = int(rng.randint(np.iinfo(np.int32).max))
        self.net_ = NN(
            self._layers(sizes, bounds),
            output=output,
            loss=_loss(output, self._dtype_name(X)),
            backend=self.backend,
            device=self.device,
            dtype=self._dtype_name(X),
            seed=seed,
        )
        self.net_.set_weights(weights)
        self._reset_record(n_outputs, output, len(sizes))
        self._built_with = self._architecture()

    def _architecture(self) -> dict[str, Any]:
        """The parameters a built network embodies (besides the widths, which scikit-learn's
        warm start also leaves as built)."""
        return {
            "activation": _activations.get(self.activation).name,
            "number of hidden layers": len(self._hidden_sizes()),
            "dropout": float(self.dropout or 0.0),
            "backend": self.backend,
            "device": self.device,
        }

    def _check_unchanged_architecture(self) -> None:
        """A warm start (or partial_fit) continues the network as built: refuse a change of
        set_params that it would otherwise silently ignore."""
        built = getattr(self, "_built_with", None)
        if built is None:
            return
        for name, now in self._architecture().items():
            if built[name] != now:
                raise ValueError(
                    f"{type(self).__name__}: the {name} changed from {built[name]!r} to "
                    f"{now!r} since the network was built, and a warm start continues that "
                    "network: set warm_start=False to build a new one, or set it back."
                )

    def _layers(self, sizes: list[int], bounds: list[float]) -> list[Layer]:
        """Dense layers whose initializer is scikit-learn's: ``U(-bound, bound)`` with
        ``bound = sqrt(factor / (fan_in + fan_out))`` for weights and biases (so the saved
        config describes the draw), and Dropout after each hidden layer if asked."""
        layers: list[Layer] = []
        last = len(sizes) - 2
        for i, (units, bound) in enumerate(zip(sizes[1:], bounds, strict=True)):
            spec = {"name": "uniform", "limit": bound}
            activation = None if i == last else self.activation
            layers.append(Dense(units, activation, init=spec, bias_init=spec))
            if i < last and self.dropout:
                layers.append(Dropout(float(self.dropout)))
        layers[0].fan_in = sizes[0]
        return layers

    def _reset_record(self, n_outputs: int, output: str, n_layers: int) -> None:
        self.out_activation_ = {"sigmoid": "logistic"}.get(output, output)
        self.n_outputs_ = n_outputs
        self.n_layers_ = n_layers
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        self._learning_rate = float(self.learning_rate_init)
        self._best_weights = self.net_.get_weights()
        if self.early_stopping and self.solver != LBFGS:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    #: scikit-learn's loss = ``_scale`` x the network's objective (see the module docstring);
    #: set by the subclasses when the network is built.
    _scale: float = 1.0

    def _sgd_factor(self) -> float:
        """Multiplier turning scikit-learn's learning rate into the network's."""
        return self._scale if self.solver == "sgd" else 1.0

    def _set_learning_rate(self, lr: float) -> None:
        self._learning_rate = float(lr)
        if self.net_.optimizer is not None:
            self.net_.optimizer.lr = self._learning_rate * self._sgd_factor()

    def _make_optimizer(self) -> _optimizers.Optimizer:
        """A fresh solver at ``learning_rate_init`` with the estimator's hyperparameters that
        its constructor takes (``momentum``, ``nesterovs_momentum`` for ``"sgd"`` only)."""
        self._learning_rate = float(self.learning_rate_init)
        momentum = float(self.momentum)
        offered = {
            "lr": self._learning_rate * self._sgd_factor(),
            "eps": float(self.epsilon) / self._scale,  # the loss is 1/_scale x sklearn's
            "beta1": float(self.beta_1),
            "beta2": float(self.beta_2),
        }
        if self.solver == "sgd":
            offered["momentum"] = momentum
            offered["nesterov"] = bool(self.nesterovs_momentum and momentum > 0)
        # scikit-learn's Adam adds eps before the bias correction (SklearnAdam), torch's after
        solver = _optimizers.SklearnAdam.name if self.solver == "adam" else self.solver
        accepted = _optimizers.registry.parameters(solver)
        return _optimizers.get(solver, **{k: v for k, v in offered.items() if k in accepted})

    # -- fitting -----------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool, **kw: Any) -> Any:
        """scikit-learn's ``_fit``: validate, build the network on a first pass (a plain
        ``fit``, or the first ``warm_start``/``partial_fit`` call), run the solver, check the
        weights."""
        self._check_hyperparameters(incremental)
        first = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        if not first:
            self._check_unchanged_architecture()
        X, y = self._validate_Xy(X, y, reset=first)
        sample_weight = self._sample_weight(sample_weight, X)
        targets, layout = self._targets(y, first, incremental, **kw)
        rng = check_random_state(self.random_state)
        if first:
            self._scale = layout.scale
            self._initialize(X, layout.n_outputs, layout.output, rng)
            for name, value in layout.attributes.items():  # once the network exists
                setattr(self, name, value)
        self._check_range(X, targets if targets.dtype.kind == "f" else None)
        if self.solver == LBFGS:
            self._fit_lbfgs(X, targets, sample_weight)
        else:
            self._fit_stochastic(X, targets, sample_weight, rng, incremental)
        if not all(np.all(np.isfinite(w)) for w in self.net_.get_weights()):
            raise ValueError(f"{type(self).__name__}: {DIVERGED}.")
        return self

    def _fit_lbfgs(self, X: Any, T: np.ndarray, w: np.ndarray | None) -> None:
        """Full batch: ``alpha / (2 * n) * sum(W**2)`` (``n``: the summed weights)."""
        net = self.net_
        total = float(X.shape[0]) if w is None else float(np.sum(w))
        net.l2 = float(self.alpha) / (2.0 * total * self._scale)

        def report(iteration: int, loss: float) -> None:
            if self.verbose:
                print(f"Iteration {iteration}, loss = {loss:.8f}")

        result = net.fit_lbfgs(
            X,
            T,
            w,
            max_iter=int(self.max_iter),
            max_fun=int(self.max_fun),
            tol=float(self.tol),
            loss_scale=self._scale,
            callback=report,
        )
        self.n_iter_ = min(int(result.nit), int(self.max_iter))
        self.loss_ = float(result.fun)
        self.loss_curve_ += result.loss_curve
        self.best_loss_ = min([self.best_loss_, *result.loss_curve])
        if result.status != 0:
            message = (
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"(status={result.status}):\n{result.message}\n"
            )
            if self.n_iter_ == self.max_iter:
                message += (
                    "\nIncrease the number of iterations to improve the convergence "
                    f"(max_iter={self.max_iter})."
                )
            warnings.warn(message, ConvergenceWarning, stacklevel=4)

    def _early_stopping_split(
        self, X: Any, T: np.ndarray, w: np.ndarray | None, rng: np.random.RandomState
    ) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
        """scikit-learn's split: ``train_test_split`` with the same random stream, stratified
        (by the user's labels) for single-output classification."""
        stratify = self._stratify_labels(T)
        train, val = train_test_split(
            np.arange(X.shape[0]),
            random_state=rng,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        parts = tuple((X[i], T[i], None if w is None else w[i]) for i in (train, val))
        return parts[0], parts[1]

    def _batch_size(self, n_train: int) -> int:
        """scikit-learn's rule: ``"auto"`` is ``min(200, n)``; larger ints are clipped."""
        if self.batch_size == "auto":
            return min(200, n_train)
        if self.batch_size > n_train:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                UserWarning,
                stacklevel=5,
            )
        return int(np.clip(self.batch_size, 1, n_train))

    def _fit_stochastic(
        self,
        X: Any,
        T: np.ndarray,
        w: np.ndarray | None,
        rng: np.random.RandomState,
        incremental: bool,
    ) -> None:
        """Up to ``max_iter`` epochs (one if ``incremental``) of ``net_.fit`` with the monitor."""
        val = None
        if self.early_stopping:
            (X, T, w), val = self._early_stopping_split(X, T, w, rng)
        n_train = X.shape[0]
        batch_size = self._batch_size(n_train)
        mean_weight = 1.0 if w is None else float(np.mean(w))
        net = self.net_
        net.l2 = float(self.alpha) / (2.0 * batch_size * mean_weight * self._scale)
        fresh = not incremental or net.optimizer is None
        if fresh:  # scikit-learn starts a new solver every fit (warm_start keeps weights only)
            net.optimizer = None
        optimizer = self._make_optimizer() if fresh else None
        monitor = EpochMonitor(self, n_train, validating=val is not None)
        epochs = 1 if incremental else int(self.max_iter)
        metric = "r2" if self._regression else "subset_accuracy"
        self.n_iter_ = 0
        try:
            net.fit(
                X,
                T,
                epochs=epochs,
                batch_size=batch_size,
                lr=self._learning_rate * self._sgd_factor(),
                optimizer=optimizer,
                shuffle=SklearnOrder(rng, n_train) if self.shuffle else False,
                validation_data=val,
                metrics=[metric] if val is not None else [],
                callbacks=[monitor],
                sample_weight=w,
            )
        except TrainingDivergedError as exc:
            self._diverged(exc, monitor, n_train)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if val is not None:
            net.set_weights(self._best_weights)
        if monitor.epochs == epochs and not incremental and not monitor.stopped:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _diverged(self, exc: TrainingDivergedError, monitor: EpochMonitor, n_train: int) -> None:
        """A non-finite epoch loss. Without early stopping this is scikit-learn's error; with
        it, the run ends like scikit-learn's: NaN recorded, the best weights kept, a
        ConvergenceWarning."""
        if not self.early_stopping:
            raise ValueError(f"{type(self).__name__}: {DIVERGED} ({exc})") from exc
        monitor.record(math.nan, n_train)
        self.validation_scores_.append(math.nan)
        monitor.stopped = True
        warnings.warn(
            f"Training diverged in epoch {self.n_iter_} (the loss became non-finite); the "
            "weights of the best validation epoch are kept. The input data may need "
            "preprocessing, or learning_rate_init may be too large.",
            ConvergenceWarning,
            stacklevel=5,
        )

    # -- prediction ------------------------------------------------------------------------------
    def _validate_X(self, X: Any) -> Any:
        """Validate ``X`` for prediction (fitted estimator, same features as in fit)."""
        check_is_fitted(self)
        refuse_non_numeric_columns(X)  # NN's message: the column, and an encoder to use
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32)
        )
        self._check_range(X)
        return X

    def _outputs(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X``, shape ``(n_samples, n_outputs_)``, in float32 when
        both ``X`` and the network are float32 and in float64 otherwise (NumPy's promotion,
        which is what scikit-learn's MLP returns)."""
        X = self._validate_X(X)  # before touching net_: NotFittedError when unfitted
        out = self.net_.predict(X)
        return out.astype(np.result_type(X.dtype, out.dtype), copy=False)

    # -- the subclasses' part ------------------------------------------------------------------
    _regression: bool = False

    def _validate_Xy(self, X: Any, y: Any, reset: bool) -> tuple[Any, np.ndarray]:
        raise NotImplementedError

    def _targets(
        self, y: np.ndarray, first: bool, incremental: bool, **kw: Any
    ) -> tuple[np.ndarray, Layout]:
        """The network's targets for ``y`` and the network ``y`` calls for; on later calls,
        checks that ``y`` fits the network already built."""
        raise NotImplementedError

    def _stratify_labels(self, T: np.ndarray) -> np.ndarray | None:
        """The labels to stratify the early-stopping split by (None: not stratified)."""
        return None


def validate_xy(est: BaseNN, X: Any, y: Any, reset: bool, **kw: Any) -> tuple[Any, np.ndarray]:
    """``validate_data`` as scikit-learn's MLP calls it (CSR/CSC kept sparse); a DataFrame's
    text column is refused first with NN's message (the column, and an encoder to use)."""
    refuse_non_numeric_columns(X)
    return validate_data(
        est,
        X,
        y,
        reset=reset,
        accept_sparse=["csr", "csc"],
        dtype=(np.float64, np.float32),
        multi_output=True,
        **kw,
    )
