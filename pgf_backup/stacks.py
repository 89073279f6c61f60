"""Config -> components, for each role (backup account / workload)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import BackupVault, BackupVaultArgs, VaultLockArgs
from pgf_backup.config import ConfigError, StackConfig, load_from_pulumi, partition
from pgf_backup.constants import (
    PROJECT,
    ROLE_BACKUP_ACCOUNT,
    TAG_APPLICATION,
    TAG_BACKUP_TIER,
    TAG_DATA_CLASSIFICATION,
)


@dataclass
class Providers:
    """One explicit AWS provider per (account, region), assuming the deploy role there."""

    cfg: StackConfig
    stack: str
    _cache: dict[tuple[str, str], aws.Provider] = field(default_factory=dict)

    def default_tags(self) -> dict[str, str]:
        """Tags every resource of this stack carries."""
        return {
            **self.cfg.tags.extra,
            TAG_APPLICATION: self.cfg.tags.application,
            TAG_DATA_CLASSIFICATION: self.cfg.tags.data_classification,
            "managed-by": PROJECT,
            "pulumi:stack": self.stack,
        }

    def get(self, account_id: str, region: str) -> aws.Provider:
        """The provider for an account and region (created once)."""
        key = (account_id, region)
        if key not in self._cache:
            self._cache[key] = aws.Provider(
                f"aws-{account_id}-{region}",
                region=region,
                allowed_account_ids=[account_id],
                assume_roles=[
                    aws.ProviderAssumeRoleArgs(
                        role_arn=self.cfg.role_arn(account_id, self.cfg.iam.deploy_role, region),
                        session_name=f"{PROJECT}-{self.stack}",
                    )
                ],
                default_tags=aws.ProviderDefaultTagsArgs(tags=self.default_tags()),
            )
        return self._cache[key]


def build_vaults(cfg: StackConfig, providers: Providers) -> dict[str, dict[str, BackupVault]]:
    """The vaults of this stack: one per configured vault and per region."""
    account = cfg.account_id
    is_backup_account = cfg.role == ROLE_BACKUP_ACCOUNT
    workload_ids = sorted({a for name, a in cfg.accounts.items() if name != "backup"})
    built: dict[str, dict[str, BackupVault]] = {}
    for key, vault in cfg.vaults.items():
        lock = vault.lock
        common: dict[str, Any] = {
            "vault_name": cfg.vault_name(key),
            "tier": vault.tier,
            "account_id": account,
            "deploy_role_arn": cfg.role_arn(account, cfg.iam.deploy_role),
            "break_glass_role_arn": cfg.role_arn(account, cfg.iam.break_glass_role),
            "notify_events": vault.notify_events,
            "lock": VaultLockArgs(**lock.model_dump()) if lock else None,
            "hardened": vault.tier == "prod",
            "copy_in_org_id": cfg.organization.id if is_backup_account else None,
            "copy_in_account_ids": workload_ids if is_backup_account else (),
            "tags": {TAG_BACKUP_TIER: vault.tier},
        }
        built[key] = {}
        primary_key_arn: pulumi.Output[str] | None = None
        for region in cfg.regions.all:
            is_primary = region == cfg.regions.primary
            args = BackupVaultArgs(
                **common,
                region=region,
                partition=partition(region),
                multi_region_key=is_primary and cfg.regions.copy_region is not None,
                replica_of_key_arn=None if is_primary else primary_key_arn,
            )
            component = BackupVault(
                f"{key}-{region}", args, pulumi.ResourceOptions(providers={"aws": providers.get(account, region)})
            )
            if is_primary:
                primary_key_arn = component.key_arn
            built[key][region] = component
    return built


def build(cfg: StackConfig, stack: str) -> dict[str, Any]:
    """Create this stack's resources; returns the stack outputs."""
    providers = Providers(cfg, stack)
    vaults = build_vaults(cfg, providers)
    return {
        "role": cfg.role,
        "tier": cfg.tier,
        "account_id": cfg.account_id,
        "regions": list(cfg.regions.all),
        "vaults": {
            key: {
                region: {
                    "tier": cfg.vaults[key].tier,
                    "name": component.vault_name,
                    "arn": component.vault_arn,
                    "kms_key_arn": component.key_arn,
                    "topic_arn": component.topic_arn,
                }
                for region, component in by_region.items()
            }
            for key, by_region in vaults.items()
        },
    }


def run() -> None:
    """Entry of `__main__.py`: load config, build, export; a config error exits 2, no traceback."""
    try:
        cfg = load_from_pulumi()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for name, value in build(cfg, pulumi.get_stack()).items():
        pulumi.export(name, value)
