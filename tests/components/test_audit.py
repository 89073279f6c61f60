"""AuditReports, AuditFramework and ReportPlans on the mock runtime: who the bucket and key admit and refuse,
the wiring report plan -> bucket, and every input valid for CreateFramework / CreateReportPlan."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import botocore.session
import pulumi
import pulumi_aws as aws
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from components.audit import (
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
from components.policies import KeyGuard
from pgf_backup.paths.evaluator import Principal, Request, decide
from tests.conftest import Harness

BACKUP = "100000000010"
LAB = "200000000020"
DEV = "300000000030"
OTHER = "999999999999"
BUCKET = "pgf-backup-reports-100000000010"
SLR = f"arn:aws:iam::{BACKUP}:role/aws-service-role/reports.backup.amazonaws.com/AWSServiceRoleForBackupReports"
BREAK_GLASS = f"arn:aws:iam::{BACKUP}:role/pgf-backup-break-glass"


def _validator(account: str) -> str:
    return f"arn:aws:iam::{account}:role/pgf-backup-restore-validator"


ARGS = AuditReportsArgs(
    bucket=BUCKET,
    account_id=BACKUP,
    region="ca-central-1",
    partition="aws",
    reports_prefix="audit-reports",
    report_retention_days=1096,
    noncurrent_version_expiration_days=30,
    object_lock=("COMPLIANCE", 365),
    break_glass_role_arn=BREAK_GLASS,
    writers=tuple(EvidenceWriter(a, _validator(a), f"restore-tests/{a}") for a in (BACKUP, LAB, DEV)),
    key_guard=KeyGuard(f"arn:aws:iam::{BACKUP}:role/pgf-backup-deploy", BREAK_GLASS),
    tags={"backup:tier": "prod", "backup:enabled": "false"},
)


def _provider() -> aws.Provider:
    return aws.Provider("p", region="ca-central-1")


def _reports(harness: Harness, args: AuditReportsArgs = ARGS) -> AuditReports:
    def program() -> AuditReports:
        return AuditReports("audit-reports", args, pulumi.ResourceOptions(providers={"aws": _provider()}))

    built: AuditReports = harness.run(program)
    return built


def _one(harness: Harness, type_: str) -> dict[str, Any]:
    [found] = harness.of_type(type_)
    return found


def _bucket_policy(harness: Harness) -> str:
    policy: str = _one(harness, "aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"]
    return policy


def _key_policy(harness: Harness) -> str:
    policy: str = _one(harness, "aws:kms/key:Key")["inputs"]["policy"]
    return policy


def _s3(
    harness: Harness, who: str, action: str, key: str, *, iam: bool = True, ctx: dict[str, Any] | None = None
) -> bool:
    request = Request(
        Principal(arn=who), action, f"arn:aws:s3:::{BUCKET}/{key}", {"aws:SecureTransport": True, **(ctx or {})}
    )
    return decide(
        request, resource_account=BACKUP, resource_policy=_bucket_policy(harness), identity_allows=iam
    ).allowed


def _kms(harness: Harness, who: str, action: str, key: str, *, iam: bool = True, via: str = "s3") -> bool:
    context = {
        "kms:ViaService": f"{via}.ca-central-1.amazonaws.com",
        "kms:CallerAccount": who.split(":")[4],
        "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{BUCKET}/{key}",
    }
    request = Request(Principal(arn=who), action, "*", context)
    return decide(
        request, resource_account=BACKUP, resource_policy=_key_policy(harness), identity_allows=iam, key_policy=True
    ).allowed


# -- the bucket --------------------------------------------------------------------------------------------


def test_bucket_is_created_with_object_lock_and_protected(pulumi_mocks: Harness) -> None:
    built = _reports(pulumi_mocks)
    bucket = _one(pulumi_mocks, "aws:s3/bucket:Bucket")
    assert bucket["inputs"]["bucket"] == BUCKET and bucket["inputs"]["objectLockEnabled"] is True
    assert bucket["inputs"]["forceDestroy"] is False
    assert bucket["protect"] is True
    lock = _one(pulumi_mocks, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")["inputs"]
    assert lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 365}
    versioning = _one(pulumi_mocks, "aws:s3/bucketVersioning:BucketVersioning")["inputs"]
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    block = _one(pulumi_mocks, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    key = _one(pulumi_mocks, "aws:kms/key:Key")
    assert key["inputs"]["enableKeyRotation"] is True and key["protect"] is True
    encryption = _one(
        pulumi_mocks, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )["inputs"]["rules"][0]
    by_default = encryption["applyServerSideEncryptionByDefault"]
    assert by_default["sseAlgorithm"] == "aws:kms"
    assert by_default["kmsMasterKeyId"] == pulumi_mocks.resolve(built.key_arn)
    assert encryption["bucketKeyEnabled"] is False  # per-object encryption context: prefixes in the key policy
    [rule] = _one(pulumi_mocks, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["inputs"]["rules"]
    assert rule["expiration"]["days"] == 1096
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30
    assert rule["status"] == "Enabled"
    role = _one(pulumi_mocks, "aws:iam/serviceLinkedRole:ServiceLinkedRole")["inputs"]
    assert role["awsServiceName"] == "reports.backup.amazonaws.com"
    assert built.reports_role_arn == SLR


def test_governance_or_no_lock(pulumi_mocks: Harness) -> None:
    _reports(pulumi_mocks, replace(ARGS, object_lock=None, key_guard=None, create_reports_role=False))
    assert _one(pulumi_mocks, "aws:s3/bucket:Bucket")["inputs"]["objectLockEnabled"] is False
    assert pulumi_mocks.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration") == []
    assert pulumi_mocks.of_type("aws:iam/serviceLinkedRole:ServiceLinkedRole") == []
    assert _one(pulumi_mocks, "aws:s3/bucket:Bucket")["protect"] is False


def test_report_delivery_is_admitted_under_its_prefix_only(pulumi_mocks: Harness) -> None:
    _reports(pulumi_mocks)
    acl = {"s3:x-amz-acl": "bucket-owner-full-control"}
    key = "audit-reports/Backup/100000000010/ca-central-1/2025/01/02/report.csv"
    # The service-linked role's own policy grants no S3 action: the bucket policy alone must admit it.
    assert _s3(pulumi_mocks, SLR, "s3:PutObject", key, iam=False, ctx=acl)
    assert not _s3(pulumi_mocks, SLR, "s3:PutObject", key, iam=False)  # without the ACL AWS's sample requires
    assert not _s3(pulumi_mocks, SLR, "s3:PutObject", "restore-tests/100000000010/x.json", iam=False, ctx=acl)
    assert not _s3(pulumi_mocks, SLR, "s3:DeleteObjectVersion", key, iam=False)
    # The key: data keys through S3 for objects under the reports prefix.
    assert _kms(pulumi_mocks, SLR, "kms:GenerateDataKey", key, iam=False)
    assert not _kms(pulumi_mocks, SLR, "kms:GenerateDataKey", "restore-tests/x.json", iam=False)
    assert not _kms(pulumi_mocks, SLR, "kms:GenerateDataKey", key, iam=False, via="dynamodb")


@pytest.mark.parametrize("account", [BACKUP, LAB, DEV])
def test_each_validator_writes_under_its_own_account_prefix(pulumi_mocks: Harness, account: str) -> None:
    _reports(pulumi_mocks)
    own = f"restore-tests/{account}/ca-central-1/2025/01/job.json"
    assert _s3(pulumi_mocks, _validator(account), "s3:PutObject", own)
    assert _kms(pulumi_mocks, _validator(account), "kms:GenerateDataKey", own)
    other = LAB if account != LAB else DEV
    foreign = f"restore-tests/{other}/ca-central-1/2025/01/job.json"
    assert not _kms(pulumi_mocks, _validator(account), "kms:GenerateDataKey", foreign)
    if account != BACKUP:
        # Across accounts the bucket policy must admit the role (same-account IAM could on its own).
        assert not _s3(pulumi_mocks, _validator(account), "s3:PutObject", foreign)
        assert not _s3(pulumi_mocks, _validator(account), "s3:PutObject", "audit-reports/Backup/x.csv")
        assert not _s3(pulumi_mocks, _validator(account), "s3:GetObject", own)
        # A grant to the account reaches the role only with its own IAM policy.
        assert not _s3(pulumi_mocks, _validator(account), "s3:PutObject", own, iam=False)
        # Decrypt is not granted to other accounts: their writers cannot read evidence back through the key.
        assert not _kms(pulumi_mocks, _validator(account), "kms:Decrypt", own)
    else:
        # The backup account's principals read through S3 (auditors), with their IAM policies, but never encrypt
        # elsewhere than their own prefix: data keys go only to the writers' statements.
        assert _kms(pulumi_mocks, _validator(account), "kms:Decrypt", own)
        assert not _kms(pulumi_mocks, f"arn:aws:iam::{BACKUP}:role/Admin", "kms:GenerateDataKey", own)


def test_other_accounts_and_roles_are_refused(pulumi_mocks: Harness) -> None:
    _reports(pulumi_mocks)
    stranger = f"arn:aws:iam::{OTHER}:role/pgf-backup-restore-validator"
    assert not _s3(pulumi_mocks, stranger, "s3:PutObject", f"restore-tests/{OTHER}/x.json")
    assert not _kms(pulumi_mocks, stranger, "kms:GenerateDataKey", f"restore-tests/{OTHER}/x.json")
    intruder = f"arn:aws:iam::{LAB}:role/some-other-role"
    assert not _s3(pulumi_mocks, intruder, "s3:PutObject", f"restore-tests/{LAB}/x.json")
    assert not _kms(pulumi_mocks, intruder, "kms:GenerateDataKey", f"restore-tests/{LAB}/x.json")


def test_evidence_deletion_and_plain_http_are_denied(pulumi_mocks: Harness) -> None:
    _reports(pulumi_mocks)
    key = f"restore-tests/{LAB}/x.json"
    admin = f"arn:aws:iam::{BACKUP}:role/Admin"
    assert not _s3(pulumi_mocks, admin, "s3:DeleteObjectVersion", key)
    assert not _s3(pulumi_mocks, admin, "s3:BypassGovernanceRetention", key)
    assert _s3(pulumi_mocks, BREAK_GLASS, "s3:DeleteObjectVersion", key)  # not denied: its IAM decides
    assert not _s3(
        pulumi_mocks,
        _validator(BACKUP),
        "s3:PutObject",
        f"restore-tests/{BACKUP}/x",
        ctx={"aws:SecureTransport": False},
    )
    # An upload asking for another key is refused (the same denies as S3Protection).
    assert not _s3(
        pulumi_mocks,
        _validator(BACKUP),
        "s3:PutObject",
        f"restore-tests/{BACKUP}/x",
        ctx={"s3:x-amz-server-side-encryption": "AES256"},
    )


def test_policies_name_no_wildcard_principal_without_condition(pulumi_mocks: Harness) -> None:
    _reports(pulumi_mocks)
    for text in (_bucket_policy(pulumi_mocks), _key_policy(pulumi_mocks)):
        for statement in json.loads(text)["Statement"]:
            if statement["Principal"] in ("*", {"AWS": "*"}):
                assert statement["Effect"] == "Deny" or statement.get("Condition"), statement
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != "*" and statement["Principal"] != {"AWS": "*"}, statement


def test_guarded_key_refuses_deletion_by_admins(pulumi_mocks: Harness) -> None:
    _reports(pulumi_mocks)
    sids = [s["Sid"] for s in json.loads(_key_policy(pulumi_mocks))["Statement"]]
    assert "DenyKeyDeletionExceptBreakGlass" in sids and "DenyKeyPolicyChangesExceptDeployAndBreakGlass" in sids


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bucket": "PGF_Reports"}, "not an S3 bucket name"),
        ({"object_lock": ("COMPLIANCE", 2000)}, "object_lock_days"),
        ({"reports_prefix": "audit-reports/"}, "without leading or trailing"),
        ({"writers": (EvidenceWriter(LAB, _validator(LAB), "audit-reports/x"),)}, "reports prefix"),
    ],
)
def test_refused_reports_arguments(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _reports(pulumi_mocks, replace(ARGS, **change))
    assert not pulumi_mocks.of_type("aws:s3/bucket:Bucket")


# -- frameworks and report plans ---------------------------------------------------------------------------

CONTROLS = (
    ControlArgs("BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN", scope_tags={"backup:tier": "prod"}),
    ControlArgs(
        "BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK",
        {"requiredFrequencyUnit": "hours", "requiredFrequencyValue": "24", "requiredRetentionDays": "35"},
    ),
    ControlArgs("BACKUP_LAST_RECOVERY_POINT_CREATED", {"recoveryPointAgeUnit": "hours", "recoveryPointAgeValue": "26"}),
    ControlArgs("BACKUP_RESOURCES_PROTECTED_BY_CROSS_ACCOUNT", {"crossAccountList": BACKUP}, {"backup:tier": "prod"}),
)
FRAMEWORK = AuditFrameworkArgs("pgf_prod_backup_controls", "prod controls", CONTROLS, {"backup:tier": "prod"})


def _operation(name: str) -> Any:
    return botocore.session.get_session().get_service_model("backup").operation_model(name).input_shape


def _framework(harness: Harness, args: AuditFrameworkArgs = FRAMEWORK) -> AuditFramework:
    def program() -> AuditFramework:
        return AuditFramework("fw", args, pulumi.ResourceOptions(providers={"aws": _provider()}))

    built: AuditFramework = harness.run(program)
    return built


def test_framework_passes_create_framework_validation(pulumi_mocks: Harness) -> None:
    _framework(pulumi_mocks)
    inputs = _one(pulumi_mocks, "aws:backup/framework:Framework")["inputs"]
    params = {
        "FrameworkName": inputs["name"],
        "FrameworkDescription": inputs["description"],
        "FrameworkTags": inputs["tags"],
        "FrameworkControls": [
            {
                "ControlName": c["name"],
                "ControlInputParameters": [
                    {"ParameterName": p["name"], "ParameterValue": p["value"]} for p in c.get("inputParameters", [])
                ],
                **({"ControlScope": {"Tags": c["scope"]["tags"]}} if c.get("scope") else {}),
            }
            for c in inputs["controls"]
        ],
    }
    validate_parameters(params, _operation("CreateFramework"))
    assert [c["ControlName"] for c in params["FrameworkControls"]] == [c.name for c in CONTROLS]
    assert params["FrameworkControls"][0]["ControlScope"] == {"Tags": {"backup:tier": "prod"}}
    assert {"ParameterName": "crossAccountList", "ParameterValue": BACKUP} in params["FrameworkControls"][3][
        "ControlInputParameters"
    ]


def test_create_framework_validation_can_fail() -> None:
    with pytest.raises(ParamValidationError):
        validate_parameters(
            {"FrameworkName": "x", "FrameworkControls": [{"ControlName": 3}]}, _operation("CreateFramework")
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"framework_name": "pgf-prod"}, "letters, digits or '_'"),
        ({"controls": ()}, "1 to 50 controls"),
        ({"controls": (ControlArgs("BACKUP_EVERYTHING"),)}, "unknown control"),
        ({"controls": (ControlArgs("BACKUP_RECOVERY_POINT_ENCRYPTED", scope_tags={"a": "1", "b": "2"}),)}, "one tag"),
        (
            {
                "controls": (
                    ControlArgs(
                        "BACKUP_LAST_RECOVERY_POINT_CREATED",
                        {"recoveryPointAgeUnit": "hours", "recoveryPointAgeValue": "745"},
                    ),
                )
            },
            "outside 1 to 744 hours",
        ),
        (
            {
                "controls": (
                    ControlArgs(
                        "BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK",
                        {
                            "requiredFrequencyUnit": "hours",
                            "requiredFrequencyValue": "25",
                            "requiredRetentionDays": "7",
                        },
                    ),
                )
            },
            "outside 1 to 24 hours",
        ),
        (
            {
                "controls": (
                    ControlArgs("BACKUP_RESOURCES_PROTECTED_BY_CROSS_ACCOUNT", {"crossAccountList": "1,2,3,4,5,6"}),
                )
            },
            "at most 5",
        ),
    ],
)
def test_refused_frameworks(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _framework(pulumi_mocks, replace(FRAMEWORK, **change))
    assert not pulumi_mocks.of_type("aws:backup/framework:Framework")


def _plans(harness: Harness, plans: tuple[ReportPlanArgs, ...]) -> ReportPlans:
    def program() -> ReportPlans:
        return ReportPlans(
            "plans",
            ReportPlansArgs(bucket=BUCKET, prefix="audit-reports", plans=plans),
            pulumi.ResourceOptions(providers={"aws": _provider()}),
        )

    built: ReportPlans = harness.run(program)
    return built


PLANS = (
    ReportPlanArgs(
        "pgf_backup_jobs",
        "BACKUP_JOB_REPORT",
        "jobs",
        formats=("CSV", "JSON"),
        accounts=(BACKUP, LAB),
        regions=("ca-central-1", "ca-west-1"),
    ),
    ReportPlanArgs("pgf_restore_jobs", "RESTORE_JOB_REPORT", "restores", formats=("CSV", "JSON")),
    ReportPlanArgs(
        "pgf_control_compliance",
        "CONTROL_COMPLIANCE_REPORT",
        "controls",
        formats=("CSV", "JSON"),
        framework_arns=("arn:aws:backup:ca-central-1:100000000010:framework:pgf_prod_backup_controls-1",),
    ),
)


def test_report_plans_deliver_to_the_bucket_and_pass_create_report_plan(pulumi_mocks: Harness) -> None:
    built = _plans(pulumi_mocks, PLANS)
    found = {r["inputs"]["name"]: r["inputs"] for r in pulumi_mocks.of_type("aws:backup/reportPlan:ReportPlan")}
    assert sorted(found) == sorted(built.plan_arns) == sorted(p.plan_name for p in PLANS)
    for inputs in found.values():
        channel, setting = inputs["reportDeliveryChannel"], inputs["reportSetting"]
        assert channel["s3BucketName"] == BUCKET and channel["s3KeyPrefix"] == "audit-reports"
        params: dict[str, Any] = {
            "ReportPlanName": inputs["name"],
            "ReportPlanDescription": inputs["description"],
            "ReportDeliveryChannel": {
                "S3BucketName": channel["s3BucketName"],
                "S3KeyPrefix": channel["s3KeyPrefix"],
                "Formats": channel["formats"],
            },
            "ReportSetting": {
                "ReportTemplate": setting["reportTemplate"],
                **({"FrameworkArns": setting["frameworkArns"]} if "frameworkArns" in setting else {}),
                **({"NumberOfFrameworks": setting["numberOfFrameworks"]} if "numberOfFrameworks" in setting else {}),
                **({"Accounts": setting["accounts"]} if "accounts" in setting else {}),
                **({"Regions": setting["regions"]} if "regions" in setting else {}),
            },
        }
        validate_parameters(params, _operation("CreateReportPlan"))
    # Reports spanning accounts or regions come as CSV only; single-account, single-region ones as configured.
    assert found["pgf_backup_jobs"]["reportDeliveryChannel"]["formats"] == ["CSV"]
    assert found["pgf_backup_jobs"]["reportSetting"]["accounts"] == [BACKUP, LAB]
    assert found["pgf_restore_jobs"]["reportDeliveryChannel"]["formats"] == ["CSV", "JSON"]
    assert found["pgf_control_compliance"]["reportSetting"]["numberOfFrameworks"] == 1


@pytest.mark.parametrize(
    ("plans", "message"),
    [
        ((PLANS[1], PLANS[1]), "used twice"),
        ((replace(PLANS[1], plan_name="restore-jobs"),), "letters, digits or '_'"),
        ((replace(PLANS[2], framework_arns=()),), "at least one framework"),
        ((replace(PLANS[1], framework_arns=("arn:x",)),), "jobs, not frameworks"),
    ],
)
def test_refused_report_plans(pulumi_mocks: Harness, plans: tuple[ReportPlanArgs, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _plans(pulumi_mocks, plans)
    assert not pulumi_mocks.of_type("aws:backup/reportPlan:ReportPlan")
