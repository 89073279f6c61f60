"""The `backup` stack's outputs as a typed model: what the backup stack exports, what workload stacks and
the rollout driver read, and what makes them unusable.

One model, `BackupStackOutputs`, names every field; `problems` serves the program (inside its
StackReference) and the rollout driver (before a workload stack runs), so a missing vault or a copy
that its vault's lock would refuse is found before anything is deployed, with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from pgf_backup.availability import linked_regions
from pgf_backup.config import CopyTarget, StackConfig, WorkloadStack
from pgf_backup.limits import lock_admits


class _Output(BaseModel):
    """Outputs cross a StackReference as JSON: read leniently (unknown keys kept out), numbers as ints."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class LockRange(_Output):
    """A vault's lock: the retention range, in days, its recovery points may have."""

    min: int
    max: int


class CentralVaultOutput(_Output):
    """A central vault of a tier in one region (`central_vaults.<tier>.<region>`)."""

    arn: str | None = None
    name: str | None = None
    kms_key_arn: str | None = None
    lock: LockRange | None = None


class AirGappedVaultOutput(_Output):
    """The logically air-gapped vault of a tier (`air_gapped_vaults.<tier>`)."""

    arn: str | None = None
    lock: LockRange | None = None


class BackupPolicyOutput(_Output):
    """A tier's BACKUP_POLICY (organization mode: `backup_policies.<tier>`)."""

    policy_id: str | None = None
    vault_name: str | None = None
    content: str | None = None


class DashboardsOutput(_Output):
    """The backup account's dashboards (`dashboards`): the workload accounts link to its sinks, by region."""

    sinks: dict[str, str] = {}


class AuditOutput(_Output):
    """The backup account's reports bucket (`audit`): workload restore tests write their evidence there."""

    reports_bucket: str | None = None
    key_arn: str | None = None


class VaultOutput(_Output):
    """One of the backup account's vaults in one region (`vaults.<key>.<region>`)."""

    tier: str | None = None
    name: str | None = None
    arn: str | None = None


class BackupStackOutputs(_Output):
    """What the backup stack exports for the others (its other outputs are for operators)."""

    account_id: str | None = None
    service_role_arn: str | None = None
    central_vaults: dict[str, dict[str, CentralVaultOutput]] = {}
    air_gapped_vaults: dict[str, AirGappedVaultOutput] = {}
    backup_policies: dict[str, BackupPolicyOutput] = {}
    dashboards: DashboardsOutput | None = None
    audit: AuditOutput | None = None
    # Every vault by key and region: a workload stack's routed vault copies into the vault of the same key.
    vaults: dict[str, dict[str, VaultOutput]] = {}

    def sink_arn(self, region: str) -> str | None:
        """The ARN of the backup account's monitoring sink in `region` (`dashboards.sinks.<region>`)."""
        return self.dashboards.sinks.get(region) if self.dashboards else None

    def destination(self, target: CopyTarget, tier: str, region: str) -> tuple[str, str | None, LockRange | None]:
        """(output path, ARN, lock) of the vault a copy target of `tier` lands in from `region`."""
        if target == "air_gapped":
            gap = self.air_gapped_vaults.get(tier)
            return f"air_gapped_vaults.{tier}", gap.arn if gap else None, gap.lock if gap else None
        central = self.central_vaults.get(tier, {}).get(region)
        return f"central_vaults.{tier}.{region}", central.arn if central else None, central.lock if central else None


# The copy targets whose vaults the backup stack exports (the copy region's vault is the stack's own).
EXPORTED_TARGETS: tuple[CopyTarget, ...] = ("backup_account", "air_gapped")


def read(outputs: Mapping[str, Any]) -> BackupStackOutputs:
    """The typed outputs (ValueError naming the field when one has the wrong shape)."""
    try:
        return BackupStackOutputs.model_validate(dict(outputs))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"output '{where}' is not what the backup stack exports ({first['msg']})") from None


def needed_targets(cfg: StackConfig) -> list[CopyTarget]:
    """The copy targets this workload stack reads from the backup stack (account mode)."""
    if not isinstance(cfg, WorkloadStack) or cfg.plan is None or cfg.scheduling != "account":
        return []
    return [t for t in cfg.copy_targets() if t in EXPORTED_TARGETS]


def destination_arn(cfg: WorkloadStack, target: CopyTarget, outputs: Mapping[str, Any]) -> str:
    """The ARN of a copy target's vault for this stack (once `problems` found none)."""
    _, arn, _ = read(outputs).destination(target, cfg.tier, cfg.regions.primary)
    return str(arn)


def routed_vault_arn(cfg: WorkloadStack, key: str, outputs: Mapping[str, Any]) -> str:
    """The backup account's vault `key` in the primary region: where a routed vault's copies land."""
    vault = read(outputs).vaults.get(key, {}).get(cfg.regions.primary)
    if vault is None or not vault.arn:
        raise ValueError(f"output 'vaults.{key}.{cfg.regions.primary}.arn' is missing")
    return vault.arn


