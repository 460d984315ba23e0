"""Learning-rate schedules against torch.optim.lr_scheduler, scikit-learn and closed forms."""

from __future__ import annotations

import json
import math
import re
import warnings
from typing import Any

import numpy as np
import pytest

from anyarray_nn import schedules

EPOCHS = 30


def _ours(schedule: schedules.LRSchedule, base_lr: float, metrics: list[float] | None = None):
    """The lr used in each epoch: start() for epoch 0, next(e, logs) for epoch e + 1."""
    metrics = metrics if metrics is not None else [1.0] * (EPOCHS - 1)
    lrs = [schedule.start(base_lr)]
    for epoch, value in enumerate(metrics):
        lrs.append(schedule.next(epoch, {"loss": value}))
    return lrs


def _torch_lrs(make_scheduler, base_lr: float, metrics: list[float] | None = None) -> list[float]:
    torch = pytest.importorskip("torch")
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=base_lr)
    scheduler = make_scheduler(torch.optim.lr_scheduler, opt)
    lrs = [opt.param_groups[0]["lr"]]
    for epoch in range(EPOCHS - 1 if metrics is None else len(metrics)):
        opt.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[epoch])
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: schedules.StepDecay(7, gamma=0.3), lambda s, o: s.StepLR(o, 7, gamma=0.3)),
        (lambda: schedules.StepDecay(1, gamma=0.9), lambda s, o: s.StepLR(o, 1, gamma=0.9)),
        (lambda: schedules.StepDecay(step_size=10), lambda s, o: s.StepLR(o, 10)),
        (lambda: schedules.ExponentialDecay(0.9), lambda s, o: s.ExponentialLR(o, 0.9)),
        (lambda: schedules.ExponentialDecay(0.5), lambda s, o: s.ExponentialLR(o, 0.5)),
        (lambda: schedules.CosineAnnealing(29), lambda s, o: s.CosineAnnealingLR(o, 29)),
        (
            lambda: schedules.CosineAnnealing(10, eta_min=0.01),
            lambda s, o: s.CosineAnnealingLR(o, 10, eta_min=0.01),
        ),
        (
            lambda: schedules.CosineAnnealing(7, eta_min=1e-3),
            lambda s, o: s.CosineAnnealingLR(o, 7, eta_min=1e-3),
        ),
    ],
    ids=["step7", "step1", "step-default", "exp0.9", "exp0.5", "cos29", "cos10", "cos7"],
)
@pytest.mark.parametrize("base_lr", [0.1, 0.003])
def test_matches_torch_schedulers(ours: Any, theirs: Any, base_lr: float) -> None:
    expected = _torch_lrs(theirs, base_lr)
    got = _ours(ours(), base_lr)
    assert len(got) == len(expected) == EPOCHS
    assert all(type(lr) is float for lr in got)
    # atol covers the exact zero of the cosine at T_max (torch reaches it recursively)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15 * base_lr)


def test_cosine_reaches_eta_min_at_t_max() -> None:
    lrs = _ours(schedules.CosineAnnealing(10, eta_min=0.002), 0.1)
    assert lrs[0] == 0.1
    assert lrs[10] == pytest.approx(0.002, rel=1e-15)
    assert lrs[5] == pytest.approx(0.051, rel=1e-14)  # halfway: the mean of base and eta_min


@pytest.mark.parametrize("power_t", [0.5, 0.25, 1.0, 0.0])
def test_inverse_scaling_closed_form(power_t: float) -> None:
    lrs = _ours(schedules.InverseScaling(power_t), 0.2)
    expected = [0.2 * (epoch + 1) ** -power_t for epoch in range(EPOCHS)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-14)
    if power_t == 0.5:
        assert lrs[3] == pytest.approx(0.1)  # 0.2 / sqrt(4)


def test_constant() -> None:
    assert _ours(schedules.get(None), 0.05) == [0.05] * EPOCHS
    assert _ours(schedules.get("constant"), 0.05) == [0.05] * EPOCHS


# -- ReduceLROnPlateau ---------------------------------------------------------------------------


