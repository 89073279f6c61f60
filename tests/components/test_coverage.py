"""CoverageRule on the mock runtime: AWS Config's per-type "protected by a backup plan" rules over the tagged
resources, their NON_COMPLIANT alert, AWS's own data (moto's managed rules, botocore's regions) and PutConfigRule."""

from __future__ import annotations

import glob
import gzip
import json
import re
from dataclasses import replace
from typing import Any

import botocore.session
import pulumi
import pulumi_aws as aws
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters
from pydantic import ValidationError

from components.coverage import COVERAGE_RULES, NOT_OFFERED_IN, CoverageRule, CoverageRuleArgs, rule_page, rules_for
from pgf_backup.config.sections import AwsConfigRules
from tests.conftest import Harness

TOPIC = "arn:aws:sns:ca-central-1:400000000040:pgf-prod-backup-job-alerts"
RULE = "aws:cfg/rule:Rule"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
# PutConfigRule's MaximumExecutionFrequency enum (botocore's config model).
FREQUENCIES = ("One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours")
DEFAULT_SERVICES = ("Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3")
ARGS = CoverageRuleArgs(
    name_prefix="pgf-prod",
    rules=rules_for(DEFAULT_SERVICES, "ca-central-1")[0],
    resource_tags={"backup:enabled": "true"},
    topic_arn=TOPIC,
    tags={"backup:tier": "prod"},
)


def _moto_rules() -> dict[str, Any]:
    found = glob.glob(
        str(
            __import__("pathlib").Path(__import__("moto").__file__).parent
            / "config/resources/aws_managed_rules.json.gz"
        )
    )
    assert found, "moto's managed rule data is missing"
    with gzip.open(found[0]) as handle:
        rules: dict[str, Any] = json.load(handle)["ManagedRules"]
    return rules


def _region_codes() -> dict[str, str]:
    """botocore's region descriptions ("Canada West (Calgary)") -> codes."""
    endpoints = botocore.session.get_session().get_component("data_loader").load_data("endpoints")
    return {r["description"]: code for p in endpoints["partitions"] for code, r in p["regions"].items()}


def _build(harness: Harness, args: CoverageRuleArgs = ARGS) -> CoverageRule:
    def program() -> CoverageRule:
        provider = aws.Provider("p", region="ca-central-1")
        return CoverageRule("coverage", args, pulumi.ResourceOptions(providers={"aws": provider}))

    built: CoverageRule = harness.run(program)
    return built


# ---------------------------------------------------------------------------------------------
# AWS's data


def test_rules_match_aws_managed_rule_data() -> None:
    """Every identifier exists, evaluates the Config type we scope it to, and takes the resourceTags parameter."""
    moto = _moto_rules()
    assert "BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN" not in moto  # an Audit Manager control, not a Config rule
    for service, (identifier, config_type) in COVERAGE_RULES.items():
        rule = moto[identifier]
        assert rule["Resource Types"] == config_type, service
        assert rule["Trigger type"] == "Periodic"
        parameters = {p["Name"]: p for p in rule["Parameters"]}
        assert parameters["resourceTags"]["Type"] == "String" and parameters["resourceTags"]["Optional"]
    # Every per-type rule AWS has is mapped (a new one would show here).
    per_type = {k for k in moto if k.endswith("_RESOURCES_PROTECTED_BY_BACKUP_PLAN")}
    assert per_type == {identifier for identifier, _ in COVERAGE_RULES.values()}


def test_region_gaps_match_aws_managed_rule_data() -> None:
    moto, codes = _moto_rules(), _region_codes()
    for identifier, excluded in NOT_OFFERED_IN.items():
        text = moto[identifier]["AWS Region"]
        match = re.fullmatch(r"All supported AWS regions except (.*) Region", text)
        assert match, text
        names = [n.strip() for n in re.findall(r"[^,]+?\([^)]*\)", match.group(1))]
        assert {codes[n] for n in names} == excluded, identifier


def test_rules_for_the_default_services_in_the_shipped_regions() -> None:
    chosen, notes = rules_for(DEFAULT_SERVICES, "ca-central-1")
    assert set(chosen) == set(DEFAULT_SERVICES) and not notes
    # The copy region has none of them: a note per service, no rule.
    chosen, notes = rules_for(DEFAULT_SERVICES, "ca-west-1")
    assert not chosen and len(notes) == len(DEFAULT_SERVICES)
    assert all("not offered in ca-west-1" in n and "https://docs.aws.amazon.com/config/" in n for n in notes)
    chosen, notes = rules_for(("DocumentDB", "S3"), "ca-central-1")
    assert list(chosen) == ["S3"]
    assert notes == [n for n in notes if "DocumentDB" in n] and len(notes) == 1
    assert rule_page("S3_RESOURCES_PROTECTED_BY_BACKUP_PLAN").endswith("/s3-resources-protected-by-backup-plan.html")


# ---------------------------------------------------------------------------------------------
# The component


