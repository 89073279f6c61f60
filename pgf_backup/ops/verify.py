"""`pgf-backup verify`: discover a workload account's data resources and check their protection against the
stack's config. Pure functions over boto3 clients passed in (never made here): discovery per region, then the
evaluation of each resource's tags, selection, recovery points, copies and key, and of the vaults and their keys.

How the evidence is gathered, with the fewest pages (the bench counts them, `bench/verify.py`):

- resources: one listing per type and region at each operation's largest page (`ListBuckets` filtered by
  `BucketRegion`, `DescribeDBInstances`, `DescribeDBClusters` and `DescribeFileSystems`, whose items carry
  their tags and keys, `ListTables`), the tags of buckets and tables from one `GetResources` listing;
- selection: each plan's selections (`ListBackupPlans`, `ListBackupSelections`, `GetBackupSelection`),
  evaluated here with AWS's documented semantics, and the region's opt-in (`DescribeRegionSettings`);
- backups: `ListProtectedResources` (every resource with a recovery point, when it was last saved and in which
  vault) and one listing of each local vault's recovery points of the look-back window
  (`ListRecoveryPointsByBackupVault`: the default vault and the routed ones), instead of one
  `ListRecoveryPointsByResource` call per resource;
- copies: the copy jobs of the look-back window (`ListCopyJobs`, completed ones) name each copy's destination
  vault and recovery point; with the backup account's role, the recovery points of each vault copies land in
  there (central, air-gapped, and the routed vaults' twins) confirm that each copy is still there.

Each resource is expected where its plan puts it: the one plan of the tier its routing tags select (`PlanVariant`;
the config's routing for a resource the plans list by ARN) names the vault of its recovery points and its copies.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore import xform_name

from pgf_backup.config import BackupAccountStack, PlanVariant, WorkloadStack
from pgf_backup.config.sections import FULLY_MANAGED, Bucket, CopyTarget, Database, Plan, VaultLock
from pgf_backup.config.types import partition
from pgf_backup.constants import (
    DATA_CLASSIFICATIONS,
    TAG_APPLICATION,
    TAG_BACKUP_ENABLED,
    TAG_BACKUP_TIER,
    TAG_BACKUP_VAULT,
    TAG_COPY_TO_ACCOUNT,
    TAG_COPY_TO_REGION,
    TAG_DATA_CLASSIFICATION,
    TAG_RETENTION_DAYS,
)

SCHEMA = "pgf-backup/verify/v1"

# A factory of boto3 clients: (service, region) -> client. The CLI passes one over the assumed role's session.
ClientFactory = Callable[[str, str], Any]
Progress = Callable[[int, int, str], None]

Status = Literal["ok", "unprotected", "stale", "misconfigured", "excluded"]
CopyStatus = Literal["ok", "stale", "missing", "not-expected", "unverified"]
# Worst first: a resource's status is the worst of what applies to it.
STATUS_ORDER: tuple[Status, ...] = ("unprotected", "stale", "misconfigured", "ok", "excluded")

# Largest page of each listing (botocore's service models: the `max` of each operation's limit member, or its
# documentation where the model gives none).
PAGE_SIZES: Mapping[str, int] = {
    "ListBuckets": 10000,  # MaxBuckets: 1-10000
    "GetResources": 100,  # ResourcesPerPage: "a maximum value of 100"
    "DescribeDBInstances": 100,  # MaxRecords: "Minimum 20, maximum 100"
    "DescribeDBClusters": 100,  # MaxRecords: "Minimum 20, maximum 100"
    "ListTables": 100,  # Limit: 1-100
    "DescribeFileSystems": 100,  # MaxItems: "paginated at 100 per page"
    "ListProtectedResources": 1000,  # MaxResults: 1-1000
    "ListRecoveryPointsByBackupVault": 1000,
    "ListCopyJobs": 1000,
    "ListBackupPlans": 1000,
    "ListBackupSelections": 1000,
}

# AWS Backup's resource type names (the keys of DescribeRegionSettings' ResourceTypeOptInPreference).
S3, RDS, AURORA, DOCUMENTDB, NEPTUNE, DYNAMODB, EFS = "S3", "RDS", "Aurora", "DocumentDB", "Neptune", "DynamoDB", "EFS"
# "If a resource type is explicitly assigned to a backup plan, it will be included in the backup even if the opt-in
# is not enabled for that particular service. This does not apply to Aurora, Neptune, and Amazon DocumentDB"; "If
# resource assignments are only based on tags, then service opt-in settings are applied"
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources.html).
ALWAYS_OPT_IN = (AURORA, NEPTUNE, DOCUMENTDB)


class VerifyError(Exception):
    """A failure that stops the verification (AWS refused a call, a role cannot be assumed): printed, exit 1."""


# ---------------------------------------------------------------------------------------------
# Discovered resources


@dataclass(frozen=True)
class Resource:
    """One data resource of the account, as discovered."""

    arn: str
    name: str
    type: str  # AWS Backup's resource type name (S3, RDS, Aurora, DynamoDB, EFS, ...)
    kind: str  # s3-bucket, rds-instance, rds-cluster, dynamodb-table, efs-file-system
    region: str
    tags: Mapping[str, str]
    kms_key: str | None = None


def _tags(items: Iterable[Mapping[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {item[key]: item[value] for item in items or ()}


def _pages(client: Any, operation: str, result_key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated listing, at the operation's largest page (botocore's paginator)."""
    size = PAGE_SIZES.get(operation)
    config = {"PageSize": size} if size else {}
    for page in client.get_paginator(xform_name(operation)).paginate(**kwargs, PaginationConfig=config):
        yield from page.get(result_key, [])


def _cluster_type(engine: str) -> str:
    if engine.startswith("aurora"):
        return AURORA
    if engine == "docdb":
        return DOCUMENTDB
    if engine == "neptune":
        return NEPTUNE
    return RDS  # Multi-AZ DB clusters (mysql, postgres)


