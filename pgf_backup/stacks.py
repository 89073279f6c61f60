"""Config -> components, for each role (backup account / workload) and scheduling mode."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components import (
    AirGappedVault,
    AirGappedVaultArgs,
    AppAccessArgs,
    BackupAlarms,
    BackupAlarmsArgs,
    BackupPlan,
    BackupPlanArgs,
    BackupServiceRole,
    BackupServiceRoleArgs,
    BackupSettings,
    BackupSettingsArgs,
    BackupVault,
    BackupVaultArgs,
    CatalogExport,
    DatabaseArgs,
    ExportFunctionArgs,
    ExportStore,
    ExportStoreArgs,
    FreshnessArgs,
    JobAlerts,
    JobAlertsArgs,
    OrgBackupPolicy,
    OrgBackupPolicyArgs,
    QuickSightExport,
    RdsProtection,
    RdsProtectionArgs,
    S3Protection,
    S3ProtectionArgs,
    VaultLockArgs,
)
from components.exports import CATALOG_ROOT, QUICKSIGHT_ROOT
from pgf_backup import backup_outputs
from pgf_backup.builders import audit, observability, restore_testing
from pgf_backup.config import (
    BackupAccountStack,
    ConfigError,
    CopyTarget,
    ManagementStack,
    PlanVariant,
    RouteKey,
    ScheduledExport,
    StackConfig,
    Tier,
    VaultStack,
    WorkloadStack,
    load_from_pulumi,
    partition,
)
from pgf_backup.constants import (
    NOTES_OUTPUT,
    ROLE_BACKUP_ACCOUNT,
    STACK_BACKUP,
    TAG_BACKUP_ENABLED,
    TAG_BACKUP_TIER,
    TAG_DATA_CLASSIFICATION,
)
from pgf_backup.lambda_package import build_package
from pgf_backup.limits import MAX_BACKUP_POLICY_CHARACTERS, RDS_DB_INSTANCE_ARN, RDS_DB_INSTANCE_TYPE
from pgf_backup.management import BACKUP_SERVICE_PRINCIPAL, GLOBAL_SETTINGS, delegation_policy
from pgf_backup.plans import ACCOUNT_PLACEHOLDER, backup_policy, rule_args, tag_conditions
from pgf_backup.providers import Providers


class StackConfigError(ConfigError, pulumi.RunError):
    """A config error found while the program runs: Pulumi reports it without a traceback."""


class MissingOutputError(StackConfigError):
    """The backup stack does not export what a workload stack needs (deploy `backup` first)."""


# ---------------------------------------------------------------------------------------------
# Vaults (both roles)


def build_vaults(cfg: VaultStack, providers: Providers) -> dict[str, dict[str, BackupVault]]:
    """The vaults of this stack: one per configured vault and per region."""
    account = cfg.account_id
    workload_ids = cfg.workload_account_ids
    built: dict[str, dict[str, BackupVault]] = {}
    for key, vault in cfg.vaults.items():
        lock = vault.lock
        if isinstance(cfg, BackupAccountStack):
            # Central vaults receive copies from the organization (or the workload accounts), and their
            # keys admit the tier's own account, the destination of a restore copy back.
            copy_in: dict[str, Any] = {"copy_in_org_id": cfg.organization.id, "copy_in_account_ids": workload_ids}
            copy_out = [cfg.accounts[vault.tier]] if vault.tier in cfg.accounts else []
        else:
            # Workload vaults accept the backup account's restore copies back, and their keys admit the
            # accounts their copy actions write to.
            copy_in = {"copy_in_org_id": None, "copy_in_account_ids": [cfg.backup_account_id]}
            copy_out = cfg.copy_destination_accounts
        common: dict[str, Any] = {
            "vault_name": cfg.vault_name(key),
            "tier": vault.tier,
            "account_id": account,
            "deploy_role_arn": cfg.role_arn(account, cfg.iam.deploy_role),
            "break_glass_role_arn": cfg.role_arn(account, cfg.iam.break_glass_role),
            "notify_events": vault.notify_events,
            "lock": VaultLockArgs(**lock.model_dump()) if lock else None,
            "hardened": vault.hardened,
            **copy_in,
            "copy_out_account_ids": copy_out,
            "tags": {TAG_BACKUP_TIER: vault.tier},
        }
        built[key] = {}
        primary_key_arn: pulumi.Output[str] | None = None
        for region in cfg.regions.all:
            is_primary = region == cfg.regions.primary
            args = BackupVaultArgs(
                **common,
                region=region,
                partition=partition(region),
                multi_region_key=is_primary and cfg.regions.copy_region is not None,
                replica_of_key_arn=None if is_primary else primary_key_arn,
            )
            component = BackupVault(
                f"{key}-{region}", args, pulumi.ResourceOptions(providers={"aws": providers.get(account, region)})
            )
            if is_primary:
                primary_key_arn = component.key_arn
            built[key][region] = component
    return built


def vault_outputs(cfg: VaultStack, vaults: dict[str, dict[str, BackupVault]]) -> dict[str, Any]:
    """`vaults` output: vault key -> region -> name, ARNs, tier."""
    return {
        key: {
            region: {
                "tier": cfg.vaults[key].tier,
                "name": component.vault_name,
                "arn": component.vault_arn,
                "kms_key_arn": component.key_arn,
                "topic_arn": component.topic_arn,
            }
            for region, component in by_region.items()
        }
        for key, by_region in vaults.items()
    }


def build_job_alerts(cfg: StackConfig, providers: Providers) -> dict[str, Any]:
    """Failed, aborted and expired AWS Backup jobs alerted, in each region of this stack's account."""
    account = cfg.account_id
    # The backup account holds the prod copies: its alert key is guarded like prod's.
    guard = providers.key_guard(cfg.hardened or cfg.role == ROLE_BACKUP_ACCOUNT)
    prefix = f"{cfg.tags.application}-{cfg.stack_tier or STACK_BACKUP}"  # at most 37 characters: tags.application <= 30
    built: dict[str, Any] = {}
    for region in cfg.regions.all:
        alerts = JobAlerts(
            f"job-alerts-{region}",
            JobAlertsArgs(
                account_id=account,
                region=region,
                partition=partition(region),
                name_prefix=prefix,
                key_guard=guard,
                tags={TAG_BACKUP_TIER: cfg.stack_tier} if cfg.stack_tier else {},
            ),
            pulumi.ResourceOptions(providers={"aws": providers.get(account, region)}),
        )
        built[region] = {"topic_arn": alerts.topic_arn, "key_arn": alerts.key_arn, "rules": alerts.rule_names}
    return built


