"""A tier's plan from config, in the two scheduling modes: plan rules, or an Organizations BACKUP_POLICY.

Both modes start from the same `RuleArgs` (built by `rule_args`), so retention, schedules, copies
and recovery point tags cannot drift apart between them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pulumi

from components.backup_plan import CopyArgs, RuleArgs
from pgf_backup.config import CONTINUOUS_RULE, ConfigError, CopyTarget, Plan
from pgf_backup.constants import TAG_APPLICATION, TAG_BACKUP_ENABLED, TAG_BACKUP_TIER

# The member-account placeholder of the Organizations policy syntax.
ACCOUNT_PLACEHOLDER = "$account"
# AWS's backup policy syntax: its rule keys have no time zone ("schedule_expression: Cron expression in UTC that
# specifies when AWS Backup initiates a backup job"), and its examples give every number and boolean as a string.
POLICY_SYNTAX = "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_backup_syntax.html"
# The tzdata names of UTC itself: a cron in one of them is already the UTC cron the policy needs.
UTC_ZONES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "Etc/GMT", "GMT"}
    | {"Etc/GMT+0", "Etc/GMT-0", "Etc/GMT0", "GMT+0", "GMT-0", "GMT0", "Etc/Greenwich", "Greenwich"}
)
_DAY = 24 * 60

T = TypeVar("T")


class MissingDestinationError(ValueError):
    """A copy target the plan asks for has no vault to copy into."""


def rule_args(plan: Plan, destinations: Mapping[CopyTarget, T], has_copy_region: bool) -> list[RuleArgs]:
    """The plan's rules (scheduled, then continuous) with a copy action per configured target."""
    rules = []
    targets = plan.copy_targets(has_copy_region)
    missing = [t for t in targets if t not in destinations]
    if missing:
        raise MissingDestinationError(f"no destination vault for copy target(s) {', '.join(missing)}")
    for name, rule in plan.all_rules().items():
        copies = []
        for target in targets:
            lifecycle = rule.lifecycle(target)
            copies.append(
                CopyArgs(
                    destination_vault_arn=destinations[target],  # type: ignore[arg-type]
                    delete_after_days=lifecycle.delete_after_days,
                    cold_storage_after_days=lifecycle.cold_storage_after_days,
                )
            )
        rules.append(
            RuleArgs(
                name=name,
                schedule=rule.schedule,
                timezone=rule.timezone,
                start_window_minutes=rule.start_window_minutes,
                completion_window_minutes=rule.completion_window_minutes,
                delete_after_days=rule.delete_after_days,
                cold_storage_after_days=rule.cold_storage_after_days,
                continuous=name == CONTINUOUS_RULE,
                recovery_point_tags=rule.recovery_point_tags,
                copies=copies,
            )
        )
    return rules


def tag_conditions(tier: str, application: str, scope_application: bool) -> dict[str, str]:
    """The strategy's selection tags, all required: backup:enabled=true, backup:tier, application."""
    conditions = {TAG_BACKUP_ENABLED: "true", TAG_BACKUP_TIER: tier}
    if scope_application:
        conditions[TAG_APPLICATION] = application
    return conditions


class PolicyScheduleError(ConfigError, pulumi.RunError):
    """A rule's schedule has no single UTC equivalent, and a BACKUP_POLICY schedules in UTC only."""


def _assign(value: Any) -> dict[str, Any]:
    return {"@@assign": value}


def _lifecycle(delete_after: int, cold_storage_after: int | None) -> dict[str, Any]:
    # The policy syntax takes numbers as strings (POLICY_SYNTAX: `"delete_after_days": {"@@assign": "270"}`).
    lifecycle = {"delete_after_days": _assign(str(delete_after))}
    if cold_storage_after is not None:
        lifecycle["move_to_cold_storage_after_days"] = _assign(str(cold_storage_after))
    return lifecycle


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


