"""AWS's value types of a stack's configuration: account ids, regions, schedules, time zones, names,
tag keys, days, vault events; each refuses what AWS would, with a message saying what is allowed."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from pgf_backup.limits import DEPRECATED_VAULT_EVENTS, VaultEvent

Tier = Literal["lab", "dev", "prod"]
Role = Literal["backup-account", "workload", "management"]


# ---------------------------------------------------------------------------------------------
# Field validators


def _account_id(value: str) -> str:
    if not re.fullmatch(r"\d{12}", value):
        raise ValueError(f"{value!r} is not an AWS account id: 12 digits, quoted in YAML")
    return value


@lru_cache(maxsize=1)
def backup_regions() -> dict[str, str]:
    """Regions where AWS Backup has an endpoint, mapped to their partition (botocore's endpoint data)."""
    # The loader alone: a botocore session would cost more than the data it reads.
    from botocore.loaders import Loader

    regions: dict[str, str] = {}
    for part in Loader().load_data("endpoints")["partitions"]:
        endpoints = part.get("services", {}).get("backup", {}).get("endpoints", {})
        for region in endpoints:
            if region in part.get("regions", {}):
                regions[region] = part["partition"]
    return regions


def _region(value: str) -> str:
    known = backup_regions()
    if value in known:
        return value
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{value!r} is not a region where AWS Backup is available{hint} (allowed: {', '.join(sorted(known))})"
    )


_CRON_FIELDS: tuple[tuple[str, int, int, str], ...] = (
    # name, low, high, extra characters AWS allows in that field
    ("minutes", 0, 59, ""),
    ("hours", 0, 23, ""),
    ("day-of-month", 1, 31, "?LW"),
    ("month", 1, 12, ""),
    ("day-of-week", 1, 7, "?L#"),
    ("year", 1970, 2199, ""),
)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _cron_field(name: str, low: int, high: int, extra: str, text: str) -> None:
    names = _MONTHS if name == "month" else _DAYS if name == "day-of-week" else []
    for part in text.split(","):
        if part in ("*", "?") and (part == "*" or "?" in extra):
            continue
        if name == "day-of-month" and re.fullmatch(r"(L|LW|\d{1,2}W)", part):
            continue
        if name == "day-of-week" and re.fullmatch(r"([1-7]|[A-Z]{3})(L|#[1-5])", part):
            continue
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"cron {name} field {text!r}: step {step!r} must be a number of at least 1")
        numbers: list[int] = []
        for bound in base.split("-") if base != "*" else []:
            number = names.index(bound) + 1 if bound in names else None
            if number is None:
                if not bound.isdigit():
                    raise ValueError(
                        f"cron {name} field {text!r}: {bound!r} is not allowed "
                        f"(numbers {low}-{high}{', names' if names else ''}, ',', '-', '/', '*'"
                        f"{', ' + ', '.join(repr(c) for c in extra) if extra else ''})"
                    )
                number = int(bound)
            if not low <= number <= high:
                raise ValueError(f"cron {name} field {text!r}: {number} is outside {low}-{high}")
            numbers.append(number)
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            raise ValueError(f"cron {name} field {text!r}: the range {base} goes backwards")


def _schedule(value: str) -> str:
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", value)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1 or (amount == 1) != (not unit.endswith("s")):
            raise ValueError(f"{value!r}: use 'rate(1 day)' for one unit, 'rate(N days)' for N > 1")
        if unit.startswith("minute") and amount < 60:
            raise ValueError(f"{value!r}: AWS Backup runs at most once an hour (rate >= 60 minutes)")
        return value
    cron = re.fullmatch(r"cron\(([^()]*)\)", value)
    if not cron:
        raise ValueError(
            f"{value!r} is not an AWS schedule: use 'cron(min hour day-of-month month "
            f"day-of-week year)' or 'rate(N hours|days)'"
        )
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ValueError(
            f"{value!r} has {len(fields)} cron fields; AWS needs 6: "
            f"minutes hours day-of-month month day-of-week year, e.g. 'cron(0 5 ? * * *)'"
        )
    for (name, low, high, extra), text in zip(_CRON_FIELDS, fields, strict=True):
        _cron_field(name, low, high, extra, text.upper())
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(f"{value!r}: exactly one of day-of-month and day-of-week must be '?' (AWS cron rule)")
    if not re.fullmatch(r"\d+", fields[0]):
        raise ValueError(f"{value!r}: AWS Backup runs at most once an hour; minutes must be a number")
    return value


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    # The IANA names (tzdata), not host-specific entries such as 'localtime' or 'Factory'.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory", "posixrules"}


def _timezone(value: str) -> str:
    if value not in _time_zones():
        close = difflib.get_close_matches(value, sorted(_time_zones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'America/Toronto', 'UTC'){hint}")
    return value


def _quoted_account_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'{value} is a number: quote account ids in YAML ("{value:012d}"), or a leading zero is lost')
    return value


def _not_bool(value: Any) -> Any:
    # YAML's true/false would otherwise pass as 1/0 days.
    if isinstance(value, bool):
        raise ValueError(f"{value} is a boolean; a number of days is expected")
    return value


AccountId = Annotated[str, BeforeValidator(_quoted_account_id), AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
Schedule = Annotated[str, AfterValidator(_schedule)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
VaultName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{2,50}$")]
RoleName = Annotated[str, Field(pattern=r"^[\w+=,.@/-]{1,64}$")]


# AWS reserves the `aws:` prefix for its own tags.
def _tag_key(value: str) -> str:
    if value.lower().startswith("aws:"):
        raise ValueError(f"{value!r}: the 'aws:' prefix is reserved for AWS's own tags")
    return value


TagKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w\s.:/=+@-]+$"), AfterValidator(_tag_key)]
Days = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=36500)]

# The vault events AWS Backup sends. PutBackupVaultNotifications also accepts deprecated names, and
# "Deprecated events do not return statuses or notifications. Refer to the list above for the supported
# events." (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_PutBackupVaultNotifications.html,
# whose supported list is limits.VaultEvent). BACKUP_JOB_COMPLETED is sent for failed and expired backup jobs too, its
# SNS message attribute `State` telling which: "Review sample Amazon SNS notification JSONs for completed,
# failed, and expired backup jobs" (https://docs.aws.amazon.com/aws-backup/latest/devguide/
# backup-notifications.html); a subscription filter policy on `State` keeps only the failures.
DEFAULT_VAULT_EVENTS: tuple[VaultEvent, ...] = (
    "BACKUP_JOB_COMPLETED",
    "COPY_JOB_FAILED",
    "RESTORE_JOB_COMPLETED",
    "RECOVERY_POINT_MODIFIED",
    "S3_BACKUP_OBJECT_FAILED",
    "S3_RESTORE_OBJECT_FAILED",
)


def _supported_vault_event(value: object) -> object:
    if isinstance(value, str) and value in DEPRECATED_VAULT_EVENTS:
        raise ValueError(
            f"{value!r} is a deprecated vault event: AWS Backup accepts it and never sends it. "
            f"Supported: {', '.join(get_args(VaultEvent))}. Failed, aborted and expired backup jobs, failed "
            "copy jobs and failed or aborted restore jobs are alerted by EventBridge rules instead "
            "(JobAlerts, in every account and region)"
        )
    return value


NotifyEvent = Annotated[VaultEvent, BeforeValidator(_supported_vault_event)]


class Model(BaseModel):
    """Base of every config model: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def partition(region: str) -> str:
    """AWS partition of a region ('aws', 'aws-us-gov', ...)."""
    return backup_regions().get(region, "aws")
