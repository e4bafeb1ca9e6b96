"""The differential helpers compare errors by SQLSTATE *and* message (tests/pgwire_util.py): a message
that differs fails unless that very case lists the difference, and a listed difference that is gone fails
too, so the list cannot go stale."""

from __future__ import annotations

import pytest

from tests.pgwire_util import assert_same_outcome, check_message_differences, error_outcome

PG = error_outcome("42703", "column a.nosuch does not exist")
OURS = error_outcome("42703", 'column "nosuch" of relation "a" does not exist')
CASE = "SELECT a.nosuch FROM a"


def test_same_error_passes() -> None:
    assert_same_outcome(PG, PG, CASE)
    assert_same_outcome((["a"], [["1"]]), (["a"], [["1"]]), CASE)


def test_other_message_fails() -> None:
    with pytest.raises(AssertionError, match="nosuch"):
        assert_same_outcome(OURS, PG, CASE)


def test_listed_difference_needs_the_same_sqlstate() -> None:
    allowed = {CASE: "DuckDB's binder words it"}
    assert_same_outcome(OURS, PG, CASE, allowed)
    with pytest.raises(AssertionError):
        assert_same_outcome(error_outcome("42P01", OURS[2]), PG, CASE, allowed)
    with pytest.raises(AssertionError):  # a difference listed for another case does not count
        assert_same_outcome(OURS, PG, "SELECT 1", allowed)
    with pytest.raises(AssertionError):  # an error where PostgreSQL succeeds
        assert_same_outcome(OURS, (["a"], []), CASE, allowed)


def test_listed_difference_that_is_gone_fails() -> None:
    with pytest.raises(AssertionError, match="remove the allowed difference"):
        assert_same_outcome(PG, PG, CASE, {CASE: "fixed since"})


def test_extra_fields_after_the_message_still_compared() -> None:
    allowed = {CASE: "worded differently"}
    assert_same_outcome((*OURS, ["notice"]), (*PG, ["notice"]), CASE, allowed)
    with pytest.raises(AssertionError):
        assert_same_outcome((*OURS, []), (*PG, ["notice"]), CASE, allowed)


def test_differences_must_name_cases_that_run() -> None:
    check_message_differences({CASE: "why"}, [CASE, "SELECT 1"])
    with pytest.raises(AssertionError, match="not run"):
        check_message_differences({"SELECT 2": "why"}, [CASE])
    with pytest.raises(AssertionError):
        check_message_differences({CASE: " "}, [CASE])