def test_plateau_hand_computed_sklearn_rule() -> None:
    """Defaults: lr / 5 once three epochs in a row fail to beat the best loss by 1e-4."""
    losses = [
        1.0,  # e0: improves on inf                    wait 0
        0.9,  # e1: improves                            wait 0
        0.89995,  # e2: better, but by < tol: bad        wait 1 (best becomes 0.89995)
        0.95,  # e3: worse                              wait 2
        0.8999,  # e4: 0.89995 - 0.8999 = 5e-5 < tol   wait 3 > 2 -> lr 0.1 * 0.2, wait 0
        0.5,  # e5: improves                            wait 0
        0.6,  # e6                                      wait 1
        0.7,  # e7                                      wait 2
        0.49995,  # e8: < best but not by tol          wait 3 -> lr 0.02 * 0.2, wait 0
        0.49995,  # e9                                  wait 1
        0.49985,  # e10: 0.49995 - 0.49985 = 1e-4: improves (>= tol, as sklearn's "<=")
        0.6,  # e11                                     wait 1
        0.6,  # e12                                     wait 2
        0.6,  # e13                                     wait 3 -> lr 0.004 * 0.2
    ]
    expected_next = [0.1] * 4 + [0.02] * 4 + [0.004] * 5 + [0.0008]
    got = _ours(schedules.ReduceLROnPlateau(), 0.1, losses)
    assert got[0] == 0.1
    np.testing.assert_allclose(got[1:], expected_next, rtol=1e-15)


