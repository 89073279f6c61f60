"""Lambda rules: no plaintext secret in environment variables, versions in prod, a dead-letter queue when async."""

from __future__ import annotations

from typing import Any

import pytest
from pgf_backup_policy.functions import (
    BUCKET_NOTIFICATION,
    EVENT_INVOKE_CONFIG,
    EVENT_TARGET,
    FUNCTION,
    SCHEDULE,
    TOPIC_SUBSCRIPTION,
    aws_key_in,
    lambda_dead_letter_violations,
    lambda_no_plaintext_secrets_violations,
    lambda_publishes_versions_violations,
    looks_secret,
)
from pgf_backup_policy.model import UNKNOWN, Resource

from tests.policy import fixtures as f

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documentation example keys
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _with(**variables: object) -> dict[str, object]:
    return f.changed(f.FUNCTION, environment={"variables": {**f.FUNCTION["environment"]["variables"], **variables}})


def _secrets(**variables: object) -> list[str]:
    return lambda_no_plaintext_secrets_violations(FUNCTION, _with(**variables), f.ctx())


# ---------------------------------------------------------------------------------------------
# lambda-no-plaintext-secrets: names


def test_function_with_secret_references_passes() -> None:
    assert lambda_no_plaintext_secrets_violations(FUNCTION, f.FUNCTION, f.ctx()) == []


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "db_passwd",
        "dbPassword",
        "PGPASSWORD",
        "DB_PASS",
        "db-pwd",
        "SSH_PASSPHRASE",
        "CLIENT_SECRET",
        "clientSecret",
        "SECRET",
        "APP_SECRETS",
        "GITHUB_TOKEN",
        "AUTHTOKEN",
        "refreshToken",
        "API_KEY",
        "APIKEY",
        "apiKey",
        "STRIPE_API_KEYS",
        "PRIVATE_KEY",
        "privateKey",
        "GOOGLE_CREDENTIALS",
        "DB_CREDENTIAL",
        "TOKEN_URL",  # a name that says token is refused whatever follows but a reference word: rename it
    ],
)
def test_literal_secret_refused(name: str) -> None:
    (message,) = _secrets(**{name: "hunter2"})
    assert message == (
        f"environment variable {name} holds a secret in plain text, readable by anyone who can read the "
        "function's configuration: store it in Secrets Manager or SSM Parameter Store and pass its ARN or name "
        f"instead (e.g. in {name}_SECRET_ARN)"
    )
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KMS_KEY_ARN", f.KEY_ARN),
        ("KMS_KEY_ID", "mrk-95763b9fbb6c05d68a8ad054fb998990"),
        ("EXPORT_KEY_PREFIX", "glue-catalog/"),
        ("EXPORT_BUCKET", "pgf-exports"),  # the export functions' own variables
        ("EXPORT_KMS_KEY_ARN", f.KEY_ARN),
        ("EXPORT_ROOT", "glue-catalog"),
        ("INCLUDE_TABLE_VERSIONS", "true"),
        ("PARTITION_KEY", "dt"),
        ("PUBLIC_KEY", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"),
        ("MAX_TOKENS", "4096"),
        ("TOKENIZER_MODEL", "cl100k"),
        ("BYPASS_CACHE", "true"),
        ("PASSTHROUGH", "false"),
        ("COMPASS_HEADING", "north"),
        ("PGPASSFILE", "tmp/.pgpass"),
        ("SECRETARY_EMAIL", "ops@example.org"),
        ("SECRETS_MANAGER_TTL", "300"),
        ("SECRETS_MANAGER_TIMEOUT_MILLIS", "0"),
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773"),
        ("PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED", "true"),
        ("SSM_PARAMETER_STORE_TTL", "300"),
        ("DB_PASSWORD_SECRET_ARN", "pgf/db"),
        ("dbSecretArn", "pgf/db"),
        ("API_KEY_NAME", "pgf/api-key"),
        ("TOKEN_PARAMETER", "pgf-token"),
        ("CLIENT_SECRET_ID", "pgf/client"),
        ("GLUE_CATALOG_ID", f.ACCOUNT),
        ("QUICKSIGHT_NAMESPACE", "default"),
        ("LOG_LEVEL", "INFO"),
    ],
)
def test_near_miss_names_pass(name: str, value: str) -> None:
    assert not looks_secret(name)
    assert _secrets(**{name: value}) == []


