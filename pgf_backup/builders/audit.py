"""AWS Backup Audit Manager: frameworks, report plans and the reports bucket."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from components.audit import (
    COMPLIANCE_TEMPLATES,
    JOB_TEMPLATES,
    MAX_CONTROLS_PER_ACCOUNT_REGION,
    AuditFramework,
    AuditFrameworkArgs,
    AuditReports,
    AuditReportsArgs,
    ControlArgs,
    EvidenceWriter,
    ReportPlanArgs,
    ReportPlans,
    ReportPlansArgs,
)
from pgf_backup.config import BackupAccountStack, Tier, VaultStack, WorkloadStack, partition
from pgf_backup.constants import (
    AUDIT_REPORTS_PREFIX,
    RESTORE_EVIDENCE_PREFIX,
    RESTORE_VALIDATOR_ROLE,
    TAG_BACKUP_ENABLED,
    TAG_BACKUP_TIER,
    TIERS,
)
from pgf_backup.providers import Providers

# Frameworks are deployed by AWS as AWS Config managed rules of AWS Backup's own (the service-linked role's policy
# manages `config-rule/aws-service-rule/backup.amazonaws.com*`,
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSServiceRolePolicyForBackupReports.html). AWS
# Config's pages of those rules exclude these regions: "All supported AWS regions except Asia Pacific (New Zealand),
# China (Beijing), Asia Pacific (Thailand), Asia Pacific (Malaysia), Mexico (Central), Israel (Tel Aviv), Asia
# Pacific (Taipei), Canada West (Calgary), China (Ningxia) Region"
# (https://docs.aws.amazon.com/config/latest/developerguide/backup-plan-min-frequency-and-min-retention-check.html,
# and backup-recovery-point-manual-deletion-disabled.html). There a framework is skipped with a note.
FRAMEWORKS_UNAVAILABLE = frozenset(
    {
        "ap-southeast-6",
        "cn-north-1",
        "ap-southeast-7",
        "ap-southeast-5",
        "mx-central-1",
        "il-central-1",
        "ap-east-2",
        "ca-west-1",
        "cn-northwest-1",
    }
)


@dataclass(frozen=True)
class ReportsBucket:
    """The backup account's reports bucket: where report plans and restore-test evidence land."""

    name: str
    arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]


def _name_prefix(application: str) -> str:
    """Framework and report plan names take letters, digits and '_' and start with a letter (botocore's model)."""
    prefix = re.sub(r"[^A-Za-z0-9]", "_", application)
    return prefix if prefix[:1].isalpha() else f"pgf_{prefix}"


def _frequency(rpo_hours: int) -> tuple[str, int, str | None]:
    """(unit, value, note) of the minimum-frequency control for an RPO: hours up to 24, whole days beyond."""
    # "Maximum of 24 for hours, 31 for days" (backup-plan-min-frequency-and-min-retention-check.html).
    if rpo_hours <= 24:
        return "hours", rpo_hours, None
    days = math.ceil(rpo_hours / 24)
    note = None
    if rpo_hours % 24:
        note = f"audit: an RPO of {rpo_hours} hours is checked as a frequency of {days} days (hours stop at 24)"
    return "days", days, note


