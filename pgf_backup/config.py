"""Pydantic models of a stack's configuration: the one place config is read and validated."""

from __future__ import annotations

import difflib
import json
import re
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from pgf_backup.constants import (
    CONFIG_NAMESPACE,
    DEFAULT_BREAK_GLASS_ROLE,
    DEFAULT_DEPLOY_ROLE,
    DEFAULT_SERVICE_ROLE,
    ROLE_BACKUP_ACCOUNT,
    ROLE_MANAGEMENT,
    ROLE_WORKLOAD,
    STACK_BACKUP,
    STACK_MANAGEMENT,
)
from pgf_backup.limits import (
    COLD_STORAGE_MIN_DAYS,
    CONTINUOUS_MAX_RETENTION_DAYS,
    DEFAULT_TIER_BOUNDS,
    DEPRECATED_VAULT_EVENTS,
    MAX_RULES_PER_PLAN,
    PROD_MIN_RETENTION_DAYS,
    VAULT_LOCK_MIN_CHANGEABLE_DAYS,
    lock_admits,
)
from pgf_backup.schedules import ScheduleError, utc_schedule

Tier = Literal["lab", "dev", "prod"]
Role = Literal["backup-account", "workload", "management"]


class ConfigError(Exception):
    """A stack's configuration is invalid; the message names each key path and what is allowed."""


# ---------------------------------------------------------------------------------------------
# Field validators


def _account_id(value: str) -> str:
    if not re.fullmatch(r"\d{12}", value):
        raise ValueError(f"{value!r} is not an AWS account id: 12 digits, quoted in YAML")
    return value


@lru_cache(maxsize=1)
def backup_regions() -> dict[str, str]:
    """Regions where AWS Backup has an endpoint, mapped to their partition (botocore's endpoint data)."""
    # The loader alone: a botocore session would cost more than the data it reads.
    from botocore.loaders import Loader

    regions: dict[str, str] = {}
    for part in Loader().load_data("endpoints")["partitions"]:
        endpoints = part.get("services", {}).get("backup", {}).get("endpoints", {})
        for region in endpoints:
            if region in part.get("regions", {}):
                regions[region] = part["partition"]
    return regions


def _region(value: str) -> str:
    known = backup_regions()
    if value in known:
        return value
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{value!r} is not a region where AWS Backup is available{hint} (allowed: {', '.join(sorted(known))})"
    )


_CRON_FIELDS: tuple[tuple[str, int, int, str], ...] = (
    # name, low, high, extra characters AWS allows in that field
    ("minutes", 0, 59, ""),
    ("hours", 0, 23, ""),
    ("day-of-month", 1, 31, "?LW"),
    ("month", 1, 12, ""),
    ("day-of-week", 1, 7, "?L#"),
    ("year", 1970, 2199, ""),
)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _cron_field(name: str, low: int, high: int, extra: str, text: str) -> None:
    names = _MONTHS if name == "month" else _DAYS if name == "day-of-week" else []
    for part in text.split(","):
        if part in ("*", "?") and (part == "*" or "?" in extra):
            continue
        if name == "day-of-month" and re.fullmatch(r"(L|LW|\d{1,2}W)", part):
            continue
        if name == "day-of-week" and re.fullmatch(r"([1-7]|[A-Z]{3})(L|#[1-5])", part):
            continue
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"cron {name} field {text!r}: step {step!r} must be a number of at least 1")
        numbers: list[int] = []
        for bound in base.split("-") if base != "*" else []:
            number = names.index(bound) + 1 if bound in names else None
            if number is None:
                if not bound.isdigit():
                    raise ValueError(
                        f"cron {name} field {text!r}: {bound!r} is not allowed "
                        f"(numbers {low}-{high}{', names' if names else ''}, ',', '-', '/', '*'"
                        f"{', ' + ', '.join(repr(c) for c in extra) if extra else ''})"
                    )
                number = int(bound)
            if not low <= number <= high:
                raise ValueError(f"cron {name} field {text!r}: {number} is outside {low}-{high}")
            numbers.append(number)
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            raise ValueError(f"cron {name} field {text!r}: the range {base} goes backwards")


def _schedule(value: str) -> str:
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", value)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1 or (amount == 1) != (not unit.endswith("s")):
            raise ValueError(f"{value!r}: use 'rate(1 day)' for one unit, 'rate(N days)' for N > 1")
        if unit.startswith("minute") and amount < 60:
            raise ValueError(f"{value!r}: AWS Backup runs at most once an hour (rate >= 60 minutes)")
        return value
    cron = re.fullmatch(r"cron\(([^()]*)\)", value)
    if not cron:
        raise ValueError(
            f"{value!r} is not an AWS schedule: use 'cron(min hour day-of-month month "
            f"day-of-week year)' or 'rate(N hours|days)'"
        )
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ValueError(
            f"{value!r} has {len(fields)} cron fields; AWS needs 6: "
            f"minutes hours day-of-month month day-of-week year, e.g. 'cron(0 5 ? * * *)'"
        )
    for (name, low, high, extra), text in zip(_CRON_FIELDS, fields, strict=True):
        _cron_field(name, low, high, extra, text.upper())
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(f"{value!r}: exactly one of day-of-month and day-of-week must be '?' (AWS cron rule)")
    if not re.fullmatch(r"\d+", fields[0]):
        raise ValueError(f"{value!r}: AWS Backup runs at most once an hour; minutes must be a number")
    return value


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    # The IANA names (tzdata), not host-specific entries such as 'localtime' or 'Factory'.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory", "posixrules"}


