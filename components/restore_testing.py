"""AWS Backup restore testing: a plan with a selection per resource type, and the function that validates each test.

`RestoreTests` is one restore testing plan (CreateRestoreTestingPlan) and its selections
(CreateRestoreTestingSelection), https://docs.aws.amazon.com/aws-backup/latest/devguide/restore-testing.html. The
plan restores the latest recovery point within its window (`LATEST_WITHIN_WINDOW`) from the listed vaults only
(`IncludeVaults`); each selection takes every protected resource of its type (`ProtectedResourceArns: ["*"]`) and the
metadata overrides that keep the restored copy isolated. AWS Backup starts the jobs and deletes the restored
resources with its service-linked role (AWSServiceRoleForBackupRestoreTesting, whose policy passes the selection's
role to backup.amazonaws.com:
https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSServiceRolePolicyForBackupRestoreTesting.html);
the restore itself runs with the selection's `IamRoleArn`, the account's AWS Backup service role (AWS's managed
restore policies, S3's included: components/service_role.py).

`RestoreValidator` is the validation function (pgf_backup/restore_testing/validator.py), run by an EventBridge rule on
the `Restore Job State Change` events of these plans' completed jobs (AWS's pattern, "Restore testing validation":
https://docs.aws.amazon.com/aws-backup/latest/devguide/restore-testing-validation.html), built by the same
`published_function` as the scheduled exports (components/scheduled_function.py): log group with retention, a
published version behind the alias `live`, an encrypted dead-letter queue, alarms on errors and dead letters, and a
least-privilege role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.policies import Statement
from components.scheduled_function import FunctionSpec, published_function

VALIDATOR_HANDLER = "pgf_backup.restore_testing.validator.handler"
# Restored resources are named with this prefix: S3's `destinationBucketName`, DynamoDB's `targetTableName`, RDS's
# `dbInstanceIdentifier` and `dbClusterIdentifier` ("Restore testing inferred metadata",
# https://docs.aws.amazon.com/aws-backup/latest/devguide/restore-testing-inferred-metadata.html).
RESTORED_PREFIX = "awsbackup-restore-test"
# The event AWS Backup sends for a restore job (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-backup.html).
RESTORE_JOB_EVENT = "Restore Job State Change"


@dataclass(frozen=True)
class SelectionArgs:
    """One resource type of a plan: its name, the restore role, the restore metadata overrides."""

    name: str
    resource_type: str
    iam_role_arn: pulumi.Input[str]
    validation_window_hours: int
    overrides: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreTestsArgs:
    """A restore testing plan: when it runs, which recovery points it takes, what it restores."""

    plan_name: str
    schedule: str
    timezone: str
    start_window_hours: int
    selection_window_days: int
    recovery_point_types: Sequence[str]
    include_vault_arns: Sequence[pulumi.Input[str]]
    selections: Sequence[SelectionArgs]
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse what AWS would refuse (botocore's backup model and its documentation), before registering."""
        for name in (self.plan_name, *(s.name for s in self.selections)):
            # "The name consists of only alphanumeric characters and underscores. Maximum length is 50."
            if not (0 < len(name) <= 50 and name.replace("_", "").isalnum() and name.isascii()):
                raise ValueError(f"restore testing name {name!r}: 1 to 50 letters, digits or underscores")
        if not 1 <= self.start_window_hours <= 168:
            raise ValueError(f"start_window_hours {self.start_window_hours}: 1 to 168")
        if not 1 <= self.selection_window_days <= 365:
            raise ValueError(f"selection_window_days {self.selection_window_days}: 1 to 365")
        if not self.include_vault_arns:
            raise ValueError("include_vault_arns: at least one vault (IncludeVaults is required)")
        if not self.selections:
            raise ValueError("selections: a plan without a selection restores nothing")
        types = [s.resource_type for s in self.selections]
        if len(set(types)) != len(types):
            raise ValueError(f"selections: one per resource type ({types})")
        for selection in self.selections:
            if not 0 <= selection.validation_window_hours <= 168:
                raise ValueError(f"{selection.name}: validation_window_hours 0 to 168")


