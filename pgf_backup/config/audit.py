"""Config of AWS Backup Audit Manager (`pgf-backup:audit`): frameworks, report plans, the reports bucket."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from pgf_backup.config.sections import BucketName
from pgf_backup.config.types import Days, Model

# "Formats": "Can be either CSV, JSON, or both. Default is CSV if left blank"
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-report-plan-api.html).
ReportFormat = Literal["CSV", "JSON"]


class Audit(Model):
    """AWS Backup Audit Manager: a framework per tier, report plans, and the reports bucket they deliver to."""

    enabled: bool = True
    # The bucket of this account's reports (and, in the backup account, of the restore tests' evidence). Default
    # `<application>-backup-reports-<account id>` (lowercase): bucket names are global.
    reports_bucket: BucketName | None = None
    # Formats of the reports that cover this account and region only. AWS delivers every report that spans
    # accounts or regions as CSV only ("If the report is for the current region and current account, you can
    # choose to receive the report in either CSV or JSON format. Otherwise, the report is available in CSV
    # format", https://docs.aws.amazon.com/aws-backup/latest/devguide/working-with-audit-reports.html).
    formats: Annotated[tuple[ReportFormat, ...], Field(min_length=1, max_length=2)] = ("CSV", "JSON")
    # Reports (and restore-test evidence) are deleted this many days after they land.
    report_retention_days: Days = 1096
    # Earlier versions of an object (an overwritten or deleted report) are kept this long.
    noncurrent_version_expiration_days: Days = 30
    # S3 Object Lock default retention of every new object: COMPLIANCE where the prod tier's evidence lands,
    # GOVERNANCE elsewhere (or none with `non_prod_object_lock: none`).
    object_lock_days: Days = 365
    non_prod_object_lock: Literal["governance", "none"] = "governance"
    # Create AWS Backup Audit Manager's service-linked role (AWSServiceRoleForBackupReports), which the bucket and
    # key policies name: false in an account that already has it (an earlier report plan created it).
    create_reports_role: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Audit:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats: {list(self.formats)} lists a format twice; allowed: CSV, JSON (each once)")
        if self.object_lock_days > self.report_retention_days:
            raise ValueError(
                f"object_lock_days ({self.object_lock_days}) is longer than report_retention_days "
                f"({self.report_retention_days}): a report would outlive its retention, locked; make "
                "object_lock_days at most report_retention_days"
            )
        return self

    def bucket_name(self, application: str, account_id: str) -> str:
        """The reports bucket of an account: the configured name, or `<application>-backup-reports-<account>`."""
        return self.reports_bucket or f"{application.lower()}-backup-reports-{account_id}"
