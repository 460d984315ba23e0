"""scikit-learn estimators: :class:`NNClassifier` and :class:`NNRegressor`.

They take the parameters of :class:`sklearn.neural_network.MLPClassifier` /
:class:`~sklearn.neural_network.MLPRegressor` where the two overlap, follow the same training
procedure (epochs of shuffled mini-batches, the same stopping rules, the same ``loss_curve_``),
pass :func:`sklearn.utils.estimator_checks.check_estimator`, and train an :class:`anyarray_nn.NN`
on any backend. Requires scikit-learn >= 1.6 (``validate_data`` and the tags API).

How the scikit-learn conventions map onto the network
-----------------------------------------------------

**alpha (L2).** With its stochastic solvers scikit-learn adds ``alpha / (2 * b) * sum(W**2)`` to
the mean loss of every mini-batch of ``b`` rows (and divides the gradient ``alpha * W`` by ``b``);
biases are not penalised. The estimators set the network's penalty to ``l2 = alpha / (2 * B)`` with
``B`` the batch size actually used (``min(200, n_samples)`` for ``batch_size="auto"``), so every
full batch sees exactly scikit-learn's objective and gradient. Only a shorter last batch of an
epoch differs: scikit-learn penalises it with its own ``b`` (a weight larger by ``B / b``). When
the whole training set is one batch (``batch_size="auto"`` and at most 200 samples) this is the
full-batch objective ``mean loss + alpha / (2 * n_samples) * sum(W**2)`` of scikit-learn's docs.

**Regression loss.** scikit-learn minimises *half* the mean squared error, ``S = MSE / 2 +
alpha / (2 * B) * sum(W**2)``, while the network's objective is ``MSE + l2 * sum(W**2)``. The
regressor sets ``l2 = alpha / B`` so that the network minimises exactly ``2 * S``, reports
``loss_curve_`` and ``best_loss_`` in scikit-learn's units (``S``; ``net_.loss`` gives ``2 * S``),
and compensates the factor 2 in the gradient so that every update is the one taken on ``S``: the
SGD learning rate is halved and the ``eps`` of the adaptive solvers doubled (both updates are
otherwise invariant to the scale of the loss).

**learning_rate** (used with ``solver="sgd"`` only, as in scikit-learn): ``"constant"`` keeps
``learning_rate_init``; ``"invscaling"`` sets ``learning_rate_init / (t + 1) ** power_t`` after
every epoch, with ``t`` the number of samples seen (scikit-learn's rule;
:class:`anyarray_nn.schedules.InverseScaling` counts epochs instead, so it is not used);
``"adaptive"`` divides the rate by 5 each time the stopping rule below fires, and stops once it is
at most ``1e-6`` (the lr rule of :class:`anyarray_nn.schedules.ReduceLROnPlateau` with
``patience=n_iter_no_change, min_delta=tol``, plus the stop).

**Stopping rule.** After every epoch, as scikit-learn: without ``early_stopping`` an epoch whose
training loss is not below ``best_loss_ - tol`` counts as no improvement; with it, a validation
score (accuracy or R²) not above the best score + ``tol`` does. Training stops when more than
``n_iter_no_change`` consecutive epochs did not improve; reaching ``max_iter`` first raises a
:class:`~sklearn.exceptions.ConvergenceWarning`. With ``early_stopping`` the weights of the best
validation epoch are restored at the end.

**Optimizers** follow ``torch.optim``. ``SGD`` with momentum equals scikit-learn's velocity form
at a constant learning rate (when the rate changes, scikit-learn's velocity keeps the old rate);
``Adam`` adds ``eps`` to ``sqrt(v_hat)`` where scikit-learn adds it to ``sqrt(v)`` (a difference
of order ``eps``).

**Other differences.** Weights start from the network's default initializer (He for the ReLU
family, Glorot otherwise) rather than scikit-learn's scaled Glorot-uniform. Binary problems use
one sigmoid output unit and binary cross-entropy, as scikit-learn does. Multilabel and
multi-output classification, ``sample_weight``, sparse input and ``solver="lbfgs"`` are not
supported (each raises a clear error). ``n_iter_`` counts every epoch since the last ``fit``,
including ``partial_fit`` epochs, so ``len(loss_curve_) == n_iter_`` always.

**backend** defaults to ``"numpy"`` (not ``"auto"``), so that an estimator in a pipeline or a
grid search gives the same numbers on every machine; pass ``backend="cupy"`` or
``backend="torch", device="cuda"`` to train on a GPU. The fitted network is ``net_``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import Tags, check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - depends on the installed scikit-learn
    raise ImportError(
        "anyarray_nn.sklearn needs scikit-learn >= 1.6 (validate_data and the estimator tags "
        f"API): pip install -U 'scikit-learn>=1.6'. ({exc})"
    ) from exc

from . import activations as _activations
from . import optimizers as _optimizers
from .network import NN
from .validation import Interval, check_bool, check_choice

__all__ = ["NNClassifier", "NNRegressor"]

_LEARNING_RATES = ("constant", "invscaling", "adaptive")
_GPU_BACKENDS = ("cupy", "auto")

# hyperparameter ranges (checked in fit, never in __init__/set_params, as scikit-learn requires)
_NON_NEGATIVE = Interval("real", 0.0)
_POSITIVE = Interval("real", 0.0, closed="neither")
_DECAY = Interval("real", 0.0, 1.0, closed="left")
_OPEN_UNIT = Interval("real", 0.0, 1.0, closed="neither")
_COUNT = Interval("int", 1)


def _hidden_activations() -> list[str]:
    """The hidden activations the estimators accept: every registered one but softmax, plus
    scikit-learn's ``"logistic"``."""
    names = [n for n in _activations.registry.names() if n != "softmax"]
    return [*names, *(a for a, n in _activations.registry.aliases().items() if n in names)]


