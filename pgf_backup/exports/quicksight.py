"""QuickSight asset bundles: list the account's assets, export them as bundles into an export store, import a
bundle back (restore) or into another account or region (clone).

Only the standard library, boto3/botocore and `pgf_backup.exports.store`: this module is zipped into a Lambda.

AWS references (checked against botocore's quicksight 2018-04-01 model):
- asset bundle operations and the asset types they support:
  https://docs.aws.amazon.com/quicksight/latest/developerguide/asset-bundle-ops.html
- export: https://docs.aws.amazon.com/quicksight/latest/developerguide/assetbundle-export.html and
  https://docs.aws.amazon.com/quicksight/latest/APIReference/API_StartAssetBundleExportJob.html
- import: https://docs.aws.amazon.com/quicksight/latest/developerguide/assetbundle-import.html and
  https://docs.aws.amazon.com/quicksight/latest/APIReference/API_StartAssetBundleImportJob.html
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final, cast

from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import validate_parameters

from pgf_backup.exports import store

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The model's MaxResults (1..100) of every List* call used here.
PAGE_SIZE: Final = 100
# StartAssetBundleExportJob.ResourceArns: 1..100 items (shape AssetBundleResourceArns). The API reference and
# the developer guide state no other per-job limit; accounts run at most 5 export jobs at once
# (API_StartAssetBundleExportJob.html), which this module respects by running its jobs one after another.
MAX_ARNS_PER_JOB: Final = 100
# AssetBundleImportSource.Body: at most 20 MB (shape AssetBundleImportBodyBlob, max 20971520 bytes); "If the
# size of the file ... is more than 20 MB, add the file to your Amazon S3 bucket and use S3Uri" (1 GB max).
BODY_MAX_BYTES: Final = 20 * 1024 * 1024
# AssetBundleExportJobId / AssetBundleImportJobId: shape ShortRestrictiveResourceId.
JOB_ID_PATTERN: Final = re.compile(r"^[\w\-]{1,512}$", re.ASCII)

EXPORT_FORMAT: Final = "QUICKSIGHT_JSON"
BUNDLE_KIND: Final = "bundle"
ASSETS_KIND: Final = "assets"
SOURCE: Final = "quicksight"

# Job states (enums AssetBundleExportJobStatus and AssetBundleImportJobStatus): the ones to keep polling and
# the final ones. DescribeAssetBundleImportJob: "Poll ... until JobStatus returns one of SUCCESSFUL, FAILED,
# FAILED_ROLLBACK_COMPLETED, FAILED_ROLLBACK_ERROR".
EXPORT_RUNNING: Final = frozenset({"QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS"})
EXPORT_DONE: Final = frozenset({"SUCCESSFUL", "FAILED"})
IMPORT_RUNNING: Final = frozenset({"QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS", "FAILED_ROLLBACK_IN_PROGRESS"})
IMPORT_DONE: Final = frozenset({"SUCCESSFUL", "FAILED", "FAILED_ROLLBACK_COMPLETED", "FAILED_ROLLBACK_ERROR"})

# The export's flags, recorded in the manifest so a restore knows what the bundles hold.
# - QUICKSIGHT_JSON: the only format StartAssetBundleImportJob reads ("You can only import QuickSight JSON
#   bundles with the QuickSight asset bundle APIs"); CLOUDFORMATION_JSON would restore only through a
#   CloudFormation stack.
# - IncludeAllDependencies: each bundle carries the themes, datasets, data sources and parent folders its
#   assets use, so any one bundle imports on its own ("All of an imported assets' dependencies must be present
#   for an asset import job to succeed").
# - IncludePermissions / IncludeTags: a restore into the same account puts back who may see what and the
#   tags; by default neither is exported. "If the asset bundle was exported with permissions, all existing
#   permissions are replaced by the permissions that are in the exported asset bundle's file"; a clone into
#   another account has other principal ARNs and passes OverridePermissions (which wins over the bundle's).
# - IncludeFolderMemberships: keeps each asset in its folders; with IncludeAllDependencies the folders come
#   along ("To include the folder in the direct export, set IncludeAllDependencies to True").
# - lenient validation (StrictModeForAllResources false, the default, said explicitly): a backup must not
#   fail on the harmless UI anomalies strict mode rejects, and the import follows the bundle's strategy.
EXPORT_OPTIONS: Final[Mapping[str, Any]] = {
    "IncludeAllDependencies": True,
    "ExportFormat": EXPORT_FORMAT,
    "IncludePermissions": True,
    "IncludeTags": True,
    "IncludeFolderMemberships": True,
    "ValidationStrategy": {"StrictModeForAllResources": False},
}

# Asset type -> (client method, result key of its pages, extra request parameters).
# ListThemes returns QuickSight's own starting themes too (Type ALL by default); those exist in every account
# and cannot be exported or imported as custom assets, so only CUSTOM themes are listed.
_LISTS: Final[Mapping[str, tuple[str, str, Mapping[str, str]]]] = {
    "dashboards": ("list_dashboards", "DashboardSummaryList", {}),
    "analyses": ("list_analyses", "AnalysisSummaryList", {}),
    "datasets": ("list_data_sets", "DataSetSummaries", {}),
    "data_sources": ("list_data_sources", "DataSources", {}),
    "themes": ("list_themes", "ThemeSummaryList", {"Type": "CUSTOM"}),
    "folders": ("list_folders", "FolderSummaryList", {}),
}
ASSET_TYPES: Final = tuple(_LISTS)

# The import's overrides and the botocore shape each must satisfy.
_OVERRIDE_SHAPES: Final = {
    "OverrideParameters": "AssetBundleImportJobOverrideParameters",
    "OverridePermissions": "AssetBundleImportJobOverridePermissions",
    "OverrideTags": "AssetBundleImportJobOverrideTags",
}

_CHUNK: Final = 1024 * 1024
# A downloaded bundle is checked as a zip before it is stored; past this size it waits on local disk
# (Lambda's /tmp) rather than in memory.
_SPOOL_BYTES: Final = 8 * 1024 * 1024


class QuickSightError(Exception):
    """A QuickSight asset bundle job could not be run or did not succeed."""


class QuickSightExportError(QuickSightError):
    """An export job failed; `errors` are the job's Errors as AWS returned them (Arn, Type, Message)."""

    def __init__(self, job_id: str, errors: Iterable[Mapping[str, Any]], message: str | None = None) -> None:
        self.job_id = job_id
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors]
        detail = "; ".join(f"{e.get('Type', '?')} on {e.get('Arn', '?')}: {e.get('Message', '')}" for e in self.errors)
        super().__init__(message or f"export job {job_id} failed: {detail or 'no errors reported'}")


