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


def _blocks_with_installs(path: Path) -> list[tuple[str, set[str]]]:
    """Each ```python block of a page, with the modules the nearest install command before it
    makes importable (the core alone when no install command precedes it)."""
    text = path.read_text()
    out, available = [], set(CORE)
    for lang, body in re.findall(r"```(\w+)\n(.*?)\n```", text, flags=re.S):
        if lang == "bash" and "pip install -e" in body:
            extras = re.search(r'pip install -e "?\.(?:\[([\w,]+)\])?', body).group(1) or ""
            available = set(CORE)
            for extra in filter(None, extras.split(",")):
                available |= EXTRAS.get(extra, set())
            for word in body.split("pip install -e", 1)[1].split("&&")[0].split()[1:]:
                if re.fullmatch(r"[A-Za-z_][\w-]*(==[\w.]+)?", word):  # a package named too
                    available.add(re.split(r"==", word)[0].replace("-", "_"))
        elif lang == "python":
            out.append((body, set(available)))
    return out


def _imported(block: str) -> set[str]:
    names = re.findall(r"^\s*(?:from|import) ([\w]+)", block, flags=re.M)
    return {name for name in names if name not in STDLIB and name != "__future__"}


SNIPPETS = [
    pytest.param(path, i, block, available, id=f"{path.name}-{i}")
    for path in DOCS
    for i, (block, available) in enumerate(_blocks_with_installs(path))
]


@pytest.mark.parametrize(("path", "index", "block", "available"), SNIPPETS)
def test_snippet_needs_only_the_install_before_it(path, index, block, available):
    """A snippet imports only what the install command before it brought, names no backend that
    install lacks, and imports every module it uses (no name left over from another snippet)."""
    assert _imported(block) <= available, (path.name, index, _imported(block) - available)
    if "torch" not in available:
        assert not re.search(r'(backend=|to\()"torch"', block), "this snippet needs torch"
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


@pytest.mark.parametrize(("path", "index", "block", "available"), SNIPPETS)
def test_snippet_runs(path, index, block, available, tmp_path, monkeypatch):
    """Every ```python block runs as written, on its own, as a script (``__name__`` is
    ``"__main__"``), in a scratch directory; warnings such as ConvergenceWarning are errors."""
    for module in _imported(block):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the snippet's extra)")
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