def _solvers() -> list[str]:
    """Every registered optimizer is a solver."""
    return _optimizers.registry.names()


class _EpochMonitor:
    """An :class:`anyarray_nn.NN` callback doing scikit-learn's per-epoch bookkeeping.

    After every epoch it records the loss (``loss_curve_``, ``n_iter_``, ``t_``), applies the
    stopping rule and the ``invscaling``/``adaptive`` learning rate, and keeps the weights of the
    best validation epoch when early stopping. Returning True stops ``NN.fit``.
    """

    def __init__(self, est: _BaseNN, n_train: int, val_key: str | None) -> None:
        self.est = est
        self.n_train = n_train
        self.val_key = val_key
        self.best_weights: list[np.ndarray] | None = None
        self.stopped = False

    def on_epoch_end(self, net: NN, epoch: int, logs: dict[str, float]) -> bool | None:
        est = self.est
        loss = float(logs["loss"]) * est._loss_scale
        est.loss_ = loss
        est.loss_curve_.append(loss)
        est.n_iter_ += 1
        est.t_ += self.n_train
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.val_key is not None:
            self._validation_step(net, float(logs[self.val_key]))
            what = "Validation score"
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(est.best_loss_, loss)
            what = "Training loss"
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            est._set_learning_rate(est.learning_rate_init / (est.t_ + 1) ** est.power_t)
        if est._no_improvement_count > est.n_iter_no_change:
            msg = (
                f"{what} did not improve more than tol={est.tol:f} for "
                f"{est.n_iter_no_change} consecutive epochs."
            )
            if est.solver == "sgd" and est.learning_rate == "adaptive":
                if est._learning_rate > 1e-6:
                    est._set_learning_rate(est._learning_rate / 5.0)
                    est._no_improvement_count = 0
                    if est.verbose:
                        print(f"{msg} Setting learning rate to {est._learning_rate:f}")
                    return None
                msg += " Learning rate too small."
            if est.verbose:
                print(f"{msg} Stopping.")
            self.stopped = True
            return True
        return None

    def _validation_step(self, net: NN, score: float) -> None:
        est = self.est
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            self.best_weights = net.get_weights()


