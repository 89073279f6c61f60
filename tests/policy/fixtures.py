"""One compliant fixture per resource type (prod, account 400000000040, ca-central-1), and context builders.

Negative tests copy a fixture and change one property.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pgf_backup_policy.model import Context, Resource, Settings

ACCOUNT = "400000000040"
BACKUP_ACCOUNT = "100000000010"
REGION = "ca-central-1"
COPY_REGION = "ca-west-1"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/mrk-95763b9fbb6c05d68a8ad054fb998990"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-break-glass"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-deploy"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def ctx(tier: str | None = "prod", *, stack: str | None = None, protect: bool = True, **settings: Any) -> Context:
    """Where a fixture lives: a stack named after its tier, prod account, primary region."""
    return Context(
        stack=stack or tier or "backup",
        settings=Settings(**settings),
        account=ACCOUNT,
        region=REGION,
        default_tags={"application": "pgf", "data:classification": "confidential"},
        protect=protect,
    )


def resource(kind: str, props: dict[str, Any], name: str = "r", context: Context | None = None) -> Resource:
    """A stack-level rule's view of one resource."""
    return Resource(kind, f"urn:pulumi:prod::pgf-backup::{kind}::{name}", name, props, context or ctx())


def deny(sid: str, actions: list[str], exempt: list[str]) -> dict[str, Any]:
    """A Deny of `actions` to every principal but `exempt` (the components' shape)."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": actions,
        "Resource": "*",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": exempt}},
    }


def document(statements: list[dict[str, Any]]) -> str:
    """A policy document as the engine sees it (JSON text)."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


# ---------------------------------------------------------------------------------------------
# Vaults and keys

VAULT: dict[str, Any] = {
    "name": "pgf-prod",
    "kmsKeyArn": KEY_ARN,
    "forceDestroy": False,
    "tags": {"backup:tier": "prod"},
}
VAULT_LOCK: dict[str, Any] = {
    "backupVaultName": "pgf-prod",
    "minRetentionDays": 35,
    "maxRetentionDays": 3650,
    "changeableForDays": 3,
}
VAULT_POLICY_STATEMENTS: list[dict[str, Any]] = [
    deny(
        "DenyRecoveryPointDeletionExceptBreakGlass",
        ["backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"],
        [BREAK_GLASS],
    ),
    deny(
        "DenyVaultGovernanceChangesExceptDeployAndBreakGlass",
        [
            "backup:DeleteBackupVault",
            "backup:PutBackupVaultLockConfiguration",
            "backup:DeleteBackupVaultLockConfiguration",
            "backup:PutBackupVaultAccessPolicy",
            "backup:DeleteBackupVaultAccessPolicy",
        ],
        [DEPLOY, BREAK_GLASS],
    ),
    {
        "Sid": "CopyIntoVaultFromTheOrganization",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "backup:CopyIntoBackupVault",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-pgfexample01"}},
    },
]
VAULT_POLICY: dict[str, Any] = {"backupVaultName": "pgf-prod", "policy": document(VAULT_POLICY_STATEMENTS)}
AIR_GAPPED_VAULT: dict[str, Any] = {
    "name": "pgf-prod-air-gapped",
    "minRetentionDays": 35,
    "maxRetentionDays": 3650,
    "tags": {"backup:tier": "prod"},
}

KEY_STATEMENTS: list[dict[str, Any]] = [
    {
        "Sid": "KeyAdministrationByTheAccount",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:ScheduleKeyDeletion"],
        "Resource": "*",
    },
    {
        "Sid": "AwsBackupPublishesEncryptedNotifications",
        "Effect": "Allow",
        "Principal": {"Service": "backup.amazonaws.com"},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    },
    deny(
        "DenyKeyDeletionExceptBreakGlass",
        ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation"],
        [BREAK_GLASS],
    ),
    deny("DenyKeyPolicyChangesExceptDeployAndBreakGlass", ["kms:PutKeyPolicy"], [DEPLOY, BREAK_GLASS]),
]
KEY: dict[str, Any] = {
    "description": "AWS Backup vault pgf-prod (prod, ca-central-1)",
    "enableKeyRotation": True,
    "deletionWindowInDays": 30,
    "multiRegion": True,
    "policy": document(KEY_STATEMENTS),
    "tags": {"backup:tier": "prod"},
}
REPLICA_KEY: dict[str, Any] = {
    "primaryKeyArn": KEY_ARN,
    "deletionWindowInDays": 30,
    "policy": document(KEY_STATEMENTS),
    "tags": {"backup:tier": "prod"},
}

# ---------------------------------------------------------------------------------------------
# Plans, selections, organization policies