def _timezone(value: str) -> str:
    if value not in _time_zones():
        close = difflib.get_close_matches(value, sorted(_time_zones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'America/Toronto', 'UTC'){hint}")
    return value


def _quoted_account_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'{value} is a number: quote account ids in YAML ("{value:012d}"), or a leading zero is lost')
    return value


def _not_bool(value: Any) -> Any:
    # YAML's true/false would otherwise pass as 1/0 days.
    if isinstance(value, bool):
        raise ValueError(f"{value} is a boolean; a number of days is expected")
    return value


AccountId = Annotated[str, BeforeValidator(_quoted_account_id), AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
Schedule = Annotated[str, AfterValidator(_schedule)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
VaultName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{2,50}$")]
RoleName = Annotated[str, Field(pattern=r"^[\w+=,.@/-]{1,64}$")]


# AWS reserves the `aws:` prefix for its own tags.
def _tag_key(value: str) -> str:
    if value.lower().startswith("aws:"):
        raise ValueError(f"{value!r}: the 'aws:' prefix is reserved for AWS's own tags")
    return value


TagKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w\s.:/=+@-]+$"), AfterValidator(_tag_key)]
Days = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=36500)]

# The vault events AWS Backup sends. PutBackupVaultNotifications also accepts deprecated names, and
# "Deprecated events do not return statuses or notifications. Refer to the list above for the supported
# events." (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_PutBackupVaultNotifications.html,
# whose supported list is exactly these: limits.SUPPORTED_VAULT_EVENTS, which a test keeps equal; a
# Literal must spell them out). BACKUP_JOB_COMPLETED is sent for failed and expired backup jobs too, its
# SNS message attribute `State` telling which: "Review sample Amazon SNS notification JSONs for completed,
# failed, and expired backup jobs" (https://docs.aws.amazon.com/aws-backup/latest/devguide/
# backup-notifications.html); a subscription filter policy on `State` keeps only the failures.
VaultEvent = Literal[
    "BACKUP_JOB_STARTED",
    "BACKUP_JOB_COMPLETED",
    "COPY_JOB_STARTED",
    "COPY_JOB_SUCCESSFUL",
    "COPY_JOB_FAILED",
    "RESTORE_JOB_STARTED",
    "RESTORE_JOB_COMPLETED",
    "RECOVERY_POINT_MODIFIED",
    "S3_BACKUP_OBJECT_FAILED",
    "S3_RESTORE_OBJECT_FAILED",
]
DEFAULT_VAULT_EVENTS: tuple[VaultEvent, ...] = (
    "BACKUP_JOB_COMPLETED",
    "COPY_JOB_FAILED",
    "RESTORE_JOB_COMPLETED",
    "RECOVERY_POINT_MODIFIED",
    "S3_BACKUP_OBJECT_FAILED",
    "S3_RESTORE_OBJECT_FAILED",
)


def _supported_vault_event(value: object) -> object:
    if isinstance(value, str) and value in DEPRECATED_VAULT_EVENTS:
        raise ValueError(
            f"{value!r} is a deprecated vault event: AWS Backup accepts it and never sends it. "
            f"Supported: {', '.join(get_args(VaultEvent))}. Failed, aborted and expired backup jobs, failed "
            "copy jobs and failed or aborted restore jobs are alerted by EventBridge rules instead "
            "(JobAlerts, in every account and region)"
        )
    return value


NotifyEvent = Annotated[VaultEvent, BeforeValidator(_supported_vault_event)]


class Model(BaseModel):
    """Base of every config model: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------------------------
# Models


class AirGapped(Model):
    """A logically air-gapped vault: recovery points no account can delete or re-key."""

    min_retention_days: Annotated[int, Field(ge=7, le=36500)]
    max_retention_days: Annotated[int, Field(ge=7, le=36500)]

    @model_validator(mode="after")
    def _ordered(self) -> AirGapped:
        if self.min_retention_days > self.max_retention_days:
            raise ValueError(
                f"min_retention_days ({self.min_retention_days}) must be <= "
                f"max_retention_days ({self.max_retention_days})"
            )
        return self


OptInService = Literal[
    "Aurora", "DocumentDB", "DynamoDB", "EBS", "EC2", "EFS", "FSx", "Neptune", "RDS", "S3", "Redshift"
]
# A key of DescribeRegionSettings' maps. botocore's pattern (^[a-zA-Z0-9\-\_\.]{1,50}$) has no space, yet
# its own GetSupportedResourceTypes documentation lists "SAP HANA on Amazon EC2" and "Storage Gateway".
ResourceType = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,49}$")]
# Full AWS Backup management (cross-account copies, cold storage, independent encryption).
FULLY_MANAGED: tuple[OptInService, ...] = ("DynamoDB", "EFS")


class RegionResourceTypes(Model):
    """The resource types AWS Backup offers in one region, as `aws backup describe-region-settings` lists them."""

    # The keys of ResourceTypeOptInPreference.
    opt_in: Annotated[tuple[ResourceType, ...], Field(min_length=1)]
    # ResourceTypeManagementPreference, as this stack sets it.
    management: dict[ResourceType, bool] = Field(default_factory=dict)


PolicyTarget = Annotated[str, Field(pattern=r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|\d{12})$")]


class Organization(Model):
    """The AWS Organization the accounts belong to."""

    id: Annotated[str | None, Field(pattern=r"^o-[a-z0-9]{10,32}$")] = None
    # Organization mode: where each tier's BACKUP_POLICY is attached (root r-..., OU ou-..., account).
    policy_targets: dict[Tier, Annotated[tuple[PolicyTarget, ...], Field(min_length=1)]] = Field(default_factory=dict)
    # The organization's root (r-...): the management stack's delegation policy names it, as AWS's example does.
    root_id: Annotated[str | None, Field(pattern=r"^r-[0-9a-z]{4,32}$")] = None


class Regions(Model):
    """Primary region of the workloads and the region copies go to."""

    primary: Region
    copy_region: Annotated[Region | None, Field(alias="copy")] = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _distinct(self) -> Regions:
        if self.copy_region == self.primary:
            raise ValueError(
                f"copy region {self.copy_region!r} equals the primary region: "
                "a cross-region copy needs another region (or leave 'copy' out)"
            )
        return self

    @property
    def all(self) -> tuple[str, ...]:
        """The primary region, then the copy region if any."""
        return (self.primary,) if self.copy_region is None else (self.primary, self.copy_region)


class Iam(Model):
    """Role names, the same in every account of the rollout."""

    deploy_role: RoleName = DEFAULT_DEPLOY_ROLE
    break_glass_role: RoleName = DEFAULT_BREAK_GLASS_ROLE
    # The role AWS Backup assumes; organization policies name it in every member account.
    service_role: RoleName = DEFAULT_SERVICE_ROLE

    @model_validator(mode="after")
    def _distinct(self) -> Iam:
        if self.deploy_role == self.break_glass_role:
            raise ValueError("deploy_role and break_glass_role must be different roles")
        return self


class Tags(Model):
    """Values of the strategy's tag scheme that this stack applies."""

    # Also the prefix of vault, plan and topic names: letters, digits and '-' only.
    application: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,29}$")] = "pgf"
    data_classification: Literal["public", "internal", "confidential", "restricted"] = "confidential"
    extra: dict[TagKey, Annotated[str, Field(max_length=256)]] = Field(default_factory=dict)


