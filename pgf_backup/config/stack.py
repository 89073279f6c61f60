"""A whole stack's configuration, one model per role, chosen by the `role` key (`StackConfig`):
`BackupAccountStack`, `WorkloadStack` and `ManagementStack`. Each holds only the keys its role reads,
the rules across its sections, and the facts derived from them once (copy targets, names, hardened
tier, role ARNs)."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

from pgf_backup.config.audit import Audit
from pgf_backup.config.observability import Dashboards
from pgf_backup.config.operations import Operations
from pgf_backup.config.restore_testing import RestoreTesting
from pgf_backup.config.sections import (
    FULLY_MANAGED,
    Alarms,
    AwsConfigRules,
    Bucket,
    BucketName,
    CopyTarget,
    Database,
    DbIdentifier,
    Exports,
    Iam,
    OptInService,
    Organization,
    Plan,
    RegionResourceTypes,
    Regions,
    StackName,
    Tags,
    TierBounds,
    Vault,
    VaultLock,
)
from pgf_backup.config.types import AccountId, Model, Region, Tier, partition
from pgf_backup.constants import (
    ROLE_BACKUP_ACCOUNT,
    ROLE_MANAGEMENT,
    ROLE_WORKLOAD,
    STACK_BACKUP,
    STACK_MANAGEMENT,
    TAG_BACKUP_VAULT,
    TAG_RETENTION_DAYS,
)
from pgf_backup.limits import lock_admits
from pgf_backup.schedules import ScheduleError, utc_schedule

AccountName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
VaultKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


class _Stack(Model):
    """The keys every stack reads: the organization's accounts, regions, roles and tags."""

    # The text after "`<key>`: " when a key of another role appears in this role's stack file.
    foreign_keys: ClassVar[Mapping[str, str]] = {}

    accounts: dict[AccountName, AccountId]
    organization: Organization = Organization()
    regions: Regions
    iam: Iam = Iam()
    tags: Tags = Tags()
    scheduling: Literal["account", "organization"] = "account"
    # Contacts, escalation, restore prerequisites and RTO targets (runbook, drill report); shared in Pulumi.yaml,
    # so every role accepts it.
    operations: Operations = Operations()

    @model_validator(mode="after")
    def _cross_checks(self) -> _Stack:
        errors: list[str] = []
        if STACK_BACKUP not in self.accounts:
            errors.append("accounts: the backup account is missing (key 'backup')")
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
        self._check(errors)
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _check(self, errors: list[str]) -> None:
        """The role's own rules across sections (each appends `<key path>: <problem>` lines)."""

    # -- derived values ------------------------------------------------------------------------

    @property
    @abstractmethod
    def account_id(self) -> str:
        """Account this stack deploys into."""

    @classmethod
    def foreign_key(cls, role: str, key: str, owners: list[str]) -> str:
        """What to say of `key`, a key of the `owners` roles' stacks, found in a stack of role `role`."""
        return cls.foreign_keys.get(key) or (
            f"not used by {role} stacks (role: {role}); it is a key of {' and '.join(owners)} stacks"
        )

    @property
    def stack_tier(self) -> Tier | None:
        """The tier a workload stack protects; None for the backup account and management stacks."""
        return None

    @property
    def hardened(self) -> bool:
        """Production hardening (protected, retained, guarded keys): the prod tier's stack."""
        return False

    @property
    def workload_account_ids(self) -> list[str]:
        """The accounts other than the backup and the management account (sorted, each once)."""
        return sorted({a for name, a in self.accounts.items() if name not in (STACK_BACKUP, STACK_MANAGEMENT)})

    @property
    def backup_account_id(self) -> str:
        """The dedicated backup account of the organization."""
        return self.accounts[STACK_BACKUP]

    def role_arn(self, account_id: str, role_name: str, region: str | None = None) -> str:
        """ARN of an IAM role in an account, in the partition of the primary region."""
        return f"arn:{partition(region or self.regions.primary)}:iam::{account_id}:role/{role_name}"


