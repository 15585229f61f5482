"""Tests for states.calendar against the real 2026 Chinese calendar (国务院办公厅 notice)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from states.calendar import DayOverride, Due, Period, WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- the 2026 calendar itself ------------------------------------------------

# Makeup working weekends (调休上班) of 2026.
MAKEUP_2026 = ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
# Weekday holidays of 2026.
WEEKDAY_HOLIDAYS_2026 = [
    "2026-01-01",
    "2026-01-02",
    "2026-02-16",
    "2026-02-17",
    "2026-02-18",
    "2026-02-19",
    "2026-02-20",
    "2026-02-23",
    "2026-04-06",
    "2026-05-01",
    "2026-05-04",
    "2026-05-05",
    "2026-06-19",
    "2026-09-25",
    "2026-10-01",
    "2026-10-02",
    "2026-10-05",
    "2026-10-06",
    "2026-10-07",
]


@pytest.mark.parametrize("day", MAKEUP_2026)
def test_makeup_weekends_are_working_days(day: str) -> None:
    assert d(day).weekday() >= 5
    assert CAL.is_working_day(d(day))


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("2026-01-01", "2026-01-03"),
        ("2026-02-15", "2026-02-23"),
        ("2026-04-04", "2026-04-06"),
        ("2026-05-01", "2026-05-05"),
        ("2026-06-19", "2026-06-21"),
        ("2026-09-25", "2026-09-27"),
        ("2026-10-01", "2026-10-07"),
    ],
)
def test_2026_holiday_blocks_are_off(first: str, last: str) -> None:
    day = d(first)
    while day <= d(last):
        assert not CAL.is_working_day(day), day
        day += timedelta(days=1)


def test_matches_holidays_package_for_every_day_of_2026() -> None:
    cn = holidays.country_holidays("CN", years=2026, categories=("public",))
    day = d("2026-01-01")
    while day.year == 2026:
        assert CAL.is_working_day(day) == cn.is_working_day(day), day
        day += timedelta(days=1)


def test_2026_has_248_working_days() -> None:
    # 261 weekdays - 19 weekday holidays + 6 makeup weekends.
    assert CAL.working_days_between(d("2025-12-31"), d("2026-12-31")) == 248


def test_year_days_lists_exactly_the_non_ordinary_days() -> None:
    rows = CAL.year_days(2026)
    assert [r[0] for r in rows] == sorted(d(x) for x in MAKEUP_2026 + WEEKDAY_HOLIDAYS_2026)
    assert (d("2026-02-14"), True, "调休上班", "package") in rows
    assert (d("2026-02-17"), False, "春节", "package") in rows


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-02-17", (False, "春节", "package")),
        ("2026-02-14", (True, "调休上班", "package")),
        ("2026-05-02", (False, "劳动节", "package")),  # weekend holiday keeps its name
        ("2026-03-14", (False, "", "weekend")),
        ("2026-03-16", (True, "", "weekday")),
    ],
)
def test_day_info(day: str, expected: tuple[bool, str, str]) -> None:
    assert CAL.day_info(d(day)) == expected


# -- working-day periods -----------------------------------------------------


@pytest.mark.parametrize(
    ("start", "period", "due"),
    [
        # Spring Festival: 2/14 makeup Sat (1), 2/15-2/23 off, 2/24..2/27 (2..5).
        ("2026-02-13", "5 working days", "2026-02-27"),
        ("2026-02-13", "6 working days", "2026-02-28"),  # makeup Saturday
        ("2026-02-13", "1 working day", "2026-02-14"),
        # New Year: 1/1-1/3 off, 1/4 Sunday makeup.
        ("2025-12-31", "2 working days", "2026-01-05"),
        ("2026-01-03", "1 working day", "2026-01-04"),
        # Qingming 4/4-4/6.
        ("2026-04-03", "1 working day", "2026-04-07"),
        # Labour Day: 4/30 (1), 5/1-5/5 off, 5/6..5/8 (2..4), 5/9 makeup Sat (5).
        ("2026-04-29", "5 working days", "2026-05-09"),
        ("2026-05-08", "1 working day", "2026-05-09"),
        # Dragon Boat 6/19.
        ("2026-06-18", "1 working day", "2026-06-22"),
        # National Day: 9/20 Sunday makeup, 9/25 Mid-Autumn, 10/1-10/7 off, 10/10 makeup Sat.
        ("2026-09-18", "3 working days", "2026-09-22"),
        ("2026-09-24", "1 working day", "2026-09-28"),
        ("2026-09-29", "5 working days", "2026-10-12"),
        ("2026-10-09", "1 working day", "2026-10-10"),
        ("2026-03-13", "15 working days", "2026-04-03"),
        ("2026-03-13", "0 working days", "2026-03-13"),
        ("2026-03-14", "0 working days", "2026-03-14"),  # n == 0 returns start itself
    ],
)
def test_add_working_days(start: str, period: str, due: str) -> None:
    result = CAL.add(d(start), Period.parse(period))
    assert result.day == d(due)
    assert not result.provisional


@pytest.mark.parametrize("start", ["2026-01-30", "2026-02-13", "2026-04-29", "2026-09-17"])
@pytest.mark.parametrize("n", [1, 5, 10, 20, 60])
def test_working_days_between_inverts_add(start: str, n: int) -> None:
    due = CAL.add_working_days(d(start), n)
    assert CAL.is_working_day(due)
    assert CAL.working_days_between(d(start), due) == n


# -- calendar-day and month periods ------------------------------------------


@pytest.mark.parametrize(
    ("start", "period", "due"),
    [
        ("2026-03-04", "10 calendar days", "2026-03-16"),  # Sat -> Mon
        ("2026-03-04", "11 calendar days", "2026-03-16"),  # Sun -> Mon
        ("2026-03-04", "9 calendar days", "2026-03-13"),  # Friday, no roll
        ("2026-09-21", "10 calendar days", "2026-10-08"),  # 10/1 holiday -> 10/8
        ("2026-02-05", "10 calendar days", "2026-02-24"),  # 2/15 Spring Festival
        ("2026-01-26", "20日", "2026-02-24"),
        ("2026-04-25", "6d", "2026-05-06"),  # 5/1 Labour Day
        # Makeup working weekends do not roll.
        ("2026-02-18", "10 calendar days", "2026-02-28"),
        ("2026-04-29", "10 calendar days", "2026-05-09"),
        ("2026-09-10", "10 calendar days", "2026-09-20"),
        ("2026-03-13", "0 calendar days", "2026-03-13"),
        ("2026-03-14", "0 calendar days", "2026-03-16"),
    ],
)
def test_add_calendar_days(start: str, period: str, due: str) -> None:
    assert CAL.add(d(start), Period.parse(period)).day == d(due)


@pytest.mark.parametrize(
    ("start", "period", "due"),
    [
        ("2026-01-31", "1 month", "2026-02-28"),  # clamped; 2/28 is a makeup Saturday
        ("2025-11-30", "3 months", "2026-02-28"),
        ("2026-03-31", "2 months", "2026-06-01"),  # 5/31 is a Sunday
        ("2026-08-31", "1 month", "2026-09-30"),
        ("2026-01-31", "9 months", "2026-11-02"),  # 10/31 Saturday
        ("2026-09-01", "1 month", "2026-10-08"),  # 10/1 National Day
        ("2026-09-30", "1 month", "2026-10-30"),
        ("2026-01-17", "1个月", "2026-02-24"),  # 2/17 Spring Festival
        ("2026-08-20", "1m", "2026-09-20"),  # makeup Sunday: no roll
        ("2025-12-15", "12 months", "2026-12-15"),
    ],
)
def test_add_months(start: str, period: str, due: str) -> None:
    result = CAL.add(d(start), Period.parse(period))
    assert result.day == d(due)
    assert not result.provisional


def test_periods_ending_on_makeup_sunday_do_not_roll() -> None:
    assert CAL.add(d("2026-07-20"), Period.parse("2 months")).day == d("2026-09-20")
    assert CAL.add(d("2026-08-20"), Period.parse("31 calendar days")).day == d("2026-09-20")


def test_month_clamps_in_leap_year() -> None:
    assert CAL.add(d("2028-01-31"), Period(1, "months")).day == d("2028-02-29")


# -- due instants and time zones ---------------------------------------------


def test_due_at_is_start_of_next_day_in_shanghai() -> None:
    due = CAL.add(d("2026-02-13"), Period(5, "working_days"))
    assert due == Due(
        day=d("2026-02-27"), at=datetime(2026, 2, 28, tzinfo=SHANGHAI), provisional=False
    )
    assert due.at.tzinfo is not None
    assert due.at.utcoffset() == timedelta(hours=8)
    assert due.at == datetime(2026, 2, 27, 16, 0, tzinfo=UTC)


def test_due_from_uses_local_date() -> None:
    # 2026-02-13T17:30Z is 2026-02-14 01:30 in Shanghai: the event day is 2/14.
    start = datetime(2026, 2, 13, 17, 30, tzinfo=UTC)
    assert CAL.local_date(start) == d("2026-02-14")
    due = CAL.due_from(start, Period(5, "working_days"))
    assert due.day == d("2026-02-28")
    # Just before Shanghai midnight it is still 2/13.
    earlier = datetime(2026, 2, 13, 15, 59, tzinfo=UTC)
    assert CAL.due_from(earlier, Period(5, "working_days")).day == d("2026-02-27")


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        CAL.due_from(datetime(2026, 2, 13, 12, 0), Period(5, "working_days"))
    with pytest.raises(ValueError, match="aware"):
        CAL.local_date(datetime(2026, 2, 13, 12, 0))


def test_datetime_is_rejected_where_a_date_is_expected() -> None:
    with pytest.raises(TypeError):
        CAL.add(datetime(2026, 2, 13, tzinfo=UTC), Period(1, "working_days"))


def test_end_of_day_other_time_zone() -> None:
    utc_cal = WorkCalendar(tz="UTC")
    assert utc_cal.tz == ZoneInfo("UTC")
    assert utc_cal.end_of_day(d("2026-02-27")) == datetime(2026, 2, 28, tzinfo=UTC)
    assert CAL.end_of_day(d("2026-12-31")) == datetime(2027, 1, 1, tzinfo=SHANGHAI)


# -- provisional years and official notices ----------------------------------

# Test data: a plausible (invented) 2027 notice that differs from the package's guess
# (package: 2/5 and 2/8-2/10 off, no makeup days).
NOTICE_2027 = [
    *(DayOverride(d("2027-02-06") + timedelta(days=i), "holiday", "春节") for i in range(9)),
    DayOverride(d("2027-02-20"), "workday", "调休上班"),
]


def test_provisional_years() -> None:
    assert not CAL.is_provisional_year(2026)
    assert not CAL.is_provisional_year(2025)
    assert CAL.is_provisional_year(2027)
    assert WorkCalendar(builtin_official_through=2025).is_provisional_year(2026)


def test_package_guess_for_2027_has_no_makeup_days() -> None:
    assert [row for row in CAL.year_days(2027) if row[1]] == []
    assert not CAL.is_working_day(d("2027-02-05"))  # 除夕 guessed off
    assert not CAL.is_working_day(d("2027-02-10"))
    assert not CAL.is_working_day(d("2027-02-20"))


@pytest.mark.parametrize(
    ("start", "period", "due", "provisional"),
    [
        ("2026-12-30", "1 working day", "2026-12-31", False),
        ("2026-12-25", "10 working days", "2027-01-11", True),
        ("2026-12-31", "1 calendar day", "2027-01-04", True),  # 2027-01-01 guessed holiday
        ("2026-12-31", "2 months", "2027-03-01", True),  # 2027-02-28 is a Sunday
        ("2027-03-01", "0 working days", "2027-03-01", True),
    ],
)
def test_deadlines_touching_2027_are_provisional(
    start: str, period: str, due: str, provisional: bool
) -> None:
    result = CAL.add(d(start), Period.parse(period))
    assert result.day == d(due)
    assert result.provisional is provisional


def test_official_notice_replaces_package_view() -> None:
    guess = CAL.add(d("2027-02-04"), Period(5, "working_days"))
    assert guess == Due(d("2027-02-17"), datetime(2027, 2, 18, tzinfo=SHANGHAI), True)

    cal = CAL.with_official_year(2027, NOTICE_2027)
    assert not cal.is_provisional_year(2027)
    # 2/5 is now a working day (1), 2/6-2/14 off, 2/15..2/18 (2..5).
    official = cal.add(d("2027-02-04"), Period(5, "working_days"))
    assert official == Due(d("2027-02-18"), datetime(2027, 2, 19, tzinfo=SHANGHAI), False)
    # Makeup Saturday from the notice.
    assert cal.add(d("2027-02-18"), Period(2, "working_days")).day == d("2027-02-20")
    assert CAL.add(d("2027-02-18"), Period(2, "working_days")).day == d("2027-02-22")
    # Days the notice does not list are ordinary, even where the package guessed a holiday.
    assert cal.is_working_day(d("2027-01-01"))
    assert cal.day_info(d("2027-02-20")) == (True, "调休上班", "official")
    assert cal.day_info(d("2027-02-08")) == (False, "春节", "official")
    assert (d("2027-02-06"), False, "春节", "official") in cal.year_days(2027)
    # The original calendar is unchanged.
    assert CAL.is_provisional_year(2027)
    assert not CAL.is_working_day(d("2027-02-20"))


def test_official_notice_via_constructor_and_gap_year() -> None:
    cal = WorkCalendar(official={2028: []})
    assert not cal.is_provisional_year(2028)
    assert cal.is_provisional_year(2027)
    # A span from 2026 into 2028 passes through provisional 2027.
    assert cal.add(d("2026-12-15"), Period(13, "months")).provisional
    assert not cal.add(d("2028-03-01"), Period(5, "working_days")).provisional


def test_notice_can_schedule_makeup_day_in_previous_year() -> None:
    cal = CAL.with_official_year(2027, [DayOverride(d("2026-12-27"), "workday", "调休上班")])
    assert cal.is_working_day(d("2026-12-27"))
    assert cal.day_info(d("2026-12-27"))[2] == "official"


def test_with_official_year_replaces_earlier_notice() -> None:
    cal = CAL.with_official_year(2027, NOTICE_2027).with_official_year(2027, [])
    assert cal.is_working_day(d("2027-02-08"))
    assert not cal.is_working_day(d("2027-02-20"))


# -- local additions ---------------------------------------------------------


def test_local_holiday_and_workday() -> None:
    cal = CAL.with_local(
        [
            DayOverride(d("2026-03-10"), "holiday", "地方假日"),
            DayOverride(d("2026-03-14"), "workday", "地方调休"),
        ]
    )
    assert not cal.is_working_day(d("2026-03-10"))
    assert cal.is_working_day(d("2026-03-14"))
    assert cal.add(d("2026-03-09"), Period(1, "working_days")).day == d("2026-03-11")
    assert cal.add(d("2026-03-13"), Period(1, "working_days")).day == d("2026-03-14")
    assert cal.day_info(d("2026-03-10")) == (False, "地方假日", "local")
    assert (d("2026-03-14"), True, "地方调休", "local") in cal.year_days(2026)
    # Immutable: the base calendar is unaffected.
    assert CAL.is_working_day(d("2026-03-10"))


def test_remembered_deadlines_belong_to_their_calendar() -> None:
    # The calendar remembers the deadlines it worked out; a derived calendar must not reuse
    # them (here a local holiday on the base calendar's due day moves the deadline).
    one_day, five = Period(1, "working_days"), Period(5, "working_days")
    assert CAL.add(d("2026-03-09"), one_day).day == d("2026-03-10")
    assert CAL.reminder_day(d("2026-03-16"), five) == d("2026-03-09")
    cal = CAL.with_local([DayOverride(d("2026-03-10"), "holiday", "地方假日")])
    assert cal.add(d("2026-03-09"), one_day).day == d("2026-03-11")
    assert cal.reminder_day(d("2026-03-16"), five) == d("2026-03-06")
    assert CAL.add(d("2026-03-09"), one_day).day == d("2026-03-10")  # and the base is unchanged
    assert cal.add(d("2026-03-09"), one_day) is cal.add(d("2026-03-09"), one_day)


def test_local_overrides_package_and_official_and_later_wins() -> None:
    cal = CAL.with_official_year(2027, NOTICE_2027).with_local(
        [
            DayOverride(d("2026-02-17"), "workday"),
            DayOverride(d("2027-02-20"), "holiday", "x"),
        ]
    )
    assert cal.is_working_day(d("2026-02-17"))
    assert not cal.is_working_day(d("2027-02-20"))
    assert cal.with_local([DayOverride(d("2027-02-20"), "workday")]).is_working_day(d("2027-02-20"))


def test_local_does_not_make_a_year_official() -> None:
    cal = CAL.with_local([DayOverride(d("2027-03-01"), "holiday")])
    assert cal.is_provisional_year(2027)


def test_invalid_overrides() -> None:
    with pytest.raises(TypeError):
        DayOverride(datetime(2026, 3, 10), "holiday")
    with pytest.raises(ValueError):
        DayOverride(d("2026-03-10"), "vacation")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both"):
        CAL.with_local(
            [DayOverride(d("2026-03-10"), "holiday"), DayOverride(d("2026-03-10"), "workday")]
        )


def test_no_working_day_ever_raises_instead_of_looping() -> None:
    days = [DayOverride(d("2026-03-01") + timedelta(days=i), "holiday") for i in range(500)]
    cal = CAL.with_local(days)
    with pytest.raises(ValueError, match="no working day"):
        cal.add(d("2026-03-01"), Period(1, "working_days"))
    with pytest.raises(ValueError, match="no working day"):
        cal.add(d("2026-03-01"), Period(1, "calendar_days"))


# -- pause / resume ----------------------------------------------------------


def test_pause_and_resume_simple() -> None:
    due = CAL.add(d("2026-02-13"), Period(5, "working_days")).day  # 2026-02-27
    # Paused on the makeup Saturday 2/14: 2/14 is used, 2/24..2/27 remain.
    remaining = CAL.remaining_working_days(due, d("2026-02-14"))
    assert remaining == 4
    resumed = CAL.resume(d("2026-03-02"), remaining)  # Monday, not counted
    assert resumed.day == d("2026-03-06")
    assert resumed.at == datetime(2026, 3, 7, tzinfo=SHANGHAI)
    assert not resumed.provisional


def test_pause_and_resume_across_labour_day() -> None:
    due = CAL.add(d("2026-04-20"), Period(10, "working_days")).day
    assert due == d("2026-05-07")
    remaining = CAL.remaining_working_days(due, d("2026-04-24"))
    assert remaining == 6  # 4/27, 4/28, 4/29, 4/30, 5/6, 5/7
    # 4/30 (1), 5/6 (2), 5/7 (3), 5/8 (4), 5/9 makeup Sat (5), 5/11 (6).
    assert CAL.resume(d("2026-04-29"), remaining).day == d("2026-05-11")


@pytest.mark.parametrize(
    ("pause", "remaining"),
    [("2026-02-26", 1), ("2026-02-27", 0), ("2026-03-02", 0), ("2026-02-13", 5)],
)
def test_remaining_working_days(pause: str, remaining: int) -> None:
    assert CAL.remaining_working_days(d("2026-02-27"), d(pause)) == remaining


def test_resume_with_zero_remaining_grants_one_working_day() -> None:
    remaining = CAL.remaining_working_days(d("2026-02-27"), d("2026-02-27"))
    assert remaining == 0
    assert CAL.resume(d("2026-03-02"), remaining).day == d("2026-03-03")
    # Resuming before a holiday: the one day is the next working day.
    assert CAL.resume(d("2026-09-30"), 0).day == d("2026-10-08")
    assert CAL.resume(d("2026-09-30"), 1).day == d("2026-10-08")


def test_resume_rejects_negative() -> None:
    with pytest.raises(ValueError):
        CAL.resume(d("2026-03-02"), -1)


# -- reminders ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "before", "expected"),
    [
        ("2026-03-16", "1 working day", "2026-03-13"),  # over a weekend
        ("2026-02-24", "1 working day", "2026-02-14"),  # over Spring Festival to makeup Sat
        ("2026-03-02", "1 working day", "2026-02-28"),  # makeup Saturday
        ("2026-10-08", "1 working day", "2026-09-30"),
        ("2026-10-08", "2 working days", "2026-09-29"),
        ("2026-10-08", "0 working days", "2026-10-08"),
    ],
)
def test_reminder_day(due: str, before: str, expected: str) -> None:
    assert CAL.reminder_day(d(due), Period.parse(before)) == d(expected)


@pytest.mark.parametrize("before", ["1 calendar day", "1 month"])
def test_reminder_day_requires_working_days(before: str) -> None:
    with pytest.raises(ValueError, match="working days"):
        CAL.reminder_day(d("2026-03-16"), Period.parse(before))


# -- working_days_between ----------------------------------------------------


@pytest.mark.parametrize(
    ("after", "through", "count"),
    [
        ("2026-03-13", "2026-03-13", 0),
        ("2026-03-13", "2026-03-12", 0),
        ("2026-03-13", "2026-03-16", 1),
        ("2026-03-09", "2026-03-13", 4),
        ("2026-02-13", "2026-02-27", 5),
        ("2026-02-14", "2026-02-23", 0),
        ("2026-09-30", "2026-10-10", 3),
    ],
)
def test_working_days_between(after: str, through: str, count: int) -> None:
    assert CAL.working_days_between(d(after), d(through)) == count


# -- Period ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 working days", Period(5, "working_days")),
        ("1 working day", Period(1, "working_days")),
        ("20 calendar days", Period(20, "calendar_days")),
        ("1 calendar day", Period(1, "calendar_days")),
        ("3 months", Period(3, "months")),
        ("1 month", Period(1, "months")),
        ("5wd", Period(5, "working_days")),
        ("20d", Period(20, "calendar_days")),
        ("3m", Period(3, "months")),
        ("  5 WD ", Period(5, "working_days")),
        ("5个工作日", Period(5, "working_days")),
        ("5工作日", Period(5, "working_days")),
        ("20日", Period(20, "calendar_days")),
        ("20天", Period(20, "calendar_days")),
        ("3个月", Period(3, "months")),
        ("0 working days", Period(0, "working_days")),
    ],
)
def test_period_parse(text: str, expected: Period) -> None:
    assert Period.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "five days", "-3 wd", "3 weeks", "20 days", "3月", "5 wd extra", "wd", "1.5 months"],
)
def test_period_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        Period.parse(text)
    message = str(excinfo.value)
    assert repr(text) in message
    assert "5 working days" in message and "3个月" in message


@pytest.mark.parametrize(
    ("period", "text"),
    [
        (Period(5, "working_days"), "5 working days"),
        (Period(1, "working_days"), "1 working day"),
        (Period(20, "calendar_days"), "20 calendar days"),
        (Period(1, "calendar_days"), "1 calendar day"),
        (Period(3, "months"), "3 months"),
        (Period(1, "months"), "1 month"),
        (Period(0, "months"), "0 months"),
    ],
)
def test_period_str_round_trips(period: Period, text: str) -> None:
    assert str(period) == text
    assert Period.parse(str(period)) == period


def test_period_validation() -> None:
    with pytest.raises(ValueError):
        Period(-1, "working_days")
    with pytest.raises(ValueError):
        Period(1, "weeks")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Period(True, "months")