CENTRAL_VAULT = f"arn:aws:backup:{REGION}:{BACKUP_ACCOUNT}:backup-vault:pgf-prod"
COPY_REGION_VAULT = f"arn:aws:backup:{COPY_REGION}:{ACCOUNT}:backup-vault:pgf-prod"


def plan_rule(name: str, schedule: str, delete_after: int, cold: int | None = None, continuous: bool = False) -> dict:
    """A plan rule that copies to the backup account and to the copy region with the same lifecycle."""
    lifecycle: dict[str, Any] = {"deleteAfter": delete_after}
    if cold is not None:
        lifecycle["coldStorageAfter"] = cold
    return {
        "ruleName": name,
        "targetVaultName": "pgf-prod",
        "schedule": schedule,
        "scheduleExpressionTimezone": "America/Toronto",
        "enableContinuousBackup": continuous,
        "lifecycle": dict(lifecycle),
        "copyActions": [
            {"destinationVaultArn": CENTRAL_VAULT, "lifecycle": dict(lifecycle)},
            {"destinationVaultArn": COPY_REGION_VAULT, "lifecycle": dict(lifecycle)},
        ],
    }


PLAN: dict[str, Any] = {
    "name": "pgf-prod",
    "rules": [
        plan_rule("daily", "cron(0 5 ? * * *)", 35),
        plan_rule("monthly", "cron(0 5 1 * ? *)", 365),
        plan_rule("yearly", "cron(0 5 1 1 ? *)", 2555, cold=30),
        plan_rule("continuous", "cron(0 4 ? * * *)", 35, continuous=True),
    ],
    "tags": {"backup:tier": "prod"},
}

SELECTION: dict[str, Any] = {
    "name": "pgf-prod-tagged",
    "iamRoleArn": f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-service-role",
    "planId": "b1eabd9c-5767-67bd-a54f-78adcbb10391",
    "resources": ["*"],
    "conditions": [
        {
            "stringEquals": [
                {"key": "aws:ResourceTag/backup:enabled", "value": "true"},
                {"key": "aws:ResourceTag/backup:tier", "value": "prod"},
            ]
        }
    ],
}


def assign(value: Any) -> dict[str, Any]:
    """An organization policy setting."""
    return {"@@assign": value}


def org_rule(schedule: str, delete_after: int, continuous: bool = False) -> dict[str, Any]:
    """A BACKUP_POLICY rule copying to the backup account and to the copy region."""
    lifecycle = {"delete_after_days": assign(str(delete_after))}
    copy_region = f"arn:aws:backup:{COPY_REGION}:$account:backup-vault:pgf-prod"
    rule: dict[str, Any] = {
        "schedule_expression": assign(schedule),
        "start_backup_window_minutes": assign("60"),
        "complete_backup_window_minutes": assign("480"),
        "target_backup_vault_name": assign("pgf-prod"),
        "lifecycle": lifecycle,
        "copy_actions": {
            CENTRAL_VAULT: {"target_backup_vault_arn": assign(CENTRAL_VAULT), "lifecycle": copy.deepcopy(lifecycle)},
            copy_region: {"target_backup_vault_arn": assign(copy_region), "lifecycle": copy.deepcopy(lifecycle)},
        },
    }
    if continuous:
        rule["enable_continuous_backup"] = assign(True)
    return rule


ORG_DOCUMENT: dict[str, Any] = {
    "plans": {
        "pgf-prod": {
            "regions": assign([REGION]),
            "rules": {
                "daily": org_rule("cron(0 5 ? * * *)", 35),
                "continuous": org_rule("cron(0 4 ? * * *)", 35, continuous=True),
            },
            "selections": {
                "tags": {
                    "pgf-prod-tagged": {
                        "iam_role_arn": assign("arn:aws:iam::$account:role/pgf-backup-service-role"),
                        "tag_key": assign("backup:tier"),
                        "tag_value": assign(["prod"]),
                    }
                }
            },
        }
    }
}


