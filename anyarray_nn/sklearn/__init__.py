"""scikit-learn estimators: :class:`NNClassifier` and :class:`NNRegressor`.

Drop-ins for :class:`sklearn.neural_network.MLPClassifier` and
:class:`~sklearn.neural_network.MLPRegressor`: the same parameters, the same initial weights for
the same ``random_state``, the same training procedure (epochs of shuffled mini-batches, or
full-batch L-BFGS) and stopping rules, the same ``loss_curve_``. They pass
:func:`sklearn.utils.estimator_checks.check_estimator` and train an :class:`anyarray_nn.NN` on
any backend. Requires scikit-learn >= 1.6 (``validate_data`` and the tags API).

How the scikit-learn conventions map onto the network
-----------------------------------------------------

**Random stream.** Like scikit-learn, every ``fit`` (and ``partial_fit``) call takes
``check_random_state(random_state)`` and draws from it, in this order: the initial weights and
biases of each layer, ``U(-b, b)`` with ``b = sqrt(6 / (fan_in + fan_out))`` (2 instead of 6 for
``activation="logistic"``); the early-stopping split (``train_test_split``, stratified for
single-output classification); each epoch's order (``sklearn.utils.shuffle`` of the previous
one). An int ``random_state`` therefore gives ``MLPClassifier``'s initial weights exactly and the
same batches in the same order; it is also the network's seed (dropout masks).

**alpha (L2).** With its stochastic solvers scikit-learn adds ``alpha / (2 * b) * sum(W**2)`` to
the mean loss of every mini-batch of ``b`` rows; biases are not penalised. The estimators set the
network's penalty ``l2`` so that every full batch of ``B`` rows sees exactly that (``B =
min(200, n_samples)`` for ``batch_size="auto"``). Only a shorter last batch of an epoch differs:
scikit-learn penalises it with its own ``b`` (a weight larger by ``B / b``). With sample weights
scikit-learn divides by the batch's summed weights instead of ``b``; the estimators use ``B``
times the mean weight, which is the same for full batches when the weights are uniform and for
the whole training set in one batch. ``solver="lbfgs"`` is full batch:
``alpha / (2 * n) * sum(W**2)`` (``n``: the summed weights).

**Loss units.** The network's losses are means (over outputs too, for MSE, BCE and Poisson);
scikit-learn's regression loss is *half* the squared error, and its multilabel, Poisson and
multi-output squared losses are summed over outputs. Each estimator records ``_scale`` (1/2
times the number of outputs for the squared error, the number of labels or outputs for
multilabel and Poisson, else 1) with ``loss_curve_ = _scale * network objective``, and
compensates in the update so that every step is the one taken on scikit-learn's loss: the SGD
learning rate is multiplied by ``_scale`` and the ``eps`` of the adaptive solvers divided by it
(both updates are otherwise invariant to the scale of the loss). L-BFGS minimises ``_scale``
times the objective. One difference: with several outputs ``MLPRegressor`` steps on the squared
error summed over outputs but reports its *mean* over outputs in ``loss_curve_``; the
estimators take the same steps and report the summed objective they minimise.

**learning_rate** (used with ``solver="sgd"`` only, as in scikit-learn): ``"constant"`` keeps
``learning_rate_init``; ``"invscaling"`` sets ``learning_rate_init / (t + 1) ** power_t`` after
every epoch, with ``t`` the number of samples seen; ``"adaptive"`` divides the rate by 5 each time
the stopping rule below fires, and stops once it is at most ``1e-6``.

**Stopping rule.** After every epoch, as scikit-learn: without ``early_stopping`` an epoch whose
training loss is not below ``best_loss_ - tol`` counts as no improvement; with it, a validation
score (accuracy, subset accuracy for multilabel targets, or R²) not above the best score +
``tol`` does. Training stops when more than ``n_iter_no_change`` consecutive epochs did not
improve; reaching ``max_iter`` first raises a :class:`~sklearn.exceptions.ConvergenceWarning`.
With ``early_stopping`` the weights of the best validation epoch are restored at the end.
``warm_start`` keeps these records across ``fit`` calls and builds a fresh optimizer, as
scikit-learn does.

**Divergence.** A non-finite epoch loss without ``early_stopping`` raises scikit-learn's
``ValueError`` ("Solver produced non-finite parameter weights. The input data may contain large
values and need to be preprocessed"), naming the epoch. With ``early_stopping`` the run ends
there: NaN is recorded in ``loss_curve_`` and ``validation_scores_``, the best validation weights
are kept, and a ``ConvergenceWarning`` says so (scikit-learn runs on to ``max_iter`` with NaN
weights, recording NaN scores, and ends with the same weights).

**Optimizers** follow ``torch.optim``. ``SGD`` with momentum equals scikit-learn's velocity form
at a constant learning rate; ``Adam`` adds ``eps`` to ``sqrt(v_hat)`` where scikit-learn adds it
to ``sqrt(v)`` (a difference of order ``eps``).

**dtype** follows ``X`` (float32 in, float32 weights and predictions; anything else float64),
unless ``dtype=`` forces one. A float32 network refuses finite inputs beyond float32's range
instead of turning them into inf.

**Sparse input** (CSR, CSC, or any format scikit-learn converts) stays on the host; each batch
(each L-BFGS chunk, each prediction chunk) is densified on its way to the device, never the
whole matrix.

**backend** defaults to ``"numpy"`` (not ``"auto"``), so that an estimator in a pipeline or a
grid search gives the same numbers on every machine; pass ``backend="cupy"`` or
``backend="torch", device="cuda"`` (and ``dtype="float32"``) to train on a GPU. The fitted
network is ``net_``.
"""

from __future__ import annotations

from ._classifier import NNClassifier
from ._regressor import NNRegressor

__all__ = ["NNClassifier", "NNRegressor"]
