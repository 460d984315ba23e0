""":class:`NNClassifier`, the drop-in for :class:`sklearn.neural_network.MLPClassifier`."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils import Tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from . import _docs
from ._base import LBFGS, BaseNN, Layout, store_parameters, validate_xy


def _stochastic(est: BaseNN) -> bool:
    """``partial_fit`` exists for the mini-batch solvers only, as in scikit-learn."""
    if est.solver == LBFGS:
        raise AttributeError(
            f"{type(est).__name__}.partial_fit is only available for the mini-batch solvers; "
            "solver='lbfgs' is not one."
        )
    return True


class NNClassifier(ClassifierMixin, BaseNN):
    __doc__ = (
        """Multi-layer perceptron classifier trained by :class:`anyarray_nn.NN`, on any backend.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier`: the same parameters, the same
    initial weights for the same ``random_state``, the same training procedure and stopping
    rules; see :mod:`anyarray_nn.sklearn` for how they map onto the network. Labels may be of
    any type. Binary problems (and a single class) use one sigmoid output unit, more classes a
    softmax output; a 2-D 0/1 ``y`` is a multilabel problem, with one sigmoid output per label
    and binary cross-entropy summed over the labels.
"""
        + _docs.PARAMETERS
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted (``0..n_labels-1`` for multilabel targets).
"""
        + _docs.ATTRIBUTES
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

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
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
        tags.classifier_tags.multi_label = True
        return tags

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NNClassifier:
        """Train (a fresh network, unless ``warm_start``) on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (a sparse matrix is densified one batch at a time).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (any hashable type), or a 0/1 indicator matrix (multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: the loss and the validation score are weighted means.

        Returns
        -------
        self : NNClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> NNClassifier:
        """Train for one epoch on ``(X, y)``, continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, all of them in ``classes`` (or a 0/1 indicator matrix).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights.
        classes : array-like of shape (n_classes,), default=None
            All the classes that can appear in any call. Required on the first call (when the
            estimator is not fitted yet); later calls may omit it or must repeat it.

        Returns
        -------
        self : NNClassifier
            The updated estimator.
        """
        if classes is None and not hasattr(self, "classes_"):
            raise ValueError(
                f"{type(self).__name__}: classes must be passed on the first call to partial_fit."
            )
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class (or, for multilabel targets, label) probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the network's dtype, columns in the order of ``classes_``. Rows
            sum to 1 except for multilabel targets. For one output unit (two classes, or
            one) the columns are ``1 - p`` and ``p``, as scikit-learn's.
        """
        out = self._outputs(X)
        if self._multilabel:
            return out
        if out.shape[1] == 1:  # one sigmoid unit gives P(classes_[1])
            p = out[:, 0]
            return np.column_stack([1.0 - p, p])
        return out / np.sum(out, axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba` (``-inf`` where a probability underflowed to 0).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in the order of ``classes_``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class (0/1 per label for multilabel targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Predicted labels, taken from ``classes_`` (an int indicator matrix for multilabel
            targets).
        """
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        if self._multilabel:
            return (proba > 0.5).astype(np.int64)
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, proba.shape[0])
        return self.classes_[np.argmax(proba, axis=1)]

    # -- targets ------------------------------------------------------------------------------
    def _validate_Xy(self, X: Any, y: Any, reset: bool) -> tuple[Any, np.ndarray]:
        X, y = validate_xy(self, X, y, reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim == 2 and not type_of_target(y).startswith("multilabel"):
            raise ValueError(
                f"{type(self).__name__} takes 1-D labels or a 0/1 indicator matrix (multilabel); "
                f"got y of shape {y.shape} ({type_of_target(y)}). For several multiclass "
                "outputs use sklearn.multioutput.MultiOutputClassifier."
            )
        if y.ndim == 1:
            check_classification_targets(y)
        return X, y

    def _targets(
        self, y: np.ndarray, first: bool, incremental: bool, classes: Any = None
    ) -> tuple[np.ndarray, Layout]:
        multilabel = y.ndim == 2
        if first:
            wanted = self._first_classes(y, multilabel, incremental, classes)
        else:
            self._check_later_call(y, multilabel, incremental, classes)
            wanted = self.classes_
        attributes = {"classes_": wanted, "_multilabel": multilabel}
        if multilabel:  # scikit-learn sums the binary log-loss over the labels
            layout = Layout(len(wanted), "sigmoid", float(len(wanted)), attributes)
            return y.astype(np.float64), layout
        if len(wanted) <= 2:  # binary, or a single class: one sigmoid unit (scikit-learn's)
            targets = (np.searchsorted(wanted, y) == 1).astype(np.float64).reshape(-1, 1)
            return targets, Layout(1, "sigmoid", 1.0, attributes)
        return np.searchsorted(wanted, y).astype(np.int64), Layout(len(wanted), "softmax", 1.0,
                                                                    attributes)  # fmt: skip

    def _first_classes(
        self, y: np.ndarray, multilabel: bool, incremental: bool, classes: Any
    ) -> np.ndarray:
        if multilabel:
            return np.arange(y.shape[1])
        if not incremental:
            return np.unique(y)
        wanted = np.unique(column_or_1d(np.asarray(classes)))
        unseen = np.setdiff1d(np.unique(y), wanted)
        if unseen.size:
            raise ValueError(
                f"`y` has classes not in `classes`: {unseen.tolist()!r} (classes: "
                f"{wanted.tolist()!r})."
            )
        return wanted

    def _check_later_call(
        self, y: np.ndarray, multilabel: bool, incremental: bool, classes: Any
    ) -> None:
        name = type(self).__name__
        if multilabel != self._multilabel or (multilabel and y.shape[1] != len(self.classes_)):
            raise ValueError(
                f"{name}: y must have the same form as in the first call (multilabel with "
                f"{len(self.classes_)} labels)" if self._multilabel else
                f"{name}: y must be 1-D labels, as in the first call."
            )  # fmt: skip
        labels = np.arange(y.shape[1]) if multilabel else np.unique(y)
        if self.warm_start and not incremental:
            if set(labels) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_}, `y` has {labels}"
                )
            return
        if classes is not None:
            wanted = np.unique(column_or_1d(np.asarray(classes)))
            if not np.array_equal(wanted, self.classes_):
                raise ValueError(
                    f"`classes={wanted!r}` is not the same as on the first call to partial_fit "
                    f"or in fit, was: {self.classes_!r}."
                )
        unseen = np.setdiff1d(labels, self.classes_)
        if unseen.size:
            raise ValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                f"'y' has {labels}."
            )

    def _stratify_labels(self, T: np.ndarray) -> np.ndarray | None:
        """scikit-learn stratifies single-output problems only (binary, one class); by the
        user's labels, so that an error names them."""
        if self._multilabel or self.n_outputs_ != 1:
            return None
        return self.classes_[T[:, 0].astype(np.int64)]
