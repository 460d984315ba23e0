""":class:`NNRegressor`, the drop-in for :class:`sklearn.neural_network.MLPRegressor`."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils import Tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from ..validation import check_choice
from . import _docs
from ._base import BaseNN, Layout, store_parameters, validate_xy
from ._classifier import _stochastic

LOSSES = ("squared_error", "poisson")


class NNRegressor(RegressorMixin, BaseNN):
    __doc__ = (
        """Multi-layer perceptron regressor trained by :class:`anyarray_nn.NN`, on any backend.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor` with the same parameters, initial
    weights and training procedure. ``loss="squared_error"`` minimises scikit-learn's
    ``mean squared error / 2 + alpha / (2 * batch_size) * sum(W**2)`` with a linear output;
    ``loss="poisson"`` half the Poisson deviance with an ``exp`` output (the log link; targets
    must be >= 0). See :mod:`anyarray_nn.sklearn`. ``y`` may be 1-D or 2-D (multi-output);
    predictions are 1-D for a single output, as scikit-learn's.
"""
        + _docs.PARAMETERS
        + """
    loss : {"squared_error", "poisson"}, default="squared_error"
        Keyword-only here (scikit-learn's ``MLPRegressor`` takes it as its first positional
        argument; here that is ``hidden_layer_sizes``, as in ``NNClassifier``).
"""
        + """
    Attributes
    ----------"""
        + _docs.ATTRIBUTES
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

    _regression = True

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        loss: str = "squared_error",
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        dropout: float = 0.0,
        backend: str = "numpy",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        store_parameters(self, locals())

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NNRegressor:
        """Train (a fresh network, unless ``warm_start``) on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (a sparse matrix is densified one batch at a time).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: the loss and the validation R² are weighted.

        Returns
        -------
        self : NNRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> NNRegressor:
        """Train for one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values, with the same number of outputs in every call.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        self : NNRegressor
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions in the network's dtype, 1-D for a single output.
        """
        out = self._outputs(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def _check_hyperparameters(self, incremental: bool = False) -> None:
        super()._check_hyperparameters(incremental)
        check_choice("loss", self.loss, LOSSES)

    def _validate_Xy(self, X: Any, y: Any, reset: bool) -> tuple[Any, np.ndarray]:
        X, y = validate_xy(self, X, y, reset, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _targets(
        self, y: np.ndarray, first: bool, incremental: bool, **kw: Any
    ) -> tuple[np.ndarray, Layout]:
        targets = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        poisson = self.loss == "poisson"
        if poisson and np.any(targets < 0):
            raise ValueError(
                f"{type(self).__name__}(loss='poisson') needs y >= 0 (counts or rates); y has "
                f"values down to {targets.min():g}."
            )
        k = targets.shape[1]
        if not first and k != self.n_outputs_:
            raise ValueError(
                f"y has {k} output(s), but this regressor was fitted with {self.n_outputs_}."
            )
        # scikit-learn steps on half the squared error or half the Poisson deviance, each
        # summed over outputs (it reports the squared error's mean over outputs, though); the
        # network's losses are means over outputs
        layout = Layout(k, "exp", float(k)) if poisson else Layout(k, "identity", 0.5 * k)
        return targets, layout
