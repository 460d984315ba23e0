"""The parameter and attribute sections shared by the two estimators' docstrings."""

from __future__ import annotations

PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` for none.

    activation : {"relu", "tanh", "logistic", "identity", "sigmoid", "leaky_relu", "elu", ...}, \
default="relu"
        Hidden-layer activation: any registered one (``"logistic"``, scikit-learn's name, is
        ``"sigmoid"``).

    solver : {"adam", "sgd", "lbfgs", "adamw", "adagrad", "rmsprop", ...}, default="adam"
        ``"lbfgs"``: SciPy's L-BFGS-B on the full-batch objective (see
        :func:`anyarray_nn.lbfgs.fit_lbfgs`); any other name is a registered mini-batch
        optimizer. ``"adamw"`` adds AdamW's decoupled weight decay (0.01, torch's default) on
        top of the ``alpha`` penalty.

    alpha : float, default=0.0001
        L2 penalty as in scikit-learn: ``alpha / (2 * batch) * sum(W**2)`` per mini-batch (the
        whole training set with ``"lbfgs"``; see :mod:`anyarray_nn.sklearn` for the mapping).

    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(200, n_samples)``. Clipped to the number of
        training samples, with a warning. Not used by ``"lbfgs"``.

    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Learning-rate rule, used with ``solver="sgd"`` only (as in scikit-learn).

    learning_rate_init : float, default=0.001
        Initial learning rate (not used by ``"lbfgs"``).

    power_t : float, default=0.5
        Exponent of ``"invscaling"``: ``lr = learning_rate_init / (t + 1) ** power_t`` with
        ``t`` the number of samples seen, updated after every epoch.

    max_iter : int, default=200
        Maximum number of epochs (iterations of ``"lbfgs"``).

    shuffle : bool, default=True
        Reshuffle the samples every epoch.

    random_state : int, RandomState instance or None, default=None
        Draws the initial weights, the early-stopping split and the epoch orders in the same
        sequence as scikit-learn's MLP, so that an int gives ``MLPClassifier``'s initial
        weights exactly. An int is also the network's seed (dropout masks).

    tol : float, default=1e-4
        Smallest improvement of the loss (or validation score) that counts (stopping rule);
        for ``"lbfgs"``, the gradient tolerance ``gtol``.

    verbose : bool, default=False
        Print the loss after every epoch (iteration).

    warm_start : bool, default=False
        ``fit`` continues from the fitted network (same classes required) instead of starting
        over; it runs up to ``max_iter`` more epochs with a fresh optimizer, as scikit-learn.

    momentum : float, default=0.9
        Momentum of ``solver="sgd"``, in [0, 1).

    nesterovs_momentum : bool, default=True
        Nesterov momentum for ``solver="sgd"`` (when ``momentum > 0``).

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when the validation score (accuracy
        or R², weighted by ``sample_weight``) stops improving and restore the best weights.
        The split is stratified for binary targets, as scikit-learn's. Not used by ``"lbfgs"``.

    validation_fraction : float, default=0.1
        Share of the training data held out with ``early_stopping``.

    beta_1, beta_2 : float, default=0.9, 0.999
        Adam/AdamW moment decay rates, in [0, 1).

    epsilon : float, default=1e-8
        Numerical-stability term of adam, adamw, adagrad and rmsprop.

    n_iter_no_change : int or np.inf, default=10
        Epochs without an improvement of ``tol`` tolerated before stopping (``np.inf``:
        never stop early).

    max_fun : int, default=15000
        ``"lbfgs"`` only: the most objective evaluations (one host round trip each).

    dropout : float, default=0.0
        Inverted-dropout rate after each hidden layer during training (not in scikit-learn;
        not with ``"lbfgs"``).

    backend : {"numpy", "torch", "cupy", "array_api_strict", "auto", ...}, default="numpy"
        Array library the network runs on (see :func:`anyarray_nn.backend.resolve`). NumPy by
        default, so that results do not depend on the machine.

    device : object, default=None
        Device on that backend, e.g. ``"cuda"`` for torch or a device id for cupy.

    dtype : {None, "float32", "float64"}, default=None
        Floating dtype of the network. ``None`` follows ``X`` as scikit-learn does: float32
        input trains and predicts in float32, anything else in float64. On a GPU pass
        ``dtype="float32"`` for speed.
"""

ATTRIBUTES = """
    loss_ : float
        Loss of the last epoch (mean over its mini-batches, penalty included), in
        scikit-learn's units.

    loss_curve_ : list of float
        Loss of every epoch (every ``"lbfgs"`` iteration), across warm starts and
        ``partial_fit`` calls.

    best_loss_ : float or None
        Smallest entry of ``loss_curve_``; None with ``early_stopping``.

    validation_scores_ : list of float or None
        Validation score after every epoch with ``early_stopping`` (NaN for an epoch whose
        loss diverged), else None.

    best_validation_score_ : float or None
        Best of ``validation_scores_`` (None without ``early_stopping``).

    n_iter_ : int
        Epochs (``"lbfgs"`` iterations) run by the last call to ``fit``; 1 after
        ``partial_fit``.

    t_ : int
        Training samples seen by the solver (sets the ``"invscaling"`` rate).

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of output units of the network.

    out_activation_ : str
        Output activation: ``"softmax"``, ``"logistic"``, ``"identity"`` or ``"exp"``.

    net_ : anyarray_nn.NN
        The trained network (``net_.predict``, ``net_.save``, ``net_.to(...)``, ...).

    coefs_, intercepts_ : list of ndarray
        NumPy copies of the weight matrices and bias vectors of ``net_`` (read-only: set
        weights with ``net_.set_weights``).
"""
