"""What a workload stack reads from the `backup` stack's outputs, and what makes them unusable.

One function serves the program (inside its StackReference) and the rollout driver (before a
workload stack runs), so a missing vault or a copy that its vault's lock would refuse is found
before anything is deployed, with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pgf_backup.config import CopyTarget, StackConfig
from pgf_backup.constants import ROLE_WORKLOAD
from pgf_backup.limits import lock_admits

# Where each copy target's vault is in the backup stack's outputs ({tier}, {region} filled in).
TARGET_PATHS: Mapping[CopyTarget, tuple[str, ...]] = {
    "backup_account": ("central_vaults", "{tier}", "{region}"),
    "air_gapped": ("air_gapped_vaults", "{tier}"),
}


def _lookup(outputs: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = outputs
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def target_path(cfg: StackConfig, target: CopyTarget) -> tuple[str, ...]:
    """The output path of a copy target's vault for this stack."""
    return tuple(p.format(tier=cfg.tier, region=cfg.regions.primary) for p in TARGET_PATHS[target])


def needed_targets(cfg: StackConfig) -> list[CopyTarget]:
    """The copy targets this workload stack reads from the backup stack (account mode)."""
    if cfg.role != ROLE_WORKLOAD or cfg.plan is None or cfg.scheduling != "account":
        return []
    return [t for t in cfg.copy_targets() if t in TARGET_PATHS]


def problems(cfg: StackConfig, outputs: Mapping[str, Any]) -> list[str]:
    """Everything that keeps this workload stack from using the backup stack's outputs (empty: none)."""
    if cfg.role != ROLE_WORKLOAD or cfg.tier is None:
        return []
    found: list[str] = []
    account = outputs.get("account_id")
    if account is None:
        found.append("output 'account_id' is missing")
    elif account != cfg.backup_account_id:
        found.append(f"output 'account_id' is {account}, but this stack's accounts.backup is {cfg.backup_account_id}")
    if cfg.scheduling == "organization":
        path: tuple[str, ...] = ("backup_policies", cfg.tier, "vault_name")
        expected = _lookup(outputs, path)
        key = cfg.central_vault_key(cfg.tier) or ""
        if not expected:
            found.append(f"output '{'.'.join(path)}' is missing")
        elif key and expected != cfg.vault_name(key):
            found.append(
                f"vaults.{key}.name: the {cfg.tier} BACKUP_POLICY writes to vault {expected!r} but this stack "
                f"names it {cfg.vault_name(key)!r}; use the same name"
            )
        return found
    assert cfg.plan is not None  # account mode: required by the config model
    rules = cfg.plan.all_rules()
    for target in needed_targets(cfg):
        path = target_path(cfg, target)
        entry = _lookup(outputs, path)
        if not isinstance(entry, Mapping) or not entry.get("arn"):
            found.append(f"output '{'.'.join(path)}.arn' is missing")
            continue
        lock = entry.get("lock")
        if not lock:
            continue
        # Numbers cross a StackReference as floats.
        low, high = int(lock["min"]), int(lock["max"])
        for name, rule in rules.items():
            days = rule.lifecycle(target).delete_after_days
            if not lock_admits(low, high, days):
                where = rule.key("plan", name)
                found.append(
                    f"{where}: a copy kept {days} days lands in {entry['arn']}, whose lock allows {low}-{high} days; "
                    "AWS Backup would fail the copy"
                )
    return found
