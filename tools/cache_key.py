"""Cache key for the book's executed outputs (``_build/.jupyter_cache`` and ``results/``) in CI.

jupyter-cache keys a notebook on its cells' code only. A change to ``nncosmo_helpers``, to the
locked dependencies or to the profile changes what the same code computes, yet would be served
stale outputs from the cache. The key therefore hashes, besides the profile name,

* the environment: ``constraints.txt``, ``pyproject.toml``, every ``nncosmo_helpers`` source (``.py``
  and the matplotlib style), ``_config.yml`` and the book's Sphinx extension;
* the chapters: every file under ``book/`` and ``_toc.yml``.

It prints ``exec-<profile>-<environment hash>-<chapters hash>``. With ``--restore-prefix`` it prints
``exec-<profile>-<environment hash>-``: a cache saved under another chapters hash but the same
environment is safe to restore, because jupyter-cache re-executes exactly the notebooks whose code
changed. Nothing with another environment hash is ever restored.

Usage (GitHub Actions): ``key=$(python tools/cache_key.py --profile paper)``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENVIRONMENT = [
    "constraints.txt",
    "pyproject.toml",
    "_config.yml",
    "nncosmo_helpers/**/*.py",
    "nncosmo_helpers/**/*.mplstyle",
    "tools/sphinxext/**/*.py",
]
CHAPTERS = ["_toc.yml", "book/**/*"]

# The file hashing is the package's own (nncosmo_helpers/_codehash.py, the one definition that the
# results store and the book's Sphinx extension use too), loaded by path: this script runs before
# the package and its dependencies are installed.
_spec = importlib.util.spec_from_file_location("_nncosmo_codehash", ROOT / "nncosmo_helpers" / "_codehash.py")
_codehash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_codehash)
files = _codehash.files


def digest(patterns: list[str], root: Path = ROOT, extra: str = "") -> str:
    """SHA-256 over (relative path, content) of every matched file, plus ``extra``; 16 hex digits."""
    return _codehash.digest(patterns, root, extra)[:16]


def cache_key(profile: str, root: Path = ROOT, restore_prefix: bool = False) -> str:
    env = digest(ENVIRONMENT, root, extra=f"profile={profile}")
    if restore_prefix:
        return f"exec-{profile}-{env}-"
    return f"exec-{profile}-{env}-{digest(CHAPTERS, root)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=os.environ.get("NNCOSMO_PROFILE", "quick"))
    ap.add_argument("--restore-prefix", action="store_true", help="print only the environment part")
    ap.add_argument("--list", action="store_true", help="list the hashed files instead")
    args = ap.parse_args(argv)
    if args.list:
        for path in files(ENVIRONMENT + CHAPTERS, ROOT):
            print(path.relative_to(ROOT))
        return 0
    print(cache_key(args.profile, restore_prefix=args.restore_prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
