"""`pgf-backup restore copy-back`: copy a recovery point of the backup account's central (or air-gapped) vault back
into a workload stack's vault, follow the copy job to its end, and say the restore commands that come next.

Everything the copy needs is derived from the config first (`plan_copy_back`, no AWS call: a lifecycle outside the
destination vault's lock is refused here, as AWS Backup would fail the copy); then, with a backup client of the
backup account in the recovery point's region: `find_recovery_point` (DescribeRecoveryPoint in each candidate vault),
`start_copy` (StartCopyJob) and `follow` (DescribeCopyJob until the job ends: botocore's backup model has no waiter).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pgf_backup.config import BackupAccountStack, WorkloadStack, partition
from pgf_backup.limits import lock_admits

SCHEMA = "pgf-backup/restore-copy-back/v1"

# CopyJob.State (botocore's backup model, shape CopyJobState): CREATED | RUNNING | COMPLETED | FAILED | PARTIAL.
# Unlike backup jobs (BackupJobState), a copy job has no ABORTED state. Any state other than these two means
# the job has ended; COMPLETED is the only success (PARTIAL: nested copies of a composite job failed).
PENDING_STATES = frozenset({"CREATED", "RUNNING"})
COMPLETED = "COMPLETED"

_DOCS = "https://docs.aws.amazon.com/aws-backup/latest/devguide"
# Where AWS documents the restore metadata of each resource type (botocore's backup model,
# StartRestoreJobInput.Metadata; the keys are StartRestoreJobInput.ResourceType's values).
RESTORE_METADATA_DOCS: Mapping[str, str] = {
    "Aurora": f"{_DOCS}/restoring-aur.html#aur-restore-cli",
    "DocumentDB": f"{_DOCS}/restoring-docdb.html#docdb-restore-cli",
    "CloudFormation": f"{_DOCS}/restore-application-stacks.html#restoring-cfn-cli",
    "DynamoDB": f"{_DOCS}/restoring-dynamodb.html#ddb-restore-cli",
    "EBS": f"{_DOCS}/restoring-ebs.html#ebs-restore-cli",
    "EC2": f"{_DOCS}/restoring-ec2.html#restoring-ec2-cli",
    "EFS": f"{_DOCS}/restoring-efs.html#efs-restore-cli",
    "EKS": f"{_DOCS}/restoring-eks.html#eks-restore-backup-section",
    "FSx": f"{_DOCS}/restoring-fsx.html#fsx-restore-cli",
    "Neptune": f"{_DOCS}/restoring-nep.html#nep-restore-cli",
    "RDS": f"{_DOCS}/restoring-rds.html#rds-restore-cli",
    "Redshift": f"{_DOCS}/redshift-restores.html#redshift-restore-api",
    "Storage Gateway": f"{_DOCS}/restoring-storage-gateway.html#restoring-sgw-cli",
    "S3": f"{_DOCS}/restoring-s3.html#s3-restore-cli",
    "Timestream": f"{_DOCS}/timestream-restore.html#timestream-restore-api",
    "VirtualMachine": f"{_DOCS}/restoring-vm.html#vm-restore-cli",
}

# The recovery point ARNs AWS documents, per service: AWS Backup's "AWS Backup resource ARNs" table
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/access-control.html#access-control-resources). Fully
# managed types (EFS, advanced DynamoDB, S3, ...) and every recovery point of a logically air-gapped vault
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/logicallyairgappedvault.html: "will have `backup` in place
# of the underlying resource type") are AWS Backup's own `recovery-point:<id>`; snapshot types keep their service's
# ARN. EC2 snapshot and image ARNs name no account.
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]+):(?P<account>\d{12}|)"
    r":(?P<resource>.+)"
)
_FORMS: Mapping[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    "backup": (("an AWS Backup recovery point", re.compile(r"recovery-point:[A-Za-z0-9._-]+")),),
    "ec2": (
        ("an EBS snapshot", re.compile(r"snapshot/snap-[A-Za-z0-9]+")),
        ("an EC2 image", re.compile(r"image/ami-[A-Za-z0-9]+")),
    ),
    "rds": (
        ("an RDS snapshot", re.compile(r"snapshot:awsbackup:[A-Za-z0-9-]+")),
        ("an Aurora, DocumentDB or Neptune cluster snapshot", re.compile(r"cluster-snapshot:awsbackup:[A-Za-z0-9-]+")),
    ),
    "dynamodb": (("a DynamoDB backup", re.compile(r"table/[A-Za-z0-9._-]+/backup/[A-Za-z0-9.-]+")),),
    "fsx": (("an FSx backup", re.compile(r"backup/backup-[A-Za-z0-9]+")),),
    "redshift": (("a Redshift snapshot", re.compile(r"snapshot:[^/\s]+/awsbackup:[A-Za-z0-9-]+")),),
    "redshift-serverless": (
        ("a Redshift Serverless snapshot", re.compile(r"snapshot:[^/\s]+/awsbackup:[A-Za-z0-9-]+")),
    ),
}
_ACCOUNTLESS = frozenset({"ec2"})


class CopyBackError(Exception):
    """A refusal or a failure, said in one line: `usage` before any AWS call (exit 2), otherwise exit 1."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class RecoveryPointArn:
    """A recovery point's ARN, in one of the forms AWS documents."""

    text: str
    partition: str
    service: str
    region: str
    account: str  # "" for EC2 snapshots and images: their ARNs name no account
    kind: str

    @classmethod
    def parse(cls, text: str) -> RecoveryPointArn:
        """The ARN's parts, or a ValueError saying which forms are accepted."""
        match = _ARN.fullmatch(text.strip())
        forms = _FORMS.get(match["service"], ()) if match else ()
        kind = next((name for name, form in forms if form.fullmatch(match["resource"])), None) if match else None
        if match is None or kind is None:
            raise ValueError(
                f"{text!r} is not a recovery point ARN: arn:<partition>:backup:<region>:<account>:recovery-point:<id>, "
                "or a snapshot type's own (arn:aws:rds:<region>:<account>:snapshot:awsbackup:<id>, "
                "...:cluster-snapshot:awsbackup:<id>, arn:aws:ec2:<region>::snapshot/snap-<id>, "
                "arn:aws:dynamodb:<region>:<account>:table/<name>/backup/<id>, ...)"
            )
        account = match["account"]
        if match["service"] in _ACCOUNTLESS and account:
            raise ValueError(f"{text!r}: an EC2 snapshot or image ARN names no account (arn:aws:ec2:<region>::...)")
        if match["service"] not in _ACCOUNTLESS and not account:
            raise ValueError(f"{text!r}: the ARN names no account (12 digits after the region)")
        return cls(text.strip(), match["partition"], match["service"], match["region"], account, kind)


