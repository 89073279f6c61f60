"""AWS Backup restore testing: plans, selections, the validation function and its evidence.

By default the backup account tests the copies in each tier's central vault (AWS: "Recommended best practice is to
designate an account to be used for restore tests", https://docs.aws.amazon.com/aws-backup/latest/devguide/
restore-testing.html); a workload stack with `restore_testing` also tests its own vault's recovery points.

What AWS does not say, and this code therefore does not rely on: how a selection in the backup account matches the
resources whose recovery points were copied in from other accounts. Each selection takes every protected resource of
its type (`ProtectedResourceArns: ["*"]`, with no tag condition: `ProtectedResourceConditions` match the protected
resource's tags, and no AWS page says a copy carries its source's tags into the backup account), and the plan's
`IncludeVaults` (the tier's central vault only) decides which recovery points are restored. Check it in the backup
account with `aws backup list-protected-resources-by-backup-vault --backup-vault-name <central vault>` before relying
on the tests' coverage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from components.restore_testing import (
    RestoreTests,
    RestoreTestsArgs,
    RestoreValidator,
    RestoreValidatorArgs,
    SelectionArgs,
)
from pgf_backup import backup_outputs
from pgf_backup.builders.audit import ReportsBucket
from pgf_backup.config import BackupAccountStack, WorkloadStack, backup_regions, partition
from pgf_backup.config.restore_testing import RestoreTesting, RestoreTestingType, selection_name
from pgf_backup.constants import (
    METRIC_NAMESPACE,
    RESTORE_EVIDENCE_PREFIX,
    RESTORE_VALIDATOR_ROLE,
    STACK_BACKUP,
    TAG_BACKUP_TIER,
)
from pgf_backup.lambda_package import RESTORE_TESTING, build_package
from pgf_backup.providers import Providers

# Restore testing is part of the AWS Backup API (CreateRestoreTestingPlan, botocore's `backup` model); AWS's
# document history lists its regional expansions ("Restore testing is now available in Asia Pacific (Taipei) ...
# Canada West (Calgary), Israel (Tel Aviv), and Mexico (Central)", July 14, 2026:
# https://docs.aws.amazon.com/aws-backup/latest/devguide/doc-history.html; the current table: "Feature availability
# by AWS Region", https://docs.aws.amazon.com/aws-backup/latest/devguide/backup-feature-availability.html#features-by-region).
AVAILABILITY_PAGE = (
    "https://docs.aws.amazon.com/aws-backup/latest/devguide/backup-feature-availability.html#features-by-region"
)


def availability_gap(region: str, offered: frozenset[str] | None = None) -> str | None:
    """A note when restore testing cannot be used in `region` (no AWS Backup endpoint there in botocore's data)."""
    regions = offered if offered is not None else frozenset(backup_regions())
    if region in regions:
        return None
    return (
        f"restore testing: not offered in {region}: no AWS Backup endpoint there (botocore's endpoint data; "
        f"{AVAILABILITY_PAGE})"
    )


def _overrides(kind: RestoreTestingType, rt: RestoreTesting, key_alias_arn: str) -> dict[str, pulumi.Input[str]]:
    """RestoreMetadataOverrides of a type: the isolated network, the vault's key where AWS lets it be set, then config.

    Keys and formats from "Restore testing inferred metadata" (restore-testing-inferred-metadata.html): list values
    are JSON-array text ("vpcSecurityGroupIds": "[\\"sg-...\\"]"); RDS instances take no key override (the restored
    instance keeps its snapshot's key, the vault's for a copy), S3 and DynamoDB keep AWS's inferred encryption
    (SSE-S3, the table's default) because AWS's page names their `encryptionType` key but not the value that selects
    a KMS key; both can be set under `metadata_overrides`.
    """
    overrides: dict[str, pulumi.Input[str]] = {}
    network = rt.network
    if kind in ("RDS", "Aurora") and network is not None:
        overrides["dbSubnetGroupName"] = network.db_subnet_group_name
        overrides["vpcSecurityGroupIds"] = json.dumps(list(network.security_group_ids))
    if kind == "RDS":
        overrides["publiclyAccessible"] = "false"
    if kind in ("Aurora", "EBS", "EFS"):
        # An alias ARN is a key identifier each takes (botocore: RDS RestoreDBClusterFromSnapshot.KmsKeyId "the key
        # ARN, key ID, alias ARN, or alias name"; EC2 CreateVolume.KmsKeyId "Alias ARN"; EFS CreateFileSystem.KmsKeyId
        # "Key alias ARN").
        overrides["kmsKeyId"] = key_alias_arn
    overrides.update(rt.metadata_overrides.get(kind, {}))
    return overrides


def _plan(  # noqa: PLR0917 - the plan's parts, in the order the callers have them
    name: str,
    plan_name: str,
    tier: str,
    rt: RestoreTesting,
    vault_arn: str,
    key_alias_arn: str,
    role_arn: pulumi.Input[str],
    providers: Providers,
) -> tuple[RestoreTests, list[RestoreTestingType], list[str]]:
    kinds, skipped = rt.types()
    prefix = plan_name.removesuffix("_restore_tests")
    selections = [
        SelectionArgs(
            name=selection_name(prefix, kind.lower()),
            resource_type=kind,
            iam_role_arn=role_arn,
            validation_window_hours=rt.validation_window_hours,
            overrides=_overrides(kind, rt, key_alias_arn),
        )
        for kind in kinds
    ]
    tests = RestoreTests(
        name,
        RestoreTestsArgs(
            plan_name=plan_name,
            schedule=rt.schedule,
            timezone=rt.timezone,
            start_window_hours=rt.start_window_hours,
            selection_window_days=rt.selection_window_days,
            recovery_point_types=rt.recovery_point_types,
            include_vault_arns=[vault_arn],
            selections=selections,
            # The policy pack matches a restore testing plan to its tier by this tag.
            tags={TAG_BACKUP_TIER: tier},
        ),
        providers.opts(),
    )
    return tests, list(kinds), [f"restore testing {tier}: {note}" for note in skipped]


def _validator(  # noqa: PLR0917 - the function's parts, in the order the callers have them
    cfg: BackupAccountStack | WorkloadStack,
    providers: Providers,
    job_alerts: dict[str, Any],
    plans: dict[str, RestoreTests],
    settings: RestoreTesting,
    evidence: tuple[pulumi.Input[str], pulumi.Input[str] | None] | None,
    source_bucket_arns: list[str],
) -> RestoreValidator:
    account, region = cfg.account_id, cfg.regions.primary
    package = build_package(Path.cwd(), spec=RESTORE_TESTING)
    names = list(plans)
    tiers = pulumi.Output.all(*[plans[tier].plan_arn for tier in names]).apply(
        lambda arns: json.dumps(dict(zip(arns, names, strict=True)), sort_keys=True)
    )
    validation = settings.validation
    return RestoreValidator(
        "restore-validator",
        RestoreValidatorArgs(
            function_name=f"{cfg.tags.application}-{cfg.stack_tier or STACK_BACKUP}-restore-validator",
            role_name=RESTORE_VALIDATOR_ROLE,
            account_id=account,
            region=region,
            partition=partition(region),
            code_path=str(package.path),
            code_sha256=package.sha256,
            plan_arns=[tests.plan_arn for tests in plans.values()],
            plan_tiers=tiers,
            alarm_topic_arn=job_alerts[region]["topic_arn"],
            log_retention_days=validation.log_retention_days,
            metric_namespace=METRIC_NAMESPACE,
            timeout_seconds=validation.timeout_seconds,
            memory_mb=validation.memory_mb,
            s3_sample_size=validation.s3_sample_size,
            s3_checksum_max_bytes=validation.s3_checksum_max_bytes,
            s3_min_objects=validation.s3_min_objects,
            evidence_bucket=evidence[0] if evidence else None,
            evidence_key_arn=evidence[1] if evidence else None,
            evidence_prefix=f"{RESTORE_EVIDENCE_PREFIX}/{account}" if evidence else "",
            source_bucket_arns=source_bucket_arns,
            tags={TAG_BACKUP_TIER: cfg.stack_tier} if cfg.stack_tier else {},
        ),
        providers.opts(),
    )


def _names(cfg: BackupAccountStack | WorkloadStack, tier: str) -> str:
    return selection_name(cfg.tags.application, tier, "restore_tests")


def build_backup_account(
    cfg: BackupAccountStack,
    providers: Providers,
    job_alerts: dict[str, Any],
    reports: ReportsBucket | None,
    service_role_arn: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    """Restore testing of each configured tier's copies in the backup account; the outputs it adds."""
    enabled = {tier: rt for tier, rt in cfg.restore_testing.items() if rt.enabled}
    if not enabled:
        return {}
    account, region = cfg.account_id, cfg.regions.primary
    part = partition(region)
    gap = availability_gap(region)
    if gap:
        return {"restore_testing": {"notes": [gap]}, "notes": [gap]}
    # The service role restores (AWS's managed restore policies); the stack passes its ARN once created.
    role_arn = service_role_arn or cfg.role_arn(account, cfg.iam.service_role)
    notes: list[str] = []
    plans: dict[str, RestoreTests] = {}
    described: dict[str, Any] = {}
    for tier, rt in enabled.items():
        key = cfg.central_vault_key(tier)
        if key is None:
            notes.append(f"restore testing {tier}: no vault of tier {tier} in this stack, nothing to test")
            continue
        vault = cfg.vault_name(key)
        vault_arn = f"arn:{part}:backup:{region}:{account}:backup-vault:{vault}"
        alias = f"arn:{part}:kms:{region}:{account}:alias/pgf-backup/{vault}"
        tests, kinds, skipped = _plan(
            f"restore-tests-{tier}", _names(cfg, tier), tier, rt, vault_arn, alias, role_arn, providers
        )
        notes.extend(skipped)
        plans[tier] = tests
        described[tier] = {
            "plan": tests.plan_name,
            "plan_arn": tests.plan_arn,
            "vault": vault,
            "resource_types": kinds,
            "schedule": f"{rt.schedule} {rt.timezone}",
        }
    if not plans:
        return {"restore_testing": {"notes": notes}, "notes": notes}
    if reports is None:
        notes.append(
            "restore testing: no reports bucket (audit disabled): the validation function logs its evidence only, "
            f"it writes none to {RESTORE_EVIDENCE_PREFIX}/"
        )
    # One function validates every tier's plan (its settings: the first tier's, prod's by default).
    settings = enabled["prod"] if "prod" in enabled else next(iter(enabled.values()))
    evidence = (reports.name, reports.key_arn) if reports else None
    validator = _validator(cfg, providers, job_alerts, plans, settings, evidence, [])
    outputs: dict[str, Any] = {
        "restore_testing": {
            "plans": described,
            "validator": {
                "function": validator.function_name,
                "rule_arn": validator.rule_arn,
                "evidence": f"s3://{reports.name}/{RESTORE_EVIDENCE_PREFIX}/{account}/" if reports else None,
            },
            "notes": notes,
        }
    }
    if notes:
        outputs["notes"] = notes
    return outputs


def _reports_of(backup: Mapping[str, Any]) -> tuple[str, str]:
    """The backup account's reports bucket and its key (`audit.reports_bucket`, `audit.key_arn`), which
    `backup_outputs.problems` requires of the backup stack for a workload stack that restore-tests."""
    audit = backup_outputs.read(backup).audit
    if audit is None or not audit.reports_bucket or not audit.key_arn:
        raise ValueError(
            "the backup stack does not export audit.reports_bucket and audit.key_arn (its audit must be on, and it "
            "must be deployed first)"
        )
    return audit.reports_bucket, audit.key_arn


def build_workload(
    cfg: WorkloadStack, providers: Providers, job_alerts: dict[str, Any], backup: pulumi.Output[dict[str, Any]]
) -> dict[str, Any]:
    """Restore testing in the workload account itself (`restore_testing` set in its stack file); the outputs."""
    rt = cfg.restore_testing
    if rt is None or not rt.enabled:
        return {}
    account, region, tier = cfg.account_id, cfg.regions.primary, cfg.tier
    part = partition(region)
    gap = availability_gap(region)
    if gap:
        return {"restore_testing": {"notes": [gap]}, "notes": [gap]}
    vault = cfg.vault_name(cfg.vault_key)
    vault_arn = f"arn:{part}:backup:{region}:{account}:backup-vault:{vault}"
    alias = f"arn:{part}:kms:{region}:{account}:alias/pgf-backup/{vault}"
    role_arn = cfg.role_arn(account, cfg.iam.service_role)
    tests, kinds, notes = _plan(
        f"restore-tests-{tier}", _names(cfg, tier), tier, rt, vault_arn, alias, role_arn, providers
    )
    reports = backup.apply(_reports_of)
    bucket = reports.apply(lambda r: r[0])
    key_arn = reports.apply(lambda r: r[1])
    # The account's own buckets: the function compares a restored bucket with its source where it can list it.
    sources = [f"arn:{part}:s3:::{name}" for name in cfg.buckets]
    validator = _validator(cfg, providers, job_alerts, {tier: tests}, rt, (bucket, key_arn), sources)
    outputs: dict[str, Any] = {
        "restore_testing": {
            "plans": {
                tier: {
                    "plan": tests.plan_name,
                    "plan_arn": tests.plan_arn,
                    "vault": vault,
                    "resource_types": kinds,
                    "schedule": f"{rt.schedule} {rt.timezone}",
                }
            },
            "validator": {
                "function": validator.function_name,
                "rule_arn": validator.rule_arn,
                "evidence": bucket.apply(lambda b: f"s3://{b}/{RESTORE_EVIDENCE_PREFIX}/{account}/"),
            },
            "notes": notes,
        }
    }
    if notes:
        outputs["notes"] = notes
    return outputs