def test_pulumi_secret_is_still_plaintext_in_the_function_configuration() -> None:
    # The offline engine records a Pulumi secret as "[secret]" (the CLI hands the pack the value itself):
    # either way Lambda returns it in clear to whoever can read the function's configuration.
    (message,) = _secrets(DB_PASSWORD="[secret]")
    assert message.startswith("environment variable DB_PASSWORD holds a secret in plain text")


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:secretsmanager:ca-central-1:400000000040:secret:pgf/db-AbCdEf",
        "arn:aws:ssm:ca-central-1:400000000040:parameter/pgf/db",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:400000000040:secret:pgf/db-AbCdEf",
        "/pgf/db/password",
        "{{resolve:secretsmanager:pgf/db}}",
        "",
        UNKNOWN,
    ],
)
def test_references_and_unknowns_pass(value: object) -> None:
    assert _secrets(DB_PASSWORD=value) == []


@pytest.mark.parametrize("value", ["/p@ss w0rd", "arn:aws:kms:ca-central-1:400000000040:key/k", "pgf/db"])
def test_values_that_are_not_references_are_refused(value: str) -> None:
    assert _secrets(DB_PASSWORD=value)


# ---------------------------------------------------------------------------------------------
# lambda-no-plaintext-secrets: values


@pytest.mark.parametrize(
    ("value", "credential"),
    [
        (ACCESS_KEY_ID, "an AWS access key id"),
        ("ASIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        (f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}", "an AWS access key id"),
        (SECRET_ACCESS_KEY, "an AWS secret access key"),
        (f"key={SECRET_ACCESS_KEY};", "an AWS secret access key"),
    ],
)
def test_aws_keys_are_refused_whatever_the_name(value: str, credential: str) -> None:
    (message,) = _secrets(EXPORT_SETTINGS=value)
    assert message == (
        f"environment variable EXPORT_SETTINGS holds what looks like {credential}: give the function's execution "
        "role the permissions instead, or store it in Secrets Manager or SSM Parameter Store and pass its ARN or "
        "name instead"
    )
    assert value not in message and ACCESS_KEY_ID not in message


@pytest.mark.parametrize(
    "value",
    [
        "3f786850e387550fdab836ed7e6dc881de23001b",  # a commit id: 40 hex characters
        "3F786850E387550FDAB836ED7E6DC881DE23001B",
        f"{SECRET_ACCESS_KEY}x",  # 41 characters
        SECRET_ACCESS_KEY[:39],
        "wJalrXUtnFEMIbKbMDENGbbPxRfiCYbEXAMPLEKEY"[:40].replace("1", "b"),  # letters only, no digit, / or +
        "AKIAIOSFODNN7EXAMPL",  # 15 characters after the prefix
        "AKIAIOSFODNN7EXAMPLE7",  # 17
        "XAKIAIOSFODNN7EXAMPLE",
        f.KEY_ARN,
        "arn:aws:lambda:ca-central-1:400000000040:function:pgf-glue-catalog-export:live",
        "s3://pgf-exports/glue-catalog/2026-11-24/",
    ],
)
def test_values_that_are_not_aws_keys_pass(value: str) -> None:
    assert aws_key_in(value) is None
    assert _secrets(EXPORT_SETTINGS=value) == []


def test_an_aws_key_under_a_secret_name_is_reported_once() -> None:
    (message,) = _secrets(AWS_SECRET_ACCESS_KEY_VALUE=SECRET_ACCESS_KEY)
    assert "looks like an AWS secret access key" in message