class _BaseNN(BaseEstimator):
    """Shared parameters and training loop of :class:`NNClassifier` and :class:`NNRegressor`."""

    #: ``loss_curve_`` = ``_loss_scale`` x the network's objective (0.5 for scikit-learn's
    #: half squared error).
    _loss_scale: float = 1.0

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        dropout: float = 0.0,
        backend: str = "numpy",
        device: Any = None,
        dtype: str = "float32",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.backend = backend
        self.device = device
        self.dtype = dtype

    # -- tags and read-only views ------------------------------------------------------------------
    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
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

    # -- checks ----------------------------------------------------------------------------------
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
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True.")
        self._hidden_sizes()
        check_choice("activation", self.activation, _hidden_activations())
        check_choice(
            "solver",
            self.solver,
            _solvers(),
            " 'lbfgs' is not supported: use 'adam' or 'sgd'." if self.solver == "lbfgs" else "",
        )
        _NON_NEGATIVE.check("alpha", self.alpha)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _COUNT.check("batch_size ('auto' or an int)", self.batch_size)
        check_choice("learning_rate", self.learning_rate, _LEARNING_RATES)
        _POSITIVE.check("learning_rate_init", self.learning_rate_init)
        _NON_NEGATIVE.check("power_t", self.power_t)
        _COUNT.check("max_iter", self.max_iter)
        check_bool("shuffle", self.shuffle)
        _NON_NEGATIVE.check("tol", self.tol)
        _DECAY.check("momentum", self.momentum)
        check_bool("nesterovs_momentum", self.nesterovs_momentum)
        check_bool("early_stopping", self.early_stopping)
        _OPEN_UNIT.check("validation_fraction", self.validation_fraction)
        _DECAY.check("beta_1", self.beta_1)
        _DECAY.check("beta_2", self.beta_2)
        _POSITIVE.check("epsilon", self.epsilon)
        _COUNT.check("n_iter_no_change", self.n_iter_no_change)
        _DECAY.check("dropout", self.dropout)

    def _seed(self) -> int:
        """The network's seed: ``random_state`` itself when it is an int, else one drawn from it."""
        rng = check_random_state(self.random_state)  # validates ints and RandomState objects
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    # -- training ----------------------------------------------------------------------------------
    def _initialize(self, n_features: int, n_outputs: int, output: str) -> None:
        """Build a fresh network and reset the training record (first fit/partial_fit)."""
        self.net_ = NN(
            [n_features, *self._hidden_sizes(), n_outputs],
            activation=self.activation,
            output=output,
            backend=self.backend,
            device=self.device,
            dtype=self.dtype,
            seed=self._seed(),
            dropout=float(self.dropout),
        )
        self.out_activation_ = {"sigmoid": "logistic"}.get(output, output)
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        self._learning_rate = float(self.learning_rate_init)
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _sgd_factor(self) -> float:
        """Multiplier turning scikit-learn's learning rate into the network's (see module doc)."""
        return self._loss_scale if self.solver == "sgd" else 1.0

    def _set_learning_rate(self, lr: float) -> None:
        self._learning_rate = float(lr)
        if self.net_.optimizer is not None:
            self.net_.optimizer.lr = self._learning_rate * self._sgd_factor()

    def _make_optimizer(self) -> _optimizers.Optimizer:
        """The solver, given the estimator's hyperparameters that its constructor takes
        (``momentum`` and ``nesterovs_momentum`` for ``"sgd"`` only, as in scikit-learn)."""
        momentum = float(self.momentum)
        offered = {
            "lr": self._learning_rate * self._sgd_factor(),
            "eps": float(self.epsilon) / self._loss_scale,  # the loss is 1/_loss_scale x sklearn's
            "beta1": float(self.beta_1),
            "beta2": float(self.beta_2),
        }
        if self.solver == "sgd":
            offered["momentum"] = momentum
            offered["nesterov"] = bool(self.nesterovs_momentum and momentum > 0)
        accepted = _optimizers.registry.parameters(self.solver)
        return _optimizers.get(self.solver, **{k: v for k, v in offered.items() if k in accepted})

    def _early_stopping_split(self, X: np.ndarray, y: np.ndarray) -> tuple:
        """``(X_train, y_train, (X_val, y_val))``: the held-out part for early stopping."""
        stratify = y if isinstance(self, ClassifierMixin) else None
        X, X_val, y, y_val = train_test_split(
            X,
            y,
            random_state=self.net_.seed % 2**32,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        return X, y, (X_val, y_val)

    def _batch_size(self, n_train: int) -> int:
        """scikit-learn's rule: ``"auto"`` is ``min(200, n)``; larger ints are clipped."""
        if self.batch_size == "auto":
            return min(200, n_train)
        if self.batch_size > n_train:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                UserWarning,
                stacklevel=4,
            )
        return int(np.clip(self.batch_size, 1, n_train))

    def _train(self, X: np.ndarray, y: np.ndarray, incremental: bool) -> None:
        """Run ``max_iter`` epochs (one if ``incremental``) of ``net_.fit`` with the monitor."""
        val_key, validation_data = None, None
        if self.early_stopping:
            X, y, validation_data = self._early_stopping_split(X, y)
            val_key = "val_accuracy" if isinstance(self, ClassifierMixin) else "val_r2"
        n_train = X.shape[0]
        batch_size = self._batch_size(n_train)
        net = self.net_
        net.l2 = float(self.alpha) / (2.0 * batch_size * self._loss_scale)
        optimizer = self._make_optimizer() if net.optimizer is None else None
        monitor = _EpochMonitor(self, n_train, val_key)
        epochs = 1 if incremental else int(self.max_iter)
        metrics = [] if val_key is None else [val_key[4:]]
        try:
            history = net.fit(
                X,
                y,
                epochs=epochs,
                batch_size=batch_size,
                lr=self._learning_rate * self._sgd_factor(),
                optimizer=optimizer,
                shuffle=bool(self.shuffle),
                validation_data=validation_data,
                metrics=metrics,
                callbacks=[monitor],
                verbose=0,
            )
            finished = len(history) == epochs
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
            finished = False
        if monitor.best_weights is not None:
            net.set_weights(monitor.best_weights)
        if finished and not incremental and not monitor.stopped:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _validate_X(self, X: Any) -> np.ndarray:
        """Validate ``X`` for prediction (fitted estimator, same features as in fit)."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    def _outputs(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X`` as float64, shape ``(n_samples, n_outputs_)``."""
        X = self._validate_X(X)  # before touching net_: NotFittedError when unfitted
        return np.asarray(self.net_.predict(X), dtype=np.float64)


