"""Lambda functions: no secret in plain environment variables, versions in prod, a dead-letter queue when async."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple

from pgf_backup_policy.model import Context, Finding, Resource, as_bool, as_list, is_unknown

FUNCTION: Final = "aws:lambda/function:Function"
EVENT_INVOKE_CONFIG: Final = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
SCHEDULE: Final = "aws:scheduler/schedule:Schedule"
EVENT_TARGET: Final = "aws:cloudwatch/eventTarget:EventTarget"
TOPIC_SUBSCRIPTION: Final = "aws:sns/topicSubscription:TopicSubscription"
BUCKET_NOTIFICATION: Final = "aws:s3/bucketNotification:BucketNotification"

# ---------------------------------------------------------------------------------------------
# lambda-no-plaintext-secrets

# Matched on the name in upper snake case (dbPassword -> DB_PASSWORD). PASS and PWD only as whole words
# (BYPASS_CACHE, PGPASSFILE are not secrets); SECRET and TOKEN only at the end of a word (CLIENTSECRET,
# AUTHTOKEN are; SECRETARY, MAX_TOKENS, TOKENIZER are not); a key only when it is an API or private key
# (KMS_KEY_ARN, EXPORT_KEY_PREFIX, PARTITION_KEY are not).
_SECRET_WORD = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|SECRETS?(?![A-Z])|TOKEN(?![A-Z])"
    r"|(?:API|PRIVATE)_?KEYS?(?![A-Z])|(?<![A-Z])(?:PASS|PWD)(?![A-Z])"
)
# Names of the services that keep secrets, and of AWS's Parameters and Secrets Lambda Extension, whose own
# settings (SECRETS_MANAGER_TTL, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT) are not secrets.
_SECRET_SERVICE = re.compile(r"PARAMETERS_SECRETS_EXTENSION|SECRETS_?MANAGER")
# A last word that says the value points at a secret rather than holding it (DB_PASSWORD_SECRET_ARN).
_REFERENCE_WORDS: Final = frozenset({"ARN", "NAME", "ID", "PATH", "PARAM", "PARAMETER", "REF"})
# Values that point at a secret store: Secrets Manager or SSM ARNs, SSM parameter paths, dynamic references.
_REFERENCE_VALUE = re.compile(r"^(arn:aws[\w-]*:(secretsmanager|ssm):|/[\w./-]+$|\{\{resolve:)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Z0-9]+")
# AWS access key ids (long-term AKIA, temporary ASIA) and 40-character secret access keys. A secret key
# mixes upper and lower case with digits or / or +; a 40-character SHA-1 (a commit id) is one case only.
_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_SECRET_ACCESS_KEY = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")

_STORE = "store it in Secrets Manager or SSM Parameter Store and pass its ARN or name instead"


def _words(name: str) -> str:
    """An environment variable name in upper snake case (dbPassword, db-password -> DB_PASSWORD)."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", name).upper()).strip("_")


def looks_secret(name: str) -> bool:
    """True for an environment variable name that suggests it holds a secret (not one that refers to it)."""
    words = _words(name)
    if words.rpartition("_")[2] in _REFERENCE_WORDS:
        return False
    return bool(_SECRET_WORD.search(_SECRET_SERVICE.sub("", words)))


def aws_key_in(value: str) -> str | None:
    """What AWS credential a value looks like ('an AWS access key id', 'an AWS secret access key'), or None."""
    if _ACCESS_KEY_ID.search(value):
        return "an AWS access key id"
    for match in _SECRET_ACCESS_KEY.finditer(value):
        key = match.group()
        if re.search("[A-Z]", key) and re.search("[a-z]", key) and re.search(r"[0-9/+]", key):
            return "an AWS secret access key"
    return None


def _variable_problem(name: str, value: Any) -> str | None:
    # Values are never quoted: the message is printed by every preview.
    if is_unknown(value) or not isinstance(value, str) or not value:
        return None
    credential = aws_key_in(value)
    if credential is not None:
        return (
            f"environment variable {name} holds what looks like {credential}: give the function's execution role "
            f"the permissions instead, or {_STORE}"
        )
    if looks_secret(name) and not _REFERENCE_VALUE.match(value):
        return (
            f"environment variable {name} holds a secret in plain text, readable by anyone who can read the "
            f"function's configuration: {_STORE} (e.g. in {name}_SECRET_ARN)"
        )
    return None


def lambda_no_plaintext_secrets_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """No environment variable holds a secret: secret-like names hold references; no value is an AWS key."""
    if resource_type != FUNCTION:
        return []
    environment = props.get("environment")
    variables = environment.get("variables") if isinstance(environment, Mapping) else None
    if not isinstance(variables, Mapping):
        return []
    # A Pulumi secret is no exception: it is encrypted in Pulumi's state only, and Lambda returns it in clear
    # with the rest of the function's configuration. (The CLI also hands it to the pack unwrapped.)
    problems = (_variable_problem(str(name), value) for name, value in sorted(variables.items()))
    return [problem for problem in problems if problem is not None]


# ---------------------------------------------------------------------------------------------
# lambda-publishes-versions


def lambda_publishes_versions_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """Prod functions publish a version on each deploy, so an alias can roll back to the previous code."""
    if resource_type != FUNCTION or ctx.tier_of(props) != "prod":
        return []
    publish = props.get("publish")
    if is_unknown(publish) or as_bool(publish) is True:
        return []
    return ["this prod function does not publish versions: set publish=True and point an alias at the version"]


