"""RestoreTests and RestoreValidator on the mock runtime: plan and selections valid for AWS Backup's API, the rule
invoking the validator's alias, and the validator's least-privilege role."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import botocore.session
import pulumi
import pulumi_aws as aws
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from components.restore_testing import (
    RESTORED_PREFIX,
    RestoreTests,
    RestoreTestsArgs,
    RestoreValidator,
    RestoreValidatorArgs,
    SelectionArgs,
)
from pgf_backup.lambda_package import RESTORE_TESTING, build_package
from tests.conftest import ROOT, Harness

REGION = "ca-central-1"
ACCOUNT = "100000000010"
VAULT = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:pgf-prod"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-service-role"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:pgf-backup-job-alerts"
PLAN_TYPE = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
SELECTION_TYPE = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
TESTS = RestoreTestsArgs(
    plan_name="pgf_prod_restore_tests",
    schedule="cron(0 5 ? * SUN *)",
    timezone="America/Toronto",
    start_window_hours=24,
    selection_window_days=7,
    recovery_point_types=("SNAPSHOT",),
    include_vault_arns=[VAULT],
    selections=[
        SelectionArgs("pgf_prod_s3", "S3", ROLE, 24),
        SelectionArgs(
            "pgf_prod_rds",
            "RDS",
            ROLE,
            24,
            {
                "dbSubnetGroupName": "isolated",
                "vpcSecurityGroupIds": '["sg-0123456789abcdef0"]',
                "publiclyAccessible": "false",
            },
        ),
    ],
    tags={"backup:tier": "prod"},
)


def _model(operation: str) -> Any:
    return botocore.session.get_session().get_service_model("backup").operation_model(operation).input_shape


def _build_tests(harness: Harness, args: RestoreTestsArgs = TESTS) -> RestoreTests:
    def program() -> RestoreTests:
        provider = aws.Provider("p", region=REGION, allowed_account_ids=[ACCOUNT])
        return RestoreTests("tests", args, pulumi.ResourceOptions(provider=provider))

    built: RestoreTests = harness.run(program)
    return built


def test_plan_and_selections(pulumi_mocks: Harness) -> None:
    built = _build_tests(pulumi_mocks)
    (plan,) = pulumi_mocks.of_type(PLAN_TYPE)
    inputs = plan["inputs"]
    assert inputs["name"] == "pgf_prod_restore_tests"
    assert inputs["recoveryPointSelection"] == {
        "algorithm": "LATEST_WITHIN_WINDOW",
        "includeVaults": [VAULT],
        "recoveryPointTypes": ["SNAPSHOT"],
        "selectionWindowDays": 7,
    }
    assert inputs["tags"] == {"backup:tier": "prod"}
    selections = {s["inputs"]["protectedResourceType"]: s["inputs"] for s in pulumi_mocks.of_type(SELECTION_TYPE)}
    assert set(selections) == {"S3", "RDS"}
    for selection in selections.values():
        assert selection["restoreTestingPlanName"] == "pgf_prod_restore_tests"  # wired to the plan
        assert selection["protectedResourceArns"] == ["*"]
        assert selection["iamRoleArn"] == ROLE
    assert selections["RDS"]["restoreMetadataOverrides"]["publiclyAccessible"] == "false"
    assert "restoreMetadataOverrides" not in selections["S3"]
    assert pulumi_mocks.resolve(built.plan_arn).endswith(":restore-testing-plan:pgf_prod_restore_tests")


def test_plan_and_selections_pass_botocore_validation(pulumi_mocks: Harness) -> None:
    _build_tests(pulumi_mocks)
    (plan,) = pulumi_mocks.of_type(PLAN_TYPE)
    p = plan["inputs"]
    selection = p["recoveryPointSelection"]
    params = {
        "RestoreTestingPlan": {
            "RestoreTestingPlanName": p["name"],
            "ScheduleExpression": p["scheduleExpression"],
            "ScheduleExpressionTimezone": p["scheduleExpressionTimezone"],
            "StartWindowHours": p["startWindowHours"],
            "RecoveryPointSelection": {
                "Algorithm": selection["algorithm"],
                "IncludeVaults": selection["includeVaults"],
                "RecoveryPointTypes": selection["recoveryPointTypes"],
                "SelectionWindowDays": selection["selectionWindowDays"],
            },
        },
        "Tags": p["tags"],
    }
    shape = _model("CreateRestoreTestingPlan")
    validate_parameters(params, shape)
    algorithm = shape.members["RestoreTestingPlan"].members["RecoveryPointSelection"].members["Algorithm"]
    assert selection["algorithm"] in algorithm.enum
    for s in pulumi_mocks.of_type(SELECTION_TYPE):
        i = s["inputs"]
        request: dict[str, Any] = {
            "RestoreTestingPlanName": i["restoreTestingPlanName"],
            "RestoreTestingSelection": {
                "RestoreTestingSelectionName": i["name"],
                "ProtectedResourceType": i["protectedResourceType"],
                "ProtectedResourceArns": i["protectedResourceArns"],
                "IamRoleArn": i["iamRoleArn"],
                "ValidationWindowHours": i["validationWindowHours"],
            },
        }
        if "restoreMetadataOverrides" in i:
            request["RestoreTestingSelection"]["RestoreMetadataOverrides"] = i["restoreMetadataOverrides"]
        unmapped = set(i) - {
            "restoreTestingPlanName",
            "name",
            "protectedResourceType",
            "protectedResourceArns",
            "iamRoleArn",
            "validationWindowHours",
            "restoreMetadataOverrides",
        }
        assert not unmapped
        validate_parameters(request, _model("CreateRestoreTestingSelection"))


def test_the_validation_can_fail() -> None:
    with pytest.raises(ParamValidationError):
        validate_parameters(
            {"RestoreTestingPlan": {"RestoreTestingPlanName": "x", "ScheduleExpression": 5}},
            _model("CreateRestoreTestingPlan"),
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"plan_name": "pgf-prod"}, "letters, digits or underscores"),
        ({"plan_name": "p" * 51}, "1 to 50"),
        ({"start_window_hours": 169}, "1 to 168"),
        ({"selection_window_days": 0}, "1 to 365"),
        ({"include_vault_arns": []}, "at least one vault"),
        ({"selections": []}, "restores nothing"),
        (
            {"selections": [SelectionArgs("a", "S3", ROLE, 1), SelectionArgs("b", "S3", ROLE, 1)]},
            "one per resource type",
        ),
        ({"selections": [SelectionArgs("a", "S3", ROLE, 169)]}, "0 to 168"),
    ],
)
def test_refused_arguments(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build_tests(pulumi_mocks, replace(TESTS, **change))
    assert not pulumi_mocks.of_type(PLAN_TYPE)


# ---------------------------------------------------------------------------------------------
# The validation function

PLAN_ARN = f"arn:aws:backup:{REGION}:{ACCOUNT}:restore-testing-plan:pgf_prod_restore_tests"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


def _validator_args() -> RestoreValidatorArgs:
    package = build_package(ROOT, spec=RESTORE_TESTING)
    return RestoreValidatorArgs(
        function_name="pgf-backup-restore-validator",
        role_name="pgf-backup-restore-validator",
        account_id=ACCOUNT,
        region=REGION,
        partition="aws",
        code_path=str(ROOT / package.path),
        code_sha256=package.sha256,
        plan_arns=[PLAN_ARN],
        plan_tiers=json.dumps({PLAN_ARN: "prod"}),
        alarm_topic_arn=TOPIC,
        log_retention_days=365,
        metric_namespace="PGF/Backup",
        evidence_bucket="pgf-backup-reports-100000000010",
        evidence_key_arn=KEY,
        evidence_prefix=f"restore-tests/{ACCOUNT}",
    )


def _build_validator(harness: Harness, args: RestoreValidatorArgs | None = None) -> RestoreValidator:
    def program() -> RestoreValidator:
        provider = aws.Provider("p", region=REGION, allowed_account_ids=[ACCOUNT])
        return RestoreValidator("validator", args or _validator_args(), pulumi.ResourceOptions(provider=provider))

    built: RestoreValidator = harness.run(program)
    return built


def _one(harness: Harness, type_: str) -> dict[str, Any]:
    (found,) = harness.of_type(type_)
    inputs: dict[str, Any] = found["inputs"]
    return inputs


def test_rule_invokes_the_alias_on_completed_restore_tests(pulumi_mocks: Harness) -> None:
    built = _build_validator(pulumi_mocks)
    rule = _one(pulumi_mocks, "aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule["eventPattern"]) == {
        "source": ["aws.backup"],
        "detail-type": ["Restore Job State Change"],
        "detail": {"status": ["COMPLETED"], "restoreTestingPlanArn": [PLAN_ARN]},
    }
    target = _one(pulumi_mocks, "aws:cloudwatch/eventTarget:EventTarget")
    alias_arn = pulumi_mocks.resolve(built.alias_arn)
    assert target["rule"] == rule["name"] and target["arn"] == alias_arn
    assert alias_arn.endswith(":function:pgf-backup-restore-validator:live")
    queue_arn = pulumi_mocks.resolve(built.queue_arn)
    assert target["deadLetterConfig"] == {"arn": queue_arn}
    permission = _one(pulumi_mocks, "aws:lambda/permission:Permission")
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["qualifier"] == "live" and permission["function"] == "pgf-backup-restore-validator"
    assert permission["sourceArn"] == pulumi_mocks.resolve(built.rule_arn)
    queue_policy = json.loads(_one(pulumi_mocks, "aws:sqs/queuePolicy:QueuePolicy")["policy"])
    (statement,) = queue_policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": pulumi_mocks.resolve(built.rule_arn)}}
    function = _one(pulumi_mocks, "aws:lambda/function:Function")
    assert function["handler"] == "pgf_backup.restore_testing.validator.handler"
    assert function["publish"] is True and function["deadLetterConfig"] == {"targetArn": queue_arn}
    assert function["environment"]["variables"]["EVIDENCE_BUCKET"] == "pgf-backup-reports-100000000010"
    assert json.loads(function["environment"]["variables"]["PLAN_TIERS"]) == {PLAN_ARN: "prod"}
    logs = _one(pulumi_mocks, "aws:cloudwatch/logGroup:LogGroup")
    assert logs == {**logs, "name": "/aws/lambda/pgf-backup-restore-validator", "retentionInDays": 365}
    alarms = {a["inputs"]["name"]: a["inputs"] for a in pulumi_mocks.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == {"pgf-backup-restore-validator-errors", "pgf-backup-restore-validator-dead-letters"}
    assert all(a["alarmActions"] == [TOPIC] for a in alarms.values())


def _policy(harness: Harness) -> dict[str, dict[str, Any]]:
    document = json.loads(_one(harness, "aws:iam/rolePolicy:RolePolicy")["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


def test_role_is_least_privilege(pulumi_mocks: Harness) -> None:
    _build_validator(pulumi_mocks)
    role = _one(pulumi_mocks, "aws:iam/role:Role")
    assert role["name"] == "pgf-backup-restore-validator"
    trust = json.loads(role["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    statements = _policy(pulumi_mocks)
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert statements["WriteEvidence"] == {
        "Sid": "WriteEvidence",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::pgf-backup-reports-100000000010/restore-tests/{ACCOUNT}/*",
    }
    assert statements["EncryptEvidence"]["Action"] == "kms:GenerateDataKey"
    assert statements["EncryptEvidence"]["Resource"] == KEY
    assert statements["PublishRestoreMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "PGF/Backup"}}
    assert set(statements["RestoreJobs"]["Action"]) == {
        "backup:DescribeRestoreJob",
        "backup:GetRestoreJobMetadata",
        "backup:PutRestoreValidationResult",
    }
    # Read-only on the restored resources, by AWS's restore-test name prefix.
    assert statements["ReadRestoredObjects"]["Resource"] == f"arn:aws:s3:::{RESTORED_PREFIX}-*/*"
    assert statements["ListRestoredBuckets"]["Resource"] == [f"arn:aws:s3:::{RESTORED_PREFIX}-*"]
    every_action = [
        a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    writes = [a for a in every_action if not a.split(":")[1].startswith(("Describe", "Get", "List"))]
    assert sorted(writes) == sorted(
        [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "sqs:SendMessage",
            "backup:PutRestoreValidationResult",
            "cloudwatch:PutMetricData",
            "s3:PutObject",
            "kms:GenerateDataKey",
        ]
    )
    assert not any("*" in a for a in every_action)


def test_without_a_bucket_no_evidence_permissions(pulumi_mocks: Harness) -> None:
    args = replace(_validator_args(), evidence_bucket=None, evidence_key_arn=None, evidence_prefix="")
    _build_validator(pulumi_mocks, args)
    statements = _policy(pulumi_mocks)
    assert "WriteEvidence" not in statements and "EncryptEvidence" not in statements
    variables = _one(pulumi_mocks, "aws:lambda/function:Function")["environment"]["variables"]
    assert "EVIDENCE_BUCKET" not in variables


def test_validator_refuses_an_empty_plan_list(pulumi_mocks: Harness) -> None:
    with pytest.raises(ValueError, match="no restore testing plan"):
        _build_validator(pulumi_mocks, replace(_validator_args(), plan_arns=[]))
