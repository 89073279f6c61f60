"""The sections of a stack's configuration: organization, regions, roles, tags, vaults and locks, plans
and their rules, buckets and databases. Each is a frozen model; cross-section rules live on the stack."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from pgf_backup.config.types import (
    DEFAULT_VAULT_EVENTS,
    Days,
    Model,
    NotifyEvent,
    Region,
    RoleName,
    Schedule,
    TagKey,
    Tier,
    TimeZone,
    VaultName,
)
from pgf_backup.constants import (
    DEFAULT_BREAK_GLASS_ROLE,
    DEFAULT_DEPLOY_ROLE,
    DEFAULT_SERVICE_ROLE,
    TAG_BACKUP_VAULT,
    TAG_COPY_TO_ACCOUNT,
    TAG_COPY_TO_REGION,
    TAG_RETENTION_DAYS,
)
from pgf_backup.limits import (
    ALARM_MAX_EVALUATION_SECONDS,
    COLD_STORAGE_MIN_DAYS,
    CONTINUOUS_MAX_RETENTION_DAYS,
    DEFAULT_RPO_HOURS,
    DEFAULT_TIER_BOUNDS,
    LAMBDA_MAX_TIMEOUT_SECONDS,
    LAMBDA_MEMORY_MB,
    LOG_RETENTION_DAYS,
    MAX_RULES_PER_PLAN,
    PROD_MIN_RETENTION_DAYS,
    VAULT_LOCK_MIN_CHANGEABLE_DAYS,
    alarm_window_problem,
)

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


# The copies a resource's routing tags may turn on or off (Plan.tag_copies), named after the tags' keys.
TagCopy = Literal["copy_to_region", "copy_to_account"]
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
    # Retention classes: the values the tag backup:retention_days may take. A resource tagged with one of them is
    # backed up by a plan whose class rule (`retention_rule`, by default the first scheduled rule) keeps its recovery
    # points that many days; copies keep their own lifecycles, or the rule's. An untagged resource gets the class
    # rule's own delete_after_days (the default class, a class whether listed or not). Empty: one class.
    retention_classes: tuple[Annotated[int, Field(ge=1, le=36500)], ...] = ()
    retention_rule: RuleName | None = None
    # Copy routing: the copies a resource's tags may turn on or off, each one more plan per vault and class.
    # `copy_to_region`: backup:copy_to_region=none keeps a resource's recovery points in the primary region (when
    # copy_to_region is true), =<regions.copy> adds the region copy (when it is false). `copy_to_account`: the same
    # with backup:copy_to_account=none / =<the backup account's id>, for the copies to the backup account (and its
    # air-gapped vault). Untagged resources get the plan's own copy_to_* settings. Empty: the tags only confirm them.
    # Not in prod, where every rule copies to both (policy rule prod-copies-leave-account-and-region).
    tag_copies: tuple[TagCopy, ...] = ()

    @model_validator(mode="after")
    def _names(self) -> Plan:
        if CONTINUOUS_RULE in self.rules:
            raise ValueError(f"rules.{CONTINUOUS_RULE}: this name is reserved for the 'continuous' section")
        if self.retention_rule is not None and self.retention_rule not in self.rules:
            raise ValueError(
                f"retention_rule: {self.retention_rule!r} is not a scheduled rule of this plan "
                f"({', '.join(self.rules)})"
            )
        if len(set(self.retention_classes)) != len(self.retention_classes):
            raise ValueError("retention_classes: lists a value more than once")
        if len(set(self.tag_copies)) != len(self.tag_copies):
            raise ValueError("tag_copies: lists a copy more than once")
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

    @property
    def class_rule(self) -> str:
        """The scheduled rule whose retention a resource's retention class sets."""
        return self.retention_rule or next(iter(self.rules))

    @property
    def default_retention(self) -> int:
        """The class of a resource without backup:retention_days: the class rule's own retention."""
        return self.rules[self.class_rule].delete_after_days

    @property
    def other_classes(self) -> tuple[int, ...]:
        """The retention classes besides the default, ascending (each one more plan per vault)."""
        return tuple(sorted(set(self.retention_classes) - {self.default_retention}))

    def for_retention(self, days: int) -> Plan:
        """This plan for the resources of retention class `days` (validated again: a lifecycle must still hold)."""
        if days == self.default_retention:
            return self
        rules = {name: rule.model_dump() for name, rule in self.rules.items()}
        rules[self.class_rule]["delete_after_days"] = days
        return Plan.model_validate({**self.model_dump(), "rules": rules})


StorageClass = Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
KmsKeyArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")]
PrincipalArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)$")]
SENSITIVE = ("confidential", "restricted")
# A value of backup:copy_to_region / backup:copy_to_account: a region, an account id or `none`. One value, not the
# strategy's comma-separated list (`ca-central-1,ca-west-1`): RDS tag values take only letters, digits, white space
# and `_ . : / = + -` (botocore's RDS model, Tag.Value: "^([\p{L}\p{Z}\p{N}_.:/=+\-]*)$"), no comma.
CopyTagValue = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]


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


