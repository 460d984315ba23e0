"""scikit-learn estimators: the full check_estimator suite, and checks against scikit-learn's own
MLPClassifier/MLPRegressor (the same objective, the same SGD steps, the same stopping rules), in
pipelines and grid searches, through clone/pickle/set_params, on every backend."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from anyarray_nn.sklearn import NNClassifier, NNRegressor

# With a tol this large only the first epoch counts as an improvement (on the initial best of
# +-inf): the rule then fires after n_iter_no_change + 2 epochs, whatever the data.
HUGE_TOL = 1e9


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# -- scikit-learn's estimator checks, with the default dtype (float32) on NumPy -----------------------
@parametrize_with_checks(
    [
        NNClassifier((8,), learning_rate_init=0.01, max_iter=50, random_state=0),
        NNRegressor((8,), learning_rate_init=0.01, max_iter=50, random_state=0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# -- independent of our own outputs: scikit-learn's MLP as the reference -------------------------
def _same_start(ours, theirs, X, y):
    """Fit scikit-learn's MLP once, then put its weights into ``ours`` with a fresh optimizer.

    Returns the starting weights. ``theirs`` must have ``warm_start=True`` so that its next
    ``fit`` continues from the same weights.
    """
    theirs.fit(X, y)
    start = [w for pair in zip(theirs.coefs_, theirs.intercepts_, strict=True) for w in pair]
    ours.fit(X, y)
    ours.net_.set_weights(start)
    ours.net_.optimizer = None  # the next partial_fit builds a fresh one, as warm_start does
    return start


@pytest.mark.parametrize(
    ("Ours", "Theirs", "task"),
    [
        (NNClassifier, MLPClassifier, "multiclass"),
        (NNClassifier, MLPClassifier, "binary"),
        (NNRegressor, MLPRegressor, "regression"),
    ],
)
def test_sgd_epochs_equal_sklearn_mlp(iris, Ours, Theirs, task):
    """From the same weights, 4 epochs of SGD with Nesterov momentum and a strong alpha give
    scikit-learn's loss curve and weights: this pins down the alpha mapping (l2 = alpha/(2B)),
    the regressor's half squared error and the loss bookkeeping."""
    X, y = iris
    if task == "binary":
        X, y = X[y > 0], y[y > 0]  # 100 rows
    if task == "regression":
        X, y = X[:, :3], X[:, 3]
    kw = {
        "hidden_layer_sizes": (6,),
        "solver": "sgd",
        "alpha": 0.3,
        "learning_rate_init": 0.05,
        "momentum": 0.9,
        "nesterovs_momentum": True,
        "batch_size": 50,  # full batches only: the last batch's penalty weight is then the same
        "shuffle": False,
        "tol": 0.0,
        "random_state": 0,
    }
    theirs = Theirs(max_iter=1, warm_start=True, **kw)
    ours = Ours(max_iter=1, dtype="float64", **kw)
    _same_start(ours, theirs, X, y)
    theirs.set_params(max_iter=4).fit(X, y)
    for _ in range(4):
        ours.partial_fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_[-4:], theirs.loss_curve_[-4:], rtol=1e-10)
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_loss_is_sklearns_objective(iris):
    """net_.loss equals mean log-loss + alpha/(2n) * sum W**2 computed here from the weights
    (full batch: batch_size="auto" with n <= 200); the next epoch's reported loss is that
    objective at the weights the epoch starts from."""
    X, y = iris
    alpha = 0.7
    est = NNClassifier((7,), alpha=alpha, max_iter=5, dtype="float64", random_state=1).fit(X, y)
    W = est.net_.get_weights()
    h = np.maximum(X @ W[0] + W[1], 0.0)
    z = h @ W[2] + W[3]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = log_loss(y, p) + alpha / (2 * len(X)) * (np.sum(W[0] ** 2) + np.sum(W[2] ** 2))
    np.testing.assert_allclose(est.net_.loss(X, y), expected, rtol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X), p, rtol=1e-12)
    est.partial_fit(X, y)
    np.testing.assert_allclose(est.loss_curve_[-1], expected, rtol=1e-12)