class QuickSightTimeoutError(QuickSightError, TimeoutError):
    """A job did not finish within the time given; it may still be running in QuickSight."""

    def __init__(self, kind: str, job_id: str, status: str, waited: float) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(
            f"{kind} job {job_id} still {status} after {waited:.0f} s; it may still finish in QuickSight "
            f"(DescribeAssetBundle{kind.capitalize()}Job shows it for 14 days)"
        )


class InvalidOverridesError(QuickSightError, ValueError):
    """An override file does not match botocore's shape for it; nothing was called."""


class BundleTooLargeError(QuickSightError):
    """The bundle is over the inline Body limit and QuickSight cannot read it from where it is stored."""


def _require_adaptive(client: Any, name: str) -> None:
    mode = (client.meta.config.retries or {}).get("mode")
    if mode != "adaptive":
        raise ValueError(
            f"the {name} client retries in {mode!r} mode; make it with config=store.RETRY_CONFIG (adaptive), "
            "QuickSight throttles its List and asset bundle calls"
        )


def _check_job_id(job_id: str) -> str:
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise ValueError(f"job id {job_id!r} does not match [\\w-]+ (1-512 characters), QuickSight would refuse it")
    return job_id


def _new_job_id(prefix: str, stamp: str, n: int) -> str:
    # Unique while running is all QuickSight asks; the random tail keeps two runs in the same second apart.
    return _check_job_id(f"{prefix}-{stamp}-{n}-{uuid.uuid4().hex[:8]}")


