"""Optimizers against torch.optim (the independent reference), on every backend of the matrix."""

from __future__ import annotations

import json
from typing import Any

import array_api_compat
import numpy as np
import pytest

import anyarray_nn as ann
from anyarray_nn import optimizers, writeback
from anyarray_nn.flat import FlatLayout

SHAPES = [(4, 3), (3,), (3, 2), ()]
STEPS = 20
LR_CHANGE_AT = 12  # the training loop sets opt.lr between steps; torch gets the same change

# (name, our kwargs). torch gets the same kwargs, with beta1/beta2 folded into betas.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.02}),
    ("adagrad", {"lr": 0.1}),
    (
        "adagrad",
        {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.01, "initial_accumulator_value": 0.3},
    ),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "weight_decay": 0.01}),
    ("rmsprop", {"lr": 0.005, "centered": True, "eps": 1e-6}),
    ("rmsprop", {"lr": 0.005, "centered": True, "momentum": 0.7, "alpha": 0.95}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.01, "amsgrad": True}),
    ("adam", {"lr": 0.02, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6, "amsgrad": True}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "beta1": 0.85}),
]
CASE_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]

TORCH_NAMES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
}


def _torch() -> Any:
    return pytest.importorskip("torch")


def _torch_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    kw = dict(kwargs)
    if "beta1" in kw or "beta2" in kw:
        kw["betas"] = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
    return kw


# Tests copy host arrays before be.asarray: on NumPy it does not copy, and steps are in place.


class _Params:
    """The problem's parameters as one flat vector on ``be``, as a network keeps them."""

    def __init__(self, be: ann.Backend, weights: list[np.ndarray]) -> None:
        self.be = be
        self.layout = FlatLayout.of(
            [f"p{i}" for i in range(len(weights))],
            [w.shape for w in weights],
            [True] * len(weights),
        )
        self.theta = be.asarray(self.flat(weights), copy=True)

    @staticmethod
    def flat(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])

    def grad(self, step: list[np.ndarray]) -> Any:
        return self.be.asarray(self.flat(step))

    def arrays(self) -> list[np.ndarray]:
        return self.layout.split(np.asarray(ann.to_numpy(self.theta)))


