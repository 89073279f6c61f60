"""CloudWatch dashboards of AWS Backup's jobs and coverage, and the CloudWatch cross-account observability pieces
(OAM sink in the backup account, links in the workload accounts) the organization dashboard reads through.

Dashboard bodies follow "Dashboard Body Structure and Syntax"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html):
`start` (`-P<n>D`), `periodOverride`, `widgets` (0-500; `type` metric|text, `x` 0-23, `y`, `width` 1-24,
`height`), metric widgets with `region` (required), `title`, `view`, `stat`, `period` (a multiple of 60) and
`metrics` (each a metric `[Namespace, MetricName, DimName, DimValue, {rendering properties}]`, whose properties
may hold `accountId`, "the AWS account ID where this metric comes from", or an expression
`[{"expression": ..., "label": ..., "id": ...}]`, ids starting with a lowercase letter), text widgets with
`markdown`.

The metrics:
- AWS Backup's (https://docs.aws.amazon.com/aws-backup/latest/devguide/cloudwatch.html): namespace `AWS/Backup`,
  dimensions "Resource type, vault name", emitted every 5 minutes and only when nonzero. Read with search
  expressions over the `{AWS/Backup,BackupVaultName}` schema (one line per vault, the alarms' dimension, see
  components/backup_alarms.py): "SEARCH(' {Namespace, DimensionName...} SearchTerm', 'Statistic', period)"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html). A search finds
  "only metrics that have reported data within the past two weeks"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-search-expressions.html).
- Coverage: AWS Config publishes no compliance metric to CloudWatch. The coverage component's EventBridge rule
  matches each "Config Rules Compliance Change" to NON_COMPLIANT, and EventBridge publishes `TriggeredRules`
  ("The number of rules that have run and matched with any event", dimension `RuleName` for the default bus,
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html): resources found unprotected.
- Restore tests: the restore validation function's duration and recovery point age (`RestoreMetrics`, dimensions
  `Tier`, `ResourceType`; names in pgf_backup/constants.py), published where it runs.

Cross-account: in a monitoring account of CloudWatch cross-account observability, a search term
`:aws.AccountId = <id>` restricts a search to one source account ("Using an account ID in SearchTerm only works
in accounts that are set up as monitoring accounts", search-expression-syntax.html above).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

BACKUP_NAMESPACE = "AWS/Backup"
EVENTS_NAMESPACE = "AWS/Events"
VAULT_SCHEMA = "{AWS/Backup,BackupVaultName}"
# The AWS namespaces the dashboards read (with the restore tests' own): what a workload account's link shares.
AWS_NAMESPACES = (BACKUP_NAMESPACE, EVENTS_NAMESPACE)
METRIC_RESOURCE_TYPE = "AWS::CloudWatch::Metric"

# Widget -> (metric, label) drawn as Sum per period; names and meanings from cloudwatch.html above.
JOB_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "backup": (
        ("NumberOfBackupJobsCreated", "created"),
        ("NumberOfBackupJobsCompleted", "completed"),
        ("NumberOfBackupJobsFailed", "failed"),
        ("NumberOfBackupJobsAborted", "aborted"),
        ("NumberOfBackupJobsExpired", "expired (never started)"),
    ),
    # "The vault name of copy jobs is that of their destination vault."
    "copy": (
        ("NumberOfCopyJobsCreated", "created"),
        ("NumberOfCopyJobsCompleted", "completed"),
        ("NumberOfCopyJobsFailed", "failed"),
    ),
    "restore": (
        ("NumberOfRestoreJobsCompleted", "completed"),
        ("NumberOfRestoreJobsFailed", "failed"),
    ),
    "recovery_points": (
        ("NumberOfRecoveryPointsCompleted", "created"),
        ("NumberOfRecoveryPointsPartial", "partial"),
        ("NumberOfRecoveryPointsExpired", "expired, not deleted"),
    ),
}
JOB_TITLES = {
    "backup": "Backup jobs by state",
    "copy": "Copy jobs (under the destination vault)",
    "restore": "Restore jobs",
    "recovery_points": "Recovery points",
}
# Column layout of a row: (x, width) of each widget, 24 columns in all.
_COLUMNS = {
    "backup": (0, 5),
    "copy": (5, 4),
    "restore": (9, 4),
    "recovery_points": (13, 4),
    "coverage": (17, 4),
    "restore_tests": (21, 3),
}
ROW_HEIGHT = 6
_DASHBOARD_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")  # PutDashboard: "alphanumerics, dash (-), and underscore (_)"
_ACCOUNT = re.compile(r"\d{12}")
_RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")  # EventBridge PutRule Name (botocore)
_SINK_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,255}")  # OAM CreateSink Name (botocore)
_NAMESPACE = re.compile(r"[A-Za-z0-9./#:_-]{1,255}")


@dataclass(frozen=True)
class RestoreMetrics:
    """The restore validation function's metrics (dimensions `Tier`, `ResourceType`): pgf_backup/constants.py."""

    namespace: str
    duration: str
    recovery_point_age: str

    @property
    def schema(self) -> str:
        """The search schema of these metrics."""
        return f"{{{self.namespace},Tier,ResourceType}}"


