"""JobAlerts: failed, aborted and expired AWS Backup jobs of one account and region, alerted through
EventBridge rules to an SNS topic encrypted with a customer-managed key.

Vault notifications cannot do this: `BACKUP_JOB_FAILED`, `BACKUP_JOB_EXPIRED` and `RESTORE_JOB_FAILED`
are deprecated vault events, accepted and never sent ("Deprecated events do not return statuses or
notifications", https://docs.aws.amazon.com/aws-backup/latest/devguide/API_PutBackupVaultNotifications.html).
EventBridge receives every job state change instead ("AWS Backup sends events to Amazon EventBridge
when the state of a backup or copy job changes. [...] For example, you can receive an alarm when a
backup job fails.", https://docs.aws.amazon.com/aws-backup/latest/devguide/eventbridge.html).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.keys import customer_managed_key
from components.policies import KeyGuard, alarm_topic_statements, eventbridge_topic_key_statements, key_policy
from components.topics import encrypted_topic

# https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-backup.html: "AWS Backup sends the
# following events directly to EventBridge: [...] Backup Job State Change, Copy Job State Change,
# Restore Job State Change [...]"; "source: aws.backup".
SOURCE = "aws.backup"

# (detail-type, detail field, values that mean the job did not do its work), per job kind.
# https://docs.aws.amazon.com/aws-backup/latest/devguide/eventbridge.html: "Some events report
# status: COMPLETED whereas other events report state: COMPLETED. This is consistent with the AWS
# Backup API." The API names the field and its values: BackupJob.State (CREATED, PENDING, RUNNING,
# ABORTING, ABORTED, COMPLETED, FAILED, EXPIRED, PARTIAL), CopyJob.State (CREATED, RUNNING, COMPLETED,
# FAILED, PARTIAL), RestoreJob.Status (PENDING, RUNNING, COMPLETED, ABORTED, FAILED): botocore's
# backup/2018-11-15 service model, shapes BackupJobState, CopyJobState and RestoreJobStatus.
# EXPIRED is a backup that never began: the job is retried "until the job status changes to EXPIRED
# (which is expected to occur when the start window time is over)" (StartBackupJob StartWindowMinutes).
# PARTIAL is left out: it concerns composite recovery points ("a composite recovery point has one or
# more nested recovery points that were not in the backup", RecoveryPointStatus), which this project
# does not create.
JOB_FAILURES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "backup": ("Backup Job State Change", "state", ("FAILED", "ABORTED", "EXPIRED")),
    # A copy job belongs to the account and region of the vault it copies *from* (StartCopyJob names the
    # source vault by name, "unique to the account used to create them and the [...] Region", and the
    # destination by ARN): a failed copy to the backup account or to the copy region is reported where
    # the recovery point was made, the workload account's primary region, never in the destination.
    "copy": ("Copy Job State Change", "state", ("FAILED",)),
    "restore": ("Restore Job State Change", "status", ("FAILED", "ABORTED")),
}

# The prefix names a topic, rules and a key alias. Topic names are "only uppercase and lowercase ASCII
# letters, numbers, underscores, and hyphens" (SNS CreateTopic), alias names alphanumeric, '/', '_' and
# '-' (KMS CreateAlias), and rule names 1-64 of [.-_A-Za-z0-9] (EventBridge RuleName): botocore's models.
_NAME_PREFIX = re.compile(r"[A-Za-z0-9_-]+")
_MAX_PREFIX = 64 - max(len(f"-{kind}-job-failed") for kind in JOB_FAILURES)


def failure_event_patterns() -> dict[str, dict[str, Any]]:
    """The EventBridge event pattern of each job kind's failures (plain data, for rules and checks)."""
    return {
        kind: {"source": [SOURCE], "detail-type": [detail_type], "detail": {field_name: list(values)}}
        for kind, (detail_type, field_name, values) in JOB_FAILURES.items()
    }


