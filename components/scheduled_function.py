"""ScheduledFunction: a Python Lambda run by EventBridge Scheduler, hardened the same way for every export.

What it holds, each for a reason AWS documents:
- a log group with a retention, created before the function (Lambda would otherwise create
  `/aws/lambda/<name>` itself, with logs kept forever);
- a least-privilege role: its own log group, its dead-letter queue, and the statements the caller passes;
- the function, `publish`ed, and an alias `live` on its latest version, which the schedule invokes (an
  immutable version, not `$LATEST`);
- an SQS dead-letter queue, encrypted (SSE-SQS), used twice: by the schedule when it cannot invoke the
  function, and by the function when an asynchronous invocation still fails after Lambda's retries
  ("EventBridge Scheduler invokes your Lambda function asynchronously",
  https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html);
- the schedule's execution role: `lambda:InvokeFunction` on the alias and `sqs:SendMessage` on the queue
  (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html), trusted by
  `scheduler.amazonaws.com` for this account's default schedule group only
  (https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html);
- alarms on the function's errors and on messages in the dead-letter queue, to the alert topic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.policies import Statement, document

RUNTIME = "python3.12"
ALIAS = "live"
# Scheduler's default group: schedules created without a group name belong to it.
SCHEDULE_GROUP = "default"
# SQS keeps a message at most 14 days (botocore's sqs model, MessageRetentionPeriod: 1,209,600 seconds).
DLQ_RETENTION_SECONDS = 1_209_600
# A Lambda function name: "1 to 64 characters" of letters, digits, '-' and '_' (botocore's lambda model).
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class ScheduledFunctionArgs:
    """A function, its code and permissions, and when it runs."""

    function_name: str
    description: str
    account_id: str
    region: str
    partition: str
    # The deployment package (a zip on disk, built deterministically) and its base64 SHA-256.
    code_path: str
    code_sha256: str
    handler: str
    schedule: str
    timezone: str
    alarm_topic_arn: pulumi.Input[str]
    log_retention_days: int
    timeout_seconds: int = 900
    memory_mb: int = 512
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The function's own permissions, besides its logs and dead-letter queue.
    statements: Sequence[Statement] = ()
    # The schedule passes this JSON text to the function as its event.
    event: str = "{}"
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse what AWS would refuse, before anything is registered."""
        if not _FUNCTION_NAME.fullmatch(self.function_name):
            raise ValueError(
                f"scheduled function {self.function_name!r}: 1 to 64 letters, digits, '-' or '_' (Lambda's limit)"
            )
        # The `-dlq` suffix and role names stay within SQS's 80 and IAM's 64 characters.
        if len(f"{self.function_name}-scheduler") > 64:
            raise ValueError(f"scheduled function {self.function_name!r}: at most 54 characters (role names)")


@dataclass(frozen=True)
class FunctionSpec:
    """What every function of the project is made of, whatever invokes it (a schedule, an EventBridge rule)."""

    function_name: str
    role_name: str
    account_id: str
    region: str
    partition: str
    code_path: str
    code_sha256: str
    handler: str
    alarm_topic_arn: pulumi.Input[str]
    log_retention_days: int
    timeout_seconds: int
    memory_mb: int
    environment: Mapping[str, pulumi.Input[str]]
    # The function's own permissions, besides its logs and dead-letter queue.
    statements: Sequence[Statement]
    tags: dict[str, str]
    role_description: str
    function_description: str
    alias_description: str
    # What the alarms say the function does ("pgf-backup: <it> failed", "... could not run").
    alarm_description: str


@dataclass(frozen=True)
class PublishedFunction:
    """The resources `published_function` made, and the ARNs known before they exist."""

    log_group_name: str
    queue: aws.sqs.Queue
    queue_arn: str
    role: aws.iam.Role
    function: aws.lambda_.Function
    alias: aws.lambda_.Alias
    alias_arn: str


def published_function(name: str, spec: FunctionSpec, parent: pulumi.Resource) -> PublishedFunction:
    """A function's log group (with retention), encrypted dead-letter queue, least-privilege role, published version
    behind the alias `live`, and alarms on its errors and dead letters: the children `<name>-*` of `parent`."""
    child = pulumi.ResourceOptions(parent=parent)
    arn = f"arn:{spec.partition}"
    log_group_name = f"/aws/lambda/{spec.function_name}"
    log_group_arn = f"{arn}:logs:{spec.region}:{spec.account_id}:log-group:{log_group_name}"
    queue_name = f"{spec.function_name}-dlq"
    queue_arn = f"{arn}:sqs:{spec.region}:{spec.account_id}:{queue_name}"
    function_arn = f"{arn}:lambda:{spec.region}:{spec.account_id}:function:{spec.function_name}"

    logs = aws.cloudwatch.LogGroup(
        f"{name}-logs", name=log_group_name, retention_in_days=spec.log_retention_days, tags=spec.tags, opts=child
    )
    queue = aws.sqs.Queue(
        f"{name}-dlq",
        name=queue_name,
        sqs_managed_sse_enabled=True,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        tags=spec.tags,
        opts=child,
    )
    role = aws.iam.Role(
        f"{name}-role",
        name=spec.role_name,
        description=spec.role_description,
        assume_role_policy=service_trust("lambda.amazonaws.com"),
        tags=spec.tags,
        opts=child,
    )
    own: list[Statement] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:log-stream:*",
        },
        {
            # A failed asynchronous invocation goes to the dead-letter queue with the function's role.
            "Sid": "DeadLetters",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
        },
        *spec.statements,
    ]
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        name="least-privilege",
        # ARNs in the caller's statements (a bucket key) are known once their resources exist.
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": own}),
        opts=child,
    )
    function = aws.lambda_.Function(
        f"{name}-function",
        name=spec.function_name,
        description=spec.function_description,
        role=role.arn,
        runtime=RUNTIME,
        handler=spec.handler,
        code=pulumi.FileArchive(spec.code_path),
        source_code_hash=spec.code_sha256,
        publish=True,
        timeout=spec.timeout_seconds,
        memory_size=spec.memory_mb,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(spec.environment)),
        dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=queue.arn),
        tags=spec.tags,
        # The log group (with its retention) exists first, and the role can write to the queue.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[logs, policy]),
    )
    alias = aws.lambda_.Alias(
        f"{name}-alias",
        name=ALIAS,
        function_name=function.name,
        function_version=function.version,
        description=spec.alias_description,
        opts=child,
    )
    function_alarms(
        name, spec.function_name, spec.alarm_description, spec.alarm_topic_arn, spec.tags, child, log_group_name
    )
    return PublishedFunction(log_group_name, queue, queue_arn, role, function, alias, f"{function_arn}:{ALIAS}")