def problems(cfg: StackConfig, outputs: Mapping[str, Any]) -> list[str]:
    """Everything that keeps this workload stack from using the backup stack's outputs (empty: none)."""
    if not isinstance(cfg, WorkloadStack):
        return []
    try:
        typed = read(outputs)
    except ValueError as error:
        return [str(error)]
    found: list[str] = []
    if typed.account_id is None:
        found.append("output 'account_id' is missing")
    elif typed.account_id != cfg.backup_account_id:
        found.append(
            f"output 'account_id' is {typed.account_id}, but this stack's accounts.backup is {cfg.backup_account_id}"
        )
    if cfg.scheduling == "organization":
        found.extend(_policy_problems(cfg, typed))
    else:
        found.extend(_copy_problems(cfg, typed))
        found.extend(_routed_problems(cfg, typed))
    found.extend(_sink_problems(cfg, typed))
    found.extend(_reports_problems(cfg, typed))
    return found


def _policy_problems(cfg: WorkloadStack, typed: BackupStackOutputs) -> list[str]:
    """Organization mode: the tier's BACKUP_POLICY writes to the vault this stack names."""
    policy = typed.backup_policies.get(cfg.tier)
    expected = policy.vault_name if policy else None
    key = cfg.vault_key
    if not expected:
        return [f"output 'backup_policies.{cfg.tier}.vault_name' is missing"]
    if expected != cfg.vault_name(key):
        return [
            f"vaults.{key}.name: the {cfg.tier} BACKUP_POLICY writes to vault {expected!r} but this stack "
            f"names it {cfg.vault_name(key)!r}; use the same name"
        ]
    return []


def _copy_problems(cfg: WorkloadStack, typed: BackupStackOutputs) -> list[str]:
    """Account mode: each vault the plan copies into exists, and its lock admits the copies' retention."""
    assert cfg.plan is not None  # account mode: required by the config model
    found: list[str] = []
    rules = cfg.plan.all_rules()
    for target in needed_targets(cfg):
        path, arn, lock = typed.destination(target, cfg.tier, cfg.regions.primary)
        if not arn:
            found.append(f"output '{path}.arn' is missing")
            continue
        if lock is None:
            continue
        for name, rule in rules.items():
            days = rule.lifecycle(target).delete_after_days
            if not lock_admits(lock.min, lock.max, days):
                found.append(
                    f"{rule.key('plan', name)}: a copy kept {days} days lands in {arn}, whose lock allows "
                    f"{lock.min}-{lock.max} days; AWS Backup would fail the copy"
                )
    return found


def _routed_problems(cfg: WorkloadStack, typed: BackupStackOutputs) -> list[str]:
    """Account mode: each routed vault (vaults per criticality) has its twin of the same key and tier in the backup
    account when the plan copies there."""
    if cfg.plan is None or "backup_account" not in cfg.copy_targets():
        return []
    found: list[str] = []
    for key in cfg.routed_vault_keys:
        vault = typed.vaults.get(key, {}).get(cfg.regions.primary)
        if vault is None or not vault.arn:
            found.append(
                f"output 'vaults.{key}.{cfg.regions.primary}.arn' is missing (vaults.{key} of this stack copies to "
                f"the backup account's vault of the same key: declare vaults.{key} with tier {cfg.tier} there)"
            )
        elif vault.tier not in (None, cfg.tier):
            found.append(f"vaults.{key}: the backup account's vault {key!r} is of tier {vault.tier}, not {cfg.tier}")
    return found


def _sink_problems(cfg: WorkloadStack, typed: BackupStackOutputs) -> list[str]:
    """Cross-account dashboards: the backup account's sink in each region this account links from."""
    # Imported here: the builders pull in pulumi_aws, which the rollout driver does not otherwise need.

    return [
        f"output 'dashboards.sinks.{region}' is missing (the backup stack exports its sinks with dashboards.enabled "
        "and dashboards.cross_account on; or set dashboards.cross_account: false in this stack)"
        for region in linked_regions(cfg)
        if not typed.sink_arn(region)
    ]


def _reports_problems(cfg: WorkloadStack, typed: BackupStackOutputs) -> list[str]:
    """Restore testing in this account: its evidence goes to the backup account's reports bucket, with its key."""
    if cfg.restore_testing is None or not cfg.restore_testing.enabled:
        return []
    audit = typed.audit or AuditOutput()
    return [
        f"output 'audit.{name}' is missing (this stack's restore_testing writes its evidence to the backup account's "
        "reports bucket: turn on the backup stack's audit, or turn off restore_testing in this stack)"
        for name, value in (("reports_bucket", audit.reports_bucket), ("key_arn", audit.key_arn))
        if not value
    ]
