"""Path checks: the requests AWS Backup, the application and operators will make, across all stacks,
evaluated against the planned documents (vault access policies, key policies, bucket, topic and trust
policies) with IAM's evaluation rules (`pgf_backup.paths.evaluator`).

A document is never judged alone: each check names the request AWS will send and the documents on both
sides of it. The AWS pages each request follows are cited beside it.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from pgf_backup.config import BackupAccountStack, ManagementStack, StackConfig, WorkloadStack, partition
from pgf_backup.constants import AUDIT_REPORTS_PREFIX, TAG_BACKUP_TIER
from pgf_backup.limits import RDS_DB_INSTANCE_ARN, lock_admits
from pgf_backup.paths.evaluator import Decision, Principal, Request, Value, arn_account, decide, evaluate_document
from pgf_backup.restore_testing.evidence import evidence_key

Kind = Literal["copy", "restore", "guard", "data", "notification", "evidence", "observability"]
Verdict = Literal["ok", "broken", "unproven"]
KINDS: Final[tuple[Kind, ...]] = ("copy", "restore", "guard", "data", "notification", "evidence", "observability")

VAULT = "aws:backup/vault:Vault"
AIR_GAPPED_VAULT = "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault"
VAULT_POLICY = "aws:backup/vaultPolicy:VaultPolicy"
VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
VAULT_NOTIFICATIONS = "aws:backup/vaultNotifications:VaultNotifications"
KEY = "aws:kms/key:Key"
REPLICA_KEY = "aws:kms/replicaKey:ReplicaKey"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
ORG_POLICY = "aws:organizations/policy:Policy"
ROLE = "aws:iam/role:Role"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
REPORT_PLAN = "aws:backup/reportPlan:ReportPlan"
SINK = "aws:oam/sink:Sink"
SINK_POLICY = "aws:oam/sinkPolicy:SinkPolicy"
LINK = "aws:oam/link:Link"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
SCHEDULE = "aws:scheduler/schedule:Schedule"
PROVIDER = "pulumi:providers:aws"

ACCOUNT_PLACEHOLDER: Final = "$account"
# A principal no policy of ours names: "an administrator of the account", whose IAM policies allow
# everything. The guards must refuse it what they reserve to the break-glass role.
ADMINISTRATOR_ROLE: Final = "Administrator"
# Another account, outside the organization's rollout: it must read nothing.
OUTSIDE_ACCOUNT: Final = "999999999999"
# The TLS version of the requests AWS's services and our functions send: the lowest every AWS endpoint still accepts
# ("updating the TLS configuration for all AWS service API endpoints to a minimum of version TLS 1.2",
# https://aws.amazon.com/blogs/security/tls-1-2-required-for-aws-endpoints/), so a bucket must admit it.
MIN_TLS: Final = "1.2"


class PlannedStack(Protocol):
    """What the path checks read of a planned stack (the offline engine's `StackPlan`)."""

    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]


@dataclass(frozen=True)
class PathResult:
    """One request across the plan and AWS's verdict on it."""

    kind: Kind
    stack: str
    source: str
    target: str
    request: str
    verdict: Verdict
    reason: str

    def to_json(self) -> dict[str, str]:
        """The `--json` shape: `{"kind", "stack", "from", "to", "request", "verdict", "reason"}`."""
        return {
            "kind": self.kind,
            "stack": self.stack,
            "from": self.source,
            "to": self.target,
            "request": self.request,
            "verdict": self.verdict,
            "reason": self.reason,
        }


# ---------------------------------------------------------------------------------------------
# The planned documents, indexed


@dataclass(frozen=True)
class VaultInfo:
    """A planned vault: where it is, its key, access policy and lock range."""

    stack: str
    name: str
    arn: str
    account: str
    region: str
    key_arn: str | None
    policy: str | None
    lock: tuple[int, int] | None
    air_gapped: bool
    tier: str | None


@dataclass(frozen=True)
class BucketInfo:
    """A planned bucket policy or default encryption: the bucket's account, region, policy and key."""

    stack: str
    name: str
    account: str
    region: str
    policy: str | None
    key_arn: str | None
    bucket_key: bool


@dataclass(frozen=True)
class SinkInfo:
    """A planned CloudWatch OAM sink and its sink policy."""

    stack: str
    arn: str
    account: str
    region: str
    policy: str | None


@dataclass
class Inventory:
    """Every planned document of every stack, found by ARN or name."""

    vaults: dict[str, VaultInfo] = field(default_factory=dict)
    keys: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # arn -> (stack, resource)
    topic_policies: dict[str, str] = field(default_factory=dict)
    topic_keys: dict[str, str] = field(default_factory=dict)
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)  # role arn -> (stack, trust policy)
    # role arn -> [(policy name, document)]: the inline policies (aws.iam.RolePolicy) of the planned roles
    role_policies: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # stack -> provider URN -> (account, region)
    providers: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    buckets: dict[str, BucketInfo] = field(default_factory=dict)  # bucket name -> its policy and default key
    sinks: dict[str, SinkInfo] = field(default_factory=dict)  # sink arn -> its policy

    def vault(self, account: str, region: str, name: str) -> VaultInfo | None:
        """The planned vault of that name in that account and region."""
        return next((v for v in self.vaults.values() if (v.account, v.region, v.name) == (account, region, name)), None)


