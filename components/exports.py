"""Scheduled exports of what AWS Backup does not back up: the Glue Data Catalog and QuickSight's assets.

`ExportStore` is the versioned, SSE-KMS bucket both write to, created here and then protected by
`S3Protection` exactly as an application bucket is (and selected by the tier's backup plan, by the
stack). `CatalogExport` and `QuickSightExport` are each a `ScheduledFunction` running this repository's
code (`pgf_backup/exports/`) with only the permissions its export needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import pulumi
import pulumi_aws as aws

from components.policies import KeyGuard, Statement
from components.s3_protection import S3Protection, S3ProtectionArgs
from components.scheduled_function import ScheduledFunction, ScheduledFunctionArgs

CATALOG_ROOT = "catalog"
QUICKSIGHT_ROOT = "quicksight"
CATALOG_HANDLER = "pgf_backup.exports.handlers.catalog_export"
QUICKSIGHT_HANDLER = "pgf_backup.exports.handlers.quicksight_export"

# Glue's read operations of a catalog export. Each authorizes on the catalog, the database and (for
# tables, partitions and functions) the table or function ARNs:
# https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html
GLUE_READ_ACTIONS = (
    "glue:GetDatabases",
    "glue:GetTables",
    "glue:GetPartitions",
    "glue:GetTableVersions",
    "glue:GetUserDefinedFunctions",
)
# The asset bundle export: starting and following the job, and describing each asset it exports (AWS's
# permission example for StartAssetBundleExportJob,
# https://docs.aws.amazon.com/quicksight/latest/developerguide/assetbundle-permissions.html).
QUICKSIGHT_DESCRIBE_ACTIONS = (
    "quicksight:DescribeAnalysis",
    "quicksight:DescribeAnalysisPermissions",
    "quicksight:DescribeDashboard",
    "quicksight:DescribeDashboardPermissions",
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:DescribeDataSetRefreshProperties",
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    # Folder memberships travel with the assets (IncludeFolderMemberships): reading the folders, read-only.
    "quicksight:DescribeFolder",
    "quicksight:DescribeFolderPermissions",
    "quicksight:ListFolderMembers",
    "quicksight:DescribeRefreshSchedule",
    "quicksight:DescribeTheme",
    "quicksight:DescribeThemePermissions",
    "quicksight:DescribeVPCConnection",
    "quicksight:ListRefreshSchedules",
    "quicksight:ListTagsForResource",
)
QUICKSIGHT_JOB_ACTIONS = ("quicksight:StartAssetBundleExportJob", "quicksight:DescribeAssetBundleExportJob")
QUICKSIGHT_LIST_ACTIONS = (
    "quicksight:ListAnalyses",
    "quicksight:ListDashboards",
    "quicksight:ListDataSets",
    "quicksight:ListDataSources",
    "quicksight:ListFolders",
    "quicksight:ListThemes",
)


@dataclass(frozen=True)
class ExportStoreArgs:
    """The export bucket: created by this stack, then protected like an application bucket."""

    bucket: str
    account_id: str
    region: str
    partition: str
    noncurrent_version_expiration_days: int = 90
    # Production: the bucket and its key are protected from deletion, the key policy guarded.
    key_guard: KeyGuard | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Tags of the bucket alone: those a backup selection matches (the key and settings are not backed up).
    selection_tags: dict[str, str] = field(default_factory=dict)


class ExportStore(pulumi.ComponentResource):
    """A bucket for exports: versioned, SSE-KMS with its own key, TLS only, public access blocked."""

    bucket: str
    bucket_arn: str
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ExportStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgf:backup:ExportStore", name, None, opts)
        guarded = args.key_guard is not None
        # Exports are backups: the bucket outlives the stack (retained), and in prod cannot be deleted by it.
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket,
            force_destroy=False,
            tags={**args.tags, **args.selection_tags},
            opts=pulumi.ResourceOptions(parent=self, protect=guarded, retain_on_delete=True),
        )
        protection = S3Protection(
            f"{name}-protection",
            S3ProtectionArgs(
                bucket=args.bucket,
                account_id=args.account_id,
                region=args.region,
                partition=args.partition,
                noncurrent_version_expiration_days=args.noncurrent_version_expiration_days,
                key_guard=args.key_guard,
                tags=args.tags,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[bucket]),
        )
        assert protection.key_arn is not None  # encryption is on: S3Protection creates the key
        self.bucket = args.bucket
        self.bucket_arn = protection.bucket_arn
        self.key_arn = protection.key_arn
        self.register_outputs({"bucket_arn": self.bucket_arn, "key_arn": self.key_arn})


@dataclass(frozen=True)
class ExportFunctionArgs:
    """What both exports share: where they run, their package, schedule, store and alert topic."""

    function_name: str
    account_id: str
    region: str
    partition: str
    code_path: str
    code_sha256: str
    schedule: str
    timezone: str
    timeout_seconds: int
    memory_mb: int
    log_retention_days: int
    bucket: str
    bucket_key_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)


def _store_statements(args: ExportFunctionArgs, root: str) -> list[Statement]:
    """Write under its own prefix, encrypted with the bucket's key.

    A multipart upload with SSE-KMS needs kms:GenerateDataKey (to start it) and kms:Decrypt (to add parts
    and complete it): https://repost.aws/knowledge-center/s3-large-file-encryption-kms-key. Aborting a
    failed upload is its own action, s3:AbortMultipartUpload
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions).
    """
    return [
        {
            "Sid": "WriteExports",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": f"arn:{args.partition}:s3:::{args.bucket}/{root}/*",
        },
        {
            "Sid": "EncryptExports",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": args.bucket_key_arn,
        },
    ]


def _function_args(
    args: ExportFunctionArgs,
    description: str,
    handler: str,
    environment: dict[str, pulumi.Input[str]],
    statements: list[Statement],
) -> ScheduledFunctionArgs:
    # Every field the two dataclasses share passes through unchanged.
    shared = {f.name: getattr(args, f.name) for f in fields(ExportFunctionArgs) if f.name in _FUNCTION_FIELDS}
    return ScheduledFunctionArgs(
        **shared, description=description, handler=handler, environment=environment, statements=statements
    )


_FUNCTION_FIELDS = frozenset(f.name for f in fields(ScheduledFunctionArgs))


class CatalogExport(pulumi.ComponentResource):
    """The Glue Data Catalog exported on a schedule to `catalog/<account>/<region>/<UTC time>/`."""

    function: ScheduledFunction

    def __init__(
        self,
        name: str,
        args: ExportFunctionArgs,
        include_table_versions: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pgf:backup:CatalogExport", name, None, opts)
        glue = f"arn:{args.partition}:glue:{args.region}:{args.account_id}"
        actions = [a for a in GLUE_READ_ACTIONS if include_table_versions or a != "glue:GetTableVersions"]
        statements: list[Statement] = [
            {
                "Sid": "ReadCatalog",
                "Effect": "Allow",
                "Action": actions,
                "Resource": [
                    f"{glue}:catalog",
                    f"{glue}:database/*",
                    f"{glue}:table/*/*",
                    f"{glue}:userDefinedFunction/*/*",
                ],
            },
            *_store_statements(args, CATALOG_ROOT),
        ]
        environment: dict[str, pulumi.Input[str]] = {
            "EXPORT_BUCKET": args.bucket,
            "EXPORT_KMS_KEY_ARN": args.bucket_key_arn,
            "EXPORT_ROOT": CATALOG_ROOT,
            "INCLUDE_TABLE_VERSIONS": "true" if include_table_versions else "false",
        }
        self.function = ScheduledFunction(
            f"{name}-function",
            _function_args(args, "Glue Data Catalog export", CATALOG_HANDLER, environment, statements),
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"function_arn": self.function.function_arn})


class QuickSightExport(pulumi.ComponentResource):
    """QuickSight's dashboards, analyses, datasets, data sources, themes and folders exported as asset bundles."""

    function: ScheduledFunction

    def __init__(self, name: str, args: ExportFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgf:backup:QuickSightExport", name, None, opts)
        quicksight = f"arn:{args.partition}:quicksight:{args.region}:{args.account_id}"
        statements: list[Statement] = [
            {
                # The List operations name no resource type in the Service Authorization Reference that we
                # could confirm, and AWS's own asset bundle permission example grants them on "*".
                "Sid": "ListAssets",
                "Effect": "Allow",
                "Action": list(QUICKSIGHT_LIST_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "ExportBundles",
                "Effect": "Allow",
                "Action": list(QUICKSIGHT_JOB_ACTIONS),
                "Resource": f"{quicksight}:asset-bundle-export-job/*",
            },
            {
                # Describe what each bundle holds, in this account and region only (AWS's managed
                # AWSQuickSightAssetBundleExportPolicy scopes these by resource type the same way).
                "Sid": "DescribeExportedAssets",
                "Effect": "Allow",
                "Action": list(QUICKSIGHT_DESCRIBE_ACTIONS),
                "Resource": f"{quicksight}:*",
            },
            *_store_statements(args, QUICKSIGHT_ROOT),
        ]
        environment: dict[str, pulumi.Input[str]] = {
            "EXPORT_BUCKET": args.bucket,
            "EXPORT_KMS_KEY_ARN": args.bucket_key_arn,
            "EXPORT_ROOT": QUICKSIGHT_ROOT,
        }
        self.function = ScheduledFunction(
            f"{name}-function",
            _function_args(args, "QuickSight asset bundle export", QUICKSIGHT_HANDLER, environment, statements),
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"function_arn": self.function.function_arn})