def build_backup_alarms(cfg: VaultStack, providers: Providers, job_alerts: dict[str, Any]) -> dict[str, Any]:
    """CloudWatch alarms on AWS Backup's metrics in each region, to that region's JobAlerts topic."""
    alarms = cfg.alarms
    if not alarms.enabled:
        return {}
    account, primary = cfg.account_id, cfg.regions.primary
    freshness: list[FreshnessArgs] = []
    if isinstance(cfg, WorkloadStack):
        # Backups are made into the tier's vault in the primary region, and counted there. Received copies
        # (the copy region, the backup account) are not watched for freshness: AWS counts a copy job in the
        # account and region that run it, the source's ("The vault name of copy jobs is that of their
        # destination vault", cloudwatch.html), and no page says a received copy is counted where it lands.
        # A missed copy is alerted by JobAlerts' `Copy Job State Change` rule and the copy-failed counter.
        freshness.append(
            FreshnessArgs(cfg.tier, cfg.vault_name(cfg.vault_key), "backup", alarms.window_hours(cfg.tier))
        )
    vault_names = tuple(cfg.vault_name(key) for key in cfg.vaults)
    built: dict[str, Any] = {}
    for region in cfg.regions.all:
        here = tuple(freshness) if region == primary else ()
        component = BackupAlarms(
            f"backup-alarms-{region}",
            BackupAlarmsArgs(
                topic_arn=job_alerts[region]["topic_arn"],
                vault_names=vault_names,
                freshness=here,
                failure_threshold=alarms.failure_threshold,
                failure_period_seconds=alarms.failure_period_minutes * 60,
                failure_evaluation_periods=alarms.failure_evaluation_periods,
                tags={TAG_BACKUP_TIER: cfg.stack_tier} if cfg.stack_tier else {},
            ),
            pulumi.ResourceOptions(providers={"aws": providers.get(account, region)}),
        )
        built[region] = {
            "alarms": component.alarm_names,
            "freshness_hours": {f.vault_name: f.window_hours for f in here},
        }
    return built


def _add_outputs(outputs: dict[str, Any], added: dict[str, Any]) -> None:
    """Add a builder's outputs: its notes join the stack's (`notes`), any other key must be new."""
    for key, value in added.items():
        if key == NOTES_OUTPUT:
            outputs.setdefault(NOTES_OUTPUT, []).extend(value)
        elif key in outputs:
            raise ValueError(f"stack output {key!r} is built twice")
        else:
            outputs[key] = value


def service_role(cfg: StackConfig, providers: Providers) -> BackupServiceRole:
    """The role AWS Backup assumes in this account (named as organization policies expect)."""
    args = BackupServiceRoleArgs(
        role_name=cfg.iam.service_role, account_id=cfg.account_id, partition=partition(cfg.regions.primary)
    )
    return BackupServiceRole("backup-service-role", args, providers.opts())


# ---------------------------------------------------------------------------------------------
# Backup account