@dataclass(frozen=True)
class CopyBack:
    """Everything the copy needs, from the config alone."""

    stack: str
    recovery_point: RecoveryPointArn
    region: str
    backup_account: str
    workload_account: str
    source_vaults: tuple[str, ...]  # where the recovery point may be, in the order they are tried
    destination_vault: str
    destination_vault_arn: str
    copy_role_arn: str  # the backup account's service role: AWS Backup runs the copy job with it
    restore_role_arn: str  # the workload account's service role: the restore job's
    lifecycle_days: int
    lock: tuple[int, int] | None  # the destination vault lock's min and max days, per the config


def plan_copy_back(
    recovery_point: RecoveryPointArn,
    stack: str,
    cfg: WorkloadStack,
    backup: BackupAccountStack,
    lifecycle_days: int | None = None,
) -> CopyBack:
    """The copy of `recovery_point` into `stack`'s vault, or a CopyBackError (usage) saying why it cannot be."""
    rp, region = recovery_point, recovery_point.region
    if rp.account and rp.account != backup.account_id:
        whose = f"the {stack} stack's own account" if rp.account == cfg.account_id else "not the backup account"
        raise CopyBackError(
            f"recovery point {rp.text} is in account {rp.account} ({whose}); copy-back copies from the backup "
            f"account {backup.account_id}",
            usage=True,
        )
    if region not in backup.regions.all:
        raise CopyBackError(
            f"recovery point {rp.text} is in {region}; the backup account's vaults are in "
            f"{', '.join(backup.regions.all)}",
            usage=True,
        )
    if region not in cfg.regions.all:
        raise CopyBackError(
            f"recovery point {rp.text} is in {region}; stack {stack} has vaults in {', '.join(cfg.regions.all)} only",
            usage=True,
        )
    if rp.partition != partition(region):
        raise CopyBackError(
            f"recovery point {rp.text}: partition {rp.partition!r}, but {region} is in {partition(region)!r}",
            usage=True,
        )
    central = backup.central_vault_key(cfg.tier)
    if central is None:
        raise CopyBackError(f"the backup account has no vault of tier {cfg.tier!r} (stack {stack}'s)", usage=True)
    sources = [backup.vault_name(central)]
    # The air-gapped vault is created in the backup account's primary region only (pgf_backup/stacks.py).
    if backup.vaults[central].air_gapped is not None and region == backup.regions.primary:
        sources.append(backup.air_gapped_vault_name(central))
    key = cfg.vault_key
    vault = cfg.vault_name(key)
    lock = cfg.vaults[key].lock
    bounds = (lock.min_retention_days, lock.max_retention_days) if lock else None
    days = lifecycle_days if lifecycle_days is not None else (bounds[0] if bounds else None)
    if days is None:
        raise CopyBackError(
            f"vault {vault} of stack {stack} has no lock to take a lifecycle from: give --lifecycle-days"
        )
    if bounds and not lock_admits(bounds[0], bounds[1], days):
        # AWS Backup fails a copy job whose retention lies outside the destination vault's lock
        # (https://docs.aws.amazon.com/aws-backup/latest/devguide/vault-lock.html).
        raise CopyBackError(
            f"--lifecycle-days {days} is outside the lock of vault {vault} of stack {stack} ({bounds[0]}-{bounds[1]} "
            "days): AWS Backup would fail the copy",
            usage=True,
        )
    return CopyBack(
        stack=stack,
        recovery_point=rp,
        region=region,
        backup_account=backup.account_id,
        workload_account=cfg.account_id,
        source_vaults=tuple(sources),
        destination_vault=vault,
        # "arn:aws:backup:region:account-id:backup-vault:*" (the AWS Backup resource ARNs table, above).
        destination_vault_arn=f"arn:{partition(region)}:backup:{region}:{cfg.account_id}:backup-vault:{vault}",
        copy_role_arn=backup.role_arn(backup.account_id, backup.iam.service_role, region),
        restore_role_arn=cfg.role_arn(cfg.account_id, cfg.iam.service_role, region),
        lifecycle_days=days,
        lock=bounds,
    )


