"""benchmarks/scan_time.py: how the time of each stored group is recovered from the records' ``created``
stamps, from the scans command's per-scan totals (one uninterrupted invocation) or from the start of each
invocation (a run that was interrupted and resumed)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scan_time as st  # noqa: E402


import pytest  # noqa: E402

P, Q = ("vm", 1), ("vm", 2)  # two processes: an interrupted invocation and the resumed one


def test_one_invocation_chains_groups_and_gives_the_first_the_rest_of_the_total():
    assert st._log_durations([10.0, 13.0, 20.0], 30.0, [P] * 3) == [20.0, 3.0, 7.0]


def test_without_a_total_or_with_a_smaller_one_the_first_group_is_untimed():
    assert st._log_durations([10.0, 13.0, 20.0], None, [P] * 3) == [None, 3.0, 7.0]
    assert st._log_durations([10.0, 13.0, 20.0], 1.0, [P] * 3) == [None, 3.0, 7.0]


def test_log_mode_never_times_a_gap_across_two_processes():
    # a resumed scan: the gap 13 -> 150 holds the downtime; the resumed log's total is not the whole scan's
    assert st._log_durations([10.0, 13.0, 150.0, 160.0], 65.0, [P, P, Q, Q]) == [None, 3.0, None, 10.0]


def test_invocation_starts_chain_every_scan_and_leave_the_downtime_out():
    # invocation P started at 0: Fig. 3 groups end at 10, 13, then ap-mean-field's at 18, 30; killed.
    # invocation Q started at 100: ap-mean-field's last group at 150, then bg-runs at 160.
    ends = {(3, 0): 10.0, (3, 1): 13.0, ("ap", 0): 18.0, ("ap", 1): 30.0, ("ap", 2): 150.0, ("bg", 0): 160.0}
    procs = {k: (P if e < 100 else Q) for k, e in ends.items()}
    d = st._chain_durations(ends, procs, [0.0, 100.0])
    assert d == {(3, 0): 10.0, (3, 1): 3.0, ("ap", 0): 5.0, ("ap", 1): 12.0, ("ap", 2): 50.0, ("bg", 0): 10.0}
    assert sum(d.values()) == 30.0 + 60.0  # the 70 s between the kill and the resume is in no group's time


def test_starts_that_do_not_match_the_invocations_are_refused():
    ends = {(1, 0): 5.0, (1, 1): 12.0, (1, 2): 50.0}
    procs = {(1, 0): P, (1, 1): P, (1, 2): Q}
    with pytest.raises(ValueError, match="one --started-at each"):
        st._chain_durations(ends, procs, [0.0])              # the resume's start left out
    with pytest.raises(ValueError, match="not between"):
        st._chain_durations(ends, procs, [0.0, 8.0])         # a start before the first invocation's last group
    with pytest.raises(ValueError, match="not between"):
        st._chain_durations(ends, procs, [6.0, 20.0])        # a start after its invocation's first group


def test_a_time_without_an_offset_is_utc_and_one_with_an_offset_keeps_it():
    assert st._utc("2026-12-03T05:30:58") == st._utc("2026-12-03T06:30:58+01:00") == st._utc("2026-12-03T05:30:58+00:00")


def test_three_bounds_of_a_group_use_their_own_bandwidths():
    import roofline as rl

    cfg = {"width": 1000, "hidden_layers": 1, "steps": 1000, "n_points": 100, "beta": 0.0}
    members = [(0.0, cfg, {}), (1.0, dict(cfg, seed=1), {})]
    rates = rl.FixedRates(1e11, 1e10, flops32_per_s=2e11, read_bytes_per_s=4e10)
    f, b, _, bounds = st._bounds(5, members, rates)
    assert f > 0 and b > 0
    # this class is memory-bound at both bandwidths: the three bounds differ, each by its own rate
    assert abs(bounds["roofline_s"] - b / 1e10) < 1e-9 * b / 1e10
    assert abs(bounds["read_s"] - b / 4e10) < 1e-9 * b / 4e10
    assert abs(bounds["compute_s"] - f / 1e11) < 1e-9 * f / 1e11
    assert bounds["compute_s"] < bounds["read_s"] < bounds["roofline_s"]


def test_a_float32_group_is_bounded_at_the_float32_rate():
    import roofline as rl

    cfg = {"width": 100, "hidden_layers": 2, "dtype": "float32", "steps": 1000, "beta": 0.5, "x0": 0.0}
    members = [(0.0, cfg, {"method": "dense"}), (1.0, dict(cfg, seed=1), {"method": "dense"})]
    rates = rl.FixedRates(1e11, 1e10, flops32_per_s=2e11, read_bytes_per_s=4e10)
    f, b, ended, bounds = st._bounds(3, members, rates)
    assert ended == {"dense": 2}
    assert abs(bounds["compute_s"] - f / 2e11) < 1e-9 * f / 2e11
    assert abs(bounds["roofline_s"] - max(f / 2e11, b / 1e10)) < 1e-9 * bounds["roofline_s"]