def build_backup_account(cfg: BackupAccountStack, providers: Providers) -> dict[str, Any]:
    """Central vaults per tier and region, air-gapped vaults, and (organization mode) policies."""
    vaults = build_vaults(cfg, providers)
    # Copy jobs started here (a restore copy back into a workload vault) run with this role.
    role = service_role(cfg, providers)
    central: dict[str, dict[str, Any]] = {}
    for tier in sorted({v.tier for v in cfg.vaults.values()}):
        key = cfg.central_vault_key(tier)
        assert key is not None  # a tier listed here has at least one vault
        lock = cfg.vaults[key].lock
        central[tier] = {
            region: {
                "arn": component.vault_arn,
                "name": component.vault_name,
                "kms_key_arn": component.key_arn,
                "lock": {"min": lock.min_retention_days, "max": lock.max_retention_days} if lock else None,
            }
            for region, component in vaults[key].items()
        }
    air_gapped: dict[str, Any] = {}
    for key, vault in cfg.vaults.items():
        if vault.air_gapped is None or cfg.central_vault_key(vault.tier) != key:
            continue
        gap = AirGappedVault(
            f"{key}-air-gapped",
            AirGappedVaultArgs(
                vault_name=cfg.air_gapped_vault_name(key),
                tier=vault.tier,
                min_retention_days=vault.air_gapped.min_retention_days,
                max_retention_days=vault.air_gapped.max_retention_days,
                partition=partition(cfg.regions.primary),
                deploy_role_arn=cfg.role_arn(cfg.account_id, cfg.iam.deploy_role),
                break_glass_role_arn=cfg.role_arn(cfg.account_id, cfg.iam.break_glass_role),
                copy_in_org_id=cfg.organization.id,
                copy_in_account_ids=cfg.workload_account_ids,
                hardened=vault.hardened,
                tags={TAG_BACKUP_TIER: vault.tier},
            ),
            providers.opts(),
        )
        air_gapped[vault.tier] = {
            "arn": gap.vault_arn,
            "lock": {"min": vault.air_gapped.min_retention_days, "max": vault.air_gapped.max_retention_days},
        }
    alerts = build_job_alerts(cfg, providers)
    outputs: dict[str, Any] = {
        "vaults": vault_outputs(cfg, vaults),
        "service_role_arn": role.role_arn,
        "job_alerts": alerts,
        "backup_alarms": build_backup_alarms(cfg, providers, alerts),
        "central_vaults": central,
        "air_gapped_vaults": air_gapped,
    }
    _add_outputs(outputs, observability.build_backup_account(cfg, providers, alerts))
    reports, audit_outputs = audit.build_backup_account(cfg, providers)
    _add_outputs(outputs, audit_outputs)
    _add_outputs(
        outputs, restore_testing.build_backup_account(cfg, providers, alerts, reports, service_role_arn=role.role_arn)
    )
    if cfg.scheduling == "organization":
        outputs["backup_policies"] = build_org_policies(cfg, providers, central, air_gapped, vaults)
    return outputs


def build_org_policies(
    cfg: BackupAccountStack,
    providers: Providers,
    central: dict[str, Any],
    air_gapped: dict[str, Any],
    vaults: dict[str, dict[str, BackupVault]],
) -> dict[str, Any]:
    """One BACKUP_POLICY per tier, attached to its targets.

    Cross-account backup is a global setting only the management account may change: the management stack.
    """
    opts = providers.opts()
    role_arn = f"arn:{partition(cfg.regions.primary)}:iam::{ACCOUNT_PLACEHOLDER}:role/{cfg.iam.service_role}"
    policies: dict[str, Any] = {}
    for tier in cfg.plans:
        key = cfg.central_vault_key(tier)
        assert key is not None  # checked by the config model
        vault_name = cfg.vault_name(key)
        plan_name = cfg.plan_name(tier)
        known: dict[str, pulumi.Input[str]] = {"backup_account": central[tier][cfg.regions.primary]["arn"]}
        if tier in air_gapped:
            known["air_gapped"] = air_gapped[tier]["arn"]
        for routed_key in cfg.routed_vault_keys(tier):
            known[f"vault:{routed_key}"] = vaults[routed_key][cfg.regions.primary].vault_arn

        content = pulumi.Output.all(**known).apply(
            functools.partial(_policy_document, cfg, tier, plan_name, vault_name, role_arn)
        )
        policy = OrgBackupPolicy(
            f"backup-policy-{tier}",
            OrgBackupPolicyArgs(
                policy_name=plan_name,
                content=content,
                targets=cfg.organization.policy_targets[tier],
                description=f"AWS Backup plan of the {tier} tier (pgf-backup)",
                # The policy pack reads the tier of a BACKUP_POLICY from this tag.
                tags={TAG_BACKUP_TIER: tier},
            ),
            opts,
        )
        policies[tier] = {"policy_id": policy.policy_id, "vault_name": vault_name, "content": content}
    return policies