def org_policy(document_: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A BACKUP_POLICY resource's inputs around a document."""
    props = {
        "name": "pgf-prod",
        "type": "BACKUP_POLICY",
        "content": json.dumps(document_ if document_ is not None else ORG_DOCUMENT),
        "tags": {"backup:tier": "prod"},
    }
    props.update(changes)
    return props


# ---------------------------------------------------------------------------------------------
# Data services

DATA_TAGS: dict[str, str] = {
    "backup:enabled": "true",
    "backup:tier": "prod",
    "data:classification": "confidential",
    "application": "pgf",
}
BUCKET_NAME = "pgf-landing"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET_NAME}"
BUCKET_VERSIONING: dict[str, Any] = {"bucket": BUCKET_NAME, "versioningConfiguration": {"status": "Enabled"}}
BUCKET_ENCRYPTION: dict[str, Any] = {
    "bucket": BUCKET_NAME,
    "rules": [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN},
            "bucketKeyEnabled": True,
        }
    ],
}
BUCKET_PUBLIC_ACCESS_BLOCK: dict[str, Any] = {
    "bucket": BUCKET_NAME,
    "blockPublicAcls": True,
    "blockPublicPolicy": True,
    "ignorePublicAcls": True,
    "restrictPublicBuckets": True,
}
BUCKET_POLICY: dict[str, Any] = {
    "bucket": BUCKET_NAME,
    "policy": document(
        [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    ),
}
BUCKET_SELECTION: dict[str, Any] = {**SELECTION, "name": "pgf-prod-arns", "resources": [BUCKET_ARN], "conditions": []}

RDS_INSTANCE: dict[str, Any] = {
    "identifier": "pgf-db",
    "engine": "postgres",
    "backupRetentionPeriod": 35,
    "storageEncrypted": True,
    "kmsKeyId": KEY_ARN,
    "deletionProtection": True,
    "multiAz": True,
    "tags": DATA_TAGS,
}
RDS_CLUSTER: dict[str, Any] = {
    "clusterIdentifier": "pgf-aurora",
    "engine": "aurora-postgresql",
    "backupRetentionPeriod": 35,
    "storageEncrypted": True,
    "kmsKeyId": KEY_ARN,
    "deletionProtection": True,
    "availabilityZones": ["ca-central-1a", "ca-central-1b"],
    "tags": DATA_TAGS,
}

FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pgf-ingest"
DEAD_LETTER_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:pgf-ingest-dead-letter"
FUNCTION: dict[str, Any] = {
    "name": "pgf-ingest",
    "publish": True,
    "deadLetterConfig": {"targetArn": DEAD_LETTER_QUEUE_ARN},
    "environment": {
        "variables": {
            "DB_PASSWORD_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pgf/db-AbCdEf",
            "API_TOKEN_PARAMETER": "/pgf/api/token",
            "LOG_LEVEL": "INFO",
            "API_KEY": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/pgf/api-key",
        }
    },
}

# What invokes it asynchronously: a schedule on its alias (as the export functions are run).
SCHEDULE: dict[str, Any] = {
    "name": "pgf-ingest",
    "scheduleExpression": "cron(0 3 * * ? *)",
    "flexibleTimeWindow": {"mode": "OFF"},
    "target": {"arn": f"{FUNCTION_ARN}:live", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/pgf-ingest-scheduler"},
}
EVENT_INVOKE_CONFIG: dict[str, Any] = {
    "functionName": "pgf-ingest",
    "qualifier": "live",
    "destinationConfig": {"onFailure": {"destination": DEAD_LETTER_QUEUE_ARN}},
}


def changed(props: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of a fixture with some top-level properties replaced (None removes one)."""
    result = copy.deepcopy(props)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


# ---------------------------------------------------------------------------------------------
# The pack

# Issue 5's rules, plus lambda-publishes-versions: the advisory half of the Lambda rule needs its own
# enforcement level, and a pulumi_policy policy has exactly one; plus lambda-dead-letter for the export functions.
EXPECTED = {
    "vault-customer-managed-key": ("resource", "mandatory"),
    "vault-lock-compliance-in-prod": ("stack", "mandatory"),
    "vault-denies-recovery-point-deletion": ("stack", "mandatory"),
    "kms-key-hardening": ("resource", "mandatory"),
    "copy-action-explicit-lifecycle": ("resource", "mandatory"),
    "retention-within-tier-bounds": ("resource", "mandatory"),
    "prod-copies-leave-account-and-region": ("resource", "mandatory"),
    "selection-is-scoped": ("resource", "mandatory"),
    "plan-within-quotas": ("resource", "mandatory"),
    "org-backup-policy-valid": ("resource", "mandatory"),
    "protected-bucket-prerequisites": ("stack", "mandatory"),
    "rds-backup-posture": ("resource", "mandatory"),
    "data-resources-tagged": ("resource", "mandatory"),
    "lambda-no-plaintext-secrets": ("resource", "mandatory"),
    "lambda-publishes-versions": ("resource", "advisory"),
    "lambda-dead-letter": ("stack", "advisory"),
    "prod-stateful-resources-protected": ("resource", "mandatory"),
    "selections-disjoint": ("stack", "mandatory"),
    "restore-testing-covers-prod": ("stack", "mandatory"),
    "audit-evidence-present": ("stack", "mandatory"),
}
