"""The restore runbooks of a stack (`pgf-backup runbook`), rendered from its config and its outputs: the exact
vaults, keys, roles and commands for each restore, after the contacts and escalation ladder of `operations`.

`build` makes a `Runbook` (sections of paragraphs, tables and shell blocks); `render_md` and `render_html` write it,
so both formats say the same thing. Nothing here calls AWS: the commands are for the operator.

AWS facts the commands rest on (each also cited where it is used):
- StartRestoreJob takes the recovery point, a string map of metadata, the role and the resource type; "you can get
  configuration metadata about a resource at the time it was backed up by calling GetRecoveryPointRestoreMetadata"
  (botocore's backup model, StartRestoreJobInput.Metadata).
- S3 restore metadata: `DestinationBucketName` (mandatory), `EncryptionType` (`original`, `SSE-S3`, `SSE-KMS`),
  `KMSKey`, `ItemsToRestore` (up to five), `RestoreTime` (continuous recovery points); the destination bucket needs
  versioning; a restore from a cross-Region copy cannot use the original encryption
  (https://docs.aws.amazon.com/aws-backup/latest/devguide/restoring-s3.html#s3-restore-cli); `newBucket: true` is
  what AWS Backup itself infers to restore into a new bucket, and list values are JSON-array strings
  (https://docs.aws.amazon.com/aws-backup/latest/devguide/restore-testing-inferred-metadata.html).
- RDS: the metadata of RestoreDBInstanceFromDBSnapshot / RestoreDBInstanceToPointInTime
  (https://docs.aws.amazon.com/aws-backup/latest/devguide/restoring-rds.html#rds-restore-cli); Aurora:
  `DBClusterIdentifier` and `Engine` required, `RestoreToTime` for a point in time, and AWS Backup restores the
  cluster without an instance, created after with `aws rds create-db-instance --db-cluster-identifier`
  (https://docs.aws.amazon.com/aws-backup/latest/devguide/restoring-aur.html).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgf_backup.config import BackupAccountStack, CopyTarget, WorkloadStack, partition
from pgf_backup.config.sections import VaultLock
from pgf_backup.constants import STACK_BACKUP, TIERS

FORMATS = ("md", "html")
# What a secret output shows (the runbook is shared; secrets are read from their store, never printed).
SECRET_PLACEHOLDER = "[secret]"
# Identifiers of RDS instances and clusters, and S3 bucket names: at most 63 characters (botocore's rds model,
# RestoreDBClusterFromSnapshotMessage.DBClusterIdentifier: "1 to 63 letters, numbers, or hyphens"; S3 bucket names
# 3-63, the config's BucketName).
_NAME_LIMIT = 63
_RESTORED = "-restored"
_WIDTH = 110


# ---------------------------------------------------------------------------------------------
# The document


@dataclass(frozen=True)
class Code:
    """Inline code: an ARN, a name, a command."""

    text: str


Inline = str | Code
Line = tuple[Inline, ...]


@dataclass(frozen=True)
class Para:
    """A paragraph."""

    parts: Line


@dataclass(frozen=True)
class Bullets:
    """A bulleted (or, `ordered`, numbered) list."""

    items: tuple[Line, ...]
    ordered: bool = False


@dataclass(frozen=True)
class Table:
    """A table of lines."""

    header: tuple[str, ...]
    rows: tuple[tuple[Line, ...], ...]


@dataclass(frozen=True)
class Shell:
    """Commands, as they are typed."""

    text: str


@dataclass(frozen=True)
class Heading:
    """A heading inside a section."""

    text: str


Block = Para | Bullets | Table | Shell | Heading


@dataclass(frozen=True)
class Section:
    """One procedure: what must hold first, then what to do."""

    key: str
    title: str
    prerequisites: tuple[Line, ...]
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Runbook:
    """A stack's restore runbooks."""

    stack: str
    title: str
    intro: tuple[Line, ...]
    contacts: tuple[Block, ...]
    glance: tuple[Line, ...]
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Outputs:
    """What a runbook is rendered from besides the config: the stack's outputs and the backup stack's."""

    stack: Mapping[str, Any]
    backup: Mapping[str, Any]
    # Where they come from, said at the top of the runbook.
    source: str
    # Offline plan: the ids AWS generates (KMS keys, plans) are the mock runtime's stand-ins.
    mocked: bool


def t(text: str) -> Line:
    """A line from text where `backquoted` parts are inline code."""
    parts = text.split("`")
    return tuple(Code(part) if index % 2 else part for index, part in enumerate(parts) if part)


def q(value: Any) -> str:
    """A value as inline code for `t`, or what is missing when the outputs lack it."""
    return f"`{value}`" if isinstance(value, str) and value else "(not in the stack's outputs)"


def p(text: str) -> Para:
    """A paragraph from `t` text."""
    return Para(t(text))


def bullets(*items: str, ordered: bool = False) -> Bullets:
    """A list from `t` texts."""
    return Bullets(tuple(t(item) for item in items), ordered)