def list_assets(qs: Any, account_id: str) -> dict[str, list[str]]:
    """ARNs of every dashboard, analysis, dataset, data source, custom theme and folder of the account."""
    _require_adaptive(qs, "quicksight")
    assets: dict[str, list[str]] = {}
    for asset_type, (method, result_key, extra) in _LISTS.items():
        paginator = qs.get_paginator(method)
        arns: list[str] = []
        for page in paginator.paginate(AwsAccountId=account_id, **extra, PaginationConfig={"PageSize": PAGE_SIZE}):
            for summary in page.get(result_key, []):
                # An analysis deleted with a recovery window stays listed (Status DELETED) until it is purged;
                # it is no longer usable and QuickSight will not export it.
                # https://docs.aws.amazon.com/quicksight/latest/APIReference/API_DeleteAnalysis.html
                if summary.get("Status") == "DELETED" and asset_type == "analyses":
                    continue
                arns.append(summary["Arn"])
        assets[asset_type] = arns
    return assets


def _https_get(url: str) -> IO[bytes]:
    # The URL is pre-signed: it must never reach a log or an error message.
    if urllib.parse.urlsplit(url).scheme != "https":
        raise QuickSightError("the export job's DownloadUrl is not an https URL")
    response: IO[bytes] = urllib.request.urlopen(url, timeout=60)  # noqa: S310 -- https checked above
    return response


class _Clock:
    """One deadline for a run's polls: wall time, or the time slept when `sleep` is a test's fake."""

    def __init__(self, timeout: float, sleep: Callable[[float], None]) -> None:
        self.timeout = timeout
        self.sleep = sleep
        self.started = time.monotonic()
        self.slept = 0.0

    def waited(self) -> float:
        return max(time.monotonic() - self.started, self.slept)

    def poll(
        self,
        describe: Callable[[], dict[str, Any]],
        *,
        kind: str,
        job_id: str,
        running: frozenset[str],
        done: frozenset[str],
        interval: float,
    ) -> dict[str, Any]:
        while True:
            job = describe()
            status = job.get("JobStatus", "")
            if status in done:
                return job
            if status not in running:
                raise QuickSightError(f"{kind} job {job_id}: unexpected JobStatus {status!r}")
            if self.waited() >= self.timeout:
                raise QuickSightTimeoutError(kind, job_id, status, self.waited())
            self.sleep(interval)
            self.slept += interval


def _check_timing(poll_interval: float, timeout: float) -> None:
    if poll_interval <= 0 or timeout <= 0:
        raise ValueError(f"poll_interval ({poll_interval}) and timeout ({timeout}) must be positive")


def _zip_entries(stream: IO[bytes], job_id: str) -> int:
    # A truncated download or an error page would otherwise be stored, and checksummed, as a good backup.
    try:
        with zipfile.ZipFile(stream) as bundle:
            bad = bundle.testzip()
            count = len(bundle.infolist())
    except zipfile.BadZipFile as e:
        raise QuickSightExportError(job_id, [], f"export job {job_id}: the downloaded bundle is not a zip: {e}") from e
    if bad is not None:
        raise QuickSightExportError(job_id, [], f"export job {job_id}: the downloaded bundle is corrupt at {bad}")
    return count