def routing_tags(
    vault: str | None, retention_days: int | None, copy_to_region: str | None, copy_to_account: str | None
) -> dict[str, str]:
    """The routing tags a listed bucket or database carries, as its config says (README, "Tags and routing")."""
    carried = {
        TAG_BACKUP_VAULT: vault,
        TAG_RETENTION_DAYS: retention_days,
        TAG_COPY_TO_REGION: copy_to_region,
        TAG_COPY_TO_ACCOUNT: copy_to_account,
    }
    return {key: str(value) for key, value in carried.items() if value is not None}


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
    # The routing tags the bucket carries (README, "Tags"): `backup:vault` (a vault key of this stack; files before
    # and after processing, say) and `backup:retention_days` (one of plan.retention_classes). Its selection by ARN
    # goes to the plan its tags route it to, and `plan` shows which.
    vault: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None = None
    retention_days: Annotated[int, Field(ge=1, le=36500)] | None = None
    # backup:copy_to_region and backup:copy_to_account as the bucket carries them (a region, an account id, or
    # `none`); checked against what plan.tag_copies allows.
    copy_to_region: CopyTagValue | None = None
    copy_to_account: CopyTagValue | None = None

    @property
    def routing_tags(self) -> dict[str, str]:
        return routing_tags(self.vault, self.retention_days, self.copy_to_region, self.copy_to_account)

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
    # The routing tags it carries: `backup:vault` (a vault key of this stack), `backup:retention_days`,
    # `backup:copy_to_region` and `backup:copy_to_account`.
    vault: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None = None
    retention_days: Annotated[int, Field(ge=1, le=36500)] | None = None
    copy_to_region: CopyTagValue | None = None
    copy_to_account: CopyTagValue | None = None

    @property
    def routing_tags(self) -> dict[str, str]:
        return routing_tags(self.vault, self.retention_days, self.copy_to_region, self.copy_to_account)


class AwsConfigRules(Model):
    """AWS Config rules checking the RDS posture and the backup coverage (AWS Config must be recording in the
    account); `enabled: false` turns them all off."""

    enabled: bool = True
    min_backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    # The `<type>_RESOURCES_PROTECTED_BY_BACKUP_PLAN` managed rules over the resources tagged `backup:enabled=true`
    # (components/coverage.py), in the primary region.
    backup_coverage: bool = True


BucketName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
        raise ValueError(f"{value} is not a CloudWatch Logs retention; allowed days: {allowed}")
    return value


LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]


class ScheduledExport(Model):
    """A scheduled export Lambda: when it runs and how much it may use."""

    # None: the default of the export (the catalog in every tier, QuickSight in prod).
    enabled: bool | None = None
    schedule: Schedule = "cron(0 3 * * ? *)"
    timezone: TimeZone = "UTC"
    timeout_seconds: Annotated[int, Field(ge=60, le=LAMBDA_MAX_TIMEOUT_SECONDS)] = LAMBDA_MAX_TIMEOUT_SECONDS
    memory_mb: Annotated[int, Field(ge=LAMBDA_MEMORY_MB[0], le=LAMBDA_MEMORY_MB[1])] = 512


class CatalogExportConfig(ScheduledExport):
    """The Glue Data Catalog export (databases, tables, partitions, functions)."""

    # Also export each table's earlier versions (GetTableVersions).
    include_table_versions: bool = False


class Exports(Model):
    """Scheduled exports of what AWS Backup does not back up: the Glue Data Catalog and QuickSight assets."""

    # The export bucket this stack creates: versioned, SSE-KMS, protected like `buckets.*`, backed up.
    bucket: BucketName
    log_retention_days: LogRetentionDays = 365
    noncurrent_version_expiration_days: Annotated[int, Field(ge=1, le=36500)] = 90
    catalog: CatalogExportConfig = CatalogExportConfig()
    quicksight: ScheduledExport = ScheduledExport(schedule="cron(30 3 * * ? *)")


DbIdentifier = Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")]


# An alarm evaluates at most 7 days (pgf_backup.limits), and freshness is evaluated hour by hour.
_MAX_WINDOW_HOURS = ALARM_MAX_EVALUATION_SECONDS // 3600
RpoHours = Annotated[int, Field(ge=1, le=_MAX_WINDOW_HOURS)]


class TierRpo(Model):
    """Each tier's recovery point objective, in hours."""

    lab: RpoHours = DEFAULT_RPO_HOURS["lab"]
    dev: RpoHours = DEFAULT_RPO_HOURS["dev"]
    prod: RpoHours = DEFAULT_RPO_HOURS["prod"]


class Alarms(Model):
    """CloudWatch alarms on AWS Backup's metrics (component BackupAlarms), to the JobAlerts topic."""

    enabled: bool = True
    rpo_hours: TierRpo = TierRpo()
    # Added to the RPO before the freshness alarm fires: a daily job starts within its start window and
    # finishes within its completion window, so consecutive recovery points may be a little over 24 hours apart.
    grace_hours: Annotated[int, Field(ge=0, le=24)] = 2
    failure_threshold: Annotated[int, Field(ge=1)] = 1
    failure_period_minutes: Annotated[int, Field(ge=1, le=1440)] = 60
    failure_evaluation_periods: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _within_cloudwatch(self) -> Alarms:
        problem = alarm_window_problem(self.failure_period_minutes * 60, self.failure_evaluation_periods)
        if problem:
            raise ValueError(f"failure_period_minutes x failure_evaluation_periods: {problem}")
        for tier in ("lab", "dev", "prod"):
            hours = getattr(self.rpo_hours, tier) + self.grace_hours
            if hours > _MAX_WINDOW_HOURS:
                raise ValueError(
                    f"rpo_hours.{tier} + grace_hours is {hours} hours; a CloudWatch alarm evaluates at most "
                    f"{_MAX_WINDOW_HOURS} (7 days)"
                )
        return self

    def window_hours(self, tier: Tier) -> int:
        """Hours without a new recovery point after which the tier's freshness alarm fires."""
        rpo: int = getattr(self.rpo_hours, tier)
        return rpo + self.grace_hours
