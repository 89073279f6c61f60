"""Names shared by the program, the policy pack and the ops code (no dependencies on purpose)."""

from typing import Final

PROJECT: Final = "pgf-backup"
CONFIG_NAMESPACE: Final = "pgf-backup"
COMPONENT_PREFIX: Final = "pgf:backup"

TIERS: Final = ("lab", "dev", "prod")
STACK_BACKUP: Final = "backup"
# The optional stack of the organization's management account (what only that account may do).
STACK_MANAGEMENT: Final = "management"
ROLE_BACKUP_ACCOUNT: Final = "backup-account"
ROLE_WORKLOAD: Final = "workload"
ROLE_MANAGEMENT: Final = "management"

# Role names, the same in every account (configurable under `pgf-backup:iam`).
DEFAULT_DEPLOY_ROLE: Final = "pgf-backup-deploy"
DEFAULT_BREAK_GLASS_ROLE: Final = "pgf-backup-break-glass"
DEFAULT_SERVICE_ROLE: Final = "pgf-backup-service-role"

# The strategy's tag scheme (seed document, "Organisation et automatisation").
TAG_BACKUP_ENABLED: Final = "backup:enabled"
TAG_BACKUP_TIER: Final = "backup:tier"
TAG_RETENTION_DAYS: Final = "backup:retention_days"
TAG_COPY_TO_REGION: Final = "backup:copy_to_region"
TAG_COPY_TO_ACCOUNT: Final = "backup:copy_to_account"
# The value of backup:copy_to_region / backup:copy_to_account that turns a copy off (plan.tag_copies).
COPY_NONE: Final = "none"
# Routes an S3 bucket to one of its stack's vaults (vaults per criticality, e.g. files before and after processing).
TAG_BACKUP_VAULT: Final = "backup:vault"
TAG_DATA_CLASSIFICATION: Final = "data:classification"
TAG_APPLICATION: Final = "application"
STRATEGY_TAG_KEYS: Final = (
    TAG_BACKUP_ENABLED,
    TAG_BACKUP_TIER,
    TAG_RETENTION_DAYS,
    TAG_COPY_TO_REGION,
    TAG_COPY_TO_ACCOUNT,
    TAG_BACKUP_VAULT,
    TAG_DATA_CLASSIFICATION,
    TAG_APPLICATION,
)
DATA_CLASSIFICATIONS: Final = ("public", "internal", "confidential", "restricted")

# Evidence of restore tests: the metrics the validation function publishes (the dashboards read them) and where it
# writes its evidence in the reports bucket, the role it runs as in every account.
METRIC_NAMESPACE: Final = "PGF/Backup"
METRIC_RESTORE_DURATION: Final = "RestoreTestDurationSeconds"  # dimensions: Tier, ResourceType
METRIC_RECOVERY_POINT_AGE: Final = "RestoreTestRecoveryPointAgeHours"  # dimensions: Tier, ResourceType
RESTORE_EVIDENCE_PREFIX: Final = "restore-tests"  # restore-tests/<account>/<region>/<YYYY>/<MM>/<restore job id>.json
AUDIT_REPORTS_PREFIX: Final = "audit-reports"
RESTORE_VALIDATOR_ROLE: Final = "pgf-backup-restore-validator"
# ProtectedResourceType values a restore testing selection accepts ("Supported resource types accepted include",
# https://docs.aws.amazon.com/aws-backup/latest/devguide/API_RestoreTestingSelectionForCreate.html).
RESTORE_TESTING_TYPES: Final = ("Aurora", "DocumentDB", "DynamoDB", "EBS", "EC2", "EFS", "FSx", "Neptune", "RDS", "S3")
# The stack output listing what a stack leaves out and why (e.g. a feature AWS does not offer in a region):
# `pgf-backup plan` prints each as a note.
NOTES_OUTPUT: Final = "notes"