def _policy_document(  # noqa: PLR0917 - bound with functools.partial, the ARNs come last
    cfg: BackupAccountStack, tier: Tier, plan_name: str, vault_name: str, role_arn: str, arns: dict[str, str]
) -> str:
    """The JSON of a tier's BACKUP_POLICY once the central vault ARNs are known."""
    copy = cfg.regions.copy_region
    destinations: dict[CopyTarget, str] = {"backup_account": arns["backup_account"]}
    if copy is not None:
        part = partition(copy)
        destinations["copy_region"] = f"arn:{part}:backup:{copy}:{ACCOUNT_PLACEHOLDER}:backup-vault:{vault_name}"
    if "air_gapped" in arns:
        destinations["air_gapped"] = arns["air_gapped"]
    plan = cfg.plans[tier]
    variants = cfg.plan_variants(tier)
    routed = len(variants) > 1
    document: dict[str, Any] = {"plans": {}}
    for variant in variants:
        here = dict(destinations)
        name = cfg.vault_name(variant.vault)
        if not variant.default_vault:
            # A routed vault: copies to the backup account's vault of the same key and to the member account's twin
            # in the copy region; never to the air-gapped vault.
            here.pop("air_gapped", None)
            here["backup_account"] = arns[f"vault:{variant.vault}"]
            if copy is not None:
                here["copy_region"] = f"arn:{partition(copy)}:backup:{copy}:{ACCOUNT_PLACEHOLDER}:backup-vault:{name}"
        targets = variant.targets(cfg.copy_targets(plan))
        common: dict[str, Any] = {
            "vault_name": name,
            "service_role_arn": role_arn,
            "regions": [cfg.regions.primary],
            **({"routing_equals": variant.equals, "routing_not_equals": variant.not_equals} if routed else {}),
        }
        rules = rule_args(variant.plan, here, targets)
        if "air_gapped" in here and "air_gapped" in targets:
            # Logically air-gapped vaults hold no RDS DB instances: a second plan copies those to the standard
            # vaults only (as in account mode; AWS's type ARN for DB instances, POLICY_SYNTAX Example 7).
            standard = rule_args(variant.plan, here, [t for t in targets if t != "air_gapped"])
            document["plans"].update(
                backup_policy(
                    variant.plan_name, tier, rules=rules, not_resource_types=[RDS_DB_INSTANCE_TYPE], **common
                )["plans"]
            )
            document["plans"].update(
                backup_policy(
                    f"{variant.plan_name}-standard-vaults",
                    tier,
                    rules=standard,
                    resource_types=[RDS_DB_INSTANCE_TYPE],
                    **common,
                )["plans"]
            )
        else:
            document["plans"].update(backup_policy(variant.plan_name, tier, rules=rules, **common)["plans"])
    text = json.dumps(document)
    if len(text) > MAX_BACKUP_POLICY_CHARACTERS:
        over = len(text) - MAX_BACKUP_POLICY_CHARACTERS
        raise StackConfigError(
            f"plans.{tier}: its BACKUP_POLICY is {len(text)} characters, {over} over the "
            f"{MAX_BACKUP_POLICY_CHARACTERS} AWS Organizations allows ({len(document['plans'])} plans: one per vault, "
            "retention class and copies routed by tag); use fewer rules, copy targets, recovery point tags, retention "
            "classes, routed vaults or tag_copies, or split the routing into several policies attached to different "
            "targets (organization.policy_targets)"
        )
    return text


# ---------------------------------------------------------------------------------------------
# Workload accounts


def _checked(cfg: WorkloadStack, outputs: dict[str, Any]) -> dict[str, Any]:
    """The backup stack's outputs, once `backup_outputs.problems` finds nothing wrong with them.

    The rollout driver runs the same check before the stack starts; this is the program's own guard
    (a plain `pulumi up` of a workload stack).
    """
    found = backup_outputs.problems(cfg, outputs)
    if found:
        raise MissingOutputError(
            f"the backup stack ({cfg.backup_stack}) does not provide what this stack needs: "
            + "; ".join(found)
            + " (deploy `backup` first if it never was)"
        )
    return outputs


