"""anyarray_nn.metrics against scikit-learn's independent implementations and closed forms."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sklearn.metrics as skm

from anyarray_nn import metrics

SEEDS = range(6)


def _labels(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    y_true = rng.integers(0, k, size=n)
    # mostly right, sometimes wrong, so every score is strictly between 0 and 1
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, size=n))
    return y_true, y_pred


# -- accuracy, confusion matrix ---------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_and_confusion_matrix_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true, y_pred = _labels(rng, 97, 2 + seed % 4)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    cm = metrics.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred))
    assert cm.dtype == np.int64


def test_accuracy_closed_form_and_list_input() -> None:
    assert metrics.accuracy([0, 1, 2, 2], [0, 2, 2, 2]) == 0.75
    assert metrics.accuracy(np.array([[1], [0]]), [1, 1]) == 0.5  # a column vector is accepted


def test_confusion_matrix_hand_counted() -> None:
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2])
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_labels_order_subset_and_strings() -> None:
    y_true = ["cat", "dog", "dog", "bird", "cat", "dog"]
    y_pred = ["cat", "cat", "dog", "dog", "bird", "dog"]
    for labels in (["dog", "cat", "bird"], ["dog", "cat"], ["bird", "cat", "dog", "emu"]):
        np.testing.assert_array_equal(
            metrics.confusion_matrix(y_true, y_pred, labels=labels),
            skm.confusion_matrix(y_true, y_pred, labels=labels),
        )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred), skm.confusion_matrix(y_true, y_pred)
    )


def test_confusion_matrix_label_only_in_predictions() -> None:
    y_true, y_pred = [0, 0, 1, 1], [0, 3, 1, 1]
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred), skm.confusion_matrix(y_true, y_pred)
    )


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1, 1], [0, 1], "different lengths"),
        ([], [], "empty"),
        ([[0.1, 0.9], [0.8, 0.2]], [1, 0], "argmax"),
    ],
)
def test_label_inputs_are_validated(y_true, y_pred, message) -> None:
    for fn in (metrics.accuracy, metrics.confusion_matrix, metrics.precision_recall_f1):
        with pytest.raises(ValueError, match=message):
            fn(y_true, y_pred)


def test_confusion_matrix_duplicate_labels_rejected() -> None:
    with pytest.raises(ValueError, match="duplicates"):
        metrics.confusion_matrix([0, 1], [1, 0], labels=[0, 1, 1])


# -- precision / recall / F1 ------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
def test_precision_recall_f1_match_sklearn(seed: int, average: str | None) -> None:
    rng = np.random.default_rng(100 + seed)
    y_true, y_pred = _labels(rng, 60, 3 + seed % 3)
    p, r, f = metrics.precision_recall_f1(y_true, y_pred, average=average)
    sp, sr, sf, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, average=average, zero_division=0
    )
    np.testing.assert_allclose([p, r, f], [sp, sr, sf], rtol=1e-12, atol=0)
    if average is None:
        assert isinstance(p, np.ndarray) and p.shape == (len(np.unique([y_true, y_pred])),)
    else:
        assert all(isinstance(v, float) for v in (p, r, f))


@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
def test_class_never_predicted_and_class_never_true(average: str | None) -> None:
    # class 2 is never predicted (precision 0/0), class 3 never true (recall 0/0)
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    y_pred = np.array([0, 1, 1, 1, 0, 3, 1, 0])
    ours = metrics.precision_recall_f1(y_true, y_pred, average=average)
    ref = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
    np.testing.assert_allclose(ours, ref[:3], rtol=1e-12, atol=0)


def test_precision_recall_f1_hand_computed() -> None:
    # class 1: tp=2, fp=1, fn=1 -> P = R = F1 = 2/3; class 0: tp=1, fp=1, fn=1 -> 1/2
    p, r, f = metrics.precision_recall_f1([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], average=None)
    np.testing.assert_allclose(p, [1 / 2, 2 / 3])
    np.testing.assert_allclose(r, [1 / 2, 2 / 3])
    np.testing.assert_allclose(f, [1 / 2, 2 / 3])


def test_precision_recall_f1_with_labels_and_bad_average() -> None:
    # a subset of labels: a prediction of 2 for a true 1 still counts against class 2
    y_true, y_pred = [0, 1, 2, 2, 1, 3], [0, 2, 2, 1, 1, 0]
    for average in ("macro", "micro", "weighted", None):
        ours = metrics.precision_recall_f1(y_true, y_pred, average=average, labels=[2, 0])
        ref = skm.precision_recall_fscore_support(
            y_true, y_pred, average=average, labels=[2, 0], zero_division=0
        )
        np.testing.assert_allclose(ours, ref[:3], rtol=1e-12)
    with pytest.raises(ValueError, match="average must be one of"):
        metrics.precision_recall_f1(y_true, y_pred, average="binary")


def test_classification_report_numbers_match_sklearn() -> None:
    rng = np.random.default_rng(7)
    y_true, y_pred = _labels(rng, 80, 4)
    y_pred[y_pred == 3] = 0  # class 3 is never predicted
    text = metrics.classification_report(y_true, y_pred, target_names=["a", "b", "c", "d"])
    ref = skm.classification_report(
        y_true, y_pred, output_dict=True, zero_division=0, target_names=["a", "b", "c", "d"]
    )
    assert text.splitlines()[0].split() == ["precision", "recall", "f1-score", "support"]
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(.+?)\s+((?:[\d.]+\s*)+)$", line)
        if m:
            rows[m.group(1)] = [float(v) for v in m.group(2).split()]
    for name in ("a", "b", "c", "d", "macro avg", "weighted avg"):
        r = ref[name]
        expected = [r["precision"], r["recall"], r["f1-score"], r["support"]]
        np.testing.assert_allclose(rows[name], expected, atol=5e-4)
    np.testing.assert_allclose(rows["accuracy"], [ref["accuracy"], len(y_true)], atol=5e-4)


def test_classification_report_target_names_checked() -> None:
    with pytest.raises(ValueError, match="target_names has 1 names but there are 2 classes"):
        metrics.classification_report([0, 1], [0, 1], target_names=["only"])


# -- ROC --------------------------------------------------------------------------------------


def _binary_data(seed: int, n: int = 80, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(200 + seed)
    y = rng.integers(0, 2, size=n)
    scores = y * 0.7 + rng.normal(0.0, 0.6, size=n)
    if ties:
        scores = np.round(scores, 1)  # many tied scores, some across both classes
    return y, scores


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("drop", [True, False])
def test_roc_curve_matches_sklearn(seed: int, ties: bool, drop: bool) -> None:
    y, scores = _binary_data(seed, ties=ties)
    fpr, tpr, thr = metrics.roc_curve(y, scores, drop_intermediate=drop)
    sfpr, stpr, sthr = skm.roc_curve(y, scores, drop_intermediate=drop)
    np.testing.assert_allclose(fpr, sfpr, rtol=1e-12)
    np.testing.assert_allclose(tpr, stpr, rtol=1e-12)
    np.testing.assert_array_equal(thr, sthr)
    assert thr[0] == np.inf and fpr[0] == 0.0 and tpr[-1] == 1.0 and fpr[-1] == 1.0


def test_roc_curve_hand_computed_with_tie() -> None:
    # scores 0.9 (+), 0.5 (+), 0.5 (-), 0.1 (-): the tie moves the curve diagonally
    fpr, tpr, thr = metrics.roc_curve([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1], drop_intermediate=False)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.5, 0.1])
    # Mann-Whitney: 4 (pos, neg) pairs, 3 won, 1 tied -> (3 + 0.5) / 4
    assert metrics.roc_auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)


def test_roc_curve_pos_label_and_errors() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes"])
    s = np.array([0.2, 0.8, 0.4, 0.5, 0.9])
    ours = metrics.roc_curve(y, s, pos_label="yes")
    ref = skm.roc_curve(y, s, pos_label="yes")
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="pass pos_label"):
        metrics.roc_curve(y, s)
    with pytest.raises(ValueError, match="only one class"):
        metrics.roc_curve([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="1-D"):
        metrics.roc_curve([0, 1], [[0.1, 0.9], [0.2, 0.8]])
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_curve([0, 1], [0.1, np.nan])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_binary_roc_auc_matches_sklearn_and_mann_whitney(seed: int, ties: bool) -> None:
    y, scores = _binary_data(seed, ties=ties)
    auc = metrics.roc_auc(y, scores)
    assert auc == pytest.approx(skm.roc_auc_score(y, scores), rel=1e-12)
    pos, neg = scores[y == 1], scores[y == 0]
    diff = pos[:, None] - neg[None, :]
    mann_whitney = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size
    assert auc == pytest.approx(mann_whitney, rel=1e-12)
    # (n, 2) probabilities: the second column is the positive class
    probs = np.stack([1.0 - scores, scores], axis=1)
    assert metrics.roc_auc(y, probs) == pytest.approx(auc, rel=1e-12)
    # labels other than 0/1: the greater label is positive
    assert metrics.roc_auc(np.where(y == 1, 7, 3), scores) == pytest.approx(auc, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("multi_class", "average"), [("ovr", "macro"), ("ovr", "weighted"), ("ovo", "macro")]
)
def test_multiclass_roc_auc_matches_sklearn(seed: int, multi_class: str, average: str) -> None:
    rng = np.random.default_rng(300 + seed)
    k = 3 + seed % 3
    y = rng.integers(0, k, size=120)
    logits = rng.normal(size=(120, k)) + 1.5 * np.eye(k)[y]
    if seed % 2:
        logits = np.round(logits)  # ties
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ours = metrics.roc_auc(y, probs, multi_class=multi_class, average=average)
    ref = skm.roc_auc_score(y, probs, multi_class=multi_class, average=average)
    assert ours == pytest.approx(ref, rel=1e-12)


def test_multiclass_roc_auc_labels_and_errors() -> None:
    rng = np.random.default_rng(9)
    y = rng.choice(["a", "b", "c"], size=50)
    probs = rng.dirichlet(np.ones(3), size=50)
    # columns name classes c, a, b; scikit-learn wants them sorted: a, b, c
    ours = metrics.roc_auc(y, probs, labels=["c", "a", "b"])
    ref = skm.roc_auc_score(y, probs[:, [1, 2, 0]], multi_class="ovr")
    assert ours == pytest.approx(ref, rel=1e-12)
    ours = metrics.roc_auc(y, probs, labels=["a", "b", "c"])
    ref = skm.roc_auc_score(y, probs, multi_class="ovr", labels=["a", "b", "c"])
    assert ours == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="4 columns but y_true has 3 classes"):
        metrics.roc_auc(y, rng.dirichlet(np.ones(4), size=50))
    with pytest.raises(ValueError, match="no samples in y_true"):
        metrics.roc_auc(y, rng.dirichlet(np.ones(4), size=50), labels=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="exactly two classes"):
        metrics.roc_auc(y, probs[:, 0])
    with pytest.raises(ValueError, match="multi_class"):
        metrics.roc_auc(y, probs, multi_class="raise")
    with pytest.raises(ValueError, match="shape"):
        metrics.roc_auc(y, probs[:10])


# -- regression -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_outputs", [None, 1, 3])
def test_mse_and_r2_match_sklearn(seed: int, n_outputs: int | None) -> None:
    rng = np.random.default_rng(400 + seed)
    shape = (50,) if n_outputs is None else (50, n_outputs)
    y_true = rng.normal(size=shape) * rng.uniform(0.5, 3.0)
    y_pred = y_true + rng.normal(scale=0.7, size=shape)
    assert metrics.mse(y_true, y_pred) == pytest.approx(
        skm.mean_squared_error(y_true, y_pred), rel=1e-12
    )
    assert metrics.r2_score(y_true, y_pred) == pytest.approx(
        skm.r2_score(y_true, y_pred), rel=1e-12
    )


def test_r2_multioutput_with_a_constant_column() -> None:
    rng = np.random.default_rng(5)
    y_true = np.column_stack([rng.normal(size=30), np.full(30, 2.0), np.full(30, 3.0)])
    y_pred = y_true + np.column_stack([rng.normal(0, 0.3, 30), np.zeros(30), np.full(30, 0.1)])
    # constant columns: exact -> 1, inexact -> 0 (scikit-learn's force_finite)
    ours = metrics.r2_score(y_true, y_pred)
    assert ours == pytest.approx(skm.r2_score(y_true, y_pred), rel=1e-12)
    col0 = 1 - np.sum((y_true[:, 0] - y_pred[:, 0]) ** 2) / np.sum(
        (y_true[:, 0] - y_true[:, 0].mean()) ** 2
    )
    assert ours == pytest.approx((col0 + 1.0 + 0.0) / 3)


def test_regression_closed_forms_and_errors() -> None:
    assert metrics.mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(4 / 3)
    assert metrics.r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert metrics.r2_score([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == pytest.approx(0.0)
    # (n,) and (n, 1) are the same single output
    assert metrics.mse([1.0, 2.0], [[1.0], [4.0]]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mse(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.r2_score(np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError, match="at least two samples"):
        metrics.r2_score([1.0], [1.0])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        metrics.mse(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
