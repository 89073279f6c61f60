"""Vault rules: customer-managed key, Vault Lock, access policy, protection of stateful resources."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pgf_backup.limits import VAULT_LOCK_MIN_CHANGEABLE_DAYS
from pgf_backup_policy.documents import DocumentError, deny_gaps
from pgf_backup_policy.model import Context, Finding, Resource, as_int, is_unknown

VAULT: Final = "aws:backup/vault:Vault"
AIR_GAPPED_VAULT: Final = "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault"
VAULT_LOCK: Final = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
VAULT_POLICY: Final = "aws:backup/vaultPolicy:VaultPolicy"
KMS_KEY: Final = "aws:kms/key:Key"
KMS_REPLICA_KEY: Final = "aws:kms/replicaKey:ReplicaKey"

STATEFUL_TYPES: Final = frozenset({VAULT, AIR_GAPPED_VAULT, KMS_KEY, KMS_REPLICA_KEY})
RECOVERY_POINT_ACTIONS: Final = ("backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle")
LOCK_AND_POLICY_ACTIONS: Final = (
    "backup:PutBackupVaultLockConfiguration",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultAccessPolicy",
)
MIN_CHANGEABLE_DAYS: Final = VAULT_LOCK_MIN_CHANGEABLE_DAYS  # AWS refuses a shorter compliance grace time

_KMS_ARN = re.compile(r"^arn:aws[\w-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")


def is_aws_managed_key(key: str) -> bool:
    """True for an AWS-managed key reference (`alias/aws/<service>`, by name or ARN)."""
    return "alias/aws/" in key


def _vault_label(props: Mapping[str, Any], fallback: str = "this vault") -> str:
    name = props.get("name") or props.get("backupVaultName")
    return f"vault {name}" if isinstance(name, str) else fallback


# ---------------------------------------------------------------------------------------------
# Resource rules


def vault_customer_managed_key_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """A standard vault names a customer-managed KMS key (air-gapped vaults are AWS-owned by design)."""
    if resource_type != VAULT:
        return []
    key = props.get("kmsKeyArn")
    label = _vault_label(props)
    if is_unknown(key):
        return []  # the key is created in this update; its ARN is only known then
    if not key:
        return [
            f"{label} has no kmsKeyArn, so AWS Backup encrypts it with the AWS-managed key aws/backup: "
            "its policy cannot be restricted and copies of it cannot be shared across accounts"
        ]
    if not isinstance(key, str) or not _KMS_ARN.match(key):
        return [f"{label}: kmsKeyArn {key!r} is not a KMS key or alias ARN"]
    if is_aws_managed_key(key):
        return [f"{label} uses the AWS-managed key {key}; give it a customer-managed key"]
    return []


def prod_stateful_resources_protected_violations(
    resource_type: str, props: Mapping[str, Any], ctx: Context
) -> list[str]:
    """In prod, vaults and KMS keys are registered with `protect`, so no update can delete them."""
    if resource_type not in STATEFUL_TYPES or ctx.tier_of(props) != "prod" or ctx.protect:
        return []
    kind = "KMS key" if resource_type in (KMS_KEY, KMS_REPLICA_KEY) else "backup vault"
    return [
        f"this prod {kind} is not protected: register it with ResourceOptions(protect=True) "
        "so that no `pulumi up` or `destroy` can delete it"
    ]


# ---------------------------------------------------------------------------------------------
# Stack rules


def _by_vault(resources: Sequence[Resource], resource_type: str) -> dict[tuple[Any, ...], Resource]:
    """Companions of a vault (lock, access policy) by (account, region, vault name)."""
    return {(*r.where, r.props.get("backupVaultName")): r for r in resources if r.type == resource_type}


def _lock_findings(lock: Resource, tier: str | None, label: str) -> list[Finding]:
    props = lock.props
    changeable = props.get("changeableForDays")
    minimum = props.get("minRetentionDays")
    if is_unknown(changeable) or is_unknown(minimum):
        return []
    settings = lock.ctx.settings
    findings: list[Finding] = []
    if tier == "prod":
        days = as_int(changeable)
        if days is None:
            findings.append(
                Finding(
                    lock.urn,
                    f"{label} (prod) is locked in governance mode, which privileged users can remove: "
                    f"set changeableForDays (>= {MIN_CHANGEABLE_DAYS}) for compliance mode",
                )
            )
        elif days < MIN_CHANGEABLE_DAYS:
            findings.append(
                Finding(lock.urn, f"{label}: changeableForDays {days} is below AWS's minimum of {MIN_CHANGEABLE_DAYS}")
            )
        low = as_int(minimum)
        if low is None or low < settings.prod_min_days:
            findings.append(
                Finding(
                    lock.urn,
                    f"{label}: the lock's minRetentionDays is {low if low is not None else 'not set'}; "
                    f"prod needs at least {settings.prod_min_days} days",
                )
            )
    elif changeable is not None and not settings.allow_compliance_lock_outside_prod:
        findings.append(
            Finding(
                lock.urn,
                f"{label} ({tier or 'no tier'}) has a compliance-mode lock (changeableForDays set): once its grace "
                "time ends it can never be removed, nor the vault deleted. Use governance mode outside prod, "
                "or set allowComplianceLockOutsideProd in the pack's config",
            )
        )
    return findings


def vault_lock_compliance_in_prod_violations(resources: Sequence[Resource]) -> list[Finding]:
    """Prod vaults carry a compliance-mode lock with the prod minimum; other tiers no compliance lock."""
    locks = _by_vault(resources, VAULT_LOCK)
    findings: list[Finding] = []
    paired: set[str] = set()
    for vault in resources:
        if vault.type == AIR_GAPPED_VAULT and vault.ctx.tier_of(vault.props) == "prod":
            # Air-gapped vaults are always in compliance mode; only their minimum can be wrong.
            low = as_int(vault.props.get("minRetentionDays"))
            if low is not None and low < vault.ctx.settings.prod_min_days:
                findings.append(
                    Finding(
                        vault.urn,
                        f"{_vault_label(vault.props)}: minRetentionDays {low} is below the prod minimum "
                        f"of {vault.ctx.settings.prod_min_days} days",
                    )
                )
            continue
        if vault.type != VAULT:
            continue
        tier = vault.ctx.tier_of(vault.props)
        label = _vault_label(vault.props)
        lock = locks.get((*vault.where, vault.props.get("name")))
        if lock is None:
            if tier == "prod":
                findings.append(
                    Finding(
                        vault.urn,
                        f"{label} (prod) has no Vault Lock: add an aws.backup.VaultLockConfiguration in compliance "
                        f"mode (changeableForDays >= {MIN_CHANGEABLE_DAYS}) with minRetentionDays >= "
                        f"{vault.ctx.settings.prod_min_days}",
                    )
                )
            continue
        paired.add(lock.urn)
        findings.extend(_lock_findings(lock, tier, label))
    for lock in locks.values():
        if lock.urn not in paired:  # a lock on a vault managed elsewhere: judged by the stack's tier
            findings.extend(_lock_findings(lock, lock.ctx.stack_tier, _vault_label(lock.props)))
    return findings


def _policy_findings(policy: Resource, label: str) -> list[Finding]:
    document = policy.props.get("policy")
    if is_unknown(document):
        return []
    settings = policy.ctx.settings
    account = policy.ctx.account
    try:
        gaps = deny_gaps(document, RECOVERY_POINT_ACTIONS, [settings.break_glass_role], account, "backup")
        gaps += deny_gaps(
            document, LOCK_AND_POLICY_ACTIONS, [settings.deploy_role, settings.break_glass_role], account, "backup"
        )
    except DocumentError as error:
        return [Finding(policy.urn, f"{label}: {error}")]
    return [Finding(policy.urn, f"{label}'s access policy: {gap}") for gap in gaps]


def vault_denies_recovery_point_deletion_violations(resources: Sequence[Resource]) -> list[Finding]:
    """Each vault's access policy denies deleting recovery points (and changing lock or policy) to all but a few."""
    policies = _by_vault(resources, VAULT_POLICY)
    findings: list[Finding] = []
    for vault in resources:
        if vault.type != VAULT:
            continue
        if (*vault.where, vault.props.get("name")) not in policies:
            settings = vault.ctx.settings
            findings.append(
                Finding(
                    vault.urn,
                    f"{_vault_label(vault.props)} has no access policy (aws.backup.VaultPolicy) denying "
                    f"{' and '.join(RECOVERY_POINT_ACTIONS)} to all but {settings.break_glass_role}",
                )
            )
    for policy in policies.values():
        findings.extend(_policy_findings(policy, _vault_label(policy.props)))
    return findings
