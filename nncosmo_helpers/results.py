"""A fault-tolerant, content-addressed store of scan results: one JSON file per configuration.

A scan is a list of configurations (plain JSON-able dicts); each result is a JSON-able dict. The
store keeps one file ``<root>/<key>.json`` per configuration, where ``key`` is the SHA-256 of the
canonical JSON of the configuration together with the package version. A scan that is killed can
simply be rerun: every configuration whose file already exists is reused, the others are computed.

Guarantees:

* **Atomic writes.** A result is written to a unique temporary file in the same directory
  (``.<key>.<host>.<pid>.<random>.tmp``), flushed, ``fsync``-ed and renamed over the final name
  with ``os.replace``; the directory is ``fsync``-ed afterwards. A reader therefore sees either no
  file or a complete one, even after ``SIGKILL`` or a power cut. Temporary files are never read.
* **Verified reads.** Each file stores the SHA-256 of the canonical JSON of its result and its full
  configuration. A file that does not parse, is truncated, fails the checksum or belongs to another
  configuration is reported with :func:`warnings.warn` (naming the file), moved aside to
  ``<key>.json.corrupt-<time>`` (only while holding that configuration's lock, so a file another
  process is rewriting is never moved) and treated as missing, so it is recomputed.
* **Concurrency.** Several processes may run scans into the same directory at once. Unique
  temporary names plus the atomic rename already guarantee that no file is ever corrupted (the last
  writer of a configuration wins; both wrote the same configuration). In addition,
  :meth:`ResultStore.run` takes a per-configuration advisory lock (``fcntl.flock`` on
  ``<root>/.locks/<key>.lock``) while computing: a second process skips configurations that are in
  progress elsewhere, computes the rest, and at the end waits for the skipped ones and loads them.
  The kernel releases ``flock`` locks when a process dies, so a killed scan leaves no stale lock.
  (``flock`` is advisory and may not work across machines on some network file systems; there the
  store still never corrupts, it may only compute a configuration twice.) The empty lock files stay
  in ``.locks/``; deleting that directory while no scan runs is safe.
* **Provenance.** Every record names the host and process id that computed it (``"host"``,
  ``"pid"``, see :func:`provenance`), next to ``package_version``, ``jax_version`` and ``code_hash``.
* **No stale results.** Each file records the hash of the code that computed it (``code_hash``:
  SHA-256 of every ``*.py`` source of the installed ``nncosmo_helpers`` package, see
  :mod:`nncosmo_helpers._codehash`). A result whose ``code_hash`` differs from the running code's
  (or that has none, i.e. was stored before this field existed) is never returned: it counts as
  missing, is recomputed, and the new result replaces the file atomically (as above); until then the
  old file is left alone. Any source edit counts, a comment too (conservative: an edit that cannot
  change a result costs a recomputation, never a stale result). A ``results/`` directory restored
  from an older CI cache, copied from a colleague or left by an older checkout is therefore safe.
* **No NaN.** Results are serialised with ``allow_nan=False``: a result containing NaN or inf is
  rejected with ``ValueError``. Diverged runs are stored as data, e.g.
  ``{"diverged": True, "divergence_step": k, ...}``.

Keys depend on the exact JSON of the configuration: ``{"eta": 1}`` and ``{"eta": 1.0}`` are
different configurations. Keys also depend on ``nncosmo_helpers.__version__``; bumping the version
invalidates all stored results. The code hash is deliberately not part of the key (it is checked on
load): file names stay stable across code edits, and a recomputed result
replaces its stale file instead of piling up next to it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import importlib.metadata
import json
import os
import socket
import uuid
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, _codehash

try:  # POSIX only; without it the store still works, just without cross-process skipping
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

#: Set NNCOSMO_PROGRESS=0 to silence all progress bars (e.g. for the book build and nbval).
PROGRESS_ENV = "NNCOSMO_PROGRESS"
KEY_LENGTH = 20  # hex characters of the SHA-256 used as file name (80 bits)
_REQUIRED_FIELDS = ("config", "result", "package_version", "jax_version", "created", "sha256")


def _default(obj):
    """JSON fallback for numpy/JAX scalars and arrays."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def canonical_json(obj) -> str:
    """Canonical JSON: sorted keys, no whitespace, NaN/inf rejected (``ValueError``).

    numpy/JAX scalars and arrays are converted to Python numbers and (nested) lists; tuples become
    lists. Python's float ``repr`` round-trips exactly, so ``json.loads`` of the output reproduces
    every float bit for bit.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_default)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_for(config, version: str) -> str:
    return _sha256(canonical_json({"config": config, "package_version": version}))[:KEY_LENGTH]


def _is_current(record: dict) -> bool:
    """Whether a (verified) record was computed by the code that is running now."""
    return record.get("code_hash") == _codehash.package_code_hash()


def _jax_version() -> str:
    try:
        return importlib.metadata.version("jax")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _host() -> str:
    return socket.gethostname().replace(".", "_") or "host"


def provenance() -> dict:
    """Who computed a result: ``{"host": <host name>, "pid": <process id>}``, stored at the top level
    of every record (next to ``package_version``).

    :meth:`ResultStore.save` runs in the process that computed the result (in-process scans and the
    Dask tasks of :mod:`nncosmo_helpers.scans.distributed` alike), so these name the computing process.
    (The hash of the code that computed it is stored next to these, as ``code_hash``.)
    """
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (unique temp file, fsync, os.replace, fsync dir)."""
    tmp = path.parent / f".{path.name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


