"""Evaluation metrics on the host, in plain NumPy: classification, ranking (ROC) and regression.

Every function takes array-likes (lists, NumPy arrays, or anything :func:`numpy.asarray`
accepts; convert device arrays with :func:`anyarray_nn.to_numpy` or use ``net.predict``, which
already returns NumPy) and follows scikit-learn's definitions, so the numbers compare one for one:
zero divisions give 0 (``zero_division=0``), ROC thresholds start at ``inf``, and R^2 of a constant
target is 1 for a perfect fit and 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "mse",
    "precision_recall_f1",
    "r2_score",
    "roc_auc",
    "roc_curve",
]

_AVERAGES = ("macro", "micro", "weighted", None)


# -- input checks -----------------------------------------------------------------------------


def _labels_1d(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of class labels, got shape {arr.shape}. For "
            "probabilities or one-hot rows pass np.argmax(..., axis=1) (or net.predict_classes)."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample.")
    return arr


def _pair(y_true: Any, y_pred: Any, pred_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels_1d(y_true, "y_true"), _labels_1d(y_pred, pred_name)
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true and {pred_name} have different lengths ({t.shape[0]} and {p.shape[0]})."
        )
    return t, p


def _targets_2d(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    t = t[:, None] if t.ndim == 1 else t
    p = p[:, None] if p.ndim == 1 else p
    if t.ndim != 2 or p.ndim != 2:
        raise ValueError(
            f"Regression targets must be 1-D or 2-D (n_samples, n_outputs); got y_true of shape "
            f"{np.shape(y_true)} and y_pred of shape {np.shape(y_pred)}."
        )
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred shapes differ: {np.shape(y_true)} vs {np.shape(y_pred)}. They "
            "need the same number of samples and outputs."
        )
    if t.shape[0] == 0:
        raise ValueError("y_true is empty; metrics need at least one sample.")
    return t, p


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (scikit-learn's ``zero_division=0``)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


# -- classification ---------------------------------------------------------------------------


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose predicted label equals the true label."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples with true label ``labels[i]`` predicted as ``labels[j]``.

    ``labels`` defaults to the sorted union of both arrays' labels; samples whose true or
    predicted label is not in ``labels`` are left out (as in scikit-learn).
    """
    t, p = _pair(y_true, y_pred)
    classes = _classes(t, p, labels)
    k = classes.shape[0]
    ti, t_ok = _index_of(classes, t)
    pi, p_ok = _index_of(classes, p)
    keep = t_ok & p_ok
    return np.bincount(ti[keep] * k + pi[keep], minlength=k * k).reshape(k, k).astype(np.int64)


def _classes(t: np.ndarray, p: np.ndarray, labels: Sequence[Any] | None) -> np.ndarray:
    if labels is None:
        return np.unique(np.concatenate([t, p]))
    classes = np.asarray(labels)
    if classes.ndim != 1 or classes.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty 1-D list, got {labels!r}.")
    if np.unique(classes).shape[0] != classes.shape[0]:
        raise ValueError(f"labels contains duplicates: {labels!r}.")
    return classes


