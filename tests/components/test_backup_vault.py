"""BackupVault on the mock runtime: its resources and the properties operations rely on."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components import BackupVault, BackupVaultArgs, VaultLockArgs
from tests.conftest import Harness

ACCOUNT = "400000000040"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-deploy"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-break-glass"

ARGS = BackupVaultArgs(
    vault_name="pgf-prod",
    tier="prod",
    account_id=ACCOUNT,
    region="ca-central-1",
    partition="aws",
    deploy_role_arn=DEPLOY,
    break_glass_role_arn=BREAK_GLASS,
    notify_events=("COPY_JOB_FAILED", "S3_BACKUP_OBJECT_FAILED"),
    lock=VaultLockArgs("compliance", 35, 3650, 3),
    multi_region_key=True,
    hardened=True,
)


def _build(harness: Harness, args: BackupVaultArgs = ARGS) -> BackupVault:
    def program() -> BackupVault:
        provider = aws.Provider("p", region=args.region, allowed_account_ids=[args.account_id])
        return BackupVault("v", args, pulumi.ResourceOptions(providers={"aws": provider}))

    vault: BackupVault = harness.run(program)
    return vault


def _statements(document: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(document)["Statement"]}


def test_resources_and_parentage(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    component = pulumi_mocks.named("v")
    assert component["type"] == "pgf:backup:BackupVault"
    children = [r for r in pulumi_mocks.resources if r["parent"] == component["urn"]]
    assert sorted(r["type"] for r in children) == sorted(
        [
            "aws:kms/key:Key",
            "aws:kms/alias:Alias",
            "aws:backup/vault:Vault",
            "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
            "aws:backup/vaultPolicy:VaultPolicy",
            "aws:sns/topic:Topic",
            "aws:sns/topicPolicy:TopicPolicy",
            "aws:backup/vaultNotifications:VaultNotifications",
        ]
    )
    assert all(r["name"].startswith("v-") for r in children)
    assert all(r["provider"].endswith("::p") for r in children)


def test_customer_managed_key(pulumi_mocks: Harness) -> None:
    vault = _build(pulumi_mocks)
    key = pulumi_mocks.named("v-key")["inputs"]
    assert key["enableKeyRotation"] is True
    assert key["deletionWindowInDays"] == 30
    assert key["multiRegion"] is True
    recorded_vault = pulumi_mocks.named("v-vault")["inputs"]
    assert recorded_vault["kmsKeyArn"].startswith(f"arn:aws:kms:ca-central-1:{ACCOUNT}:key/mrk-")
    assert pulumi_mocks.resolve(vault.key_arn) == recorded_vault["kmsKeyArn"]
    assert pulumi_mocks.named("v-alias")["inputs"]["name"] == "alias/pgf-backup/pgf-prod"


def test_key_policy_grants_only_what_is_needed(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    statements = _statements(pulumi_mocks.named("v-key")["inputs"]["policy"])
    admin = statements["KeyAdministrationByTheAccount"]
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    # No pattern of the unconditioned statement reaches a use of the key, or a grant that would.
    for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"):
        assert not [p for p in admin["Action"] if fnmatch.fnmatchcase(action, p)], action
    use = statements["UseThroughAwsBackupAndRestoringServices"]
    assert "backup.ca-central-1.amazonaws.com" in use["Condition"]["StringEquals"]["kms:ViaService"]
    grants = statements["GrantsForAwsResourcesOnly"]
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    for statement in statements.values():
        if statement["Principal"] == {"AWS": "*"} or statement["Principal"] == "*":
            assert statement.get("Condition"), f"{statement['Sid']}: '*' principal without condition"


def test_prod_key_policy_denies_deletion_and_policy_changes(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    statements = _statements(pulumi_mocks.named("v-key")["inputs"]["policy"])
    deletion = statements["DenyKeyDeletionExceptBreakGlass"]
    assert deletion["Effect"] == "Deny"
    assert set(deletion["Action"]) == {"kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation"}
    assert deletion["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [BREAK_GLASS]
    policy = statements["DenyKeyPolicyChangesExceptDeployAndBreakGlass"]
    assert policy["Action"] == ["kms:PutKeyPolicy"]
    assert policy["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [DEPLOY, BREAK_GLASS]


def test_prod_vault_and_key_are_protected_and_retained(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    for name in ("v-key", "v-vault", "v-lock"):
        resource = pulumi_mocks.named(name)
        assert resource["protect"] and resource["retainOnDelete"], name


def test_unhardened_vault_is_not_protected_and_has_no_key_denies(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, replace(ARGS, hardened=False, multi_region_key=False))
    key = pulumi_mocks.named("v-key")
    assert not key["protect"] and not pulumi_mocks.named("v-vault")["protect"]
    assert key["inputs"]["multiRegion"] is False
    assert not any(s["Effect"] == "Deny" for s in _statements(key["inputs"]["policy"]).values())


def test_compliance_and_governance_locks(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    lock = pulumi_mocks.named("v-lock")["inputs"]
    assert lock == {
        "backupVaultName": "pgf-prod",
        "minRetentionDays": 35,
        "maxRetentionDays": 3650,
        "changeableForDays": 3,
    }


def test_governance_lock_has_no_changeable_days(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, replace(ARGS, lock=VaultLockArgs("governance", 7, 14), hardened=False))
    lock = pulumi_mocks.named("v-lock")["inputs"]
    assert "changeableForDays" not in lock
    assert lock["minRetentionDays"] == 7


def test_no_lock_when_not_configured(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, replace(ARGS, lock=None, hardened=False))
    assert not pulumi_mocks.of_type("aws:backup/vaultLockConfiguration:VaultLockConfiguration")


def test_access_policy_denies_destruction_to_all_but_break_glass(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    statements = _statements(pulumi_mocks.named("v-policy")["inputs"]["policy"])
    deletion = statements["DenyRecoveryPointDeletionExceptBreakGlass"]
    assert deletion["Effect"] == "Deny" and deletion["Principal"] == {"AWS": "*"}
    assert set(deletion["Action"]) == {"backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"}
    assert deletion["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [BREAK_GLASS]
    governance = statements["DenyVaultGovernanceChangesExceptDeployAndBreakGlass"]
    assert {
        "backup:PutBackupVaultLockConfiguration",
        "backup:DeleteBackupVaultLockConfiguration",
        "backup:PutBackupVaultAccessPolicy",
        "backup:DeleteBackupVaultAccessPolicy",
        "backup:PutBackupVaultNotifications",
        "backup:DeleteBackupVaultNotifications",
    } <= set(governance["Action"])
    assert governance["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [DEPLOY, BREAK_GLASS]


def test_copy_in_by_organization_or_accounts(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, replace(ARGS, copy_in_org_id="o-pgfexample01", copy_in_account_ids=("200000000020",)))
    statements = _statements(pulumi_mocks.named("v-policy")["inputs"]["policy"])
    copy = statements["CopyIntoVaultFromTheOrganization"]
    assert copy["Action"] == "backup:CopyIntoBackupVault"
    assert copy["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-pgfexample01"}}


def test_copy_in_by_account_when_no_organization(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, replace(ARGS, copy_in_account_ids=("200000000020", "300000000030")))
    statements = _statements(pulumi_mocks.named("v-policy")["inputs"]["policy"])
    copy = statements["CopyIntoVaultFromAccounts"]
    assert copy["Principal"]["AWS"] == ["arn:aws:iam::200000000020:root", "arn:aws:iam::300000000030:root"]


def test_notifications_to_an_encrypted_topic_backup_may_publish_to(pulumi_mocks: Harness) -> None:
    vault = _build(pulumi_mocks)
    topic = pulumi_mocks.named("v-events")["inputs"]
    key_arn = pulumi_mocks.resolve(vault.key_arn)
    assert topic["kmsMasterKeyId"] == key_arn
    topic_arn = pulumi_mocks.resolve(vault.topic_arn)
    (publish,) = json.loads(pulumi_mocks.named("v-events-policy")["inputs"]["policy"])["Statement"]
    assert publish["Principal"] == {"Service": "backup.amazonaws.com"}
    assert publish["Action"] == "SNS:Publish" and publish["Resource"] == topic_arn
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    notifications = pulumi_mocks.named("v-notifications")["inputs"]
    assert notifications["snsTopicArn"] == topic_arn
    assert notifications["backupVaultEvents"] == ["COPY_JOB_FAILED", "S3_BACKUP_OBJECT_FAILED"]
    key_statements = _statements(pulumi_mocks.named("v-key")["inputs"]["policy"])
    assert key_statements["AwsBackupPublishesEncryptedNotifications"]["Principal"] == {
        "Service": "backup.amazonaws.com"
    }


def test_replica_key_in_the_copy_region(pulumi_mocks: Harness) -> None:
    primary = "arn:aws:kms:ca-central-1:400000000040:key/mrk-0123456789abcdef0123456789abcdef"
    _build(pulumi_mocks, replace(ARGS, region="ca-west-1", multi_region_key=False, replica_of_key_arn=primary))
    replica = pulumi_mocks.named("v-key")
    assert replica["type"] == "aws:kms/replicaKey:ReplicaKey"
    assert replica["inputs"]["primaryKeyArn"] == primary
    assert replica["protect"]
    assert pulumi_mocks.named("v-vault")["inputs"]["kmsKeyArn"] == (
        "arn:aws:kms:ca-west-1:400000000040:key/mrk-0123456789abcdef0123456789abcdef"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"multi_region_key": True, "replica_of_key_arn": "arn:aws:kms:x"}, "replica key cannot itself"),
        ({"lock": VaultLockArgs("compliance", 35, 3650)}, "compliance mode is exactly"),
        ({"notify_events": ()}, "at least one notification event"),
    ],
)
def test_contradictory_arguments_are_refused(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(pulumi_mocks, replace(ARGS, **change))


def test_key_admits_copy_destination_accounts_for_copies_only(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, replace(ARGS, copy_out_account_ids=("100000000010", "100000000010")))
    statements = _statements(pulumi_mocks.named("v-key")["inputs"]["policy"])
    use = statements["CrossAccountCopiesByDestinationAccounts"]
    assert use["Principal"] == {"AWS": ["arn:aws:iam::100000000010:root"]}
    assert "kms:Decrypt" in use["Action"] and "kms:ReEncryptFrom" in use["Action"]
    assert not [a for a in use["Action"] if "Grant" in a or a.endswith("*")]
    grants = statements["CrossAccountCopyGrantsForAwsResourcesOnly"]
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert set(grants["Action"]) == {"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}


def test_key_admits_no_other_account_without_copies(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    statements = _statements(pulumi_mocks.named("v-key")["inputs"]["policy"])
    principals = json.dumps([s["Principal"] for s in statements.values()])
    assert "100000000010" not in principals