class Bounds(Model):
    """Retention bounds of a tier, in days."""

    min_days: Days
    max_days: Days

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min_days > self.max_days:
            raise ValueError(f"min_days ({self.min_days}) must be <= max_days ({self.max_days})")
        return self


class TierBounds(Model):
    """Retention bounds per tier; defaults follow the strategy (lab/dev 7-14 days, prod >= 35)."""

    lab: Bounds = Bounds(min_days=DEFAULT_TIER_BOUNDS["lab"][0], max_days=DEFAULT_TIER_BOUNDS["lab"][1])
    dev: Bounds = Bounds(min_days=DEFAULT_TIER_BOUNDS["dev"][0], max_days=DEFAULT_TIER_BOUNDS["dev"][1])
    prod: Bounds = Bounds(min_days=DEFAULT_TIER_BOUNDS["prod"][0], max_days=DEFAULT_TIER_BOUNDS["prod"][1])

    @model_validator(mode="after")
    def _prod_floor(self) -> TierBounds:
        if self.prod.min_days < PROD_MIN_RETENTION_DAYS:
            raise ValueError(
                f"prod.min_days ({self.prod.min_days}) is below the strategy's prod floor of "
                f"{PROD_MIN_RETENTION_DAYS} days"
            )
        return self

    def of(self, tier: Tier) -> Bounds:
        """Bounds of one tier."""
        bounds: Bounds = getattr(self, tier)
        return bounds


class VaultLock(Model):
    """AWS Backup Vault Lock: compliance mode (immutable after the grace time) or governance."""

    mode: Literal["compliance", "governance"]
    min_retention_days: Annotated[int, Field(ge=1, le=36500)]
    max_retention_days: Annotated[int, Field(ge=1, le=36500)]
    changeable_for_days: Annotated[int | None, Field(ge=VAULT_LOCK_MIN_CHANGEABLE_DAYS)] = None

    @model_validator(mode="after")
    def _coherent(self) -> VaultLock:
        if self.min_retention_days > self.max_retention_days:
            raise ValueError(
                f"min_retention_days ({self.min_retention_days}) must be <= "
                f"max_retention_days ({self.max_retention_days})"
            )
        if self.mode == "compliance" and self.changeable_for_days is None:
            raise ValueError(
                "compliance mode needs changeable_for_days (>= 3): the grace time before the lock becomes immutable"
            )
        if self.mode == "governance" and self.changeable_for_days is not None:
            raise ValueError(
                "changeable_for_days makes the lock a compliance lock; remove it for "
                "governance mode or set mode: compliance"
            )
        return self


class Vault(Model):
    """One backup vault, created in each region of the stack."""

    tier: Tier
    name: VaultName | None = None
    lock: VaultLock | None = None
    notify_events: Annotated[tuple[NotifyEvent, ...], Field(min_length=1)] = DEFAULT_VAULT_EVENTS
    # Backup account only: also a logically air-gapped vault of this tier, a further copy target.
    air_gapped: AirGapped | None = None

    @property
    def hardened(self) -> bool:
        """Production hardening of this vault and its key (protected, retained, guarded): the prod tier."""
        return self.tier == "prod"


class Lifecycle(Model):
    """How long a recovery point (or a copy of it) is kept."""

    delete_after_days: Days
    cold_storage_after_days: Days | None = None

    @model_validator(mode="after")
    def _cold_storage(self) -> Lifecycle:
        cold = self.cold_storage_after_days
        if cold is not None and self.delete_after_days < cold + COLD_STORAGE_MIN_DAYS:
            raise ValueError(
                f"delete_after_days ({self.delete_after_days}) must be at least "
                f"{COLD_STORAGE_MIN_DAYS} days after cold_storage_after_days ({cold}): "
                f"AWS Backup keeps cold storage for 90 days minimum, so >= {cold + COLD_STORAGE_MIN_DAYS}"
            )
        return self


