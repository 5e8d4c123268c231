"""Timestamps come back in UTC whatever zone the database answers in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from moderation.db import UTCDateTime


def test_an_aware_value_in_another_zone_comes_back_as_utc():
    vienna = timezone(timedelta(hours=1))
    stored = datetime(2026, 11, 27, 0, 30, tzinfo=vienna)
    value = UTCDateTime().process_result_value(stored, None)
    assert value.tzinfo == UTC
    assert (value.year, value.month, value.day, value.hour) == (2026, 11, 26, 23)


def test_a_naive_value_from_sqlite_is_read_as_utc():
    value = UTCDateTime().process_result_value(datetime(2026, 11, 27, 0, 30), None)
    assert value == datetime(2026, 11, 27, 0, 30, tzinfo=UTC)
