"""nncosmo_helpers.book, the {eval}/{figure} Sphinx extension and the glue-role converter.

The book and JupyterLab must show the same text for a glued value: the book through
tools/sphinxext/nncosmo_eval.py (myst-nb's {glue:text} code), JupyterLab through the kernel-side
``glued["name:fmt"]``. The expected strings below are written out from Python's format mini-language,
not produced by either side.
"""

from __future__ import annotations

import importlib.util
import io
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nncosmo_helpers import book

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def registry(monkeypatch):
    """A fresh ``glued`` and a recording stand-in for myst-nb's glue (no kernel here)."""
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    monkeypatch.setattr(book, "glued", book.Glued())
    return book.glued, calls


@pytest.mark.parametrize(
    "value, spec, shown",
    [
        (0.0123456, "x:.3g", "0.0123"),
        (0.0123456, "x:.2%", "1.23%"),
        (0.0123456, "x:.1e", "1.2e-02"),
        (1234.5, "x:.0f", "1234"),  # round half to even, as format() does
        (0.1 + 0.2, "x", "0.30000000000000004"),  # no spec: the full repr, as {glue:text} shows it
        (128, "x", "128"),
        (128, "x:.2g", "1.3e+02"),
        ("quick", "x", "quick"),  # a string without its quotes
        ("Confirmed", "x:s", "Confirmed"),
    ],
)
def test_glued_text_is_the_formatted_value(registry, value, spec, shown):
    glued, calls = registry
    book.glue("x", value, display=False)
    assert calls == [("x", value, False)]
    text = glued[spec]
    assert str(text) == shown
    # jupyterlab-myst shows an inline expression's text/plain: exactly the text, no quotes, nothing else
    assert text._repr_mimebundle_() == {"text/plain": shown}
    assert repr(text) == shown


def test_glue_turns_numpy_scalars_into_python_scalars(registry):
    # A NumPy scalar glued as is reaches myst-nb (and JupyterLab's {eval}) as its repr,
    # "np.float64(1.098)", which no format spec can format (CI failure of the perturbations chapter).
    glued, calls = registry
    book.glue("f", np.float64(1.0982285474798301), display=False)
    book.glue("i", np.int64(7), display=False)
    book.glue("z", np.array(0.25), display=False)
    values = {name: value for name, value, _ in calls}
    assert type(values["f"]) is float and type(values["i"]) is int and type(values["z"]) is float
    assert glued["f:.4g"] == "1.098" and glued["i"] == "7" and glued["z:.2f"] == "0.25"


def test_glue_num_glues_python_scalars(registry):
    glued, calls = registry
    book.glue_num("i", np.int64(7))
    book.glue_num("f", np.float32(0.5))
    book.glue_num("a", np.array([2.25]))
    book.glue_num("s", "width 128")
    values = {name: value for name, value, _ in calls}
    assert values == {"i": 7, "f": 0.5, "a": 2.25, "s": "width 128"}
    assert type(values["i"]) is int and type(values["f"]) is float and type(values["a"]) is float
    assert all(display is False for _, _, display in calls)
    assert glued["i"] == "7" and glued["a:.1f"] == "2.2"


def test_registry_records_values_and_info(registry):
    glued, _ = registry
    book.glue("v", 0.25, display=False, info={"verdict": "Confirmed"})
    glued.annotate("v", rtol=0.1)
    entry = glued.entry("v")
    assert (entry.name, entry.value, entry.plain, entry.kind) == ("v", 0.25, "0.25", "text")
    assert entry.info == {"verdict": "Confirmed", "rtol": 0.1}
    assert [e.name for e in glued.entries()] == ["v"] and "v" in glued and len(glued) == 1