_CORRUPT = object()  # sentinel: a file exists but fails verification


class CorruptResult(ValueError):
    """A stored result file failed verification (internal; :meth:`ResultStore.load` warns instead)."""


def _verify(record, *, expected_config_json: str | None = None) -> None:
    if not isinstance(record, dict) or any(f not in record for f in _REQUIRED_FIELDS):
        missing = [f for f in _REQUIRED_FIELDS if not isinstance(record, dict) or f not in record]
        raise CorruptResult(f"missing fields {missing}")
    try:
        result_json = canonical_json(record["result"])
    except (TypeError, ValueError) as exc:
        raise CorruptResult(f"result is not canonical JSON ({exc})") from None
    if _sha256(result_json) != record["sha256"]:
        raise CorruptResult("checksum mismatch (sha256 of the result differs from the stored one)")
    if expected_config_json is not None and canonical_json(record["config"]) != expected_config_json:
        raise CorruptResult("stored config differs from the requested config")


def _read_record(path: Path):
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptResult(f"not valid JSON, possibly truncated ({type(exc).__name__}: {exc})") from None


class ResultStore:
    """One verified JSON file per configuration under ``root`` (see the module docstring).

    Example::

        store = ResultStore("results/fig2")
        results = store.run(configs, compute_batch, group_by=lambda c: c["width"])
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._held: set[str] = set()  # keys whose lock this instance holds

    def __repr__(self):
        return f"ResultStore({str(self.root)!r})"

    # -- addressing --------------------------------------------------------------------------------
    def key(self, config: dict) -> str:
        """First 20 hex digits of sha256(canonical JSON of {config, package version})."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict of JSON-serialisable values, got {type(config).__name__}")
        try:
            return _key_for(config, __version__)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config must be JSON-serialisable without NaN/inf ({exc}): {config!r}") from None

    def path(self, config: dict) -> Path:
        """The file that holds (or will hold) the result of ``config``."""
        return self.root / f"{self.key(config)}.json"

    def __contains__(self, config: dict) -> bool:
        """Whether a verified result computed by the running code is stored for ``config``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = self._load(config, quarantine=False)
        return res is not None and res is not _CORRUPT

    # -- single-configuration I/O ------------------------------------------------------------------
    def load(self, config: dict) -> dict | None:
        """The stored result of ``config``, or ``None`` if there is none (or only a stale one).

        A result stored by other code (another ``code_hash``) is stale: ``None`` is returned, without
        a warning, and the file is left in place for the next :meth:`save` to replace.

        A corrupt, truncated, checksum-failing or mismatched file triggers a warning naming the
        file, is moved aside (``*.json.corrupt-<time>``) and ``None`` is returned. The file is moved
        only under the configuration's lock, so a process that is just rewriting it is not
        disturbed (then the warning says so and the file is left in place).
        """
        key = self.key(config)
        if key in self._held:
            return self._load(config, quarantine=True)
        fd = self._try_lock(key)
        try:
            result = self._load(config, quarantine=fd is not None)
        finally:
            self._unlock(fd)
        return None if result is _CORRUPT else result

    def _load(self, config, *, quarantine: bool):
        """Stored result; None if missing or stale; if corrupt: warn + move aside (quarantine) or return _CORRUPT."""
        path = self.path(config)
        try:
            record = _read_record(path)
            _verify(record, expected_config_json=canonical_json(config))
        except FileNotFoundError:
            return None
        except CorruptResult as exc:
            if quarantine:
                self._quarantine(path, str(exc))
                return None
            warnings.warn(
                f"corrupt result file {path}: {exc}; another process holds its lock and will replace it",
                RuntimeWarning, stacklevel=3,
            )
            return _CORRUPT
        if not _is_current(record):
            return None  # computed by other code: recompute (save() replaces the file atomically)
        return record["result"]

    def _quarantine(self, path: Path, reason: str) -> None:
        stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S%f")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        try:
            os.replace(path, aside)
            where = f"moved to {aside.name}"
        except FileNotFoundError:  # someone else moved it already
            where = "already moved aside by another process"
        warnings.warn(f"corrupt result file {path}: {reason}; {where}; it will be recomputed", RuntimeWarning, stacklevel=4)

    def save(self, config: dict, result: dict) -> Path:
        """Store ``result`` for ``config`` atomically and return the file path.

        ``result`` must be JSON-serialisable (numpy/JAX arrays are converted to lists) and must not
        contain NaN or inf (``ValueError``; store divergence as data instead).
        """
        if not isinstance(result, dict):
            raise TypeError(f"result must be a dict, got {type(result).__name__}")
        try:
            config_json = canonical_json(config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config must be JSON-serialisable without NaN/inf: {exc}") from None
        try:
            result_json = canonical_json(result)
        except ValueError as exc:
            raise ValueError(
                f"result for config {config_json} contains NaN/inf or is not JSON-serialisable ({exc}); "
                "store diverged runs as {'diverged': True, 'divergence_step': k, ...}"
            ) from None
        record = {
            "config": json.loads(config_json),
            "result": json.loads(result_json),
            "package_version": __version__,
            "jax_version": _jax_version(),
            "code_hash": _codehash.package_code_hash(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "sha256": _sha256(result_json),
            **provenance(),
        }
        path = self.path(config)
        _write_atomic(path, json.dumps(record, sort_keys=True, indent=1, allow_nan=False) + "\n")
        return path

    # -- locking -----------------------------------------------------------------------------------
    def _try_lock(self, key: str, blocking: bool = False):
        """Open and flock ``.locks/<key>.lock``; return the fd, or None if another process holds it."""
        if fcntl is None:  # pragma: no cover
            return -1
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(exist_ok=True)
        fd = os.open(lock_dir / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        return fd

    @staticmethod
    def _unlock(fd) -> None:
        if fd is None or fd < 0:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def clean_temp_files(self) -> int:
        """Delete temporary files left by dead processes of this host; return how many.

        Temporary files never count as results, so leaving them is harmless; this only tidies up.
        """
        host = _host()
        removed = 0
        for tmp in self.root.glob(".*.tmp"):
            parts = tmp.name.rsplit(".", 4)  # [.<key>.json, host, pid, random, tmp]
            if len(parts) != 5 or parts[1] != host or not parts[2].isdigit():
                continue
            pid = int(parts[2])
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # still alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed += 1
        return removed

    # -- scans -------------------------------------------------------------------------------------
    def run(
        self,
        configs: list[dict],
        compute_batch: Callable[[list[dict]], list[dict]],
        *,
        group_by: Callable[[dict], object] | None = None,
        progress: bool = True,
        desc: str = "",
    ) -> list[dict | None]:
        """Results for ``configs`` (same order), reusing stored ones and computing the rest.

        Args:
            configs: JSON-able dicts. Duplicates are computed once.
            compute_batch: ``compute_batch(list_of_configs) -> list_of_results`` (same length and
                order). Called once per group of missing configurations.
            group_by: configurations with equal ``group_by(config)`` (compared via its canonical
                JSON) are computed in one call, in order of first appearance; ``None`` computes one
                configuration per call.
            progress: show a ``tqdm.auto`` progress bar (works in notebooks and terminals);
                the environment variable ``NNCOSMO_PROGRESS=0`` switches all bars off.
            desc: the progress bar's label.

        Every result is saved as soon as its group finishes, so an interrupted scan loses at
        most the group in progress. Configurations being computed by another process (locked)
        are skipped first and loaded at the end, after waiting for that process.
        """
        configs = list(configs)
        if group_by is not None and not callable(group_by):
            raise TypeError(f"group_by must be callable or None, got {type(group_by).__name__}")
        if not callable(compute_batch):
            raise TypeError(f"compute_batch must be callable, got {type(compute_batch).__name__}")
        self.clean_temp_files()

        keys = [self.key(c) for c in configs]
        mine: dict[str, dict] = {}  # key -> config, in order of first appearance
        for k, c in zip(keys, configs):
            if k not in mine:
                mine[k] = c
        done: dict[str, dict] = {}

        groups: dict[str, list[str]] = {}
        for k, c in mine.items():
            label = canonical_json(group_by(c)) if group_by is not None else k
            groups.setdefault(label, []).append(k)

        bar = _progress_bar(len(mine), progress, desc)
        try:
            # Fast pass: reuse everything that is already on disk.
            # (Corrupt files are only reported and moved aside later, under their lock.)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                for k, c in mine.items():
                    res = self._load(c, quarantine=False)
                    if res is not None and res is not _CORRUPT:
                        done[k] = res
            bar.update(len(done))

            deferred: list[str] = []
            for members in groups.values():
                todo = [k for k in members if k not in done]
                if todo:
                    deferred += self._compute_group(todo, mine, done, compute_batch, bar, blocking=False)
            # Configurations that another process was computing: wait for it, then load (or compute).
            for k in deferred:
                if k not in done:
                    self._compute_group([k], mine, done, compute_batch, bar, blocking=True)
        finally:
            bar.close()
        return [done.get(k) for k in keys]

    def _compute_group(self, todo, mine, done, compute_batch, bar, *, blocking) -> list[str]:
        """Lock, re-check and compute the keys in ``todo``; return those locked elsewhere."""
        locks, busy = {}, []
        try:
            for k in todo:
                fd = self._try_lock(k, blocking=blocking)
                if fd is None:
                    busy.append(k)
                    continue
                locks[k] = fd
                self._held.add(k)
                res = self._load(mine[k], quarantine=True)  # finished by another process meanwhile?
                if res is not None:
                    done[k] = res
                    bar.update(1)
            batch = [k for k in locks if k not in done]
            if batch:
                results = compute_batch([mine[k] for k in batch])
                results = list(results) if results is not None else []
                if len(results) != len(batch):
                    raise ValueError(
                        f"compute_batch returned {len(results)} results for {len(batch)} configs; "
                        "it must return one result per config, in order"
                    )
                for k, res in zip(batch, results):
                    self.save(mine[k], res)
                    done[k] = json.loads(canonical_json(res))  # the same form a later load returns
                    bar.update(1)
        finally:
            for k, fd in locks.items():
                self._held.discard(k)
                self._unlock(fd)
        return busy


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    if os.environ.get(PROGRESS_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        enabled = False
    return tqdm(total=total, disable=not enabled, desc=desc or None, unit="config", leave=False)