# ---------------------------------------------------------------------------------------------
# lambda-dead-letter (stack level)

_FUNCTION_ARN = re.compile(
    r"^arn:aws[\w-]*:lambda:(?P<region>[\w-]+):(?P<account>\d{12}):function:(?P<name>[\w-]+)"
    r"(?::(?P<qualifier>[\w$-]+))?$"
)


class _Target(NamedTuple):
    """A function as a trigger or an event invoke config names it: where, which, and which version or alias."""

    region: str | None
    account: str | None
    name: str
    qualifier: Any  # None for the unqualified function ($LATEST); UNKNOWN matches any


def _qualifier(value: Any) -> Any:
    return None if value in (None, "", "$LATEST") else value


def _arn_target(arn: Any) -> _Target | None:
    """The function a Lambda ARN designates (triggers always name functions by ARN)."""
    match = _FUNCTION_ARN.match(arn) if isinstance(arn, str) else None
    if match is None:
        return None
    region, account, name, qualifier = match.group("region", "account", "name", "qualifier")
    return _Target(region, account, name, _qualifier(qualifier))


def _schedule_arns(props: Mapping[str, Any]) -> list[Any]:
    target = props.get("target")
    return [target.get("arn")] if isinstance(target, Mapping) else []


def _subscription_arns(props: Mapping[str, Any]) -> list[Any]:
    return [props.get("endpoint")] if props.get("protocol") == "lambda" else []


def _notification_arns(props: Mapping[str, Any]) -> list[Any]:
    return [n.get("lambdaFunctionArn") for n in as_list(props.get("lambdaFunctions")) if isinstance(n, Mapping)]


# Resources that invoke a function asynchronously (Lambda retries, then drops the event), with what they
# are called in messages and where they name the function.
_ASYNC_TRIGGERS: Final[Mapping[str, tuple[str, Callable[[Mapping[str, Any]], list[Any]]]]] = {
    SCHEDULE: ("EventBridge Scheduler schedule", _schedule_arns),
    EVENT_TARGET: ("EventBridge rule target", lambda props: [props.get("arn")]),
    TOPIC_SUBSCRIPTION: ("SNS subscription", _subscription_arns),
    BUCKET_NOTIFICATION: ("S3 bucket notification", _notification_arns),
}
DEAD_LETTER_TYPES: Final = frozenset({FUNCTION, EVENT_INVOKE_CONFIG, *_ASYNC_TRIGGERS})


def _is_set(value: Any) -> bool:
    """A non-empty ARN, or one that will only be known once created."""
    return is_unknown(value) or (isinstance(value, str) and bool(value))


def _function_name(function: Resource) -> str | None:
    name = function.props.get("name")
    if isinstance(name, str) and name:
        return name
    parsed = _arn_target(function.props.get("arn"))  # a stack analysed after an update has its outputs
    return parsed.name if parsed is not None else None


def _designates(target: _Target, function: Resource, name: str) -> bool:
    def same(named: str | None, actual: str | None) -> bool:
        return named is None or actual is None or named == actual

    return (
        target.name == name and same(target.region, function.ctx.region) and same(target.account, function.ctx.account)
    )


def _has_dead_letter_queue(props: Mapping[str, Any]) -> bool:
    config = props.get("deadLetterConfig")
    return is_unknown(config) or (isinstance(config, Mapping) and _is_set(config.get("targetArn")))


def _on_failure_targets(resources: Sequence[Resource]) -> Iterator[_Target]:
    """The functions (and qualifiers) whose event invoke config sends failed events to a destination."""
    for config in resources:
        if config.type != EVENT_INVOKE_CONFIG:
            continue
        destinations = config.props.get("destinationConfig")
        on_failure = destinations.get("onFailure") if isinstance(destinations, Mapping) else None
        if not (isinstance(on_failure, Mapping) and _is_set(on_failure.get("destination"))):
            continue
        reference = config.props.get("functionName")  # a name or an ARN, possibly qualified
        target = _arn_target(reference)
        if target is None and isinstance(reference, str) and reference:
            target = _Target(config.ctx.region, config.ctx.account, reference, None)
        if target is None:
            continue
        qualifier = config.props.get("qualifier")
        yield target if qualifier is None else target._replace(qualifier=_qualifier(qualifier))


def lambda_dead_letter_violations(resources: Sequence[Resource]) -> list[Finding]:
    """A function invoked asynchronously keeps its failed events: a dead-letter queue or an on-failure destination."""
    functions = [(f, name) for f in resources if f.type == FUNCTION and (name := _function_name(f)) is not None]
    covered = list(_on_failure_targets(resources))
    findings: dict[str, Finding] = {}
    for trigger in resources:
        if trigger.type not in _ASYNC_TRIGGERS:
            continue
        what, arns_of = _ASYNC_TRIGGERS[trigger.type]
        for target in filter(None, map(_arn_target, arns_of(trigger.props))):
            for function, name in functions:
                if function.urn in findings or not _designates(target, function, name):
                    continue
                if _has_dead_letter_queue(function.props) or any(
                    (is_unknown(c.qualifier) or c.qualifier == target.qualifier) and _designates(c, function, name)
                    for c in covered
                ):
                    continue
                findings[function.urn] = Finding(
                    function.urn,
                    f"function {name} is invoked asynchronously by the {what} {trigger.name}, and Lambda drops an "
                    "event that still fails after its retries: set deadLetterConfig.targetArn (an SQS queue or SNS "
                    "topic) or an on-failure destination (aws.lambda.FunctionEventInvokeConfig)",
                )
    return list(findings.values())
