"""Legal deadline arithmetic on the Chinese working-day calendar.

Credit offices must answer objections, correction and repair requests within periods
counted in working days, calendar days or months. This module turns "event day +
period" into a due day and a due instant, following 民法典 Art. 201/203:

* The day of the triggering event is not counted; counting starts the next day.
* A calendar-day or month period whose last day is not a working day ends on the
  next working day. Working-day periods end on a working day by construction.
* Months: same day-of-month N months later, clamped to the last day of a shorter
  month (2026-01-31 + 1 month = 2026-02-28), then rolled forward if needed.
* A deadline ends at the end of its last day in the calendar's time zone. ``Due.at``
  is the start (00:00 local) of the following day. due_at is exclusive: the deadline
  has passed when now >= due_at.
* Zero periods are degenerate: 0 working days is due on the event day itself;
  0 calendar days / 0 months is the event day rolled forward to a working day.

Working days are Mon-Fri minus statutory holidays plus makeup working weekends
(调休上班). The ``holidays`` package ("CN", public category) is treated as official
for years <= ``builtin_official_through``. Operators can load a year's official
notice (it *replaces* the package's view of that year: listed days are as listed,
other days are ordinary weekdays/weekends) and local additions (single-day
overrides on top of everything else). A year that is neither builtin-official nor
covered by a loaded notice is provisional, and any due date whose counted span
(event day excluded, due day included) touches such a year is marked provisional.

Pause rule (e.g. 补正, a supplement request): when the clock is paused on day P, day
P counts as used; the remaining time is the number of working days after P through
the due day, ``remaining = working_days_between(P, due_day)``. When the clock resumes
on day R, R itself is not counted (Art. 201) and the new due day is R + remaining
working days. If remaining is 0 (paused on the due day or later), resume grants one
working day: see ``WorkCalendar.resume``.

The module is pure: no I/O, no environment, no clock. Callers pass "now".
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Literal, get_args
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "DayOverride",
    "Due",
    "Kind",
    "Period",
    "Source",
    "Unit",
    "WorkCalendar",
    "add_months",
]

Unit = Literal["working_days", "calendar_days", "months"]
Kind = Literal["holiday", "workday"]
Source = Literal["official", "package", "local", "weekend", "weekday"]

_UNITS: tuple[str, ...] = get_args(Unit)
_KINDS: tuple[str, ...] = get_args(Kind)

# Longest run of consecutive non-working days we accept before assuming the
# calendar data is broken; real Chinese holidays never exceed ~10 days.
_MAX_NON_WORKING_RUN = 400

# Explicit language: otherwise the package picks holiday names from the process
# locale, which would make output depend on the environment.
_PACKAGE_LANGUAGE = "zh_CN"
_MAKEUP_NAME = "调休上班"

_ONE_DAY = timedelta(days=1)

_PERIOD_PATTERNS: tuple[tuple[re.Pattern[str], Unit], ...] = (
    (re.compile(r"(\d+)\s*(?:working|work)[\s_-]*days?", re.I), "working_days"),
    (re.compile(r"(\d+)\s*calendar[\s_-]*days?", re.I), "calendar_days"),
    (re.compile(r"(\d+)\s*months?", re.I), "months"),
    (re.compile(r"(\d+)\s*wd", re.I), "working_days"),
    (re.compile(r"(\d+)\s*d", re.I), "calendar_days"),
    (re.compile(r"(\d+)\s*m", re.I), "months"),
    (re.compile(r"(\d+)\s*个?工作日"), "working_days"),
    (re.compile(r"(\d+)\s*(?:日|天|个?自然日|个?日历日)"), "calendar_days"),
    # "个" is required: "3月" means March.
    (re.compile(r"(\d+)\s*个月"), "months"),
)

_ACCEPTED_FORMS = (
    "'5 working days', '1 working day', '20 calendar days', '3 months', '1 month', "
    "'5wd', '20d', '3m', '5个工作日', '20日', '3个月'"
)


@dataclass(frozen=True)
class Period:
    """A legal period: a non-negative amount of working days, calendar days or months."""

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        # bool is an int subclass; True working days is surely a bug.
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"Period amount must be an int, got {self.amount!r}")
        if self.amount < 0:
            raise ValueError(f"Period amount must be >= 0, got {self.amount}")
        if self.unit not in _UNITS:
            raise ValueError(f"Period unit must be one of {_UNITS}, got {self.unit!r}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse English, short or Chinese forms, e.g. "5 working days", "20d", "3个月"."""
        if cls is Period:  # procedures name a handful of periods, parsed on every command
            return _parse_period(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Period:
        stripped = text.strip()
        for pattern, unit in _PERIOD_PATTERNS:
            match = pattern.fullmatch(stripped)
            if match:
                return cls(int(match.group(1)), unit)
        raise ValueError(f"cannot parse period {text!r}; accepted forms: {_ACCEPTED_FORMS}")

    def __str__(self) -> str:
        noun = {"working_days": "working day", "calendar_days": "calendar day", "months": "month"}
        return f"{self.amount} {noun[self.unit]}{'' if self.amount == 1 else 's'}"


_MEMO_SIZE = 4096  # entries per memo of a calendar before it starts afresh


@lru_cache(maxsize=256)
def _parse_period(text: str) -> Period:
    return Period._parse(text)


@dataclass(frozen=True)
class DayOverride:
    """One day from an official notice or a local addition."""

    day: date
    kind: Kind
    name: str = ""

    def __post_init__(self) -> None:
        # A datetime would never match date keys and silently be ignored.
        if isinstance(self.day, datetime) or not isinstance(self.day, date):
            raise TypeError(f"DayOverride.day must be a date, got {self.day!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"DayOverride.kind must be one of {_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Due:
    """A computed deadline. ``at`` is exclusive: the deadline has passed when now >= at."""

    day: date
    at: datetime
    provisional: bool


# (working?, name, source) for one day.
DayInfo = tuple[bool, str, Source]


@dataclass(frozen=True)
class _YearData:
    first_ordinal: int
    working: bytes  # 1 per day of the year, indexed by ordinal - first_ordinal
    entries: Mapping[date, DayInfo]  # explicitly known days (named or overridden)


@cache
def _package_year(year: int) -> tuple[tuple[date, bool, str], ...]:
    """The package's view of a year: days whose status or name is not ordinary."""
    cn = holidays.country_holidays(
        "CN", years=year, categories=("public",), language=_PACKAGE_LANGUAGE
    )
    result: list[tuple[date, bool, str]] = []
    d = date(year, 1, 1)
    while d.year == year:
        working = cn.is_working_day(d)
        name = cn.get(d)
        if name is not None or working != _ordinary_working(d):
            result.append((d, working, name if name is not None else _MAKEUP_NAME))
        if d == date.max:
            break
        d += _ONE_DAY
    return tuple(result)


def _ordinary_working(d: date) -> bool:
    return d.weekday() < 5


def _check_date(d: date, what: str) -> date:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"{what} must be a date (not a datetime), got {d!r}")
    return d


def add_months(d: date, months: int) -> date:
    """Same day N months later; the month's last day when that month is shorter."""
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _normalize_overrides(days: Iterable[DayOverride], what: str) -> dict[date, DayOverride]:
    result: dict[date, DayOverride] = {}
    for item in days:
        if not isinstance(item, DayOverride):
            raise TypeError(f"{what} must contain DayOverride items, got {item!r}")
        previous = result.get(item.day)
        if previous is not None and previous.kind != item.kind:
            raise ValueError(f"{what} lists {item.day} both as holiday and as workday")
        result[item.day] = item
    return result


class WorkCalendar:
    """Working-day calendar for one jurisdiction. Immutable; ``with_*`` return copies."""

    def __init__(
        self,
        *,
        tz: str = "Asia/Shanghai",
        builtin_official_through: int = 2026,
        official: Mapping[int, Iterable[DayOverride]] | None = None,
        local: Iterable[DayOverride] = (),
    ) -> None:
        self._tz_name = tz
        self._tz = ZoneInfo(tz)
        self._builtin_official_through = builtin_official_through
        notices: dict[int, dict[date, DayOverride]] = {}
        for year, days in (official or {}).items():
            if not 1 <= year <= 9999:
                raise ValueError(f"official notice year out of range: {year}")
            notices[year] = _normalize_overrides(days, f"official notice for {year}")
        self._official = notices
        self._local = _normalize_overrides(local, "local additions")
        # Derived, per-year; the calendar is immutable so this never goes stale.
        self._cache: dict[int, _YearData] = {}
        # Deadlines by (event day, period): every command of a day asks the same few.
        self._adds: dict[tuple[date, Period], Due] = {}
        self._reminders: dict[tuple[date, Period], date] = {}
        self._last_local: tuple[datetime, date] | None = None

    # -- configuration -------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def builtin_official_through(self) -> int:
        return self._builtin_official_through

    def _copy(
        self,
        official: Mapping[int, Iterable[DayOverride]],
        local: Iterable[DayOverride],
    ) -> WorkCalendar:
        return WorkCalendar(
            tz=self._tz_name,
            builtin_official_through=self._builtin_official_through,
            official=official,
            local=local,
        )

    def with_official_year(self, year: int, days: Iterable[DayOverride]) -> WorkCalendar:
        """New calendar with ``days`` as the official notice for ``year`` (replacing any
        earlier notice for that year). Entries dated in a neighbouring year (a notice can
        schedule a makeup day in late December of the previous year) apply to their day."""
        official = {y: list(v.values()) for y, v in self._official.items()}
        official[year] = list(days)
        return self._copy(official, self._local.values())

    def with_local(self, days: Iterable[DayOverride]) -> WorkCalendar:
        """New calendar with additional local overrides; a later entry for the same day wins."""
        merged = dict(self._local)
        merged.update(_normalize_overrides(days, "local additions"))
        return self._copy({y: list(v.values()) for y, v in self._official.items()}, merged.values())

    def is_provisional_year(self, year: int) -> bool:
        return year > self._builtin_official_through and year not in self._official

    # -- per-day queries -----------------------------------------------------

    def warm(self, *years: int) -> None:
        """Work these years out now. The first year built imports the holidays package's
        data (about a second and a half), which the first command would otherwise wait for."""
        for year in years:
            self._year(year)

    def _year(self, year: int) -> _YearData:
        data = self._cache.get(year)
        if data is None:
            data = self._build_year(year)
            self._cache[year] = data
        return data

    def _build_year(self, year: int) -> _YearData:
        entries: dict[date, DayInfo] = {}
        if year not in self._official:
            for d, working, name in _package_year(year):
                entries[d] = (working, name, "package")
        # Notices in year order so that a later notice wins a cross-year clash.
        for notice_year in sorted(self._official):
            for d, item in self._official[notice_year].items():
                if d.year == year:
                    entries[d] = (item.kind == "workday", item.name, "official")
        for d, item in self._local.items():
            if d.year == year:
                entries[d] = (item.kind == "workday", item.name, "local")

        first = date(year, 1, 1)
        last = date(year, 12, 31)
        first_ordinal = first.toordinal()
        flags = bytearray(last.toordinal() - first_ordinal + 1)
        # Ordinal 1 (0001-01-01) was a Monday, so weekday() == (ordinal - 1) % 7.
        for i in range(len(flags)):
            flags[i] = 1 if (first_ordinal + i - 1) % 7 < 5 else 0
        for d, (working, _name, _source) in entries.items():
            flags[d.toordinal() - first_ordinal] = 1 if working else 0
        return _YearData(first_ordinal, bytes(flags), entries)

    def is_working_day(self, d: date) -> bool:
        data = self._year(d.year)
        return data.working[d.toordinal() - data.first_ordinal] == 1

    def day_info(self, d: date) -> DayInfo:
        """(working?, name or "", source). Source "package"/"official"/"local" when the day
        is listed there (a weekend holiday keeps its name), else "weekday"/"weekend"."""
        _check_date(d, "day")
        info = self._year(d.year).entries.get(d)
        if info is not None:
            return info
        return (True, "", "weekday") if _ordinary_working(d) else (False, "", "weekend")

    def year_days(self, year: int) -> list[tuple[date, bool, str, Source]]:
        """Every non-ordinary day of ``year``: weekday holidays, makeup weekend workdays,
        and every day listed in an official notice or local addition, sorted by date."""
        rows: list[tuple[date, bool, str, Source]] = []
        for d, (working, name, source) in sorted(self._year(year).entries.items()):
            if working != _ordinary_working(d) or source in ("official", "local"):
                rows.append((d, working, name, source))
        return rows

    # -- time zone -----------------------------------------------------------

    def end_of_day(self, d: date) -> datetime:
        """Exclusive end of day ``d``: 00:00 local on the next day, tz-aware."""
        _check_date(d, "day")
        naive_midnight = datetime.combine(d + _ONE_DAY, time(0))
        # Round-trip through UTC so a midnight skipped by a DST jump becomes a real instant.
        return naive_midnight.replace(tzinfo=self._tz).astimezone(UTC).astimezone(self._tz)

    def local_date(self, instant: datetime) -> date:
        # A command asks this of the same instant several times: the last answer is kept
        # (one tuple, so a thread never sees one instant with another's date).
        last = self._last_local
        if last is not None and last[0] is instant:
            return last[1]
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"instant must be timezone-aware, got naive {instant!r}")
        day = instant.astimezone(self._tz).date()
        self._last_local = (instant, day)
        return day

    # -- arithmetic ----------------------------------------------------------

    def next_working_day(self, d: date) -> date:
        """``d`` itself if it is a working day, else the first working day after it."""
        _check_date(d, "day")
        for _ in range(_MAX_NON_WORKING_RUN):
            if self.is_working_day(d):
                return d
            d += _ONE_DAY
        raise ValueError(f"no working day within {_MAX_NON_WORKING_RUN} days of {d}")

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start`` (``start`` not counted). n == 0 returns
        ``start`` itself, even if it is not a working day."""
        _check_date(start, "start")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        d = start
        run = 0  # consecutive non-working days; guards against a calendar with none
        while n > 0:
            d += _ONE_DAY
            if self.is_working_day(d):
                n -= 1
                run = 0
            else:
                run += 1
                if run >= _MAX_NON_WORKING_RUN:
                    raise ValueError(f"no working day within {_MAX_NON_WORKING_RUN} days of {d}")
        return d

    def _subtract_working_days(self, end: date, n: int) -> date:
        d = end
        run = 0
        while n > 0:
            d -= _ONE_DAY
            if self.is_working_day(d):
                n -= 1
                run = 0
            else:
                run += 1
                if run >= _MAX_NON_WORKING_RUN:
                    raise ValueError(f"no working day within {_MAX_NON_WORKING_RUN} days of {d}")
        return d

    def _due(self, start: date, day: date) -> Due:
        # Counted span is (start, day]; for a zero period it is just the due day.
        first = min(start + _ONE_DAY, day)
        provisional = any(self.is_provisional_year(y) for y in range(first.year, day.year + 1))
        return Due(day=day, at=self.end_of_day(day), provisional=provisional)

    def add(self, start: date, period: Period) -> Due:
        """Deadline for ``period`` counted from the event day ``start`` (not counted)."""
        key = (start, period)
        due = self._adds.get(key)
        if due is None:
            if len(self._adds) >= _MEMO_SIZE:
                self._adds.clear()
            due = self._adds[key] = self._add(start, period)
        return due

    def _add(self, start: date, period: Period) -> Due:
        _check_date(start, "start")
        if period.unit == "working_days":
            day = self.add_working_days(start, period.amount)
        elif period.unit == "calendar_days":
            day = self.next_working_day(start + timedelta(days=period.amount))
        else:
            day = self.next_working_day(add_months(start, period.amount))
        return self._due(start, day)

    def due_from(self, start: datetime, period: Period) -> Due:
        """Like ``add``, with the event day taken as the local date of an aware instant."""
        return self.add(self.local_date(start), period)

    def working_days_between(self, after: date, through: date) -> int:
        """Number of working days d with after < d <= through (0 if through <= after)."""
        _check_date(after, "after")
        _check_date(through, "through")
        count = 0
        d = after
        while d < through:
            d += _ONE_DAY
            if self.is_working_day(d):
                count += 1
        return count

    def remaining_working_days(self, due_day: date, pause_day: date) -> int:
        """Working days left when paused on ``pause_day``; the pause day counts as used."""
        return self.working_days_between(pause_day, due_day)

    def resume(self, resume_day: date, remaining: int) -> Due:
        """New deadline when the clock resumes on ``resume_day`` (not counted)."""
        if remaining < 0:
            raise ValueError(f"remaining must be >= 0, got {remaining}")
        # With remaining == 0 the pause fell on the last day. Resuming with 0 would make
        # the deadline expire the very day the supplement arrives (a day Art. 201 says is
        # not counted), so the applicant's delay would cost the office its last day.
        # Give back that one working day instead.
        day = self.add_working_days(resume_day, max(remaining, 1))
        return self._due(resume_day, day)

    def reminder_day(self, due_day: date, before: Period) -> date:
        """The working day ``before.amount`` working days before ``due_day``
        (0 returns ``due_day``)."""
        key = (due_day, before)
        day = self._reminders.get(key)
        if day is None:
            if len(self._reminders) >= _MEMO_SIZE:
                self._reminders.clear()
            day = self._reminders[key] = self._reminder_day(due_day, before)
        return day

    def _reminder_day(self, due_day: date, before: Period) -> date:
        _check_date(due_day, "due_day")
        if before.unit != "working_days":
            raise ValueError(f"reminder offset must be in working days, got {before}")
        return self._subtract_working_days(due_day, before.amount)

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(tz={self._tz_name!r}, "
            f"builtin_official_through={self._builtin_official_through}, "
            f"official_years={sorted(self._official)}, local_days={len(self._local)})"
        )