def _where(resource: Mapping[str, Any], providers: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    return providers.get(str(resource.get("provider") or ""), ("", ""))


def _providers(resources: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for resource in resources:
        if resource["type"] != PROVIDER:
            continue
        inputs = resource.get("inputs") or {}
        accounts = inputs.get("allowedAccountIds") or "[]"
        accounts = json.loads(accounts) if isinstance(accounts, str) else list(accounts)
        found[resource["urn"]] = (str(accounts[0]) if accounts else "", str(inputs.get("region") or ""))
    return found


def inventory(plans: Sequence[PlannedStack]) -> Inventory:
    """Index the documents of every planned stack."""
    found = Inventory()
    for plan in plans:
        providers = found.providers[plan.stack] = _providers(plan.resources)
        policies: dict[tuple[str, str, str], str] = {}
        locks: dict[tuple[str, str, str], tuple[int, int]] = {}
        role_arns: dict[str, str] = {}  # role name -> arn, in this stack
        inline: list[tuple[str, str, str]] = []  # (role name, policy name, document)
        for resource in plan.resources:
            inputs = resource.get("inputs") or {}
            account, region = _where(resource, providers)
            kind = resource["type"]
            if kind == VAULT_POLICY:
                policies[(account, region, str(inputs.get("backupVaultName")))] = str(inputs.get("policy"))
            elif kind == VAULT_LOCK:
                name = str(inputs.get("backupVaultName"))
                locks[(account, region, name)] = (int(inputs["minRetentionDays"]), int(inputs["maxRetentionDays"]))
            elif kind in (KEY, REPLICA_KEY) and resource.get("arn"):
                found.keys[str(resource["arn"])] = (plan.stack, resource)
            elif kind == TOPIC and resource.get("arn") and inputs.get("kmsMasterKeyId"):
                found.topic_keys[str(resource["arn"])] = str(inputs["kmsMasterKeyId"])
            elif kind == TOPIC_POLICY:
                found.topic_policies[str(inputs.get("arn"))] = str(inputs.get("policy"))
            elif kind == ROLE and resource.get("arn"):
                found.roles[str(resource["arn"])] = (plan.stack, str(inputs.get("assumeRolePolicy")))
                role_arns[str(inputs.get("name") or str(resource["arn"]).rsplit("/", 1)[-1])] = str(resource["arn"])
            elif kind == ROLE_POLICY:
                # `role` is the role's name (the id of an aws.iam.Role).
                inline.append(
                    (str(inputs.get("role")), str(inputs.get("name") or resource["name"]), str(inputs.get("policy")))
                )
        for role_name, policy_name, document in inline:
            if role_name in role_arns:
                found.role_policies.setdefault(role_arns[role_name], []).append((policy_name, document))
        found.buckets.update(_buckets(plan, providers))
        found.sinks.update(_sinks(plan, providers))
        for resource in plan.resources:
            if resource["type"] not in (VAULT, AIR_GAPPED_VAULT) or not resource.get("arn"):
                continue
            inputs = resource.get("inputs") or {}
            account, region = _where(resource, providers)
            name = str(inputs.get("name"))
            air_gapped = resource["type"] == AIR_GAPPED_VAULT
            lock = (
                (int(inputs["minRetentionDays"]), int(inputs["maxRetentionDays"]))
                if air_gapped
                else locks.get((account, region, name))
            )
            tags = inputs.get("tags") or {}
            found.vaults[str(resource["arn"])] = VaultInfo(
                stack=plan.stack,
                name=name,
                arn=str(resource["arn"]),
                account=account,
                region=region,
                # A logically air-gapped vault is encrypted with an AWS-owned key by default.
                key_arn=None if air_gapped else str(inputs.get("kmsKeyArn") or "") or None,
                policy=policies.get((account, region, name)),
                lock=lock,
                air_gapped=air_gapped,
                tier=tags.get(TAG_BACKUP_TIER) if isinstance(tags, Mapping) else None,
            )
    return found


def _buckets(plan: PlannedStack, providers: Mapping[str, tuple[str, str]]) -> dict[str, BucketInfo]:
    """The buckets of a stack with a planned policy or default encryption."""
    policies: dict[str, str] = {}
    encryption: dict[str, tuple[str | None, bool]] = {}
    where: dict[str, tuple[str, str]] = {}
    for resource in plan.resources:
        inputs = resource.get("inputs") or {}
        bucket = str(inputs.get("bucket") or "")
        if resource["type"] == BUCKET_POLICY:
            policies[bucket] = str(inputs.get("policy"))
        elif resource["type"] == BUCKET_ENCRYPTION:
            rule: Mapping[str, Any] = next(iter(inputs.get("rules") or []), {})
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            key = str(default.get("kmsMasterKeyId") or "") if default.get("sseAlgorithm") == "aws:kms" else ""
            encryption[bucket] = (key or None, bool(rule.get("bucketKeyEnabled")))
        else:
            continue
        where[bucket] = _where(resource, providers)
    found: dict[str, BucketInfo] = {}
    for name, (account, region) in where.items():
        key_arn, bucket_key = encryption.get(name, (None, False))
        found[name] = BucketInfo(plan.stack, name, account, region, policies.get(name), key_arn, bucket_key)
    return found


def _sinks(plan: PlannedStack, providers: Mapping[str, tuple[str, str]]) -> dict[str, SinkInfo]:
    """The OAM sinks of a stack and their policies (aws.oam.SinkPolicy's `sinkIdentifier` is the sink's ARN)."""
    policies = {
        str((r.get("inputs") or {}).get("sinkIdentifier")): str((r.get("inputs") or {}).get("policy"))
        for r in plan.resources
        if r["type"] == SINK_POLICY
    }
    return {
        str(r["arn"]): SinkInfo(plan.stack, str(r["arn"]), *_where(r, providers), policies.get(str(r["arn"])))
        for r in plan.resources
        if r["type"] == SINK and r.get("arn")
    }


# ---------------------------------------------------------------------------------------------
# Results


def _verdict(decision: Decision, *, must_allow: bool) -> tuple[Verdict, str]:
    if decision.allowed == must_allow:
        return "ok", decision.reason
    expectation = "must be allowed" if must_allow else "must be refused"
    return "broken", f"{expectation}, but {decision.reason}"


@dataclass
class _Collector:
    results: list[PathResult] = field(default_factory=list)

    def add(  # noqa: PLR0917 - one positional per field of the result
        self, kind: Kind, stack: str, source: str, target: str, request: str, verdict: Verdict, reason: str
    ) -> None:
        self.results.append(PathResult(kind, stack, source, target, request, verdict, reason))

    def decision(  # noqa: PLR0917
        self,
        kind: Kind,
        stack: str,
        source: str,
        target: str,
        request: Request,
        decision: Decision,
        *,
        must_allow: bool = True,
        detail: str = "",
    ) -> None:
        verdict, reason = _verdict(decision, must_allow=must_allow)
        who = request.principal.arn or request.principal.service
        text = f"{request.action} by {who} on {request.resource}" + (f" {detail}" if detail else "")
        self.add(kind, stack, source, target, text, verdict, reason)


# ---------------------------------------------------------------------------------------------
# Copies (both modes) and the restore copy back


@dataclass(frozen=True)
class CopyAction:
    """One copy action of a rule: the recovery point's vault, where it goes, and who runs it."""

    stack: str
    rule: str
    source_account: str
    source_region: str
    source_vault_name: str
    destination_arn: str
    delete_after_days: int | None
    role_arn: str
    # Resources the plan is known to select (explicit ARNs); tag selections are unknown here.
    resources: tuple[str, ...]


def account_mode_copies(plan: PlannedStack, providers: Mapping[str, tuple[str, str]]) -> list[CopyAction]:
    """The copy actions of a workload stack's plans (account mode), with the resources each selects."""
    selections: dict[str, list[dict[str, Any]]] = {}
    for resource in plan.resources:
        if resource["type"] == SELECTION:
            inputs = resource.get("inputs") or {}
            selections.setdefault(str(inputs.get("planId")), []).append(inputs)
    copies: list[CopyAction] = []
    for resource in plan.resources:
        if resource["type"] != PLAN:
            continue
        account, region = _where(resource, providers)
        plan_id = str(resource.get("arn", "")).rsplit(":", 1)[-1]
        chosen = selections.get(plan_id, [])
        role = next((str(s.get("iamRoleArn")) for s in chosen if s.get("iamRoleArn")), "")
        listed = tuple(
            str(arn) for s in chosen for arn in (s.get("resources") or []) if arn != "*" and "*" not in str(arn)
        )
        for rule in (resource.get("inputs") or {}).get("rules") or []:
            for action in rule.get("copyActions") or []:
                lifecycle = action.get("lifecycle") or {}
                copies.append(
                    CopyAction(
                        stack=plan.stack,
                        rule=str(rule.get("ruleName")),
                        source_account=account,
                        source_region=region,
                        source_vault_name=str(rule.get("targetVaultName")),
                        destination_arn=str(action.get("destinationVaultArn")),
                        delete_after_days=int(lifecycle["deleteAfter"]) if "deleteAfter" in lifecycle else None,
                        role_arn=role,
                        resources=listed,
                    )
                )
    return copies


def organization_mode_copies(
    backup: PlannedStack, workload: PlannedStack, cfg: WorkloadStack, databases: Sequence[str]
) -> list[CopyAction]:
    """The copy actions the tier's BACKUP_POLICY gives one member account (organization mode)."""
    copies: list[CopyAction] = []
    for resource in backup.resources:
        inputs = resource.get("inputs") or {}
        if resource["type"] != ORG_POLICY or (inputs.get("tags") or {}).get(TAG_BACKUP_TIER) != cfg.tier:
            continue
        document = json.loads(str(inputs.get("content") or "{}"))
        for body in (document.get("plans") or {}).values():
            regions = _assigned(body.get("regions")) or [cfg.regions.primary]
            role = ""
            selected = list(databases)
            selections = body.get("selections") or {}
            for selection in (selections.get("tags") or {}).values():
                role = str(_assigned(selection.get("iam_role_arn")) or "")
            for selection in (selections.get("resources") or {}).values():
                role = str(_assigned(selection.get("iam_role_arn")) or "")
                types = _assigned(selection.get("resource_types")) or ["*"]
                excluded = _assigned(selection.get("not_resource_types")) or []
                selected = [
                    arn
                    for arn in selected
                    if any(fnmatch.fnmatchcase(arn, t) for t in types)
                    and not any(fnmatch.fnmatchcase(arn, t) for t in excluded)
                ]
            role = role.replace(ACCOUNT_PLACEHOLDER, cfg.account_id)
            for rule_name, rule in (body.get("rules") or {}).items():
                vault_name = str(_assigned(rule.get("target_backup_vault_name")))
                for action in (rule.get("copy_actions") or {}).values():
                    target = str(_assigned(action.get("target_backup_vault_arn"))).replace(
                        ACCOUNT_PLACEHOLDER, cfg.account_id
                    )
                    days = _assigned((action.get("lifecycle") or {}).get("delete_after_days"))
                    for region in regions:
                        copies.append(
                            CopyAction(
                                stack=workload.stack,
                                rule=str(rule_name),
                                source_account=cfg.account_id,
                                source_region=str(region),
                                source_vault_name=vault_name,
                                destination_arn=target,
                                delete_after_days=int(days) if days is not None else None,
                                role_arn=role,
                                # The configured databases carry the tier tag; a selection by type may spare some.
                                resources=tuple(selected),
                            )
                        )
    return copies


def _assigned(node: Any) -> Any:
    return node.get("@@assign") if isinstance(node, Mapping) else node


def _copy_key_requests(source_key: str, destination_account: str, role_name: str, partition: str) -> list[Request]:
    """What the destination account asks of the source key during a cross-account copy.

    AWS's troubleshooting page for failed cross-account copies: "you must allow the destination account
    in the source account AWS KMS key policy", listing DescribeKey, Decrypt, ReEncrypt and grant operations
    (https://repost.aws/knowledge-center/backup-cross-account-copy-error). The grants are for AWS
    resources (the copy job), so the request carries kms:GrantIsForAWSResource.
    """
    principal = Principal(arn=f"arn:{partition}:iam::{destination_account}:role/{role_name}")
    return [
        Request(principal, "kms:Decrypt", source_key),
        Request(principal, "kms:DescribeKey", source_key),
        Request(principal, "kms:CreateGrant", source_key, {"kms:GrantIsForAWSResource": True}),
    ]


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 else "aws"


def check_copy(out: _Collector, found: Inventory, copy: CopyAction, cfg: StackConfig, kind: Kind = "copy") -> None:
    """A copy action: destination vault, its lock, both sides of a cross-account copy, type support."""
    source = found.vault(copy.source_account, copy.source_region, copy.source_vault_name)
    source_label = (
        source.arn if source else f"vault {copy.source_vault_name} ({copy.source_account}, {copy.source_region})"
    )
    target = copy.destination_arn
    label = f"{copy.rule} copy"
    if source is None:
        out.add(kind, copy.stack, source_label, target, label, "broken", "the source vault is not in the plan")
        return
    destination = found.vaults.get(target)
    if destination is None:
        out.add(
            kind,
            copy.stack,
            source.arn,
            target,
            label,
            "broken",
            f"no stack of the plan creates the destination vault {target}: every such copy job would fail",
        )
        return
    days = copy.delete_after_days
    if destination.lock is not None:
        low, high = destination.lock
        inside = lock_admits(low, high, days)
        kept = "forever (no lifecycle)" if days is None else f"{days} days"
        out.add(
            kind,
            copy.stack,
            source.arn,
            target,
            f"{label}: lifecycle",
            "ok" if inside else "broken",
            f"kept {kept}, {'within' if inside else 'outside'} the lock of {destination.name} ({low}-{high} days)"
            + ("" if inside else ": AWS Backup fails such a copy"),
        )
    if destination.air_gapped:
        refused = [arn for arn in copy.resources if RDS_DB_INSTANCE_ARN.match(arn)]
        out.add(
            kind,
            copy.stack,
            source.arn,
            target,
            f"{label}: resource types",
            "broken" if refused else "ok",
            (
                f"logically air-gapped vaults cannot hold RDS DB instances ({', '.join(refused)}); AWS Backup's "
                "feature availability by resource lists no such support: route them to the standard vaults only"
            )
            if refused
            else "every resource this plan is known to select can be held by a logically air-gapped vault",
        )
    if destination.account == copy.source_account:
        return
    role = copy.role_arn or f"arn:{_partition(source.arn)}:iam::{copy.source_account}:role/{cfg.iam.service_role}"
    context: dict[str, Value] = {"aws:PrincipalOrgID": cfg.organization.id} if cfg.organization.id else {}
    _cross_account_copy(out, found, (kind, copy.stack), source, destination, role, context, cfg.iam.service_role)


def _cross_account_copy(  # noqa: PLR0917 - the two ends of the copy and who runs it
    out: _Collector,
    found: Inventory,
    where: tuple[Kind, str],
    source: VaultInfo,
    destination: VaultInfo,
    role: str,
    context: Mapping[str, Value],
    destination_role_name: str,
) -> None:
    """Both sides of a copy into another account: the destination vault's policy, the source vault's key."""
    kind, stack = where
    # The destination vault's access policy admits the source (its service role's account or
    # organization): https://repost.aws/knowledge-center/backup-resolve-access-denied-error.
    request = Request(Principal(arn=role), "backup:CopyIntoBackupVault", destination.arn, context)
    policy_name = f"vault access policy of {destination.name} ({destination.account})"
    out.decision(
        kind,
        stack,
        source.arn,
        destination.arn,
        request,
        decide(
            request,
            resource_account=destination.account,
            resource_policy=destination.policy,
            resource_policy_name=policy_name,
        ),
    )
    # ... and the source key admits the destination account (types AWS Backup fully manages keep the
    # vault's key: S3, DynamoDB with advanced backup, EFS).
    if source.key_arn is None:
        return
    key = found.keys.get(source.key_arn)
    policy = str((key[1].get("inputs") or {}).get("policy")) if key else None
    for key_request in _copy_key_requests(
        source.key_arn, destination.account, destination_role_name, _partition(source.arn)
    ):
        out.decision(
            kind,
            stack,
            source.arn,
            destination.arn,
            key_request,
            decide(
                key_request,
                resource_account=source.account,
                resource_policy=policy,
                resource_policy_name=f"key policy of {source.key_arn}",
                key_policy=True,
            ),
        )


def check_database_keys(out: _Collector, cfg: WorkloadStack, stack: str, destinations: Iterable[str]) -> None:
    """Snapshot types keep the database's own key: the path is unproven until its key policy admits the copy."""
    accounts = sorted({arn_account(d) for d in destinations} - {cfg.account_id})
    for name, database in cfg.databases.items():
        if database.kms_key_arn is None or not accounts:
            continue
        out.add(
            "copy",
            stack,
            f"database {name} ({database.kms_key_arn})",
            ", ".join(accounts),
            "kms:Decrypt, kms:CreateGrant by the destination account on the database key (RDS snapshot copy)",
            "unproven",
            "the database key belongs to the application stack: its key policy must admit "
            f"{', '.join(accounts)} (stack output databases.{name}.required_key_policy_statement); a grant alone "
            "is undocumented for snapshot copies. The preflight of `pgf-backup preview` and `up` reads the "
            "live key policy.",
        )


def _default_arn(vault: Any, cfg: WorkloadStack) -> str:
    """The ARN the workload stack's receiving vault has in `vault`'s region (to prefer it among several)."""
    arn: str = vault.arn
    return arn.rsplit(":", 1)[0] + ":" + cfg.vault_name(cfg.vault_key)


def check_restore_back(out: _Collector, found: Inventory, backup: PlannedStack, cfg: WorkloadStack, stack: str) -> None:
    """The copy of a central recovery point back into this workload account, per region."""
    role = next(
        (
            arn
            for arn, (owner, _) in found.roles.items()
            if owner == backup.stack and arn.endswith(f"/{cfg.iam.service_role}")
        ),
        None,
    )
    for central in found.vaults.values():
        if central.stack != backup.stack or central.air_gapped or central.tier != cfg.tier:
            continue
        # Into the workload vault of the same name (a vault per criticality copies back into its twin), else the
        # tier's vault of the workload stack.
        candidates = sorted(
            (
                v
                for v in found.vaults.values()
                if v.stack == stack and v.region == central.region and not v.air_gapped and v.tier == cfg.tier
            ),
            key=lambda v: (v.arn.rsplit(":", 1)[-1] != central.arn.rsplit(":", 1)[-1], v.arn != _default_arn(v, cfg)),
        )
        local = candidates[0] if candidates else None
        target = local.arn if local else f"a {cfg.tier} vault of {stack} in {central.region}"
        if local is None:
            out.add("restore", stack, central.arn, target, "copy back", "broken", "no workload vault to restore into")
            continue
        if role is None:
            out.add(
                "restore",
                stack,
                central.arn,
                target,
                "copy back: service role",
                "broken",
                f"the backup stack has no role {cfg.iam.service_role} for AWS Backup to run the copy job with",
            )
            continue
        _cross_account_copy(out, found, ("restore", stack), central, local, role, {}, cfg.iam.service_role)


# ---------------------------------------------------------------------------------------------
# Guards, data, notifications (one stack at a time)


def _role(partition: str, account: str, name: str) -> Principal:
    return Principal(arn=f"arn:{partition}:iam::{account}:role/{name}")


def check_guards(out: _Collector, found: Inventory, stack: str, cfg: StackConfig) -> None:
    """Recovery point deletion and prod key destruction: refused to an administrator, allowed to break-glass."""
    for vault in found.vaults.values():
        if vault.stack != stack or vault.policy is None:
            continue
        part = _partition(vault.arn)
        point = f"arn:{part}:backup:{vault.region}:{vault.account}:recovery-point:example"
        for name, allowed in ((ADMINISTRATOR_ROLE, False), (cfg.iam.break_glass_role, True)):
            request = Request(_role(part, vault.account, name), "backup:DeleteRecoveryPoint", point)
            out.decision(
                "guard",
                stack,
                f"role {name}",
                vault.arn,
                request,
                decide(
                    request,
                    resource_account=vault.account,
                    resource_policy=vault.policy,
                    resource_policy_name=f"vault access policy of {vault.name}",
                ),
                must_allow=allowed,
            )
    for arn, (owner, resource) in found.keys.items():
        inputs = resource.get("inputs") or {}
        tags = inputs.get("tags") or {}
        prod = cfg.hardened or (isinstance(tags, Mapping) and tags.get(TAG_BACKUP_TIER) == "prod")
        if owner != stack or not prod:
            continue
        part, account = _partition(arn), arn_account(arn)
        for action in ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation"):
            for name, allowed in ((ADMINISTRATOR_ROLE, False), (cfg.iam.break_glass_role, True)):
                request = Request(_role(part, account, name), action, arn)
                out.decision(
                    "guard",
                    stack,
                    f"role {name}",
                    arn,
                    request,
                    decide(
                        request,
                        resource_account=account,
                        resource_policy=str(inputs.get("policy")),
                        resource_policy_name=f"key policy of {resource['name']}",
                        key_policy=True,
                    ),
                    must_allow=allowed,
                )


def check_data(out: _Collector, plan: PlannedStack, cfg: WorkloadStack) -> None:
    """The application's TLS uploads relying on default encryption pass; plain HTTP and other accounts do not."""
    policies = {
        str((r.get("inputs") or {}).get("bucket")): str((r.get("inputs") or {}).get("policy"))
        for r in plan.resources
        if r["type"] == BUCKET_POLICY
    }
    part = partition(cfg.regions.primary)
    for bucket_name, bucket in cfg.buckets.items():
        policy = policies.get(bucket_name)
        if policy is None:
            continue
        target = f"arn:{part}:s3:::{bucket_name}"
        obj = f"{target}/pgf/example.json"
        # s3:TlsVersion and aws:SecureTransport are present on every S3 request
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html).
        tls: dict[str, Value] = {"aws:SecureTransport": True, "s3:TlsVersion": "1.3"}
        writers = [a.principal for a in bucket.application_access if "s3:PutObject" in a.actions or "s3:*" in a.actions]
        # (who, request, must AWS allow it): the application's TLS upload relying on the default encryption,
        # the same over plain HTTP, and another account's read.
        requests: list[tuple[str, Request, bool]] = []
        for writer in writers:
            requests.append((writer, Request(Principal(arn=writer), "s3:PutObject", obj, tls), True))
            plain = Request(Principal(arn=writer), "s3:PutObject", obj, {"aws:SecureTransport": False})
            requests.append((writer, plain, False))
        outsider = Request(_role(part, OUTSIDE_ACCOUNT, "reader"), "s3:GetObject", obj, tls)
        requests.append((f"account {OUTSIDE_ACCOUNT}", outsider, False))
        for who, request, allowed in requests:
            decision = decide(
                request,
                resource_account=cfg.account_id,
                resource_policy=policy,
                resource_policy_name=f"bucket policy of {bucket_name}",
            )
            out.decision("data", plan.stack, who, target, request, decision, must_allow=allowed)


@dataclass(frozen=True)
class ExportFunction:
    """A planned export function: who it runs as, and where its environment tells the exporter to write."""

    role_arn: str
    bucket: str
    root: str
    key_arn: str
    account: str
    region: str


def export_functions(plan: PlannedStack, providers: Mapping[str, tuple[str, str]]) -> list[ExportFunction]:
    """The export Lambdas of a stack: functions whose environment names an export bucket and root."""
    # The handlers read EXPORT_BUCKET, EXPORT_ROOT and EXPORT_KMS_KEY_ARN (pgf_backup/exports/handlers.py): what
    # the function writes, and with which key, is what its environment says.
    found: list[ExportFunction] = []
    for resource in plan.resources:
        if resource["type"] != FUNCTION:
            continue
        inputs = resource.get("inputs") or {}
        variables = (inputs.get("environment") or {}).get("variables") or {}
        if not variables.get("EXPORT_BUCKET") or not variables.get("EXPORT_ROOT"):
            continue
        account, region = _where(resource, providers)
        found.append(
            ExportFunction(
                role_arn=str(inputs.get("role")),
                bucket=str(variables["EXPORT_BUCKET"]),
                root=str(variables["EXPORT_ROOT"]).strip("/"),
                key_arn=str(variables.get("EXPORT_KMS_KEY_ARN") or ""),
                account=account,
                region=region,
            )
        )
    return found


def _identity(found: Inventory, request: Request) -> tuple[Literal["Allow", "Deny"] | None, str]:
    """How the caller role's planned inline policies treat a request, and where that is said."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
    # : a role's identity-based policies are evaluated together; "An explicit deny overrides an explicit allow".
    role = request.principal.arn
    policies = found.role_policies.get(role, [])
    allow = ""
    for name, document in policies:
        match = evaluate_document(document, request)
        if match.effect == "Deny":
            return "Deny", f"statement {match.sid} of inline policy {name} of {role}"
        if match.effect == "Allow" and not allow:
            allow = f"statement {match.sid} of inline policy {name} of {role}"
    if allow:
        return "Allow", allow
    names = ", ".join(name for name, _ in policies) or "none planned"
    return None, f"no statement of the inline policies of {role} ({names})"


def _with_identity(  # noqa: PLR0917 - the request, both sides of it, and which kind of resource policy
    found: Inventory,
    request: Request,
    resource_account: str,
    resource_policy: str | None,
    resource_policy_name: str,
    key_policy: bool = False,
) -> Decision:
    """`decide`, with whether the caller's IAM policies allow the request computed from its planned inline policies."""
    effect, where = _identity(found, request)
    if effect == "Deny":
        return Decision(False, f"denied by {where}")
    decision = decide(
        request,
        resource_account=resource_account,
        resource_policy=resource_policy,
        resource_policy_name=resource_policy_name,
        identity_allows=effect == "Allow",
        key_policy=key_policy,
    )
    said = f"allowed by {where}" if effect == "Allow" else f"{where} allows {request.action}"
    return Decision(decision.allowed, f"{decision.reason}; the caller's IAM policies: {said}", decision.statement)


def _export_roots() -> tuple[str, ...]:
    # The prefixes of every export the project ships, so a stack with one export still proves its function
    # cannot write under the other's.
    from components.exports import CATALOG_ROOT, QUICKSIGHT_ROOT

    return (CATALOG_ROOT, QUICKSIGHT_ROOT)


def _export_object(export: ExportFunction, root: str) -> str:
    """The manifest of one run under `root` (`{root}/{account}/{region}/{UTC time}/`, catalog.export_prefix)."""
    part = partition(export.region)
    return f"arn:{part}:s3:::{export.bucket}/{root}/{export.account}/{export.region}/20250101T030000Z/manifest.json"


def check_exports(out: _Collector, found: Inventory, plan: PlannedStack) -> None:
    """The export functions' writes: under their own prefix over TLS with the bucket's key, and nowhere else."""
    providers = found.providers[plan.stack]
    policies = {
        str((r.get("inputs") or {}).get("bucket")): str((r.get("inputs") or {}).get("policy"))
        for r in plan.resources
        if r["type"] == BUCKET_POLICY
    }
    roots = _export_roots()
    buckets: set[str] = set()
    # Sorted, so the once-per-bucket check below reads the same prefix on every run (the plan's order is not fixed).
    for export in sorted(export_functions(plan, providers), key=lambda e: (e.bucket, e.root, e.region, e.role_arn)):
        part = partition(export.region)
        target = f"arn:{part}:s3:::{export.bucket}"
        policy = policies.get(export.bucket)
        policy_name = f"bucket policy of {export.bucket}"
        role = Principal(arn=export.role_arn)
        # The exporter's PutObject (store.ExportWriter) sends ServerSideEncryption=aws:kms and SSEKMSKeyId=its key,
        # i.e. the x-amz-server-side-encryption and x-amz-server-side-encryption-aws-kms-key-id headers
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html), which S3 exposes as the condition
        # keys of the same names (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html);
        # aws:SecureTransport and s3:TlsVersion are in every S3 request
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html).
        sse: dict[str, Value] = (
            {
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": export.key_arn,
            }
            if export.key_arn
            else {}
        )
        tls: dict[str, Value] = {"aws:SecureTransport": True, "s3:TlsVersion": "1.3", **sse}
        # (request, must AWS allow it): its own prefix over TLS; another export's prefix; plain HTTP.
        requests: list[tuple[Request, bool]] = [
            (Request(role, "s3:PutObject", _export_object(export, export.root), tls), True)
        ]
        requests += [
            (Request(role, "s3:PutObject", _export_object(export, other), tls), False)
            for other in roots
            if other != export.root
        ]
        plain: dict[str, Value] = {"aws:SecureTransport": False, **sse}
        requests.append((Request(role, "s3:PutObject", _export_object(export, export.root), plain), False))
        for request, allowed in requests:
            decision = _with_identity(found, request, export.account, policy, policy_name)
            out.decision("data", plan.stack, export.role_arn, target, request, decision, must_allow=allowed)
        _check_export_key(out, found, plan.stack, export)
        if export.bucket in buckets:
            continue
        buckets.add(export.bucket)
        # Another account reads nothing of the exports (once per bucket).
        outsider = Request(
            _role(part, OUTSIDE_ACCOUNT, "reader"), "s3:GetObject", _export_object(export, export.root), tls
        )
        decision = decide(
            outsider, resource_account=export.account, resource_policy=policy, resource_policy_name=policy_name
        )
        out.decision("data", plan.stack, f"account {OUTSIDE_ACCOUNT}", target, outsider, decision, must_allow=False)


