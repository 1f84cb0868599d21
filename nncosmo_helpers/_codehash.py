"""Content hashes of source trees: the one definition behind every "has the code changed?" check.

Three places need to know whether the code that computes something has changed:

* the results store (:mod:`nncosmo_helpers.results`) records :func:`package_code_hash` with each
  result and recomputes a result stored by other code;
* the CI cache key (``tools/cache_key.py``) hashes the package together with the lock file;
* the book's Sphinx extension (``tools/sphinxext/nncosmo_build.py``) re-reads every page when the
  package changed.

The hash covers every ``*.py`` file of the package directory (sub-packages included), sorted by
relative path, path and bytes both hashed; ``__pycache__`` and checkpoints are skipped. No module
names are listed: a module that is added, removed, renamed or edited changes the hash. Any edit
counts, a comment or a docstring too: that is the conservative choice (a change that cannot alter
a result costs a recomputation, never a stale result).

This module uses the standard library only and imports nothing from the package, so that the tools
can load it by file path (``importlib.util.spec_from_file_location``) without importing JAX or
installing the package.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_PATTERNS = ("**/*.py",)
SKIP_PARTS = frozenset({"__pycache__", ".ipynb_checkpoints", "_build"})


def files(patterns, root: Path) -> list[Path]:
    """The files matched by the glob ``patterns`` under ``root``, sorted, without caches and checkpoints."""
    root = Path(root)
    found = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            if path.is_file() and not SKIP_PARTS.intersection(path.relative_to(root).parts):
                found.add(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def digest(patterns, root: Path, extra: str = "") -> str:
    """SHA-256 (hex) over ``extra`` and (relative path, content) of every file :func:`files` matches."""
    root = Path(root)
    h = hashlib.sha256(extra.encode())
    for path in files(patterns, root):
        h.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def code_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 (hex) of the ``*.py`` sources under ``package_dir`` (computed afresh on every call)."""
    return digest(PACKAGE_PATTERNS, package_dir)


@functools.lru_cache(maxsize=None)
def package_code_hash() -> str:
    """:func:`code_hash` of this package's directory, computed once per process.

    Once per process because the process runs the code it imported at start; a source edited while
    a scan runs is picked up by the next process.
    """
    return code_hash(PACKAGE_DIR)

