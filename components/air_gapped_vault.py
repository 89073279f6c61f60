"""AirGappedVault: a logically air-gapped vault and the access policy that lets copies in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.policies import vault_access_policy


@dataclass(frozen=True)
class AirGappedVaultArgs:
    """The vault's name, tier and retention range, and who may copy into it."""

    vault_name: str
    tier: str
    min_retention_days: int
    max_retention_days: int
    partition: str
    deploy_role_arn: str
    break_glass_role_arn: str
    copy_in_org_id: str | None = None
    copy_in_account_ids: Sequence[str] = ()
    # Production hardening: protected and retained.
    hardened: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse a retention range AWS would refuse."""
        if not 1 <= self.min_retention_days <= self.max_retention_days:
            raise ValueError(
                f"air-gapped vault {self.vault_name}: min_retention_days ({self.min_retention_days}) must be "
                f"between 1 and max_retention_days ({self.max_retention_days})"
            )


class AirGappedVault(pulumi.ComponentResource):
    """AWS's answer to ransomware: recovery points no account can delete or re-key (locked by AWS)."""

    vault_name: pulumi.Output[str]
    vault_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AirGappedVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:AirGappedVault", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # These resources were first created at the stack's top level, named `<name>` and `<name>-policy`:
        # the aliases keep them (a vault is never replaced by a refactoring).
        vault = aws.backup.LogicallyAirGappedVault(
            f"{name}-vault",
            name=args.vault_name,
            min_retention_days=args.min_retention_days,
            max_retention_days=args.max_retention_days,
            tags=args.tags,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    protect=args.hardened,
                    retain_on_delete=args.hardened,
                    aliases=[pulumi.Alias(name=name, parent=pulumi.ROOT_STACK_RESOURCE)],
                ),
            ),
        )
        # Copies in need the destination vault's permission, as for the central vaults.
        aws.backup.VaultPolicy(
            f"{name}-policy",
            backup_vault_name=vault.name,
            policy=vault_access_policy(
                args.partition,
                args.deploy_role_arn,
                args.break_glass_role_arn,
                copy_in_org_id=args.copy_in_org_id,
                copy_in_account_ids=args.copy_in_account_ids,
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])
            ),
        )
        self.vault_name = vault.name
        self.vault_arn = vault.arn
        self.register_outputs({"vault_name": vault.name, "vault_arn": vault.arn})
