"""A whole stack's configuration, one model per role, chosen by the `role` key (`StackConfig`):
`BackupAccountStack`, `WorkloadStack` and `ManagementStack`. Each holds only the keys its role reads,
the rules across its sections, and the facts derived from them once (copy targets, names, hardened
tier, role ARNs)."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
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
    COPY_NONE,
    ROLE_BACKUP_ACCOUNT,
    ROLE_MANAGEMENT,
    ROLE_WORKLOAD,
    STACK_BACKUP,
    STACK_MANAGEMENT,
    TAG_BACKUP_VAULT,
    TAG_COPY_TO_ACCOUNT,
    TAG_COPY_TO_REGION,
    TAG_RETENTION_DAYS,
)
from pgf_backup.limits import lock_admits
from pgf_backup.schedules import ScheduleError, utc_schedule

AccountName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
# AWS Backup's selection names: botocore's Backup model, BackupSelectionName (1 to 50 characters).
MAX_SELECTION_NAME = 50
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
        """Where the rules of `plan` may copy recovery points: the plan's own copies, and those a resource's tags may
        turn on (plan.tag_copies; each plan of the tier keeps its share, `PlanVariant.targets`)."""
        if plan is None:
            return []
        targets: list[CopyTarget] = []
        if plan.copy_to_backup_account or "copy_to_account" in plan.tag_copies:
            targets.append("backup_account")
        if (plan.copy_to_region or "copy_to_region" in plan.tag_copies) and self.regions.copy_region is not None:
            targets.append("copy_region")
        if plan.copy_to_air_gapped:
            targets.append("air_gapped")
        return targets

    def copy_choices(self, plan: Plan | None) -> tuple[CopyChoice, ...]:
        """The copies `plan` lets a resource's tags turn on or off (plan.tag_copies), each with its tag's values."""
        if plan is None:
            return ()
        found: list[CopyChoice] = []
        for name in plan.tag_copies:
            # A missing backup account or copy region is reported by the config checks.
            backup = self.accounts.get(STACK_BACKUP)
            if name == "copy_to_account" and backup is not None:
                found.append(CopyChoice(TAG_COPY_TO_ACCOUNT, backup, plan.copy_to_backup_account))
            elif name == "copy_to_region" and self.regions.copy_region is not None:
                found.append(CopyChoice(TAG_COPY_TO_REGION, self.regions.copy_region, plan.copy_to_region))
        return tuple(found)

    def copy_tag_values(self, plan: Plan | None) -> dict[str, tuple[str, ...]]:
        """The values backup:copy_to_region and backup:copy_to_account may take on this tier's resources: the plan's
        own setting (the copy region, the backup account's id, or `none`) and, for plan.tag_copies, the other one."""
        copy_region = self.regions.copy_region
        region_on = plan is not None and plan.copy_to_region and copy_region is not None
        account_on = plan is not None and plan.copy_to_backup_account
        flippable = {c.tag for c in self.copy_choices(plan)}
        values: dict[str, tuple[str, ...]] = {}
        for tag, default, target in (
            (TAG_COPY_TO_REGION, region_on, copy_region),
            (TAG_COPY_TO_ACCOUNT, account_on, self.accounts.get(STACK_BACKUP)),
        ):
            states = {default, not default} if tag in flippable else {default}
            values[tag] = tuple(v for on, v in ((True, target), (False, COPY_NONE)) if on in states and v is not None)
        return values

    def _check_copy_routing(self, prefix: str, tier: Tier, plan: Plan, errors: list[str]) -> None:
        """plan.tag_copies names copies a tag can turn on or off here (never in prod)."""
        if "copy_to_region" in plan.tag_copies and self.regions.copy_region is None:
            errors.append(
                f"{prefix}.tag_copies: copy_to_region needs a copy region (regions.copy) for "
                "backup:copy_to_region to copy to"
            )
        if tier == "prod" and plan.tag_copies:
            errors.append(
                f"{prefix}.tag_copies: in prod every rule copies to the backup account and to the copy region (the "
                "strategy's defence against the loss of the workload account or of the region; policy rule "
                "prod-copies-leave-account-and-region), so no tag may turn a copy off: remove tag_copies"
            )
        if "copy_to_account" in plan.tag_copies and plan.copy_to_air_gapped and not plan.copy_to_backup_account:
            errors.append(
                f"{prefix}.tag_copies: copy_to_account turns the backup account's copies (central and air-gapped "
                "vaults) on or off together; with copy_to_air_gapped: true set copy_to_backup_account: true too"
            )

    def _check_plan_names(
        self, prefix: str, variants: Sequence[PlanVariant], standard_vaults: bool, errors: list[str]
    ) -> None:
        """Each plan's selection names within AWS Backup's 50 characters (botocore's Backup model,
        BackupSelectionName: "^[a-zA-Z0-9\\-\\_\\.]{1,50}$"; components/backup_plan.py names them)."""
        for variant in variants:
            twin = "-standard-vaults" if standard_vaults and variant.default_vault else ""
            longest = f"{variant.plan_name}{twin}-listed"
            if len(longest) > MAX_SELECTION_NAME:
                errors.append(
                    f"{prefix}: the plan {variant.plan_name!r} (vault {variant.vault!r}, class {variant.retention_days}"
                    f" days) names its selection {longest!r}, {len(longest)} characters; AWS Backup allows "
                    f"{MAX_SELECTION_NAME}: use a shorter tags.application or vault key, or fewer tag_copies"
                )


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
            self._check_copy_routing(f"plans.{tier}", tier, plan, errors)
            if vault is not None:
                standard = vault.air_gapped is not None and "air_gapped" in self.copy_targets(plan)
                self._check_plan_names(f"plans.{tier}", self.plan_variants(tier), standard, errors)
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
        plan = self.plans[tier]
        return plan_variants(self.plan_name(tier), plan, central, self.routed_vault_keys(tier), self.copy_choices(plan))


# What routes a resource to one plan of its tier: (vault key, retention class, copy tags flipped).
RouteKey = tuple[str, int, frozenset[str]]


@dataclass(frozen=True)
class CopyChoice:
    """A copy a resource's tag turns on or off (plan.tag_copies): the region copy, or the copies to the backup
    account (its central and air-gapped vaults)."""

    tag: str  # backup:copy_to_region, backup:copy_to_account
    target_value: str  # the tag's value that names the target: the copy region, the backup account's id
    default_on: bool  # the plan's own setting, which an untagged resource gets

    @property
    def flip_value(self) -> str:
        """The tag value that asks for the other setting: `none` when the plan copies, else the target."""
        return COPY_NONE if self.default_on else self.target_value

    @property
    def targets(self) -> tuple[CopyTarget, ...]:
        """The copy targets this choice turns on or off."""
        return ("copy_region",) if self.tag == TAG_COPY_TO_REGION else ("backup_account", "air_gapped")

    @property
    def word(self) -> str:
        """`region` or `account`: in the names of the plans it adds (`pgf-prod-noregion`)."""
        return "region" if self.tag == TAG_COPY_TO_REGION else "account"


@dataclass(frozen=True)
class PlanVariant:
    """One plan of a workload tier: the resources routed to one vault, one retention class and one set of copies.

    Its selection matches the tier's tags plus, for a routed vault, a retention class besides the default or a copy
    turned on or off by tag, the tag naming it (StringEquals); the default vault's, the default class's and the
    plan's own copy settings exclude the others' values (StringNotEquals). A resource's tags then match exactly one
    variant's conditions, so AWS Backup never runs two plans of the tier on it. A resource without the tag takes the
    default: a negated condition holds when the resource lacks the tag, as in IAM ("Boolean arithmetic is similar to
    that in IAM policies", https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources-json.html; IAM:
    "If the key that you specify in a policy condition is not present in the request context, the values do not
    match" and a negated operator then holds,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
    """

    base_name: str  # the tier's plan name (`pgf-prod`)
    base: Plan
    default_vault_key: str
    routed_vault_keys: tuple[str, ...]
    vault: str
    retention_days: int
    choices: tuple[CopyChoice, ...] = ()
    flipped: frozenset[str] = frozenset()  # the tags of `choices` this plan's resources carry with flip_value

    @property
    def key(self) -> RouteKey:
        """What routes a resource here: (vault key, retention class, copy tags flipped)."""
        return self.vault, self.retention_days, self.flipped

    @property
    def default_vault(self) -> bool:
        return self.vault == self.default_vault_key

    @property
    def default_class(self) -> bool:
        return self.retention_days == self.base.default_retention

    @property
    def suffix(self) -> str:
        """`files-raw-90d-noregion`: what tells this plan from the tier's default one (empty for the default)."""
        parts = [] if self.default_vault else [self.vault]
        parts += [] if self.default_class else [f"{self.retention_days}d"]
        parts += [("no" if c.default_on else "") + c.word for c in self.choices if c.tag in self.flipped]
        return "-".join(parts)

    @property
    def plan_name(self) -> str:
        return f"{self.base_name}-{self.suffix}" if self.suffix else self.base_name

    @property
    def plan(self) -> Plan:
        """The tier's plan with this class's retention on its class rule."""
        return self.base.for_retention(self.retention_days)

    def copies_on(self, choice: CopyChoice) -> bool:
        """Whether this plan's resources get the copies `choice` turns on or off."""
        return choice.default_on != (choice.tag in self.flipped)

    def targets(self, allowed: Sequence[CopyTarget]) -> list[CopyTarget]:
        """The copy targets of this plan among `allowed` (every target a plan of the tier may copy to): less those its
        copy tags turn off, and a routed vault never copies to the air-gapped vault (only the default vault does)."""
        off = {t for c in self.choices if not self.copies_on(c) for t in c.targets}
        if not self.default_vault:
            off.add("air_gapped")
        return [t for t in allowed if t not in off]

    @property
    def equals(self) -> dict[str, str]:
        """The routing tags this plan's resources carry (besides the tier's own)."""
        found = {} if self.default_vault else {TAG_BACKUP_VAULT: self.vault}
        if not self.default_class:
            found[TAG_RETENTION_DAYS] = str(self.retention_days)
        found.update({c.tag: c.flip_value for c in self.choices if c.tag in self.flipped})
        return found

    @property
    def not_equals(self) -> list[tuple[str, str]]:
        """The routing tag values this plan's resources do not carry: the other variants'."""
        excluded = [(TAG_BACKUP_VAULT, key) for key in self.routed_vault_keys] if self.default_vault else []
        if self.default_class:
            excluded += [(TAG_RETENTION_DAYS, str(days)) for days in self.base.other_classes]
        excluded += [(c.tag, c.flip_value) for c in self.choices if c.tag not in self.flipped]
        return excluded

    def selects(self, tags: Mapping[str, str]) -> bool:
        """Whether this plan's routing conditions hold for a resource's tags (an absent tag is not equal)."""
        return all(tags.get(k) == v for k, v in self.equals.items()) and all(
            tags.get(k) != v for k, v in self.not_equals
        )


def plan_variants(
    base_name: str, plan: Plan, default_vault: str, routed: tuple[str, ...], choices: tuple[CopyChoice, ...] = ()
) -> list[PlanVariant]:
    """Every (vault, retention class, copies) that gets its own plan, the default vault, class and copies first."""
    masks = product((False, True), repeat=len(choices))
    flips = [frozenset(c.tag for c, on in zip(choices, mask, strict=True) if on) for mask in masks]
    return [
        PlanVariant(base_name, plan, default_vault, routed, vault, days, choices, flipped)
        for vault in (default_vault, *routed)
        for days in (plan.default_retention, *plan.other_classes)
        for flipped in flips
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
        self._check_copy_routing("plan", self.tier, self.plan, errors)
        if key in self.vaults:
            air_gapped = "air_gapped" in self.copy_targets()
            self._check_plan_names("plan", self.plan_variants(self.plan), air_gapped, errors)

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
        """The routing tags the config gives its buckets and databases name a vault, a class and copies that exist."""
        classes = self.plan.retention_classes if self.plan is not None else ()
        data: list[tuple[str, str, Bucket | Database]] = [("buckets", name, b) for name, b in self.buckets.items()]
        data += [("databases", name, d) for name, d in self.databases.items()]
        copy_values = self.copy_tag_values(self.plan)
        for section, name, item in data:
            vault, days = item.vault, item.retention_days
            for field, tag in (("copy_to_region", TAG_COPY_TO_REGION), ("copy_to_account", TAG_COPY_TO_ACCOUNT)):
                value = getattr(item, field)
                if value is None or self.scheduling != "account" or value in copy_values[tag]:
                    continue
                errors.append(
                    f"{section}.{name}.{field}: {value!r} is not a value {tag} may take here "
                    f"({', '.join(copy_values[tag])}; plan.tag_copies lets a tag turn a copy on or off); AWS Backup "
                    "would copy it as the plan does"
                )
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
        return plan_variants(
            self.plan_name(self.tier), plan, self.vault_key, self.routed_vault_keys, self.copy_choices(plan)
        )

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
