"""The export Lambdas' entry points: the environment the `CatalogExport` and `QuickSightExport` components
set, turned into a call of the same functions `pgf-backup catalog export` and `quicksight export` run.

Environment: EXPORT_BUCKET (the export bucket), EXPORT_KMS_KEY_ARN (its key), EXPORT_ROOT (the prefix,
`catalog` or `quicksight`), and for the catalog INCLUDE_TABLE_VERSIONS (`true`/`false`). The account is
the function's own (from its ARN in the invocation context: no extra call, no extra permission), the
region the one Lambda runs it in (AWS_REGION, set by the runtime).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import boto3

from pgf_backup.exports import catalog, quicksight
from pgf_backup.exports.store import RETRY_CONFIG


def _settings(environ: Mapping[str, str], context: Any) -> tuple[str, str, str, str, str]:
    """(bucket, key ARN, root, account id, region) of this invocation."""
    missing = [name for name in ("EXPORT_BUCKET", "EXPORT_KMS_KEY_ARN", "EXPORT_ROOT") if not environ.get(name)]
    if missing:
        raise RuntimeError(f"the function's environment lacks {', '.join(missing)} (set by its component)")
    # arn:<partition>:lambda:<region>:<account>:function:<name>[:<alias>]
    account = str(context.invoked_function_arn).split(":")[4]
    region = environ.get("AWS_REGION") or str(context.invoked_function_arn).split(":")[3]
    return environ["EXPORT_BUCKET"], environ["EXPORT_KMS_KEY_ARN"], environ["EXPORT_ROOT"], account, region


def _clients(region: str, service: Literal["glue", "quicksight"]) -> tuple[Any, Any]:
    """The service's client and S3's, in the function's region, with adaptive retries."""
    session = boto3.session.Session(region_name=region)
    return session.client(service, config=RETRY_CONFIG), session.client("s3", config=RETRY_CONFIG)


def catalog_export(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Export the Glue Data Catalog; the manifest is written last, so a failed run leaves none."""
    bucket, key, root, account, region = _settings(os.environ, context)
    glue, s3 = _clients(region, "glue")
    manifest = catalog.export_catalog(
        glue,
        s3,
        bucket=bucket,
        account_id=account,
        region=region,
        kms_key_id=key,
        include_table_versions=os.environ.get("INCLUDE_TABLE_VERSIONS") == "true",
        root=root,
    )
    return {"prefix": manifest["prefix"], "counts": manifest["counts"]}


def quicksight_export(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Export every QuickSight asset as asset bundles, with a manifest written last."""
    bucket, key, root, account, region = _settings(os.environ, context)
    client, s3 = _clients(region, "quicksight")
    manifest = quicksight.export_assets(
        client,
        s3,
        account_id=account,
        region=region,
        bucket=bucket,
        kms_key_id=key,
        root=root,
    )
    return {"prefix": manifest["prefix"], "counts": manifest["counts"]}
