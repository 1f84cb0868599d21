"""A ``jupyter lab`` server for the tests that open chapters in JupyterLab (not a test module).

Used by tests/test_jupyterlab.py (kernel protocol) and tests/browser/test_jupyterlab_reader.py (a
browser): 127.0.0.1, a free port, a token, temporary runtime/config/settings/workspace directories
(``~/.jupyter`` is not read; the virtual environment's configuration is), no browser, ``--allow-root``
when run as root (CI); the server, and with it its kernels, is stopped on exit.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_env(state: Path, **extra: str) -> dict:
    """The environment of the server (and of ``jupytext-config``): Jupyter's directories under ``state``."""
    env = dict(os.environ)
    env.update(
        NNCOSMO_PROFILE=env.get("NNCOSMO_PROFILE", "quick"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTERLAB_SETTINGS_DIR=str(state / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "lab-workspaces"),
        IPYTHONDIR=str(state / "ipython"),
        **extra,
    )
    return env


@contextmanager
def jupyter_lab(env: dict, log_path: Path, start_timeout: float = 90) -> Iterator[tuple[str, str]]:
    """Run ``jupyter lab`` with ``env``; yield (base_url, token); stop it afterwards."""
    import requests

    port, token = _free_port(), secrets.token_hex(16)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter"), "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer within {start_timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        proc.send_signal(signal.SIGTERM)  # jupyter server shuts down cleanly (kernels included)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