def protect_data(cfg: WorkloadStack, providers: Providers) -> tuple[list[str], dict[str, Any]]:
    """S3 and RDS protections; returns the ARNs to select by ARN, and outputs saying what each gets."""
    arns: list[str] = []
    outputs: dict[str, Any] = {}
    part = partition(cfg.regions.primary)
    hardened = cfg.hardened
    guard = providers.key_guard(hardened)
    for bucket_name, bucket in cfg.buckets.items():
        protection = S3Protection(
            f"s3-{bucket_name}",
            S3ProtectionArgs(
                bucket=bucket_name,
                account_id=cfg.account_id,
                region=cfg.regions.primary,
                partition=part,
                versioning=bucket.versioning,
                encryption=bucket.encryption,
                kms_key_arn=bucket.kms_key_arn,
                block_public_access=bucket.block_public_access,
                tls_only=bucket.tls_only,
                application_access=[AppAccessArgs(a.principal, a.actions) for a in bucket.application_access],
                noncurrent_version_expiration_days=bucket.noncurrent_version_expiration_days,
                transitions=[(t.days, t.storage_class) for t in bucket.transitions],
                object_lock=(bucket.object_lock.mode, bucket.object_lock.days) if bucket.object_lock else None,
                key_guard=guard,
                tags={TAG_DATA_CLASSIFICATION: bucket.classification},
            ),
            providers.opts(),
        )
        if bucket.backup:
            arns.append(protection.bucket_arn)
        outputs.setdefault("buckets", {})[bucket_name] = {
            "arn": protection.bucket_arn,
            "versioning": bucket.versioning,
            "sse_kms_key": protection.key_arn,
            "public_access_blocked": bucket.block_public_access,
            "tls_only_policy": bucket.tls_only,
            "noncurrent_versions_kept_days": bucket.noncurrent_version_expiration_days,
            "transitions": [f"{t.storage_class} after {t.days} days" for t in bucket.transitions],
            "object_lock": f"{bucket.object_lock.mode} {bucket.object_lock.days} days" if bucket.object_lock else None,
            "backup": bucket.backup,
        }
    if cfg.databases:
        databases = [
            DatabaseArgs(
                identifier=name, kind=db.kind, region=db.region or cfg.regions.primary, kms_key_arn=db.kms_key_arn
            )
            for name, db in cfg.databases.items()
        ]
        rds = RdsProtection(
            "rds",
            RdsProtectionArgs(
                databases=databases,
                account_id=cfg.account_id,
                region=cfg.regions.primary,
                partition=part,
                tier=cfg.tier,
                min_backup_retention_days=cfg.aws_config_rules.min_backup_retention_days,
                multi_az_required=hardened,
                config_rules=cfg.aws_config_rules.enabled,
                copy_account_ids=sorted({a for name in cfg.databases for a in cfg.database_copy_accounts(name)}),
                key_guard=guard,
            ),
            providers.opts(),
        )
        arns.extend(rds.arns)
        outputs["databases"] = {
            name: {
                "arn": arn,
                "kind": db.kind,
                "encryption": db.encryption,
                # The statement the application's key policy must hold for the copies to the backup account
                # (None when the database is not copied to another account).
                "required_key_policy_statement": rds.key_policy_statements.get(name),
            }
            for (name, db), arn in zip(cfg.databases.items(), rds.arns, strict=True)
        }
        outputs["rds_config_rules"] = {"rules": rds.rule_names, "multi_az_required": hardened}
    return arns, outputs


def build_exports(cfg: WorkloadStack, providers: Providers, alert_topic_arn: pulumi.Input[str]) -> dict[str, Any]:
    """The export bucket and the scheduled Glue catalog and QuickSight exports (`exports` in config)."""
    exports = cfg.exports
    assert exports is not None
    part, region, account = partition(cfg.regions.primary), cfg.regions.primary, cfg.account_id
    guard = providers.key_guard(cfg.hardened)
    tags: dict[str, str] = {TAG_BACKUP_TIER: cfg.tier, TAG_DATA_CLASSIFICATION: cfg.tags.data_classification}
    store = ExportStore(
        "exports",
        ExportStoreArgs(
            bucket=exports.bucket,
            account_id=account,
            region=region,
            partition=part,
            noncurrent_version_expiration_days=exports.noncurrent_version_expiration_days,
            key_guard=guard,
            # The strategy's selection tags (with the provider's default `application`): the tier's plan or
            # BACKUP_POLICY selects the bucket by tag in either scheduling mode. Only the bucket: AWS Backup
            # backs up none of the functions' resources.
            tags=tags,
            selection_tags={TAG_BACKUP_ENABLED: "true"},
        ),
        providers.opts(),
    )
    # Pulumi runs a program in its project folder, and resolves the archive's relative path from there.
    package = build_package(Path.cwd())
    outputs: dict[str, Any] = {"bucket": exports.bucket, "bucket_arn": store.bucket_arn, "kms_key": store.key_arn}
    prefix = f"{cfg.tags.application}-{cfg.tier}"  # tags.application is at most 30 characters

    def function_args(kind: str, schedule: ScheduledExport) -> ExportFunctionArgs:
        return ExportFunctionArgs(
            function_name=f"{prefix}-{kind}-export",
            account_id=account,
            region=region,
            partition=part,
            code_path=str(package.path),
            code_sha256=package.sha256,
            schedule=schedule.schedule,
            timezone=schedule.timezone,
            timeout_seconds=schedule.timeout_seconds,
            memory_mb=schedule.memory_mb,
            log_retention_days=exports.log_retention_days,
            bucket=exports.bucket,
            bucket_key_arn=store.key_arn,
            alarm_topic_arn=alert_topic_arn,
            tags=tags,
        )

    if cfg.catalog_export:
        catalog = CatalogExport(
            "catalog-export",
            function_args("catalog", exports.catalog),
            include_table_versions=exports.catalog.include_table_versions,
            opts=providers.opts(),
        )
        outputs["catalog"] = {
            "function": catalog.function.function_name,
            "schedule": f"{exports.catalog.schedule} {exports.catalog.timezone}",
            "prefix": f"s3://{exports.bucket}/{CATALOG_ROOT}/{account}/{region}/",
        }
    if cfg.quicksight_export:
        assets = QuickSightExport(
            "quicksight-export", function_args("quicksight", exports.quicksight), providers.opts()
        )
        outputs["quicksight"] = {
            "function": assets.function.function_name,
            "schedule": f"{exports.quicksight.schedule} {exports.quicksight.timezone}",
            "prefix": f"s3://{exports.bucket}/{QUICKSIGHT_ROOT}/{account}/{region}/",
        }
    return {"exports": outputs, "export_bucket_arn": store.bucket_arn}


