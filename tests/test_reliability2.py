"""Reliability, second round (issue 17): the library's API. Model files are forged here by hand in
the documented format (safetensors, a JSON document, its SHA-256 recomputed as an attacker
would), and every expectation is the documented exception or an independent computation."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import anyarray_nn as ann

ROOT = Path(__file__).resolve().parents[1]


def _net(spec=None, **kw):
    name, device = (spec.name, spec.device) if spec else ("numpy", None)
    kw.setdefault("dtype", "float64")
    return ann.NN([4, 8, 3], backend=name, device=device, seed=0, **kw)


def _trained():
    net = _net()
    net.fit(np.eye(4), [0, 1, 2, 0], epochs=2, optimizer="adam")
    return net


def _forge(path: Path, text_of) -> None:
    """Save a trained net, rewrite its metadata JSON as ``text_of(meta_without_envelope)``
    returns it, and sign it: SHA-256 over each tensor (sorted: name|dtype|shape|bytes), then
    ``metadata|`` + the canonical JSON of what Python's json module reads back (format v2)."""
    _trained().save(path)
    header = json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")])
    meta = json.loads(header["__metadata__"]["anyarray_nn"])
    meta.pop("sha256")
    tensors = safetensors.numpy.load_file(path)
    text = text_of(meta)
    parsed = json.loads(text)  # what a lenient reader sees (last duplicate wins, Infinity)
    parsed.pop("sha256", None)
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    digest.update(b"metadata|" + json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode())
    text = text[:-1] + f', "sha256": "{digest.hexdigest()}"}}'
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"anyarray_nn": text}))


def test_forged_files_are_signed_correctly(tmp_path):
    """The forging helper itself: an unchanged document loads (so the refusals below are the
    checks, not a bad signature)."""
    path = tmp_path / "m.safetensors"
    _forge(path, json.dumps)
    assert ann.load(path).epochs_trained_ == 2


# -- 13. Infinity, huge and negative counters ------------------------------------------------
@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("training", "step", "Infinity"),
        ("model", "seed", "Infinity"),
        ("optimizer", "t", "Infinity"),
        ("training", "step", "NaN"),
        ("optimizer", "t", "1e400"),
        ("training", "epochs_trained", "-3"),
        ("training", "step", "2.5"),
        ("optimizer", "t", '"7"'),
    ],
)
def test_counters_must_be_whole_numbers_in_range(tmp_path, section, key, value):
    path = tmp_path / "m.safetensors"

    def edit(meta):
        meta[section][key] = "@@"
        return json.dumps(meta).replace('"@@"', value)

    _forge(path, edit)
    with pytest.raises(ann.ModelFileError, match=rf"{value.strip(chr(34))}|{key}"):
        ann.load(path)


# -- 20. duplicate keys ----------------------------------------------------------------------
def test_duplicate_keys_in_the_metadata_are_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    _forge(path, lambda m: json.dumps(m).replace('"training": {', '"training": {"step": 1, ', 1))
    with pytest.raises(ann.ModelFileError, match="'step' appears twice"):
        ann.load(path)


