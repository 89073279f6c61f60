"""Dashboards and the cross-account observability pieces on the mock runtime: body shape (CloudWatch's dashboard
body syntax), botocore validation of PutDashboard / CreateSink / PutSinkPolicy / CreateLink, and the sink policy
from both sides."""

from __future__ import annotations

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

from components.dashboards import (
    AWS_NAMESPACES,
    JOB_METRICS,
    BackupDashboard,
    BackupDashboardArgs,
    CoverageSource,
    DashboardRow,
    MonitoringLink,
    MonitoringLinkArgs,
    MonitoringSink,
    MonitoringSinkArgs,
    OrganizationDashboard,
    RestoreMetrics,
    metric_filter,
    sink_policy,
)
from pgf_backup.config.observability import Dashboards
from tests.conftest import Harness

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
SINK, SINK_POLICY, LINK = "aws:oam/sink:Sink", "aws:oam/sinkPolicy:SinkPolicy", "aws:oam/link:Link"
WORKLOADS = ("200000000020", "300000000030", "400000000040")
FOREIGN = "999999999999"
SINK_ARN = "arn:aws:oam:ca-central-1:100000000010:sink/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
ROWS = (
    DashboardRow(
        "prod account, ca-central-1",
        "ca-central-1",
        coverage=CoverageSource("pgf-prod-coverage-non-compliant", ("pgf-prod-coverage-s3",)),
        restore_test_tiers=("prod",),
    ),
    DashboardRow("prod account, ca-west-1", "ca-west-1"),
)
RESTORE = RestoreMetrics("PGF/Backup", "RestoreTestDurationSeconds", "RestoreTestRecoveryPointAgeHours")
SHARED = (*AWS_NAMESPACES, "PGF/Backup")
ARGS = BackupDashboardArgs(
    dashboard_name="pgf-prod-backup", title="AWS Backup: prod", rows=ROWS, description="d", restore_metrics=RESTORE
)
ORG_ARGS = replace(
    ARGS,
    dashboard_name="pgf-organization-backup",
    rows=tuple(
        DashboardRow(
            f"{a} {r}",
            r,
            account_id=a,
            coverage=CoverageSource("pgf-prod-coverage-non-compliant") if r == "ca-central-1" else None,
            restore_test_tiers=("prod",),
        )
        for a in WORKLOADS
        for r in ("ca-central-1", "ca-west-1")
    ),
)
# AWS Backup's metric names (https://docs.aws.amazon.com/aws-backup/latest/devguide/cloudwatch.html).
DOCUMENTED = {
    *(f"NumberOfBackupJobs{s}" for s in ("Created", "Pending", "Running", "Aborted", "Completed", "Failed", "Expired")),
    *(f"NumberOfCopyJobs{s}" for s in ("Created", "Running", "Completed", "Failed")),
    *(f"NumberOfRestoreJobs{s}" for s in ("Pending", "Running", "Completed", "Failed")),
    *(f"NumberOfRecoveryPoints{s}" for s in ("Completed", "Partial", "Expired", "Deleting", "Cold")),
}


def _model(service: str, operation: str) -> Any:
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    assert shape is not None
    return shape


def _build(harness: Harness, args: BackupDashboardArgs = ARGS, cls: type[BackupDashboard] = BackupDashboard) -> Any:
    def program() -> BackupDashboard:
        provider = aws.Provider("p", region="ca-central-1")
        return cls("dash", args, pulumi.ResourceOptions(providers={"aws": provider}))

    return harness.run(program)


def _body(harness: Harness) -> dict[str, Any]:
    (dashboard,) = harness.of_type(DASHBOARD)
    body: dict[str, Any] = json.loads(dashboard["inputs"]["dashboardBody"])
    return body


def _expressions(widget: dict[str, Any]) -> list[str]:
    return [m[0]["expression"] for m in widget["properties"]["metrics"] if isinstance(m[0], dict)]