def _code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def find_recovery_point(client: Any, job: CopyBack) -> tuple[str, dict[str, Any]]:
    """The vault holding the recovery point and DescribeRecoveryPoint's answer, or a CopyBackError naming the vaults."""
    from botocore.exceptions import ClientError

    for vault in job.source_vaults:
        try:
            # BackupVaultName and RecoveryPointArn are required (botocore's backup model, DescribeRecoveryPointInput).
            described = client.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=job.recovery_point.text)
        except ClientError as error:
            # DescribeRecoveryPoint's errors include ResourceNotFoundException (botocore's backup model): not here.
            if _code(error) != "ResourceNotFoundException":
                raise
            continue
        return vault, dict(described)
    tried = " nor ".join(job.source_vaults)
    raise CopyBackError(
        f"recovery point {job.recovery_point.text} is not in vault {tried} of the backup account "
        f"{job.backup_account} in {job.region}"
    )


def start_copy(client: Any, job: CopyBack, source_vault: str, token: str) -> str:
    """Start the copy job (StartCopyJob); its id."""
    # StartCopyJobInput (botocore's backup model): RecoveryPointArn, SourceBackupVaultName, DestinationBackupVaultArn
    # and IamRoleArn required; IdempotencyToken makes a retried request start no second job; Lifecycle.DeleteAfterDays.
    response = client.start_copy_job(
        RecoveryPointArn=job.recovery_point.text,
        SourceBackupVaultName=source_vault,
        DestinationBackupVaultArn=job.destination_vault_arn,
        IamRoleArn=job.copy_role_arn,
        IdempotencyToken=token,
        Lifecycle={"DeleteAfterDays": job.lifecycle_days},
    )
    job_id = response.get("CopyJobId")
    if not job_id:
        raise CopyBackError("AWS Backup started the copy but returned no CopyJobId: look for it with list-copy-jobs")
    return str(job_id)