# -- 19. metadata nested deeply --------------------------------------------------------------
@pytest.mark.parametrize("depth", [700, 100_000])
def test_deeply_nested_metadata_is_refused_on_load(tmp_path, depth):
    path = tmp_path / "m.safetensors"
    nested = "[" * depth + "]" * depth
    _forge(path, lambda m: json.dumps(m)[:-1] + f', "deep": {nested}}}') if depth < 900 else None
    if depth >= 900:  # too deep for the json module to sign: write it unsigned, the depth
        _trained().save(path)  # check must still answer with ModelFileError, not RecursionError
        tensors = safetensors.numpy.load_file(path)
        text = '{"format": "anyarray_nn", "format_version": 2, "deep": ' + nested + "}"
        path.write_bytes(safetensors.numpy.save(tensors, metadata={"anyarray_nn": text}))
    with pytest.raises(ann.ModelFileError, match="more than 64 deep"):
        ann.load(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_save_refuses_metadata_too_deep_to_load_and_keeps_the_old_file(tmp_path, suffix):
    path = tmp_path / f"m{suffix}"
    net = _trained()
    net.save(path)
    before = path.read_bytes()
    deep: list = []
    for _ in range(100):
        deep = [deep]
    net.metadata = {"deep": deep}
    with pytest.raises(ValueError, match="metadata"):
        net.save(path, overwrite=True)
    assert path.read_bytes() == before
    net.copy()  # the copy is not affected by the refused save


# -- 18. metadata too large for the file -----------------------------------------------------
@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_metadata_too_large_is_a_value_error_naming_metadata(tmp_path, suffix):
    path = tmp_path / f"m{suffix}"
    net = _net()
    net.metadata = {"blob": "x" * (100 * 2**20)}
    with pytest.raises(ValueError, match="metadata") as info:
        net.save(path)
    assert type(info.value) is ValueError
    assert not path.exists()


# -- 8. MPI ranks given different data -------------------------------------------------------
MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
HAVE_MPI = Path(MPIEXEC).exists() and importlib.util.find_spec("mpi4py") is not None


@pytest.mark.skipif(
    not HAVE_MPI, reason="mpi4py or mpiexec missing (pip install 'anyarray_nn[mpi]')"
)
@pytest.mark.parametrize("rows_1", [390, 300, "shuffled"])
def test_ranks_with_different_data_raise_distributed_error_naming_the_rank(tmp_path, rows_1):
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        import numpy as np
        from mpi4py import MPI
        import anyarray_nn as ann
        from anyarray_nn.distributed import DistributedError
        rank = MPI.COMM_WORLD.Get_rank()
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(400, 4)), rng.integers(0, 3, 400)
        if rank == 1:
            rows_1 = {rows_1!r}
            if rows_1 == "shuffled":
                X = X[::-1].copy()
            else:
                X, y = X[:rows_1], y[:rows_1]
        net = ann.NN([4, 8, 3], backend="numpy", seed=0)
        try:
            net.fit(X, y, epochs=1, batch_size=50, comm=MPI.COMM_WORLD)
        except DistributedError as exc:
            open(f"out_{{rank}}.txt", "w").write(f"rank {{rank}}: {{exc.rank}}: {{exc}}")
            sys.exit(3)
        open(f"out_{{rank}}.txt", "w").write(f"rank {{rank}}: trained")
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=env)  # fmt: skip
    lines = [p.read_text() for p in sorted(tmp_path.glob("out_*.txt"))]
    assert len(lines) == 2, proc.stdout + proc.stderr
    for rank, line in enumerate(lines):
        assert line.startswith(f"rank {rank}: 1: rank 1 of 2 failed"), line
        assert "differ from rank 0's" in line, line
    assert "MPI_Abort" not in proc.stderr and proc.returncode != 0


