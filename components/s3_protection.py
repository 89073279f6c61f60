"""S3Protection: the strategy's S3 prerequisites on an application bucket it does not own.

The bucket is attached by name: nothing here creates, replaces or deletes it. Every setting is
`retain_on_delete`, so destroying this stack never weakens the application's bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.keys import customer_managed_key
from components.policies import (
    KEY_USE_ACTIONS,
    KeyGuard,
    Statement,
    document,
    key_policy,
    root_arn,
)


@dataclass(frozen=True)
class AppAccessArgs:
    """An application principal and the S3 actions it keeps."""

    principal: str
    actions: Sequence[str]


@dataclass(frozen=True)
class S3ProtectionArgs:
    """The bucket and the protections to apply (all on by default)."""

    bucket: str
    account_id: str
    region: str
    partition: str
    versioning: bool = True
    encryption: bool = True
    # An existing customer-managed key; None creates one for the bucket.
    kms_key_arn: str | None = None
    block_public_access: bool = True
    tls_only: bool = True
    application_access: Sequence[AppAccessArgs] = ()
    noncurrent_version_expiration_days: int = 90
    transitions: Sequence[tuple[int, str]] = ()
    object_lock: tuple[Literal["GOVERNANCE", "COMPLIANCE"], int] | None = None
    # Production: the key is protected and its policy guarded like a vault key.
    key_guard: KeyGuard | None = None
    tags: dict[str, str] = field(default_factory=dict)


class S3Protection(pulumi.ComponentResource):
    """Versioning, SSE-KMS, public access block, TLS-only policy, lifecycle and Object Lock."""

    bucket_arn: str
    key_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: S3ProtectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgf:backup:S3Protection", name, None, opts)
        self._args = args
        # The bucket belongs to the application: settings stay if this stack goes away.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        self.bucket_arn = f"arn:{args.partition}:s3:::{args.bucket}"
        self.key_arn = self._create_key(name) if args.encryption else None
        versioning = None
        if args.versioning:
            versioning = aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=args.bucket,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
                opts=child,
            )
        if self.key_arn is not None:
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=args.bucket,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id=self.key_arn
                        ),
                        bucket_key_enabled=True,
                    )
                ],
                opts=child,
            )
        if args.block_public_access:
            aws.s3.BucketPublicAccessBlock(
                f"{name}-public-access-block",
                bucket=args.bucket,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child,
            )
        if args.tls_only or args.application_access or self.key_arn is not None:
            aws.s3.BucketPolicy(f"{name}-policy", bucket=args.bucket, policy=self._policy(), opts=child)
        self._create_lifecycle(name, versioning, child)
        if args.object_lock is not None:
            mode, days = args.object_lock
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=args.bucket,
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(mode=mode, days=days)
                ),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[versioning] if versioning else [])
                ),
            )
        self.register_outputs({"bucket_arn": self.bucket_arn, "key_arn": self.key_arn})

    def _create_key(self, name: str) -> pulumi.Output[str]:
        args = self._args
        if args.kms_key_arn is not None:
            return pulumi.Output.from_input(args.kms_key_arn)
        root = root_arn(args.partition, args.account_id)
        statements: list[Statement] = [
            {
                "Sid": "UseThroughS3AndAwsBackup",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": [*KEY_USE_ACTIONS, "kms:CreateGrant"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [f"s3.{args.region}.amazonaws.com", f"backup.{args.region}.amazonaws.com"],
                        "kms:CallerAccount": args.account_id,
                    }
                },
            },
        ]
        key = customer_managed_key(
            name,
            description=f"SSE-KMS of bucket {args.bucket} (pgf-backup)",
            policy=key_policy(args.partition, args.account_id, statements, args.key_guard),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.key_guard is not None, retain_on_delete=True),
            alias=f"alias/pgf-backup/s3/{args.bucket}",
        )
        return key.arn

    def _policy(self) -> pulumi.Output[str]:
        args = self._args
        bucket_arn = self.bucket_arn
        objects = f"{bucket_arn}/*"

        def build(key_arn: str | None) -> str:
            statements: list[Statement] = []
            for index, access in enumerate(args.application_access):
                statements.append(
                    {
                        "Sid": f"ApplicationAccess{index}",
                        "Effect": "Allow",
                        "Principal": {"AWS": access.principal},
                        "Action": list(access.actions),
                        "Resource": [bucket_arn, objects],
                    }
                )
            if args.tls_only:
                statements += [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, objects],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "DenyOutdatedTls",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, objects],
                        "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                    },
                ]
            if key_arn is not None:
                # Uploads without an encryption header get the bucket's default (SSE-KMS, this key).
                statements += [
                    {
                        "Sid": "DenyNonKmsEncryption",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": objects,
                        "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
                    },
                    {
                        "Sid": "DenyWrongKmsKey",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": objects,
                        "Condition": {
                            "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}
                        },
                    },
                ]
            return document(statements)

        if self.key_arn is None:
            return pulumi.Output.from_input(build(None))
        return self.key_arn.apply(build)

    def _create_lifecycle(
        self, name: str, versioning: aws.s3.BucketVersioning | None, opts: pulumi.ResourceOptions
    ) -> None:
        args = self._args
        rules = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.noncurrent_version_expiration_days
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
            )
        ]
        if args.transitions:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="archive-current-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=days, storage_class=storage_class)
                        for days, storage_class in args.transitions
                    ],
                )
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=args.bucket,
            rules=rules,
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[versioning] if versioning else [])
            ),
        )