def test_missing_or_figure_values_say_what_to_do(registry):
    glued, _ = registry
    with pytest.raises(KeyError, match="not glued .yet.*run this markdown cell again"):
        glued["nowhere:.2f"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    book.glue("fig", fig, display=True)
    plt.close(fig)
    assert glued.entry("fig").kind == "figure"
    with pytest.raises(TypeError, match="figure"):
        glued["fig"]


# --------------------------------------------------------------------------------------------------
# The converter

CHAPTER = textwrap.dedent('''\
    ---
    jupytext:
      text_representation:
        format_name: myst
    kernelspec:
      name: python3
    ---

    # A chapter

    ```{code-cell} ipython3
    from myst_nb import glue
    ```

    The value is {glue:text}`a-x:.2f` and {glue}`a-y`; see {doc}`other` and {doc}`this one <other>`.

    ```{code-cell} ipython3
    :tags: [hide-input]
    glue("a-fig", make(1,
                       2), display=False)
    ```

    ```{code-cell} ipython3
    glue("b-fig", fig, display=False)
    ```

    ```{glue:figure} a-fig
    :name: fig-a

    Caption with {glue:text}`a-x:.1%`.
    ```

    ```{glue:figure} b-fig
    :name: fig-b

    Caption.
    ```
    ''')


def test_converter_rewrites_roles_figures_and_figure_cells():
    conv = _load(ROOT / "tools" / "convert_glue_roles.py", "convert_glue_roles")
    out = conv.convert(CHAPTER)
    assert "{glue" not in out
    assert 'The value is {eval}`glued["a-x:.2f"]` and {eval}`glued["a-y"]`' in out
    assert "see [](other.md) and [this one](other.md)." in out
    assert "```{figure}\n:glue: a-fig\n:name: fig-a\n\nCaption with {eval}`glued[\"a-x:.1%\"]`." in out
    assert ':tags: [hide-input, remove-output]\nglue("a-fig", make(1,\n                   2), display=True)' in out
    assert '```{code-cell} ipython3\n:tags: [remove-output]\nglue("b-fig", fig, display=True)' in out
    assert "from nncosmo_helpers.book import glue, glued" in out
    assert conv.convert(out) == out  # idempotent


def test_the_book_chapters_are_converted():
    conv = _load(ROOT / "tools" / "convert_glue_roles.py", "convert_glue_roles")
    for md in sorted((ROOT / "book").glob("*.md")):
        text = md.read_text()
        assert conv.convert(text) == text, f"{md.name}: run tools/convert_glue_roles.py {md.relative_to(ROOT)}"


# --------------------------------------------------------------------------------------------------
# The Sphinx side, on a tiny project executed by myst-nb

HEADER = "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"

PAGES = {
    "good": HEADER + textwrap.dedent('''\
        # Good

        ```{code-cell} ipython3
        import matplotlib
        matplotlib.use("module://matplotlib_inline.backend_inline")
        import matplotlib.pyplot as plt
        from nncosmo_helpers.book import glue, glue_num, glued
        glue_num("g-x", 0.0123456)
        glue("g-s", "Confirmed", display=False)
        ```

        ```{code-cell} ipython3
        :tags: [remove-output]
        fig, ax = plt.subplots(figsize=(2, 1))
        plt.close(fig)
        glue("g-fig", fig, display=True)
        ```

        EVAL[{eval}`glued["g-x:.2%"]`] GLUE[{glue:text}`g-x:.2%`] PLAIN[{eval}`glued["g-x"]`] STR[{eval}`glued['g-s']`]

        ```{figure}
        :glue: g-fig
        :name: fig-g

        The caption {eval}`glued["g-x:.3g"]`.
        ```

        See {numref}`fig-g`.
        '''),
    "bad": HEADER + textwrap.dedent('''\
        # Bad

        ```{code-cell} ipython3
        import matplotlib
        matplotlib.use("module://matplotlib_inline.backend_inline")
        import matplotlib.pyplot as plt
        from nncosmo_helpers.book import glue, glued
        fig, ax = plt.subplots(figsize=(2, 1))
        plt.close(fig)
        glue("b-hidden", fig, display=False)
        glue("b-twice", fig, display=True)
        glue("b-x", 1.5, display=False)
        ```

        Not resolvable: {eval}`1 + glued["b-x"]`.

        ```{figure}
        :glue: b-hidden

        Never seen in JupyterLab.
        ```

        ```{figure}
        :glue: b-twice

        Shown twice in the book.
        ```
        '''),
}


@pytest.mark.slow  # one small myst-nb build with two kernels, ~10-30 s
def test_sphinx_extension_matches_glue_and_guards_figures(tmp_path):
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    for name, text in PAGES.items():
        (src / f"{name}.md").write_text(text)
    (src / "index.md").write_text("# Index\n\n```{toctree}\ngood\nbad\n```\n")
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tools' / 'sphinxext')!r})\n"
        "extensions = ['myst_nb', 'nncosmo_eval']\n"
        "nb_execution_mode = 'force'\nnumfig = True\nsuppress_warnings = ['mystnb.unknown_mime_type']\n"
    )
    warnings = io.StringIO()
    app = Sphinx(str(src), str(src), str(tmp_path / "html"), str(tmp_path / "doctrees"), "html",
                 status=io.StringIO(), warning=warnings, freshenv=True)
    app.build()
    log = warnings.getvalue()

    html = (tmp_path / "html" / "good.html").read_text()
    spans = dict(re.findall(r'(EVAL|GLUE|PLAIN|STR)\[<span class="pasted-text">([^<]*)</span>\]', html))
    assert spans == {"EVAL": "1.23%", "GLUE": "1.23%", "PLAIN": "0.0123456", "STR": "Confirmed"}, spans
    assert '<span class="pasted-text">0.0123</span>' in html  # in the caption
    assert html.count("<img") == 1, "the figure is shown once (the cell's copy is removed)"
    assert "Fig. 1" in html
    # the one warning on the good page: its {glue:text} role (there only to compare), which JupyterLab
    # would not render
    good_warnings = [line for line in log.splitlines() if "good.md" in line]
    assert len(good_warnings) == 1 and "{glue:text} does not render in JupyterLab" in good_warnings[0], good_warnings

    bad = [line for line in log.splitlines() if "bad.md" in line]
    assert any("resolves only" in line and "1 + glued" in line for line in bad), log
    assert any("'b-hidden'" in line and "display=False" in line for line in bad), log
    assert any("'b-twice'" in line and "twice" in line for line in bad), log


def test_sphinx_extension_finds_glue_markup_in_the_prose_only():
    ext = _load(ROOT / "tools" / "sphinxext" / "nncosmo_eval.py", "nncosmo_eval_t")
    text = (HEADER + "A {glue:text}`x` role, quoted: `` {glue:text}`y` ``.\n\n"
            "```{code-cell} ipython3\nfrom nncosmo_helpers.book import glued\n# {glue:text}`z`\n```\n")
    prose, code = ext._strip_code(text)
    hits = list(ext.GLUE_MARKUP.finditer(prose))
    assert [m.group(0) for m in hits] == ["{glue:text}"]  # not the quoted one, not the code comment
    line = prose.count("\n", 0, hits[0].start()) + 1
    assert text.splitlines()[line - 1].startswith("A {glue:text}")  # line numbers kept
    assert "glued" in code and "glued" not in prose
