"""`pgf-backup drill --stack S (--resource ARN | --all)`: a game day, restoring into an isolated target with RTO and
RPO evidence (pgf_backup/ops/drill.py); `pgf-backup drill report --quarter 2026Q4`: the quarter's evidence against
each tier's targets.

Exit statuses: 0 every drill restored, validated and cleaned up (report: every restore met its targets and the
quarter has a drill); 1 a restore failed, timed out or did not validate, AWS refused a call (named), a target was
missed or the quarter has no drill; 2 bad arguments, an unusable stack file, credentials for another account;
130 interrupted (what the drill created is deleted first, unless --keep).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pgf_backup.automation.arguments import output_file, role_name
from pgf_backup.automation.aws_access import (
    CommandError,
    assume,
    aws_error_status,
    client_factory,
    stack_config,
    workload_config,
)
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import BackupAccountStack, Tier, WorkloadStack, partition
from pgf_backup.project import Project

_ROLE_HELP = "role to assume (default: pgf-backup:iam.deploy_role)"
# Module names the tests replace with fakes.
_factory = client_factory
_assume = assume


def _now() -> datetime:
    return datetime.now(UTC)


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes") from None
    if not 1 <= value <= 7 * 24 * 60:
        raise argparse.ArgumentTypeError(f"{value}: give 1 to {7 * 24 * 60} minutes")
    return value


def _quarter(text: str) -> str:
    from pgf_backup.ops.drill import quarter_months

    try:
        quarter_months(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _folder(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a folder")
    return path


def add_commands(sub: Any) -> None:
    """Register `drill` and `drill report` on the `pgf-backup` subparsers."""
    drill = sub.add_parser(
        "drill",
        help="restore drill (game day): restore into an isolated target, validate, measure RTO/RPO, clean up",
        description="Restore from the latest recovery point into an isolated target, validate, measure RTO and "
        "RPO, write the evidence, clean up. `drill report --quarter 2026Q4` aggregates a quarter's evidence.",
    )
    drill.add_argument("--stack", help="the workload stack whose resources to drill")
    which = drill.add_mutually_exclusive_group()
    which.add_argument("--resource", action="append", metavar="ARN", help="a bucket, DB instance or Aurora cluster")
    which.add_argument("--all", action="store_true", help="every bucket and database of the stack's config")
    drill.add_argument(
        "--target-account",
        choices=("backup", "workload"),
        default="backup",
        help="restore from the copies in the backup account (default, isolated) or the workload account's vault",
    )
    drill.add_argument("--recovery-point", metavar="ARN", help="this recovery point instead of the latest")
    drill.add_argument("--keep", action="store_true", help="keep the restored resource (default: delete it)")
    drill.add_argument(
        "--timeout-minutes", type=_minutes, default=180, help="how long to wait for each restore (default: 180)"
    )
    drill.add_argument(
        "--out-dir",
        type=_folder,
        default=Path("drill-evidence"),
        help="local evidence folder (default: drill-evidence)",
    )
    drill.add_argument("--role", type=role_name, metavar="NAME", help=_ROLE_HELP)
    drill.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    drill.set_defaults(handler=cmd_drill)
    reports = drill.add_subparsers(dest="drill_command", required=False)
    report = reports.add_parser("report", help="a quarter's restores against each tier's RTO and RPO targets")
    report.add_argument("--quarter", type=_quarter, required=True, help="e.g. 2026Q4")
    report.add_argument(
        "--dir", type=_folder, metavar="FOLDER", help="read evidence from this folder instead of the reports buckets"
    )
    report.add_argument("--role", type=role_name, metavar="NAME", help=_ROLE_HELP)
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--out", type=output_file, metavar="FILE", help="also write the JSON report to FILE")
    report.set_defaults(handler=cmd_drill_report)


# ---------------------------------------------------------------------------------------------
# drill


def _resources(args: argparse.Namespace, cfg: WorkloadStack) -> list[Any]:
    from pgf_backup.ops.drill import DrillError, Resource

    if args.resource:
        try:
            return [Resource.of(arn) for arn in args.resource]
        except DrillError as error:
            raise CommandError(f"--resource: {error}") from None
    part = partition(cfg.regions.primary)
    found = [Resource(f"arn:{part}:s3:::{name}", "S3") for name in cfg.buckets]
    for name, db in cfg.databases.items():
        region = db.region or cfg.regions.primary
        kind = "db" if db.kind == "instance" else "cluster"
        found.append(
            Resource(f"arn:{part}:rds:{region}:{cfg.account_id}:{kind}:{name}", "RDS" if kind == "db" else "Aurora")
        )
    if not found:
        raise CommandError(f"stack {args.stack!r} has no buckets or databases in its config: nothing to drill")
    return found


def _target(args: argparse.Namespace, cfg: WorkloadStack, backup: BackupAccountStack) -> Any:
    from pgf_backup.ops.drill import Target

    tier = cfg.tier
    region = cfg.regions.primary
    if args.target_account == "backup":
        central = backup.central_vault_key(tier)
        if central is None:
            raise CommandError(f"the backup stack has no vault of tier {tier}: drill with --target-account workload")
        testing = backup.restore_testing.get(tier)
        network = testing.network if testing is not None else None
        account, vault = backup.account_id, backup.vault_name(central)
        reports = backup.audit.bucket_name(backup.tags.application, account)
    else:
        network = cfg.restore_testing.network if cfg.restore_testing is not None else None
        account, vault = cfg.account_id, cfg.vault_name(cfg.vault_key)
        reports = cfg.audit.bucket_name(cfg.tags.application, account)
    return Target(
        kind=args.target_account,
        account_id=account,
        region=region,
        vault=vault,
        restore_role_arn=cfg.role_arn(account, (backup if args.target_account == "backup" else cfg).iam.service_role),
        tier=tier,
        reports_bucket=reports,
        db_subnet_group=network.db_subnet_group_name if network else None,
        security_group_ids=network.security_group_ids if network else (),
    )


def _local_writer(folder: Path) -> Callable[[str, bytes], str]:
    def write(key: str, body: bytes) -> str:
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return str(path)

    return write


def _say(outcome: Any, out: TextIO) -> None:
    record = outcome.record
    head = f"{outcome.resource.arn}: restore job {outcome.restore_job_id or '-'}"
    if record is not None:
        rto = record["restore_duration_seconds"] / 3600
        rpo = record["recovery_point_age_seconds"] / 3600
        head += f", RTO {rto:.2f} h, RPO {rpo:.2f} h, validation {record['validation']['status']}"
    print(head, file=out)
    if outcome.created:
        state = "kept (--keep)" if outcome.kept else ("deleted" if outcome.cleaned else "nothing to delete")
        print(f"  restored as {outcome.created}: {state}", file=out)
    for where in outcome.locations:
        print(f"  evidence: {where}", file=out)
    if outcome.problem:
        print(f"  problem: {outcome.problem}", file=out)


def cmd_drill(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup drill`: one drill per resource; exit 1 when any did not restore, validate and clean up."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pgf_backup.ops import drill

    if getattr(args, "drill_command", None) is None and not args.stack:
        print("error: drill needs --stack (or: drill report --quarter YYYYQn)", file=err)
        return ExitStatus.USAGE
    outcomes: list[drill.Outcome] = []
    try:
        if not args.resource and not args.all:
            raise CommandError("say what to drill: --resource ARN (repeatable) or --all")
        project = Project.find(args.project_dir)
        cfg = workload_config(project, args.stack, "a drill restores a workload stack's data")
        backup = project.backup_config()
        resources = _resources(args, cfg)
        target = _target(args, cfg, backup)
        role = args.role or cfg.iam.deploy_role
        session = _assume(
            target.account_id,
            cfg.role_arn(target.account_id, role),
            target.region,
            f"the {args.target_account} account",
        )
        client = _factory(session)
        writers = [_local_writer(args.out_dir)]
        if target.reports_bucket:
            writers.append(drill.s3_writer(client("s3", target.region), target.reports_bucket))
        options = drill.Options(
            timeout_seconds=args.timeout_minutes * 60,
            keep=args.keep,
            recovery_point_arn=args.recovery_point,
            rto_hours=cfg.operations.rto_hours.of(cfg.tier),
            rpo_hours=float(getattr(cfg.alarms.rpo_hours, cfg.tier)),
        )
        for resource in resources:
            print(f"drill: {resource.arn} from vault {target.vault} ({target.account_id}, {target.region})", file=err)
            try:
                outcome = drill.drill_one(resource, target, options, client, now=_now, writers=writers)
            except drill.DrillError as error:
                outcome = drill.Outcome(resource, problem=str(error))
            outcomes.append(outcome)
            if not args.json:
                _say(outcome, out)
    except drill.Interrupted as stop:
        _say(stop.outcome, err)
        print("interrupted", file=err)
        return ExitStatus.INTERRUPTED
    except CommandError as error:
        print(f"error: {error}", file=err)
        return error.status
    except (ClientError, BotoCoreError) as error:
        for outcome in outcomes:
            _say(outcome, err)
        return aws_error_status(error, err)
    if args.json:
        out.write(json.dumps([o.to_json() for o in outcomes], indent=2, sort_keys=True, default=str) + "\n")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(f"{len(failed)} of {len(outcomes)} drill(s) failed: exit 1", file=err)
        return ExitStatus.FAILED
    return ExitStatus.OK


# ---------------------------------------------------------------------------------------------
# drill report


def _targets(project: Project) -> tuple[dict[str, float], dict[str, float]]:
    """Each tier's RTO and RPO targets, from its workload stack's config (operations.rto_hours, alarms.rpo_hours)."""
    rto: dict[str, float] = {}
    rpo: dict[str, float] = {}
    for name in project.known_stacks():
        cfg = stack_config(project, name)
        if isinstance(cfg, WorkloadStack):
            rto[cfg.tier] = cfg.operations.rto_hours.of(cfg.tier)
            rpo[cfg.tier] = float(getattr(cfg.alarms.rpo_hours, cfg.tier))
    return rto, rpo


def _strictest(targets: dict[str, float]) -> Callable[[str], float]:
    # A record whose tier is unknown (a restore test of a plan the validator could not place) is held to the
    # strictest target: it cannot pass by being unplaced.
    floor = min(targets.values()) if targets else 0.0
    return lambda tier: targets.get(tier, floor)


def _records_from_folder(folder: Path) -> list[dict[str, Any]]:
    from pgf_backup.ops.drill import parse_record

    return [parse_record(path.read_bytes(), str(path)) for path in sorted(folder.rglob("*.json"))]


def _records_from_buckets(project: Project, args: argparse.Namespace, err: TextIO) -> list[dict[str, Any]]:
    from pgf_backup.ops.drill import quarter_prefixes, read_evidence

    backup = project.backup_config()
    accounts: dict[str, tuple[Any, Tier | None]] = {backup.account_id: (backup, None)}
    for name in project.known_stacks():
        cfg = stack_config(project, name)
        if isinstance(cfg, WorkloadStack):
            accounts.setdefault(cfg.account_id, (cfg, cfg.tier))
    records: list[dict[str, Any]] = []
    for account, (cfg, _) in accounts.items():
        region = cfg.regions.primary
        bucket = cfg.audit.bucket_name(cfg.tags.application, account)
        session = _assume(
            account, cfg.role_arn(account, args.role or cfg.iam.deploy_role), region, f"account {account}"
        )
        s3 = _factory(session)("s3", region)
        prefixes = list(quarter_prefixes([account], cfg.regions.all, args.quarter))
        print(f"reading s3://{bucket}/ ({account})", file=err)
        records += read_evidence(s3, bucket, prefixes)
    return records


def cmd_drill_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup drill report --quarter`: exit 1 on a missed target, a failed validation, or no drill."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pgf_backup.ops import drill

    try:
        project = Project.find(args.project_dir)
        rto, rpo = _targets(project)
        records = _records_from_folder(args.dir) if args.dir else _records_from_buckets(project, args, err)
        report = drill.quarter_report(args.quarter, records, _strictest(rto), _strictest(rpo))
    except CommandError as error:
        print(f"error: {error}", file=err)
        return error.status
    except drill.DrillError as error:
        print(f"error: {error}", file=err)
        return ExitStatus.FAILED
    except (ClientError, BotoCoreError) as error:
        return aws_error_status(error, err)
    doc = report.to_json()
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.json:
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        print(f"{args.quarter}: {doc['drills']} drill(s), {doc['restore_tests']} restore test(s)", file=out)
        for row in doc["restores"]:
            print(
                f"  {row['completed_at']} {row['started_by']:<15} {row['tier']:<5} {row['resource_type']:<7} "
                f"RTO {row['rto_hours']:.2f}/{row['rto_target_hours']:g} h {'ok' if row['rto_met'] else 'MISSED'}  "
                f"RPO {row['rpo_hours']:.2f}/{row['rpo_target_hours']:g} h {'ok' if row['rpo_met'] else 'MISSED'}  "
                f"{row['validation']}  {row['source']}",
                file=out,
            )
    for problem in doc["problems"]:
        print(f"problem: {problem}", file=err)
    return ExitStatus.OK if doc["ok"] else ExitStatus.FAILED