class VaultStack(_Stack):
    """A stack that hosts vaults: the backup account and the workload stacks."""

    tier_bounds: TierBounds = TierBounds()
    vaults: dict[VaultKey, Vault]
    # CloudWatch alarms on AWS Backup's metrics in each region (failures, and freshness per tier).
    alarms: Alarms = Alarms()
    # CloudWatch dashboards of jobs and coverage (the backup account's spans the organization).
    dashboards: Dashboards = Dashboards()
    # AWS Backup Audit Manager: frameworks, report plans and the reports bucket.
    audit: Audit = Audit()

    def _check(self, errors: list[str]) -> None:
        if not self.vaults:
            errors.append("vaults: at least one vault is needed (vaults.<key> with its tier)")
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

    def _check_plan(
        self,
        prefix: str,
        tier: Tier,
        plan: Plan,
        locks: Mapping[CopyTarget | None, tuple[str, VaultLock | None]],
        errors: list[str],
    ) -> None:
        """Every lifecycle of a plan, and of each of its retention classes, within the tier's bounds and the lock of
        the vault it lands in."""
        self._check_lifecycles(prefix, tier, plan, locks, errors)
        for days in plan.other_classes:
            where = f"{prefix}.retention_classes: {days} (the plan of resources tagged backup:retention_days={days})"
            try:
                variant = plan.for_retention(days)
            except ValidationError as error:
                errors.extend(f"{where}: {problem['msg']}" for problem in error.errors())
                continue
            found: list[str] = []
            self._check_lifecycles(prefix, tier, variant, locks, found)
            errors.extend(f"{where}: {problem}" for problem in found if problem not in errors)

    def _check_lifecycles(
        self,
        prefix: str,
        tier: Tier,
        plan: Plan,
        locks: Mapping[CopyTarget | None, tuple[str, VaultLock | None]],
        errors: list[str],
    ) -> None:
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

    # -- derived values ------------------------------------------------------------------------

    def central_vault_key(self, tier: str) -> str | None:
        """The vault of a tier that receives its recovery points (and copies): the one keyed by the tier's name, else
        the tier's first. Keyed by name, it stays the same whatever order a tool writes the YAML keys in."""
        if tier in self.vaults and self.vaults[tier].tier == tier:
            return tier
        return next((key for key, vault in self.vaults.items() if vault.tier == tier), None)

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
    def copy_destination_accounts(self) -> list[str]:
        """Accounts other than this one that the stack's copy actions write to (none from the backup account)."""
        return []

    def copy_targets(self, plan: Plan | None) -> list[CopyTarget]:
        """Where each rule of `plan` copies its recovery points."""
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


_WORKLOAD_DATA = "application data is protected in its workload stack (role: workload)"


def _prod_restore_testing() -> dict[Tier, RestoreTesting]:
    """By default the prod tier's copies are restore-tested (the strategy's periodic restore tests)."""
    return {"prod": RestoreTesting()}