def discover(clients: ClientFactory, account_id: str, region: str) -> list[Resource]:
    """Every S3 bucket, RDS DB instance and cluster, DynamoDB table and EFS file system of one region."""
    part = partition(region)
    tagging = clients("resourcegroupstaggingapi", region)
    # Buckets and tables carry no tags in their listings: one GetResources listing gives them ("all the tagged or
    # previously tagged resources that are located in the specified Region", botocore's resourcegroupstaggingapi
    # model; a resource never tagged is absent, and has no tags).
    tagged = {
        item["ResourceARN"]: _tags(item.get("Tags"))
        for item in _pages(
            tagging, "GetResources", "ResourceTagMappingList", ResourceTypeFilters=["s3", "dynamodb:table"]
        )
    }
    found: list[Resource] = []
    # ListBuckets' BucketRegion "Limits the response to buckets that are located in the specified Region" and must be
    # sent to that region's endpoint (botocore's s3 model): the client is the region's.
    for bucket in _pages(clients("s3", region), "ListBuckets", "Buckets", BucketRegion=region):
        arn = f"arn:{part}:s3:::{bucket['Name']}"
        found.append(Resource(arn, bucket["Name"], S3, "s3-bucket", region, tagged.get(arn, {})))
    rds = clients("rds", region)
    for db in _pages(rds, "DescribeDBInstances", "DBInstances"):
        if db.get("DBClusterIdentifier"):
            continue  # a cluster member: AWS Backup backs up its cluster
        found.append(
            Resource(
                db["DBInstanceArn"], db["DBInstanceIdentifier"], RDS, "rds-instance", region,
                _tags(db.get("TagList")), db.get("KmsKeyId") if db.get("StorageEncrypted") else None,
            )
        )  # fmt: skip
    for cluster in _pages(rds, "DescribeDBClusters", "DBClusters"):
        found.append(
            Resource(
                cluster["DBClusterArn"], cluster["DBClusterIdentifier"], _cluster_type(str(cluster.get("Engine", ""))),
                "rds-cluster", region, _tags(cluster.get("TagList")),
                cluster.get("KmsKeyId") if cluster.get("StorageEncrypted") else None,
            )
        )  # fmt: skip
    for table in _pages(clients("dynamodb", region), "ListTables", "TableNames"):
        arn = f"arn:{part}:dynamodb:{region}:{account_id}:table/{table}"
        found.append(Resource(arn, table, DYNAMODB, "dynamodb-table", region, tagged.get(arn, {})))
    for fs in _pages(clients("efs", region), "DescribeFileSystems", "FileSystems"):
        found.append(
            Resource(
                fs["FileSystemArn"], fs.get("Name") or fs["FileSystemId"], EFS, "efs-file-system", region,
                _tags(fs.get("Tags")), fs.get("KmsKeyId") if fs.get("Encrypted") else None,
            )
        )  # fmt: skip
    return found


# ---------------------------------------------------------------------------------------------
# Backup selections


@dataclass(frozen=True)
class Selection:
    """One backup selection of a plan, as GetBackupSelection returns it."""

    plan_name: str
    name: str
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: Mapping[str, tuple[tuple[str, str], ...]]  # StringEquals, ... -> ((key, value), ...)
    list_of_tags: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        """`plan/selection`, as the report names it."""
        return f"{self.plan_name}/{self.name}"


def _wildcard(pattern: str) -> re.Pattern[str]:
    # "The wildcard * represents zero or more non-whitespace characters"
    # (https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources-json.html).
    return re.compile("^" + r"\S*".join(re.escape(part) for part in pattern.split("*")) + "$")


def _tag_key(condition_key: str) -> str:
    return condition_key.removeprefix("aws:ResourceTag/")


def _condition_holds(kind: str, key: str, value: str, tags: Mapping[str, str]) -> bool:
    # Conditions: StringEquals ("exact matching"), StringLike (wildcard "anywhere in the string"), StringNotEquals
    # ("negated matching"), StringNotLike (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_Conditions.html).
    # AWS does not document a negated condition on a tag the resource lacks; IAM's rule (the "Boolean arithmetic is
    # similar to that in IAM policies", assigning-resources-json.html above) is that it holds, as here.
    actual = tags.get(_tag_key(key))
    if kind == "StringEquals":
        return actual == value
    if kind == "StringLike":
        return actual is not None and bool(_wildcard(value).match(actual))
    if kind == "StringNotEquals":
        return actual != value
    if kind == "StringNotLike":
        return actual is None or not _wildcard(value).match(actual)
    return False


def selects(selection: Selection, resource: Resource) -> tuple[bool, bool]:
    """(selected, by tags only) for one resource.

    "Resources" are OR-ed and "Conditions" AND-ed, "similar to that in IAM policies"
    (https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources-json.html); ListOfTags matches
    "any of the conditions (OR logic)" (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_BackupSelection.html);
    NotResources excludes. A selection with no Resources selects by tag across all types (that page's examples
    select "all resources" with Resources ["*"]; an empty list is taken the same way).
    """
    patterns = selection.resources or ("*",)
    matched = [p for p in patterns if _wildcard(p).match(resource.arn)]
    if not matched or any(_wildcard(p).match(resource.arn) for p in selection.not_resources):
        return False, False
    for kind, pairs in selection.conditions.items():
        if not all(_condition_holds(kind, key, value, resource.tags) for key, value in pairs):
            return False, False
    if selection.list_of_tags and not any(
        _condition_holds("StringEquals", key, value, resource.tags) for key, value in selection.list_of_tags
    ):
        return False, False
    return True, all(p == "*" for p in matched)


def read_selections(backup: Any) -> list[Selection]:
    """Every selection of every backup plan of the client's region."""
    selections: list[Selection] = []
    for plan in _pages(backup, "ListBackupPlans", "BackupPlansList"):
        plan_id, plan_name = plan["BackupPlanId"], plan.get("BackupPlanName", plan["BackupPlanId"])
        for item in _pages(backup, "ListBackupSelections", "BackupSelectionsList", BackupPlanId=plan_id):
            body = backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=item["SelectionId"])["BackupSelection"]
            conditions = {
                kind: tuple((c["ConditionKey"], c["ConditionValue"]) for c in pairs)
                for kind, pairs in (body.get("Conditions") or {}).items()
                if pairs
            }
            selections.append(
                Selection(
                    plan_name=plan_name,
                    name=body.get("SelectionName", item["SelectionId"]),
                    resources=tuple(body.get("Resources") or ()),
                    not_resources=tuple(body.get("NotResources") or ()),
                    conditions=conditions,
                    list_of_tags=tuple((c["ConditionKey"], c["ConditionValue"]) for c in body.get("ListOfTags") or ()),
                )
            )
    return selections


