"""Pulumi ComponentResources of pgf-backup, one per module."""

from components.backup_plan import BackupPlan, BackupPlanArgs, CopyArgs, RuleArgs
from components.backup_vault import BackupVault, BackupVaultArgs, VaultLockArgs
from components.org_backup_policy import OrgBackupPolicy, OrgBackupPolicyArgs
from components.service_role import BackupServiceRole, BackupServiceRoleArgs

__all__ = [
    "BackupPlan",
    "BackupPlanArgs",
    "BackupServiceRole",
    "BackupServiceRoleArgs",
    "BackupVault",
    "BackupVaultArgs",
    "CopyArgs",
    "OrgBackupPolicy",
    "OrgBackupPolicyArgs",
    "RuleArgs",
    "VaultLockArgs",
]
