"""Roofline of a completed paper-profile scan, from its stored records: counted work against the time it took.

    python benchmarks/scan_time.py RESULTS_ROOT/paper [--log scans.log] [--json _build/scan-time.json]
    python benchmarks/scan_time.py RESULTS_ROOT/paper --started-at ISO [--started-at ISO ...]   # a resumed run

``benchmarks/roofline.py`` times one group per cost class for a few steps. This script instead reads what
a real run of ``python -m nncosmo_helpers.scans --profile paper`` stored, so it sees everything the run
did: every configuration, all 1000 steps, the networks that moved to a larger representation part-way
(each Fig. 3 record names the representation it ended in and from which step), compilation, the
continuum predictions and the writing of the records.

* **Measured time per group.** A group (``scans.group_key``: the configurations computed together) is
  written at the end of its computation, so the ``created`` stamps of consecutive groups of one
  in-process run are separated by the time the later group took. The first group of each scan has no
  predecessor; its time is the scan's total (the ``fig <k>: <s> s`` lines the command prints, ``--log``)
  minus its other groups. Without ``--log`` (or when the logged total is smaller than the other groups'
  sum: a line of another invocation) the first group of each scan is left out of both sums. A
  run that was interrupted and resumed (the store keeps what was computed) breaks the chain: each record names
  the process that stored it (``host``, ``pid``), a gap between groups of two processes holds the downtime,
  so in this mode such a group is untimed (and the first group gets no total unless one process stored the
  whole scan). For a resumed run give instead the start of each invocation of the scans command as
  ``--started-at`` (ISO 8601, UTC unless it says otherwise; one per process that stored groups, checked): the
  scans of one invocation run one after the other, so every group's time is then the gap to the group its
  process stored before it, whatever the scan, and the first group of an invocation is timed from the
  invocation's start (Python and JAX start-up and the reloading of the scans already stored included). The
  downtime between invocations and the group an interrupted invocation lost are in no group's time. A run
  on a Dask cluster has no such chain: the script is for in-process runs.
* **Roofline per configuration**, by the counting rule of ``benchmarks/roofline.py`` (``train_counts``,
  ``kernel_counts``, ``trained_bytes``): the dense architecture's flops; bytes by the representation the
  configuration ran in (Fig. 3: its final basis, or 4 x 32 directions up to ``method_from_step`` and
  dense weights after it). The roofline time is ``max(flops / matmul rate, bytes / bandwidth)`` per
  configuration, with the rates of this machine measured when the script runs, not during the scan (the
  scan had the machine to itself; the rates are measured the same way, best of a few calls).
* ``ap-mean-field`` (Appendix B) trains the paper's Fig. 5 architectures as Fig. 5 does and is counted
  the same way. The other chapters' scans are counted by ``scan_counts_oc_wp.py`` (``oc-*``, ``wp-*``) and
  ``scan_counts_pt_bg.py`` (``pt-*``, ``bg-*``), by the same rule; their docstrings say what each leaves out
  (ODE solves, eigendecompositions, elementwise work). Fig. 2 (a closed form) and ``bg-lag`` (ODEs only) have
  no counted work; their measured times are listed so the total is complete.
* **Three bounds.** The *roofline* counts the bytes at the axpy bandwidth (2 reads and 1 write per
  element, the STREAM triad's convention): the DRAM ceiling for traffic with the triad's 2:1 mix of reads
  and writes, which is the mix counted for a dense weight with momentum. On this machine a read streams
  2.5-4 times as fast (a written line is first read, then written back), so traffic that reads more than
  it writes, a computation whose state fits the 16 MB L3 cache (width-100 networks; a width-1000
  two-hidden-layer network on one point, weights and momentum ~16 MB), or a counted byte that in fact
  stays in cache, can beat that bound (fractions above 100 %). The *read ceiling* counts every byte at the
  read (matrix-vector) bandwidth, a bound for traffic that really streams from DRAM whatever its mix (a
  group whose state stays in cache can beat it too); the *compute bound* (flops at the matmul rate of
  each computation's dtype) is a lower bound on every group's time, cached or not. The totals are given
  against all three.
* ``--rates F64 F32 BW BW_READ`` re-counts a store at given rates (e.g. those measured on an idle machine
  before) instead of measuring them, for a store whose scan is still running.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
import roofline as rl  # noqa: E402  (also enables float64)
import scan_counts_oc_wp  # noqa: E402
import scan_counts_pt_bg  # noqa: E402

from nncosmo_helpers import scans  # noqa: E402


def _records(directory: Path, procs: dict):
    """(created, config, result) of every record; ``procs`` gets created -> (host, pid) of the process that
    stored it (the provenance every record carries; (None, None) for a record without it)."""
    out = []
    for p in sorted(directory.glob("*.json")):
        rec = json.loads(p.read_text())
        t = datetime.datetime.fromisoformat(rec["created"]).timestamp()
        procs[t] = (rec.get("host"), rec.get("pid"))
        out.append((t, rec["config"], rec["result"]))
    return out


def _groups(scan, records):
    key = scans.group_key(scan)
    groups = defaultdict(list)
    for t, c, r in records:
        groups[repr(key(c))].append((t, c, r))
    return sorted(groups.values(), key=lambda g: max(t for t, _, _ in g))


def _fig3_group(members, rates):
    """(flops, bytes, roofline s, ended-method counts) of one Fig. 3 group, each x0 a batch as trained."""
    flops = nbytes = roof = 0.0
    ended = defaultdict(int)
    by_x0 = defaultdict(list)
    for _, c, r in members:
        by_x0[float(c.get("x0", 0.0))].append((c, r))
    for part in by_x0.values():
        c0 = part[0][0]
        width, L, dtype, steps = c0["width"], c0["hidden_layers"], c0.get("dtype", "float64"), c0["steps"]
        C = len(part)
        momentum = any(c["beta"] != 0.0 for c, _ in part)
        peak = rates.best["f32" if dtype == "float32" else "f64"][0]
        bw = rates.best["bw"][0]
        f = rl.train_counts(width, L, 1, C, dtype, "dense", momentum=momentum)[0] * steps
        for c, r in part:
            meth = r.get("method", "dense")
            ended[meth] += 1
            b = rl.config_bytes(width, L, C, dtype, steps, momentum, meth, from_step=int(r.get("method_from_step") or 0),
                                rank=int(r.get("basis_rank") or 0))
            flops, nbytes, roof = flops + f, nbytes + b, roof + max(f / peak, b / bw)
    return flops, nbytes, roof, dict(ended)


def _fig5_group(members, rates):
    c0 = members[0][1]
    C, width, L, steps, N = len(members), c0["width"], c0["hidden_layers"], c0["steps"], c0["n_points"]
    momentum = any(c["beta"] != 0.0 for _, c, _ in members)
    f, b, _, ends = rl.train_counts(width, L, N, C, "float64", "dense", kernel_ends=True, momentum=momentum)
    f, b = f * steps + ends, b * steps
    return f * C, b * C, C * max(f / rates.best["f64"][0], b / rates.best["bw"][0]), {"dense": C}


def _kernel_group(members, rates, n_points):
    c0 = members[0][1]
    C = len(members)
    f, b = rl.kernel_counts(c0["width"], c0["hidden_layers"], n_points, C)
    return f * C, b * C, C * max(f / rates.best["f64"][0], b / rates.best["bw"][0]), {}


#: counters of the chapters' scans: name -> counter(members, rates) -> (flops, bytes, roofline s, ended)
COUNTERS = {**scan_counts_oc_wp.COUNTERS, **scan_counts_pt_bg.COUNTERS}


def _count(scan, members, rates):
    """(flops, bytes, roofline s, ended methods) of one stored group at the given rates."""
    c0 = members[0][1]
    if scan == 3:
        return _fig3_group(members, rates)
    if scan in (5, "ap-mean-field"):  # the appendix trains Fig. 5's architectures the same way
        return _fig5_group(members, rates)
    if scan in (1, 4):
        return _kernel_group(members, rates, 1 if scan == 1 else c0["n_points"])
    if scan in COUNTERS:
        return COUNTERS[scan](members, rates)
    return 0.0, 0.0, 0.0, {}


def _bounds(scan, members, rates):
    """The group's counts and three lower-bound times: the roofline (bytes at the axpy bandwidth), the
    read-ceiling roofline (bytes at the read bandwidth) and the compute bound (infinite bandwidth: flops at
    the matmul rate of each computation's dtype; wp-precision trains in both)."""
    f64, f32 = rates.best["f64"][0], rates.best["f32"][0]
    f, b, roof, ended = _count(scan, members, rates)
    read = _count(scan, members, rl.FixedRates(f64, rates.best["bw_read"][0], f32))[2]
    comp = _count(scan, members, rl.FixedRates(f64, math.inf, f32))[2]
    return f, b, ended, {"roofline_s": roof, "read_s": read, "compute_s": comp}


def _class_of(scan, c):
    if scan == "ap-mean-field":
        return (scan, c["width"], c["hidden_layers"], c["activation"], "float64")
    if scan == 1:  # a Fig. 1 group holds both activations
        return (scan, c["width"], c["hidden_layers"], "both", "float64")
    if scan in (3, 4, 5):
        return (scan, c["width"], c["hidden_layers"], c["activation"], c.get("dtype", "float64"))
    return (scan,)


def _log_durations(ends, total, procs):
    """One scan (group ends sorted, ``procs`` the process that stored each): each group's time is the gap to the
    previous group. The first group gets the scan's logged total minus the others, when one process stored
    them all (one uninterrupted invocation) and the total is not smaller than their sum (else it is a line
    of another invocation); otherwise it is None (untimed), as is every group whose predecessor another
    process stored (a resumed run: the gap would hold the downtime; time such a run with ``--started-at``)."""
    durations = [None] + [b - a if pb == pa else None for a, b, pa, pb in zip(ends, ends[1:], procs, procs[1:])]
    rest = sum(d for d in durations[1:] if d is not None)
    if total is not None and len(set(procs)) == 1 and total >= rest:
        durations[0] = total - rest
    return durations


def _chain_durations(ends, procs, starts):
    """Every group of every scan, by its end, in the invocation (process) that stored it; invocations in the
    order of their first stored group, ``starts`` (sorted) their starts, one each. A group's time is the gap
    to the previous group its invocation stored, whatever the scan, or to the invocation's start. ``ends`` and
    ``procs`` map a group's key to its end and its process. Raises ValueError when the starts do not match
    the invocations (one each, each before its invocation's first group and after the previous one's last)."""
    order = sorted(ends, key=ends.get)
    first, last = {}, {}
    for key in order:
        first.setdefault(procs[key], ends[key])
        last[procs[key]] = ends[key]
    invocations = sorted(first, key=first.get)
    if len(starts) != len(invocations):
        raise ValueError(f"{len(invocations)} invocations (processes) stored groups; give one --started-at each, "
                         f"got {len(starts)}")
    for k, (proc, start) in enumerate(zip(invocations, starts)):
        if not start <= first[proc] or (k and not last[invocations[k - 1]] < start):
            raise ValueError(f"--started-at #{k + 1} is not between the previous invocation's last group and the "
                             f"first group of invocation {proc}")
    start_of = dict(zip(invocations, starts))
    out, prev = {}, {}
    for key in order:
        proc = procs[key]
        out[key] = ends[key] - prev.get(proc, start_of[proc])
        prev[proc] = ends[key]
    return out


def _log_times(path):
    out = {}
    if path:
        for line in Path(path).read_text().splitlines():
            m = re.match(r"^fig (\S+):\s+([0-9.]+) s$", line.strip())
            if m:
                out[m.group(1)] = float(m.group(2))
    return out


def _utc(iso: str) -> float:
    """Epoch seconds of an ISO 8601 time; one without an offset is taken as UTC."""
    t = datetime.datetime.fromisoformat(iso)
    return (t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)).timestamp()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="the profile's results directory (e.g. results/paper)")
    ap.add_argument("--log", action="append", default=[], help="output of the scans command (its per-scan totals)")
    ap.add_argument("--started-at", action="append", default=[], metavar="ISO",
                    help="start (UTC) of each invocation of the scans command, in order (a resumed run; no --log needed)")
    ap.add_argument("--json", default=str(rl.ROOT / "_build" / "scan-time.json"))
    ap.add_argument("--rate-reps", type=int, default=5)
    ap.add_argument("--rates", nargs=4, type=float, metavar=("F64", "F32", "BW", "BW_READ"), default=None,
                    help="float64 and float32 matmul flop/s, axpy and read bandwidths in bytes/s, instead of measuring them now")
    args = ap.parse_args()
    root = Path(args.root)
    totals = {}
    for log in args.log:
        totals.update(_log_times(log))
    starts = sorted(_utc(t) for t in args.started_at)
    stored, procs = {}, {}
    for scan in scans.SCANS:
        d = root / (scan if isinstance(scan, str) else f"fig{scan}")
        recs = _records(d, procs) if d.is_dir() else []
        if recs:
            stored[scan] = (recs, _groups(scan, recs))
    ends = {(scan, i): max(t for t, _, _ in g) for scan, (_, gs) in stored.items() for i, g in enumerate(gs)}
    group_procs = {key: procs[e] for key, e in ends.items()}  # the process that stored the group's last record
    try:
        chained = _chain_durations(ends, group_procs, starts) if starts else None
    except ValueError as err:
        ap.error(str(err))
    if args.rates:
        f64, f32, bw, bwr = args.rates
        rates = rl.FixedRates(f64, bw, flops32_per_s=f32, read_bytes_per_s=bwr)
    else:
        rates = rl.Rates()
        rates.measure(args.rate_reps)
    rows = defaultdict(lambda: {"configs": 0, "groups": 0, "flops": 0.0, "bytes": 0.0, "roofline_s": 0.0,
                                "read_s": 0.0, "compute_s": 0.0, "measured_s": 0.0, "ended": defaultdict(int), "untimed_groups": 0})
    per_scan = {}
    for scan, (recs, groups) in stored.items():
        if chained is not None:
            durations = [chained[(scan, i)] for i in range(len(groups))]
            total = sum(durations)
        else:
            total = totals.get(str(scan))
            durations = _log_durations([ends[(scan, i)] for i in range(len(groups))], total,
                                       [group_procs[(scan, i)] for i in range(len(groups))])
        for g, dur in zip(groups, durations):
            c0 = g[0][1]
            f, b, ended, bounds = _bounds(scan, g, rates)
            row = rows[_class_of(scan, c0)]
            row["configs"] += len(g)
            row["groups"] += 1
            for k, v in ended.items():
                row["ended"][k] += v
            if dur is None:
                row["untimed_groups"] += 1
                continue
            row["flops"] += f
            row["bytes"] += b
            for k, v in bounds.items():
                row[k] += v
            row["measured_s"] += dur
        per_scan[scan] = {"configs": len(recs), "groups": len(groups), "total_s": total}
    f64w, bww, bwr = rates.best["f64"][0], rates.best["bw"][0], rates.best["bw_read"][0]
    print(f"machine {'(given rates)' if args.rates else 'now'}: float64 matmul {f64w / 1e9:.1f} GFLOP/s, float32 {rates.best['f32'][0] / 1e9:.1f} GFLOP/s, "
          f"axpy bandwidth {bww / 1e9:.1f} GB/s, read (matrix-vector) bandwidth {bwr / 1e9:.1f} GB/s"
          + ("" if args.rates else f" (best of {args.rate_reps})"))
    print("| scan | width | L | activation | dtype | configs (groups) | ended | flops | bytes | roofline (s) | read ceiling (s) "
          "| compute bound (s) | measured (s) | fraction | of read ceiling | of compute bound |")
    print("|---|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = ("roofline_s", "read_s", "compute_s", "measured_s")
    by_scan = defaultdict(lambda: dict.fromkeys(keys, 0.0))

    def pct(x, y):
        return f"{x / y:.0%}" if x and y else "-"

    for cls in sorted(rows, key=lambda k: tuple(str(x) for x in k)):
        r = rows[cls]
        for k in keys:
            by_scan[cls[0]][k] += r[k]
        cols = list(cls[1:]) + ["-"] * (4 - len(cls[1:]))
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r["ended"].items())) or "-"
        untimed = f", {r['untimed_groups']} untimed" if r["untimed_groups"] else ""
        m = r["measured_s"]
        print(f"| {cls[0]} | {cols[0]} | {cols[1]} | {cols[2]} | {cols[3]} | {r['configs']} ({r['groups']}{untimed}) | {ended} "
              f"| {r['flops']:.3g} | {r['bytes']:.3g} | {r['roofline_s']:.1f} | {r['read_s']:.1f} | {r['compute_s']:.1f} "
              f"| {m:.1f} | {pct(r['roofline_s'], m)} | {pct(r['read_s'], m)} | {pct(r['compute_s'], m)} |")
    print("\nper scan (roofline = max(compute, bytes at the axpy bandwidth); read ceiling = max(compute, bytes at the read "
          "bandwidth), a bound for any traffic that streams from DRAM; the compute bound alone is a bound for every group):")
    tot = dict.fromkeys(keys, 0.0)
    meas_counted = 0.0
    for scan, v in by_scan.items():
        m = v["measured_s"]
        frac = (f"{pct(v['roofline_s'], m)} of the roofline, {pct(v['read_s'], m)} of the read ceiling, "
                f"{pct(v['compute_s'], m)} of the compute bound") if v["roofline_s"] else "no counted work"
        print(f"  {scan}: roofline {v['roofline_s']:.1f} s, read ceiling {v['read_s']:.1f} s, compute bound "
              f"{v['compute_s']:.1f} s, measured {m:.1f} s ({frac}); {'chained' if chained is not None else 'command'} total "
              f"{'-' if per_scan[scan]['total_s'] is None else format(per_scan[scan]['total_s'], '.1f')} s")
        for k in keys:
            tot[k] += v[k]
        meas_counted += m if v["roofline_s"] else 0.0
    if tot["roofline_s"]:
        m = tot["measured_s"]
        print(f"  all: roofline {tot['roofline_s']:.1f} s, read ceiling {tot['read_s']:.1f} s, compute bound "
              f"{tot['compute_s']:.1f} s, measured {m:.1f} s (of which {meas_counted:.1f} s in scans with counted work: "
              f"{pct(tot['roofline_s'], meas_counted)} of their roofline); measured / roofline = {m / tot['roofline_s']:.2f}, "
              f"measured / read ceiling = {m / tot['read_s']:.2f}, measured / compute bound = {m / tot['compute_s']:.2f} "
              f"for everything")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "rates": {"float64_flops_per_s": f64w, "float32_flops_per_s": rates.best["f32"][0], "bandwidth_bytes_per_s": bww,
                  "read_bandwidth_bytes_per_s": bwr},
        "classes": [dict(r, cls=list(map(str, k)), ended=dict(r["ended"])) for k, r in rows.items()],
        "per_scan": {str(k): dict(per_scan[k], **v) for k, v in by_scan.items()}},
        indent=1, default=str))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
