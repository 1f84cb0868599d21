"""A reader opens a chapter in JupyterLab and runs it: everything goes through a real Jupyter server.

Starts ``jupyter lab`` on 127.0.0.1 (a free port, a token, a temporary runtime/config dir, no
browser), then, as JupyterLab's front end would:

1. opens one chapter's MyST source through the contents API as a notebook
   (``GET /api/contents/book/<chapter>.md?type=notebook``) -- this is jupytext's contents manager
   at work; without it the server answers 400 for a ``.md`` file asked as a notebook;
2. starts a session (and so a kernel, in ``book/``) through ``/api/sessions``;
3. runs every code cell over the kernel's websocket channel and checks that none errors, that the
   glued values (myst-nb ``glue``) are produced, and that the outputs of the cells marked
   ``# NBVAL_CHECK_OUTPUT`` equal the stored reference in ``tests/nbval/`` when there is one;
4. shuts the session, the kernel and the server down.

The chapter is ``book/continuous_limit.md`` (one of the quickest) when ``_toc.yml`` lists it, else the
listed jupytext chapter with the fewest code cells; ``NNCOSMO_LAB_CHAPTER=book/<name>.md`` overrides.
Quick profile; about 90 s on two busy cores, nearly all of it the chapter's own execution.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest

# The project's own machinery, not its results: run by `make check-tooling` (and CI), not `make test`.
pytestmark = pytest.mark.tooling
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARK = "# NBVAL_CHECK_OUTPUT"
CELL_TIMEOUT = 600  # s; the quick profile runs a whole chapter in about a minute


def _toc_chapters() -> list[Path]:
    """The notebook chapters of _toc.yml, as tools/nbval_chapters.py (the nbval harness) lists them."""
    spec = importlib.util.spec_from_file_location("nbval_chapters", ROOT / "tools" / "nbval_chapters.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return [p for p in tool.toc_chapters() if tool.is_notebook(p)]


#: The chapter run by default: one of the quickest (about a minute in the quick profile).
DEFAULT_CHAPTER = ROOT / "book" / "continuous_limit.md"


def _chapter() -> Path | None:
    chosen = os.environ.get("NNCOSMO_LAB_CHAPTER")
    if chosen:
        return ROOT / chosen
    chapters = _toc_chapters()
    if DEFAULT_CHAPTER in chapters:
        return DEFAULT_CHAPTER
    # Otherwise the chapter with the fewest code cells.
    return min(chapters, key=lambda p: p.read_text().count("```{code-cell}")) if chapters else None


def _lab_server():
    spec = importlib.util.spec_from_file_location("lab_server", ROOT / "tests" / "lab_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def lab(tmp_path):
    """A running ``jupyter lab``: yields (base_url, token); stops it afterwards (tests/lab_server.py)."""
    server = _lab_server()
    env = server.lab_env(tmp_path, MPLBACKEND="module://matplotlib_inline.backend_inline")
    with server.jupyter_lab(env, tmp_path / "server.log") as running:
        yield running


class KernelChannel:
    """The kernel's websocket channel on the Jupyter server (legacy JSON protocol)."""

    def __init__(self, base: str, token: str, kernel_id: str):
        import websocket  # websocket-client, a jupyter_server dependency

        self.session = uuid.uuid4().hex
        url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels?session_id={self.session}"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {token}"], timeout=CELL_TIMEOUT)

    def execute(self, code: str) -> tuple[str, list[dict]]:
        """Run ``code``; return the execute_reply status and the outputs, as a notebook would store them."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {
                "msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": self.session,
                "date": datetime.now(timezone.utc).isoformat(), "version": "5.3",
            },
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        outputs, status, idle = [], None, False
        while status is None or not idle:
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if msg["channel"] == "shell" and kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("display_data", "execute_result"):
                outputs.append({"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})})
            elif kind == "error":
                outputs.append({"output_type": "error", "ename": content["ename"], "evalue": content["evalue"]})
        return status, outputs

    def close(self) -> None:
        self.ws.close()


def _text(outputs: list[dict]) -> str:
    parts = []
    for o in outputs:
        if o["output_type"] == "stream" and o["name"] == "stdout":
            parts.append(o["text"])
        elif o["output_type"] in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
            if "scrapbook" not in o.get("metadata", {}):
                data = o["data"]["text/plain"]
                parts.append("".join(data) if isinstance(data, list) else data)
    return "".join(parts).strip()


@pytest.mark.slow  # ~90-120 s on two busy cores, almost all of it the chapter's own execution
def test_chapter_opens_and_runs_in_jupyterlab(lab):
    chapter = _chapter()
    if chapter is None:
        pytest.skip("no jupytext chapter is listed in _toc.yml yet")
    base, token = lab
    auth = {"Authorization": f"token {token}"}
    rel = chapter.relative_to(ROOT).as_posix()
    t0 = time.monotonic()

    # JupyterLab itself is served.
    assert requests.get(f"{base}/lab", headers=auth, timeout=30).status_code == 200

    # 1. The MyST source comes back as a notebook (jupytext's contents manager).
    r = requests.get(f"{base}/api/contents/{rel}", params={"type": "notebook", "content": 1}, headers=auth, timeout=60)
    assert r.status_code == 200, f"{rel} did not open as a notebook: {r.status_code} {r.text[:500]}"
    model = r.json()
    assert model["type"] == "notebook" and model["format"] == "json"
    nb = nbformat.from_dict(model["content"])
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells and any(c.cell_type == "markdown" for c in nb.cells)
    assert nb.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name") == "myst"

    # 2. A session on that file starts a kernel in the file's folder, as JupyterLab does.
    r = requests.post(f"{base}/api/sessions", headers=auth, timeout=60, json={
        "path": rel, "name": chapter.name, "type": "notebook", "kernel": {"name": "python3"},
    })
    assert r.status_code == 201, r.text
    session = r.json()
    channel = KernelChannel(base, token, session["kernel"]["id"])
    try:
        # 3. Every code cell, in order.
        results = []
        for i, cell in enumerate(code_cells):
            status, outputs = channel.execute(cell.source)
            errors = [o for o in outputs if o["output_type"] == "error"]
            assert status == "ok" and not errors, f"cell {i} of {rel} failed: {errors}\n{cell.source[:500]}"
            results.append((cell, outputs))
    finally:
        channel.close()
        requests.delete(f"{base}/api/sessions/{session['id']}", headers=auth, timeout=30)
        requests.delete(f"{base}/api/kernels/{session['kernel']['id']}", headers=auth, timeout=30)
    elapsed = time.monotonic() - t0

    # Key outputs: the glued values the prose shows ...
    glued = [o for _, outs in results for o in outs if "scrapbook" in o.get("metadata", {})]
    if "glue(" in chapter.read_text():
        assert glued, f"{rel} glues values, but running it in JupyterLab produced none"
    # ... and the checked printouts, equal to the stored reference (when the chapter has one).
    ref_path = ROOT / "tests" / "nbval" / (chapter.stem + ".ipynb")
    if ref_path.exists():
        ref_cells = [c for c in nbformat.read(ref_path, as_version=4).cells if c.cell_type == "code" and MARK in c.source]
        ran = [(c, outs) for c, outs in results if MARK in c.source]
        assert len(ran) == len(ref_cells), f"{len(ran)} checked cells in {rel}, {len(ref_cells)} in {ref_path.name}"
        for (cell, outs), ref in zip(ran, ref_cells):
            assert _text(outs) == _text(ref.outputs), f"output differs from {ref_path.name}:\n{cell.source[:300]}"
    print(f"{rel}: {len(code_cells)} code cells, {len(glued)} glued values in {elapsed:.0f} s")
