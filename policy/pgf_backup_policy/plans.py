"""Backup plan rules, for `aws.backup.Plan` and BACKUP_POLICY plans alike: lifecycles, retention, copies, quotas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pgf_backup.limits import (
    COLD_STORAGE_MIN_DAYS,
    CONTINUOUS_MAX_RETENTION_DAYS,
    MAX_COPY_ACTIONS_PER_RULE,
    MAX_RULES_PER_PLAN,
)
from pgf_backup_policy.model import Context, is_unknown
from pgf_backup_policy.orgpolicy import is_backup_policy, parsed_content
from pgf_backup_policy.views import (
    BACKUP_PLAN,
    ORG_POLICY,
    THIS_ACCOUNT,
    THIS_REGION,
    Lifecycle,
    PlanView,
    RuleView,
    org_plan_views,
    plan_view,
)

PLAN_TYPES: Final = frozenset({BACKUP_PLAN, ORG_POLICY})


def plan_views(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[PlanView]:
    """The plans a resource defines: an aws.backup.Plan, or each plan of a BACKUP_POLICY."""
    if resource_type == BACKUP_PLAN:
        return [plan_view(props, ctx)]
    if is_backup_policy(resource_type, props):
        document = parsed_content(props)
        return org_plan_views(document) if document is not None else []
    return []


def copy_action_explicit_lifecycle_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """Every copy action sets its own delete-after (an omitted lifecycle keeps copies for years)."""
    problems = []
    for plan in plan_views(resource_type, props, ctx):
        for rule in plan.rules:
            for copy in rule.copies:
                lifecycle = copy.lifecycle
                if lifecycle is None or lifecycle.delete_after is None:
                    problems.append(
                        f"plan {plan.name}, rule {rule.name}: the copy to {copy.destination} sets no delete-after; "
                        "AWS stores an empty lifecycle and keeps those copies until someone deletes them"
                    )
    return problems


def _lifecycle_problems(what: str, lifecycle: Lifecycle | None, bounds: tuple[int, int] | None, tier: str) -> list[str]:
    if lifecycle is None or lifecycle.delete_after is None:
        if bounds is None:
            return []
        return [f"{what} has no delete-after, so it is kept forever; the {tier} maximum is {bounds[1]} days"]
    delete, cold = lifecycle.delete_after, lifecycle.cold_after
    if is_unknown(delete) or is_unknown(cold) or not isinstance(delete, int):
        return []
    problems = []
    if bounds is not None and not bounds[0] <= delete <= bounds[1]:
        problems.append(f"{what} is kept {delete} days; the {tier} tier allows {bounds[0]}-{bounds[1]} days")
    if isinstance(cold, int) and delete < cold + COLD_STORAGE_MIN_DAYS:
        problems.append(
            f"{what} is deleted after {delete} days but moves to cold storage after {cold}: cold storage lasts at "
            f"least {COLD_STORAGE_MIN_DAYS} days, so delete-after must be >= {cold + COLD_STORAGE_MIN_DAYS}"
        )
    return problems


def _rule_problems(plan: PlanView, rule: RuleView, ctx: Context, tier: str | None) -> list[str]:
    bounds = ctx.settings.bounds.get(tier) if tier else None
    label = f"plan {plan.name}, rule {rule.name}"
    tier_name = tier or "unknown"
    problems = _lifecycle_problems(label, rule.lifecycle, bounds, tier_name)
    delete = rule.lifecycle.delete_after if rule.lifecycle else None
    if rule.continuous and isinstance(delete, int) and delete > CONTINUOUS_MAX_RETENTION_DAYS:
        problems.append(
            f"{label} is continuous (point-in-time restore) and kept {delete} days; "
            f"AWS keeps continuous backups at most {CONTINUOUS_MAX_RETENTION_DAYS} days"
        )
    for copy in rule.copies:
        if copy.lifecycle is not None and copy.lifecycle.delete_after is not None:  # else: the copy-lifecycle rule
            problems += _lifecycle_problems(
                f"{label}: the copy to {copy.destination}", copy.lifecycle, bounds, tier_name
            )
    return problems


def retention_within_tier_bounds_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """Rule and copy delete-after within the tier's bounds; continuous <= 35 days; cold storage + 90 days.

    Prod's floor of 35 days (its daily backups included) is the prod lower bound, which the pack's config
    cannot set below 35 (`Settings.from_config` refuses it).
    """
    tier = ctx.tier_of(props)
    problems = []
    for plan in plan_views(resource_type, props, ctx):
        for rule in plan.rules:
            problems += _rule_problems(plan, rule, ctx, tier)
    return problems


def _leaves_account_and_region(plan: PlanView, rule: RuleView) -> list[str]:
    if any(is_unknown(copy.destination) for copy in rule.copies):
        return []  # a destination only known after this update: checked again by `pulumi up`
    label = f"plan {plan.name}, rule {rule.name}"
    known = [d for d in (copy.account_and_region for copy in rule.copies) if d is not None]
    problems = []
    if plan.account is None:
        problems.append(
            f"{label}: cannot tell which account this plan runs in; give its provider allowedAccountIds "
            "so the pack can check that copies leave the account"
        )
    elif not any(account not in (plan.account, THIS_ACCOUNT) for account, _ in known):
        problems.append(f"{label} copies to no vault in another account (the dedicated backup account)")
    regions = plan.regions or (THIS_REGION,)
    stuck = [r for r in regions if not any(region not in (r, THIS_REGION) for _, region in known)]
    if stuck:
        problems.append(f"{label} copies to no vault outside {', '.join(stuck)}; prod copies go to another region")
    return problems


def prod_copies_leave_account_and_region_violations(
    resource_type: str, props: Mapping[str, Any], ctx: Context
) -> list[str]:
    """In prod, every rule copies to a vault of another account and to another region."""
    if ctx.tier_of(props) != "prod":
        return []
    problems = []
    for plan in plan_views(resource_type, props, ctx):
        for rule in plan.rules:
            problems += _leaves_account_and_region(plan, rule)
    return problems


def plan_within_quotas_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """At most 10 rules per plan and 5 copy actions per rule (AWS Backup's quotas)."""
    problems = []
    for plan in plan_views(resource_type, props, ctx):
        if len(plan.rules) > MAX_RULES_PER_PLAN:
            problems.append(f"plan {plan.name} has {len(plan.rules)} rules; AWS allows {MAX_RULES_PER_PLAN} per plan")
        for rule in plan.rules:
            if len(rule.copies) > MAX_COPY_ACTIONS_PER_RULE:
                problems.append(
                    f"plan {plan.name}, rule {rule.name} has {len(rule.copies)} copy actions; "
                    f"AWS allows {MAX_COPY_ACTIONS_PER_RULE} per rule"
                )
    return problems
