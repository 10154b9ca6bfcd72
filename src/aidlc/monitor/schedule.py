"""Schedules for monitor runs: AWS `cron(...)` / `rate(...)` and five-field cron, all in UTC,
and the small thread (`Scheduler`) that runs jobs at their fire times.

Supported syntax (every time is UTC, resolution one minute):

- AWS EventBridge `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: `*`, `,`, `-`,
  `/` (`0/15` = from 0 every 15), `?` (only in a day field: exactly one of day-of-month and
  day-of-week must be `?`, as AWS requires), month names JAN-DEC, day names SUN-SAT, day-of-week
  numbers 1-7 = SUN-SAT (AWS numbering), years 1970-2199 (`*` = no end). Day-of-month also takes
  `L` (last day), `LW` (last weekday) and `15W` (weekday nearest the 15th, never leaving the month:
  a Saturday 1st moves to Monday 3rd, a Sunday last day to Friday); day-of-week also takes `L`
  (Saturday), `5L` (last Thursday) and `3#2` (second Tuesday). `L`, `W` and `#` stand alone in
  their field, as on AWS.
- AWS `rate(N unit)` with unit minute(s), hour(s) or day(s), 1 <= N <= 1,000,000; like AWS, N = 1
  takes the singular and N > 1 the plural. Fire times are the multiples of the period counted from
  the Unix epoch (1970-01-01T00:00Z): `rate(1 day)` fires at midnight UTC, `rate(6 hours)` at
  00:00, 06:00, 12:00 and 18:00.
- Five-field cron `m h dom mon dow` with Vixie cron semantics: dow 0-7 (0 and 7 = Sunday), names
  allowed, `a/s` = from a to the end every s (for dow the end is 6, Saturday); when both day
  fields are restricted (neither begins with `*`) a day matches if EITHER matches, otherwise both
  must (so `*/2` counts as unrestricted, as in Vixie cron; croniter differs here). Aliases
  `@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`.

Anything else raises ValueError naming the field and the value, including an expression that can
never fire (`0 0 30 2 *`).
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from aidlc.errors import UsageError

__all__ = ["CronSchedule", "Job", "Scheduler", "parse_cron"]

_log = logging.getLogger(__name__)

MAX_EXPRESSION_LENGTH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
# The Gregorian calendar repeats every 400 years (146097 days = 20871 weeks), so a schedule
# that fires at all fires within any 401 consecutive years.
_CYCLE_YEARS = 401
_LAST_YEAR = 9999
_SHAPES = (
    "use cron(Minutes Hours Day-of-month Month Day-of-week Year), rate(N minutes|hours|days), "
    "five fields 'm h dom mon dow' or @hourly/@daily/@weekly/@monthly/@yearly"
)

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
# Weekdays are held internally as 0 = Sunday ... 6 = Saturday.
_DAY_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_RATE_UNITS = {"minute": 1, "hour": 60, "day": 1440}
_MAX_RATE = 1_000_000
_NUMBER = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True)
class _Field:
    """The name, bounds and symbolic names of one cron field."""

    name: str
    low: int
    high: int
    names: Mapping[str, int] = field(default_factory=dict)
    open_high: int | None = None  # where `*` and `a/s` end, if not at `high`


_MINUTES = _Field("minute", 0, 59)
_HOURS = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTHS = _Field("month", 1, 12, _MONTH_NAMES)
# 7 is Sunday again, so `*` and `1/2` stop at Saturday (6) rather than visit Sunday twice.
_DOW_VIXIE = _Field("day-of-week", 0, 7, _DAY_NAMES, open_high=6)
_DOW_AWS = _Field("day-of-week", 1, 7, {name: day + 1 for name, day in _DAY_NAMES.items()})
_YEARS = _Field("year", 1970, 2199)


def _bad(spec: _Field, text: str, reason: str) -> ValueError:
    return ValueError(f"{spec.name} field {text!r}: {reason}")


def _value(token: str, spec: _Field, text: str) -> int:
    if token in spec.names:
        return spec.names[token]
    if not _NUMBER.fullmatch(token):
        what = "a number or a name" if spec.names else "a number"
        raise _bad(spec, text, f"{token!r} is not {what}")
    number = int(token)
    if not spec.low <= number <= spec.high:
        raise _bad(spec, text, f"{number} is out of range {spec.low}-{spec.high}")
    return number


def _values(text: str, spec: _Field) -> frozenset[int]:
    """Expand `*`, lists, ranges, steps and names into the set of values they select."""
    selected: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _bad(spec, text, "has an empty list element")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _NUMBER.fullmatch(step_text):
                raise _bad(spec, text, f"step {step_text!r} is not a number")
            step = int(step_text)
            if step == 0:
                raise _bad(spec, text, "step 0 is not allowed; a step must be at least 1")
        end = spec.high if spec.open_high is None else spec.open_high
        if base == "*":
            low, high = spec.low, end
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec, text), _value(last, spec, text)
            if low > high:
                raise _bad(spec, text, f"range {base!r} is reversed; write it low-high")
        else:
            low = _value(base, spec, text)
            high = max(low, end) if slash else low
        selected.update(range(low, high + 1, step))
    return frozenset(selected)


def _weekday(year: int, month: int, day: int) -> int:
    """0 = Sunday ... 6 = Saturday."""
    return (calendar.weekday(year, month, day) + 1) % 7


@dataclass(frozen=True)
class _DayField:
    """Which days of a given month one day field (day-of-month or day-of-week) selects."""

    kind: Literal["any", "days", "weekdays", "last", "last_weekday", "nearest", "last_of", "nth"]
    values: frozenset[int] = frozenset()
    number: int = 0
    starred: bool = False  # the field text begins with '*': unrestricted for Vixie's OR rule

    def days(self, year: int, month: int, length: int) -> frozenset[int]:
        if self.kind == "any":
            return frozenset(range(1, length + 1))
        if self.kind == "days":
            return frozenset(day for day in self.values if day <= length)
        if self.kind == "weekdays":
            first = _weekday(year, month, 1)
            return frozenset(d for d in range(1, length + 1) if (first + d - 1) % 7 in self.values)
        if self.kind == "last":
            return frozenset({length})
        if self.kind == "last_weekday":
            last = _weekday(year, month, length)
            return frozenset({length - {6: 1, 0: 2}.get(last, 0)})
        if self.kind == "nearest":
            return self._nearest_weekday(year, month, length)
        (weekday,) = self.values
        if self.kind == "last_of":
            return frozenset({length - (_weekday(year, month, length) - weekday) % 7})
        day = 1 + (weekday - _weekday(year, month, 1)) % 7 + 7 * (self.number - 1)
        return frozenset({day}) if day <= length else frozenset()

    def _nearest_weekday(self, year: int, month: int, length: int) -> frozenset[int]:
        day = self.number
        if day > length:
            return frozenset()
        weekday = _weekday(year, month, day)
        if weekday == 6:  # Saturday: the Friday before, unless that leaves the month
            return frozenset({day - 1 if day > 1 else day + 2})
        if weekday == 0:  # Sunday: the Monday after, unless that leaves the month
            return frozenset({day + 1 if day < length else day - 2})
        return frozenset({day})


class _Rule(Protocol):
    def first_from(self, start: datetime) -> datetime | None: ...

    def matches(self, minute: datetime) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class _Rate:
    minutes: int
    text: str

    def first_from(self, start: datetime) -> datetime | None:
        elapsed = (start - _EPOCH) // _MINUTE
        periods = -(-elapsed // self.minutes)
        try:
            return _EPOCH + timedelta(minutes=periods * self.minutes)
        except OverflowError:
            return None

    def matches(self, minute: datetime) -> bool:
        return ((minute - _EPOCH) // _MINUTE) % self.minutes == 0

    def describe(self) -> str:
        return f"every {self.text} from 1970-01-01T00:00Z"


@dataclass(frozen=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...] | None  # None: no end
    dom: _DayField
    dow: _DayField
    either_day: bool  # Vixie: both day fields restricted, so a day matches if either does
    text: str

    def days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        by_date = self.dom.days(year, month, length)
        by_weekday = self.dow.days(year, month, length)
        return sorted(by_date | by_weekday if self.either_day else by_date & by_weekday)

    def first_from(self, start: datetime) -> datetime | None:
        if self.years is None:
            years: Sequence[int] = range(start.year, min(start.year + _CYCLE_YEARS, _LAST_YEAR + 1))
        else:
            years = [year for year in self.years if year >= start.year]
        first = (start.year, start.month, start.day, start.hour, start.minute)
        for year in years:
            for month in self.months:
                if (year, month) < first[:2]:
                    continue
                for day in self.days(year, month):
                    if (year, month, day) < first[:3]:
                        continue
                    for hour in self.hours:
                        if (year, month, day, hour) < first[:4]:
                            continue
                        for minute in self.minutes:
                            if (year, month, day, hour, minute) >= first:
                                return datetime(year, month, day, hour, minute, tzinfo=UTC)
        return None

    def matches(self, minute: datetime) -> bool:
        return (
            minute.minute in self.minutes
            and minute.hour in self.hours
            and minute.month in self.months
            and (self.years is None or minute.year in self.years)
            and minute.day in self.days(minute.year, minute.month)
        )

    def describe(self) -> str:
        return f"{self.text} (UTC)"


def _day_of_month(text: str, aws: bool) -> _DayField:
    if text == "?" and aws:
        return _DayField("any")
    if aws and text == "L":
        return _DayField("last")
    if aws and text == "LW":
        return _DayField("last_weekday")
    nearest = re.fullmatch(r"([0-9]{1,2})W", text) if aws else None
    if nearest:
        return _DayField("nearest", number=_value(nearest.group(1), _DOM, text))
    _reject_specials(_DOM, text, aws, "'L', 'LW' or '15W'")
    values = _values(text, _DOM)
    if text == "*":
        return _DayField("any", starred=True)
    return _DayField("days", values, starred=text.startswith("*"))


def _day_of_week(text: str, aws: bool) -> _DayField:
    spec = _DOW_AWS if aws else _DOW_VIXIE
    # AWS numbers days 1-7 from Sunday, Vixie 0-7 with 7 = Sunday again: both become 0-6.
    shift = 1 if aws else 0
    if text == "?" and aws:
        return _DayField("any")
    if aws and text == "L":
        return _DayField("weekdays", frozenset({6}))
    last = re.fullmatch(r"([0-9A-Z]+)L", text) if aws else None
    if last:
        weekday = _value(last.group(1), spec, text) - shift
        return _DayField("last_of", frozenset({weekday}))
    nth = re.fullmatch(r"([0-9A-Z]+)#(.*)", text) if aws else None
    if nth:
        weekday = _value(nth.group(1), spec, text) - shift
        if nth.group(2) not in ("1", "2", "3", "4", "5"):
            raise _bad(spec, text, f"occurrence {nth.group(2)!r} after '#' must be 1-5")
        return _DayField("nth", frozenset({weekday}), number=int(nth.group(2)))
    _reject_specials(spec, text, aws, "'L', '5L' or '3#2'")
    weekdays = frozenset((value - shift) % 7 for value in _values(text, spec))
    if text == "*":
        return _DayField("any", starred=True)
    return _DayField("weekdays", weekdays, starred=text.startswith("*"))


def _reject_specials(spec: _Field, text: str, aws: bool, forms: str) -> None:
    if "?" in text:
        where = "alone in a day field of AWS cron(...)" if aws else "in AWS cron(...) expressions"
        raise _bad(spec, text, f"'?' is only allowed {where}")
    residue = text
    for name in spec.names:  # WED and JUL hold the letters W and L
        residue = residue.replace(name, "")
    if any(mark in residue for mark in ("L", "W", "#")):
        if not aws:
            raise _bad(spec, text, "'L', 'W' and '#' are only allowed in AWS cron(...) expressions")
        raise _bad(spec, text, f"'L', 'W' and '#' must stand alone, as in {forms}")


def _cron(fields: list[str], aws: bool) -> _Cron:
    minute, hour, dom_text, month, dow_text = fields[:5]
    if aws and (dom_text == "?") == (dow_text == "?"):
        raise ValueError(
            f"day-of-month {dom_text!r} and day-of-week {dow_text!r}: exactly one of them "
            "must be '?' in AWS cron(...), e.g. cron(0 9 ? * MON-FRI *)"
        )
    dom, dow = _day_of_month(dom_text, aws), _day_of_week(dow_text, aws)
    years = None if not aws or fields[5] == "*" else tuple(sorted(_values(fields[5], _YEARS)))
    rule = _Cron(
        minutes=tuple(sorted(_values(minute, _MINUTES))),
        hours=tuple(sorted(_values(hour, _HOURS))),
        months=tuple(sorted(_values(month, _MONTHS))),
        years=years,
        dom=dom,
        dow=dow,
        either_day=not aws and not dom.starred and not dow.starred,
        text=f"cron({' '.join(fields)})" if aws else " ".join(fields),
    )
    probe = datetime(years[0] if years else 2000, 1, 1, tzinfo=UTC)
    if rule.first_from(probe) is None:
        raise ValueError(
            f"it never fires: day-of-month {dom_text!r} with day-of-week {dow_text!r} falls on "
            f"no day of month {month!r}" + (f" in year {fields[5]!r}" if aws else "")
        )
    return rule


def _rate(inner: str) -> _Rate:
    parts = inner.split()
    if len(parts) != 2:
        raise ValueError(f"rate({inner}) needs a value and a unit, e.g. rate(5 minutes)")
    count_text, unit = parts[0], parts[1].lower()
    if not re.fullmatch(r"[0-9]{1,7}", count_text) or not 1 <= int(count_text) <= _MAX_RATE:
        raise ValueError(f"rate value {count_text!r} must be a whole number from 1 to {_MAX_RATE}")
    count = int(count_text)
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise ValueError(f"rate unit {parts[1]!r} must be minute(s), hour(s) or day(s)")
    if (count == 1) != (unit == singular):
        wanted = singular if count == 1 else singular + "s"
        raise ValueError(f"rate unit {parts[1]!r}: write rate({count} {wanted}), as AWS requires")
    return _Rate(count * _RATE_UNITS[singular], f"{count} {unit}")


def _compile(text: str) -> _Rule:
    lowered = text.lower()  # ASCII only (checked before), so lowering keeps every index
    for keyword in ("cron(", "rate("):
        if lowered.startswith(keyword) and not text.endswith(")"):
            raise ValueError(f"{keyword[:-1]}(...) is missing its closing ')'")
    if lowered.startswith("rate("):
        return _rate(text[5:-1])
    if lowered.startswith("cron("):
        fields = text[5:-1].upper().split()
        if len(fields) != 6:
            raise ValueError(
                f"AWS cron(...) needs 6 fields (Minutes Hours Day-of-month Month Day-of-week "
                f"Year), got {len(fields)}"
            )
        return _cron(fields, aws=True)
    if text.startswith("@"):
        if lowered not in _ALIASES:
            raise ValueError(f"unknown alias {text!r}; use one of {', '.join(_ALIASES)}")
        return _cron(_ALIASES[lowered].split(), aws=False)
    fields = text.upper().split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (m h dom mon dow), got {len(fields)}; {_SHAPES}")
    return _cron(fields, aws=False)


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime (UTC), got {moment!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{what} {moment!r} is out of range in UTC") from None


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; build it with `parse_cron` (or `CronSchedule(expression)`).

    Every time in and out is an aware datetime, converted to and returned in UTC, with one-minute
    resolution.

    >>> schedule = parse_cron("cron(0 9 ? * MON-FRI *)")
    >>> schedule.next_after(datetime(2026, 1, 2, 9, 0, tzinfo=UTC)).isoformat()
    '2026-01-05T09:00:00+00:00'
    """

    expression: str
    _rule: _Rule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rule", _parse(self.expression))

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`, or None if there is none.

        None comes only from a year-bounded AWS schedule past its last year (or past year 9999).
        A naive `moment` raises ValueError.
        """
        start = _utc(moment, "moment").replace(second=0, microsecond=0)
        try:
            start += _MINUTE
        except OverflowError:
            return None
        return self._rule.first_from(start)

    def matches(self, moment: datetime) -> bool:
        """Whether the minute containing `moment` (aware; seconds ignored) is a fire time."""
        return self._rule.matches(_utc(moment, "moment").replace(second=0, microsecond=0))

    def describe(self) -> str:
        """A short normalized text, e.g. `cron(0 9 ? * MON-FRI *) (UTC)` or `every 5 minutes`."""
        return self._rule.describe()


def _parse(expression: str) -> _Rule:
    if not isinstance(expression, str):
        raise ValueError(f"a schedule must be a string, not {type(expression).__name__}")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(
            f"schedule expression is {len(expression)} characters long; "
            f"at most {MAX_EXPRESSION_LENGTH} are allowed"
        )
    text = expression.strip()
    if not text:
        raise ValueError(f"schedule expression is empty; {_SHAPES}")
    if not text.isascii():
        odd = next(char for char in text if not char.isascii())
        raise ValueError(f"invalid schedule {text!r}: {odd!r} is not an ASCII character")
    try:
        return _compile(text)
    except ValueError as error:
        raise ValueError(f"invalid schedule {text!r}: {error}") from None


def parse_cron(expression: str) -> CronSchedule:
    """Parse an AWS `cron(...)`/`rate(...)`, five-field cron or `@alias` expression.

    Raises ValueError naming the field and value for anything malformed, and never any other
    exception type whatever the string.

    >>> parse_cron("*/5 * * * *").next_after(datetime(2026, 1, 1, 0, 3, tzinfo=UTC)).minute
    5
    >>> parse_cron("61 * * * *")
    Traceback (most recent call last):
    ...
    ValueError: invalid schedule '61 * * * *': minute field '61': 61 is out of range 0-59
    """
    return CronSchedule(expression)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    """A named callable run at each fire time of its schedule; it receives that fire time."""

    name: str
    schedule: CronSchedule
    run: Callable[[datetime], None]


class Scheduler:
    """Runs jobs at their fire times, one at a time, on one daemon thread.

    Fire times are counted from construction. Jobs run in order in the scheduler thread, so a long
    job delays the others; a job is never run twice at once. Fire times missed while jobs ran (or
    while the process was suspended) are coalesced: the job runs once, with the earliest missed
    fire time, and is then rescheduled after the moment it was dispatched. A job that raises is
    logged in one line (exception type and message) and stays scheduled.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        clock: Callable[[], datetime] = _utc_now,
        name: str = "aidlc-scheduler",
        max_sleep: float = 1.0,
    ) -> None:
        names = [job.name for job in jobs]
        duplicates = sorted({job for job in names if names.count(job) > 1})
        if duplicates:
            raise UsageError(f"scheduled job names must be unique; repeated: {duplicates}")
        if not 0 < max_sleep <= 1:
            raise UsageError(f"max_sleep must be in (0, 1] seconds, got {max_sleep}")
        self._jobs = tuple(jobs)
        self._clock = clock
        self._name = name
        self._max_sleep = max_sleep
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: set[str] = set()
        now = _utc(clock(), "clock()")
        self._next = {job.name: job.schedule.next_after(now) for job in self._jobs}

    def next_runs(self) -> dict[str, datetime | None]:
        """Each job's next fire time (None when its schedule has ended)."""
        with self._lock:
            return dict(self._next)

    def run_due(self, now: datetime) -> list[str]:
        """Run, in order, every job whose next fire time is <= `now`; return their names.

        A job that raised is still listed (it ran); a job running in another thread is skipped.
        """
        now = _utc(now, "now")
        with self._lock:
            due = [
                (job, fire)
                for job in self._jobs
                if (fire := self._next[job.name]) is not None
                and fire <= now
                and job.name not in self._running
            ]
            self._running.update(job.name for job, _ in due)
        for job, fire in due:
            try:
                job.run(fire)
            except Exception as error:
                _log.error(
                    "scheduled job %r failed at %s: %s: %s",
                    job.name,
                    fire.isoformat(),
                    type(error).__name__,
                    error,
                )
            finally:
                with self._lock:
                    self._running.discard(job.name)
                    self._next[job.name] = job.schedule.next_after(now)
        return [job.name for job, _ in due]

    def start(self) -> None:
        """Start the scheduler thread (a daemon); UsageError if it is already running."""
        if self._thread is not None and self._thread.is_alive():
            raise UsageError(f"scheduler {self._name!r} is already running; stop() it first")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to stop and wait up to `timeout` s; True once it has ended.

        The job running at that moment finishes first. Called from inside a job, it returns
        False at once and the thread ends after that job.
        """
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return True
        if thread is threading.current_thread():
            return False
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.run_due(self._clock())
            self._stopping.wait(self._seconds_to_next())

    def _seconds_to_next(self) -> float:
        pending = [fire for fire in self.next_runs().values() if fire is not None]
        if not pending:
            return self._max_sleep
        wait = (min(pending) - _utc(self._clock(), "clock()")).total_seconds()
        return min(self._max_sleep, max(0.0, wait))