CopyTarget = Literal["backup_account", "copy_region", "air_gapped"]


class Copies(Model):
    """Lifecycle of each copy; a copy left out keeps the rule's own lifecycle."""

    backup_account: Lifecycle | None = None
    copy_region: Lifecycle | None = None
    air_gapped: Lifecycle | None = None


class Rule(Lifecycle):
    """One scheduled backup rule of a tier's plan."""

    schedule: Schedule
    timezone: TimeZone = "UTC"
    start_window_minutes: Annotated[int, Field(ge=60, le=43200)] = 60
    completion_window_minutes: Annotated[int, Field(ge=120, le=43200)] = 480
    recovery_point_tags: dict[TagKey, Annotated[str, Field(max_length=256)]] = Field(default_factory=dict)
    copies: Copies = Copies()
    # The continuous backup's rule (point-in-time restore) is a `ContinuousRule`.
    continuous: ClassVar[bool] = False

    @model_validator(mode="after")
    def _windows(self) -> Rule:
        if self.completion_window_minutes <= self.start_window_minutes:
            raise ValueError(
                f"completion_window_minutes ({self.completion_window_minutes}) must be greater "
                f"than start_window_minutes ({self.start_window_minutes})"
            )
        return self

    def lifecycle(self, target: CopyTarget | None = None) -> Lifecycle:
        """Lifecycle of the recovery point (no target) or of one of its copies."""
        own = Lifecycle(delete_after_days=self.delete_after_days, cold_storage_after_days=self.cold_storage_after_days)
        copy: Lifecycle | None = getattr(self.copies, target) if target else None
        return copy or own

    def key(self, prefix: str, name: str) -> str:
        """The config key path of this rule under a plan's `prefix` (`plan`, `plans.<tier>`)."""
        return f"{prefix}.continuous" if self.continuous else f"{prefix}.rules.{name}"

    def retention_key(self, prefix: str, name: str) -> str:
        """The config key path of this rule's own retention."""
        return f"{self.key(prefix, name)}.{'retention_days' if self.continuous else 'delete_after_days'}"


class ContinuousRule(Rule):
    """The rule of a plan's continuous backup: its lifecycle is the point-in-time restore window."""

    continuous: ClassVar[bool] = True


class Continuous(Model):
    """Continuous backup (point-in-time restore) for the resource types that support it (RDS, S3)."""

    enabled: bool = True
    retention_days: Annotated[int, Field(ge=1, le=CONTINUOUS_MAX_RETENTION_DAYS)] = 35
    schedule: Schedule = "cron(0 4 ? * * *)"
    timezone: TimeZone = "UTC"
    # Copies of a continuous recovery point are snapshots: their own lifecycle may be longer.
    copies: Copies = Copies()

    def as_rule(self) -> Rule:
        """The continuous backup as a plan rule (its lifecycle is the PITR window)."""
        return ContinuousRule(
            schedule=self.schedule,
            timezone=self.timezone,
            delete_after_days=self.retention_days,
            copies=self.copies,
        )


ResourceArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+$")]


class Selection(Model):
    """Which resources a tier's plan protects, besides the strategy's tags."""

    # Also require `application=<tags.application>` on tagged resources.
    scope_application: bool = True
    resources: tuple[ResourceArn, ...] = ()
    not_resources: tuple[ResourceArn, ...] = ()


StackName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
RuleName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,50}$")]
CONTINUOUS_RULE = "continuous"


class Plan(Model):
    """A tier's backup plan: rules, continuous backup, copies and selection."""

    rules: Annotated[dict[RuleName, Rule], Field(min_length=1)]
    continuous: Continuous | None = None
    selection: Selection = Selection()
    copy_to_backup_account: bool = True
    copy_to_region: bool = True
    copy_to_air_gapped: bool = False

    @model_validator(mode="after")
    def _names(self) -> Plan:
        if CONTINUOUS_RULE in self.rules:
            raise ValueError(f"rules.{CONTINUOUS_RULE}: this name is reserved for the 'continuous' section")
        if len(self.all_rules()) > MAX_RULES_PER_PLAN:
            raise ValueError(
                f"rules: {len(self.all_rules())} rules (continuous backup included), AWS Backup allows "
                f"{MAX_RULES_PER_PLAN} per plan"
            )
        return self

    def all_rules(self) -> dict[str, Rule]:
        """Scheduled rules, then the continuous rule if enabled."""
        rules = dict(self.rules)
        if self.continuous and self.continuous.enabled:
            rules[CONTINUOUS_RULE] = self.continuous.as_rule()
        return rules


StorageClass = Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
KmsKeyArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")]
PrincipalArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)$")]
SENSITIVE = ("confidential", "restricted")


# Storage classes AWS Backup for S3 skips.
UNBACKED_CLASSES = ("GLACIER", "DEEP_ARCHIVE")


class Transition(Model):
    """Move current objects to a colder storage class after some days."""

    days: Annotated[int, Field(ge=0, le=36500)]
    storage_class: StorageClass


