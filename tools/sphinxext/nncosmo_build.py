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

Rebuilds when the variant changes (``make book`` then ``make book-paper`` on one checkout, and back):
Sphinx re-reads a page only when its source changed or a configuration value registered with
``rebuild="env"`` changed. The pages' executed outputs depend on more than their sources, so this
extension registers ``nncosmo_build_variant`` (``rebuild="env"``) and sets it from

* ``NNCOSMO_PROFILE`` (unset means ``quick``, as in ``nncosmo_helpers.profiles``),
* ``NNCOSMO_EXECUTE`` (also changes ``nb_execution_mode``, itself an ``env`` value),
* the hash of the package's ``*.py`` sources (``nncosmo_helpers/_codehash.py``, the same hash the
  results store records): a helper edit re-executes every chapter, as it would on a fresh clone.

When any of them differs from the previous build in the same ``_build``, Sphinx reports
``[config changed ('nncosmo_build_variant')]``, re-reads (so re-executes) every page and rewrites
the HTML. ``NNCOSMO_MATHJAX`` changes ``mathjax_path``, an ``html`` value: Sphinx rewrites every
page without re-executing; this extension copies the local MathJax for ``local`` and removes that
copy again for ``cdn``. With ``NNCOSMO_EXECUTE=cache`` the jupyter-cache lives in a folder per
profile and package hash (``<cache>/<profile>-<hash>``), because jupyter-cache keys a notebook on
its cell code only and would otherwise serve the quick profile's outputs to a paper build.

Every HTML build that finishes writes ``_build/html/.nncosmo-build-variant`` (:data:`BUILD_RECORD`):
the variant above plus ``mathjax``, as JSON. ``tools/check_browser.py --is-fresh`` reads it, so that a
quick-profile build is not reused for a paper-profile request (or the other way round).

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
PACKAGE_DIR = ROOT / "nncosmo_helpers"
# Written into the HTML folder by every finished build; read by tools/check_browser.py (same name there).
BUILD_RECORD = ".nncosmo-build-variant"
TOOL_DIRS = [".pytest_cache", ".pytest_cache/**", "node_modules", "node_modules/**", ".github", ".github/**"]


def _package_code_hash() -> str:
    """The results store's code hash of the package the kernels import (the checkout's by default)."""
    import importlib.util

    spec = importlib.util.find_spec("nncosmo_helpers")  # locates the package without importing it
    package = Path(list(spec.submodule_search_locations)[0]) if spec and spec.submodule_search_locations else PACKAGE_DIR
    source = package / "_codehash.py"
    if not source.is_file():  # an installed package that predates the code hash
        source = PACKAGE_DIR / "_codehash.py"
    loader = importlib.util.spec_from_file_location("_nncosmo_codehash", source)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module.code_hash(package)


def build_variant() -> dict[str, str]:
    """The inputs of the executed pages besides their sources: profile, execution mode, package hash."""
    return {
        "profile": os.environ.get("NNCOSMO_PROFILE", "quick"),
        "execute": os.environ.get("NNCOSMO_EXECUTE", "") or "config",
        "helpers": _package_code_hash()[:16],
    }


def _config_inited(app: Sphinx, config: Config) -> None:
    variant = build_variant()
    config.nncosmo_build_variant = " ".join(f"{k}={v}" for k, v in variant.items())

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
    if config.nb_execution_mode == "cache":
        base = Path(config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
        config.nb_execution_cache_path = str(base / f"{variant['profile']}-{variant['helpers']}")

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


def parse_variant(text: str) -> dict[str, str]:
    """Inverse of the ``nncosmo_build_variant`` string ("profile=quick execute=config helpers=...")."""
    return dict(item.split("=", 1) for item in text.split())


def write_build_record(outdir: Path, variant: dict[str, str]) -> Path:
    """Record what a finished build was built with (:data:`BUILD_RECORD`, JSON) in its HTML folder."""
    import json

    path = Path(outdir) / BUILD_RECORD
    path.write_text(json.dumps(variant, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    record = parse_variant(app.config.nncosmo_build_variant)
    record["mathjax"] = os.environ.get("NNCOSMO_MATHJAX", "cdn")
    write_build_record(Path(app.outdir), record)
    dest = Path(app.outdir) / "_static" / "mathjax"
    if os.environ.get("NNCOSMO_MATHJAX", "cdn") == "local":
        shutil.copytree(MATHJAX_SRC, dest, dirs_exist_ok=True)
    elif dest.is_dir():  # left by an earlier offline build into the same folder; the pages now use the CDN
        shutil.rmtree(dest)


def setup(app: Sphinx) -> dict:
    app.add_config_value("nncosmo_build_variant", "", "env", str)
    app.connect("config-inited", _config_inited, priority=400)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
