"""AWS Backup Audit Manager: the reports bucket (`AuditReports`), a tier's framework (`AuditFramework`) and the
report plans that deliver to the bucket (`ReportPlans`).

The bucket is not an `S3Protection`: that component attaches to a bucket it does not own, writes the bucket's
only policy and only lifecycle configuration (S3 keeps one of each per bucket) and creates a key whose policy
admits this account alone; the reports bucket needs a policy and a key policy that admit AWS Backup's report
delivery and the restore-test writers of other accounts, and a lifecycle that expires current versions. The
same protections are applied here (versioning, SSE-KMS with its own rotating key, public access block,
TLS-only, the same deny of foreign encryption, `components.s3_protection._encryption_statements`), plus Object
Lock, which S3 only allows on a bucket created with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.keys import customer_managed_key
from components.policies import KeyGuard, Statement, document, key_policy, root_arn
from components.s3_protection import _encryption_statements

# The service-linked role AWS Backup Audit Manager delivers reports with
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-report-plan-console.html, "Sample bucket policy").
REPORTS_ROLE_PATH = "role/aws-service-role/reports.backup.amazonaws.com/AWSServiceRoleForBackupReports"

# The report templates of ReportSetting.ReportTemplate
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_ReportSetting.html).
ReportTemplate = Literal[
    "BACKUP_JOB_REPORT",
    "COPY_JOB_REPORT",
    "RESTORE_JOB_REPORT",
    "CONTROL_COMPLIANCE_REPORT",
    "RESOURCE_COMPLIANCE_REPORT",
]
JOB_TEMPLATES: tuple[ReportTemplate, ...] = ("BACKUP_JOB_REPORT", "COPY_JOB_REPORT", "RESTORE_JOB_REPORT")
COMPLIANCE_TEMPLATES: tuple[ReportTemplate, ...] = ("CONTROL_COMPLIANCE_REPORT", "RESOURCE_COMPLIANCE_REPORT")

# The controls of https://docs.aws.amazon.com/aws-backup/latest/devguide/controls-and-remediation.html, by the
# ControlName of https://docs.aws.amazon.com/aws-backup/latest/devguide/creating-frameworks-api.html.
CONTROL_NAMES = (
    "BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN",
    "BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK",
    "BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK",
    "BACKUP_RECOVERY_POINT_ENCRYPTED",
    "BACKUP_RECOVERY_POINT_MANUAL_DELETION_DISABLED",
    "BACKUP_RESOURCES_PROTECTED_BY_BACKUP_VAULT_LOCK",
    "BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION",
    "BACKUP_RESOURCES_PROTECTED_BY_CROSS_ACCOUNT",
    "BACKUP_LAST_RECOVERY_POINT_CREATED",
)
# "You can use up to 50 controls per account per Region. Using the same control in two different frameworks
# counts as using two controls" (controls-and-remediation.html).
MAX_CONTROLS_PER_ACCOUNT_REGION = 50
# "Values of hours can range from 1 to 744. Value of days can range from 1 to 31" (Last recovery point was
# created); the frequency: "Maximum of 24 for hours, 31 for days"
# (https://docs.aws.amazon.com/config/latest/developerguide/backup-plan-min-frequency-and-min-retention-check.html).
MAX_AGE = {"hours": 744, "days": 31}
MAX_FREQUENCY = {"hours": 24, "days": 31}
# "Up to 5 IAM roles" (manual deletion) and "up to 5 accounts" (cross-account copy), controls-and-remediation.html.
MAX_LISTED = 5
# FrameworkName and ReportPlanName: "[a-zA-Z][_a-zA-Z0-9]*", 1 to 256 characters (botocore's Backup model).
AUDIT_NAME = re.compile(r"[a-zA-Z][_a-zA-Z0-9]{0,255}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class EvidenceWriter:
    """A role (which may not exist yet) that may put objects under one prefix of the bucket, and nothing else."""

    account_id: str
    role_arn: str
    prefix: str  # without leading or trailing '/'


@dataclass(frozen=True)
class AuditReportsArgs:
    """The reports bucket: its name, retention, lock, and who writes into it."""

    bucket: str
    account_id: str
    region: str
    partition: str
    reports_prefix: str
    report_retention_days: int
    noncurrent_version_expiration_days: int
    # (mode, days) of S3 Object Lock's default retention; None: no Object Lock.
    object_lock: tuple[Literal["GOVERNANCE", "COMPLIANCE"], int] | None
    break_glass_role_arn: str
    writers: Sequence[EvidenceWriter] = ()
    # Create AWS Backup Audit Manager's service-linked role (False where the account already has it).
    create_reports_role: bool = True
    # The backup account and prod: bucket and key protected, key policy guarded.
    key_guard: KeyGuard | None = None
    tags: dict[str, str] = field(default_factory=dict)


class AuditReports(pulumi.ComponentResource):
    """A bucket for AWS Backup Audit Manager's reports and the restore tests' evidence, and its key."""

    bucket: str
    bucket_arn: str
    key_arn: pulumi.Output[str]
    policy: pulumi.Output[str]
    delivery_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: AuditReportsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check_reports_args(args)
        super().__init__("pgf:backup:AuditReports", name, None, opts)
        self._args = args
        guarded = args.key_guard is not None
        self.bucket = args.bucket
        self.bucket_arn = f"arn:{args.partition}:s3:::{args.bucket}"
        role_ready: list[pulumi.Resource] = []
        if args.create_reports_role:
            # "until the backup report is created the first time, the service-linked role referred to in the S3
            # bucket policy will not yet exist, resulting in the error 'Invalid principal'"
            # (create-report-plan-console.html): created here first. It trusts reports.backup.amazonaws.com
            # (https://docs.aws.amazon.com/aws-backup/latest/devguide/using-service-linked-roles-AWSServiceRoleForBackupReports.html).
            # An account that already has it (an earlier report plan) sets `audit.create_reports_role: false`.
            role_ready.append(
                aws.iam.ServiceLinkedRole(
                    f"{name}-reports-role",
                    aws_service_name="reports.backup.amazonaws.com",
                    description="AWS Backup Audit Manager report delivery (pgf-backup)",
                    opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
                )
            )
        key = customer_managed_key(
            name,
            description=f"SSE-KMS of the audit reports bucket {args.bucket} (pgf-backup)",
            policy=key_policy(args.partition, args.account_id, self._key_statements(), args.key_guard),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=guarded, retain_on_delete=True, depends_on=role_ready),
            alias=f"alias/pgf-backup/s3/{args.bucket}",
        )
        self.key_arn = key.arn
        # Object Lock is enabled when the bucket is created (`object_lock_enabled`), its default retention set by
        # BucketObjectLockConfiguration: pulumi-aws 7's `s3.Bucket` ("Use the object_lock_enabled parameter and
        # the resource s3.BucketObjectLockConfiguration instead"), S3's
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-configure.html. Object Lock needs
        # versioning. The bucket outlives the stack: it is evidence.
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket,
            object_lock_enabled=args.object_lock is not None,
            force_destroy=False,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=guarded, retain_on_delete=True),
        )
        child = pulumi.ResourceOptions(parent=self, depends_on=[bucket], retain_on_delete=True)
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=args.bucket,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        # No S3 Bucket Key: with one, S3 asks KMS with the bucket's ARN as encryption context, not the object's,
        # and the key policy could no longer keep each writer to its own prefix ("the Amazon S3 Bucket Key uses the
        # bucket ARN as encryption context", https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html).
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=args.bucket,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=self.key_arn
                    ),
                    bucket_key_enabled=False,
                )
            ],
            opts=child,
        )
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=args.bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.policy = self.key_arn.apply(self._bucket_policy)
        bucket_policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=args.bucket,
            policy=self.policy,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[bucket, access_block, *role_ready], retain_on_delete=True
            ),
        )
        self._create_lifecycle(name, bucket, versioning)
        ready: list[pulumi.Resource] = [bucket_policy, versioning]
        if args.object_lock is not None:
            mode, days = args.object_lock
            lock = aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=args.bucket,
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(mode=mode, days=days)
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[bucket, versioning], protect=guarded, retain_on_delete=True
                ),
            )
            ready.append(lock)
        # Report plans and writers wait for these: the first delivery finds the policy and the lock in place.
        self.delivery_ready = ready
        self.register_outputs({"bucket_arn": self.bucket_arn, "key_arn": self.key_arn})

    @property
    def reports_role_arn(self) -> str:
        """The service-linked role of AWS Backup Audit Manager in this account."""
        return f"arn:{self._args.partition}:iam::{self._args.account_id}:{REPORTS_ROLE_PATH}"

    def _key_statements(self) -> list[Statement]:
        args = self._args
        via_s3 = f"s3.{args.region}.amazonaws.com"
        context = "kms:EncryptionContext:aws:s3:arn"
        statements: list[Statement] = [
            {
                # Readers of this account (auditors) decrypt through S3 only. No one else encrypts: data keys go to
                # the report delivery and the evidence writers below, each for its own prefix.
                "Sid": "ReadThroughS3ByTheAccount",
                "Effect": "Allow",
                "Principal": {"AWS": root_arn(args.partition, args.account_id)},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": via_s3, "kms:CallerAccount": args.account_id}},
            },
            {
                # "The Principal attribute must include the Backup Audit Manager service-linked role
                # AWSServiceRoleForBackupReports ARN. The Action attribute must include kms:GenerateDataKey and
                # kms:Decrypt at minimum" (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-report-plan-api.html).
                # Named as Principal: its own policy (AWSServiceRolePolicyForBackupReports,
                # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSServiceRolePolicyForBackupReports.html)
                # grants no KMS or S3 action, so a grant to the account would not reach it. The role exists before
                # this policy is written (`create_reports_role`): a policy naming a missing role is refused.
                "Sid": "BackupAuditManagerDeliversReports",
                "Effect": "Allow",
                "Principal": {"AWS": self.reports_role_arn},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:ViaService": via_s3},
                    "ArnLike": {context: f"arn:{args.partition}:s3:::{args.bucket}/{args.reports_prefix}/*"},
                },
            },
        ]
        for index, writer in enumerate(args.writers):
            # S3 asks KMS with the object's ARN as encryption context (no Bucket Key), so a writer's data keys are
            # for its own prefix only (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context).
            # GenerateDataKey alone: a single PutObject (evidence files are small); no Decrypt, so no reading back.
            statements.append(
                {
                    "Sid": f"EvidenceWriter{index}",
                    "Effect": "Allow",
                    "Principal": {"AWS": root_arn(args.partition, writer.account_id)},
                    "Action": "kms:GenerateDataKey",
                    "Resource": "*",
                    "Condition": {
                        "ArnEquals": {"aws:PrincipalArn": writer.role_arn},
                        "StringEquals": {"kms:ViaService": via_s3},
                        "ArnLike": {context: f"arn:{args.partition}:s3:::{args.bucket}/{writer.prefix}/*"},
                    },
                }
            )
        return statements

    def _bucket_policy(self, key_arn: str) -> str:
        args = self._args
        bucket_arn = self.bucket_arn
        objects = f"{bucket_arn}/*"
        statements: list[Statement] = [
            # As S3Protection: TLS only, TLS 1.2 or later.
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
            # Evidence is never deleted by hand: a version only goes by lifecycle (S3's own, not a principal), and
            # a GOVERNANCE lock is bypassed by the break-glass role alone.
            {
                "Sid": "DenyEvidenceDeletionExceptBreakGlass",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"],
                "Resource": objects,
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": args.break_glass_role_arn}},
            },
            {
                # AWS's sample bucket policy: the service-linked role as Principal, s3:PutObject with
                # "s3:x-amz-acl": "bucket-owner-full-control" (create-report-plan-console.html). The console writes
                # it on `BucketName/*`; AWS Backup writes under the report plan's S3KeyPrefix ("s3://bucket/prefix/Backup/
                # accountID/Region/...", same page), our reports prefix. A fixed principal keeps the policy non-public
                # for the public access block (PublicAccessBlockConfiguration, "A fixed AWS principal, user, role, or
                # service principal", https://docs.aws.amazon.com/AmazonS3/latest/API/API_PublicAccessBlockConfiguration.html).
                "Sid": "BackupAuditManagerDeliversReports",
                "Effect": "Allow",
                "Principal": {"AWS": self.reports_role_arn},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{args.reports_prefix}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
            },
        ]
        for index, writer in enumerate(args.writers):
            # The account as principal and the role by aws:PrincipalArn: S3 refuses a policy whose Principal is a role
            # that does not exist ("Error: Invalid principal in policy ... confirm that the user or role wasn't
            # deleted", https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error, which advises to
            # "specify the intended principal ... Then use the Condition element to restrict access"), and the
            # validation role of a workload account may be created later. A condition value is only compared at
            # request time. A grant to an account delegates to that account's IAM policies: the role needs
            # s3:PutObject (and kms:GenerateDataKey on the key) in its own policy too.
            statements.append(
                {
                    "Sid": f"EvidenceWriter{index}",
                    "Effect": "Allow",
                    "Principal": {"AWS": root_arn(args.partition, writer.account_id)},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{writer.prefix}/*",
                    "Condition": {"ArnEquals": {"aws:PrincipalArn": writer.role_arn}},
                }
            )
        statements += _encryption_statements(objects, key_arn)
        return document(statements)

    def _create_lifecycle(self, name: str, bucket: aws.s3.Bucket, versioning: aws.s3.BucketVersioning) -> None:
        args = self._args
        # Current versions expire after the retention (a delete marker; a locked version stays until its lock ends),
        # noncurrent versions after their own period; incomplete uploads are cleaned up.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=args.bucket,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-reports",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.report_retention_days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_expiration_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket, versioning], retain_on_delete=True),
        )


def _check_reports_args(args: AuditReportsArgs) -> None:
    if not BUCKET_NAME.fullmatch(args.bucket) or ".." in args.bucket:
        raise ValueError(
            f"audit.reports_bucket: {args.bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, "
            "'.' or '-', starting and ending with a letter or digit)"
        )
    if args.object_lock is not None and args.object_lock[1] > args.report_retention_days:
        raise ValueError("audit.object_lock_days: longer than audit.report_retention_days")
    prefixes = [args.reports_prefix, *(w.prefix for w in args.writers)]
    for prefix in prefixes:
        if not prefix or prefix.startswith("/") or prefix.endswith("/") or "*" in prefix:
            raise ValueError(f"prefix {prefix!r}: give it without leading or trailing '/' and without '*'")
    for writer in args.writers:
        if writer.prefix == args.reports_prefix or writer.prefix.startswith(f"{args.reports_prefix}/"):
            raise ValueError(f"writer {writer.role_arn}: its prefix {writer.prefix!r} is AWS Backup's reports prefix")


# ---------------------------------------------------------------------------------------------
# Frameworks


@dataclass(frozen=True)
class ControlArgs:
    """One control of a framework: its name, input parameters and (optional) single-tag scope."""

    name: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    scope_tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class AuditFrameworkArgs:
    """A framework: a name (letters, digits, '_'), its controls and tags."""

    framework_name: str
    description: str
    controls: Sequence[ControlArgs]
    tags: dict[str, str] = field(default_factory=dict)


class AuditFramework(pulumi.ComponentResource):
    """An AWS Backup Audit Manager framework (deployed by AWS as AWS Config rules of AWS Backup's own)."""

    framework_arn: pulumi.Output[str]
    framework_name: str

    def __init__(self, name: str, args: AuditFrameworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check_framework(args)
        super().__init__("pgf:backup:AuditFramework", name, None, opts)
        framework = aws.backup.Framework(
            f"{name}-framework",
            name=args.framework_name,
            description=args.description,
            controls=[
                aws.backup.FrameworkControlArgs(
                    name=control.name,
                    input_parameters=[
                        aws.backup.FrameworkControlInputParameterArgs(name=key, value=value)
                        for key, value in control.parameters.items()
                    ]
                    or None,
                    scope=aws.backup.FrameworkControlScopeArgs(tags=dict(control.scope_tags))
                    if control.scope_tags
                    else None,
                )
                for control in args.controls
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.framework_name = args.framework_name
        self.framework_arn = framework.arn
        self.register_outputs({"framework_arn": self.framework_arn})


def _check_framework(args: AuditFrameworkArgs) -> None:
    where = f"framework {args.framework_name!r}"
    if not AUDIT_NAME.fullmatch(args.framework_name):
        raise ValueError(f"{where}: a framework name is a letter then letters, digits or '_' (at most 256)")
    if not args.controls or len(args.controls) > MAX_CONTROLS_PER_ACCOUNT_REGION:
        raise ValueError(f"{where}: 1 to {MAX_CONTROLS_PER_ACCOUNT_REGION} controls")
    for control in args.controls:
        if control.name not in CONTROL_NAMES:
            raise ValueError(f"{where}: unknown control {control.name!r}; known: {', '.join(CONTROL_NAMES)}")
        if control.scope_tags is not None and len(control.scope_tags) != 1:
            # "You specify a Tagged resources scope with a single tag key and optional value"
            # (controls-and-remediation.html).
            raise ValueError(f"{where}: {control.name} is scoped by exactly one tag")
        params = control.parameters
        for unit_key, value_key, limits in (
            ("requiredFrequencyUnit", "requiredFrequencyValue", MAX_FREQUENCY),
            ("recoveryPointAgeUnit", "recoveryPointAgeValue", MAX_AGE),
        ):
            if unit_key not in params:
                continue
            unit, value = params[unit_key], int(params[value_key])
            if unit not in limits or not 1 <= value <= limits[unit]:
                raise ValueError(
                    f"{where}: {control.name} {value_key} {value} {unit} is outside 1 to "
                    f"{' or '.join(f'{v} {u}' for u, v in limits.items())}"
                )
        for listed in ("principalArnList", "crossAccountList"):
            if listed in params and len(params[listed].split(",")) > MAX_LISTED:
                raise ValueError(f"{where}: {control.name} {listed} holds at most {MAX_LISTED} entries")


# ---------------------------------------------------------------------------------------------
# Report plans


@dataclass(frozen=True)
class ReportPlanArgs:
    """One report plan: its template, and which accounts, regions or frameworks it covers."""

    plan_name: str
    template: ReportTemplate
    description: str
    formats: Sequence[Literal["CSV", "JSON"]] = ("CSV",)
    framework_arns: Sequence[pulumi.Input[str]] = ()
    accounts: Sequence[str] = ()
    regions: Sequence[str] = ()


@dataclass(frozen=True)
class ReportPlansArgs:
    """The report plans of an account, all delivering to one bucket under one prefix."""

    bucket: str
    prefix: str
    plans: Sequence[ReportPlanArgs]
    tags: dict[str, str] = field(default_factory=dict)


class ReportPlans(pulumi.ComponentResource):
    """AWS Backup Audit Manager report plans delivering daily to the reports bucket."""

    plan_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ReportPlansArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check_report_plans(args)
        super().__init__("pgf:backup:ReportPlans", name, None, opts)
        self.plan_arns = {}
        for plan in args.plans:
            multi = len(plan.regions) > 1 or len(plan.accounts) > 1
            resource = aws.backup.ReportPlan(
                f"{name}-{plan.plan_name}",
                name=plan.plan_name,
                description=plan.description,
                report_delivery_channel=aws.backup.ReportPlanReportDeliveryChannelArgs(
                    s3_bucket_name=args.bucket,
                    s3_key_prefix=args.prefix,
                    formats=["CSV"] if multi else list(plan.formats),
                ),
                report_setting=aws.backup.ReportPlanReportSettingArgs(
                    report_template=plan.template,
                    framework_arns=list(plan.framework_arns) or None,
                    number_of_frameworks=len(plan.framework_arns) or None,
                    accounts=list(plan.accounts) or None,
                    regions=list(plan.regions) or None,
                ),
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.plan_arns[plan.plan_name] = resource.arn
        self.register_outputs({"plan_arns": self.plan_arns})


def _check_report_plans(args: ReportPlansArgs) -> None:
    names = [plan.plan_name for plan in args.plans]
    if len(set(names)) != len(names):
        raise ValueError(f"report plans: a name is used twice in {names}")
    for plan in args.plans:
        where = f"report plan {plan.plan_name!r}"
        if not AUDIT_NAME.fullmatch(plan.plan_name):
            raise ValueError(f"{where}: a report plan name is a letter then letters, digits or '_' (at most 256)")
        if not plan.formats or not set(plan.formats) <= {"CSV", "JSON"}:
            raise ValueError(f"{where}: formats are CSV and/or JSON")
        if plan.template in COMPLIANCE_TEMPLATES and not plan.framework_arns:
            raise ValueError(f"{where}: a {plan.template} covers at least one framework")
        if plan.template in JOB_TEMPLATES and plan.framework_arns:
            raise ValueError(f"{where}: a {plan.template} covers jobs, not frameworks")