@pytest.mark.parametrize("n_iter_no_change", [2, 4])
def test_plateau_reproduces_sklearn_adaptive(
    capsys: pytest.CaptureFixture[str], n_iter_no_change: int
) -> None:
    """Replay scikit-learn's own training losses; its printed lr changes must coincide."""
    neural_network = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=1.0, size=60)
    base_lr = 0.05
    model = neural_network.MLPRegressor(
        hidden_layer_sizes=(8,),
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=base_lr,
        momentum=0.9,
        n_iter_no_change=n_iter_no_change,
        tol=1e-4,
        max_iter=80,
        batch_size=20,
        random_state=0,
        verbose=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        model.fit(X, y)
    out = capsys.readouterr().out
    sklearn_lr, reductions = base_lr, 0
    expected = []  # lr scikit-learn used in each epoch
    for line in out.splitlines():
        if re.match(r"Iteration \d+, loss", line):
            expected.append(sklearn_lr)
        elif "Setting learning rate to" in line:
            sklearn_lr /= 5.0
            reductions += 1
    assert len(expected) == len(model.loss_curve_)
    assert reductions >= 3, "the scenario should exercise several reductions"
    assert model._optimizer.learning_rate == pytest.approx(sklearn_lr, rel=1e-15)

    ours = schedules.ReduceLROnPlateau(patience=n_iter_no_change)
    got = _ours(ours, base_lr, list(model.loss_curve_[:-1]))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_plateau_defaults_match_sklearn_n_iter_no_change_2() -> None:
    s = schedules.ReduceLROnPlateau()
    assert (s.factor, s.patience, s.min_delta, s.mode, s.min_lr) == (0.2, 2, 1e-4, "min", 0.0)


@pytest.mark.parametrize(
    ("kwargs", "metrics"),
    [
        # every value is either a gain of more than min_delta or no gain at all
        (
            {"patience": 2, "factor": 0.2, "min_delta": 1e-4},
            [1.0, 0.8, 0.8, 0.9, 0.85, 0.7, 0.71, 0.7, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.5],
        ),
        (
            {"patience": 0, "factor": 0.5, "min_delta": 0.0, "min_lr": 0.01},
            [1.0, 1.1, 1.2, 0.9, 0.92, 0.95, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89],
        ),
        (
            {"patience": 1, "factor": 0.1, "min_delta": 0.01, "mode": "max"},
            [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.7, 0.9, 0.8, 0.8, 0.8, 0.8],
        ),
    ],
)
def test_plateau_matches_torch_without_sub_threshold_gains(
    kwargs: dict[str, Any], metrics: list[float]
) -> None:
    torch_kwargs = {
        "mode": kwargs.get("mode", "min"),
        "factor": kwargs["factor"],
        "patience": kwargs["patience"],
        "threshold": kwargs["min_delta"],
        "threshold_mode": "abs",
        "min_lr": kwargs.get("min_lr", 0.0),
        "eps": 0.0,
    }
    expected = _torch_lrs(lambda s, o: s.ReduceLROnPlateau(o, **torch_kwargs), 0.1, metrics)
    got = _ours(schedules.ReduceLROnPlateau(monitor="loss", **kwargs), 0.1, metrics)
    assert len(set(got)) >= 3, "the scenario should exercise reductions"
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_plateau_monitor_and_fallback() -> None:
    s = schedules.ReduceLROnPlateau(patience=0, factor=0.5)
    assert s.start(1.0) == 1.0
    # val_loss absent: the training loss is watched
    assert s.next(0, {"loss": 1.0}) == 1.0
    assert s.next(1, {"loss": 2.0}) == 0.5
    # val_loss present: it wins over the (improving) training loss
    s.start(1.0)
    assert s.next(0, {"loss": 1.0, "val_loss": 1.0}) == 1.0
    assert s.next(1, {"loss": 0.1, "val_loss": 1.5}) == 0.5
    acc = schedules.ReduceLROnPlateau(monitor="val_accuracy", mode="max", patience=0, factor=0.5)
    acc.start(1.0)
    assert acc.next(0, {"accuracy": 0.5}) == 1.0
    assert acc.next(1, {"accuracy": 0.6}) == 1.0
    assert acc.next(2, {"accuracy": 0.4}) == 0.5
    f1 = schedules.ReduceLROnPlateau(monitor="val_f1")
    f1.start(0.1)
    with pytest.raises(ValueError, match=r"monitors 'val_f1'.*\['loss'\]"):
        f1.next(0, {"loss": 1.0})


def test_plateau_nan_is_no_improvement_and_start_resets() -> None:
    s = schedules.ReduceLROnPlateau(patience=1, factor=0.5)
    s.start(1.0)
    assert s.next(0, {"loss": 1.0}) == 1.0
    assert s.next(1, {"loss": math.nan}) == 1.0
    assert s.next(2, {"loss": math.nan}) == 0.5
    assert s.best == 1.0
    assert s.start(0.3) == 0.3
    assert (s.best, s.wait) == (math.inf, 0)
    assert s.next(0, {"loss": 5.0}) == 0.3  # a fresh run: the old best is forgotten


def test_plateau_min_lr_floor() -> None:
    s = schedules.ReduceLROnPlateau(patience=0, factor=0.1, min_lr=0.005)
    lrs = _ours(s, 0.1, [1.0, 2.0, 2.0, 2.0, 2.0])
    assert lrs == [0.1, 0.1, pytest.approx(0.01), 0.005, 0.005, 0.005]


# -- construction, configs, errors ---------------------------------------------------------------

ALL = [
    schedules.Constant(),
    schedules.StepDecay(5, gamma=0.5),
    schedules.ExponentialDecay(0.95),
    schedules.InverseScaling(0.25),
    schedules.CosineAnnealing(20, eta_min=1e-4),
    schedules.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.5, patience=3),
]


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: type(s).__name__)
def test_config_round_trip(schedule: schedules.LRSchedule) -> None:
    config = schedule.config()
    assert json.loads(json.dumps(config)) == config
    again = schedules.from_config(config)
    assert type(again) is type(schedule)
    assert again.config() == config
    assert repr(again) == repr(schedule)
    metrics = [0.5, 0.6, 0.55, 0.55, 0.55, 0.55, 0.7]
    logs = [{"loss": 1.0, "val_accuracy": m} for m in metrics]
    a, b = [schedule.start(0.1)], [again.start(0.1)]
    for epoch, log in enumerate(logs):
        a.append(schedule.next(epoch, log))
        b.append(again.next(epoch, log))
    assert a == b


