"""The one helper module for chapters: the profile, and every computed value the prose shows.

A chapter computes each number (or verdict word, or figure) its prose quotes and *glues* it under a
name with :func:`glue` (or :func:`glue_num` for a number). The prose then quotes it with the inline
role

.. code-block:: md

    the slope is {eval}`glued["cl-slope-slow:.2f"]`

where the text inside the quotes is the glued name, optionally followed by ``:`` and a Python format
spec -- the syntax of myst-nb's ``{glue:text}`` role, with the same formatting. A figure is glued
with ``display=True`` (its cell shows it) and placed with a ``{figure}`` directive that names it
with a ``:glue:`` option; the cell that makes it is tagged ``remove-output``, so that the book shows
the figure once, with its caption and number.

One source, two readers:

* **The online book** (Sphinx with myst-nb, notebooks executed by jupyter-cache or myst-nb's
  ``force`` mode, so with no kernel left at render time): ``tools/sphinxext/nncosmo_eval.py``
  resolves ``{eval}`glued["name:fmt"]``` from myst-nb's glue data with myst-nb's own
  ``{glue:text}`` code (``format_plain_text``), and the ``{figure}`` with ``:glue:`` with myst-nb's
  ``{glue:figure}`` code. No kernel is asked anything.
* **JupyterLab** with ``jupyterlab-myst``: running a markdown cell evaluates each ``{eval}``
  expression in the chapter's kernel (a Jupyter "user expression"). ``glued["name:fmt"]`` returns a
  :class:`Text` whose only representation is the formatted ``text/plain``, computed by the same
  ``format_plain_text`` from the same ``text/plain`` that myst-nb stores, so the reader sees the
  characters the book shows (a bare ``str`` would be shown as its repr, with quotes).

:data:`glued` is the chapter's registry of glued values: per name, the value, the text myst-nb
stores for it, and a free ``info`` dict.

**Claims.** A number or verdict word a sentence of the prose relies on is stated with :func:`claim`
instead of :func:`glue`: it is glued the same way, and recorded with what a regression test needs (the
verdict word, or the number with its tolerance and the budget the tolerance comes from). The chapter
names itself once, in its first cell, with :func:`start`. When the environment variable
``NNCOSMO_CLAIMS_DIR`` is set (``make test`` sets it), every claim is also written to
``$NNCOSMO_CLAIMS_DIR/<chapter>.json``, in the format of the stored references
``tests/claims/<chapter>.json``: ``{"name": {"verdict": "..."}}`` or
``{"name": {"value": ..., "rtol": ..., "atol": ..., "budget": "..."}}``. ``tools/claims.py check``
(run by ``make test``) compares the two; ``make claims-refs`` stores new references.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import numpy as np

from .profiles import get_profile

__all__ = ["GluedEntry", "Glued", "Text", "claim", "claims", "glue", "glue_num", "glued", "get_profile", "start"]


class Text:
    """A formatted value for the prose: its only representation is the text itself.

    Returned by ``glued["name:fmt"]``. JupyterLab (jupyterlab-myst) shows an inline expression's
    ``text/plain``; for a ``str`` that is its repr, quotes included, so the formatted text is wrapped
    in this object instead.
    """

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = str(text)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Text):
            return self.text == other.text
        return isinstance(other, str) and self.text == other

    def __hash__(self) -> int:
        return hash(self.text)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": self.text}


class GluedEntry(NamedTuple):
    """One glued value: what the prose can show under ``name``."""

    name: str
    value: Any
    #: myst-nb's ``text/plain`` for the value (what ``{glue:text}``/``{eval}`` format); None for a figure
    plain: str | None
    #: ``"text"`` (numbers, strings: quoted in the prose) or ``"figure"`` (placed by ``{figure}``)
    kind: str
    #: free-form information a caller adds (a claims helper: verdict, tolerances, ...)
    info: dict


def _split_spec(spec: str) -> tuple[str, str]:
    """``"name:fmt"`` -> (name, fmt), exactly as myst-nb's ``{glue:text}`` role splits it."""
    key_format = spec.rsplit(":", 1)
    if len(key_format) == 2:
        return key_format[0], key_format[1]
    return key_format[0], "s"


def _format_plain_text(plain: str, fmt: str) -> str:
    """myst-nb's own formatting of a glued ``text/plain`` (what the book shows)."""
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(plain, fmt)


