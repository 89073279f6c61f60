"""`pgf-backup drill` and `drill report`: restores into an isolated target against moto (S3, RDS), AWS Backup's
restore jobs through botocore's Stubber (moto has none), evidence checked against its schema, cleanup, Ctrl-C."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from pgf_backup.automation import cli, drill_command
from pgf_backup.automation.status import ExitStatus
from pgf_backup.ops import drill
from pgf_backup.project import Project
from pgf_backup.restore_testing import evidence
from pgf_backup.restore_testing.validator import Check, evidence_record
from tests.ops.conftest import moto_as

PRIMARY = "ca-central-1"
BACKUP_ACCOUNT, PROD_ACCOUNT = "100000000010", "400000000040"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BUCKET_ARN = "arn:aws:s3:::pgf-documents-prod"
DB_ARN = f"arn:aws:rds:{PRIMARY}:{PROD_ACCOUNT}:db:pgf-audit"
REPORTS = f"pgf-backup-reports-{BACKUP_ACCOUNT}"
SERVICE_ROLE = f"arn:aws:iam::{BACKUP_ACCOUNT}:role/pgf-backup-service-role"
POINT = f"arn:aws:backup:{PRIMARY}:{BACKUP_ACCOUNT}:recovery-point:1EB3B5E7-9EB0-435A-A80B-108B488B0D45"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, with the backup account as the caller's (drills restore there by default)."""
    yield from moto_as(monkeypatch, BACKUP_ACCOUNT)


class World:
    """moto clients, and one stubbed AWS Backup client whose answers each test queues."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.backup = boto3.client("backup", region_name=PRIMARY)
        self.stub = Stubber(self.backup)
        self.started: list[dict[str, Any]] = []
        self.backup.meta.events.register(
            "provide-client-params.backup.StartRestoreJob", lambda params, **_: self.started.append(dict(params))
        )

    def client(self, service: str, region: str) -> Any:
        if service == "backup":
            return self.backup
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=region)  # type: ignore[call-overload]
        return self.clients[service]

    def queue_restore(self, arn: str, kind: str, created: str, statuses: list[str], message: str = "") -> None:
        """A recovery point, its metadata, the restore job, then DescribeRestoreJob answering `statuses`."""
        point_time = NOW - timedelta(hours=5)
        self.stub.add_response(
            "list_recovery_points_by_backup_vault",
            {
                "RecoveryPoints": [
                    {"RecoveryPointArn": POINT, "Status": "COMPLETED", "CreationDate": point_time},
                    {"RecoveryPointArn": POINT + "0", "Status": "PARTIAL", "CreationDate": NOW},
                ]
            },
            {"BackupVaultName": "pgf-prod", "ByResourceArn": arn},
        )
        self.stub.add_response(
            "get_recovery_point_restore_metadata",
            {"RestoreMetadata": {"Encrypted": "true"}},
            {"BackupVaultName": "pgf-prod", "RecoveryPointArn": POINT},
        )
        self.stub.add_response(
            "start_restore_job",
            {"RestoreJobId": "job-1"},
            {
                "RecoveryPointArn": POINT,
                "Metadata": ANY,
                "IamRoleArn": SERVICE_ROLE,
                "IdempotencyToken": ANY,
                "ResourceType": kind,
            },
        )
        for status in statuses:
            job: dict[str, Any] = {
                "RestoreJobId": "job-1",
                "Status": status,
                "AccountId": BACKUP_ACCOUNT,
                "RecoveryPointArn": POINT,
                "SourceResourceArn": arn,
                "ResourceType": kind,
                "CreationDate": NOW,
                "RecoveryPointCreationDate": point_time,
            }
            if message:
                job["StatusMessage"] = message
            if status == "COMPLETED":
                job.update({"CompletionDate": NOW + timedelta(minutes=42), "CreatedResourceArn": created})
            self.stub.add_response("describe_restore_job", job, {"RestoreJobId": "job-1"})


@pytest.fixture
def world(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    made = World()
    made.client("s3", PRIMARY).create_bucket(Bucket=REPORTS, CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    monkeypatch.setattr(drill_command, "_assume", lambda account, role, region, what: object())
    monkeypatch.setattr(drill_command, "_factory", lambda session: made.client)
    monkeypatch.setattr(drill_command, "_now", lambda: NOW)
    # The waiter polls every 30 s (drill.POLL_SECONDS): its sleeps are skipped here, its attempts are counted.
    monkeypatch.setattr("botocore.waiter.time.sleep", lambda seconds: None)
    with made.stub:
        yield made


def _run(project: Project, *argv: str) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(["--project-dir", str(project.root), *argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def _restored_bucket(world: World, name: str, objects: int = 3) -> None:
    """What AWS Backup's S3 restore leaves: a new bucket holding the objects."""
    s3 = world.client("s3", PRIMARY)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    for index in range(objects):
        s3.put_object(Bucket=name, Key=f"docs/{index}.txt", Body=f"document {index}".encode())


