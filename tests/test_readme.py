"""The README's promises: its two commands, the demo's accuracy, and the example."""

from __future__ import annotations

import ast
import builtins
import importlib.util
import os
import re
import runpy
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

import anyarray_nn as ann
from anyarray_nn import backend as backend_mod

ROOT = Path(__file__).resolve().parents[1]
#: The backends and registered names known when this module was collected (the built-in
#: ones): a snippet runs as if in a fresh process, without the test-only components that other
#: test modules (tests/extending_components.py) registered since in this worker.
BUILT_IN_BACKENDS = set(backend_mod.BACKENDS)
REGISTRY_FIELDS = ("_entries", "_names", "_aliases", "_alias_names")
BUILT_IN_NAMES = {
    name: {field: dict(getattr(getattr(ann.registry, name), field)) for field in REGISTRY_FIELDS}
    for name in ann.registry.__all__
    if isinstance(getattr(ann.registry, name), ann.registry.Registry)
}


def _as_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide (until the test ends) what was registered after collection."""
    for name in set(backend_mod.BACKENDS) - BUILT_IN_BACKENDS:
        monkeypatch.delitem(backend_mod.BACKENDS, name)
    for name, fields in BUILT_IN_NAMES.items():
        for field, table in fields.items():
            monkeypatch.setattr(getattr(ann.registry, name), field, dict(table))


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    main_cmd, test_cmd = blocks[0], blocks[1]
    assert "python -m anyarray_nn" in main_cmd
    assert "pytest" in test_cmd
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd.strip() in ci_lines
    # as a newcomer runs it: before anything installs an extra into CI's environment
    first_extra = next(i for i, line in enumerate(ci_lines) if re.search(r"-e \S*\.\[mpi", line))
    assert ci_lines.index(test_cmd.strip()) < first_extra
    assert "--rerun-skipped" in "\n".join(ci_lines[first_extra:])


def test_the_documented_lint_is_the_one_ci_runs():
    """docs/testing.md's lint lines are .ci/run's, verbatim (same paths, same ruff)."""
    blocks = _bash_blocks((ROOT / "docs" / "testing.md").read_text())
    lint = next(block for block in blocks if "ruff check" in block).splitlines()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    ruff_lines = [line for line in ci_lines if line.startswith("ruff ")]
    assert [line for line in lint if line.startswith("ruff ")] == ruff_lines
    pin = re.search(r'"(ruff==[\d.]+)"', "\n".join(ci_lines)).group(1)
    assert pin in lint[0]


def test_demo_reaches_the_promised_accuracy(capsys):
    from anyarray_nn.cli import demo

    accuracy = demo(backend="numpy", verbose=2)
    out = capsys.readouterr().out
    assert accuracy > 0.95
    assert "epoch 30/30" in out and "val_accuracy" in out and "test accuracy" in out


def test_main_job_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "anyarray_nn", "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout + proc.stderr  # tqdm bars go to stderr
    assert "test accuracy" in proc.stdout


def test_cli_bad_backend_is_one_line_error_and_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "anyarray_nn", "--backend", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "Unknown backend 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_quickstart_example_runs(capsys):
    pytest.importorskip("torch")
    module = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))
    result = module["main"]("torch")
    assert result["accuracy"] > 0.9
    assert "gradcheck" in capsys.readouterr().out


def test_quickstart_example_is_the_readme_snippet():
    """examples/quickstart.py's main() is the README's quick start, but for backend=backend."""
    readme = (ROOT / "README.md").read_text()
    snippet = next(
        block
        for block in re.findall(r"```python\n(.*?)\n```", readme, flags=re.S)
        if "ann.gradcheck" in block
    )
    script = (ROOT / "examples" / "quickstart.py").read_text()
    body = re.search(r"\n    # fmt: off\n(.*?)\n    # fmt: on\n", script, flags=re.S).group(1)
    body = textwrap.dedent(body).replace("backend=backend", 'backend="numpy"')
    lines = snippet.splitlines()
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    assert lines[: len(imports) + 1] == [*imports, ""]
    assert body.splitlines() == lines[len(imports) + 1 :]
    assert [line for line in imports if line not in script.splitlines()] == []


# -- every snippet of the README and docs/, after only the install command before it ----------
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# What `pip install -e ".[extras]"` brings, as top-level import names. The core is the
# package's dependencies (scipy and joblib come with scikit-learn); each extra adds its own.
CORE = {"anyarray_nn", "numpy", "sklearn", "scipy", "joblib", "safetensors", "array_api_compat"}
EXTRAS = {
    "progress": {"tqdm"},
    "torch": {"torch"},
    "plot": {"matplotlib"},
    "parquet": {"pyarrow"},
    "mpi": {"mpi4py"},
    "cluster": {"dask", "distributed"},
    "onnx": {"ndonnx", "onnx"},
    "jax": {"jax"},
    "test": {
        "pytest",
        "array_api_strict",
        "tqdm",
        "matplotlib",
        "pyarrow",
        "pandas",
        "onnxruntime",
        "xdist",
    },
}
STDLIB = set(sys.stdlib_module_names)


def _blocks_with_installs(path: Path) -> list[tuple[str, set[str], set[str]]]:
    """Each ```python block of a page, with the modules the nearest install command before it
    makes importable (the core alone when no install command precedes it), and what an
    ``<!-- snippet needs: a, b -->`` line right above the block declares it needs (modules or
    backend names) beyond what its code shows."""
    text = path.read_text()
    out, available = [], set(CORE)
    for match in re.finditer(r"```(\w+)\n(.*?)\n```", text, flags=re.S):
        lang, body = match.groups()
        if lang == "bash" and "pip install -e" in body:
            extras = re.search(r'pip install -e "?\.(?:\[([\w,]+)\])?', body).group(1) or ""
            available = set(CORE)
            for extra in filter(None, extras.split(",")):
                available |= EXTRAS.get(extra, set())
            for word in body.split("pip install -e", 1)[1].split("&&")[0].split()[1:]:
                if re.fullmatch(r"[A-Za-z_][\w-]*(==[\w.]+)?", word):  # a package named too
                    available.add(re.split(r"==", word)[0].replace("-", "_"))
        elif lang == "python":
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
            marker = re.fullmatch(r"<!-- snippet needs: ([\w, ]+) -->", before.strip())
            declared = {n.strip() for n in marker.group(1).split(",")} if marker else set()
            out.append((body, set(available), declared))
    return out


def _imported(block: str) -> set[str]:
    names = re.findall(r"^\s*(?:from|import) ([\w]+)", block, flags=re.M)
    return {name for name in names if name not in STDLIB and name != "__future__"}


#: Calls that need an extra whatever the snippet imports: export runs the network on ndonnx.
CALLS_NEED = {"export": EXTRAS["onnx"], "export_onnx": EXTRAS["onnx"]}


def _backend_named(text: str) -> str | None:
    """The backend a string names (``"jax"``, ``"strict"``), or None."""
    key = backend_mod.normalise(text)
    for info in backend_mod.BACKENDS.values():
        if key in {backend_mod.normalise(n) for n in (info.name, *info.aliases)}:
            return info.name
    return None


def _needs(block: str, declared: set[str]) -> tuple[set[str], set[str]]:
    """What a snippet needs to run: ``(modules, backends)``. Modules: what it imports, what
    its calls need (``CALLS_NEED``) and the packages of the backends it names. Backends: every
    string constant that names one (``backend="jax"``, ``net.to("torch")``,
    ``NNClassifier(backend="jax")``), so a backend chosen by name without importing its
    library counts too. ``declared`` adds what the code cannot show (a marker in the page)."""
    tree = compile(block, "<snippet>", "exec", flags=ast.PyCF_ONLY_AST)
    modules = _imported(block)
    backends = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = _backend_named(node.value)
            if name is not None:
                backends.add(name)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            modules |= CALLS_NEED.get(called, set())
    for item in declared:
        name = _backend_named(item)
        if name is not None:
            backends.add(name)
        else:
            modules.add(item)
    modules |= {backend_mod.BACKENDS[name].package for name in backends}
    return modules, backends


def test_needs_sees_what_a_snippet_needs():
    """The rule behind the snippets' skips, on the two kinds of snippet it once missed: a
    backend chosen by name without importing its library, and export with no ndonnx import."""
    assert _needs('import anyarray_nn as ann\nann.NN([2, 1], backend="jax")', set()) == (
        {"anyarray_nn", "jax"},
        {"jax"},
    )
    modules, _ = _needs("import onnxruntime\nnet.export('m.onnx')", set())
    assert {"onnxruntime", "ndonnx", "onnx"} <= modules
    assert _needs("x = net.to('strict')", set())[1] == {"array_api_strict"}
    assert _needs("print(1)", {"dask", "torch"}) == ({"dask", "torch"}, {"torch"})
    assert _needs("import anyarray_nn as ann  # 'jax' in a comment", set())[1] == set()


def _missing(modules: set[str], backends: set[str]) -> list[str]:
    """Why a snippet cannot run here, one entry per missing module or unusable backend."""
    why = [
        f"{m} is not installed"
        for m in sorted(modules)
        if importlib.util.find_spec(m) is None
        and m not in {backend_mod.BACKENDS[b].package for b in backends}
    ]
    for name in sorted(backends):
        status = backend_mod.BACKENDS[name].status()
        if status is not None:
            why.append(f"backend {name!r} is {status}")
    return why


SNIPPETS = [
    pytest.param(path, i, block, available, declared, id=f"{path.name}-{i}")
    for path in DOCS
    for i, (block, available, declared) in enumerate(_blocks_with_installs(path))
]
PARAMS = ("path", "index", "block", "available", "declared")


@pytest.mark.parametrize(PARAMS, SNIPPETS)
def test_snippet_needs_only_the_install_before_it(path, index, block, available, declared):
    """A snippet needs (imports, backends it names, export) only what the install command
    before it brought, and imports every module it uses (no name left over from another
    snippet)."""
    modules, _ = _needs(block, declared)
    assert modules <= available, (path.name, index, sorted(modules - available))
    if "ann." in block:
        assert "import anyarray_nn as ann" in block
    tree = compile(block, str(path), "exec", flags=ast.PyCF_ONLY_AST)
    assigned = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    defined = (
        assigned
        | imported
        | {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    )
    args = {
        a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args + n.kwonlyargs
    }
    loaded = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    missing = loaded - defined - args - set(dir(builtins))
    assert not missing, f"{path.name} snippet {index} uses {sorted(missing)} without defining them"


@pytest.mark.parametrize(PARAMS, SNIPPETS)
def test_snippet_runs(path, index, block, available, declared, tmp_path, monkeypatch):
    """Every ```python block runs as written, on its own, as a script (``__name__`` is
    ``"__main__"``), in a scratch directory; warnings such as ConvergenceWarning are errors.
    A snippet that needs what is not here (``_needs``: a module, a backend, export's ndonnx)
    is skipped, saying what is missing."""
    why = _missing(*_needs(block, declared))
    if why:
        pytest.skip(f"this snippet needs what is missing here: {'; '.join(why)}")
    monkeypatch.chdir(tmp_path)
    if "__main__" in block:  # a script (Dask starts worker processes): run it as one
        _run_as_a_script(block, tmp_path)
        return
    # the Extending recipes register components: leave the registries as they were found
    families = [getattr(ann.registry, n) for n in ann.registry.__all__ if n.islower()]
    families = [f for f in families if isinstance(f, ann.registry.Registry)]
    before = {id(f): set(f.names()) for f in families}
    _as_collected(monkeypatch)
    backends = set(backend_mod.BACKENDS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            exec(compile(block, str(path), "exec"), {"__name__": "__main__"})
    finally:
        for family in families:
            for name in set(family.names()) - before[id(family)]:
                family.unregister(name)
        for name in set(backend_mod.BACKENDS) - backends:
            del backend_mod.BACKENDS[name]


def _run_as_a_script(block: str, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(block + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-W", "error::sklearn.exceptions.ConvergenceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors: a heading, lower-cased, punctuation but - and _ dropped, spaces as -."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    heads = re.findall(r"^#+ (.*)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    """Every relative link of the README and docs/ names a file that exists, and every #anchor a
    heading of its page."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        page = (path.parent / target).resolve() if target else path
        assert page.exists(), f"{path.name}: {link} names no file"
        if anchor:
            assert anchor in _anchors(page), f"{path.name}: {link} names no heading"


def test_readme_fits_on_a_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
