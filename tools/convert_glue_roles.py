"""Convert chapters from myst-nb glue markup to markup that the book and JupyterLab both render.

    python tools/convert_glue_roles.py book/*.md          # rewrite in place (idempotent)
    python tools/convert_glue_roles.py --check book/*.md  # exit 1 if anything would change

For each jupytext MyST chapter:

* prose: ``{glue:text}`name:fmt``` -> ``{eval}`glued["name:fmt"]``` (format spec kept as written);
  ``{glue}`name``` -> ``{eval}`glued["name"]```;
* a ``{glue:figure} name`` directive -> ``{figure}`` with ``:glue: name`` first among its options;
* the code cell that glues such a figure: ``display=False`` -> ``display=True`` in that ``glue`` call
  (a reader running the chapter sees the figure), and the cell tagged ``remove-output`` unless it is
  ``remove-cell`` already (the book shows the captioned copy only);
* ``from myst_nb import glue`` -> ``from nncosmo_helpers.book import glue, glued``;
* in every page (the intro too): ``{doc}`name``` -> ``[](name.md)``, ``{doc}`text <name>``` ->
  ``[text](name.md)``. The book shows the same link (the chapter's title when the text is empty);
  JupyterLab shows ``name.md`` and opens the chapter on a click, where ``{doc}`` gives a dead link.

Why: see ``nncosmo_helpers/book.py`` and ``tools/sphinxext/nncosmo_eval.py``. Written to convert
the chapters once (505 roles, 28 figures) and to convert prose merged from branches written before.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEXT_ROLE = re.compile(r"\{glue(?::text)?\}`([^`]+)`")
FIGURE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{glue:figure\}[ \t]+(?P<key>\S+)[ \t]*\n", re.M)
IMPORT = re.compile(r"^from myst_nb import glue[ \t]*$", re.M)


def _prose_roles(text: str) -> str:
    def repl(m: re.Match) -> str:
        spec = m.group(1)
        quote = "'" if '"' in spec else '"'
        return f"{{eval}}`glued[{quote}{spec}{quote}]`"

    return TEXT_ROLE.sub(repl, text)


def _figures(text: str) -> tuple[str, list[str]]:
    keys = []

    def repl(m: re.Match) -> str:
        keys.append(m.group("key"))
        return f"{m.group('fence')}{{figure}}\n:glue: {m.group('key')}\n"

    return FIGURE.sub(repl, text), keys


def _call_span(text: str, start: int) -> int:
    """Index just after the parenthesis closing the call whose '(' is at or after ``start``."""
    depth, i = 0, text.index("(", start)
    while i < len(text):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced parentheses")


def _figure_cells(text: str, keys: list[str]) -> str:
    for key in keys:
        m = re.search(r"""\bglue\(\s*["']%s["']""" % re.escape(key), text)
        if m is None:
            print(f"  figure {key}: no glue(\"{key}\", ...) call found; fix by hand", file=sys.stderr)
            continue
        end = _call_span(text, m.start())
        call = text[m.start():end]
        call = re.sub(r"display\s*=\s*False", "display=True", call)
        text = text[:m.start()] + call + text[end:]
        # the code-cell fence above the call, and its option lines (":tags: [...]", ...)
        fence = text.rfind("```{code-cell}", 0, m.start())
        pos = text.index("\n", fence) + 1
        while True:
            line_end = text.index("\n", pos)
            line = text[pos:line_end]
            if not re.match(r"^:[\w-]+:", line):
                text = text[:pos] + ":tags: [remove-output]\n" + text[pos:]  # no tags yet
                break
            tm = re.match(r"^:tags:\s*\[(.*)\]\s*$", line)
            if tm:
                current = [t.strip() for t in tm.group(1).split(",") if t.strip()]
                if not {"remove-output", "remove-cell"} & set(current):
                    line = ":tags: [" + ", ".join(current + ["remove-output"]) + "]"
                    text = text[:pos] + line + text[line_end:]
                break
            pos = line_end + 1
    return text


DOC_ROLE = re.compile(r"\{doc\}`([^`<]*?)\s*(?:<([^`>]+)>)?`")


def _doc_roles(text: str) -> str:
    def repl(m: re.Match) -> str:
        title, target = (m.group(1), m.group(2)) if m.group(2) else ("", m.group(1))
        return f"[{title}]({target}.md)"

    return DOC_ROLE.sub(repl, text)


def convert(text: str) -> str:
    text = _doc_roles(text)
    head = text.split("\n---", 1)[0]
    if not (text.startswith("---") and "jupytext" in head):
        return text
    text, keys = _figures(text)
    text = _prose_roles(text)
    text = _figure_cells(text, keys)
    text = IMPORT.sub("from nncosmo_helpers.book import glue, glued", text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="only report files that would change")
    args = ap.parse_args(argv)
    changed = []
    for path in args.files:
        old = path.read_text()
        new = convert(old)
        if new != old:
            changed.append(path)
            if not args.check:
                path.write_text(new)
    for path in changed:
        print(f"{'would convert' if args.check else 'converted'} {path}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