def _restored_instance(world: World, name: str) -> None:
    world.client("rds", PRIMARY).create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="password-1234",
        StorageEncrypted=True,
        PubliclyAccessible=False,
        AllocatedStorage=20,
    )


BUCKET_COPY = drill.drill_name(drill.Resource.of(BUCKET_ARN), NOW, 63)
DB_COPY = drill.drill_name(drill.Resource.of(DB_ARN), NOW, 63)


def test_s3_drill_restores_validates_records_and_cleans_up(world: World, project: Project, tmp_path: Path) -> None:
    _restored_bucket(world, BUCKET_COPY)
    world.queue_restore(BUCKET_ARN, "S3", f"arn:aws:s3:::{BUCKET_COPY}", ["RUNNING", "COMPLETED", "COMPLETED"])
    status, out, err = _run(
        project, "drill", "--stack", "prod", "--resource", BUCKET_ARN, "--out-dir", str(tmp_path), "--json"
    )
    assert status == ExitStatus.OK, err
    [result] = json.loads(out)
    # A new bucket, never the source.
    assert world.started[0]["Metadata"] == {
        "Encrypted": "true",
        "DestinationBucketName": BUCKET_COPY,
        "NewBucket": "true",
    }
    record = result["evidence"]
    evidence.validate(record)
    assert record["started_by"] == "drill"
    assert record["restore_duration_seconds"] == 42 * 60  # RTO: the job's duration
    assert record["recovery_point_age_seconds"] == 5 * 3600  # RPO: the point's age at the start
    assert record["validation"]["status"] == "SUCCESSFUL"
    key = evidence.evidence_key(BACKUP_ACCOUNT, PRIMARY, NOW + timedelta(minutes=42), "job-1")
    s3 = world.client("s3", PRIMARY)
    assert json.loads(s3.get_object(Bucket=REPORTS, Key=key)["Body"].read()) == record
    assert b"RTO: 0.70 h (target 4 h): met" in s3.get_object(Bucket=REPORTS, Key=key[:-5] + ".md")["Body"].read()
    assert json.loads((tmp_path / key).read_text()) == record
    # Cleaned up: the restored bucket is gone, the source untouched (it never existed here to be touched).
    assert result["cleaned_up"] is True
    assert BUCKET_COPY not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_keep_leaves_the_restored_bucket(world: World, project: Project, tmp_path: Path) -> None:
    _restored_bucket(world, BUCKET_COPY)
    world.queue_restore(BUCKET_ARN, "S3", f"arn:aws:s3:::{BUCKET_COPY}", ["COMPLETED", "COMPLETED"])
    status, out, _ = _run(
        project, "drill", "--stack", "prod", "--resource", BUCKET_ARN, "--out-dir", str(tmp_path), "--keep"
    )
    assert status == ExitStatus.OK
    assert f"restored as arn:aws:s3:::{BUCKET_COPY}: kept (--keep)" in out
    assert BUCKET_COPY in [b["Name"] for b in world.client("s3", PRIMARY).list_buckets()["Buckets"]]


