"""`pgf-backup catalog export|import` and `pgf-backup quicksight export|import`: the operators' side of the
scheduled exports, run with their own AWS credentials and the same code as the Lambdas
(`pgf_backup/exports/`).

Exit statuses: 0 done; 1 the export is incomplete or tampered (nothing imported), or AWS refused or failed
a step (the message names it); 2 bad arguments, an unusable stack file or credentials for another account;
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pgf_backup.automation.arguments import Parser, output_file
from pgf_backup.automation.aws_access import CommandError, ProgressBar, aws_error_status, workload_config
from pgf_backup.automation.aws_access import session as _session
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import WorkloadStack
from pgf_backup.project import Project


def _s3_url(text: str) -> tuple[str, str]:
    """argparse type of `s3://bucket/prefix`."""
    from pgf_backup.exports.store import parse_s3_url

    try:
        return parse_s3_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _json_file(text: str) -> dict[str, Any]:
    """argparse type of a JSON file holding an object (override parameters)."""
    path = Path(text)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise argparse.ArgumentTypeError(f"{text} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text} must hold a JSON object (QuickSight's OverrideParameters)")
    return value


def _account_id(text: str) -> str:
    if not (len(text) == 12 and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS account id (12 digits)")
    return text


def add_commands(sub: Any) -> None:
    """Register `catalog` and `quicksight` (each with `export` and `import`) on the `pgf-backup` subparsers."""
    catalog = sub.add_parser("catalog", help="export the Glue Data Catalog to S3, or restore it from an export")
    catalog_sub = catalog.add_subparsers(dest="action", required=True, parser_class=Parser)
    export = catalog_sub.add_parser("export", help="export the catalog now (the scheduled Lambda's code)")
    _export_arguments(export)
    export.add_argument(
        "--include-table-versions", action="store_true", help="also export each table's earlier versions"
    )
    export.set_defaults(handler=cmd_catalog_export)
    restore = catalog_sub.add_parser("import", help="recreate databases, tables and partitions from an export")
    restore.add_argument("url", type=_s3_url, metavar="s3://BUCKET/PREFIX/", help="the export (its manifest's folder)")
    restore.add_argument("--database", metavar="NAME", help="import this database only")
    restore.add_argument(
        "--on-conflict",
        choices=("fail", "skip", "replace"),
        default="fail",
        help="what to do with a database or table that exists (default: fail before writing anything)",
    )
    restore.add_argument("--dry-run", action="store_true", help="verify the export and say what would be done")
    restore.add_argument("--region", help="region of the catalog to restore into (default: the profile's)")
    restore.add_argument("--json", type=output_file, metavar="FILE", help="write the report as JSON to FILE")
    restore.set_defaults(handler=cmd_catalog_import)

    quicksight = sub.add_parser("quicksight", help="export QuickSight assets as asset bundles, or import one")
    quicksight_sub = quicksight.add_subparsers(dest="action", required=True, parser_class=Parser)
    export = quicksight_sub.add_parser("export", help="export every asset now (the scheduled Lambda's code)")
    _export_arguments(export)
    export.set_defaults(handler=cmd_quicksight_export)
    restore = quicksight_sub.add_parser("import", help="import an exported bundle, to restore or to clone")
    restore.add_argument(
        "url", type=_s3_url, metavar="s3://BUCKET/PREFIX/", help="an export's folder, or one bundle (….qs) in it"
    )
    restore.add_argument("--target-account", type=_account_id, help="import into this account (a clone)")
    restore.add_argument("--target-region", help="import into this region (default: the profile's)")
    restore.add_argument(
        "--target-role",
        metavar="ARN",
        help="role to assume in the target account (default: the stack files' deploy role there)",
    )
    restore.add_argument(
        "--override-parameters", type=_json_file, metavar="FILE", help="QuickSight OverrideParameters (JSON)"
    )
    restore.add_argument("--dry-run", action="store_true", help="verify the bundle and the overrides, import nothing")
    restore.add_argument("--json", type=output_file, metavar="FILE", help="write the report as JSON to FILE")
    restore.set_defaults(handler=cmd_quicksight_import)


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", help="the workload stack whose export bucket and region to use")
    parser.add_argument("--to", type=_s3_url, metavar="s3://BUCKET/PREFIX/", help="write here instead")
    parser.add_argument("--region", help="region to export (default: the stack's primary region, or the profile's)")
    parser.add_argument("--json", type=output_file, metavar="FILE", help="write the manifest as JSON to FILE")


# ---------------------------------------------------------------------------------------------
# AWS sessions


def _client(session: Any, service: str) -> Any:
    from pgf_backup.exports.store import RETRY_CONFIG

    return session.client(service, config=RETRY_CONFIG)


def _caller_account(session: Any) -> str:
    return str(_client(session, "sts").get_caller_identity()["Account"])


def _stack_config(args: argparse.Namespace) -> WorkloadStack | None:
    if not args.stack:
        return None
    cfg = workload_config(Project.find(args.project_dir), args.stack, "exports run in workload stacks")
    if cfg.exports is None:
        raise CommandError(f"stack {args.stack!r} has no pgf-backup:exports (the export bucket); give --to")
    return cfg


def _export_target(args: argparse.Namespace, root: str) -> tuple[Any, str, str, str, str]:
    """(session, account id, region, bucket, root prefix) of a hand-run export."""
    cfg = _stack_config(args)
    if cfg is None and args.to is None:
        raise CommandError("say where to write: --stack NAME (its export bucket) or --to s3://BUCKET/PREFIX/")
    region = args.region or (cfg.regions.primary if cfg else None)
    session = _session(region)
    region = region or session.region_name
    if not region:
        raise CommandError("no region: give --region or set one in the AWS profile (AWS_REGION)")
    account = _caller_account(session)
    if cfg is not None and account != cfg.account_id:
        raise CommandError(
            f"the credentials are for account {account}, and stack {args.stack} is account {cfg.account_id}: "
            "sign in to that account (e.g. AWS_PROFILE) first"
        )
    if args.to is not None:
        bucket, prefix = args.to
        return session, account, region, bucket, (prefix.rstrip("/") or root)
    assert cfg is not None and cfg.exports is not None
    return session, account, region, cfg.exports.bucket, root


# ---------------------------------------------------------------------------------------------
# Handlers


def _guarded(run: Callable[[], ExitStatus], err: TextIO) -> ExitStatus:
    """Run a command; its user errors, invalid exports and AWS failures become a message and an exit status."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pgf_backup.exports import catalog
    from pgf_backup.exports.store import InvalidExport

    try:
        return run()
    except CommandError as error:
        print(f"error: {error}", file=err)
        return error.status
    except InvalidExport as error:
        print(f"error: invalid export: {error}", file=err)
        return ExitStatus.FAILED
    except (catalog.CatalogConflict, catalog.CatalogExportError, catalog.CatalogImportError) as error:
        print(f"error: {error}", file=err)
        return ExitStatus.FAILED
    except (ClientError, BotoCoreError) as error:
        return aws_error_status(error, err)


