"""Pulumi ComponentResources of pgf-backup, one per module."""

from components.air_gapped_vault import AirGappedVault, AirGappedVaultArgs
from components.backup_alarms import BackupAlarms, BackupAlarmsArgs, FreshnessArgs
from components.backup_plan import BackupPlan, BackupPlanArgs, CopyArgs, RuleArgs
from components.backup_settings import BackupSettings, BackupSettingsArgs
from components.backup_vault import BackupVault, BackupVaultArgs, VaultLockArgs
from components.exports import CatalogExport, ExportFunctionArgs, ExportStore, ExportStoreArgs, QuickSightExport
from components.job_alerts import JobAlerts, JobAlertsArgs, failure_event_patterns
from components.org_backup_policy import OrgBackupPolicy, OrgBackupPolicyArgs
from components.policies import KeyGuard, vault_access_policy
from components.rds_protection import DatabaseArgs, RdsProtection, RdsProtectionArgs
from components.s3_protection import AppAccessArgs, S3Protection, S3ProtectionArgs
from components.scheduled_function import ScheduledFunction, ScheduledFunctionArgs
from components.service_role import BackupServiceRole, BackupServiceRoleArgs

__all__ = [
    "AirGappedVault",
    "AirGappedVaultArgs",
    "AppAccessArgs",
    "BackupAlarms",
    "BackupAlarmsArgs",
    "BackupPlan",
    "BackupPlanArgs",
    "BackupServiceRole",
    "BackupServiceRoleArgs",
    "BackupSettings",
    "BackupSettingsArgs",
    "BackupVault",
    "BackupVaultArgs",
    "CatalogExport",
    "CopyArgs",
    "DatabaseArgs",
    "ExportFunctionArgs",
    "ExportStore",
    "ExportStoreArgs",
    "FreshnessArgs",
    "JobAlerts",
    "JobAlertsArgs",
    "KeyGuard",
    "OrgBackupPolicy",
    "OrgBackupPolicyArgs",
    "QuickSightExport",
    "RdsProtection",
    "RdsProtectionArgs",
    "RuleArgs",
    "S3Protection",
    "S3ProtectionArgs",
    "ScheduledFunction",
    "ScheduledFunctionArgs",
    "VaultLockArgs",
    "failure_event_patterns",
    "vault_access_policy",
]
