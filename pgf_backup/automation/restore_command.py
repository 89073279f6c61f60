"""`pgf-backup restore copy-back --recovery-point ARN --to STACK`: copy a recovery point of the backup account's
central (or air-gapped) vault back into a workload stack's vault, through the backup account's deploy role (or
`--role`), follow the copy job, then print the restore commands that come next in the workload account.

Exit statuses: 0 the copy completed; 1 AWS refused a call, the recovery point is in none of the vaults tried, the copy
job failed, or it was still running at `--timeout-minutes` (each named); 2 bad arguments, a recovery point of another
account or region, a stack that is not a workload stack, a lifecycle outside the destination vault's lock;
130 interrupted (the copy job, once started, keeps running in AWS: its id is said).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Any, TextIO

from pgf_backup.automation.arguments import Parser, role_name
from pgf_backup.automation.aws_access import CommandError, assume, aws_error_status, client_factory, workload_config
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project

if TYPE_CHECKING:
    from pgf_backup.ops.copy_back import CopyBack, Outcome

# How often the copy job is described: copy jobs take minutes to hours, and each poll is one DescribeCopyJob call.
POLL_SECONDS = 20.0
DEFAULT_TIMEOUT_MINUTES = 120
MAX_TIMEOUT_MINUTES = 24 * 60
# Vault Lock's retention bounds (the config's VaultLock model: 1-36500 days).
MAX_LIFECYCLE_DAYS = 36500


def _recovery_point(text: str) -> Any:
    """argparse type of `--recovery-point`: an ARN in one of the forms AWS documents."""
    from pgf_backup.ops.copy_back import RecoveryPointArn

    try:
        return RecoveryPointArn.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _bounded(what: str, low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value}: give {low} to {high} {what}")
        return value

    return parse


def add_commands(sub: Any) -> None:
    """Register `restore copy-back` on the `pgf-backup` subparsers."""
    restore = sub.add_parser(
        "restore", help="restore runbook steps (copy a recovery point back from the backup account)"
    )
    actions = restore.add_subparsers(dest="action", required=True, parser_class=Parser)
    copy_back = actions.add_parser(
        "copy-back",
        help="copy a recovery point of the backup account into a workload stack's vault, then say how to restore it",
    )
    copy_back.add_argument(
        "--recovery-point",
        required=True,
        type=_recovery_point,
        metavar="ARN",
        help="the recovery point in the backup account's central (or air-gapped) vault",
    )
    copy_back.add_argument("--to", required=True, metavar="STACK", help="the workload stack whose vault receives it")
    copy_back.add_argument(
        "--role",
        type=role_name,
        metavar="NAME",
        help="role to assume in the backup account (default: pgf-backup:iam.deploy_role)",
    )
    copy_back.add_argument(
        "--lifecycle-days",
        type=_bounded("days", 1, MAX_LIFECYCLE_DAYS),
        metavar="N",
        help="keep the copy N days (default: the minimum of the destination vault's lock; must lie inside the lock)",
    )
    copy_back.add_argument(
        "--timeout-minutes",
        type=_bounded("minutes", 1, MAX_TIMEOUT_MINUTES),
        default=DEFAULT_TIMEOUT_MINUTES,
        metavar="M",
        help=f"stop following the copy job after M minutes (default: {DEFAULT_TIMEOUT_MINUTES}); it keeps running",
    )
    copy_back.add_argument("--json", action="store_true", help="print the result as JSON")
    copy_back.set_defaults(handler=cmd_copy_back)


# Module names the tests replace with fakes.
_factory = client_factory
_assume = assume
_sleep = time.sleep
_clock = time.monotonic


def _token() -> str:
    """StartCopyJob's IdempotencyToken: one per run, so botocore's retries of the call start one job."""
    return str(uuid.uuid4())


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class _StatusLine:
    """The copy job's state and elapsed time on one line of a terminal; nothing otherwise."""

    def __init__(self, stream: TextIO, job_id: str, timeout_minutes: int) -> None:
        self._stream, self._job_id, self._timeout = stream, job_id, timeout_minutes
        self._live = stream.isatty()
        self._shown = False

    def __call__(self, state: str, elapsed: float) -> None:
        if not self._live:
            return
        text = f"copy job {self._job_id}: {state}, {_duration(elapsed)} (following up to {self._timeout}m)"
        width = shutil.get_terminal_size((120, 20)).columns - 1
        self._stream.write(f"\r{text[:width]}\x1b[K")
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False


