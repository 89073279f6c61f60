"""Lambda rules: no plaintext secret in environment variables; prod functions publish versions."""

from __future__ import annotations

import pytest
from pgf_backup_policy.lambdas import (
    FUNCTION,
    lambda_no_plaintext_secrets_violations,
    lambda_publishes_versions_violations,
    looks_secret,
)
from pgf_backup_policy.model import UNKNOWN

from tests.policy import fixtures as f


def _with(**variables: object) -> dict[str, object]:
    return f.changed(f.FUNCTION, environment={"variables": {**f.FUNCTION["environment"]["variables"], **variables}})


def test_function_with_secret_references_passes() -> None:
    assert lambda_no_plaintext_secrets_violations(FUNCTION, f.FUNCTION, f.ctx()) == []


@pytest.mark.parametrize(
    "name", ["DB_PASSWORD", "db_passwd", "PGPASS", "CLIENT_SECRET", "GITHUB_TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY"]
)
def test_literal_secret_refused(name: str) -> None:
    (message,) = lambda_no_plaintext_secrets_violations(FUNCTION, _with(**{name: "hunter2"}), f.ctx())
    assert message.startswith(f"environment variable {name} holds a literal value")


def test_pulumi_secret_is_still_plaintext_in_the_function_configuration() -> None:
    # The offline engine records secrets as "[secret]": Lambda would still show the value in clear.
    assert lambda_no_plaintext_secrets_violations(FUNCTION, _with(DB_PASSWORD="[secret]"), f.ctx())


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:secretsmanager:ca-central-1:400000000040:secret:pgf/db-AbCdEf",
        "arn:aws:ssm:ca-central-1:400000000040:parameter/pgf/db",
        "/pgf/db/password",
        "{{resolve:secretsmanager:pgf/db}}",
        "",
        UNKNOWN,
    ],
)
def test_references_and_unknowns_pass(value: object) -> None:
    assert lambda_no_plaintext_secrets_violations(FUNCTION, _with(DB_PASSWORD=value), f.ctx()) == []


def test_reference_names_are_not_secrets() -> None:
    assert not looks_secret("DB_PASSWORD_SECRET_ARN")
    assert not looks_secret("TOKEN_PARAMETER")
    assert not looks_secret("LOG_LEVEL")
    assert looks_secret("SECRET")


def test_function_without_environment() -> None:
    assert lambda_no_plaintext_secrets_violations(FUNCTION, f.changed(f.FUNCTION, environment=None), f.ctx()) == []


def test_prod_function_publishes_versions() -> None:
    assert lambda_publishes_versions_violations(FUNCTION, f.FUNCTION, f.ctx()) == []
    (message,) = lambda_publishes_versions_violations(FUNCTION, f.changed(f.FUNCTION, publish=None), f.ctx())
    assert "does not publish versions" in message
    assert lambda_publishes_versions_violations(FUNCTION, f.changed(f.FUNCTION, publish=False), f.ctx("dev")) == []


def test_other_types_are_ignored() -> None:
    assert lambda_no_plaintext_secrets_violations("aws:s3/bucket:Bucket", {"PASSWORD": "x"}, f.ctx()) == []
    assert lambda_publishes_versions_violations("aws:s3/bucket:Bucket", {}, f.ctx()) == []
