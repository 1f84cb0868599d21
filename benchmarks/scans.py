"""Benchmark of the scan training: batched (one compile per architecture, shared-W0 low-rank updates)
against a naive one-configuration-at-a-time loop over ``train.train_momentum``, and an estimate of
the paper-profile wall time by figure.

    python benchmarks/scans.py [--block-width 1000] [--block-layers 2] [--naive-sample 3] [--estimate-steps 100]

Part 1 (Fig. 3 block): the 60 configurations (5 optimisers x 12 losses) of one Fig. 3 architecture
and initialisation, 1000 steps each. The batched run is timed in full; the naive loop is timed on
``--naive-sample`` configurations and extrapolated (it is a plain Python loop, its cost is linear in
the number of configurations, compilation included, since every (W_std, b_std) pair and every call
with new hyperparameter *values* reuses the same compiled scan). On the sampled configurations the
relative end-point deviation of Fig. 3 is computed from both runs and compared.

Part 2 (paper-profile estimate): for every distinct compiled group of the paper grids (figure,
width, depth, precision; both activations are timed where they differ in cost), one group is run
with ``--estimate-steps`` steps instead of 1000, twice (first call: compilation + run, second call:
run only). The estimate per group is compile + run * (1000 / estimate-steps); groups are summed
per figure with their multiplicity. Prediction solves are included in the Fig. 3/5 group times and
are scaled with the steps too, so the estimate errs high (Fig. 5 most).

Part 3 (``--run-paper DIR``): instead of estimating, run the whole paper profile into DIR (the store
makes it resumable) and print the measured wall time per figure.

Timings on a shared machine are inflated by other processes; the script prints the load average.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # the package leaves the global setting to its caller

from nncosmo_helpers import scans, train
from nncosmo_helpers.loss import PolynomialLoss
from nncosmo_helpers.scans import engine


def _now():
    return time.perf_counter()


def fig3_block(width, layers, activation, naive_sample):
    configs = [c for c in scans.grid(3, "paper") if c["width"] == width and c["hidden_layers"] == layers
               and c["activation"] == activation and c["W_std"] == 1.0 and c["dtype"] == "float64"
               and c["seed"] == 0 and c["x0"] == 0.0]
    x0 = np.zeros((1, 1))
    t0 = _now()
    batched = scans.compute_fig3(configs)
    t_batched = _now() - t0
    arch = engine.Arch(width, layers, activation)
    params = engine.raw_params(arch, 0)
    rng = np.random.default_rng(0)
    sample = sorted(rng.choice(len(configs), size=min(naive_sample, len(configs)), replace=False))
    t0 = _now()
    agree = []
    for i in sample:
        c = configs[i]
        _, apply_fn = arch.mlp(c["W_std"], c["b_std"])
        loss = PolynomialLoss(c["m"], c["f0"], c["n"])
        ref = train.train_momentum(apply_fn, params, x0, eta=c["eta"], beta=c["beta"], loss=loss, steps=c["steps"],
                                   on_divergence="report")
        if ref.diverged or batched[i]["diverged"]:
            agree.append((i, ref.diverged, batched[i]["diverged"], np.nan))
            continue
        f = np.asarray(ref.f)[:, 0]
        move = abs(f[-1] - f[0])
        dev_ref = abs(batched[i]["f_pred_end"] - f[-1]) / move
        dev_bat = abs(batched[i]["f_pred_end"] - batched[i]["f_end"]) / abs(batched[i]["f_end"] - batched[i]["f_init"])
        agree.append((i, dev_ref, dev_bat, abs(dev_bat - dev_ref) / dev_ref))
    t_naive = (_now() - t0) / len(sample) * len(configs)
    return configs, batched, t_batched, t_naive, agree


def _scaled(configs, steps):
    out = []
    for c in configs:
        c = dict(c)
        if "steps" in c:
            c["steps"] = steps
        out.append(c)
    return out


def estimate(steps):
    """Paper-profile wall-time estimate per figure (seconds), and the per-group measurements."""
    rows, total = [], {}
    for fig in scans.FIGS:
        configs = scans.grid(fig, "paper")
        key = scans.group_key(fig)
        groups = {}
        for c in configs:
            groups.setdefault(repr(key(c)), []).append(c)
        # one representative per cost class: (width, depth, dtype, activation, size); seeds/intervals/inits
        # of equal shape cost the same
        classes = {}
        for g in groups.values():
            c = g[0]
            cls = (c.get("width"), c.get("hidden_layers"), c.get("dtype", "float64"), c.get("activation"), len(g))
            classes.setdefault(cls, []).append(g)
        fig_total = 0.0
        for cls, gs in classes.items():
            g = gs[0]
            scale = 1.0
            if fig in (3, 5):
                g = _scaled(g, steps)
                scale = 1000 / steps
            t0 = _now()
            scans.COMPUTE[fig](g)
            t1 = _now()
            if fig in (3, 5):
                scans.COMPUTE[fig](g)
                t2 = _now()
                run = t2 - t1
                compile_ = max(0.0, (t1 - t0) - run)
                est = compile_ + run * scale + (len(gs) - 1) * run * scale
            else:
                est = (t1 - t0) * len(gs)
                compile_, run = float("nan"), t1 - t0
            rows.append((fig, cls, len(gs), compile_, run, est))
            fig_total += est
            print(f"  fig {fig} {cls}: x{len(gs)} groups, first call {t1 - t0:.1f}s, estimate {est:.1f}s", flush=True)
        total[fig] = fig_total
    return total, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-width", type=int, default=1000)
    ap.add_argument("--block-layers", type=int, default=2)
    ap.add_argument("--activation", default="erf")
    ap.add_argument("--naive-sample", type=int, default=3)
    ap.add_argument("--estimate-steps", type=int, default=100)
    ap.add_argument("--skip-block", action="store_true")
    ap.add_argument("--skip-estimate", action="store_true")
    ap.add_argument("--run-paper", metavar="DIR", default=None, help="run the paper profile into DIR and time it")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    if not args.skip_block:
        print(f"\nFig. 3 block: width {args.block_width}, {args.block_layers} hidden layers, {args.activation}, W_std 1")
        configs, batched, tb, tn, agree = fig3_block(args.block_width, args.block_layers, args.activation, args.naive_sample)
        methods = {r["method"] for r in batched}
        print(f"  {len(configs)} configurations x 1000 steps; methods {sorted(methods)}")
        print(f"  batched: {tb:.1f} s ({tb / len(configs):.2f} s/config, compilation and predictions included)")
        print(f"  naive loop (train_momentum, extrapolated from {len(agree)}): {tn:.1f} s ({tn / len(configs):.2f} s/config)")
        print(f"  speed-up: {tn / tb:.1f}x")
        for i, dr, db, rel in agree:
            print(f"  config {i}: Fig. 3 deviation plain float64 {dr:.6g}, batched {db:.6g}, relative difference {rel:.2g}")
    if not args.skip_estimate:
        print(f"\nPaper-profile estimate (each compiled group class run at {args.estimate_steps} steps, scaled to 1000):")
        total, _ = estimate(args.estimate_steps)
        for fig, t in total.items():
            print(f"  fig {fig}: {t / 60:6.1f} min")
        print(f"  total (Figs. 1-5; Fig. 6 reuses Fig. 5): {sum(total.values()) / 60:.1f} min")
    if args.run_paper:
        print(f"\nPaper profile, measured (results in {args.run_paper}; stored results are reused):")
        times = scans.timed_run(scans.FIGS, "paper", args.run_paper, progress=False)
        for fig, t in times.items():
            print(f"  fig {fig}: {t / 60:6.1f} min")
        print(f"  total: {sum(times.values()) / 60:.1f} min")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
