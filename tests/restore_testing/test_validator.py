"""The restore test validation function against moto (S3, RDS, CloudWatch) and a stubbed AWS Backup client.

moto does not implement AWS Backup's restore jobs (DescribeRestoreJob, GetRestoreJobMetadata,
PutRestoreValidationResult): the backup client is a real botocore client under botocore's Stubber, which checks each
request against the service model and answers what the test gives.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from moto.s3.models import s3_backends

from pgf_backup import constants
from pgf_backup.restore_testing import evidence, validator
from pgf_backup.restore_testing.validator import Settings, validate_restore

REGION = "ca-central-1"
ACCOUNT = "123456789012"  # moto's account
PLAN = f"arn:aws:backup:{REGION}:{ACCOUNT}:restore-testing-plan:pgf_prod_restore_tests"
JOB = "A1B2C3D4-5678-90AB-CDEF-EXAMPLE11111"
RESTORED = "awsbackup-restore-test-abc123"
SOURCE = "pgf-prod-data"
POINT_AT = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
STARTED = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
COMPLETED = datetime(2026, 3, 1, 5, 12, 30, tzinfo=UTC)
REPORTS = "pgf-backup-reports-test"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto's S3, RDS and CloudWatch, with the reports bucket."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=REPORTS, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield {
            "s3": s3,
            "rds": boto3.client("rds", region_name=REGION),
            "cloudwatch": boto3.client("cloudwatch", region_name=REGION),
        }


def _job(resource_type: str, created: str, point: str, source: str) -> dict[str, Any]:
    return {
        "AccountId": ACCOUNT,
        "RestoreJobId": JOB,
        "RecoveryPointArn": point,
        "SourceResourceArn": source,
        "CreationDate": STARTED,
        "CompletionDate": COMPLETED,
        "Status": "COMPLETED",
        "CreatedResourceArn": created,
        "ResourceType": resource_type,
        "RecoveryPointCreationDate": POINT_AT,
        "CreatedBy": {"RestoreTestingPlanArn": PLAN},
    }


class Backup:
    """A stubbed AWS Backup client: the describe answer given, every PutRestoreValidationResult recorded."""

    def __init__(self, job: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
        self.client = boto3.client("backup", region_name=REGION)
        self.stub = Stubber(self.client)
        self.stub.add_response("describe_restore_job", job, {"RestoreJobId": JOB})
        if metadata is not None:
            self.stub.add_response("get_restore_job_metadata", {"Metadata": metadata}, {"RestoreJobId": JOB})
        self.stub.add_response(
            "put_restore_validation_result",
            {},
            {"RestoreJobId": JOB, "ValidationStatus": ANY, "ValidationStatusMessage": ANY},
        )
        self.stub.activate()

    def reported(self) -> dict[str, Any]:
        """The PutRestoreValidationResult request the function sent."""
        self.stub.assert_no_pending_responses()
        (call,) = [c for c in self.calls if c[0] == "PutRestoreValidationResult"]
        return call[1]

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return self._calls

    def record(self) -> None:
        """Record the parameters of each request (Stubber checks, this remembers)."""
        self._calls: list[tuple[str, dict[str, Any]]] = []

        def before(params: dict[str, Any], model: Any, **_: Any) -> None:
            self._calls.append((model.name, dict(params)))

        self.client.meta.events.register("provide-client-params.backup.*", before)


def _clients(aws: dict[str, Any], backup: Backup) -> validator.Clients:
    def client(name: str) -> Any:
        return backup.client if name == "backup" else aws[name]

    return client


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "account_id": ACCOUNT,
        "region": REGION,
        "bucket": REPORTS,
        "plan_tiers": {PLAN: "prod"},
        "s3_sample_size": 10,
    }
    return Settings(**{**values, **overrides})


def _run(
    aws: dict[str, Any], job: dict[str, Any], metadata: dict[str, str] | None = None, **settings: Any
) -> tuple[validator.Outcome, dict[str, Any]]:
    backup = Backup(job, metadata)
    backup.record()
    outcome = validate_restore(
        {"restoreJobId": JOB, "restoreTestingPlanArn": PLAN}, _settings(**settings), _clients(aws, backup)
    )
    assert outcome is not None
    return outcome, backup.reported()


def _bucket(s3: Any, name: str, objects: dict[str, bytes], checksum: str | None = "SHA256") -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    for key, body in objects.items():
        extra = {"ChecksumAlgorithm": checksum} if checksum else {}
        s3.put_object(Bucket=name, Key=key, Body=body, **extra)


def _s3_job() -> dict[str, Any]:
    return _job(
        "S3",
        f"arn:aws:s3:::{RESTORED}",
        f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:continuous:{SOURCE}-1a2b3c4d",
        f"arn:aws:s3:::{SOURCE}",
    )


def _checks(outcome: validator.Outcome) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in outcome.record["validation"]["checks"]}


OBJECTS = {f"data/part-{n:03d}.csv": f"row,{n}\n".encode() * (n + 1) for n in range(25)}


# ---------------------------------------------------------------------------------------------
# S3


def test_s3_success_reports_writes_evidence_and_metrics(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], RESTORED, OBJECTS)
    outcome, reported = _run(aws, _s3_job())
    assert reported["ValidationStatus"] == "SUCCESSFUL", reported
    checks = _checks(outcome)
    assert checks["s3:object_count"] == {
        "name": "s3:object_count",
        "status": "passed",
        "detail": f"25 objects in {RESTORED}",
    }
    assert checks["s3:checksums"]["status"] == "passed"
    assert checks["s3:checksums"]["detail"].startswith("10 sampled: 10 verified, 0 mismatched")
    # In the backup account the source is another account's bucket: not compared, and said so.
    assert checks["s3:source_objects"]["status"] == "skipped"
    record = outcome.record
    assert record["restore_duration_seconds"] == 750.0  # 05:00:00 -> 05:12:30: the RTO
    assert record["recovery_point_age_seconds"] == 7200.0  # 03:00 -> 05:00: the RPO
    assert record["tier"] == "prod" and record["resource_type"] == "S3"
    key = f"restore-tests/{ACCOUNT}/{REGION}/2026/03/{JOB}.json"
    assert outcome.location == f"s3://{REPORTS}/{key}"
    stored = json.loads(aws["s3"].get_object(Bucket=REPORTS, Key=key)["Body"].read())
    assert stored == record
    jsonschema.validate(stored, evidence.load_schema())
    metrics = aws["cloudwatch"].list_metrics(Namespace=constants.METRIC_NAMESPACE)["Metrics"]
    names = {m["MetricName"]: {d["Name"]: d["Value"] for d in m["Dimensions"]} for m in metrics}
    assert names == {
        constants.METRIC_RESTORE_DURATION: {"Tier": "prod", "ResourceType": "S3"},
        constants.METRIC_RECOVERY_POINT_AGE: {"Tier": "prod", "ResourceType": "S3"},
    }
    stats = aws["cloudwatch"].get_metric_statistics(
        Namespace=constants.METRIC_NAMESPACE,
        MetricName=constants.METRIC_RECOVERY_POINT_AGE,
        Dimensions=[{"Name": "Tier", "Value": "prod"}, {"Name": "ResourceType", "Value": "S3"}],
        StartTime=STARTED,
        EndTime=datetime(2026, 3, 2, tzinfo=UTC),
        Period=3600,
        Statistics=["Maximum"],
    )
    assert [p["Maximum"] for p in stats["Datapoints"]] == [2.0]  # hours


def test_s3_empty_restore_is_missing_objects(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], RESTORED, {})
    outcome, reported = _run(aws, _s3_job())
    assert reported["ValidationStatus"] == "FAILED"
    assert "missing objects" in reported["ValidationStatusMessage"]
    assert _checks(outcome)["s3:object_count"]["status"] == "failed"
    assert outcome.record["validation"]["status"] == "FAILED"


def test_s3_objects_missing_from_the_source_are_found(aws: dict[str, Any]) -> None:
    # Workload-account testing: the source bucket is readable. Objects written before the recovery point must be
    # in the restore; one is not.
    _bucket(aws["s3"], SOURCE, OBJECTS)
    restored = dict(OBJECTS)
    del restored["data/part-007.csv"]
    _bucket(aws["s3"], RESTORED, restored)
    job = _s3_job()
    job["RecoveryPointCreationDate"] = datetime.now(UTC)  # after moto's LastModified of every source object
    job["CreationDate"] = datetime.now(UTC)
    job["CompletionDate"] = datetime.now(UTC)
    outcome, reported = _run(aws, job, compare_source=True)
    check = _checks(outcome)["s3:source_objects"]
    assert check["status"] == "failed"
    assert "missing objects: 1 absent (data/part-007.csv)" in check["detail"]
    assert reported["ValidationStatus"] == "FAILED" and "data/part-007.csv" in reported["ValidationStatusMessage"]


def test_s3_source_objects_all_present(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], SOURCE, OBJECTS)
    _bucket(aws["s3"], RESTORED, OBJECTS)
    job = _s3_job()
    now = datetime.now(UTC)
    job.update(RecoveryPointCreationDate=now, CreationDate=now, CompletionDate=now)
    outcome, reported = _run(aws, job, compare_source=True)
    assert _checks(outcome)["s3:source_objects"]["status"] == "passed"
    assert reported["ValidationStatus"] == "SUCCESSFUL"


def test_s3_checksum_mismatch_is_found(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], RESTORED, OBJECTS)
    # The bytes of a restored object change after S3 recorded its checksum (what a corrupt restore would look like).
    stored = s3_backends[ACCOUNT]["aws"].get_object(RESTORED, "data/part-000.csv")
    assert stored is not None
    stored.value = b"tampered\n"
    outcome, reported = _run(aws, _s3_job())
    check = _checks(outcome)["s3:checksums"]
    assert check["status"] == "failed"
    expected = base64.b64encode(hashlib.sha256(OBJECTS["data/part-000.csv"]).digest()).decode()
    actual = base64.b64encode(hashlib.sha256(b"tampered\n").digest()).decode()
    assert "data/part-000.csv: SHA256 mismatch" in check["detail"]
    assert expected in check["detail"] and actual in check["detail"]
    assert check["detail"].startswith("10 sampled: 9 verified, 1 mismatched")
    assert reported["ValidationStatus"] == "FAILED" and "checksum mismatch" in reported["ValidationStatusMessage"]


def test_s3_crc32_and_etag_are_recomputed(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], RESTORED, {"a": b"alpha", "b": b"beta"}, checksum="CRC32")
    outcome, _ = _run(aws, _s3_job())
    assert _checks(outcome)["s3:checksums"]["detail"].startswith("2 sampled: 2 verified")


def test_s3_objects_above_the_size_limit_are_not_downloaded(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], RESTORED, {"big": b"x" * 100})
    outcome, reported = _run(aws, _s3_job(), s3_checksum_max_bytes=10)
    check = _checks(outcome)["s3:checksums"]
    assert check["status"] == "skipped" and "above S3_CHECKSUM_MAX_BYTES" in check["detail"]
    assert reported["ValidationStatus"] == "SUCCESSFUL"  # nothing wrong was found; nothing claimed either


def test_sample_is_evenly_spaced_and_stable() -> None:
    keys = [f"k{n:03d}" for n in range(100)]
    assert validator._sample(list(reversed(keys)), 4) == ["k000", "k025", "k050", "k075"]
    assert validator._sample(keys[:3], 10) == keys[:3]


def test_crc64nvme_check_value() -> None:
    # The CRC RevEng catalogue's check value of CRC-64/NVME (the checksum S3 computes by default).
    crc = evidence.Crc64Nvme()
    crc.update(b"1234")
    crc.update(b"56789")
    assert crc.digest().hex() == "ae8b14860a799888"


# ---------------------------------------------------------------------------------------------
# RDS


def _db(rds: Any, name: str, engine: str = "postgres", encrypted: bool = True) -> str:
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine=engine,
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="admin_user",
        MasterUserPassword="a-long-test-password",
        StorageEncrypted=encrypted,
    )
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{name}"


def _snapshot(rds: Any, engine: str = "postgres") -> str:
    _db(rds, "pgf-prod-source", engine)
    rds.create_db_snapshot(DBSnapshotIdentifier="awsbackup-copy-1", DBInstanceIdentifier="pgf-prod-source")
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:awsbackup-copy-1"


def _rds_job(created: str, point: str) -> dict[str, Any]:
    return _job("RDS", created, point, "arn:aws:rds:ca-central-1:400000000040:db:pgf-prod-source")


def test_rds_success(aws: dict[str, Any]) -> None:
    point = _snapshot(aws["rds"])
    created = _db(aws["rds"], f"{RESTORED}-db")
    outcome, reported = _run(aws, _rds_job(created, point))
    checks = _checks(outcome)
    assert {name: c["status"] for name, c in checks.items()} == {
        "rds:available": "passed",
        "rds:encrypted": "passed",
        "rds:engine": "passed",
        "rds:not_public": "passed",
    }
    assert reported == {
        "RestoreJobId": JOB,
        "ValidationStatus": "SUCCESSFUL",
        "ValidationStatusMessage": "4 checks passed, 0 skipped",
    }
    jsonschema.validate(outcome.record, evidence.load_schema())


def test_rds_wrong_engine(aws: dict[str, Any]) -> None:
    point = _snapshot(aws["rds"], engine="postgres")
    created = _db(aws["rds"], f"{RESTORED}-db", engine="mysql")
    outcome, reported = _run(aws, _rds_job(created, point))
    assert _checks(outcome)["rds:engine"] == {
        "name": "rds:engine",
        "status": "failed",
        "detail": "wrong engine: mysql, the recovery point's is postgres",
    }
    assert reported["ValidationStatus"] == "FAILED" and "wrong engine" in reported["ValidationStatusMessage"]


def test_rds_unencrypted(aws: dict[str, Any]) -> None:
    point = _snapshot(aws["rds"])
    created = _db(aws["rds"], f"{RESTORED}-db", encrypted=False)
    outcome, reported = _run(aws, _rds_job(created, point))
    assert _checks(outcome)["rds:encrypted"]["status"] == "failed"
    assert "unencrypted storage" in reported["ValidationStatusMessage"]


def test_rds_not_available(aws: dict[str, Any]) -> None:
    point = _snapshot(aws["rds"])
    created = _db(aws["rds"], f"{RESTORED}-db")
    aws["rds"].stop_db_instance(DBInstanceIdentifier=f"{RESTORED}-db")
    outcome, reported = _run(aws, _rds_job(created, point))
    check = _checks(outcome)["rds:available"]
    assert check["status"] == "failed" and "not available" in check["detail"]
    assert reported["ValidationStatus"] == "FAILED"


def test_rds_restored_instance_missing_is_a_named_failure(aws: dict[str, Any]) -> None:
    point = _snapshot(aws["rds"])
    outcome, reported = _run(aws, _rds_job(f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{RESTORED}-gone", point))
    (check,) = outcome.record["validation"]["checks"]
    assert check["name"] == "rds:describe" and "DBInstanceNotFound" in check["detail"]
    assert reported["ValidationStatus"] == "FAILED"


def test_cluster_engine_from_inferred_metadata(aws: dict[str, Any]) -> None:
    aws["rds"].create_db_cluster(
        DBClusterIdentifier=f"{RESTORED}-cluster",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-test-password",
        StorageEncrypted=True,
    )
    job = _job(
        "Aurora",
        f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{RESTORED}-cluster",
        f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:1EB3B5E7",
        "arn:aws:rds:ca-central-1:400000000040:cluster:pgf-prod",
    )
    outcome, reported = _run(aws, job, metadata={"Engine": "aurora-mysql"})
    assert (
        _checks(outcome)["rds:engine"]["detail"]
        == "wrong engine: aurora-postgresql, the recovery point's is aurora-mysql"
    )
    assert reported["ValidationStatus"] == "FAILED"


# ---------------------------------------------------------------------------------------------
# What is not validated, and the report itself


def test_a_job_not_started_by_restore_testing_is_left_alone(aws: dict[str, Any]) -> None:
    job = _s3_job()
    del job["CreatedBy"]
    backup = Backup(job)
    outcome = validate_restore({"restoreJobId": JOB}, _settings(), _clients(aws, backup))
    assert outcome is None
    with pytest.raises(AssertionError):
        backup.stub.assert_no_pending_responses()  # no PutRestoreValidationResult was sent


def test_a_verdict_aws_refuses_is_recorded_as_not_reported(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], RESTORED, OBJECTS)
    client = boto3.client("backup", region_name=REGION)
    stub = Stubber(client)
    stub.add_response("describe_restore_job", _s3_job(), {"RestoreJobId": JOB})
    stub.add_client_error("put_restore_validation_result", "InvalidRequestException", "validation status already set")
    stub.activate()
    outcome = validate_restore({"restoreJobId": JOB}, _settings(), lambda n: client if n == "backup" else aws[n])
    assert outcome is not None
    assert outcome.record["validation"]["reported"] is False
    assert outcome.record["restore_testing_plan_arn"] == PLAN  # from DescribeRestoreJob's CreatedBy
    jsonschema.validate(outcome.record, evidence.load_schema())


def test_no_bucket_no_evidence_written(aws: dict[str, Any]) -> None:
    _bucket(aws["s3"], RESTORED, OBJECTS)
    outcome, _ = _run(aws, _s3_job(), bucket=None)
    assert outcome.location is None
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=REPORTS)


def test_constants_repeated_in_the_package_agree() -> None:
    assert validator.METRIC_NAMESPACE == constants.METRIC_NAMESPACE
    assert validator.METRIC_RESTORE_DURATION == constants.METRIC_RESTORE_DURATION
    assert validator.METRIC_RECOVERY_POINT_AGE == constants.METRIC_RECOVERY_POINT_AGE
    assert evidence.EVIDENCE_PREFIX == constants.RESTORE_EVIDENCE_PREFIX


def test_clients_retry_adaptively() -> None:
    client = validator.session_clients(REGION)("backup")
    assert client.meta.config.retries["mode"] == "adaptive"


def test_settings_from_the_environment() -> None:
    class Context:
        invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pgf-backup-restore-validator:live"

    settings = Settings.from_environment(
        {
            "EVIDENCE_BUCKET": REPORTS,
            "PLAN_TIERS": json.dumps({PLAN: "prod"}),
            "S3_SAMPLE_SIZE": "5",
            "COMPARE_SOURCE": "true",
        },
        Context(),
    )
    assert (settings.account_id, settings.region, settings.bucket, settings.key_arn) == (ACCOUNT, REGION, REPORTS, None)
    assert settings.plan_tiers == {PLAN: "prod"} and settings.s3_sample_size == 5 and settings.compare_source