@dataclass(frozen=True)
class CoverageSource:
    """The coverage rules of an account and region, as the dashboards read them."""

    # The EventBridge rule matching NON_COMPLIANT changes (its TriggeredRules metric).
    event_rule_name: str
    # The AWS Config rules, named in the widget's text (empty when another stack owns them).
    config_rule_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class DashboardRow:
    """One account and region of a dashboard: a header and a row of widgets."""

    label: str
    region: str
    # Another account's metrics (cross-account observability); None: the dashboard's own account.
    account_id: str | None = None
    coverage: CoverageSource | None = None
    # Tiers whose restore tests publish their metrics here (the `Tier` dimension); empty: no restore tests here.
    restore_test_tiers: tuple[str, ...] = ()
    # Why the coverage column is empty (shown in its place).
    coverage_absent: str = "No coverage rule in this account and region."


@dataclass(frozen=True)
class BackupDashboardArgs:
    """A dashboard: its name, header and rows."""

    dashboard_name: str
    title: str
    rows: tuple[DashboardRow, ...]
    # Needed when a row has restore tests.
    restore_metrics: RestoreMetrics | None = None
    # Markdown under the title: what the widgets show.
    description: str = ""
    period_seconds: int = 3_600
    range_days: int = 14

    def validate(self) -> None:
        """Refuse what PutDashboard or the dashboard body syntax would refuse, before anything is registered."""
        if not _DASHBOARD_NAME.fullmatch(self.dashboard_name):
            raise ValueError(
                f"dashboard: {self.dashboard_name!r} must be 1-255 letters, digits, '-' or '_' (PutDashboard)"
            )
        if not self.rows:
            raise ValueError(f"dashboard {self.dashboard_name}: no row")
        if self.period_seconds < 60 or self.period_seconds % 60:
            raise ValueError(f"dashboard {self.dashboard_name}: period {self.period_seconds} is not a multiple of 60")
        if not 1 <= self.range_days <= 455:
            raise ValueError(f"dashboard {self.dashboard_name}: range of {self.range_days} days is not 1 to 455")
        seen: set[tuple[str | None, str]] = set()
        for row in self.rows:
            if row.account_id is not None and not _ACCOUNT.fullmatch(row.account_id):
                raise ValueError(f"dashboard {self.dashboard_name}: {row.account_id!r} is not an account id")
            if (row.account_id, row.region) in seen:
                raise ValueError(f"dashboard {self.dashboard_name}: two rows for {row.account_id} {row.region}")
            seen.add((row.account_id, row.region))
            if row.coverage and not _RULE_NAME.fullmatch(row.coverage.event_rule_name):
                raise ValueError(
                    f"dashboard {self.dashboard_name}: {row.coverage.event_rule_name!r} is not a rule name"
                )
            if row.restore_test_tiers and self.restore_metrics is None:
                raise ValueError(
                    f"dashboard {self.dashboard_name}: restore tests in {row.label} but no restore_metrics"
                )
            for tier in row.restore_test_tiers:
                if not re.fullmatch(r"[a-z]+", tier):
                    raise ValueError(f"dashboard {self.dashboard_name}: {tier!r} is not a tier")
        if len(self.widgets()) > 500:
            raise ValueError(f"dashboard {self.dashboard_name}: more than 500 widgets")

    def widgets(self) -> list[dict[str, Any]]:
        """The widgets, top to bottom: the header, then per row a label and its widgets."""
        header = f"# {self.title}\n\n{self.description}".strip()
        widgets: list[dict[str, Any]] = [_text(0, 0, 24, 3, header)]
        y = 3
        for row in self.rows:
            widgets.append(_text(0, y, 24, 1, f"### {row.label}"))
            y += 1
            widgets.extend(_row_widgets(row, y, self.period_seconds, self.restore_metrics))
            y += ROW_HEIGHT
        return widgets

    def body(self) -> dict[str, Any]:
        """The dashboard body (serialised with json.dumps for PutDashboard's DashboardBody)."""
        return {"start": f"-P{self.range_days}D", "periodOverride": "inherit", "widgets": self.widgets()}


