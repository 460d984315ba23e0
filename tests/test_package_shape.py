"""The package's shape, checked: no import circle among its modules, no function over 60 lines,
every module on the architecture map, and a training step of a bounded number of array
operations (the architecture's measure of how much work a step launches)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
from opcount import counting_ops

import anyarray_nn as ann

PACKAGE = Path(ann.__file__).resolve().parent
ROOT = PACKAGE.parent
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    """``{"anyarray_nn.network": path, "anyarray_nn.cli": .../cli/__init__.py, ...}``."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``module`` imports, at any depth (inside functions too), except
    under ``if TYPE_CHECKING:``."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name in known and name != module}


def test_no_import_circle_among_the_packages_modules():
    modules = _modules()
    known = set(modules)
    graph = {m: _imports(m, p, known) for m, p in modules.items()}
    # a package's __init__ re-exporting its modules is not a circle through them
    for m in graph:
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def _function_lengths() -> list[tuple[str, int]]:
    """``(where, lines)`` of every function, its docstring not counted."""
    out = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = node.end_lineno - node.lineno + 1
            first = node.body[0]
            is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            if is_doc and isinstance(first.value.value, str):
                lines -= first.end_lineno - first.lineno + 1
            out.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", lines))
    return out


def test_no_function_is_longer_than_60_lines():
    lengths = _function_lengths()
    assert len(lengths) > 300  # the walk found the package
    too_long = [(where, n) for where, n in lengths if n > MAX_FUNCTION_LINES]
    assert not too_long, too_long


def test_every_module_is_on_the_architecture_map():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    block = text.split("## Map of the package", 1)[1].split("```")[1]
    listed = set(re.findall(r"[A-Za-z_]+(?:\.py|/)", block))
    missing = []
    for module, path in _modules().items():
        parts = module.split(".")[1:]
        if not parts or (path.parent != PACKAGE and path.name != "__init__.py"):
            continue  # the package itself; modules inside a subpackage are its business
        name = parts[0] + ("/" if path.name == "__init__.py" else ".py")
        if name not in listed and not name.startswith("_"):
            missing.append(name)
    assert not missing, f"modules missing from docs/ARCHITECTURE.md's map: {missing}"


# -- the size of a training step ---------------------------------------------------------------
def _ops_per_step(monkeypatch, sizes: list[int], optimizer: str = "adam") -> float:
    """Array operations per optimizer step of ``fit`` on array-api-strict (float32), as the
    difference between fits of S and 2S steps divided by S (fixed costs cancel)."""
    import array_api_strict

    steps, batch = 4, 32
    rng = np.random.default_rng(0)
    totals = []
    with array_api_strict.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False):
        for s in (steps, 2 * steps):
            X = rng.standard_normal((s * batch, sizes[0])).astype(np.float32)
            y = rng.integers(0, sizes[-1], s * batch)
            net = ann.NN(sizes, backend="array_api_strict", dtype="float32", seed=0)
            Xd, yd = net.backend.asarray(X), net.backend.asarray(y, dtype=net.xp.int64)
            with counting_ops(monkeypatch) as counter:
                net.fit(Xd, yd, epochs=1, batch_size=batch, optimizer=optimizer, shuffle=False)
            assert net.step_ == s
            totals.append(counter.total)
    return (totals[1] - totals[0]) / steps


@pytest.mark.parametrize(
    ("sizes", "at_most"),
    [([784, 128, 64, 10], 60), ([784, 256, 256, 256, 256, 10], 100)],
    ids=["784-128-64-10", "784-256x4-10"],
)
def test_a_training_step_is_a_bounded_number_of_array_operations(monkeypatch, sizes, at_most):
    """Was 129 and 203 with one optimizer update per parameter tensor; the flat parameter
    vector makes Adam's update 12 operations whatever the depth."""
    per_step = _ops_per_step(monkeypatch, sizes)
    assert per_step == int(per_step)  # the same every step
    assert per_step <= at_most, per_step


def test_the_operation_counter_counts(monkeypatch):
    """The counter sees what it should: one step more of depth costs the operations of one
    more hidden layer (forward 3, backward 8), and nothing in the optimizer."""
    shallow = _ops_per_step(monkeypatch, [20, 16, 16, 5])
    deeper = _ops_per_step(monkeypatch, [20, 16, 16, 16, 5])
    assert deeper - shallow == 11