_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` for none.

    activation : {"relu", "tanh", "logistic", "identity", "sigmoid", "leaky_relu", "elu"}, \
default="relu"
        Hidden-layer activation. ``"logistic"`` (scikit-learn's name) is ``"sigmoid"``.

    solver : {"adam", "sgd", "adamw", "adagrad", "rmsprop"}, default="adam"
        Optimizer (``"lbfgs"`` is not supported). ``"adamw"`` adds AdamW's decoupled weight
        decay (0.01, torch's default) on top of the ``alpha`` penalty.

    alpha : float, default=0.0001
        L2 penalty as in scikit-learn: ``alpha / (2 * batch_size) * sum(W**2)`` per mini-batch
        (the network's ``l2``; see the module docstring for the exact mapping).

    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(200, n_samples)``. Clipped to the number of
        training samples, with a warning.

    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Learning-rate rule, used with ``solver="sgd"`` only (as in scikit-learn).

    learning_rate_init : float, default=0.001
        Initial learning rate.

    power_t : float, default=0.5
        Exponent of ``"invscaling"``: ``lr = learning_rate_init / (t + 1) ** power_t`` with
        ``t`` the number of samples seen, updated after every epoch.

    max_iter : int, default=200
        Maximum number of epochs of ``fit``.

    shuffle : bool, default=True
        Reshuffle the samples every epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, dropout masks and the early-stopping split.
        An int is used as the network's seed (``net_.seed``), so results are reproducible on
        every CPU backend.

    tol : float, default=1e-4
        Smallest improvement of the loss (or validation score) that counts (stopping rule).

    verbose : bool, default=False
        Print the loss after every epoch.

    momentum : float, default=0.9
        Momentum of ``solver="sgd"``, in [0, 1).

    nesterovs_momentum : bool, default=True
        Nesterov momentum for ``solver="sgd"`` (when ``momentum > 0``).

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when the validation score (accuracy
        or R²) stops improving and restore the best weights. The split is
        ``train_test_split(X, y, test_size=validation_fraction, random_state=net_.seed,
        stratify=y)`` (``stratify`` for classifiers only).

    validation_fraction : float, default=0.1
        Share of the training data held out with ``early_stopping``.

    beta_1, beta_2 : float, default=0.9, 0.999
        Adam/AdamW moment decay rates, in [0, 1).

    epsilon : float, default=1e-8
        Numerical-stability term of adam, adamw, adagrad and rmsprop.

    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` tolerated before stopping.

    dropout : float, default=0.0
        Inverted-dropout rate after each hidden layer during training (not in scikit-learn).

    backend : {"numpy", "torch", "cupy", "array_api_strict", "auto"}, default="numpy"
        Array library the network runs on (see :func:`anyarray_nn.backend.resolve`). NumPy by
        default, so that results do not depend on the machine.

    device : object, default=None
        Device on that backend, e.g. ``"cuda"`` for torch or a device id for cupy.

    dtype : {"float32", "float64"}, default="float32"
        Floating dtype of the network. Predictions are always returned as float64.
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        Loss of the last epoch (mean over its mini-batches, penalty included).

    loss_curve_ : list of float
        Loss of every epoch, in scikit-learn's units.

    best_loss_ : float or None
        Smallest entry of ``loss_curve_``; None with ``early_stopping``.

    validation_scores_ : list of float or None
        Validation score after every epoch with ``early_stopping``, else None.

    best_validation_score_ : float or None
        Best of ``validation_scores_`` (None without ``early_stopping``).

    n_iter_ : int
        Epochs run since the last ``fit`` (``partial_fit`` epochs included);
        always ``len(loss_curve_)``.

    t_ : int
        Training samples seen by the solver (sets the ``"invscaling"`` rate).

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    n_outputs_ : int
        Number of output units of the network.

    out_activation_ : str
        Output activation: ``"softmax"``, ``"logistic"`` or ``"identity"``.

    net_ : anyarray_nn.NN
        The trained network (``net_.predict``, ``net_.save``, ``net_.to(...)``, ...).

    coefs_, intercepts_ : list of ndarray
        NumPy copies of the weight matrices and bias vectors of ``net_``.