def _check_body_shape(body: dict[str, Any]) -> None:
    """The rules of "Dashboard Body Structure and Syntax" that apply to what we write."""
    assert set(body) <= {"widgets", "variables", "start", "end", "periodOverride"}
    assert re.fullmatch(r"-P\d+D", body["start"]) and body["periodOverride"] in {"auto", "inherit"}
    assert 0 < len(body["widgets"]) <= 500
    for widget in body["widgets"]:
        assert widget["type"] in {"metric", "text"}
        assert 0 <= widget["x"] <= 23 and 1 <= widget["width"] <= 24 and widget["x"] + widget["width"] <= 24
        assert widget["y"] >= 0 and 1 <= widget["height"] <= 1000
        props = widget["properties"]
        if widget["type"] == "text":
            assert set(props) == {"markdown"} and props["markdown"]
            continue
        assert props["region"] and props["title"]
        assert props["view"] in {"timeSeries", "singleValue", "gauge", "bar", "pie", "table"}
        assert props["period"] >= 60 and props["period"] % 60 == 0
        assert props["stat"] in {"SampleCount", "Average", "Sum", "Minimum", "Maximum"}
        assert 1 <= len(props["metrics"]) <= 500
        ids = [m[0]["id"] for m in props["metrics"] if isinstance(m[0], dict)]
        assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z][A-Za-z0-9_]*", i) for i in ids)
        for metric in props["metrics"]:
            if isinstance(metric[0], dict):
                assert set(metric[0]) <= {"expression", "label", "id"}
            else:
                namespace, name, *dims = metric
                rendering = dims.pop() if dims and isinstance(dims[-1], dict) else {}
                assert isinstance(namespace, str) and isinstance(name, str) and len(dims) % 2 == 0
                assert set(rendering) <= {"accountId", "label", "stat", "period", "color", "visible", "yAxis", "region"}
    # No two widgets overlap.
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        mine = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & mine
        cells |= mine


# ---------------------------------------------------------------------------------------------
# Dashboards


def test_account_dashboard(pulumi_mocks: Harness) -> None:
    built = _build(pulumi_mocks)
    component = pulumi_mocks.named("dash")
    assert component["type"] == "pgf:backup:BackupDashboard"
    (dashboard,) = pulumi_mocks.of_type(DASHBOARD)
    assert dashboard["parent"] == component["urn"] and dashboard["provider"].endswith("::p")
    assert dashboard["inputs"]["dashboardName"] == built.dashboard_name == "pgf-prod-backup"
    assert pulumi_mocks.resolve(built.dashboard_arn) == "arn:aws:cloudwatch::000000000000:dashboard/pgf-prod-backup"
    body = _body(pulumi_mocks)
    _check_body_shape(body)
    assert body["start"] == "-P14D"
    metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    # Per region: the four job widgets; the primary region adds coverage and restore tests.
    assert len(metric_widgets) == 4 + 6
    assert {w["properties"]["region"] for w in metric_widgets} == {"ca-central-1", "ca-west-1"}
    searched = {
        m.group(1) for w in metric_widgets for e in _expressions(w) for m in [re.search(r'MetricName="(\w+)"', e)] if m
    }
    backup_metrics = {name for metrics in JOB_METRICS.values() for name, _ in metrics}
    assert backup_metrics <= DOCUMENTED and backup_metrics <= searched
    for widget in metric_widgets:
        for expression in _expressions(widget):
            assert ":aws.AccountId" not in expression  # only a monitoring account may search by account
            if "AWS/Backup" in expression:
                assert expression.startswith("SEARCH('{AWS/Backup,BackupVaultName} MetricName=")
                assert expression.endswith("', 'Sum', 3600)")
    texts = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    assert "No coverage rule in this account and region." in "".join(texts)  # the copy region's row
    assert any("None run in this account." in t for t in texts)


def test_coverage_and_restore_widgets(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    widgets = {w["properties"]["title"]: w for w in _body(pulumi_mocks)["widgets"] if w["type"] == "metric"}
    coverage = widgets["Coverage: changes to NON_COMPLIANT"]["properties"]
    assert coverage["metrics"] == [
        [
            "AWS/Events",
            "TriggeredRules",
            "RuleName",
            "pgf-prod-coverage-non-compliant",
            {"label": "resources found not protected by a plan", "stat": "Sum"},
        ]
    ]
    restore = widgets["Last restore test"]["properties"]
    assert restore["view"] == "singleValue" and restore["stat"] == "Maximum"
    assert _expressions(widgets["Last restore test"]) == [
        'SEARCH(\'{PGF/Backup,Tier,ResourceType} MetricName="RestoreTestDurationSeconds" (Tier="prod")\', '
        "'Maximum', 3600)",
        'SEARCH(\'{PGF/Backup,Tier,ResourceType} MetricName="RestoreTestRecoveryPointAgeHours" (Tier="prod")\', '
        "'Maximum', 3600)",
    ]


def test_organization_dashboard_reads_each_account(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, ORG_ARGS, OrganizationDashboard)
    assert pulumi_mocks.named("dash")["type"] == "pgf:backup:OrganizationDashboard"
    body = _body(pulumi_mocks)
    _check_body_shape(body)
    labels = [
        w["properties"]["markdown"]
        for w in body["widgets"]
        if w["type"] == "text" and "###" in w["properties"]["markdown"]
    ]
    assert labels == [f"### {a} {r}" for a in WORKLOADS for r in ("ca-central-1", "ca-west-1")]
    rows: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], dict):
                account = re.search(r':aws\.AccountId="(\d{12})"', metric[0]["expression"])
                assert account, metric
                rows.setdefault(account.group(1), set()).add(widget["properties"]["region"])
            else:
                assert metric[-1]["accountId"] in WORKLOADS  # the coverage metric of each account
    assert rows == {a: {"ca-central-1", "ca-west-1"} for a in WORKLOADS}


