"""scikit-learn's per-epoch bookkeeping, as an :class:`anyarray_nn.NN` callback, and its random
stream of epoch orders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..network import NN
    from ._base import BaseNN


class SklearnOrder:
    """The epoch orders of scikit-learn's MLP: every epoch, the previous order permuted by
    ``rng.shuffle`` (``sklearn.utils.shuffle`` of the sample indices), drawn from the same
    ``RandomState`` as the initial weights and the early-stopping split. Passed to
    :meth:`NN.fit` as ``shuffle``."""

    def __init__(self, rng: np.random.RandomState, n: int) -> None:
        self.rng = rng
        self.order = np.arange(n)

    def __call__(self, epoch: int, n: int) -> np.ndarray:
        permutation = np.arange(n)
        self.rng.shuffle(permutation)
        self.order = self.order[permutation]
        return self.order


class EpochMonitor:
    """After every epoch: record the loss (``loss_``, ``loss_curve_``, ``n_iter_``, ``t_``),
    apply the stopping rule and the ``invscaling``/``adaptive`` learning rate, and keep the
    weights of the best validation epoch when early stopping. Returning True stops
    ``NN.fit``."""

    def __init__(self, est: BaseNN, n_train: int, validating: bool) -> None:
        self.est = est
        self.n_train = n_train
        self.validating = validating
        self.epochs = 0
        self.stopped = False

    def record(self, loss: float, n_train: int) -> None:
        est = self.est
        self.epochs += 1
        est.n_iter_ += 1
        est.t_ += n_train
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")

    def on_epoch_end(self, net: NN, epoch: int, logs: dict[str, Any]) -> bool | None:
        est = self.est
        loss = float(logs["loss"]) * est._scale
        self.record(loss, self.n_train)
        if self.validating:
            key = "val_r2" if est._regression else "val_subset_accuracy"
            self._validation_step(net, float(logs[key]))
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
            return self._trigger_stopping(what)
        return None

    def _trigger_stopping(self, what: str) -> bool | None:
        """scikit-learn's ``trigger_stopping``: stop, or divide an adaptive rate by 5."""
        est = self.est
        message = (
            f"{what} did not improve more than tol={est.tol:f} for "
            f"{est.n_iter_no_change} consecutive epochs."
        )
        if est.solver == "sgd" and est.learning_rate == "adaptive":
            if est._learning_rate > 1e-6:
                est._set_learning_rate(est._learning_rate / 5.0)
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"{message} Setting learning rate to {est._learning_rate:f}")
                return None
            message += " Learning rate too small."
        if est.verbose:
            print(f"{message} Stopping.")
        self.stopped = True
        return True

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
            est._best_weights = net.get_weights()