def test_one_rule_per_service_scoped_to_the_tag(pulumi_mocks: Harness) -> None:
    built = _build(pulumi_mocks)
    component = pulumi_mocks.named("coverage")
    assert component["type"] == "pgf:backup:CoverageRule"
    rules = {r["inputs"]["name"]: r for r in pulumi_mocks.of_type(RULE)}
    assert (
        sorted(rules) == sorted(built.rule_names) == sorted(f"pgf-prod-coverage-{s.lower()}" for s in DEFAULT_SERVICES)
    )
    for service in DEFAULT_SERVICES:
        rule = rules[f"pgf-prod-coverage-{service.lower()}"]
        identifier, config_type = COVERAGE_RULES[service]
        inputs = rule["inputs"]
        assert rule["parent"] == component["urn"] and rule["provider"].endswith("::p")
        assert inputs["source"] == {"owner": "AWS", "sourceIdentifier": identifier}
        assert inputs["scope"] == {"complianceResourceTypes": [config_type]}
        # InputParameters: resourceTags is a string holding a JSON object.
        assert json.loads(json.loads(inputs["inputParameters"])["resourceTags"]) == {"backup:enabled": "true"}
        assert inputs["maximumExecutionFrequency"] == "TwentyFour_Hours"
        assert inputs["tags"] == {"backup:tier": "prod"}


def test_non_compliant_changes_go_to_the_topic(pulumi_mocks: Harness) -> None:
    built = _build(pulumi_mocks)
    (rule,) = pulumi_mocks.of_type(EVENT_RULE)
    assert rule["inputs"]["name"] == built.event_rule_name == "pgf-prod-coverage-non-compliant"
    pattern = json.loads(rule["inputs"]["eventPattern"])
    assert pattern == {
        "source": ["aws.config"],
        "detail-type": ["Config Rules Compliance Change"],
        "detail": {
            "configRuleName": built.rule_names,
            "newEvaluationResult": {"complianceType": ["NON_COMPLIANT"]},
        },
    }
    (target,) = pulumi_mocks.of_type(TARGET)
    assert target["inputs"]["arn"] == TOPIC and target["inputs"]["rule"] == "pgf-prod-coverage-non-compliant"


def test_inputs_pass_botocore_validation(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    session = botocore.session.get_session()
    config = session.get_service_model("config").operation_model("PutConfigRule").input_shape
    events = session.get_service_model("events")
    assert config is not None
    for rule in pulumi_mocks.of_type(RULE):
        inputs = rule["inputs"]
        params = {
            "ConfigRule": {
                "ConfigRuleName": inputs["name"],
                "Description": inputs["description"],
                "Source": {
                    "Owner": inputs["source"]["owner"],
                    "SourceIdentifier": inputs["source"]["sourceIdentifier"],
                },
                "Scope": {"ComplianceResourceTypes": inputs["scope"]["complianceResourceTypes"]},
                "InputParameters": inputs["inputParameters"],
                "MaximumExecutionFrequency": inputs["maximumExecutionFrequency"],
            },
            "Tags": [{"Key": k, "Value": v} for k, v in inputs["tags"].items()],
        }
        validate_parameters(params, config)
        # The enum and lengths botocore's validator does not check (its model's min/max).
        assert len(inputs["name"]) <= 128 and len(inputs["description"]) <= 256
        assert len(inputs["inputParameters"]) <= 1024
        assert inputs["maximumExecutionFrequency"] in FREQUENCIES
    (rule,) = pulumi_mocks.of_type(EVENT_RULE)
    put_rule = events.operation_model("PutRule").input_shape
    assert put_rule is not None
    rule_params = {
        "Name": rule["inputs"]["name"],
        "EventPattern": rule["inputs"]["eventPattern"],
        "Description": rule["inputs"]["description"],
    }
    validate_parameters(rule_params, put_rule)
    assert re.fullmatch(r"[\.\-_A-Za-z0-9]+", rule_params["Name"]) and len(rule_params["Name"]) <= 64
    (target,) = pulumi_mocks.of_type(TARGET)
    put_targets = events.operation_model("PutTargets").input_shape
    assert put_targets is not None
    validate_parameters(
        {"Rule": target["inputs"]["rule"], "Targets": [{"Id": "topic", "Arn": target["inputs"]["arn"]}]}, put_targets
    )


def test_frequencies_are_botocores() -> None:
    model = botocore.session.get_session().get_service_model("config")
    assert tuple(model.shape_for("MaximumExecutionFrequency").enum) == FREQUENCIES  # type: ignore[attr-defined]


def test_the_validation_can_fail() -> None:
    shape = botocore.session.get_session().get_service_model("config").operation_model("PutConfigRule").input_shape
    assert shape is not None
    with pytest.raises(ParamValidationError):
        validate_parameters({"ConfigRule": {"ConfigRuleName": "x", "InputParameters": {"resourceTags": "{}"}}}, shape)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name_prefix": "pgf prod"}, "name prefix"),
        ({"rules": {}}, "no resource type"),
        ({"rules": {"S3": ("RDS_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::S3::Bucket")}}, "not one of the managed"),
        ({"rules": {"DocumentDB": ("DOCDB", "AWS::RDS::DBCluster")}}, "not one of the managed"),
        ({"resource_tags": {}}, "evaluate every resource"),
        ({"resource_tags": {"backup:enabled": ""}}, "not a tag"),
    ],
)
def test_refused_arguments(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(pulumi_mocks, replace(ARGS, **change))
    assert not pulumi_mocks.of_type(RULE)


def test_config_switch() -> None:
    assert AwsConfigRules().backup_coverage is True
    assert AwsConfigRules.model_validate({"backup_coverage": False}).backup_coverage is False
    with pytest.raises(ValidationError, match="backup_coverage"):
        AwsConfigRules.model_validate({"backup_coverage": "sometimes"})