def test_rds_drill_restores_into_the_isolated_network(world: World, project: Project, tmp_path: Path) -> None:
    _restored_instance(world, DB_COPY)
    created = f"arn:aws:rds:{PRIMARY}:{BACKUP_ACCOUNT}:db:{DB_COPY}"
    world.queue_restore(DB_ARN, "RDS", created, ["COMPLETED", "COMPLETED"])
    status, out, err = _run(project, "drill", "--stack", "prod", "--resource", DB_ARN, "--out-dir", str(tmp_path))
    assert status == ExitStatus.OK, err
    metadata = world.started[0]["Metadata"]
    # Pulumi.backup.yaml's restore_testing.prod.network, not public, a new identifier.
    assert metadata["DBInstanceIdentifier"] == DB_COPY
    assert metadata["DBSubnetGroupName"] == "restore-tests-isolated"
    assert json.loads(metadata["VpcSecurityGroupIds"]) == ["sg-0123456789abcdef0"]
    assert metadata["PubliclyAccessible"] == "false"
    assert "validation SUCCESSFUL" in out
    assert world.client("rds", PRIMARY).describe_db_instances()["DBInstances"] == []


def test_failed_restore_exits_1_with_aws_message(world: World, project: Project, tmp_path: Path) -> None:
    world.queue_restore(BUCKET_ARN, "S3", "", ["RUNNING", "FAILED"], message="Access Denied on the KMS key")
    status, out, err = _run(project, "drill", "--stack", "prod", "--resource", BUCKET_ARN, "--out-dir", str(tmp_path))
    assert status == ExitStatus.FAILED
    assert "problem: restore job job-1 FAILED: Access Denied on the KMS key" in out
    assert "1 of 1 drill(s) failed" in err
    assert not any(tmp_path.rglob("*.json"))  # no evidence of a restore that did not happen


def test_timeout_exits_1_naming_the_job(world: World, project: Project, tmp_path: Path) -> None:
    # One minute at one read every 30 s: two reads, both RUNNING; a third would find no queued answer.
    world.queue_restore(BUCKET_ARN, "S3", "", ["RUNNING", "RUNNING"])
    status, out, _ = _run(
        project,
        "drill",
        "--stack",
        "prod",
        "--resource",
        BUCKET_ARN,
        "--timeout-minutes",
        "1",
        "--out-dir",
        str(tmp_path),
    )
    assert status == ExitStatus.FAILED
    assert "problem: restore job job-1 not finished after 60 s (last status RUNNING); it goes on in AWS" in out
    world.stub.assert_no_pending_responses()


def test_ctrl_c_during_the_wait_still_cleans_up(
    world: World, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _restored_bucket(world, BUCKET_COPY)
    world.queue_restore(BUCKET_ARN, "S3", "", [])

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(drill, "wait_for_restore", interrupted)
    status, _, err = _run(project, "drill", "--stack", "prod", "--resource", BUCKET_ARN, "--out-dir", str(tmp_path))
    assert status == ExitStatus.INTERRUPTED
    assert "interrupted; restore job job-1 may still run in AWS" in err
    assert f"restored as {BUCKET_COPY}: deleted" in err
    assert BUCKET_COPY not in [b["Name"] for b in world.client("s3", PRIMARY).list_buckets()["Buckets"]]


def test_access_denied_is_one_line(world: World, project: Project, tmp_path: Path) -> None:
    world.stub.add_client_error(
        "list_recovery_points_by_backup_vault", "AccessDeniedException", "not authorized to list recovery points"
    )
    status, _, err = _run(project, "drill", "--stack", "prod", "--resource", BUCKET_ARN, "--out-dir", str(tmp_path))
    assert status == ExitStatus.FAILED
    assert "AWS refused ListRecoveryPointsByBackupVault: AccessDeniedException" in err
    assert "Traceback" not in err


def test_no_recovery_point_is_named(world: World, project: Project, tmp_path: Path) -> None:
    world.stub.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": []})
    status, out, _ = _run(project, "drill", "--stack", "prod", "--resource", BUCKET_ARN, "--out-dir", str(tmp_path))
    assert status == ExitStatus.FAILED
    assert f"no completed recovery point of {BUCKET_ARN} in vault pgf-prod" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drill", "--resource", BUCKET_ARN], "drill needs --stack"),
        (["drill", "--stack", "prod"], "say what to drill"),
        (["drill", "--stack", "backup", "--all"], "stack 'backup' is the backup-account stack"),
        (["drill", "--stack", "prod", "--resource", "arn:aws:dynamodb:ca-central-1:1:table/x"], "--resource:"),
        (["drill", "report", "--quarter", "2026Q5"], "is not a quarter"),
    ],
)
def test_usage_errors_exit_2(project: Project, argv: list[str], message: str) -> None:
    status, _, err = _run(project, *argv)
    assert status == ExitStatus.USAGE
    assert message in err


