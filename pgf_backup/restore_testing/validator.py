"""The restore testing validation function: run when a restore testing job completes.

The event is AWS Backup's `Restore Job State Change` with `status: COMPLETED`; its detail carries `restoreJobId`,
`resourceType`, `createdResourceArn` and, for a restore test, `restoreTestingPlanArn` (AWS's example rule and
handler, "Restore testing validation":
https://docs.aws.amazon.com/aws-backup/latest/devguide/restore-testing-validation.html). The job's times, its
recovery point and source come from DescribeRestoreJob, whose `CreatedBy.RestoreTestingPlanArn` also marks a job
started by restore testing (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DescribeRestoreJob.html).

What it checks (each check `passed`, `failed` or `skipped`, with what it saw):
- S3: the restored bucket holds at least `S3_MIN_OBJECTS` objects; where the source bucket is readable (the
  workload account's own restore tests), every source object last modified before the recovery point exists in the
  restored bucket; for a sample of restored objects, the object is downloaded and its checksum recomputed and
  compared with the checksum S3 stores for that restored object (SHA-256, SHA-1, CRC32 or CRC-64/NVME, full-object
  only), or, without one, with its ETag where S3 documents the ETag as the MD5 of the data. This proves the restored
  bytes are what S3 recorded when AWS Backup wrote them; AWS Backup's recovery point metadata holds no per-object
  checksum to compare against, so the comparison is not with the source objects.
- RDS (DB instance) and Aurora (DB cluster): available, storage encrypted, the engine of the recovery point
  (its snapshot's, or AWS Backup's inferred `engine`), and for an instance, not publicly accessible.
- DynamoDB: the table is ACTIVE. EFS: the file system is available and encrypted. EBS: the volume is available
  (unattached) and encrypted.

It reports SUCCESSFUL or FAILED with PutRestoreValidationResult ("Once a validation status is set, it cannot be
changed"), writes the evidence (evidence.py) to the reports bucket when one is configured, and publishes the
restore duration and the recovery point's age as CloudWatch metrics.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import boto3
import botocore.config
from botocore.exceptions import ClientError, FlexibleChecksumError

from pgf_backup.restore_testing import evidence

LOG = logging.getLogger(__name__)
# Adaptive retries: throttling slows the function down and never turns into a false FAILED
# (https://docs.aws.amazon.com/boto3/latest/guide/retries.html; the same settings as the export functions').
RETRY_CONFIG = botocore.config.Config(retries={"mode": "adaptive", "max_attempts": 10})
# pgf_backup.constants, repeated here (the function's package holds this package only; a test checks they agree).
METRIC_NAMESPACE = "PGF/Backup"
METRIC_RESTORE_DURATION = "RestoreTestDurationSeconds"
METRIC_RECOVERY_POINT_AGE = "RestoreTestRecoveryPointAgeHours"
_CHUNK = 1024 * 1024
_MESSAGE_MAX = 1000

Status = Literal["passed", "failed", "skipped"]


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")


# GetObject's stored checksum fields S3 returns with ChecksumMode=ENABLED, and how to recompute each (CRC32C needs a
# package outside the standard library: such objects are skipped).
_RECOMPUTABLE: dict[str, Callable[[], _Hasher]] = {
    "ChecksumSHA256": hashlib.sha256,
    "ChecksumSHA1": hashlib.sha1,
    "ChecksumCRC32": _Crc32,
    "ChecksumCRC64NVME": evidence.Crc64Nvme,
}


@dataclass(frozen=True)
class Check:
    """One verification of the restored resource."""

    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        """As the evidence records it."""
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Settings:
    """The function's environment (set by its component)."""

    account_id: str
    region: str
    bucket: str | None = None
    key_arn: str | None = None
    plan_tiers: Mapping[str, str] = field(default_factory=dict)
    s3_sample_size: int = 20
    s3_checksum_max_bytes: int = 64 * 1024**2
    s3_min_objects: int = 1
    # The source bucket can be listed (restore tests in the account that owns it).
    compare_source: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], context: Any) -> Settings:
        """From the environment and the invocation context (account from the function's ARN, no extra call)."""
        arn = str(context.invoked_function_arn).split(":")
        return cls(
            account_id=arn[4],
            region=environ.get("AWS_REGION") or arn[3],
            bucket=environ.get("EVIDENCE_BUCKET") or None,
            key_arn=environ.get("EVIDENCE_KMS_KEY_ARN") or None,
            plan_tiers=json.loads(environ.get("PLAN_TIERS") or "{}"),
            s3_sample_size=int(environ.get("S3_SAMPLE_SIZE", "20")),
            s3_checksum_max_bytes=int(environ.get("S3_CHECKSUM_MAX_BYTES", str(64 * 1024**2))),
            s3_min_objects=int(environ.get("S3_MIN_OBJECTS", "1")),
            compare_source=environ.get("COMPARE_SOURCE") == "true",
        )