# ---------------------------------------------------------------------------------------------
# What the config expects


@dataclass(frozen=True)
class VaultRef:
    """A vault by account, region and name (how copy jobs and the config both name it)."""

    account: str
    region: str
    name: str

    @classmethod
    def from_arn(cls, arn: str) -> VaultRef:
        """`arn:<partition>:backup:<region>:<account>:backup-vault:<name>`."""
        parts = arn.split(":")
        return cls(account=parts[4], region=parts[3], name=parts[-1])


@dataclass(frozen=True)
class LocalVault:
    """One vault of the workload account (the same name in every region), and where its recovery points are copied."""

    key: str
    name: str
    lock: VaultLock | None
    default: bool  # the vault of untagged resources (the tier's first); the others are routed to by backup:vault
    destinations: Mapping[CopyTarget, VaultRef]


@dataclass(frozen=True)
class RemoteVault:
    """A vault of the backup account that copies land in, with the lock the config gives it."""

    ref: VaultRef
    lock: VaultLock | None
    air_gapped: bool


@dataclass(frozen=True)
class Listed:
    """A resource the stack's plans list by ARN (account mode): its routing is the config's, not its tags'."""

    path: str  # the config key that lists it (`buckets.pgf-documents-prod`)
    tags: Mapping[str, str]  # the routing tags the config says it carries


@dataclass(frozen=True)
class Route:
    """The one plan of the tier a resource's routing selects: where its recovery points land, where they are copied."""

    plan: str | None  # the plan's name (None: the tier has no plan)
    vault: LocalVault
    copies: tuple[tuple[CopyTarget, VaultRef], ...]


@dataclass(frozen=True)
class Expectations:
    """What the stack's config says each resource and vault should have."""

    stack: str
    account_id: str
    tier: str
    application: str
    regions: tuple[str, ...]
    primary: str
    rpo_hours: int
    window_hours: int  # RPO + the freshness alarm's grace: the same threshold as the alarm
    local_vault: str  # the default vault's name
    local_lock: VaultLock | None
    copy_targets: tuple[CopyTarget, ...]  # every target a plan of the tier may copy to
    backup_account: str
    fully_managed_config: Mapping[str, Mapping[str, bool]]
    # Every vault of the stack (the default first), and the backup account's vaults their copies land in.
    vaults: tuple[LocalVault, ...] = ()
    remote_vaults: tuple[RemoteVault, ...] = ()
    # The tier's plans, one per (vault, retention class, copies): exactly one selects any resource's routing tags.
    variants: tuple[PlanVariant, ...] = ()
    # Account mode: the resources the plans list by ARN, by (kind, name), and the ARN patterns of plan.selection.
    listed: Mapping[tuple[str, str], Listed] = field(default_factory=dict)
    listed_patterns: tuple[str, ...] = ()
    # The routing tags' allowed values: the plan's retention classes, the vaults after the first, the copy tags'.
    retention_classes: tuple[int, ...] = ()
    routed_vaults: tuple[str, ...] = ()
    copy_tag_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, stack: str, cfg: WorkloadStack, backup: BackupAccountStack) -> Expectations:
        """The expectations of a workload stack, with the backup account's config for the copy destinations."""
        tier = cfg.tier
        account_mode = cfg.scheduling == "account"
        plan: Plan | None = cfg.plan if account_mode else backup.plans.get(tier)
        targets = tuple(cfg.copy_targets() if account_mode else backup.copy_targets(plan))
        central = backup.central_vault_key(tier)
        primary, copy_region = cfg.regions.primary, cfg.regions.copy_region
        routed = cfg.routed_vault_keys if account_mode else backup.routed_vault_keys(tier)
        remote: dict[VaultRef, RemoteVault] = {}

        def to_backup_account(key: str, air_gapped: bool = False) -> VaultRef:
            name = backup.air_gapped_vault_name(key) if air_gapped else backup.vault_name(key)
            ref = VaultRef(backup.account_id, primary, name)
            remote.setdefault(ref, RemoteVault(ref, None if air_gapped else backup.vaults[key].lock, air_gapped))
            return ref

        vaults: list[LocalVault] = []
        for key in (cfg.vault_key, *routed):
            default = key == cfg.vault_key
            # Organization mode: the BACKUP_POLICY names a routed vault by the backup stack's name for it
            # (stacks._policy_document); the default one's name is checked against this stack's (backup_outputs).
            name = cfg.vault_name(key) if account_mode or default else backup.vault_name(key)
            destinations: dict[CopyTarget, VaultRef] = {}
            # As the plans copy (stacks._variant_plans, stacks._policy_document): the default vault to the backup
            # account's central vault (and its air-gapped vault), a routed vault to the backup account's vault of the
            # same key, never to the air-gapped vault; each to its own twin in the copy region, in this account.
            if "backup_account" in targets:
                if default and central is not None:
                    destinations["backup_account"] = to_backup_account(central)
                elif not default and key in backup.vaults:
                    destinations["backup_account"] = to_backup_account(key)
            if "copy_region" in targets and copy_region:
                destinations["copy_region"] = VaultRef(cfg.account_id, copy_region, name)
            if default and "air_gapped" in targets and central is not None and backup.vaults[central].air_gapped:
                destinations["air_gapped"] = to_backup_account(central, air_gapped=True)
            lock = cfg.vaults[key].lock if key in cfg.vaults else None
            vaults.append(LocalVault(key, name, lock, default, destinations))
        variants: list[PlanVariant] = []
        if plan is not None:
            variants = cfg.plan_variants(plan) if account_mode else backup.plan_variants(tier)
        return cls(
            stack=stack,
            account_id=cfg.account_id,
            tier=tier,
            application=cfg.tags.application,
            regions=cfg.regions.all,
            primary=primary,
            rpo_hours=int(getattr(cfg.alarms.rpo_hours, tier)),
            window_hours=cfg.alarms.window_hours(tier),
            local_vault=vaults[0].name,
            local_lock=vaults[0].lock,
            copy_targets=targets,
            backup_account=backup.account_id,
            fully_managed_config={r: dict(t.management) for r, t in cfg.region_resource_types.items()},
            vaults=tuple(vaults),
            remote_vaults=tuple(remote.values()),
            variants=tuple(variants),
            listed=_listed(cfg) if account_mode and plan is not None else {},
            listed_patterns=plan.selection.resources if account_mode and plan is not None else (),
            retention_classes=(plan.default_retention, *plan.other_classes) if plan is not None else (),
            routed_vaults=routed,
            copy_tag_values=cfg.copy_tag_values(plan) if account_mode else backup.copy_tag_values(plan),
        )

    @property
    def destinations(self) -> Mapping[CopyTarget, VaultRef]:
        """Where the default vault's recovery points are copied."""
        return self.vaults[0].destinations if self.vaults else {}

    def vault(self, key: str) -> LocalVault:
        """A local vault by key (organization mode's default vault is keyed by the backup stack: the first)."""
        return next((v for v in self.vaults if v.key == key and not v.default), self.vaults[0])

    def routing_tags(self, resource: Resource) -> Mapping[str, str]:
        """The tags that route a resource: the config's for one its plans list by ARN, else the resource's own."""
        if resource.region == self.primary:
            listed = self.listed.get((resource.kind, resource.name))
            if listed is not None:
                return listed.tags
            if any(_wildcard(p).match(resource.arn) for p in self.listed_patterns):
                return {}  # listed by plan.selection.resources: the default plan's (stacks._route)
        return resource.tags

    def variant(self, tags: Mapping[str, str]) -> PlanVariant | None:
        """The one plan of the tier whose routing conditions these tags meet."""
        return next((v for v in self.variants if v.selects(tags)), None)

    def route(self, resource: Resource) -> Route:
        """The resource's plan, the vault its recovery points land in, and its copies' destination vaults."""
        variant = self.variant(self.routing_tags(resource))
        if variant is None:
            return Route(None, self.vaults[0], ())
        vault = self.vault(variant.vault) if not variant.default_vault else self.vaults[0]
        targets = variant.targets(self.copy_targets)
        if resource.kind == "rds-instance":
            # Logically air-gapped vaults hold no RDS DB instances (the program leaves them to a second plan):
            # https://docs.aws.amazon.com/aws-backup/latest/devguide/backup-feature-availability.html
            targets = [t for t in targets if t != "air_gapped"]
        copies = tuple((t, vault.destinations[t]) for t in targets if t in vault.destinations)
        return Route(variant.plan_name, vault, copies)

    def expected_copies(self, resource: Resource) -> list[CopyTarget]:
        """The copies this resource should have: its plan's (an RDS DB instance never goes to an air-gapped vault)."""
        return [target for target, _ in self.route(resource).copies]