def export_assets(
    qs: Any,
    s3: S3Client,
    *,
    account_id: str,
    region: str,
    bucket: str,
    kms_key_id: str | None = None,
    root: str = "quicksight",
    now: datetime | None = None,
    poll_interval: float = 5.0,
    timeout: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
    download: Callable[[str], IO[bytes]] = _https_get,
    job_prefix: str = "pgf-backup",
    arns_per_job: int = MAX_ARNS_PER_JOB,
) -> dict[str, Any]:
    """Export every asset as QUICKSIGHT_JSON bundles into `bucket`; return the manifest, written last.

    `timeout` bounds the whole run (all jobs), to fit the caller's own limit (a Lambda's 15 minutes). A failed
    job raises QuickSightExportError, a slow one QuickSightTimeoutError; either way no manifest is written, so
    the partial export is never taken for a complete one.
    """
    _require_adaptive(qs, "quicksight")
    _require_adaptive(s3, "s3")
    _check_timing(poll_interval, timeout)
    if not 1 <= arns_per_job <= MAX_ARNS_PER_JOB:
        raise ValueError(f"arns_per_job must be 1..{MAX_ARNS_PER_JOB} (ResourceArns), got {arns_per_job}")
    if now is not None and now.utcoffset() is None:
        raise ValueError(f"now={now!r} has no time zone; the export's folder is named in UTC")
    when = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = f"{when:%Y%m%dT%H%M%SZ}"
    _check_job_id(f"{job_prefix}-{stamp}-1-00000000")

    assets = list_assets(qs, account_id)
    typed = [(asset_type, arn) for asset_type in ASSET_TYPES for arn in assets[asset_type]]
    batches = [typed[i : i + arns_per_job] for i in range(0, len(typed), arns_per_job)]

    writer = store.ExportWriter(s3, bucket, f"{root}/{account_id}/{region}/{stamp}/", kms_key_id=kms_key_id)
    try:
        return _export_batches(
            qs,
            writer,
            batches,
            account_id=account_id,
            region=region,
            when=when,
            stamp=stamp,
            job_prefix=job_prefix,
            asset_counts={asset_type: len(assets[asset_type]) for asset_type in ASSET_TYPES},
            clock=_Clock(timeout, sleep),
            poll_interval=poll_interval,
            download=download,
        )
    except BaseException:
        # The open upload is aborted; the bundles already stored stay without a manifest, which no reader takes
        # for an export (the function may not delete: store.ExportWriter.abort), and the error that matters is
        # the one being raised.
        with contextlib.suppress(Exception):
            writer.abort()
        raise


