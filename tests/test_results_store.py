"""Fault tests for :mod:`nncosmo_helpers.results`: SIGKILL + resume, corrupt files, concurrent scans.

The "reference" result of a configuration is a closed form of the configuration (``_expected``),
independent of the store, so a wrong, stale or half-written result is always detected.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nncosmo_helpers
from nncosmo_helpers.results import ResultStore, canonical_json

ROOT = Path(__file__).resolve().parents[1]


def _expected(config):
    x = config["x"]
    return {"square": x * x, "sine": math.sin(x), "series": [x + j / 7 for j in range(50)]}


WORKER = textwrap.dedent(
    """
    import json, math, os, sys, time, types
    # Load nncosmo_helpers/results.py (the real file) without the package __init__, which imports
    # jax/flax/diffrax and costs seconds per process; only __version__ is needed for the keys.
    pkg = types.ModuleType("nncosmo_helpers")
    pkg.__path__ = [os.path.join({root!r}, "nncosmo_helpers")]
    pkg.__version__ = {version!r}
    sys.modules["nncosmo_helpers"] = pkg
    from nncosmo_helpers.results import ResultStore
    assert "jax" not in sys.modules

    store_dir, log_path, first, last, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    configs = [{{"x": i / 3, "tag": "fault-test"}} for i in range(first, last)]

    def compute(batch):
        out = []
        for c in batch:
            with open(log_path, "a") as fh:  # one line per computed config, written before the work
                fh.write(json.dumps(c) + "\\n")
                fh.flush()
                os.fsync(fh.fileno())
            time.sleep(delay)
            x = c["x"]
            out.append({{"square": x * x, "sine": math.sin(x), "series": [x + j / 7 for j in range(50)]}})
        return out

    res = ResultStore(store_dir).run(configs, compute, group_by=lambda c: int(c["x"] * 3) // 2, progress=False)
    assert all(r is not None for r in res)
    print("DONE", len(res))
    """
)


@pytest.fixture
def worker(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER.format(root=str(ROOT), version=nncosmo_helpers.__version__))
    return path


def _configs(first, last):
    return [{"x": i / 3, "tag": "fault-test"} for i in range(first, last)]


def _logged(log: Path):
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _valid_result_files(store: ResultStore, configs):
    """Configs whose result file exists; asserts each verifies and is correct."""
    finished = []
    for c in configs:
        if store.path(c).exists():
            res = store.load(c)
            assert res is not None, f"{store.path(c)} exists but does not verify"
            assert res == json.loads(canonical_json(_expected(c)))
            finished.append(c)
    return finished


def _start(worker, store_dir, log, first, last, delay):
    return subprocess.Popen(
        [sys.executable, str(worker), str(store_dir), str(log), str(first), str(last), str(delay)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_files(store_dir: Path, n: int, proc, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(list(store_dir.glob("*.json"))) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.communicate()}")
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {n} result files")


def test_sigkill_and_resume(tmp_path, worker):
    """Kill a scan three times at different points; every resume reuses all finished configs."""
    store_dir = tmp_path / "store"
    store = ResultStore(store_dir)
    configs = _configs(0, 20)
    kill_points = [3, 8, 14]
    survived = 0
    for phase, n_files in enumerate(kill_points):
        before = {canonical_json(c) for c in _valid_result_files(store, configs)}
        log = tmp_path / f"log{phase}.jsonl"
        proc = _start(worker, store_dir, log, 0, 20, 0.12)
        _wait_for_files(store_dir, n_files, proc)
        time.sleep(0.05)  # land the kill at a varying point inside a compute call
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        computed = {canonical_json(c) for c in _logged(log)}
        assert not (computed & before), "a config finished before the kill was recomputed"
        after = {canonical_json(c) for c in _valid_result_files(store, configs)}
        assert before < after and len(after) < len(configs), "kill point did not land mid-scan"
        survived += 1

    # A stray temporary file (as left by a kill during a write) holding a complete-looking record for
    # an unfinished config must not be taken for a result.
    missing = [c for c in configs if not store.path(c).exists()]
    assert missing
    fake = dict(config=missing[0], result={"square": -1.0}, package_version="x", jax_version="x", created="x", sha256="x")
    stray = store_dir / f".{store.path(missing[0]).name}.otherhost.1.deadbeef.tmp"
    stray.write_text(json.dumps(fake))

    before = {canonical_json(c) for c in _valid_result_files(store, configs)}
    calls = []

    def compute(batch):
        calls.extend(batch)
        return [_expected(c) for c in batch]

    results = store.run(configs, compute, progress=False)
    assert {canonical_json(c) for c in calls} == {canonical_json(c) for c in configs} - before
    assert missing[0] in calls
    assert results == [json.loads(canonical_json(_expected(c))) for c in configs]
    assert len(_valid_result_files(store, configs)) == len(configs)
    assert survived == len(kill_points) == 3


def _corrupt_garbage(path):
    path.write_bytes(os.urandom(64) + b"\x00\xff")


def _corrupt_truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _corrupt_checksum(path):
    record = json.loads(path.read_text())
    record["result"]["square"] += 1e-12  # silent bit rot: still valid JSON, wrong checksum
    path.write_text(json.dumps(record))


def _corrupt_config(path):
    record = json.loads(path.read_text())
    record["config"]["x"] = 123.0  # a file that belongs to another configuration
    path.write_text(json.dumps(record))


def _corrupt_empty(path):
    path.write_bytes(b"")


def _corrupt_not_a_record(path):
    path.write_text(json.dumps([1, 2, 3]))


@pytest.mark.parametrize(
    "corrupt", [_corrupt_garbage, _corrupt_truncate, _corrupt_checksum, _corrupt_config, _corrupt_empty, _corrupt_not_a_record]
)
def test_corrupt_file_is_detected_warned_and_recomputed(tmp_path, corrupt):
    store = ResultStore(tmp_path)
    configs = _configs(0, 4)
    store.run(configs, lambda b: [_expected(c) for c in b], progress=False)
    victim = configs[2]
    path = store.path(victim)
    corrupt(path)

    calls = []

    def compute(batch):
        calls.extend(batch)
        return [_expected(c) for c in batch]

    with pytest.warns(RuntimeWarning, match=path.name):
        results = store.run(configs, compute, progress=False)
    assert calls == [victim]
    assert results == [json.loads(canonical_json(_expected(c))) for c in configs]
    assert len(list(tmp_path.glob(f"{path.name}.corrupt-*"))) == 1  # moved aside, not deleted
    assert store.load(victim) == json.loads(canonical_json(_expected(victim)))


def test_load_warns_and_returns_none(tmp_path):
    store = ResultStore(tmp_path)
    c = {"x": 1.0}
    store.save(c, {"v": 1})
    _corrupt_truncate(store.path(c))
    with pytest.warns(RuntimeWarning, match=store.path(c).name):
        assert store.load(c) is None
    assert store.load(c) is None  # moved aside: now simply missing, no second warning


def test_corrupt_file_locked_elsewhere_is_left_in_place(tmp_path):
    """A corrupt file whose lock another writer holds is reported but not moved (it is being rewritten)."""
    store, other = ResultStore(tmp_path), ResultStore(tmp_path)
    c = {"x": 2.0}
    store.save(c, _expected(c))
    _corrupt_garbage(store.path(c))
    fd = other._try_lock(other.key(c))
    assert fd is not None
    try:
        with pytest.warns(RuntimeWarning, match="holds its lock"):
            assert store.load(c) is None
        assert store.path(c).exists() and not list(tmp_path.glob("*.corrupt-*"))
    finally:
        other._unlock(fd)
    with pytest.warns(RuntimeWarning, match="moved to"):
        assert store.load(c) is None
    assert not store.path(c).exists() and len(list(tmp_path.glob("*.corrupt-*"))) == 1


def test_concurrent_scans_same_directory(tmp_path, worker):
    """Two processes over overlapping configs: all files verify, each config computed exactly once."""
    store_dir = tmp_path / "store"
    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    procs = [_start(worker, store_dir, logs[0], 0, 24, 0.03), _start(worker, store_dir, logs[1], 10, 34, 0.03)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "DONE 24" in out
    store = ResultStore(store_dir)
    configs = _configs(0, 34)
    assert len(_valid_result_files(store, configs)) == 34
    assert len(list(store_dir.glob("*.json"))) == 34
    computed = [canonical_json(c) for log in logs for c in _logged(log)]
    assert sorted(computed) == sorted(canonical_json(c) for c in configs)  # no duplicate work (flock)
    assert not list(store_dir.glob("*.tmp"))


def test_diverged_result_round_trips_and_nan_is_rejected(tmp_path):
    store = ResultStore(tmp_path)
    cfg = {"eta": 3.0, "beta": 0.5, "width": 64}
    diverged = {"diverged": True, "divergence_step": 17, "stability_ratio": 1.5, "f": [0.1, 0.3, -2.0]}
    store.save(cfg, diverged)
    assert store.load(cfg) == diverged
    record = json.loads(store.path(cfg).read_text())
    assert set(record) >= {"config", "result", "package_version", "jax_version", "created", "sha256"}
    with pytest.raises(ValueError, match="NaN"):
        store.save({"eta": 4.0}, {"f": [1.0, float("nan")]})
    with pytest.raises(ValueError):
        store.save({"eta": 4.0}, {"f": float("inf")})
    assert not store.path({"eta": 4.0}).exists()


def test_records_name_the_computing_process(tmp_path):
    """Provenance: every record carries the host and pid of the process that computed it, at the top level."""
    store = ResultStore(tmp_path)
    store.run(_configs(0, 3), lambda b: [_expected(c) for c in b], progress=False)
    # the same store written from a child process records the child's pid, not ours
    code = (f"from nncosmo_helpers.results import ResultStore; import os; "
            f"ResultStore({str(tmp_path)!r}).save({{'child': 1}}, {{'pid_seen': os.getpid()}})")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert len(records) == 4
    for record in records:
        assert record["host"] == socket.gethostname()
        if record["config"] == {"child": 1}:
            assert record["pid"] == record["result"]["pid_seen"] != os.getpid()
        else:
            assert record["pid"] == os.getpid()


# -- no stale results: the store recomputes what other code computed ------------------------------------

CODE_EDIT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import nncosmo_helpers
    from nncosmo_helpers import results

    store_dir, log_path, package_dir = sys.argv[1:4]
    # The package must come from the temporary copy (PYTHONPATH), not from the checkout.
    assert Path(nncosmo_helpers.__file__).resolve().parent == Path(package_dir).resolve(), nncosmo_helpers.__file__

    def compute(batch):
        with open(log_path, "a") as fh:
            for c in batch:
                fh.write(json.dumps(c) + "\\n")
        return [{"square": c["x"] ** 2} for c in batch]

    res = results.ResultStore(store_dir).run([{"x": 1.0}, {"x": 2.0}], compute, progress=False)
    print(json.dumps({"results": res, "code_hash": results._codehash.package_code_hash()}))
    """
)