def _check_export_key(out: _Collector, found: Inventory, stack: str, export: ExportFunction) -> None:
    """S3's calls to the bucket key on the export role's behalf."""
    if not export.key_arn:
        return
    key = found.keys.get(export.key_arn)
    if key is None:
        out.add(
            "data",
            stack,
            export.role_arn,
            export.key_arn,
            "kms:GenerateDataKey, kms:Decrypt through S3",
            "unproven",
            "the export key is not in the plan: its key policy cannot be read",
        )
        return
    # With SSE-KMS, S3 asks KMS for a data key on the uploader's behalf: "you need kms:GenerateDataKey permissions
    # on the key" to upload (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html), and a
    # multipart upload, which the exporter uses for large objects, also needs kms:Decrypt
    # (https://repost.aws/knowledge-center/s3-large-file-encryption-kms-key). KMS sees the uploader as the caller,
    # with kms:ViaService the S3 endpoint of the region and kms:CallerAccount the uploader's account
    # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service and
    # #conditions-kms-caller-account).
    context: dict[str, Value] = {
        "kms:ViaService": f"s3.{export.region}.amazonaws.com",
        "kms:CallerAccount": arn_account(export.role_arn),
    }
    policy = str((key[1].get("inputs") or {}).get("policy"))
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        request = Request(Principal(arn=export.role_arn), action, export.key_arn, context)
        decision = _with_identity(
            found, request, arn_account(export.key_arn), policy, f"key policy of {key[1]['name']}", key_policy=True
        )
        out.decision("data", stack, export.role_arn, export.key_arn, request, decision)


