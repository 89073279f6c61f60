"""S3Protection and RdsProtection on the mock runtime, and their wiring in the workload stacks."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components import (
    AppAccessArgs,
    DatabaseArgs,
    KeyGuard,
    RdsProtection,
    RdsProtectionArgs,
    S3Protection,
    S3ProtectionArgs,
)
from pgf_backup.config import ConfigError
from pgf_backup.paths.evaluator import Decision, Principal, Request, decide
from pgf_backup.project import Project
from tests.conftest import Harness, config_of, stack_values

ACCOUNT = "400000000040"
APP = f"arn:aws:iam::{ACCOUNT}:role/pgf-app"
GUARD = KeyGuard(f"arn:aws:iam::{ACCOUNT}:role/deploy", f"arn:aws:iam::{ACCOUNT}:role/break-glass")
S3_ARGS = S3ProtectionArgs(
    bucket="pgf-documents-prod",
    account_id=ACCOUNT,
    region="ca-central-1",
    partition="aws",
    application_access=(AppAccessArgs(APP, ("s3:GetObject", "s3:PutObject")),),
    noncurrent_version_expiration_days=90,
    transitions=((30, "GLACIER_IR"), (180, "DEEP_ARCHIVE")),
    key_guard=GUARD,
)
RDS_ARGS = RdsProtectionArgs(
    databases=(
        DatabaseArgs("pgf-core", "cluster", "ca-central-1"),
        DatabaseArgs("pgf-audit", "instance", "ca-central-1"),
    ),
    account_id=ACCOUNT,
    region="ca-central-1",
    partition="aws",
    tier="prod",
    min_backup_retention_days=7,
    multi_az_required=True,
    key_guard=GUARD,
)


def _provider() -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=aws.Provider("p", region="ca-central-1", allowed_account_ids=[ACCOUNT]))


def _s3(harness: Harness, args: S3ProtectionArgs = S3_ARGS) -> S3Protection:
    protection: S3Protection = harness.run(lambda: S3Protection("b", args, _provider()))
    return protection


def _statements(policy: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]}


def test_bucket_prerequisites(pulumi_mocks: Harness) -> None:
    protection = _s3(pulumi_mocks)
    key_arn = pulumi_mocks.resolve(protection.key_arn)
    versioning = pulumi_mocks.named("b-versioning")["inputs"]
    assert versioning["bucket"] == "pgf-documents-prod"
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    (rule,) = pulumi_mocks.named("b-encryption")["inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
    assert rule["bucketKeyEnabled"] is True
    block = pulumi_mocks.named("b-public-access-block")["inputs"]
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    key = pulumi_mocks.named("b-key")
    assert key["inputs"]["enableKeyRotation"] is True and key["protect"]
    assert "DenyKeyDeletionExceptBreakGlass" in _statements(key["inputs"]["policy"])


def test_bucket_policy_tls_only_right_key_and_app_access(pulumi_mocks: Harness) -> None:
    protection = _s3(pulumi_mocks)
    key_arn = pulumi_mocks.resolve(protection.key_arn)
    statements = _statements(pulumi_mocks.named("b-policy")["inputs"]["policy"])
    tls = statements["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == ["arn:aws:s3:::pgf-documents-prod", "arn:aws:s3:::pgf-documents-prod/*"]
    sse, kms_key = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
    # Each comparison only once the header is there (Null: false): a missing header never denies.
    assert statements["DenyNonKmsEncryption"]["Condition"] == {
        "Null": {sse: "false"},
        "StringNotEquals": {sse: "aws:kms"},
    }
    assert statements["DenyWrongKmsKey"]["Condition"] == {
        "Null": {kms_key: "false"},
        "StringNotEquals": {kms_key: key_arn},
    }
    assert statements["DenyAwsManagedKmsKey"]["Condition"] == {
        "StringEquals": {sse: "aws:kms"},
        "Null": {kms_key: "true"},
    }
    assert statements["DenyCustomerProvidedKeys"]["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}
    }
    app = statements["ApplicationAccess0"]
    assert app["Effect"] == "Allow" and app["Principal"] == {"AWS": APP}
    assert app["Action"] == ["s3:GetObject", "s3:PutObject"]


_NEGATED = ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike", "NumericNotEquals")


def test_no_upload_deny_fires_on_a_missing_encryption_header(pulumi_mocks: Harness) -> None:
    # An upload that relies on the bucket's default encryption sends no encryption header. IAM makes a
    # missing key true for `...IfExists` and for negated operators, so each of those must be guarded by
    # `Null: false` on the same key in the same statement (conditions in one statement are ANDed).
    _s3(pulumi_mocks)
    uploads = [
        s
        for s in json.loads(pulumi_mocks.named("b-policy")["inputs"]["policy"])["Statement"]
        if s["Effect"] == "Deny" and s["Action"] == "s3:PutObject"
    ]
    for statement in uploads:
        condition = statement["Condition"]
        assert not [op for op in condition if op.endswith("IfExists")], statement["Sid"]
        present = {key for key, value in condition.get("Null", {}).items() if value == "false"}
        compared = {key for op in _NEGATED for key in condition.get(op, {})}
        assert compared <= present, statement["Sid"]
        # At least one condition is false when no header is sent: a presence check or a positive match.
        positive = {op for op in condition if op in ("StringEquals", "StringLike", "ArnEquals", "ArnLike")}
        assert present or positive, f"{statement['Sid']} would deny an upload without any encryption header"
    assert {s["Sid"] for s in uploads} == {
        "DenyNonKmsEncryption",
        "DenyWrongKmsKey",
        "DenyAwsManagedKmsKey",
        "DenyCustomerProvidedKeys",
    }


SERVICE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-service-role"
OTHER_KEY = f"arn:aws:kms:ca-central-1:{ACCOUNT}:key/0000aaaa-00aa-00aa-00aa-000000aaaaaa"
OBJECT = "arn:aws:s3:::pgf-documents-prod/reports/2024.csv"
BUCKET = "arn:aws:s3:::pgf-documents-prod"
TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
SSE = "s3:x-amz-server-side-encryption"
SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"
THIS_KEY = "<the bucket's key>"  # replaced by the planned key's ARN


def _decide(
    harness: Harness, principal: str, action: str, resource: str, context: dict[str, str], identity_allows: bool
) -> Decision:
    """AWS's answer to one request against the planned bucket policy."""
    protection = _s3(harness)
    key_arn = harness.resolve(protection.key_arn)
    context = {k: key_arn if v == THIS_KEY else v for k, v in context.items()}
    request = Request(Principal(arn=principal), action, resource, context)
    policy = harness.named("b-policy")["inputs"]["policy"]
    return decide(
        request,
        resource_account=ACCOUNT,
        resource_policy=policy,
        resource_policy_name="bucket policy",
        identity_allows=identity_allows,
    )