@dataclass(frozen=True)
class JobAlertsArgs:
    """One account and region's alerting on AWS Backup job failures."""

    account_id: str
    region: str
    partition: str
    # Prefix of the topic, rule and alias names, unique per account and region: f"{application}-{tier or 'backup'}".
    name_prefix: str
    # Production hardening of the key (deletion and policy changes restricted), and protect/retain.
    key_guard: KeyGuard | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse arguments AWS would refuse, before anything is registered."""
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise ValueError(f"job alerts: {self.account_id!r} is not an AWS account id")
        if not _NAME_PREFIX.fullmatch(self.name_prefix) or len(self.name_prefix) > _MAX_PREFIX:
            raise ValueError(
                f"job alerts: name prefix {self.name_prefix!r} must be 1 to {_MAX_PREFIX} letters, digits, '-' "
                "or '_' (it starts SNS topic, KMS alias and EventBridge rule names, the last at most 64 long)"
            )


class JobAlerts(pulumi.ComponentResource):
    """EventBridge rules on failed backup, copy and restore jobs, publishing to an encrypted SNS topic."""

    topic_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    rule_names: list[str]

    def __init__(self, name: str, args: JobAlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:JobAlerts", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        key = self._create_key(name, child)
        topic = encrypted_topic(
            f"{name}-topic",
            self.topic_name,
            key.arn,
            ("EventBridgePublishes", "events.amazonaws.com"),
            (args.partition, args.region, args.account_id),
            args.tags,
            child,
            # CloudWatch alarms of this account and region (the export functions', for one) alert here too.
            also=self._alarm_statements()[:1],
        )
        self.rule_names = self._create_rules(name, topic, child)

        self.topic_arn = topic.arn
        self.key_arn = key.arn
        self.register_outputs({"topic_arn": topic.arn, "key_arn": key.arn, "rule_names": self.rule_names})

    @property
    def topic_name(self) -> str:
        """The alert topic's name."""
        return f"{self._args.name_prefix}-backup-job-alerts"

    def _alarm_statements(self) -> list[dict[str, Any]]:
        """The topic's and the key's statement admitting this account and region's CloudWatch alarms."""
        args = self._args
        topic_arn = f"arn:{args.partition}:sns:{args.region}:{args.account_id}:{self.topic_name}"
        return alarm_topic_statements(args.partition, args.account_id, args.region, topic_arn)

    def _key_policy(self) -> str:
        args = self._args
        statements = eventbridge_topic_key_statements(args.partition, args.account_id, args.region)
        return key_policy(args.partition, args.account_id, [*statements, *self._alarm_statements()[1:]], args.key_guard)

    def _create_key(self, name: str, opts: pulumi.ResourceOptions) -> aws.kms.Key:
        args = self._args
        guarded = args.key_guard is not None
        return customer_managed_key(
            name,
            description=f"pgf-backup job alerts ({args.name_prefix}, {args.region})",
            policy=self._key_policy(),
            tags=args.tags,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=guarded, retain_on_delete=guarded)),
            alias=f"alias/pgf-backup/{args.name_prefix}-job-alerts",
        )

    def _create_rules(self, name: str, topic: aws.sns.Topic, opts: pulumi.ResourceOptions) -> list[str]:
        args = self._args
        names: list[str] = []
        for kind, pattern in failure_event_patterns().items():
            detail_type, field_name, values = JOB_FAILURES[kind]
            rule_name = f"{args.name_prefix}-{kind}-job-failed"
            rule = aws.cloudwatch.EventRule(
                f"{name}-{kind}-failed",
                name=rule_name,
                description=f"pgf-backup: AWS Backup {detail_type} with {field_name} {' or '.join(values)}",
                event_pattern=json.dumps(pattern),
                tags=args.tags,
                opts=opts,
            )
            # No role_arn: SNS targets are authorized by the topic policy, and "When you specify a RoleArn
            # for these target types, event delivery may fail, particularly for [...] Amazon SNS targets
            # with AWS KMS encryption enabled." (eb-use-resource-based.html, above)
            aws.cloudwatch.EventTarget(f"{name}-{kind}-failed-target", rule=rule.name, arn=topic.arn, opts=opts)
            names.append(rule_name)
        return names