# ---------------------------------------------------------------------------------------------
# Evidence: the audit reports bucket, written by the restore validators and AWS Backup Audit Manager


@dataclass(frozen=True)
class EvidenceFunction:
    """A planned restore validation function that writes evidence: who it runs as, where its evidence goes."""

    role_arn: str
    bucket: str
    key_arn: str
    account: str
    region: str


def evidence_functions(plan: PlannedStack, providers: Mapping[str, tuple[str, str]]) -> list[EvidenceFunction]:
    """The functions whose environment names an evidence bucket (EVIDENCE_BUCKET, EVIDENCE_KMS_KEY_ARN: what
    pgf_backup/restore_testing/validator.py's Settings reads), sorted."""
    found: list[EvidenceFunction] = []
    for resource in plan.resources:
        if resource["type"] != FUNCTION:
            continue
        inputs = resource.get("inputs") or {}
        variables = (inputs.get("environment") or {}).get("variables") or {}
        if not variables.get("EVIDENCE_BUCKET"):
            continue
        account, region = _where(resource, providers)
        found.append(
            EvidenceFunction(
                role_arn=str(inputs.get("role")),
                bucket=str(variables["EVIDENCE_BUCKET"]),
                key_arn=str(variables.get("EVIDENCE_KMS_KEY_ARN") or ""),
                account=account,
                region=region,
            )
        )
    return sorted(found, key=lambda f: (f.bucket, f.role_arn, f.region))