# ---------------------------------------------------------------------------------------------
# Values


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def output_arns(outputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every ARN among the outputs, with its path (`vaults.prod.ca-central-1.arn`), in output order."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (list, tuple)):
            for index, inner in enumerate(value):
                walk(inner, f"{path}[{index}]")
        elif isinstance(value, str) and value.startswith("arn:"):
            found.append((path, value))

    walk(outputs, "")
    return found


def restored_name(name: str) -> str:
    """The name a restore gets beside the original: `<name>-restored`, within 63 characters."""
    return name[: _NAME_LIMIT - len(_RESTORED)].rstrip("-.") + _RESTORED


def vault_arn(region: str, account: str, name: str) -> str:
    """A backup vault's ARN, as botocore's backup model shows it (StartCopyJobInput.DestinationBackupVaultArn:
    `arn:aws:backup:us-east-1:123456789012:backup-vault:aBackupVault`)."""
    return f"arn:{partition(region)}:backup:{region}:{account}:backup-vault:{name}"


def _lock_text(lock: VaultLock | None) -> str:
    if lock is None:
        return "no Vault Lock"
    text = f"{lock.mode} mode, {lock.min_retention_days}-{lock.max_retention_days} days"
    if lock.mode == "compliance" and lock.changeable_for_days is not None:
        text += f" (immutable {lock.changeable_for_days} days after it was set)"
    return text


def _range_text(lock: Any) -> str:
    low, high = _get(lock, "min"), _get(lock, "max")
    return f"{low}-{high} days" if low is not None and high is not None else "no Vault Lock"


def _command(*parts: str, comment: str | None = None) -> str:
    """One shell command, its options wrapped with backslashes past the line width."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 1 + len(part) > _WIDTH:
            lines[-1] += " \\"
            lines.append(f"    {part}")
        else:
            lines[-1] += f" {part}"
    if comment:
        lines[-1] += f"  # {comment}"
    return "\n".join(lines)


def _shell(*commands: str) -> Shell:
    return Shell("\n".join(commands))


def _codes(*names: str) -> str:
    """`a`, `b` and `c`."""
    shown = [f"`{name}`" for name in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


# ---------------------------------------------------------------------------------------------
# Building


Vaulted = BackupAccountStack | WorkloadStack


@dataclass(frozen=True)
class _Context:
    stack: str
    cfg: Vaulted
    backup_cfg: BackupAccountStack
    workloads: Mapping[str, WorkloadStack]
    outputs: Outputs

    @property
    def out(self) -> Mapping[str, Any]:
        return self.outputs.stack

    @property
    def service_role(self) -> Any:
        return _get(self.out, "service_role_arn")

    def prerequisites(self, *own: str, kms: bool = False, network: bool = False) -> tuple[Line, ...]:
        """A section's prerequisites: its own, then the operations team's (access always; KMS and network where
        the section decrypts or places a database)."""
        given = self.cfg.operations.prerequisites
        lines = [t(text) for text in own]
        lines += [(text,) for text in given.access]
        lines += [(text,) for text in given.kms] if kms else []
        lines += [(text,) for text in given.network] if network else []
        return tuple(lines)

    def role(self, name: str) -> str:
        """ARN of a role of this stack's account."""
        return self.cfg.role_arn(self.cfg.account_id, name)


def build(
    stack: str,
    cfg: Vaulted,
    *,
    backup_cfg: BackupAccountStack,
    workloads: Mapping[str, WorkloadStack],
    outputs: Outputs,
    generated_at: datetime,
) -> Runbook:
    """The runbook of a backup-account or workload stack. `workloads`: every workload stack's config (the backup
    stack's copy-back names their vaults)."""
    ctx = _Context(stack, cfg, backup_cfg, workloads, outputs)
    own = _workload_sections(ctx, cfg) if isinstance(cfg, WorkloadStack) else _backup_sections(ctx, cfg)
    what = f"workload stack, tier {cfg.tier}" if isinstance(cfg, WorkloadStack) else "the backup account's stack"
    intro = [
        t(
            f"Stack `{stack}` ({what}), account `{cfg.account_id}`, regions {', '.join(cfg.regions.all)}. Generated "
            f"{generated_at.isoformat(timespec='seconds')} by `pgf-backup runbook --stack {stack}` from "
            f"{outputs.source}."
        )
    ]
    if outputs.mocked:
        intro.append(
            t(
                "Names, and the ARNs made of them and of the configured accounts (vaults, buckets, databases, roles), "
                "are exact. ARNs with an id AWS generates (KMS keys, backup plans, frameworks, links) are the offline "
                f"engine's stand-ins: `pgf-backup runbook --stack {stack} --from stack` shows the deployed ones."
            )
        )
    return Runbook(
        stack=stack,
        title=f"Restore runbook: stack {stack}",
        intro=tuple(intro),
        contacts=_contacts(ctx),
        glance=_glance(ctx),
        sections=(*own, _iac_section(ctx), _arn_appendix(ctx)),
    )


def _contacts(ctx: _Context) -> tuple[Block, ...]:
    ops = ctx.cfg.operations
    blocks: list[Block] = []
    if ops.contacts:
        rows = [((c.name,), (c.role,), (Code(c.email),), (c.phone or "-",)) for c in ops.contacts]
        blocks.append(Table(("contact", "role", "email", "phone"), tuple(rows)))
    else:
        blocks.append(p("No contact is configured: set `pgf-backup:operations.contacts` in Pulumi.yaml."))
    blocks.append(Heading("Escalation"))
    by_name = {c.name: c for c in ops.contacts}
    steps: list[Line] = []
    for step in ops.escalation:
        who = by_name[step.contact]  # the config model checks that every step names a contact
        when = "At once" if step.after_minutes == 0 else f"After {step.after_minutes} minutes without a restore"
        reach = ", ".join(part for part in (who.email, who.phone) if part)
        steps.append((f"{when}: {who.name}, {who.role}: ", Code(reach)))
    if steps:
        blocks.append(Bullets(tuple(steps), ordered=True))
    else:
        blocks.append(p("No escalation ladder is configured: set `pgf-backup:operations.escalation` in Pulumi.yaml."))
    return tuple(blocks)


def _glance(ctx: _Context) -> tuple[Line, ...]:
    cfg = ctx.cfg
    held = {cfg.tier} if isinstance(cfg, WorkloadStack) else {v.tier for v in cfg.vaults.values()}
    tiers = [tier for tier in TIERS if tier in held]
    lines = [
        t(
            f"Tier {tier}: recovery time objective {cfg.operations.rto_hours.of(tier):g} hours "
            f"(`operations.rto_hours.{tier}`), recovery point objective {getattr(cfg.alarms.rpo_hours, tier)} hours "
            f"(`alarms.rpo_hours.{tier}`)."
        )
        for tier in tiers
    ]
    lines.append(
        t(
            f"Roles: deploy `{ctx.role(cfg.iam.deploy_role)}`, break-glass `{ctx.role(cfg.iam.break_glass_role)}`, "
            f"AWS Backup service role {q(ctx.service_role)}."
        )
    )
    return tuple(lines)


# ---------------------------------------------------------------------------------------------
# Workload stacks


def _workload_sections(ctx: _Context, cfg: WorkloadStack) -> list[Section]:
    sections = [_vault_section(ctx, cfg), _copy_back_section(ctx, cfg), _s3_section(ctx, cfg)]
    sections += [_rds_section(ctx, cfg), _catalog_section(ctx, cfg), _quicksight_section(ctx, cfg)]
    sections += [_secrets_section(ctx, cfg), _code_section(ctx, cfg)]
    if cfg.regions.copy_region is not None:
        sections.append(_region_loss_section(ctx, cfg, cfg.regions.copy_region))
    return sections


def _vault_table(ctx: _Context, cfg: Vaulted) -> Table:
    rows = []
    for key, vault in cfg.vaults.items():
        for region in cfg.regions.all:
            found = _get(ctx.out, "vaults", key, region)
            rows.append(
                (
                    t(f"`{cfg.vault_name(key)}`"),
                    (region,),
                    t(q(_get(found, "arn"))),
                    t(q(_get(found, "kms_key_arn"))),
                    (_lock_text(vault.lock),),
                )
            )
    return Table(("vault", "region", "ARN", "KMS key", "lock"), tuple(rows))


def _copy_targets(ctx: _Context, cfg: WorkloadStack) -> list[CopyTarget]:
    """Where the stack's recovery points are copied: its own plan's targets, or in organization mode its tier's
    BACKUP_POLICY's (the backup stack's `plans.<tier>`)."""
    if cfg.scheduling == "organization":
        return cfg.copy_targets(ctx.backup_cfg.plans.get(cfg.tier))
    return cfg.copy_targets()


def _vault_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    backup = ctx.outputs.backup
    primary, tier = cfg.regions.primary, cfg.tier
    targets = _copy_targets(ctx, cfg)
    rows: list[tuple[Line, ...]] = []
    central = _get(backup, "central_vaults", tier, primary)
    if "backup_account" in targets:
        rows.append(
            (
                (f"backup account, {primary}",),
                t(q(_get(central, "name"))),
                t(q(_get(central, "arn"))),
                t(q(_get(central, "kms_key_arn"))),
                (_range_text(_get(central, "lock")),),
            )
        )
    if "copy_region" in targets and cfg.regions.copy_region is not None:
        own = _get(ctx.out, "vaults", cfg.vault_key, cfg.regions.copy_region)
        rows.append(
            (
                (f"this account, {cfg.regions.copy_region}",),
                t(f"`{cfg.vault_name(cfg.vault_key)}`"),
                t(q(_get(own, "arn"))),
                t(q(_get(own, "kms_key_arn"))),
                (_lock_text(cfg.vaults[cfg.vault_key].lock),),
            )
        )
    gap = _get(backup, "air_gapped_vaults", tier)
    central_key = ctx.backup_cfg.central_vault_key(tier)
    if "air_gapped" in targets and central_key is not None:
        rows.append(
            (
                (f"backup account's air-gapped vault, {primary}",),
                t(f"`{ctx.backup_cfg.air_gapped_vault_name(central_key)}`"),
                t(q(_get(gap, "arn"))),
                ("AWS-owned key",),
                (_range_text(_get(gap, "lock")),),
            )
        )
    destinations = _get(ctx.out, "copy_destinations") or {}
    blocks: list[Block] = [
        Heading("This account's vaults"),
        _vault_table(ctx, cfg),
        Heading("Where the copies go"),
        Table(("copy target", "vault", "ARN", "KMS key", "lock"), tuple(rows))
        if rows
        else p("The plan copies its recovery points nowhere (`plan.copy_to_*` are all false)."),
    ]
    if destinations:
        blocks += [
            p("The plan's copy actions write to:"),
            bullets(*(f"`{target}`: {q(arn)}" for target, arn in destinations.items())),
        ]
    else:
        blocks.append(p("The stack's outputs name no copy destination (organization mode: the BACKUP_POLICY copies)."))
    blocks.append(
        p(
            f"AWS Backup runs this account's jobs as {q(ctx.service_role)}; the backup account's copies back run as "
            f"{q(_get(backup, 'service_role_arn'))}. Only `{ctx.role(cfg.iam.break_glass_role)}` may delete a "
            "recovery point or shorten its lifecycle."
        )
    )
    return Section(
        "vaults",
        "Vaults, keys and roles",
        ctx.prerequisites(f"Read access to AWS Backup and KMS in account `{cfg.account_id}`.", kms=True),
        tuple(blocks),
    )


def _copy_back_commands(
    *,
    region: str,
    source_vault: str,
    destination_arn: str,
    service_role_arn: str | None,
    delete_after_days: int,
    stack: str,
) -> Shell:
    return _shell(
        _command(
            "aws backup list-recovery-points-by-backup-vault",
            f"--region {region}",
            f"--backup-vault-name {source_vault}",
            "--by-resource-arn <ARN of the resource>",
            comment="pick its RecoveryPointArn",
        ),
        _command("pgf-backup restore copy-back", "--recovery-point <RecoveryPointArn>", f"--to {stack}"),
        "# or the same with the AWS CLI:",
        _command(
            "aws backup start-copy-job",
            f"--region {region}",
            "--recovery-point-arn <RecoveryPointArn>",
            f"--source-backup-vault-name {source_vault}",
            f"--destination-backup-vault-arn {destination_arn}",
            f"--iam-role-arn {service_role_arn or '<the backup account service role ARN>'}",
            f"--lifecycle DeleteAfterDays={delete_after_days}",
        ),
        _command(
            "aws backup describe-copy-job",
            f"--region {region}",
            "--copy-job-id <CopyJobId>",
            comment="until State is COMPLETED",
        ),
    )


def _delete_after(cfg: WorkloadStack) -> int:
    """The shortest retention the stack's vault lock accepts (a copy outside it fails), else the tier's minimum."""
    lock = cfg.vaults[cfg.vault_key].lock
    return lock.min_retention_days if lock is not None else cfg.tier_bounds.of(cfg.tier).min_days


def _copy_back_permissions(service_role: Any, account: str) -> str:
    actions = _codes("backup:StartCopyJob", "backup:ListRecoveryPointsByBackupVault", "backup:DescribeCopyJob")
    return f"In the backup account `{account}`: {actions}, and `iam:PassRole` on {q(service_role)}."


def _copy_back_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    backup = ctx.outputs.backup
    blocks: list[Block] = [
        p(
            "When this account lost its recovery points (deleted, encrypted, or the account itself), copy one back "
            "from the backup account, then restore it here with the sections below. Run as an operator of the "
            f"backup account `{ctx.backup_cfg.account_id}`, in the recovery point's region. The copy's lifecycle "
            f"must lie inside this vault's lock, or AWS Backup fails it: {_lock_text(cfg.vaults[cfg.vault_key].lock)}."
        )
    ]
    region = cfg.regions.primary
    central = _get(backup, "central_vaults", cfg.tier, region)
    if "backup_account" in _copy_targets(ctx, cfg):
        local = _text(_get(ctx.out, "vaults", cfg.vault_key, region, "arn"))
        blocks += [
            Heading(f"From the backup account's vault in {region}"),
            _copy_back_commands(
                region=region,
                source_vault=_text(_get(central, "name")) or "<central vault name>",
                destination_arn=local or vault_arn(region, cfg.account_id, cfg.vault_name(cfg.vault_key)),
                service_role_arn=_text(_get(backup, "service_role_arn")),
                delete_after_days=_delete_after(cfg),
                stack=ctx.stack,
            ),
        ]
    else:
        blocks.append(p("This stack's plan does not copy to the backup account: there is nothing to copy back."))
    gap = _text(_get(backup, "air_gapped_vaults", cfg.tier, "arn"))
    if gap:
        blocks.append(
            p(
                f"The air-gapped vault `{gap}` is restored from through AWS RAM: see the backup stack's runbook "
                f"(`pgf-backup runbook --stack {STACK_BACKUP}`)."
            )
        )
    return Section(
        "copy-back",
        "Copy a recovery point back from the backup account",
        ctx.prerequisites(
            _copy_back_permissions(_get(backup, "service_role_arn"), ctx.backup_cfg.account_id),
            "The central vault's key admits this account, and this vault's access policy admits copies from the "
            "backup account (both deployed by this project; the offline plan's restore path checks prove them).",
            kms=True,
        ),
        tuple(blocks),
    )


def _restore_permissions(account: str, service_role: Any, what: str) -> str:
    actions = _codes(
        "backup:ListRecoveryPointsByResource",
        "backup:GetRecoveryPointRestoreMetadata",
        "backup:StartRestoreJob",
        "backup:DescribeRestoreJob",
    )
    return (
        f"Credentials in account `{account}` allowed {actions}, and `iam:PassRole` on {q(service_role)} (AWS "
        f"Backup's service role, which has AWS's managed {what} restore policies)."
    )


def _wait_restore(region: str) -> str:
    return _command(
        "aws backup describe-restore-job",
        f"--region {region}",
        "--restore-job-id <RestoreJobId>",
        "--query '[Status,StatusMessage,CreatedResourceArn]'",
        comment="until COMPLETED",
    )


def _list_points(region: str, arn: str) -> str:
    return _command(
        "aws backup list-recovery-points-by-resource",
        f"--region {region}",
        f"--resource-arn {arn}",
        "--query 'RecoveryPoints[].[CreationDate,Status,BackupVaultName,RecoveryPointArn]'",
        "--output table",
    )


def _start_restore(region: str, kind: str, role: str, metadata: str) -> str:
    return _command(
        "aws backup start-restore-job",
        f"--region {region}",
        "--recovery-point-arn <RecoveryPointArn>",
        f"--resource-type {kind}",
        f"--iam-role-arn {role}",
        f"--metadata {metadata}",
    )


def _json_arg(values: Mapping[str, str]) -> str:
    """A JSON object as one single-quoted shell word (the values hold no single quote)."""
    return "'" + json.dumps(dict(values), separators=(",", ":")) + "'"


def _bucket_blocks(ctx: _Context, cfg: WorkloadStack, name: str, arn_out: Any, facts: Sequence[str]) -> list[Block]:
    """A bucket's facts and restore commands (`arn_out`: its ARN as the outputs give it)."""
    region = cfg.regions.primary
    role = _text(ctx.service_role) or "<service role ARN>"
    arn = _text(arn_out) or f"arn:{partition(region)}:s3:::{name}"
    whole = {"DestinationBucketName": restored_name(name), "NewBucket": "true", "EncryptionType": "original"}
    items = {
        "DestinationBucketName": name,
        "NewBucket": "false",
        "EncryptionType": "original",
        "ItemsToRestore": json.dumps([f"s3://{name}/<key or prefix>"]),
    }
    return [
        Heading(f"Bucket {name}"),
        bullets(f"ARN {q(arn_out)}", *facts),
        _shell(
            _list_points(region, arn),
            "# the whole bucket, into a new bucket beside it (the original is not touched):",
            _start_restore(region, "S3", role, _json_arg(whole)),
            "# or up to five objects or prefixes, back into the bucket (existing objects are skipped, not replaced):",
            _start_restore(region, "S3", role, _json_arg(items)),
            _wait_restore(region),
        ),
    ]


def _s3_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    blocks: list[Block] = [
        p(
            "Restore into a new bucket and copy back what is needed, or restore objects into the bucket itself: AWS "
            "Backup never replaces an object that exists. Keep `EncryptionType` `original`: the bucket policy "
            "refuses objects that ask for another key. A continuous recovery point takes `RestoreTime` (e.g. "
            "`2026-12-02T03:30:00Z`) in the metadata. A new bucket has none of this project's protection: add it to "
            f"`buckets` and run `pgf-backup up --stack {ctx.stack}` if it replaces the original."
        )
    ]
    buckets = _get(ctx.out, "buckets")
    for name, bucket in cfg.buckets.items():
        out = _get(buckets, name)
        if not bucket.backup:
            blocks += [
                Heading(f"Bucket {name}"),
                p(f"`buckets.{name}.backup` is false: no plan backs it up, so there is nothing to restore."),
            ]
            continue
        encryption = (
            f"Default encryption: SSE-KMS with {q(_get(out, 'sse_kms_key'))}"
            if bucket.encryption
            else f"Default encryption: not set by this project (`buckets.{name}.encryption` is false)"
        )
        facts = [
            encryption,
            f"Classification {bucket.classification}; {_text(_get(out, 'backup')) or 'backed up by the plan'}",
        ]
        blocks += _bucket_blocks(ctx, cfg, name, _get(out, "arn"), facts)
    if cfg.exports is not None:
        exports = _get(ctx.out, "exports")
        facts = [
            f"Default encryption: SSE-KMS with {q(_get(exports, 'kms_key'))}",
            "This stack's export bucket (Glue catalog and QuickSight exports), backed up by the plan.",
        ]
        blocks += _bucket_blocks(ctx, cfg, cfg.exports.bucket, _get(exports, "bucket_arn"), facts)
    if len(blocks) == 1:
        blocks.append(p("This stack protects no bucket (`buckets` is empty)."))
    return Section(
        "s3",
        "S3 buckets",
        ctx.prerequisites(
            _restore_permissions(cfg.account_id, ctx.service_role, "S3"),
            "The destination bucket has versioning on (a new bucket AWS Backup creates does). A restore from a "
            "cross-Region copy cannot use the original encryption: give `EncryptionType` `SSE-KMS` and `KMSKey`.",
            kms=True,
        ),
        tuple(blocks),
    )


def _jq_set(values: Mapping[str, str]) -> str:
    return "jq '. + " + json.dumps(dict(values)) + "' restore-metadata.json > metadata.json"


def _database_blocks(ctx: _Context, cfg: WorkloadStack, name: str) -> list[Block]:
    database = cfg.databases[name]
    out = _get(ctx.out, "databases", name)
    region = database.region or cfg.regions.primary
    cluster = database.kind == "cluster"
    new = restored_name(name)
    id_key = "DBClusterIdentifier" if cluster else "DBInstanceIdentifier"
    key = f", key `{database.kms_key_arn}`" if database.kms_key_arn else ""
    facts = [
        f"ARN {q(_get(out, 'arn'))}",
        f"{'Aurora cluster' if cluster else 'RDS DB instance'}, encryption {database.encryption}{key}",
    ]
    if _text(_get(out, "backup")):
        facts.append(f"Backed up by {_get(out, 'backup')}")
    if _text(_get(out, "continuous_rule")):
        facts.append(
            f"Point in time: the plan's `{_get(out, 'continuous_rule')}` rule keeps a continuous recovery point; "
            f"restore that one with `{'RestoreToTime' if cluster else 'RestoreTime'}` (e.g. "
            "`2026-12-02T03:30:00Z`) added to the metadata."
        )
    network = None
    if cfg.restore_testing is not None and cfg.restore_testing.network is not None:
        network = cfg.restore_testing.network
    subnets = network.db_subnet_group_name if network else "<isolated DB subnet group>"
    groups = list(network.security_group_ids) if network else ["<security group id>"]
    isolated = {id_key: new, "DBSubnetGroupName": subnets, "VpcSecurityGroupIds": json.dumps(groups)}
    commands = [
        _list_points(region, _text(_get(out, "arn")) or f"<ARN of {name}>"),
        _command(
            "aws backup get-recovery-point-restore-metadata",
            f"--region {region}",
            f"--backup-vault-name {cfg.vault_name(cfg.vault_key)}",
            "--recovery-point-arn <RecoveryPointArn>",
            "--query RestoreMetadata --output json > restore-metadata.json",
            comment="the database as it was backed up",
        ),
        "# a new identifier, in the network of the backup (its subnet group and security groups):",
        _jq_set({id_key: new}),
        "# or isolated, to validate it before the application uses it"
        + (" (restore_testing.network):" if network else " (this stack sets no restore_testing.network):"),
        _jq_set(isolated),
        _start_restore(
            region,
            "Aurora" if cluster else "RDS",
            _text(ctx.service_role) or "<service role ARN>",
            "file://metadata.json",
        ),
        _wait_restore(region),
    ]
    if cluster:
        writer = restored_name(name)[: _NAME_LIMIT - 2] + "-1"
        commands += [
            "# AWS Backup restores the cluster without an instance: add its writer",
            _command(
                "aws rds create-db-instance",
                f"--region {region}",
                f"--db-cluster-identifier {new}",
                f"--db-instance-identifier {writer}",
                '--engine "$(jq -r .Engine metadata.json)"',
                f"--db-instance-class <instance class of the {name} writer>",
            ),
            _command("aws rds wait db-instance-available", f"--region {region}", f"--db-instance-identifier {writer}"),
        ]
    else:
        commands.append(
            _command("aws rds wait db-instance-available", f"--region {region}", f"--db-instance-identifier {new}")
        )
    return [Heading(f"Database {name}"), bullets(*facts), _shell(*commands)]


def _rds_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    checks = "deletion protection and Multi-AZ" if cfg.hardened else "deletion protection"
    blocks: list[Block] = [
        p(
            "Restore into a new identifier and keep the original until the restore is validated; then point the "
            f"application at the new endpoint (its secret) and let the Config rules re-check {checks}. The metadata "
            "comes from the recovery point (`GetRecoveryPointRestoreMetadata`); `jq` sets what changes."
        )
    ]
    for name in cfg.databases:
        blocks += _database_blocks(ctx, cfg, name)
    if not cfg.databases:
        blocks.append(p("This stack protects no database (`databases` is empty)."))
    keys = [
        f"The key `{database.kms_key_arn}` of {name} admits this account's restore (the application's key policy)."
        for name, database in cfg.databases.items()
        if database.kms_key_arn
    ]
    return Section(
        "rds",
        "RDS and Aurora databases",
        ctx.prerequisites(
            _restore_permissions(cfg.account_id, ctx.service_role, "RDS"),
            "Also `rds:CreateDBInstance` and `rds:DescribeDBInstances`; the AWS CLI and `jq`.",
            *keys,
            kms=True,
            network=True,
        ),
        tuple(blocks),
    )


def _export_facts(ctx: _Context, kind: str) -> tuple[str, str]:
    exports = _get(ctx.out, "exports")
    prefix = _text(_get(exports, kind, "prefix")) or f"s3://<export bucket>/{kind}/<account>/<region>/"
    fact = (
        f"Runs of {q(_get(exports, kind, 'function'))} ({_text(_get(exports, kind, 'schedule')) or 'scheduled'}) "
        f"under `{prefix}`, in the bucket {q(_get(exports, 'bucket'))} encrypted with {q(_get(exports, 'kms_key'))}."
    )
    return f"{prefix}<UTC time of the run>/", fact


def _catalog_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    region = cfg.regions.primary
    if not cfg.catalog_export:
        blocks: tuple[Block, ...] = (
            p(
                "This stack does not export the Glue Data Catalog (no `exports`, or `exports.catalog.enabled` is "
                "false), and AWS Backup does not back it up: there is nothing to restore it from."
            ),
        )
    else:
        run, fact = _export_facts(ctx, "catalog")
        blocks = (
            bullets(fact),
            _shell(
                _command(f"aws s3 ls {run.rsplit('<', 1)[0]}", comment="the runs, by UTC time: take the last"),
                _command(
                    "pgf-backup catalog import",
                    run,
                    f"--region {region}",
                    "--database <database>",
                    "--dry-run",
                    comment="checks every checksum",
                ),
                _command(
                    "pgf-backup catalog import",
                    run,
                    f"--region {region}",
                    "--database <database>",
                    "--on-conflict skip",
                    comment="recreates what is missing, keeps what exists",
                ),
            ),
            p(
                "Without `--database` every database of the export is restored; `--on-conflict replace` recreates "
                "the tables that exist. Exit 1 naming an object means the run is incomplete or altered: take the "
                "previous run. A deleted export comes back with an S3 restore of the export bucket first."
            ),
        )
    return Section(
        "glue-catalog",
        "Glue Data Catalog",
        ctx.prerequisites(
            f"Credentials of account `{cfg.account_id}` (`AWS_PROFILE`) allowed "
            f"{_codes('glue:Get*', 'glue:Create*', 'glue:BatchCreatePartition')}, and to read the export bucket "
            "and decrypt with its key."
        ),
        blocks,
    )


def _quicksight_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    if not cfg.quicksight_export:
        blocks: tuple[Block, ...] = (
            p(
                "This stack does not export QuickSight (`exports.quicksight.enabled`, on by default in prod only), "
                "and AWS Backup does not back it up: there is nothing to restore it from."
            ),
        )
    else:
        run, fact = _export_facts(ctx, "quicksight")
        blocks = (
            bullets(fact),
            _shell(
                _command(f"aws s3 ls {run.rsplit('<', 1)[0]}", comment="the runs, by UTC time: take the last"),
                _command("pgf-backup quicksight import", run, "--dry-run"),
                _command("pgf-backup quicksight import", run),
                "# a clone into another account or region, its data sources pointed elsewhere:",
                _command(
                    "pgf-backup quicksight import",
                    run,
                    "--target-account <account id>",
                    "--target-region <region>",
                    "--override-parameters overrides.json",
                ),
            ),
        )
    actions = _codes("quicksight:StartAssetBundleImportJob", "quicksight:DescribeAssetBundleImportJob")
    return Section(
        "quicksight",
        "QuickSight",
        ctx.prerequisites(
            f"Credentials allowed {actions}, and to create and update the assets "
            "(https://docs.aws.amazon.com/quicksight/latest/developerguide/assetbundle-permissions.html)."
        ),
        blocks,
    )


def _secrets_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    primary, copy = cfg.regions.primary, cfg.regions.copy_region
    commands = [
        _command(
            "aws secretsmanager restore-secret",
            f"--region {primary}",
            "--secret-id <secret name or ARN>",
            comment="within its recovery window",
        ),
    ]
    if copy is not None:
        commands.append(
            _command(
                "aws secretsmanager stop-replication-to-replica",
                f"--region {copy}",
                "--secret-id <secret name or ARN>",
                comment=f"promotes the replica in {copy}",
            )
        )
    commands.append(
        _command(
            "aws ssm get-parameters-by-path",
            f"--region {primary}",
            f"--path /{cfg.tags.application}",
            "--recursive --with-decryption > parameters.json",
            comment="the export before a risky change",
        )
    )
    blocks: tuple[Block, ...] = (
        p(
            "AWS Backup backs up neither Secrets Manager secrets nor SSM parameters, and this stack's config names "
            "none: they are declared in the application's IaC, each secret with a replica in "
            f"{copy or 'the copy region'} and a 30-day recovery window; values never live in git. A deleted secret "
            "is restored within that window; a lost region's is its promoted replica. SSM parameters come back "
            "from the application's IaC, `SecureString` values from the secret they mirror. After a database "
            "restore, the secret holding its endpoint changes through the application's IaC."
        ),
        _shell(*commands),
    )
    actions = _codes(
        "secretsmanager:RestoreSecret", "secretsmanager:StopReplicationToReplica", "ssm:GetParametersByPath"
    )
    return Section(
        "secrets",
        "Secrets Manager secrets and SSM parameters",
        ctx.prerequisites(f"{actions}, and decrypt with their keys, in account `{cfg.account_id}`.", kms=True),
        blocks,
    )


def _code_section(ctx: _Context, cfg: WorkloadStack) -> Section:
    from components.scheduled_function import ALIAS

    region = cfg.regions.primary
    commands = []
    for kind in ("catalog", "quicksight"):
        function = _text(_get(ctx.out, "exports", kind, "function"))
        if function is None:
            continue
        commands += [
            _command("aws lambda list-versions-by-function", f"--region {region}", f"--function-name {function}"),
            _command(
                "aws lambda update-alias",
                f"--region {region}",
                f"--function-name {function}",
                f"--name {ALIAS}",
                "--function-version <previous version>",
            ),
        ]
    blocks: list[Block] = [
        p(
            "Lambda and Glue code is not in AWS Backup: it lives in git. Redeploy the last good commit through the "
            "application's pipeline, or point an alias back to the previous published version. This stack's "
            f"export functions run their alias `{ALIAS}`."
        )
    ]
    if commands:
        blocks.append(_shell(*commands))
    return Section(
        "code",
        "Lambda and Glue code",
        ctx.prerequisites(
            f"{_codes('lambda:ListVersionsByFunction', 'lambda:UpdateAlias')} in account `{cfg.account_id}`."
        ),
        tuple(blocks),
    )


def _region_loss_section(ctx: _Context, cfg: WorkloadStack, copy: str) -> Section:
    vaults = [
        f"`{cfg.vault_name(key)}` in {copy}: {q(_get(ctx.out, 'vaults', key, copy, 'arn'))}, key "
        f"{q(_get(ctx.out, 'vaults', key, copy, 'kms_key_arn'))}"
        for key in cfg.vaults
    ]
    blocks: tuple[Block, ...] = (
        p(
            f"When {cfg.regions.primary} is lost, the copies in {copy} remain, each encrypted with the replica of "
            f"its vault's key, so it restores there without re-encryption. Use the commands above with `--region "
            f"{copy}` and these vaults. An S3 restore there gives `EncryptionType` `SSE-KMS` and a key of {copy} "
            "in `KMSKey`: the original encryption cannot be used for a cross-Region copy."
        ),
        bullets(*vaults),
    )
    return Section(
        "region-loss",
        f"Loss of {cfg.regions.primary}",
        ctx.prerequisites(_restore_permissions(cfg.account_id, ctx.service_role, "S3 and RDS"), kms=True, network=True),
        blocks,
    )


# ---------------------------------------------------------------------------------------------
# The backup stack


def _backup_sections(ctx: _Context, cfg: BackupAccountStack) -> list[Section]:
    return [_central_section(ctx, cfg), _air_gapped_section(ctx, cfg), _backup_copy_back_section(ctx, cfg)]


def _central_section(ctx: _Context, cfg: BackupAccountStack) -> Section:
    central = [
        f"tier {tier}: `{cfg.vault_name(key)}`" for tier in TIERS if (key := cfg.central_vault_key(tier)) is not None
    ]
    blocks: tuple[Block, ...] = (
        _vault_table(ctx, cfg),
        p(f"Each tier's copies land in its first vault, in {cfg.regions.primary}:"),
        bullets(*central),
        p(
            f"Copies back to the workload accounts run as {q(ctx.service_role)}; only "
            f"`{ctx.role(cfg.iam.break_glass_role)}` may delete a recovery point or shorten its lifecycle."
        ),
    )
    return Section(
        "central-vaults",
        "Central vaults, keys and roles",
        ctx.prerequisites(f"Read access to AWS Backup and KMS in account `{cfg.account_id}`.", kms=True),
        blocks,
    )


def _air_gapped_section(ctx: _Context, cfg: BackupAccountStack) -> Section:
    blocks: list[Block] = []
    region = cfg.regions.primary
    for key, vault in cfg.vaults.items():
        if vault.air_gapped is None:
            continue
        arn = _text(_get(ctx.out, "air_gapped_vaults", vault.tier, "arn"))
        name = cfg.air_gapped_vault_name(key)
        accounts = sorted({w.account_id for w in ctx.workloads.values() if w.tier == vault.tier})
        gap = vault.air_gapped
        blocks += [
            Heading(f"Vault {name} (tier {vault.tier}, {region})"),
            bullets(
                f"ARN {q(arn)}",
                f"Lock {gap.min_retention_days}-{gap.max_retention_days} days (compliance mode); an AWS-owned key",
            ),
            _shell(
                _command(
                    "aws ram create-resource-share",
                    f"--region {region}",
                    f"--name {name}-restore",
                    f"--resource-arns {arn or '<air-gapped vault ARN>'}",
                    f"--principals {' '.join(accounts) or '<account id that restores>'}",
                ),
                "# then, in the account it is shared with, its recovery points to restore (S3 and RDS sections):",
                _command(
                    "aws backup list-recovery-points-by-backup-vault",
                    f"--region {region}",
                    f"--backup-vault-name {name}",
                    f"--backup-vault-account-id {cfg.account_id}",
                ),
            ),
        ]
    if not blocks:
        blocks.append(p("No vault of this stack has an air-gapped vault (`vaults.<key>.air_gapped`)."))
    return Section(
        "air-gapped",
        "Air-gapped vaults",
        ctx.prerequisites(
            "Recovery points in a logically air-gapped vault cannot be deleted or re-keyed from any account; they "
            "are restored from an account the vault is shared with through AWS RAM "
            "(https://docs.aws.amazon.com/aws-backup/latest/devguide/logicallyairgappedvault.html): "
            "`ram:CreateResourceShare` here, then the restore permissions of the workload runbook's S3 and RDS "
            "sections there.",
            kms=True,
        ),
        tuple(blocks),
    )


def _backup_copy_back_section(ctx: _Context, cfg: BackupAccountStack) -> Section:
    blocks: list[Block] = [
        p(
            "A workload account that lost its recovery points gets one back from its tier's central vault, then "
            "restores it with its own runbook (`pgf-backup runbook --stack <stack>`). The copy's lifecycle must lie "
            "inside the destination vault's lock."
        )
    ]
    for stack, workload in ctx.workloads.items():
        key = cfg.central_vault_key(workload.tier)
        region = workload.regions.primary
        source = _get(ctx.out, "central_vaults", workload.tier, region)
        if key is None or "backup_account" not in _copy_targets(ctx, workload):
            continue
        blocks += [
            Heading(f"To stack {stack} (account {workload.account_id}), {region}"),
            _copy_back_commands(
                region=region,
                source_vault=_text(_get(source, "name")) or cfg.vault_name(key),
                destination_arn=vault_arn(region, workload.account_id, workload.vault_name(workload.vault_key)),
                service_role_arn=_text(ctx.service_role),
                delete_after_days=_delete_after(workload),
                stack=stack,
            ),
        ]
    return Section(
        "copy-back",
        "Copy a recovery point back to a workload account",
        ctx.prerequisites(_copy_back_permissions(ctx.service_role, cfg.account_id), kms=True),
        tuple(blocks),
    )


# ---------------------------------------------------------------------------------------------
# Both


def _iac_section(ctx: _Context) -> Section:
    stack = ctx.stack
    up_comment = "redeploys (asks first unless --yes)" if ctx.cfg.hardened else "redeploys"
    first = (
        f" A workload stack reads the backup stack's outputs: after the loss of both, run `pgf-backup up --stack "
        f"{STACK_BACKUP}` first."
        if stack != STACK_BACKUP
        else ""
    )
    return Section(
        "iac",
        "Redeploy the infrastructure",
        ctx.prerequisites(
            "The Pulumi CLI, this repository at the deployed commit, the backend (`PULUMI_BACKEND_URL`) and its "
            f"secrets passphrase or provider; credentials that may assume `{ctx.role(ctx.cfg.iam.deploy_role)}`."
        ),
        (
            p(
                "Vaults, keys, locks, plans, protections, alarms and exports are redeployed from this repository; a "
                f"compliance-locked vault, its key and its lock are retained by Pulumi and adopted as they are.{first} "
                "The application's own stacks (Lambda, Glue jobs, API Gateway, EventBridge, IAM) redeploy through "
                "their pipeline."
            ),
            _shell(
                _command(f"pgf-backup preview --stack {stack}", comment="what differs from the config, policy-gated"),
                _command(f"pgf-backup up --stack {stack}", comment=up_comment),
                _command(f"pgf-backup drift --stack {stack}", comment="exit 3 while the cloud still differs"),
            ),
        ),
    )


def _arn_appendix(ctx: _Context) -> Section:
    rows = tuple(((Code(path),), (Code(arn),)) for path, arn in output_arns(ctx.out))
    block: Block = Table(("output", "ARN"), rows) if rows else p("The stack's outputs hold no ARN.")
    return Section("arns", "Every ARN of the stack's outputs", (("None: a reference.",),), (block,))


# ---------------------------------------------------------------------------------------------
# Markdown


def _md_inline(parts: Line, cell: bool = False) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, Code):
            # A value with a backquote needs a longer fence, padded (CommonMark's code spans).
            fence, pad = ("``", " ") if "`" in part.text else ("`", "")
            out.append(f"{fence}{pad}{part.text}{pad}{fence}")
        else:
            out.append(part)
    text = "".join(out)
    return text.replace("|", "\\|").replace("\n", " ") if cell else text


