"""The checks of the combine and scan exercises pass right answers and name the known
mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from throughtime import linear_recurrence, scan_checks
from throughtime.checks import CheckFailed


def good_combine(decay_1, increment_1, decay_2, increment_2):
    return decay_1 * decay_2, decay_2 * increment_1 + increment_2


def good_scan(decay, increment):
    decay, increment = decay.copy(), increment.copy()
    offset = 1
    while offset < decay.shape[0]:
        new = good_combine(decay[:-offset], increment[:-offset], decay[offset:],
                           increment[offset:])
        decay[offset:], increment[offset:] = new
        offset *= 2
    return increment


def test_right_answers_pass(capsys):
    scan_checks.check_combine(good_combine)
    scan_checks.check_hillis_steele(good_scan)
    assert capsys.readouterr().out.count("check_") == 2


@pytest.mark.parametrize("wrong,hint", [
    (lambda d1, u1, d2, u2: (d1 * d2, d1 * u2 + u1), "wrong order"),
    (lambda d1, u1, d2, u2: (d1 * d2, u1 + u2), "must decay"),
    (lambda d1, u1, d2, u2: (d1 + d2, d2 * u1 + u2), "multiply"),
    (lambda d1, u1, d2, u2: (d1 * d2, d1 * u1 + u2), "own decay"),
    (lambda d1, u1, d2, u2: (d1 * d2,), "2"),
])
def test_combine_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        scan_checks.check_combine(wrong)


def swapped_scan(decay, increment):
    decay, increment = decay.copy(), increment.copy()
    offset = 1
    while offset < decay.shape[0]:
        new = good_combine(decay[offset:], increment[offset:], decay[:-offset],
                           increment[:-offset])
        decay[offset:], increment[offset:] = new
        offset *= 2
    return increment


def exclusive_scan(decay, increment):
    states = good_scan(decay, increment)
    return np.concatenate([np.zeros_like(states[:1]), states[:-1]])


def in_place_scan(decay, increment):
    decay, increment = decay.copy(), increment.copy()
    offset = 1
    while offset < decay.shape[0]:
        for t in range(offset, decay.shape[0]):
            decay[t], increment[t] = good_combine(decay[t - offset], increment[t - offset],
                                                  decay[t], increment[t])
        offset *= 2
    return increment


def early_stop_scan(decay, increment):
    decay, increment = decay.copy(), increment.copy()
    offset = 1
    while 2 * offset <= decay.shape[0]:
        new = good_combine(decay[:-offset], increment[:-offset], decay[offset:],
                           increment[offset:])
        decay[offset:], increment[offset:] = new
        offset *= 2
    return increment


def mutating_scan(decay, increment):
    states = good_scan(decay, increment)
    increment[:] = 0.0
    return states


@pytest.mark.parametrize("wrong,hint", [
    (swapped_scan, "wrong order"),
    (exclusive_scan, "exclusive"),
    (in_place_scan, "already replaced"),
    (early_stop_scan, "a round early"),
    (mutating_scan, "increment"),
    (lambda decay, increment: increment, "states"),
    (linear_recurrence.scan_hillis_steele, "library"),
])
def test_scan_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        scan_checks.check_hillis_steele(wrong)


def test_grading_entry_points():
    for check, fn in (("check_combine", good_combine), ("check_hillis_steele", good_scan)):
        cases = scan_checks.hidden_cases(check, seed=77)
        outcomes = scan_checks.run_cases(check, [case.public for case in cases], fn)
        assert scan_checks.judge_cases(check, cases, outcomes).passed
        assert scan_checks.hidden_check(check, fn, seed=[1, 2])
    cases = scan_checks.hidden_cases("check_combine", seed=77)
    outcomes = scan_checks.run_cases("check_combine", [c.public for c in cases],
                                     lambda d1, u1, d2, u2: (d1 * d2, u1 + u2))
    assert not scan_checks.judge_cases("check_combine", cases, outcomes).passed
    with pytest.raises(ValueError, match="check"):
        scan_checks.hidden_cases("check_nothing", seed=1)


def test_the_library_combine_itself_is_refused():
    with pytest.raises(CheckFailed, match="library"):
        scan_checks.check_combine(linear_recurrence.combine)