def _object(bucket: BucketInfo, key: str, part: str) -> str:
    return f"arn:{part}:s3:::{bucket.name}/{key}"


def _s3_kms_context(bucket: BucketInfo, obj: str, caller_account: str) -> dict[str, Value]:
    """The condition keys of the KMS call S3 makes for an SSE-KMS upload on the uploader's behalf."""
    # KMS sees the uploader as the caller, kms:ViaService the S3 endpoint of the bucket's region (an SSE-KMS key is in
    # the bucket's region: "You can use only KMS keys that are available in the same AWS Region as the bucket",
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html) and kms:CallerAccount the
    # uploader's account (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html). S3's encryption
    # context is `aws:s3:arn`, the object's ARN, or the bucket's with an S3 Bucket Key
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context), which a key
    # policy reads as kms:EncryptionContext:aws:s3:arn (conditions-kms.html#conditions-kms-encryption-context).
    context = obj.split("/", 1)[0] if bucket.bucket_key else obj
    return {
        "kms:ViaService": f"s3.{bucket.region}.amazonaws.com",
        "kms:CallerAccount": caller_account,
        "kms:EncryptionContext:aws:s3:arn": context,
    }


def _tls(**headers: Value) -> dict[str, Value]:
    # aws:SecureTransport and s3:TlsVersion are in every S3 request
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html).
    return {"aws:SecureTransport": True, "s3:TlsVersion": MIN_TLS, **headers}