def _utc_schedule(tier: str, rule: RuleArgs) -> str:
    """The rule's schedule as the UTC cron a BACKUP_POLICY takes; refused when no single UTC cron keeps it."""
    if rule.timezone in UTC_ZONES:
        return rule.schedule
    offsets = _offsets(rule.timezone)
    candidates = {offset: _in_utc(rule.schedule, offset) for offset in offsets}
    written = set(candidates.values())
    if len(written) == 1 and None not in written:
        (schedule,) = written
        return str(schedule)
    key = f"plans.{tier}.continuous" if rule.continuous else f"plans.{tier}.rules.{rule.name}"
    at = " and ".join(_utc(offset) for offset in offsets)
    why = (
        "has no single UTC equivalent: daylight saving time moves it by an hour for part of the year"
        if len(offsets) > 1
        else "is not converted: only plain hours that stay on the same day are"
    )
    options = "; ".join(f"{cron} keeps it at {_utc(offset)}" for offset, cron in candidates.items() if cron)
    raise PolicyScheduleError(
        f"{key}.timezone: {rule.schedule} in {rule.timezone} ({at}) {why}; an "
        f"AWS Organizations backup policy takes a UTC cron with no time zone key ({POLICY_SYNTAX}); "
        f"write the schedule in UTC and set `timezone: UTC`" + (f" (e.g. {options})" if options else "")
    )


def backup_policy(
    plan_name: str,
    tier: str,
    *,
    rules: Sequence[RuleArgs],
    vault_name: str,
    service_role_arn: str,
    regions: Sequence[str],
    plan_tags: Mapping[str, str] | None = None,
    resource_types: Sequence[str] = (),
    not_resource_types: Sequence[str] = (),
) -> dict[str, Any]:
    """A BACKUP_POLICY document (Organizations policy syntax) for one tier's plan.

    Copy destinations are plain ARNs here; `$account` stands for each member account. Explicit
    resource ARNs are not part of it: organization mode selects by the tier tag only. Schedules are
    written in UTC, the policy syntax's only time zone: a rule in a zone with daylight saving time
    is refused (`PolicyScheduleError`) rather than shifted by an hour for half the year.
    """
    policy_rules: dict[str, Any] = {}
    for rule in rules:
        body: dict[str, Any] = {
            # No schedule_expression_timezone: the syntax has none (POLICY_SYNTAX); the cron is in UTC.
            "schedule_expression": _assign(_utc_schedule(tier, rule)),
            "start_backup_window_minutes": _assign(str(rule.start_window_minutes)),
            "complete_backup_window_minutes": _assign(str(rule.completion_window_minutes)),
            "target_backup_vault_name": _assign(vault_name),
            "lifecycle": _lifecycle(rule.delete_after_days, rule.cold_storage_after_days),
        }
        if rule.continuous:
            # A boolean as the string AWS's examples and effective policies show ("@@assign": "false").
            body["enable_continuous_backup"] = _assign("true")
        if rule.recovery_point_tags:
            body["recovery_point_tags"] = {
                key: {"tag_key": _assign(key), "tag_value": _assign(value)}
                for key, value in rule.recovery_point_tags.items()
            }
        if rule.copies:
            body["copy_actions"] = {
                str(copy.destination_vault_arn): {
                    "target_backup_vault_arn": _assign(str(copy.destination_vault_arn)),
                    "lifecycle": _lifecycle(copy.delete_after_days, copy.cold_storage_after_days),
                }
                for copy in rule.copies
            }
        policy_rules[rule.name] = body
    # Tag selections in the policy syntax match one key (values OR-ed): the tier tag selects.
    selections: dict[str, Any] = {
        "tags": {
            f"{plan_name}-tagged": {
                "iam_role_arn": _assign(service_role_arn),
                "tag_key": _assign(TAG_BACKUP_TIER),
                "tag_value": _assign([tier]),
            }
        }
    }
    if resource_types or not_resource_types:
        # By resource type and the same tier tag: "If you want a selection with both tag conditions and
        # resource conditions, use the `resources` keys" (POLICY_SYNTAX, "selections"; Example 7).
        chosen: dict[str, Any] = {
            "iam_role_arn": _assign(service_role_arn),
            "resource_types": _assign(list(resource_types or ["*"])),
            "conditions": {
                "string_equals": {
                    "tier": {
                        "condition_key": _assign(f"aws:ResourceTag/{TAG_BACKUP_TIER}"),
                        "condition_value": _assign(tier),
                    }
                }
            },
        }
        if not_resource_types:
            chosen["not_resource_types"] = _assign(list(not_resource_types))
        selections = {"resources": {f"{plan_name}-by-type": chosen}}
    plan: dict[str, Any] = {
        "regions": _assign(list(regions)),
        "rules": policy_rules,
        "selections": selections,
    }
    if plan_tags:
        plan["backup_plan_tags"] = {
            key: {"tag_key": _assign(key), "tag_value": _assign(value)} for key, value in plan_tags.items()
        }
    return {"plans": {plan_name: plan}}