# -- 11. zero-row inputs ---------------------------------------------------------------------
@pytest.mark.parametrize("call", ["evaluate", "gradients", "loss", "validation"])
def test_zero_rows_are_refused_before_anything_changes(backend, call):
    net = _net(backend)
    X, y = np.eye(4)[[0, 1, 2, 3, 0, 1]], np.array([0, 1, 2, 0, 1, 2])
    before = net.get_weights()
    empty_X, empty_y = np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    with pytest.raises(ValueError, match="no rows"):
        if call == "validation":
            net.fit(X, y, epochs=1, validation_data=(empty_X, empty_y))
        else:
            getattr(net, call)(empty_X, empty_y)
    for a, b in zip(net.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert net.epochs_trained_ == 0 and net.step_ == 0


# -- 17. sample weights checked in the network's dtype ---------------------------------------
@pytest.mark.parametrize("weight", [1e-320, 1e300])
def test_sample_weight_is_checked_after_the_cast_to_float32(backend, weight):
    net = _net(backend, dtype="float32")
    X, y = np.eye(4)[[0, 1, 2, 3]], np.array([0, 1, 2, 0])
    w = np.full(4, weight)
    assert np.all(w > 0) and np.all(np.isfinite(w))  # fine in float64 ...
    with pytest.raises(ValueError, match=r"sample_weight in the model's dtype float32"):
        net.fit(X, y, epochs=1, sample_weight=w)  # ... but 0 or inf in float32
    assert net.epochs_trained_ == 0
    if weight < 1:  # a subnormal sum in float64 too: devices that flush subnormals would get 0
        with pytest.raises(ValueError, match=r"sample_weight in the model's dtype float64"):
            _net(backend).loss(X, y, sample_weight=w)
        np.testing.assert_allclose(  # scaled into the normal range: the unweighted loss
            _net(backend).loss(X, y, sample_weight=w * 1e300), _net(backend).loss(X, y), rtol=1e-12
        )


# -- 10. registries: one name rule for components and backends -------------------------------
def test_alias_refuses_re_pointing_an_alias():
    from anyarray_nn import registry

    act = registry.activations
    before = act.get("logistic").name
    with pytest.raises(ValueError, match="'logistic' is already an alias"):
        act.alias("logistic", "tanh")
    assert act.get("logistic").name == before == "sigmoid"
    act.alias("logistic", "sigmoid")  # the same target again is harmless


@pytest.fixture
def strict_record():
    """A copy of array_api_strict's record under a new name, removed afterwards."""
    import dataclasses

    from anyarray_nn import backend as bk

    added: list[str] = []

    def register(name):
        info = dataclasses.replace(bk.BACKENDS["array_api_strict"], name=name, aliases=())
        bk.register_backend(info)
        added.append(name)
        return info

    yield register
    for name in added:
        bk.BACKENDS.pop(name, None)


def test_a_registered_backend_is_reachable_by_any_spelling_of_its_name(strict_record):
    pytest.importorskip("array_api_strict")
    from anyarray_nn.backend import backend_names, resolve

    strict_record("StrictCPU_x")
    assert "StrictCPU_x" in backend_names()
    for spelling in ("StrictCPU_x", "strictcpu-x", "STRICT_CPU_X"):
        assert resolve(spelling, "CPU_DEVICE", "float64").name == "StrictCPU_x"
    net = ann.NN([4, 3], backend="StrictCPU_x", device="CPU_DEVICE", dtype="float64", seed=0)
    ref = ann.NN([4, 3], backend="numpy", dtype="float64", seed=0)
    np.testing.assert_allclose(net.predict(np.eye(4)), ref.predict(np.eye(4)), rtol=1e-12)


@pytest.mark.parametrize("name", ["NumPy", "num_py", "Array-API-Strict", "STRICT", "Auto"])
def test_a_backend_name_that_normalises_to_a_taken_one_is_refused(strict_record, name):
    with pytest.raises(ValueError, match="already taken"):
        strict_record(name)


def test_namespaces_are_matched_by_exact_module_name():
    import types

    from anyarray_nn.backend import resolve

    assert resolve(np, None, "float64").name == "numpy"
    fake = types.ModuleType("mylib.numpy")  # an Array API namespace whose name contains "numpy"
    fake.asarray, fake.float32, fake.float64 = np.asarray, np.float32, np.float64
    with pytest.raises(ValueError, match=r"Unsupported backend namespace 'mylib\.numpy'"):
        resolve(fake, None, "float64")


# -- 9. warm_start after set_params ----------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        {"activation": "tanh"},
        {"hidden_layer_sizes": (8, 8)},
        {"dropout": 0.2},
        {"backend": "array_api_strict"},
    ],
)
def test_warm_start_refuses_a_change_it_cannot_apply(change):
    from sklearn.datasets import load_iris

    from anyarray_nn.sklearn import NNClassifier

    X, y = load_iris(return_X_y=True)
    clf = NNClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0,
                       backend="numpy")  # fmt: skip
    with pytest.warns(Warning):  # not converged in 5 iterations
        clf.fit(X, y)
    before = [w.copy() for w in clf.net_.get_weights()]
    clf.set_params(**change)
    with pytest.raises(ValueError, match=r"changed from .* since the network was built"):
        clf.fit(X, y)
    for a, b in zip(clf.net_.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    clf.set_params(warm_start=False)  # a new network with the new parameters
    with pytest.warns(Warning):
        clf.fit(X, y)


def test_warm_start_with_only_a_width_change_continues_like_scikit_learn():
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    from anyarray_nn.sklearn import NNClassifier

    X, y = load_iris(return_X_y=True)
    for cls in (NNClassifier, MLPClassifier):
        est = cls(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0)
        with pytest.warns(Warning):
            est.fit(X, y)
        est.set_params(hidden_layer_sizes=(16,))
        with pytest.warns(Warning):
            est.fit(X, y)
        assert est.coefs_[0].shape == (4, 8)  # the network as built, in both
