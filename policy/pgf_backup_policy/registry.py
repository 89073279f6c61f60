"""The pack's rules: names, descriptions, enforcement, config schema, and the thin pulumi_policy validators."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from pgf_backup.constants import DEFAULT_BREAK_GLASS_ROLE, DEFAULT_DEPLOY_ROLE, RESTORE_TESTING_TYPES, TIERS
from pgf_backup.limits import PROD_MIN_RETENTION_DAYS
from pgf_backup_policy import data, evidence, functions, kms, orgpolicy, plans, selections, vaults, views
from pgf_backup_policy.model import (
    DEFAULT_BOUNDS,
    Context,
    Finding,
    Resource,
    Settings,
    context_of,
    plain,
    stack_of_urn,
)

PACK_NAME: Final = "pgf-backup"
PACK_DESCRIPTION: Final = (
    "Guardrails of PGF's AWS Backup strategy: locked, customer-key vaults; plans that copy out of the account "
    "and region with bounded retention; protected data services; no plaintext secrets."
)

ResourceCheck = Callable[[str, Mapping[str, Any], Context], list[str]]
StackCheck = Callable[[Sequence[Resource]], list[Finding]]


class ConfiguredStackCheck(Protocol):
    """A stack check that also reads its policy's config as given, and the stack's own context (name, tier)."""

    def __call__(
        self, resources: Sequence[Resource], config: Mapping[str, Any] | None = None, stack: Context | None = None
    ) -> list[Finding]: ...


_ROLE_NAME = {"type": "string", "pattern": r"^[\w+=,.@-]{1,64}$"}
# Every setting a rule may read, as a JSON schema property (the Pulumi CLI validates config against it).
SETTINGS_SCHEMA: Final[Mapping[str, dict[str, Any]]] = {
    "tier": {
        "type": "string",
        "enum": list(TIERS),
        "description": "Tier of the stack; by default the stack name (`prod`, or a `-prod` suffix).",
    },
    "tierBounds": {
        "type": "object",
        "description": "Retention bounds in days per tier ({tier: {minDays, maxDays}}); prod.minDays >= 35.",
        "default": {tier: {"minDays": low, "maxDays": high} for tier, (low, high) in DEFAULT_BOUNDS.items()},
        "properties": {
            tier: {
                "type": "object",
                "properties": {
                    "minDays": {"type": "integer", "minimum": PROD_MIN_RETENTION_DAYS if tier == "prod" else 1},
                    "maxDays": {"type": "integer", "minimum": 1},
                },
            }
            for tier in TIERS
        },
    },
    "breakGlassRole": {
        **_ROLE_NAME,
        "default": DEFAULT_BREAK_GLASS_ROLE,
        "description": "Name of the role that alone may delete recovery points and schedule key deletion.",
    },
    "deployRole": {
        **_ROLE_NAME,
        "default": DEFAULT_DEPLOY_ROLE,
        "description": "Name of the role that deploys this project (may change vault locks, vault and key policies).",
    },
    "allowComplianceLockOutsideProd": {
        "type": "boolean",
        "default": False,
        "description": "Allow compliance-mode Vault Lock outside prod (it can never be removed).",
    },
    "restoreTesting": {
        "type": "object",
        "default": {},
        "description": (
            "Per tier, where its restore tests run (`backup-account` or `workload`), the restore testing resource "
            "types it protects and the stacks protecting them; the gate derives it from the stack files."
        ),
        "properties": {
            tier: {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "enum": list(evidence.LOCATIONS)},
                    "types": {"type": "array", "items": {"type": "string", "enum": list(RESTORE_TESTING_TYPES)}},
                    "stacks": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["location", "types"],
            }
            for tier in TIERS
        },
    },
}


@dataclass(frozen=True)
class ResourceRule:
    """A rule over one resource's properties."""

    name: str
    description: str
    enforcement: EnforcementLevel
    types: frozenset[str]
    check: ResourceCheck
    settings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackRule:
    """A rule over the stack's resources of the listed types (companions live in separate resources)."""

    name: str
    description: str
    enforcement: EnforcementLevel
    types: frozenset[str]
    check: StackCheck
    settings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfiguredStackRule(StackRule):
    """A stack rule whose check reads settings `Settings` does not model: it gets the policy's config as given."""

    check: ConfiguredStackCheck


MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