def test_regressor_loss_is_half_mse_plus_penalty(iris):
    X, y = iris[0][:, :3], iris[0][:, 3]
    alpha = 0.4
    est = NNRegressor((5,), alpha=alpha, max_iter=3, dtype="float64", random_state=0).fit(X, y)
    W = est.net_.get_weights()
    penalty = alpha / (2 * len(X)) * (np.sum(W[0] ** 2) + np.sum(W[2] ** 2))
    expected = 0.5 * np.mean((est.predict(X) - y) ** 2) + penalty
    est.partial_fit(X, y)
    np.testing.assert_allclose(est.loss_curve_[-1], expected, rtol=1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        {"solver": "adam"},
        {"solver": "sgd", "learning_rate": "adaptive", "learning_rate_init": 0.1},  # lr / 5 ...
        {"solver": "adam", "early_stopping": True},
    ],
)
def test_stopping_rules_match_sklearn(iris, kw):
    """With a huge tol the epoch count depends on the rule only: stop after n_iter_no_change + 2
    epochs; adaptive: divide the lr by 5 on each trigger (every 3 epochs after the first
    trigger) until it is <= 1e-6, then stop: 0.1 / 5**8 <= 1e-6 < 0.1 / 5**7."""
    X, y = iris
    common = {"hidden_layer_sizes": (4,), "tol": HUGE_TOL, "n_iter_no_change": 2, "max_iter": 100}
    theirs = MLPClassifier(random_state=0, **common, **kw).fit(X, y)
    ours = NNClassifier(random_state=0, **common, **kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == len(ours.loss_curve_)
    assert ours.n_iter_ == (4 + 3 * 8 if kw.get("learning_rate") == "adaptive" else 4)
    if kw.get("learning_rate") == "adaptive":
        np.testing.assert_allclose(ours.net_.optimizer.lr, 0.1 / 5**8)


def test_stopping_on_training_loss_and_convergence_warning(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(5\)"):
        est = NNClassifier((8,), max_iter=5, tol=0.0, random_state=0).fit(X, y)
    assert est.n_iter_ == len(est.loss_curve_) == 5
    assert est.best_loss_ == min(est.loss_curve_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopping early is convergence
        est = NNClassifier((8,), max_iter=200, tol=0.1, n_iter_no_change=2, random_state=0)
        est.fit(X, y)
    # Recompute scikit-learn's rule from the recorded curve: it must fire at the last epoch only.
    best, count, fired = np.inf, 0, []
    for loss in est.loss_curve_:
        count = count + 1 if loss > best - 0.1 else 0
        best = min(best, loss)
        fired.append(count > 2)
    assert fired[-1] and not any(fired[:-1])


def test_invscaling_learning_rate(iris):
    X, y = iris
    est = NNClassifier(
        (4,),
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.2,
        power_t=0.3,
        max_iter=6,
        tol=0.0,
        random_state=0,
    ).fit(X, y)
    assert est.t_ == 6 * len(X)
    np.testing.assert_allclose(est.net_.optimizer.lr, 0.2 / (est.t_ + 1) ** 0.3)


def test_early_stopping_keeps_best_validation_weights(iris):
    X, y = iris
    est = NNClassifier(
        (4,),
        early_stopping=True,
        validation_fraction=0.3,
        learning_rate_init=0.01,
        n_iter_no_change=5,
        max_iter=60,
        random_state=3,
    ).fit(X, y)
    assert est.best_loss_ is None
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_)
    # The documented split: train_test_split seeded by random_state, stratified by class.
    _, X_val, _, y_val = train_test_split(X, y, random_state=3, test_size=0.3, stratify=y)
    assert est.score(X_val, y_val) == pytest.approx(est.best_validation_score_)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_accuracy_comparable_to_mlpclassifier(solver):
    """Identical hyperparameters: both reach > 0.9 test accuracy on iris and digits."""
    for loader, hidden, max_iter in ((load_iris, (32,), 200), (load_digits, (64,), 30)):
        X, y = loader(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        kw = {"hidden_layer_sizes": hidden, "solver": solver, "max_iter": max_iter}
        kw["learning_rate_init"] = 0.01 if solver == "adam" else 0.1
        for est in (MLPClassifier(random_state=0, **kw), NNClassifier(random_state=0, **kw)):
            model = make_pipeline(StandardScaler(), est).fit(X_tr, y_tr)
            assert model.score(X_te, y_te) > 0.9, (loader.__name__, type(est).__name__)


def test_r2_comparable_to_mlpregressor():
    X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y / y.std(), random_state=0)
    kw = {"hidden_layer_sizes": (32,), "learning_rate_init": 0.01, "max_iter": 200}
    for est in (MLPRegressor(random_state=0, **kw), NNRegressor(random_state=0, **kw)):
        assert est.fit(X_tr, y_tr).score(X_te, y_te) > 0.95, type(est).__name__


# -- predictions and attributes --------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_proba_consistent_with_predict(iris, n_classes):
    X, y = iris
    keep = y < n_classes
    labels = np.array(["setosa", "versicolor", "virginica"])[y[keep]]
    est = NNClassifier((8,), max_iter=20, random_state=0).fit(X[keep], labels)
    proba = est.predict_proba(X[keep])
    assert proba.shape == (keep.sum(), n_classes) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(est.classes_, np.unique(labels))
    np.testing.assert_array_equal(est.predict(X[keep]), est.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X[keep])), proba)
    # one sigmoid unit for two classes (as MLPClassifier), softmax otherwise
    assert est.n_outputs_ == (1 if n_classes == 2 else 3)
    assert est.out_activation_ == ("logistic" if n_classes == 2 else "softmax")
    assert [c.shape for c in est.coefs_] == [(4, 8), (8, est.n_outputs_)]