def test_function_without_environment() -> None:
    assert lambda_no_plaintext_secrets_violations(FUNCTION, f.changed(f.FUNCTION, environment=None), f.ctx()) == []
    assert lambda_no_plaintext_secrets_violations(FUNCTION, f.changed(f.FUNCTION, environment=UNKNOWN), f.ctx()) == []


# ---------------------------------------------------------------------------------------------
# lambda-publishes-versions


def test_prod_function_publishes_versions() -> None:
    assert lambda_publishes_versions_violations(FUNCTION, f.FUNCTION, f.ctx()) == []
    (message,) = lambda_publishes_versions_violations(FUNCTION, f.changed(f.FUNCTION, publish=None), f.ctx())
    assert message == "this prod function does not publish versions: set publish=True and point an alias at the version"
    assert lambda_publishes_versions_violations(FUNCTION, f.changed(f.FUNCTION, publish=False), f.ctx())
    assert lambda_publishes_versions_violations(FUNCTION, f.changed(f.FUNCTION, publish="false"), f.ctx())


def test_publish_outside_prod_and_unknown_are_not_judged() -> None:
    assert lambda_publishes_versions_violations(FUNCTION, f.changed(f.FUNCTION, publish=False), f.ctx("dev")) == []
    assert lambda_publishes_versions_violations(FUNCTION, f.changed(f.FUNCTION, publish=UNKNOWN), f.ctx()) == []


def test_other_types_are_ignored() -> None:
    assert lambda_no_plaintext_secrets_violations("aws:s3/bucket:Bucket", {"PASSWORD": "x"}, f.ctx()) == []
    assert lambda_publishes_versions_violations("aws:s3/bucket:Bucket", {}, f.ctx()) == []


# ---------------------------------------------------------------------------------------------
# lambda-dead-letter (stack level)


def _function(**changes: Any) -> Resource:
    return f.resource(FUNCTION, f.changed(f.FUNCTION, **changes), "ingest")


def _schedule(arn: Any = f"{f.FUNCTION_ARN}:live") -> Resource:
    return f.resource(SCHEDULE, f.changed(f.SCHEDULE, target={**f.SCHEDULE["target"], "arn": arn}), "ingest-daily")


def _invoke_config(**changes: Any) -> Resource:
    return f.resource(EVENT_INVOKE_CONFIG, f.changed(f.EVENT_INVOKE_CONFIG, **changes), "ingest-on-failure")


def test_scheduled_function_with_a_dead_letter_queue_passes() -> None:
    assert lambda_dead_letter_violations([_function(), _schedule()]) == []


def test_scheduled_function_without_a_dead_letter_queue() -> None:
    function = _function(deadLetterConfig=None)
    (finding,) = lambda_dead_letter_violations([function, _schedule()])
    assert finding.urn == function.urn
    assert finding.message == (
        "function pgf-ingest is invoked asynchronously by the EventBridge Scheduler schedule ingest-daily, and "
        "Lambda drops an event that still fails after its retries: set deadLetterConfig.targetArn (an SQS queue "
        "or SNS topic) or an on-failure destination (aws.lambda.FunctionEventInvokeConfig)"
    )


@pytest.mark.parametrize("dead_letter", [{}, {"targetArn": ""}])
def test_an_empty_dead_letter_config_is_none(dead_letter: dict[str, str]) -> None:
    assert lambda_dead_letter_violations([_function(deadLetterConfig=dead_letter), _schedule()])


@pytest.mark.parametrize("dead_letter", [UNKNOWN, {"targetArn": UNKNOWN}])
def test_unknown_dead_letter_queue_is_not_judged(dead_letter: Any) -> None:
    assert lambda_dead_letter_violations([_function(deadLetterConfig=dead_letter), _schedule()]) == []


