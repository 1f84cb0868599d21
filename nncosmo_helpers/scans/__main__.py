"""Command line: ``python -m nncosmo_helpers.scans --profile paper [--figs 1 3 oc-sweep] [--results DIR] [--scheduler ADDRESS]``.

Runs the scans of Figs. 1-5 and the chapters' scans of :mod:`.beyond` (all by default) into the results store (one JSON file per configuration; rerunning
reuses what is stored, so an interrupted run resumes), with a progress bar, and prints the wall time
per figure. With ``--scheduler`` (or ``NNCOSMO_SCHEDULER``) the configurations not yet stored go to
that Dask cluster, whose workers write them into the same results directory (which they must see);
see :mod:`nncosmo_helpers.scans.distributed`.
"""

from __future__ import annotations

import argparse
import os
import sys

from .distributed import SCHEDULER_ENV  # (the module imports Dask only when a scan is sent to a cluster)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nncosmo_helpers.scans", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="quick or paper (default: $NNCOSMO_PROFILE or quick)")
    parser.add_argument("--figs", nargs="+", default=None,
                        help="figures (1-5) and chapter scans (oc-sweep, wp-alpha, ...) to run (default: all of them)")
    parser.add_argument("--results", default=None, help="results root (default: $NNCOSMO_RESULTS or <repo>/results)")
    parser.add_argument("--scheduler", default=os.environ.get(SCHEDULER_ENV) or None,
                        help="address of a Dask scheduler (e.g. tcp://host:8786) to run the scans on "
                             "(default: $NNCOSMO_SCHEDULER; unset: in this process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)  # the scans are float64 physics

    from .. import profiles

    try:
        profile = profiles.get_profile(args.profile)
    except ValueError as exc:
        parser.error(str(exc))
    from . import PAPER_SUBSETS, SCANS, grid, results_dir, timed_run

    figs = tuple(int(f) if f.isdigit() else f for f in args.figs) if args.figs else SCANS
    bad = [f for f in figs if f not in SCANS]
    if bad:
        parser.error(f"--figs must be among {SCANS}, got {bad}")
    where = results_dir(profile, args.results)
    print(f"profile {profile}: figures {figs} -> {where}" + (f" (Dask scheduler {args.scheduler})" if args.scheduler else ""))
    for fig in figs:
        note = f"; paper-profile subset: {PAPER_SUBSETS[fig]}" if profile == "paper" and fig in PAPER_SUBSETS else ""
        print(f"  fig {fig}: {len(grid(fig, profile))} configurations{note}")
    times = timed_run(figs, profile, args.results, progress=not args.no_progress, scheduler=args.scheduler)
    for fig, t in times.items():
        print(f"fig {fig}: {t:8.1f} s")
    print(f"total: {sum(times.values()) if not args.scheduler else max(times.values(), default=0.0):8.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
