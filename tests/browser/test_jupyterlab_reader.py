"""A reader runs each chapter in JupyterLab, in a real browser, and sees what the book page shows.

The path is the README's ("Reading the book in JupyterLab"): ``jupytext-config set-default-viewer``
(written into a temporary Jupyter config directory), ``jupyter lab``, open ``book/<chapter>.md`` -- it
opens as a notebook -- and *Run -> Run All Cells*. The server runs on 127.0.0.1 with a token, with
temporary settings, runtime and workspace directories, and is stopped at the end; Debian's Chromium
(headless, through the ``playwright`` package) may reach nothing but that server.

For every page of ``_toc.yml`` except the bibliography (a Sphinx ``{bibliography}`` directive, which
exists only in the built book) the test checks, on the screen:

* the file opened as a notebook, every code cell ran (a number in its prompt), no cell shows an error;
  a page of prose (the intro: plain Markdown without a kernelspec, its code blocks are shell commands
  for the reader, not Python) is opened without a kernel and not run, and every other check applies;
* every markdown cell is rendered by jupyterlab-myst and shows no raw MyST: no role or directive
  markup, no ``:label:``-style option lines, no unknown directive, no cross-reference left
  unresolved, no un-typeset or failed math;
* every ``{eval}`` value is there: no expression left as code (jupyterlab-myst shows the expression
  until the kernel has answered), no evaluation error. jupyterlab-myst sometimes does not redraw a
  markdown cell whose values arrived during *Run All* (jupyter-book/jupyterlab-myst#175, #289); the
  test then runs those markdown cells once more, as the README tells a reader to, and reports how many;
* every figure of the chapter (each ``{figure}`` with ``:glue:``) is an image, loaded, in the output
  of the cell that glues it, and the markdown shows its caption;
* a screenshot of the whole notebook goes to ``_build/screenshots/jupyterlab/<chapter>.png``, and a
  summary (per chapter: time, cells, values, figures, problems) to ``summary.json`` next to them.

Run by ``make check-browser`` (which sets ``NNCOSMO_JUPYTERLAB_BROWSER=1``; without it the test is
skipped, so ``make test`` does not run it). Chapters run one after another on one server, each on a
fresh kernel that is shut down afterwards; quick profile, about a minute of execution per chapter.
``NNCOSMO_JUPYTERLAB_CHAPTERS="book/continuous_limit.md ..."`` restricts the chapters.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHOTS = ROOT / "_build" / "screenshots" / "jupyterlab"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
RUN_TIMEOUT = float(os.environ.get("NNCOSMO_JUPYTERLAB_RUN_TIMEOUT", 900))  # s per chapter
LOAD_TIMEOUT = 600  # s: JupyterLab, the notebook and its kernel, on a busy machine
VIEWPORT = {"width": 1280, "height": 1000}

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("NNCOSMO_JUPYTERLAB_BROWSER") != "1",
        reason="JupyterLab in a browser: run by `make check-browser` (NNCOSMO_JUPYTERLAB_BROWSER=1)",
    ),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs {CHROMIUM} (make check-browser installs it)"),
]


def _toc_pages() -> list[Path]:
    spec = importlib.util.spec_from_file_location("nbval_chapters", ROOT / "tools" / "nbval_chapters.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    # Every page, the intro (the root page: prose, no kernel) included; not the bibliography, a Sphinx
    # {bibliography} directive that exists only in the built book.
    return [p for p in tool.toc_chapters() if tool.is_notebook(p) or "{bibliography}" not in p.read_text()]


def _chapters() -> list[Path]:
    chosen = os.environ.get("NNCOSMO_JUPYTERLAB_CHAPTERS")
    if chosen:
        return [ROOT / c for c in chosen.split()]
    return _toc_pages()


# --------------------------------------------------------------------------------------------------
# What the source says the reader must see


def expected(md: Path) -> dict:
    """From the MyST source: figure keys (and the index of the cell gluing each), the number of
    ``{eval}`` roles, and whether the page is prose (no kernelspec: opened without a kernel, not run)."""
    import jupytext

    nb = jupytext.read(md)
    text = md.read_text()
    figures = re.findall(r"^(?:`{3,}|:{3,})\{figure\}[^\n]*\n(?::[\w-]+:.*\n)*?:glue:\s*(\S+)", text, re.M)
    glue_cell = {}
    for key in figures:
        pattern = re.compile(r"""\bglue\(\s*["']%s["']""" % re.escape(key))
        cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and pattern.search(c.source)]
        glue_cell[key] = cells[0] if cells else None
    return {
        "figures": figures,
        "glue_cell": glue_cell,
        "n_eval": sum(len(re.findall(r"\{eval\}`", c.source)) for c in nb.cells if c.cell_type == "markdown"),
        "n_cells": len(nb.cells),
        "n_code": sum(c.cell_type == "code" for c in nb.cells),
        "prose": "kernelspec" not in nb.metadata,
    }


# --------------------------------------------------------------------------------------------------
# The server


def _lab_server():
    spec = importlib.util.spec_from_file_location("lab_server", ROOT / "tests" / "lab_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` as the README starts it, after ``jupytext-config set-default-viewer``."""
    server = _lab_server()
    env = server.lab_env(tmp_path_factory.mktemp("jupyterlab"))
    env.pop("MPLBACKEND", None)  # the kernel's inline backend, as for a reader
    # The README's one-time step: MyST files open as notebooks on a double click (or /lab/tree/...).
    subprocess.run([str(BIN / "jupytext-config"), "set-default-viewer"], env=env, check=True,
                   capture_output=True)
    overrides_file = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig" / "default_setting_overrides.json"
    overrides = json.loads(overrides_file.read_text())
    assert overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["markdown"] == "Jupytext Notebook"
    # Test-only settings: never save (the chapters are the repository's files), no news pop-up, and
    # every cell in the page (no virtual scrolling), so that the whole notebook can be inspected.
    overrides["@jupyterlab/docmanager-extension:plugin"]["autosave"] = False
    overrides["@jupyterlab/apputils-extension:notification"] = {"fetchNews": "false", "checkForUpdates": False}
    overrides["@jupyterlab/notebook-extension:tracker"] = {"windowingMode": "none"}
    overrides_file.write_text(json.dumps(overrides, indent=1))
    SHOTS.mkdir(parents=True, exist_ok=True)
    with server.jupyter_lab(env, SHOTS / "server.log", start_timeout=120) as running:  # log kept for CI
        yield running


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def summary():
    results: dict[str, dict] = {}
    yield results
    if results:
        SHOTS.mkdir(parents=True, exist_ok=True)
        old = json.loads((SHOTS / "summary.json").read_text()) if (SHOTS / "summary.json").exists() else {}
        old.update(results)
        (SHOTS / "summary.json").write_text(json.dumps(old, indent=1))
        print("\nJupyterLab reader check")
        print(f"{'page':34s} {'time':>6s} {'code':>5s} {'values':>7s} {'figures':>8s} {'re-run':>6s} problems")
        for name, r in results.items():
            print(f"{name:34s} {r['seconds']:6.0f} {r['code_cells']:5d} {r['values_shown']:3d}/{r['values']:<3d}"
                  f" {r['figures_shown']:3d}/{r['figures']:<3d} {r['markdown_rerun']:6d} {len(r['problems'])}")


# --------------------------------------------------------------------------------------------------
# In the page

PROBE = r"""
() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return null;
  const cells = Array.from(nb.querySelectorAll(':scope .jp-Cell'));
  const out = {cells: [], markdown: [], code: []};
  cells.forEach((cell, i) => {
    const isCode = cell.classList.contains('jp-CodeCell');
    const isMd = cell.classList.contains('jp-MarkdownCell');
    out.cells.push(isCode ? 'code' : isMd ? 'markdown' : 'raw');
    if (isCode) {
      const prompt = (cell.querySelector('.jp-InputPrompt') || {}).textContent || '';
      const outputs = Array.from(cell.querySelectorAll('.jp-OutputArea-output'));
      const imgs = Array.from(cell.querySelectorAll('.jp-OutputArea-output img'));
      const errors = outputs
        .filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr')
        .map(o => o.textContent)
        .filter(t => /Traceback \(most recent call last\)|^\w*(Error|Exception)\b.*:/m.test(t));
      out.code.push({index: i, prompt: prompt.trim(), errors,
        images: imgs.length, imagesLoaded: imgs.filter(im => im.complete && im.naturalWidth > 0).length});
    }
    if (isMd) {
      const myst = cell.querySelector('.myst');
      const rendered = !!myst && !cell.querySelector('.jp-InputArea-editor:not(.lm-mod-hidden)');
      let text = '';
      const rawTex = [];
      if (myst) {
        // visible text, without typeset math and code
        const clone = myst.cloneNode(true);
        clone.querySelectorAll('.katex, .katex-display, code, pre, svg').forEach(n => n.remove());
        text = clone.textContent;
      }
      const pending = myst ? Array.from(myst.querySelectorAll('code'))
        .map(c => c.textContent).filter(t => /^\s*glued\[/.test(t)) : [];
      out.markdown.push({
        index: i, rendered, text,
        pending,
        evalErrors: myst ? Array.from(myst.querySelectorAll('.myst-RenderedExpressionError, [data-mime-type="application/vnd.jupyter.stderr"]')).map(e => e.textContent) : [],
        unresolved: myst ? Array.from(myst.querySelectorAll('[title="Cross Reference Not Found"]')).map(e => e.textContent) : [],
        mathErrors: myst ? Array.from(myst.querySelectorAll('.katex-error, .math-error, [class*="text-red"]')).map(e => e.textContent) : [],
        math: myst ? myst.querySelectorAll('.katex').length : 0,
        figures: myst ? Array.from(myst.querySelectorAll('figure')).map(f => (f.querySelector('figcaption') || f).textContent.slice(0, 80)) : [],
      });
    }
  });
  const ind = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
  out.kernel = ind ? ind.getAttribute('data-status') : null;
  return out;
}
"""

RAW = [
    (re.compile(r"\{[a-z][\w:-]*\}`"), "a MyST role"),
    (re.compile(r"(```|:::)"), "a directive fence"),
    (re.compile(r"^\s*:(label|name|glue|tags|class|width|align):", re.M), "a directive option line"),
    (re.compile(r"Unknown (Directive|Role)", re.I), "an unknown directive or role"),
    (re.compile(r"\\(begin|frac|label|ref|eqref|mathrm|dot|ddot)\b|\$\$|\$[^$\n]+\$"), "raw TeX"),
    (re.compile(r"\bglued\["), "an {eval} expression"),
]


def _problems(probe: dict, exp: dict) -> tuple[list[str], dict]:
    problems, counts = [], {"figures_shown": 0, "values_shown": 0, "math": 0}
    if not probe:
        return ["no notebook on the screen"], counts
    code = probe["code"]
    unrun = [c["index"] for c in code if not re.fullmatch(r"\[\d+\]:", c["prompt"])]
    if unrun and not exp["prose"]:
        problems.append(f"code cells not run (prompt not a number): {unrun[:10]}")
    for c in code:
        for e in c["errors"]:
            problems.append(f"cell {c['index']}: error output: {e[:300]}")
    for m in probe["markdown"]:
        where = f"markdown cell {m['index']}"
        if not m["rendered"]:
            problems.append(f"{where}: not rendered")
        for pattern, what in RAW:
            for hit in pattern.finditer(m["text"]):
                line = m["text"][max(0, hit.start() - 40): hit.end() + 40].replace("\n", " ")
                problems.append(f"{where}: {what} in the rendered text: ...{line}...")
        for p in m["pending"]:
            problems.append(f"{where}: value not shown: {p}")
        for e in m["evalErrors"]:
            problems.append(f"{where}: evaluation error: {e[:200]}")
        for u in m["unresolved"]:
            problems.append(f"{where}: unresolved cross-reference: {u}")
        for e in m["mathErrors"]:
            problems.append(f"{where}: math error: {e[:200]}")
    by_index = {c["index"]: c for c in code}
    shown = 0
    for key, cell in exp["glue_cell"].items():
        c = by_index.get(cell)
        if cell is None or c is None:
            problems.append(f"figure {key}: no code cell glues it")
        elif c["imagesLoaded"] < 1:
            problems.append(f"figure {key}: no image in the output of cell {cell} (images: {c['images']}, loaded: "
                            f"{c['imagesLoaded']}; JupyterLab shows only a cell's first 50 outputs, each glue is one)")
        else:
            shown += 1
    captions = sum(len(m["figures"]) for m in probe["markdown"])
    if captions < len(exp["figures"]):
        problems.append(f"{captions} figure captions rendered, {len(exp['figures'])} figures in the source")
    counts.update(
        figures_shown=shown,
        values_shown=exp["n_eval"] - sum(len(m["pending"]) + len(m["evalErrors"]) for m in probe["markdown"]),
        math=sum(m["math"] for m in probe["markdown"]),
    )
    return problems, counts


def _screenshot(page, path: Path) -> None:
    """The whole notebook, stitched from viewport-high slices of its scroller."""
    from PIL import Image

    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    box = page.locator(scroller).bounding_box()
    total = page.eval_on_selector(scroller, "e => e.scrollHeight")
    height = int(box["height"])
    slices, offsets, y = [], [], 0
    while True:
        top = page.eval_on_selector(scroller, f"e => {{ e.scrollTop = {y}; return e.scrollTop; }}")
        page.wait_for_timeout(300)
        tmp = path.with_suffix(f".part{len(slices)}.png")
        page.screenshot(path=str(tmp), clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": height})
        slices.append(tmp)
        offsets.append(top)
        if top + height >= total or len(slices) >= 60:
            break
        y = top + height
    image = Image.new("RGB", (int(box["width"]), min(total, offsets[-1] + height)), "white")
    for tmp, top in zip(slices, offsets):
        image.paste(Image.open(tmp), (0, top))
        tmp.unlink()
    image.save(path, optimize=True)


def _wait_for_kernel(page, base: str, token: str, name: str, timeout: float) -> None:
    """Until the server has a session for the file ``name`` whose kernel is idle and connected.

    (JupyterLab 4 names a session's path by a unique id in the file's folder, so match the name.)
    Waits with ``page.wait_for_timeout``: playwright's sync API serves the page's requests (the route
    that blocks other hosts) only while a playwright call runs, so a plain sleep would stall the page.
    """
    import requests

    deadline = time.monotonic() + timeout
    sessions: list = []
    while time.monotonic() < deadline:
        sessions = requests.get(f"{base}/api/sessions", headers={"Authorization": f"token {token}"}, timeout=30).json()
        kernels = [s["kernel"] for s in sessions if s.get("name") == name and s.get("kernel")]
        if kernels and all(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels):
            return
        page.wait_for_timeout(1000)
    raise AssertionError(f"no idle kernel for {name} within {timeout:.0f} s; sessions: {sessions}")


def _run_all(page) -> None:
    page.click("#jp-MainMenu >> text=Run")
    page.click(".lm-Menu-content >> text=Run All Cells")


def _wait_until_run(page, exp: dict, deadline: float) -> dict:
    """Until the kernel is idle with every code cell numbered (or idle and stopped on an error)."""
    idle_since = None
    while True:
        probe = page.evaluate(PROBE)
        numbered = probe and all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in probe["code"])
        busy = not probe or probe["kernel"] not in ("idle", None) or any(c["prompt"] == "[*]:" for c in probe["code"])
        if not busy:
            idle_since = idle_since or time.monotonic()
            # numbered and idle: done; idle for 10 s without all numbered: stopped (an error)
            if numbered and time.monotonic() - idle_since > 2 or time.monotonic() - idle_since > 10:
                return probe
        else:
            idle_since = None
        if time.monotonic() > deadline:
            return probe
        page.wait_for_timeout(1000)


def _rerun_markdown(page, indices: list[int]) -> None:
    """Run these markdown cells again (select, Ctrl+Enter), as a reader would."""
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook > .jp-WindowedPanel-outer .jp-Cell")
    for i in indices:
        cell = cells.nth(i)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-Cell-inputCollapser").click()  # selects the cell without editing it
        page.keyboard.press("Control+Enter")
        page.wait_for_timeout(300)


@pytest.mark.parametrize("md", _chapters(), ids=lambda p: p.stem)
def test_chapter_reads_like_its_book_page_in_jupyterlab(md, lab, browser, summary):
    import requests

    base, token = lab
    rel = md.relative_to(ROOT).as_posix()
    exp = expected(md)
    host = urlsplit(base).netloc
    context = browser.new_context(viewport=VIEWPORT)
    blocked: list[str] = []

    def route(r):
        if urlsplit(r.request.url).netloc == host:
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    t0 = time.monotonic()
    try:
        # ?reset: a clean workspace, so only this chapter is open (and only its kernel runs).
        page.goto(f"{base}/lab/tree/{quote(rel)}?reset&token={token}")
        # Everything loaded (on a busy machine this takes a while): all cells, then the kernel.
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=LOAD_TIMEOUT * 1000)
        assert page.evaluate("() => !!document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')"), (
            f"{rel} did not open as a notebook (is the jupytext default viewer set?)")
        page.wait_for_function(
            "n => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length === n",
            arg=exp["n_cells"], timeout=LOAD_TIMEOUT * 1000)
        if exp["n_code"] and not exp["prose"]:
            _wait_for_kernel(page, base, token, md.name, LOAD_TIMEOUT)
            page.wait_for_function(
                "() => /\\| Idle/.test((document.querySelector('#jp-main-statusbar') || {}).textContent || '')",
                timeout=LOAD_TIMEOUT * 1000)
            loaded = time.monotonic() - t0
            _run_all(page)
            probe = _wait_until_run(page, exp, time.monotonic() + RUN_TIMEOUT)
        else:
            # A page of prose (the intro) has no kernelspec: JupyterLab asks for a kernel; it needs none
            # (its code blocks are shell commands for the reader).
            page.wait_for_timeout(3000)
            buttons = page.locator(".jp-Dialog").get_by_role("button", name=re.compile("No Kernel|Cancel"))
            if buttons.count():
                buttons.first.click()
            elif page.locator(".jp-Dialog").count():
                page.keyboard.press("Escape")
            loaded = time.monotonic() - t0
        dialogs = page.locator(".jp-Dialog").all_inner_texts()
        if dialogs:
            page.screenshot(path=str(SHOTS / f"{md.stem}-dialog.png"))
            raise AssertionError(f"{rel}: a dialog appeared while running: {dialogs}")
        ran = time.monotonic() - t0 - loaded
        # Values whose markdown cell was not redrawn: run those cells again (jupyterlab-myst#175/#289).
        page.wait_for_timeout(1000)
        probe = page.evaluate(PROBE)
        stale = [m["index"] for m in probe["markdown"] if m["pending"]] if probe else []
        if stale:
            _rerun_markdown(page, stale)
            page.wait_for_timeout(2000)
            probe = page.evaluate(PROBE)
        problems, counts = _problems(probe, exp)
        problems += [f"uncaught error in the page: {e}" for e in page_errors]
        problems += [f"request to another host: {u}" for u in blocked]
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / f"{md.stem}.png"
        _screenshot(page, shot)
    finally:
        # Shut this chapter's kernel down (closing the page does not), then close the page.
        auth = {"Authorization": f"token {token}"}
        for s in requests.get(f"{base}/api/sessions", headers=auth, timeout=30).json():
            if s.get("name") == md.name:
                requests.delete(f"{base}/api/sessions/{s['id']}", headers=auth, timeout=60)
        context.close()
    summary[md.stem] = dict(
        seconds=round(time.monotonic() - t0), load_seconds=round(loaded), run_seconds=round(ran), code_cells=exp["n_code"],
        values=exp["n_eval"], figures=len(exp["figures"]), markdown_rerun=len(stale),
        screenshot=str(shot.relative_to(ROOT)), problems=problems, **counts,
    )
    assert not problems, f"{rel} in JupyterLab:\n" + "\n".join(problems[:40])