def _plain_text(value: Any) -> str:
    """The ``text/plain`` that myst-nb's ``glue`` stores for ``value`` (IPython's formatter)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython comes with the book's environment
        shell = None
    if shell is not None:
        data, _ = shell.display_formatter.format(value, include={"text/plain"})
        if "text/plain" in data:
            return data["text/plain"]
    from IPython.lib.pretty import pretty

    return pretty(value)


def _is_figure(value: Any) -> bool:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, Figure)


class Glued:
    """The values a chapter glued, by name.

    ``glued["name"]`` or ``glued["name:fmt"]`` is the :class:`Text` the prose shows (this is the
    expression an ``{eval}`` role holds); :meth:`value`, :meth:`entry` and :meth:`entries` give the
    raw values and their records.
    """

    def __init__(self) -> None:
        self._entries: dict[str, GluedEntry] = {}
        #: the chapter whose values these are (set by :func:`start`)
        self.chapter: str | None = None

    # -- recording ---------------------------------------------------------------------------------
    def record(self, name: str, value: Any, **info: Any) -> GluedEntry:
        """Record ``value`` under ``name``, replacing an earlier record; ``info`` is kept with it."""
        if _is_figure(value):
            entry = GluedEntry(name, value, None, "figure", dict(info))
        else:
            entry = GluedEntry(name, value, _plain_text(value), "text", dict(info))
        self._entries[name] = entry
        return entry

    def annotate(self, name: str, **info: Any) -> GluedEntry:
        """Add ``info`` to the record of ``name`` (glued already)."""
        entry = self.entry(name)
        entry.info.update(info)
        return entry

    def clear(self) -> None:
        self._entries.clear()

    # -- reading -----------------------------------------------------------------------------------
    def entry(self, name: str) -> GluedEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"{name!r} is not glued (yet): the cell that computes it has not run. Run the cells "
                "above, or the whole chapter, then run this markdown cell again"
            ) from None

    def entries(self) -> list[GluedEntry]:
        """Every record, in the order of first gluing."""
        return list(self._entries.values())

    def value(self, name: str) -> Any:
        return self.entry(name).value

    def text(self, name: str, fmt: str = "s") -> str:
        """The text the book shows for ``{glue:text}`name:fmt``` (myst-nb's formatting)."""
        entry = self.entry(name)
        if entry.kind != "text":
            raise TypeError(f"{name!r} is a figure: place it with a {{figure}} directive and :glue: {name}")
        return _format_plain_text(entry.plain, fmt)

    def __getitem__(self, spec: str) -> Text:
        name, fmt = _split_spec(spec)
        return Text(self.text(name, fmt))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{e.name}={e.plain if e.kind == 'text' else '<figure>'}" for e in self._entries.values()
        )
        return f"Glued({shown})"


#: The registry of the running chapter (one kernel runs one chapter).
glued = Glued()


def glue(name: str, value: Any, display: bool = True, *, info: dict | None = None) -> None:
    """myst-nb's ``glue`` (same arguments, same output), and record the value in :data:`glued`.

    ``display`` keeps myst-nb's meaning: ``True`` also shows the value as the cell's output. Glue a
    figure with ``display=True`` so that a reader who runs the chapter sees it next to its code, and
    tag the cell ``remove-output`` so that the book shows only the captioned copy (the book build
    checks both: ``tools/sphinxext/nncosmo_eval.py``). ``info`` is stored with the record.
    """
    from myst_nb import glue as myst_glue

    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        # A NumPy scalar would be glued as its repr ("np.float64(1.098)"), which neither the book's
        # format specs nor JupyterLab's {eval} can format: glue the Python scalar it holds.
        value = value.item()
    myst_glue(name, value, display=display)
    glued.record(name, value, **(info or {}))


def glue_num(name: str, value: Any) -> None:
    """Glue a number (a Python or NumPy scalar, or a one-element array) as a plain Python scalar.

    NumPy scalars would be glued as their repr (``np.float64(0.5)``); ``.item()`` gives the Python
    ``int``/``float`` whose text myst-nb formats. Strings pass through unchanged. Not displayed.
    """
    glue(name, np.asarray(value).item(), display=False)


# ------------------------------------------------------------------------------------------------
# claims
# ------------------------------------------------------------------------------------------------
#: environment variable: the directory to which every claim of an executed chapter is written
CLAIMS_DIR_ENV = "NNCOSMO_CLAIMS_DIR"


def start(chapter: str) -> None:
    """Name the running chapter (its file name without ``.md``) and clear its registry.

    Call once, in the chapter's first cell. Re-running the chapter in a kernel starts from an empty
    registry, so a claim the chapter no longer makes is not carried over. With ``NNCOSMO_CLAIMS_DIR`` set,
    the chapter's record file is rewritten (empty) here.
    """
    if not isinstance(chapter, str) or not chapter or "/" in chapter or chapter.endswith(".md"):
        raise ValueError(f"chapter must be a file name without directory or .md, got {chapter!r}")
    glued.clear()
    glued.chapter = chapter
    _write_claims()  # an empty record: a chapter that starts but states no claim is noticed by the check


