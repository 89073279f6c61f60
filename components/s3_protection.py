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
                # Transport only: AWS Backup's reads (GetObject*, ListBucket*, GetBucket*) already go over
                # TLS 1.2 or later. "All GET and PUT requests for an object protected by AWS KMS fail if
                # they are not made via SSL or TLS" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html),
                # and every AWS API endpoint refuses TLS 1.0 and 1.1 since June 2023
                # (https://aws.amazon.com/blogs/security/tls-1-2-required-for-aws-endpoints/).
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
                statements += _encryption_statements(objects, key_arn)
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


def _encryption_statements(objects: str, key_arn: str) -> list[Statement]:
    """Deny the uploads that ask for another encryption or another key; leave the bucket's default alone.

    An upload without encryption headers gets the bucket's default encryption, SSE-KMS with this key:
    "If a PUT Object request doesn't specify any server-side encryption, this default encryption will be
    applied" (botocore's S3 model, ServerSideEncryptionByDefault;
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_ServerSideEncryptionByDefault.html). Such an
    upload must stay allowed, and neither `...IfExists` nor a lone `StringNotEquals` does that: "If the
    policy condition requires that the key is *not* matched, such as StringNotLike or ArnNotLike, and
    the right key is not present, the condition is *true*. This logic applies to all condition
    operators except ...IfExists and Null check", and an `...IfExists` operator evaluates a missing key
    as true too (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
    AWS's own example (StringNotEquals alone, "denies ... if the request does not include the
    x-amz-server-side-encryption header"; https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms)
    therefore refuses exactly the uploads the default encryption is for. So each comparison below is
    paired with `Null: false` on the same key (the key is present), in one statement: "If you specify
    multiple Condition elements in a statement, or multiple keys in a single Condition element, AWS
    evaluates them using a logical AND operation"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html).

    AWS Backup's restores into the bucket are not refused either: "Use original encryption keys
    (default) restores objects with the same encryption keys used by the source object", i.e. this key
    (https://docs.aws.amazon.com/aws-backup/latest/devguide/restoring-s3.html). A restore that picks
    SSE-S3 or another KMS key is refused, as any other upload that asks for them would be.
    """
    sse = "s3:x-amz-server-side-encryption"
    kms_key = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    # Condition keys of s3:PutObject (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
    sse_c = "s3:x-amz-server-side-encryption-customer-algorithm"
    deny: Statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": objects}
    return [
        # Asks for SSE-S3 (AES256) or DSSE-KMS instead of SSE-KMS.
        {
            "Sid": "DenyNonKmsEncryption",
            **deny,
            "Condition": {"Null": {sse: "false"}, "StringNotEquals": {sse: "aws:kms"}},
        },
        # Names another KMS key. AWS compares the key ARN: "To specify the KMS key, you must use a key
        # Amazon Resource Name (ARN)" (UsingKMSEncryption.html#require-sse-kms, above).
        {
            "Sid": "DenyWrongKmsKey",
            **deny,
            "Condition": {"Null": {kms_key: "false"}, "StringNotEquals": {kms_key: key_arn}},
        },
        # Asks for SSE-KMS without naming a key: that is not the bucket's key but aws/s3. "If you specify
        # x-amz-server-side-encryption:aws:kms ..., but do not provide
        # x-amz-server-side-encryption-aws-kms-key-id, Amazon S3 uses the Amazon Web Services managed key
        # (aws/s3)" (botocore's S3 model, PutObjectRequest.SSEKMSKeyId;
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html).
        {
            "Sid": "DenyAwsManagedKmsKey",
            **deny,
            "Condition": {"StringEquals": {sse: "aws:kms"}, "Null": {kms_key: "true"}},
        },
        # Customer-provided keys (SSE-C) send no x-amz-server-side-encryption header at all, so the
        # statements above would let them through.
        {"Sid": "DenyCustomerProvidedKeys", **deny, "Condition": {"Null": {sse_c: "false"}}},
    ]