def test_regressor_output_shapes(iris):
    X = iris[0]
    for y, shape in ((X[:, 0], (150,)), (X[:, :1], (150, 1)), (X[:, :3], (150, 3))):
        est = NNRegressor((8,), max_iter=5, random_state=0).fit(X, y)
        pred = est.predict(X)
        assert pred.shape == shape and pred.dtype == np.float64
        assert est.n_outputs_ == (1 if y.ndim == 1 else y.shape[1])


def test_partial_fit(iris):
    X, y = iris
    est = NNClassifier((8,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    for i in range(1, 16):
        est.partial_fit(X, y, classes=[0, 1, 2] if i == 1 else None)
        assert est.n_iter_ == len(est.loss_curve_) == i
    assert np.all(np.diff(est.loss_curve_) < 0)  # full batches, small lr: decreases every epoch
    with pytest.raises(ValueError, match="not the same"):
        est.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not in classes"):
        est.partial_fit(X, y + 1)
    early = NNClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        early.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(early, "net_")
    # first partial_fit with classes absent from this chunk, then a chunk containing them
    est = NNClassifier((8,), random_state=0).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert est.predict_proba(X).shape == (150, 3)
    est.partial_fit(X, y)
    reg = NNRegressor((8,), learning_rate_init=0.01, random_state=0)
    for _ in range(10):
        reg.partial_fit(X[:, :3], X[:, 3])
    assert reg.n_iter_ == 10 and reg.loss_curve_[-1] < reg.loss_curve_[0]
    with pytest.raises(ValueError, match="output"):
        reg.partial_fit(X[:, :3], X[:, 2:])


def test_fit_restarts_and_is_reproducible(iris):
    X, y = iris
    est = NNClassifier((8,), max_iter=10, random_state=0).fit(X, y)
    first = est.predict_proba(X)
    est.partial_fit(X, y)
    est.fit(X, y)  # a new fit starts over: fresh weights, fresh curve
    assert est.n_iter_ == len(est.loss_curve_) == 10
    np.testing.assert_array_equal(est.predict_proba(X), first)
    assert est.net_.seed == 0


def test_dropout_and_no_hidden_layer(iris):
    X, y = iris
    est = NNClassifier((16,), dropout=0.3, learning_rate_init=0.01, max_iter=100, random_state=0)
    assert est.fit(X, y).score(X, y) > 0.9
    np.testing.assert_array_equal(clone(est).fit(X, y).predict_proba(X), est.predict_proba(X))
    linear = NNClassifier((), learning_rate_init=0.05, max_iter=100, random_state=0).fit(X, y)
    assert [c.shape for c in linear.coefs_] == [(4, 3)] and linear.score(X, y) > 0.9


def test_verbose_prints_like_mlp(iris, capsys):
    X, y = iris
    NNClassifier((4,), max_iter=2, verbose=True, random_state=0).fit(X, y)
    assert capsys.readouterr().out.startswith("Iteration 1, loss = ")


# -- sklearn tooling: pipelines, grid search, clone, pickle, set_params -------------------------------
def test_grid_search_in_pipeline(iris):
    """The write-ups' search: learning_rate_init x momentum with SGD, on iris, cv=3."""
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(), NNClassifier((16,), solver="sgd", max_iter=40, random_state=0)
    )
    grid = {"nnclassifier__learning_rate_init": [0.01, 0.1], "nnclassifier__momentum": [0.0, 0.9]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert search.best_score_ > 0.85
    assert set(search.best_params_) == set(grid)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.score(X, y) > 0.9


def test_clone_and_get_params(iris):
    X, y = iris
    est = NNClassifier((8,), activation="logistic", solver="sgd", random_state=0, max_iter=3)
    est.fit(X, y)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "net_")
    with pytest.raises(NotFittedError):
        twin.predict(X)
    assert est.net_.layers[0].activation.name == "sigmoid"  # sklearn's "logistic"


def test_pickle_round_trip(backend, iris):
    X, y = iris
    est = NNClassifier(
        (8,), max_iter=5, random_state=0, backend=backend.name, device=backend.device
    ).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    assert again.net_.backend.name == backend.name
    again.partial_fit(X, y)  # the unpickled optimizer state continues
    assert again.n_iter_ == 6


def test_set_params_backend_refit(iris):
    pytest.importorskip("torch")
    X = iris[0]
    est = NNRegressor((8,), dtype="float64", max_iter=10, random_state=0).fit(X[:, :3], X[:, 3])
    ref = est.predict(X[:, :3])
    est.set_params(backend="torch", device="cpu").fit(X[:, :3], X[:, 3])
    assert est.net_.backend.name == "torch"
    # same seed, same initial weights and batch order: the same run to float64 rounding
    np.testing.assert_allclose(est.predict(X[:, :3]), ref, rtol=1e-9, atol=1e-12)
    est.set_params(backend="numpy", hidden_layer_sizes=(3, 3)).fit(X[:, :3], X[:, 3])
    assert [c.shape for c in est.coefs_] == [(3, 3), (3, 3), (3, 1)]


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"solver": "lbfgs"}, "lbfgs"),
        ({"activation": "softplus"}, "activation"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        ({"alpha": -1.0}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": "cosine"}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"max_iter": 0}, "max_iter"),
        ({"dtype": "float16"}, "float16"),
        ({"backend": "jax"}, "Unknown backend"),
    ],
)
def test_bad_parameters_raise_value_error_in_fit(iris, params, match):
    X, y = iris
    est = NNClassifier(**params)  # never in __init__ or set_params (scikit-learn's rule)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_bad_targets(iris):
    X, y = iris
    with pytest.raises(ValueError, match="multilabel"):
        NNClassifier().fit(X, np.eye(3)[y])
    with pytest.raises(ValueError, match="Unknown label type"):
        NNClassifier().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="at least 2 classes"):
        NNClassifier().fit(X, np.zeros(150))
    with pytest.warns(UserWarning, match="clipped"):
        NNClassifier((4,), batch_size=500, max_iter=1).fit(X, y)