def tier_controls(
    cfg: VaultStack,
    tier: Tier,
    *,
    cross_region: str | None,
    cross_account: str | None,
    scope_everything: bool,
) -> tuple[list[ControlArgs], list[str]]:
    """The controls of a tier's framework with its parameters from config; (controls, notes).

    Names and parameters: https://docs.aws.amazon.com/aws-backup/latest/devguide/creating-frameworks-api.html and
    https://docs.aws.amazon.com/aws-backup/latest/devguide/bam-cfn-integration.html (crossRegionList,
    crossAccountList, principalArnList). Scope: "a Tagged resources scope with a single tag key and optional value"
    (https://docs.aws.amazon.com/aws-backup/latest/devguide/controls-and-remediation.html), `backup:tier=<tier>`.
    The protected resources and the vaults carry that tag. The strategy's plans and recovery points do not (no AWS
    page says a recovery point inherits its resource's tags): in a workload account, which holds one tier only,
    their controls are left unscoped (every plan and recovery point of the account); in the backup account
    (`scope_everything`), which holds every tier, they stay scoped by the tag and only evaluate recovery points
    that carry it (give the plan rules `recovery_point_tags: {backup:tier: <tier>}` for them to count).
    """
    notes: list[str] = []
    tag = {TAG_BACKUP_TIER: tier}
    untagged = tag if scope_everything else None
    unit, value, note = _frequency(getattr(cfg.alarms.rpo_hours, tier))
    if note:
        notes.append(note)
    min_days = str(cfg.tier_bounds.of(tier).min_days)
    controls = [
        ControlArgs("BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN", scope_tags=tag),
        ControlArgs(
            "BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK",
            {"requiredFrequencyUnit": unit, "requiredFrequencyValue": str(value), "requiredRetentionDays": min_days},
            scope_tags=untagged,
        ),
        ControlArgs("BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK", {"requiredRetentionDays": min_days}, untagged),
        ControlArgs("BACKUP_RECOVERY_POINT_ENCRYPTED", scope_tags=untagged),
        # Only the break-glass role may delete recovery points (the vault access policies); "Up to 5 IAM roles".
        ControlArgs(
            "BACKUP_RECOVERY_POINT_MANUAL_DELETION_DISABLED",
            {"principalArnList": cfg.role_arn(cfg.account_id, cfg.iam.break_glass_role)},
            scope_tags=tag,
        ),
        # Its optional minimum and maximum retention days are not set: no AWS page gives their ParameterName.
        ControlArgs("BACKUP_RESOURCES_PROTECTED_BY_BACKUP_VAULT_LOCK", scope_tags=tag),
        # The freshness alarm's window (RPO plus grace): a daily job lands a little over 24 hours after the last.
        ControlArgs(
            "BACKUP_LAST_RECOVERY_POINT_CREATED",
            {"recoveryPointAgeUnit": "hours", "recoveryPointAgeValue": str(cfg.alarms.window_hours(tier))},
            scope_tags=tag,
        ),
    ]
    if cross_region is not None:
        controls.append(
            ControlArgs("BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION", {"crossRegionList": cross_region}, tag)
        )
    if cross_account is not None:
        controls.append(
            ControlArgs("BACKUP_RESOURCES_PROTECTED_BY_CROSS_ACCOUNT", {"crossAccountList": cross_account}, tag)
        )
    return controls, notes


def _object_lock(cfg: VaultStack, compliance: bool) -> tuple[Literal["GOVERNANCE", "COMPLIANCE"], int] | None:
    """COMPLIANCE where prod evidence lands: no one, root included, can shorten or remove it
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html#object-lock-retention-modes); GOVERNANCE
    elsewhere, which the break-glass role alone may bypass (the bucket policy), or none if configured."""
    days = cfg.audit.object_lock_days
    if compliance:
        return "COMPLIANCE", days
    return None if cfg.audit.non_prod_object_lock == "none" else ("GOVERNANCE", days)


