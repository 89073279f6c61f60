"""The export components on the mock runtime: the export bucket, and the scheduled catalog and QuickSight exports."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components import (
    CatalogExport,
    ExportFunctionArgs,
    ExportStore,
    ExportStoreArgs,
    KeyGuard,
    QuickSightExport,
    ScheduledFunction,
    ScheduledFunctionArgs,
)
from components.exports import CATALOG_HANDLER, QUICKSIGHT_HANDLER
from pgf_backup.lambda_package import PACKAGE_PATH, SOURCE_ROOT, package_bytes
from pgf_backup.paths.evaluator import Principal, Request, decide, evaluate_document
from tests.conftest import Harness

ACCOUNT = "400000000040"
REGION = "ca-central-1"
BUCKET = "pgf-backup-exports-400000000040"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:pgf-prod-backup-job-alerts"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1111aaaa-11aa-11aa-11aa-111111aaaaaa"
OTHER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/2222bbbb-22bb-22bb-22bb-222222bbbbbb"
CODE = PACKAGE_PATH.as_posix()
CODE_SHA256 = base64.b64encode(hashlib.sha256(b"a deployment package").digest()).decode()
GUARD = KeyGuard(
    f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-deploy", f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-break-glass"
)
TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}

CATALOG = ExportFunctionArgs(
    function_name="pgf-prod-catalog-export",
    account_id=ACCOUNT,
    region=REGION,
    partition="aws",
    code_path=CODE,
    code_sha256=CODE_SHA256,
    schedule="cron(0 3 * * ? *)",
    timezone="America/Toronto",
    timeout_seconds=840,
    memory_mb=1024,
    log_retention_days=365,
    bucket=BUCKET,
    bucket_key_arn=KEY,
    alarm_topic_arn=TOPIC,
    tags={"backup:tier": "prod"},
)
QUICKSIGHT = replace(
    CATALOG, function_name="pgf-prod-quicksight-export", schedule="cron(30 3 * * ? *)", log_retention_days=90
)
KINDS: dict[str, tuple[ExportFunctionArgs, str, str]] = {
    # kind -> (arguments, handler, the prefix it writes under)
    "catalog": (CATALOG, CATALOG_HANDLER, "catalog"),
    "quicksight": (QUICKSIGHT, QUICKSIGHT_HANDLER, "quicksight"),
}

FUNCTION_TYPE = "aws:lambda/function:Function"
ALIAS_TYPE = "aws:lambda/alias:Alias"


@pytest.fixture
def harness(pulumi_mocks: Harness) -> Harness:
    """The mock runtime: it gives a published function its `version` and an alias its qualified ARN."""
    return pulumi_mocks


def _opts() -> pulumi.ResourceOptions:
    provider = aws.Provider("p", region=REGION, allowed_account_ids=[ACCOUNT])
    return pulumi.ResourceOptions(providers={"aws": provider})


def _export(harness: Harness, kind: str, args: ExportFunctionArgs | None = None, **extra: Any) -> ScheduledFunction:
    """One export component, built alone; its ScheduledFunction."""
    chosen = args or KINDS[kind][0]

    def program() -> ScheduledFunction:
        if kind == "catalog":
            return CatalogExport("catalog", chosen, opts=_opts(), **extra).function
        return QuickSightExport("quicksight", chosen, _opts()).function

    function: ScheduledFunction = harness.run(program)
    return function


def _everything(harness: Harness) -> tuple[ExportStore, CatalogExport, QuickSightExport]:
    """The store and both exports, as a stack wires them: the functions encrypt with the store's key."""

    def program() -> tuple[ExportStore, CatalogExport, QuickSightExport]:
        opts = _opts()
        store = ExportStore(
            "exports",
            ExportStoreArgs(
                bucket=BUCKET,
                account_id=ACCOUNT,
                region=REGION,
                partition="aws",
                noncurrent_version_expiration_days=180,
                key_guard=GUARD,
                tags={"backup:enabled": "true", "backup:tier": "prod"},
            ),
            opts,
        )
        catalog = CatalogExport(
            "catalog", replace(CATALOG, bucket_key_arn=store.key_arn), include_table_versions=True, opts=opts
        )
        quicksight = QuickSightExport("quicksight", replace(QUICKSIGHT, bucket_key_arn=store.key_arn), opts)
        return store, catalog, quicksight

    built: tuple[ExportStore, CatalogExport, QuickSightExport] = harness.run(program)
    return built


def _role_policy(harness: Harness, function_name: str) -> dict[str, Any]:
    """The function role's inline policy, parsed."""
    (policy,) = [
        p
        for p in harness.of_type("aws:iam/rolePolicy:RolePolicy")
        if p["inputs"]["role"] == f"{function_name}-function"
    ]
    parsed: dict[str, Any] = json.loads(policy["inputs"]["policy"])
    return parsed


def _statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows(document: dict[str, Any], role_arn: str, action: str, resource: str) -> bool:
    """Whether an identity policy allows the role this request (AWS's evaluation, offline)."""
    request = Request(Principal(arn=role_arn), action, resource)
    return evaluate_document(document, request).effect == "Allow"


