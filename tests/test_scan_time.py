"""benchmarks/scan_time.py: how the time of each stored group is recovered from the records' ``created``
stamps and the scans command's per-scan totals, for one invocation and for a run that was resumed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scan_time as st  # noqa: E402


def test_one_invocation_chains_groups_and_gives_the_first_the_rest_of_the_total():
    ends = [10.0, 13.0, 20.0]
    d = st._segment_durations(ends, 5, [{"5": 30.0}], [])
    assert d == [30.0 - 3.0 - 7.0, 3.0, 7.0]


def test_without_a_total_or_with_a_smaller_one_the_first_group_is_untimed():
    ends = [10.0, 13.0, 20.0]
    assert st._segment_durations(ends, 5, [{}], []) == [None, 3.0, 7.0]
    assert st._segment_durations(ends, 5, [{"5": 1.0}], []) == [None, 3.0, 7.0]


def test_a_resume_breaks_the_chain_and_each_invocation_times_its_own_first_group():
    # invocation 0 stored groups at 10, 13 and was killed; invocation 1 started at 100 and stored 150, 160
    ends = [10.0, 13.0, 150.0, 160.0]
    totals = [{}, {"ap-mean-field": 65.0}]  # the killed invocation printed no total for the scan
    d = st._segment_durations(ends, "ap-mean-field", totals, [100.0])
    # the 137 s gap across the resume (downtime) is in no group's time
    assert d == [None, 3.0, 65.0 - 10.0, 10.0]


def test_a_scan_only_read_by_the_resumed_invocation_keeps_the_first_invocations_timing():
    ends = [10.0, 13.0, 20.0]
    totals = [{"3": 30.0}, {"3": 0.2}]  # the resumed invocation found every Fig. 3 group stored
    assert st._segment_durations(ends, 3, totals, [100.0]) == [20.0, 3.0, 7.0]