def _build(
    cfg: VaultStack,
    providers: Providers,
    tiers: list[Tier],
    *,
    compliance_lock: bool,
    writers: list[EvidenceWriter],
    job_accounts: list[str],
    hardened: bool,
    controls_of: dict[Tier, tuple[str | None, str | None]],
    bucket_tags: dict[str, str],
) -> tuple[AuditReports, dict[str, Any]]:
    audit = cfg.audit
    account, region = cfg.account_id, cfg.regions.primary
    bucket = audit.bucket_name(cfg.tags.application, account)
    lock = _object_lock(cfg, compliance_lock)
    reports = AuditReports(
        "audit-reports",
        AuditReportsArgs(
            bucket=bucket,
            account_id=account,
            region=region,
            partition=partition(region),
            reports_prefix=AUDIT_REPORTS_PREFIX,
            report_retention_days=audit.report_retention_days,
            noncurrent_version_expiration_days=audit.noncurrent_version_expiration_days,
            object_lock=lock,
            break_glass_role_arn=cfg.role_arn(account, cfg.iam.break_glass_role),
            writers=writers,
            create_reports_role=audit.create_reports_role,
            key_guard=providers.key_guard(hardened),
            tags=bucket_tags,
        ),
        providers.opts(),
    )
    notes: list[str] = []
    prefix = _name_prefix(cfg.tags.application)
    frameworks: dict[str, Any] = {}
    framework_arns: list[pulumi.Output[str]] = []
    if region in FRAMEWORKS_UNAVAILABLE:
        notes.append(
            f"audit: no framework in {region}: AWS Config does not offer AWS Backup's managed rules there "
            "(https://docs.aws.amazon.com/config/latest/developerguide/"
            "backup-plan-min-frequency-and-min-retention-check.html); job reports are still delivered"
        )
    else:
        built: list[tuple[Tier, list[ControlArgs]]] = []
        for tier in tiers:
            cross_region, cross_account = controls_of[tier]
            controls, tier_notes = tier_controls(
                cfg,
                tier,
                cross_region=cross_region,
                cross_account=cross_account,
                scope_everything=isinstance(cfg, BackupAccountStack),
            )
            notes.extend(tier_notes)
            built.append((tier, controls))
        total = sum(len(controls) for _, controls in built)
        if total > MAX_CONTROLS_PER_ACCOUNT_REGION:
            raise ValueError(
                f"audit: {total} controls in account {account} and {region}; AWS allows "
                f"{MAX_CONTROLS_PER_ACCOUNT_REGION} per account and region (controls-and-remediation.html)"
            )
        for tier, controls in built:
            name = f"{prefix}_{tier}_backup_controls"
            framework = AuditFramework(
                f"audit-framework-{tier}",
                AuditFrameworkArgs(
                    framework_name=name,
                    description=f"pgf-backup controls of the {tier} tier (protection, frequency, retention, "
                    "encryption, deletion, Vault Lock, copies, recovery point age)",
                    controls=controls,
                    tags={TAG_BACKUP_TIER: tier},
                ),
                providers.opts(),
            )
            framework_arns.append(framework.framework_arn)
            frameworks[tier] = {
                "name": name,
                "arn": framework.framework_arn,
                "controls": {c.name: dict(c.parameters) for c in controls},
                "scope": {c.name: dict(c.scope_tags or {}) for c in controls},
            }
    formats = list(audit.formats)
    plans = [
        ReportPlanArgs(
            plan_name=f"{prefix}_{template.lower().removesuffix('_report')}s",
            template=template,
            description=f"pgf-backup {template.lower().replace('_', ' ')} of "
            f"{'the organization accounts' if job_accounts else 'this account'} in {', '.join(cfg.regions.all)}",
            formats=formats,
            accounts=job_accounts,
            regions=list(cfg.regions.all),
        )
        for template in JOB_TEMPLATES
    ]
    if framework_arns:
        plans += [
            ReportPlanArgs(
                plan_name=f"{prefix}_{template.lower().removesuffix('_report')}",
                template=template,
                description=f"pgf-backup {template.lower().replace('_', ' ')} of this account's frameworks",
                formats=formats,
                framework_arns=framework_arns,
            )
            for template in COMPLIANCE_TEMPLATES
        ]
    report_plans = ReportPlans(
        "audit-report-plans",
        ReportPlansArgs(bucket=bucket, prefix=AUDIT_REPORTS_PREFIX, plans=plans),
        providers.opts(depends_on=reports.delivery_ready),
    )
    outputs: dict[str, Any] = {
        "reports_bucket": bucket,
        "reports_bucket_arn": reports.bucket_arn,
        "key_arn": reports.key_arn,
        "object_lock": {"mode": lock[0], "days": lock[1]} if lock else None,
        "reports_prefix": f"s3://{bucket}/{AUDIT_REPORTS_PREFIX}/Backup/",
        "frameworks": frameworks,
        "report_plans": {
            plan.plan_name: {
                "template": plan.template,
                "arn": report_plans.plan_arns[plan.plan_name],
                "accounts": plan.accounts or [account],
                "regions": plan.regions or [region],
            }
            for plan in plans
        },
        "evidence_writers": {w.account_id: f"s3://{bucket}/{w.prefix}/" for w in writers},
        "notes": notes,
    }
    return reports, outputs


