"""What every rule sees: plain property values, where a resource lives, and the pack's settings."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from pulumi_policy.proxy import UnknownValueError

from pgf_backup.constants import (
    DEFAULT_BREAK_GLASS_ROLE,
    DEFAULT_DEPLOY_ROLE,
    TAG_BACKUP_TIER,
    TIERS,
)
from pgf_backup.limits import DEFAULT_TIER_BOUNDS, PROD_MIN_RETENTION_DAYS


class Unknown(enum.Enum):
    """A value the engine cannot know during a preview (the output of a resource not created yet)."""

    VALUE = "<unknown during preview>"


UNKNOWN: Final = Unknown.VALUE

# The strategy's retention per tier (lab/dev 7-14 days, prod at least 35), in days.
DEFAULT_BOUNDS: Final[Mapping[str, tuple[int, int]]] = DEFAULT_TIER_BOUNDS

_TIER_SUFFIX = re.compile(r"[-_.]")
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}|\*):role/(?:[\w+=,.@-]+/)*([\w+=,.@*-]+)$")
_ACCOUNT_IN_ARN = re.compile(r"^arn:aws[\w-]*:[\w-]+:[\w-]*:(\d{12}):")


class Finding(NamedTuple):
    """A stack-level violation: the URN it is about ('' for the whole stack) and what is wrong."""

    urn: str
    message: str


# ---------------------------------------------------------------------------------------------
# Values


def plain(value: Any) -> Any:
    """Property values as plain dicts, lists and scalars; unknowns become UNKNOWN, integral floats ints."""
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key in value:
            try:
                result[str(key)] = plain(value[key])
            except UnknownValueError:
                result[str(key)] = UNKNOWN
        return result
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire carries every number as a double; days and counts are integers
    return value


def is_unknown(value: Any) -> bool:
    """True for a value that will only be known once the engine has created its inputs."""
    return value is UNKNOWN


def decoded(value: Any) -> Any:
    """A value that may arrive as JSON text (provider config, policy documents) as data; else as is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def as_list(value: Any) -> list[Any]:
    """A scalar or a list as a list (IAM and AWS Backup accept both shapes); None as []."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_int(value: Any) -> int | None:
    """An integer from a number or a numeric string (organization policies quote their numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def as_bool(value: Any) -> bool | None:
    """A boolean from a bool or its text ('true'/'false'); None when neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def string_map(value: Any) -> dict[str, str]:
    """A tag map with only known string values."""
    value = decoded(value)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def account_of_arn(arn: Any) -> str | None:
    """The account id in an ARN, if it has one."""
    if not isinstance(arn, str):
        return None
    match = _ACCOUNT_IN_ARN.match(arn)
    return match.group(1) if match else None


def role_of_arn(arn: str) -> tuple[str, str] | None:
    """(account or '*', role name) of an IAM role ARN, whatever its path; None for anything else."""
    match = _ROLE_ARN.match(arn)
    return (match.group(1), match.group(2)) if match else None


def stack_of_urn(urn: str) -> str:
    """The stack name of a URN (`urn:pulumi:<stack>::<project>::<type>::<name>`)."""
    return urn.removeprefix("urn:pulumi:").split("::", 1)[0]


def tier_of_stack(stack: str) -> str | None:
    """The tier a stack name says: `prod`, or a last `-`/`_`/`.` part that is a tier (`pgf-api-prod`)."""
    if stack in TIERS:
        return stack
    last = _TIER_SUFFIX.split(stack)[-1]
    return last if last in TIERS else None


# ---------------------------------------------------------------------------------------------
# Settings (the pack's config) and where a resource lives


@dataclass(frozen=True)
class Settings:
    """The pack's configuration for one policy, with the strategy's defaults."""

    tier: str | None = None
    bounds: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_BOUNDS))
    break_glass_role: str = DEFAULT_BREAK_GLASS_ROLE
    deploy_role: str = DEFAULT_DEPLOY_ROLE
    allow_compliance_lock_outside_prod: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Settings from a policy's config (keys as in `registry.SETTINGS_SCHEMA`); refuses bad values."""
        tier = config.get("tier")
        if tier is not None and tier not in TIERS:
            raise ValueError(f"policy config 'tier': {tier!r} is not one of {', '.join(TIERS)}")
        bounds = dict(DEFAULT_BOUNDS)
        given = config.get("tierBounds") or {}
        if not isinstance(given, Mapping):
            raise ValueError("policy config 'tierBounds' must map a tier to {minDays, maxDays}")
        for name, value in given.items():
            if name not in TIERS or not isinstance(value, Mapping):
                raise ValueError(f"policy config 'tierBounds.{name}': expected a tier ({', '.join(TIERS)}) -> object")
            low = as_int(value.get("minDays", bounds[name][0]))
            high = as_int(value.get("maxDays", bounds[name][1]))
            if low is None or high is None or not 1 <= low <= high:
                raise ValueError(f"policy config 'tierBounds.{name}': need 1 <= minDays <= maxDays (days)")
            bounds[name] = (low, high)
        if bounds["prod"][0] < PROD_MIN_RETENTION_DAYS:
            raise ValueError(
                f"policy config 'tierBounds.prod.minDays': {bounds['prod'][0]} is below the strategy's prod "
                f"floor of {PROD_MIN_RETENTION_DAYS} days"
            )
        return cls(
            tier=tier,
            bounds=bounds,
            break_glass_role=str(config.get("breakGlassRole") or DEFAULT_BREAK_GLASS_ROLE),
            deploy_role=str(config.get("deployRole") or DEFAULT_DEPLOY_ROLE),
            allow_compliance_lock_outside_prod=bool(config.get("allowComplianceLockOutsideProd", False)),
        )

    @property
    def prod_min_days(self) -> int:
        """The shortest retention prod allows (Vault Lock minimum, daily backups)."""
        return self.bounds["prod"][0]


@dataclass(frozen=True)
class Context:
    """Where a resource lives and how it is registered: stack, account, region, provider tags, protect."""

    stack: str
    settings: Settings = field(default_factory=Settings)
    account: str | None = None
    region: str | None = None
    default_tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False

    @property
    def stack_tier(self) -> str | None:
        """The tier of the whole stack: the config's `tier`, else the one its name says."""
        return self.settings.tier or tier_of_stack(self.stack)

    def tags_of(self, props: Mapping[str, Any]) -> dict[str, str]:
        """The tags AWS will set: the provider's default tags, overridden by the resource's own."""
        return {**self.default_tags, **string_map(props.get("tags"))}

    def tier_of(self, props: Mapping[str, Any]) -> str | None:
        """The tier a resource belongs to: the stack's, else (backup account) its `backup:tier` tag."""
        if self.stack_tier is not None:
            return self.stack_tier
        tagged = self.tags_of(props).get(TAG_BACKUP_TIER)
        return tagged if tagged in TIERS else None


def context_of(
    urn: str,
    provider_props: Mapping[str, Any] | None,
    settings: Settings,
    props: Mapping[str, Any] | None = None,
    protect: bool = False,
) -> Context:
    """The context of a resource from its URN, its provider's properties and its own `region`."""
    provider = {key: decoded(value) for key, value in (provider_props or {}).items()}
    accounts = [a for a in as_list(provider.get("allowedAccountIds")) if isinstance(a, str)]
    account = accounts[0] if len(accounts) == 1 else None
    if account is None:  # no allow-list: the account of the role the provider assumes, if any
        roles = [r for r in as_list(provider.get("assumeRoles") or provider.get("assumeRole")) if isinstance(r, dict)]
        account = account_of_arn(roles[0].get("roleArn")) if roles else None
    own_region = (props or {}).get("region")
    region = own_region if isinstance(own_region, str) and own_region else provider.get("region")
    default_tags = provider.get("defaultTags")
    tags = string_map(default_tags.get("tags")) if isinstance(default_tags, Mapping) else {}
    return Context(
        stack=stack_of_urn(urn),
        settings=settings,
        account=account,
        region=region if isinstance(region, str) else None,
        default_tags=tags,
        protect=protect,
    )


@dataclass(frozen=True)
class Resource:
    """One resource of the stack, as stack-level rules see it."""

    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    ctx: Context
    # The URN of its parent (a component), '' for none: what groups a plan's selections before its id is known.
    parent: str = ""

    @property
    def where(self) -> tuple[str | None, str | None]:
        """(account, region) of the resource, to pair it with its companions (lock, policy...)."""
        return self.ctx.account, self.ctx.region
