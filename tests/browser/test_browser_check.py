"""The browser check itself (tools/check_browser.py) must catch what it claims to catch.

A tiny hand-written site -- no Jupyter Book build -- with one clean page and one page holding every
defect the check looks for (a missing image, a MathJax error, raw TeX, a broken link, a wrong
equation number, '??', an empty glued value, a console error, a request to another host). The clean
page must pass and every defect must be reported. Runs in headless Chromium (Debian's package) and
needs MathJax from node_modules (`npm ci`); both are installed by `make check-browser`, and the
tests skip without them.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5"


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_browser", ROOT / "tools" / "check_browser.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


cb = _load_checker()
_nb_spec = importlib.util.spec_from_file_location("nncosmo_build", ROOT / "tools" / "sphinxext" / "nncosmo_build.py")
NB = importlib.util.module_from_spec(_nb_spec)
_nb_spec.loader.exec_module(NB)

needs_browser = pytest.mark.skipif(
    not Path(cb.CHROMIUM).exists() or not (MATHJAX / "tex-mml-chtml.js").exists(),
    reason="needs /usr/bin/chromium and node_modules/mathjax (make check-browser installs both)",
)

# A 2x2 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAwMDAgM4BAB7+Af/7Zt2qAAAAAElFTkSuQmCC"
)

HEAD = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>
<script>window.MathJax = {{"options": {{"processHtmlClass": "math", "ignoreHtmlClass": "mathjax_ignore"}}}}</script>
<script defer src="_static/mathjax/tex-mml-chtml.js"></script></head>
<body class="mathjax_ignore">"""

GOOD = (
    HEAD.format(title="good")
    + r"""
<h1 id="top">Good page</h1>
<p>Inline <span class="math notranslate nohighlight">\(H = 1/\sqrt{\eta}\)</span> and the value
<span class="pasted-text">0.13%</span>.</p>
<div class="math notranslate nohighlight" id="equation-good-a"><span class="eqno">(1.1)<a class="headerlink" href="#equation-good-a">#</a></span>\[\ddot f + 3H\dot f = 0\]</div>
<figure id="fig-good"><img src="img.png" alt="red"><figcaption><span class="caption-number">Fig. 1.1 </span>A figure.</figcaption></figure>
<p>See <a class="reference internal" href="#equation-good-a">(1.1)</a>,
<a class="reference internal" href="#fig-good"><span class="std std-numref">Fig. 1.1</span></a>,
<a class="reference internal" href="bad.html#sec">the other page</a> and
<a href="https://example.org/">an external site</a>.</p>
<pre>code may contain $$ and \( freely</pre>
</body></html>"""
)

