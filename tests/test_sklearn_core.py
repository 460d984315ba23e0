"""The core pieces the scikit-learn estimators stand on, on every backend, each against an
independent reference: sample weights (against repeated rows and scikit-learn's weighted
metrics), scipy.sparse input (against the dense run), the Poisson loss and exp output (against
scipy and central differences), L-BFGS (against scikit-learn's own L-BFGS from the same start),
scikit-learn's Adam (against scikit-learn's optimizer), and fit's shuffle function."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import PAIRS, make_targets
from scipy.special import xlogy
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, mean_poisson_deviance, r2_score

import anyarray_nn as ann
from anyarray_nn.optimizers import SklearnAdam


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _net(spec, sizes, output="softmax", loss=None, dtype="float64", **kw):
    return ann.NN(list(sizes), activation="tanh", output=output, loss=loss, backend=spec.name,
                  device=spec.device, dtype=dtype, seed=3, **kw)  # fmt: skip


def _repeat(w, *arrays):
    """Each row ``i`` of each array ``w[i]`` times: what integer sample weights stand for."""
    return [np.repeat(a, w, axis=0) for a in arrays]


# -- sample weights -------------------------------------------------------------------------------
@pytest.mark.parametrize(("output", "loss"), [*PAIRS, ("exp", "poisson")])
def test_integer_weights_equal_repeated_rows(backend, output, loss):
    """Loss and gradients with weight k on a row equal those with the row repeated k times
    (weight 0: the row removed), for every output/loss pair, fused or not, with a penalty."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 4))
    y = make_targets(output, loss, 12, 3, rng)
    y = np.abs(y) if loss == "poisson" else y
    w = rng.integers(0, 4, size=12)
    w[0] = 2
    net = _net(backend, [4, 5, 3], output, loss, l2=0.01)
    X_rep, y_rep = _repeat(w, X, y)
    assert net.loss(X, y, sample_weight=w) == pytest.approx(net.loss(X_rep, y_rep), rel=1e-12)
    got = net.gradients(X, y, sample_weight=w)
    for g, ref in zip(got, net.gradients(X_rep, y_rep), strict=True):
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-13)


def test_weighted_fit_equals_fit_on_repeated_rows(backend, iris):
    """One batch, no shuffling: every SGD step on the weighted data is the step on the data
    with rows repeated, so the runs and their logged losses agree."""
    X, y = iris[0][::3], iris[1][::3]
    w = np.arange(len(y)) % 3
    weighted = _net(backend, [4, 6, 3], l2=1e-3)
    repeated = _net(backend, [4, 6, 3], l2=1e-3)
    h1 = weighted.fit(X, y, epochs=4, batch_size=500, shuffle=False, lr=0.2, sample_weight=w)
    h2 = repeated.fit(*_repeat(w, X, y), epochs=4, batch_size=500, shuffle=False, lr=0.2)
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-12)
    np.testing.assert_allclose(h1["accuracy"], h2["accuracy"], rtol=1e-12)
    for a, b in zip(weighted.get_weights(), repeated.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_weighted_metrics_are_scikit_learns(backend, iris):
    X, y = iris
    w = np.random.default_rng(1).uniform(0.0, 2.0, size=len(y))
    clf = _net(backend, [4, 3, 3])
    for batch_size in (None, 16):
        logs = clf.evaluate(X, y, batch_size=batch_size, sample_weight=w)
        pred = clf.predict_classes(X)
        assert logs["accuracy"] == pytest.approx(accuracy_score(y, pred, sample_weight=w))
    reg = _net(backend, [3, 4, 2], output="identity")
    T = X[:, 2:]
    logs = reg.evaluate(X[:, :3], T, batch_size=16, sample_weight=w)
    assert logs["r2"] == pytest.approx(r2_score(T, reg.predict(X[:, :3]), sample_weight=w))


def test_weighted_validation_and_subset_accuracy(backend):
    """validation_data takes (X, y, w); subset_accuracy is scikit-learn's multilabel
    accuracy_score, accuracy the per-label one."""
    X, Y = make_multilabel_classification(n_samples=40, n_classes=4, random_state=0)
    w = np.linspace(0.5, 2.0, 40)
    net = _net(backend, [20, 8, 4], output="sigmoid")
    history = net.fit(X, Y, epochs=1, lr=0.01, validation_data=(X, Y, w),
                      metrics=["accuracy", "subset_accuracy"])  # fmt: skip
    pred = net.predict_classes(X)
    assert history["val_subset_accuracy"][-1] == pytest.approx(
        accuracy_score(Y, pred, sample_weight=w)
    )
    per_label = np.average(np.mean(pred == Y, axis=1), weights=w)
    assert history["val_accuracy"][-1] == pytest.approx(per_label)


def test_bad_sample_weights(iris):
    X, y = iris
    net = ann.NN([4, 3], backend="numpy", seed=0)
    for w, match in (
        (np.ones(5), r"shape \(150,\)"),
        (-np.ones(150), "non-negative"),
        (np.zeros(150), "positive sum"),
        (np.full(150, np.nan), "finite"),
    ):
        with pytest.raises(ValueError, match=match):
            net.fit(X, y, epochs=1, sample_weight=w)


# -- scipy.sparse input ------------------------------------------------------------------------
def test_sparse_fit_predict_evaluate_equal_dense(backend, iris):
    """CSR and CSC training, prediction and evaluation give the dense numbers (same seed, so
    the same batches), with a validation set and a memmap-style host path in between."""
    X, y = iris
    X = np.where(np.abs(X) < 0.5, 0.0, X)  # about a third zeros
    dense = _net(backend, [4, 8, 3], l2=1e-3)
    h1 = dense.fit(X, y, epochs=2, batch_size=32, optimizer="adam", lr=0.01,
                   validation_data=(X[:40], y[:40]))  # fmt: skip
    for container in (sp.csr_matrix, sp.csc_array):
        net = _net(backend, [4, 8, 3], l2=1e-3)
        h2 = net.fit(container(X), y, epochs=2, batch_size=32, optimizer="adam", lr=0.01,
                     validation_data=(container(X[:40]), y[:40]))  # fmt: skip
        np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-12)
        np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-12)
        np.testing.assert_allclose(net.predict(container(X), batch_size=7), dense.predict(X),
                                   rtol=1e-12)  # fmt: skip
        assert net.evaluate(container(X), y) == pytest.approx(dense.evaluate(X, y), rel=1e-12)