def _write_json(path: Path | None, value: Any, out: TextIO) -> None:
    if path is not None:
        path.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
        print(f"report written to {path}", file=out)


def _print_manifest(manifest: dict[str, Any], bucket: str, out: TextIO) -> None:
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(manifest.get("counts", {}).items()))
    print(f"exported to s3://{bucket}/{manifest['prefix']} ({counts or 'nothing'}); manifest written last", file=out)


def cmd_catalog_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup catalog export`: the Lambda's export, run now with the operator's credentials."""

    def run() -> ExitStatus:
        from pgf_backup.exports import catalog

        session, account, region, bucket, root = _export_target(args, "catalog")
        manifest = catalog.export_catalog(
            _client(session, "glue"),
            _client(session, "s3"),
            bucket=bucket,
            account_id=account,
            region=region,
            include_table_versions=args.include_table_versions,
            root=root,
        )
        _print_manifest(manifest, bucket, out)
        _write_json(args.json, manifest, out)
        return ExitStatus.OK

    return _guarded(run, err)


def cmd_catalog_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup catalog import`: verify every checksum, then recreate the catalog with batched calls."""

    def run() -> ExitStatus:
        from pgf_backup.exports import catalog

        bucket, prefix = args.url
        session = _session(args.region)
        bar = ProgressBar(err)
        try:
            report = catalog.import_catalog(
                _client(session, "glue"),
                _client(session, "s3"),
                bucket,
                prefix,
                database=args.database,
                on_conflict=args.on_conflict,
                dry_run=args.dry_run,
                progress=bar,
            )
        finally:
            bar.close()
        summary = report.to_json()
        verb = "would import" if args.dry_run else "imported"
        for kind, counts in sorted(summary.get("counts", {}).items()):
            shown = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()) if n)
            print(f"{verb} {kind}: {shown or 'none'}", file=out)
        for problem in summary.get("errors", []):
            print(f"error: {problem}", file=err)
        _write_json(args.json, summary, out)
        return ExitStatus.FAILED if summary.get("errors") else ExitStatus.OK

    return _guarded(run, err)


def cmd_quicksight_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup quicksight export`: the Lambda's asset bundle export, run now."""

    def run() -> ExitStatus:
        from pgf_backup.exports import quicksight

        session, account, region, bucket, root = _export_target(args, "quicksight")
        try:
            manifest = quicksight.export_assets(
                _client(session, "quicksight"), _client(session, "s3"), account_id=account, region=region,
                bucket=bucket, root=root,
            )  # fmt: skip
        except quicksight.QuickSightError as error:
            raise CommandError(str(error), ExitStatus.FAILED) from None
        _print_manifest(manifest, bucket, out)
        _write_json(args.json, manifest, out)
        return ExitStatus.OK

    return _guarded(run, err)


