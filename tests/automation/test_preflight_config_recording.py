"""Preflight: AWS Config records the types AWS Backup Audit Manager's frameworks evaluate (moto, Stubber).

A warning, never a stop: the frameworks are created anyway and evaluate nothing until recording is on."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pgf_backup.automation.preflight import (
    AUDIT_RECORDED_TYPES,
    config_recording_warnings,
    load_configs,
    missing_recorded_types,
)

LAB_ACCOUNT = "200000000020"
DEPLOY = {"AccessKeyId": "a", "SecretAccessKey": "b", "SessionToken": "c"}
ROLE = "arn:aws:iam::200000000020:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto's AWS, with fake credentials."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ca-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _moto_config(region: str, credentials: Any = None) -> Any:
    return boto3.client("config", region_name=region)


def _recorder(group: dict[str, Any], start: bool = True, region: str = "ca-central-1") -> None:
    client = boto3.client("config", region_name=region)
    client.put_configuration_recorder(
        ConfigurationRecorder={"name": "default", "roleARN": ROLE, "recordingGroup": group}
    )
    client.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-bucket"})
    if start:
        client.start_configuration_recorder(ConfigurationRecorderName="default")


def _lab(project: Any) -> dict[str, Any]:
    return {"lab": load_configs(project, ["lab"])["lab"]}


def _warnings(project: Any) -> list[str]:
    return [str(w) for w in config_recording_warnings(_lab(project), ["lab"], {LAB_ACCOUNT: DEPLOY}, _moto_config)]


def test_all_supported_types_recorded_passes(project: Any, aws: Any) -> None:
    _recorder({"allSupported": True, "includeGlobalResourceTypes": False})
    assert _warnings(project) == []


def test_the_four_backup_types_listed_pass(project: Any, aws: Any) -> None:
    _recorder({"allSupported": False, "resourceTypes": list(AUDIT_RECORDED_TYPES)})
    assert _warnings(project) == []


def test_no_recorder_is_a_warning_naming_account_region_and_types(project: Any, aws: Any) -> None:
    assert _warnings(project) == [
        "stack lab: AWS Config in account 200000000020, ca-central-1 does not record AWS::Backup::BackupPlan, "
        "AWS::Backup::BackupSelection, AWS::Backup::BackupVault, AWS::Backup::RecoveryPoint: AWS Backup Audit "
        "Manager's frameworks are created but evaluate nothing without them (framework status INACTIVE or "
        "PARTIALLY_ACTIVE, no compliance reports). Turn on a recorder that records them (or all supported types) "
        "and start it: https://docs.aws.amazon.com/aws-backup/latest/devguide/turning-on-resource-tracking.html"
    ]


def test_a_stopped_recorder_records_nothing(project: Any, aws: Any) -> None:
    _recorder({"allSupported": True, "includeGlobalResourceTypes": False}, start=False)
    [warning] = _warnings(project)
    assert "does not record AWS::Backup::BackupPlan, AWS::Backup::BackupSelection" in warning


def test_a_partial_list_names_only_the_missing_types(project: Any, aws: Any) -> None:
    _recorder({"allSupported": False, "resourceTypes": ["AWS::Backup::BackupPlan", "AWS::Backup::BackupVault"]})
    [warning] = _warnings(project)
    assert "does not record AWS::Backup::BackupSelection, AWS::Backup::RecoveryPoint:" in warning


def test_a_recorder_in_another_region_does_not_count(project: Any, aws: Any) -> None:
    _recorder({"allSupported": True, "includeGlobalResourceTypes": False}, region="ca-west-1")
    [warning] = _warnings(project)
    assert "account 200000000020, ca-central-1 does not record" in warning


def test_exclusion_strategy() -> None:
    status = {"ConfigurationRecordersStatus": [{"name": "default", "recording": True}]}
    excluding = {
        "ConfigurationRecorders": [
            {
                "name": "default",
                "recordingGroup": {
                    "allSupported": False,
                    "exclusionByResourceTypes": {"resourceTypes": ["AWS::Backup::RecoveryPoint", "AWS::EC2::Volume"]},
                    "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
                },
            }
        ]
    }
    assert missing_recorded_types(excluding, status) == ["AWS::Backup::RecoveryPoint"]
    assert missing_recorded_types(excluding, {"ConfigurationRecordersStatus": []}) == list(AUDIT_RECORDED_TYPES)


def test_access_denied_is_a_warning(project: Any) -> None:
    def denying(region: str, credentials: Any = None) -> Any:
        client = boto3.client("config", region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
        stubber = Stubber(client)
        stubber.add_client_error("describe_configuration_recorders", "AccessDeniedException", "not authorized")
        stubber.activate()
        return client

    [warning] = config_recording_warnings(_lab(project), ["lab"], {LAB_ACCOUNT: DEPLOY}, denying)
    assert str(warning).startswith("stack lab: AWS Config in account 200000000020, ca-central-1: recording unverified")
    assert "config:DescribeConfigurationRecorders" in str(warning)


def test_without_credentials_it_is_unverified(project: Any) -> None:
    warnings = config_recording_warnings(_lab(project), ["lab"], {}, _moto_config)
    assert [str(w) for w in warnings] == [
        "stack lab: AWS Config in account 200000000020, ca-central-1: unverified (preflight holds no deploy role "
        "credentials)"
    ]


def test_audit_disabled_is_not_checked(project: Any) -> None:
    cfg = _lab(project)["lab"]
    off = cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"enabled": False})})
    assert config_recording_warnings({"lab": off}, ["lab"], {LAB_ACCOUNT: DEPLOY}, _moto_config) == []


def test_no_framework_region_is_not_checked(project: Any) -> None:
    # AWS Config does not offer AWS Backup's managed rules in ca-west-1: the audit builder creates no framework there.
    cfg = _lab(project)["lab"]
    west = cfg.model_copy(update={"regions": cfg.regions.model_copy(update={"primary": "ca-west-1"})})
    asked = config_recording_warnings(
        {"lab": west}, ["lab"], {LAB_ACCOUNT: DEPLOY}, lambda region, credentials=None: pytest.fail("AWS Config asked")
    )
    assert asked == []


def test_an_account_and_region_is_asked_once(project: Any, aws: Any) -> None:
    lab = _lab(project)["lab"]
    seen: list[str] = []

    def counting(region: str, credentials: Any = None) -> Any:
        seen.append(region)
        return _moto_config(region)

    warnings = config_recording_warnings({"lab": lab, "lab2": lab}, ["lab", "lab2"], {LAB_ACCOUNT: DEPLOY}, counting)
    assert seen == ["ca-central-1"]
    assert [w.stack for w in warnings] == ["lab", "lab2"]
