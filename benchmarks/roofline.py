"""Roofline of the paper-profile scans: counted work per figure against this machine's measured rates.

    python benchmarks/roofline.py [--figs 1 3 4 5] [--steps 50] [--repeats 2] [--json _build/bench-scans.json]

For every cost class of a figure's paper grid (configurations of equal width, depth, precision and
group size cost the same; see ``classes``) the script counts the floating-point work and the memory
traffic per configuration from the architecture, measures the machine's matmul rate (a jitted
2048^3 ``jnp.dot``, float64 and float32) and memory bandwidth (a jitted axpy ``a x + y`` on 2^24
float64, counted as 3 x 8 bytes per element) *interleaved* with the scan's own work (rates, class,
rates, class, ...), and reports the best of the repeats for each: the roofline time
``max(flops / matmul rate, bytes / bandwidth)``, the measured time and their ratio (the achieved
fraction). Ratios are also given by process CPU time (all threads), which is less sensitive to other
jobs on a shared machine.

Counting rule (multiply + add = 2 flops; x has N points, layer l maps fan_in to fan_out, input dim 1):

* training step (Figs. 3, 5), per configuration: forward 2 N fan_in fan_out per layer, backward
  signals 2 N fan_in fan_out per layer except the first, weight gradients 2 N fan_in fan_out per
  layer (together ~6 N x parameters), plus the layer-wise kernel 2 N^2 (fan_in + fan_out) per layer
  where the engine computes it (every step for N = 1, the alpha trajectory; at the start and the end
  for Fig. 5). Elementwise work (activations, the momentum update) is not counted as flops.
* training bytes per configuration and step: the dense method reads each weight twice (forward and
  backward) and reads and writes weight and momentum once (the fused update): 6 words per weight; plus
  6 words per activation (N x fan_out per layer: z and h written, read back by the backward pass and
  the gradient); 4 words per weight when every configuration of the group has beta = 0 (Fig. 5: the
  engine then keeps no momentum trace). The shared-W0 low-rank method (float64, N = 1, width >= 256, 2+ hidden layers) reads
  each shared hidden-to-hidden W0 twice per step for the whole batch (2 words per weight / C per
  configuration) and each configuration's bases Q_h, Q_d (rank k x width, k the measured rank) once
  each; its flop count is still the dense architecture's (the issue's definition), although it does
  not form the weight gradients (so up to 1.5x above the method's own matmul work: see the column
  ``method flops``).
* kernels at initialisation (Figs. 1, 4), per configuration: forward and backward signals as above,
  no weight gradients, the kernel 2 N^2 (fan_in + fan_out) per layer; bytes: the raw N(0, 1) draws
  written once and the weights read twice per group (shared by the C scale pairs of a group).
* Fig. 2 is a closed form (no matmuls); only its time is reported.

A Fig. 3 group holds both input points, x0 = 0 and x0 = 1; they are trained as two batches, as
``compute_fig3`` does (until the fifth session the benchmark trained the whole group at x0 = 0, so it
never timed a moving network). The low-rank bytes count each configuration by the representation it
ran in (``trained_bytes``): its own final basis size, or dense from the step at which it outgrew 4 x 32
directions. Only a full-length run (``--steps 1000``) sees those late overflows.

Fig. 3 and 5 are timed on the batched engine (``compute._train_group``, the training of a group,
without the continuum predictions) at ``--steps`` steps (second call; the first call's extra time is
reported as compilation) and scaled to the grid's 1000 steps. Figs. 1 and 4 run the figure's compute
function on one group per class. Only the ``erf`` activation is timed (``--activations`` to add relu);
the class counts include both activations (relu costs at most as much: no transcendental).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # the package leaves the global setting to its caller

from nncosmo_helpers import dynamics, scans  # noqa: E402

compute = importlib.import_module("nncosmo_helpers.scans.compute")  # (scans.compute is a function)

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# machine rates
# ------------------------------------------------------------------------------------------------
def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


class Rates:
    """Jitted float64/float32 matmul (2048^3), float64 axpy (2^24) and float64 matrix-vector (2^11 x 2^13,
    128 MB) rates; best of ``reps`` calls.

    Two bandwidths, because on this machine a write costs much more than a read (a written line is first
    read, then written back): the axpy ``1.0000001 x + y`` (2 reads, 1 write; 24 bytes per element, the
    STREAM triad's convention) is ``"bw"``, the DRAM ceiling of traffic with its 2:1 mix of reads and
    writes, which is the mix of a dense weight's counted traffic with momentum (``train_counts``: read
    twice by the passes, read and written by the update, the momentum read and written; without momentum
    the mix is 3:1). The matrix-vector product (reads only) is ``"bw_read"``, 2.5-4 times ``"bw"`` here:
    no access mix that streams from DRAM goes faster, so ``bytes / bw_read`` bounds the time of counted
    traffic that really streams from DRAM, whatever its mix (not of bytes that stay in cache)."""

    def __init__(self, n=2048, m=2**24):
        self.n, self.m = n, m
        rng = np.random.default_rng(0)
        self.a64 = jnp.asarray(rng.random((n, n)))
        self.b64 = jnp.asarray(rng.random((n, n)))
        self.a32, self.b32 = self.a64.astype(jnp.float32), self.b64.astype(jnp.float32)
        self.x = jnp.asarray(rng.random(m))
        self.y = jnp.asarray(rng.random(m))
        self.mm = jax.jit(lambda a, b: jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST))
        self.axpy = jax.jit(lambda x, y: 1.0000001 * x + y)
        self.mm(self.a64, self.b64).block_until_ready(), self.mm(self.a32, self.b32).block_until_ready()
        self.axpy(self.x, self.y).block_until_ready()
        self.mat = self.x.reshape(2**11, m // 2**11)
        self.vec = jnp.asarray(rng.random(m // 2**11))
        self.gemv = jax.jit(lambda a, v: a @ v)
        self.gemv(self.mat, self.vec).block_until_ready()
        self.best = {"f64": (0.0, 0.0), "f32": (0.0, 0.0), "bw": (0.0, 0.0), "bw_read": (0.0, 0.0)}  # (per wall s, per cpu s)

    def measure(self, reps=3):
        flops = 2.0 * self.n**3
        nbytes = 3.0 * 8 * self.m
        for key, fn, work in (("f64", lambda: self.mm(self.a64, self.b64).block_until_ready(), flops),
                              ("f32", lambda: self.mm(self.a32, self.b32).block_until_ready(), flops),
                              ("bw", lambda: self.axpy(self.x, self.y).block_until_ready(), nbytes),
                              ("bw_read", lambda: self.gemv(self.mat, self.vec).block_until_ready(), 8.0 * self.m)):
            for _ in range(reps):
                wall, cpu = _timed(fn)
                w, c = self.best[key]
                self.best[key] = (max(w, work / wall), max(c, work / max(cpu, 1e-9)))
        return self.best


class FixedRates:
    """A stand-in for :class:`Rates` with given rates (e.g. the machine's measured idle ones, for re-counting)."""

    def __init__(self, flops_per_s, bytes_per_s, flops32_per_s=None, read_bytes_per_s=None):
        f32 = flops32_per_s or flops_per_s
        rd = read_bytes_per_s or bytes_per_s
        self.best = {"f64": (flops_per_s, flops_per_s), "f32": (f32, f32), "bw": (bytes_per_s, bytes_per_s),
                     "bw_read": (rd, rd)}


class Tally:
    """Work of separate computations (one jitted call or NumPy phase each), summed, with the roofline time
    ``max(flops / matmul rate of the dtype, bytes / bandwidth)`` of each computation summed too."""

    def __init__(self, rates):
        self.rates = rates
        self.flops = self.bytes = self.roof = 0.0

    def add(self, flops, nbytes, dtype="float64", times=1):
        peak = self.rates.best["f32" if dtype == "float32" else "f64"][0]
        self.flops += flops * times
        self.bytes += nbytes * times
        self.roof += times * max(flops / peak, nbytes / self.rates.best["bw"][0])

    def result(self, ended=None):
        """(flops, bytes, roofline s, ended) as ``scan_time.py``'s counters return them."""
        return self.flops, self.bytes, self.roof, dict(ended or {})


# ------------------------------------------------------------------------------------------------
# counting
# ------------------------------------------------------------------------------------------------
def layer_shapes(width, hidden_layers, d_in=1):
    dims = [d_in] + [width] * hidden_layers + [1]
    return list(zip(dims[:-1], dims[1:]))


def train_counts(width, L, N, C, dtype, method, rank=0, kernel_every_step=None, kernel_ends=False, momentum=True):
    """(flops, bytes, method flops) per configuration and step of the batched training engine.

    ``momentum=False`` (every configuration of the group has beta = 0, as in Fig. 5): plain gradient
    descent keeps no momentum trace, so a dense weight costs 4 words per step (read twice by the
    forward and backward passes, read and written by the update), not 6."""
    shapes = layer_shapes(width, L)
    item = 4 if dtype == "float32" else 8
    mm = sum(2 * N * fi * fo for fi, fo in shapes)
    back = sum(2 * N * fi * fo for fi, fo in shapes[1:])
    grad = mm
    kern = sum(2 * N * N * (fi + fo) for fi, fo in shapes)
    kernel_every_step = (N == 1) if kernel_every_step is None else kernel_every_step
    flops = mm + back + grad + (kern if kernel_every_step else 0)
    acts = sum(6 * item * N * fo for _, fo in shapes)
    if method == "lowrank":
        hidden = shapes[1:-1]
        rest = shapes[:1] + shapes[-1:]
        w = 6 if momentum else 4
        nbytes = (sum(2 * item * fi * fo / C for fi, fo in hidden) + sum(w * item * fi * fo for fi, fo in rest)
                  + sum(2 * item * rank * (fi + fo) for fi, fo in hidden) + acts)
        method_flops = flops - sum(2 * N * fi * fo for fi, fo in hidden)  # no dense weight gradients
    else:
        nbytes = sum((6 if momentum else 4) * item * fi * fo for fi, fo in shapes) + acts
        method_flops = flops
    return flops, nbytes, method_flops, (2 * kern if kernel_ends else 0)


#: the basis size the scans' engine starts with (``compute._train_group`` uses the engine's default)
ENGINE_RANK = inspect.signature(scans.train_momentum_batched).parameters["rank"].default


def config_bytes(width, L, C, dtype, steps, momentum, method, from_step=0, rank=0, N=1):
    """Memory traffic of one trained configuration on N points, counted by the representation it ran in
    (the low-rank ones: N = 1, Fig. 3).

    ``method`` is the engine's: ``"lowrank"``/``"lowrank4"`` stream their bases at the final ``rank`` (the
    largest reached: an upper bound on the rank needed earlier); ``"dense"`` ran with up to 4 x the engine's
    basis until ``from_step`` and densely after (``from_step = 0``: a dense class, or dense from the start)."""
    if method == "dense":
        return (train_counts(width, L, N, C, dtype, "lowrank", rank=4 * ENGINE_RANK, momentum=momentum)[1] * from_step
                + train_counts(width, L, N, C, dtype, "dense", momentum=momentum)[1] * (steps - from_step))
    return train_counts(width, L, N, C, dtype, "lowrank", rank=rank, momentum=momentum)[1] * steps


def trained_bytes(results, width, L, N, C, dtype, steps, momentum):
    """Memory traffic of the trained configurations (:func:`config_bytes` each). Returns (bytes, final ranks
    of the low-rank configurations, {method: count})."""
    total, ranks, ended = 0.0, [], {}
    for res in results:
        for i, meth in enumerate(res["method"]):
            ended[meth] = ended.get(meth, 0) + 1
            if meth == "dense":  # a dense class, or outgrew the 4x basis at method_from_step
                total += config_bytes(width, L, C, dtype, steps, momentum, "dense",
                                      from_step=int(res["method_from_step"][i]), N=N)
            else:
                k = int(np.max(res["rank"][i]))
                ranks.append(k)
                total += config_bytes(width, L, C, dtype, steps, momentum, meth, rank=k, N=N)
    return total, np.asarray(ranks), ended


def kernel_counts(width, L, N, C):
    """(flops, bytes) per configuration of the kernel-at-initialisation figures (1, 4)."""
    shapes = layer_shapes(width, L)
    flops = (sum(2 * N * fi * fo for fi, fo in shapes) + sum(2 * N * fi * fo for fi, fo in shapes[1:])
             + sum(2 * N * N * (fi + fo) for fi, fo in shapes))
    P = sum(fi * fo + fo for fi, fo in shapes)
    nbytes = 3 * 8 * P / C + sum(6 * 8 * N * fo for _, fo in shapes)
    return flops, nbytes


# ------------------------------------------------------------------------------------------------
# classes of the paper grid
# ------------------------------------------------------------------------------------------------
def classes(fig, activations=("erf",), max_params=None):
    """{class key: (groups of this class, one representative group)} for fig's paper grid."""
    key = scans.group_key(fig)
    groups = {}
    for c in scans.grid(fig, "paper"):
        groups.setdefault(repr(key(c)), []).append(c)
    out = {}
    for g in groups.values():
        c = g[0]
        cls = (c.get("width"), c.get("hidden_layers"), c.get("dtype", "float64"), len(g))
        entry = out.setdefault(cls, {"groups": 0, "rep": None})
        entry["groups"] += 1
        if entry["rep"] is None and c.get("activation", "erf") in activations:
            entry["rep"] = g
    if max_params:
        out = {k: v for k, v in out.items() if k[0] is None or k[0] * k[0] * (k[1] - 1) <= max_params}
    return out


def _fig_x(c):
    if c["fig"] == 3:
        return None  # the group's input points x0 (see run_class)
    return dynamics.centred_interval(c["n_points"], c["interval"], eta=c["eta"], beta=c["beta"])


def _method(c, N):
    return "lowrank" if (c.get("dtype", "float64") == "float64" and N == 1 and c["hidden_layers"] >= 2
                         and c["width"] >= compute.LOWRANK_MIN_WIDTH) else "dense"


def run_class(fig, cls, entry, rates, args):
    """Measure one class: interleaved with the rates, best of args.repeats. Returns a row dict."""
    g = entry["rep"]
    width, L, dtype, C = cls
    row = {"fig": fig, "width": width, "hidden_layers": L, "dtype": dtype, "configs_per_group": C,
           "groups": entry["groups"], "configs": C * entry["groups"]}
    if fig in (3, 5):
        steps = args.steps
        g = [dict(c, steps=steps) for c in g]
        x = _fig_x(g[0])
        N = 1 if x is None else x.shape[0]
        rec = compute.FIG3_RECORD_EVERY if fig == 3 else g[0]["record_every"]
        kernels = fig == 5
        holder = {}
        # as compute_fig3 does: the configurations of one group at each input point are separate batches
        parts = {}
        for c in g:
            parts.setdefault(float(c.get("x0", 0.0)) if fig == 3 else None, []).append(c)

        def fn():
            holder["res"] = [compute._train_group(sub, x if x0 is None else np.full((1, 1), x0), record_every=rec,
                                                  kernels=kernels) for x0, sub in parts.items()]

        method = _method(g[0], N)
        scale = scans.STEPS / steps
    else:
        N = 1 if fig == 1 else g[0]["n_points"]
        method, scale = "kernels", 1.0

        def fn():
            scans.COMPUTE[fig](g)

    first, _ = _timed(fn)
    best_wall, best_cpu = math.inf, math.inf
    for _ in range(args.repeats):
        rates.measure(args.rate_reps)
        wall, cpu = _timed(fn)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    rates.measure(args.rate_reps)
    key = "f32" if dtype == "float32" else "f64"
    peak_w, peak_c = rates.best[key]
    bw_w, bw_c = rates.best["bw"]
    if fig in (3, 5):
        momentum = any(c["beta"] != 0.0 for c in g)  # the engine drops the trace when all are 0
        f, b, mf, ends = train_counts(width, L, N, C, dtype, method, momentum=momentum)
        flops = (f * steps + ends) * C
        mflops = (mf * steps + ends) * C
        nbytes, ranks, ended = trained_bytes(holder["res"], width, L, N, C, dtype, steps, momentum)
        row.update(method=method, rank=int(np.max(ranks)) if ranks.size else 0,
                   rank_median=float(np.median(ranks)) if ranks.size else 0.0, ended=ended, steps_timed=steps)
    else:
        f, b = kernel_counts(width, L, N, C)
        flops, nbytes, mflops = f * C, b * C, f * C
        row.update(method="kernels at initialisation", steps_timed=None)
    t_flop_w, t_byte_w = flops / peak_w, nbytes / bw_w
    t_flop_c, t_byte_c = flops / peak_c, nbytes / bw_c
    roof_w, roof_c = max(t_flop_w, t_byte_w), max(t_flop_c, t_byte_c)
    roof_r = max(t_flop_w, nbytes / rates.best["bw_read"][0])
    row.update(
        N=N, flops_per_config=flops / C * scale, bytes_per_config=nbytes / C * scale,
        method_flops_per_config=mflops / C * scale,
        intensity=flops / nbytes, bound="compute" if t_flop_w >= t_byte_w else "memory",
        roofline_s=roof_w * scale * entry["groups"], measured_s=best_wall * scale * entry["groups"],
        roofline_read_s=roof_r * scale * entry["groups"], fraction_read=roof_r / best_wall,
        compile_s=max(0.0, first - best_wall) * entry["groups"],
        fraction=roof_w / best_wall, fraction_cpu=roof_c / best_cpu,
        method_fraction=max(mflops / peak_w, t_byte_w) / best_wall,
    )
    return row


def fig2_row(args):
    configs = scans.grid(2, "paper")
    best = min(_timed(lambda: scans.compute(2, configs))[0] for _ in range(args.repeats))
    return {"fig": 2, "configs": len(configs), "groups": 1, "method": "closed form", "flops_per_config": 0.0,
            "bytes_per_config": 0.0, "roofline_s": 0.0, "roofline_read_s": 0.0, "measured_s": best, "compile_s": 0.0,
            "fraction": None, "fraction_read": None, "fraction_cpu": None, "bound": "Python overhead (no matmuls)"}


def _fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def print_table(rows, rates):
    f64w, f64c = rates.best["f64"]
    f32w, _ = rates.best["f32"]
    bww, bwc = rates.best["bw"]
    print(f"\nmachine (best in this run): float64 matmul {f64w / 1e9:.1f} GFLOP/s ({f64c / 1e9:.1f} per CPU-s), "
          f"float32 {f32w / 1e9:.1f} GFLOP/s, axpy bandwidth {bww / 1e9:.1f} GB/s ({bwc / 1e9:.1f} per CPU-s), "
          f"read (matrix-vector) bandwidth {rates.best['bw_read'][0] / 1e9:.1f} GB/s; "
          f"ridge point {f64w / bww:.1f} flop/byte (float64)")
    hdr = ("| fig | width | L | dtype | configs (groups x C) | method | flops/config | bytes/config | flop/byte "
           "| bound | roofline (s) | measured (s) | fraction | fraction (CPU time) | of the read-ceiling roofline | compile (s) |")
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for r in rows:
        print(f"| {r['fig']} | {r.get('width') or '-'} | {r.get('hidden_layers') or '-'} | {r.get('dtype', '-')} "
              f"| {r['configs']} ({r['groups']} x {r.get('configs_per_group', r['configs'])}) | {r['method']} "
              f"| {_fmt(r['flops_per_config'])} | {_fmt(r['bytes_per_config'])} | {_fmt(r.get('intensity'))} "
              f"| {r['bound']} | {r['roofline_s']:.1f} | {r['measured_s']:.1f} | {_fmt(r['fraction'], '.0%')} "
              f"| {_fmt(r['fraction_cpu'], '.0%')} | {_fmt(r['fraction_read'], '.0%')} | {r['compile_s']:.1f} |")
    print("\nper figure (sum over classes; measured = steady-state run time scaled to 1000 steps, no compilation; "
          "roofline = max(flops / matmul rate, bytes / axpy bandwidth), read ceiling: the same with the read bandwidth):")
    out = {}
    for fig in sorted({r["fig"] for r in rows}):
        rr = [r for r in rows if r["fig"] == fig]
        roof, meas = sum(r["roofline_s"] for r in rr), sum(r["measured_s"] for r in rr)
        roof_r = sum(r["roofline_read_s"] for r in rr)
        comp = sum(r["compile_s"] for r in rr)
        out[fig] = {"roofline_s": roof, "roofline_read_s": roof_r, "measured_s": meas, "compile_s": comp,
                    "fraction": roof / meas if roof else None, "fraction_read": roof_r / meas if roof_r else None,
                    "flops": sum(r["flops_per_config"] * r["configs"] for r in rr),
                    "bytes": sum(r["bytes_per_config"] * r["configs"] for r in rr)}
        print(f"  fig {fig}: {out[fig]['flops']:.3g} flops, {out[fig]['bytes']:.3g} bytes; roofline {roof:.1f} s, "
              f"measured {meas:.1f} s (+ {comp:.1f} s compilation): {_fmt(out[fig]['fraction'], '.0%')} of the roofline, "
              f"{_fmt(out[fig]['fraction_read'], '.0%')} of the read-ceiling roofline ({roof_r:.1f} s)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figs", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--steps", type=int, default=20, help="steps timed per Fig. 3/5 group (scaled to 1000)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rate-reps", type=int, default=2)
    ap.add_argument("--activations", nargs="+", default=["erf"])
    ap.add_argument("--max-params", type=float, default=2e7,
                    help="skip classes with more hidden-to-hidden weights than this (default: the width-10000 networks with 2 and 5 hidden layers of Figs. 1 and 4)")
    ap.add_argument("--only", nargs="+", default=None,
                    help="only classes whose 'width,L,dtype' contains one of these strings")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="only classes with these group sizes (configurations per group)")
    ap.add_argument("--json", default=str(ROOT / "_build" / "bench-scans.json"))
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}; jax {jax.__version__}, devices {jax.devices()}", flush=True)
    rates = Rates()
    rates.measure(args.rate_reps)
    rows = []
    for fig in args.figs:
        if fig == 2:
            rows.append(fig2_row(args))
            continue
        for cls, entry in sorted(classes(fig, tuple(args.activations), args.max_params).items()):
            if entry["rep"] is None or (args.only and not any(o in f"{cls[0]},{cls[1]},{cls[2]}" for o in args.only)):
                continue
            if args.sizes and cls[3] not in args.sizes:
                continue
            row = run_class(fig, cls, entry, rates, args)
            rows.append(row)
            print(f"  fig {fig} {cls}: roofline {row['roofline_s']:.1f} s, measured {row['measured_s']:.1f} s, "
                  f"fraction {row['fraction']:.0%} (CPU time {row['fraction_cpu']:.0%}), {row['bound']}-bound"
                  + (f"; ended {row['ended']}, median final rank {row['rank_median']:.0f}" if row.get("ended") else ""),
                  flush=True)
    per_fig = print_table(rows, rates)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "rates": {"float64_flops_per_s": rates.best["f64"][0], "float32_flops_per_s": rates.best["f32"][0],
                  "bandwidth_bytes_per_s": rates.best["bw"][0], "read_bandwidth_bytes_per_s": rates.best["bw_read"][0],
                  "float64_flops_per_cpu_s": rates.best["f64"][1],
                  "bandwidth_bytes_per_cpu_s": rates.best["bw"][1]},
        "rows": rows, "per_figure": per_fig, "load_average_end": os.getloadavg(), "host": platform.node(),
        "args": vars(args)}, indent=1, default=str))
    print(f"\nwritten {args.json}; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