BAD = (
    HEAD.format(title="bad")
    + r"""
<h1 id="sec">Bad page</h1>
<p>Broken image: <img src="missing.png" alt="missing"></p>
<p>Image from another host: <img src="https://example.invalid/x.png" alt="remote"></p>
<p>A TeX error: <span class="math notranslate nohighlight">\(\frac{1}\)</span></p>
<p>Raw TeX that never reached MathJax: $$ E = mc^2 $$</p>
<p>Unresolved: see equation ?? and the value <span class="pasted-text"></span>.</p>
<p><a class="reference internal" href="nowhere.html">missing file</a>,
<a class="reference internal" href="good.html#no-such-anchor">missing anchor</a>,
<a class="reference internal" href="good.html#equation-good-a">(2.7)</a>.</p>
<div style="width: 500px">
<div class="math notranslate nohighlight" id="equation-bad-wide"><span class="eqno">(7.7)</span>\[a_1 + a_2 + a_3 + a_4 + a_5 + a_6 + a_7 + a_8 + a_9 + a_{10} + a_{11} + a_{12} + a_{13} + a_{14} + a_{15} + a_{16} + a_{17} + a_{18} + a_{19} + a_{20}\]</div>
<figure id="fig-wide"><img src="wide.svg" style="max-width: 100%" alt="wide"><figcaption><span class="caption-number">Fig. 7.1 </span>Too wide.</figcaption></figure>
<div><table><tr><th>wide table</th>""" + "<td>0.123456789</td>" * 12 + r"""</tr></table></div>
</div>
<script>console.error("boom from the page");</script>
</body></html>"""
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    html = tmp_path_factory.mktemp("site")
    (html / "_static").mkdir()
    os.symlink(MATHJAX, html / "_static" / "mathjax")
    (html / "img.png").write_bytes(PNG)
    (html / "wide.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="100"><rect width="2000" height="100" fill="#36c"/></svg>'
    )
    (html / "good.html").write_text(GOOD)
    (html / "bad.html").write_text(BAD)
    return html


@needs_browser
def test_clean_page_passes_and_every_defect_is_reported(site, tmp_path):
    reports = cb.check_pages(site, ["good", "bad"], tmp_path / "shots")
    good, bad = reports

    assert good.problems == [], good.problems
    assert (good.n_images, good.n_math, good.n_refs) == (1, 2, 2)
    assert Path(good.screenshot).stat().st_size > 1000

    text = "\n".join(bad.problems)
    expected = {
        "images not loaded": "missing.png",
        "requests to other hosts": "example.invalid",
        "MathJax errors": "frac",
        "raw TeX in the text": "E = mc^2",
        "'??' in the text": "??",
        "empty glued values": "pasted-text",
        "broken internal links": "nowhere.html",
        "no anchor #no-such-anchor": "no-such-anchor",
        "number differs": "(2.7)",
        "console errors": "boom from the page",
    }
    for what, detail in expected.items():
        lines = [line for line in bad.problems if what in line]
        assert lines, f"the check missed: {what}\n{text}"
        assert detail in "\n".join(lines), f"{what}: {detail!r} not named in {lines}"

    # Layout defects are warnings ...
    layout = {"figures shrunk": "Fig. 7.1", "display equations wider": "(7.7)", "tables wider": "wide table"}
    assert good.warnings == [], good.warnings
    for what, detail in layout.items():
        lines = [w for w in bad.warnings if what in w]
        assert lines and detail in lines[0], f"layout warning missed: {what}\n{bad.warnings}"
        assert not any(what in p for p in bad.problems)


@needs_browser
def test_strict_mode_turns_layout_warnings_into_failures(site, tmp_path):
    (bad,) = cb.check_pages(site, ["bad"], None, strict=True)
    assert bad.warnings == []
    for what in ("figures shrunk", "display equations wider", "tables wider"):
        assert any(what in p for p in bad.problems), bad.problems


def test_toc_pages_in_reading_order(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: A\n    chapters:\n      - file: book/one\n        sections:\n          - file: book/one_a\n"
        "  - caption: B\n    chapters:\n      - file: book/two.md\n"
    )
    assert cb.toc_pages(toc) == ["book/intro", "book/one", "book/one_a", "book/two"]


def _record(html, profile):
    """What tools/sphinxext/nncosmo_build.py writes at the end of a build of ``profile``."""
    return NB.write_build_record(html, {"profile": profile, "execute": "config", "helpers": "0" * 16, "mathjax": "local"})


def _offline_build(root, profile=None):
    """A one-page book and its offline HTML in root/_build/html, the sources older than the build.

    With a ``profile`` the build is complete: the offline stamp and the build record are written.
    """
    (root / "book").mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    html = root / "_build" / "html"
    (html / "book").mkdir(parents=True)
    (html / "_static" / "mathjax").mkdir(parents=True)
    (html / "_static" / "mathjax" / "tex-mml-chtml.js").write_text("")
    (html / "book" / "intro.html").write_text('<script src="../_static/mathjax/tex-mml-chtml.js"></script>')
    old = time.time() - 100
    for path in (root / "_toc.yml", root / "book" / "intro.md", html / "book" / "intro.html"):
        os.utime(path, (old, old))
    if profile is not None:
        (html / cb.OFFLINE_STAMP).touch()
        _record(html, profile)
    return html


def test_is_fresh_tracks_sources_and_the_offline_stamp(tmp_path):
    root = tmp_path
    html = _offline_build(root)
    assert not cb.is_fresh(html, root, profile="quick")[0]  # no stamp: never built offline successfully
    (html / cb.OFFLINE_STAMP).touch()
    fresh, why = cb.is_fresh(html, root, profile="quick")
    assert not fresh and cb.BUILD_RECORD in why  # a build that did not record its profile is not reused
    _record(html, "quick")
    assert cb.is_fresh(html, root, profile="quick") == (True, "fresh")

    (root / "book" / "intro.md").write_text("# Intro, edited\n")  # a source newer than the build
    os.utime(root / "book" / "intro.md", (time.time() + 5, time.time() + 5))
    fresh, why = cb.is_fresh(html, root, profile="quick")
    assert not fresh and "intro.md" in why


@pytest.mark.parametrize("built, requested", [("quick", "paper"), ("paper", "quick")])
def test_is_fresh_rejects_a_build_of_the_other_profile(tmp_path, monkeypatch, built, requested):
    html = _offline_build(tmp_path, built)
    monkeypatch.setenv("NNCOSMO_PROFILE", built)
    assert cb.is_fresh(html, tmp_path) == (True, "fresh")
    monkeypatch.setenv("NNCOSMO_PROFILE", requested)  # `make check-browser` with the other profile
    fresh, why = cb.is_fresh(html, tmp_path)
    assert not fresh and repr(built) in why and repr(requested) in why
    monkeypatch.delenv("NNCOSMO_PROFILE")  # unset means quick, as for the build
    assert cb.is_fresh(html, tmp_path)[0] == (built == "quick")


def test_the_build_record_round_trips_through_the_extension(tmp_path):
    """The extension's record (name, variant string) is what check_browser reads."""
    assert NB.BUILD_RECORD == cb.BUILD_RECORD
    variant = NB.parse_variant("profile=paper execute=config helpers=abcdef0123456789")
    assert variant == {"profile": "paper", "execute": "config", "helpers": "abcdef0123456789"}
    path = NB.write_build_record(tmp_path, variant)
    assert path.name == cb.BUILD_RECORD and json.loads(path.read_text())["profile"] == "paper"
