"""A restore drill (game day): restore a protected resource from its latest recovery point into an isolated target,
validate it as the restore-testing validator does, measure RTO and RPO, write the evidence, clean up.

The restore goes through AWS Backup (StartRestoreJob), from the vault where the recovery point lies: the tier's
central vault in the backup account (the default, on the copies there: the isolated environment the strategy asks
for) or the workload vault. What it restores into:
- RDS DB instance / Aurora cluster: a new identifier (`drill-...`), the configured isolated DB subnet group and
  security groups, not publicly accessible. The keys are those RDS documents for RestoreDBInstanceFromDBSnapshot /
  RestoreDBClusterFromSnapshot, which AWS Backup passes on ("Restore an Amazon RDS database",
  https://docs.aws.amazon.com/aws-backup/latest/devguide/restoring-rds.html; "Restore an Aurora cluster",
  https://docs.aws.amazon.com/aws-backup/latest/devguide/restoring-aur.html; the same keys AWS lists as overridable
  for restore testing, pgf_backup.config.restore_testing.OVERRIDABLE).
- S3: a new bucket (`NewBucket: true`, `DestinationBucketName`; "Restore S3 data using AWS Backup", AWS CLI section,
  https://docs.aws.amazon.com/aws-backup/latest/devguide/restoring-s3.html).

The restore job is followed with a botocore waiter (AWS Backup's model ships none, so the waiter is defined here in
botocore's waiter format, on DescribeRestoreJob's `Status`: COMPLETED, or ABORTED/FAILED, botocore's
RestoreJobStatus). RTO is the job's CompletionDate minus its CreationDate, RPO the job's CreationDate minus its
RecoveryPointCreationDate (pgf_backup.restore_testing.evidence.measures). Cleanup deletes only what the drill
created: an identifier or bucket the drill named itself, never the source.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from pgf_backup.restore_testing import evidence
from pgf_backup.restore_testing.validator import Check, Settings, checks_for, evidence_record

Client = Callable[[str, str], Any]
Kind = Literal["S3", "RDS", "Aurora"]
DRILL_PREFIX = "drill"
# How often the restore job is read while waiting (seconds).
POLL_SECONDS = 30


class DrillError(Exception):
    """A drill that cannot run or did not restore (named); the evidence, when there is any, says the rest."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a drill, after its cleanup: the outcome says what was created and removed."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.restore_job_id)
        self.outcome = outcome