def _listed(cfg: WorkloadStack) -> dict[tuple[str, str], Listed]:
    """The buckets and databases the stack's plans list by ARN, with the routing tags the config gives them (as
    stacks._route routes them); the export bucket is listed with none (the default plan)."""
    found: dict[tuple[str, str], Listed] = {}
    items: list[tuple[str, str, Bucket | Database]] = [
        ("s3-bucket", f"buckets.{name}", b) for name, b in cfg.buckets.items() if b.backup
    ]
    items += [(f"rds-{d.kind}", f"databases.{name}", d) for name, d in cfg.databases.items()]
    for kind, path, item in items:
        found[kind, path.split(".", 1)[1]] = Listed(path, item.routing_tags)
    if cfg.exports is not None:
        found["s3-bucket", cfg.exports.bucket] = Listed("exports.bucket", {})
    return found


def tag_problems(resource: Resource, exp: Expectations) -> list[str]:
    """The strategy's tag scheme on one resource: each missing or wrong tag, named."""
    tags, problems = resource.tags, []
    enabled = tags.get(TAG_BACKUP_ENABLED)
    if enabled is None:
        problems.append(f"tag {TAG_BACKUP_ENABLED} missing (true or false)")
    elif enabled not in ("true", "false"):
        problems.append(f"tag {TAG_BACKUP_ENABLED}={enabled!r}: must be true or false")
    tier = tags.get(TAG_BACKUP_TIER)
    if tier != exp.tier:
        problems.append(
            f"tag {TAG_BACKUP_TIER} missing (this account's tier is {exp.tier})"
            if tier is None
            else f"tag {TAG_BACKUP_TIER}={tier!r}: this account's tier is {exp.tier!r}"
        )
    classification = tags.get(TAG_DATA_CLASSIFICATION)
    if classification not in DATA_CLASSIFICATIONS:
        allowed = ", ".join(DATA_CLASSIFICATIONS)
        problems.append(
            f"tag {TAG_DATA_CLASSIFICATION} missing ({allowed})"
            if classification is None
            else f"tag {TAG_DATA_CLASSIFICATION}={classification!r}: one of {allowed}"
        )
    application = tags.get(TAG_APPLICATION)
    if application != exp.application:
        problems.append(
            f"tag {TAG_APPLICATION} missing ({exp.application})"
            if application is None
            else f"tag {TAG_APPLICATION}={application!r}: this stack's application is {exp.application!r}"
        )
    # The routing tags (README, "Tags"): a value outside what the config routes is backed up by the default plan,
    # not as its owner asked: said here rather than silently taken.
    days = tags.get(TAG_RETENTION_DAYS)
    if days is not None and days not in {str(d) for d in exp.retention_classes}:
        allowed = ", ".join(str(d) for d in exp.retention_classes) or "none: the plan has no retention classes"
        problems.append(
            f"tag {TAG_RETENTION_DAYS}={days!r}: not a retention class ({allowed}); backed up with the default class"
        )
    # The default vault's key and the default class are values too: tagging them makes the routing independent of how
    # AWS Backup reads StringNotEquals on an absent tag (docs/configuration.md, "What AWS documents").
    vault = tags.get(TAG_BACKUP_VAULT)
    vault_keys = (exp.vaults[0].key, *exp.routed_vaults) if exp.vaults else exp.routed_vaults
    if vault is not None and vault not in vault_keys:
        allowed = ", ".join(vault_keys) or "none: this stack has one vault"
        problems.append(
            f"tag {TAG_BACKUP_VAULT}={vault!r}: not a vault of this stack ({allowed}); backed up in the default"
        )
    for tag in (TAG_COPY_TO_REGION, TAG_COPY_TO_ACCOUNT):
        value, values = tags.get(tag), exp.copy_tag_values.get(tag, ())
        if value is not None and value not in values:
            allowed = ", ".join(values) or "none"
            problems.append(
                f"tag {tag}={value!r}: not a value it may take here ({allowed}); copied as the plan's default does"
            )
    listed = exp.listed.get((resource.kind, resource.name)) if resource.region == exp.primary else None
    if listed is not None and exp.variants:
        # The plans list it by ARN where its config says (stacks._route); tags that say otherwise mislead.
        by_config, by_tags = exp.variant(listed.tags), exp.variant(tags)
        if by_config is not None and by_tags is not None and by_config.key != by_tags.key:
            wanted = ", ".join(f"{k}={v}" for k, v in sorted(by_config.equals.items())) or "no routing tag"
            problems.append(
                f"routing tags select plan {by_tags.plan_name}, but {listed.path} lists it by ARN in plan "
                f"{by_config.plan_name}, which AWS Backup follows: tag it as the config says ({wanted})"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# Evidence read from AWS Backup and KMS


@dataclass
class RegionEvidence:
    """What AWS Backup says in one region of the workload account."""

    opt_in: dict[str, bool] = field(default_factory=dict)
    management: dict[str, bool] = field(default_factory=dict)
    selections: list[Selection] = field(default_factory=list)
    last_backup: dict[str, datetime] = field(default_factory=dict)  # ListProtectedResources
    last_backup_vault: dict[str, str] = field(default_factory=dict)  # ... and the vault (name) it is in
    last_completed: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (vault, resource): in the window
    copies: dict[tuple[str, VaultRef], list[tuple[datetime, str]]] = field(default_factory=dict)
    key_managers: dict[str, str] = field(default_factory=dict)  # key ARN -> AWS, CUSTOMER or unknown

    def latest(self, arn: str, vault: str) -> datetime | None:
        """The resource's latest completed recovery point in one vault (the window's listing), else its last backup
        (ListProtectedResources) when that names this vault, or no vault."""
        found = self.last_completed.get((vault, arn))
        if found is None and self.last_backup_vault.get(arn, vault) == vault:
            return self.last_backup.get(arn)
        return found

    def elsewhere(self, arn: str, vault: str) -> tuple[datetime, str] | None:
        """The resource's latest recovery point in any other vault of the account (when, vault name)."""
        found = [(when, name) for (name, resource), when in self.last_completed.items() if resource == arn]
        last, last_vault = self.last_backup.get(arn), self.last_backup_vault.get(arn)
        if last is not None and last_vault is not None:
            found.append((last, last_vault))
        return max(((when, name) for when, name in found if name != vault), default=None)


def read_region(backup: Any, vaults: Sequence[str], since: datetime) -> RegionEvidence:
    """The region's opt-in and management settings, selections, protected resources, the recovery points of each of
    `vaults` (the local vaults that exist), copy jobs."""
    evidence = RegionEvidence()
    settings = backup.describe_region_settings()
    evidence.opt_in = dict(settings.get("ResourceTypeOptInPreference") or {})
    evidence.management = dict(settings.get("ResourceTypeManagementPreference") or {})
    evidence.selections = read_selections(backup)
    # "Returns an array of resources with recovery points created by Backup (regardless of the recovery point's
    # status), including the time the resource was saved" (botocore's backup model; API_ListProtectedResources.html),
    # and "the backup vault that contains the most recent backup recovery point" (ProtectedResource.LastBackupVaultArn).
    for item in _pages(backup, "ListProtectedResources", "Results"):
        if item.get("LastBackupTime"):
            evidence.last_backup[item["ResourceArn"]] = item["LastBackupTime"]
            if item.get("LastBackupVaultArn"):
                evidence.last_backup_vault[item["ResourceArn"]] = VaultRef.from_arn(item["LastBackupVaultArn"]).name
    for vault_name in vaults:
        points = _pages(
            backup, "ListRecoveryPointsByBackupVault", "RecoveryPoints", BackupVaultName=vault_name,
            ByCreatedAfter=since,
        )  # fmt: skip
        for point in points:
            if point.get("Status") != "COMPLETED":
                continue
            arn, created = point.get("ResourceArn"), point.get("CreationDate")
            key = (vault_name, arn)
            if arn and created and (key not in evidence.last_completed or created > evidence.last_completed[key]):
                evidence.last_completed[key] = created
    # A copy job names its resource, destination vault and destination recovery point (CopyJob in botocore's
    # backup model; https://docs.aws.amazon.com/aws-backup/latest/devguide/API_CopyJob.html).
    for job in _pages(backup, "ListCopyJobs", "CopyJobs", ByState="COMPLETED", ByCreatedAfter=since):
        arn, vault = job.get("ResourceArn"), job.get("DestinationBackupVaultArn")
        if not arn or not vault:
            continue
        when = job.get("CompletionDate") or job.get("CreationDate")
        if when is None:
            continue
        evidence.copies.setdefault((arn, VaultRef.from_arn(vault)), []).append(
            (when, str(job.get("DestinationRecoveryPointArn", "")))
        )
    return evidence


@dataclass
class VaultState:
    """One vault's lock and key, against what the config expects."""

    role: str  # workload, backup-account, air-gapped
    account: str
    region: str
    name: str
    exists: bool = False
    locked: bool | None = None
    mode: str | None = None  # compliance (a lock date), governance, or None (no lock)
    min_retention_days: int | None = None
    max_retention_days: int | None = None
    lock_date: str | None = None
    recovery_points: int | None = None
    key_arn: str | None = None
    key_manager: str | None = None
    key_rotation: bool | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The vault's entry of the JSON report."""
        return dict(self.__dict__)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def read_vault(
    backup: Any, kms: Any, state: VaultState, lock: VaultLock | None, *, air_gapped: bool = False
) -> VaultState:
    """DescribeBackupVault, its key's manager and rotation, each compared with the config's lock."""
    try:
        vault = backup.describe_backup_vault(BackupVaultName=state.name)
    except Exception as error:  # a missing vault is a finding, not a failure
        if _error_code(error) not in ("ResourceNotFoundException", "AccessDeniedException"):
            raise
        missing = _error_code(error) == "ResourceNotFoundException"
        state.problems.append(
            f"vault {state.name} ({state.account}, {state.region}): "
            + ("not found" if missing else "access denied to DescribeBackupVault")
        )
        return state
    state.exists = True
    state.locked = bool(vault.get("Locked"))
    state.min_retention_days = vault.get("MinRetentionDays")
    state.max_retention_days = vault.get("MaxRetentionDays")
    lock_date = vault.get("LockDate")
    state.lock_date = lock_date.isoformat() if lock_date else None
    # "If you applied Vault Lock to your vault without specifying a lock date, you can change any of your Vault Lock
    # settings, or delete Vault Lock from the vault entirely, at any time" (DescribeBackupVault's LockDate,
    # https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DescribeBackupVault.html): a lock date is what
    # makes a lock compliance mode.
    state.mode = None if state.min_retention_days is None else ("compliance" if lock_date else "governance")
    state.recovery_points = vault.get("NumberOfRecoveryPoints")
    state.key_arn = vault.get("EncryptionKeyArn")
    where = f"vault {state.name} ({state.account}, {state.region})"
    if air_gapped:
        state.expected = {"vault_type": "LOGICALLY_AIR_GAPPED_BACKUP_VAULT"}
        if vault.get("VaultType") not in (None, "LOGICALLY_AIR_GAPPED_BACKUP_VAULT"):
            state.problems.append(f"{where}: type {vault.get('VaultType')}, expected a logically air-gapped vault")
    elif lock is not None:
        state.expected = {
            "mode": lock.mode,
            "min_retention_days": lock.min_retention_days,
            "max_retention_days": lock.max_retention_days,
        }
        if state.mode is None:
            state.problems.append(f"{where}: no Vault Lock; the config expects {lock.mode} mode")
        else:
            if state.mode != lock.mode:
                state.problems.append(f"{where}: Vault Lock in {state.mode} mode; the config expects {lock.mode}")
            actual = (state.min_retention_days, state.max_retention_days)
            if actual != (lock.min_retention_days, lock.max_retention_days):
                state.problems.append(
                    f"{where}: lock retention {state.min_retention_days}-{state.max_retention_days} days; the config "
                    f"expects {lock.min_retention_days}-{lock.max_retention_days}"
                )
    else:
        state.expected = {"mode": None}
    if state.key_arn and not air_gapped:
        read_key(kms, state.key_arn, state, where)
    return state


def read_key(kms: Any, key_arn: str, state: VaultState, where: str) -> None:
    """Fill a vault's key manager and rotation; a customer-managed key that does not rotate is a problem."""
    try:
        state.key_manager = describe_key_manager(kms, key_arn)
        if state.key_manager == "AWS":
            # "KMS always rotates the key material in Amazon Web Services managed KMS keys every year. The key
            # rotation status for Amazon Web Services managed KMS keys is always true"
            # (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyRotationStatus.html).
            state.key_rotation = True
            return
        state.key_rotation = bool(kms.get_key_rotation_status(KeyId=key_arn).get("KeyRotationEnabled"))
    except Exception as error:
        if _error_code(error) not in ("AccessDeniedException", "NotFoundException"):
            raise
        state.problems.append(f"{where}: key {key_arn}: {_error_code(error)} (rotation unverified)")
        return
    if not state.key_rotation:
        state.problems.append(f"{where}: key {key_arn} does not rotate (EnableKeyRotation)")


def describe_key_manager(kms: Any, key: str) -> str:
    """KeyManager of a key: AWS or CUSTOMER (DescribeKey; https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html)."""
    return str(kms.describe_key(KeyId=key)["KeyMetadata"].get("KeyManager", ""))


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class CopyState:
    """One expected copy of a resource's latest backups."""

    target: str
    vault: str
    status: CopyStatus
    last_copy: str | None = None
    age_hours: float | None = None


@dataclass
class Finding:
    """One resource and everything verify says about it."""

    resource: Resource
    status: Status = "ok"
    tag_problems: list[str] = field(default_factory=list)
    selected_by: list[str] = field(default_factory=list)
    opted_in: bool | None = None
    backed_up: bool = False
    last_recovery_point: str | None = None
    age_hours: float | None = None
    copies: list[CopyState] = field(default_factory=list)
    key_manager: str | None = None
    key_trap: bool = False
    problems: list[str] = field(default_factory=list)
    # Where a selected resource's routing sends it: the tier's plan and the vault its recovery points land in.
    plan: str | None = None
    vault: str | None = None

    @property
    def tier(self) -> str:
        """The resource's backup:tier tag, or `(none)`."""
        return self.resource.tags.get(TAG_BACKUP_TIER, "(none)")

    @property
    def protected(self) -> bool:
        """Selected by a plan and backed up at least once."""
        return bool(self.selected_by) and self.backed_up and self.opted_in is not False

    def to_json(self) -> dict[str, Any]:
        """The resource's entry of the JSON report."""
        r = self.resource
        return {
            "arn": r.arn,
            "name": r.name,
            "type": r.type,
            "kind": r.kind,
            "region": r.region,
            "tier": self.tier,
            "tags": dict(sorted(r.tags.items())),
            "status": self.status,
            "protected": self.protected,
            "selected_by": self.selected_by,
            "opted_in": self.opted_in,
            "backed_up": self.backed_up,
            "last_recovery_point": self.last_recovery_point,
            "age_hours": self.age_hours,
            "copies": [c.__dict__ for c in self.copies],
            "kms_key": r.kms_key,
            "key_manager": self.key_manager,
            "key_trap": self.key_trap,
            "tag_problems": self.tag_problems,
            "problems": self.problems,
            "plan": self.plan,
            "vault": self.vault,
        }


def _hours(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds() / 3600, 1)


def _worst(statuses: Iterable[Status]) -> Status:
    return min(statuses, key=STATUS_ORDER.index, default="ok")


def evaluate(
    resource: Resource,
    exp: Expectations,
    evidence: RegionEvidence,
    *,
    key_managers: Mapping[str, str],
    confirmed: Mapping[VaultRef, set[str]] | None,
    now: datetime,
) -> Finding:
    """Everything about one resource: tags, selection, opt-in, recovery point age, copies, key."""
    finding = Finding(resource)
    label = f"{resource.type} {resource.name} ({resource.region})"
    statuses: list[Status] = []
    finding.tag_problems = tag_problems(resource, exp)
    if finding.tag_problems:
        statuses.append("misconfigured")
        finding.problems += [f"{label}: {p}" for p in finding.tag_problems]
    if resource.tags.get(TAG_BACKUP_ENABLED) == "false":
        # A decision recorded on the resource: reported, not a gap.
        finding.status = _worst([*statuses, "ok"]) if statuses else "excluded"
        return finding
    tag_only = True
    for selection in evidence.selections:
        chosen, by_tags = selects(selection, resource)
        if chosen:
            finding.selected_by.append(selection.label)
            tag_only = tag_only and by_tags
    if finding.selected_by:
        opted = evidence.opt_in.get(resource.type)
        needs_opt_in = tag_only or resource.type in ALWAYS_OPT_IN
        finding.opted_in = bool(opted) if needs_opt_in else True
        if needs_opt_in and not opted:
            statuses.append("unprotected")
            finding.problems.append(
                f"{label}: selected by {', '.join(finding.selected_by)}, but {resource.type} is not opted in to AWS "
                f"Backup in {resource.region} (ResourceTypeOptInPreference)"
            )
    else:
        statuses.append("unprotected")
        finding.problems.append(f"{label}: no backup plan selects it")
    route = exp.route(resource)
    if finding.selected_by:
        finding.plan, finding.vault = route.plan, route.vault.name
    # A routed vault is named in what is said of its resources (the default vault's messages are as they always were).
    where = "" if route.vault.default else f" in vault {route.vault.name} (plan {route.plan})"
    last = evidence.latest(resource.arn, route.vault.name)
    other = evidence.elsewhere(resource.arn, route.vault.name)
    finding.backed_up = last is not None or other is not None
    if last is None and other is not None:
        when, name = other
        finding.last_recovery_point, finding.age_hours = when.isoformat(), _hours(now, when)
        if finding.selected_by:
            # Backed up, but not where its routing says (re-tagged since, say): its plan's recovery points are missing.
            statuses.append("stale")
            plan = f"its plan {route.plan}" if route.plan else "the stack"
            finding.problems.append(
                f"{label}: no recovery point in vault {route.vault.name}, where {plan} backs it up; the last one "
                f"({finding.age_hours} hours old) is in vault {name}"
            )
    elif last is None:
        if finding.selected_by:
            statuses.append("unprotected")
            finding.problems.append(f"{label}: no recovery point yet{where}")
    else:
        finding.last_recovery_point = last.isoformat()
        finding.age_hours = _hours(now, last)
        if finding.age_hours > exp.window_hours:
            statuses.append("stale")
            finding.problems.append(
                f"{label}: last recovery point{where} {finding.age_hours} hours old; the {exp.tier} RPO is "
                f"{exp.rpo_hours} hours (+{exp.window_hours - exp.rpo_hours} grace)"
            )
    for target, vault in route.copies:
        copy = CopyState(target=target, vault=f"{vault.name} ({vault.account}, {vault.region})", status="missing")
        jobs = sorted(evidence.copies.get((resource.arn, vault), []), key=lambda job: job[0])
        if confirmed is not None and vault.account != exp.account_id:
            present = confirmed.get(vault)
            if present is not None:
                jobs = [job for job in jobs if job[1] in present]
            else:
                copy.status = "unverified"
        if jobs:
            when = jobs[-1][0]
            copy.last_copy, copy.age_hours = when.isoformat(), _hours(now, when)
            if copy.status != "unverified":  # the destination vault could not be read: its problem is reported
                copy.status = "ok" if copy.age_hours <= exp.window_hours else "stale"
        finding.copies.append(copy)
        # A resource without any recovery point is already reported as such: its copies add nothing.
        if copy.status in ("missing", "stale") and finding.backed_up:
            statuses.append("stale")
            what = (
                f"none within the {exp.window_hours}-hour window"
                if copy.status == "missing"
                else f"the last is {copy.age_hours} hours old (window {exp.window_hours} hours)"
            )
            finding.problems.append(f"{label}: copy to {target.replace('_', ' ')} ({copy.vault}): {what}")
    if resource.kms_key:
        finding.key_manager = key_managers.get(resource.kms_key)
        configured = exp.fully_managed_config.get(resource.region, {}).get(resource.type)
        managed = evidence.management.get(resource.type, configured)
        fully = resource.type in FULLY_MANAGED and bool(managed)
        crosses = any(vault.account != exp.account_id for _, vault in route.copies)
        # Backups of types not fully managed by AWS Backup "inherit the encryption settings from their source
        # resource" (https://docs.aws.amazon.com/aws-backup/latest/devguide/encryption.html), and an RDS snapshot
        # "encrypted using the default KMS key of the AWS account that shared the snapshot" cannot be shared
        # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/share-encrypted-snapshot.html); the source account
        # must share a customer managed key with the destination account
        # (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-cross-account-backup.html).
        if finding.key_manager == "AWS" and not fully and crosses:
            finding.key_trap = True
            statuses.append("misconfigured")
            finding.problems.append(
                f"{label}: encrypted with the AWS managed key {resource.kms_key}: its backups keep that key and "
                "cannot be copied to the backup account; re-encrypt it with a customer managed key that admits the "
                "backup account"
            )
    finding.status = _worst(statuses)
    return finding


# ---------------------------------------------------------------------------------------------
# The whole verification


@dataclass
class Report:
    """The result of `pgf-backup verify`: findings, vaults, coverage, problems."""

    exp: Expectations
    generated_at: datetime
    lookback_hours: int
    findings: list[Finding]
    vaults: list[VaultState]
    backup_account_checked: bool
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every problem, resources first, then vaults."""
        return [p for f in self.findings for p in f.problems] + [p for v in self.vaults for p in v.problems]

    @property
    def ok(self) -> bool:
        """Nothing unprotected, stale or misconfigured."""
        return not self.problems

    def summary(self) -> dict[str, Any]:
        """Coverage: protected, unprotected and excluded resources, per type and per tier, and status counts."""

        def bucket(findings: Iterable[Finding]) -> dict[str, int]:
            counts = Counter(
                "excluded" if f.status == "excluded" else ("protected" if f.protected else "unprotected")
                for f in findings
            )
            return {k: counts.get(k, 0) for k in ("protected", "unprotected", "excluded")}

        by_type: dict[str, list[Finding]] = defaultdict(list)
        by_tier: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            by_type[f.resource.type].append(f)
            by_tier[f.tier].append(f)
        statuses = Counter(f.status for f in self.findings)
        return {
            "resources": len(self.findings),
            **bucket(self.findings),
            "by_status": {s: statuses.get(s, 0) for s in STATUS_ORDER},
            "by_type": {t: bucket(fs) for t, fs in sorted(by_type.items())},
            "by_tier": {t: bucket(fs) for t, fs in sorted(by_tier.items())},
            "vault_problems": sum(len(v.problems) for v in self.vaults),
            "problems": len(self.problems),
        }

    def to_json(self) -> dict[str, Any]:
        """The stable JSON document (schema `pgf-backup/verify/v1`, documented in the README)."""
        exp = self.exp
        return {
            "schema": SCHEMA,
            "stack": exp.stack,
            "account_id": exp.account_id,
            "tier": exp.tier,
            "regions": list(exp.regions),
            "generated_at": self.generated_at.isoformat(),
            "rpo_hours": exp.rpo_hours,
            "window_hours": exp.window_hours,
            "lookback_hours": self.lookback_hours,
            "copy_targets": list(exp.copy_targets),
            "backup_account_checked": self.backup_account_checked,
            "ok": self.ok,
            "summary": self.summary(),
            "resources": [f.to_json() for f in self.findings],
            "vaults": [v.to_json() for v in self.vaults],
            "problems": self.problems,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class BackupAccountAccess:
    """Clients in the backup account (its deploy role), to confirm copies and read its vaults."""

    clients: ClientFactory


def verify(
    exp: Expectations,
    clients: ClientFactory,
    *,
    now: datetime,
    backup_account: BackupAccountAccess | None = None,
    lookback_hours: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Discover every region's data resources and evaluate them, the vaults and their keys."""
    lookback = lookback_hours or 2 * exp.window_hours
    since = now - timedelta(hours=lookback)
    steps = len(exp.regions) * 3 + (1 if backup_account else 0)
    step = 0

    def tick(what: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(step, steps, what)

    vaults: list[VaultState] = []
    resources: dict[str, list[Resource]] = {}
    evidence: dict[str, RegionEvidence] = {}
    for region in exp.regions:
        backup, kms = clients("backup", region), clients("kms", region)
        resources[region] = discover(clients, exp.account_id, region)
        tick(f"{region}: {len(resources[region])} resources")
        # Every vault of the stack, the default and the routed ones: each holds the recovery points of its plans.
        local = [
            read_vault(backup, kms, VaultState("workload", exp.account_id, region, vault.name), vault.lock)
            for vault in exp.vaults
        ]
        vaults.extend(local)
        evidence[region] = read_region(backup, [state.name for state in local if state.exists], since)
        tick(f"{region}: AWS Backup")
        resources[region] = _with_table_keys(clients, region, resources[region], evidence[region], exp)
        keys = sorted({r.kms_key for r in resources[region] if r.kms_key})
        evidence[region].key_managers = {key: _key_manager_or_unknown(kms, key) for key in keys}
        tick(f"{region}: {len(keys)} keys")
    confirmed: dict[VaultRef, set[str]] | None = None
    notes: list[str] = []
    if backup_account is not None:
        confirmed = {}
        for remote in exp.remote_vaults:
            ref, air_gapped = remote.ref, remote.air_gapped
            b_backup, b_kms = backup_account.clients("backup", ref.region), backup_account.clients("kms", ref.region)
            role = "air-gapped" if air_gapped else "backup-account"
            state = read_vault(
                b_backup, b_kms, VaultState(role, ref.account, ref.region, ref.name), remote.lock, air_gapped=air_gapped
            )
            vaults.append(state)
            if state.exists:
                # The destination account lists the copies in its own vault ("Returns detailed information about the
                # recovery points stored in a backup vault", API_ListRecoveryPointsByBackupVault.html).
                points = _pages(
                    b_backup, "ListRecoveryPointsByBackupVault", "RecoveryPoints", BackupVaultName=ref.name,
                    ByCreatedAfter=since,
                )  # fmt: skip
                confirmed[ref] = {str(p["RecoveryPointArn"]) for p in points if p.get("Status") == "COMPLETED"}
        tick("backup account")
    else:
        notes.append(
            "copies to the backup account seen from the workload account's copy jobs only; the backup account's "
            "vaults were not read"
        )
    findings: list[Finding] = []
    for region in exp.regions:
        for resource in sorted(resources[region], key=lambda r: (r.type, r.name)):
            findings.append(
                evaluate(
                    resource, exp, evidence[region], key_managers=evidence[region].key_managers, confirmed=confirmed,
                    now=now,
                )
            )  # fmt: skip
    return Report(exp, now, lookback, findings, vaults, backup_account is not None, notes)


def _with_table_keys(
    clients: ClientFactory, region: str, found: list[Resource], evidence: RegionEvidence, exp: Expectations
) -> list[Resource]:
    """Tables' keys, read (DescribeTable, one call per table) only where AWS Backup does not fully manage DynamoDB.

    With full management (advanced DynamoDB backup), backups are encrypted with the vault's key, whatever the
    table's (https://docs.aws.amazon.com/aws-backup/latest/devguide/encryption.html): the table's key is moot.
    """
    managed = evidence.management.get(DYNAMODB, exp.fully_managed_config.get(region, {}).get(DYNAMODB))
    if managed:
        return found
    dynamodb, out = None, []
    for resource in found:
        if resource.type != DYNAMODB:
            out.append(resource)
            continue
        dynamodb = dynamodb or clients("dynamodb", region)
        sse = dynamodb.describe_table(TableName=resource.name)["Table"].get("SSEDescription") or {}
        # No KMSMasterKeyArn: the table uses the AWS owned key (DynamoDB's default).
        out.append(replace(resource, kms_key=sse.get("KMSMasterKeyArn")))
    return out


def _key_manager_or_unknown(kms: Any, key: str) -> str:
    try:
        return describe_key_manager(kms, key)
    except Exception as error:
        if _error_code(error) in ("AccessDeniedException", "NotFoundException"):
            return "unknown"
        raise


def minimum_pages(counts: Mapping[str, int]) -> int:
    """The fewest pages listing `counts[operation]` items at each operation's largest page (the bench's yardstick)."""
    return sum(max(1, math.ceil(n / PAGE_SIZES[op])) for op, n in counts.items())


def sort_key(finding: Finding) -> tuple[int, str, str]:
    """Worst first, then type and name: the order of every rendering."""
    return (STATUS_ORDER.index(finding.status), finding.resource.type, finding.resource.name)


def region_of(findings: Sequence[Finding]) -> list[str]:
    """The regions the findings come from, in order of appearance."""
    return list(dict.fromkeys(f.resource.region for f in findings))