class ScheduledFunction(pulumi.ComponentResource):
    """A published Lambda version behind an alias, invoked by a schedule, with its logs, DLQ and alarms."""

    function_name: str
    function_arn: pulumi.Output[str]
    alias_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    log_group_name: str

    def __init__(self, name: str, args: ScheduledFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:ScheduledFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.function_name = args.function_name
        built = published_function(
            name,
            FunctionSpec(
                function_name=args.function_name,
                role_name=f"{args.function_name}-function",
                account_id=args.account_id,
                region=args.region,
                partition=args.partition,
                code_path=args.code_path,
                code_sha256=args.code_sha256,
                handler=args.handler,
                alarm_topic_arn=args.alarm_topic_arn,
                log_retention_days=args.log_retention_days,
                timeout_seconds=args.timeout_seconds,
                memory_mb=args.memory_mb,
                environment=args.environment,
                statements=args.statements,
                tags=args.tags,
                role_description=f"pgf-backup: {args.description}",
                function_description=args.description,
                alias_description="the published version the schedule invokes",
                alarm_description=args.description,
            ),
            self,
        )
        self.log_group_name = built.log_group_name
        queue, alias = built.queue, built.alias
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role",
            name=f"{args.function_name}-scheduler",
            description=f"pgf-backup: EventBridge Scheduler invokes {args.function_name}",
            assume_role_policy=service_trust(
                "scheduler.amazonaws.com",
                {
                    "StringEquals": {"aws:SourceAccount": args.account_id},
                    "ArnEquals": {
                        "aws:SourceArn": f"arn:{args.partition}:scheduler:{args.region}:{args.account_id}:"
                        f"schedule-group/{SCHEDULE_GROUP}"
                    },
                },
            ),
            tags=args.tags,
            opts=child,
        )
        scheduler_policy = aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=scheduler_role.id,
            name="invoke",
            policy=document(
                [
                    {
                        "Sid": "InvokeAlias",
                        "Effect": "Allow",
                        "Action": "lambda:InvokeFunction",
                        "Resource": built.alias_arn,
                    },
                    {"Sid": "DeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": built.queue_arn},
                ]
            ),
            opts=child,
        )
        aws.scheduler.Schedule(
            f"{name}-schedule",
            name=args.function_name,
            group_name=SCHEDULE_GROUP,
            description=f"pgf-backup: {args.description}",
            schedule_expression=args.schedule,
            schedule_expression_timezone=args.timezone,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=alias.arn,
                role_arn=scheduler_role.arn,
                input=args.event,
                dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=queue.arn),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_policy]),
        )
        self.function_arn = built.function.arn
        self.alias_arn = alias.arn
        self.role_arn = built.role.arn
        self.queue_arn = queue.arn
        self.register_outputs(
            {
                "function_arn": self.function_arn,
                "alias_arn": alias.arn,
                "role_arn": self.role_arn,
                "queue_arn": queue.arn,
            }
        )


def function_alarms(  # noqa: PLR0917 - the component's own fields, in its order
    name: str,
    function_name: str,
    description: str,
    topic_arn: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    log_group_name: str,
) -> list[aws.cloudwatch.MetricAlarm]:
    """Alarms on a function's errors (its alias `live`) and on messages in its dead-letter queue `<function>-dlq`."""
    alarms = (
        # Lambda sends Errors only when the function runs: no data is not an error (notBreaching). The
        # `Resource` dimension (with FunctionName) holds "metrics for a version or alias of a function"
        # (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics.html): here, the alias invoked.
        (
            "errors",
            f"failed (see {log_group_name})",
            ("AWS/Lambda", "Errors", "Sum"),
            {"FunctionName": function_name, "Resource": f"{function_name}:{ALIAS}"},
        ),
        # A message in the dead-letter queue is a run that never happened or never finished. SQS publishes its
        # metrics by `QueueName`, its one dimension
        # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html).
        (
            "dead-letters",
            "could not run (dead-letter queue not empty)",
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
            {"QueueName": f"{function_name}-dlq"},
        ),
    )
    return [
        aws.cloudwatch.MetricAlarm(
            f"{name}-{suffix}",
            name=f"{function_name}-{suffix}",
            alarm_description=f"pgf-backup: {description} {what}",
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic=statistic,
            period=300,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
            tags=dict(tags),
            opts=opts,
        )
        for suffix, what, (namespace, metric, statistic), dimensions in alarms
    ]


def service_trust(service: str, condition: Mapping[str, object] | None = None) -> str:
    """A role trust policy: `service` may assume the role (under `condition`, when given)."""
    statement: Statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = dict(condition)
    return document([statement])