class RestoreTests(pulumi.ComponentResource):
    """A restore testing plan and one selection per resource type."""

    plan_arn: pulumi.Output[str]
    plan_name: str
    selection_names: list[str]

    def __init__(self, name: str, args: RestoreTestsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:RestoreTests", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = aws.backup.RestoreTestingPlan(
            f"{name}-plan",
            name=args.plan_name,
            schedule_expression=args.schedule,
            schedule_expression_timezone=args.timezone,
            start_window_hours=args.start_window_hours,
            recovery_point_selection=aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=list(args.include_vault_arns),
                recovery_point_types=list(args.recovery_point_types),
                selection_window_days=args.selection_window_days,
            ),
            tags=args.tags,
            opts=child,
        )
        for selection in args.selections:
            aws.backup.RestoreTestingSelection(
                f"{name}-{selection.resource_type.lower()}",
                name=selection.name,
                restore_testing_plan_name=plan.name,
                protected_resource_type=selection.resource_type,
                # Every protected resource of the type whose recovery points are in the included vaults.
                protected_resource_arns=["*"],
                iam_role_arn=selection.iam_role_arn,
                restore_metadata_overrides=dict(selection.overrides) or None,
                validation_window_hours=selection.validation_window_hours,
                opts=child,
            )
        self.plan_arn = plan.arn
        self.plan_name = args.plan_name
        self.selection_names = [s.name for s in args.selections]
        self.register_outputs({"plan_arn": plan.arn})


