"""BackupAlarms: CloudWatch alarms on AWS Backup's metrics in one account and region, to the alert topic.

Failure counters per vault (failed, aborted and expired backup jobs, failed copy and restore jobs) and a
freshness alarm per tier (no completed backup, or no new recovery point, within the tier's RPO). The
EventBridge rules of `JobAlerts` alert each failed job; these alarms add thresholds and the one failure
no event reports: a backup that never happened.

The metrics are AWS Backup's (https://docs.aws.amazon.com/aws-backup/latest/devguide/cloudwatch.html):
namespace `AWS/Backup`, "AWS Backup emits updated metrics to CloudWatch every 5 minutes"; jobs and
recovery points have the example dimensions "Resource type, vault name" ("The vault name of copy jobs is
that of their destination vault"), and "Reporting criteria: There is a nonzero value". The page documents
no metric without a dimension, so every alarm names its vault (`BackupVaultName`), and since only nonzero
values are sent, no data means zero: not breaching for a failure counter, breaching for freshness.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from pgf_backup.limits import ALARM_MAX_EVALUATION_SECONDS, alarm_window_problem

NAMESPACE = "AWS/Backup"
VAULT_DIMENSION = "BackupVaultName"

# Alarm suffix -> (metric, what it counts), from the metrics table of cloudwatch.html above.
FAILURE_METRICS: dict[str, tuple[str, str]] = {
    # "The number of backup jobs with status of Failed."
    "backup-failed": ("NumberOfBackupJobsFailed", "failed backup jobs"),
    # "The number of user cancelled backup jobs."
    "backup-aborted": ("NumberOfBackupJobsAborted", "aborted (cancelled) backup jobs"),
    # "A backup job changes from status CREATED to EXPIRED if a backup cannot begin within the start window time."
    "backup-expired": ("NumberOfBackupJobsExpired", "expired backup jobs (never started in their window)"),
    # "[...] copy jobs that AWS Backup attempted but could not complete"; counted under the destination vault.
    "copy-failed": ("NumberOfCopyJobsFailed", "failed copy jobs"),
    # "The number of restore jobs that AWS Backup attempted but could not complete."
    "restore-failed": ("NumberOfRestoreJobsFailed", "failed restore jobs"),
}

# Freshness metrics: "The number of backup jobs that AWS Backup finished" (where the backups are made) and
# "The number of recovery points that AWS Backup created" (a vault that only receives copies: a copy job is
# counted in the account that runs it, the source's).
FRESHNESS_METRICS = {"backup": "NumberOfBackupJobsCompleted", "copy": "NumberOfRecoveryPointsCompleted"}

# Freshness is evaluated hour by hour: "no data point in any of the last N hours" is exactly "nothing within
# N hours", which one long period cannot say (a period is aligned to the clock, not to the last backup).
FRESHNESS_PERIOD_SECONDS = 3_600

_VAULT_NAME = re.compile(r"[A-Za-z0-9_-]{2,50}")


@dataclass(frozen=True)
class FreshnessArgs:
    """A vault that must receive something within `window_hours`."""

    tier: str
    vault_name: str
    # "backup": backup jobs completed into the vault; "copy": recovery points created in it (copies received).
    source: str
    window_hours: int


@dataclass(frozen=True)
class BackupAlarmsArgs:
    """One account and region's alarms on AWS Backup's metrics."""

    # The JobAlerts topic of the same account and region (its policies admit this account's alarms).
    topic_arn: pulumi.Input[str]
    # Vaults of this account and region whose failure counters are watched.
    vault_names: tuple[str, ...]
    freshness: tuple[FreshnessArgs, ...] = ()
    failure_threshold: int = 1
    failure_period_seconds: int = 3_600
    failure_evaluation_periods: int = 1
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse arguments CloudWatch would refuse, before anything is registered."""
        for name in (*self.vault_names, *(f.vault_name for f in self.freshness)):
            if not _VAULT_NAME.fullmatch(name):
                raise ValueError(f"backup alarms: {name!r} is not a backup vault name")
        if len(set(self.vault_names)) != len(self.vault_names):
            raise ValueError(f"backup alarms: vault names repeat: {list(self.vault_names)}")
        if self.failure_threshold < 1:
            raise ValueError(f"backup alarms: failure threshold {self.failure_threshold} must be at least 1")
        if self.failure_evaluation_periods < 1:
            raise ValueError("backup alarms: at least one evaluation period is needed")
        problem = alarm_window_problem(self.failure_period_seconds, self.failure_evaluation_periods)
        if problem:
            raise ValueError(f"backup alarms: failure counters: {problem}")
        for fresh in self.freshness:
            if fresh.source not in FRESHNESS_METRICS:
                raise ValueError(
                    f"backup alarms: freshness source {fresh.source!r} is not one of {list(FRESHNESS_METRICS)}"
                )
            longest = ALARM_MAX_EVALUATION_SECONDS // FRESHNESS_PERIOD_SECONDS
            if not 1 <= fresh.window_hours <= longest:
                raise ValueError(
                    f"backup alarms: the {fresh.tier} freshness window of {fresh.window_hours} hours must be 1 to "
                    f"{longest} (CloudWatch evaluates an alarm over at most 7 days)"
                )