def _selection_summary(outputs: dict[str, Any], selected_by: str, continuous: str | None) -> None:
    """Say in the outputs how each protected bucket and database is backed up."""
    for bucket in outputs.get("buckets", {}).values():
        bucket["backup"] = selected_by if bucket["backup"] else "not backed up (backup: false)"
    for database in outputs.get("databases", {}).values():
        database["backup"] = selected_by
        database["continuous_rule"] = continuous


def build_workload(cfg: WorkloadStack, providers: Providers) -> dict[str, Any]:
    """Local vaults, service role, region settings and (account mode) the tier's plan."""
    tier = cfg.tier
    vaults = build_vaults(cfg, providers)
    role = service_role(cfg, providers)
    for region in cfg.regions.all:
        # Whole maps, every type AWS Backup offers in the region (config validation guarantees the entry). The
        # provider's Read stores the whole maps DescribeRegionSettings returns (terraform-provider-aws
        # internal/service/backup/region_settings.go, resourceRegionSettingsRead), and the plugin SDK's diffMap
        # marks each state key missing from the inputs as removed: a partial map shows a change on every preview
        # (terraform-provider-aws#22744). A type the region does not offer is refused ("Element present in
        # resource type opt in preference has invalid values", #21801), hence the per-region list; preflight
        # compares it with DescribeRegionSettings. Types outside `services` are opted out.
        offered = cfg.region_resource_types[region]
        BackupSettings(
            f"region-settings-{region}",
            BackupSettingsArgs(
                region_opt_in={t: t in cfg.services for t in offered.opt_in},
                region_management=dict(offered.management),
            ),
            providers.opts(region),
        )
    protected_arns, data_outputs = protect_data(cfg, providers)
    alerts = build_job_alerts(cfg, providers)
    outputs: dict[str, Any] = {
        "vaults": vault_outputs(cfg, vaults),
        "service_role_arn": role.role_arn,
        "job_alerts": alerts,
        "backup_alarms": build_backup_alarms(cfg, providers, alerts),
        **data_outputs,
    }
    _add_outputs(outputs, audit.build_workload(cfg, providers))
    if cfg.exports is not None:
        built = build_exports(cfg, providers, alerts[cfg.regions.primary]["topic_arn"])
        outputs["exports"] = built["exports"]
        if cfg.scheduling == "account":
            # Selected by ARN too, like the application's buckets (organization mode selects by tag only).
            protected_arns.append(built["export_bucket_arn"])
    reference = pulumi.StackReference("backup-stack", stack_name=cfg.backup_stack)
    local = vaults[cfg.vault_key]
    checked = reference.outputs.apply(functools.partial(_checked, cfg))
    _add_outputs(outputs, observability.build_workload(cfg, providers, alerts, backup=checked))
    _add_outputs(outputs, restore_testing.build_workload(cfg, providers, alerts, checked))
    if cfg.scheduling == "organization":
        # The policy names the vault by name in every member account: `_checked` compares them.
        outputs["policy_vault_name"] = checked.apply(lambda o: backup_outputs.read(o).backup_policies[tier].vault_name)
        _selection_summary(
            outputs, f"BACKUP_POLICY {cfg.tags.application}-{tier}, by tag {TAG_BACKUP_TIER}={tier}", None
        )
        if protected_arns:
            # The policy selects by the tier tag: resources we only know by ARN must carry it.
            pulumi.log.warn(
                f"organization mode selects by the tag {TAG_BACKUP_TIER}={tier}: tag "
                f"{', '.join(protected_arns)} so the {tier} BACKUP_POLICY protects them"
            )
        return outputs

    plan = cfg.plan
    assert plan is not None
    copy = cfg.regions.copy_region
    targets = cfg.copy_targets()
    destinations: dict[CopyTarget, pulumi.Input[str]] = {
        target: checked.apply(functools.partial(backup_outputs.destination_arn, cfg, target))
        for target in backup_outputs.needed_targets(cfg)
    }
    if "copy_region" in targets and copy is not None:
        destinations["copy_region"] = local[copy].vault_arn
    conditions = tag_conditions(tier, cfg.tags.application, plan.selection.scope_application)
    listed = [*plan.selection.resources, *protected_arns]
    variants = cfg.plan_variants(plan)
    routes = {arn: _route(cfg, variants, arn) for arn in listed}
    # A routed vault's copies land in the backup account's vault of the same key (`vaults` output).
    routed_central: dict[str, pulumi.Input[str]] = {
        key: checked.apply(functools.partial(backup_outputs.routed_vault_arn, cfg, key))
        for key in cfg.routed_vault_keys
    }
    plan_arns: dict[str, pulumi.Output[str]] = {}
    for variant in variants:
        mine = [arn for arn in listed if routes[arn] == variant.key]
        # The ARNs another plan lists stay out of this one's tag selection: one resource, one plan, even when a
        # resource's tags disagree with its routing in the config.
        others = [arn for arn in listed if arn not in mine]
        built = _variant_plans(
            cfg, variant, vaults, destinations, targets, conditions, role, providers, mine, others, routed_central
        )
        plan_arns.update(built)
    default = variants[0]
    outputs["plan_arn"] = plan_arns[default.plan_name]
    if f"{default.plan_name}-standard-vaults" in plan_arns:
        outputs["standard_vaults_plan_arn"] = plan_arns[f"{default.plan_name}-standard-vaults"]
    if len(variants) > 1:
        outputs["backup_plans"] = plan_arns
    continuous = next((name for name, rule in plan.all_rules().items() if rule.continuous), None)
    _selection_summary(outputs, f"plan {default.plan_name}, selection by ARN", continuous)
    _routing_summary(cfg, outputs, variants, routes)
    outputs["copy_destinations"] = dict(destinations)
    return outputs


