"""IAM, KMS and vault policy statements shared by the components (pure data, no resources)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Statement = dict[str, Any]

# Key administration only: no Encrypt/Decrypt and no CreateGrant (a grant would hand out decrypt
# outside the kms:ViaService conditions below), so no `kms:Create*` wildcard either.
KEY_ADMIN_ACTIONS = (
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:ReplicateKey",
)
KEY_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
)
# The operations `kms:GrantIsForAWSResource` applies to: CreateGrant, ListGrants and RevokeGrant only
# (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource).
# RetireGrant is left out: under that condition it would be dead, and "permission to retire a grant is
# determined primarily by the grant" (botocore's KMS model, RetireGrant), so the services' own grants
# stay retirable without any key policy statement.
KEY_GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
# Services that read or write recovery points encrypted with a vault key (backup and restore).
KEY_VIA_SERVICES = ("backup", "rds", "s3", "dynamodb", "elasticfilesystem", "ec2")

RECOVERY_POINT_DESTRUCTIVE_ACTIONS = (
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
)
VAULT_GOVERNANCE_ACTIONS = (
    "backup:DeleteBackupVault",
    "backup:PutBackupVaultLockConfiguration",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:PutBackupVaultNotifications",
    "backup:DeleteBackupVaultNotifications",
)
# Turning rotation off is destructive too: the key admin wildcard `kms:Disable*` would otherwise allow it.
KEY_DESTRUCTIVE_ACTIONS = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation")
KEY_POLICY_ACTIONS = ("kms:PutKeyPolicy",)


# The longest deletion window KMS allows: a month to notice and cancel a scheduled deletion.
KEY_DELETION_WINDOW_DAYS = 30


def root_arn(partition: str, account_id: str) -> str:
    """The account principal (delegates to the account's IAM policies)."""
    return f"arn:{partition}:iam::{account_id}:root"


def deny_all_but(sid: str, actions: Sequence[str], allowed_role_arns: Sequence[str]) -> Statement:
    """A Deny of `actions` for every principal except the listed roles (by principal ARN)."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": list(actions),
        "Resource": "*",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": list(allowed_role_arns)}},
    }


def document(statements: Sequence[Statement]) -> str:
    """A policy document as JSON text (statements hold plain values only).

    Policies are built from plain values on purpose: lifting every string of a document into an
    Output (as `Output.json_dumps` does) costs more than the rest of a vault's registration.
    """
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@dataclass(frozen=True)
class KeyGuard:
    """Production hardening of a key: who may delete or disable it, and who may change its policy.

    Vault Lock does not protect the key that encrypts a vault: without it locked recovery points
    are unreadable, so the key is guarded too.
    """

    deploy_role_arn: str
    break_glass_role_arn: str


def key_policy(partition: str, account_id: str, statements: Sequence[Statement], guard: KeyGuard | None) -> str:
    """A key policy: administration by the account, the given uses, and the guard's denies."""
    admin: Statement = {
        "Sid": "KeyAdministrationByTheAccount",
        "Effect": "Allow",
        "Principal": {"AWS": root_arn(partition, account_id)},
        "Action": list(KEY_ADMIN_ACTIONS),
        "Resource": "*",
    }
    denies: list[Statement] = []
    if guard is not None:
        denies = [
            deny_all_but("DenyKeyDeletionExceptBreakGlass", KEY_DESTRUCTIVE_ACTIONS, [guard.break_glass_role_arn]),
            deny_all_but(
                "DenyKeyPolicyChangesExceptDeployAndBreakGlass",
                KEY_POLICY_ACTIONS,
                [guard.deploy_role_arn, guard.break_glass_role_arn],
            ),
        ]
    return document([admin, *statements, *denies])


def vault_access_policy(
    partition: str,
    deploy_role_arn: str,
    break_glass_role_arn: str,
    *,
    copy_in_org_id: str | None = None,
    copy_in_account_ids: Sequence[str] = (),
) -> str:
    """A vault's access policy: destructive actions denied to all but the break-glass role, governance
    changes to all but the deploy and break-glass roles, and copies in from the organization or accounts.

    A copy into another account's vault needs this side (`backup:CopyIntoBackupVault` allowed to the
    source) and the source key's: https://repost.aws/knowledge-center/backup-resolve-access-denied-error.
    """
    statements: list[Statement] = [
        deny_all_but(
            "DenyRecoveryPointDeletionExceptBreakGlass", RECOVERY_POINT_DESTRUCTIVE_ACTIONS, [break_glass_role_arn]
        ),
        deny_all_but(
            "DenyVaultGovernanceChangesExceptDeployAndBreakGlass",
            VAULT_GOVERNANCE_ACTIONS,
            [deploy_role_arn, break_glass_role_arn],
        ),
    ]
    if copy_in_org_id:
        statements.append(
            {
                "Sid": "CopyIntoVaultFromTheOrganization",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "backup:CopyIntoBackupVault",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": copy_in_org_id}},
            }
        )
    elif copy_in_account_ids:
        statements.append(
            {
                "Sid": "CopyIntoVaultFromAccounts",
                "Effect": "Allow",
                "Principal": {"AWS": [root_arn(partition, account) for account in copy_in_account_ids]},
                "Action": "backup:CopyIntoBackupVault",
                "Resource": "*",
            }
        )
    return document(statements)


def eventbridge_topic_key_statements(partition: str, account_id: str, region: str) -> list[Statement]:
    """Key statements of an SNS topic EventBridge publishes to: EventBridge encrypts, subscribers read via SNS.

    An encrypted SNS target needs EventBridge to generate and decrypt data keys with the topic's key:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions
    """
    return [
        {
            "Sid": "EventBridgePublishesEncryptedAlerts",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
        {
            "Sid": "SubscribersReadThroughSns",
            "Effect": "Allow",
            "Principal": {"AWS": root_arn(partition, account_id)},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}},
        },
    ]


def service_may_publish(sid: str, service: str, topic_arn: str, account_id: str, also: Sequence[Statement] = ()) -> str:
    """An SNS topic policy letting one AWS service publish, on behalf of this account only (and `also`)."""
    return document(
        [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            *also,
        ]
    )


def alarm_topic_statements(partition: str, account_id: str, region: str, topic_arn: str) -> list[Statement]:
    """What a topic and its key need so CloudWatch alarms of this account and region can publish to it.

    The topic policy admits `cloudwatch.amazonaws.com` for this account's alarms (`aws:SourceArn`), and the
    key lets CloudWatch generate and decrypt data keys: without them an alarm's action fails with "CloudWatch
    Alarms does not have authorization to access the SNS topic encryption key"
    (https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns and
    https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger). The first statement is
    the topic's, the second the key's.
    """
    alarms = f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"
    return [
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": alarms}},
        },
        {
            # As the knowledge-center page writes it: no page says which condition keys this request carries,
            # and a condition AWS does not send would silently stop every alarm.
            "Sid": "CloudWatchAlarmsEncrypt",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
    ]
