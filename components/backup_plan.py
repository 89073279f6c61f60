"""BackupPlan: a tier's AWS Backup plan with copy actions, and its tag and ARN selections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from pgf_backup.limits import (
    CONTINUOUS_MAX_RETENTION_DAYS,
    MAX_ARNS_PER_SELECTION,
    MAX_COPY_ACTIONS_PER_RULE,
    MAX_RULES_PER_PLAN,
)


@dataclass(frozen=True)
class CopyArgs:
    """One copy action: where to, and its own lifecycle (never left to the vault's default)."""

    destination_vault_arn: pulumi.Input[str]
    delete_after_days: int
    cold_storage_after_days: int | None = None


@dataclass(frozen=True)
class RuleArgs:
    """One rule of a plan."""

    name: str
    schedule: str
    timezone: str
    start_window_minutes: int
    completion_window_minutes: int
    delete_after_days: int
    cold_storage_after_days: int | None = None
    continuous: bool = False
    recovery_point_tags: Mapping[str, str] = field(default_factory=dict)
    copies: Sequence[CopyArgs] = ()


@dataclass(frozen=True)
class BackupPlanArgs:
    """A plan, the vault it writes to, the role AWS Backup uses and what it selects."""

    plan_name: str
    target_vault_name: pulumi.Input[str]
    rules: Sequence[RuleArgs]
    service_role_arn: pulumi.Input[str]
    # Tag conditions every selected resource must match (AND), e.g. backup:tier=prod.
    tag_conditions: Mapping[str, str]
    # Tag values a selected resource must not carry (AND): the other plans' routing tags (pgf_backup PlanVariant).
    tag_not_equals: Sequence[tuple[str, str]] = ()
    resources: Sequence[pulumi.Input[str]] = ()
    not_resources: Sequence[str] = ()
    # What the tag selection covers before its conditions: everything, or ARN patterns (a resource type).
    tag_resources: Sequence[str] = ("*",)
    tags: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse plans AWS would reject or that would select everything."""
        if not self.rules or len(self.rules) > MAX_RULES_PER_PLAN:
            raise ValueError(f"plan {self.plan_name}: 1 to {MAX_RULES_PER_PLAN} rules allowed, got {len(self.rules)}")
        if not self.tag_conditions:
            raise ValueError(f"plan {self.plan_name}: a tag selection needs at least one condition")
        for rule in self.rules:
            if len(rule.copies) > MAX_COPY_ACTIONS_PER_RULE:
                raise ValueError(
                    f"plan {self.plan_name}, rule {rule.name}: at most {MAX_COPY_ACTIONS_PER_RULE} copy actions"
                )
            if rule.continuous and rule.delete_after_days > CONTINUOUS_MAX_RETENTION_DAYS:
                raise ValueError(
                    f"plan {self.plan_name}, rule {rule.name}: continuous backups are kept at most "
                    f"{CONTINUOUS_MAX_RETENTION_DAYS} days"
                )


def _lifecycle(delete_after: int, cold_storage_after: int | None) -> aws.backup.PlanRuleLifecycleArgs:
    return aws.backup.PlanRuleLifecycleArgs(delete_after=delete_after, cold_storage_after=cold_storage_after)


class BackupPlan(pulumi.ComponentResource):
    """An AWS Backup plan whose every rule copies with an explicit lifecycle."""

    plan_id: pulumi.Output[str]
    plan_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BackupPlanArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:BackupPlan", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        plan = aws.backup.Plan(
            f"{name}-plan",
            name=args.plan_name,
            rules=[self._rule(rule) for rule in args.rules],
            tags=dict(args.tags),
            opts=child,
        )
        self._create_selections(name, plan, child)
        self.plan_id = plan.id
        self.plan_arn = plan.arn
        self.register_outputs({"plan_id": plan.id, "plan_arn": plan.arn})

    def _rule(self, rule: RuleArgs) -> aws.backup.PlanRuleArgs:
        return aws.backup.PlanRuleArgs(
            rule_name=rule.name,
            target_vault_name=self._args.target_vault_name,
            schedule=rule.schedule,
            schedule_expression_timezone=rule.timezone,
            start_window=rule.start_window_minutes,
            completion_window=rule.completion_window_minutes,
            enable_continuous_backup=rule.continuous,
            lifecycle=_lifecycle(rule.delete_after_days, rule.cold_storage_after_days),
            recovery_point_tags=dict(rule.recovery_point_tags) or None,
            copy_actions=[
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=copy.destination_vault_arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(
                        delete_after=copy.delete_after_days,
                        cold_storage_after=copy.cold_storage_after_days,
                    ),
                )
                for copy in rule.copies
            ]
            or None,
        )

    def _create_selections(self, name: str, plan: aws.backup.Plan, opts: pulumi.ResourceOptions) -> None:
        args = self._args
        # One condition block whose StringEquals entries are AND-ed: several blocks override each other.
        aws.backup.Selection(
            f"{name}-tagged",
            name=f"{args.plan_name}-tagged",
            plan_id=plan.id,
            iam_role_arn=args.service_role_arn,
            resources=list(args.tag_resources),
            not_resources=list(args.not_resources) or None,
            conditions=[
                aws.backup.SelectionConditionArgs(
                    string_equals=[
                        aws.backup.SelectionConditionStringEqualArgs(key=f"aws:ResourceTag/{key}", value=value)
                        for key, value in args.tag_conditions.items()
                    ],
                    string_not_equals=[
                        aws.backup.SelectionConditionStringNotEqualArgs(key=f"aws:ResourceTag/{key}", value=value)
                        for key, value in args.tag_not_equals
                    ]
                    or None,
                )
            ],
            opts=opts,
        )
        resources = list(args.resources)
        for index in range(0, len(resources), MAX_ARNS_PER_SELECTION):
            chunk = resources[index : index + MAX_ARNS_PER_SELECTION]
            suffix = f"-{index // MAX_ARNS_PER_SELECTION + 1}" if len(resources) > MAX_ARNS_PER_SELECTION else ""
            aws.backup.Selection(
                f"{name}-listed{suffix}",
                name=f"{args.plan_name}-listed{suffix}",
                plan_id=plan.id,
                iam_role_arn=args.service_role_arn,
                resources=chunk,
                # Selections are unioned: an exclusion must be repeated in each to hold.
                not_resources=list(args.not_resources) or None,
                opts=opts,
            )