def _export_batches(
    qs: Any,
    writer: store.ExportWriter,
    batches: list[list[tuple[str, str]]],
    *,
    account_id: str,
    region: str,
    when: datetime,
    stamp: str,
    job_prefix: str,
    asset_counts: dict[str, int],
    clock: _Clock,
    poll_interval: float,
    download: Callable[[str], IO[bytes]],
) -> dict[str, Any]:
    jobs: list[dict[str, Any]] = []
    listing: list[dict[str, str]] = []
    for n, batch in enumerate(batches, start=1):
        job_id = _new_job_id(job_prefix, stamp, n)
        qs.start_asset_bundle_export_job(
            AwsAccountId=account_id,
            AssetBundleExportJobId=job_id,
            ResourceArns=[arn for _, arn in batch],
            **EXPORT_OPTIONS,
        )
        job = clock.poll(
            functools.partial(
                qs.describe_asset_bundle_export_job, AwsAccountId=account_id, AssetBundleExportJobId=job_id
            ),
            kind="export",
            job_id=job_id,
            running=EXPORT_RUNNING,
            done=EXPORT_DONE,
            interval=poll_interval,
        )
        if job["JobStatus"] == "FAILED":
            raise QuickSightExportError(job_id, job.get("Errors", []))
        if not job.get("DownloadUrl"):
            raise QuickSightExportError(job_id, [], f"export job {job_id} succeeded without a DownloadUrl")
        # DownloadUrl "is valid for 5 minutes after issuance", fetched right away
        # (https://docs.aws.amazon.com/quicksight/latest/APIReference/API_DescribeAssetBundleExportJob.html).
        name = f"bundle-{n}.qs"
        with (
            contextlib.closing(download(job["DownloadUrl"])) as source,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool,
        ):
            shutil.copyfileobj(source, spool, _CHUNK)
            spool.seek(0)
            entries = _zip_entries(spool, job_id)
            spool.seek(0)
            entry = writer.put_stream(BUNDLE_KIND, name, cast(BinaryIO, spool), content_type="application/zip")
        jobs.append(
            {
                "job_id": job_id,
                "bundle": entry.key,
                "resource_arns": len(batch),
                "zip_entries": entries,
                "warnings": job.get("Warnings", []),
            }
        )
        listing.extend({"bundle": entry.key, "job_id": job_id, "type": t, "arn": arn} for t, arn in batch)

    with writer.ndjson(ASSETS_KIND) as out:
        for record in listing:
            out.write(record)
    return writer.finish(
        source=SOURCE,
        account_id=account_id,
        region=region,
        exported_at=when.isoformat(),
        export_options=dict(EXPORT_OPTIONS),
        jobs=jobs,
        asset_counts=asset_counts,
    )


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, dry run, would do); errors exactly as DescribeAssetBundleImportJob returned them."""

    account_id: str
    bucket: str
    key: str
    status: str
    job_id: str | None
    source: str
    bundle_bytes: int
    sha256: str
    failure_action: str
    # Only the names of the override sections: their values may hold data source credentials.
    overrides: dict[str, list[str]]
    assets: list[dict[str, str]]
    errors: list[dict[str, Any]]
    rollback_errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    dry_run: bool

    @property
    def ok(self) -> bool:
        """True when the import succeeded, or the dry run found nothing in the way."""
        return self.status in ("SUCCESSFUL", "DRY_RUN")

    def to_json(self) -> str:
        """The result as indented JSON, with `ok`."""
        return json.dumps({**asdict(self), "ok": self.ok}, indent=2, sort_keys=True, default=str)


def _redact(report: str) -> str:
    # botocore's report echoes a value of the wrong type, which could be a password.
    return re.sub(r"value: .*?, type: ", "type: ", report)


def validate_overrides(qs: Any, overrides: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """Check each override (OverrideParameters, OverridePermissions, OverrideTags) against botocore's shape."""
    model = qs.meta.service_model
    checked: dict[str, dict[str, Any]] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in _OVERRIDE_SHAPES:
            raise InvalidOverridesError(f"unknown override {name!r}; one of {sorted(_OVERRIDE_SHAPES)}")
        try:
            validate_parameters(value, model.shape_for(_OVERRIDE_SHAPES[name]))
        except ParamValidationError as e:
            raise InvalidOverridesError(f"{name} is not a valid {_OVERRIDE_SHAPES[name]}: {_redact(str(e))}") from None
        checked[name] = dict(value)
    return checked


def _bundle_entry(manifest: Mapping[str, Any], bucket: str, prefix: str, name: str) -> Mapping[str, Any]:
    for entry in manifest["objects"]:
        if entry["key"] == name:
            if entry["kind"] != BUNDLE_KIND:
                raise store.InvalidExport(f"s3://{bucket}/{prefix}{name} is a {entry['kind']!r} object, not a bundle")
            return dict(entry)
    raise store.InvalidExport(f"s3://{bucket}/{prefix}{name} is not listed in its export's {store.MANIFEST}")


def _assets_of(s3: S3Client, bucket: str, prefix: str, manifest: Mapping[str, Any], name: str) -> list[dict[str, str]]:
    listed: list[dict[str, str]] = []
    for entry in manifest["objects"]:
        if entry["kind"] == ASSETS_KIND:
            listed.extend(
                {"type": r["type"], "arn": r["arn"]}
                for r in store.iter_ndjson(s3, bucket, prefix + entry["key"])
                if r.get("bundle") == name
            )
    return listed


def _bucket_in_account(s3: S3Client, bucket: str, key: str, account_id: str) -> bool:
    # S3 answers 403 when the bucket's owner is not ExpectedBucketOwner.
    try:
        s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=account_id)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("403", "AccessDenied"):
            return False
        raise
    return True