class BackupAccountStack(VaultStack):
    """The organization's backup account: central and air-gapped vaults per tier, and in organization
    mode each tier's plan as a BACKUP_POLICY."""

    foreign_keys: ClassVar[Mapping[str, str]] = {
        "tier": "only a workload stack has a tier; the backup account hosts vaults per tier",
        "plan": (
            "the backup account has no plan of its own; in account mode plans live in the workload "
            "stacks (plan), in organization mode here under plans.<tier>"
        ),
        "buckets": _WORKLOAD_DATA,
        "databases": _WORKLOAD_DATA,
        "region_resource_types": (
            "only workload stacks manage AWS Backup region settings; the backup account backs up no resources "
            "of its own (it receives copies), so remove it here"
        ),
        "services": "only workload stacks opt services in to AWS Backup; the backup account receives copies",
        "exports": (
            "a key of workload stacks (role: workload): the Glue catalog and QuickSight are exported from the "
            "workload account that holds them"
        ),
    }

    role: Literal["backup-account"]
    # Organization mode: each tier's plan, written as a BACKUP_POLICY.
    plans: dict[Tier, Plan] = Field(default_factory=dict)
    # The workload stacks after it, in rollout order (a canary rollout).
    rollout_order: Annotated[tuple[StackName, ...], Field(min_length=1)] = ("lab", "dev", "prod")
    # Restore testing of each tier's copies here, in the backup account (an isolated environment).
    restore_testing: dict[Tier, RestoreTesting] = Field(default_factory=_prod_restore_testing)

    def _check(self, errors: list[str]) -> None:
        super()._check(errors)
        if len(set(self.rollout_order)) != len(self.rollout_order) or STACK_BACKUP in self.rollout_order:
            errors.append(
                f"rollout_order: {list(self.rollout_order)} must list each workload stack once, without 'backup' "
                "(it always goes first)"
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

    @property
    def account_id(self) -> str:
        return self.accounts[STACK_BACKUP]

    def routed_vault_keys(self, tier: str) -> tuple[str, ...]:
        """The tier's vaults after its central one: vaults per criticality, routed to by backup:vault."""
        central = self.central_vault_key(tier)
        return tuple(key for key, vault in self.vaults.items() if vault.tier == tier and key != central)

    def plan_variants(self, tier: Tier) -> list[PlanVariant]:
        """Organization mode: the tier's plans in its BACKUP_POLICY, one per (vault, retention class)."""
        central = self.central_vault_key(tier)
        assert central is not None  # checked by the config model
        return plan_variants(self.plan_name(tier), self.plans[tier], central, self.routed_vault_keys(tier))


@dataclass(frozen=True)
class PlanVariant:
    """One plan of a workload tier: the resources routed to one vault and one retention class.

    Its selection matches the tier's tags plus, for a routed vault or a retention class besides the default, the
    tag naming it (StringEquals); the default vault's and the default class's plans exclude the others' values
    (StringNotEquals). A resource's tags then match exactly one variant's conditions, so AWS Backup never runs two
    plans of the tier on it. A resource without the tag takes the default: a negated condition holds when the
    resource lacks the tag, as in IAM ("Boolean arithmetic is similar to that in IAM policies",
    https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources-json.html; IAM: "If the key that you
    specify in a policy condition is not present in the request context, the values do not match" and a negated
    operator then holds, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
    """

    base_name: str  # the tier's plan name (`pgf-prod`)
    base: Plan
    default_vault_key: str
    routed_vault_keys: tuple[str, ...]
    vault: str
    retention_days: int

    @property
    def default_vault(self) -> bool:
        return self.vault == self.default_vault_key

    @property
    def default_class(self) -> bool:
        return self.retention_days == self.base.default_retention

    @property
    def suffix(self) -> str:
        """`files-raw-90d`: what tells this plan from the tier's default one (empty for the default)."""
        parts = [] if self.default_vault else [self.vault]
        parts += [] if self.default_class else [f"{self.retention_days}d"]
        return "-".join(parts)

    @property
    def plan_name(self) -> str:
        return f"{self.base_name}-{self.suffix}" if self.suffix else self.base_name

    @property
    def plan(self) -> Plan:
        """The tier's plan with this class's retention on its class rule."""
        return self.base.for_retention(self.retention_days)

    @property
    def equals(self) -> dict[str, str]:
        """The routing tags this plan's resources carry (besides the tier's own)."""
        found = {} if self.default_vault else {TAG_BACKUP_VAULT: self.vault}
        if not self.default_class:
            found[TAG_RETENTION_DAYS] = str(self.retention_days)
        return found

    @property
    def not_equals(self) -> list[tuple[str, str]]:
        """The routing tag values this plan's resources do not carry: the other variants'."""
        excluded = [(TAG_BACKUP_VAULT, key) for key in self.routed_vault_keys] if self.default_vault else []
        if self.default_class:
            excluded += [(TAG_RETENTION_DAYS, str(days)) for days in self.base.other_classes]
        return excluded


def plan_variants(base_name: str, plan: Plan, default_vault: str, routed: tuple[str, ...]) -> list[PlanVariant]:
    """Every (vault, retention class) pair that gets its own plan, the default vault and class first."""
    return [
        PlanVariant(base_name, plan, default_vault, routed, vault, days)
        for vault in (default_vault, *routed)
        for days in (plan.default_retention, *plan.other_classes)
    ]


class WorkloadStack(VaultStack):
    """A workload account's stack: its tier's vaults, plan (account mode) and application data."""

    foreign_keys: ClassVar[Mapping[str, str]] = {
        "plans": "only the backup account holds plans per tier (organization mode)",
        "rollout_order": "the rollout order is the backup account's (Pulumi.backup.yaml)",
    }

    role: Literal["workload"]
    tier: Tier
    # Account mode: the tier's plan (in organization mode it comes from the backup stack's BACKUP_POLICY).
    plan: Plan | None = None
    # Application data this stack protects.
    buckets: dict[BucketName, Bucket] = Field(default_factory=dict)
    databases: dict[DbIdentifier, Database] = Field(default_factory=dict)
    aws_config_rules: AwsConfigRules = AwsConfigRules()
    # Restore testing in this workload account itself (by default the backup account tests the copies there).
    restore_testing: RestoreTesting | None = None
    # Scheduled exports of the Glue Data Catalog and QuickSight assets to a bucket of this stack.
    exports: Exports | None = None
    # Services opted in to AWS Backup in the account's region settings.
    services: tuple[OptInService, ...] = ("Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3")
    # Per region, every resource type AWS Backup offers there (region settings send whole maps).
    region_resource_types: dict[Region, RegionResourceTypes] = Field(default_factory=dict)
    # The `backup` stack their StackReference reads (self-managed backends use
    # `organization/<project>/<stack>`; Pulumi Cloud uses `<org>/<project>/<stack>`).
    backup_stack: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+$")] = "organization/pgf-backup/backup"

    def _check(self, errors: list[str]) -> None:
        super()._check(errors)
        if self.tier not in self.accounts:
            errors.append(f"accounts: no account for this stack's tier {self.tier!r}")
        for key, vault in self.vaults.items():
            if vault.tier != self.tier:
                errors.append(
                    f"vaults.{key}.tier: {vault.tier!r} in a {self.tier!r} stack; a workload "
                    "account only hosts vaults of its own tier"
                )
            if vault.air_gapped is not None:
                errors.append(f"vaults.{key}.air_gapped: logically air-gapped vaults live in the backup account")
        self._check_data(errors)
        self._check_routing(errors)
        self._check_region_resource_types(errors)
        if self.exports is not None and self.exports.bucket in self.buckets:
            errors.append(
                f"exports.bucket: {self.exports.bucket!r} is also under buckets; the export bucket is created by this "
                "stack, application buckets are only attached: give the exports their own bucket"
            )
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
        key = self.central_vault_key(self.tier) or ""  # the vaults' checks above report a missing one
        lock = self.vaults[key].lock if key in self.vaults else None
        # The recovery point lands in the local vault, the region copy in its copy-region twin.
        self._check_plan("plan", self.tier, self.plan, {None: (key, lock), "copy_region": (key, lock)}, errors)

    def _check_region_resource_types(self, errors: list[str]) -> None:
        """Per region, the whole set of types the region settings send."""
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

    def _check_routing(self, errors: list[str]) -> None:
        """The routing tags the config gives its buckets and databases name a vault and a class that exist."""
        classes = self.plan.retention_classes if self.plan is not None else ()
        routed = [("buckets", name, b.vault, b.retention_days) for name, b in self.buckets.items()]
        routed += [("databases", name, d.vault, d.retention_days) for name, d in self.databases.items()]
        for section, name, vault, days in routed:
            if vault is not None and vault not in self.vaults:
                errors.append(
                    f"{section}.{name}.vault: {vault!r} is not a vault of this stack ({', '.join(self.vaults)}); "
                    "the tag backup:vault routes a resource to one of them"
                )
            if days is not None and self.scheduling == "account" and days not in (classes or (None,)):
                allowed = ", ".join(str(c) for c in classes) if classes else "none: plan.retention_classes is empty"
                errors.append(
                    f"{section}.{name}.retention_days: {days} is not a retention class of plan.retention_classes "
                    f"({allowed}); AWS Backup would back it up with the default class"
                )

    def _check_data(self, errors: list[str]) -> None:
        for name, database in self.databases.items():
            copies_cross_account = bool(self.database_copy_accounts(name))
            if database.region not in (None, self.regions.primary):
                errors.append(
                    f"databases.{name}.region: {database.region} is not the primary region {self.regions.primary}; "
                    "backup plans and selections are regional, so this stack would never back it up"
                )
            if database.encryption == "customer" and copies_cross_account and database.kms_key_arn is None:
                errors.append(
                    f"databases.{name}.kms_key_arn: required: its snapshots keep the database's key, and the copy "
                    "to the backup account needs that key's policy to admit the backup account (give the key's ARN)"
                )
            if database.encryption == "aws-managed" and copies_cross_account:
                errors.append(
                    f"databases.{name}.encryption: an RDS snapshot encrypted with the AWS-managed key aws/rds "
                    "cannot be copied to another account, and the plan copies to the backup account; "
                    "re-encrypt the database with a customer-managed key (snapshot, copy with a CMK, restore) "
                    "or set plan.copy_to_backup_account: false"
                )

    # -- derived values ------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        return self.accounts[self.tier]

    @property
    def stack_tier(self) -> Tier | None:
        return self.tier

    @property
    def vault_key(self) -> str:
        """The vault that receives this stack's recovery points: the one keyed by the tier's name, else the first
        (each vault here is of its tier)."""
        return self.central_vault_key(self.tier) or next(iter(self.vaults))

    @property
    def routed_vault_keys(self) -> tuple[str, ...]:
        """The other vaults: a resource tagged backup:vault=<key> goes there (vaults per criticality)."""
        return tuple(key for key in self.vaults if key != self.vault_key)

    def plan_variants(self, plan: Plan) -> list[PlanVariant]:
        """This tier's plans: one per (vault, retention class), the default vault and class first."""
        return plan_variants(self.plan_name(self.tier), plan, self.vault_key, self.routed_vault_keys)

    @property
    def hardened(self) -> bool:
        return self.tier == "prod"

    @property
    def catalog_export(self) -> bool:
        """The Glue Data Catalog is exported on a schedule (by default whenever `exports` is set)."""
        return self.exports is not None and self.exports.catalog.enabled is not False

    @property
    def quicksight_export(self) -> bool:
        """QuickSight assets are exported on a schedule (by default in prod only)."""
        if self.exports is None:
            return False
        enabled = self.exports.quicksight.enabled
        return self.hardened if enabled is None else enabled

    @property
    def copy_destination_accounts(self) -> list[str]:
        """Accounts other than this one that this stack's copy actions write to (both modes)."""
        return self._copies_out(set(self.copy_targets()))

    def database_copy_accounts(self, name: str) -> list[str]:
        """Accounts a database's snapshot copies go to: its key must admit them (RDS keeps its own key).

        An RDS DB instance is never copied to the air-gapped vault (it cannot hold one): only the central
        vault's copy counts for it.
        """
        targets = set(self.copy_targets())
        if self.databases[name].kind == "instance":
            targets.discard("air_gapped")
        return self._copies_out(targets)

    def _copies_out(self, targets: set[CopyTarget]) -> list[str]:
        backup = self.accounts.get(STACK_BACKUP)
        if backup is None:
            return []
        if self.scheduling == "organization":
            # The tier's BACKUP_POLICY copies to the backup account's central (and air-gapped) vaults.
            return [backup]
        # The central and the air-gapped vaults are both in the backup account; copy_region stays here.
        return [backup] if {"backup_account", "air_gapped"} & targets else []

    def copy_targets(self, plan: Plan | None = None) -> list[CopyTarget]:
        """Where each rule of `plan` (by default this stack's) copies its recovery points."""
        return super().copy_targets(plan or self.plan)


class ManagementStack(_Stack):
    """The organization's management account: AWS Backup's global settings, the delegated administrator
    and the Organizations delegation policy. It holds no vaults, plans or data."""

    role: Literal["management"]

    @classmethod
    def foreign_key(cls, role: str, key: str, owners: list[str]) -> str:
        # Every other key configures vaults, plans or data, which the management account does not hold.
        return (
            "not used by the management stack (role: management), which only sets AWS Backup's global "
            "settings, the delegated administrator and the Organizations delegation policy; allowed keys: "
            f"{', '.join(sorted(cls.model_fields))}"
        )

    def _check(self, errors: list[str]) -> None:
        if STACK_MANAGEMENT not in self.accounts:
            errors.append(
                "accounts: the management stack deploys into the organization's management account: "
                "give its id (key 'management')"
            )
        if self.scheduling == "organization":
            if not self.organization.id:
                errors.append("organization.id: organization mode needs the organization id (o-...)")
            if not self.organization.root_id:
                errors.append(
                    "organization.root_id: organization mode's delegation policy names the organization's root "
                    "(r-..., from `aws organizations list-roots` in the management account)"
                )

    @property
    def account_id(self) -> str:
        return self.accounts[STACK_MANAGEMENT]


AnyStack = BackupAccountStack | WorkloadStack | ManagementStack
# One stack's configuration: the model of its role, chosen by the `role` key.
StackConfig = Annotated[AnyStack, Field(discriminator="role")]
# Each role's model, by the value of `role`.
ROLE_MODELS: dict[str, type[AnyStack]] = {
    ROLE_BACKUP_ACCOUNT: BackupAccountStack,
    ROLE_WORKLOAD: WorkloadStack,
    ROLE_MANAGEMENT: ManagementStack,
}
# The keys the management stack reads (role: management).
MANAGEMENT_KEYS = frozenset(ManagementStack.model_fields)