def _route(cfg: WorkloadStack, variants: Sequence[PlanVariant], arn: str) -> RouteKey:
    """The plan (its `PlanVariant.key`) of a resource the stack lists by ARN: the one its routing tags in the config
    select, as the tag selections would."""
    name = arn.rsplit(":", 1)[-1]
    item = cfg.buckets.get(name) if ":s3:::" in arn else cfg.databases.get(name) if ":rds:" in arn else None
    tags = item.routing_tags if item is not None else {}
    return next(variant.key for variant in variants if variant.selects(tags))


def _variant_plans(  # noqa: PLR0917 - one plan variant, the stack's vaults, copies, role and what it lists
    cfg: WorkloadStack,
    variant: PlanVariant,
    vaults: dict[str, dict[str, BackupVault]],
    destinations: Mapping[CopyTarget, pulumi.Input[str]],
    targets: Sequence[CopyTarget],
    conditions: Mapping[str, str],
    role: BackupServiceRole,
    providers: Providers,
    mine: Sequence[str],
    others: Sequence[str],
    routed_central: Mapping[str, pulumi.Input[str]],
) -> dict[str, pulumi.Output[str]]:
    """The plan of one (vault, retention class), and its twin for RDS DB instances when it copies to an air-gapped
    vault; {plan name: plan ARN}."""
    tier, primary, copy = cfg.tier, cfg.regions.primary, cfg.regions.copy_region
    plan = variant.plan
    selection = cfg.plan.selection if cfg.plan else None
    not_listed = [*(selection.not_resources if selection else ()), *others]
    resource_name = f"plan-{tier}" + (f"-{variant.suffix}" if variant.suffix else "")
    common: dict[str, Any] = {
        "target_vault_name": vaults[variant.vault][primary].vault_name,
        "service_role_arn": role.role_arn,
        "tag_conditions": {**conditions, **variant.equals},
        "tag_not_equals": variant.not_equals,
    }
    # The copies this plan's resources get: the tier's, less those their copy tags turn off (plan.tag_copies), and
    # none to the air-gapped vault from a routed vault.
    targets = variant.targets(targets)
    if not variant.default_vault:
        # A routed vault (files before and after processing, say) copies to its own twin in the backup account and
        # in the copy region, never to the air-gapped vault (so RDS DB instances need no second plan here).
        here: dict[CopyTarget, pulumi.Input[str]] = {}
        if "backup_account" in targets:
            here["backup_account"] = routed_central[variant.vault]
        if "copy_region" in targets and copy is not None:
            here["copy_region"] = vaults[variant.vault][copy].vault_arn
        chosen = [t for t in targets if t in here]
        routed = BackupPlan(
            resource_name,
            BackupPlanArgs(
                plan_name=variant.plan_name,
                rules=rule_args(plan, here, chosen),
                resources=list(mine),
                not_resources=not_listed,
                **common,
            ),
            providers.opts(),
        )
        return {variant.plan_name: routed.plan_arn}
    # Logically air-gapped vaults hold no RDS DB instances (AWS Backup's "Feature availability by
    # resource": https://docs.aws.amazon.com/aws-backup/latest/devguide/backup-feature-availability.html):
    # a plan that copies there leaves them to a second plan whose rules copy to the standard vaults only.
    apart = [f"arn:{partition(primary)}:rds:{primary}:{cfg.account_id}:db:*"] if "air_gapped" in targets else []
    instances = [arn for arn in mine if apart and RDS_DB_INSTANCE_ARN.match(arn)]
    main = BackupPlan(
        resource_name,
        BackupPlanArgs(
            plan_name=variant.plan_name,
            rules=rule_args(plan, destinations, targets),
            resources=[arn for arn in mine if arn not in instances],
            not_resources=[*not_listed, *apart],
            **common,
        ),
        providers.opts(),
    )
    built = {variant.plan_name: main.plan_arn}
    if apart:
        standard = BackupPlan(
            f"{resource_name}-standard-vaults",
            BackupPlanArgs(
                plan_name=f"{variant.plan_name}-standard-vaults",
                rules=rule_args(plan, destinations, [t for t in targets if t != "air_gapped"]),
                resources=instances,
                not_resources=not_listed,
                tag_resources=apart,
                **common,
            ),
            providers.opts(),
        )
        built[f"{variant.plan_name}-standard-vaults"] = standard.plan_arn
    return built