def build_backup_account(cfg: BackupAccountStack, providers: Providers) -> tuple[ReportsBucket | None, dict[str, Any]]:
    """The reports bucket, frameworks and report plans of the backup account; (the bucket, the outputs added)."""
    if not cfg.audit.enabled:
        return None, {}
    account = cfg.account_id
    tiers = sorted({vault.tier for vault in cfg.vaults.values()}, key=TIERS.index)
    # The restore validation function writes its evidence here, from this account and (workload testing) from
    # each workload account, each under restore-tests/<its account>/ only.
    writers = [
        EvidenceWriter(a, cfg.role_arn(a, RESTORE_VALIDATOR_ROLE), f"{RESTORE_EVIDENCE_PREFIX}/{a}")
        for a in [account, *cfg.workload_account_ids]
    ]
    # Cross-account job reports: "management and delegated administrator account holders can also create
    # cross-account reports" (https://docs.aws.amazon.com/aws-backup/latest/devguide/working-with-audit-reports.html).
    # In organization mode the backup account is AWS Backup's delegated administrator (pgf_backup/management.py).
    organization = cfg.scheduling == "organization"
    job_accounts = sorted({account, *cfg.workload_account_ids}) if organization else []
    reports, outputs = _build(
        cfg,
        providers,
        tiers,
        compliance_lock="prod" in tiers,
        writers=writers,
        job_accounts=job_accounts,
        hardened=True,  # the backup account holds prod evidence
        controls_of={tier: (cfg.regions.copy_region, account) for tier in tiers},
        # The strategy's tags (the policy pack's data-resources-tagged): the tier of the most protected evidence
        # it holds, and not backed up (no plan runs in the backup account; Object Lock and versioning keep it).
        bucket_tags={TAG_BACKUP_TIER: tiers[-1], TAG_BACKUP_ENABLED: "false"},
    )
    notes = outputs.pop("notes")
    added: dict[str, Any] = {"audit": {**outputs, "organization_wide_job_reports": organization, "notes": notes}}
    if notes:
        added["notes"] = list(notes)
    return ReportsBucket(outputs["reports_bucket"], reports.bucket_arn, reports.key_arn), added


def build_workload(cfg: WorkloadStack, providers: Providers) -> dict[str, Any]:
    """What a workload account holds of the audit (where AWS does not allow it organization-wide).

    The controls evaluate the resources, plans and recovery points of the account they are in, so each workload
    account has its tier's framework (AWS: "To ensure reports generated by delegated administrator accounts show all
    member account data, create frameworks in each of those member accounts", working-with-audit-reports.html).
    Its reports land in its own reports bucket: a report plan delivers to a bucket of its account ("You can't use a
    bucket from another account", https://docs.aws.amazon.com/aws-backup/latest/devguide/create-report-plan-console.html).
    """
    if not cfg.audit.enabled:
        return {}
    if cfg.plan is not None:
        targets = cfg.copy_targets()
        cross_region = cfg.regions.copy_region if "copy_region" in targets else None
        cross_account = cfg.backup_account_id if "backup_account" in targets else None
    else:
        # Organization mode: the tier's BACKUP_POLICY copies to the backup account and to the copy region.
        cross_region, cross_account = cfg.regions.copy_region, cfg.backup_account_id
    _, outputs = _build(
        cfg,
        providers,
        [cfg.tier],
        compliance_lock=cfg.hardened,
        writers=[],
        job_accounts=[],
        hardened=cfg.hardened,
        controls_of={cfg.tier: (cross_region, cross_account)},
        # Selected by the tier's plan like the export bucket (versioned, as AWS Backup for S3 requires): the tier's
        # "protected by a backup plan" control would otherwise report the reports bucket itself.
        bucket_tags={TAG_BACKUP_TIER: cfg.tier, TAG_BACKUP_ENABLED: "true"},
    )
    notes = outputs.pop("notes")
    added: dict[str, Any] = {"audit": {**outputs, "notes": notes}}
    if notes:
        added["notes"] = list(notes)
    return added
