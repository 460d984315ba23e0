"""The README's promises: its two commands, the demo's accuracy, and the example."""

from __future__ import annotations

import importlib.util
import re
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import anyarray_nn as ann
from anyarray_nn import backend as backend_mod

ROOT = Path(__file__).resolve().parents[1]


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
    """examples/quickstart.py's main() is the README's quick start, but for net.to(backend)."""
    readme = (ROOT / "README.md").read_text()
    snippet = next(
        block
        for block in re.findall(r"```python\n(.*?)\n```", readme, flags=re.S)
        if "ann.gradcheck" in block
    )
    script = (ROOT / "examples" / "quickstart.py").read_text()
    body = re.search(r"\n    # fmt: off\n(.*?)\n    # fmt: on\n", script, flags=re.S).group(1)
    body = textwrap.dedent(body).replace("net.to(backend)", 'net.to("torch")')
    lines = snippet.splitlines()
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    assert lines[: len(imports) + 1] == [*imports, ""]
    assert body.splitlines() == lines[len(imports) + 1 :]
    # the script imports what the snippet does, less numpy, which the snippet never uses
    assert [line for line in imports if line not in script.splitlines()] == ["import numpy as np"]


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    """Every ```python block of the README runs as written (in a scratch directory)."""
    pytest.importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    # the Extending recipes register components: leave the registries as they were found
    families = [getattr(ann.registry, n) for n in ann.registry.__all__ if n.islower()]
    families = [f for f in families if isinstance(f, ann.registry.Registry)]
    before = {id(f): set(f.names()) for f in families}
    backends = set(backend_mod.BACKENDS)
    namespace: dict = {}
    try:
        for block in blocks:
            if block.lstrip().startswith("net = NN(["):  # the one-line teaser at the top
                continue
            if "dask" in block and importlib.util.find_spec("distributed") is None:
                continue  # the Scaling out snippet needs the cluster extra
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        for family in families:
            for name in set(family.names()) - before[id(family)]:
                family.unregister(name)
        for name in set(backend_mod.BACKENDS) - backends:
            del backend_mod.BACKENDS[name]
