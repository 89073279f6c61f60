"""Vault rules: customer-managed key, Vault Lock per tier, deletion-denying access policy, protect in prod."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pgf_backup_policy.model import UNKNOWN
from pgf_backup_policy.vaults import (
    AIR_GAPPED_VAULT,
    KMS_KEY,
    KMS_REPLICA_KEY,
    VAULT,
    VAULT_LOCK,
    VAULT_POLICY,
    prod_stateful_resources_protected_violations,
    vault_customer_managed_key_violations,
    vault_denies_recovery_point_deletion_violations,
    vault_lock_compliance_in_prod_violations,
)

from tests.policy import fixtures as f

# ---------------------------------------------------------------------------------------------
# vault-customer-managed-key


def test_vault_with_customer_key_passes() -> None:
    assert vault_customer_managed_key_violations(VAULT, f.VAULT, f.ctx()) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, "has no kmsKeyArn"),
        ("", "has no kmsKeyArn"),
        (f"arn:aws:kms:{f.REGION}:{f.ACCOUNT}:alias/aws/backup", "uses the AWS-managed key"),
        ("alias/pgf-backup/pgf-prod", "is not a KMS key or alias ARN"),
    ],
)
def test_vault_key_refused(key: str | None, expected: str) -> None:
    props = f.changed(f.VAULT, kmsKeyArn=key)
    (message,) = vault_customer_managed_key_violations(VAULT, props, f.ctx())
    assert expected in message and "vault pgf-prod" in message


def test_vault_key_unknown_during_preview_is_not_judged() -> None:
    assert vault_customer_managed_key_violations(VAULT, f.changed(f.VAULT, kmsKeyArn=UNKNOWN), f.ctx()) == []


def test_air_gapped_vault_is_exempt_from_the_key_rule() -> None:
    assert vault_customer_managed_key_violations(AIR_GAPPED_VAULT, f.AIR_GAPPED_VAULT, f.ctx()) == []


# ---------------------------------------------------------------------------------------------
# prod-stateful-resources-protected


@pytest.mark.parametrize(
    ("kind", "props"), [(VAULT, f.VAULT), (KMS_KEY, f.KEY), (KMS_REPLICA_KEY, f.REPLICA_KEY), (AIR_GAPPED_VAULT, {})]
)
def test_prod_stateful_resources_protected(kind: str, props: dict[str, Any]) -> None:
    assert prod_stateful_resources_protected_violations(kind, props, f.ctx(protect=True)) == []
    (message,) = prod_stateful_resources_protected_violations(kind, props, f.ctx(protect=False))
    assert "protect=True" in message


def test_unprotected_is_fine_outside_prod() -> None:
    assert prod_stateful_resources_protected_violations(VAULT, f.VAULT, f.ctx("lab", protect=False)) == []


def test_backup_account_prod_vault_is_known_by_its_tier_tag() -> None:
    backup = f.ctx(None, stack="backup", protect=False)
    assert prod_stateful_resources_protected_violations(VAULT, f.VAULT, backup)
    lab_vault = f.changed(f.VAULT, tags={"backup:tier": "lab"})
    assert prod_stateful_resources_protected_violations(VAULT, lab_vault, backup) == []


def test_other_types_are_not_stateful() -> None:
    assert prod_stateful_resources_protected_violations(VAULT_LOCK, f.VAULT_LOCK, f.ctx(protect=False)) == []


# ---------------------------------------------------------------------------------------------
# vault-lock-compliance-in-prod (stack level: the lock is its own resource)


def _vault_and_lock(lock: dict[str, Any] | None, tier: str | None = "prod", **settings: Any) -> list[f.Resource]:
    context = f.ctx(tier, **settings)
    found = [f.resource(VAULT, f.VAULT, "vault", context)]
    if lock is not None:
        found.append(f.resource(VAULT_LOCK, lock, "lock", context))
    return found


def test_prod_vault_with_compliance_lock_passes() -> None:
    assert vault_lock_compliance_in_prod_violations(_vault_and_lock(f.VAULT_LOCK)) == []


def test_prod_vault_without_lock() -> None:
    (finding,) = vault_lock_compliance_in_prod_violations(_vault_and_lock(None))
    assert finding.urn.endswith("::vault") and "has no Vault Lock" in finding.message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"changeableForDays": None}, "governance mode"),
        ({"changeableForDays": 2}, "below AWS's minimum of 3"),
        ({"minRetentionDays": 7}, "minRetentionDays is 7; prod needs at least 35"),
        ({"minRetentionDays": None}, "minRetentionDays is not set"),
    ],
)
def test_prod_lock_refused(changes: dict[str, Any], expected: str) -> None:
    (finding,) = vault_lock_compliance_in_prod_violations(_vault_and_lock(f.changed(f.VAULT_LOCK, **changes)))
    assert finding.urn.endswith("::lock") and expected in finding.message


def test_lock_matches_its_vault_by_name_and_region() -> None:
    vault, lock = _vault_and_lock(f.VAULT_LOCK)
    elsewhere = f.resource(VAULT_LOCK, f.VAULT_LOCK, "lock", f.Context(**{**lock.ctx.__dict__, "region": "ca-west-1"}))
    findings = vault_lock_compliance_in_prod_violations([vault, elsewhere])
    assert [x.urn for x in findings] == [vault.urn]  # the vault has no lock in its own region


def test_prod_minimum_follows_the_config() -> None:
    lock = f.changed(f.VAULT_LOCK, minRetentionDays=40)
    assert vault_lock_compliance_in_prod_violations(_vault_and_lock(lock, bounds={"prod": (40, 3650)})) == []
    strict = _vault_and_lock(lock, bounds={"prod": (45, 3650)})
    assert "prod needs at least 45" in vault_lock_compliance_in_prod_violations(strict)[0].message


def test_compliance_lock_outside_prod_is_refused_unless_allowed() -> None:
    (finding,) = vault_lock_compliance_in_prod_violations(_vault_and_lock(f.VAULT_LOCK, "dev"))
    assert "compliance-mode lock" in finding.message and "(dev)" in finding.message
    allowed = _vault_and_lock(f.VAULT_LOCK, "dev", allow_compliance_lock_outside_prod=True)
    assert vault_lock_compliance_in_prod_violations(allowed) == []


def test_governance_lock_or_none_is_fine_outside_prod() -> None:
    governance = f.changed(f.VAULT_LOCK, changeableForDays=None, minRetentionDays=7)
    assert vault_lock_compliance_in_prod_violations(_vault_and_lock(governance, "lab")) == []
    assert vault_lock_compliance_in_prod_violations(_vault_and_lock(None, "lab")) == []


def test_lock_on_a_vault_of_another_stack_is_judged_by_the_stack_tier() -> None:
    lock = f.resource(VAULT_LOCK, f.changed(f.VAULT_LOCK, changeableForDays=None), "lock")
    (finding,) = vault_lock_compliance_in_prod_violations([lock])
    assert finding.urn == lock.urn and "governance mode" in finding.message


def test_air_gapped_vault_minimum_in_prod() -> None:
    vault = f.resource(AIR_GAPPED_VAULT, f.AIR_GAPPED_VAULT, "lag")
    assert vault_lock_compliance_in_prod_violations([vault]) == []
    short = f.resource(AIR_GAPPED_VAULT, f.changed(f.AIR_GAPPED_VAULT, minRetentionDays=7), "lag")
    (finding,) = vault_lock_compliance_in_prod_violations([short])
    assert "minRetentionDays 7 is below the prod minimum of 35" in finding.message


def test_unknown_lock_values_are_not_judged() -> None:
    lock = f.changed(f.VAULT_LOCK, changeableForDays=UNKNOWN)
    assert vault_lock_compliance_in_prod_violations(_vault_and_lock(lock)) == []


# ---------------------------------------------------------------------------------------------
# vault-denies-recovery-point-deletion (stack level: the access policy is its own resource)


def _vault_and_policy(statements: list[dict[str, Any]] | None) -> list[f.Resource]:
    found = [f.resource(VAULT, f.VAULT, "vault")]
    if statements is not None:
        found.append(f.resource(VAULT_POLICY, {**f.VAULT_POLICY, "policy": f.document(statements)}, "policy"))
    return found


def test_vault_policy_of_the_components_passes() -> None:
    assert vault_denies_recovery_point_deletion_violations(_vault_and_policy(f.VAULT_POLICY_STATEMENTS)) == []


def test_vault_without_access_policy() -> None:
    (finding,) = vault_denies_recovery_point_deletion_violations(_vault_and_policy(None))
    assert finding.urn.endswith("::vault") and "has no access policy" in finding.message


def test_missing_recovery_point_deny() -> None:
    findings = vault_denies_recovery_point_deletion_violations(_vault_and_policy(f.VAULT_POLICY_STATEMENTS[1:]))
    assert [x.message.split(": ", 1)[1] for x in findings] == [
        "no statement denies backup:DeleteRecoveryPoint to every principal (all but pgf-backup-break-glass)",
        "no statement denies backup:UpdateRecoveryPointLifecycle to every principal (all but pgf-backup-break-glass)",
    ]


def test_deletion_exempting_another_role_is_refused() -> None:
    statements = json.loads(json.dumps(f.VAULT_POLICY_STATEMENTS))
    statements[0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"].append(f.DEPLOY)
    findings = vault_denies_recovery_point_deletion_violations(_vault_and_policy(statements))
    assert len(findings) == 2 and all(f.DEPLOY in x.message for x in findings)


def test_break_glass_role_of_another_account_is_not_the_break_glass_role() -> None:
    statements = json.loads(json.dumps(f.VAULT_POLICY_STATEMENTS))
    statements[0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"] = [
        "arn:aws:iam::999999999999:role/pgf-backup-break-glass"
    ]
    assert len(vault_denies_recovery_point_deletion_violations(_vault_and_policy(statements))) == 2


def test_governance_deny_without_lock_actions() -> None:
    statements = json.loads(json.dumps(f.VAULT_POLICY_STATEMENTS))
    statements[1]["Action"] = ["backup:DeleteBackupVault"]
    findings = vault_denies_recovery_point_deletion_violations(_vault_and_policy(statements))
    assert len(findings) == 4 and "backup:PutBackupVaultLockConfiguration" in findings[0].message


def test_wildcard_actions_count() -> None:
    statements = json.loads(json.dumps(f.VAULT_POLICY_STATEMENTS))
    statements[1]["Action"] = ["backup:Put*", "backup:Delete*Vault*"]
    assert vault_denies_recovery_point_deletion_violations(_vault_and_policy(statements)) == []


def test_deny_narrowed_by_another_condition_does_not_count() -> None:
    statements = json.loads(json.dumps(f.VAULT_POLICY_STATEMENTS))
    statements[0]["Condition"]["Bool"] = {"aws:MultiFactorAuthPresent": "false"}
    findings = vault_denies_recovery_point_deletion_violations(_vault_and_policy(statements))
    assert len(findings) == 2 and "conditions other than exempting" in findings[0].message


def test_deny_with_a_service_principal_does_not_count() -> None:
    statements = json.loads(json.dumps(f.VAULT_POLICY_STATEMENTS))
    statements[0]["Principal"] = {"Service": "backup.amazonaws.com"}
    assert len(vault_denies_recovery_point_deletion_violations(_vault_and_policy(statements))) == 2


def test_role_names_follow_the_config() -> None:
    resources = _vault_and_policy(f.VAULT_POLICY_STATEMENTS)
    renamed = [f.Resource(r.type, r.urn, r.name, r.props, f.ctx(break_glass_role="ops-emergency")) for r in resources]
    findings = vault_denies_recovery_point_deletion_violations(renamed)
    assert findings and "only ops-emergency may be exempt" in findings[0].message


def test_vault_policy_that_is_not_json() -> None:
    resources = [f.resource(VAULT, f.VAULT, "vault"), f.resource(VAULT_POLICY, {**f.VAULT_POLICY, "policy": "{"}, "p")]
    (finding,) = vault_denies_recovery_point_deletion_violations(resources)
    assert "not valid JSON" in finding.message
