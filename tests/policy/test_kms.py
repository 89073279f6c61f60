"""kms-key-hardening: rotation, deletion window, open statements, prod denies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pgf_backup_policy.kms import kms_key_hardening_violations
from pgf_backup_policy.model import UNKNOWN
from pgf_backup_policy.vaults import KMS_KEY, KMS_REPLICA_KEY, VAULT

from tests.policy import fixtures as f


def _statements(*, drop: str | None = None, add: dict[str, Any] | None = None) -> str:
    statements = [s for s in json.loads(json.dumps(f.KEY_STATEMENTS)) if s["Sid"] != drop]
    return f.document([*statements, *([add] if add else [])])


def test_prod_key_of_the_components_passes() -> None:
    assert kms_key_hardening_violations(KMS_KEY, f.KEY, f.ctx()) == []
    assert kms_key_hardening_violations(KMS_REPLICA_KEY, f.REPLICA_KEY, f.ctx()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"enableKeyRotation": False}, "key rotation is off"),
        ({"enableKeyRotation": None}, "key rotation is off"),
        ({"deletionWindowInDays": 7}, "deletionWindowInDays is 7; prod needs at least 30"),
        ({"policy": None}, "no key policy"),
        (
            {"policy": _statements(drop="DenyKeyDeletionExceptBreakGlass")},
            "no statement denies kms:ScheduleKeyDeletion",
        ),
        ({"policy": _statements(drop="DenyKeyPolicyChangesExceptDeployAndBreakGlass")}, "denies kms:PutKeyPolicy"),
        (
            {"policy": _statements(add={"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "kms:*"})},
            "statement Open allows kms:* to every principal",
        ),
        ({"policy": "not json"}, "not valid JSON"),
    ],
)
def test_prod_key_refused(changes: dict[str, Any], expected: str) -> None:
    problems = kms_key_hardening_violations(KMS_KEY, f.changed(f.KEY, **changes), f.ctx())
    assert any(expected in p for p in problems), problems


def test_key_without_deletion_window_gets_aws_default_of_30_days() -> None:
    assert kms_key_hardening_violations(KMS_KEY, f.changed(f.KEY, deletionWindowInDays=None), f.ctx()) == []


def test_non_prod_key_needs_rotation_and_seven_days_but_no_denies() -> None:
    lab = f.ctx("lab")
    relaxed = f.changed(f.KEY, deletionWindowInDays=7, policy=_statements(drop="DenyKeyDeletionExceptBreakGlass"))
    assert kms_key_hardening_violations(KMS_KEY, relaxed, lab) == []
    assert kms_key_hardening_violations(KMS_KEY, f.changed(f.KEY, policy=None), lab) == []
    assert kms_key_hardening_violations(KMS_KEY, f.changed(f.KEY, enableKeyRotation=False), lab)


def test_open_statement_with_a_condition_is_allowed() -> None:
    conditional = {
        "Sid": "ViaBackup",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "kms:Decrypt",
        "Condition": {"StringEquals": {"kms:CallerAccount": f.ACCOUNT}},
    }
    assert kms_key_hardening_violations(KMS_KEY, f.changed(f.KEY, policy=_statements(add=conditional)), f.ctx()) == []


def test_replica_key_inherits_rotation_from_its_primary() -> None:
    assert "enableKeyRotation" not in f.REPLICA_KEY
    assert kms_key_hardening_violations(KMS_REPLICA_KEY, f.REPLICA_KEY, f.ctx()) == []
    short = f.changed(f.REPLICA_KEY, deletionWindowInDays=10)
    assert kms_key_hardening_violations(KMS_REPLICA_KEY, short, f.ctx()) == [
        "deletionWindowInDays is 10; prod needs at least 30 days to notice and cancel a scheduled deletion"
    ]


def test_asymmetric_keys_do_not_rotate() -> None:
    signing = f.changed(f.KEY, enableKeyRotation=None, customerMasterKeySpec="RSA_2048", keyUsage="SIGN_VERIFY")
    assert kms_key_hardening_violations(KMS_KEY, signing, f.ctx()) == []


def test_backup_account_lab_key_is_not_prod() -> None:
    lab_key = f.changed(f.KEY, tags={"backup:tier": "lab"}, policy=_statements(drop="DenyKeyDeletionExceptBreakGlass"))
    assert kms_key_hardening_violations(KMS_KEY, lab_key, f.ctx(None, stack="backup")) == []
    prod_key = f.changed(lab_key, tags={"backup:tier": "prod"})
    assert kms_key_hardening_violations(KMS_KEY, prod_key, f.ctx(None, stack="backup"))


def test_unknown_values_are_not_judged() -> None:
    unknown = f.changed(f.KEY, enableKeyRotation=UNKNOWN, deletionWindowInDays=UNKNOWN, policy=UNKNOWN)
    assert kms_key_hardening_violations(KMS_KEY, unknown, f.ctx()) == []


def test_other_types_are_ignored() -> None:
    assert kms_key_hardening_violations(VAULT, {}, f.ctx()) == []