def search(schema: str, terms: str, stat: str, period: int, account_id: str | None) -> str:
    """A SEARCH expression, restricted to one source account when `account_id` is given."""
    if account_id is not None:
        terms = f'{terms} :aws.AccountId="{account_id}"'
    return f"SEARCH('{schema} {terms}', '{stat}', {period})"


def _text(x: int, y: int, width: int, height: int, markdown: str) -> dict[str, Any]:
    return {"type": "text", "x": x, "y": y, "width": width, "height": height, "properties": {"markdown": markdown}}


def _metric_widget(column: str, y: int, row: DashboardRow, title: str, properties: dict[str, Any]) -> dict[str, Any]:
    x, width = _COLUMNS[column]
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": ROW_HEIGHT,
        "properties": {"region": row.region, "title": title, **properties},
    }


def _row_widgets(row: DashboardRow, y: int, period: int, restore: RestoreMetrics | None) -> list[dict[str, Any]]:
    widgets: list[dict[str, Any]] = []
    for column, metrics in JOB_METRICS.items():
        expressions = [
            [
                {
                    "expression": search(VAULT_SCHEMA, f'MetricName="{metric}"', "Sum", period, row.account_id),
                    "label": label,
                    "id": f"{column.replace('_', '')}{index}",
                }
            ]
            for index, (metric, label) in enumerate(metrics)
        ]
        widgets.append(
            _metric_widget(
                column,
                y,
                row,
                JOB_TITLES[column],
                {"view": "timeSeries", "stacked": False, "stat": "Sum", "period": period, "metrics": expressions},
            )
        )
    x, width = _COLUMNS["coverage"]
    if row.coverage is None:
        widgets.append(_text(x, y, width, ROW_HEIGHT, f"**Coverage**\n\n{row.coverage_absent}"))
    else:
        rendering: dict[str, Any] = {"label": "resources found not protected by a plan", "stat": "Sum"}
        if row.account_id is not None:
            rendering["accountId"] = row.account_id
        widgets.append(
            _metric_widget(
                "coverage",
                y,
                row,
                "Coverage: changes to NON_COMPLIANT",
                {
                    "view": "timeSeries",
                    "stacked": False,
                    "stat": "Sum",
                    "period": period,
                    "metrics": [
                        [EVENTS_NAMESPACE, "TriggeredRules", "RuleName", row.coverage.event_rule_name, rendering]
                    ],
                },
            )
        )
    x, width = _COLUMNS["restore_tests"]
    if not row.restore_test_tiers or restore is None:
        widgets.append(_text(x, y, width, ROW_HEIGHT, "**Restore tests**\n\nNone run in this account."))
    else:
        tiers = " OR ".join(f'Tier="{t}"' for t in row.restore_test_tiers)
        restore_metrics = [
            [
                {
                    "expression": search(
                        restore.schema, f'MetricName="{name}" ({tiers})', "Maximum", period, row.account_id
                    ),
                    "label": label,
                    "id": f"restore{index}",
                }
            ]
            for index, (name, label) in enumerate(
                ((restore.duration, "duration (s)"), (restore.recovery_point_age, "recovery point age (h)"))
            )
        ]
        widgets.append(
            _metric_widget(
                "restore_tests",
                y,
                row,
                "Last restore test",
                {"view": "singleValue", "stat": "Maximum", "period": period, "metrics": restore_metrics},
            )
        )
    return widgets


class BackupDashboard(pulumi.ComponentResource):
    """One account's dashboard of AWS Backup jobs, recovery points, coverage and restore tests."""

    dashboard_name: str
    dashboard_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: BackupDashboardArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        _type: str = "pgf:backup:BackupDashboard",
    ) -> None:
        self._validate(args)
        super().__init__(_type, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=json.dumps(args.body(), separators=(",", ":")),
            opts=child,
        )
        self.dashboard_name = args.dashboard_name
        self.dashboard_arn = dashboard.dashboard_arn
        self.register_outputs({"dashboard_name": self.dashboard_name, "dashboard_arn": self.dashboard_arn})

    def _validate(self, args: BackupDashboardArgs) -> None:
        args.validate()


class OrganizationDashboard(BackupDashboard):
    """The backup account's dashboard over the workload accounts' metrics (cross-account observability)."""

    def __init__(self, name: str, args: BackupDashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts, _type="pgf:backup:OrganizationDashboard")

    def _validate(self, args: BackupDashboardArgs) -> None:
        missing = [row.label for row in args.rows if row.account_id is None]
        if missing:
            raise ValueError(f"organization dashboard: rows without an account id: {missing}")
        args.validate()