def test_cleanup_refuses_what_a_drill_did_not_name() -> None:
    with pytest.raises(drill.DrillError, match="not created by a drill"):
        drill.clean_up(lambda service, region: None, PRIMARY, "S3", "pgf-documents-prod")


# ---------------------------------------------------------------------------------------------
# drill report


def _record(
    job_id: str, tier: str, minutes: float, age_hours: float, by: str, status: str = "passed"
) -> dict[str, Any]:
    started = datetime(2026, 11, 3, 5, 0, tzinfo=UTC)
    job = {
        "RestoreJobId": job_id,
        "AccountId": BACKUP_ACCOUNT,
        "ResourceType": "S3",
        "SourceResourceArn": BUCKET_ARN,
        "CreatedResourceArn": "arn:aws:s3:::drill-x",
        "RecoveryPointArn": POINT,
        "RecoveryPointCreationDate": started - timedelta(hours=age_hours),
        "CreationDate": started,
        "CompletionDate": started + timedelta(minutes=minutes),
    }
    plan = "none" if by == "drill" else f"arn:aws:backup:{PRIMARY}:{BACKUP_ACCOUNT}:restore-testing-plan:pgf_prod-1"
    return evidence_record(
        job,
        [Check("s3:object_count", status, "3 objects")],  # type: ignore[arg-type]
        reported=True,
        plan_arn=plan,
        tier=tier,
        account_id=BACKUP_ACCOUNT,
        region=PRIMARY,
        validated_at=started + timedelta(hours=1),
        started_by=by,  # type: ignore[arg-type]
    )


def _folder(tmp_path: Path, *records: dict[str, Any]) -> Path:
    for record in records:
        (tmp_path / f"{record['restore_job_id']}.json").write_text(json.dumps(record))
    return tmp_path


def test_report_passes_when_targets_are_met_and_a_drill_ran(project: Project, tmp_path: Path) -> None:
    folder = _folder(
        tmp_path, _record("job-a", "prod", 42, 5, "drill"), _record("job-b", "dev", 120, 20, "restore-testing")
    )
    status, out, err = _run(project, "drill", "report", "--quarter", "2026Q4", "--dir", str(folder), "--json")
    assert status == ExitStatus.OK, err
    doc = json.loads(out)
    assert (doc["drills"], doc["restore_tests"]) == (1, 1)
    # The targets come from config: operations.rto_hours and alarms.rpo_hours of each tier.
    assert {(r["tier"], r["rto_target_hours"], r["rpo_target_hours"]) for r in doc["restores"]} == {
        ("prod", 4.0, 24.0),
        ("dev", 24.0, 24.0),
    }


