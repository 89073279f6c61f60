"""RdsProtection: the application's RDS instances and Aurora clusters in the tier's backups, and
AWS Config rules that prove their backup posture, with an alert on non-compliance.

Databases are referenced by ARN only: nothing here creates, modifies or deletes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.keys import customer_managed_key
from components.policies import (
    KeyGuard,
    eventbridge_topic_key_statements,
    key_policy,
    root_arn,
)
from components.topics import encrypted_topic

# What a cross-account snapshot copy needs of the source key (RDS creates grants of its own).
COPY_GRANT_OPERATIONS = ("Decrypt", "DescribeKey", "CreateGrant", "ReEncryptFrom")
# The key policy statement AWS documents for "another AWS account to copy an encrypted DB snapshot shared
# from your account": "update the key policy for the KMS key. You update it with the Amazon Resource Name
# (ARN) of the AWS account that you are sharing to as Principal in the KMS key policy. Then you allow the
# kms:CreateGrant action." Its example's "Allow use of the key" statement names the account's root and
# these actions, with "Resource": "*" and no condition. RDS user guide, "Allowing access to an AWS KMS key":
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html#USER_ShareSnapshot.Encrypted.KeyPolicy
# and the same example for Aurora cluster snapshots:
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_ShareSnapshot.html
# AWS Backup's cross-account copies need the same: "Confirm that the source AWS Key Management Service (AWS KMS)
# key policy allows the destination account" (https://repost.aws/knowledge-center/backup-troubleshoot-cross-account-copy).
# The example's second statement ("Allow attachment of persistent resources": CreateGrant, ListGrants and
# RevokeGrant under kms:GrantIsForAWSResource) adds nothing the page asks for: kms:CreateGrant is allowed
# here already, without that condition.
COPY_KEY_POLICY_ACTIONS = (
    "kms:CreateGrant",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
)
COPY_KEY_POLICY_SID = "PgfBackupCopiesRdsSnapshots"
INSTANCE = "AWS::RDS::DBInstance"
CLUSTER = "AWS::RDS::DBCluster"


@dataclass(frozen=True)
class DatabaseArgs:
    """One database: its identifier, kind and region."""

    identifier: str
    kind: Literal["instance", "cluster"]
    region: str
    # The customer-managed key the database (and so its snapshots) is encrypted with.
    kms_key_arn: str | None = None


@dataclass(frozen=True)
class RdsProtectionArgs:
    """The stack's databases and the posture AWS Config checks."""

    databases: Sequence[DatabaseArgs]
    account_id: str
    region: str
    partition: str
    tier: str
    min_backup_retention_days: int
    multi_az_required: bool
    config_rules: bool = True
    # Accounts that copy the snapshots (the backup account): they get a grant on each database key.
    copy_account_ids: Sequence[str] = ()
    key_guard: KeyGuard | None = None
    tags: dict[str, str] = field(default_factory=dict)


def database_arn(partition: str, account_id: str, database: DatabaseArgs) -> str:
    """ARN of an RDS instance (`db:`) or Aurora cluster (`cluster:`)."""
    kind = "db" if database.kind == "instance" else "cluster"
    return f"arn:{partition}:rds:{database.region}:{account_id}:{kind}:{database.identifier}"


def copy_key_policy_statement(partition: str, key_arn: str, destination_account_ids: Sequence[str]) -> dict[str, Any]:
    """The statement a database key's policy needs so the destination accounts can copy its snapshots."""
    parts = key_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms" or not parts[5].startswith("key/"):
        raise ValueError(f"{key_arn!r} is not the ARN of a KMS key (arn:<partition>:kms:<region>:<account>:key/<id>)")
    if parts[1] != partition:
        raise ValueError(f"the key {key_arn} is in partition {parts[1]!r}, not {partition!r}")
    if not destination_account_ids:
        raise ValueError(f"no destination account to admit to the key {key_arn}")
    return {
        "Sid": COPY_KEY_POLICY_SID,
        "Effect": "Allow",
        "Principal": {"AWS": [root_arn(partition, a) for a in dict.fromkeys(destination_account_ids)]},
        "Action": list(COPY_KEY_POLICY_ACTIONS),
        # In a key policy, "*" means "this KMS key"
        # (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).
        "Resource": "*",
    }


def key_policy_statements(args: RdsProtectionArgs) -> dict[str, dict[str, Any]]:
    """Database identifier -> the statement its key's policy needs; only databases whose snapshots are copied."""
    if not args.copy_account_ids:
        return {}
    return {
        d.identifier: copy_key_policy_statement(args.partition, d.kms_key_arn, args.copy_account_ids)
        for d in args.databases
        if d.kms_key_arn is not None
    }


