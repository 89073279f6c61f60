"""`pgf-backup restore copy-back`: a recovery point of the backup account copied back into a workload vault.

AWS Backup is answered by botocore's Stubber (each request checked against botocore's backup model and against the
parameters the copy must carry); the role session is a recorded fake; time is a fake clock the fake sleep advances.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pgf_backup.automation import cli, restore_command
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import WorkloadStack
from pgf_backup.ops import copy_back
from pgf_backup.project import Project

PRIMARY, COPY = "ca-central-1", "ca-west-1"
BACKUP, PROD = "100000000010", "400000000040"
CENTRAL_POINT = (
    f"arn:aws:rds:{PRIMARY}:{BACKUP}:cluster-snapshot:awsbackup:copyjob-19704517-ecab-48c3-b10b-29ce1fa9ffcd"
)
COPIED_POINT = f"arn:aws:rds:{PRIMARY}:{PROD}:cluster-snapshot:awsbackup:copyjob-2f7b7d6b-5edf-c5ca-ab64-fae53928c6c3"
JOB_ID = "5B4A1E7C-0D7E-4F8A-9C11-3E0A7B2C9D10"
TOKEN = "3f1d1f0e-7c55-4c8e-9a43-1b8d2b6a0c01"
DESTINATION = f"arn:aws:backup:{PRIMARY}:{PROD}:backup-vault:pgf-prod"
COPY_ROLE = f"arn:aws:iam::{BACKUP}:role/pgf-backup-service-role"
RESTORE_ROLE = f"arn:aws:iam::{PROD}:role/pgf-backup-service-role"


class Tty(io.StringIO):
    """stderr as a terminal: the progress line shows."""

    def isatty(self) -> bool:
        return True


@dataclass
class Aws:
    """The backup account's AWS Backup (stubbed), the sessions assumed, the sleeps and a fake clock."""

    stub: Stubber
    assumed: list[tuple[str, str, str]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    now: float = 1000.0

    def describe_point(self, vault: str, point: str = CENTRAL_POINT, resource_type: str = "Aurora") -> None:
        self.stub.add_response(
            "describe_recovery_point",
            {
                "RecoveryPointArn": point,
                "BackupVaultName": vault,
                "ResourceArn": f"arn:aws:rds:{PRIMARY}:{PROD}:cluster:pgf-core",
                "ResourceType": resource_type,
                "Status": "COMPLETED",
            },
            {"BackupVaultName": vault, "RecoveryPointArn": point},
        )

    def not_in(self, vault: str, point: str = CENTRAL_POINT) -> None:
        self.stub.add_client_error(
            "describe_recovery_point",
            service_error_code="ResourceNotFoundException",
            service_message=f"Recovery point {point} not found",
            http_status_code=404,
            expected_params={"BackupVaultName": vault, "RecoveryPointArn": point},
        )

    def start(self, vault: str = "pgf-prod", days: int = 35, point: str = CENTRAL_POINT) -> None:
        self.stub.add_response(
            "start_copy_job",
            {"CopyJobId": JOB_ID, "CreationDate": datetime(2026, 12, 2, 12, tzinfo=UTC)},
            {
                "RecoveryPointArn": point,
                "SourceBackupVaultName": vault,
                "DestinationBackupVaultArn": DESTINATION,
                "IamRoleArn": COPY_ROLE,
                "IdempotencyToken": TOKEN,
                "Lifecycle": {"DeleteAfterDays": days},
            },
        )

    def job(self, state: str, **extra: Any) -> None:
        self.stub.add_response(
            "describe_copy_job",
            {"CopyJob": {"CopyJobId": JOB_ID, "State": state, "DestinationBackupVaultArn": DESTINATION, **extra}},
            {"CopyJobId": JOB_ID},
        )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """The command wired to the stub; every stubbed response must be consumed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("backup", region_name=PRIMARY)  # type: ignore[call-overload]
    world = Aws(Stubber(client))

    def assume(account: str, role_arn: str, region: str, what: str) -> object:
        world.assumed.append((account, role_arn, region))
        return object()

    def sleep(seconds: float) -> None:
        world.sleeps.append(seconds)
        world.now += seconds

    monkeypatch.setattr(restore_command, "_assume", assume)
    monkeypatch.setattr(restore_command, "_factory", lambda session: lambda service, region: client)
    monkeypatch.setattr(restore_command, "_sleep", sleep)
    monkeypatch.setattr(restore_command, "_clock", lambda: world.now)
    monkeypatch.setattr(restore_command, "_token", lambda: TOKEN)
    with world.stub:
        yield world
    world.stub.assert_no_pending_responses()


def _run(project: Project, *argv: str, err: io.StringIO | None = None) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), err or io.StringIO()
    status = cli.main(["--project-dir", str(project.root), "restore", "copy-back", *argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_success_prints_the_copy_and_the_exact_restore_commands(aws: Aws, project: Project) -> None:
    aws.describe_point("pgf-prod")
    aws.start()
    aws.job("RUNNING")
    aws.job("COMPLETED", DestinationRecoveryPointArn=COPIED_POINT)
    status, out, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "prod", err=Tty())
    assert status == ExitStatus.OK, err
    # The backup account's deploy role, in the recovery point's region.
    assert aws.assumed == [(BACKUP, f"arn:aws:iam::{BACKUP}:role/pgf-backup-deploy", PRIMARY)]
    assert aws.sleeps == [restore_command.POLL_SECONDS]
    assert f"copy job {JOB_ID}: RUNNING" in err  # the progress line on a terminal
    lines = out.splitlines()
    assert f"  {COPIED_POINT}" in lines
    assert (
        f"  aws backup get-recovery-point-restore-metadata --region {PRIMARY} --backup-vault-name pgf-prod "
        f"--recovery-point-arn {COPIED_POINT} --query RestoreMetadata --output json > restore-metadata.json"
    ) in lines
    assert (
        f"  aws backup start-restore-job --region {PRIMARY} --recovery-point-arn {COPIED_POINT} "
        f"--iam-role-arn {RESTORE_ROLE} --resource-type Aurora --metadata file://restore-metadata.json"
    ) in lines
    assert "restoring-aur.html#aur-restore-cli" in out


def test_json_and_the_air_gapped_vault_tried_after_the_central_one(aws: Aws, project: Project) -> None:
    point = f"arn:aws:backup:{PRIMARY}:{BACKUP}:recovery-point:1EB3B5E7-9EB0-435A-A80B-108B488B0D45"
    copied = f"arn:aws:backup:{PRIMARY}:{PROD}:recovery-point:0A2C4E6F-1B3D-4F5A-8C7E-9D0B1A2C3E4F"
    aws.not_in("pgf-prod", point)
    aws.describe_point("pgf-prod-air-gapped", point, resource_type="S3")
    aws.start("pgf-prod-air-gapped", days=40, point=point)
    aws.job("COMPLETED", DestinationRecoveryPointArn=copied)
    status, out, err = _run(
        project, "--recovery-point", point, "--to", "prod", "--lifecycle-days", "40", "--role", "ops", "--json"
    )
    assert status == ExitStatus.OK, err
    assert aws.assumed == [(BACKUP, f"arn:aws:iam::{BACKUP}:role/ops", PRIMARY)]
    doc = json.loads(out)
    assert doc["copy_job_id"] == JOB_ID and doc["state"] == "COMPLETED"
    assert doc["source"]["vault"] == "pgf-prod-air-gapped"
    assert doc["destination"] == {
        "account": PROD,
        "vault": "pgf-prod",
        "vault_arn": DESTINATION,
        "recovery_point_arn": copied,
        "delete_after_days": 40,
    }
    assert "--resource-type S3 --metadata file://restore-metadata.json" in doc["next"]["commands"][1]


def test_a_recovery_point_in_no_vault_names_the_vaults_tried(aws: Aws, project: Project) -> None:
    aws.not_in("pgf-prod")
    aws.not_in("pgf-prod-air-gapped")
    status, out, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "prod")
    assert status == ExitStatus.FAILED
    assert err == (
        f"error: recovery point {CENTRAL_POINT} is not in vault pgf-prod nor pgf-prod-air-gapped of the backup "
        f"account {BACKUP} in {PRIMARY}\n"
    )
    assert out == ""


def test_a_failed_job_exits_1_with_aws_message(aws: Aws, project: Project) -> None:
    aws.describe_point("pgf-prod")
    aws.start()
    aws.job("CREATED")
    aws.job("FAILED", StatusMessage="Insufficient privileges to perform this action.")
    status, out, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "prod")
    assert status == ExitStatus.FAILED
    assert err.splitlines()[-1] == f"error: copy job {JOB_ID} FAILED: Insufficient privileges to perform this action."
    assert out == ""


def test_timeout_exits_1_naming_the_job_and_how_to_follow_it(aws: Aws, project: Project) -> None:
    # One minute at one poll each 20 seconds: described at 0, 20, 40 and 60 seconds.
    aws.describe_point("pgf-prod")
    aws.start()
    for _ in range(4):
        aws.job("RUNNING")
    status, out, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "prod", "--timeout-minutes", "1")
    assert status == ExitStatus.FAILED
    assert sum(aws.sleeps) == 60
    assert err.splitlines()[-1] == (
        f"error: copy job {JOB_ID} is still RUNNING after 1m00s; it keeps running in AWS: follow it with: "
        f"aws backup describe-copy-job --region {PRIMARY} --copy-job-id {JOB_ID} (backup account {BACKUP})"
    )
    assert out == ""


def test_ctrl_c_while_following_exits_130_and_says_the_job_runs_on(
    aws: Aws, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.describe_point("pgf-prod")
    aws.start()
    aws.job("RUNNING")

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(restore_command, "_sleep", interrupted)
    status, out, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "prod")
    assert status == ExitStatus.INTERRUPTED
    assert err.splitlines()[-1] == (
        f"interrupted: copy job {JOB_ID} keeps running in AWS (backup account {BACKUP}); follow it with: "
        f"aws backup describe-copy-job --region {PRIMARY} --copy-job-id {JOB_ID}"
    )
    assert out == ""


def test_a_recovery_point_of_another_account_exits_2_naming_both(aws: Aws, project: Project) -> None:
    point = CENTRAL_POINT.replace(BACKUP, PROD)
    status, _, err = _run(project, "--recovery-point", point, "--to", "prod")
    assert status == ExitStatus.USAGE
    assert err == (
        f"error: recovery point {point} is in account {PROD} (the prod stack's own account); copy-back copies from "
        f"the backup account {BACKUP}\n"
    )
    assert aws.assumed == []


def test_a_lifecycle_outside_the_lock_exits_2_before_any_aws_call(aws: Aws, project: Project) -> None:
    status, _, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "prod", "--lifecycle-days", "30")
    assert status == ExitStatus.USAGE
    assert err == (
        "error: --lifecycle-days 30 is outside the lock of vault pgf-prod of stack prod (35-3650 days): "
        "AWS Backup would fail the copy\n"
    )
    assert aws.assumed == []  # the stub has no response queued: any call would have failed the test


def test_access_denied_on_start_copy_job_is_one_line(aws: Aws, project: Project) -> None:
    aws.describe_point("pgf-prod")
    aws.stub.add_client_error(
        "start_copy_job",
        service_error_code="AccessDeniedException",
        service_message=f"User is not authorized to perform: iam:PassRole on resource: {COPY_ROLE}",
        http_status_code=403,
    )
    status, out, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "prod")
    assert status == ExitStatus.FAILED
    assert err == (
        "error: AWS refused StartCopyJob: AccessDeniedException: User is not authorized to perform: iam:PassRole "
        f"on resource: {COPY_ROLE}\n"
    )
    assert out == ""


def test_to_the_backup_stack_exits_2(aws: Aws, project: Project) -> None:
    status, _, err = _run(project, "--recovery-point", CENTRAL_POINT, "--to", "backup")
    assert status == ExitStatus.USAGE
    assert err == "error: stack 'backup' is the backup-account stack; copy-back copies into a workload stack's vault\n"
    assert aws.assumed == []


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (f"arn:aws:backup:{PRIMARY}:{BACKUP}:recovery-point:d99699e7-e183-477e-bfcd-ccb1c6e5455e", "AWS Backup"),
        (f"arn:aws:rds:{PRIMARY}:{BACKUP}:snapshot:awsbackup:job-be59cf2a-2343-4402-bd8b-226993d23453", "RDS"),
        (CENTRAL_POINT, "cluster snapshot"),
        (f"arn:aws:ec2:{PRIMARY}::snapshot/snap-05f426fd8kdjb4224", "EBS"),
        (f"arn:aws:dynamodb:{PRIMARY}:{BACKUP}:table/pgf-sessions/backup/01547087347000-c8b6kdk3", "DynamoDB"),
    ],
)
def test_documented_recovery_point_arns_are_accepted(arn: str, kind: str) -> None:
    assert kind in copy_back.RecoveryPointArn.parse(arn).kind


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3:::pgf-documents-prod",  # a resource, not a recovery point
        f"arn:aws:backup:{PRIMARY}:{BACKUP}:backup-vault:pgf-prod",  # a vault
        f"arn:aws:rds:{PRIMARY}:{BACKUP}:snapshot:rds:pgf-core-2026-12-01",  # an RDS automated snapshot
        f"arn:aws:ec2:{PRIMARY}:{BACKUP}:snapshot/snap-0123",  # EC2 snapshot ARNs name no account
        "1EB3B5E7-9EB0-435A-A80B-108B488B0D45",
    ],
)
def test_other_arns_are_refused_by_the_parser(project: Project, arn: str) -> None:
    with pytest.raises(ValueError, match=r"recovery point|names no account"):
        copy_back.RecoveryPointArn.parse(arn)
    status, out, err = _run(project, "--recovery-point", arn, "--to", "prod")
    assert status == ExitStatus.USAGE and "argument --recovery-point" in err and out == ""


def _plan(project: Project, arn: str, stack: str, days: int | None = None) -> copy_back.CopyBack:
    cfg = project.load_config(stack)
    assert isinstance(cfg, WorkloadStack)
    return copy_back.plan_copy_back(copy_back.RecoveryPointArn.parse(arn), stack, cfg, project.backup_config(), days)


def test_a_copy_region_point_goes_to_the_copy_region_vault_and_skips_the_air_gapped_one(project: Project) -> None:
    job = _plan(project, CENTRAL_POINT.replace(PRIMARY, COPY), "prod")
    assert job.source_vaults == ("pgf-prod",)  # the air-gapped vault lives in the primary region only
    assert job.destination_vault_arn == f"arn:aws:backup:{COPY}:{PROD}:backup-vault:pgf-prod"


def test_the_lifecycle_defaults_to_the_destination_locks_minimum(project: Project) -> None:
    point = CENTRAL_POINT
    assert _plan(project, point, "lab").lifecycle_days == 7
    assert _plan(project, point, "lab", 14).lifecycle_days == 14
    assert _plan(project, point, "lab").source_vaults == ("pgf-lab",)
    with pytest.raises(copy_back.CopyBackError, match=r"outside the lock of vault pgf-lab .*\(7-14 days\)") as caught:
        _plan(project, point, "lab", 15)
    assert caught.value.usage


def test_a_region_outside_the_project_exits_2(project: Project) -> None:
    with pytest.raises(copy_back.CopyBackError, match="the backup account's vaults are in ca-central-1, ca-west-1"):
        _plan(project, CENTRAL_POINT.replace(PRIMARY, "us-east-1"), "prod")
