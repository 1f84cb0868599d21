"""Dask worker preload for tests/test_dask.py: holds every scan task at a gate the test opens.

Loaded with ``dask worker --preload tests/_dask_gate_preload.py`` and the environment variable
``NNCOSMO_TEST_GATE`` naming a directory. Every task of :mod:`nncosmo_helpers.scans.distributed`
first writes ``started-<pid>-<n>.json`` (its worker's pid and its configurations) into that
directory, then waits while ``<dir>/closed`` exists (at most 120 s), then runs. The test can so kill a
worker that is certainly holding a task.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

from nncosmo_helpers.scans import distributed as D

_count = itertools.count()


def dask_setup(worker):
    gate = Path(os.environ["NNCOSMO_TEST_GATE"])
    run_group = D.run_group

    def gated_run_group(fig, profile, root, configs):
        name = f"started-{os.getpid()}-{next(_count)}.json"
        tmp = gate / f".{name}.tmp"
        tmp.write_text(json.dumps({"pid": os.getpid(), "fig": fig, "configs": configs}))
        os.replace(tmp, gate / name)
        deadline = time.monotonic() + 120
        while (gate / "closed").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return run_group(fig, profile, root, configs)

    D.run_group = gated_run_group