def test_dashboard_passes_put_dashboard_validation(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, ORG_ARGS, OrganizationDashboard)
    (dashboard,) = pulumi_mocks.of_type(DASHBOARD)
    params = {
        "DashboardName": dashboard["inputs"]["dashboardName"],
        "DashboardBody": dashboard["inputs"]["dashboardBody"],
    }
    validate_parameters(params, _model("cloudwatch", "PutDashboard"))
    # PutDashboard: the name "can contain only alphanumerics, dash (-), and underscore (_)", at most 255.
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", params["DashboardName"])
    with pytest.raises(ParamValidationError):
        validate_parameters({"DashboardName": "x"}, _model("cloudwatch", "PutDashboard"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dashboard_name": "pgf prod"}, "letters, digits"),
        ({"rows": ()}, "no row"),
        ({"period_seconds": 90}, "multiple of 60"),
        ({"range_days": 0}, "1 to 455"),
        ({"rows": (ROWS[0], ROWS[0])}, "two rows"),
        ({"rows": (replace(ROWS[0], account_id="4000"),)}, "not an account id"),
        ({"rows": (replace(ROWS[0], coverage=CoverageSource("bad name")),)}, "not a rule name"),
        ({"rows": (replace(ROWS[0], restore_test_tiers=("Prod'",)),)}, "not a tier"),
        ({"restore_metrics": None}, "no restore_metrics"),
    ],
)
def test_refused_dashboards(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(pulumi_mocks, replace(ARGS, **change))
    assert not pulumi_mocks.of_type(DASHBOARD)


def test_organization_rows_name_their_account(pulumi_mocks: Harness) -> None:
    with pytest.raises(ValueError, match="rows without an account id"):
        _build(pulumi_mocks, ARGS, OrganizationDashboard)
    assert not pulumi_mocks.of_type(DASHBOARD)


def test_config() -> None:
    assert (Dashboards().period_seconds, Dashboards().range_days, Dashboards().cross_account) == (3600, 14, True)
    with pytest.raises(ValidationError, match="multiple of 60"):
        Dashboards.model_validate({"period_seconds": 90})
    with pytest.raises(ValidationError, match="less than or equal to 455"):
        Dashboards.model_validate({"range_days": 456})
    with pytest.raises(ValidationError, match="Extra inputs"):
        Dashboards.model_validate({"widgets": []})


# ---------------------------------------------------------------------------------------------
# Cross-account observability


def _admits(policy: dict[str, Any], account: str, action: str, resource_types: list[str]) -> bool:
    """Whether an Allow statement of this sink policy matches (the shapes sink_policy writes)."""
    for statement in policy["Statement"]:
        principals = statement["Principal"]["AWS"]
        if statement["Effect"] != "Allow" or f"arn:aws:iam::{account}:root" not in principals:
            continue
        if action not in statement["Action"]:
            continue
        allowed = statement["Condition"]["ForAllValues:StringEquals"]["oam:ResourceTypes"]
        if all(t in allowed for t in resource_types):
            return True
    return False


def test_sink_policy_admits_workloads_metrics_only() -> None:
    policy = sink_policy("aws", WORKLOADS)
    for account in WORKLOADS:
        assert _admits(policy, account, "oam:CreateLink", ["AWS::CloudWatch::Metric"])
        assert _admits(policy, account, "oam:UpdateLink", ["AWS::CloudWatch::Metric"])
        assert not _admits(policy, account, "oam:CreateLink", ["AWS::CloudWatch::Metric", "AWS::Logs::LogGroup"])
        assert not _admits(policy, account, "oam:CreateLink", ["AWS::XRay::Trace"])
    assert not _admits(policy, FOREIGN, "oam:CreateLink", ["AWS::CloudWatch::Metric"])
    assert not _admits(policy, "100000000010", "oam:CreateLink", ["AWS::CloudWatch::Metric"])
    text = json.dumps(policy)
    assert '"*"' not in text.replace('"Resource": "*"', "")  # no wildcard principal or action


def test_monitoring_sink(pulumi_mocks: Harness) -> None:
    def program() -> MonitoringSink:
        provider = aws.Provider("p", region="ca-central-1", allowed_account_ids=["100000000010"])
        return MonitoringSink(
            "sink", MonitoringSinkArgs("pgf-backup-monitoring", WORKLOADS), pulumi.ResourceOptions(provider=provider)
        )

    built: MonitoringSink = pulumi_mocks.run(program)
    (sink,) = pulumi_mocks.of_type(SINK)
    (policy,) = pulumi_mocks.of_type(SINK_POLICY)
    component = pulumi_mocks.named("sink")
    assert sink["parent"] == policy["parent"] == component["urn"]
    arn = pulumi_mocks.resolve(built.sink_arn)
    assert re.fullmatch(r"arn:aws:oam:ca-central-1:100000000010:sink/[0-9a-f-]{36}", arn)
    assert policy["inputs"]["sinkIdentifier"] == arn
    assert json.loads(policy["inputs"]["policy"]) == sink_policy("aws", WORKLOADS)
    validate_parameters({"Name": sink["inputs"]["name"]}, _model("oam", "CreateSink"))
    validate_parameters({"SinkIdentifier": arn, "Policy": policy["inputs"]["policy"]}, _model("oam", "PutSinkPolicy"))
    assert re.fullmatch(r"[a-zA-Z0-9_.-]{1,255}", sink["inputs"]["name"])


def test_monitoring_link(pulumi_mocks: Harness) -> None:
    def program() -> MonitoringLink:
        provider = aws.Provider("p", region="ca-central-1", allowed_account_ids=["400000000040"])
        return MonitoringLink(
            "link", MonitoringLinkArgs(SINK_ARN, "pgf-prod", SHARED), pulumi.ResourceOptions(provider=provider)
        )

    pulumi_mocks.run(program)
    (link,) = pulumi_mocks.of_type(LINK)
    inputs = link["inputs"]
    assert inputs["sinkIdentifier"] == SINK_ARN and inputs["labelTemplate"] == "pgf-prod"
    assert inputs["resourceTypes"] == ["AWS::CloudWatch::Metric"]
    metric_config = inputs["linkConfiguration"]["metricConfiguration"]
    assert metric_config["filter"] == "Namespace IN ('AWS/Backup', 'AWS/Events', 'PGF/Backup')"
    assert metric_filter(SHARED) == metric_config["filter"]
    params = {
        "SinkIdentifier": inputs["sinkIdentifier"],
        "LabelTemplate": inputs["labelTemplate"],
        "ResourceTypes": inputs["resourceTypes"],
        "LinkConfiguration": {"MetricConfiguration": {"Filter": metric_config["filter"]}},
    }
    shape = _model("oam", "CreateLink")
    validate_parameters(params, shape)
    assert set(params["ResourceTypes"]) <= set(shape.members["ResourceTypes"].member.enum)
    with pytest.raises(ParamValidationError):
        validate_parameters({**params, "ResourceTypes": "AWS::CloudWatch::Metric"}, shape)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (MonitoringSinkArgs("pgf backup", WORKLOADS), "letters, digits"),
        (MonitoringSinkArgs("pgf-backup", ()), "no source account"),
        (MonitoringSinkArgs("pgf-backup", ("12345",)), "not an account id"),
        (MonitoringSinkArgs("pgf-backup", (WORKLOADS[0], WORKLOADS[0])), "repeat"),
    ],
)
def test_refused_sinks(pulumi_mocks: Harness, args: MonitoringSinkArgs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pulumi_mocks.run(lambda: MonitoringSink("sink", args))
    assert not pulumi_mocks.of_type(SINK)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (MonitoringLinkArgs(SINK_ARN, "", SHARED), "1-64"),
        (MonitoringLinkArgs(SINK_ARN, "x" * 65, SHARED), "1-64"),
        (MonitoringLinkArgs(SINK_ARN, "pgf", namespaces=()), "not metric namespaces"),
        (MonitoringLinkArgs(SINK_ARN, "pgf", namespaces=("AWS/Backup') OR (1=1",)), "not metric namespaces"),
    ],
)
def test_refused_links(pulumi_mocks: Harness, args: MonitoringLinkArgs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pulumi_mocks.run(lambda: MonitoringLink("link", args))
    assert not pulumi_mocks.of_type(LINK)