RULES: Final[tuple[ResourceRule | StackRule, ...]] = (
    ResourceRule(
        "vault-customer-managed-key",
        "Backup vaults are encrypted with a customer-managed KMS key, never an AWS-managed one.",
        MANDATORY,
        frozenset({vaults.VAULT}),
        vaults.vault_customer_managed_key_violations,
    ),
    StackRule(
        "vault-lock-compliance-in-prod",
        "Prod vaults have a compliance-mode Vault Lock with the prod minimum retention; "
        "other tiers no compliance lock.",
        MANDATORY,
        frozenset({vaults.VAULT, vaults.AIR_GAPPED_VAULT, vaults.VAULT_LOCK}),
        vaults.vault_lock_compliance_in_prod_violations,
        ("tier", "tierBounds", "allowComplianceLockOutsideProd"),
    ),
    StackRule(
        "vault-denies-recovery-point-deletion",
        "Vault access policies deny deleting recovery points to all but the break-glass role, "
        "and lock or policy changes to all but the deploy and break-glass roles.",
        MANDATORY,
        frozenset({vaults.VAULT, vaults.VAULT_POLICY}),
        vaults.vault_denies_recovery_point_deletion_violations,
        ("breakGlassRole", "deployRole"),
    ),
    ResourceRule(
        "kms-key-hardening",
        "KMS keys rotate, keep a long deletion window and no open policy; prod key policies deny deletion "
        "and policy changes to all but the break-glass (and deploy) roles.",
        MANDATORY,
        kms.KEY_TYPES,
        kms.kms_key_hardening_violations,
        ("tier", "breakGlassRole", "deployRole"),
    ),
    ResourceRule(
        "copy-action-explicit-lifecycle",
        "Every copy action of a backup plan sets its own delete-after.",
        MANDATORY,
        plans.PLAN_TYPES,
        plans.copy_action_explicit_lifecycle_violations,
    ),
    ResourceRule(
        "retention-within-tier-bounds",
        "Backup and copy retention stay within the tier's bounds; continuous backups <= 35 days; "
        "delete-after >= cold storage + 90 days.",
        MANDATORY,
        plans.PLAN_TYPES,
        plans.retention_within_tier_bounds_violations,
        ("tier", "tierBounds"),
    ),
    ResourceRule(
        "prod-copies-leave-account-and-region",
        "In prod, every backup rule copies to a vault of another account and to another region.",
        MANDATORY,
        plans.PLAN_TYPES,
        plans.prod_copies_leave_account_and_region_violations,
        ("tier",),
    ),
    ResourceRule(
        "selection-is-scoped",
        "Backup selections never select '*' without conditions, use one condition block, list <= 100 ARNs.",
        MANDATORY,
        frozenset({selections.SELECTION}),
        selections.selection_is_scoped_violations,
    ),
    ResourceRule(
        "plan-within-quotas",
        "Backup plans have at most 10 rules, and rules at most 5 copy actions.",
        MANDATORY,
        plans.PLAN_TYPES,
        plans.plan_within_quotas_violations,
    ),
    ResourceRule(
        "org-backup-policy-valid",
        "Organizations BACKUP_POLICY documents are JSON in the backup policy syntax, at most 10,000 characters.",
        MANDATORY,
        frozenset({views.ORG_POLICY}),
        orgpolicy.org_backup_policy_valid_violations,
    ),
    StackRule(
        "protected-bucket-prerequisites",
        "Buckets backed up by the stack have versioning, SSE-KMS, a full public access block and a TLS-only "
        "policy in the same stack.",
        MANDATORY,
        data.BUCKET_STACK_TYPES,
        data.protected_bucket_prerequisites_violations,
    ),
    ResourceRule(
        "rds-backup-posture",
        "RDS instances and clusters keep backups >= 7 days (>= 35 in prod), are encrypted with a "
        "customer-managed key, deletion-protected, and Multi-AZ in prod.",
        MANDATORY,
        data.RDS_TYPES,
        data.rds_backup_posture_violations,
        ("tier",),
    ),
    ResourceRule(
        "data-resources-tagged",
        "S3 buckets, RDS, DynamoDB and EFS carry backup:enabled, backup:tier (the stack's), "
        "data:classification and application.",
        MANDATORY,
        data.DATA_TYPES,
        data.data_resources_tagged_violations,
        ("tier",),
    ),
    ResourceRule(
        "lambda-no-plaintext-secrets",
        "Lambda environment variables named like secrets hold references to Secrets Manager or SSM, not values; "
        "no variable holds an AWS access key.",
        MANDATORY,
        frozenset({functions.FUNCTION}),
        functions.lambda_no_plaintext_secrets_violations,
    ),
    ResourceRule(
        "lambda-publishes-versions",
        "Prod Lambda functions publish versions, so an alias can roll back to the previous code.",
        ADVISORY,
        frozenset({functions.FUNCTION}),
        functions.lambda_publishes_versions_violations,
        ("tier",),
    ),
    StackRule(
        "lambda-dead-letter",
        "Lambda functions invoked asynchronously (schedules, EventBridge, SNS, S3) have a dead-letter queue or "
        "an on-failure destination.",
        ADVISORY,
        functions.DEAD_LETTER_TYPES,
        functions.lambda_dead_letter_violations,
    ),
    ResourceRule(
        "prod-stateful-resources-protected",
        "In prod, backup vaults and KMS keys are registered with `protect`.",
        MANDATORY,
        vaults.STATEFUL_TYPES,
        vaults.prod_stateful_resources_protected_violations,
        ("tier",),
    ),
    StackRule(
        "selections-disjoint",
        "Within a stack, no two backup plans have selections that can match the same resource (its tags and ARN): "
        "AWS Backup would run both plans on it, with their different retentions and vaults.",
        MANDATORY,
        frozenset({selections.SELECTION}),
        selections.selections_disjoint_violations,
    ),
    ConfiguredStackRule(
        "restore-testing-covers-prod",
        "Every resource type protected in prod has a restore testing selection under a restore testing plan "
        "tagged backup:tier=prod, where prod's restore tests run.",
        MANDATORY,
        evidence.RESTORE_TESTING_RULE_TYPES,
        evidence.restore_testing_covers_prod_violations,
        ("tier", "restoreTesting"),
    ),
    ConfiguredStackRule(
        "audit-evidence-present",
        "A backup account holding prod vaults has an Audit Manager framework and report plans of backup, copy "
        "and restore jobs and of compliance, each delivered to a bucket.",
        MANDATORY,
        evidence.AUDIT_RULE_TYPES,
        evidence.audit_evidence_present_violations,
        ("tier",),
    ),
)


