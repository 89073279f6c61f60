"""Data services: prerequisites of protected buckets, RDS backup posture, the strategy's tags."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pgf_backup.constants import (
    DATA_CLASSIFICATIONS,
    TAG_APPLICATION,
    TAG_BACKUP_ENABLED,
    TAG_BACKUP_TIER,
    TAG_DATA_CLASSIFICATION,
)
from pgf_backup_policy.documents import DocumentError, covers_action, principal_is_everyone, statements
from pgf_backup_policy.model import Context, Finding, Resource, as_bool, as_int, as_list, is_unknown
from pgf_backup_policy.selections import SELECTION
from pgf_backup_policy.vaults import is_aws_managed_key

BUCKET: Final = "aws:s3/bucket:Bucket"
BUCKET_V2: Final = "aws:s3/bucketV2:BucketV2"
BUCKET_VERSIONING: Final = frozenset(
    {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"}
)
BUCKET_ENCRYPTION: Final = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
BUCKET_PUBLIC_ACCESS_BLOCK: Final = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY: Final = "aws:s3/bucketPolicy:BucketPolicy"
RDS_INSTANCE: Final = "aws:rds/instance:Instance"
RDS_CLUSTER: Final = "aws:rds/cluster:Cluster"
DYNAMODB_TABLE: Final = "aws:dynamodb/table:Table"
EFS_FILE_SYSTEM: Final = "aws:efs/fileSystem:FileSystem"

BUCKET_TYPES: Final = frozenset({BUCKET, BUCKET_V2})
DATA_TYPES: Final = frozenset({BUCKET, BUCKET_V2, RDS_INSTANCE, RDS_CLUSTER, DYNAMODB_TABLE, EFS_FILE_SYSTEM})
RDS_TYPES: Final = frozenset({RDS_INSTANCE, RDS_CLUSTER})
BUCKET_STACK_TYPES: Final = frozenset(
    {SELECTION, BUCKET, BUCKET_V2, BUCKET_PUBLIC_ACCESS_BLOCK, BUCKET_POLICY} | BUCKET_VERSIONING | BUCKET_ENCRYPTION
)
PUBLIC_ACCESS_FLAGS: Final = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS_ALGORITHMS: Final = frozenset({"aws:kms", "aws:kms:dsse"})
RDS_MIN_RETENTION_DAYS: Final = 7
RDS_PROD_MIN_RETENTION_DAYS: Final = 35  # also the most RDS keeps automated backups
RDS_DEFAULT_RETENTION_DAYS: Final = 1  # what AWS applies when none is given

_BUCKET_ARN = re.compile(r"^arn:aws[\w-]*:s3:::([^/*]+)$")


# ---------------------------------------------------------------------------------------------
# protected-bucket-prerequisites (stack level)


def _versioned(props: Mapping[str, Any]) -> bool:
    configuration = props.get("versioningConfiguration")
    return isinstance(configuration, Mapping) and configuration.get("status") == "Enabled"


def _kms_encrypted(props: Mapping[str, Any]) -> bool:
    for rule in as_list(props.get("rules")):
        default = rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, Mapping) else None
        if not isinstance(default, Mapping) or default.get("sseAlgorithm") not in KMS_ALGORITHMS:
            continue
        key = default.get("kmsMasterKeyId")
        if is_unknown(key) or (isinstance(key, str) and key and not is_aws_managed_key(key)):
            return True
    return False


def _public_access_blocked(props: Mapping[str, Any]) -> bool:
    return all(as_bool(props.get(flag)) is True for flag in PUBLIC_ACCESS_FLAGS)


def _tls_only(props: Mapping[str, Any]) -> bool:
    try:
        found = statements(props.get("policy"))
    except DocumentError:
        return False
    for statement in found:
        condition = statement.get("Condition")
        secure = condition.get("Bool", {}).get("aws:SecureTransport") if isinstance(condition, Mapping) else None
        if (
            statement.get("Effect") == "Deny"
            and principal_is_everyone(statement)
            and covers_action(statement, "s3:GetObject")
            and covers_action(statement, "s3:PutObject")
            and [str(v).lower() for v in as_list(secure)] == ["false"]
        ):
            return True
    return False


# What each prerequisite is, the resources that can provide it, and the test a provider must pass.
_PREREQUISITES: Final[tuple[tuple[str, frozenset[str], Callable[[Mapping[str, Any]], bool]], ...]] = (
    ("versioning (aws.s3.BucketVersioning, status Enabled)", BUCKET_VERSIONING, _versioned),
    (
        "SSE-KMS default encryption with a customer-managed key (aws.s3.BucketServerSideEncryptionConfiguration)",
        BUCKET_ENCRYPTION,
        _kms_encrypted,
    ),
    (
        "a full public access block (aws.s3.BucketPublicAccessBlock, all four flags)",
        frozenset({BUCKET_PUBLIC_ACCESS_BLOCK}),
        _public_access_blocked,
    ),
    ("a bucket policy denying non-TLS requests (aws:SecureTransport false)", frozenset({BUCKET_POLICY}), _tls_only),
)


def _protected_buckets(resources: Sequence[Resource]) -> dict[str, str]:
    """Buckets this stack backs up -> URN that protects them: ARNs in selections, buckets tagged for backup."""
    protected: dict[str, str] = {}
    for resource in resources:
        if resource.type == SELECTION:
            for arn in as_list(resource.props.get("resources")):
                match = _BUCKET_ARN.match(arn) if isinstance(arn, str) else None
                if match:
                    protected.setdefault(match.group(1), resource.urn)
        elif resource.type in BUCKET_TYPES:
            name = resource.props.get("bucket")
            enabled = resource.ctx.tags_of(resource.props).get(TAG_BACKUP_ENABLED, "").lower() == "true"
            if enabled and isinstance(name, str):
                protected[name] = resource.urn
    return protected


def protected_bucket_prerequisites_violations(resources: Sequence[Resource]) -> list[Finding]:
    """Every bucket backed up here has versioning, SSE-KMS, a full public access block and TLS-only access."""
    companions: dict[Any, list[Resource]] = {}
    for resource in resources:
        companions.setdefault(resource.props.get("bucket"), []).append(resource)
    findings = []
    for bucket, urn in _protected_buckets(resources).items():
        for what, types, holds in _PREREQUISITES:
            providers = [r for r in companions.get(bucket, []) if r.type in types]
            if not any(holds(r.props) for r in providers):
                findings.append(
                    Finding(urn, f"bucket {bucket} is backed up by this stack but has no {what} in this stack")
                )
    return findings


# ---------------------------------------------------------------------------------------------
# rds-backup-posture


def _encryption_problems(props: Mapping[str, Any]) -> list[str]:
    encrypted = props.get("storageEncrypted")
    key = props.get("kmsKeyId")
    if is_unknown(encrypted) or is_unknown(key):
        return []
    if as_bool(encrypted) is not True:
        return ["storage is not encrypted: set storageEncrypted=True with a customer-managed kmsKeyId"]
    if not key or (isinstance(key, str) and is_aws_managed_key(key)):
        return [
            "storage is encrypted with the AWS-managed key aws/rds: its snapshots cannot be copied to the backup "
            "account; set kmsKeyId to a customer-managed key"
        ]
    return []


def rds_backup_posture_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """RDS: retention >= 7 days (>= 35 in prod), customer-managed encryption, deletion protection, Multi-AZ in prod."""
    if resource_type not in RDS_TYPES:
        return []
    prod = ctx.tier_of(props) == "prod"
    problems = []
    retention = props.get("backupRetentionPeriod")
    # A read replica takes no automated backups of its own; its source's retention is what counts.
    if not is_unknown(retention) and not props.get("replicateSourceDb"):
        days = RDS_DEFAULT_RETENTION_DAYS if retention is None else as_int(retention)
        floor = RDS_PROD_MIN_RETENTION_DAYS if prod else RDS_MIN_RETENTION_DAYS
        if days is None or days < floor:
            problems.append(f"backupRetentionPeriod is {days} days; {'prod' if prod else 'this tier'} needs {floor}")
    problems += _encryption_problems(props)
    protection = props.get("deletionProtection")
    if not is_unknown(protection) and as_bool(protection) is not True:
        problems.append("deletionProtection is off: set it so the database cannot be deleted by mistake")
    if prod and resource_type == RDS_INSTANCE:
        multi_az = props.get("multiAz")
        if not is_unknown(multi_az) and as_bool(multi_az) is not True:
            problems.append("prod instance without Multi-AZ: set multiAz=True")
    if prod and resource_type == RDS_CLUSTER:
        zones = props.get("availabilityZones")
        if isinstance(zones, list) and len(zones) < 2:
            problems.append("prod cluster pinned to fewer than two availability zones")
    return problems


# ---------------------------------------------------------------------------------------------
# data-resources-tagged


def data_resources_tagged_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """Buckets, RDS, DynamoDB and EFS carry the strategy's tags (with the provider's default tags)."""
    if resource_type not in DATA_TYPES or is_unknown(props.get("tags")):
        return []
    tags = ctx.tags_of(props)
    problems = []
    missing = [
        k for k in (TAG_BACKUP_ENABLED, TAG_BACKUP_TIER, TAG_DATA_CLASSIFICATION, TAG_APPLICATION) if not tags.get(k)
    ]
    if missing:
        problems.append(f"missing tag(s) {', '.join(missing)}: backup selections and reports rely on them")
    enabled = tags.get(TAG_BACKUP_ENABLED)
    if enabled and enabled not in ("true", "false"):
        problems.append(f"tag {TAG_BACKUP_ENABLED}={enabled!r}: use 'true' or 'false'")
    tier, stack_tier = tags.get(TAG_BACKUP_TIER), ctx.stack_tier
    if tier and stack_tier and tier != stack_tier:
        problems.append(
            f"tag {TAG_BACKUP_TIER}={tier!r} in a {stack_tier} stack: it would be backed up by the wrong plan"
        )
    classification = tags.get(TAG_DATA_CLASSIFICATION)
    if classification and classification not in DATA_CLASSIFICATIONS:
        problems.append(
            f"tag {TAG_DATA_CLASSIFICATION}={classification!r}: use one of {', '.join(DATA_CLASSIFICATIONS)}"
        )
    return problems
