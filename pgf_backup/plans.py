"""A tier's plan from config, in the two scheduling modes: plan rules, or an Organizations BACKUP_POLICY.

Both modes start from the same `RuleArgs` (built by `rule_args`), so retention, schedules, copies
and recovery point tags cannot drift apart between them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import pulumi

from components.backup_plan import CopyArgs, RuleArgs
from pgf_backup.config import ConfigError, CopyTarget, Plan
from pgf_backup.constants import TAG_APPLICATION, TAG_BACKUP_ENABLED, TAG_BACKUP_TIER
from pgf_backup.schedules import ScheduleError, utc_schedule

# The member-account placeholder of the Organizations policy syntax.
ACCOUNT_PLACEHOLDER = "$account"

T = TypeVar("T")


class MissingDestinationError(ValueError):
    """A copy target the plan asks for has no vault to copy into."""


def rule_args(plan: Plan, destinations: Mapping[CopyTarget, T], targets: Sequence[CopyTarget]) -> list[RuleArgs]:
    """The plan's rules (scheduled, then continuous) with a copy action per configured target."""
    rules = []
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
                continuous=rule.continuous,
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


def _utc_schedule(tier: str, rule: RuleArgs) -> str:
    """The rule's schedule as the UTC cron a BACKUP_POLICY takes; refused when no single UTC cron keeps it.

    The config refuses such a rule first (`StackConfig`); this is the program's own guard.
    """
    try:
        return utc_schedule(rule.schedule, rule.timezone)
    except ScheduleError as error:
        key = f"plans.{tier}.continuous" if rule.continuous else f"plans.{tier}.rules.{rule.name}"
        raise PolicyScheduleError(f"{key}.timezone: {error}") from None


def _label(text: str) -> str:
    """A condition's name in the policy syntax (letters, digits and underscores)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text.removeprefix("backup:"))


def _conditions(named: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    return {
        name: {"condition_key": _assign(f"aws:ResourceTag/{key}"), "condition_value": _assign(value)}
        for name, (key, value) in named.items()
    }


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
    routing_equals: Mapping[str, str] | None = None,
    routing_not_equals: Sequence[tuple[str, str]] = (),
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
    if resource_types or not_resource_types or routing_equals or routing_not_equals:
        # By resource type and the same tier tag: "If you want a selection with both tag conditions and
        # resource conditions, use the `resources` keys" (POLICY_SYNTAX, "selections"; Example 7). The routing tags
        # of a tier with several plans (retention classes, vaults per criticality) are conditions too:
        # string_equals on this plan's, string_not_equals on the others' (pgf_backup.config.PlanVariant).
        equals = {"tier": (TAG_BACKUP_TIER, tier)}
        equals.update({_label(key): (key, value) for key, value in (routing_equals or {}).items()})
        conditions: dict[str, Any] = {"string_equals": _conditions(equals)}
        if routing_not_equals:
            conditions["string_not_equals"] = _conditions(
                {f"not_{_label(key)}_{_label(value)}": (key, value) for key, value in routing_not_equals}
            )
        chosen: dict[str, Any] = {
            "iam_role_arn": _assign(service_role_arn),
            "resource_types": _assign(list(resource_types or ["*"])),
            "conditions": conditions,
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