def _index_of(classes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in ``classes`` (any order) and whether it is there at all."""
    sorter = np.argsort(classes, kind="stable")
    pos = np.clip(np.searchsorted(classes, values, sorter=sorter), 0, classes.shape[0] - 1)
    index = sorter[pos]
    return index, classes[index] == values


def _counts(t: np.ndarray, p: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per class: true positives, predicted count and true count (support), over all samples.

    Counted per class rather than from the confusion matrix, so that with a subset of ``labels``
    a prediction of a listed class still counts when the true class is not listed.
    """
    k = classes.shape[0]
    ti, t_ok = _index_of(classes, t)
    pi, p_ok = _index_of(classes, p)
    support = np.bincount(ti[t_ok], minlength=k).astype(np.float64)
    predicted = np.bincount(pi[p_ok], minlength=k).astype(np.float64)
    tp = np.bincount(ti[t_ok & p_ok & (ti == pi)], minlength=k).astype(np.float64)
    return tp, predicted, support


def precision_recall_f1(
    y_true: Any,
    y_pred: Any,
    average: str | None = "macro",
    labels: Sequence[Any] | None = None,
) -> tuple[Any, Any, Any]:
    """``(precision, recall, f1)``.

    ``average=None`` gives one value per class (arrays in the order of ``labels``, default the
    sorted union of labels); ``"macro"`` their unweighted mean; ``"weighted"`` their mean weighted
    by support (true count); ``"micro"`` the scores of the pooled counts. A 0/0 score is 0.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}.")
    t, p = _pair(y_true, y_pred)
    tp, predicted, support = _counts(t, p, _classes(t, p, labels))
    if average == "micro":
        tp, predicted, support = tp.sum(), predicted.sum(), support.sum()
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2.0 * tp, predicted + support)  # = 2PR/(P+R), and 0 when tp == 0
    if average is None:
        return precision, recall, f1
    if average == "micro":
        return float(precision), float(recall), float(f1)
    weights = support if average == "weighted" else np.ones_like(support)
    if weights.sum() == 0:
        return 0.0, 0.0, 0.0
    return tuple(float(np.average(s, weights=weights)) for s in (precision, recall, f1))


def classification_report(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[Any] | None = None,
    target_names: Sequence[str] | None = None,
    digits: int = 3,
) -> str:
    """A text table: precision, recall, F1 and support per class, then accuracy and averages."""
    t, p = _pair(y_true, y_pred)
    classes = _classes(t, p, labels)
    names = [str(c) for c in classes] if target_names is None else [str(n) for n in target_names]
    if len(names) != classes.shape[0]:
        raise ValueError(
            f"target_names has {len(names)} names but there are {classes.shape[0]} classes "
            f"({', '.join(map(str, classes))})."
        )
    precision, recall, f1 = precision_recall_f1(t, p, average=None, labels=classes)
    support = _counts(t, p, classes)[2].astype(np.int64)
    rows = [(n, precision[i], recall[i], f1[i], support[i]) for i, n in enumerate(names)]
    total = int(support.sum())
    width = max(len("weighted avg"), *(len(n) for n in names))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    fmt = f"{{:>{width}}} {{:>9.{digits}f}} {{:>9.{digits}f}} {{:>9.{digits}f}} {{:>9}}"
    lines = [head, ""]
    lines += [fmt.format(n, pr, rc, f, int(s)) for n, pr, rc, f, s in rows]
    lines.append("")
    acc = accuracy(t, p)
    lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {acc:>9.{digits}f} {len(t):>9}")
    for average in ("macro", "weighted"):
        scores = precision_recall_f1(t, p, average=average, labels=classes)
        lines.append(fmt.format(f"{average} avg", *scores, total))
    return "\n".join(lines) + "\n"


# -- ranking ----------------------------------------------------------------------------------


def _scores_1d(scores: Any, name: str = "scores") -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D for a binary ROC curve, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf.")
    return arr


def _binary_truth(y_true: np.ndarray, pos_label: Any) -> np.ndarray:
    classes = np.unique(y_true)
    if pos_label is None:
        known = ({0, 1}, {-1, 1}, {False, True})
        if classes.shape[0] > 2 or not any(set(classes.tolist()) <= k for k in known):
            raise ValueError(
                f"y_true has labels {classes.tolist()}; with labels other than {{0, 1}} or "
                "{-1, 1} pass pos_label= the positive class."
            )
        pos_label = 1
    positive = y_true == pos_label
    if positive.all() or not positive.any():
        raise ValueError(
            "ROC is undefined when y_true holds only one class: it needs both positive and "
            f"negative samples (positive label {pos_label!r})."
        )
    return positive


def _roc_points(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative false/true positive counts at each distinct score, from the highest down."""
    order = np.argsort(-scores, kind="mergesort")
    s, hits = scores[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.shape[0] - 1]
    tps = np.cumsum(hits)[last_of_tie].astype(np.float64)
    fps = (last_of_tie + 1) - tps
    return fps, tps, s[last_of_tie]


def roc_curve(
    y_true: Any, scores: Any, pos_label: Any = None, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary ROC curve ``(fpr, tpr, thresholds)``, thresholds decreasing from ``inf``.

    A sample is called positive when its score is ``>= threshold``; tied scores move the curve
    diagonally. ``drop_intermediate`` removes points on straight segments (as scikit-learn does);
    the area is unchanged.
    """
    t, s = _pair(y_true, _scores_1d(scores), pred_name="scores")
    positive = _binary_truth(t, pos_label)
    fps, tps, thresholds = _roc_points(positive, s)
    if drop_intermediate and fps.shape[0] > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    fps, tps, _ = _roc_points(positive, scores)
    fpr, tpr = np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))  # trapezoids


def roc_auc(
    y_true: Any,
    scores: Any,
    multi_class: str = "ovr",
    average: str = "macro",
    labels: Sequence[Any] | None = None,
) -> float:
    """Area under the ROC curve.

    Binary: ``scores`` is 1-D (the score of the greater label), or ``(n, 2)`` probabilities whose
    second column is used. Multiclass: ``scores`` is ``(n, k)`` with column ``j`` the score of
    ``labels[j]`` (default the sorted classes of ``y_true``); ``multi_class="ovr"`` averages the
    one-vs-rest AUCs (``average="macro"``, or ``"weighted"`` by prevalence), ``"ovo"`` the
    Hand & Till pairwise AUCs (macro).
    """
    if multi_class not in ("ovr", "ovo"):
        raise ValueError(f"multi_class must be 'ovr' or 'ovo', got {multi_class!r}.")
    if average not in ("macro", "weighted"):
        raise ValueError(f"average must be 'macro' or 'weighted', got {average!r}.")
    t = _labels_1d(y_true, "y_true")
    S = np.asarray(scores, dtype=np.float64)
    if S.ndim == 2 and S.shape[1] == 1:
        S = S[:, 0]
    if S.ndim not in (1, 2) or S.shape[0] != t.shape[0]:
        raise ValueError(
            f"scores must have shape (n,) or (n, n_classes) with n = len(y_true) = {t.shape[0]}, "
            f"got {S.shape}."
        )
    if not np.all(np.isfinite(S)):
        raise ValueError("scores contains NaN or inf.")
    classes = np.unique(t) if labels is None else _classes(t, t, labels)
    if S.ndim == 2 and S.shape[1] == 2 and classes.shape[0] <= 2:
        S = S[:, 1]
    if S.ndim == 1:
        if classes.shape[0] != 2:
            raise ValueError(
                f"Binary AUC needs exactly two classes in y_true, found {classes.tolist()}. For "
                "multiclass pass a (n, n_classes) score matrix."
            )
        return _binary_auc(_binary_truth(t, classes[1]), S)
    if S.shape[1] != classes.shape[0]:
        raise ValueError(
            f"scores has {S.shape[1]} columns but y_true has {classes.shape[0]} classes "
            f"({classes.tolist()}); pass labels= naming the class of each column."
        )
    index, known = _index_of(classes, t)
    if not known.all():
        raise ValueError(f"y_true has labels not in labels={classes.tolist()}.")
    counts = np.bincount(index, minlength=classes.shape[0])
    if np.any(counts == 0):
        absent = classes[counts == 0].tolist()
        raise ValueError(f"AUC is undefined for classes with no samples in y_true: {absent}.")
    if multi_class == "ovr":
        aucs = [_binary_auc(index == j, S[:, j]) for j in range(classes.shape[0])]
        weights = counts if average == "weighted" else None
        return float(np.average(aucs, weights=weights))
    if average != "macro":
        raise ValueError("multi_class='ovo' supports average='macro' only.")
    pair_aucs = []
    for a in range(classes.shape[0]):
        for b in range(a + 1, classes.shape[0]):
            rows = (index == a) | (index == b)
            is_a = index[rows] == a
            both = _binary_auc(is_a, S[rows, a]) + _binary_auc(~is_a, S[rows, b])
            pair_aucs.append(both / 2.0)
    return float(np.mean(pair_aucs))


# -- regression -------------------------------------------------------------------------------


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error over all samples and outputs."""
    t, p = _targets_2d(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination, averaged uniformly over outputs.

    Per output ``1 - SS_res / SS_tot``; a constant target scores 1 if predicted exactly, else 0.
    """
    t, p = _targets_2d(y_true, y_pred)
    if t.shape[0] < 2:
        raise ValueError("R^2 needs at least two samples.")
    ss_res = np.sum((t - p) ** 2, axis=0)
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    constant = ss_tot == 0
    r2 = np.where(constant, np.where(ss_res == 0, 1.0, 0.0), 1.0 - _ratio(ss_res, ss_tot))
    return float(np.mean(r2))
