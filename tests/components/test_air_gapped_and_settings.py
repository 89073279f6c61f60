"""AirGappedVault and BackupSettings on the mock runtime: the resources they own and what they refuse."""

from __future__ import annotations

import json
from dataclasses import replace

import pulumi
import pulumi_aws as aws
import pytest

from components import AirGappedVault, AirGappedVaultArgs, BackupSettings, BackupSettingsArgs
from tests.conftest import Harness

ACCOUNT = "100000000010"
ARGS = AirGappedVaultArgs(
    vault_name="pgf-prod-air-gapped",
    tier="prod",
    min_retention_days=35,
    max_retention_days=3650,
    partition="aws",
    deploy_role_arn=f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-deploy",
    break_glass_role_arn=f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-break-glass",
    copy_in_org_id="o-pgfexample01",
    hardened=True,
    tags={"backup:tier": "prod"},
)


def _provider() -> aws.Provider:
    return aws.Provider("p", region="ca-central-1", allowed_account_ids=[ACCOUNT])


def test_air_gapped_vault_owns_its_vault_and_policy(pulumi_mocks: Harness) -> None:
    gap = pulumi_mocks.run(lambda: AirGappedVault("g", ARGS, pulumi.ResourceOptions(providers={"aws": _provider()})))
    vault = pulumi_mocks.named("g-vault")
    assert vault["type"] == "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault"
    assert vault["inputs"]["minRetentionDays"] == 35 and vault["inputs"]["maxRetentionDays"] == 3650
    assert vault["protect"] and vault["retainOnDelete"]
    assert vault["parent"].endswith("pgf:backup:AirGappedVault::g")
    policy = pulumi_mocks.named("g-policy")["inputs"]
    assert policy["backupVaultName"] == "pgf-prod-air-gapped"
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert statements["CopyIntoVaultFromTheOrganization"]["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-pgfexample01"}
    }
    assert "DenyRecoveryPointDeletionExceptBreakGlass" in statements
    assert pulumi_mocks.resolve(gap.vault_arn).endswith(":backup-vault:pgf-prod-air-gapped")


def test_an_unhardened_air_gapped_vault_is_not_protected(pulumi_mocks: Harness) -> None:
    pulumi_mocks.run(lambda: AirGappedVault("g", replace(ARGS, hardened=False), pulumi.ResourceOptions()))
    assert not pulumi_mocks.named("g-vault")["protect"]


def test_a_retention_range_aws_refuses_is_refused_before_registration(pulumi_mocks: Harness) -> None:
    with pytest.raises(
        ValueError, match="min_retention_days \\(40\\) must be between 1 and max_retention_days \\(35\\)"
    ):
        AirGappedVault("g", replace(ARGS, min_retention_days=40, max_retention_days=35))
    assert not pulumi_mocks.resources


def test_backup_settings_send_the_region_maps_whole(pulumi_mocks: Harness) -> None:
    args = BackupSettingsArgs(region_opt_in={"S3": True, "EC2": False}, region_management={"DynamoDB": True})
    pulumi_mocks.run(lambda: BackupSettings("s", args, pulumi.ResourceOptions(providers={"aws": _provider()})))
    region = pulumi_mocks.named("s-region")["inputs"]
    assert region["resourceTypeOptInPreference"] == {"S3": True, "EC2": False}
    assert region["resourceTypeManagementPreference"] == {"DynamoDB": True}
    assert not pulumi_mocks.of_type("aws:backup/globalSettings:GlobalSettings")


def test_backup_settings_global_settings_alone(pulumi_mocks: Harness) -> None:
    args = BackupSettingsArgs(global_settings={"isCrossAccountBackupEnabled": "true"})
    pulumi_mocks.run(lambda: BackupSettings("s", args))
    assert pulumi_mocks.named("s-global")["inputs"]["globalSettings"] == {"isCrossAccountBackupEnabled": "true"}
    assert not pulumi_mocks.of_type("aws:backup/regionSettings:RegionSettings")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (BackupSettingsArgs(), "needs region opt-in preferences or global settings"),
        (
            BackupSettingsArgs(
                region_management={"EFS": True}, global_settings={"isCrossAccountBackupEnabled": "true"}
            ),
            "region management preferences go with the region's opt-in map",
        ),
    ],
)
def test_backup_settings_refuse_what_aws_would(pulumi_mocks: Harness, args: BackupSettingsArgs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackupSettings("s", args)
