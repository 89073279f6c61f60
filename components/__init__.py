"""Pulumi ComponentResources of pgf-backup, one per module."""

from components.backup_vault import BackupVault, BackupVaultArgs, VaultLockArgs

__all__ = ["BackupVault", "BackupVaultArgs", "VaultLockArgs"]