def _routing_summary(
    cfg: WorkloadStack, outputs: dict[str, Any], variants: Sequence[PlanVariant], routes: Mapping[str, RouteKey]
) -> None:
    """Say in the outputs which plan backs up each listed bucket and database (its config's routing tags)."""
    by_key = {v.key: v for v in variants}
    for section in ("buckets", "databases"):
        for entry in outputs.get(section, {}).values():
            arn = str(entry.get("arn"))
            if arn not in routes or not str(entry.get("backup", "")).startswith("plan "):
                continue  # not backed up (backup: false)
            variant = by_key[routes[arn]]
            targets = variant.targets(cfg.copy_targets())
            apart = variant.default_vault and "air_gapped" in targets and section == "databases"
            if apart and RDS_DB_INSTANCE_ARN.match(arn):
                entry["backup"] = (
                    f"plan {variant.plan_name}-standard-vaults, selection by ARN (no air-gapped copy: logically "
                    "air-gapped vaults hold no RDS DB instances)"
                )
            else:
                entry["backup"] = f"plan {variant.plan_name}, selection by ARN"
            if len(variants) > 1:
                entry["routing"] = {"vault": variant.vault, "retention_days": variant.retention_days}
                if variant.choices:
                    entry["routing"]["copies"] = targets


# ---------------------------------------------------------------------------------------------
# The organization's management account (optional stack)


def build_management(cfg: ManagementStack, providers: Providers) -> dict[str, Any]:
    """AWS Backup's global settings; in organization mode, the backup account as delegated administrator."""
    opts = providers.opts()
    # UpdateGlobalSettings works only in the management account (pgf_backup/management.py).
    BackupSettings("global-settings", BackupSettingsArgs(global_settings=GLOBAL_SETTINGS), opts)
    outputs: dict[str, Any] = {"global_settings": GLOBAL_SETTINGS}
    if cfg.scheduling != "organization":
        # Account mode copies across accounts with the global setting alone: nothing more is delegated.
        return outputs
    org_id, root_id = cfg.organization.id, cfg.organization.root_id
    assert org_id is not None and root_id is not None  # checked by the config model
    # RegisterDelegatedAdministrator: "You can only call this operation from the management account"
    # (https://docs.aws.amazon.com/organizations/latest/APIReference/API_RegisterDelegatedAdministrator.html).
    admin = aws.organizations.DelegatedAdministrator(
        "backup-delegated-administrator",
        account_id=cfg.backup_account_id,
        service_principal=BACKUP_SERVICE_PRINCIPAL,
        opts=opts,
    )
    document = delegation_policy(partition(cfg.regions.primary), cfg.backup_account_id, cfg.account_id, org_id, root_id)
    # The backup stack writes the BACKUP_POLICY documents as that delegated administrator.
    aws.organizations.ResourcePolicy(
        "backup-policy-delegation",
        content=json.dumps(document),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[admin])),
    )
    outputs["delegated_administrator"] = {
        "account_id": cfg.backup_account_id,
        "service_principal": BACKUP_SERVICE_PRINCIPAL,
    }
    outputs["delegation_policy"] = document
    return outputs


# ---------------------------------------------------------------------------------------------


def build(cfg: StackConfig, stack: str) -> dict[str, Any]:
    """Create this stack's resources; returns the stack outputs."""
    providers = Providers(cfg, stack)
    common = {
        "role": cfg.role,
        "tier": cfg.stack_tier,
        "scheduling": cfg.scheduling,
        "account_id": cfg.account_id,
        "regions": list(cfg.regions.all),
    }
    if isinstance(cfg, ManagementStack):
        return {**common, **build_management(cfg, providers)}
    if isinstance(cfg, BackupAccountStack):
        return {**common, **build_backup_account(cfg, providers)}
    return {**common, **build_workload(cfg, providers)}


def run() -> None:
    """Entry of `__main__.py`: load config, build, export; a config error exits 2, no traceback."""
    try:
        cfg = load_from_pulumi()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for name, value in build(cfg, pulumi.get_stack()).items():
        pulumi.export(name, value)
