"""BackupAlarms on the mock runtime: AWS Backup's metrics alarmed to the alert topic, valid for PutMetricAlarm."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import botocore.session
import pulumi
import pulumi_aws as aws
import pytest
from botocore.exceptions import ParamValidationError
from botocore.model import StringShape, StructureShape
from botocore.validate import validate_parameters
from pydantic import ValidationError

from components import BackupAlarms, BackupAlarmsArgs, FreshnessArgs
from pgf_backup.config.sections import Alarms
from tests.conftest import Harness

TOPIC = "arn:aws:sns:ca-central-1:400000000040:pgf-prod-backup-job-alerts"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ARGS = BackupAlarmsArgs(
    topic_arn=TOPIC,
    vault_names=("pgf-prod", "pgf-prod-extra"),
    freshness=(FreshnessArgs("prod", "pgf-prod", "backup", 26),),
    tags={"backup:tier": "prod"},
)
# The metric names of https://docs.aws.amazon.com/aws-backup/latest/devguide/cloudwatch.html.
FAILURES = {
    "backup-failed": "NumberOfBackupJobsFailed",
    "backup-aborted": "NumberOfBackupJobsAborted",
    "backup-expired": "NumberOfBackupJobsExpired",
    "copy-failed": "NumberOfCopyJobsFailed",
    "restore-failed": "NumberOfRestoreJobsFailed",
}


def _put_metric_alarm() -> StructureShape:
    shape = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricAlarm").input_shape
    assert shape is not None
    return shape


def _enum(shape: StructureShape, member: str) -> list[str]:
    found = shape.members[member]
    assert isinstance(found, StringShape)
    return list(found.enum)


def _build(harness: Harness, args: BackupAlarmsArgs = ARGS) -> BackupAlarms:
    def program() -> BackupAlarms:
        provider = aws.Provider("p", region="ca-central-1")
        return BackupAlarms("alarms", args, pulumi.ResourceOptions(providers={"aws": provider}))

    built: BackupAlarms = harness.run(program)
    return built


def _alarms(harness: Harness) -> dict[str, dict[str, Any]]:
    return {a["inputs"]["name"]: a["inputs"] for a in harness.of_type(ALARM)}


def test_every_failure_alarm_per_vault(pulumi_mocks: Harness) -> None:
    built = _build(pulumi_mocks)
    component = pulumi_mocks.named("alarms")
    assert component["type"] == "pgf:backup:BackupAlarms"
    children = [r for r in pulumi_mocks.resources if r["parent"] == component["urn"]]
    assert len(children) == 2 * len(FAILURES) + 1 and all(r["type"] == ALARM for r in children)
    assert all(r["provider"].endswith("::p") for r in children)
    alarms = _alarms(pulumi_mocks)
    assert sorted(built.alarm_names) == sorted(alarms)
    for vault in ARGS.vault_names:
        for suffix, metric in FAILURES.items():
            alarm = alarms[f"{vault}-{suffix}"]
            assert alarm["namespace"] == "AWS/Backup"
            assert alarm["metricName"] == metric
            assert alarm["dimensions"] == {"BackupVaultName": vault}
            assert alarm["statistic"] == "Sum"
            assert alarm["period"] == 3600 and alarm["evaluationPeriods"] == 1
            assert alarm["threshold"] == 1
            assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert alarm["treatMissingData"] == "notBreaching"
            assert alarm["alarmActions"] == [TOPIC]
            assert alarm["tags"] == {"backup:tier": "prod"}


def test_freshness_alarm_fires_on_a_silent_window(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    alarm = _alarms(pulumi_mocks)["pgf-prod-no-recovery-point"]
    assert alarm["namespace"] == "AWS/Backup" and alarm["metricName"] == "NumberOfBackupJobsCompleted"
    assert alarm["dimensions"] == {"BackupVaultName": "pgf-prod"}
    assert alarm["statistic"] == "Sum" and alarm["period"] == 3600
    # Every one of the 26 hours empty: nothing within 26 hours.
    assert alarm["evaluationPeriods"] == 26 and alarm["datapointsToAlarm"] == 26
    assert alarm["threshold"] == 1 and alarm["comparisonOperator"] == "LessThanThreshold"
    assert alarm["treatMissingData"] == "breaching"
    assert alarm["alarmActions"] == [TOPIC] and alarm["okActions"] == [TOPIC]


def test_copy_freshness_reads_recovery_points(pulumi_mocks: Harness) -> None:
    args = replace(ARGS, vault_names=("pgf-lab",), freshness=(FreshnessArgs("lab", "pgf-lab", "copy", 30),))
    _build(pulumi_mocks, args)
    alarm = _alarms(pulumi_mocks)["pgf-lab-no-recovery-point"]
    assert alarm["metricName"] == "NumberOfRecoveryPointsCompleted"
    assert alarm["evaluationPeriods"] == 30 and alarm["treatMissingData"] == "breaching"


def test_every_alarm_passes_put_metric_alarm_validation(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    shape = _put_metric_alarm()
    names = {
        "name": "AlarmName",
        "alarmDescription": "AlarmDescription",
        "namespace": "Namespace",
        "metricName": "MetricName",
        "statistic": "Statistic",
        "period": "Period",
        "evaluationPeriods": "EvaluationPeriods",
        "datapointsToAlarm": "DatapointsToAlarm",
        "threshold": "Threshold",
        "comparisonOperator": "ComparisonOperator",
        "treatMissingData": "TreatMissingData",
        "alarmActions": "AlarmActions",
        "okActions": "OKActions",
    }
    alarms = _alarms(pulumi_mocks)
    assert alarms
    for inputs in alarms.values():
        unmapped = set(inputs) - set(names) - {"dimensions", "tags"}
        assert not unmapped, f"inputs with no PutMetricAlarm parameter mapped: {unmapped}"
        params: dict[str, Any] = {api: inputs[key] for key, api in names.items() if key in inputs}
        params["Dimensions"] = [{"Name": k, "Value": v} for k, v in inputs["dimensions"].items()]
        params["Tags"] = [{"Key": k, "Value": v} for k, v in inputs["tags"].items()]
        validate_parameters(params, shape)
        # The enums botocore's validator does not check.
        assert params["TreatMissingData"] in {"breaching", "notBreaching", "ignore", "missing"}
        assert params["ComparisonOperator"] in _enum(shape, "ComparisonOperator")
        assert params["Statistic"] in _enum(shape, "Statistic")
        assert params["Period"] * params["EvaluationPeriods"] <= 604_800


def test_the_validation_can_fail() -> None:
    shape = _put_metric_alarm()
    with pytest.raises(ParamValidationError):
        validate_parameters({"AlarmName": "x", "EvaluationPeriods": 0, "ComparisonOperator": "x"}, shape)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"failure_period_seconds": 90}, "multiple of 60"),
        ({"failure_period_seconds": 300, "failure_evaluation_periods": 289}, "1 day"),
        ({"failure_period_seconds": 86_400, "failure_evaluation_periods": 8}, "7 days"),
        ({"failure_threshold": 0}, "at least 1"),
        ({"vault_names": ("pgf prod",)}, "not a backup vault name"),
        ({"freshness": (FreshnessArgs("prod", "pgf-prod", "backup", 169),)}, "1 to 168"),
        ({"freshness": (FreshnessArgs("prod", "pgf-prod", "restore", 24),)}, "freshness source"),
    ],
)
def test_refused_arguments(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(pulumi_mocks, replace(ARGS, **change))
    assert not pulumi_mocks.of_type(ALARM)


def test_config_defaults() -> None:
    alarms = Alarms()
    assert alarms.enabled is True
    assert (alarms.rpo_hours.lab, alarms.rpo_hours.dev, alarms.rpo_hours.prod) == (24, 24, 24)
    assert alarms.grace_hours == 2 and alarms.window_hours("prod") == 26
    assert (alarms.failure_threshold, alarms.failure_period_minutes, alarms.failure_evaluation_periods) == (1, 60, 1)
    assert Alarms.model_validate({"rpo_hours": {"prod": 12}}).window_hours("prod") == 14


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rpo_hours": {"prod": 0}}, "greater than or equal to 1"),
        ({"rpo_hours": {"prod": 168}}, "rpo_hours.prod \\+ grace_hours is 170"),
        ({"failure_period_minutes": 5, "failure_evaluation_periods": 300}, "1 day"),
        ({"treshold": 2}, "Extra inputs"),
    ],
)
def test_config_refuses_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Alarms.model_validate(values)