def _md_block(block: Block) -> list[str]:
    if isinstance(block, Para):
        return [_md_inline(block.parts), ""]
    if isinstance(block, Heading):
        return [f"### {block.text}", ""]
    if isinstance(block, Bullets):
        marks = [f"{n}." if block.ordered else "-" for n in range(1, len(block.items) + 1)]
        return [f"{mark} {_md_inline(item)}" for mark, item in zip(marks, block.items, strict=True)] + [""]
    if isinstance(block, Table):
        lines = ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
        lines += ["| " + " | ".join(_md_inline(cell, cell=True) for cell in row) + " |" for row in block.rows]
        return [*lines, ""]
    return ["```sh", block.text, "```", ""]


def render_md(doc: Runbook) -> str:
    """The runbook as Markdown."""
    lines = [f"# {doc.title}", ""]
    for intro in doc.intro:
        lines += [_md_inline(intro), ""]
    lines += ["## Contacts", ""]
    for block in doc.contacts:
        lines += _md_block(block)
    lines += ["## At a glance", "", *(f"- {_md_inline(item)}" for item in doc.glance), ""]
    lines += ["## Contents", "", *(f"{n}. [{s.title}](#{s.key})" for n, s in enumerate(doc.sections, 1)), ""]
    for number, section in enumerate(doc.sections, 1):
        lines += [f'<a id="{section.key}"></a>', "", f"## {number}. {section.title}", "", "**Prerequisites**", ""]
        lines += [f"- {_md_inline(item)}" for item in section.prerequisites] + [""]
        for block in section.blocks:
            lines += _md_block(block)
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# HTML


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html_inline(parts: Line) -> str:
    return "".join(f"<code>{_esc(part.text)}</code>" if isinstance(part, Code) else _esc(part) for part in parts)


