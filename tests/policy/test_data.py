"""Data services: protected bucket prerequisites (stack level), RDS posture, the strategy's tags."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pgf_backup_policy.data import (
    BUCKET,
    BUCKET_POLICY,
    BUCKET_PUBLIC_ACCESS_BLOCK,
    DYNAMODB_TABLE,
    EFS_FILE_SYSTEM,
    RDS_CLUSTER,
    RDS_INSTANCE,
    data_resources_tagged_violations,
    protected_bucket_prerequisites_violations,
    rds_backup_posture_violations,
)
from pgf_backup_policy.model import UNKNOWN, Context
from pgf_backup_policy.selections import SELECTION

from tests.policy import fixtures as f

VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
COMPANIONS: dict[str, dict[str, Any]] = {
    VERSIONING: f.BUCKET_VERSIONING,
    ENCRYPTION: f.BUCKET_ENCRYPTION,
    BUCKET_PUBLIC_ACCESS_BLOCK: f.BUCKET_PUBLIC_ACCESS_BLOCK,
    BUCKET_POLICY: f.BUCKET_POLICY,
}

# ---------------------------------------------------------------------------------------------
# protected-bucket-prerequisites


def _stack(**replaced: dict[str, Any] | None) -> list[f.Resource]:
    """A selection of the fixture bucket's ARN, and its four companions (one replaced or removed)."""
    found = [f.resource(SELECTION, f.BUCKET_SELECTION, "selection")]
    for kind, props in COMPANIONS.items():
        short = kind.rsplit(":", 1)[-1]
        chosen = replaced.get(short, props)
        if chosen is not None:
            found.append(f.resource(kind, chosen, short))
    return found


def test_protected_bucket_with_its_four_companions_passes() -> None:
    assert protected_bucket_prerequisites_violations(_stack()) == []


@pytest.mark.parametrize(
    ("replaced", "expected"),
    [
        ({"BucketVersioning": None}, "no versioning"),
        (
            {"BucketVersioning": {**f.BUCKET_VERSIONING, "versioningConfiguration": {"status": "Suspended"}}},
            "versioning",
        ),
        ({"BucketServerSideEncryptionConfiguration": None}, "no SSE-KMS"),
        (
            {
                "BucketServerSideEncryptionConfiguration": {
                    "bucket": f.BUCKET_NAME,
                    "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
                }
            },
            "no SSE-KMS",
        ),
        (
            {
                "BucketServerSideEncryptionConfiguration": {
                    "bucket": f.BUCKET_NAME,
                    "rules": [
                        {
                            "applyServerSideEncryptionByDefault": {
                                "sseAlgorithm": "aws:kms",
                                "kmsMasterKeyId": "alias/aws/s3",
                            }
                        }
                    ],
                }
            },
            "customer-managed key",
        ),
        ({"BucketPublicAccessBlock": None}, "full public access block"),
        ({"BucketPublicAccessBlock": {**f.BUCKET_PUBLIC_ACCESS_BLOCK, "restrictPublicBuckets": False}}, "all four"),
        ({"BucketPolicy": None}, "denying non-TLS requests"),
        ({"BucketPolicy": {**f.BUCKET_POLICY, "policy": f.document([])}}, "denying non-TLS requests"),
        ({"BucketPolicy": {**f.BUCKET_POLICY, "policy": "{"}}, "denying non-TLS requests"),
    ],
)
def test_protected_bucket_missing_a_prerequisite(replaced: dict[str, Any], expected: str) -> None:
    (finding,) = protected_bucket_prerequisites_violations(_stack(**replaced))
    assert finding.urn.endswith("::selection")
    assert f"bucket {f.BUCKET_NAME} is backed up by this stack but has no" in finding.message
    assert expected in finding.message


def test_tls_deny_must_cover_object_access() -> None:
    statements = json.loads(f.BUCKET_POLICY["policy"])["Statement"]
    statements[0]["Action"] = "s3:ListBucket"
    policy = {**f.BUCKET_POLICY, "policy": f.document(statements)}
    assert protected_bucket_prerequisites_violations(_stack(BucketPolicy=policy))


def test_companions_of_another_bucket_do_not_count() -> None:
    other = {**f.BUCKET_VERSIONING, "bucket": "someone-else"}
    (finding,) = protected_bucket_prerequisites_violations(_stack(BucketVersioning=other))
    assert "no versioning" in finding.message


def test_bucket_created_here_and_tagged_for_backup_is_protected() -> None:
    bucket = f.resource(BUCKET, {"bucket": f.BUCKET_NAME, "tags": f.DATA_TAGS}, "bucket")
    findings = protected_bucket_prerequisites_violations([bucket])
    assert len(findings) == 4 and all(x.urn == bucket.urn for x in findings)
    opted_out = f.resource(BUCKET, {"bucket": f.BUCKET_NAME, "tags": {**f.DATA_TAGS, "backup:enabled": "false"}})
    assert protected_bucket_prerequisites_violations([opted_out]) == []


def test_backup_enabled_may_come_from_the_provider_default_tags() -> None:
    context = Context(stack="prod", default_tags={"backup:enabled": "true"})
    bucket = f.resource(BUCKET, {"bucket": f.BUCKET_NAME}, "bucket", context)
    assert len(protected_bucket_prerequisites_violations([bucket])) == 4