def import_bundle(
    qs: Any,
    s3: S3Client,
    *,
    account_id: str,
    bucket: str,
    key: str,
    override_parameters: Mapping[str, Any] | None = None,
    override_permissions: Mapping[str, Any] | None = None,
    override_tags: Mapping[str, Any] | None = None,
    failure_action: str = "ROLLBACK",
    dry_run: bool = False,
    poll_interval: float = 5.0,
    timeout: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
    job_id: str | None = None,
) -> ImportResult:
    """Import one exported bundle into `account_id` (the account and region of `qs`), after verifying its export.

    The overrides are checked against botocore's shapes before anything is read or called; the export is
    verified (every object's size and SHA-256) so a tampered bundle is refused with store.InvalidExport.
    A bundle up to 20 MB goes inline (Body), so the target account never needs to read our bucket; a larger one
    only through S3Uri, which QuickSight reads only from a bucket of the importing account.
    """
    _require_adaptive(qs, "quicksight")
    _require_adaptive(s3, "s3")
    _check_timing(poll_interval, timeout)
    actions = qs.meta.service_model.shape_for("AssetBundleImportFailureAction").enum
    if failure_action not in actions:
        raise ValueError(f"failure_action {failure_action!r} is not one of {actions}")
    if job_id is not None:
        _check_job_id(job_id)
    overrides = validate_overrides(
        qs,
        {
            "OverrideParameters": override_parameters,
            "OverridePermissions": override_permissions,
            "OverrideTags": override_tags,
        },
    )

    # A bundle sits beside its export's manifest (ExportWriter.put_stream names it relative to the prefix).
    head, _, name = key.rpartition("/")
    prefix = f"{head}/" if head else ""
    manifest = store.verify(s3, bucket, prefix)
    if manifest.get("source") != SOURCE:
        raise store.InvalidExport(f"s3://{bucket}/{prefix}{store.MANIFEST} is not a QuickSight export")
    entry = _bundle_entry(manifest, bucket, prefix, name)
    size, digest = int(entry["bytes"]), str(entry["sha256"])

    source: dict[str, Any]
    if size <= BODY_MAX_BYTES:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        # Verified a moment ago; these exact bytes are what QuickSight gets.
        if len(body) != size or hashlib.sha256(body).hexdigest() != digest:
            raise store.InvalidExport(f"{key} changed since its export was verified")
        source = {"Body": body}
    elif _bucket_in_account(s3, bucket, key, account_id):
        # "The S3 bucket exists in the same AWS account as your QuickSight account" and the caller needs
        # s3:GetObject (and kms:Decrypt when the export is encrypted with a customer managed key).
        source = {"S3Uri": f"s3://{bucket}/{key}"}
    else:
        raise BundleTooLargeError(
            f"{key} is {size} bytes, over the {BODY_MAX_BYTES}-byte limit of an inline bundle, and {bucket} is not in "
            f"account {account_id}, so QuickSight cannot read it there: copy the bundle to a bucket of account "
            f"{account_id} and import it from there (S3Uri), or export again with fewer ARNs per job"
        )

    base: dict[str, Any] = {
        "account_id": account_id,
        "bucket": bucket,
        "key": key,
        "source": next(iter(source)),
        "bundle_bytes": size,
        "sha256": digest,
        "failure_action": failure_action,
        "overrides": {section: sorted(value) for section, value in overrides.items()},
        "assets": _assets_of(s3, bucket, prefix, manifest, name),
    }
    if dry_run:
        return ImportResult(
            **base, status="DRY_RUN", job_id=None, errors=[], rollback_errors=[], warnings=[], dry_run=True
        )

    job_id = job_id or _new_job_id("pgf-import", f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}", 1)
    qs.start_asset_bundle_import_job(
        AwsAccountId=account_id,
        AssetBundleImportJobId=job_id,
        AssetBundleImportSource=source,
        FailureAction=failure_action,
        **overrides,
    )
    job = _Clock(timeout, sleep).poll(
        functools.partial(qs.describe_asset_bundle_import_job, AwsAccountId=account_id, AssetBundleImportJobId=job_id),
        kind="import",
        job_id=job_id,
        running=IMPORT_RUNNING,
        done=IMPORT_DONE,
        interval=poll_interval,
    )
    return ImportResult(
        **base,
        status=job["JobStatus"],
        job_id=job_id,
        errors=job.get("Errors", []),
        rollback_errors=job.get("RollbackErrors", []),
        warnings=job.get("Warnings", []),
        dry_run=False,
    )