def check_evidence(out: _Collector, found: Inventory, plan: PlannedStack) -> None:
    """The restore validators' evidence and AWS Backup Audit Manager's reports, into the audit reports bucket."""
    providers = found.providers[plan.stack]
    for function in evidence_functions(plan, providers):
        _check_evidence_writer(out, found, plan.stack, function)
    _check_report_delivery(out, found, plan, providers)


def _check_evidence_writer(out: _Collector, found: Inventory, stack: str, function: EvidenceFunction) -> None:
    """A validator writes under restore-tests/<its account>/ with its key, nowhere else; it deletes nothing."""
    part = partition(function.region)
    target = f"arn:{part}:s3:::{function.bucket}"
    bucket = found.buckets.get(function.bucket)
    if bucket is None or bucket.policy is None:
        out.add(
            "evidence",
            stack,
            function.role_arn,
            target,
            "s3:PutObject of restore test evidence",
            "unproven",
            f"no stack of the plan writes the policy of {function.bucket}: it cannot be read",
        )
        return
    role = Principal(arn=function.role_arn)
    # The object the function writes (evidence.evidence_key of a restore job of its account and region), another
    # account's evidence, and AWS Backup Audit Manager's reports (a forged report).
    completed = datetime(2025, 1, 1, tzinfo=UTC)
    job = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    own = _object(bucket, evidence_key(function.account, function.region, completed, job), part)
    others = [
        _object(bucket, evidence_key(OUTSIDE_ACCOUNT, function.region, completed, job), part),
        _object(
            bucket, f"{AUDIT_REPORTS_PREFIX}/Backup/{function.account}/{function.region}/2025/01/01/forged.csv", part
        ),
    ]
    # The validator's put_object sends ServerSideEncryption=aws:kms and SSEKMSKeyId=its key when it has one
    # (validator.validate_restore): the headers x-amz-server-side-encryption and -aws-kms-key-id
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html), condition keys of the same names
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
    sse: dict[str, Value] = (
        {
            "s3:x-amz-server-side-encryption": "aws:kms",
            "s3:x-amz-server-side-encryption-aws-kms-key-id": function.key_arn,
        }
        if function.key_arn
        else {}
    )
    # (request, must AWS allow it). Deleting is refused: the evidence is versioned, so DeleteObject would hide it
    # behind a delete marker and DeleteObjectVersion would remove it
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeletingObjectVersions.html).
    requests: list[tuple[Request, bool]] = [(Request(role, "s3:PutObject", own, _tls(**sse)), True)]
    requests += [(Request(role, "s3:PutObject", other, _tls(**sse)), False) for other in others]
    requests += [
        (Request(role, action, own, _tls()), False) for action in ("s3:DeleteObject", "s3:DeleteObjectVersion")
    ]
    name = f"bucket policy of {bucket.name}"
    for request, allowed in requests:
        decision = _with_identity(found, request, bucket.account, bucket.policy, name)
        out.decision("evidence", stack, function.role_arn, target, request, decision, must_allow=allowed)
    if not function.key_arn:
        return
    key = found.keys.get(function.key_arn)
    if key is None:
        out.add(
            "evidence",
            stack,
            function.role_arn,
            function.key_arn,
            "kms:GenerateDataKey through S3",
            "unproven",
            "the evidence key is not in the plan: its key policy cannot be read",
        )
        return
    # A single PutObject with SSE-KMS needs kms:GenerateDataKey on the key
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html); the evidence is small, never a
    # multipart upload, so no kms:Decrypt. The data key of another prefix (a forged report) is refused.
    policy = str((key[1].get("inputs") or {}).get("policy"))
    key_name = f"key policy of {key[1]['name']}"
    for obj, allowed in ((own, True), (others[1], False)):
        context = _s3_kms_context(bucket, obj, arn_account(function.role_arn))
        request = Request(role, "kms:GenerateDataKey", function.key_arn, context)
        decision = _with_identity(found, request, arn_account(function.key_arn), policy, key_name, key_policy=True)
        detail = f"for {context['kms:EncryptionContext:aws:s3:arn']}"
        out.decision(
            "evidence", stack, function.role_arn, function.key_arn, request, decision, must_allow=allowed, detail=detail
        )


def _report_object(resource: Mapping[str, Any], account: str, region: str) -> tuple[str, str]:
    """(bucket, object key) of a report a report plan delivers."""
    # "AWS Backup delivers your current account, current Region reports to s3://bucket/prefix/Backup/accountID/Region/
    # year/month/day/report-name", cross-account ones under Backup/crossaccount/Region/ and cross-Region ones under
    # Backup/accountID/crossregion/ (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-report-plan-console.html).
    inputs = resource.get("inputs") or {}
    channel = inputs.get("reportDeliveryChannel") or {}
    setting = inputs.get("reportSetting") or {}
    prefix = str(channel.get("s3KeyPrefix") or "").strip("/")
    if len(setting.get("accounts") or []) > 1:
        where = f"Backup/crossaccount/{region}"
    elif len(setting.get("regions") or []) > 1:
        where = f"Backup/{account}/crossregion"
    else:
        where = f"Backup/{account}/{region}"
    key = "/".join(part for part in (prefix, where, "2025/01/01", str(inputs.get("name"))) if part)
    return str(channel.get("s3BucketName")), key


def _reports_role(part: str, account: str) -> Principal:
    # The service-linked role AWS Backup Audit Manager delivers reports with (components/audit.py, REPORTS_ROLE_PATH).
    from components.audit import REPORTS_ROLE_PATH

    return Principal(arn=f"arn:{part}:iam::{account}:{REPORTS_ROLE_PATH}")


def _check_report_delivery(
    out: _Collector, found: Inventory, plan: PlannedStack, providers: Mapping[str, tuple[str, str]]
) -> None:
    """Each report plan's delivery to its bucket and key, by the account's service-linked role; another account's
    Audit Manager is refused (once per bucket)."""
    reports = sorted(
        (r for r in plan.resources if r["type"] == REPORT_PLAN),
        key=lambda r: str((r.get("inputs") or {}).get("name")),
    )
    outsiders: set[str] = set()
    for resource in reports:
        account, region = _where(resource, providers)
        part = partition(region)
        name, key = _report_object(resource, account, region)
        source = str(resource.get("arn") or f"report plan {(resource.get('inputs') or {}).get('name')}")
        target = f"arn:{part}:s3:::{name}"
        bucket = found.buckets.get(name)
        if bucket is None or bucket.policy is None:
            out.add(
                "evidence",
                plan.stack,
                source,
                target,
                "s3:PutObject of a report",
                "unproven",
                f"no stack of the plan writes the policy of {name}: it cannot be read",
            )
            continue
        obj = _object(bucket, key, part)
        # AWS's sample bucket policy admits the service-linked role's PutObject with "s3:x-amz-acl":
        # "bucket-owner-full-control" (create-report-plan-console.html): the delivery sends that ACL. No AWS page says
        # it sends encryption headers: the bucket's default encryption applies. The role's own policy
        # (AWSServiceRolePolicyForBackupReports,
        # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSServiceRolePolicyForBackupReports.html)
        # grants no S3 write and no KMS action: the bucket and key policies alone must admit it.
        headers = _tls(**{"s3:x-amz-acl": "bucket-owner-full-control"})
        delivery = [(_reports_role(part, account), True)]
        if name not in outsiders:
            outsiders.add(name)
            # AWS Backup Audit Manager of another account (whose IAM is assumed to allow everything).
            delivery.append((_reports_role(part, OUTSIDE_ACCOUNT), False))
        for role, allowed in delivery:
            who = source if allowed else f"AWS Backup Audit Manager of account {OUTSIDE_ACCOUNT}"
            request = Request(role, "s3:PutObject", obj, headers)
            decision = decide(
                request,
                resource_account=bucket.account,
                resource_policy=bucket.policy,
                resource_policy_name=f"bucket policy of {name}",
                identity_allows=not allowed,
            )
            out.decision("evidence", plan.stack, who, target, request, decision, must_allow=allowed)
            _check_report_key(out, found, plan.stack, (who, bucket, obj), role, allowed)


