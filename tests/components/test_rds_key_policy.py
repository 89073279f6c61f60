"""The key policy statement each database key needs for the copies to the backup account (pure, on RdsProtection)."""

from __future__ import annotations

from dataclasses import replace

import pulumi
import pulumi_aws as aws
import pytest

from components import DatabaseArgs, RdsProtection, RdsProtectionArgs
from components.rds_protection import COPY_KEY_POLICY_ACTIONS, copy_key_policy_statement, key_policy_statements
from tests.conftest import Harness

ACCOUNT = "400000000040"
BACKUP = "100000000010"
CORE_KEY = f"arn:aws:kms:ca-central-1:{ACCOUNT}:key/0c1e5d8a-1f2b-4c3d-9e8f-400000000040"
AUDIT_KEY = f"arn:aws:kms:ca-central-1:{ACCOUNT}:key/7a6b5c4d-3e2f-4a1b-8c9d-400000000040"
ARGS = RdsProtectionArgs(
    databases=(
        DatabaseArgs("pgf-core", "cluster", "ca-central-1", CORE_KEY),
        DatabaseArgs("pgf-audit", "instance", "ca-central-1", AUDIT_KEY),
    ),
    account_id=ACCOUNT,
    region="ca-central-1",
    partition="aws",
    tier="prod",
    min_backup_retention_days=7,
    multi_az_required=True,
    config_rules=False,
    copy_account_ids=(BACKUP,),
)


def _rds(harness: Harness, args: RdsProtectionArgs = ARGS) -> RdsProtection:
    provider = aws.Provider("p", region="ca-central-1", allowed_account_ids=[ACCOUNT])
    protection: RdsProtection = harness.run(
        lambda: RdsProtection("rds", args, pulumi.ResourceOptions(provider=provider))
    )
    return protection


# -- the statement ----------------------------------------------------------------------------------


def test_the_statement_is_the_one_aws_documents_for_cross_account_snapshot_copies():
    # RDS user guide, "Allowing access to an AWS KMS key": the destination account's root as Principal,
    # kms:CreateGrant with the example's key-use actions, "Resource": "*", no condition.
    assert copy_key_policy_statement("aws", CORE_KEY, [BACKUP]) == {
        "Sid": "PgfBackupCopiesRdsSnapshots",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{BACKUP}:root"]},
        "Action": [
            "kms:CreateGrant",
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:DescribeKey",
        ],
        "Resource": "*",
    }


def test_the_statement_carries_no_condition_and_no_more_than_documented():
    statement = copy_key_policy_statement("aws", CORE_KEY, [BACKUP])
    assert "Condition" not in statement
    assert tuple(statement["Action"]) == COPY_KEY_POLICY_ACTIONS
    # Key administration and key deletion stay with the key's owner.
    assert not {"kms:*", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:RevokeGrant"} & set(statement["Action"])


def test_each_destination_account_is_named_once_in_its_partition():
    statement = copy_key_policy_statement(
        "aws-us-gov", CORE_KEY.replace("arn:aws:", "arn:aws-us-gov:"), [BACKUP, "500000000050", BACKUP]
    )
    assert statement["Principal"] == {
        "AWS": [f"arn:aws-us-gov:iam::{BACKUP}:root", "arn:aws-us-gov:iam::500000000050:root"]
    }


@pytest.mark.parametrize(
    ("key_arn", "accounts", "message"),
    [
        (f"arn:aws:kms:ca-central-1:{ACCOUNT}:alias/pgf-core", [BACKUP], "is not the ARN of a KMS key"),
        ("0c1e5d8a-1f2b-4c3d-9e8f-400000000040", [BACKUP], "is not the ARN of a KMS key"),
        (CORE_KEY.replace("arn:aws:", "arn:aws-cn:"), [BACKUP], "is in partition 'aws-cn', not 'aws'"),
        (CORE_KEY, [], "no destination account to admit"),
    ],
    ids=["alias", "key-id", "partition", "no-account"],
)
def test_what_cannot_be_a_key_policy_statement_is_refused(key_arn, accounts, message):
    with pytest.raises(ValueError, match=message):
        copy_key_policy_statement("aws", key_arn, accounts)


def test_only_databases_copied_with_a_customer_managed_key_need_a_statement():
    assert list(key_policy_statements(ARGS)) == ["pgf-core", "pgf-audit"]
    without_key = replace(ARGS, databases=(*ARGS.databases, DatabaseArgs("pgf-cache", "instance", "ca-central-1")))
    assert list(key_policy_statements(without_key)) == ["pgf-core", "pgf-audit"]
    assert key_policy_statements(replace(ARGS, copy_account_ids=())) == {}


# -- on the component -------------------------------------------------------------------------------


def test_the_component_exposes_the_statement_of_each_database(pulumi_mocks: Harness) -> None:
    rds = _rds(pulumi_mocks)
    assert rds.key_policy_statements == {
        "pgf-core": copy_key_policy_statement("aws", CORE_KEY, [BACKUP]),
        "pgf-audit": copy_key_policy_statement("aws", AUDIT_KEY, [BACKUP]),
    }


def test_without_a_copy_to_another_account_no_statement_and_no_grant(pulumi_mocks: Harness) -> None:
    rds = _rds(pulumi_mocks, replace(ARGS, copy_account_ids=()))
    assert rds.key_policy_statements == {}
    assert not pulumi_mocks.of_type("aws:kms/grant:Grant")


def test_the_grants_stay_beside_the_statement_for_the_same_account(pulumi_mocks: Harness) -> None:
    _rds(pulumi_mocks)
    grants = {g["inputs"]["keyId"]: g["inputs"] for g in pulumi_mocks.of_type("aws:kms/grant:Grant")}
    assert set(grants) == {CORE_KEY, AUDIT_KEY}
    # The grant admits no account the statement does not.
    assert {g["granteePrincipal"] for g in grants.values()} == {f"arn:aws:iam::{BACKUP}:root"}
    assert all(g["retireOnDelete"] for g in grants.values())


def test_a_bad_key_is_refused_before_anything_is_registered(pulumi_mocks: Harness) -> None:
    bad = replace(
        ARGS, databases=(DatabaseArgs("pgf-core", "cluster", "ca-central-1", CORE_KEY.replace("aws", "aws-cn", 1)),)
    )
    with pytest.raises(ValueError, match="is in partition 'aws-cn', not 'aws'"):
        RdsProtection("rds", bad)
    assert not [r for r in pulumi_mocks.resources if r["type"] == "pgf:backup:RdsProtection"]
