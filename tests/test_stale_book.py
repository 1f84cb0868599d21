"""No stale book: switching the build variant on one checkout rebuilds the pages that depend on it.

`make book` (quick profile) followed by `make book-paper` used to leave the quick HTML in
_build/html: Sphinx saw no changed source and reported "no targets are out of date". The book's
Sphinx extension (tools/sphinxext/nncosmo_build.py) now records the profile, the execution mode and
the package's code hash as a configuration value that forces a re-read when it changes.

Checked on a throwaway one-page book that uses the same extension: its only cell prints the profile
and a random token, so the page shows both which profile executed it and whether it was executed
again. Five builds into the same folder: with NNCOSMO_EXECUTE=cache (jupyter-cache keys notebooks on
cell code only, so it needs a cache per profile) quick -> paper -> quick, then with forced execution
paper -> quick. So a profile switch changes the built page in both directions with only the profile
changed (cache: quick -> paper and paper -> quick; forced: paper -> quick), and a switch of the
execution mode re-executes. A build costs about 5 s of CPU (one kernel start).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The project's own machinery, not its results: run by `make check-tooling` (and CI), not `make test`.
pytestmark = pytest.mark.tooling

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"

PAGE = textwrap.dedent(
    """\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

    # Variant

    ```{code-cell} ipython3
    import os, uuid
    print("profile:", os.environ.get("NNCOSMO_PROFILE", "quick"), "token:", uuid.uuid4().hex)
    ```
    """
)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    (tmp_path / "_config.yml").write_text(
        textwrap.dedent(
            f"""\
            title: variant test
            only_build_toc_files: true
            execute:
              execute_notebooks: force
              timeout: 120
            sphinx:
              local_extensions:
                nncosmo_build: {ROOT / "tools" / "sphinxext"}
            """
        )
    )
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "page.md").write_text(PAGE)
    return tmp_path


def build(book: Path, **variant: str) -> tuple[str, str]:
    """Build ``book`` with the given NNCOSMO_* variables; return (profile, token) shown by the page."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNCOSMO_")}
    env.update({f"NNCOSMO_{k.upper()}": v for k, v in variant.items()})
    out = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(book), "-W", "-n", "--keep-going"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    html = (book / "_build" / "html" / "page.html").read_text()
    found = re.search(r"profile: (\w+) token: ([0-9a-f]{32})", html)
    assert found, "the page shows no executed output"
    # the build records its variant for tools/check_browser.py --is-fresh: the profile that executed the page
    record = json.loads((book / "_build" / "html" / ".nncosmo-build-variant").read_text())
    assert record["profile"] == found.group(1) and record["execute"] == variant.get("execute", "config"), record
    return found.group(1), found.group(2)


@pytest.mark.slow
def test_switching_profile_rebuilds_the_page(book):
    # Cached execution (CI) first: each profile has its own jupyter-cache, so switching profile re-reads
    # the page and never serves the other profile's outputs (quick -> paper), and switching back reuses
    # the profile's own cached execution (paper -> quick).
    profile, cached_quick = build(book, profile="quick", execute="cache")
    assert profile == "quick"
    profile, cached_paper = build(book, profile="paper", execute="cache")
    assert profile == "paper", "the paper build kept the quick profile's page (jupyter-cache served its outputs)"
    assert cached_paper != cached_quick
    assert build(book, profile="quick", execute="cache") == ("quick", cached_quick), (
        "the quick build kept the paper profile's page, or did not reuse its own cached execution")

    # Forced execution (`make book`): switching the execution mode re-reads the page and executes it
    # again; switching profile (paper -> quick) executes it again with the other profile.
    profile, paper = build(book, profile="paper")
    assert profile == "paper"
    assert paper not in (cached_quick, cached_paper)  # executed again, not taken from the cache
    profile, quick = build(book, profile="quick")
    assert profile == "quick", "the quick build kept the paper profile's page"
    assert quick not in (cached_quick, cached_paper, paper)  # executed again, not copied from anywhere
