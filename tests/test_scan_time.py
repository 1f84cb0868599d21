"""benchmarks/scan_time.py: how the time of each stored group is recovered from the records' ``created``
stamps, from the scans command's per-scan totals (one uninterrupted invocation) or from the start of each
invocation (a run that was interrupted and resumed)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scan_time as st  # noqa: E402


def test_one_invocation_chains_groups_and_gives_the_first_the_rest_of_the_total():
    assert st._log_durations([10.0, 13.0, 20.0], 30.0) == [20.0, 3.0, 7.0]


def test_without_a_total_or_with_a_smaller_one_the_first_group_is_untimed():
    assert st._log_durations([10.0, 13.0, 20.0], None) == [None, 3.0, 7.0]
    assert st._log_durations([10.0, 13.0, 20.0], 1.0) == [None, 3.0, 7.0]


def test_invocation_starts_chain_every_scan_and_leave_the_downtime_out():
    # invocation 0 started at 0: Fig. 3 groups end at 10, 13, then ap-mean-field's at 18, 30; killed.
    # invocation 1 started at 100: ap-mean-field's last group at 150, then bg-runs at 160.
    ends = {(3, 0): 10.0, (3, 1): 13.0, ("ap", 0): 18.0, ("ap", 1): 30.0, ("ap", 2): 150.0, ("bg", 0): 160.0}
    d = st._chain_durations(ends, [0.0, 100.0])
    assert d == {(3, 0): 10.0, (3, 1): 3.0, ("ap", 0): 5.0, ("ap", 1): 12.0, ("ap", 2): 50.0, ("bg", 0): 10.0}
    # the 70 s between the kill and the resume is in no group's time
    assert sum(d.values()) == 30.0 + 60.0


def test_groups_stored_before_the_first_start_are_untimed():
    assert st._chain_durations({(1, 0): 5.0, (1, 1): 12.0}, [10.0]) == {(1, 0): None, (1, 1): 2.0}


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