def config_schema(rule: ResourceRule | StackRule) -> PolicyConfigSchema | None:
    """The JSON schema of the settings a rule reads (None when it reads none)."""
    if not rule.settings:
        return None
    return PolicyConfigSchema(properties={key: dict(SETTINGS_SCHEMA[key]) for key in rule.settings})


def _resource_validator(rule: ResourceRule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:  # cheap exit: most resources are not this rule's business
            return
        props = plain(args.props)
        provider = args.provider.props if args.provider is not None else None
        ctx = context_of(args.urn, provider, Settings.from_config(args.get_config()), props, args.opts.protect)
        for message in rule.check(args.resource_type, props, ctx):
            report_violation(message, args.urn)

    return validate


def _stack_validator(rule: StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config()
        settings = Settings.from_config(config)
        resources = []
        for resource in args.resources:
            if resource.resource_type not in rule.types:
                continue
            props = plain(resource.props)
            provider = resource.provider.props if resource.provider is not None else None
            ctx = context_of(resource.urn, provider, settings, props, resource.opts.protect)
            parent = resource.parent.urn if resource.parent is not None else ""
            resources.append(Resource(resource.resource_type, resource.urn, resource.name, props, ctx, parent))
        if isinstance(rule, ConfiguredStackRule):
            # The stack's name (hence its tier) from any of its resources: a rule may find none of its own types.
            name = stack_of_urn(args.resources[0].urn) if args.resources else ""
            findings = rule.check(resources, config, Context(stack=name, settings=settings))
        else:
            findings = rule.check(resources)
        for finding in findings:
            report_violation(finding.message, finding.urn or None)

    return validate


def policies() -> list[Policy]:
    """The pulumi_policy policies of the pack, one per rule."""
    built: list[Policy] = []
    for rule in RULES:
        if isinstance(rule, ResourceRule):
            built.append(
                ResourceValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=_resource_validator(rule),
                    enforcement_level=rule.enforcement,
                    config_schema=config_schema(rule),
                )
            )
        else:
            built.append(
                StackValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=_stack_validator(rule),
                    enforcement_level=rule.enforcement,
                    config_schema=config_schema(rule),
                )
            )
    return built