def test_sparse_is_densified_one_batch_at_a_time(monkeypatch, iris):
    X, y = iris
    shapes = []
    original = sp.csr_matrix.toarray

    def recording(self, *args, **kw):
        shapes.append(self.shape)
        return original(self, *args, **kw)

    monkeypatch.setattr(sp.csr_matrix, "toarray", recording)
    net = ann.NN([4, 3], backend="numpy", seed=0)
    net.fit(sp.csr_matrix(X), y, epochs=2, batch_size=32)
    net.predict(sp.csr_matrix(X), batch_size=50)
    net.fit_lbfgs(sp.csr_matrix(X), y, max_iter=2, batch_size=64)
    assert shapes and max(rows for rows, _ in shapes) <= 64
    with pytest.raises(ValueError, match=r"X.toarray\(\)"):
        net.gradients(sp.csr_matrix(X), y)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.fit(sp.csr_matrix(np.where(X > 2, np.inf, X)), y)


# -- the Poisson loss and the exp output --------------------------------------------------------
def test_poisson_loss_is_half_the_deviance(backend):
    """NN's Poisson loss is scikit-learn's half deviance (mean_poisson_deviance / 2), with
    scipy's xlogy for zero counts, and the exp output is the network's prediction."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    net = _net(backend, [3, 4, 1], output="exp")
    assert net.loss_fn.name == "poisson"
    mu = net.predict(X)[:, 0]
    y = rng.poisson(mu * 2.0).astype(float)  # zeros included
    assert np.any(y == 0)
    assert net.loss(X, y) == pytest.approx(mean_poisson_deviance(y, mu) / 2, rel=1e-12)
    by_hand = np.mean(xlogy(y, y / mu) - y + mu)
    assert net.loss(X, y) == pytest.approx(by_hand, rel=1e-12)
    assert ann.gradcheck(net, X, y) < 1e-7


def test_poisson_from_activations_equals_fused():
    """The unfused path (value and grad on the exp output) agrees with the fused one."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(20, 3)), rng.poisson(2.0, size=(20, 2)).astype(float)
    fused = ann.NN([3, 4, 2], output="exp", backend="numpy", dtype="float64", seed=1)
    plain = fused.copy()
    plain._fused = False
    assert plain.loss(X, y) == pytest.approx(fused.loss(X, y), rel=1e-12)
    for a, b in zip(plain.gradients(X, y), fused.gradients(X, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# -- scikit-learn's clipped log-losses ------------------------------------------------------------
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_clipped_log_losses_are_scikit_learns(backend, output):
    """The clipped cross-entropies report scikit-learn's values (probabilities clipped to
    [eps, 1 - eps]: at most -log(eps) per sample, however wrong the prediction) in float64 and
    float32, and keep the unclipped gradient (scikit-learn's steps)."""
    from sklearn.neural_network._base import binary_log_loss, log_loss

    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 3))
    k = 3 if output == "softmax" else 2
    T = np.eye(k)[rng.integers(0, k, 40)] if output == "softmax" else rng.integers(0, 2, (40, 2))
    for dtype in ("float64", "float32"):
        eps = float(np.finfo(dtype).eps)
        loss = (ann.losses.ClippedCrossEntropy(eps) if output == "softmax"
                else ann.losses.ClippedBinaryCrossEntropy(eps))  # fmt: skip
        net = _net(backend, [3, 4, k], output, loss, dtype=dtype)
        plain = ann.NN([3, 4, k], activation="tanh", output=output, backend="numpy",
                       dtype="float64", seed=3)  # fmt: skip
        weights = plain.get_weights()
        weights[2] *= 60.0  # logits up to ~100: some probabilities below eps
        plain.set_weights(weights)
        net.set_weights(weights)
        proba = net.predict(X)
        reference = log_loss if output == "softmax" else binary_log_loss
        expected = reference(T.astype(dtype), proba)
        if output == "sigmoid":
            expected /= k  # scikit-learn sums over the labels; the network averages
        assert net.loss(X, T) == pytest.approx(expected, rel=1e-5 if dtype == "float32" else 1e-12)
        assert net.loss(X, T) < plain.loss(X, T)  # the clip is active on this data
        if dtype == "float64":
            for a, b in zip(net.gradients(X, T), plain.gradients(X, T), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    assert ann.NN.from_config(net.config()).loss_fn.config() == loss.config()


# -- L-BFGS --------------------------------------------------------------------------------------
def test_lbfgs_equals_scikit_learns_lbfgs(backend, iris):
    """From the same weights and with the same objective (mean log-loss + alpha/(2n) sum W**2),
    scipy's L-BFGS-B driven through the device takes scikit-learn's iterations."""
    from sklearn.neural_network import MLPClassifier

    X, y = iris
    mlp = MLPClassifier((5,), solver="lbfgs", alpha=0.3, max_iter=1, warm_start=True,
                        random_state=0)  # fmt: skip
    with pytest.warns(ConvergenceWarning):
        mlp.fit(X, y)  # one iteration: a start that is not scikit-learn's init
    start = [w for pair in zip(mlp.coefs_, mlp.intercepts_, strict=True) for w in pair]
    with pytest.warns(ConvergenceWarning):  # 40 of the 113 iterations it takes to converge
        mlp.set_params(max_iter=40).fit(X, y)  # continues from start
    net = _net(backend, [4, 5, 3], l2=0.3 / (2 * len(y)))
    net.layers[0].activation = ann.activations.get("relu")
    net.set_weights(start)
    result = net.fit_lbfgs(X, y, max_iter=40, tol=1e-4)
    assert result.nit == mlp.n_iter_
    assert result.fun == pytest.approx(mlp.loss_, rel=1e-9)
    for ours, theirs in zip(net.get_weights()[0::2], mlp.coefs_, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8)


def test_lbfgs_chunks_weights_and_sparse_change_nothing(backend, iris):
    """The full-batch objective summed in chunks, weighted, or from sparse rows is the same
    function: the same iterations as one chunk, as repeated rows, as dense rows."""
    X, y = iris
    w = np.arange(150) % 3
    runs = {}
    for key, args, kw in (
        ("one", (X, y), {}),
        ("chunks", (X, y), {"batch_size": 23}),
        ("sparse", (sp.csr_matrix(X), y), {"batch_size": 64}),
        ("weighted", (X, y, w), {}),
        ("repeated", _repeat(w, X, y), {}),
    ):
        net = _net(backend, [4, 6, 3], l2=1e-3)
        result = net.fit_lbfgs(*args, max_iter=15, **kw)
        runs[key] = (result.fun, net.get_weights()[0])
    for key in ("chunks", "sparse"):
        assert runs[key][0] == pytest.approx(runs["one"][0], rel=1e-10)
        np.testing.assert_allclose(runs[key][1], runs["one"][1], rtol=1e-7, atol=1e-10)
    assert runs["weighted"][0] == pytest.approx(runs["repeated"][0], rel=1e-8)


def test_lbfgs_checks_its_arguments(iris):
    net = ann.NN([4, 3], backend="numpy", seed=0)
    for kw, match in (({"max_iter": 0}, "max_iter"), ({"max_fun": 0}, "max_fun"),
                      ({"tol": -1.0}, "tol"), ({"batch_size": 0}, "batch_size")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            net.fit_lbfgs(*iris, **kw)


# -- scikit-learn's Adam, and fit's shuffle function --------------------------------------------
def test_sklearn_adam_takes_scikit_learns_steps(backend):
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    rng = np.random.default_rng(4)
    shapes = [(3, 4), (4,)]
    start = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) * 10.0 ** rng.integers(-9, 0) for s in shapes] for _ in range(20)]
    theirs = [p.copy() for p in start]
    ref = AdamOptimizer(theirs, learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)
    xp_backend = ann.resolve(backend.name, backend.device, "float64")
    flat = np.concatenate([p.reshape(-1) for p in start])  # our parameters: one flat vector
    ours = xp_backend.asarray(flat, copy=True)
    opt = SklearnAdam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6)
    opt.build(ours)
    for g in grads:
        ref.update_params(theirs, g)
        ours = opt.step(ours, xp_backend.asarray(np.concatenate([x.reshape(-1) for x in g])))
    expected = np.concatenate([p.reshape(-1) for p in theirs])
    np.testing.assert_allclose(ann.to_numpy(ours), expected, rtol=1e-12, atol=1e-15)


