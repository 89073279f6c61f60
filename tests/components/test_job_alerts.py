"""JobAlerts on the mock runtime: rules on AWS Backup's failed job events, to an encrypted topic."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from botocore.loaders import Loader

from components import JobAlerts, JobAlertsArgs, KeyGuard, failure_event_patterns
from tests.conftest import Harness

ACCOUNT = "400000000040"
REGION = "ca-central-1"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-deploy"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-break-glass"

ARGS = JobAlertsArgs(
    account_id=ACCOUNT,
    region=REGION,
    partition="aws",
    name_prefix="pgf-prod",
    key_guard=KeyGuard(DEPLOY, BREAK_GLASS),
    tags={"backup:tier": "prod"},
)

# Detail-type and the field carrying the job's state, as AWS Backup reports them to EventBridge
# (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-backup.html; restore jobs report
# `status`, backup and copy jobs `state`: https://docs.aws.amazon.com/aws-backup/latest/devguide/eventbridge.html).
JOBS = {
    "backup": ("Backup Job State Change", "state", "BackupJobState"),
    "copy": ("Copy Job State Change", "state", "CopyJobState"),
    "restore": ("Restore Job State Change", "status", "RestoreJobStatus"),
}
FAILED = {
    "backup": {"FAILED", "ABORTED", "EXPIRED"},
    "copy": {"FAILED"},
    "restore": {"FAILED", "ABORTED"},
}


def _build(harness: Harness, args: JobAlertsArgs = ARGS) -> JobAlerts:
    def program() -> JobAlerts:
        provider = aws.Provider("p", region=args.region, allowed_account_ids=[args.account_id])
        return JobAlerts("alerts", args, pulumi.ResourceOptions(providers={"aws": provider}))

    alerts: JobAlerts = harness.run(program)
    return alerts


def _statements(document: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(document)["Statement"]}


def _matches(pattern: Any, event: Any) -> bool:
    """EventBridge matching for the pattern forms used here: nested objects and lists of exact values."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and _matches(v, event[k]) for k, v in pattern.items())
    assert isinstance(pattern, list), pattern
    return event in pattern


def _event(detail_type: str, field: str, value: str) -> dict[str, Any]:
    return {
        "version": "0",
        "detail-type": detail_type,
        "source": "aws.backup",
        "account": ACCOUNT,
        "region": REGION,
        "detail": {field: value, "statusMessage": "example"},
    }


def _job_states(shape: str) -> list[str]:
    model = Loader().load_service_model("backup", "service-2")
    states: list[str] = model["shapes"][shape]["enum"]
    return states


