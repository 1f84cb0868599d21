"""Check the claims a chapter records against its stored reference, or refresh the references.

``check RECORDED_DIR REF_DIR``: compare every chapter's recorded claims (``RECORDED_DIR/<chapter>.json``,
written by :func:`nncosmo_helpers.book.claim` when ``NNCOSMO_CLAIMS_DIR`` is set) with its reference
``REF_DIR/<chapter>.json``. A failure names the chapter, the claim, the stored and the new value:

* a verdict that changed (verdicts are compared exactly);
* a number outside the stored tolerance, ``|new - ref| <= atol + rtol * |ref|`` (NaN equals NaN);
* a claim that disappeared, or a new claim with no reference;
* a tolerance or budget that differs from the stored one (a tolerance changes only with a refresh);
  numeric tolerances are compared to :data:`TOLERANCE_SLACK` of themselves, because many are measured
  (a seed range) and carry the run-to-run noise of the data they come from;
* a chapter of ``_toc.yml`` (except the intro and the bibliography) with no reference or no recorded file.

It prints a summary (claims and verdicts per chapter) and exits non-zero on any failure.

``refresh RECORDED_DIR REF_DIR [CHAPTER ...]``: copy the recorded claims (all recorded chapters by
default) into the references, and update ``REF_DIR/coverage.json`` for those chapters.

``coverage REF_DIR``: rewrite ``REF_DIR/coverage.json`` from the references and the chapters' sources.

The coverage record holds, per chapter, the number of claims, of verdicts and of ``# NBVAL_CHECK_OUTPUT``
cells; ``tests/test_claims.py`` fails when a count drops below it, so coverage shrinks only through a
refresh (which shows up in the diff of ``coverage.json``).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
#: pages of _toc.yml that are not chapters with claims
NOT_CHAPTERS = ("intro", "bibliography")
COVERAGE = "coverage.json"
#: Two numeric tolerances (``rtol``, ``atol``) are the same budget when they differ by at most this fraction
#: of the stored one. A tolerance is a spread or a budget, known to its own order; one measured from the data
#: (a seed range) moves with the data's round-off between CPUs: by up to 1e-7 of itself for float64 results
#: and 1.2e-3 for the float32 digits benchmark (seen between two machines). A deliberate change of a budget is
#: a change of its order (and any change of the budget's words fails), so 1 % separates the two.
TOLERANCE_SLACK = 1e-2
NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"


def toc_chapters() -> list[str]:
    """Names (file stems) of the chapters of _toc.yml that must state claims."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nbval_chapters import toc_chapters as toc_files

    return [md.stem for md in toc_files() if md.stem not in NOT_CHAPTERS]


def _number(v) -> float:
    """A stored number: JSON numbers as they are, non-finite values stored as "nan", "inf", "-inf"."""
    return float(v)


def _shown(rec: dict) -> str:
    """A record's value as a message shows it."""
    return repr(rec["verdict"]) if "verdict" in rec else str(rec.get("value"))


def compare_claim(chapter: str, name: str, ref: dict, new: dict) -> str | None:
    """The failure message for one claim, or None if the new record agrees with the reference."""
    where = f"{chapter}: claim {name!r}"
    if ("verdict" in ref) != ("verdict" in new):
        return f"{where}: stored {_shown(ref)}, new {_shown(new)} (a verdict and a number swapped)"
    if "verdict" in ref:
        if ref["verdict"] != new["verdict"]:
            return f"{where}: verdict changed: stored {ref['verdict']!r}, new {new['verdict']!r}"
        return None
    for key in ("rtol", "atol", "budget"):
        a, b = ref.get(key), new.get(key)
        numeric = key != "budget" and isinstance(a, (int, float)) and isinstance(b, (int, float))
        if (abs(b - a) > TOLERANCE_SLACK * abs(a)) if numeric else (a != b):
            return (f"{where}: {key} changed: stored {ref.get(key)!r}, new {new.get(key)!r} (value: stored "
                    f"{ref['value']}, new {new['value']}); refresh the reference if the change is intended")
    r, n = _number(ref["value"]), _number(new["value"])
    if math.isnan(r) or math.isnan(n):
        ok = math.isnan(r) and math.isnan(n)
    elif math.isinf(r) or math.isinf(n):
        ok = r == n
    else:
        ok = abs(n - r) <= ref.get("atol", 0.0) + ref.get("rtol", 0.0) * abs(r)
    if ok:
        return None
    return (f"{where}: stored {ref['value']}, new {new['value']} (difference {n - r:.3g}; tolerance rtol="
            f"{ref.get('rtol', 0)}, atol={ref.get('atol', 0)}: {ref.get('budget', '')})")


