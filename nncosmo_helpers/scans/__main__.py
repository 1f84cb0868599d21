"""Command line: ``python -m nncosmo_helpers.scans --profile paper [--figs 1 3] [--shard i/n] [--results DIR]``.

Runs the scans of Figs. 1-5 into the results store (one JSON file per configuration; rerunning
reuses what is stored, so an interrupted run resumes), with a progress bar per figure, and prints
the wall time per figure.
"""

from __future__ import annotations

import argparse
import sys


def _shard(text):
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"--shard i/n needs n >= 1 and 0 <= i < n, got {text!r}")
    return (i, n)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nncosmo_helpers.scans", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="quick or paper (default: $NNCOSMO_PROFILE or quick)")
    parser.add_argument("--figs", type=int, nargs="+", default=None, help="figures to run (default: 1 2 3 4 5)")
    parser.add_argument("--shard", type=_shard, default=None, help="run only shard i of n (i/n); merge with results.merge")
    parser.add_argument("--results", default=None, help="results root (default: $NNCOSMO_RESULTS or <repo>/results)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)  # the scans are float64 physics

    from .. import profiles

    try:
        profile = profiles.get_profile(args.profile)
    except ValueError as exc:
        parser.error(str(exc))
    from . import FIGS, PAPER_SUBSETS, grid, results_dir, timed_run

    figs = tuple(args.figs) if args.figs else FIGS
    bad = [f for f in figs if f not in FIGS]
    if bad:
        parser.error(f"--figs must be among {FIGS}, got {bad}")
    where = results_dir(profile, args.results)
    print(f"profile {profile}: figures {figs} -> {where}" + (f" (shard {args.shard[0]}/{args.shard[1]})" if args.shard else ""))
    for fig in figs:
        note = f"; paper-profile subset: {PAPER_SUBSETS[fig]}" if profile == "paper" else ""
        print(f"  fig {fig}: {len(grid(fig, profile))} configurations{note}")
    times = timed_run(figs, profile, args.results, args.shard, progress=not args.no_progress)
    for fig, t in times.items():
        print(f"fig {fig}: {t:8.1f} s")
    print(f"total: {sum(times.values()):8.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
