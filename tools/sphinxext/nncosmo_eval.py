"""Computed values in the prose, for the book and for JupyterLab from one MyST source.

The chapters quote every computed value with the inline role ``{eval}`glued["name:fmt"]``` and place
every figure with ``{figure}`` and a ``:glue: name`` option (``nncosmo_helpers.book`` explains the
scheme). In JupyterLab, jupyterlab-myst evaluates the expression in the kernel and renders
``{figure}``. In the book, which is executed ahead of rendering (myst-nb ``force``, or jupyter-cache
in CI) and so has no kernel to ask, this extension gives both a meaning built on myst-nb's glue:

``{eval}`glued["name:fmt"]```
    is myst-nb's ``{glue:text}`name:fmt``` -- the same code (``PasteTextRole``), so the same text, the
    same ``pasted-text`` node, the same warning for a missing name. Any other expression is an error:
    the book cannot evaluate it.

``{figure}`` with ``:glue: name`` (and no image argument)
    is myst-nb's ``{glue:figure} name`` with the same options and caption. Without ``:glue:`` it is
    Sphinx's ``figure``. Two checks keep the figure shown once everywhere: the glued figure must have
    been displayed by its cell (``glue(..., display=True)``), or a reader running the chapter in
    JupyterLab would not see it; and that cell must be tagged ``remove-output`` (or ``remove-cell``),
    or the book would show it twice.

It also fails the build (a warning, so an error under ``-W``) when a chapter still uses a ``{glue...}``
role or directive, which JupyterLab does not render (``tools/convert_glue_roles.py`` converts them), or
quotes ``{eval}`` values without importing ``glued`` into its kernel.
"""

from __future__ import annotations

import re

from docutils import nodes
from docutils.parsers.rst import directives
from myst_nb.ext.glue.directives import PasteFigureDirective
from myst_nb.ext.glue.roles import PasteTextRole
from myst_nb.ext.glue.utils import glue_warning
from sphinx.application import Sphinx
from sphinx.directives.patches import Figure as SphinxFigure
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The one expression form the book can resolve: ``glued["name"]`` / ``glued['name:fmt']``.
EVAL_GLUED = re.compile(r"""^\s*glued\[\s*(["'])(?P<spec>[^"']+)\1\s*\]\s*$""")
#: myst-nb glue roles and directives, which jupyterlab-myst does not render.
GLUE_MARKUP = re.compile(r"\{glue(?::[a-z]+)?\}")
EVAL_ROLE = re.compile(r"\{eval\}`")
HIDDEN_OUTPUT_TAGS = {"remove-output", "remove-cell"}


class EvalGluedRole(PasteTextRole):
    """``{eval}`glued["name:fmt"]``` -> myst-nb's ``{glue:text}`name:fmt```."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        match = EVAL_GLUED.match(self.text)
        if match is None:
            return [], [
                glue_warning(
                    f"the book resolves only {{eval}}`glued[\"name:fmt\"]` (a value glued by the chapter), "
                    f"not {self.text!r}",
                    self.document,
                    self.line,
                )
            ]
        self.text = match.group("spec")
        return super().run()


def _glue_cell(document: nodes.document, key: str):
    """The code cell whose *displayed* output glued ``key`` (None if glued with display=False)."""
    renderer = document.get("nb_renderer")
    if renderer is None:
        return None
    for cell in renderer.renderer.nb_client.notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") == key:
                return cell
    return None


class Figure(SphinxFigure):
    """Sphinx's ``figure``, plus ``:glue: name`` for a figure glued by the notebook."""

    required_arguments = 0
    optional_arguments = 1
    option_spec = {**SphinxFigure.option_spec, "glue": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        key = self.options.pop("glue", None)
        if key is None:
            if not self.arguments:
                raise self.error("figure: give an image path, or a glued figure with :glue: name")
            return super().run()
        if self.arguments:
            raise self.error(f"figure: an image path ({self.arguments[0]}) and :glue: {key}; give one")
        paste = PasteFigureDirective(
            "glue:figure", [key], self.options, self.content, self.lineno, self.content_offset,
            self.block_text, self.state, self.state_machine,
        )
        result = paste.run()
        document = self.state.document
        if "nb_renderer" in document and key in document["nb_renderer"].renderer.nb_client.glue_data:
            cell = _glue_cell(document, key)
            line = paste.line
            if cell is None:
                result.append(glue_warning(
                    f"figure {key!r} is glued with display=False: a reader running the chapter in "
                    "JupyterLab never sees it; glue it with display=True and tag its cell remove-output",
                    document, line))
            elif not HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                result.append(glue_warning(
                    f"figure {key!r} is displayed by its cell and placed by this figure: the book shows "
                    "it twice; tag the cell remove-output",
                    document, line))
        return result


def _strip_code(text: str) -> tuple[str, str]:
    """(prose, code) of a MyST notebook, line numbers kept: code-cell lines blanked in the prose,
    ``double-backtick`` spans (markup quoted as code) removed."""
    code, prose = [], []
    inside = False
    for line in text.splitlines():
        if line.startswith("```{code-cell}"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside:
            code.append(line)
            line = ""
        prose.append(line)
    return re.sub(r"``.+?``", "", "\n".join(prose)), "\n".join(code)


def _check_source(app: Sphinx, docname: str, source: list[str]) -> None:
    text = source[0]
    head = text.split("\n---", 1)[0]
    if not (text.startswith("---") and "jupytext" in head):
        return  # only notebook chapters are read in JupyterLab
    prose, code = _strip_code(text)
    for match in GLUE_MARKUP.finditer(prose):
        line = prose.count("\n", 0, match.start()) + 1
        logger.warning(
            f"{match.group(0)} does not render in JupyterLab: quote values with {{eval}}`glued[\"name:fmt\"]` "
            "and place figures with {figure} and :glue: (tools/convert_glue_roles.py converts them)",
            location=(docname, line), type="nncosmo", subtype="eval",
        )
    if EVAL_ROLE.search(prose) and not re.search(r"\bglued\b", code):
        logger.warning(
            "the prose quotes {eval} values, but no code cell imports `glued` "
            "(from nncosmo_helpers.book import glue, glued): JupyterLab cannot evaluate them",
            location=docname, type="nncosmo", subtype="eval",
        )


def setup(app: Sphinx) -> dict:
    # After myst-nb (jupyter-book loads local extensions last), whose ``eval`` role needs a kernel.
    app.add_role("eval", EvalGluedRole(), override=True)
    app.add_directive("figure", Figure, override=True)
    app.connect("source-read", _check_source)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