def test_resources_and_parentage(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    component = pulumi_mocks.named("alerts")
    assert component["type"] == "pgf:backup:JobAlerts"
    children = [r for r in pulumi_mocks.resources if r["parent"] == component["urn"]]
    assert sorted(r["type"] for r in children) == sorted(
        [
            "aws:kms/key:Key",
            "aws:kms/alias:Alias",
            "aws:sns/topic:Topic",
            "aws:sns/topicPolicy:TopicPolicy",
            *["aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget"] * 3,
        ]
    )
    assert all(r["name"].startswith("alerts-") for r in children)
    assert all(r["provider"].endswith("::p") for r in children)


@pytest.mark.parametrize("kind", sorted(JOBS))
def test_each_rule_matches_the_documented_failures_and_nothing_else(pulumi_mocks: Harness, kind: str) -> None:
    alerts = _build(pulumi_mocks)
    detail_type, field, shape = JOBS[kind]
    rule = pulumi_mocks.named(f"alerts-{kind}-failed")["inputs"]
    pattern = json.loads(rule["eventPattern"])
    assert pattern == failure_event_patterns()[kind]
    assert pattern["source"] == ["aws.backup"] and pattern["detail-type"] == [detail_type]
    assert set(pattern["detail"][field]) == FAILED[kind]
    assert rule["name"] == f"pgf-prod-{kind}-job-failed" and rule["name"] in alerts.rule_names
    # Every value of the job's state in AWS's API model: the failures match, the rest (success included) not.
    states = _job_states(shape)
    assert FAILED[kind] <= set(states), "a failure value the AWS Backup API does not have"
    assert "COMPLETED" in states
    for state in states:
        assert _matches(pattern, _event(detail_type, field, state)) == (state in FAILED[kind]), state
    # The other field name, or another job kind's detail-type, does not match.
    other_field = "status" if field == "state" else "state"
    assert not any(_matches(pattern, _event(detail_type, other_field, s)) for s in FAILED[kind])
    for other, (other_type, other_field_name, _) in JOBS.items():
        if other != kind:
            assert not any(_matches(pattern, _event(other_type, other_field_name, s)) for s in FAILED[other])


def test_rules_publish_to_the_topic_without_a_role(pulumi_mocks: Harness) -> None:
    alerts = _build(pulumi_mocks)
    topic_arn = pulumi_mocks.resolve(alerts.topic_arn)
    targets = pulumi_mocks.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert sorted(t["inputs"]["rule"] for t in targets) == sorted(alerts.rule_names)
    for target in targets:
        assert target["inputs"]["arn"] == topic_arn
        assert "roleArn" not in target["inputs"]


def test_topic_is_encrypted_with_the_component_key(pulumi_mocks: Harness) -> None:
    alerts = _build(pulumi_mocks)
    topic = pulumi_mocks.named("alerts-topic")["inputs"]
    key = pulumi_mocks.named("alerts-key")
    key_arn = pulumi_mocks.resolve(alerts.key_arn)
    assert key_arn.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    assert topic["kmsMasterKeyId"] == key_arn
    assert key["inputs"]["enableKeyRotation"] is True
    assert pulumi_mocks.named("alerts-alias")["inputs"]["name"] == "alias/pgf-backup/pgf-prod-job-alerts"
    assert topic["name"] == "pgf-prod-backup-job-alerts"


def test_topic_policy_admits_eventbridge_of_this_account_only(pulumi_mocks: Harness) -> None:
    alerts = _build(pulumi_mocks)
    topic_arn = pulumi_mocks.resolve(alerts.topic_arn)
    policy = pulumi_mocks.named("alerts-topic-policy")["inputs"]
    assert policy["arn"] == topic_arn
    # EventBridge's statement first; the CloudWatch alarms' one is checked below.
    publish, alarms = json.loads(policy["policy"])["Statement"]
    assert alarms["Sid"] == "CloudWatchAlarmsPublish"
    assert publish["Effect"] == "Allow"
    assert publish["Principal"] == {"Service": "events.amazonaws.com"}
    assert publish["Action"] == "SNS:Publish" and publish["Resource"] == topic_arn
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_key_policy_admits_eventbridge_and_subscribers_through_sns(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    statements = _statements(pulumi_mocks.named("alerts-key")["inputs"]["policy"])
    events = statements["EventBridgePublishesEncryptedAlerts"]
    assert events["Effect"] == "Allow" and events["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(events["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert events["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    subscribers = statements["SubscribersReadThroughSns"]
    assert subscribers["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert subscribers["Condition"] == {"StringEquals": {"kms:ViaService": f"sns.{REGION}.amazonaws.com"}}
    for statement in statements.values():
        if statement["Principal"] in ({"AWS": "*"}, "*"):
            assert statement.get("Condition"), f"{statement['Sid']}: '*' principal without condition"


def test_guarded_key_is_protected_and_denies_deletion(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks)
    key = pulumi_mocks.named("alerts-key")
    assert key["protect"] and key["retainOnDelete"]
    statements = _statements(key["inputs"]["policy"])
    assert statements["DenyKeyDeletionExceptBreakGlass"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [BREAK_GLASS]


def test_unguarded_key_is_neither_protected_nor_denying(pulumi_mocks: Harness) -> None:
    _build(pulumi_mocks, replace(ARGS, key_guard=None, name_prefix="pgf-backup"))
    key = pulumi_mocks.named("alerts-key")
    assert not key["protect"] and not key["retainOnDelete"]
    assert not any(s["Effect"] == "Deny" for s in _statements(key["inputs"]["policy"]).values())
    assert pulumi_mocks.named("alerts-backup-failed")["inputs"]["name"] == "pgf-backup-backup-job-failed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account_id": "4000000000"}, "is not an AWS account id"),
        ({"name_prefix": "pgf prod"}, "name prefix 'pgf prod'"),
        ({"name_prefix": "p" * 46}, "must be 1 to 45 letters"),
        ({"name_prefix": ""}, "name prefix ''"),
    ],
)
def test_arguments_aws_would_refuse_are_refused(pulumi_mocks: Harness, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(pulumi_mocks, replace(ARGS, **change))
    assert not pulumi_mocks.of_type("pgf:backup:JobAlerts")


def test_longest_prefix_gives_rule_names_aws_accepts(pulumi_mocks: Harness) -> None:
    alerts = _build(pulumi_mocks, replace(ARGS, name_prefix="p" * 45))
    assert max(len(name) for name in alerts.rule_names) == 64


# ---------------------------------------------------------------------------------------------
# CloudWatch alarms of this account and region alert on the same topic (the export functions' alarms)

CLOUDWATCH = "cloudwatch.amazonaws.com"
ALARMS = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"


def _alarm(account: str = ACCOUNT, region: str = REGION, name: str = "pgf-prod-catalog-export-errors") -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def _service_decision(document: str, service: str, action: str, resource: str, context: dict[str, str]) -> Any:
    from pgf_backup.paths.evaluator import Principal, Request, decide

    request = Request(Principal(service=service), action, resource, context)
    return decide(request, resource_account=ACCOUNT, resource_policy=document, key_policy=action.startswith("kms:"))


def test_topic_policy_admits_cloudwatch_alarms_of_this_account_and_region(pulumi_mocks: Harness) -> None:
    alerts = _build(pulumi_mocks)
    topic_arn = pulumi_mocks.resolve(alerts.topic_arn)
    document = pulumi_mocks.named("alerts-topic-policy")["inputs"]["policy"]
    statements = _statements(document)
    assert set(statements) == {"EventBridgePublishes", "CloudWatchAlarmsPublish"}
    alarms = statements["CloudWatchAlarmsPublish"]
    assert alarms["Effect"] == "Allow" and alarms["Principal"] == {"Service": CLOUDWATCH}
    assert [a.lower() for a in ([alarms["Action"]] if isinstance(alarms["Action"], str) else alarms["Action"])] == [
        "sns:publish"
    ]
    assert alarms["Resource"] == topic_arn
    assert alarms["Condition"] == {"ArnLike": {"aws:SourceArn": ALARMS}}
    # AWS's evaluation: this account's alarms in this region publish; another account's or region's do not.
    assert _service_decision(document, CLOUDWATCH, "SNS:Publish", topic_arn, {"aws:SourceArn": _alarm()}).allowed
    for other in (_alarm(account="500000000050"), _alarm(region="ca-west-1")):
        assert not _service_decision(document, CLOUDWATCH, "SNS:Publish", topic_arn, {"aws:SourceArn": other}).allowed
    assert not _service_decision(document, CLOUDWATCH, "SNS:Publish", topic_arn, {}).allowed
    assert not _service_decision(document, CLOUDWATCH, "SNS:Subscribe", topic_arn, {"aws:SourceArn": _alarm()}).allowed


def test_eventbridge_statement_is_unchanged_by_the_alarm_statement(pulumi_mocks: Harness) -> None:
    alerts = _build(pulumi_mocks)
    topic_arn = pulumi_mocks.resolve(alerts.topic_arn)
    document = pulumi_mocks.named("alerts-topic-policy")["inputs"]["policy"]
    first, *_ = json.loads(document)["Statement"]
    assert first == {
        "Sid": "EventBridgePublishes",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "SNS:Publish",
        "Resource": topic_arn,
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }
    mine, other = {"aws:SourceAccount": ACCOUNT}, {"aws:SourceAccount": "500000000050"}
    assert _service_decision(document, "events.amazonaws.com", "SNS:Publish", topic_arn, mine).allowed
    assert not _service_decision(document, "events.amazonaws.com", "SNS:Publish", topic_arn, other).allowed
    # EventBridge gains nothing from the alarms' statement (an alarm ARN is not its source).
    assert not _service_decision(
        document, "events.amazonaws.com", "SNS:Publish", topic_arn, {"aws:SourceArn": _alarm()}
    ).allowed


@pytest.mark.parametrize("guarded", [True, False])
def test_key_policy_lets_cloudwatch_encrypt_alarm_notifications(pulumi_mocks: Harness, guarded: bool) -> None:
    alerts = _build(pulumi_mocks, ARGS if guarded else replace(ARGS, key_guard=None))
    key_arn = pulumi_mocks.resolve(alerts.key_arn)
    document = pulumi_mocks.named("alerts-key")["inputs"]["policy"]
    (alarms,) = [s for s in json.loads(document)["Statement"] if s.get("Principal") == {"Service": CLOUDWATCH}]
    assert alarms["Effect"] == "Allow"
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # The guard's denials (deletion, policy changes) leave these alone.
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        decision = _service_decision(document, CLOUDWATCH, action, key_arn, {"aws:SourceArn": _alarm()})
        assert decision.allowed, decision.reason
    for action in (
        "kms:Encrypt",
        "kms:ReEncryptFrom",
        "kms:CreateGrant",
        "kms:ScheduleKeyDeletion",
        "kms:PutKeyPolicy",
    ):
        assert not _service_decision(document, CLOUDWATCH, action, key_arn, {}).allowed, action
    # EventBridge's own statement is still there.
    assert "EventBridgePublishesEncryptedAlerts" in _statements(document)
