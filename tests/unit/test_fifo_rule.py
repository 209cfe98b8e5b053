"""The FIFO rule of a partial batch response, as a pure function: no queue, no database."""

from __future__ import annotations

from ingest.fifo import blocked_by_failures


def test_a_failure_blocks_the_rest_of_its_group_and_no_other():
    # GIVEN a batch mixing two groups, where a's first record failed
    batch = [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b"), ("a3", "a")]

    # WHEN the rule is applied
    blocked = blocked_by_failures(batch, {"a1"})

    # THEN a's later records are blocked by a1, and b's go on
    assert blocked == {"a2": "a1", "a3": "a1"}


def test_records_before_the_failure_are_not_blocked():
    # GIVEN a group whose middle record failed
    batch = [("a1", "a"), ("a2", "a"), ("a3", "a")]

    # WHEN the rule is applied
    blocked = blocked_by_failures(batch, {"a2"})

    # THEN only what follows it is blocked
    assert blocked == {"a3": "a2"}


def test_the_first_failure_of_a_group_blocks_and_later_failures_keep_their_own_reason():
    # GIVEN a group with two failed records and a good one after each
    batch = [("a1", "a"), ("a2", "a"), ("a3", "a"), ("a4", "a")]

    # WHEN the rule is applied
    blocked = blocked_by_failures(batch, {"a1", "a3"})

    # THEN the good records are blocked by the first failure; the failed ones are not reported blocked
    assert blocked == {"a2": "a1", "a4": "a1"}


def test_records_without_a_group_block_nothing():
    # GIVEN records of a standard queue (no message group), one failed
    batch = [("m1", None), ("m2", None)]

    # WHEN the rule is applied
    blocked = blocked_by_failures(batch, {"m1"})

    # THEN nothing else is held back
    assert blocked == {}


def test_without_failures_nothing_is_blocked():
    assert blocked_by_failures([("a1", "a"), ("a2", "a")], set()) == {}