def _claim_record(value: Any, verdict: bool, rtol, atol, budget) -> dict:
    if verdict:
        if not isinstance(value, str) or not value:
            raise TypeError(f"a verdict is a non-empty str, got {value!r}")
        if rtol is not None or atol is not None:
            raise ValueError("a verdict is compared exactly: give no rtol/atol")
        return {"verdict": value}
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("state a boolean as a verdict word (e.g. scans.verdict(holds)), not as a number")
    if isinstance(value, (int, np.integer)) and rtol is None and atol is None:
        return {"value": int(value), "atol": 0, "budget": budget or "an integer count: compared exactly"}
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"a claimed number is a Python or NumPy scalar, got {type(value).__name__}")
    if rtol is None and atol is None:
        raise ValueError("a claimed number needs a tolerance (rtol and/or atol)")
    if not budget:
        raise ValueError("a claimed number needs budget='...': the reason for its tolerance (run-to-run "
                         "noise of a deterministic value, the seed spread of an ensemble value, ...)")
    for tol_name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and not (np.isfinite(tol) and tol >= 0):
            raise ValueError(f"{tol_name} must be a finite number >= 0, got {tol!r}")
    v = float(value)
    rec: dict = {"value": v if np.isfinite(v) else repr(v)}
    if rtol is not None:
        rec["rtol"] = float(rtol)
    if atol is not None:
        rec["atol"] = float(atol)
    rec["budget"] = str(budget)
    return rec


def claim(name: str, value: Any = None, *, verdict: str | None = None, rtol: float | None = None,
          atol: float | None = None, budget: str | None = None) -> None:
    """Glue a value the prose relies on (not displayed) and record it as a claim of the chapter.

    * ``claim(name, verdict=scans.verdict(holds))`` (or ``claim(name, "Confirmed")``: a ``str`` value
      is a verdict): a verdict word or sentence, compared exactly with the stored reference.
    * ``claim(name, x, rtol=..., atol=..., budget="...")``: a number, compared as
      ``|x - ref| <= atol + rtol * |ref|``; ``budget`` says where the tolerance comes from. An integer
      with no tolerance is compared exactly.

    The prose quotes it like any glued value, ``{eval}`glued["name:.3g"]```. NumPy scalars and
    one-element arrays are glued as Python scalars (as :func:`glue_num` does).
    """
    if glued.chapter is None:
        raise RuntimeError("call nncosmo_helpers.book.start('<chapter>') in the chapter's first cell "
                           "before stating a claim")
    if verdict is not None:
        if value is not None:
            raise ValueError("give either value or verdict=, not both")
        value, is_verdict = verdict, True
    else:
        if value is None:
            raise ValueError("claim needs a value or verdict=")
        if isinstance(value, np.ndarray) or hasattr(value, "item") and not isinstance(value, str):
            value = np.asarray(value).item()
        is_verdict = isinstance(value, str)
    record = _claim_record(value, is_verdict, rtol, atol, budget)
    glue(name, value, display=False, info={"claim": record})
    _write_claims()


def claim_spread(name: str, st, *, what: str, noise: float | None = None, with_spread: bool = False):
    """Claim an ensemble value: the median of ``st`` (an :class:`nncosmo_helpers.ensemble.SeedSpread`)
    with its seed range as the tolerance, and the budget sentence naming ``what`` it is the spread of.

    The tolerance is ``st.tolerance(noise)``: the range over seeds, at least float64 run-to-run noise
    times the median (when the seeds agree). With ``with_spread=True`` the range itself is claimed too,
    as ``name + "-spread"`` (same tolerance). When ``st.left_out`` non-finite values were dropped to
    build ``st``, the budget sentence says so. Returns ``st``, so a chapter can go on with it.
    """
    from nncosmo_helpers import ensemble

    tol = st.tolerance(ensemble.FLOAT64_NOISE if noise is None else noise)
    budget = f"seed range over {st.n_seeds} seeds of {what}"
    if st.left_out:
        budget += f" {st.left_out_text()}"
    claim(name, st.median, atol=tol, budget=budget)
    if with_spread:
        claim(name + "-spread", st.spread, atol=tol, budget=budget)
    return st


def claims() -> dict:
    """The claims recorded so far in the running chapter: {name: record}, in order of first claim."""
    return {e.name: e.info["claim"] for e in glued.entries() if "claim" in e.info}


def _write_claims() -> None:
    import json
    import os

    directory = os.environ.get(CLAIMS_DIR_ENV)
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{glued.chapter}.json")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(claims(), fh, indent=1)
        fh.write("\n")
    os.replace(tmp, path)
