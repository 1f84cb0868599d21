"""Open every page of the built book in headless Chromium and check what a reader would see.

``make check-browser`` runs this after ``make test``. It serves the built HTML on 127.0.0.1 (a random
free port, python's http.server in a thread), opens each page listed in ``_toc.yml`` in Debian's
Chromium (driven by the ``playwright`` package; no browser is ever downloaded) with every request to
another host blocked, and checks that on every page

* the browser logs no console error, no uncaught exception, no failed or blocked request;
* every ``<img>`` has loaded (``naturalWidth > 0``);
* every equation is typeset by MathJax: as many ``mjx-container`` as math nodes, each math node
  holding one, no MathJax error node, no raw TeX (``\\(``, ``\\[``, ``$$``, ``$...$``,
  ``\\begin{``) left in the text;
* every internal link points to an existing file and anchor; every ``{eq}`` reference shows the
  number its equation shows, every ``{numref}`` the number its figure/table shows; no ``??``,
  no unresolved cross-reference, no unprocessed MyST role, no docutils error node;
* every glued value is there (no empty glue span, no leftover ``{glue`` text, no empty figure);
* no cell output shows a traceback.

Layout problems at the 1280-px viewport are reported as warnings (failures with ``--strict``): figures
shown at less than 60% of their natural width (the style's 9-pt text then drops below ~8 px), display
equations wider than the text column (MathJax clips them under the equation number), and tables wider
than the column.

A full-page screenshot of each page goes to ``_build/screenshots/``. The exit status is the number
of failing pages (capped at 1), after a summary table.

``--is-fresh`` only answers (exit 0/1) whether ``_build/html`` is an offline build
(``NNCOSMO_MATHJAX=local``) newer than every source and built with the requested profile
(``NNCOSMO_PROFILE``, default ``quick``; the build records its own in ``.nncosmo-build-variant``), so
the Makefile can skip rebuilding.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_MATHJAX = "_static/mathjax/tex-mml-chtml.js"
# Touched by `make book-offline` after a build without warnings.
OFFLINE_STAMP = ".nncosmo-offline-build"
# Written by every finished build (tools/sphinxext/nncosmo_build.py, BUILD_RECORD): its profile etc. as JSON.
BUILD_RECORD = ".nncosmo-build-variant"
# Legibility of figures: the style's smallest text (legend, 9 pt) at its 110 dpi is ~13.75 px; shown at
# less than MIN_SCALE of its natural width it drops below ~8 px.
STYLE_FONT_PX = 9 * 110 / 72
MIN_SCALE = 0.6
# Everything a rendered page depends on: if any of these is newer than the build, rebuild.
SOURCE_GLOBS = [
    "_config.yml",
    "_toc.yml",
    "book/**/*",
    "nncosmo_helpers/**/*.py",
    "nncosmo_helpers/**/*.mplstyle",
    "tools/sphinxext/**/*.py",
    "constraints.txt",
    "package-lock.json",
]


# --------------------------------------------------------------------------------------------------
# Pages and freshness


def toc_pages(toc_file: Path) -> list[str]:
    """Docnames (``book/intro``) of every page in the table of contents, in reading order."""
    toc = yaml.safe_load(toc_file.read_text())
    pages = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for key, value in node.items():
                if key != "file":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(md|ipynb|rst)$", "", p) for p in pages]


def newest_source(root: Path = ROOT) -> tuple[float, Path | None]:
    newest, which = 0.0, None
    for pattern in SOURCE_GLOBS:
        for path in root.glob(pattern):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                mtime = path.stat().st_mtime
                if mtime > newest:
                    newest, which = mtime, path
    return newest, which


def requested_profile() -> str:
    """The profile a build now would record: ``NNCOSMO_PROFILE``, unset meaning ``quick`` (as
    ``tools/sphinxext/nncosmo_build.py`` and ``nncosmo_helpers.profiles`` read it)."""
    return os.environ.get("NNCOSMO_PROFILE", "quick")


def is_fresh(html_dir: Path, root: Path = ROOT, profile: str | None = None) -> tuple[bool, str]:
    """Whether ``html_dir`` is an offline build of ``profile`` newer than every source (and why not).

    ``profile`` defaults to :func:`requested_profile`; the build's own is read from :data:`BUILD_RECORD`.
    """
    profile = requested_profile() if profile is None else profile
    stamp = html_dir / OFFLINE_STAMP
    if not stamp.is_file():
        return False, f"no successful offline build in {html_dir} (no {OFFLINE_STAMP})"
    if not (html_dir / LOCAL_MATHJAX).is_file():
        return False, f"{html_dir} was built with MathJax from the CDN, not the local copy"
    try:
        record = json.loads((html_dir / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, f"{html_dir} does not record its profile (no readable {BUILD_RECORD})"
    built_profile = record.get("profile") if isinstance(record, dict) else None
    if built_profile != profile:
        return False, f"{html_dir} was built with profile {built_profile!r}, {profile!r} is requested"
    built = stamp.stat().st_mtime
    newest, which = newest_source(root)
    if newest > built:
        return False, f"{which} is newer than the build"
    for page in toc_pages(root / "_toc.yml"):
        page_html = html_dir / f"{page}.html"
        if not page_html.is_file():
            return False, f"{page}.html is missing from the build"
        if page_html.stat().st_mtime > built or "://cdn.jsdelivr.net/npm/mathjax" in page_html.read_text(
            encoding="utf-8", errors="replace"
        ):
            return False, f"{page}.html was rebuilt since the offline build (by `make book`?)"
    return True, "fresh"


# --------------------------------------------------------------------------------------------------
# A quiet static file server on 127.0.0.1


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass


class StaticServer:
    def __init__(self, directory: Path):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "StaticServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


# --------------------------------------------------------------------------------------------------
# Anchors of HTML files that are not visited in the browser (genindex, search, ...)


class _IdCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


@functools.lru_cache(maxsize=None)
def ids_of_file(path: Path) -> frozenset[str]:
    parser = _IdCollector()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


# --------------------------------------------------------------------------------------------------
# What the page shows, collected in the browser after MathJax and the images have finished

PAGE_PROBE = r"""
([MIN_SCALE, FONT_PX]) => {
  const text = (el) => (el.textContent || "").replace(/\s+/g, " ").trim();
  const snippet = (s, i, n = 60) => s.slice(Math.max(0, i - n), i + n);

  // Prose: the body without code, scripts and typeset math.
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, textarea, mjx-container, .highlight, .headerlink")
       .forEach((n) => n.remove());
  const prose = (clone.textContent || "").replace(/\s+/g, " ");
  const findAll = (re) => {
    const out = [];
    for (const m of prose.matchAll(re)) { out.push(snippet(prose, m.index)); if (out.length >= 5) break; }
    return out;
  };

  const mathNodes = Array.from(document.querySelectorAll("span.math, div.math"));
  const containers = Array.from(document.querySelectorAll("mjx-container"));
  const untypeset = mathNodes.filter((n) => n.querySelectorAll("mjx-container").length !== 1)
                             .map((n) => text(n).slice(0, 80));
  const stray = containers.filter((c) => !c.closest("span.math, div.math"))
                          .map((c) => text(c.parentElement).slice(0, 80));
  const mjxErrors = Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error], .MathJax_Error"))
                         .map((n) => n.getAttribute("data-mjx-error") || text(n));

  const images = Array.from(document.images).map((img) => ({
    src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth,
  }));

  const links = Array.from(document.querySelectorAll("a[href]")).map((a) => ({
    href: a.href, raw: a.getAttribute("href"), text: text(a),
    // Numbered cross-references; a heading's or equation's own permalink (.headerlink) is not one.
    kind: a.classList.contains("headerlink") ? "" :
          a.querySelector(".std-numref") ? "numref" :
          (/(^|#)equation-/.test(a.getAttribute("href")) ? "eq" : ""),
  }));

  const ids = Array.from(document.querySelectorAll("[id]")).map((n) => n.id)
      .concat(Array.from(document.querySelectorAll("a[name]")).map((n) => n.getAttribute("name")));

  // Numbers shown at reference targets: equations and numbered figures/tables.
  const numbers = {};
  document.querySelectorAll("[id^='equation-']").forEach((n) => {
    const eqno = n.querySelector(".eqno");
    if (eqno) numbers[n.id] = text(eqno).replace(/[¶#]/g, "").trim();
  });
  document.querySelectorAll("figure[id], table[id], div.figure[id], div.table[id]").forEach((n) => {
    const num = n.querySelector(".caption-number");
    if (num) numbers[n.id] = text(num).trim();
  });
  // A glued figure's id can sit on a wrapper around the figure.
  document.querySelectorAll("[id]").forEach((n) => {
    if (numbers[n.id] === undefined) {
      const fig = n.matches("figure, table") ? n : null;
      if (fig) { const num = fig.querySelector(".caption-number"); if (num) numbers[n.id] = text(num); }
    }
  });

  const unresolved = Array.from(document.querySelectorAll(
      ".problematic, .system-message, span.xref:not(a span.xref), code.xref:not(a code.xref)"))
      .map((n) => text(n).slice(0, 80));
  const glueEmpty = Array.from(document.querySelectorAll(".pasted-text, .pasted-inline"))
      .filter((n) => text(n) === "" && !n.querySelector("img, svg, mjx-container"))
      .map((n) => n.outerHTML.slice(0, 120));
  const emptyFigures = Array.from(document.querySelectorAll("figure"))
      .filter((f) => !f.querySelector("img, svg, canvas, pre, table, iframe, video, mjx-container"))
      .map((f) => (f.id || "") + ": " + text(f).slice(0, 80));
  const tracebacks = Array.from(document.querySelectorAll(".cell_output .traceback, .output.traceback, .output.error"))
      .map((n) => text(n).slice(0, 120));
  Array.from(document.querySelectorAll(".cell_output pre")).forEach((p) => {
    if (/Traceback \(most recent call last\)/.test(p.textContent)) tracebacks.push(text(p).slice(0, 120));
  });

  // Layout (warnings): figures shrunk so far that their text is hard to read, display equations
  // and tables wider than the text column (clipped, or only readable by scrolling sideways).
  const shrunk = [];
  document.querySelectorAll("img").forEach((img) => {
    const shown = img.getBoundingClientRect().width;
    if (img.naturalWidth > 0 && shown > 0 && shown / img.naturalWidth < MIN_SCALE) {
      const fig = img.closest("figure");
      const num = fig && fig.querySelector(".caption-number");
      shrunk.push(`${num ? text(num) : img.src.split("/").pop()} shown at ${Math.round(100 * shown / img.naturalWidth)}% ` +
                  `(${img.naturalWidth} px wide; ${FONT_PX}-px text becomes ${(FONT_PX * shown / img.naturalWidth).toFixed(1)} px)`);
    }
  });
  const wideMath = Array.from(document.querySelectorAll("div.math")).filter((d) => {
    const c = d.querySelector("mjx-container");
    return c && c.scrollWidth > c.clientWidth + 1;
  }).map((d) => {
    const c = d.querySelector("mjx-container"), eqno = d.querySelector(".eqno");
    return `${eqno ? text(eqno).replace(/[#¶]/g, "") : d.id || "equation"} (${c.scrollWidth} px in ${c.clientWidth} px)`;
  });
  const wideTables = Array.from(document.querySelectorAll("table")).filter((t) => {
    const box = t.parentElement;
    return t.scrollWidth > box.clientWidth + 1 || box.scrollWidth > box.clientWidth + 1;
  }).map((t) => {
    const cap = t.querySelector("caption") || t.closest("figure, div.cell, section");
    const head = t.querySelector("th");
    return `table${head ? " '" + text(head).slice(0, 30) + "…'" : ""} (${t.scrollWidth} px in ${t.parentElement.clientWidth} px)`;
  });

  return {
    shrunk, wideMath, wideTables,
    title: document.title,
    nMath: mathNodes.length, nContainers: containers.length, untypeset, stray, mjxErrors,
    rawTex: findAll(/\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$[^$\n]{1,200}?\$/g),
    questionMarks: findAll(/\?\?/g),
    rawRoles: findAll(/\{(eq|numref|ref|cite|doc|glue|glue:text|glue:figure|glue:any|glue:math|eval|math|term|download)\}`/g),
    glueText: findAll(/\{glue|\{eval\}|<glue|glue error|Could not find glue/gi),
    images, links, ids, numbers, unresolved, glueEmpty, emptyFigures, tracebacks,
    height: document.documentElement.scrollHeight,
  };
}
"""

WAIT_FOR_PAGE = r"""
async () => {
  // Lazy images below the fold would never load in a headless run: load them now.
  document.querySelectorAll("img[loading='lazy']").forEach((img) => { img.loading = "eager"; });
  await Promise.all(Array.from(document.images).map((img) => img.complete ? null :
      new Promise((res) => { img.addEventListener("load", res); img.addEventListener("error", res); })));
  if (document.querySelector("span.math, div.math")) {
    const t0 = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
      if (Date.now() - t0 > 30000) return "MathJax did not load within 30 s";
      await new Promise((r) => setTimeout(r, 100));
    }
    await MathJax.startup.promise;
  }
  if (document.fonts) await document.fonts.ready;
  return "";
}
"""


# --------------------------------------------------------------------------------------------------


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_images: int = 0
    n_math: int = 0
    n_links: int = 0
    n_refs: int = 0
    screenshot: str = ""
    seconds: float = 0.0

    def add(self, what: str, items, *, warning: bool = False) -> None:
        items = list(items)
        if items:
            shown = "; ".join(str(i) for i in items[:5])
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            (self.warnings if warning else self.problems).append(f"{what}: {shown}{more}")


def _resolve_local(url: str, origin: str, html_dir: Path) -> tuple[Path, str] | None:
    """Map a same-origin URL to (file, fragment); None if it is not same-origin."""
    if not url.startswith(origin + "/") and url != origin:
        return None
    path, fragment = urldefrag(url)
    rel = unquote(urlsplit(path).path).lstrip("/")
    target = html_dir / rel
    if rel == "" or target.is_dir():
        target = target / "index.html"
    return target, unquote(fragment)


def check_pages(
    html_dir: Path,
    pages: list[str],
    screenshots: Path | None,
    *,
    width: int = 1280,
    height: int = 900,
    timeout_ms: int = 60000,
    strict: bool = False,
) -> list[PageReport]:
    from playwright.sync_api import sync_playwright

    html_dir = html_dir.resolve()
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    reports: list[PageReport] = []
    visited: dict[Path, dict] = {}  # html file -> {"ids": set, "numbers": dict}
    pending_links: list[tuple[PageReport, dict]] = []

    with StaticServer(html_dir) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
            context.set_default_timeout(timeout_ms)
            origin = server.origin
            blocked: list[str] = []

            def route(r):
                if r.request.url.startswith(origin + "/") or r.request.url.startswith("data:"):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort("blockedbyclient")

            context.route("**/*", route)

            for page_name in pages:
                report = PageReport(page_name)
                reports.append(report)
                target = html_dir / f"{page_name}.html"
                if not target.is_file():
                    report.problems.append(f"not built: {target} is missing")
                    continue
                t0 = time.perf_counter()
                console, page_errors, failed, bad_status = [], [], [], []
                blocked.clear()
                page = context.new_page()
                page.on("console", lambda m, c=console: c.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, p=page_errors: p.append(str(e)))
                page.on(
                    "requestfailed",
                    lambda r, f=failed: f.append(f"{r.url} ({r.failure})")
                    if r.url.startswith(origin) else None,
                )
                page.on("response", lambda r, b=bad_status: b.append(f"{r.status} {r.url}") if r.status >= 400 else None)
                page.goto(f"{origin}/{page_name}.html", wait_until="load")
                waited = page.evaluate(WAIT_FOR_PAGE)
                page.wait_for_timeout(300)  # let late console messages arrive
                probe = page.evaluate(PAGE_PROBE, [MIN_SCALE, STYLE_FONT_PX])
                if screenshots is not None:
                    shot = screenshots / (page_name.replace("/", "__") + ".png")
                    page.screenshot(path=str(shot), full_page=True)
                    report.screenshot = str(shot)
                page.close()
                report.seconds = time.perf_counter() - t0

                if waited:
                    report.problems.append(waited)
                report.add("console errors", console)
                report.add("uncaught exceptions", page_errors)
                report.add("failed requests", failed)
                report.add("HTTP errors", bad_status)
                report.add("requests to other hosts (the offline build must not need them)", sorted(set(blocked)))
                # Images
                report.n_images = len(probe["images"])
                report.add(
                    "images not loaded",
                    [i["src"] for i in probe["images"] if not i["complete"] or i["width"] <= 0],
                )
                # Math
                report.n_math = probe["nMath"]
                if probe["nContainers"] != probe["nMath"]:
                    report.problems.append(
                        f"{probe['nContainers']} mjx-container for {probe['nMath']} math nodes"
                    )
                report.add("math nodes not typeset", probe["untypeset"])
                report.add("MathJax output outside math nodes", probe["stray"])
                report.add("MathJax errors", probe["mjxErrors"])
                report.add("raw TeX in the text", probe["rawTex"])
                # References and glue
                report.add("'??' in the text", probe["questionMarks"])
                report.add("unprocessed MyST roles", probe["rawRoles"])
                report.add("unresolved references / docutils errors", probe["unresolved"])
                report.add("glue leftovers", probe["glueText"])
                report.add("empty glued values", probe["glueEmpty"])
                report.add("figures without content", probe["emptyFigures"])
                report.add("tracebacks in outputs", probe["tracebacks"])
                # Layout, at this viewport width: warnings unless strict.
                report.add("figures shrunk below legibility", probe["shrunk"], warning=not strict)
                report.add("display equations wider than the column (clipped)", probe["wideMath"], warning=not strict)
                report.add("tables wider than the column", probe["wideTables"], warning=not strict)
                visited[target.resolve()] = {"ids": set(probe["ids"]), "numbers": probe["numbers"]}
                pending_links.append((report, probe))
        finally:
            browser.close()

    # Links are checked once every page has been seen, so that targets' numbers are known.
    for report, probe in pending_links:
        broken, mismatched, external = [], [], 0
        for link in probe["links"]:
            raw = link["raw"] or ""
            if raw.startswith(("javascript:", "mailto:", "data:", "tel:")) or raw == "#":
                continue
            resolved = _resolve_local(link["href"], origin, html_dir)
            if resolved is None:
                external += 1
                continue
            report.n_links += 1
            target, fragment = resolved
            if not target.is_file():
                broken.append(f"{raw} (no file {target.relative_to(html_dir)})")
                continue
            if not fragment:
                continue
            info = visited.get(target.resolve())
            ids = info["ids"] if info else (ids_of_file(target) if target.suffix == ".html" else None)
            if ids is None:
                continue
            if fragment not in ids:
                broken.append(f"{raw} (no anchor #{fragment})")
                continue
            if link["kind"] and info is not None:
                report.n_refs += 1
                shown = info["numbers"].get(fragment)
                if shown is None:
                    mismatched.append(f"{raw}: the target shows no number")
                elif not _number(shown) or _number(shown) != _number(link["text"]):
                    mismatched.append(f"{raw}: link says {link['text']!r}, target shows {shown!r}")
        report.add("broken internal links", broken)
        report.add("cross-references whose number differs from the target's", mismatched)
    return reports


def _number(s: str) -> str:
    """The number part of an equation/figure label: '(2.1)' -> '2.1', 'Fig. 1.3 ' -> '1.3'."""
    m = re.search(r"\d+(?:\.\d+)*", s)
    return m.group(0) if m else ""


def print_summary(reports: list[PageReport], out=sys.stdout) -> None:
    print(f"{'page':40s} {'imgs':>5s} {'math':>5s} {'links':>6s} {'refs':>5s} {'s':>5s}  result", file=out)
    for r in reports:
        status = "ok" if not r.problems else f"FAIL ({len(r.problems)})"
        print(f"{r.page:40s} {r.n_images:5d} {r.n_math:5d} {r.n_links:6d} {r.n_refs:5d} {r.seconds:5.1f}  {status}", file=out)
        for p in r.problems:
            print(f"    - {p}", file=out)
        for w in r.warnings:
            print(f"    ~ warning: {w}", file=out)
    n_fail = sum(bool(r.problems) for r in reports)
    print(
        f"{len(reports)} pages, {sum(r.n_images for r in reports)} images, {sum(r.n_math for r in reports)} "
        f"equations, {sum(r.n_links for r in reports)} internal links, {sum(r.n_refs for r in reports)} "
        f"numbered references checked; {n_fail} page(s) with problems, "
        f"{sum(len(r.warnings) for r in reports)} layout warning(s)",
        file=out,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    ap.add_argument("--toc", type=Path, default=ROOT / "_toc.yml")
    ap.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    ap.add_argument("--pages", nargs="*", help="docnames to check (default: every page in the toc)")
    ap.add_argument("--json", type=Path, help="also write the reports as JSON here")
    ap.add_argument("--is-fresh", action="store_true", help="only tell whether the offline build is up to date")
    ap.add_argument("--strict", action="store_true", help="layout warnings (shrunk figures, clipped equations, wide tables) fail too")
    args = ap.parse_args(argv)

    if args.is_fresh:
        fresh, why = is_fresh(args.html)
        print(f"check_browser: {'reusing' if fresh else 'rebuilding'} {args.html}: {why}")
        return 0 if fresh else 1
    if not Path(CHROMIUM).exists():
        print(f"check_browser: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 2
    pages = args.pages or toc_pages(args.toc)
    reports = check_pages(args.html, pages, args.screenshots, strict=args.strict)
    print_summary(reports)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in reports], indent=1))
    print(f"screenshots: {args.screenshots}")
    n_fail = sum(bool(r.problems) for r in reports)
    print(f"browser: {len(reports) - n_fail} passed, {n_fail} failed")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