@pytest.mark.parametrize(
    ("who", "action", "resource", "context"),
    [
        # The application's ordinary upload: no encryption header, the bucket's default (SSE-KMS, its key) applies.
        ("app", "s3:PutObject", OBJECT, TLS),
        ("app", "s3:PutObject", OBJECT, {**TLS, SSE: "aws:kms", SSE_KEY: THIS_KEY}),
        ("app", "s3:GetObject", OBJECT, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.2"}),
        # AWS Backup's S3 backups read with the service role (AWSBackupServiceRolePolicyForS3Backup allows it).
        ("backup", "s3:GetObject", OBJECT, TLS),
        ("backup", "s3:GetObjectVersion", OBJECT, TLS),
        ("backup", "s3:ListBucketVersions", BUCKET, TLS),
        ("backup", "s3:GetBucketVersioning", BUCKET, TLS),
        ("backup", "s3:GetBucketLocation", BUCKET, TLS),
        # Its restores with the original keys (the default), whether or not it names the key.
        ("backup", "s3:PutObject", OBJECT, {**TLS, SSE: "aws:kms", SSE_KEY: THIS_KEY}),
        ("backup", "s3:PutObject", OBJECT, TLS),
    ],
)
def test_bucket_policy_allows_default_encryption_uploads_and_aws_backup(
    pulumi_mocks: Harness, who: str, action: str, resource: str, context: dict[str, str]
) -> None:
    # The application is allowed by the bucket policy alone (its role may have no S3 policy); the service
    # role by AWS's managed policies, which the bucket policy must not override with a Deny.
    principal, identity_allows = (APP, False) if who == "app" else (SERVICE_ROLE, True)
    decision = _decide(pulumi_mocks, principal, action, resource, context, identity_allows)
    assert decision.allowed, decision.reason


@pytest.mark.parametrize(
    ("who", "action", "context", "sid"),
    [
        ("app", "s3:PutObject", {**TLS, SSE: "AES256"}, "DenyNonKmsEncryption"),
        ("app", "s3:PutObject", {**TLS, SSE: "aws:kms:dsse", SSE_KEY: THIS_KEY}, "DenyNonKmsEncryption"),
        ("app", "s3:PutObject", {**TLS, SSE: "aws:kms", SSE_KEY: OTHER_KEY}, "DenyWrongKmsKey"),
        ("app", "s3:PutObject", {**TLS, SSE: "aws:kms"}, "DenyAwsManagedKmsKey"),
        (
            "app",
            "s3:PutObject",
            {**TLS, "s3:x-amz-server-side-encryption-customer-algorithm": "AES256"},
            "DenyCustomerProvidedKeys",
        ),
        ("app", "s3:PutObject", {"aws:SecureTransport": "false"}, "DenyInsecureTransport"),
        ("app", "s3:GetObject", {"aws:SecureTransport": "false"}, "DenyInsecureTransport"),
        ("app", "s3:PutObject", {"aws:SecureTransport": "true", "s3:TlsVersion": "1.1"}, "DenyOutdatedTls"),
        # A restore that asks for SSE-S3 or another key is refused like any other such upload.
        ("backup", "s3:PutObject", {**TLS, SSE: "AES256"}, "DenyNonKmsEncryption"),
        ("backup", "s3:PutObject", {**TLS, SSE: "aws:kms", SSE_KEY: OTHER_KEY}, "DenyWrongKmsKey"),
        ("backup", "s3:GetObject", {"aws:SecureTransport": "false"}, "DenyInsecureTransport"),
    ],
)
def test_bucket_policy_refuses_other_encryption_and_plain_http(
    pulumi_mocks: Harness, who: str, action: str, context: dict[str, str], sid: str
) -> None:
    principal = APP if who == "app" else SERVICE_ROLE
    decision = _decide(pulumi_mocks, principal, action, OBJECT, context, identity_allows=True)
    assert not decision.allowed and decision.statement == f"bucket policy:{sid}", decision.reason


def test_lifecycle_noncurrent_versions_and_archive(pulumi_mocks: Harness) -> None:
    _s3(pulumi_mocks)
    rules = {r["id"]: r for r in pulumi_mocks.named("b-lifecycle")["inputs"]["rules"]}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    assert rules["archive-current-versions"]["transitions"] == [
        {"days": 30, "storageClass": "GLACIER_IR"},
        {"days": 180, "storageClass": "DEEP_ARCHIVE"},
    ]


def test_object_lock_only_when_asked(pulumi_mocks: Harness) -> None:
    _s3(pulumi_mocks, replace(S3_ARGS, object_lock=("COMPLIANCE", 35)))
    lock = pulumi_mocks.named("b-object-lock")["inputs"]["rule"]["defaultRetention"]
    assert lock == {"mode": "COMPLIANCE", "days": 35}


def test_existing_key_is_used_not_created(pulumi_mocks: Harness) -> None:
    existing = f"arn:aws:kms:ca-central-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    _s3(pulumi_mocks, replace(S3_ARGS, kms_key_arn=existing))
    assert not pulumi_mocks.of_type("aws:kms/key:Key")
    (rule,) = pulumi_mocks.named("b-encryption")["inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == existing


def test_nothing_can_replace_or_delete_the_application_bucket(pulumi_mocks: Harness) -> None:
    _s3(pulumi_mocks, replace(S3_ARGS, object_lock=("GOVERNANCE", 7)))
    types = {r["type"] for r in pulumi_mocks.resources}
    assert not {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"} & types
    settings = [r for r in pulumi_mocks.resources if r["type"].startswith("aws:s3/")]
    assert settings and all(r["retainOnDelete"] for r in settings)


def _rds(harness: Harness, args: RdsProtectionArgs = RDS_ARGS) -> RdsProtection:
    protection: RdsProtection = harness.run(lambda: RdsProtection("rds", args, _provider()))
    return protection


def test_rds_arns_and_config_rules(pulumi_mocks: Harness) -> None:
    rds = _rds(pulumi_mocks)
    assert rds.arns == [
        f"arn:aws:rds:ca-central-1:{ACCOUNT}:cluster:pgf-core",
        f"arn:aws:rds:ca-central-1:{ACCOUNT}:db:pgf-audit",
    ]
    rules = {r["inputs"]["name"]: r["inputs"] for r in pulumi_mocks.of_type("aws:cfg/rule:Rule")}
    identifiers = {r["source"]["sourceIdentifier"] for r in rules.values()}
    assert {
        "DB_INSTANCE_BACKUP_ENABLED",
        "RDS_INSTANCE_DELETION_PROTECTION_ENABLED",
        "RDS_CLUSTER_DELETION_PROTECTION_ENABLED",
        "RDS_STORAGE_ENCRYPTED",
        "RDS_MULTI_AZ_SUPPORT",
        "RDS_CLUSTER_MULTI_AZ_ENABLED",
    } <= identifiers
    backup = rules["pgf-prod-db-instance-backup-enabled"]
    assert json.loads(backup["inputParameters"]) == {"backupRetentionMinimum": "7"}


def test_multi_az_required_in_prod_only(pulumi_mocks: Harness) -> None:
    _rds(pulumi_mocks, replace(RDS_ARGS, tier="dev", multi_az_required=False, key_guard=None))
    identifiers = {r["inputs"]["source"]["sourceIdentifier"] for r in pulumi_mocks.of_type("aws:cfg/rule:Rule")}
    assert not {"RDS_MULTI_AZ_SUPPORT", "RDS_CLUSTER_MULTI_AZ_ENABLED"} & identifiers
    assert "RDS_INSTANCE_DELETION_PROTECTION_ENABLED" in identifiers


def test_non_compliance_alerts_an_encrypted_topic(pulumi_mocks: Harness) -> None:
    rds = _rds(pulumi_mocks)
    pattern = json.loads(pulumi_mocks.named("rds-non-compliant")["inputs"]["eventPattern"])
    assert pattern["detail-type"] == ["Config Rules Compliance Change"]
    assert pattern["detail"]["newEvaluationResult"] == {"complianceType": ["NON_COMPLIANT"]}
    assert sorted(pattern["detail"]["configRuleName"]) == sorted(rds.rule_names)
    target = pulumi_mocks.named("rds-alerts-target")["inputs"]
    topic = pulumi_mocks.named("rds-alerts")["inputs"]
    assert target["arn"] == f"arn:aws:sns:ca-central-1:{ACCOUNT}:{topic['name']}"
    assert topic["kmsMasterKeyId"].startswith(f"arn:aws:kms:ca-central-1:{ACCOUNT}:key/")


def test_config_rules_can_be_turned_off(pulumi_mocks: Harness) -> None:
    _rds(pulumi_mocks, replace(RDS_ARGS, config_rules=False))
    assert not pulumi_mocks.of_type("aws:cfg/rule:Rule")
    assert not [r for r in pulumi_mocks.resources if r["type"].startswith("aws:rds/")]


# ---------------------------------------------------------------------------------------------
# Config rules of the data sections, and the prod stack


@pytest.mark.parametrize("setting", ["versioning", "encryption", "block_public_access", "tls_only", "backup"])
def test_sensitive_buckets_cannot_drop_a_prerequisite(project: Project, setting: str) -> None:
    values = stack_values(project, "prod")
    values["pgf-backup:buckets"]["pgf-exports-prod"][setting] = False
    with pytest.raises(
        ConfigError, match=rf"buckets.pgf-exports-prod: .*{setting}.* cannot be turned off for a restricted"
    ):
        config_of(values)


def test_internal_bucket_may_opt_out(project: Project) -> None:
    values = stack_values(project, "prod")
    values["pgf-backup:buckets"]["pgf-reports-prod"].update({"tls_only": False, "backup": False})
    assert not config_of(values).buckets["pgf-reports-prod"].tls_only


def test_object_lock_needs_a_bucket_created_with_it(project: Project) -> None:
    values = stack_values(project, "prod")
    values["pgf-backup:buckets"]["pgf-reports-prod"]["object_lock"] = {"mode": "GOVERNANCE", "days": 7}
    with pytest.raises(ConfigError, match="the bucket must have been created with Object Lock enabled"):
        config_of(values)


def test_aws_managed_key_with_cross_account_copy_is_refused(project: Project) -> None:
    values = stack_values(project, "prod")
    values["pgf-backup:databases"]["pgf-audit"]["encryption"] = "aws-managed"
    with pytest.raises(ConfigError, match=r"databases.pgf-audit.encryption: .*cannot be copied to another account"):
        config_of(values)
    values["pgf-backup:plan"]["copy_to_backup_account"] = False
    assert config_of(values).databases["pgf-audit"].encryption == "aws-managed"


def test_prod_stack_protects_each_bucket_and_database(run_stack: Callable[..., dict[str, Any]]) -> None:
    plan = run_stack("prod")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in plan["resources"]:
        by_type.setdefault(resource["type"], []).append(resource)
    # The application's buckets, and the export bucket this stack creates (protected the same way).
    buckets = {"pgf-documents-prod", "pgf-exports-prod", "pgf-reports-prod", "pgf-backup-exports-400000000040"}
    # The audit reports bucket has the same protections (components/audit.py); the plan selects it by tag.
    reports = "pgf-backup-reports-400000000040"
    for type_ in (
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    ):
        assert {r["inputs"]["bucket"] for r in by_type[type_]} == buckets | {reports}, type_
    # Every bucket and database is selected by ARN: the RDS instance by the plan that spares it the
    # air-gapped copy (logically air-gapped vaults hold no RDS DB instances).
    # Each by the plan its routing in Pulumi.prod.yaml names (vault per criticality, retention class).
    listed = {s["name"]: set(s["inputs"]["resources"]) for s in by_type["aws:backup/selection:Selection"]}
    assert listed["plan-prod-listed"] == {
        "arn:aws:s3:::pgf-exports-prod",
        "arn:aws:s3:::pgf-backup-exports-400000000040",  # the export bucket this stack creates
        "arn:aws:rds:ca-central-1:400000000040:cluster:pgf-core",
    }
    assert listed["plan-prod-files-raw-listed"] == {"arn:aws:s3:::pgf-documents-prod"}
    assert listed["plan-prod-files-processed-90d-listed"] == {"arn:aws:s3:::pgf-reports-prod"}
    assert listed["plan-prod-90d-standard-vaults-listed"] == {"arn:aws:rds:ca-central-1:400000000040:db:pgf-audit"}
    assert set().union(*listed.values()) >= {f"arn:aws:s3:::{b}" for b in buckets}
    identifiers = {r["inputs"]["source"]["sourceIdentifier"] for r in by_type["aws:cfg/rule:Rule"]}
    assert "RDS_MULTI_AZ_SUPPORT" in identifiers and "RDS_CLUSTER_MULTI_AZ_ENABLED" in identifiers
    # The application's buckets and databases are attached, never created: the buckets created are the export and
    # the audit reports ones.
    created = sorted(r["inputs"]["bucket"] for r in by_type["aws:s3/bucket:Bucket"])
    assert created == ["pgf-backup-exports-400000000040", reports]
    assert not {"aws:rds/instance:Instance", "aws:rds/cluster:Cluster"} & set(by_type)


def test_dev_stack_does_not_require_multi_az(run_stack: Callable[..., dict[str, Any]]) -> None:
    plan = run_stack("dev")
    rules = [r for r in plan["resources"] if r["type"] == "aws:cfg/rule:Rule"]
    identifiers = {r["inputs"]["source"]["sourceIdentifier"] for r in rules}
    assert rules and not {"RDS_MULTI_AZ_SUPPORT", "RDS_CLUSTER_MULTI_AZ_ENABLED"} & identifiers
    assert plan["outputs"]["rds_config_rules"]["multi_az_required"] is False


def test_prod_outputs_say_how_each_bucket_and_database_is_protected(run_stack: Callable[..., dict[str, Any]]) -> None:
    outputs = run_stack("prod")["outputs"]
    exports = outputs["buckets"]["pgf-exports-prod"]
    assert exports["versioning"] and exports["public_access_blocked"] and exports["tls_only_policy"]
    assert exports["sse_kms_key"].startswith("arn:aws:kms:ca-central-1:400000000040:key/")
    assert exports["transitions"] == ["STANDARD_IA after 30 days", "GLACIER_IR after 90 days"]
    assert exports["backup"] == "plan pgf-prod, selection by ARN"
    core = outputs["databases"]["pgf-core"]
    statement = core.pop("required_key_policy_statement")
    assert core == {
        "arn": "arn:aws:rds:ca-central-1:400000000040:cluster:pgf-core",
        "kind": "cluster",
        "encryption": "customer",
        "backup": "plan pgf-prod, selection by ARN",
        "continuous_rule": "continuous",
        "routing": {"vault": "prod", "retention_days": 35},
    }
    # What the application's key policy must hold for the copies into the backup account.
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::100000000010:root"]}
    assert "kms:CreateGrant" in statement["Action"]
    assert outputs["rds_config_rules"]["multi_az_required"] is True