def test_unprotected_bucket_needs_nothing() -> None:
    bucket = f.resource(BUCKET, {"bucket": "scratch", "tags": {}}, "bucket")
    assert protected_bucket_prerequisites_violations([bucket]) == []


# ---------------------------------------------------------------------------------------------
# rds-backup-posture


@pytest.mark.parametrize(("kind", "props"), [(RDS_INSTANCE, f.RDS_INSTANCE), (RDS_CLUSTER, f.RDS_CLUSTER)])
def test_rds_posture_passes(kind: str, props: dict[str, Any]) -> None:
    assert rds_backup_posture_violations(kind, props, f.ctx()) == []


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        (RDS_INSTANCE, {"backupRetentionPeriod": 14}, "backupRetentionPeriod is 14 days; prod needs 35"),
        (RDS_INSTANCE, {"backupRetentionPeriod": None}, "backupRetentionPeriod is 1 days"),
        (RDS_INSTANCE, {"storageEncrypted": False}, "storage is not encrypted"),
        (RDS_INSTANCE, {"kmsKeyId": None}, "AWS-managed key aws/rds"),
        (RDS_INSTANCE, {"kmsKeyId": "alias/aws/rds"}, "AWS-managed key aws/rds"),
        (RDS_INSTANCE, {"deletionProtection": False}, "deletionProtection is off"),
        (RDS_INSTANCE, {"multiAz": False}, "without Multi-AZ"),
        (RDS_CLUSTER, {"backupRetentionPeriod": 7}, "prod needs 35"),
        (RDS_CLUSTER, {"deletionProtection": None}, "deletionProtection is off"),
        (RDS_CLUSTER, {"availabilityZones": ["ca-central-1a"]}, "fewer than two availability zones"),
    ],
)
def test_rds_posture_refused(kind: str, changes: dict[str, Any], expected: str) -> None:
    base = f.RDS_INSTANCE if kind == RDS_INSTANCE else f.RDS_CLUSTER
    (message,) = rds_backup_posture_violations(kind, f.changed(base, **changes), f.ctx())
    assert expected in message


def test_rds_outside_prod() -> None:
    dev = f.changed(f.RDS_INSTANCE, backupRetentionPeriod=7, multiAz=False)
    assert rds_backup_posture_violations(RDS_INSTANCE, dev, f.ctx("dev")) == []
    short = f.changed(dev, backupRetentionPeriod=3)
    assert rds_backup_posture_violations(RDS_INSTANCE, short, f.ctx("dev")) == [
        "backupRetentionPeriod is 3 days; this tier needs 7"
    ]


def test_read_replica_has_no_retention_of_its_own() -> None:
    replica = f.changed(f.RDS_INSTANCE, backupRetentionPeriod=0, replicateSourceDb="pgf-db")
    assert rds_backup_posture_violations(RDS_INSTANCE, replica, f.ctx()) == []


def test_rds_unknowns_are_not_judged() -> None:
    unknown = f.changed(f.RDS_INSTANCE, kmsKeyId=UNKNOWN, backupRetentionPeriod=UNKNOWN, multiAz=UNKNOWN)
    assert rds_backup_posture_violations(RDS_INSTANCE, unknown, f.ctx()) == []


# ---------------------------------------------------------------------------------------------
# data-resources-tagged


@pytest.mark.parametrize("kind", [BUCKET, RDS_INSTANCE, RDS_CLUSTER, DYNAMODB_TABLE, EFS_FILE_SYSTEM])
def test_tagged_data_resources_pass(kind: str) -> None:
    assert data_resources_tagged_violations(kind, {"tags": f.DATA_TAGS}, f.ctx()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"backup:enabled": None}, "missing tag(s) backup:enabled"),
        ({"backup:tier": None}, "missing tag(s) backup:tier"),
        ({"data:classification": None}, "missing tag(s) data:classification"),
        ({"backup:enabled": "yes"}, "use 'true' or 'false'"),
        ({"backup:tier": "dev"}, "tag backup:tier='dev' in a prod stack"),
        ({"data:classification": "secret"}, "use one of public, internal, confidential, restricted"),
    ],
)
def test_data_resource_tags_refused(changes: dict[str, str | None], expected: str) -> None:
    tags = {k: v for k, v in {**f.DATA_TAGS, **changes}.items() if v is not None}
    (message,) = data_resources_tagged_violations(DYNAMODB_TABLE, {"tags": tags}, Context(stack="prod"))
    assert expected in message


def test_provider_default_tags_count() -> None:
    context = Context(stack="prod", default_tags=dict(f.DATA_TAGS))
    assert data_resources_tagged_violations(EFS_FILE_SYSTEM, {}, context) == []
    (message,) = data_resources_tagged_violations(EFS_FILE_SYSTEM, {}, Context(stack="prod"))
    assert "backup:enabled, backup:tier, data:classification, application" in message


def test_tier_is_not_compared_when_the_stack_has_none() -> None:
    tags = {**f.DATA_TAGS, "backup:tier": "dev"}
    assert data_resources_tagged_violations(BUCKET, {"tags": tags}, Context(stack="shared-services")) == []


def test_non_data_resources_are_ignored() -> None:
    assert data_resources_tagged_violations("aws:sns/topic:Topic", {}, f.ctx()) == []