def _check_report_key(  # noqa: PLR0917 - the delivery, who sends it, and whether AWS must allow it
    out: _Collector,
    found: Inventory,
    stack: str,
    delivery: tuple[str, BucketInfo, str],
    role: Principal,
    allowed: bool,
) -> None:
    """The bucket key's data keys for a report: the key policy must name the service-linked role."""
    who, bucket, obj = delivery
    if bucket.key_arn is None:
        return  # no KMS key of ours (SSE-S3)
    key = found.keys.get(bucket.key_arn)
    if key is None:
        out.add(
            "evidence",
            stack,
            who,
            bucket.key_arn,
            "kms:GenerateDataKey, kms:Decrypt through S3",
            "unproven",
            "the bucket key is not in the plan: its key policy cannot be read",
        )
        return
    # "The Principal attribute must include the Backup Audit Manager service-linked role ... The Action attribute must
    # include kms:GenerateDataKey and kms:Decrypt at minimum"
    # (https://docs.aws.amazon.com/aws-backup/latest/devguide/create-report-plan-api.html).
    context = _s3_kms_context(bucket, obj, role.account)
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        request = Request(role, action, bucket.key_arn, context)
        decision = decide(
            request,
            resource_account=arn_account(bucket.key_arn),
            resource_policy=str((key[1].get("inputs") or {}).get("policy")),
            resource_policy_name=f"key policy of {key[1]['name']}",
            identity_allows=not allowed,
            key_policy=True,
        )
        out.decision("evidence", stack, who, bucket.key_arn, request, decision, must_allow=allowed)
        if not allowed:
            return  # one refusal proves the outsider gets no data key


# ---------------------------------------------------------------------------------------------
# Observability: the workload accounts' links to the backup account's OAM sinks

# A resource type a link could share besides metrics (PutSinkPolicy lists "Log groups - Specify with
# AWS::Logs::LogGroup", https://docs.aws.amazon.com/OAM/latest/APIReference/API_PutSinkPolicy.html).
LOG_GROUPS: Final = "AWS::Logs::LogGroup"


def _link_request(principal: Principal, sink: str, types: Sequence[str], tags: Mapping[str, Any]) -> Request:
    """oam:CreateLink as the source account sends it."""
    # CreateLink: "The sink policy must permit the source account to link to it"
    # (https://docs.aws.amazon.com/OAM/latest/APIReference/API_CreateLink.html). Its condition keys are
    # oam:ResourceTypes (the link's ResourceTypes), aws:RequestTag/${TagKey} and aws:TagKeys (the link's Tags)
    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchobservabilityaccessmanager.html).
    context: dict[str, Value] = {"oam:ResourceTypes": list(types)}
    if tags:
        context["aws:TagKeys"] = sorted(str(k) for k in tags)
        context.update({f"aws:RequestTag/{k}": str(v) for k, v in sorted(tags.items())})
    return Request(principal, "oam:CreateLink", sink, context)


def check_observability(out: _Collector, found: Inventory, plan: PlannedStack, cfg: StackConfig) -> None:
    """Each link of this stack may join its sink, sharing metrics only; another account may not link to our sinks."""
    from components.dashboards import METRIC_RESOURCE_TYPE

    providers = found.providers[plan.stack]
    links = sorted(
        (r for r in plan.resources if r["type"] == LINK),
        key=lambda r: (str((r.get("inputs") or {}).get("sinkIdentifier")), str(r.get("arn") or r["name"])),
    )
    for resource in links:
        inputs = resource.get("inputs") or {}
        account, region = _where(resource, providers)
        sink_arn = str(inputs.get("sinkIdentifier"))
        source = str(resource.get("arn") or f"link {resource['name']} ({account}, {region})")
        sink = found.sinks.get(sink_arn)
        if sink is None:
            out.add(
                "observability",
                plan.stack,
                source,
                sink_arn,
                "oam:CreateLink",
                "broken",
                f"no stack of the plan creates the sink {sink_arn}: the link cannot be created",
            )
            continue
        # The link is created by the stack's deploy role (the provider assumes it); its own IAM policies are the
        # deploy role's, outside the plan, and assumed to allow oam:CreateLink: the sink policy decides.
        deployer = Principal(arn=cfg.role_arn(account, cfg.iam.deploy_role, region))
        types = [str(t) for t in inputs.get("resourceTypes") or []]
        tags = inputs.get("tags") or {}
        # (resource types, must AWS allow it): the planned link; the same link sharing log groups too.
        for shared, allowed in ((types, True), ([*types, LOG_GROUPS], False)):
            request = _link_request(deployer, sink.arn, shared, tags)
            decision = decide(
                request,
                resource_account=sink.account,
                resource_policy=sink.policy,
                resource_policy_name=f"sink policy of {sink.arn}",
            )
            detail = f"sharing {', '.join(shared)}"
            out.decision(
                "observability", plan.stack, source, sink.arn, request, decision, must_allow=allowed, detail=detail
            )
    for sink in sorted((s for s in found.sinks.values() if s.stack == plan.stack), key=lambda s: s.arn):
        # Another account's link sharing metrics is refused.
        outsider = _role(partition(sink.region), OUTSIDE_ACCOUNT, cfg.iam.deploy_role)
        request = _link_request(outsider, sink.arn, [METRIC_RESOURCE_TYPE], {})
        decision = decide(
            request,
            resource_account=sink.account,
            resource_policy=sink.policy,
            resource_policy_name=f"sink policy of {sink.arn}",
        )
        out.decision(
            "observability",
            plan.stack,
            f"account {OUTSIDE_ACCOUNT}",
            sink.arn,
            request,
            decision,
            must_allow=False,
            detail=f"sharing {METRIC_RESOURCE_TYPE}",
        )


