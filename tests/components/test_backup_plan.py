"""BackupPlan and BackupServiceRole on the mock runtime."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components import BackupPlan, BackupPlanArgs, BackupServiceRole, BackupServiceRoleArgs, CopyArgs, RuleArgs
from pgf_backup.paths.evaluator import Principal, Request, evaluate_document
from tests.conftest import Harness

CENTRAL = "arn:aws:backup:ca-central-1:100000000010:backup-vault:pgf-prod"
REGION_COPY = "arn:aws:backup:ca-west-1:400000000040:backup-vault:pgf-prod"
DAILY = RuleArgs(
    name="daily",
    schedule="cron(0 5 ? * * *)",
    timezone="America/Toronto",
    start_window_minutes=60,
    completion_window_minutes=480,
    delete_after_days=35,
    recovery_point_tags={"backup:rule": "daily"},
    copies=(CopyArgs(CENTRAL, 35), CopyArgs(REGION_COPY, 35)),
)
YEARLY = replace(
    DAILY, name="yearly", delete_after_days=2555, cold_storage_after_days=30, copies=(CopyArgs(CENTRAL, 2555, 30),)
)
ARGS = BackupPlanArgs(
    plan_name="pgf-prod",
    target_vault_name="pgf-prod",
    rules=(DAILY, YEARLY),
    service_role_arn="arn:aws:iam::400000000040:role/pgf-backup-service-role",
    tag_conditions={"backup:enabled": "true", "backup:tier": "prod"},
)


def _build(harness: Harness, args: BackupPlanArgs = ARGS) -> BackupPlan:
    def program() -> BackupPlan:
        provider = aws.Provider("p", region="ca-central-1", allowed_account_ids=["400000000040"])
        return BackupPlan("plan", args, pulumi.ResourceOptions(provider=provider))

    plan: BackupPlan = harness.run(program)
    return plan


def _rules(harness: Harness) -> dict[str, dict[str, Any]]:
    (plan,) = harness.of_type("aws:backup/plan:Plan")
    return {rule["ruleName"]: rule for rule in plan["inputs"]["rules"]}


def test_rule_fields(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    daily = _rules(pulumi_mocks)["daily"]
    assert daily["schedule"] == "cron(0 5 ? * * *)"
    assert daily["scheduleExpressionTimezone"] == "America/Toronto"
    assert (daily["startWindow"], daily["completionWindow"]) == (60, 480)
    assert daily["targetVaultName"] == "pgf-prod"
    assert daily["lifecycle"] == {"deleteAfter": 35}
    assert daily["recoveryPointTags"] == {"backup:rule": "daily"}
    assert daily["enableContinuousBackup"] is False
    yearly = _rules(pulumi_mocks)["yearly"]
    assert yearly["lifecycle"] == {"deleteAfter": 2555, "coldStorageAfter": 30}


def test_every_copy_action_has_its_own_lifecycle(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    daily = _rules(pulumi_mocks)["daily"]
    assert daily["copyActions"] == [
        {"destinationVaultArn": CENTRAL, "lifecycle": {"deleteAfter": 35}},
        {"destinationVaultArn": REGION_COPY, "lifecycle": {"deleteAfter": 35}},
    ]
    assert _rules(pulumi_mocks)["yearly"]["copyActions"][0]["lifecycle"] == {
        "deleteAfter": 2555,
        "coldStorageAfter": 30,
    }


def test_continuous_rule(pulumi_mocks: Harness) -> None:
    continuous = replace(DAILY, name="continuous", continuous=True)
    _build(pulumi_mocks, replace(ARGS, rules=(DAILY, continuous)))
    assert _rules(pulumi_mocks)["continuous"]["enableContinuousBackup"] is True


def test_tag_selection_is_one_condition_block_over_all_resources(pulumi_mocks: Harness) -> None:
    plan = _build(pulumi_mocks)
    (selection,) = pulumi_mocks.of_type("aws:backup/selection:Selection")
    inputs = selection["inputs"]
    assert inputs["resources"] == ["*"]
    (block,) = inputs["conditions"]
    assert block["stringEquals"] == [
        {"key": "aws:ResourceTag/backup:enabled", "value": "true"},
        {"key": "aws:ResourceTag/backup:tier", "value": "prod"},
    ]
    assert inputs["planId"] == pulumi_mocks.resolve(plan.plan_id)
    assert inputs["iamRoleArn"] == ARGS.service_role_arn


def test_explicit_arns_are_selected_in_chunks_of_100(pulumi_mocks: Harness) -> None:
    arns = [f"arn:aws:s3:::bucket-{i}" for i in range(150)]
    _build(pulumi_mocks, replace(ARGS, resources=arns, not_resources=("arn:aws:s3:::scratch",)))
    selections = {s["name"]: s["inputs"] for s in pulumi_mocks.of_type("aws:backup/selection:Selection")}
    assert selections["plan-tagged"]["notResources"] == ["arn:aws:s3:::scratch"]
    assert selections["plan-listed-1"]["resources"] == arns[:100]
    assert selections["plan-listed-2"]["resources"] == arns[100:]
    assert "conditions" not in selections["plan-listed-1"]
    assert all(s["notResources"] == ["arn:aws:s3:::scratch"] for s in selections.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tag_conditions": {}}, "at least one condition"),
        ({"rules": ()}, "1 to 10 rules"),
        ({"rules": tuple(replace(DAILY, name=f"r{i}") for i in range(11))}, "1 to 10 rules"),
        ({"rules": (replace(DAILY, copies=(CopyArgs(CENTRAL, 35),) * 6),)}, "at most 5 copy actions"),
        ({"rules": (replace(DAILY, continuous=True, delete_after_days=36),)}, "at most 35 days"),
    ],
)
def test_plans_aws_would_reject_are_refused(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(pulumi_mocks, replace(ARGS, **change))


def test_service_role_trusts_backup_with_managed_policies_only(pulumi_mocks: Harness) -> None:
    def program() -> BackupServiceRole:
        provider = aws.Provider("p", region="ca-central-1", allowed_account_ids=["400000000040"])
        args = BackupServiceRoleArgs(role_name="pgf-backup-service-role", account_id="400000000040", partition="aws")
        return BackupServiceRole("svc", args, pulumi.ResourceOptions(provider=provider))

    role = pulumi_mocks.run(program)
    (recorded,) = pulumi_mocks.of_type("aws:iam/role:Role")
    (statement,) = json.loads(recorded["inputs"]["assumeRolePolicy"])["Statement"]
    # AWS Backup and nothing else, and no condition on keys AWS Backup is not documented to send when it
    # assumes a role (aws:SourceAccount would make the trust false and every job fail).
    assert statement == {
        "Sid": "AwsBackupAssumesThisRole",
        "Effect": "Allow",
        "Principal": {"Service": "backup.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    attached = sorted(
        a["inputs"]["policyArn"] for a in pulumi_mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    ]
    assert not pulumi_mocks.of_type("aws:iam/rolePolicy:RolePolicy")  # no inline policy
    assert pulumi_mocks.resolve(role.role_arn) == "arn:aws:iam::400000000040:role/pgf-backup-service-role"


@pytest.mark.parametrize(
    ("principal", "effect"),
    [
        # AWS Backup's AssumeRole carries no aws:SourceAccount that any AWS page documents: it must still match.
        (Principal(service="backup.amazonaws.com"), "Allow"),
        (Principal(service="ec2.amazonaws.com"), None),
        (Principal(service="backup-storage.amazonaws.com"), None),
        (Principal(arn="arn:aws:iam::400000000040:role/pgf-app"), None),
        (Principal(arn="arn:aws:iam::400000000040:root"), None),
    ],
)
def test_service_role_trust_admits_aws_backup_only(
    pulumi_mocks: Harness, principal: Principal, effect: str | None
) -> None:
    def program() -> BackupServiceRole:
        provider = aws.Provider("p", region="ca-central-1", allowed_account_ids=["400000000040"])
        args = BackupServiceRoleArgs(role_name="pgf-backup-service-role", account_id="400000000040", partition="aws")
        return BackupServiceRole("svc", args, pulumi.ResourceOptions(provider=provider))

    pulumi_mocks.run(program)
    (recorded,) = pulumi_mocks.of_type("aws:iam/role:Role")
    role = "arn:aws:iam::400000000040:role/pgf-backup-service-role"
    match = evaluate_document(recorded["inputs"]["assumeRolePolicy"], Request(principal, "sts:AssumeRole", role))
    assert match.effect == effect
