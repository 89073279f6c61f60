"""`pgf-backup verify --stack S`: the coverage report of a workload account, run with the operator's credentials
through the stack's deploy role (or `--role`), and the backup account's deploy role to confirm the copies.

Exit statuses: 0 everything is protected, fresh, copied and as configured; 1 something is unprotected, stale or
misconfigured (each named), or AWS refused a call (named); 2 bad arguments, an unusable stack file, a stack that is not
a workload stack, credentials for another account; 130 interrupted.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any, TextIO

from pgf_backup.automation.arguments import output_file, role_name
from pgf_backup.automation.aws_access import (
    CommandError,
    ProgressBar,
    assume,
    aws_error_status,
    client_factory,
    workload_config,
)
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project


def _hours(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of hours") from None
    if not 1 <= value <= 24 * 400:
        raise argparse.ArgumentTypeError(f"{value}: give 1 to {24 * 400} hours")
    return value


def add_commands(sub: Any) -> None:
    """Register `verify` on the `pgf-backup` subparsers."""
    verify = sub.add_parser(
        "verify",
        help="report every data resource's protection (tags, plans, recovery points, copies, keys) and the vaults",
    )
    verify.add_argument("--stack", required=True, help="the workload stack whose account and regions to verify")
    verify.add_argument("--format", choices=("table", "json", "md", "html"), default="table", help="default: table")
    verify.add_argument("--out", type=output_file, metavar="FILE", help="write the report to FILE (default: stdout)")
    verify.add_argument(
        "--role",
        type=role_name,
        metavar="NAME",
        help="role to assume in the stack's account and the backup account (default: pgf-backup:iam.deploy_role)",
    )
    verify.add_argument(
        "--no-backup-account",
        action="store_true",
        help="do not assume the role in the backup account (copies then rest on the workload account's copy jobs)",
    )
    verify.add_argument(
        "--lookback-hours",
        type=_hours,
        metavar="N",
        help="how far back to read recovery points and copy jobs (default: twice the tier's RPO window)",
    )
    verify.set_defaults(handler=cmd_verify)


def _now() -> datetime:
    return datetime.now(UTC)


# Module names the tests replace with fakes.
_factory = client_factory
_assume = assume


def cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup verify`: discover, evaluate, render; exit 1 on any gap."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pgf_backup.ops import report, verify

    try:
        project = Project.find(args.project_dir)
        cfg = workload_config(project, args.stack, "verify checks a workload stack's account")
        backup_cfg = project.backup_config()
        exp = verify.Expectations.of(args.stack, cfg, backup_cfg)
        role = args.role or cfg.iam.deploy_role
        primary = cfg.regions.primary
        session = _assume(cfg.account_id, cfg.role_arn(cfg.account_id, role), primary, f"stack {args.stack}")
        backup_access = None
        if not args.no_backup_account and exp.remote_vaults:
            backup_session = _assume(
                backup_cfg.account_id, cfg.role_arn(backup_cfg.account_id, role), primary, "the backup account"
            )
            backup_access = verify.BackupAccountAccess(_factory(backup_session))
        bar = ProgressBar(err)
        try:
            result = verify.verify(
                exp,
                _factory(session),
                now=_now(),
                backup_account=backup_access,
                lookback_hours=args.lookback_hours,
                progress=bar,
            )
        finally:
            bar.close()
    except CommandError as error:
        print(f"error: {error}", file=err)
        return error.status
    except (ClientError, BotoCoreError) as error:
        return aws_error_status(error, err)
    doc = result.to_json()
    text = report.RENDERERS[args.format](doc)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"report written to {args.out}", file=err)
    else:
        out.write(text)
    if not result.ok:
        # The reasons, on stderr too: the report may have gone to a file.
        for problem in result.problems:
            print(f"problem: {problem}", file=err)
        print(f"{len(result.problems)} problem(s): exit 1", file=err)
        return ExitStatus.FAILED
    return ExitStatus.OK