def check_notifications(out: _Collector, found: Inventory, plan: PlannedStack, account: str) -> None:
    """AWS Backup, EventBridge and CloudWatch alarms may publish to the encrypted topics; the services may assume
    their roles (AWS Backup, EventBridge Scheduler from this account's schedule group only, Lambda)."""
    providers = found.providers[plan.stack]
    publishers: list[tuple[str, str, str, str]] = []  # (service, topic arn, source arn, who, as reported)
    rules = {
        str((r.get("inputs") or {}).get("name")): str(r.get("arn", ""))
        for r in plan.resources
        if r["type"] == EVENT_RULE
    }
    for resource in plan.resources:
        inputs = resource.get("inputs") or {}
        if resource["type"] == VAULT_NOTIFICATIONS:
            acct, region = _where(resource, providers)
            vault = found.vault(acct, region, str(inputs.get("backupVaultName")))
            service = "backup.amazonaws.com"
            publishers.append((service, str(inputs.get("snsTopicArn")), vault.arn if vault else "", service))
        elif resource["type"] == EVENT_TARGET and ":sns:" in str(inputs.get("arn")):
            service = "events.amazonaws.com"
            publishers.append((service, str(inputs.get("arn")), rules.get(str(inputs.get("rule")), ""), service))
        elif resource["type"] == METRIC_ALARM:
            # An alarm's SNS action is published by cloudwatch.amazonaws.com with the alarm's ARN as aws:SourceArn:
            # its failure reads "Resource: arn:aws:cloudwatch:<region>:<account>:alarm:<name> is not authorized to
            # perform: SNS:Publish", and AWS scopes the statement with ArnLike on aws:SourceArn
            # (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger). The topic's key must
            # let CloudWatch use it (https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns).
            acct, region = _where(resource, providers)
            alarm = f"arn:{partition(region)}:cloudwatch:{region}:{acct}:alarm:{inputs.get('name')}"
            publishers.extend(
                ("cloudwatch.amazonaws.com", str(action), alarm, f"cloudwatch.amazonaws.com for {alarm}")
                for action in inputs.get("alarmActions") or []
                if ":sns:" in str(action)
            )
    for service, topic, source_arn, who in publishers:
        context: dict[str, Any] = {"aws:SourceAccount": account}
        if source_arn:
            context["aws:SourceArn"] = source_arn
        request = Request(Principal(service=service), "sns:Publish", topic, context)
        out.decision(
            "notification",
            plan.stack,
            who,
            topic,
            request,
            decide(
                request,
                resource_account=arn_account(topic),
                resource_policy=found.topic_policies.get(topic),
                resource_policy_name=f"topic policy of {topic}",
            ),
        )
        key_arn = found.topic_keys.get(topic)
        key = found.keys.get(key_arn or "")
        if key_arn is None:
            out.add(
                "notification",
                plan.stack,
                who,
                topic,
                "topic encryption",
                "broken",
                "the topic is not KMS-encrypted",
            )
            continue
        if key is None:
            continue  # a key of another stack or account: not in the plan to check
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            key_request = Request(Principal(service=service), action, key_arn, context)
            out.decision(
                "notification",
                plan.stack,
                who,
                key_arn,
                key_request,
                decide(
                    key_request,
                    resource_account=arn_account(key_arn),
                    resource_policy=str((key[1].get("inputs") or {}).get("policy")),
                    resource_policy_name=f"key policy of {key[1]['name']}",
                    key_policy=True,
                ),
            )
    assumptions: list[tuple[Request, bool]] = []  # (the service's AssumeRole, must AWS allow it)
    for role_arn, (owner, trust) in found.roles.items():
        if owner != plan.stack or "backup.amazonaws.com" not in trust:
            continue
        # AWS Backup's AssumeRole carries no condition key an AWS page documents: the request has none.
        assumptions.append((Request(Principal(service="backup.amazonaws.com"), "sts:AssumeRole", role_arn), True))
    assumptions += _scheduler_assumptions(found, plan)
    assumptions += _lambda_assumptions(found, plan)
    for request, allowed in assumptions:
        role_arn = request.resource
        source = str(request.context.get("aws:SourceArn") or "")
        out.decision(
            "notification",
            plan.stack,
            f"{request.principal.service} for {source}" if source else request.principal.service,
            role_arn,
            request,
            decide(
                request,
                resource_account=arn_account(role_arn),
                resource_policy=found.roles[role_arn][1],
                resource_policy_name=f"trust policy of {role_arn}",
            ),
            must_allow=allowed,
        )


def _scheduler_assumptions(found: Inventory, plan: PlannedStack) -> list[tuple[Request, bool]]:
    """EventBridge Scheduler assuming each schedule's execution role: from this account's group, and from another."""
    # https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html : the
    # scheduler's AssumeRole carries aws:SourceAccount (the schedule's account) and aws:SourceArn, the ARN of the
    # schedule group the schedule belongs to (arn:<partition>:scheduler:<region>:<account>:schedule-group/<group>).
    # The same request from a schedule of another account must be refused.
    providers = found.providers[plan.stack]
    seen: set[tuple[str, str]] = set()
    requests: list[tuple[Request, bool]] = []
    for resource in plan.resources:
        if resource["type"] != SCHEDULE:
            continue
        inputs = resource.get("inputs") or {}
        role_arn = str((inputs.get("target") or {}).get("roleArn") or "")
        if role_arn not in found.roles:
            continue  # a role of another stack or account: not in the plan to check
        account, region = _where(resource, providers)
        # A schedule created without a group name belongs to the group `default` (Scheduler's CreateSchedule).
        group = str(inputs.get("groupName") or "default")
        if (role_arn, group) in seen:
            continue
        seen.add((role_arn, group))
        part = partition(region)
        principal = Principal(service="scheduler.amazonaws.com")
        for source_account, allowed in ((account, True), (OUTSIDE_ACCOUNT, False)):
            context: dict[str, Value] = {
                "aws:SourceAccount": source_account,
                "aws:SourceArn": f"arn:{part}:scheduler:{region}:{source_account}:schedule-group/{group}",
            }
            requests.append((Request(principal, "sts:AssumeRole", role_arn, context), allowed))
    return requests


def _lambda_assumptions(found: Inventory, plan: PlannedStack) -> list[tuple[Request, bool]]:
    """Lambda assuming each function's execution role."""
    # https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html : "Lambda automatically assumes
    # your execution role when you invoke your function", and its trust policy "must specify the Lambda service
    # principal (lambda.amazonaws.com) as a trusted service". No Lambda page documents a condition key in that
    # AssumeRole (lambda:SourceFunctionArn goes into the credentials' context, for the function's own calls:
    # https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html): the request has none.
    roles = sorted(
        {
            str((resource.get("inputs") or {}).get("role"))
            for resource in plan.resources
            if resource["type"] == FUNCTION and str((resource.get("inputs") or {}).get("role")) in found.roles
        }
    )
    return [(Request(Principal(service="lambda.amazonaws.com"), "sts:AssumeRole", role), True) for role in roles]


# ---------------------------------------------------------------------------------------------


def check_paths(plans: Sequence[PlannedStack], configs: Mapping[str, StackConfig]) -> list[PathResult]:
    """Every path of the planned stacks (the backup stack's plan must be among them)."""
    found = inventory(plans)
    out = _Collector()
    backup = next((p for p in plans if isinstance(configs[p.stack], BackupAccountStack)), None)
    for plan in plans:
        cfg = configs[plan.stack]
        if isinstance(cfg, ManagementStack):
            continue  # no vault, key, copy or data: only settings of the organization
        if isinstance(cfg, BackupAccountStack):
            check_guards(out, found, plan.stack, cfg)
            check_notifications(out, found, plan, cfg.account_id)
            check_evidence(out, found, plan)
            check_observability(out, found, plan, cfg)
            continue
        # The ARNs the program itself selects the configured databases by (its `databases` output).
        databases = [str(d["arn"]) for d in (plan.outputs.get("databases") or {}).values()]
        if cfg.scheduling == "organization":
            copies = organization_mode_copies(backup, plan, cfg, databases) if backup else []
        else:
            copies = account_mode_copies(plan, found.providers[plan.stack])
        for copy in copies:
            check_copy(out, found, copy, cfg)
        check_database_keys(out, cfg, plan.stack, [c.destination_arn for c in copies])
        if backup is not None:
            check_restore_back(out, found, backup, cfg, plan.stack)
        check_guards(out, found, plan.stack, cfg)
        check_data(out, plan, cfg)
        check_exports(out, found, plan)
        check_notifications(out, found, plan, cfg.account_id)
        check_evidence(out, found, plan)
        check_observability(out, found, plan, cfg)
    # The mock runtime registers resources in no fixed order: sort, so a report reads the same on every run.
    order = {plan.stack: index for index, plan in enumerate(plans)}
    return sorted(
        out.results, key=lambda r: (order[r.stack], r.kind, r.source, r.target, r.request, r.verdict, r.reason)
    )


def broken(results: Sequence[PathResult]) -> list[PathResult]:
    """The paths AWS would refuse (or that cannot exist)."""
    return [r for r in results if r.verdict == "broken"]
