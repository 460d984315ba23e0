"""scikit-learn estimators: scikit-learn's check_estimator suite (default parameters, torch, forced
float32), the same runs as MLPClassifier/MLPRegressor for every solver and target type on every
backend, the objective they minimise, pipelines and grid searches, clone/pickle/set_params, and
their errors. The behaviours of scikit-learn's own MLP tests are in test_sklearn_mlp.py."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import anyarray_nn as ann
from anyarray_nn.sklearn import NNClassifier, NNRegressor

SHORT = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# -- scikit-learn's estimator checks ---------------------------------------------------------------
@SHORT  # the checks fit default estimators (max_iter=200) on data they do not converge on
@parametrize_with_checks([NNClassifier(), NNRegressor()])
def test_check_estimator_with_default_parameters(estimator, check):
    check(estimator)


@pytest.fixture
def one_torch_thread():
    """The checks' networks are small: torch's intra-op threads only add overhead (and, on a
    busy 2-core machine, make these checks several times slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@SHORT
# torch warns that a tensor made from a read-only array (check_readonly_memmap_input) must not
# be written to; nothing writes to X. (The backend could copy such arrays: left to backend.py.)
@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable:UserWarning")
@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@parametrize_with_checks([NNClassifier(backend="torch"), NNRegressor(backend="torch")])
def test_check_estimator_on_torch(estimator, check, one_torch_thread):
    check(estimator)


#: With dtype="float32" forced, the checks that float32 rounding alone breaks: each passes with
#: the default dtype (float64 for float64 input). Differences measured with scikit-learn 1.9.1.
FLOAT32_ROUNDING = {
    "check_sample_weight_equivalence_on_dense_data": (
        "float32 rounding: weighted vs repeated rows differ by up to 5.0e-8 absolute / 1.1e-6 "
        "relative in predict_proba, 2.4e-7 / 5.2e-7 in predict (tolerance rtol=1e-7, atol=1e-9)"
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "float32 rounding: the same differences as on dense data (5.0e-8 / 2.4e-7 absolute)"
    ),
    "check_methods_subset_invariance": (
        "float32 rounding: BLAS kernels change with the row count; predictions on a subset "
        "differed by 2.4e-7 absolute / 2.1e-7 relative (regressor, tolerance 1e-7), and by "
        "1.4e-6 relative for the classifier on an AMD EPYC (issue 10)"
    ),
}


@SHORT
@parametrize_with_checks(
    [NNClassifier(dtype="float32"), NNRegressor(dtype="float32")],
    expected_failed_checks=lambda est: FLOAT32_ROUNDING,
    xfail_strict=False,
)
def test_check_estimator_with_float32_forced(estimator, check):
    check(estimator)


# -- the same runs as scikit-learn's MLP ------------------------------------------------------
def _task(name, iris):
    X, y = iris
    if name == "binary":
        return X[y > 0], y[y > 0]
    if name == "regression":
        return X[:, :3], X[:, 3]
    if name == "multi-output":
        return X[:, :2], X[:, 2:]
    if name == "poisson":
        return X[:, :3], np.round(np.exp(X[:, 3]))
    if name == "multilabel":
        return make_multilabel_classification(n_samples=150, n_features=6, random_state=0)
    return X, y


@SHORT
@pytest.mark.parametrize(
    "task", ["multiclass", "binary", "multilabel", "regression", "multi-output", "poisson"]
)
@pytest.mark.parametrize(
    "solver_kw",
    [
        {"solver": "adam"},
        {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": True},
        {"solver": "sgd", "momentum": 0.5, "nesterovs_momentum": False},
    ],
    ids=["adam", "sgd-nesterov", "sgd-momentum"],
)
def test_same_run_as_scikit_learns_mlp(iris, task, solver_kw):
    """An int random_state gives MLP's initial weights and batch orders, and every update is
    MLP's: loss curves and weights agree to float64 rounding, for softmax, sigmoid (binary and
    multilabel), identity (one and several outputs) and the Poisson loss's exp output.
    batch_size 50 divides n, so every batch's penalty is MLP's too."""
    X, y = _task(task, iris)
    regression = task in ("regression", "multi-output", "poisson")
    Ours, Theirs = (NNRegressor, MLPRegressor) if regression else (NNClassifier, MLPClassifier)
    kw = {"hidden_layer_sizes": (6,), "alpha": 0.3, "learning_rate_init": 0.02,
          "batch_size": 50, "max_iter": 8, "tol": 0.0, "random_state": 0, **solver_kw}  # fmt: skip
    if task == "poisson":
        kw["loss"] = "poisson"
    ours, theirs = Ours(**kw).fit(X, y), Theirs(**kw).fit(X, y)
    if task != "multi-output":  # there MLP reports the mean over outputs of what it sums
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_outputs_ == theirs.n_outputs_ and ours.n_layers_ == theirs.n_layers_


@SHORT
def test_same_run_on_every_backend(backend, iris):
    """The whole MLP run (init, batches, Adam steps, early stopping) on each backend."""
    X, y = iris
    kw = {
        "hidden_layer_sizes": (8,),
        "max_iter": 6,
        "batch_size": 27,
        "early_stopping": True,
        "random_state": 0,
    }  # fmt: skip  (27 divides the 135 training rows)
    theirs = MLPClassifier(**kw).fit(X, y)
    ours = NNClassifier(backend=backend.name, device=backend.device, **kw).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8)
    lbfgs = NNRegressor((5,), solver="lbfgs", max_iter=30, random_state=0,
                        backend=backend.name, device=backend.device)  # fmt: skip
    reference = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=30, random_state=0)
    lbfgs.fit(X[:, :3], X[:, 3]), reference.fit(X[:, :3], X[:, 3])
    assert lbfgs.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(lbfgs.predict(X[:, :3]), reference.predict(X[:, :3]), rtol=1e-6)