@pytest.mark.parametrize(
    ("spec", "kwargs", "cls"),
    [
        (None, {}, schedules.Constant),
        ("constant", {}, schedules.Constant),
        ("step", {"step_size": 3}, schedules.StepDecay),
        ("StepLR", {"step_size": 3}, schedules.StepDecay),
        ("exponential", {"gamma": 0.9}, schedules.ExponentialDecay),
        ("invscaling", {}, schedules.InverseScaling),
        ("cosine_annealing", {"T_max": 5}, schedules.CosineAnnealing),
        ("plateau", {}, schedules.ReduceLROnPlateau),
        ("adaptive", {}, schedules.ReduceLROnPlateau),
        ("ReduceLROnPlateau", {"patience": 5}, schedules.ReduceLROnPlateau),
        (schedules.StepDecay, {"step_size": 2}, schedules.StepDecay),
    ],
)
def test_get(spec: Any, kwargs: dict[str, Any], cls: type) -> None:
    assert type(schedules.get(spec, **kwargs)) is cls


def test_get_errors() -> None:
    with pytest.raises(ValueError, match=r"Unknown lr schedule 'linear'.*constant, step"):
        schedules.get("linear")
    with pytest.raises(ValueError, match="needs step_size"):
        schedules.get("step")
    with pytest.raises(ValueError, match=r"unknown argument\(s\) gamma"):
        schedules.get("cosine", T_max=3, gamma=0.5)
    with pytest.raises(TypeError, match="name"):
        schedules.get(0.1)
    instance = schedules.Constant()
    assert schedules.get(instance) is instance
    with pytest.raises(ValueError, match="constructor"):
        schedules.get(instance, gamma=0.5)
    with pytest.raises(ValueError, match="'name'"):
        schedules.from_config({"gamma": 0.5})


def _started(schedule: schedules.LRSchedule) -> schedules.LRSchedule:
    schedule.start(0.1)
    return schedule


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: schedules.StepDecay(0), "step_size must be an int >= 1"),
        (lambda: schedules.StepDecay(2.5), "step_size"),
        (lambda: schedules.StepDecay(2, gamma=0.0), r"gamma must be a real number in \(0, 1\]"),
        (lambda: schedules.StepDecay(2, gamma=1.5), "gamma"),
        (lambda: schedules.ExponentialDecay(-0.5), "gamma"),
        (lambda: schedules.InverseScaling(-1.0), "power_t must be a real number >= 0"),
        (lambda: schedules.CosineAnnealing(0), "T_max"),
        (lambda: schedules.CosineAnnealing(5, eta_min=-1.0), "eta_min"),
        (lambda: schedules.ReduceLROnPlateau(mode="lowest"), "mode must be one of 'min', 'max'"),
        (lambda: schedules.ReduceLROnPlateau(monitor=""), "monitor"),
        (lambda: schedules.ReduceLROnPlateau(factor=1.0), r"factor .* in \(0, 1\)"),
        (lambda: schedules.ReduceLROnPlateau(factor=0.0), "factor"),
        (lambda: schedules.ReduceLROnPlateau(patience=-1), "patience"),
        (lambda: schedules.ReduceLROnPlateau(patience=True), "patience"),
        (lambda: schedules.ReduceLROnPlateau(min_delta=-1e-4), "min_delta"),
        (lambda: schedules.ReduceLROnPlateau(min_lr=float("nan")), "min_lr"),
        (lambda: schedules.Constant().start(-0.1), "base_lr"),
        (lambda: _started(schedules.StepDecay(2)).next(-1, {}), "epoch must be an int >= 0"),
        (lambda: _started(schedules.Constant()).next(1.5, {}), "epoch"),
    ],
)
def test_bad_arguments(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: type(s).__name__)
def test_next_before_start(schedule: schedules.LRSchedule) -> None:
    fresh = schedules.from_config(schedule.config())
    with pytest.raises(RuntimeError, match="start"):
        fresh.next(0, {"loss": 1.0, "val_accuracy": 0.5})