# ---------------------------------------------------------------------------------------------
# CloudWatch cross-account observability (Observability Access Manager)


def sink_policy(partition: str, source_account_ids: tuple[str, ...]) -> dict[str, Any]:
    """The sink policy: the listed accounts may link, sharing metrics and nothing else.

    PutSinkPolicy: "you can grant permissions to all accounts in an organization or to individual accounts. You can
    also use a sink policy to limit the types of data that is shared [...] Metrics - Specify with
    AWS::CloudWatch::Metric" (https://docs.aws.amazon.com/OAM/latest/APIReference/API_PutSinkPolicy.html), with the
    condition key `oam:ResourceTypes` of oam:CreateLink and oam:UpdateLink
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchobservabilityaccessmanager.html).
    The accounts are named (their root: their own IAM decides who links), never `*`.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WorkloadAccountsShareMetrics",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:{partition}:iam::{a}:root" for a in source_account_ids]},
                "Action": ["oam:CreateLink", "oam:UpdateLink"],
                "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"oam:ResourceTypes": [METRIC_RESOURCE_TYPE]}},
            }
        ],
    }


def metric_filter(namespaces: tuple[str, ...]) -> str:
    """A link's metric filter: "Namespace IN ('AWS/EC2', 'AWS/ELB', 'AWS/S3') includes only the metrics in [those]
    namespaces" (botocore's oam model, MetricConfiguration.Filter)."""
    return "Namespace IN (" + ", ".join(f"'{n}'" for n in namespaces) + ")"


@dataclass(frozen=True)
class MonitoringSinkArgs:
    """The backup account's sink in one region, and who may link to it."""

    sink_name: str
    source_account_ids: tuple[str, ...]
    partition: str = "aws"
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse what CreateSink would refuse, and a policy admitting nobody or the same account twice."""
        if not _SINK_NAME.fullmatch(self.sink_name):
            raise ValueError(f"monitoring sink: {self.sink_name!r} must be 1-255 letters, digits, '_', '.' or '-'")
        if not self.source_account_ids:
            raise ValueError("monitoring sink: no source account to admit")
        for account in self.source_account_ids:
            if not _ACCOUNT.fullmatch(account):
                raise ValueError(f"monitoring sink: {account!r} is not an account id")
        if len(set(self.source_account_ids)) != len(self.source_account_ids):
            raise ValueError(f"monitoring sink: accounts repeat: {list(self.source_account_ids)}")


class MonitoringSink(pulumi.ComponentResource):
    """An OAM sink in the backup account (one region) and its policy: the workload accounts may link metrics."""

    sink_arn: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringSinkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:MonitoringSink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sink = aws.oam.Sink(f"{name}-sink", name=args.sink_name, tags=args.tags, opts=child)
        aws.oam.SinkPolicy(
            f"{name}-policy",
            sink_identifier=sink.arn,
            policy=json.dumps(sink_policy(args.partition, args.source_account_ids)),
            opts=child,
        )
        self.sink_arn = sink.arn
        self.register_outputs({"sink_arn": self.sink_arn})


@dataclass(frozen=True)
class MonitoringLinkArgs:
    """A workload account's link to the backup account's sink in the same region."""

    sink_arn: pulumi.Input[str]
    # How the backup account names this account (LabelTemplate, 1-64 characters).
    label: str
    # The metric namespaces shared (the dashboards': AWS_NAMESPACES and the restore tests').
    namespaces: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse what CreateLink would refuse."""
        if not 1 <= len(self.label) <= 64:
            raise ValueError(f"monitoring link: label {self.label!r} must be 1-64 characters")
        if not self.namespaces or any(not _NAMESPACE.fullmatch(n) for n in self.namespaces):
            raise ValueError(f"monitoring link: {list(self.namespaces)} are not metric namespaces")
        if len(metric_filter(self.namespaces)) > 2000:
            raise ValueError("monitoring link: the metric filter exceeds 2000 characters")


class MonitoringLink(pulumi.ComponentResource):
    """An OAM link sharing only the dashboards' metric namespaces with the backup account's sink."""

    link_arn: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringLinkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:MonitoringLink", name, None, opts)
        link = aws.oam.Link(
            f"{name}-link",
            sink_identifier=args.sink_arn,
            label_template=args.label,
            resource_types=[METRIC_RESOURCE_TYPE],
            link_configuration=aws.oam.LinkLinkConfigurationArgs(
                metric_configuration=aws.oam.LinkLinkConfigurationMetricConfigurationArgs(
                    filter=metric_filter(args.namespaces)
                )
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.link_arn = link.arn
        self.register_outputs({"link_arn": self.link_arn})