@dataclass(frozen=True)
class Outcome:
    """How following a copy job ended: its last description, and whether the time ran out first."""

    copy_job: dict[str, Any]
    elapsed_seconds: float
    timed_out: bool

    @property
    def state(self) -> str:
        return str(self.copy_job.get("State") or "UNKNOWN")

    @property
    def completed(self) -> bool:
        return not self.timed_out and self.state == COMPLETED


def follow(
    client: Any,
    job_id: str,
    *,
    timeout_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    progress: Callable[[str, float], None] | None = None,
) -> Outcome:
    """DescribeCopyJob until the job ends or `timeout_seconds` pass (botocore has no waiter for copy jobs)."""
    start = clock()
    while True:
        copy_job = dict(client.describe_copy_job(CopyJobId=job_id).get("CopyJob") or {})
        elapsed = clock() - start
        state = copy_job.get("State")
        if progress is not None:
            progress(str(state or "UNKNOWN"), elapsed)
        # A description without a state says nothing yet: keep following.
        if state is not None and state not in PENDING_STATES:
            return Outcome(copy_job, elapsed, timed_out=False)
        remaining = timeout_seconds - elapsed
        if remaining <= 0:
            return Outcome(copy_job, elapsed, timed_out=True)
        sleep(min(poll_seconds, remaining))


def follow_command(job: CopyBack, job_id: str) -> str:
    """The command that follows the copy job (in the backup account)."""
    return f"aws backup describe-copy-job --region {job.region} --copy-job-id {shlex.quote(job_id)}"


def find_job_command(job: CopyBack) -> str:
    """The command that lists the copy jobs into the destination vault (ListCopyJobsInput.ByDestinationVaultArn)."""
    return f"aws backup list-copy-jobs --region {job.region} --by-destination-vault-arn {job.destination_vault_arn}"


METADATA_FILE = "restore-metadata.json"


def next_commands(job: CopyBack, copied_arn: str, resource_type: str | None) -> list[str]:
    """The restore in the workload account: read the copy's restore metadata into a file, then start the restore."""
    q = shlex.quote
    # GetRecoveryPointRestoreMetadata: BackupVaultName and RecoveryPointArn required; StartRestoreJob:
    # RecoveryPointArn and Metadata required, IamRoleArn and ResourceType optional (botocore's backup model).
    read = (
        f"aws backup get-recovery-point-restore-metadata --region {job.region} --backup-vault-name "
        f"{q(job.destination_vault)} --recovery-point-arn {q(copied_arn)} --query RestoreMetadata --output json "
        f"> {METADATA_FILE}"
    )
    restore = (
        f"aws backup start-restore-job --region {job.region} --recovery-point-arn {q(copied_arn)} "
        f"--iam-role-arn {q(job.restore_role_arn)}"
    )
    if resource_type:
        restore += f" --resource-type {q(resource_type)}"
    restore += f" --metadata file://{METADATA_FILE}"
    return [read, restore]


def result(
    job: CopyBack, source_vault: str, described: Mapping[str, Any], job_id: str, outcome: Outcome
) -> dict[str, Any]:
    """The outcome of a completed copy, as `--json` prints it."""
    copied = str(outcome.copy_job.get("DestinationRecoveryPointArn") or "")
    resource_type = described.get("ResourceType")
    return {
        "schema": SCHEMA,
        "stack": job.stack,
        "region": job.region,
        "copy_job_id": job_id,
        "state": outcome.state,
        "elapsed_seconds": round(outcome.elapsed_seconds),
        "source": {
            "account": job.backup_account,
            "vault": source_vault,
            "recovery_point_arn": job.recovery_point.text,
            "resource_arn": described.get("ResourceArn"),
            "resource_type": resource_type,
        },
        "destination": {
            "account": job.workload_account,
            "vault": job.destination_vault,
            "vault_arn": job.destination_vault_arn,
            "recovery_point_arn": copied,
            "delete_after_days": job.lifecycle_days,
        },
        "next": {
            "account": job.workload_account,
            "commands": next_commands(job, copied, resource_type),
            "metadata_docs": RESTORE_METADATA_DOCS.get(str(resource_type)),
        },
    }
