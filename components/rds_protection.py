"""RdsProtection: the application's RDS instances and Aurora clusters in the tier's backups, and
AWS Config rules that prove their backup posture, with an alert on non-compliance.

Databases are referenced by ARN only: nothing here creates, modifies or deletes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.keys import customer_managed_key
from components.policies import (
    KeyGuard,
    Statement,
    key_policy,
    root_arn,
    service_may_publish,
)

# What a cross-account snapshot copy needs of the source key (RDS creates grants of its own).
COPY_GRANT_OPERATIONS = ("Decrypt", "DescribeKey", "CreateGrant", "ReEncryptFrom")
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

    def __init__(self, name: str, args: RdsProtectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.databases:
            raise ValueError("RdsProtection needs at least one database")
        super().__init__("pgf:backup:RdsProtection", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.arns = [database_arn(args.partition, args.account_id, d) for d in args.databases]
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
        self.register_outputs({"arns": self.arns, "rule_names": self.rule_names})

    def _create_copy_grants(self, name: str, args: RdsProtectionArgs, opts: pulumi.ResourceOptions) -> None:
        """Snapshots keep the database's key: an account copying them needs to use that key."""
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
        root = root_arn(args.partition, args.account_id)
        statements: list[Statement] = [
            {
                "Sid": "EventBridgePublishesEncryptedAlerts",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
            },
            {
                "Sid": "SubscribersReadThroughSns",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"sns.{args.region}.amazonaws.com"}},
            },
        ]
        guarded = args.key_guard is not None
        key = customer_managed_key(
            f"{name}-alerts",
            description=f"pgf-backup {args.tier} compliance alerts",
            policy=key_policy(args.partition, args.account_id, statements, args.key_guard),
            tags=args.tags,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=guarded, retain_on_delete=guarded)),
        )
        topic_name = f"pgf-{args.tier}-backup-compliance"
        topic = aws.sns.Topic(f"{name}-alerts", name=topic_name, kms_master_key_id=key.arn, tags=args.tags, opts=opts)
        topic_arn = f"arn:{args.partition}:sns:{args.region}:{args.account_id}:{topic_name}"
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
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=topic.arn,
            policy=service_may_publish("EventBridgePublishes", "events.amazonaws.com", topic_arn, args.account_id),
            opts=opts,
        )
        aws.cloudwatch.EventTarget(f"{name}-alerts-target", rule=rule.name, arn=topic.arn, opts=opts)