@dataclass(frozen=True)
class RestoreValidatorArgs:
    """The validation function of an account: its code, the plans it validates, where its evidence goes."""

    function_name: str
    role_name: str
    account_id: str
    region: str
    partition: str
    code_path: str
    code_sha256: str
    plan_arns: Sequence[pulumi.Input[str]]
    # JSON text {plan ARN: tier} (the function's PLAN_TIERS), known once the plans exist.
    plan_tiers: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    log_retention_days: int
    metric_namespace: str
    timeout_seconds: int = 900
    memory_mb: int = 512
    s3_sample_size: int = 20
    s3_checksum_max_bytes: int = 64 * 1024**2
    s3_min_objects: int = 1
    # The reports bucket, its key and this account's evidence prefix there (None: evidence is only logged).
    evidence_bucket: pulumi.Input[str] | None = None
    evidence_key_arn: pulumi.Input[str] | None = None
    evidence_prefix: str = ""
    # Buckets the function may list to compare a restored bucket with its source (this account's own).
    source_bucket_arns: Sequence[str] = ()
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse what AWS would refuse, before anything is registered."""
        if not (0 < len(self.function_name) <= 54 and self.function_name.replace("-", "").replace("_", "").isalnum()):
            raise ValueError(f"restore validator {self.function_name!r}: 1 to 54 letters, digits, '-' or '_'")
        if not self.plan_arns:
            raise ValueError("restore validator: no restore testing plan to validate")
        if (self.evidence_bucket is None) != (not self.evidence_prefix):
            raise ValueError("restore validator: evidence_bucket and evidence_prefix go together")


class RestoreValidator(pulumi.ComponentResource):
    """The validation function of restore tests, invoked by EventBridge on each completed restore testing job."""

    function_name: str
    function_arn: pulumi.Output[str]
    alias_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    rule_arn: pulumi.Output[str]
    queue_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RestoreValidatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:RestoreValidator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        arn = f"arn:{args.partition}"
        self.function_name = args.function_name
        rule_name = f"{args.function_name}-completed"
        rule_arn = f"{arn}:events:{args.region}:{args.account_id}:rule/{rule_name}"

        environment: dict[str, pulumi.Input[str]] = {
            "PLAN_TIERS": args.plan_tiers,
            "S3_SAMPLE_SIZE": str(args.s3_sample_size),
            "S3_CHECKSUM_MAX_BYTES": str(args.s3_checksum_max_bytes),
            "S3_MIN_OBJECTS": str(args.s3_min_objects),
            "COMPARE_SOURCE": "true" if args.source_bucket_arns else "false",
        }
        if args.evidence_bucket is not None:
            environment["EVIDENCE_BUCKET"] = args.evidence_bucket
        if args.evidence_key_arn is not None:
            environment["EVIDENCE_KMS_KEY_ARN"] = args.evidence_key_arn
        built = published_function(
            name,
            FunctionSpec(
                function_name=args.function_name,
                role_name=args.role_name,
                account_id=args.account_id,
                region=args.region,
                partition=args.partition,
                code_path=args.code_path,
                code_sha256=args.code_sha256,
                handler=VALIDATOR_HANDLER,
                alarm_topic_arn=args.alarm_topic_arn,
                log_retention_days=args.log_retention_days,
                timeout_seconds=args.timeout_seconds,
                memory_mb=args.memory_mb,
                environment=environment,
                statements=validator_statements(args),
                tags=args.tags,
                role_description="pgf-backup: validates AWS Backup restore tests and writes their evidence",
                function_description="pgf-backup: restore test validation",
                alias_description="the published version the rule invokes",
                alarm_description="restore test validation",
            ),
            self,
        )
        queue, function, alias, role = built.queue, built.function, built.alias, built.role
        # EventBridge sends an event it could not deliver to the target's dead-letter queue, which must let it:
        # sqs:SendMessage for events.amazonaws.com with aws:SourceArn the rule
        # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=queue.url,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "EventBridgeDeadLetters",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": built.queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                        }
                    ],
                }
            ),
            opts=child,
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=rule_name,
            description="pgf-backup: a restore testing job of this account's plans completed",
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.backup"],
                    "detail-type": [RESTORE_JOB_EVENT],
                    "detail": {"status": ["COMPLETED"], "restoreTestingPlanArn": list(args.plan_arns)},
                }
            ),
            tags=args.tags,
            opts=child,
        )
        # EventBridge invokes Lambda through the function's resource-based policy, for this rule only
        # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions).
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            qualifier=alias.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=alias.arn,
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=queue.arn),
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission, queue_policy]),
        )
        self.function_arn = function.arn
        self.alias_arn = alias.arn
        self.role_arn = role.arn
        self.rule_arn = rule.arn
        self.queue_arn = queue.arn
        self.register_outputs({"function_arn": function.arn, "alias_arn": alias.arn, "rule_arn": rule.arn})


def validator_statements(args: RestoreValidatorArgs) -> list[Statement]:
    """What the validation function may do besides its logs and dead letters (read-only on restored resources)."""
    p, region, account = args.partition, args.region, args.account_id
    rds = f"arn:{p}:rds:{region}:{account}"
    statements: list[Statement] = [
        {
            # The restore job's times, recovery point and inferred metadata, and the verdict. No AWS page we could
            # read scopes these actions to a resource type: "*" (the job ids are only known at run time).
            "Sid": "RestoreJobs",
            "Effect": "Allow",
            "Action": [
                "backup:DescribeRestoreJob",
                "backup:GetRestoreJobMetadata",
                "backup:PutRestoreValidationResult",
            ],
            "Resource": "*",
        },
        {
            # PutMetricData has no resource; its namespace is the condition key cloudwatch:namespace
            # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
            "Sid": "PublishRestoreMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": args.metric_namespace}},
        },
        {
            "Sid": "ListRestoredBuckets",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": [f"arn:{p}:s3:::{RESTORED_PREFIX}-*", *args.source_bucket_arns],
        },
        {
            "Sid": "ReadRestoredObjects",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:{p}:s3:::{RESTORED_PREFIX}-*/*",
        },
        {
            "Sid": "DescribeRestoredDatabases",
            "Effect": "Allow",
            "Action": ["rds:DescribeDBInstances", "rds:DescribeDBClusters"],
            "Resource": [f"{rds}:db:{RESTORED_PREFIX}-*", f"{rds}:cluster:{RESTORED_PREFIX}-*"],
        },
        {
            # The recovery point of an RDS or Aurora restore is a snapshot of this account (its engine).
            "Sid": "DescribeRecoveryPointSnapshots",
            "Effect": "Allow",
            "Action": ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"],
            "Resource": [f"{rds}:snapshot:*", f"{rds}:cluster-snapshot:*"],
        },
        {
            "Sid": "DescribeRestoredTables",
            "Effect": "Allow",
            "Action": "dynamodb:DescribeTable",
            "Resource": f"arn:{p}:dynamodb:{region}:{account}:table/{RESTORED_PREFIX}-*",
        },
        {
            # EC2's Describe actions take no resource-level permissions ("*": the Service Authorization Reference
            # lists no resource type for ec2:DescribeVolumes).
            "Sid": "DescribeRestoredVolumes",
            "Effect": "Allow",
            "Action": "ec2:DescribeVolumes",
            "Resource": "*",
        },
        {
            # A restored file system gets a new id, not a name: this account and region's file systems.
            "Sid": "DescribeRestoredFileSystems",
            "Effect": "Allow",
            "Action": "elasticfilesystem:DescribeFileSystems",
            "Resource": f"arn:{p}:elasticfilesystem:{region}:{account}:file-system/*",
        },
    ]
    if args.evidence_bucket is not None:
        statements.append(
            {
                "Sid": "WriteEvidence",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(f"arn:{p}:s3:::", args.evidence_bucket, f"/{args.evidence_prefix}/*"),
            }
        )
    if args.evidence_key_arn is not None:
        # A single-part upload with SSE-KMS needs a data key (the evidence is small: never multipart).
        statements.append(
            {
                "Sid": "EncryptEvidence",
                "Effect": "Allow",
                "Action": "kms:GenerateDataKey",
                "Resource": args.evidence_key_arn,
            }
        )
    return statements