def test_an_on_failure_destination_of_the_invoked_alias_counts() -> None:
    function = _function(deadLetterConfig=None)
    assert lambda_dead_letter_violations([function, _schedule(), _invoke_config()]) == []
    arn = _invoke_config(functionName=f.FUNCTION_ARN)
    assert lambda_dead_letter_violations([function, _schedule(), arn]) == []
    qualified = _invoke_config(functionName=f"{f.FUNCTION_ARN}:live", qualifier=None)
    assert lambda_dead_letter_violations([function, _schedule(), qualified]) == []
    unknown = _invoke_config(qualifier=UNKNOWN)
    assert lambda_dead_letter_violations([function, _schedule(), unknown]) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"qualifier": "previous"},  # another alias
        {"qualifier": None},  # the unqualified function, not the alias the schedule invokes
        {"functionName": "pgf-other"},
        {"destinationConfig": {"onSuccess": {"destination": f.DEAD_LETTER_QUEUE_ARN}}},
        {"destinationConfig": {"onFailure": {"destination": ""}}},
    ],
)
def test_an_invoke_config_that_does_not_cover_the_trigger(changes: dict[str, Any]) -> None:
    function = _function(deadLetterConfig=None)
    assert lambda_dead_letter_violations([function, _schedule(), _invoke_config(**changes)])


def test_unqualified_trigger_and_config() -> None:
    function = _function(deadLetterConfig=None)
    for arn in (f.FUNCTION_ARN, f"{f.FUNCTION_ARN}:$LATEST"):
        assert lambda_dead_letter_violations([function, _schedule(arn), _invoke_config(qualifier=None)]) == []
        assert lambda_dead_letter_violations([function, _schedule(arn), _invoke_config()])


@pytest.mark.parametrize(
    ("kind", "props", "what"),
    [
        (EVENT_TARGET, {"rule": "pgf-nightly", "arn": f.FUNCTION_ARN}, "EventBridge rule target"),
        (TOPIC_SUBSCRIPTION, {"protocol": "lambda", "endpoint": f.FUNCTION_ARN}, "SNS subscription"),
        (
            BUCKET_NOTIFICATION,
            {"bucket": "pgf-landing", "lambdaFunctions": [{"lambdaFunctionArn": f.FUNCTION_ARN}]},
            "S3 bucket notification",
        ),
    ],
)
def test_other_asynchronous_triggers(kind: str, props: dict[str, Any], what: str) -> None:
    trigger = f.resource(kind, props, "trigger")
    assert lambda_dead_letter_violations([_function(), trigger]) == []
    (finding,) = lambda_dead_letter_violations([_function(deadLetterConfig=None), trigger])
    assert f"invoked asynchronously by the {what} trigger" in finding.message


@pytest.mark.parametrize(
    "trigger",
    [
        f.resource(TOPIC_SUBSCRIPTION, {"protocol": "sqs", "endpoint": f.DEAD_LETTER_QUEUE_ARN}, "queue"),
        f.resource(EVENT_TARGET, {"rule": "pgf-nightly", "arn": f.DEAD_LETTER_QUEUE_ARN}, "queue"),
        _schedule(UNKNOWN),
        _schedule(f.FUNCTION_ARN.replace(f.REGION, f.COPY_REGION)),  # a function of that name in another region
        _schedule(f.FUNCTION_ARN.replace(f.ACCOUNT, f.BACKUP_ACCOUNT)),
        _schedule(f.FUNCTION_ARN.replace("pgf-ingest", "pgf-ingest-v2")),
    ],
)
def test_triggers_of_other_targets_are_not_this_functions(trigger: Resource) -> None:
    assert lambda_dead_letter_violations([_function(deadLetterConfig=None), trigger]) == []


def test_a_function_without_asynchronous_trigger_is_not_judged() -> None:
    assert lambda_dead_letter_violations([_function(deadLetterConfig=None)]) == []


def test_a_function_known_by_its_arn_and_reported_once() -> None:
    function = _function(deadLetterConfig=None, name=None, arn=f.FUNCTION_ARN)
    second = f.resource(EVENT_TARGET, {"rule": "pgf-nightly", "arn": f.FUNCTION_ARN}, "nightly")
    (finding,) = lambda_dead_letter_violations([function, _schedule(), second])
    assert finding.urn == function.urn
    assert lambda_dead_letter_violations([_function(deadLetterConfig=None, name=None), _schedule()]) == []
