"""BackupVault: a vault with its customer-managed key, lock, access policy and notifications."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.keys import customer_managed_key
from components.policies import (
    KEY_DELETION_WINDOW_DAYS,
    KEY_GRANT_ACTIONS,
    KEY_USE_ACTIONS,
    KEY_VIA_SERVICES,
    KeyGuard,
    Statement,
    key_policy,
    root_arn,
    vault_access_policy,
)
from components.topics import encrypted_topic


@dataclass(frozen=True)
class VaultLockArgs:
    """Vault Lock settings; `changeable_for_days` set means compliance mode."""

    mode: Literal["compliance", "governance"]
    min_retention_days: int
    max_retention_days: int
    changeable_for_days: int | None = None


@dataclass(frozen=True)
class BackupVaultArgs:
    """Everything a vault needs; built from config by `pgf_backup.stacks`."""

    vault_name: str
    tier: str
    account_id: str
    region: str
    partition: str
    deploy_role_arn: str
    break_glass_role_arn: str
    notify_events: Sequence[str]
    lock: VaultLockArgs | None = None
    # A multi-region primary key when copies of this vault go to another region.
    multi_region_key: bool = False
    # When set, the vault uses a replica (in this region) of that multi-region primary key.
    replica_of_key_arn: pulumi.Input[str] | None = None
    # Production hardening: protect/retain, key deletion and key policy changes restricted.
    hardened: bool = False
    # Who may copy recovery points into this vault (cross-account copies).
    copy_in_org_id: str | None = None
    copy_in_account_ids: Sequence[str] = ()
    # Accounts that copy recovery points out of this vault (destinations of its copy actions, or of a
    # restore copy back): the source key must admit them.
    copy_out_account_ids: Sequence[str] = ()
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse contradictory arguments before anything is registered."""
        if self.multi_region_key and self.replica_of_key_arn is not None:
            raise ValueError(f"vault {self.vault_name}: a replica key cannot itself be a multi-region primary")
        lock = self.lock
        if lock is not None and (lock.mode == "compliance") != (lock.changeable_for_days is not None):
            raise ValueError(f"vault {self.vault_name}: compliance mode is exactly 'changeable_for_days set'")
        if not self.notify_events:
            raise ValueError(f"vault {self.vault_name}: at least one notification event is needed")


# What a destination account needs of the source key for a cross-account copy, as AWS's
# troubleshooting page lists it ("you must allow the destination account in the source account AWS KMS
# key policy": https://repost.aws/knowledge-center/backup-cross-account-copy-error; and
# https://repost.aws/knowledge-center/backup-troubleshoot-cross-account-copy). For the types AWS Backup
# fully manages (S3, DynamoDB with advanced backup, EFS...) the source key is the vault's key.
COPY_OUT_KEY_ACTIONS = (
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
)