class ObjectLock(Model):
    """Default Object Lock retention (the bucket must have been created with Object Lock on)."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: Annotated[int, Field(ge=1, le=36500)]


class AppAccess(Model):
    """An application principal keeping its access through the bucket policy."""

    principal: PrincipalArn
    actions: Annotated[tuple[Annotated[str, Field(pattern=r"^s3:[A-Za-z*]+$")], ...], Field(min_length=1)] = (
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    )


class Bucket(Model):
    """An application bucket this stack protects (attached by name, never created or replaced)."""

    classification: Literal["public", "internal", "confidential", "restricted"]
    versioning: bool = True
    encryption: bool = True
    # An existing customer-managed key; by default the stack creates one for the bucket.
    kms_key_arn: KmsKeyArn | None = None
    block_public_access: bool = True
    tls_only: bool = True
    application_access: tuple[AppAccess, ...] = ()
    noncurrent_version_expiration_days: Annotated[int, Field(ge=1, le=36500)] = 90
    transitions: tuple[Transition, ...] = ()
    # True only if the bucket was created with Object Lock enabled (it cannot be turned on later).
    object_lock_enabled: bool = False
    object_lock: ObjectLock | None = None
    backup: bool = True

    @model_validator(mode="after")
    def _coherent(self) -> Bucket:
        problems = []
        if self.classification in SENSITIVE:
            off = [
                k
                for k in ("versioning", "encryption", "block_public_access", "tls_only", "backup")
                if not getattr(self, k)
            ]
            if off:
                problems.append(
                    f"{', '.join(off)} cannot be turned off for a {self.classification} bucket "
                    "(the strategy's S3 prerequisites)"
                )
        if self.backup and not self.versioning:
            problems.append("versioning: AWS Backup for S3 needs versioning on (or set backup: false)")
        if self.backup and any(t.storage_class in UNBACKED_CLASSES for t in self.transitions):
            problems.append(
                "transitions: AWS Backup for S3 does not back up objects in GLACIER (Flexible Retrieval) or "
                "DEEP_ARCHIVE, so they would silently leave the backups; use GLACIER_IR, or set backup: false"
            )
        days = [t.days for t in self.transitions]
        if days != sorted(set(days)):
            problems.append(f"transitions: days {days} must increase from one transition to the next")
        for transition in self.transitions:
            if transition.storage_class in ("STANDARD_IA", "ONEZONE_IA") and transition.days < 30:
                problems.append(
                    f"transitions: S3 moves objects to {transition.storage_class} after 30 days at the earliest, "
                    f"not {transition.days}"
                )
        if self.object_lock and not self.object_lock_enabled:
            problems.append(
                "object_lock: the bucket must have been created with Object Lock enabled; set "
                "object_lock_enabled: true only if it was"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Database(Model):
    """An RDS instance or Aurora cluster this stack protects (never created or modified)."""

    kind: Literal["instance", "cluster"]
    region: Region | None = None
    # `customer`: encrypted with a customer-managed key; `aws-managed`: aws/rds (no cross-account copy).
    encryption: Literal["customer", "aws-managed"] = "customer"
    # The database's own key: its snapshots keep it, so copies to the backup account need a grant on it.
    kms_key_arn: KmsKeyArn | None = None


class AwsConfigRules(Model):
    """AWS Config rules checking the RDS posture (AWS Config must be recording in the account)."""

    enabled: bool = True
    min_backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7


BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
DbIdentifier = Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")]


# The keys the management stack reads (role: management).
MANAGEMENT_KEYS = frozenset({"role", "accounts", "organization", "regions", "iam", "tags", "scheduling"})


class StackConfig(Model):
    """The whole configuration of one stack (keys of the `pgf-backup:` namespace)."""

    role: Role
    tier: Tier | None = None
    accounts: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")], AccountId]
    organization: Organization = Organization()
    regions: Regions
    iam: Iam = Iam()
    tags: Tags = Tags()
    tier_bounds: TierBounds = TierBounds()
    # Required (at least one) except in the management stack, which has none (checked below).
    vaults: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")], Vault] = Field(default_factory=dict)
    scheduling: Literal["account", "organization"] = "account"
    plan: Plan | None = None
    # Backup account in organization mode: each tier's plan, written as a BACKUP_POLICY.
    plans: dict[Tier, Plan] = Field(default_factory=dict)
    # Workload stacks: application data this stack protects.
    buckets: dict[BucketName, Bucket] = Field(default_factory=dict)
    databases: dict[DbIdentifier, Database] = Field(default_factory=dict)
    aws_config_rules: AwsConfigRules = AwsConfigRules()
    # Workload stacks: services opted in to AWS Backup in the account's region settings.
    services: tuple[OptInService, ...] = ("Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3")
    # Workload stacks: per region, every resource type AWS Backup offers there (region settings send whole maps).
    region_resource_types: dict[Region, RegionResourceTypes] = Field(default_factory=dict)
    # Workload stacks: the `backup` stack their StackReference reads (self-managed backends use
    # `organization/<project>/<stack>`; Pulumi Cloud uses `<org>/<project>/<stack>`).
    backup_stack: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+$")] = "organization/pgf-backup/backup"
    # Backup account stack: the workload stacks after it, in rollout order (a canary rollout).
    rollout_order: Annotated[tuple[StackName, ...], Field(min_length=1)] = ("lab", "dev", "prod")

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        errors: list[str] = []
        if STACK_BACKUP not in self.accounts:
            errors.append("accounts: the backup account is missing (key 'backup')")
        if self.role == ROLE_MANAGEMENT:
            self._check_management(errors)
        elif self.role == ROLE_WORKLOAD:
            self._check_workload(errors)
        else:
            self._check_backup_account(errors)
        if self.role != ROLE_MANAGEMENT and not self.vaults:
            errors.append("vaults: at least one vault is needed (vaults.<key> with its tier)")
        backup_id = self.accounts.get(STACK_BACKUP)
        for name, account in self.accounts.items():
            if name == STACK_MANAGEMENT and account == backup_id:
                # RegisterDelegatedAdministrator "Enables the specified member account" (botocore's Organizations
                # model): the management account cannot be AWS Backup's delegated administrator.
                errors.append(
                    f"accounts.{name}: {account} is the backup account's id; the backup account must be a member "
                    "account distinct from the organization's management account"
                )
            elif name != STACK_BACKUP and account == backup_id:
                errors.append(
                    f"accounts.{name}: {account} is the backup account's id; the backup account "
                    "must be distinct from every workload account"
                )
        self._check_vaults(errors)
        self._check_region_resource_types(errors)
        if len(set(self.rollout_order)) != len(self.rollout_order) or STACK_BACKUP in self.rollout_order:
            errors.append(
                f"rollout_order: {list(self.rollout_order)} must list each workload stack once, without 'backup' "
                "(it always goes first)"
            )
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _check_management(self, errors: list[str]) -> None:
        if STACK_MANAGEMENT not in self.accounts:
            errors.append(
                "accounts: the management stack deploys into the organization's management account: "
                "give its id (key 'management')"
            )
        # Every other key configures vaults, plans or data, which the management account does not hold.
        for key in sorted(self.model_fields_set - MANAGEMENT_KEYS):
            errors.append(
                f"{key}: not used by the management stack (role: management), which only sets AWS Backup's global "
                "settings, the delegated administrator and the Organizations delegation policy; allowed keys: "
                f"{', '.join(sorted(MANAGEMENT_KEYS))}"
            )
        if self.scheduling == "organization":
            if not self.organization.id:
                errors.append("organization.id: organization mode needs the organization id (o-...)")
            if not self.organization.root_id:
                errors.append(
                    "organization.root_id: organization mode's delegation policy names the organization's root "
                    "(r-..., from `aws organizations list-roots` in the management account)"
                )

    def _check_backup_account(self, errors: list[str]) -> None:
        if self.buckets or self.databases:
            errors.append("buckets, databases: application data is protected in its workload stack")
        if self.tier is not None:
            errors.append("tier: only a workload stack has a tier; the backup account hosts vaults per tier")
        if self.plan is not None:
            errors.append(
                "plan: the backup account has no plan of its own; in account mode plans live in the workload "
                "stacks (plan), in organization mode here under plans.<tier>"
            )
        if self.scheduling == "account" and self.plans:
            errors.append(
                "plans: only used in organization mode (scheduling: organization); move them to the "
                "workload stacks' plan"
            )
        if self.scheduling == "organization":
            if not self.organization.id:
                errors.append("organization.id: organization mode needs the organization id (o-...)")
            if not self.plans:
                errors.append("plans: organization mode needs a plan per tier (plans.<tier>.rules)")
            for tier in self.plans:
                if tier not in self.organization.policy_targets:
                    errors.append(
                        f"organization.policy_targets.{tier}: where the {tier} BACKUP_POLICY is attached "
                        "(root r-..., OU ou-..., or account ids) is missing"
                    )
                if not self.central_vault_key(tier):
                    errors.append(f"plans.{tier}: no vault of tier {tier!r} in vaults to receive its copies")
        for tier, plan in self.plans.items():
            central = self.central_vault_key(tier) or ""
            vault = self.vaults.get(central)
            locks: dict[CopyTarget | None, tuple[str, VaultLock | None]] = {}
            if vault and vault.lock:
                locks["backup_account"] = (central, vault.lock)
            if vault and vault.air_gapped:
                gap = vault.air_gapped
                locks["air_gapped"] = (
                    f"{central} (air-gapped)",
                    VaultLock(
                        mode="governance",
                        min_retention_days=gap.min_retention_days,
                        max_retention_days=gap.max_retention_days,
                    ),
                )
            elif plan.copy_to_air_gapped:
                errors.append(f"plans.{tier}.copy_to_air_gapped: vault {central!r} has no air_gapped vault")
            self._check_plan(f"plans.{tier}", tier, plan, locks, errors)
            for name, rule in plan.all_rules().items():
                # The BACKUP_POLICY takes UTC crons only: refused here, before any stack runs.
                try:
                    utc_schedule(rule.schedule, rule.timezone)
                except ScheduleError as error:
                    errors.append(f"{rule.key(f'plans.{tier}', name)}.timezone: {error}")

    def _check_workload(self, errors: list[str]) -> None:
        if self.tier is None:
            errors.append("tier: a workload stack needs its tier (lab, dev or prod)")
            return
        if self.tier not in self.accounts:
            errors.append(f"accounts: no account for this stack's tier {self.tier!r}")
        if self.plans:
            errors.append("plans: only the backup account holds plans per tier (organization mode)")
        for key, vault in self.vaults.items():
            if vault.tier != self.tier:
                errors.append(
                    f"vaults.{key}.tier: {vault.tier!r} in a {self.tier!r} stack; a workload "
                    "account only hosts vaults of its own tier"
                )
            if vault.air_gapped is not None:
                errors.append(f"vaults.{key}.air_gapped: logically air-gapped vaults live in the backup account")
        self._check_data(errors)
        if self.scheduling == "organization":
            if self.plan is not None:
                errors.append(
                    "plan: in organization mode the plan comes from the backup stack's BACKUP_POLICY "
                    f"(plans.{self.tier} in Pulumi.backup.yaml); remove it here"
                )
            return
        if self.plan is None:
            errors.append("plan: a workload stack needs its tier's backup plan (plan.rules) in account mode")
            return
        key = self.central_vault_key(self.tier) or ""
        lock = self.vaults[key].lock if key in self.vaults else None
        # The recovery point lands in the local vault, the region copy in its copy-region twin.
        self._check_plan("plan", self.tier, self.plan, {None: (key, lock), "copy_region": (key, lock)}, errors)

    def _check_plan(
        self,
        prefix: str,
        tier: Tier,
        plan: Plan,
        locks: Mapping[CopyTarget | None, tuple[str, VaultLock | None]],
        errors: list[str],
    ) -> None:
        """Every lifecycle of a plan within the tier's bounds and the lock of the vault it lands in."""
        bounds = self.tier_bounds.of(tier)
        targets = self.copy_targets(plan)
        for rule_name, rule in plan.all_rules().items():
            path = rule.key(prefix, rule_name)
            for target in (None, *targets):
                days = rule.lifecycle(target).delete_after_days
                inherited = target is not None and getattr(rule.copies, target) is None
                where = (
                    rule.retention_key(prefix, rule_name)
                    if target is None or inherited
                    else f"{path}.copies.{target}.delete_after_days"
                )
                # A copy that keeps the rule's lifecycle shares its bounds (reported once, for the rule),
                # but not always its vault's lock.
                in_bounds = inherited and not rule.continuous
                pitr_window = rule.continuous and target is None
                if not in_bounds and not pitr_window and days < bounds.min_days:
                    floor = " (prod keeps backups at least 35 days)" if tier == "prod" else ""
                    errors.append(
                        f"{where}: {days} is below the {tier} minimum of {bounds.min_days} days{floor} "
                        f"(tier_bounds.{tier})"
                    )
                if days > bounds.max_days and not in_bounds:
                    errors.append(
                        f"{where}: {days} is above the {tier} maximum of {bounds.max_days} days (tier_bounds.{tier})"
                    )
                vault_key, lock = locks.get(target, ("", None))
                if lock and not lock_admits(lock.min_retention_days, lock.max_retention_days, days):
                    lands = "the copy" if target else "the recovery point"
                    errors.append(
                        f"{where}: {days} is outside the lock of vault {vault_key!r} "
                        f"({lock.min_retention_days}-{lock.max_retention_days} days) where {lands} lands; "
                        "AWS Backup would fail every such job"
                    )

    def _check_region_resource_types(self, errors: list[str]) -> None:
        """Workload stacks list, per region, the whole set of types their region settings send."""
        if self.role != ROLE_WORKLOAD:
            # Opt-in and full management decide how AWS Backup backs up an account's own resources; the
            # backup account has none to back up, and copies land in its vaults whatever its settings say.
            # (The management stack refuses every key it does not read.)
            if self.role == ROLE_BACKUP_ACCOUNT and self.region_resource_types:
                errors.append(
                    "region_resource_types: only workload stacks manage AWS Backup region settings; the backup "
                    "account backs up no resources of its own (it receives copies), so remove it here"
                )
            return
        for region in self.regions.all:
            listed = self.region_resource_types.get(region)
            if listed is None:
                errors.append(
                    f"region_resource_types.{region}: missing: list what `aws backup describe-region-settings "
                    f"--region {region}` returns in this account (opt_in: the keys of ResourceTypeOptInPreference; "
                    "management: ResourceTypeManagementPreference)"
                )
                continue
            if len(set(listed.opt_in)) != len(listed.opt_in):
                errors.append(f"region_resource_types.{region}.opt_in: lists a resource type more than once")
            for service in self.services:
                if service not in listed.opt_in:
                    errors.append(
                        f"services: {service} is not offered by AWS Backup in {region} (it is not in "
                        f"region_resource_types.{region}.opt_in)"
                    )
                elif service in FULLY_MANAGED and listed.management.get(service) is not True:
                    errors.append(
                        f"region_resource_types.{region}.management.{service}: must be true: {service} is in services, "
                        "and copying its recovery points to another account or region needs full AWS Backup management"
                    )

    def _check_data(self, errors: list[str]) -> None:
        copies_cross_account = self.scheduling == "organization" or (
            self.plan is not None and self.plan.copy_to_backup_account
        )
        for name, database in self.databases.items():
            if database.region not in (None, self.regions.primary):
                errors.append(
                    f"databases.{name}.region: {database.region} is not the primary region {self.regions.primary}; "
                    "backup plans and selections are regional, so this stack would never back it up"
                )
            if database.encryption == "customer" and copies_cross_account and database.kms_key_arn is None:
                errors.append(
                    f"databases.{name}.kms_key_arn: required: its snapshots keep the database's key, and the copy "
                    "to the backup account needs a grant on that key (give the key's ARN)"
                )
            if database.encryption == "aws-managed" and copies_cross_account:
                errors.append(
                    f"databases.{name}.encryption: an RDS snapshot encrypted with the AWS-managed key aws/rds "
                    "cannot be copied to another account, and the plan copies to the backup account; "
                    "re-encrypt the database with a customer-managed key (snapshot, copy with a CMK, restore) "
                    "or set plan.copy_to_backup_account: false"
                )

    def central_vault_key(self, tier: str) -> str | None:
        """The first vault of a tier: it receives the tier's recovery points (and copies)."""
        return next((key for key, vault in self.vaults.items() if vault.tier == tier), None)

    def _check_vaults(self, errors: list[str]) -> None:
        names: dict[str, str] = {}
        for key, vault in self.vaults.items():
            name = self.vault_name(key)
            longest = self.air_gapped_vault_name(key) if vault.air_gapped else name
            if not re.fullmatch(r"[A-Za-z0-9_-]{2,50}", longest):
                errors.append(
                    f"vaults.{key}: the vault name {longest!r} (from tags.application and the key, or "
                    f"vaults.{key}.name) must be 2-50 letters, digits, '-' or '_'"
                )
            if name in names:
                errors.append(f"vaults.{key}.name: {name!r} is already the name of vault {names[name]!r}")
            names[name] = key
            lock = vault.lock
            if lock is None:
                continue
            floor = self.tier_bounds.of(vault.tier).min_days
            if vault.tier == "prod" and lock.min_retention_days < floor:
                errors.append(
                    f"vaults.{key}.lock.min_retention_days: {lock.min_retention_days} is below "
                    f"the prod minimum of {floor} days"
                )

    # -- derived values ------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        """Account this stack deploys into."""
        if self.role == ROLE_MANAGEMENT:
            return self.accounts[STACK_MANAGEMENT]
        return self.accounts[STACK_BACKUP if self.role == ROLE_BACKUP_ACCOUNT else str(self.tier)]

    @property
    def workload_account_ids(self) -> list[str]:
        """The accounts other than the backup and the management account (sorted, each once)."""
        return sorted({a for name, a in self.accounts.items() if name not in (STACK_BACKUP, STACK_MANAGEMENT)})

    @property
    def backup_account_id(self) -> str:
        """The dedicated backup account of the organization."""
        return self.accounts[STACK_BACKUP]

    def vault_name(self, key: str) -> str:
        """AWS name of a vault (the same in each region)."""
        return self.vaults[key].name or f"{self.tags.application}-{key}"

    def air_gapped_vault_name(self, key: str) -> str:
        """AWS name of the logically air-gapped vault beside vault `key` (backup account)."""
        return f"{self.vault_name(key)}-air-gapped"

    def plan_name(self, tier: str) -> str:
        """AWS name of a tier's backup plan (and of its BACKUP_POLICY)."""
        return f"{self.tags.application}-{tier}"

    @property
    def hardened(self) -> bool:
        """Production hardening (protected, retained, guarded keys): the prod tier's stack."""
        return self.tier == "prod"

    def copy_targets(self, plan: Plan | None = None) -> list[CopyTarget]:
        """Where each rule of `plan` (by default this stack's) copies its recovery points."""
        plan = plan or self.plan
        if plan is None:
            return []
        targets: list[CopyTarget] = []
        if plan.copy_to_backup_account:
            targets.append("backup_account")
        if plan.copy_to_region and self.regions.copy_region is not None:
            targets.append("copy_region")
        if plan.copy_to_air_gapped:
            targets.append("air_gapped")
        return targets

    def role_arn(self, account_id: str, role_name: str, region: str | None = None) -> str:
        """ARN of an IAM role in an account, in the partition of the primary region."""
        return f"arn:{partition(region or self.regions.primary)}:iam::{account_id}:role/{role_name}"