def test_shuffle_function_sets_the_order(iris):
    """fit(shuffle=f) trains on the rows in f's order: the same run as the rows pre-permuted
    and not shuffled."""
    X, y = iris
    orders = {e: np.random.default_rng(e).permutation(150) for e in range(3)}
    calls = []

    def order(epoch, n):
        calls.append((epoch, n))
        return orders[epoch]

    a = ann.NN([4, 5, 3], backend="numpy", dtype="float64", seed=0)
    a.fit(X, y, epochs=3, batch_size=40, shuffle=order, lr=0.1)
    b = ann.NN([4, 5, 3], backend="numpy", dtype="float64", seed=0)
    for e in range(3):
        b.fit(X[orders[e]], y[orders[e]], epochs=1, batch_size=40, shuffle=False, lr=0.1)
    assert calls == [(0, 150), (1, 150), (2, 150)]
    for p, q in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12)
    with pytest.raises(ValueError, match="permutation"):
        a.fit(X, y, epochs=1, shuffle=lambda epoch, n: np.arange(3))


def test_weighted_training_reads_the_device_once_per_epoch(monkeypatch, iris):
    """The weighted sums (loss, metrics, the weights' total) stay on the device: the number of
    host reads of array-api-strict device1 arrays does not grow with the number of batches."""
    array_api_strict = pytest.importorskip("array_api_strict")
    import array_api_strict._array_object as mod

    X, y = iris
    counts = {}
    with array_api_strict.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False):
        for batch_size in (75, 5):
            net = ann.NN([4, 6, 3], backend="array_api_strict", device="device1", seed=0,
                         dtype="float64")  # fmt: skip
            count = [0]
            for name in ("__float__", "__bool__", "__int__", "__index__", "__array__"):
                original = getattr(mod.Array, name, None)
                if original is None:
                    continue

                def wrapped(self, *a, _orig=original, _count=count, **k):
                    _count[0] += 1
                    return _orig(self, *a, **k)

                monkeypatch.setattr(mod.Array, name, wrapped)
            net.fit(X, y, epochs=2, batch_size=batch_size, sample_weight=np.linspace(1, 2, 150),
                    validation_data=(X, y, np.ones(150)), metrics=["accuracy"])  # fmt: skip
            counts[batch_size] = count[0]
            monkeypatch.undo()
    assert 0 < counts[5] == counts[75], counts
