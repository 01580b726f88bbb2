"""Durations as users write them, and back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stepwell.definition.durations import format_duration, parse_duration
from stepwell.definition.models import Retry


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("500ms", timedelta(milliseconds=500)),
        ("1m5ms", timedelta(minutes=1, milliseconds=5)),
        ("1.5h", timedelta(minutes=90)),
        (" 10s ", timedelta(seconds=10)),
        ("PT5M", timedelta(minutes=5)),
        ("pt5m", timedelta(minutes=5)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT1.5S", timedelta(seconds=1.5)),
        (90, timedelta(seconds=90)),
        (0, timedelta(0)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(hours=3), timedelta(hours=3)),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "  ", "abc", "5 minutes", "-5s", -5, True, None, "P", "PT", "5M", "P1M", "h", [1]]
)
def test_rejected_forms_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="30s, 5m, 2h"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=1, hours=1, minutes=1, seconds=1), "1d1h1m1s"),
        (timedelta(days=2), "2d"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=250), "0.25s"),
    ],
)
def test_format(delta, text):
    assert format_duration(delta) == text


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(0, 400 * 86400 * 1000))
def test_formatting_then_parsing_gives_the_same_duration(millis):
    delta = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(delta)) == delta


def test_models_take_and_give_durations_as_text():
    retry = Retry.model_validate({"interval": "PT2S", "max_interval": "1m"})
    assert retry.interval == timedelta(seconds=2)
    dumped = retry.model_dump(mode="json")
    assert (dumped["interval"], dumped["max_interval"]) == ("2s", "1m")
    with pytest.raises(ValidationError, match="is not a duration"):
        Retry.model_validate({"interval": "soon"})