def test_report_fails_on_a_missed_rto(project: Project, tmp_path: Path) -> None:
    folder = _folder(tmp_path, _record("job-a", "prod", 5 * 60, 5, "drill"))
    status, _, err = _run(project, "drill", "report", "--quarter", "2026Q4", "--dir", str(folder))
    assert status == ExitStatus.FAILED
    assert "job-a (prod, arn:aws:s3:::pgf-documents-prod): RTO 5.00 h over the target 4 h" in err


def test_report_fails_on_a_missed_rpo_and_a_failed_validation(project: Project, tmp_path: Path) -> None:
    folder = _folder(tmp_path, _record("job-a", "prod", 10, 30, "drill", status="failed"))
    status, _, err = _run(project, "drill", "report", "--quarter", "2026Q4", "--dir", str(folder))
    assert status == ExitStatus.FAILED
    assert "RPO 30.00 h over the target 24 h" in err
    assert "validation FAILED" in err


def test_report_fails_on_a_quarter_without_a_drill(project: Project, tmp_path: Path) -> None:
    folder = _folder(tmp_path, _record("job-b", "prod", 10, 5, "restore-testing"))
    status, _, err = _run(project, "drill", "report", "--quarter", "2026Q4", "--dir", str(folder))
    assert status == ExitStatus.FAILED
    assert "2026Q4: no drill recorded" in err
    # Another quarter's evidence does not count.
    (tmp_path / "q4").mkdir()
    _folder(tmp_path / "q4", _record("job-a", "prod", 10, 5, "drill"))  # completed in November: 2026Q4
    status, _, err = _run(project, "drill", "report", "--quarter", "2026Q3", "--dir", str(tmp_path))
    assert status == ExitStatus.FAILED
    assert "2026Q3: no drill recorded" in err


def test_report_refuses_an_object_that_is_not_evidence(project: Project, tmp_path: Path) -> None:
    record = _record("job-a", "prod", 10, 5, "drill")
    del record["validation"]
    _folder(tmp_path, record)
    status, _, err = _run(project, "drill", "report", "--quarter", "2026Q4", "--dir", str(tmp_path))
    assert status == ExitStatus.FAILED
    assert "job-a.json: not restore evidence" in err


def test_report_reads_the_reports_buckets(world: World, project: Project) -> None:
    record = _record("job-a", "prod", 42, 5, "drill")
    key = evidence.evidence_key(BACKUP_ACCOUNT, PRIMARY, datetime(2026, 11, 3, 5, 42, tzinfo=UTC), "job-a")
    s3 = world.client("s3", PRIMARY)
    s3.put_object(Bucket=REPORTS, Key=key, Body=json.dumps(record).encode())
    s3.put_object(Bucket=REPORTS, Key=key[:-5] + ".md", Body=b"# the Markdown copy is not read")
    for account in ("200000000020", "300000000030", PROD_ACCOUNT):
        s3.create_bucket(
            Bucket=f"pgf-backup-reports-{account}", CreateBucketConfiguration={"LocationConstraint": PRIMARY}
        )
    status, out, err = _run(project, "drill", "report", "--quarter", "2026Q4", "--json")
    assert status == ExitStatus.OK, err
    assert [r["restore_job_id"] for r in json.loads(out)["restores"]] == ["job-a"]


def test_all_drills_every_bucket_and_database_of_the_config(project: Project) -> None:
    args = cli.build_parser().parse_args(["drill", "--stack", "prod", "--all"])
    cfg = project.load_config("prod")
    assert isinstance(cfg, drill_command.WorkloadStack)
    found = {(r.arn, r.kind) for r in drill_command._resources(args, cfg)}
    assert found == {
        ("arn:aws:s3:::pgf-documents-prod", "S3"),
        ("arn:aws:s3:::pgf-exports-prod", "S3"),
        ("arn:aws:s3:::pgf-reports-prod", "S3"),
        (f"arn:aws:rds:{PRIMARY}:{PROD_ACCOUNT}:cluster:pgf-core", "Aurora"),
        (f"arn:aws:rds:{PRIMARY}:{PROD_ACCOUNT}:db:pgf-audit", "RDS"),
    }
