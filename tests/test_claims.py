"""The claims registry (issue 14): tools/claims.py compares recorded claims with tests/claims/.

* the comparison, on hand-written records: a changed verdict, a number outside / inside its tolerance,
  NaN, a disappeared and a new claim, a changed tolerance or budget, a missing file;
* coverage cannot shrink silently: per chapter the claims, verdicts and ``# NBVAL_CHECK_OUTPUT`` cells
  are at least what ``tests/claims/coverage.json`` records; the book records at least 25 verdicts;
* end to end: a temporary copy of the continuous-limit chapter with one verdict's condition negated,
  executed (truncated after the cell that states that verdict, to keep the test under a minute),
  records a claim that the check rejects with a message naming the claim and both values.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "tests" / "claims"

_spec = importlib.util.spec_from_file_location("claims_tool", ROOT / "tools" / "claims.py")
claims_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(claims_tool)

NUM = {"value": 2.0, "rtol": 1e-3, "atol": 1e-6, "budget": "run-to-run noise"}


def _cmp(ref: dict, new: dict) -> list[str]:
    return claims_tool.compare_chapter("ch", new, ref)


# ---------------------------------------------------------------------------------------------------
# the comparison on hand-written records
# ---------------------------------------------------------------------------------------------------
def test_identical_records_pass():
    rec = {"v": {"verdict": "Confirmed"}, "x": NUM, "n": {"value": 7, "atol": 0, "budget": "a count"}}
    assert _cmp(rec, json.loads(json.dumps(rec))) == []


def test_changed_verdict_fails_naming_chapter_claim_and_both_words():
    (msg,) = _cmp({"v": {"verdict": "Confirmed"}}, {"v": {"verdict": "Not confirmed"}})
    assert "ch" in msg and "'v'" in msg and "'Confirmed'" in msg and "'Not confirmed'" in msg


def test_number_inside_and_outside_tolerance():
    # tolerance 1e-6 + 1e-3 * 2 = 2.001e-3
    assert _cmp({"x": NUM}, {"x": {**NUM, "value": 2.002}}) == []
    assert _cmp({"x": NUM}, {"x": {**NUM, "value": 2.0 - 0.002}}) == []
    (msg,) = _cmp({"x": NUM}, {"x": {**NUM, "value": 2.0021}})
    assert "'x'" in msg and "stored 2.0" in msg and "new 2.0021" in msg


def test_integer_count_is_exact():
    ref = {"n": {"value": 7, "atol": 0, "budget": "a count"}}
    assert _cmp(ref, {"n": {"value": 7, "atol": 0, "budget": "a count"}}) == []
    (msg,) = _cmp(ref, {"n": {"value": 8, "atol": 0, "budget": "a count"}})
    assert "stored 7" in msg and "new 8" in msg


def test_nan_equals_nan_only():
    ref = {"x": {**NUM, "value": "nan"}}
    assert _cmp(ref, {"x": {**NUM, "value": "nan"}}) == []
    assert len(_cmp(ref, {"x": {**NUM, "value": 2.0}})) == 1
    assert len(_cmp({"x": NUM}, {"x": {**NUM, "value": "nan"}})) == 1
    assert _cmp({"x": {**NUM, "value": "inf"}}, {"x": {**NUM, "value": "inf"}}) == []
    assert len(_cmp({"x": {**NUM, "value": "inf"}}, {"x": {**NUM, "value": "-inf"}})) == 1


def test_disappeared_and_new_claims_fail():
    (gone,) = _cmp({"x": NUM, "v": {"verdict": "yes"}}, {"x": NUM})
    assert "'v'" in gone and "disappeared" in gone and "'yes'" in gone
    (new,) = _cmp({"x": NUM}, {"x": NUM, "w": {"verdict": "no"}})
    assert "'w'" in new and "no reference" in new and "'no'" in new


@pytest.mark.parametrize("key, value", [("rtol", 1e-2), ("atol", 1.0), ("budget", "seed spread")])
def test_changed_tolerance_or_budget_fails(key, value):
    (msg,) = _cmp({"x": NUM}, {"x": {**NUM, key: value}})
    assert key in msg and "'x'" in msg


@pytest.mark.parametrize("key", ["rtol", "atol"])
def test_tolerance_noise_passes_but_a_new_order_fails(key):
    """A measured tolerance moves with the data's round-off between CPUs: within TOLERANCE_SLACK it is the same
    budget; beyond it (here 5 %), a refresh is needed."""
    near = {**NUM, key: NUM[key] * (1 + 0.5 * claims_tool.TOLERANCE_SLACK)}
    assert _cmp({"x": NUM}, {"x": near}) == []
    (msg,) = _cmp({"x": NUM}, {"x": {**NUM, key: NUM[key] * 1.05}})
    assert key in msg and "refresh" in msg
    zero = {**NUM, key: 0.0}
    assert _cmp({"x": zero}, {"x": zero}) == [] and len(_cmp({"x": zero}, {"x": {**NUM, key: 1e-300}})) == 1


def test_verdict_turned_number_fails():
    assert len(_cmp({"x": {"verdict": "yes"}}, {"x": NUM})) == 1


def test_missing_files_fail(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "a.json").write_text(json.dumps({"x": NUM}))
    (tmp_path / "rec" / "b.json").write_text(json.dumps({"x": NUM}))
    failures, summary = claims_tool.check(tmp_path / "rec", tmp_path / "ref", ["a", "b"])
    assert len(failures) == 2 and len(summary) == 2
    assert failures[0].startswith("a:") and "no claims were recorded" in failures[0]
    assert failures[1].startswith("b:") and "no reference" in failures[1]


def test_cli_exit_code_and_refresh(tmp_path):
    rec, ref = tmp_path / "rec", tmp_path / "ref"
    rec.mkdir()
    (rec / "continuous_limit.json").write_text(json.dumps({"v": {"verdict": "yes"}, "x": NUM}))
    claims_tool.refresh(rec, ref, ["continuous_limit"])
    assert json.loads((ref / "continuous_limit.json").read_text()) == {"v": {"verdict": "yes"}, "x": NUM}
    cov = json.loads((ref / "coverage.json").read_text())["continuous_limit"]
    assert cov["claims"] == 2 and cov["verdicts"] == 1 and cov["nbval_check_cells"] >= 1
    tool = [sys.executable, str(ROOT / "tools" / "claims.py"), "check", str(rec), str(ref)]
    # the other chapters of _toc.yml have no reference here: they fail, continuous_limit passes
    out = subprocess.run(tool, capture_output=True, text=True)
    assert out.returncode == 1 and not any(l.startswith("FAIL continuous_limit") for l in out.stdout.splitlines())
    (rec / "continuous_limit.json").write_text(json.dumps({"v": {"verdict": "no"}, "x": NUM}))
    out = subprocess.run(tool, capture_output=True, text=True)
    assert "FAIL continuous_limit: claim 'v'" in out.stdout


# ---------------------------------------------------------------------------------------------------
# what nncosmo_helpers.book records, and that the check reads it
# ---------------------------------------------------------------------------------------------------
def test_book_records_claims_in_the_reference_format(tmp_path, monkeypatch):
    import math

    from nncosmo_helpers import book

    monkeypatch.setenv(book.CLAIMS_DIR_ENV, str(tmp_path))
    book.start("probe")
    path = tmp_path / "probe.json"
    assert json.loads(path.read_text()) == {}  # a started chapter is recorded even before its first claim
    book.claim("v", verdict="Confirmed")
    book.claim("x", 0.5, rtol=1e-9, budget="round-off")
    book.claim("n", 3)
    book.claim("z", float("nan"), atol=0.0, budget="undefined here")
    rec = json.loads(path.read_text())
    assert rec == {"v": {"verdict": "Confirmed"},
                   "x": {"value": 0.5, "rtol": 1e-9, "budget": "round-off"},
                   "n": {"value": 3, "atol": 0, "budget": "an integer count: compared exactly"},
                   "z": {"value": "nan", "atol": 0.0, "budget": "undefined here"}}
    assert claims_tool.compare_chapter("probe", rec, rec) == []
    assert math.isnan(claims_tool._number(rec["z"]["value"]))
    with pytest.raises(ValueError, match="budget"):
        book.claim("y", 1.5, rtol=1e-9)
    with pytest.raises(ValueError, match="tolerance"):
        book.claim("y", 1.5, budget="none given")
    book.start("probe")  # re-running the chapter starts from an empty record
    assert json.loads(path.read_text()) == {}
    book.glued.clear()
    book.glued.chapter = None


# ---------------------------------------------------------------------------------------------------
# coverage cannot shrink silently
# ---------------------------------------------------------------------------------------------------
def _coverage() -> dict:
    return json.loads((REFS / "coverage.json").read_text())


def test_coverage_record_covers_every_chapter():
    assert set(claims_tool.toc_chapters()) <= set(_coverage())


@pytest.mark.parametrize("chapter", sorted(json.loads((REFS / "coverage.json").read_text())))
def test_coverage_does_not_shrink(chapter):
    """Counts from the sources (book/<chapter>.md, tests/claims/<chapter>.json), never below the record.

    A lower count means a checked cell or a claim was removed without `make claims-refs` (which
    rewrites the record, so the drop shows in the diff of tests/claims/coverage.json).
    """
    want = _coverage()[chapter]
    source = (ROOT / "book" / f"{chapter}.md").read_text()
    # independent of the tool's count (jupytext): marked lines inside ```{code-cell} blocks
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", source, flags=re.S)
    n_cells = sum(claims_tool.NBVAL_MARK in c for c in cells)
    assert n_cells >= want["nbval_check_cells"], f"{chapter}: {n_cells} checked cells < {want}"
    ref = REFS / f"{chapter}.json"
    recorded = json.loads(ref.read_text()) if ref.exists() else {}
    n_verdicts = sum(1 for r in recorded.values() if set(r) == {"verdict"})
    assert len(recorded) >= want["claims"], f"{chapter}: {len(recorded)} claims < {want}"
    assert n_verdicts >= want["verdicts"], f"{chapter}: {n_verdicts} verdicts < {want}"


def test_book_records_at_least_25_verdicts():
    missing = [c for c in claims_tool.toc_chapters() if not (REFS / f"{c}.json").exists()]
    if missing:
        pytest.xfail(f"no claims reference yet for {missing} (made by `make claims-refs` once converted)")
    total = sum(
        sum("verdict" in r for r in json.loads((REFS / f"{c}.json").read_text()).values())
        for c in claims_tool.toc_chapters()
    )
    assert total >= 25, total


# ---------------------------------------------------------------------------------------------------
# end to end: a flipped verdict in a temporary copy of a chapter fails the check
# ---------------------------------------------------------------------------------------------------
FLIP_CHAPTER, FLIP_CLAIM = "continuous_limit", "cl-order"
FLIP_FROM, FLIP_TO = "verdict(order_holds,", "verdict(not order_holds,"


def test_flipped_verdict_fails_the_check(tmp_path):
    """Negate the condition of one verdict in a copy of the chapter; the check names it and both words.

    The copy is truncated after the cell that states the verdict (the convergence study, the chapter's
    cheapest part), so that the test costs well under a minute of CPU: the claims of the later cells are
    then reported as disappeared, and the claims before the cut must reproduce their references.
    """
    import jupytext

    ref_path = REFS / f"{FLIP_CHAPTER}.json"
    if not ref_path.exists():
        pytest.fail(f"no reference {ref_path}: run `make claims-refs CHAPTERS=book/{FLIP_CHAPTER}.md`")
    reference = json.loads(ref_path.read_text())
    nb = jupytext.read(ROOT / "book" / f"{FLIP_CHAPTER}.md")
    cut = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f'claim("{FLIP_CLAIM}"' in c.source)
    assert FLIP_FROM in nb.cells[cut].source, "the flipped condition is no longer in the chapter: update the test"
    nb.cells = nb.cells[: cut + 1]
    nb.cells[cut].source = nb.cells[cut].source.replace(FLIP_FROM, FLIP_TO)
    copy = tmp_path / f"{FLIP_CHAPTER}.md"
    jupytext.write(nb, copy, fmt="md:myst")
    recorded_dir = tmp_path / "recorded"
    env = {**os.environ, "NNCOSMO_PROFILE": "quick", "NNCOSMO_CLAIMS_DIR": str(recorded_dir)}
    subprocess.run([sys.executable, "-m", "jupytext", "--quiet", "--to", "ipynb", "--execute", str(copy),
                    "-o", str(tmp_path / "out.ipynb")], check=True, cwd=tmp_path, env=env, timeout=600)
    recorded = json.loads((recorded_dir / f"{FLIP_CHAPTER}.json").read_text())

    failures = claims_tool.compare_chapter(FLIP_CHAPTER, recorded, reference)
    flipped = [m for m in failures if f"claim {FLIP_CLAIM!r}" in m]
    assert len(flipped) == 1, failures
    stored, new = reference[FLIP_CLAIM]["verdict"], recorded[FLIP_CLAIM]["verdict"]
    assert stored != new and repr(stored) in flipped[0] and repr(new) in flipped[0], flipped
    # everything else is the truncation: later claims disappeared, the earlier ones reproduce
    others = [m for m in failures if m not in flipped]
    assert all("disappeared" in m for m in others), others
    assert len(others) == len(set(reference) - set(recorded)) and len(recorded) > 1
    # and the command-line check fails on it, naming the claim
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / f"{FLIP_CHAPTER}.json").write_text(ref_path.read_text())
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "claims.py"), "check", str(recorded_dir),
                          str(tmp_path / "refs")], capture_output=True, text=True)
    assert out.returncode != 0 and f"FAIL {FLIP_CHAPTER}: claim {FLIP_CLAIM!r}" in out.stdout
