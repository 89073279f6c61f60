"""AWS's documented limits and the strategy's defaults: one home, read by the config, the components
and the policy pack alike (no dependencies, so the pack imports it standalone)."""

import re
from typing import Final, Literal, get_args

# AWS Backup quotas: https://docs.aws.amazon.com/aws-backup/latest/devguide/aws-backup-limits.html
MAX_RULES_PER_PLAN: Final = 10
MAX_COPY_ACTIONS_PER_RULE: Final = 5
# Continuous backups (point-in-time restore) are kept at most 35 days.
CONTINUOUS_MAX_RETENTION_DAYS: Final = 35
# Cold storage keeps a recovery point at least 90 days: delete-after >= cold-storage-after + 90.
COLD_STORAGE_MIN_DAYS: Final = 90
# Vault Lock in compliance mode: the grace time ("ChangeableForDays") is at least 3 days.
VAULT_LOCK_MIN_CHANGEABLE_DAYS: Final = 3
# AWS Organizations' size limit for a policy document (characters).
MAX_BACKUP_POLICY_CHARACTERS: Final = 10_000
# Explicit ARNs per selection this project writes (more are split into several selections).
MAX_ARNS_PER_SELECTION: Final = 100

# Logically air-gapped vaults hold no RDS DB instances (Aurora clusters are supported): AWS Backup's
# "Feature availability by resource",
# https://docs.aws.amazon.com/aws-backup/latest/devguide/backup-feature-availability.html#features-by-resource.
# An instance's ARN (`db:`), whatever its partition, region and account; and the same as a resource type
# pattern of a selection, which "only selects RDS DB instances"
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources-json.html).
RDS_DB_INSTANCE_ARN: Final = re.compile(r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:db:")
RDS_DB_INSTANCE_TYPE: Final = "arn:aws:rds:*:*:db:*"

# CloudWatch Logs retention values PutRetentionPolicy accepts (botocore's logs model, shape `Days`).
LOG_RETENTION_DAYS: Final = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# Export functions run at most 15 minutes, within Lambda's maximum (botocore's lambda model, CreateFunction
# Timeout: "the maximum allowed value is 1,800 seconds"). Memory: "between 128 MB and 10,240 MB in 1-MB
# increments" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
LAMBDA_MAX_TIMEOUT_SECONDS: Final = 900
LAMBDA_MEMORY_MB: Final = (128, 10_240)

# CloudWatch alarms (botocore's cloudwatch model, PutMetricAlarm Period): "An alarm's total current evaluation
# period can be no longer than seven days, so Period multiplied by EvaluationPeriods can't be more than 604,800
# seconds. For alarms with a period of less than one hour (3,600 seconds), the total evaluation period can't be
# longer than one day (86,400 seconds)." Valid periods: "10, 20, 30, and any multiple of 60".
ALARM_MAX_EVALUATION_SECONDS: Final = 604_800
ALARM_SHORT_PERIOD_SECONDS: Final = 3_600
ALARM_SHORT_PERIOD_MAX_EVALUATION_SECONDS: Final = 86_400
# The strategy's recovery point objective per tier, in hours (each tier backs up daily).
DEFAULT_RPO_HOURS: Final = {"lab": 24, "dev": 24, "prod": 24}
# Recovery time objectives per tier, in hours, until `operations.rto_hours` says otherwise: the strategy names no
# figure, so these are the project's defaults (prod restored within a working morning, lab within a long weekend).
DEFAULT_RTO_HOURS: Final = {"lab": 72.0, "dev": 24.0, "prod": 4.0}


def alarm_window_problem(period_seconds: int, evaluation_periods: int) -> str | None:
    """Why CloudWatch would refuse an alarm evaluating `evaluation_periods` periods of `period_seconds`, or None."""
    if period_seconds < 60 or period_seconds % 60:
        return f"a period of {period_seconds} seconds is not a multiple of 60 (standard-resolution metrics)"
    total = period_seconds * evaluation_periods
    limit = (
        ALARM_SHORT_PERIOD_MAX_EVALUATION_SECONDS
        if period_seconds < ALARM_SHORT_PERIOD_SECONDS
        else ALARM_MAX_EVALUATION_SECONDS
    )
    if total > limit:
        return (
            f"{evaluation_periods} periods of {period_seconds} seconds evaluate {total} seconds; CloudWatch allows "
            f"{limit} ({'1 day for periods under an hour' if limit < ALARM_MAX_EVALUATION_SECONDS else '7 days'})"
        )
    return None


# The strategy's retention per tier, in days (lab/dev short, prod at least 35).
PROD_MIN_RETENTION_DAYS: Final = 35
DEFAULT_TIER_BOUNDS: Final = {"lab": (7, 14), "dev": (7, 14), "prod": (PROD_MIN_RETENTION_DAYS, 3650)}

# Vault notification events AWS Backup sends; the deprecated ones are accepted by the API and never
# sent ("Deprecated events do not return statuses or notifications":
# https://docs.aws.amazon.com/aws-backup/latest/devguide/API_PutBackupVaultNotifications.html).
# A Literal (the config's type, whose pydantic messages list the values), and the same as a tuple.
VaultEvent = Literal[
    "BACKUP_JOB_STARTED",
    "BACKUP_JOB_COMPLETED",
    "COPY_JOB_STARTED",
    "COPY_JOB_SUCCESSFUL",
    "COPY_JOB_FAILED",
    "RESTORE_JOB_STARTED",
    "RESTORE_JOB_COMPLETED",
    "RECOVERY_POINT_MODIFIED",
    "S3_BACKUP_OBJECT_FAILED",
    "S3_RESTORE_OBJECT_FAILED",
]
SUPPORTED_VAULT_EVENTS: Final[tuple[str, ...]] = get_args(VaultEvent)
DEPRECATED_VAULT_EVENTS: Final = (
    "BACKUP_JOB_SUCCESSFUL",
    "BACKUP_JOB_FAILED",
    "BACKUP_JOB_EXPIRED",
    "RESTORE_JOB_SUCCESSFUL",
    "RESTORE_JOB_FAILED",
    "BACKUP_PLAN_CREATED",
    "BACKUP_PLAN_MODIFIED",
)


def lock_admits(min_days: int, max_days: int, delete_after_days: int | None) -> bool:
    """Whether a recovery point (or copy) kept `delete_after_days` may land in a vault locked to min-max days.

    AWS Backup fails a backup or copy job whose retention lies outside the destination vault's lock
    (https://docs.aws.amazon.com/aws-backup/latest/devguide/vault-lock.html); one kept forever (no
    lifecycle) is outside any maximum. The config, the backup outputs check and the path checks ask here.
    """
    return delete_after_days is not None and min_days <= delete_after_days <= max_days