"""


class NNClassifier(ClassifierMixin, _BaseNN):
    __doc__ = (
        """Multi-layer perceptron classifier trained by :class:`anyarray_nn.NN`, on any backend.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier` with the same parameters where
    they overlap and the same training procedure; see :mod:`anyarray_nn.sklearn` for how
    ``alpha`` and ``learning_rate`` map onto the network. Labels may be of any type (they are
    encoded as ``0..n_classes-1`` internally). Binary problems use one sigmoid output unit,
    more classes a softmax output. Multilabel targets are not supported.
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
"""
        + _ATTRIBUTES_DOC
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from anyarray_nn.sklearn import NNClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), NNClassifier((16,), learning_rate_init=0.01,
    ...                                                    max_iter=300, random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    """
    )

    def fit(self, X: Any, y: Any) -> NNClassifier:
        """Train a fresh network on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (any hashable type).

        Returns
        -------
        self : NNClassifier
            The fitted estimator.
        """
        self._check_hyperparameters()
        X, y = self._validate_Xy(X, y, reset=True)
        classes, encoded = np.unique(y, return_inverse=True)
        self._start(X.shape[1], classes)
        self._train(X, self._net_targets(encoded), incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NNClassifier:
        """Train for one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels, all of them in ``classes``.
        classes : array-like of shape (n_classes,), default=None
            All the classes that can appear in any call. Required on the first call (when the
            estimator is not fitted yet); later calls may omit it or must repeat it.

        Returns
        -------
        self : NNClassifier
            The updated estimator.
        """
        first = not hasattr(self, "net_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        self._check_hyperparameters(incremental=True)
        X, y = self._validate_Xy(X, y, reset=first)
        if classes is not None:
            wanted = np.unique(column_or_1d(np.asarray(classes)))
            if not first and not np.array_equal(wanted, self.classes_):
                raise ValueError(
                    f"`classes={wanted!r}` is not the same as on the first call to partial_fit "
                    f"or in fit, was: {self.classes_!r}."
                )
        else:
            wanted = self.classes_
        unseen = np.setdiff1d(np.unique(y), wanted)
        if unseen.size:
            raise ValueError(
                f"y contains labels that are not in classes: {unseen.tolist()!r} "
                f"(classes: {wanted.tolist()!r})."
            )
        if first:
            self._start(X.shape[1], wanted)
        encoded = np.searchsorted(self.classes_, y)
        self._train(X, self._net_targets(encoded), incremental=True)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities (float64, rows sum to 1), columns in the order of ``classes_``.
        """
        out = self._outputs(X)
        if out.shape[1] == 1:  # binary: one sigmoid unit gives P(classes_[1])
            p = out[:, 0]
            return np.column_stack([1.0 - p, p])
        return out / np.sum(out, axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba` (``-inf`` where a probability underflowed to 0).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in the order of ``classes_``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class (the argmax of :meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``.
        """
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    # -- helpers -----------------------------------------------------------------------------
    def _validate_Xy(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self, X, y, reset=reset, dtype=(np.float64, np.float32), multi_output=True
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(
                f"{type(self).__name__} supports single-output classification only, got y of "
                f"shape {y.shape} ({type_of_target(y)}). For multilabel problems use one "
                "classifier per label (sklearn.multioutput.MultiOutputClassifier)."
            )
        check_classification_targets(y)
        return X, y

    def _start(self, n_features: int, classes: np.ndarray) -> None:
        """Check the classes and build the network: one sigmoid unit for 2 classes, else softmax.

        ``classes_`` is set only once the network exists, so a failure leaves no half-fitted
        estimator behind.
        """
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; got 1 class "
                f"({classes[0]!r})."
            )
        binary = len(classes) == 2
        self._initialize(
            n_features, 1 if binary else len(classes), "sigmoid" if binary else "softmax"
        )
        self.classes_ = classes

    def _net_targets(self, encoded: np.ndarray) -> np.ndarray:
        """Integer labels for softmax, a 0/1 float column for the binary sigmoid unit."""
        if len(self.classes_) == 2:
            return encoded.astype(np.float64)
        return encoded.astype(np.int64)


class NNRegressor(RegressorMixin, _BaseNN):
    __doc__ = (
        """Multi-layer perceptron regressor trained by :class:`anyarray_nn.NN`, on any backend.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor` with the same parameters where
    they overlap and the same training procedure, minimising scikit-learn's objective
    ``mean squared error / 2 + alpha / (2 * batch_size) * sum(W**2)`` (see
    :mod:`anyarray_nn.sklearn`). The output layer is linear. ``y`` may be 1-D (predictions are
    1-D) or 2-D (multi-output; predictions keep that shape, also for one column).
"""
        + _PARAMETERS_DOC
        + """
    Attributes
    ----------"""
        + _ATTRIBUTES_DOC
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from anyarray_nn.sklearn import NNRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = NNRegressor((32,), learning_rate_init=0.01, max_iter=500, random_state=0)
    >>> reg.fit(X, X[:, 0] ** 2).score(X, X[:, 0] ** 2) > 0.9
    True
    """
    )

    _loss_scale = 0.5  # scikit-learn's squared loss is half the mean squared error

    def fit(self, X: Any, y: Any) -> NNRegressor:
        """Train a fresh network on ``(X, y)`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.

        Returns
        -------
        self : NNRegressor
            The fitted estimator.
        """
        self._check_hyperparameters()
        X, y = self._validate_Xy(X, y, reset=True)
        targets = y.reshape(len(y), -1)
        self._initialize(X.shape[1], targets.shape[1], "identity")
        self._y_1d = y.ndim == 1
        self._train(X, targets, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any) -> NNRegressor:
        """Train for one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values, with the same number of outputs in every call.

        Returns
        -------
        self : NNRegressor
            The updated estimator.
        """
        first = not hasattr(self, "net_")
        self._check_hyperparameters(incremental=True)
        X, y = self._validate_Xy(X, y, reset=first)
        targets = y.reshape(len(y), -1)
        if first:
            self._initialize(X.shape[1], targets.shape[1], "identity")
            self._y_1d = y.ndim == 1
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {targets.shape[1]} output(s), but this regressor was fitted with "
                f"{self.n_outputs_}."
            )
        self._train(X, targets, incremental=True)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions (float64), 1-D when the model was fitted on a 1-D ``y``.
        """
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _validate_Xy(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=(np.float64, np.float32),
            multi_output=True,
            y_numeric=True,
        )
        return X, np.asarray(y, dtype=np.float64)