def partition(region: str) -> str:
    """AWS partition of a region ('aws', 'aws-us-gov', ...)."""
    return backup_regions().get(region, "aws")


# ---------------------------------------------------------------------------------------------
# Loading and error reporting


def _parse_value(raw: Any) -> Any:
    # Pulumi hands structured config to programs as JSON text; plain values stay strings.
    if isinstance(raw, str) and raw[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def namespace_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keys of our namespace from a flat `namespace:key -> value` map, values parsed."""
    prefix = CONFIG_NAMESPACE + ":"
    return {key[len(prefix) :]: _parse_value(value) for key, value in config.items() if key.startswith(prefix)}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _strip(annotation: Any) -> Any:
    """The type under Annotated[...] and Optional[...]."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            inner = [a for a in get_args(annotation) if a is not type(None)]
            annotation = inner[0] if len(inner) == 1 else next((a for a in inner if _is_model(a)), inner[0])
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class reached by walking a validation error's location from `model`."""
    current: Any = model
    for part in loc:
        current = _strip(current)
        if _is_model(current):
            fields = current.model_fields
            field = fields.get(str(part)) or next((f for f in fields.values() if f.alias == part), None)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        else:
            return None
    current = _strip(current)
    return current if _is_model(current) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def format_errors(error: ValidationError) -> str:
    """One line per problem: `pgf-backup:<key path>: <what is wrong and what is allowed>`."""
    lines = []
    for item in error.errors():
        loc = item["loc"]
        path = ".".join(str(part) for part in loc)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            parent = _model_at(StackConfig, loc[:-1])
            allowed = _keys_of(parent) if parent else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            message = f"unknown key.{hint} Allowed keys here: {', '.join(allowed)}"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] == "literal_error":
            message = f"{item.get('input')!r} is not allowed; {message[0].lower()}{message[1:]}"
        elif item["type"] == "string_pattern_mismatch":
            message = f"{item.get('input')!r} does not match the allowed pattern {item['ctx']['pattern']}"
        if path:
            lines.append(f"{CONFIG_NAMESPACE}:{path}: {message}")
        else:  # cross-key checks: each line already starts with its key path
            lines.extend(f"{CONFIG_NAMESPACE}:{line}" for line in message.splitlines())
    return "\n".join(dict.fromkeys(lines))


def load(config: Mapping[str, Any], source: str = "stack config") -> StackConfig:
    """Validate a flat Pulumi config map (`pgf-backup:key -> value`) into a `StackConfig`."""
    try:
        return StackConfig.model_validate(namespace_values(config))
    except ValidationError as error:
        raise ConfigError(f"invalid configuration in {source}:\n{format_errors(error)}") from None


def load_from_pulumi() -> StackConfig:
    """Read the running program's stack config (as the Pulumi language host passes it)."""
    import pulumi
    import pulumi.runtime.config as runtime_config

    flat = {**pulumi.runtime.get_config_env(), **runtime_config.CONFIG.get()}
    return load(flat, source=f"Pulumi.{pulumi.get_stack()}.yaml")