@SHORT
def test_sparse_training_is_the_dense_run(iris):
    """CSR input trains, validates and predicts exactly as dense input does (mini-batches and
    early stopping)."""
    X, y = iris
    kw = {"hidden_layer_sizes": (8,), "max_iter": 10, "batch_size": 32, "early_stopping": True,
          "random_state": 0}  # fmt: skip
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    dense = NNClassifier(**kw).fit(X, y)
    sparse = NNClassifier(**kw).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(sparse.validation_scores_, dense.validation_scores_)
    np.testing.assert_allclose(sparse.predict_proba(sp.csc_matrix(X)), dense.predict_proba(X),
                               rtol=1e-12)  # fmt: skip


# -- the objective ------------------------------------------------------------------------------
def test_loss_is_sklearns_objective(iris):
    """net_.loss equals mean log-loss + alpha/(2n) * sum W**2 computed here from the weights
    (full batch: batch_size="auto" with n <= 200); the next epoch's reported loss is that
    objective at the weights the epoch starts from."""
    X, y = iris
    alpha = 0.7
    with pytest.warns(ConvergenceWarning):
        est = NNClassifier((7,), alpha=alpha, max_iter=5, random_state=1).fit(X, y)
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


@SHORT
def test_regressor_loss_is_half_mse_plus_penalty(iris):
    X, y = iris[0][:, :3], iris[0][:, 3]
    alpha = 0.4
    est = NNRegressor((5,), alpha=alpha, max_iter=3, random_state=0).fit(X, y)
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
    common = {"hidden_layer_sizes": (4,), "tol": 1e9, "n_iter_no_change": 2, "max_iter": 100}
    theirs = MLPClassifier(random_state=0, **common, **kw).fit(X, y)
    ours = NNClassifier(random_state=0, **common, **kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == len(ours.loss_curve_)
    assert ours.n_iter_ == (4 + 3 * 8 if kw.get("learning_rate") == "adaptive" else 4)
    if kw.get("learning_rate") == "adaptive":
        np.testing.assert_allclose(ours.net_.optimizer.lr, 0.1 / 5**8)


@SHORT
def test_invscaling_learning_rate(iris):
    X, y = iris
    est = NNClassifier((4,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.2,
                       power_t=0.3, max_iter=6, tol=0.0, random_state=0).fit(X, y)  # fmt: skip
    assert est.t_ == 6 * len(X)
    np.testing.assert_allclose(est.net_.optimizer.lr, 0.2 / (est.t_ + 1) ** 0.3)


def test_initial_weights_are_mlps(iris):
    """scikit-learn's Glorot-uniform draw (gain sqrt(6), sqrt(2) for logistic), biases included:
    the same numbers as MLP's for the same int random_state, described by the layers' config."""
    X, y = iris
    for activation in ("relu", "logistic"):
        kw = {"hidden_layer_sizes": (5, 4), "activation": activation, "max_iter": 1,
              "solver": "sgd", "learning_rate_init": 1e-300, "random_state": 3}  # fmt: skip
        with pytest.warns(ConvergenceWarning):
            ours, theirs = NNClassifier(**kw).fit(X, y), MLPClassifier(**kw).fit(X, y)
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                        strict=True):  # fmt: skip
            np.testing.assert_allclose(a, b, rtol=1e-12)
        factor = 2.0 if activation == "logistic" else 6.0
        config = ours.net_.config()["layers"][0]["config"]
        assert config["init"] == {"name": "uniform", "limit": np.sqrt(factor / (4 + 5))}


@SHORT
def test_unscaled_wine_is_not_chance():
    """Issue 10: raw wine (features up to ~1700) with default parameters scored 0.343 (chance)
    with the old He init; with MLP's init the run is MLP's (0.921 for seed 0)."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    ours = NNClassifier(random_state=0).fit(X, y)
    theirs = MLPClassifier(random_state=0).fit(X, y)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y)) and ours.score(X, y) > 0.9


# -- predictions and attributes --------------------------------------------------------------------
@SHORT
@pytest.mark.parametrize("n_classes", [1, 2, 3])
def test_predict_proba_consistent_with_predict(iris, n_classes):
    """Labels of any type; one sigmoid unit for one or two classes (MLP's layout, so one class
    fits too and always predicts it), softmax otherwise."""
    X, y = iris
    keep = y < n_classes
    labels = np.array(["setosa", "versicolor", "virginica"])[y[keep]]
    est = NNClassifier((8,), max_iter=20, random_state=0).fit(X[keep], labels)
    theirs = MLPClassifier((8,), max_iter=20, random_state=0).fit(X[keep], labels)
    proba = est.predict_proba(X[keep])
    np.testing.assert_allclose(proba, theirs.predict_proba(X[keep]), rtol=1e-9)
    assert proba.shape == (keep.sum(), max(n_classes, 2)) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(est.classes_, np.unique(labels))
    np.testing.assert_array_equal(est.predict(X[keep]), theirs.predict(X[keep]))
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X[keep])), proba)
    assert est.n_outputs_ == (3 if n_classes == 3 else 1)
    assert est.out_activation_ == ("softmax" if n_classes == 3 else "logistic")
    assert [c.shape for c in est.coefs_] == [(4, 8), (8, est.n_outputs_)]


@SHORT
def test_regressor_output_shapes(iris):
    """1-D predictions for one output (a column y warns, as scikit-learn's), 2-D for several."""
    from sklearn.exceptions import DataConversionWarning

    X = iris[0]
    for y, shape in ((X[:, 0], (150,)), (X[:, :1], (150,)), (X[:, :3], (150, 3))):
        est = NNRegressor((8,), max_iter=5, random_state=0)
        if y.ndim == 2 and y.shape[1] == 1:
            with pytest.warns(DataConversionWarning):
                est.fit(X, y)
        else:
            est.fit(X, y)
        pred = est.predict(X)
        assert pred.shape == shape and pred.dtype == np.float64
        assert est.n_outputs_ == (1 if len(shape) == 1 else 3)


def test_partial_fit(iris):
    X, y = iris
    est = NNClassifier((8,), learning_rate_init=0.01, random_state=0)
    for i in range(1, 16):
        est.partial_fit(X, y, classes=[0, 1, 2] if i == 1 else None)
        assert est.n_iter_ == 1 and len(est.loss_curve_) == i  # scikit-learn's counts
    assert np.all(np.diff(est.loss_curve_) < 0)  # full batches, small lr: decreases every epoch
    early = NNClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        early.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(early, "net_")
    reg = NNRegressor((8,), learning_rate_init=0.01, random_state=0)
    for _ in range(10):
        reg.partial_fit(X[:, :3], X[:, 3], sample_weight=np.ones(150))
    assert len(reg.loss_curve_) == 10 and reg.loss_curve_[-1] < reg.loss_curve_[0]
    with pytest.raises(ValueError, match="output"):
        reg.partial_fit(X[:, :3], X[:, 2:])


@SHORT
def test_fit_restarts_and_is_reproducible(iris):
    X, y = iris
    est = NNClassifier((8,), max_iter=10, random_state=0).fit(X, y)
    first = est.predict_proba(X)
    est.partial_fit(X, y)
    est.fit(X, y)  # a new fit starts over: fresh weights, fresh curve
    assert est.n_iter_ == len(est.loss_curve_) == 10
    np.testing.assert_array_equal(est.predict_proba(X), first)
    assert est.net_.seed == 0


@SHORT
def test_dropout_and_no_hidden_layer(iris):
    X, y = iris
    est = NNClassifier((16,), dropout=0.3, learning_rate_init=0.01, max_iter=100, random_state=0)
    assert est.fit(X, y).score(X, y) > 0.9
    np.testing.assert_array_equal(clone(est).fit(X, y).predict_proba(X), est.predict_proba(X))
    linear = NNClassifier((), learning_rate_init=0.05, max_iter=100, random_state=0).fit(X, y)
    assert [c.shape for c in linear.coefs_] == [(4, 3)] and linear.score(X, y) > 0.9


# -- sklearn tooling: pipelines, grid search, clone, pickle, set_params -------------------------------
def test_grid_search_in_pipeline():
    """The write-ups' search: learning_rate_init x momentum with SGD, on iris, cv=3."""
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(), NNClassifier((16,), solver="sgd", max_iter=2000, tol=1e-3, random_state=0)
    )
    grid = {"nnclassifier__learning_rate_init": [0.01, 0.1], "nnclassifier__momentum": [0.0, 0.9]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert search.best_score_ > 0.85
    assert set(search.best_params_) == set(grid)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.score(X, y) > 0.9


@SHORT
def test_clone_and_get_params(iris):
    X, y = iris
    est = NNClassifier((8,), activation="logistic", solver="sgd", random_state=0, max_iter=3)
    est.fit(X, y)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert set(MLPClassifier().get_params()) < set(twin.get_params())
    assert set(MLPRegressor().get_params()) < set(NNRegressor().get_params())
    assert not hasattr(twin, "net_")
    with pytest.raises(NotFittedError):
        twin.predict(X)
    assert est.net_.layers[0].activation.name == "sigmoid"  # sklearn's "logistic"


@SHORT
def test_pickle_round_trip(backend, iris):
    X, y = iris
    est = NNClassifier(
        (8,), max_iter=5, random_state=0, backend=backend.name, device=backend.device
    ).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    assert again.net_.backend.name == backend.name
    again.partial_fit(X, y)  # the unpickled optimizer state continues
    assert len(again.loss_curve_) == 6


@SHORT
def test_saved_network_loads_with_its_optimizer(iris, tmp_path):
    """net_ saves and loads like any NN, scikit-learn's Adam state included."""
    X, y = iris
    est = NNClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    est.net_.save(tmp_path / "clf.safetensors")
    loaded = ann.load(tmp_path / "clf.safetensors")
    np.testing.assert_array_equal(loaded.predict(X), est.net_.predict(X))
    assert loaded.optimizer.name == "sklearn_adam" and loaded.optimizer.t == 5


@SHORT
def test_set_params_backend_refit(iris):
    pytest.importorskip("torch")
    X = iris[0]
    est = NNRegressor((8,), max_iter=10, random_state=0).fit(X[:, :3], X[:, 3])
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
        ({"solver": "newton"}, "solver"),
        ({"activation": "softplus"}, "activation"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        ({"alpha": -1.0}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": "cosine"}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"max_iter": 0}, "max_iter"),
        ({"max_fun": 0}, "max_fun"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
        ({"warm_start": "yes"}, "warm_start"),
        ({"dtype": "float16"}, "float16"),
        ({"backend": "no_such_library"}, "Unknown backend"),
        ({"solver": "lbfgs", "dropout": 0.2}, "NNClassifier: solver='lbfgs' does not support"),
    ],
)
def test_bad_parameters_raise_value_error_in_fit(iris, params, match):
    X, y = iris
    est = NNClassifier(**params)  # never in __init__ or set_params (scikit-learn's rule)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_unsupported_arguments_name_the_public_class(iris):
    X, y = iris
    for Est in (NNClassifier, NNRegressor):
        with pytest.raises(TypeError, match=rf"{Est.__name__}\.__init__\(\) got an unexpected"):
            Est(bogus=1)
        with pytest.raises(TypeError, match=rf"{Est.__name__}\.fit\(\) got an unexpected"):
            Est().fit(X, y, bogus=1)
    with pytest.raises(AttributeError, match="'NNRegressor' has no attribute 'partial_fit'"):
        NNRegressor(solver="lbfgs").partial_fit(X, y)
    with pytest.raises(ValueError, match="loss must be one of"):
        NNRegressor(loss="huber").fit(X, y)
    est = NNRegressor((3,), solver="lbfgs", max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, X[:, 0])
    with pytest.raises(AttributeError, match=r"NNRegressor\.coefs_ is a read-only copy"):
        est.coefs_ = [np.zeros((4, 3)), np.zeros((3, 1))]


@SHORT
def test_bad_targets(iris):
    X, y = iris
    with pytest.raises(ValueError, match="MultiOutputClassifier"):
        NNClassifier().fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="Unknown label type"):
        NNClassifier().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="sample_weight"):
        NNClassifier().fit(X, y, sample_weight=-np.ones(150))
    with pytest.warns(UserWarning, match="clipped"):
        NNClassifier((4,), batch_size=500, max_iter=1).fit(X, y)


# -- the parity benchmark --------------------------------------------------------------------------
def test_parity_script(capsys):
    """benchmarks/sklearn_parity.py runs, prints its table, and judges as documented: within
    0.01 of scikit-learn or better, and above chance wherever scikit-learn is."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import sklearn_parity as parity

    assert parity.main(["--seeds", "1", "--only", "iris"]) == 0
    out = capsys.readouterr().out
    X, y = load_iris(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    with pytest.warns(ConvergenceWarning):
        mlp = MLPClassifier(random_state=0).fit(X_tr, y_tr).score(X_te, y_te)
    assert f"| iris (112/38), accuracy | {mlp:.4f} ± 0.0000 | {mlp:.4f} ± 0.0000 |" in out
    result = parity.Result(parity.CASES[0], chance=[0.34, 0.34])
    result.scores = {"mlp": [0.90, 0.90], "ours": [0.90, 0.89]}
    assert result.ok()  # 0.005 below on average
    result.scores["ours"] = [0.90, 0.87]
    assert not result.ok()  # 0.015 below
    result.scores = {"mlp": [0.90, 0.90], "ours": [0.99, 0.30]}
    assert not result.ok()  # better on average, but chance in one run where MLP is not
