"""The CI cache key (tools/cache_key.py) must change whenever the executed outputs could change.

jupyter-cache only hashes cell code, so a helper change that the key missed would serve stale
outputs. Checked on a small copy of the repository layout, edited one file at a time.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("cache_key", ROOT / "tools" / "cache_key.py")
ck = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = ck
spec.loader.exec_module(ck)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel, text in {
        "constraints.txt": "jax==0.10.2\n",
        "pyproject.toml": "[project]\nname = 'x'\n",
        "_config.yml": "title: t\n",
        "_toc.yml": "root: book/intro\n",
        "nncosmo_helpers/__init__.py": "",
        "nncosmo_helpers/train.py": "def train():\n    return 1\n",
        "nncosmo_helpers/plotting/nncosmo.mplstyle": "lines.linewidth: 1.5\n",
        "book/intro.md": "# Intro\n",
        "README.md": "readme\n",
    }.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_key_changes_with_a_helper_source(repo):
    before = ck.cache_key("quick", repo)
    assert before == ck.cache_key("quick", repo)  # deterministic
    (repo / "nncosmo_helpers" / "train.py").write_text("def train():\n    return 2\n")
    after = ck.cache_key("quick", repo)
    assert after != before
    # ... in its environment part, so a cache saved before the change is never restored.
    assert not before.startswith(ck.cache_key("quick", repo, restore_prefix=True))


@pytest.mark.parametrize(
    "rel", ["constraints.txt", "pyproject.toml", "nncosmo_helpers/plotting/nncosmo.mplstyle", "_config.yml"]
)
def test_environment_files_change_the_environment_part(repo, rel):
    prefix = ck.cache_key("quick", repo, restore_prefix=True)
    (repo / rel).write_text((repo / rel).read_text() + "# edited\n")
    assert ck.cache_key("quick", repo, restore_prefix=True) != prefix


def test_chapter_edit_keeps_the_restorable_prefix(repo):
    key, prefix = ck.cache_key("quick", repo), ck.cache_key("quick", repo, restore_prefix=True)
    (repo / "book" / "intro.md").write_text("# Intro, edited\n")
    assert ck.cache_key("quick", repo) != key
    assert ck.cache_key("quick", repo).startswith(prefix)
    assert key.startswith(prefix)


def test_profile_and_unrelated_files(repo):
    assert ck.cache_key("quick", repo) != ck.cache_key("paper", repo)
    key = ck.cache_key("quick", repo)
    (repo / "README.md").write_text("another readme\n")
    (repo / "nncosmo_helpers" / "__pycache__").mkdir()
    (repo / "nncosmo_helpers" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0\1")
    assert ck.cache_key("quick", repo) == key
