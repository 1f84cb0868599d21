"""Roofline of a completed paper-profile scan, from its stored records: counted work against the time it took.

    python benchmarks/scan_time.py RESULTS_ROOT/paper [--log scans.log] [--json _build/scan-time.json]

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
  resumed run breaks this chain at the resume: give each invocation's output as a ``--log`` (in order) and
  each resume's start as ``--resumed-at`` (UTC, ISO 8601); the groups a scan stored in one invocation are
  then chained among themselves and its first group in that invocation gets that invocation's total minus
  the others. The work an interrupted invocation lost (the group it was computing) is in no group's time.
  A run on a Dask cluster has no such chain: the script is for in-process runs.
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
* **Two bounds.** The bytes bound uses the DRAM bandwidth of the axpy. A computation whose state fits in this
  machine's 16 MB L3 cache (width-100 networks; a width-1000 two-hidden-layer network on one point, weights
  and momentum ~16 MB) can stream faster than that, so for it the bytes bound is not a lower bound and its
  fraction can exceed 100 %. The script therefore also reports the *compute bound* alone (flops / matmul rate
  of each computation's dtype), which is a lower bound on every group's time; the issue's
  "measured / roofline" is given against both.
* ``--rates F64 F32 BW`` re-counts a store at given rates (e.g. those measured on an idle machine before)
  instead of measuring them, for a store whose scan is still running.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import roofline as rl  # noqa: E402  (also enables float64)
import scan_counts_oc_wp  # noqa: E402
import scan_counts_pt_bg  # noqa: E402

from nncosmo_helpers import scans  # noqa: E402


def _records(directory: Path):
    out = []
    for p in sorted(directory.glob("*.json")):
        rec = json.loads(p.read_text())
        out.append((datetime.datetime.fromisoformat(rec["created"]).timestamp(), rec["config"], rec["result"]))
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


def _compute_bound(scan, members, flops, rates):
    """flops / matmul rate of their dtype: a lower bound on the group's time whatever its memory traffic. A
    chapter scan's counter is re-run with infinite bandwidth, so each of its computations is bounded at the
    rate of its own dtype (wp-precision trains in both); a figure's group has one dtype (its configs')."""
    if scan in COUNTERS:
        return COUNTERS[scan](members, rl.FixedRates(rates.best["f64"][0], math.inf, rates.best["f32"][0]))[2]
    f32 = any(c.get("dtype") == "float32" for _, c, _ in members)
    return flops / rates.best["f32" if f32 else "f64"][0]


def _class_of(scan, c):
    if scan == "ap-mean-field":
        return (scan, c["width"], c["hidden_layers"], c["activation"], "float64")
    if scan == 1:  # a Fig. 1 group holds both activations
        return (scan, c["width"], c["hidden_layers"], "both", "float64")
    if scan in (3, 4, 5):
        return (scan, c["width"], c["hidden_layers"], c["activation"], c.get("dtype", "float64"))
    return (scan,)


def _segment_durations(ends, scan, totals, resumes):
    """Time of each group (sorted by end): the gap to the previous group stored by the same invocation; the
    first group of an invocation gets that invocation's logged total of the scan minus its other groups, or
    None (untimed) without one (or when the logged total is smaller than their sum: a line of another
    invocation, or a scan the invocation only read)."""
    seg = [sum(e >= r for r in resumes) for e in ends]
    durations = [None] * len(ends)
    for k in sorted(set(seg)):
        idx = [i for i, s in enumerate(seg) if s == k]
        for a, b in zip(idx, idx[1:]):
            durations[b] = ends[b] - ends[a]
        rest = sum(durations[i] for i in idx[1:])
        total = totals[k].get(str(scan)) if k < len(totals) else None
        if total is not None and total >= rest:
            durations[idx[0]] = total - rest
    return durations


def _log_times(path):
    out = {}
    if path:
        for line in Path(path).read_text().splitlines():
            m = re.match(r"^fig (\S+):\s+([0-9.]+) s$", line.strip())
            if m:
                out[m.group(1)] = float(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="the profile's results directory (e.g. results/paper)")
    ap.add_argument("--log", action="append", default=[], help="output of the scans command (its per-scan totals)")
    ap.add_argument("--resumed-at", action="append", default=[], metavar="ISO",
                    help="start (UTC) of each resumed invocation, in order; one fewer than --log")
    ap.add_argument("--json", default=str(rl.ROOT / "_build" / "scan-time.json"))
    ap.add_argument("--rate-reps", type=int, default=5)
    ap.add_argument("--rates", nargs=3, type=float, metavar=("F64", "F32", "BW"), default=None,
                    help="float64 and float32 matmul flop/s and bandwidth bytes/s to use instead of measuring them now")
    args = ap.parse_args()
    root = Path(args.root)
    totals = [_log_times(log) for log in args.log] or [{}]
    resumes = [datetime.datetime.fromisoformat(t).replace(tzinfo=datetime.timezone.utc).timestamp()
               for t in args.resumed_at]
    if args.resumed_at and len(resumes) != len(totals) - 1:
        ap.error("give one --log per invocation: one more than --resumed-at")
    if not args.resumed_at and len(totals) > 1:  # several logs of one uninterrupted run: merge them
        totals = [{k: v for t in totals for k, v in t.items()}]
    if args.rates:
        f64, f32, bw = args.rates
        rates = rl.FixedRates(f64, bw, flops32_per_s=f32)
    else:
        rates = rl.Rates()
        rates.measure(args.rate_reps)
    rows = defaultdict(lambda: {"configs": 0, "groups": 0, "flops": 0.0, "bytes": 0.0, "roofline_s": 0.0,
                                "compute_s": 0.0, "measured_s": 0.0, "ended": defaultdict(int), "untimed_groups": 0})
    per_scan = {}
    for scan in scans.SCANS:
        d = root / (scan if isinstance(scan, str) else f"fig{scan}")
        recs = _records(d) if d.is_dir() else []
        if not recs:
            continue
        groups = _groups(scan, recs)
        ends = [max(t for t, _, _ in g) for g in groups]
        durations = _segment_durations(ends, scan, totals, resumes)
        logged = [t[str(scan)] for t in totals if str(scan) in t]
        total = sum(logged) if logged else None
        for g, dur in zip(groups, durations):
            c0 = g[0][1]
            if scan == 3:
                f, b, roof, ended = _fig3_group(g, rates)
            elif scan in (5, "ap-mean-field"):  # the appendix trains Fig. 5's architectures the same way
                f, b, roof, ended = _fig5_group(g, rates)
            elif scan in (1, 4):
                f, b, roof, ended = _kernel_group(g, rates, 1 if scan == 1 else c0["n_points"])
            elif scan in COUNTERS:
                f, b, roof, ended = COUNTERS[scan](g, rates)
            else:
                f = b = roof = 0.0
                ended = {}
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
            row["roofline_s"] += roof
            row["compute_s"] += _compute_bound(scan, g, f, rates)
            row["measured_s"] += dur
        per_scan[scan] = {"configs": len(recs), "groups": len(groups), "total_s": total}
    f64w, bww = rates.best["f64"][0], rates.best["bw"][0]
    print(f"machine {'(given rates)' if args.rates else 'now'}: float64 matmul {f64w / 1e9:.1f} GFLOP/s, float32 {rates.best['f32'][0] / 1e9:.1f} GFLOP/s, "
          f"axpy bandwidth {bww / 1e9:.1f} GB/s" + ("" if args.rates else f" (best of {args.rate_reps})"))
    print("| scan | width | L | activation | dtype | configs (groups) | ended | flops | bytes | roofline (s) | compute bound (s) "
          "| measured (s) | fraction | of compute bound |")
    print("|---|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    by_scan = defaultdict(lambda: [0.0, 0.0, 0.0])
    for cls in sorted(rows, key=lambda k: tuple(str(x) for x in k)):
        r = rows[cls]
        scan = cls[0]
        by_scan[scan][0] += r["roofline_s"]
        by_scan[scan][1] += r["measured_s"]
        by_scan[scan][2] += r["compute_s"]
        frac = f"{r['roofline_s'] / r['measured_s']:.0%}" if r["roofline_s"] and r["measured_s"] else "-"
        cfrac = f"{r['compute_s'] / r['measured_s']:.0%}" if r["compute_s"] and r["measured_s"] else "-"
        cols = list(cls[1:]) + ["-"] * (4 - len(cls[1:]))
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r["ended"].items())) or "-"
        untimed = f", {r['untimed_groups']} untimed" if r["untimed_groups"] else ""
        print(f"| {scan} | {cols[0]} | {cols[1]} | {cols[2]} | {cols[3]} | {r['configs']} ({r['groups']}{untimed}) | {ended} "
              f"| {r['flops']:.3g} | {r['bytes']:.3g} | {r['roofline_s']:.1f} | {r['compute_s']:.1f} | {r['measured_s']:.1f} "
              f"| {frac} | {cfrac} |")
    print("\nper scan (roofline = max(compute, DRAM bytes) bound; the compute bound alone is a bound for every group):")
    roof_all = meas_all = meas_counted = comp_all = 0.0
    for scan, (roof, meas, comp) in by_scan.items():
        frac = f"{roof / meas:.0%} of the roofline, {comp / meas:.0%} of the compute bound" if roof else "no counted work"
        print(f"  {scan}: roofline {roof:.1f} s, compute bound {comp:.1f} s, measured {meas:.1f} s ({frac}); command total "
              f"{per_scan[scan]['total_s']} s")
        roof_all += roof
        comp_all += comp
        meas_all += meas
        meas_counted += meas if roof else 0.0
    if roof_all:
        print(f"  all: roofline {roof_all:.1f} s, compute bound {comp_all:.1f} s, measured {meas_all:.1f} s (of which "
              f"{meas_counted:.1f} s in scans with counted work: {roof_all / meas_counted:.0%} of their roofline); "
              f"measured / roofline = {meas_all / roof_all:.2f}, measured / compute bound = {meas_all / comp_all:.2f} "
              f"for everything")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "rates": {"float64_flops_per_s": f64w, "bandwidth_bytes_per_s": bww},
        "classes": [dict(r, cls=list(map(str, k)), ended=dict(r["ended"])) for k, r in rows.items()],
        "per_scan": {str(k): dict(per_scan[k], roofline_s=v[0], measured_s=v[1], compute_bound_s=v[2])
                     for k, v in by_scan.items()}},
        indent=1, default=str))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