def config_rules(args: RdsProtectionArgs) -> dict[str, tuple[str, list[str], dict[str, str]]]:
    """AWS managed Config rules: name -> (source identifier, resource types, parameters)."""
    kinds = {d.kind for d in args.databases}
    rules: dict[str, tuple[str, list[str], dict[str, str]]] = {
        "rds-storage-encrypted": ("RDS_STORAGE_ENCRYPTED", [INSTANCE], {}),
        "rds-in-backup-plan": ("RDS_IN_BACKUP_PLAN", [INSTANCE], {}),
    }
    if "instance" in kinds:
        rules["db-instance-backup-enabled"] = (
            "DB_INSTANCE_BACKUP_ENABLED",
            [INSTANCE],
            {"backupRetentionMinimum": str(args.min_backup_retention_days)},
        )
        rules["rds-instance-deletion-protection-enabled"] = ("RDS_INSTANCE_DELETION_PROTECTION_ENABLED", [INSTANCE], {})
        if args.multi_az_required:
            rules["rds-multi-az-support"] = ("RDS_MULTI_AZ_SUPPORT", [INSTANCE], {})
    if "cluster" in kinds:
        rules["rds-cluster-deletion-protection-enabled"] = ("RDS_CLUSTER_DELETION_PROTECTION_ENABLED", [CLUSTER], {})
        rules["aurora-resources-protected-by-backup-plan"] = (
            "AURORA_RESOURCES_PROTECTED_BY_BACKUP_PLAN",
            [CLUSTER],
            {},
        )
        rules["rds-cluster-encrypted-at-rest"] = ("RDS_CLUSTER_ENCRYPTED_AT_REST", [CLUSTER], {})
        if args.multi_az_required:
            rules["rds-cluster-multi-az-enabled"] = ("RDS_CLUSTER_MULTI_AZ_ENABLED", [CLUSTER], {})
    return rules


class RdsProtection(pulumi.ComponentResource):
    """The stack's databases, by ARN, and the AWS Config rules over their posture."""

    arns: list[str]
    rule_names: list[str]
    # The database keys belong to the application stacks: this project can only say what their policies
    # must hold (and preflight checks it). The grants below are not the documented way.
    key_policy_statements: dict[str, dict[str, Any]]

    def __init__(self, name: str, args: RdsProtectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.databases:
            raise ValueError("RdsProtection needs at least one database")
        statements = key_policy_statements(args)
        super().__init__("pgf:backup:RdsProtection", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.arns = [database_arn(args.partition, args.account_id, d) for d in args.databases]
        self.key_policy_statements = statements
        self._create_copy_grants(name, args, child)
        self.rule_names = []
        if args.config_rules:
            for rule_name, (identifier, types, parameters) in config_rules(args).items():
                full_name = f"pgf-{args.tier}-{rule_name}"
                aws.cfg.Rule(
                    f"{name}-{rule_name}",
                    name=full_name,
                    description=f"pgf-backup: {rule_name} ({args.tier})",
                    source=aws.cfg.RuleSourceArgs(owner="AWS", source_identifier=identifier),
                    scope=aws.cfg.RuleScopeArgs(compliance_resource_types=types),
                    input_parameters=json.dumps(parameters) if parameters else None,
                    opts=child,
                )
                self.rule_names.append(full_name)
            self._create_alert(name, args, child)
        self.register_outputs(
            {"arns": self.arns, "rule_names": self.rule_names, "key_policy_statements": self.key_policy_statements}
        )

    def _create_copy_grants(self, name: str, args: RdsProtectionArgs, opts: pulumi.ResourceOptions) -> None:
        """Snapshots keep the database's key: an account copying them needs to use that key.

        Kept alongside the key policy statement, never instead of it: AWS documents the key policy for
        cross-account snapshot copies, not a grant. The grants are already deployed (removing them would
        retire a grant on every live database key for no documented gain), they admit no account the
        statement does not, and they are retired when the stack is destroyed.
        """
        for database in args.databases:
            if database.kms_key_arn is None:
                continue
            for account in args.copy_account_ids:
                aws.kms.Grant(
                    f"{name}-{database.identifier}-copy-{account}",
                    name=f"pgf-backup-copy-{database.identifier}-to-{account}",
                    key_id=database.kms_key_arn,
                    grantee_principal=root_arn(args.partition, account),
                    operations=list(COPY_GRANT_OPERATIONS),
                    retire_on_delete=True,
                    opts=opts,
                )

    def _create_alert(self, name: str, args: RdsProtectionArgs, opts: pulumi.ResourceOptions) -> None:
        """Non-compliance of any of these rules publishes to an encrypted SNS topic."""
        statements = eventbridge_topic_key_statements(args.partition, args.account_id, args.region)
        guarded = args.key_guard is not None
        key = customer_managed_key(
            f"{name}-alerts",
            description=f"pgf-backup {args.tier} compliance alerts",
            policy=key_policy(args.partition, args.account_id, statements, args.key_guard),
            tags=args.tags,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=guarded, retain_on_delete=guarded)),
        )
        topic_name = f"pgf-{args.tier}-backup-compliance"
        topic = encrypted_topic(
            f"{name}-alerts",
            topic_name,
            key.arn,
            ("EventBridgePublishes", "events.amazonaws.com"),
            (args.partition, args.region, args.account_id),
            args.tags,
            opts,
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-non-compliant",
            name=f"pgf-{args.tier}-rds-backup-non-compliant",
            description="An RDS backup posture rule of pgf-backup became NON_COMPLIANT",
            event_pattern=json.dumps(
                {
                    "source": ["aws.config"],
                    "detail-type": ["Config Rules Compliance Change"],
                    "detail": {
                        "configRuleName": self.rule_names,
                        "newEvaluationResult": {"complianceType": ["NON_COMPLIANT"]},
                    },
                }
            ),
            tags=args.tags,
            opts=opts,
        )
        aws.cloudwatch.EventTarget(f"{name}-alerts-target", rule=rule.name, arn=topic.arn, opts=opts)