@dataclass(frozen=True)
class Target:
    """Where a drill restores: the account, region and vault of the recovery point, the role AWS Backup restores
    with, the isolated network for databases, and the reports bucket the evidence goes to."""

    kind: Literal["backup", "workload"]
    account_id: str
    region: str
    vault: str
    restore_role_arn: str
    tier: str
    reports_bucket: str | None
    db_subnet_group: str | None = None
    security_group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resource:
    """A resource to drill: its ARN and AWS Backup's resource type."""

    arn: str
    kind: Kind

    @classmethod
    def of(cls, arn: str) -> Resource:
        """From an ARN: an S3 bucket, an RDS DB instance or an Aurora (RDS) cluster; anything else is refused."""
        if re.fullmatch(r"arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", arn):
            return cls(arn, "S3")
        if re.fullmatch(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:db:[A-Za-z][A-Za-z0-9-]{0,62}", arn):
            return cls(arn, "RDS")
        if re.fullmatch(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster:[A-Za-z][A-Za-z0-9-]{0,62}", arn):
            return cls(arn, "Aurora")
        raise DrillError(
            f"{arn!r}: a drill restores an S3 bucket (arn:aws:s3:::NAME), an RDS DB instance (arn:aws:rds:REGION:"
            "ACCOUNT:db:ID) or an Aurora cluster (arn:aws:rds:REGION:ACCOUNT:cluster:ID)"
        )

    @property
    def name(self) -> str:
        """The bucket name or DB identifier."""
        return re.split(r":::|:db:|:cluster:", self.arn)[-1]


@dataclass
class Outcome:
    """What one drill did: the evidence (None when the restore never completed), what it created and removed."""

    resource: Resource
    restore_job_id: str | None = None
    record: dict[str, Any] | None = None
    created: str | None = None
    cleaned: bool = False
    kept: bool = False
    problem: str | None = None
    locations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Restored, validated SUCCESSFUL, and nothing left behind unless asked."""
        validated = self.record is not None and self.record["validation"]["status"] == "SUCCESSFUL"
        return validated and self.problem is None

    def to_json(self) -> dict[str, Any]:
        """As `drill --json` prints it."""
        return {
            "resource": self.resource.arn,
            "restore_job_id": self.restore_job_id,
            "created_resource": self.created,
            "cleaned_up": self.cleaned,
            "kept": self.kept,
            "problem": self.problem,
            "evidence": self.record,
            "written_to": self.locations,
        }


# ---------------------------------------------------------------------------------------------
# Recovery points and restore metadata


def latest_recovery_point(backup: Any, vault: str, resource: Resource) -> dict[str, Any]:
    """The newest COMPLETED recovery point of `resource` in `vault` (ListRecoveryPointsByBackupVault, ByResourceArn:
    the copies in the backup account keep the source resource's ARN)."""
    newest: dict[str, Any] | None = None
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, ByResourceArn=resource.arn
    )
    for page in pages:
        for point in page.get("RecoveryPoints", []):
            if point.get("Status") != "COMPLETED":
                continue
            if newest is None or point["CreationDate"] > newest["CreationDate"]:
                newest = point
    if newest is None:
        raise DrillError(f"no completed recovery point of {resource.arn} in vault {vault}")
    return newest


def given_recovery_point(backup: Any, vault: str, arn: str) -> dict[str, Any]:
    """A recovery point named by the operator (DescribeRecoveryPoint in `vault`)."""
    try:
        point: dict[str, Any] = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise DrillError(f"recovery point {arn} is not in vault {vault}") from None
        raise
    if point.get("Status") != "COMPLETED":
        raise DrillError(f"recovery point {arn} is {point.get('Status')}, not COMPLETED")
    return point


def drill_name(resource: Resource, now: datetime, limit: int) -> str:
    """`drill-<name>-<UTC time>`, cut to `limit` characters, ending in a letter or digit."""
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    base = re.sub(r"[^a-z0-9-]", "-", resource.name.lower())
    head = f"{DRILL_PREFIX}-"
    room = limit - len(head) - len(stamp) - 1
    return f"{head}{base[:room].strip('-')}-{stamp}"


def restore_metadata(base: Mapping[str, str], resource: Resource, target: Target, name: str) -> dict[str, str]:
    """AWS Backup's inferred metadata with the drill's isolation: a new name, the isolated network, not public."""
    metadata = dict(base)
    if resource.kind == "S3":
        metadata.update({"DestinationBucketName": name, "NewBucket": "true"})
        return metadata
    if target.db_subnet_group is None or not target.security_group_ids:
        raise DrillError(
            f"{resource.arn}: no isolated network for the restored database: set restore_testing.network "
            f"(db_subnet_group_name, security_group_ids) for the {target.kind} account's tier {target.tier}"
        )
    groups = json.dumps(list(target.security_group_ids))
    if resource.kind == "RDS":
        metadata.update(
            {
                "DBInstanceIdentifier": name,
                "DBSubnetGroupName": target.db_subnet_group,
                "VpcSecurityGroupIds": groups,
                "PubliclyAccessible": "false",
            }
        )
    else:
        metadata.update(
            {"DBClusterIdentifier": name, "DBSubnetGroupName": target.db_subnet_group, "VpcSecurityGroupIds": groups}
        )
    return metadata


# ---------------------------------------------------------------------------------------------
# Waiting


def restore_waiter(backup: Any, timeout_seconds: int, delay: int = POLL_SECONDS) -> Any:
    """A botocore waiter on DescribeRestoreJob: success at COMPLETED, failure at ABORTED or FAILED, bounded time."""
    attempts = max(1, timeout_seconds // max(1, delay))
    model = WaiterModel(
        {
            "version": 2,
            "waiters": {
                "RestoreJobCompleted": {
                    "operation": "DescribeRestoreJob",
                    "delay": delay,
                    "maxAttempts": attempts,
                    "acceptors": [
                        {"matcher": "path", "argument": "Status", "expected": "COMPLETED", "state": "success"},
                        {"matcher": "path", "argument": "Status", "expected": "ABORTED", "state": "failure"},
                        {"matcher": "path", "argument": "Status", "expected": "FAILED", "state": "failure"},
                    ],
                }
            },
        }
    )
    return create_waiter_with_client("RestoreJobCompleted", model, backup)


def wait_for_restore(backup: Any, job_id: str, timeout_seconds: int, delay: int = POLL_SECONDS) -> dict[str, Any]:
    """The COMPLETED restore job; DrillError naming the job for a failed one or the timeout."""
    try:
        restore_waiter(backup, timeout_seconds, delay).wait(RestoreJobId=job_id)
    except WaiterError as error:
        last = error.last_response or {}
        status = last.get("Status")
        if status in ("ABORTED", "FAILED"):
            raise DrillError(f"restore job {job_id} {status}: {last.get('StatusMessage') or 'no message'}") from None
        if "Error" in last:
            info = last["Error"]
            raise DrillError(f"restore job {job_id}: {info.get('Code')}: {info.get('Message')}") from None
        raise DrillError(
            f"restore job {job_id} not finished after {timeout_seconds} s (last status {status}); it goes on in AWS: "
            f"aws backup describe-restore-job --restore-job-id {job_id}"
        ) from None
    job: dict[str, Any] = backup.describe_restore_job(RestoreJobId=job_id)
    return job


# ---------------------------------------------------------------------------------------------
# Cleanup: only what the drill named


def _mine(name: str) -> bool:
    return name.startswith(f"{DRILL_PREFIX}-")


def _delete_bucket(s3: Any, bucket: str) -> None:
    """Every object version and delete marker, then the bucket."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    for page in pages:
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])]
        doomed += [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", [])]
        # DeleteObjects takes at most 1,000 keys (botocore's s3 model, Delete.Objects; a page holds at most 1,000).
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


def clean_up(client: Client, region: str, kind: Kind, name: str) -> bool:
    """Delete the drill's restored resource `name` if it exists; False when there was nothing to delete."""
    if not _mine(name):
        raise DrillError(f"{name!r} was not created by a drill (no '{DRILL_PREFIX}-' prefix): not deleted")
    missing = ("NoSuchBucket", "DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault")
    try:
        if kind == "S3":
            _delete_bucket(client("s3", region), name)
        elif kind == "RDS":
            # No final snapshot: the drill's copy holds nothing the source's recovery points do not.
            client("rds", region).delete_db_instance(
                DBInstanceIdentifier=name, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
        else:
            rds = client("rds", region)
            members = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0].get("DBClusterMembers", [])
            for member in members:
                rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"], SkipFinalSnapshot=True)
            rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in missing:
            return False
        raise
    return True


# ---------------------------------------------------------------------------------------------
# The drill


def _markdown(record: Mapping[str, Any], rto_hours: float, rpo_hours: float) -> str:
    rto, rpo = record["restore_duration_seconds"] / 3600, record["recovery_point_age_seconds"] / 3600
    lines = [
        f"# Restore drill {record['restore_job_id']}",
        "",
        f"- Resource: `{record['source_resource_arn']}` ({record['resource_type']}, tier {record['tier']})",
        f"- Restored as: `{record['created_resource_arn']}` in account {record['account_id']}, {record['region']}",
        f"- Recovery point: `{record['recovery_point_arn']}` ({record['recovery_point_created_at']})",
        f"- RTO: {rto:.2f} h (target {rto_hours:g} h): {'met' if rto <= rto_hours else 'MISSED'}",
        f"- RPO: {rpo:.2f} h (target {rpo_hours:g} h): {'met' if rpo <= rpo_hours else 'MISSED'}",
        f"- Validation: {record['validation']['status']}: {record['validation']['message']}",
        "",
        "| check | status | detail |",
        "|---|---|---|",
    ]
    lines += [
        f"| {c['name']} | {c['status']} | {c['detail'].replace('|', '/')} |" for c in record["validation"]["checks"]
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Options:
    """How the drill runs."""

    timeout_seconds: int = 3 * 3600
    keep: bool = False
    recovery_point_arn: str | None = None
    poll_seconds: int = POLL_SECONDS
    rto_hours: float = 4.0
    rpo_hours: float = 24.0


Writer = Callable[[str, bytes], str]  # (relative name, content) -> where it was written


def drill_one(
    resource: Resource,
    target: Target,
    options: Options,
    client: Client,
    *,
    now: Callable[[], datetime],
    writers: Sequence[Writer],
) -> Outcome:
    """Restore, wait, validate, record, clean up: the outcome says what happened at each step.

    A Ctrl-C during the wait still cleans up what already exists, then re-raises.
    """
    outcome = Outcome(resource)
    backup = client("backup", target.region)
    if options.recovery_point_arn:
        point = given_recovery_point(backup, target.vault, options.recovery_point_arn)
    else:
        point = latest_recovery_point(backup, target.vault, resource)
    point_arn = str(point["RecoveryPointArn"])
    base = backup.get_recovery_point_restore_metadata(BackupVaultName=target.vault, RecoveryPointArn=point_arn).get(
        "RestoreMetadata", {}
    )
    # S3 bucket names: at most 63 characters; RDS identifiers: at most 63 (botocore's rds model,
    # DBInstanceIdentifier/DBClusterIdentifier).
    name = drill_name(resource, now(), 63)
    metadata = restore_metadata(base, resource, target, name)
    job_id = str(
        backup.start_restore_job(
            RecoveryPointArn=point_arn,
            Metadata=metadata,
            IamRoleArn=target.restore_role_arn,
            IdempotencyToken=str(uuid.uuid4()),
            ResourceType=resource.kind,
        )["RestoreJobId"]
    )
    outcome.restore_job_id = job_id
    outcome.created = name
    try:
        try:
            job = wait_for_restore(backup, job_id, options.timeout_seconds, options.poll_seconds)
        except DrillError as error:
            outcome.problem = str(error)
            return outcome
        outcome.created = str(job.get("CreatedResourceArn") or name)
        settings = Settings(account_id=target.account_id, region=target.region)
        checks: list[Check] = checks_for(lambda service: client(service, target.region), job, settings)
        record = evidence_record(
            job,
            checks,
            reported=False,
            plan_arn="none",
            tier=target.tier,
            account_id=target.account_id,
            region=target.region,
            validated_at=now(),
            started_by="drill",
        )
        outcome.record = record
        completed = job["CompletionDate"]
        key = evidence.evidence_key(record["account_id"], target.region, completed, job_id)
        markdown = _markdown(record, options.rto_hours, options.rpo_hours)
        for write in writers:
            outcome.locations.append(write(key, json.dumps(record, indent=2, sort_keys=True).encode()))
            outcome.locations.append(write(key.removesuffix(".json") + ".md", markdown.encode()))
        if record["validation"]["status"] != "SUCCESSFUL":
            outcome.problem = f"validation FAILED: {record['validation']['message']}"
    except KeyboardInterrupt:
        outcome.problem = f"interrupted; restore job {job_id} may still run in AWS"
        raise Interrupted(outcome) from None
    finally:
        if options.keep:
            outcome.kept = True
        else:
            outcome.cleaned = clean_up(client, target.region, resource.kind, name)
    return outcome


def s3_writer(s3: Any, bucket: str) -> Writer:
    """Write evidence to the reports bucket, with its default encryption (SSE-KMS with the bucket's key: the bucket
    policy refuses only uploads that ask for another encryption)."""

    def write(key: str, body: bytes) -> str:
        content = "application/json" if key.endswith(".json") else "text/markdown"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content)
        return f"s3://{bucket}/{key}"

    return write


# ---------------------------------------------------------------------------------------------
# The quarter's report


QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def quarter_months(quarter: str) -> tuple[int, list[int]]:
    """(year, its three months) of `2026Q4`."""
    match = QUARTER.fullmatch(quarter)
    if not match:
        raise ValueError(f"{quarter!r} is not a quarter (YYYYQn, e.g. 2026Q4)")
    year, index = int(match.group(1)), int(match.group(2))
    return year, [3 * (index - 1) + m for m in (1, 2, 3)]


def quarter_prefixes(accounts: Sequence[str], regions: Sequence[str], quarter: str) -> Iterator[str]:
    """The evidence prefixes of a quarter (evidence.evidence_key: `<prefix>/<account>/<region>/<YYYY>/<MM>/`)."""
    year, months = quarter_months(quarter)
    for account in accounts:
        for region in regions:
            for month in months:
                yield f"{evidence.EVIDENCE_PREFIX}/{account}/{region}/{year:04d}/{month:02d}/"


def read_evidence(s3: Any, bucket: str, prefixes: Sequence[str]) -> list[dict[str, Any]]:
    """Every evidence record (`.json`) under the prefixes, each checked against the schema."""
    records: list[dict[str, Any]] = []
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith(".json"):
                    continue
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                records.append(parse_record(body, f"s3://{bucket}/{item['Key']}"))
    return records


def parse_record(body: bytes, where: str) -> dict[str, Any]:
    """One evidence record, or DrillError naming the object that is not one."""
    try:
        record: dict[str, Any] = json.loads(body)
        evidence.validate(record)
    except (ValueError, TypeError) as error:
        raise DrillError(f"{where}: not restore evidence: {error}") from None
    return record


@dataclass(frozen=True)
class Row:
    """One restore (a drill's or a restore test's) against its tier's targets."""

    record: Mapping[str, Any]
    rto_hours: float
    rpo_hours: float

    @property
    def rto_met(self) -> bool:
        return float(self.record["restore_duration_seconds"]) <= self.rto_hours * 3600

    @property
    def rpo_met(self) -> bool:
        return float(self.record["recovery_point_age_seconds"]) <= self.rpo_hours * 3600

    @property
    def validated(self) -> bool:
        return bool(self.record["validation"]["status"] == "SUCCESSFUL")

    @property
    def drill(self) -> bool:
        return self.record.get("started_by") == "drill"

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "restore_job_id": r["restore_job_id"],
            "started_by": r.get("started_by", "restore-testing"),
            "tier": r["tier"],
            "resource_type": r["resource_type"],
            "source": r["source_resource_arn"],
            "completed_at": r["restore_completed_at"],
            "rto_hours": round(float(r["restore_duration_seconds"]) / 3600, 3),
            "rto_target_hours": self.rto_hours,
            "rto_met": self.rto_met,
            "rpo_hours": round(float(r["recovery_point_age_seconds"]) / 3600, 3),
            "rpo_target_hours": self.rpo_hours,
            "rpo_met": self.rpo_met,
            "validation": r["validation"]["status"],
        }


@dataclass(frozen=True)
class QuarterReport:
    """A quarter's restores against each tier's RTO and RPO targets."""

    quarter: str
    rows: tuple[Row, ...]

    @property
    def problems(self) -> list[str]:
        """Why the quarter fails: no drill, a missed target, a failed validation."""
        found: list[str] = []
        if not any(row.drill for row in self.rows):
            found.append(f"{self.quarter}: no drill recorded (pgf-backup drill): a game day is due every quarter")
        for row in self.rows:
            r = row.record
            what = f"{r['restore_job_id']} ({r['tier']}, {r['source_resource_arn']})"
            if not row.rto_met:
                found.append(
                    f"{what}: RTO {float(r['restore_duration_seconds']) / 3600:.2f} h over the target "
                    f"{row.rto_hours:g} h"
                )
            if not row.rpo_met:
                found.append(
                    f"{what}: RPO {float(r['recovery_point_age_seconds']) / 3600:.2f} h over the target "
                    f"{row.rpo_hours:g} h"
                )
            if not row.validated:
                found.append(f"{what}: validation {r['validation']['status']}: {r['validation']['message']}")
        return found

    def to_json(self) -> dict[str, Any]:
        """As `drill report --json` prints it."""
        return {
            "quarter": self.quarter,
            "drills": sum(row.drill for row in self.rows),
            "restore_tests": sum(not row.drill for row in self.rows),
            "restores": [row.to_json() for row in self.rows],
            "problems": self.problems,
            "ok": not self.problems,
        }


def quarter_report(
    quarter: str,
    records: Sequence[Mapping[str, Any]],
    rto_hours: Callable[[str], float],
    rpo_hours: Callable[[str], float],
) -> QuarterReport:
    """The quarter's records (by completion time, each once) against the targets of their tiers."""
    year, months = quarter_months(quarter)
    seen: dict[str, Mapping[str, Any]] = {}
    for record in records:
        done = datetime.fromisoformat(str(record["restore_completed_at"]).replace("Z", "+00:00"))
        if done.year == year and done.month in months:
            seen[str(record["restore_job_id"])] = record
    rows = tuple(
        Row(r, rto_hours(str(r["tier"])), rpo_hours(str(r["tier"])))
        for r in sorted(seen.values(), key=lambda r: (str(r["restore_completed_at"]), str(r["restore_job_id"])))
    )
    return QuarterReport(quarter, rows)