def test_result_from_edited_code_is_recomputed(tmp_path):
    """A stored result is reused by the same code and recomputed after any edit of a package source.

    The package is copied into a temporary directory and imported from there (PYTHONPATH) by a
    fresh process per run. The edit is a comment appended to a module in a sub-package, picked
    without naming it (the package is being restructured): a comment changes the hashed text, and
    the store counts it as new code -- the conservative choice.
    """
    import shutil

    copy_root = tmp_path / "copy"
    package = copy_root / "nncosmo_helpers"
    shutil.copytree(ROOT / "nncosmo_helpers", package, ignore=shutil.ignore_patterns("__pycache__"))
    script = tmp_path / "scan.py"
    script.write_text(CODE_EDIT_SCRIPT)
    store_dir, log = tmp_path / "store", tmp_path / "computed.jsonl"
    env = {**os.environ, "PYTHONPATH": str(copy_root), "NNCOSMO_PROGRESS": "0"}

    def scan():
        before = len(_logged(log))
        out = subprocess.run(
            [sys.executable, str(script), str(store_dir), str(log), str(package)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["results"] == [{"square": 1.0}, {"square": 4.0}]
        return len(_logged(log)) - before, report["code_hash"]

    computed, hash_old = scan()
    assert computed == 2
    files = sorted(store_dir.glob("*.json"))
    assert len(files) == 2 and all(json.loads(p.read_text())["code_hash"] == hash_old for p in files)
    assert scan() == (0, hash_old)  # same code: reused, nothing computed

    nested = sorted(p for p in package.rglob("*.py") if p.parent != package)
    assert nested, "expected a sub-package in nncosmo_helpers"
    with open(nested[0], "a") as fh:
        fh.write("\n# an edit that changes no behaviour still changes the code hash\n")

    computed, hash_new = scan()
    assert hash_new != hash_old
    assert computed == 2, "a result stored by other code was reused"
    # Replaced in place (same file names), no copies, nothing moved aside as corrupt.
    assert sorted(store_dir.glob("*.json")) == files
    assert all(json.loads(p.read_text())["code_hash"] == hash_new for p in files)
    assert not list(store_dir.glob("*.corrupt-*")) and not list(store_dir.glob("*.tmp"))
    assert scan() == (0, hash_new)


@pytest.mark.parametrize("stale", ["other", "missing"])
def test_stale_record_counts_as_missing(tmp_path, stale, recwarn):
    """A record with another (or no) code hash is not returned, not quarantined, and is replaced."""
    store = ResultStore(tmp_path)
    configs = _configs(0, 3)
    store.run(configs, lambda b: [_expected(c) for c in b], progress=False)
    victim = configs[1]
    path = store.path(victim)
    record = json.loads(path.read_text())
    if stale == "other":
        record["code_hash"] = "0" * 64
    else:
        del record["code_hash"]  # a file written before the store recorded code hashes
    path.write_text(json.dumps(record))

    assert store.load(victim) is None
    assert victim not in store and configs[0] in store
    assert path.exists()  # left alone until recomputed
    calls = []
    results = store.run(configs, lambda b: calls.extend(b) or [_expected(c) for c in b], progress=False)
    assert calls == [victim]
    assert results == [json.loads(canonical_json(_expected(c))) for c in configs]
    assert json.loads(path.read_text())["code_hash"] == json.loads(store.path(configs[0]).read_text())["code_hash"]
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
