"""Config of the coverage dashboards (`pgf-backup:dashboards`). Owned by the observability builder."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from pgf_backup.config.types import Model


def _period(value: int) -> int:
    # Dashboard body, metric widget `period`: "Any multiple of 60, with 60 as the minimum"
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).
    if value % 60:
        raise ValueError(f"{value} is not a multiple of 60 seconds (a dashboard widget's period)")
    return value


class Dashboards(Model):
    """CloudWatch dashboards of AWS Backup's jobs and coverage: one per account; the backup account's spans the
    organization (one row per workload account and region)."""

    enabled: bool = True
    # The period of every graph, in seconds (AWS Backup emits its metrics every 5 minutes; an hour reads well over
    # the default range). At most a day.
    period_seconds: Annotated[int, Field(ge=60, le=86_400), AfterValidator(_period)] = 3_600
    # The time range a dashboard opens with: the last N days (`start: -P<N>D`). CloudWatch keeps 1-hour data points
    # for 455 days (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html).
    range_days: Annotated[int, Field(ge=1, le=455)] = 14
    # CloudWatch cross-account observability: an OAM sink per region in the backup account, a link per region in
    # each workload account sharing only the metric namespaces the organization dashboard reads. Without it the
    # organization dashboard is not built (each account keeps its own).
    cross_account: bool = True
