"""A stack's configuration: the one place it is read and validated.

Split by layer: `types` (AWS's value types), `sections` (the models of each part), `stack` (a whole
stack, one model per role, and the facts derived from it), `loading` (from Pulumi's flat map, and error messages).
"""

from pgf_backup.config.loading import ConfigError, format_errors, load, load_from_pulumi, namespace_values
from pgf_backup.config.sections import CONTINUOUS_RULE, CopyTarget, Iam, Plan, RegionResourceTypes, ScheduledExport
from pgf_backup.config.stack import (
    MANAGEMENT_KEYS,
    ROLE_MODELS,
    BackupAccountStack,
    CopyChoice,
    ManagementStack,
    PlanVariant,
    RouteKey,
    StackConfig,
    VaultStack,
    WorkloadStack,
)
from pgf_backup.config.types import Tier, backup_regions, partition
from pgf_backup.limits import VaultEvent

__all__ = [
    "CONTINUOUS_RULE",
    "MANAGEMENT_KEYS",
    "ROLE_MODELS",
    "BackupAccountStack",
    "ConfigError",
    "CopyChoice",
    "CopyTarget",
    "Iam",
    "ManagementStack",
    "Plan",
    "PlanVariant",
    "RegionResourceTypes",
    "RouteKey",
    "ScheduledExport",
    "StackConfig",
    "Tier",
    "VaultEvent",
    "VaultStack",
    "WorkloadStack",
    "backup_regions",
    "format_errors",
    "load",
    "load_from_pulumi",
    "namespace_values",
    "partition",
]
