"""Chapters under nbval.

``prepare OUT``: for every chapter listed in _toc.yml, copy its stored reference notebook
(tests/nbval/<name>.ipynb) to OUT and refresh the copy's inputs from the MyST source with
``jupytext --update`` (outputs are kept). nbval then executes the copy and compares the cells marked
``# NBVAL_CHECK_OUTPUT`` with the stored outputs. A chapter without a reference fails loudly.

``refs [CHAPTER.md ...]``: execute chapters (all by default) and store their outputs as references.
Only the outputs of ``# NBVAL_CHECK_OUTPUT`` cells are kept, so the references stay small. The same
execution records each chapter's claims (``NNCOSMO_CLAIMS_DIR``), which are stored as the claims
references tests/claims/<chapter>.json (with their coverage record) by ``tools/claims.py refresh``.

myst-nb ``glue`` records (mimetypes ``application/papermill.record/...``) are never compared: a glued
float carries all its digits, and the last ones differ between CPUs (a different matmul blocking on
another machine changed e.g. 0.4517960129560355 into 0.45179601295603566). The checked cells print
their key results rounded, which is what the comparison is for. ``refs`` drops glue records from the
references, and ``prepare`` writes a ``conftest.py`` into OUT that tells nbval to skip them in the
executed notebooks (nbval has no option for a mimetype prefix).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "tests" / "nbval"
MARK = "# NBVAL_CHECK_OUTPUT"
GLUE_PREFIX = "application/papermill.record/"
CLAIMS_ENV = "NNCOSMO_CLAIMS_DIR"  # nncosmo_helpers.book.CLAIMS_DIR_ENV

CONFTEST = f'''"""Written by tools/nbval_chapters.py: nbval skips myst-nb glue records (see that module)."""


class _SkipGlue(tuple):
    """nbval's skip_compare tuple, also matching every mimetype that starts with {GLUE_PREFIX!r}."""

    def __contains__(self, key):
        return tuple.__contains__(self, key) or str(key).startswith({GLUE_PREFIX!r})


def pytest_collection_modifyitems(items):
    for item in items:
        parent = getattr(item, "parent", None)
        if parent is not None and hasattr(parent, "skip_compare") and not isinstance(parent.skip_compare, _SkipGlue):
            parent.skip_compare = _SkipGlue(parent.skip_compare)
'''


def write_conftest(out: Path) -> None:
    """The conftest.py that makes nbval skip glue records in the notebooks under ``out``."""
    (out / "conftest.py").write_text(CONFTEST)


def _is_glue(output) -> bool:
    data = output.get("data") or {}
    return bool(data) and all(k.startswith(GLUE_PREFIX) for k in data)


def toc_chapters() -> list[Path]:
    """Source files of every page listed in _toc.yml, in order (the pages of check_browser.toc_pages)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from check_browser import toc_pages

    out = []
    for page in toc_pages(ROOT / "_toc.yml"):
        path = ROOT / (page + ".md")
        if not path.exists():
            raise SystemExit(f"_toc.yml lists {page}, but {path} does not exist")
        out.append(path)
    return out


def is_notebook(md: Path) -> bool:
    head = md.read_text().split("\n---", 1)[0]
    return md.read_text().startswith("---") and "jupytext" in head


#: The chapters' quick-profile execution cost, most expensive first (CPU seconds measured on 2026-12-02:
#: quantitative ~190, perturbations ~120, optimisers ~120 and width ~110 computing their scans, appendix
#: ~85, background and continuous_limit less). ``prepare`` prints the notebooks in this order so that
#: ``make nbval``, running several at a time, does not start the longest last; unknown chapters first.
COST_ORDER = ("quantitative", "perturbations", "optimisers_as_cosmologies", "width_and_precision", "appendix",
              "background", "continuous_limit")


def prepare(out: Path) -> None:
    """Write the notebooks nbval runs into ``out`` and print their paths, most expensive first."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_conftest(out)
    missing = []
    for md in toc_chapters():
        if not is_notebook(md):
            continue
        ref = REFS / (md.stem + ".ipynb")
        if not ref.exists():
            missing.append(md.name)
            continue
        dest = out / ref.name
        shutil.copy(ref, dest)
        subprocess.run(
            [sys.executable, "-m", "jupytext", "--quiet", "--update", "--to", "ipynb", str(md), "-o", str(dest)],
            check=True,
        )
        _number_cells(dest, keep_outputs=True)
    if missing:
        raise SystemExit(f"no nbval reference for {missing}: run `make nbval-refs CHAPTERS=...` and commit it")
    rank = {name: i for i, name in enumerate(COST_ORDER)}
    for nb in sorted(out.glob("*.ipynb"), key=lambda p: rank.get(p.stem, -1)):
        print(nb.relative_to(ROOT) if nb.is_relative_to(ROOT) else nb)


def store_refs(chapters: list[Path], recorded: Path | None = None) -> None:
    """Execute ``chapters``; store their nbval references and (tools/claims.py) their claims references.

    The claims each chapter records go to ``recorded/<chapter>.json`` (default ``_build/claims-refs``;
    cleared first, so a chapter that stopped recording is noticed) and are copied to tests/claims/; a
    chapter that records none is reported (``make test`` then fails on its missing reference).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import claims as claims_tool

    recorded = recorded or ROOT / "_build" / "claims-refs"
    REFS.mkdir(parents=True, exist_ok=True)
    recorded.mkdir(parents=True, exist_ok=True)
    no_claims = []
    for md in chapters:
        if not is_notebook(md):
            continue
        dest = REFS / (md.stem + ".ipynb")
        (recorded / f"{md.stem}.json").unlink(missing_ok=True)
        print(f"executing {md.relative_to(ROOT)} -> {dest.relative_to(ROOT)}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "jupytext", "--quiet", "--to", "ipynb", "--execute", str(md), "-o", str(dest)],
            check=True,
            cwd=md.parent,
            env={**os.environ, CLAIMS_ENV: str(recorded.resolve())},
        )
        _number_cells(dest, keep_outputs=False)
        if (recorded / f"{md.stem}.json").exists():
            claims_tool.refresh(recorded, ROOT / "tests" / "claims", [md.stem])
        elif md.stem not in claims_tool.NOT_CHAPTERS:
            no_claims.append(md.name)
    if no_claims:
        print(f"WARNING: {no_claims} recorded no claims (no book.start/claim): no claims reference written",
              flush=True)


def _number_cells(path: Path, *, keep_outputs: bool) -> None:
    """Give every code cell a stable sequential execution count.

    nbval compares a cell only if its reference has an execution count (a cell whose count is None
    counts as "unrun"). Unless ``keep_outputs``, outputs are kept only in ``# NBVAL_CHECK_OUTPUT`` cells.
    """
    nb = nbformat.read(path, as_version=4)
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        if not keep_outputs and MARK not in cell.source:
            cell.outputs = []
        cell.outputs = [o for o in cell.get("outputs", []) if not _is_glue(o)]
        for o in cell.get("outputs", []):
            if "execution_count" in o:
                o["execution_count"] = count
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("prepare", "refs"):
        raise SystemExit("usage: nbval_chapters.py prepare OUT | refs [CHAPTER.md ...]")
    if argv[0] == "prepare":
        prepare(ROOT / (argv[1] if len(argv) > 1 else "_build/nbval"))
    else:
        chapters = [Path(a).resolve() for a in argv[1:]] or toc_chapters()
        store_refs(chapters)


if __name__ == "__main__":
    main(sys.argv[1:])