def compare_chapter(chapter: str, recorded: dict | None, reference: dict | None) -> list[str]:
    """Failure messages for one chapter (``None`` means the file does not exist)."""
    if reference is None:
        return [f"{chapter}: no reference tests/claims/{chapter}.json (run `make claims-refs CHAPTERS=book/{chapter}.md`)"]
    if recorded is None:
        return [f"{chapter}: no claims were recorded (the chapter did not run, or does not call book.start/claim)"]
    failures = []
    for name, ref in reference.items():
        if name not in recorded:
            failures.append(f"{chapter}: claim {name!r} disappeared: stored {_shown(ref)}, new: none")
        else:
            msg = compare_claim(chapter, name, ref, recorded[name])
            if msg:
                failures.append(msg)
    for name, new in recorded.items():
        if name not in reference:
            failures.append(f"{chapter}: new claim {name!r} has no reference: stored none, new {_shown(new)}")
    return failures


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def counts(claims: dict) -> tuple[int, int]:
    """(number of claims, number of verdicts)."""
    return len(claims), sum("verdict" in rec for rec in claims.values())


def check(recorded_dir: Path, ref_dir: Path, chapters: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Compare every chapter; returns (failure messages, summary lines)."""
    chapters = chapters if chapters is not None else toc_chapters()
    failures, summary = [], []
    for chapter in chapters:
        recorded = _load(Path(recorded_dir) / f"{chapter}.json")
        reference = _load(Path(ref_dir) / f"{chapter}.json")
        bad = compare_chapter(chapter, recorded, reference)
        failures += bad
        n, v = counts(recorded or {})
        summary.append(f"{chapter:28s} {n:4d} claims {v:3d} verdicts  {'FAIL (%d)' % len(bad) if bad else 'ok'}")
    return failures, summary


def nbval_cells(chapter: str) -> int:
    """Number of code cells of book/<chapter>.md marked ``# NBVAL_CHECK_OUTPUT``."""
    import jupytext

    nb = jupytext.read(BOOK / f"{chapter}.md")
    return sum(c.cell_type == "code" and NBVAL_MARK in c.source for c in nb.cells)


def coverage_entry(chapter: str, ref_dir: Path) -> dict:
    n, v = counts(_load(Path(ref_dir) / f"{chapter}.json") or {})
    return {"claims": n, "verdicts": v, "nbval_check_cells": nbval_cells(chapter)}


def write_coverage(ref_dir: Path, chapters: list[str]) -> None:
    """Update the coverage record of ``chapters`` (others keep theirs)."""
    path = Path(ref_dir) / COVERAGE
    cov = _load(path) or {}
    for chapter in chapters:
        cov[chapter] = coverage_entry(chapter, ref_dir)
    _dump(path, dict(sorted(cov.items())))


def _dump(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


def refresh(recorded_dir: Path, ref_dir: Path, chapters: list[str] | None = None) -> list[str]:
    """Store the recorded claims of ``chapters`` (default: every recorded one) as references."""
    recorded_dir, ref_dir = Path(recorded_dir), Path(ref_dir)
    if not chapters:
        chapters = sorted(p.stem for p in recorded_dir.glob("*.json"))
    ref_dir.mkdir(parents=True, exist_ok=True)
    for chapter in chapters:
        recorded = _load(recorded_dir / f"{chapter}.json")
        if recorded is None:
            raise SystemExit(f"{chapter}: no claims recorded in {recorded_dir}: does it call book.start and claim?")
        _dump(ref_dir / f"{chapter}.json", recorded)
    write_coverage(ref_dir, chapters)
    return chapters


def main(argv: list[str]) -> int:
    usage = "usage: claims.py check RECORDED_DIR REF_DIR | refresh RECORDED_DIR REF_DIR [CHAPTER ...] | coverage REF_DIR"
    if not argv or argv[0] not in ("check", "refresh", "coverage"):
        print(usage, file=sys.stderr)
        return 2
    if argv[0] == "check" and len(argv) == 3:
        failures, summary = check(Path(argv[1]), Path(argv[2]))
        print("claims check:", *summary, sep="\n  ")
        for msg in failures:
            print("FAIL", msg)
        print(f"claims check: {len(failures)} failure(s)" if failures else "claims check: all claims as stored")
        return 1 if failures else 0
    if argv[0] == "refresh" and len(argv) >= 3:
        done = refresh(Path(argv[1]), Path(argv[2]), [Path(c).stem for c in argv[3:]])
        print("claims references refreshed:", ", ".join(done))
        return 0
    if argv[0] == "coverage" and len(argv) == 2:
        chapters = toc_chapters()
        write_coverage(Path(argv[1]), chapters)
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
