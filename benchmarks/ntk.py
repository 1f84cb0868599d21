"""Empirical-NTK benchmark: nncosmo_helpers (float32) against neural-tangents 0.6.5.

    .venv/bin/python benchmarks/ntk.py            # or: make bench-ntk
    .venv/bin/python benchmarks/ntk.py --markdown # also print the README table

What it measures (on the CPU; every function is compiled and called once before timing):

1. ``ntk.empirical_ntk(apply_fn, params, x)`` (x2 = x1) for erf MLPs (W_std 1, b_std 0.05,
   float32) with (width, hidden layers, N points) in CONFIGS, x = N points on [-1, 1];
2. the same kernels with neural-tangents 0.6.5 in a persistent worker process of the side
   environment (/tmp/ntenv if it exists, else .nt-venv, or --nt-python; see
   tools/nt_reference/README.md): ``jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,),
   vmap_axes=0, implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES))(x, None, params)`` on
   the stax network with the SAME parameters; it also reports its deviation from our kernel.
   To make the comparison robust to the load of a shared machine, ours and NT's timings alternate
   in ``--rounds`` rounds of ``--repeats`` calls; medians over all calls are reported, and the
   spread of the per-round ratios shows how noisy the run was;
3. this machine's float32 matmul rate: a jitted 4096 x 4096 x 4096 ``jnp.dot``, timed call by
   call alternating with our NTK at (4000, 2, 400), and the achieved GFLOP/s of that NTK as a
   fraction of it. Counted flops (multiply + add = 2): the forward pass
   (2 N d_in w + (L - 1) 2 N w^2 + 2 N w), the backward pass ((L - 1) 2 N w^2 + N w) and the
   per-layer Gram products H H^T and D D^T (2 N^2 fan_in and 2 N^2 fan_out for each of the L + 1
   layers, full products although they are symmetric), with the forward/backward done once
   because x2 = x1; elementwise work (erf, exp, products) is not counted;
4. alpha = Theta(0, 0) for width 10000 x 5 hidden layers in float64 (3.2 GB of parameters), in a
   fresh subprocess whose peak RSS (``resource.getrusage``) is reported, with the time of the
   parameter initialisation and of alpha (first call including compilation, then a second call).

The workers (``--worker nt`` / ``--worker alpha``) are internal. Timings on a shared machine are
inflated by other processes; the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = [(1000, 2, 100), (1000, 5, 100), (10000, 1, 100), (4000, 2, 400)]  # (width, hidden layers, N)
FLOPS_CONFIG = (4000, 2, 400)
W_STD, B_STD, ACTIVATION = 1.0, 0.05, "erf"
PEAK_SIZE = 4096
ALPHA_CONFIG = (10000, 5)
REPLY = "@@NTK-BENCH@@ "


def wall_times(fn, repeats):
    """Wall and process CPU times (s) of ``repeats`` calls of ``fn()`` (which must block until its
    result is ready), as two lists. The CPU time (all threads of the process) is less sensitive to
    other processes on the machine than the wall time."""
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def ntk_flops(width, hidden_layers, n, d_in=1):
    """Flops of one symmetric structured NTK (see the module docstring)."""
    w, L = width, hidden_layers
    if L == 0:
        return 2 * n * n * d_in + 2 * n * d_in
    forward = 2 * n * d_in * w + (L - 1) * 2 * n * w * w + 2 * n * w
    backward = (L - 1) * 2 * n * w * w + n * w
    fan_in = [d_in] + [w] * L
    fan_out = [w] * L + [1]
    gram = sum(2 * n * n * (a + b) for a, b in zip(fan_in, fan_out))
    return forward + backward + gram


def inputs(n):
    import numpy as np
    return np.linspace(-1.0, 1.0, n, dtype=np.float32)[:, None]


# ---------------------------------------------------------------------------------------------
# workers
# ---------------------------------------------------------------------------------------------
def nt_worker():
    """Runs in the neural-tangents side environment, driven line by line over stdin/stdout.

    Commands (one JSON object per line): {"cmd": "load", "npz": path} builds the stax network with
    the parameters in ``path``, jit-compiles NT's kernel function and replies with its deviation
    from our kernel; {"cmd": "time", "repeats": R} replies with R wall times of one kernel call;
    {"cmd": "quit"}. Replies are single lines starting with REPLY (other output is ignored).
    """
    import jax
    import jax.numpy as jnp
    import neural_tangents as nt
    import numpy as np
    from neural_tangents import stax

    def reply(obj):
        sys.stdout.write(REPLY + json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply(dict(jax=jax.__version__, neural_tangents=nt.__version__))
    call = None
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        if msg["cmd"] == "load":
            data = np.load(msg["npz"])
            hidden_layers = int(data["hidden_layers"])
            width = int(data["W0"].shape[1]) if hidden_layers else 1
            layers = []
            for _ in range(hidden_layers):
                layers += [stax.Dense(width, W_std=W_STD, b_std=B_STD, parameterization="ntk"), stax.Erf()]
            layers.append(stax.Dense(1, W_std=W_STD, b_std=B_STD, parameterization="ntk"))
            _, apply_fn, _ = stax.serial(*layers)
            params = []
            for l in range(hidden_layers + 1):
                params.append((jnp.asarray(data[f"W{l}"]), jnp.asarray(data[f"b{l}"])[None, :]))
                if l < hidden_layers:
                    params.append(())
            kernel_fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                                    implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES))
            x = jnp.asarray(data["x"])
            k = kernel_fn(x, None, params).block_until_ready()
            ours = data["k_ours"]
            call = lambda: kernel_fn(x, None, params).block_until_ready()  # noqa: E731
            call()
            reply(dict(dtype=str(k.dtype),
                       max_rel_dev_from_ours=float(np.abs(np.asarray(k, np.float64) - ours).max() / np.abs(ours).max())))
        elif msg["cmd"] == "time":
            wall, cpu = wall_times(call, msg["repeats"])
            reply(dict(wall=wall, cpu=cpu))


class NTWorker:
    """The driver's handle on :func:`nt_worker` running in the side environment."""

    def __init__(self, python):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
        self.proc = subprocess.Popen([python, __file__, "--worker", "nt"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.versions = self._read()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        raise RuntimeError(f"neural-tangents worker died (exit code {self.proc.wait()})")

    def ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.write(json.dumps(dict(cmd="quit")) + "\n")
        self.proc.stdin.close()
        self.proc.wait()


def alpha_worker(out):
    """Runs in a fresh process: alpha for width 10000 x 5 hidden layers in float64, peak RSS."""
    import resource

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from nncosmo_helpers import network, ntk

    width, hidden_layers = ALPHA_CONFIG
    t0 = time.perf_counter()
    init_fn, apply_fn = network.mlp(width=width, hidden_layers=hidden_layers, activation=ACTIVATION,
                                    W_std=W_STD, b_std=B_STD, dtype=jnp.float64)
    params = init_fn(jax.random.PRNGKey(0), 1)
    jax.block_until_ready(params)
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    a = float(ntk.alpha(apply_fn, params))
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    a2 = float(ntk.alpha(apply_fn, params))
    t_second = time.perf_counter() - t0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux
    pathlib.Path(out).write_text(json.dumps(dict(
        alpha=a, alpha_repeat=a2, init_s=t_init, alpha_first_call_s=t_first, alpha_s=t_second,
        peak_rss_gb=rss_gb, n_params=network.n_params(params), dtype=str(params["layer_0"]["W"].dtype))))


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
def side_python():
    for candidate in (pathlib.Path("/tmp/ntenv/bin/python"), ROOT / ".nt-venv" / "bin" / "python"):
        if candidate.exists():
            return str(candidate)
    return None


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def run(args):
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from nncosmo_helpers import network, ntk

    R, rounds = args.repeats, args.rounds
    load0 = os.getloadavg()
    print(f"jax {jax.__version__}, {os.cpu_count()} cores, load average {load0[0]:.1f}; "
          f"{rounds} rounds x {R} calls per measurement, ours and NT alternating", flush=True)

    a = jax.random.normal(jax.random.PRNGKey(1), (PEAK_SIZE, PEAK_SIZE), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(2), (PEAK_SIZE, PEAK_SIZE), jnp.float32)
    dot = jax.jit(jnp.dot)
    matmul = lambda: dot(a, b).block_until_ready()  # noqa: E731
    matmul()

    nt_worker_ = None
    py = args.nt_python or side_python()
    if args.skip_nt:
        print("neural-tangents: skipped (--skip-nt)")
    elif py is None or not pathlib.Path(py).exists():
        print("neural-tangents: no side environment (/tmp/ntenv or .nt-venv); run `make bench-ntk`")
    else:
        nt_worker_ = NTWorker(py)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_ntk_"))
    rows = []
    mm_times, mm_cpu = [], []
    for cfg in CONFIGS:
        width, hidden_layers, n = cfg
        init_fn, apply_fn = network.mlp(width=width, hidden_layers=hidden_layers, activation=ACTIVATION,
                                        W_std=W_STD, b_std=B_STD, dtype=jnp.float32)
        params = init_fn(jax.random.PRNGKey(0), 1)
        x = jnp.asarray(inputs(n))
        k = ntk.empirical_ntk(apply_fn, params, x)
        assert k.dtype == jnp.float32, k.dtype
        ours = lambda: ntk.empirical_ntk(apply_fn, params, x).block_until_ready()  # noqa: E731
        ours()
        row = dict(config=cfg, ours=[], ours_cpu=[], nt=[], nt_cpu=[], round_ratios=[])
        if nt_worker_:
            arrays = {"x": np.asarray(x), "k_ours": np.asarray(k, np.float64), "hidden_layers": hidden_layers}
            for l in range(hidden_layers + 1):
                arrays[f"W{l}"] = np.asarray(params[f"layer_{l}"]["W"])
                arrays[f"b{l}"] = np.asarray(params[f"layer_{l}"]["b"])
            np.savez(tmp / "params.npz", **arrays)
            info = nt_worker_.ask(cmd="load", npz=str(tmp / "params.npz"))
            row.update(nt_dtype=info["dtype"], nt_dev=info["max_rel_dev_from_ours"])
        for _ in range(rounds):
            if cfg == FLOPS_CONFIG:  # interleave with the matmul so both see the same machine load
                for _ in range(R):
                    for key, t in zip(("ours", "ours_cpu"), wall_times(ours, 1)):
                        row[key] += t
                    wall, cpu = wall_times(matmul, 1)
                    mm_times += wall
                    mm_cpu += cpu
            else:
                for key, t in zip(("ours", "ours_cpu"), wall_times(ours, R)):
                    row[key] += t
            if nt_worker_:
                times = nt_worker_.ask(cmd="time", repeats=R)
                row["nt"] += times["wall"]
                row["nt_cpu"] += times["cpu"]
                row["round_ratios"].append(median(row["nt"][-R:]) / median(row["ours"][-R:]))
        row["ours_ms"] = 1e3 * median(row["ours"])
        row["ours_cpu_ms"] = 1e3 * median(row["ours_cpu"])
        msg = f"  w={width:5d} L={hidden_layers} N={n:3d}: ours {row['ours_ms']:9.2f} ms"
        if nt_worker_:
            row["nt_ms"] = 1e3 * median(row["nt"])
            row["nt_cpu_ms"] = 1e3 * median(row["nt_cpu"])
            row["cpu_ratio"] = row["nt_cpu_ms"] / row["ours_cpu_ms"]
            row["ratio"] = row["nt_ms"] / row["ours_ms"]
            msg += (f", NT {row['nt_ms']:9.2f} ms, NT/ours {row['ratio']:.2f} "
                    f"(rounds {min(row['round_ratios']):.2f}-{max(row['round_ratios']):.2f})")
        print(msg, flush=True)
        rows.append(row)
    if nt_worker_:
        versions = nt_worker_.versions
        nt_worker_.close()

    alpha_result = None
    if not args.skip_alpha:
        out = tmp / "alpha.json"
        subprocess.run([sys.executable, __file__, "--worker", "alpha", "--out", str(out)], check=True)
        alpha_result = json.loads(out.read_text())
    load1 = os.getloadavg()

    # -- report -------------------------------------------------------------------------------
    peak = 2 * PEAK_SIZE**3 / median(mm_times) / 1e9
    peak_cpu = 2 * PEAK_SIZE**3 / median(mm_cpu) / 1e9  # per CPU-second of the process
    flops_row = next(r for r in rows if r["config"] == FLOPS_CONFIG)
    flops = ntk_flops(*FLOPS_CONFIG)
    achieved = flops / (flops_row["ours_ms"] / 1e3) / 1e9
    achieved_cpu = flops / (flops_row["ours_cpu_ms"] / 1e3) / 1e9
    print()
    print("wall-clock medians (ms); NT/ours per round shows the noise; CPU = process CPU time (all threads)")
    print(f"{'width':>6} {'L':>2} {'N':>4} {'ours':>9} {'NT':>9} {'NT/ours':>8} {'per round':>11} "
          f"{'ours CPU':>9} {'NT CPU':>9} {'ratio':>6} {'NT vs ours':>10}")
    for r in rows:
        w, L, n = r["config"]
        line = f"{w:6d} {L:2d} {n:4d} {r['ours_ms']:9.2f}"
        if "nt_ms" in r:
            line += (f" {r['nt_ms']:9.2f} {r['ratio']:8.2f} {min(r['round_ratios']):5.2f}-{max(r['round_ratios']):<5.2f} "
                     f"{r['ours_cpu_ms']:9.2f} {r['nt_cpu_ms']:9.2f} {r['cpu_ratio']:6.2f} {r['nt_dev']:10.1e}")
        print(line)
    print(f"float32 matmul {PEAK_SIZE}^3 (alternating with the {FLOPS_CONFIG} NTK): {peak:.1f} GFLOP/s wall, "
          f"{peak_cpu:.1f} GFLOP per CPU-second")
    print(f"our NTK at {FLOPS_CONFIG}: {flops / 1e9:.2f} GFLOP in {flops_row['ours_ms']:.1f} ms = {achieved:.1f} GFLOP/s "
          f"= {100 * achieved / peak:.0f}% of the matmul rate (by CPU time: {100 * achieved_cpu / peak_cpu:.0f}%)")
    if alpha_result:
        a = alpha_result
        print(f"alpha, width {ALPHA_CONFIG[0]} x {ALPHA_CONFIG[1]} hidden layers, {a['dtype']} "
              f"({a['n_params'] / 1e6:.0f}M parameters): alpha = {a['alpha']:.6g}, init {a['init_s']:.1f} s, "
              f"first call {a['alpha_first_call_s']:.2f} s, second call {a['alpha_s']:.3f} s, "
              f"peak RSS {a['peak_rss_gb']:.2f} GB")
    print(f"load average: start {load0[0]:.1f}, end {load1[0]:.1f}")

    if args.markdown:
        print()
        print(f"Run {datetime.date.today().isoformat()}, {os.cpu_count()} cores, jax {jax.__version__}"
              + (f" vs jax {versions['jax']} + neural-tangents {versions['neural_tangents']}" if nt_worker_ else "")
              + f", load average {load0[0]:.1f} at the start and {load1[0]:.1f} at the end; medians of "
              f"{rounds} x {R} calls, ours and neural-tangents alternating.")
        print()
        print("| width | hidden layers | N | ours (ms) | neural-tangents (ms) | NT / ours | per-round range "
              "| NT / ours by CPU time |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            w, L, n = r["config"]
            if "nt_ms" in r:
                nt_part = (f"{r['nt_ms']:.1f} | {r['ratio']:.1f} | {min(r['round_ratios']):.1f}-"
                           f"{max(r['round_ratios']):.1f} | {r['cpu_ratio']:.1f}")
            else:
                nt_part = "- | - | - | -"
            print(f"| {w} | {L} | {n} | {r['ours_ms']:.1f} | {nt_part} |")
        print()
        print(f"- float32 matmul ({PEAK_SIZE}^3, alternating with the NTK): {peak:.0f} GFLOP/s; our NTK at "
              f"{FLOPS_CONFIG}: {flops / 1e9:.1f} GFLOP, {achieved:.0f} GFLOP/s = {100 * achieved / peak:.0f}% of it "
              f"({100 * achieved_cpu / peak_cpu:.0f}% by CPU time).")
        if alpha_result:
            print(f"- alpha at width {ALPHA_CONFIG[0]} x {ALPHA_CONFIG[1]} hidden layers, float64 "
                  f"({alpha_result['n_params'] / 1e6:.0f}M parameters): peak RSS {alpha_result['peak_rss_gb']:.1f} GB, "
                  f"init {alpha_result['init_s']:.1f} s, alpha {alpha_result['alpha_s']:.2f} s "
                  f"(first call incl. compilation {alpha_result['alpha_first_call_s']:.1f} s).")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating ours/NT rounds (default 3)")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--nt-python", help="python of the neural-tangents side environment "
                        "(default: /tmp/ntenv/bin/python if it exists, else .nt-venv/bin/python)")
    parser.add_argument("--skip-nt", action="store_true", help="do not run neural-tangents")
    parser.add_argument("--skip-alpha", action="store_true", help="do not run the width-10000 alpha check")
    parser.add_argument("--worker", choices=["nt", "alpha"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "nt":
        return nt_worker()
    if args.worker == "alpha":
        return alpha_worker(args.out)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