Clients = Callable[[str], Any]


def session_clients(region: str) -> Clients:
    """Clients of the function's region with adaptive retries, each made once."""
    session = boto3.session.Session(region_name=region)
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]
        return made[service]

    return client


def _error(error: ClientError) -> str:
    info = error.response.get("Error", {})
    return f"{info.get('Code', 'Error')}: {info.get('Message', str(error))}"


def _name_in_arn(arn: str, marker: str) -> str:
    """The resource name after `marker` in an ARN (`:db:`, `:cluster:`, `:table/` ...)."""
    if marker not in arn:
        raise ValueError(f"{arn!r} is not the ARN of a {marker.strip(':/')} resource")
    return arn.split(marker, 1)[1]


# ---------------------------------------------------------------------------------------------
# S3


def _list(s3: Any, bucket: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1000}):
        objects.extend(page.get("Contents", []))
    return objects


def _sample(keys: list[str], size: int) -> list[str]:
    """`size` keys evenly spaced over the sorted keys (the same sample for the same bucket)."""
    ordered = sorted(keys)
    if len(ordered) <= size:
        return ordered
    return [ordered[index * len(ordered) // size] for index in range(size)]


def _verify_object(s3: Any, bucket: str, key: str, max_bytes: int) -> tuple[Status, str]:
    """Recompute a restored object's checksum and compare it with what S3 stores for it."""
    answer = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    body = answer["Body"]
    try:
        size = int(answer.get("ContentLength", 0))
        if size > max_bytes:
            return "skipped", f"{key}: {size} bytes, above S3_CHECKSUM_MAX_BYTES ({max_bytes})"
        stored = next(((name, answer[name]) for name in _RECOMPUTABLE if answer.get(name)), None)
        composite = answer.get("ChecksumType") == "COMPOSITE" or (stored is not None and "-" in stored[1])
        if stored is not None and composite:
            # A multipart object's composite checksum is a checksum of its parts' checksums: the part boundaries
            # are not known here.
            return "skipped", f"{key}: composite (multipart) checksum, not recomputable from the whole object"
        if stored is None:
            other = "ChecksumCRC32C" if answer.get("ChecksumCRC32C") else None
            etag = str(answer.get("ETag", "")).strip('"')
            # "Objects created by the PUT Object, POST Object, or Copy operation ... that are encrypted by SSE-S3 or
            # plaintext, have ETags that are an MD5 digest of their object data"; not SSE-KMS, SSE-C or multipart
            # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html).
            kms = str(answer.get("ServerSideEncryption", "")).startswith("aws:kms")
            if other or kms or answer.get("SSECustomerAlgorithm") or "-" in etag or not etag:
                why = "a CRC32C checksum (not in the standard library)" if other else "no MD5 ETag"
                return "skipped", f"{key}: no recomputable stored checksum ({why})"
            hasher: _Hasher = hashlib.md5(usedforsecurity=False)
            expected, kind = etag, "ETag (MD5)"
        else:
            hasher = _RECOMPUTABLE[stored[0]]()
            expected, kind = stored[1], stored[0].removeprefix("Checksum")
        try:
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                hasher.update(chunk)
        except FlexibleChecksumError as error:
            # botocore checks the stored checksum itself at the end of a ChecksumMode=ENABLED download, for the
            # algorithms it supports (botocore.httpchecksum.StreamingChecksumBody): the same comparison.
            return "failed", f"{key}: {kind} mismatch ({error})"
        digest = hasher.digest()
        actual = digest.hex() if kind == "ETag (MD5)" else base64.b64encode(digest).decode()
        if actual != expected:
            return "failed", f"{key}: {kind} mismatch (stored {expected}, recomputed {actual})"
        return "passed", f"{key}: {kind} {expected}"
    finally:
        body.close()


def check_s3(s3: Any, job: Mapping[str, Any], settings: Settings) -> list[Check]:
    """Object count, presence of the source's older objects (where readable), a sample of checksums."""
    bucket = _name_in_arn(str(job["CreatedResourceArn"]), ":::")
    restored = _list(s3, bucket)
    checks = [
        Check(
            "s3:object_count",
            "passed" if len(restored) >= settings.s3_min_objects else "failed",
            f"{len(restored)} objects in {bucket}"
            + (
                ""
                if len(restored) >= settings.s3_min_objects
                else f": missing objects (at least {settings.s3_min_objects} expected)"
            ),
        )
    ]
    source_arn = str(job.get("SourceResourceArn") or "")
    if settings.compare_source and source_arn.startswith("arn:") and ":::" in source_arn:
        source = _name_in_arn(source_arn, ":::")
        point = job["RecoveryPointCreationDate"]
        older = {o["Key"] for o in _list(s3, source) if o["LastModified"] <= point}
        missing = sorted(older - {o["Key"] for o in restored})
        detail = f"{len(older)} objects of {source} last modified before the recovery point ({evidence.iso(point)})"
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            checks.append(
                Check("s3:source_objects", "failed", f"{detail}: missing objects: {len(missing)} absent ({shown})")
            )
        else:
            checks.append(Check("s3:source_objects", "passed", f"{detail}: all present"))
    else:
        checks.append(
            Check("s3:source_objects", "skipped", "the source bucket is not readable here (another account's copy)")
        )
    results = [
        _verify_object(s3, bucket, key, settings.s3_checksum_max_bytes)
        for key in _sample([o["Key"] for o in restored], settings.s3_sample_size)
    ]
    failed = [detail for status, detail in results if status == "failed"]
    passed = [detail for status, detail in results if status == "passed"]
    skipped = [detail for status, detail in results if status == "skipped"]
    summary = f"{len(results)} sampled: {len(passed)} verified, {len(failed)} mismatched, {len(skipped)} not verifiable"
    if failed:
        checks.append(Check("s3:checksums", "failed", f"{summary}: checksum mismatch: " + "; ".join(failed[:5])))
    elif passed:
        checks.append(Check("s3:checksums", "passed", summary))
    else:
        checks.append(Check("s3:checksums", "skipped", summary + ("; " + "; ".join(skipped[:3]) if skipped else "")))
    return checks


# ---------------------------------------------------------------------------------------------
# RDS and Aurora


def _metadata_engine(backup: Any, job_id: str) -> str | None:
    """The `engine` AWS Backup inferred for the restore (clusters), keys compared without case."""
    metadata = backup.get_restore_job_metadata(RestoreJobId=job_id).get("Metadata", {})
    return next((str(v) for k, v in metadata.items() if k.lower() == "engine"), None)


def _snapshot_engine(rds: Any, point_arn: str) -> str | None:
    """The engine of the recovery point when it is an RDS DB (cluster) snapshot."""
    # The snapshot's identifier is what follows its type in the ARN (`awsbackup:job-...` for AWS Backup's).
    if ":cluster-snapshot:" in point_arn:
        name = _name_in_arn(point_arn, ":cluster-snapshot:")
        snapshots = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"]
    elif ":snapshot:" in point_arn:
        name = _name_in_arn(point_arn, ":snapshot:")
        snapshots = rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
    else:
        return None
    return str(snapshots[0]["Engine"]) if snapshots else None


def _engine_check(actual: str, expected: str | None) -> Check:
    if expected is None:
        return Check("rds:engine", "skipped", f"engine {actual}; the recovery point's engine is not known here")
    if actual != expected:
        return Check("rds:engine", "failed", f"wrong engine: {actual}, the recovery point's is {expected}")
    return Check("rds:engine", "passed", f"engine {actual}")


def check_rds(rds: Any, backup: Any, job: Mapping[str, Any], cluster: bool) -> list[Check]:
    """The restored DB instance or cluster: available, encrypted, the recovery point's engine, not public."""
    arn = str(job["CreatedResourceArn"])
    point = str(job.get("RecoveryPointArn") or "")
    if cluster:
        found = rds.describe_db_clusters(DBClusterIdentifier=_name_in_arn(arn, ":cluster:"))["DBClusters"][0]
        status, what = str(found.get("Status")), "cluster"
    else:
        found = rds.describe_db_instances(DBInstanceIdentifier=_name_in_arn(arn, ":db:"))["DBInstances"][0]
        status, what = str(found.get("DBInstanceStatus")), "instance"
    checks = [
        Check(
            "rds:available",
            "passed" if status == "available" else "failed",
            f"DB {what} status {status}" + ("" if status == "available" else " (not available)"),
        ),
        Check(
            "rds:encrypted",
            "passed" if found.get("StorageEncrypted") else "failed",
            f"storage encrypted with {found.get('KmsKeyId')}"
            if found.get("StorageEncrypted")
            else "unencrypted storage",
        ),
    ]
    expected = _snapshot_engine(rds, point) or (_metadata_engine(backup, str(job["RestoreJobId"])) if cluster else None)
    checks.append(_engine_check(str(found.get("Engine")), expected))
    if not cluster:
        public = bool(found.get("PubliclyAccessible"))
        checks.append(
            Check("rds:not_public", "failed" if public else "passed", "publicly accessible" if public else "private")
        )
    return checks


# ---------------------------------------------------------------------------------------------
# DynamoDB and EFS


def check_dynamodb(dynamodb: Any, job: Mapping[str, Any]) -> list[Check]:
    """The restored table is ACTIVE."""
    table = _name_in_arn(str(job["CreatedResourceArn"]), ":table/")
    status = str(dynamodb.describe_table(TableName=table)["Table"]["TableStatus"])
    return [Check("dynamodb:active", "passed" if status == "ACTIVE" else "failed", f"table {table} status {status}")]


def check_efs(efs: Any, job: Mapping[str, Any]) -> list[Check]:
    """The restored file system is available and encrypted."""
    file_system = _name_in_arn(str(job["CreatedResourceArn"]), ":file-system/")
    found = efs.describe_file_systems(FileSystemId=file_system)["FileSystems"][0]
    state = str(found.get("LifeCycleState"))
    return [
        Check("efs:available", "passed" if state == "available" else "failed", f"file system {file_system} {state}"),
        Check(
            "efs:encrypted",
            "passed" if found.get("Encrypted") else "failed",
            f"encrypted: {bool(found.get('Encrypted'))}",
        ),
    ]


def check_ebs(ec2: Any, job: Mapping[str, Any]) -> list[Check]:
    """The restored volume is available (unattached) and encrypted."""
    volume = _name_in_arn(str(job["CreatedResourceArn"]), ":volume/")
    found = ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]
    state = str(found.get("State"))
    return [
        Check("ebs:available", "passed" if state == "available" else "failed", f"volume {volume} {state}"),
        Check(
            "ebs:encrypted",
            "passed" if found.get("Encrypted") else "failed",
            f"encrypted: {bool(found.get('Encrypted'))}",
        ),
    ]


def checks_for(clients: Clients, job: Mapping[str, Any], settings: Settings) -> list[Check]:
    """Every check of the restored resource (an AWS refusal is a failed check, named)."""
    kind = str(job.get("ResourceType"))
    checkers: dict[str, Callable[[], list[Check]]] = {
        "S3": lambda: check_s3(clients("s3"), job, settings),
        "RDS": lambda: check_rds(clients("rds"), clients("backup"), job, cluster=False),
        "Aurora": lambda: check_rds(clients("rds"), clients("backup"), job, cluster=True),
        "DynamoDB": lambda: check_dynamodb(clients("dynamodb"), job),
        "EFS": lambda: check_efs(clients("efs"), job),
        "EBS": lambda: check_ebs(clients("ec2"), job),
    }
    if kind not in checkers:
        return [Check("resource_type", "failed", f"no validation for resource type {kind}")]
    try:
        return checkers[kind]()
    except ClientError as error:
        return [Check(f"{kind.lower()}:describe", "failed", f"could not check the restored resource: {_error(error)}")]


# ---------------------------------------------------------------------------------------------
# The handler


def verdict(checks: list[Check]) -> tuple[str, str]:
    """SUCCESSFUL or FAILED, and the message AWS Backup records (the failed checks, or a count)."""
    failed = [c for c in checks if c.status == "failed"]
    if failed:
        text = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        return "FAILED", text[:_MESSAGE_MAX]
    passed = sum(c.status == "passed" for c in checks)
    return "SUCCESSFUL", f"{passed} checks passed, {len(checks) - passed} skipped"[:_MESSAGE_MAX]


@dataclass(frozen=True)
class Outcome:
    """The evidence of one validated restore test and where it was written (None: no evidence bucket)."""

    record: dict[str, Any]
    location: str | None


def evidence_record(
    job: Mapping[str, Any],
    checks: list[Check],
    *,
    reported: bool,
    plan_arn: str,
    tier: str,
    account_id: str,
    region: str,
    validated_at: datetime,
    started_by: Literal["restore-testing", "drill"] = "restore-testing",
) -> dict[str, Any]:
    """The evidence of one validated restore (a restore test's, or a drill's), checked against its schema."""
    status, message = verdict(checks)
    duration, age = evidence.measures(dict(job))
    record: dict[str, Any] = {
        "schema_version": evidence.SCHEMA_VERSION,
        "restore_job_id": str(job["RestoreJobId"]),
        "restore_testing_plan_arn": plan_arn,
        "started_by": started_by,
        "tier": tier,
        "resource_type": str(job.get("ResourceType")),
        "account_id": str(job.get("AccountId") or account_id),
        "region": region,
        "source_resource_arn": str(job.get("SourceResourceArn") or "unknown"),
        "created_resource_arn": str(job["CreatedResourceArn"]),
        "recovery_point_arn": str(job["RecoveryPointArn"]),
        "recovery_point_created_at": evidence.iso(job["RecoveryPointCreationDate"]),
        "restore_started_at": evidence.iso(job["CreationDate"]),
        "restore_completed_at": evidence.iso(job["CompletionDate"]),
        "restore_duration_seconds": duration,
        "recovery_point_age_seconds": age,
        "validation": {
            "status": status,
            "message": message,
            "reported": reported,
            "checks": [c.to_dict() for c in checks],
        },
        "validated_at": evidence.iso(validated_at),
    }
    evidence.validate(record)
    return record


def validate_restore(
    detail: Mapping[str, Any], settings: Settings, clients: Clients, now: datetime | None = None
) -> Outcome | None:
    """Check the restored resource of a completed restore test, report, record; None for another job."""
    backup = clients("backup")
    job_id = str(detail["restoreJobId"])
    job: dict[str, Any] = backup.describe_restore_job(RestoreJobId=job_id)
    plan = str(detail.get("restoreTestingPlanArn") or job.get("CreatedBy", {}).get("RestoreTestingPlanArn") or "")
    if not plan:
        LOG.info("restore job %s was not started by restore testing: nothing to validate", job_id)
        return None
    if job.get("Status") != "COMPLETED":
        LOG.info("restore job %s is %s, not COMPLETED: nothing to validate", job_id, job.get("Status"))
        return None
    checks = checks_for(clients, job, settings)
    status, message = verdict(checks)
    reported = True
    try:
        backup.put_restore_validation_result(
            RestoreJobId=job_id, ValidationStatus=status, ValidationStatusMessage=message
        )
    except ClientError as error:
        # A status already set cannot be changed: the evidence says this run's verdict was not recorded by AWS.
        LOG.error("PutRestoreValidationResult for %s failed: %s", job_id, _error(error))
        reported = False
    tier = settings.plan_tiers.get(plan, "unknown")
    record = evidence_record(
        job,
        checks,
        reported=reported,
        plan_arn=plan,
        tier=tier,
        account_id=settings.account_id,
        region=settings.region,
        validated_at=now or datetime.now(UTC),
    )
    duration, age = record["restore_duration_seconds"], record["recovery_point_age_seconds"]
    dimensions = [{"Name": "Tier", "Value": tier}, {"Name": "ResourceType", "Value": record["resource_type"]}]
    clients("cloudwatch").put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[
            {
                "MetricName": METRIC_RESTORE_DURATION,
                "Dimensions": dimensions,
                "Timestamp": job["CompletionDate"],
                "Value": duration,
                "Unit": "Seconds",
            },
            {
                "MetricName": METRIC_RECOVERY_POINT_AGE,
                "Dimensions": dimensions,
                "Timestamp": job["CompletionDate"],
                "Value": age / 3600,
                "Unit": "None",  # CloudWatch's StandardUnit has no hours
            },
        ],
    )
    if settings.bucket:
        key = evidence.evidence_key(record["account_id"], settings.region, job["CompletionDate"], job_id)
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.key_arn} if settings.key_arn else {}
        clients("s3").put_object(
            Bucket=settings.bucket,
            Key=key,
            Body=json.dumps(record, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
            **extra,
        )
        return Outcome(record, f"s3://{settings.bucket}/{key}")
    LOG.warning("no evidence bucket configured: evidence of %s logged only: %s", job_id, json.dumps(record))
    return Outcome(record, None)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: the EventBridge event of a completed restore testing job."""
    settings = Settings.from_environment(os.environ, context)
    outcome = validate_restore(event["detail"], settings, session_clients(settings.region))
    if outcome is None:
        return {"validated": False}
    record = outcome.record
    return {
        "validated": True,
        "status": record["validation"]["status"],
        "evidence": outcome.location,
        "restore_duration_seconds": record["restore_duration_seconds"],
        "recovery_point_age_seconds": record["recovery_point_age_seconds"],
    }