class BackupAlarms(pulumi.ComponentResource):
    """CloudWatch alarms on AWS Backup's job failures and recovery point freshness, to the alert topic."""

    alarm_names: list[str]

    def __init__(self, name: str, args: BackupAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:BackupAlarms", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        self.alarm_names = [*self._create_failure_alarms(name, child), *self._create_freshness_alarms(name, child)]
        self.register_outputs({"alarm_names": self.alarm_names})

    def _create_failure_alarms(self, name: str, opts: pulumi.ResourceOptions) -> list[str]:
        args = self._args
        names: list[str] = []
        minutes = args.failure_period_seconds * args.failure_evaluation_periods // 60
        for vault in args.vault_names:
            for suffix, (metric, what) in FAILURE_METRICS.items():
                alarm_name = f"{vault}-{suffix}"
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{vault}-{suffix}",
                    name=alarm_name,
                    alarm_description=(
                        f"pgf-backup: at least {args.failure_threshold} {what} in vault {vault} within {minutes} "
                        "minutes (AWS/Backup metric; the job's details are in the AWS Backup console)"
                    ),
                    namespace=NAMESPACE,
                    metric_name=metric,
                    dimensions={VAULT_DIMENSION: vault},
                    statistic="Sum",
                    period=args.failure_period_seconds,
                    evaluation_periods=args.failure_evaluation_periods,
                    threshold=args.failure_threshold,
                    comparison_operator="GreaterThanOrEqualToThreshold",
                    # Only nonzero values are reported: no data is no failure.
                    treat_missing_data="notBreaching",
                    alarm_actions=[args.topic_arn],
                    tags=args.tags,
                    opts=opts,
                )
                names.append(alarm_name)
        return names

    def _create_freshness_alarms(self, name: str, opts: pulumi.ResourceOptions) -> list[str]:
        args = self._args
        names: list[str] = []
        for fresh in args.freshness:
            alarm_name = f"{fresh.vault_name}-no-recovery-point"
            received = "backup job completed" if fresh.source == "backup" else "recovery point created (copy received)"
            aws.cloudwatch.MetricAlarm(
                f"{name}-{fresh.vault_name}-freshness",
                name=alarm_name,
                alarm_description=(
                    f"pgf-backup: no {received} in vault {fresh.vault_name} ({fresh.tier}) for {fresh.window_hours} "
                    "hours: the tier's RPO is not met"
                ),
                namespace=NAMESPACE,
                metric_name=FRESHNESS_METRICS[fresh.source],
                dimensions={VAULT_DIMENSION: fresh.vault_name},
                statistic="Sum",
                period=FRESHNESS_PERIOD_SECONDS,
                evaluation_periods=fresh.window_hours,
                datapoints_to_alarm=fresh.window_hours,
                threshold=1,
                comparison_operator="LessThanThreshold",
                # No data is no backup: an empty hour breaches, so a vault silent for the whole window alarms.
                treat_missing_data="breaching",
                alarm_actions=[args.topic_arn],
                # Said again when backups resume.
                ok_actions=[args.topic_arn],
                tags=args.tags,
                opts=opts,
            )
            names.append(alarm_name)
        return names