def _bundles(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The bundle keys an import URL names: one `.qs` object, or every bundle of an export's manifest."""
    from pgf_backup.exports.store import read_manifest

    if prefix.rstrip("/").endswith(".qs"):
        return [prefix.rstrip("/")]
    manifest = read_manifest(s3, bucket, prefix)
    keys = [f"{manifest['prefix']}{entry['key']}" for entry in manifest["objects"] if str(entry["key"]).endswith(".qs")]
    if not keys:
        raise CommandError(f"s3://{bucket}/{prefix} holds no asset bundle (.qs)", ExitStatus.FAILED)
    return keys


def cmd_quicksight_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup quicksight import`: start and follow an import job per bundle; AWS's errors per asset."""

    def run() -> ExitStatus:
        from pgf_backup.exports import quicksight

        bucket, prefix = args.url
        source = _session(args.target_region)
        role = args.target_role
        if args.target_account and role is None:
            # The deploy role has the same name in every account (pgf-backup:iam, shared by the stacks).
            cfg = Project.find(args.project_dir).backup_config()
            role = cfg.role_arn(args.target_account, cfg.iam.deploy_role, args.target_region)
        target = _session(args.target_region, role) if role else source
        account = args.target_account or _caller_account(target)
        if not target.region_name:
            raise CommandError("no region: give --target-region or set one in the AWS profile (AWS_REGION)")
        s3 = _client(source, "s3")
        status = ExitStatus.OK
        results = []
        for key in _bundles(s3, bucket, prefix):
            try:
                result = quicksight.import_bundle(
                    _client(target, "quicksight"), s3, account_id=account, bucket=bucket, key=key,
                    override_parameters=args.override_parameters, dry_run=args.dry_run,
                )  # fmt: skip
            except quicksight.InvalidOverridesError as error:
                raise CommandError(f"--override-parameters: {error}") from None
            except quicksight.QuickSightError as error:
                raise CommandError(str(error), ExitStatus.FAILED) from None
            results.append(json.loads(result.to_json()))
            print(f"{key}: {result.status} (account {account}, region {target.region_name})", file=out)
            for problem in [*result.errors, *result.rollback_errors]:
                print(f"error: {key}: {json.dumps(problem, sort_keys=True, default=str)}", file=err)
            if not result.ok:
                status = ExitStatus.FAILED
        _write_json(args.json, results, out)
        return status

    return _guarded(run, err)