def _problem(seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Initial float64 weights and STEPS gradients (some large, some tiny, one row zero)."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=s) for s in SHAPES]
    grads = []
    for k in range(STEPS):
        step = [rng.normal(scale=10.0 ** rng.integers(-2, 2), size=s) for s in SHAPES]
        if k % 5 == 3:
            step[0][0, :] = 0.0  # a parameter row that gets no gradient this step
        grads.append(step)
    return weights, grads


def _torch_run(
    name: str, kwargs: dict[str, Any], weights: list[np.ndarray], grads: list[list[np.ndarray]]
) -> list[np.ndarray]:
    """Reference: torch.optim's single-tensor path, float64, same gradients, same lr change."""
    torch = _torch()
    params = [torch.tensor(w, dtype=torch.float64) for w in weights]
    opt = getattr(torch.optim, TORCH_NAMES[name])(params, foreach=False, **_torch_kwargs(kwargs))
    for k, step in enumerate(grads):
        if k == LR_CHANGE_AT:
            for group in opt.param_groups:
                group["lr"] = group["lr"] * 0.5
        for p, g in zip(params, step, strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy() for p in params]


def _run(
    opt: optimizers.Optimizer, params: _Params, grads: list[list[np.ndarray]], wb: Any = None
) -> None:
    for step in grads:
        if opt.t == LR_CHANGE_AT:
            opt.lr = opt.lr * 0.5
        params.theta = opt.step(params.theta, params.grad(step), wb)


def _assert_home(params: list[Any], be: ann.Backend) -> None:
    for p in params:
        assert array_api_compat.array_namespace(p) is be.xp
        assert array_api_compat.device(p) == be.device
        assert p.dtype == be.dtype


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_matches_torch(backend: Any, name: str, kwargs: dict[str, Any]) -> None:
    weights, grads = _problem()
    expected = _torch_run(name, kwargs, weights, grads)
    be = ann.resolve(backend.name, backend.device, "float64")
    params = _Params(be, weights)
    opt = optimizers.get(name, **kwargs)
    opt.build(params.theta)
    _run(opt, params, grads)
    assert opt.t == STEPS
    _assert_home([params.theta, *opt.state.values()], be)
    for p, e, w in zip(params.arrays(), expected, weights, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-10, atol=0)
        assert not np.array_equal(p, w)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_float32_stays_float32(backend: Any, name: str, kwargs: dict[str, Any]) -> None:
    weights, grads = _problem(seed=1)
    expected = _torch_run(name, kwargs, weights, grads)
    be = ann.resolve(backend.name, backend.device, "float32")
    params = _Params(be, weights)
    opt = optimizers.get(name, **kwargs)
    opt.build(params.theta)
    _run(opt, params, grads)
    _assert_home([params.theta, *opt.state.values()], be)
    for p, e in zip(params.arrays(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_updates_in_place(backend: Any, name: str, kwargs: dict[str, Any]) -> None:
    """Where arrays can be written, a step returns the buffers that came in (the layers' views
    of the parameter vector stay valid and nothing is allocated for the state)."""
    weights, grads = _problem(seed=2)
    be = ann.resolve(backend.name, backend.device, "float64")
    params = _Params(be, weights)
    if not writeback.for_array(params.theta).mutable:
        pytest.skip(f"{be.name} arrays cannot be written: updates return new arrays")
    held = params.theta  # e.g. the network's vector, which the layers view
    opt = optimizers.get(name, **kwargs)
    opt.build(params.theta)
    state = dict(opt.state)
    _run(opt, params, grads[:5])
    assert params.theta is held
    assert not np.array_equal(np.asarray(ann.to_numpy(held)), _Params.flat(weights))
    assert opt.state.keys() == state.keys()
    assert all(opt.state[key] is state[key] for key in state)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_immutable_arrays_get_the_same_steps(name: str, kwargs: dict[str, Any]) -> None:
    """The write-back rule: with arrays that may not be written (JAX's), an update returns new
    arrays and never writes its inputs; the numbers equal torch's all the same. Here the
    strict backend's in-place operators are made to fail, so a single in-place write would
    raise."""
    from array_api_strict._array_object import Array

    weights, grads = _problem(seed=8)
    expected = _torch_run(name, kwargs, weights, grads)
    be = ann.resolve("array_api_strict", "device1", "float64")
    params = _Params(be, weights)
    opt = optimizers.get(name, **kwargs)
    opt.build(params.theta)
    first, first_state = params.theta, dict(opt.state)
    with pytest.MonkeyPatch.context() as patch:
        for method in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__setitem__"):
            patch.setattr(Array, method, _refuse_writes)
        _run(opt, params, grads, writeback.NEW_ARRAYS)
    np.testing.assert_array_equal(ann.to_numpy(first), _Params.flat(weights))  # never written
    for key, array in first_state.items():
        assert array is not opt.state[key]
    for p, e in zip(params.arrays(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-10, atol=0)


def _refuse_writes(self: Any, *args: Any) -> Any:
    raise AssertionError("an in-place write on an immutable array")


SYNC_METHODS = ("__float__", "__bool__", "__int__", "__index__", "__dlpack__", "__array__")


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_no_host_sync_in_step(monkeypatch: pytest.MonkeyPatch, name: str, kwargs: dict) -> None:
    xp = pytest.importorskip("array_api_strict")
    from array_api_strict._array_object import Array

    calls: list[str] = []

    def counting(method: str) -> Any:
        original = getattr(Array, method)

        def wrapper(self: Any, *args: Any, **kw: Any) -> Any:
            calls.append(method)
            return original(self, *args, **kw)

        return wrapper

    weights, grads = _problem(seed=3)
    with xp.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False):
        be = ann.resolve("array_api_strict", "device1", "float64")
        params = _Params(be, weights)
        device_grads = [params.grad(step) for step in grads]
        opt = optimizers.get(name, **kwargs)
        opt.build(params.theta)
        for method in SYNC_METHODS:
            if hasattr(Array, method):
                monkeypatch.setattr(Array, method, counting(method))
        # The counter works: a deliberate sync is seen.
        float(params.theta[0])
        assert calls == ["__float__"]
        calls.clear()
        for k, step in enumerate(device_grads):
            if k == LR_CHANGE_AT:
                opt.lr = opt.lr * 0.5
            params.theta = opt.step(params.theta, step)
        assert calls == []


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_state_round_trip_resumes_identically(
    backend: Any, name: str, kwargs: dict[str, Any]
) -> None:
    """Half the steps on NumPy, state through the host, the rest on the matrix backend."""
    weights, grads = _problem(seed=4)
    expected = _torch_run(name, kwargs, weights, grads)
    half = STEPS // 2

    first = ann.resolve("numpy", None, "float64")
    params = _Params(first, weights)
    opt = optimizers.get(name, **kwargs)
    opt.build(params.theta)
    _run(opt, params, grads[:half])
    saved_t = opt.t
    saved = {k: np.array(ann.to_numpy(a)) for k, a in opt.state.items()}
    saved_params = params.arrays()
    config = json.loads(json.dumps(opt.config()))

    be = ann.resolve(backend.name, backend.device, "float64")
    params2 = _Params(be, saved_params)
    opt2 = optimizers.from_config(config)
    opt2.build(params2.theta)
    # t as read back from a file (a NumPy integer) is accepted and stored as a host int
    opt2.load_state_dict({"t": np.int64(saved_t), "state": saved}, be)
    assert type(opt2.t) is int and opt2.t == saved_t == half
    _assert_home(list(opt2.state.values()), be)
    _run(opt2, params2, grads[half:])
    _assert_home([params2.theta], be)
    for p, e in zip(params2.arrays(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-10, atol=0)
    # The first optimizer's state was copied, not shared: its buffers did not move on.
    for key, array in opt.state.items():
        np.testing.assert_array_equal(ann.to_numpy(array), saved[key])


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_moved_state_needs_no_rebuild(backend: Any, name: str, kwargs: dict[str, Any]) -> None:
    """NN.to() style: state and params re-homed (here also float64 -> float32), no build()."""
    weights, grads = _problem(seed=6)
    expected = _torch_run(name, kwargs, weights, grads)
    half = STEPS // 2
    first = ann.resolve("numpy", None, "float64")
    params = _Params(first, weights)
    opt = optimizers.get(name, **kwargs)
    opt.build(params.theta)
    _run(opt, params, grads[:half])

    be = ann.resolve(backend.name, backend.device, "float32")
    moved = _Params(be, params.arrays())
    opt.load_state_dict(opt.state_dict(), be)
    _run(opt, moved, grads[half:])
    _assert_home([moved.theta, *opt.state.values()], be)
    for p, e in zip(moved.arrays(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_step_without_build_allocates_state(name: str, kwargs: dict[str, Any]) -> None:
    weights, grads = _problem(seed=7)
    expected = _torch_run(name, kwargs, weights, grads)
    be = ann.resolve("array_api_strict", "device1", "float64")
    params = _Params(be, weights)
    opt = optimizers.get(name, **kwargs)
    _run(opt, params, grads)
    assert opt.t == STEPS
    _assert_home(list(opt.state.values()), be)
    for p, e in zip(params.arrays(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-10, atol=0)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_build_again_reinitialises(name: str, kwargs: dict[str, Any]) -> None:
    weights, grads = _problem(seed=5)
    expected = _torch_run(name, kwargs, weights, grads)
    be = ann.resolve("numpy", None, "float64")
    opt = optimizers.get(name, **kwargs)
    scratch = _Params(be, weights)
    opt.build(scratch.theta)
    opt.step(scratch.theta, scratch.grad(grads[0]))
    params = _Params(be, weights)
    opt.build(params.theta)
    assert opt.t == 0
    _run(opt, params, grads)
    for p, e in zip(params.arrays(), expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-10, atol=0)


@pytest.mark.parametrize("name", list(TORCH_NAMES))
def test_defaults_match_torch(name: str) -> None:
    torch = _torch()
    ours = optimizers.get(name).config()
    assert ours.pop("name") == name
    theirs = getattr(torch.optim, TORCH_NAMES[name])([torch.zeros(1)]).defaults
    if "betas" in theirs:
        theirs["beta1"], theirs["beta2"] = theirs["betas"]
    if name == "sgd":
        assert ours.pop("lr") == 0.01  # torch's SGD default lr is 1e-3; ours is 0.01 (as Keras)
    for key, value in ours.items():
        assert theirs[key] == value, key


EXPECTED_STATE = {
    ("sgd", 0): [],
    ("sgd", 1): ["momentum_buffer"],
    ("adagrad", 4): ["sum"],
    ("rmsprop", 6): ["square_avg"],
    ("rmsprop", 9): ["grad_avg", "momentum_buffer", "square_avg"],
    ("adam", 10): ["exp_avg", "exp_avg_sq"],
    ("adamw", 14): ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
}


@pytest.mark.parametrize(("name", "index"), list(EXPECTED_STATE))
def test_state_names(name: str, index: int) -> None:
    be = ann.resolve("numpy", None, "float64")
    opt = optimizers.get(name, **CASES[index][1])
    opt.build(be.asarray(np.ones(4)))
    assert sorted(opt.state) == EXPECTED_STATE[name, index]


def test_adagrad_initial_accumulator() -> None:
    be = ann.resolve("numpy", None, "float64")
    opt = optimizers.AdaGrad(initial_accumulator_value=0.25)
    opt.build(be.asarray(np.zeros(6)))
    np.testing.assert_array_equal(ann.to_numpy(opt.state["sum"]), np.full(6, 0.25))


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_config_round_trip(name: str, kwargs: dict[str, Any]) -> None:
    opt = optimizers.get(name, **kwargs)
    config = opt.config()
    assert config["name"] == name
    assert json.loads(json.dumps(config)) == config
    again = optimizers.from_config(config)
    assert type(again) is type(opt)
    assert again.config() == config
    assert repr(again) == repr(opt)


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        (None, optimizers.SGD),
        ("SGD", optimizers.SGD),
        ("AdaGrad", optimizers.AdaGrad),
        ("RMSprop", optimizers.RMSProp),
        ("rms_prop", optimizers.RMSProp),
        ("Adam", optimizers.Adam),
        ("AdamW", optimizers.AdamW),
        ("adam-w", optimizers.AdamW),
        (optimizers.Adam, optimizers.Adam),
    ],
)
def test_get_by_name(spec: Any, cls: type) -> None:
    assert type(optimizers.get(spec)) is cls


def test_get_instance_and_betas() -> None:
    opt = optimizers.Adam(lr=0.1)
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match="constructor"):
        optimizers.get(opt, lr=0.2)
    adam = optimizers.get("adam", betas=(0.8, 0.95))
    assert (adam.beta1, adam.beta2) == (0.8, 0.95)
    with pytest.raises(ValueError, match="either betas"):
        optimizers.Adam(beta1=0.5, betas=(0.8, 0.95))


def test_unknown_name_lists_valid() -> None:
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamax'.*sgd, adagrad, rmsprop"):
        optimizers.get("adamax")
    with pytest.raises(TypeError, match="name"):
        optimizers.get(3)
    with pytest.raises(ValueError, match=r"unknown argument\(s\) momentum.*Valid: lr, beta1"):
        optimizers.get("adam", momentum=0.9)
    with pytest.raises(ValueError, match="'name'"):
        optimizers.from_config({"lr": 0.1})


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("sgd", {"lr": -0.1}, r"lr must be a real number >= 0"),
        ("sgd", {"lr": float("nan")}, "lr"),
        ("sgd", {"lr": "0.1"}, "lr"),
        ("sgd", {"momentum": -0.1}, r"momentum must be a real number in \[0, 1\)"),
        ("sgd", {"momentum": 1.0}, "momentum"),
        ("sgd", {"dampening": 1.5}, "dampening"),
        ("sgd", {"weight_decay": -1e-3}, "weight_decay"),
        ("sgd", {"nesterov": True}, "nesterov=True requires momentum > 0"),
        ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening == 0"),
        ("sgd", {"nesterov": 1}, "nesterov must be True or False"),
        ("adagrad", {"lr_decay": -1.0}, "lr_decay"),
        ("adagrad", {"initial_accumulator_value": -0.5}, "initial_accumulator_value"),
        ("adagrad", {"eps": -1e-10}, "eps"),
        ("rmsprop", {"alpha": 1.5}, "alpha"),
        ("rmsprop", {"momentum": -0.5}, "momentum"),
        ("rmsprop", {"centered": "yes"}, "centered"),
        ("adam", {"beta1": 1.0}, "beta1"),
        ("adam", {"betas": (0.9, 1.0)}, "beta2"),
        ("adam", {"betas": (0.9,)}, "betas must be a pair"),
        ("adam", {"eps": float("inf")}, "eps"),
        ("adam", {"amsgrad": None}, "amsgrad"),
        ("adamw", {"weight_decay": -0.01}, "weight_decay"),
    ],
)
def test_bad_hyperparameters(name: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        optimizers.get(name, **kwargs)


def test_lr_is_validated_on_assignment() -> None:
    opt = optimizers.SGD(lr=0.1)
    opt.lr = np.float64(0.05)  # a NumPy scalar is stored as a Python float
    assert type(opt.lr) is float and opt.lr == 0.05
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


def test_step_errors() -> None:
    be = ann.resolve("numpy", None, "float64")
    params, grads = be.asarray(np.ones(9)), be.asarray(np.ones(9))
    opt = optimizers.Adam()
    opt.build(params)
    with pytest.raises(ValueError, match="built for 9 parameters"):
        opt.step(params, grads[:4])
    with pytest.raises(ValueError, match="shape"):
        opt.step(be.asarray(np.ones(4)), be.asarray(np.ones(4)))
    with pytest.raises(ValueError, match="dtype"):
        opt.step(params, be.asarray(np.ones(9), dtype=be.xp.float32))
    assert opt.t == 0  # a refused step does not count
    state = opt.state
    with pytest.raises(ValueError, match="keeps state"):
        opt.load_state_dict({"t": 1, "state": {"exp_avg": state["exp_avg"]}})
    short = {k: v[:4] for k, v in state.items()}
    with pytest.raises(ValueError, match="for 4 parameters; this optimizer was built for 9"):
        opt.load_state_dict({"t": 1, "state": short})
    mixed = {"exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"][:4]}
    with pytest.raises(ValueError, match="one flat vector"):
        opt.load_state_dict({"t": 1, "state": mixed})
    with pytest.raises(ValueError, match="t must be"):
        opt.load_state_dict({"t": -1, "state": state})


def _run_to_subnormal(be, name, steps):
    """Steps with a zero gradient for row 0 after one real step; True if any state entry was
    ever subnormal on the way."""
    from anyarray_nn.optimizers import get

    kwargs = {"momentum": 0.9} if name == "sgd" else {}
    opt = get(name, lr=1e-3, **kwargs)
    p = be.asarray(np.ones(12), copy=True)
    opt.build(p)
    tiny = float(np.finfo(np.float32).smallest_normal)
    g = np.full(12, 1e-3)
    p = opt.step(p, be.asarray(g))
    g[:3] = 0.0
    zero = be.asarray(g)
    seen = False
    for _ in range(steps):
        p = opt.step(p, zero)
        for array in opt.state.values():
            host = np.abs(ann.to_numpy(array))
            seen |= bool(np.any((host > 0) & (host < tiny)))
    assert np.all(np.isfinite(ann.to_numpy(p)))
    return seen


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_tiny_state_is_flushed_before_it_turns_subnormal(backend, name, monkeypatch):
    """Dead units' running averages decay toward the subnormal range, where CPUs are 10-100x
    slower; the optimizer zeroes entries below 2**26 * smallest_normal every 64 steps."""
    import anyarray_nn.optimizers as optimizers

    be = ann.resolve(backend.name, backend.device, "float32")
    assert not _run_to_subnormal(be, name, 1000)
    tiny = be.asarray(np.float32(np.finfo(np.float32).smallest_normal))
    if float(ann.to_numpy(tiny * 0.5)) == 0.0:
        pytest.skip(f"{be.name} flushes subnormal results to zero itself (XLA on the CPU)")
    monkeypatch.setattr(optimizers, "FLUSH_EVERY", 10**9)  # the check can fail: no flushing
    assert _run_to_subnormal(be, name, 1000)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(n, k) for n, k in CASES if n in ("adam", "adamw")],
    ids=[i for (n, _), i in zip(CASES, CASE_IDS, strict=True) if n in ("adam", "adamw")],
)
def test_torch_fused_update_equals_the_generic_one(monkeypatch, name, kwargs):
    """torch's one-kernel Adam/AdamW (anyarray_nn.kernels) against the generic Array API update,
    the reference, on the same problem; and it really ran."""
    torch = _torch()
    from anyarray_nn import kernels

    kernel = "_fused_adamw_" if name == "adamw" else "_fused_adam_"
    calls = [0]
    real = getattr(torch, kernel)

    def counting(*args, **kw):
        calls[0] += 1
        return real(*args, **kw)

    monkeypatch.setattr(torch, kernel, counting)
    weights, grads = _problem(seed=9)
    results = {}
    for enabled in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        be = ann.resolve("torch", "cpu", "float64")
        params = _Params(be, weights)
        opt = optimizers.get(name, **kwargs)
        opt.build(params.theta)
        _run(opt, params, grads[:5])
        snapshot, theta = opt.clone(), be.xp.asarray(params.theta, copy=True)
        _run(opt, params, grads[5:8])  # steps then undone, as after a divergence
        opt.load_state_dict(snapshot.state_dict())  # t goes back: the kernel's count follows
        params.theta = theta
        _run(opt, params, grads[5:])
        results[enabled] = params.arrays()
    assert calls[0] == STEPS + 3
    for a, b in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
