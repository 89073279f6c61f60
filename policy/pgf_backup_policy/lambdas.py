"""Lambda functions: no secret in plain environment variables; prod functions publish versions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pgf_backup_policy.model import Context, as_bool, is_unknown

FUNCTION: Final = "aws:lambda/function:Function"

_SECRET_NAME = re.compile(r"PASS(WORD|WD)?|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
# A name that says the value points at a secret rather than holding it (DB_PASSWORD_SECRET_ARN).
_REFERENCE_NAME = re.compile(r"_(ARN|NAME|ID|PATH|PARAM|PARAMETER|REF)$", re.IGNORECASE)
# Values that point at a secret store: Secrets Manager or SSM ARNs, SSM paths, dynamic references.
_REFERENCE_VALUE = re.compile(r"^(arn:aws[\w-]*:(secretsmanager|ssm):|/|\{\{resolve:)")


def looks_secret(name: str) -> bool:
    """True for an environment variable name that suggests it holds a secret."""
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_NAME.search(name)


def lambda_no_plaintext_secrets_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """Secret-looking environment variables hold references to Secrets Manager or SSM, never values."""
    if resource_type != FUNCTION:
        return []
    environment = props.get("environment")
    variables = environment.get("variables") if isinstance(environment, Mapping) else None
    if not isinstance(variables, Mapping):
        return []
    problems = []
    for name, value in sorted(variables.items()):
        if not looks_secret(name) or is_unknown(value) or value in ("", None):
            continue
        if not (isinstance(value, str) and _REFERENCE_VALUE.match(value)):
            problems.append(
                f"environment variable {name} holds a literal value, readable by anyone who can read the "
                f"function's configuration: store it in Secrets Manager or SSM and pass its ARN ({name}_SECRET_ARN)"
            )
    return problems


def lambda_publishes_versions_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """Prod functions publish a version on each deploy, so an alias can roll back to the previous code."""
    if resource_type != FUNCTION or ctx.tier_of(props) != "prod":
        return []
    publish = props.get("publish")
    if is_unknown(publish) or as_bool(publish) is True:
        return []
    return ["this prod function does not publish versions: set publish=True and point an alias at the version"]
