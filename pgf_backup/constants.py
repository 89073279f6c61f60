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
TAG_DATA_CLASSIFICATION: Final = "data:classification"
TAG_APPLICATION: Final = "application"
STRATEGY_TAG_KEYS: Final = (
    TAG_BACKUP_ENABLED,
    TAG_BACKUP_TIER,
    TAG_RETENTION_DAYS,
    TAG_COPY_TO_REGION,
    TAG_COPY_TO_ACCOUNT,
    TAG_DATA_CLASSIFICATION,
    TAG_APPLICATION,
)
DATA_CLASSIFICATIONS: Final = ("public", "internal", "confidential", "restricted")
