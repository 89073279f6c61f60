"""One view of backup rules for both scheduling modes: `aws.backup.Plan` and Organizations BACKUP_POLICY plans."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pgf_backup_policy.model import UNKNOWN, Context, Unknown, as_bool, as_int, as_list, is_unknown

BACKUP_PLAN: Final = "aws:backup/plan:Plan"
ORG_POLICY: Final = "aws:organizations/policy:Policy"
# The account and region a BACKUP_POLICY plan runs in: each member account, each listed region.
THIS_ACCOUNT: Final = "$account"
THIS_REGION: Final = "$region"

_VAULT_ARN = re.compile(r"^arn:aws[\w-]*:backup:([a-z0-9$-]+):(\d{12}|\$account):backup-vault:.+$")


@dataclass(frozen=True)
class Lifecycle:
    """When recovery points move to cold storage and when they are deleted (days; None when unset)."""

    delete_after: int | Unknown | None
    cold_after: int | Unknown | None


@dataclass(frozen=True)
class CopyView:
    """A copy action: the destination vault ARN and the copies' own lifecycle (None when omitted)."""

    destination: str | Unknown
    lifecycle: Lifecycle | None

    @property
    def account_and_region(self) -> tuple[str, str] | None:
        """(account, region) of the destination vault; None when unknown or not a vault ARN."""
        if is_unknown(self.destination) or not isinstance(self.destination, str):
            return None
        match = _VAULT_ARN.match(self.destination)
        return (match.group(2), match.group(1)) if match else None


@dataclass(frozen=True)
class RuleView:
    """A backup rule."""

    name: str
    schedule: str | None
    continuous: bool
    lifecycle: Lifecycle | None
    copies: tuple[CopyView, ...]


@dataclass(frozen=True)
class PlanView:
    """A backup plan: its rules, and the account and regions it runs in (None when unknown)."""

    name: str
    rules: tuple[RuleView, ...]
    account: str | None
    regions: tuple[str, ...]


def _int_or_unknown(value: Any) -> int | Unknown | None:
    return UNKNOWN if is_unknown(value) else as_int(value)


def _lifecycle(value: Any, delete_key: str, cold_key: str) -> Lifecycle | None:
    if not isinstance(value, Mapping) or not value:
        return None
    return Lifecycle(_int_or_unknown(assigned(value.get(delete_key))), _int_or_unknown(assigned(value.get(cold_key))))


def assigned(node: Any) -> Any:
    """The value of an organization policy setting (`{"@@assign": value}`), or the node itself."""
    if isinstance(node, Mapping):
        for operator in ("@@assign", "@@append"):
            if operator in node:
                return node[operator]
    return node


def plan_view(props: Mapping[str, Any], ctx: Context) -> PlanView:
    """The view of an `aws.backup.Plan`'s inputs (`rules[].lifecycle`, `rules[].copyActions[]`)."""
    rules = []
    for index, rule in enumerate(as_list(props.get("rules"))):
        if not isinstance(rule, Mapping):
            continue
        copies = tuple(
            CopyView(
                destination=copy.get("destinationVaultArn") or "",
                lifecycle=_lifecycle(copy.get("lifecycle"), "deleteAfter", "coldStorageAfter"),
            )
            for copy in as_list(rule.get("copyActions"))
            if isinstance(copy, Mapping)
        )
        rules.append(
            RuleView(
                name=str(rule.get("ruleName") or f"rules[{index}]"),
                schedule=rule.get("schedule") if isinstance(rule.get("schedule"), str) else None,
                continuous=as_bool(rule.get("enableContinuousBackup")) is True,
                lifecycle=_lifecycle(rule.get("lifecycle"), "deleteAfter", "coldStorageAfter"),
                copies=copies,
            )
        )
    regions = (ctx.region,) if ctx.region else ()
    return PlanView(str(props.get("name") or "this plan"), tuple(rules), ctx.account, regions)


def org_plan_views(document: Mapping[str, Any]) -> list[PlanView]:
    """The plans of a parsed BACKUP_POLICY document (shape checked by `orgpolicy`)."""
    views = []
    plans = document.get("plans")
    for plan_name, plan in plans.items() if isinstance(plans, Mapping) else []:
        if not isinstance(plan, Mapping):
            continue
        rules = []
        rule_nodes = plan.get("rules")
        for rule_name, rule in rule_nodes.items() if isinstance(rule_nodes, Mapping) else []:
            if not isinstance(rule, Mapping):
                continue
            copy_nodes = rule.get("copy_actions")
            copies = tuple(
                CopyView(
                    destination=str(assigned(copy.get("target_backup_vault_arn")) or key),
                    lifecycle=_lifecycle(copy.get("lifecycle"), "delete_after_days", "move_to_cold_storage_after_days"),
                )
                for key, copy in (copy_nodes.items() if isinstance(copy_nodes, Mapping) else [])
                if isinstance(copy, Mapping)
            )
            schedule = assigned(rule.get("schedule_expression"))
            rules.append(
                RuleView(
                    name=str(rule_name),
                    schedule=schedule if isinstance(schedule, str) else None,
                    continuous=as_bool(assigned(rule.get("enable_continuous_backup"))) is True,
                    lifecycle=_lifecycle(rule.get("lifecycle"), "delete_after_days", "move_to_cold_storage_after_days"),
                    copies=copies,
                )
            )
        regions = tuple(r for r in as_list(assigned(plan.get("regions"))) if isinstance(r, str))
        views.append(PlanView(str(plan_name), tuple(rules), THIS_ACCOUNT, regions))
    return views
