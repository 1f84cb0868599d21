"""Build variants of the nncosmo book, chosen by environment variables.

Loaded from ``_config.yml`` (``sphinx.local_extensions``) so that the variants share one
configuration instead of duplicating it. Without any of these variables the build is exactly what
``_config.yml`` says.

``NNCOSMO_MATHJAX=local``
    Load MathJax 3 from a local copy instead of its CDN: ``node_modules/mathjax/es5`` (installed by
    ``npm ci`` from the committed ``package-lock.json``) is copied to ``_static/mathjax/`` and
    ``mathjax_path`` points there. Used by ``make book-offline`` and ``make check-browser``: the
    browser check runs without network, and a book built this way can be read offline. The
    published book keeps the CDN.

``NNCOSMO_EXECUTE=cache``
    Execute notebooks through jupyter-cache (myst-nb ``nb_execution_mode = "cache"``, cache in
    ``_build/.jupyter_cache``) instead of ``_config.yml``'s ``force``. Only for CI, where the cache is
    restored under a key from ``tools/cache_key.py``: jupyter-cache hashes cell code only, so it
    would serve stale outputs after a change to ``nncosmo_helpers``, the lock file or the profile;
    the key covers those.

It also

* excludes tool folders (``.pytest_cache``, ``node_modules``, ``.github``) from the sources;
* resolves ``bibtex_bibfiles`` against the repository root, so that single-page builds
  (``jupyter-book build book/<chapter>.md``, whose source folder is ``book/``) find
  ``book/references.bib`` too;
* works around two third-party defects that put errors in every reader's browser console (found by
  ``make check-browser``): with Sphinx 7.4, sphinx-thebe 0.3.1's inline script
  (``const THEBE_JS_URL = ...``) is emitted twice per page, so the second ``const`` throws
  "Identifier 'THEBE_JS_URL' has already been declared" -- identical inline scripts are de-duplicated
  here; and pydata-sphinx-theme 0.17 logs "Got invalid theme mode" on a first visit when
  ``default_mode`` is unset -- it is set to ``light`` (the figures are drawn for a white page; the
  reader can still switch).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
MATHJAX_SRC = ROOT / "node_modules" / "mathjax" / "es5"
MATHJAX_ENTRY = "tex-mml-chtml.js"  # the bundle Sphinx's default CDN path loads
TOOL_DIRS = [".pytest_cache", ".pytest_cache/**", "node_modules", "node_modules/**", ".github", ".github/**"]


def _config_inited(app: Sphinx, config: Config) -> None:
    mathjax = os.environ.get("NNCOSMO_MATHJAX", "cdn")
    if mathjax == "local":
        if not (MATHJAX_SRC / MATHJAX_ENTRY).is_file():
            raise ConfigError(
                f"NNCOSMO_MATHJAX=local but {MATHJAX_SRC / MATHJAX_ENTRY} is missing: run `npm ci`"
            )
        # A relative mathjax_path is relative to _static/ of the built HTML.
        config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"
    elif mathjax != "cdn":
        raise ConfigError(f"NNCOSMO_MATHJAX must be 'cdn' or 'local', not {mathjax!r}")

    execute = os.environ.get("NNCOSMO_EXECUTE")
    if execute:
        allowed = ("auto", "force", "cache", "off")
        if execute not in allowed:
            raise ConfigError(f"NNCOSMO_EXECUTE must be one of {allowed}, not {execute!r}")
        config.nb_execution_mode = execute

    config.html_context = {"default_mode": "light", **(config.html_context or {})}

    # Tool folders that hold Markdown files but are no part of the book: pytest's cache (created by
    # `make test` before CI builds the book) has a README.md that Sphinx would read as an orphan page
    # ("document isn't included in any toctree", an error under -W); node_modules holds MathJax.
    config.exclude_patterns = list(config.exclude_patterns) + [
        p for p in TOOL_DIRS if p not in config.exclude_patterns
    ]

    bibfiles = list(getattr(config, "bibtex_bibfiles", None) or [])
    config.bibtex_bibfiles = [
        str(ROOT / f) if not Path(f).is_absolute() and (ROOT / f).is_file() else f for f in bibfiles
    ]


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop repeated identical <script> entries (same file/body and attributes), keeping the first."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        # Sphinx registers the same inline script once with filename None and once with "".
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    scripts[:] = unique


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    if os.environ.get("NNCOSMO_MATHJAX", "cdn") == "local":
        dest = Path(app.outdir) / "_static" / "mathjax"
        shutil.copytree(MATHJAX_SRC, dest, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _config_inited, priority=400)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