def cmd_copy_back(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup restore copy-back`: plan from the config, find the recovery point, copy, follow, say what next."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pgf_backup.ops import copy_back

    job: copy_back.CopyBack | None = None
    phase = "before"  # before | starting | following
    job_id = ""
    try:
        project = Project.find(args.project_dir)
        cfg = workload_config(project, args.to, "copy-back copies into a workload stack's vault")
        backup_cfg = project.backup_config()
        job = copy_back.plan_copy_back(args.recovery_point, args.to, cfg, backup_cfg, args.lifecycle_days)
        role = args.role or backup_cfg.iam.deploy_role
        role_arn = backup_cfg.role_arn(backup_cfg.account_id, role, job.region)
        session = _assume(backup_cfg.account_id, role_arn, job.region, "the backup account")
        client = _factory(session)("backup", job.region)
        source_vault, described = copy_back.find_recovery_point(client, job)
        phase = "starting"
        job_id = copy_back.start_copy(client, job, source_vault, _token())
        phase = "following"
        print(
            f"copy job {job_id} started: {source_vault} ({job.backup_account}) -> {job.destination_vault_arn}, "
            f"kept {job.lifecycle_days} days",
            file=err,
        )
        line = _StatusLine(err, job_id, args.timeout_minutes)
        try:
            outcome = copy_back.follow(
                client,
                job_id,
                timeout_seconds=args.timeout_minutes * 60,
                poll_seconds=POLL_SECONDS,
                sleep=_sleep,
                clock=_clock,
                progress=line,
            )
        finally:
            line.close()
    except CommandError as error:
        print(f"error: {error}", file=err)
        return error.status
    except copy_back.CopyBackError as error:
        print(f"error: {error}", file=err)
        return ExitStatus.USAGE if error.usage else ExitStatus.FAILED
    except (ClientError, BotoCoreError) as error:
        if phase == "following" and job is not None:
            # The job runs on without us: after the error, say how to follow it.
            status = aws_error_status(error, err)
            print(
                f"copy job {job_id} keeps running in AWS; follow it with: {copy_back.follow_command(job, job_id)}",
                file=err,
            )
            return status
        return aws_error_status(error, err)
    except KeyboardInterrupt:
        if phase == "following" and job is not None:
            print(
                f"interrupted: copy job {job_id} keeps running in AWS (backup account {job.backup_account}); "
                f"follow it with: {copy_back.follow_command(job, job_id)}",
                file=err,
            )
        elif phase == "starting" and job is not None:
            print(
                "interrupted while starting the copy job: it may have started; look for it with: "
                f"{copy_back.find_job_command(job)}",
                file=err,
            )
        else:
            print("interrupted: no copy job was started", file=err)
        return ExitStatus.INTERRUPTED
    return _report(job, source_vault, described, job_id, outcome, args.json, out, err)


def _report(  # noqa: PLR0917 - the pieces of one run, said once
    job: CopyBack,
    source_vault: str,
    described: dict[str, Any],
    job_id: str,
    outcome: Outcome,
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> ExitStatus:
    """Exit 1 with AWS's message if the job did not complete; otherwise the copy and the next commands."""
    from pgf_backup.ops import copy_back

    if outcome.timed_out:
        print(
            f"error: copy job {job_id} is still {outcome.state} after {_duration(outcome.elapsed_seconds)}; it keeps "
            f"running in AWS: follow it with: {copy_back.follow_command(job, job_id)} (backup account "
            f"{job.backup_account})",
            file=err,
        )
        return ExitStatus.FAILED
    if not outcome.completed:
        message = outcome.copy_job.get("StatusMessage") or "AWS gave no StatusMessage"
        print(f"error: copy job {job_id} {outcome.state}: {message}", file=err)
        return ExitStatus.FAILED
    doc = copy_back.result(job, source_vault, described, job_id, outcome)
    copied = doc["destination"]["recovery_point_arn"]
    if not copied:
        print(
            f"error: copy job {job_id} completed but AWS named no DestinationRecoveryPointArn; list vault "
            f"{job.destination_vault} of account {job.workload_account}",
            file=err,
        )
        return ExitStatus.FAILED
    if as_json:
        out.write(json.dumps(doc, indent=2) + "\n")
        return ExitStatus.OK
    resource = f"{described.get('ResourceType') or 'resource'} {described.get('ResourceArn') or ''}".rstrip()
    lines = [
        f"copy job {job_id}: COMPLETED in {_duration(outcome.elapsed_seconds)}",
        f"copied recovery point ({resource}):",
        f"  {copied}",
        f"  in vault {job.destination_vault} of account {job.workload_account} (stack {job.stack}), "
        f"kept {job.lifecycle_days} days",
        "",
        f"next, in the workload account {job.workload_account} (an operator role with backup:StartRestoreJob and "
        f"iam:PassRole on {job.restore_role_arn.rsplit('/', 1)[-1]}):",
        f"  {doc['next']['commands'][0]}",
        f"  # edit {copy_back.METADATA_FILE}: restore into a new resource (docs/runbooks.md)"
        + (f"; the keys: {doc['next']['metadata_docs']}" if doc["next"]["metadata_docs"] else ""),
        f"  {doc['next']['commands'][1]}",
    ]
    out.write("\n".join(lines) + "\n")
    return ExitStatus.OK
