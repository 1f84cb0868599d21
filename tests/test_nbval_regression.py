"""The nbval regression cells catch a real change in the physics.

A tiny chapter in the book's style (jupytext MyST, a ``# NBVAL_CHECK_OUTPUT`` cell printing rounded
results of a small training run) gets its reference stored exactly as ``tools/nbval_chapters.py refs``
does. Then, as ``make nbval`` does, the reference is copied, its inputs refreshed from the ``.md``
with ``jupytext --update`` and run under ``pytest --nbval-lax``:

* unchanged source: passes (so the printed rounding is stable across a re-execution, and a glued value
  that differs between executions is not compared);
* loss parameter m changed from 0.1 to 0.11: fails, on the output of the checked cell.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

# The project's own machinery, not its results: run by `make check-tooling` (and CI), not `make test`.
pytestmark = pytest.mark.tooling

ROOT = Path(__file__).resolve().parents[1]

CHAPTER = textwrap.dedent(
    """\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

    # A regression probe

    A homogeneous network rolls down the quadratic loss of eq. 20 with momentum.

    ```{code-cell} ipython3
    import jax
    jax.config.update("jax_enable_x64", True)
    from nncosmo_helpers.loss import PolynomialLoss
    from nncosmo_helpers.network import mlp
    from nncosmo_helpers.train import train_momentum

    M = 0.1
    init_fn, apply_fn = mlp(width=64, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.05)
    params = init_fn(jax.random.PRNGKey(0), 1)
    run = train_momentum(apply_fn, params, [[0.5]], eta=1 / 9, beta=0.5, loss=PolynomialLoss(M, 1.0, 2), steps=150)
    ```

    ```{code-cell} ipython3
    # NBVAL_CHECK_OUTPUT
    import time
    from myst_nb import glue
    # a glued value with all its digits differs between machines (here: between runs); nbval must skip it
    glue("probe-clock", time.perf_counter(), display=False)
    print(f"f_end = {float(run.f[-1, 0]):.4f}, alpha = {float(run.alpha_initial):.4f}")
    ```
    """
)


def _load_tool():
    spec = importlib.util.spec_from_file_location("nbval_chapters", ROOT / "tools" / "nbval_chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prepare(tool, md: Path, ref: Path, out_dir: Path) -> Path:
    """What ``nbval_chapters.py prepare`` does for one chapter: copy the reference, refresh inputs."""
    out_dir.mkdir()
    tool.write_conftest(out_dir)
    dest = out_dir / ref.name
    shutil.copy(ref, dest)
    subprocess.run(
        [sys.executable, "-m", "jupytext", "--quiet", "--update", "--to", "ipynb", str(md), "-o", str(dest)], check=True
    )
    return dest


def _nbval(nb: Path):
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", "--rootdir", str(nb.parent), str(nb)],
        cwd=nb.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.mark.slow
def test_nbval_passes_unchanged_and_fails_on_changed_loss(tmp_path):
    tool = _load_tool()
    tool.ROOT = tmp_path  # store the reference in tmp_path, not in tests/nbval/
    tool.REFS = tmp_path / "refs"
    book = tmp_path / "book"
    book.mkdir()
    md = book / "probe.md"
    md.write_text(CHAPTER)
    tool.store_refs([md])
    ref = tool.REFS / "probe.ipynb"
    stored = ref.read_text()
    assert "f_end = " in stored and tool.MARK in stored
    checked = [c for c in nbformat.read(ref, as_version=4).cells if c.cell_type == "code" and tool.MARK in c.source]
    assert checked and all(c.outputs for c in checked)
    assert "papermill.record" not in stored  # glue records are not kept in references
    # nbval (0.11) compares a cell only if its reference has run; a reference cell with outputs but
    # execution_count None is an error ("Unrun reference cell has outputs") and every chapter fails.
    assert all(c.execution_count is not None for c in checked), (
        "tools/nbval_chapters.py stores execution_count=None: nbval then fails every checked cell with "
        "'Unrun reference cell has outputs'; store_refs must keep (or renumber) the execution counts"
    )

    same = _prepare(tool, md, ref, tmp_path / "same")
    assert "M = 0.1\n" in CHAPTER
    md.write_text(CHAPTER.replace("M = 0.1\n", "M = 0.11\n"))
    changed = _prepare(tool, md, ref, tmp_path / "changed")
    assert "M = 0.11" in changed.read_text() and "f_end = " in changed.read_text()  # inputs new, outputs old

    procs = {"same": _nbval(same), "changed": _nbval(changed)}  # both kernels run side by side
    out = {k: p.communicate(timeout=600)[0] for k, p in procs.items()}
    rc = {k: p.returncode for k, p in procs.items()}

    assert rc["same"] == 0, out["same"]
    assert "2 passed" in out["same"], out["same"]
    assert rc["changed"] == 1, out["changed"]  # 1 = tests failed (not an internal/usage error)
    assert "1 failed" in out["changed"], out["changed"]
    assert "Cell outputs differ" in out["changed"], out["changed"]  # the output comparison, not an error
    assert "Cell 1" in out["changed"]  # ... of the checked cell