def _role_arn(function_name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{function_name}-function"


# ---------------------------------------------------------------------------------------------
# ScheduledFunction: what each export is made of, and how it is wired


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_export_is_a_scheduled_function_with_its_resources(harness: Harness, kind: str) -> None:
    _export(harness, kind)
    outer = harness.named(kind)
    assert outer["type"] == f"pgf:backup:{'CatalogExport' if kind == 'catalog' else 'QuickSightExport'}"
    inner = harness.named(f"{kind}-function")
    assert inner["type"] == "pgf:backup:ScheduledFunction" and inner["parent"] == outer["urn"]
    children = [r for r in harness.resources if r["parent"] == inner["urn"]]
    assert sorted(r["type"] for r in children) == sorted(
        [
            "aws:cloudwatch/logGroup:LogGroup",
            "aws:sqs/queue:Queue",
            "aws:iam/role:Role",
            "aws:iam/rolePolicy:RolePolicy",
            FUNCTION_TYPE,
            ALIAS_TYPE,
            "aws:iam/role:Role",
            "aws:iam/rolePolicy:RolePolicy",
            "aws:scheduler/schedule:Schedule",
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "aws:cloudwatch/metricAlarm:MetricAlarm",
        ]
    )
    assert all(r["name"].startswith(f"{kind}-function-") for r in children)
    assert all(r["provider"].endswith("::p") for r in children)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_function_is_a_published_python_function_of_the_package(harness: Harness, kind: str) -> None:
    args, handler, root = KINDS[kind]
    function = _export(harness, kind)
    inputs = harness.named(f"{kind}-function-function")["inputs"]
    assert inputs["name"] == args.function_name == function.function_name
    assert inputs["publish"] is True
    assert inputs["runtime"] == "python3.12"
    assert inputs["handler"] == handler
    assert inputs["code"] == {"fileArchive": CODE}
    assert inputs["sourceCodeHash"] == CODE_SHA256
    assert inputs["timeout"] == args.timeout_seconds and inputs["memorySize"] == args.memory_mb
    assert inputs["role"] == harness.resolve(function.role_arn) == _role_arn(args.function_name)
    variables = inputs["environment"]["variables"]
    assert variables["EXPORT_BUCKET"] == BUCKET and variables["EXPORT_KMS_KEY_ARN"] == KEY
    assert variables["EXPORT_ROOT"] == root


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_handler_names_a_function_the_package_defines(kind: str) -> None:
    # The Lambda runtime imports `<module>` from the zip and calls `<function>(event, context)`.
    handler = KINDS[kind][1]
    module, name = handler.rsplit(".", 1)
    source = SOURCE_ROOT / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{handler}: no {source.relative_to(SOURCE_ROOT)} in the package sources"
    assert source.match("pgf_backup/exports/*.py"), "the handler's module is outside what the package holds"
    functions = {node.name: node for node in ast.parse(source.read_text()).body if isinstance(node, ast.FunctionDef)}
    assert name in functions, f"{handler}: {source.name} defines no top-level {name}()"
    assert len(functions[name].args.args) == 2  # (event, context)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_alias_live_points_at_the_published_version(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    function = _export(harness, kind)
    alias = harness.named(f"{kind}-function-alias")["inputs"]
    assert alias["name"] == "live"
    assert alias["functionName"] == args.function_name
    # The version Lambda returned when publishing (the mock's "1"), never $LATEST.
    assert alias["functionVersion"] == "1"
    assert harness.resolve(function.alias_arn) == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{args.function_name}:live"
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schedule_invokes_the_alias_with_its_own_role_and_dead_letters(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    function = _export(harness, kind)
    schedule = harness.named(f"{kind}-function-schedule")["inputs"]
    queue_arn = harness.resolve(function.queue_arn)
    scheduler_role = harness.named(f"{kind}-function-scheduler-role")
    assert schedule["name"] == args.function_name and schedule["groupName"] == "default"
    assert schedule["scheduleExpression"] == args.schedule
    assert schedule["scheduleExpressionTimezone"] == args.timezone
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule["target"]
    assert target["arn"] == harness.resolve(function.alias_arn)
    assert target["arn"] != harness.resolve(function.function_arn)
    assert target["roleArn"] == scheduler_role["arn"] == f"arn:aws:iam::{ACCOUNT}:role/{args.function_name}-scheduler"
    assert target["roleArn"] != harness.resolve(function.role_arn)
    assert target["deadLetterConfig"] == {"arn": queue_arn}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_scheduler_role_may_invoke_the_alias_and_dead_letter_only(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    function = _export(harness, kind)
    policy = harness.named(f"{kind}-function-scheduler-policy")["inputs"]
    assert policy["role"] == f"{args.function_name}-scheduler"
    document = json.loads(policy["policy"])
    role = f"arn:aws:iam::{ACCOUNT}:role/{args.function_name}-scheduler"
    alias_arn = harness.resolve(function.alias_arn)
    function_arn = harness.resolve(function.function_arn)
    queue_arn = harness.resolve(function.queue_arn)
    assert _allows(document, role, "lambda:InvokeFunction", alias_arn)
    assert _allows(document, role, "sqs:SendMessage", queue_arn)
    # Not the unpublished code, not another function, not anything else on the queue.
    assert not _allows(document, role, "lambda:InvokeFunction", f"{function_arn}:$LATEST")
    assert not _allows(document, role, "lambda:InvokeFunction", function_arn)
    assert not _allows(
        document, role, "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other:live"
    )
    assert not _allows(document, role, "sqs:ReceiveMessage", queue_arn)
    assert not _allows(document, role, "lambda:UpdateFunctionCode", alias_arn)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_scheduler_role_is_trusted_by_this_accounts_default_schedule_group_only(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    _export(harness, kind)
    role = harness.named(f"{kind}-function-scheduler-role")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    group = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/default"
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnEquals": {"aws:SourceArn": group},
    }

    def assumes(service: str, context: dict[str, str]) -> bool:
        request = Request(Principal(service=service), "sts:AssumeRole", role["arn"], context)
        return evaluate_document(trust, request).effect == "Allow"

    mine = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": group}
    assert assumes("scheduler.amazonaws.com", mine)
    # Confused deputy: a schedule of another account, or of another group, cannot use the role.
    other_account = "500000000050"
    assert not assumes(
        "scheduler.amazonaws.com",
        {"aws:SourceAccount": other_account, "aws:SourceArn": group.replace(ACCOUNT, other_account)},
    )
    assert not assumes("scheduler.amazonaws.com", {**mine, "aws:SourceArn": group.replace("/default", "/other")})
    assert not assumes("scheduler.amazonaws.com", {})
    assert not assumes("lambda.amazonaws.com", mine)
    assert role["inputs"]["name"] == f"{args.function_name}-scheduler"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_function_role_is_assumed_by_lambda_only(harness: Harness, kind: str) -> None:
    _export(harness, kind)
    role = harness.named(f"{kind}-function-role")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_dead_letter_queue_is_encrypted_and_receives_both_failures(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    function = _export(harness, kind)
    queue = harness.named(f"{kind}-function-dlq")["inputs"]
    assert queue["name"] == f"{args.function_name}-dlq"
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 14 * 24 * 3600  # SQS's longest
    queue_arn = harness.resolve(function.queue_arn)
    assert queue_arn == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{args.function_name}-dlq"
    # A failed asynchronous invocation (after Lambda's retries) lands there too, sent with the function's role.
    assert harness.named(f"{kind}-function-function")["inputs"]["deadLetterConfig"] == {"targetArn": queue_arn}
    assert _allows(
        _role_policy(harness, args.function_name), _role_arn(args.function_name), "sqs:SendMessage", queue_arn
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_log_group_is_the_functions_with_the_configured_retention(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    function = _export(harness, kind)
    logs = harness.named(f"{kind}-function-logs")["inputs"]
    assert logs["name"] == f"/aws/lambda/{args.function_name}" == function.log_group_name
    assert logs["retentionInDays"] == args.log_retention_days
    # The role writes its own log streams and nothing else: no log group creation (it exists, with retention).
    document, role = _role_policy(harness, args.function_name), _role_arn(args.function_name)
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{args.function_name}"
    assert _allows(document, role, "logs:PutLogEvents", f"{group}:log-stream:2025/01/01/[1]abc")
    assert _allows(document, role, "logs:CreateLogStream", f"{group}:log-stream:2025/01/01/[1]abc")
    assert not _allows(document, role, "logs:CreateLogGroup", group)
    other = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other:log-stream:x"
    assert not _allows(document, role, "logs:PutLogEvents", other)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_alarms_on_errors_and_dead_letters_go_to_the_given_topic(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    _export(harness, kind)
    alarms = {a["name"]: a["inputs"] for a in harness.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == {f"{kind}-function-errors", f"{kind}-function-dead-letters"}
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [TOPIC]
        assert alarm["threshold"] == 1 and alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["treatMissingData"] == "notBreaching"
    errors = alarms[f"{kind}-function-errors"]
    assert (errors["namespace"], errors["metricName"], errors["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    # The alias's metrics: what the schedule invokes.
    assert errors["dimensions"] == {"FunctionName": args.function_name, "Resource": f"{args.function_name}:live"}
    letters = alarms[f"{kind}-function-dead-letters"]
    assert (letters["namespace"], letters["metricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert letters["dimensions"] == {"QueueName": f"{args.function_name}-dlq"}


def test_alarm_topic_may_be_an_output(harness: Harness) -> None:
    # The stack passes the alert topic's ARN as an Output of the JobAlerts component.
    _export(harness, "catalog", replace(CATALOG, alarm_topic_arn=pulumi.Output.from_input(TOPIC)))
    actions = [a["inputs"]["alarmActions"] for a in harness.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    assert actions == [[TOPIC], [TOPIC]]


def test_tags_reach_every_taggable_resource(harness: Harness) -> None:
    _export(harness, "catalog")
    taggable = [r for r in harness.resources if r["custom"] and "tags" in r["inputs"]]
    assert {r["type"] for r in taggable} >= {
        FUNCTION_TYPE,
        "aws:sqs/queue:Queue",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:iam/role:Role",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
    }
    assert all(r["inputs"]["tags"] == {"backup:tier": "prod"} for r in taggable)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pgf prod export", "1 to 64 letters"),
        ("", "1 to 64 letters"),
        ("e" * 65, "1 to 64 letters"),
        ("e" * 55, "at most 54 characters"),
    ],
)
def test_names_aws_would_refuse_are_refused_before_registration(harness: Harness, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _export(harness, "catalog", replace(CATALOG, function_name=name))
    assert not harness.of_type("pgf:backup:ScheduledFunction")
    assert not harness.of_type(FUNCTION_TYPE)


def test_longest_accepted_name_fits_every_derived_name(harness: Harness) -> None:
    name = "e" * 54
    _export(harness, "catalog", replace(CATALOG, function_name=name))
    roles = [r["inputs"]["name"] for r in harness.of_type("aws:iam/role:Role")]
    assert sorted(roles) == sorted([f"{name}-function", f"{name}-scheduler"])
    assert max(map(len, roles)) <= 64  # IAM role names
    assert len(harness.named("catalog-function-dlq")["inputs"]["name"]) <= 80  # SQS queue names


def test_scheduled_function_is_usable_on_its_own(harness: Harness) -> None:
    # The component takes any statements and an event; nothing in it is export-specific.
    args = ScheduledFunctionArgs(
        function_name="pgf-prod-tidy",
        description="tidy up",
        account_id=ACCOUNT,
        region=REGION,
        partition="aws",
        code_path=CODE,
        code_sha256=CODE_SHA256,
        handler="pgf_backup.exports.handlers.catalog_export",
        schedule="rate(1 day)",
        timezone="UTC",
        alarm_topic_arn=TOPIC,
        log_retention_days=30,
        statements=[{"Sid": "ReadOne", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/k"}],
        event='{"dry_run": true}',
    )
    function: ScheduledFunction = harness.run(lambda: ScheduledFunction("tidy", args, _opts()))
    assert harness.named("tidy-schedule")["inputs"]["target"]["input"] == '{"dry_run": true}'
    document = _role_policy(harness, "pgf-prod-tidy")
    assert set(_statements(document)) == {"WriteOwnLogs", "DeadLetters", "ReadOne"}
    assert harness.resolve(function.alias_arn).endswith(":function:pgf-prod-tidy:live")


# ---------------------------------------------------------------------------------------------
# Least privilege


def _iam_documents(harness: Harness) -> list[tuple[str, dict[str, Any]]]:
    """Every role's trust policy and inline policy, as (role name, document)."""
    documents = [
        (r["inputs"]["name"], json.loads(r["inputs"]["assumeRolePolicy"])) for r in harness.of_type("aws:iam/role:Role")
    ]
    documents += [
        (p["inputs"]["role"], json.loads(p["inputs"]["policy"]))
        for p in harness.of_type("aws:iam/rolePolicy:RolePolicy")
    ]
    return documents


def test_no_statement_grants_every_action_of_a_service(harness: Harness) -> None:
    _everything(harness)
    documents = _iam_documents(harness)
    assert len(documents) == 8  # two roles and two policies per export
    for role, document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", (role, statement)
            assert "NotAction" not in statement and "NotResource" not in statement, (role, statement)
            for action in _as_list(statement["Action"]):
                service, _, operation = action.partition(":")
                assert service and operation, (role, action)
                assert "*" not in operation, f"{role}: {action} grants several operations at once"


def test_resource_star_only_where_aws_requires_it(harness: Harness) -> None:
    _everything(harness)
    starred = [
        (role, statement.get("Sid"))
        for role, document in _iam_documents(harness)
        for statement in document["Statement"]
        if "*" in _as_list(statement.get("Resource", []))
    ]
    assert starred == [("pgf-prod-quicksight-export-function", "ListAssets")]
    listing = _statements(_role_policy(harness, "pgf-prod-quicksight-export"))["ListAssets"]
    assert _as_list(listing["Resource"]) == ["*"]
    assert all(a.startswith("quicksight:List") for a in listing["Action"]), listing["Action"]


def test_every_other_resource_is_of_this_account_and_region(harness: Harness) -> None:
    store, _, _ = _everything(harness)
    key_arn = harness.resolve(store.key_arn)
    for role, document in _iam_documents(harness):
        for statement in document["Statement"]:
            for resource in _as_list(statement.get("Resource", [])):
                if resource == "*":
                    continue
                if resource.startswith("arn:aws:s3:::"):
                    assert resource in {f"arn:aws:s3:::{BUCKET}/catalog/*", f"arn:aws:s3:::{BUCKET}/quicksight/*"}
                elif resource.startswith("arn:aws:kms:"):
                    assert resource == key_arn, (role, resource)
                else:
                    assert resource.startswith("arn:aws:") and f":{REGION}:{ACCOUNT}:" in resource, (role, resource)


@pytest.mark.parametrize("include_table_versions", [False, True])
def test_catalog_role_reads_the_glue_catalog(harness: Harness, include_table_versions: bool) -> None:
    _export(harness, "catalog", include_table_versions=include_table_versions)
    document, role = _role_policy(harness, CATALOG.function_name), _role_arn(CATALOG.function_name)
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    actions = {a for s in document["Statement"] for a in _as_list(s["Action"]) if a.startswith("glue:")}
    expected = {"glue:GetDatabases", "glue:GetTables", "glue:GetPartitions", "glue:GetUserDefinedFunctions"}
    assert actions == expected | ({"glue:GetTableVersions"} if include_table_versions else set())
    variables = harness.named("catalog-function-function")["inputs"]["environment"]["variables"]
    assert variables["INCLUDE_TABLE_VERSIONS"] == ("true" if include_table_versions else "false")
    # Each read authorizes on the catalog, the database and the table or function (Glue's resource ARNs).
    for action, resources in {
        "glue:GetDatabases": [f"{glue}:catalog", f"{glue}:database/sales"],
        "glue:GetTables": [f"{glue}:catalog", f"{glue}:database/sales", f"{glue}:table/sales/orders"],
        "glue:GetPartitions": [f"{glue}:catalog", f"{glue}:database/sales", f"{glue}:table/sales/orders"],
        "glue:GetUserDefinedFunctions": [
            f"{glue}:catalog",
            f"{glue}:database/sales",
            f"{glue}:userDefinedFunction/sales/to_cents",
        ],
    }.items():
        for resource in resources:
            assert _allows(document, role, action, resource), (action, resource)
    assert _allows(document, role, "glue:GetTableVersions", f"{glue}:table/sales/orders") is include_table_versions
    for action in ("glue:DeleteTable", "glue:UpdateTable", "glue:CreateDatabase", "glue:GetConnections"):
        assert not _allows(document, role, action, f"{glue}:table/sales/orders"), action
    # Another region's or account's catalog is not readable.
    assert not _allows(document, role, "glue:GetTables", f"arn:aws:glue:ca-west-1:{ACCOUNT}:table/sales/orders")
    assert not _allows(document, role, "glue:GetTables", "arn:aws:glue:ca-central-1:500000000050:table/sales/orders")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_role_writes_under_its_own_prefix_only(harness: Harness, kind: str) -> None:
    args, _, root = KINDS[kind]
    other_root = "quicksight" if root == "catalog" else "catalog"
    _export(harness, kind)
    document, role = _role_policy(harness, args.function_name), _role_arn(args.function_name)
    export = f"{root}/{ACCOUNT}/{REGION}/20250102T030405Z"
    for action in ("s3:PutObject", "s3:AbortMultipartUpload"):
        assert _allows(document, role, action, f"arn:aws:s3:::{BUCKET}/{export}/manifest.json"), action
        assert not _allows(document, role, action, f"arn:aws:s3:::{BUCKET}/{other_root}/{ACCOUNT}/x"), action
        assert not _allows(document, role, action, f"arn:aws:s3:::{BUCKET}/{root}"), action
        assert not _allows(document, role, action, f"arn:aws:s3:::pgf-other-bucket/{export}/x"), action
    # Exports are written, never read back, listed or deleted by the function.
    for action in ("s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket", "s3:PutBucketPolicy"):
        assert not _allows(document, role, action, f"arn:aws:s3:::{BUCKET}/{export}/x"), action
        assert not _allows(document, role, action, f"arn:aws:s3:::{BUCKET}"), action


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_role_uses_the_bucket_key_only_to_encrypt_its_uploads(harness: Harness, kind: str) -> None:
    args = KINDS[kind][0]
    _export(harness, kind)
    document, role = _role_policy(harness, args.function_name), _role_arn(args.function_name)
    # A multipart upload with SSE-KMS: GenerateDataKey to start it, Decrypt to add parts and complete it.
    assert _allows(document, role, "kms:GenerateDataKey", KEY)
    assert _allows(document, role, "kms:Decrypt", KEY)
    assert not _allows(document, role, "kms:GenerateDataKey", OTHER_KEY)
    assert not _allows(document, role, "kms:Decrypt", OTHER_KEY)
    for action in (
        "kms:Encrypt",
        "kms:ReEncryptFrom",
        "kms:CreateGrant",
        "kms:ScheduleKeyDeletion",
        "kms:PutKeyPolicy",
    ):
        assert not _allows(document, role, action, KEY), action


def test_quicksight_role_exports_bundles_of_this_account_only(harness: Harness) -> None:
    _export(harness, "quicksight")
    document, role = _role_policy(harness, QUICKSIGHT.function_name), _role_arn(QUICKSIGHT.function_name)
    quicksight = f"arn:aws:quicksight:{REGION}:{ACCOUNT}"
    job = f"{quicksight}:asset-bundle-export-job/pgf-backup-20250102T030405Z-1-abcd1234"
    assert _allows(document, role, "quicksight:StartAssetBundleExportJob", job)
    assert _allows(document, role, "quicksight:DescribeAssetBundleExportJob", job)
    assert _allows(document, role, "quicksight:ListDashboards", "*")
    for action, asset in [
        ("quicksight:DescribeDashboard", "dashboard/sales"),
        ("quicksight:DescribeDashboardPermissions", "dashboard/sales"),
        ("quicksight:DescribeAnalysis", "analysis/sales"),
        ("quicksight:DescribeDataSet", "dataset/orders"),
        ("quicksight:DescribeDataSource", "datasource/athena"),
        ("quicksight:DescribeTheme", "theme/brand"),
        ("quicksight:ListTagsForResource", "dashboard/sales"),
    ]:
        assert _allows(document, role, action, f"{quicksight}:{asset}"), action
        assert not _allows(document, role, action, f"arn:aws:quicksight:ca-west-1:{ACCOUNT}:{asset}"), action
    # Exporting is all it does: no import, no change, no deletion, no Glue, no other prefix.
    for action in (
        "quicksight:StartAssetBundleImportJob",
        "quicksight:UpdateDashboard",
        "quicksight:DeleteDashboard",
        "quicksight:UpdateDashboardPermissions",
    ):
        assert not _allows(document, role, action, f"{quicksight}:dashboard/sales"), action
    assert not _allows(document, role, "glue:GetTables", f"arn:aws:glue:{REGION}:{ACCOUNT}:table/sales/orders")


# ---------------------------------------------------------------------------------------------
# Both sides of an upload: the role's policy and the export bucket's own policy and key


def _upload(harness: Harness, store: ExportStore, role_name: str, key: str) -> Any:
    """AWS's answer to the role's SSE-KMS PutObject of `key` into the export bucket (bucket policy and IAM)."""
    key_arn = harness.resolve(store.key_arn)
    identity = _role_policy(harness, role_name)
    context = {
        **TLS,
        "s3:x-amz-server-side-encryption": "aws:kms",
        "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn,
    }
    request = Request(Principal(arn=_role_arn(role_name)), "s3:PutObject", f"arn:aws:s3:::{BUCKET}/{key}", context)
    return decide(
        request,
        resource_account=ACCOUNT,
        resource_policy=harness.named("exports-protection-policy")["inputs"]["policy"],
        resource_policy_name="bucket policy",
        identity_allows=evaluate_document(identity, request).effect == "Allow",
    )


def test_catalog_role_may_upload_its_exports_and_nothing_else(harness: Harness) -> None:
    store, _, _ = _everything(harness)
    assert _upload(harness, store, CATALOG.function_name, f"catalog/{ACCOUNT}/{REGION}/t/manifest.json").allowed
    refused = _upload(harness, store, CATALOG.function_name, f"quicksight/{ACCOUNT}/{REGION}/t/manifest.json")
    assert not refused.allowed, refused.reason
    assert _upload(harness, store, QUICKSIGHT.function_name, f"quicksight/{ACCOUNT}/{REGION}/t/bundle-1.qs").allowed
    assert not _upload(harness, store, QUICKSIGHT.function_name, f"catalog/{ACCOUNT}/{REGION}/t/x").allowed


def test_catalog_role_is_refused_on_another_bucket(harness: Harness) -> None:
    _everything(harness)
    identity = _role_policy(harness, CATALOG.function_name)
    request = Request(
        Principal(arn=_role_arn(CATALOG.function_name)),
        "s3:PutObject",
        f"arn:aws:s3:::pgf-documents-prod/catalog/{ACCOUNT}/{REGION}/t/x",
        TLS,
    )
    decision = decide(request, resource_account=ACCOUNT, resource_policy=None, identity_allows=False)
    assert evaluate_document(identity, request).effect is None
    assert not decision.allowed


def test_bucket_key_admits_the_functions_through_s3(harness: Harness) -> None:
    # The key policy delegates use through S3 to the account's IAM policies; the role's policy is the other half.
    store, _, _ = _everything(harness)
    key_arn = harness.resolve(store.key_arn)
    key_policy = harness.named("exports-protection-key")["inputs"]["policy"]
    for name in (CATALOG.function_name, QUICKSIGHT.function_name):
        identity = _role_policy(harness, name)
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}
            request = Request(Principal(arn=_role_arn(name)), action, key_arn, via_s3)
            allows = evaluate_document(identity, request).effect == "Allow"
            decision = decide(
                request, resource_account=ACCOUNT, resource_policy=key_policy, identity_allows=allows, key_policy=True
            )
            assert decision.allowed, decision.reason
            # Outside S3 the key policy does not admit the role, whatever its IAM policy says.
            direct = Request(Principal(arn=_role_arn(name)), action, key_arn, {"kms:CallerAccount": ACCOUNT})
            assert not decide(
                direct, resource_account=ACCOUNT, resource_policy=key_policy, identity_allows=True, key_policy=True
            ).allowed


def test_functions_encrypt_with_the_stores_key(harness: Harness) -> None:
    store, catalog, quicksight = _everything(harness)
    key_arn = harness.resolve(store.key_arn)
    assert key_arn.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    for function in (catalog.function, quicksight.function):
        statement = _statements(_role_policy(harness, function.function_name))["EncryptExports"]
        assert statement["Resource"] == key_arn
        variables = harness.named(f"{'catalog' if function is catalog.function else 'quicksight'}-function-function")
        assert variables["inputs"]["environment"]["variables"]["EXPORT_KMS_KEY_ARN"] == key_arn


# ---------------------------------------------------------------------------------------------
# ExportStore


def _store(harness: Harness, key_guard: KeyGuard | None) -> ExportStore:
    args = ExportStoreArgs(
        bucket=BUCKET,
        account_id=ACCOUNT,
        region=REGION,
        partition="aws",
        noncurrent_version_expiration_days=180,
        key_guard=key_guard,
        tags={"backup:enabled": "true", "backup:tier": "prod"},
    )
    store: ExportStore = harness.run(lambda: ExportStore("exports", args, _opts()))
    return store


@pytest.mark.parametrize("guarded", [True, False])
def test_store_creates_the_bucket_and_never_deletes_it(harness: Harness, guarded: bool) -> None:
    store = _store(harness, GUARD if guarded else None)
    (bucket,) = harness.of_type("aws:s3/bucket:Bucket")
    assert bucket["name"] == "exports-bucket" and bucket["parent"] == harness.named("exports")["urn"]
    assert bucket["inputs"]["bucket"] == BUCKET
    assert bucket["inputs"]["forceDestroy"] is False
    assert bucket["inputs"]["tags"] == {"backup:enabled": "true", "backup:tier": "prod"}
    assert bucket["retainOnDelete"] is True
    assert bucket["protect"] is guarded
    assert store.bucket == BUCKET and store.bucket_arn == f"arn:aws:s3:::{BUCKET}"
    key = harness.named("exports-protection-key")
    assert key["protect"] is guarded
    assert ("DenyKeyDeletionExceptBreakGlass" in _statements(json.loads(key["inputs"]["policy"]))) is guarded


def test_store_protects_the_bucket_like_an_application_bucket(harness: Harness) -> None:
    store = _store(harness, GUARD)
    protection = harness.named("exports-protection")
    assert protection["type"] == "pgf:backup:S3Protection" and protection["parent"] == harness.named("exports")["urn"]
    key_arn = harness.resolve(store.key_arn)
    versioning = harness.named("exports-protection-versioning")["inputs"]
    assert versioning == {"bucket": BUCKET, "versioningConfiguration": {"status": "Enabled"}}
    (rule,) = harness.named("exports-protection-encryption")["inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn}
    block = harness.named("exports-protection-public-access-block")["inputs"]
    assert block["bucket"] == BUCKET
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    policy = harness.named("exports-protection-policy")["inputs"]
    assert policy["bucket"] == BUCKET
    tls = _statements(json.loads(policy["policy"]))["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    rules = {r["id"]: r for r in harness.named("exports-protection-lifecycle")["inputs"]["rules"]}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 180}


def test_plain_http_is_refused_to_the_export_functions_too(harness: Harness) -> None:
    store, _, _ = _everything(harness)
    key_arn = harness.resolve(store.key_arn)
    request = Request(
        Principal(arn=_role_arn(CATALOG.function_name)),
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/catalog/{ACCOUNT}/{REGION}/t/x",
        {"aws:SecureTransport": "false", "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
    )
    policy = harness.named("exports-protection-policy")["inputs"]["policy"]
    decision = decide(request, resource_account=ACCOUNT, resource_policy=policy, identity_allows=True)
    assert not decision.allowed and "DenyInsecureTransport" in decision.statement


def test_store_registers_nothing_outside_its_bucket(harness: Harness) -> None:
    _store(harness, None)
    buckets = {r["inputs"]["bucket"] for r in harness.resources if r["type"].startswith("aws:s3/")}
    assert buckets == {BUCKET}


# ---------------------------------------------------------------------------------------------
# The shipped workload stacks

Plan = dict[str, Any]
EXPORT_TYPES = {"catalog": "pgf:backup:CatalogExport", "quicksight": "pgf:backup:QuickSightExport"}
STACKS = {
    # stack -> (account, exports it runs)
    "lab": ("200000000020", ("catalog",)),
    "dev": ("300000000030", ("catalog",)),
    "prod": ("400000000040", ("catalog", "quicksight")),
}


@pytest.fixture
def plan_of(run_stack: Callable[..., Plan], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], Plan]:
    """A shipped stack evaluated with the current folder in tmp_path (the program writes its package there)."""
    monkeypatch.chdir(tmp_path)
    return run_stack


def _of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _named(plan: Plan, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in plan["resources"] if r["name"] == name]
    assert len(found) == 1, f"{len(found)} resources named {name!r}"
    return found[0]


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_prod_exports_catalog_and_quicksight_lab_and_dev_the_catalog(
    plan_of: Callable[[str], Plan], stack: str
) -> None:
    account, kinds = STACKS[stack]
    plan = plan_of(stack)
    for kind, type_ in EXPORT_TYPES.items():
        assert len(_of_type(plan, type_)) == (1 if kind in kinds else 0), (stack, kind)
    functions = sorted(f["inputs"]["name"] for f in _of_type(plan, FUNCTION_TYPE))
    assert functions == sorted(f"pgf-{stack}-{kind}-export" for kind in kinds)
    schedules = sorted(s["inputs"]["name"] for s in _of_type(plan, "aws:scheduler/schedule:Schedule"))
    assert schedules == functions
    (bucket,) = [b for b in _of_type(plan, "aws:s3/bucket:Bucket") if "-exports-" in b["inputs"]["bucket"]]
    assert bucket["inputs"]["bucket"] == f"pgf-backup-exports-{account}"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_exports_output_names_functions_schedules_and_prefixes(plan_of: Callable[[str], Plan], stack: str) -> None:
    account, kinds = STACKS[stack]
    plan = plan_of(stack)
    bucket = f"pgf-backup-exports-{account}"
    expected: dict[str, Any] = {
        "bucket": bucket,
        "bucket_arn": f"arn:aws:s3:::{bucket}",
        "kms_key": _named(plan, "exports-protection-key")["arn"],
    }
    schedules = {"catalog": "cron(0 3 * * ? *)", "quicksight": "cron(30 3 * * ? *)"}
    for kind in kinds:
        expected[kind] = {
            "function": f"pgf-{stack}-{kind}-export",
            "schedule": f"{schedules[kind]} America/Toronto",
            "prefix": f"s3://{bucket}/{kind}/{account}/ca-central-1/",
        }
    assert plan["outputs"]["exports"] == expected
    # What the output says is what is deployed.
    for kind in kinds:
        schedule = _named(plan, f"{kind}-export-function-schedule")["inputs"]
        assert (
            f"{schedule['scheduleExpression']} {schedule['scheduleExpressionTimezone']}" == expected[kind]["schedule"]
        )
        variables = _named(plan, f"{kind}-export-function-function")["inputs"]["environment"]["variables"]
        assert f"s3://{variables['EXPORT_BUCKET']}/{variables['EXPORT_ROOT']}/" in expected[kind]["prefix"]


def test_export_bucket_is_backed_up_by_the_prod_plan(plan_of: Callable[[str], Plan]) -> None:
    plan = plan_of("prod")
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    selections = {s["name"]: s["inputs"] for s in _of_type(plan, "aws:backup/selection:Selection")}
    # Account mode: selected by ARN, like the application's buckets...
    assert bucket_arn in selections["plan-prod-listed"]["resources"]
    # ... and carrying the tags the tier's tag selection matches (its `application` from the provider's default tags).
    (bucket,) = [b for b in _of_type(plan, "aws:s3/bucket:Bucket") if "-exports-" in b["inputs"]["bucket"]]
    provider = next(r for r in plan["resources"] if r["urn"] == bucket["provider"])
    tags = {**json.loads(provider["inputs"]["defaultTags"])["tags"], **bucket["inputs"]["tags"]}
    assert bucket["inputs"]["tags"]["backup:enabled"] == "true"
    assert bucket["inputs"]["tags"]["backup:tier"] == "prod"
    (condition,) = selections["plan-prod-tagged"]["conditions"]
    for required in condition["stringEquals"]:
        key = required["key"].removeprefix("aws:ResourceTag/")
        assert tags.get(key) == required["value"], key
    # Only the bucket: AWS Backup backs up none of the functions' resources, so none claims to be selected.
    tagged = [r["name"] for r in plan["resources"] if "backup:enabled" in (r["inputs"].get("tags") or {})]
    assert [n for n in tagged if "export" in n] == [bucket["name"]]


def test_export_functions_run_the_package_the_program_wrote(plan_of: Callable[[str], Plan], tmp_path: Path) -> None:
    plan = plan_of("prod")
    written = tmp_path / PACKAGE_PATH
    assert written.is_file()
    with zipfile.ZipFile(written) as archive:  # the repository's export sources
        assert tuple(archive.namelist()) == package_bytes()[1]
    digest = base64.b64encode(hashlib.sha256(written.read_bytes()).digest()).decode()
    functions = _of_type(plan, FUNCTION_TYPE)
    assert len(functions) == 2
    for function in functions:
        # Relative to the project: the same archive path on every machine that deploys.
        assert function["inputs"]["code"] == {"fileArchive": PACKAGE_PATH.as_posix()}
        assert function["inputs"]["sourceCodeHash"] == digest


def test_export_alarms_go_to_the_primary_regions_alert_topic(plan_of: Callable[[str], Plan]) -> None:
    plan = plan_of("prod")
    topic = plan["outputs"]["job_alerts"]["ca-central-1"]["topic_arn"]
    alarms = _of_type(plan, "aws:cloudwatch/metricAlarm:MetricAlarm")
    exported = [a for a in alarms if "-export-" in a["inputs"]["name"]]
    assert len(exported) == 4
    assert all(a["inputs"]["alarmActions"] == [topic] for a in exported)


@pytest.mark.parametrize(("stack", "hardened"), [("prod", True), ("lab", False)])
def test_stack_settings_reach_the_exports(plan_of: Callable[[str], Plan], stack: str, hardened: bool) -> None:
    plan = plan_of(stack)
    # Shipped: prod keeps logs a year and exports table versions; lab 90 days, no versions.
    retention, versions = (365, "true") if hardened else (90, "false")
    logs = _of_type(plan, "aws:cloudwatch/logGroup:LogGroup")
    assert logs and all(g["inputs"]["retentionInDays"] == retention for g in logs if "-export" in g["inputs"]["name"])
    catalog = _named(plan, "catalog-export-function-function")["inputs"]
    assert catalog["environment"]["variables"]["INCLUDE_TABLE_VERSIONS"] == versions
    policy = json.loads(_named(plan, "catalog-export-function-policy")["inputs"]["policy"])
    granted = {a for s in policy["Statement"] for a in _as_list(s["Action"])}
    assert ("glue:GetTableVersions" in granted) is hardened
    bucket = _named(plan, "exports-bucket")
    assert bucket["protect"] is hardened and bucket["retainOnDelete"] is True
    assert _named(plan, "exports-protection-key")["protect"] is hardened
