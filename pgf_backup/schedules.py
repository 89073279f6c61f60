"""Backup rule schedules written in UTC, as an AWS Organizations BACKUP_POLICY takes them.

AWS's backup policy syntax has no time zone key: `schedule_expression` is a "Cron expression in UTC
that specifies when AWS Backup initiates a backup job"
(https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_backup_syntax.html).
A schedule in a local time zone is converted only when one UTC cron keeps it all year; otherwise it is
refused, never shifted by an hour for part of the year. The config validation and the program share
this one conversion.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

POLICY_SYNTAX = "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_backup_syntax.html"
# The tzdata names of UTC itself: a cron in one of them is already the UTC cron the policy needs.
UTC_ZONES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "Etc/GMT", "GMT"}
    | {"Etc/GMT+0", "Etc/GMT-0", "Etc/GMT0", "GMT+0", "GMT-0", "GMT0", "Etc/Greenwich", "Greenwich"}
)
_DAY = 24 * 60


class ScheduleError(ValueError):
    """A schedule has no single UTC equivalent; the message says why and suggests the UTC crons."""


def _offsets(zone: str) -> list[timedelta]:
    """The UTC offsets a zone uses this year and next: two for a zone with daylight saving time."""
    tz = ZoneInfo(zone)
    year = datetime.now(UTC).year
    found = {datetime(y, month, 1, 12, tzinfo=tz).utcoffset() for y in (year, year + 1) for month in range(1, 13)}
    return sorted(offset for offset in found if offset is not None)


def _in_utc(schedule: str, offset: timedelta) -> str | None:
    """A cron read at `offset` from UTC, written in UTC; None when shifting its hours cannot say it."""
    cron = re.fullmatch(r"cron\((.*)\)", schedule)
    if cron is None or not offset:
        return schedule  # a rate() has no time of day; a zero offset changes nothing
    minute, hour, *days = cron.group(1).split()
    shift = int(offset.total_seconds()) // 60
    if not minute.isdigit():
        return None
    restricted = any(field not in {"*", "?"} for field in days)
    if hour == "*":
        # Every hour of every day: only the minute can move. With restricted days, some runs change day.
        return None if restricted else f"cron({(int(minute) - shift) % 60} * {' '.join(days)})"
    if not all(h.isdigit() for h in hour.split(",")):
        return None  # ranges and steps: left to a person
    times = [int(h) * 60 + int(minute) - shift for h in hour.split(",")]
    if restricted and any(not 0 <= t < _DAY for t in times):
        return None  # the run moves to another day: day-of-month and day-of-week would have to move too
    hours = ",".join(str(h) for h in sorted({t % _DAY // 60 for t in times}))
    return f"cron({times[0] % 60} {hours} {' '.join(days)})"


def _utc(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"UTC{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def utc_schedule(schedule: str, timezone: str) -> str:
    """`schedule` in `timezone` as the one UTC cron that keeps it all year (ScheduleError when none does)."""
    if timezone in UTC_ZONES:
        return schedule
    offsets = _offsets(timezone)
    candidates = {offset: _in_utc(schedule, offset) for offset in offsets}
    written = set(candidates.values())
    if len(written) == 1 and None not in written:
        (converted,) = written
        return str(converted)
    at = " and ".join(_utc(offset) for offset in offsets)
    why = (
        "has no single UTC equivalent: daylight saving time moves it by an hour for part of the year"
        if len(offsets) > 1
        else "is not converted: only plain hours that stay on the same day are"
    )
    options = "; ".join(f"{cron} keeps it at {_utc(offset)}" for offset, cron in candidates.items() if cron)
    raise ScheduleError(
        f"{schedule} in {timezone} ({at}) {why}; an AWS Organizations backup policy takes a UTC cron with no "
        f"time zone key ({POLICY_SYNTAX}); write the schedule in UTC and set `timezone: UTC`"
        + (f" (e.g. {options})" if options else "")
    )