def _html_block(block: Block) -> str:
    if isinstance(block, Para):
        return f"<p>{_html_inline(block.parts)}</p>"
    if isinstance(block, Heading):
        return f"<h3>{_esc(block.text)}</h3>"
    if isinstance(block, Bullets):
        tag = "ol" if block.ordered else "ul"
        return f"<{tag}>" + "".join(f"<li>{_html_inline(item)}</li>" for item in block.items) + f"</{tag}>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_esc(h)}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<pre><code>{_esc(block.text)}</code></pre>"


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:75em;
padding:0 1em;color:#1b1f23}
h1{font-size:1.45em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}h3{font-size:1.05em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;padding:0 .2em}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6em;overflow-x:auto}pre code{padding:0}
.prereq{border-left:4px solid #bf8700;background:#fff8c5;padding:.3em .8em;margin:.6em 0}.prereq ul{margin:.2em 0}
@media print{pre{white-space:pre-wrap}}
"""


def render_html(doc: Runbook) -> str:
    """The runbook as one self-contained page: no script, no external asset, every value escaped."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(doc.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(doc.title)}</h1>",
        *(f"<p>{_html_inline(intro)}</p>" for intro in doc.intro),
        '<h2 id="contacts">Contacts</h2>',
        *(_html_block(block) for block in doc.contacts),
        "<h2>At a glance</h2>",
        "<ul>" + "".join(f"<li>{_html_inline(item)}</li>" for item in doc.glance) + "</ul>",
        "<h2>Contents</h2>",
        "<ol>" + "".join(f'<li><a href="#{_esc(s.key)}">{_esc(s.title)}</a></li>' for s in doc.sections) + "</ol>",
    ]
    for number, section in enumerate(doc.sections, 1):
        prerequisites = "".join(f"<li>{_html_inline(item)}</li>" for item in section.prerequisites)
        parts += [
            f'<h2 id="{_esc(section.key)}">{number}. {_esc(section.title)}</h2>',
            f'<div class="prereq"><strong>Prerequisites</strong><ul>{prerequisites}</ul></div>',
            *(_html_block(block) for block in section.blocks),
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


RENDERERS: Mapping[str, Callable[[Runbook], str]] = {"md": render_md, "html": render_html}