def copy_out_statements(partition: str, account_ids: Sequence[str]) -> list[Statement]:
    """Key policy statements letting other accounts copy recovery points encrypted with this key.

    Scoped as AWS's example for cross-account copies allows and no further: the destination account's
    root (its IAM policies decide which of its principals), grants only for AWS resources. No
    kms:ViaService or source condition: no AWS page shows AWS Backup's cross-account requests carry one,
    and a wrong condition fails every copy silently.
    """
    if not account_ids:
        return []
    principals = {"AWS": [root_arn(partition, account) for account in sorted(set(account_ids))]}
    return [
        {
            "Sid": "CrossAccountCopiesByDestinationAccounts",
            "Effect": "Allow",
            "Principal": principals,
            "Action": list(COPY_OUT_KEY_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "CrossAccountCopyGrantsForAwsResourcesOnly",
            "Effect": "Allow",
            "Principal": principals,
            "Action": list(KEY_GRANT_ACTIONS),
            "Resource": "*",
            # Applies to CreateGrant, ListGrants and RevokeGrant, exactly the actions of this statement.
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


class BackupVault(pulumi.ComponentResource):
    """A backup vault encrypted with a customer-managed KMS key, locked and access-restricted."""

    vault_name: pulumi.Output[str]
    vault_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BackupVaultArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:BackupVault", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        # Vault Lock does not protect the key: without it locked recovery points are unreadable.
        stateful = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(protect=args.hardened, retain_on_delete=args.hardened)
        )

        key_arn = self._create_key(name, stateful)
        vault = aws.backup.Vault(
            f"{name}-vault",
            name=args.vault_name,
            kms_key_arn=key_arn,
            force_destroy=False,
            tags={**args.tags, "Name": args.vault_name},
            opts=stateful,
        )
        self._create_lock(name, vault, stateful)
        self._create_access_policy(name, vault, child)
        topic = self._create_notifications(name, vault, key_arn, child)

        self.vault_name = vault.name
        self.vault_arn = vault.arn
        self.key_arn = key_arn
        self.topic_arn = topic.arn
        self.register_outputs(
            {"vault_name": vault.name, "vault_arn": vault.arn, "key_arn": key_arn, "topic_arn": topic.arn}
        )

    # -- key -----------------------------------------------------------------------------------

    def _key_policy(self) -> str:
        args = self._args
        root = root_arn(args.partition, args.account_id)
        via = [f"{service}.{args.region}.amazonaws.com" for service in KEY_VIA_SERVICES]
        statements: list[Statement] = [
            {
                "Sid": "UseThroughAwsBackupAndRestoringServices",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(KEY_USE_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": args.account_id}},
            },
            {
                "Sid": "GrantsForAwsResourcesOnly",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(KEY_GRANT_ACTIONS),
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:ViaService": via, "kms:CallerAccount": args.account_id},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            },
            {
                "Sid": "AwsBackupPublishesEncryptedNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "backup.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
            },
        ]
        statements += copy_out_statements(args.partition, args.copy_out_account_ids)
        guard = KeyGuard(args.deploy_role_arn, args.break_glass_role_arn) if args.hardened else None
        return key_policy(args.partition, args.account_id, statements, guard)

    def _create_key(self, name: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        args = self._args
        description = f"AWS Backup vault {args.vault_name} ({args.tier}, {args.region})"
        alias = f"alias/pgf-backup/{args.vault_name}"
        if args.replica_of_key_arn is not None:
            # A replica shares the primary's key material and rotation.
            key = aws.kms.ReplicaKey(
                f"{name}-key",
                primary_key_arn=args.replica_of_key_arn,
                description=description,
                deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
                policy=self._key_policy(),
                tags=args.tags,
                opts=opts,
            )
            aws.kms.Alias(
                f"{name}-alias", name=alias, target_key_id=key.key_id, opts=pulumi.ResourceOptions(parent=self)
            )
            return key.arn
        primary = customer_managed_key(
            name,
            description=description,
            policy=self._key_policy(),
            tags=args.tags,
            opts=opts,
            multi_region=args.multi_region_key,
            alias=alias,
        )
        return primary.arn

    # -- vault settings ------------------------------------------------------------------------

    def _create_lock(self, name: str, vault: aws.backup.Vault, opts: pulumi.ResourceOptions) -> None:
        lock = self._args.lock
        if lock is None:
            return
        aws.backup.VaultLockConfiguration(
            f"{name}-lock",
            backup_vault_name=vault.name,
            min_retention_days=lock.min_retention_days,
            max_retention_days=lock.max_retention_days,
            changeable_for_days=lock.changeable_for_days,
            opts=opts,
        )

    def _create_access_policy(self, name: str, vault: aws.backup.Vault, opts: pulumi.ResourceOptions) -> None:
        args = self._args
        policy = vault_access_policy(
            args.partition,
            args.deploy_role_arn,
            args.break_glass_role_arn,
            copy_in_org_id=args.copy_in_org_id,
            copy_in_account_ids=args.copy_in_account_ids,
        )
        aws.backup.VaultPolicy(f"{name}-policy", backup_vault_name=vault.name, policy=policy, opts=opts)

    def _create_notifications(
        self, name: str, vault: aws.backup.Vault, key_arn: pulumi.Output[str], opts: pulumi.ResourceOptions
    ) -> aws.sns.Topic:
        args = self._args
        topic = encrypted_topic(
            f"{name}-events",
            f"{args.vault_name}-backup-events",
            key_arn,
            ("AwsBackupPublishes", "backup.amazonaws.com"),
            (args.partition, args.region, args.account_id),
            args.tags,
            opts,
        )
        aws.backup.VaultNotifications(
            f"{name}-notifications",
            backup_vault_name=vault.name,
            sns_topic_arn=topic.arn,
            backup_vault_events=list(args.notify_events),
            opts=opts,
        )
        return topic
