"""What only the organization's management account may do for AWS Backup, as data (no Pulumi, no boto3).

The `management` stack applies it; preflight prints it as commands when that stack is not configured.
"""

from __future__ import annotations

import json
from typing import Any

# AWS Backup's service principal for Organizations ("Service principals used by the service-linked roles":
# `backup.amazonaws.com`, https://docs.aws.amazon.com/organizations/latest/userguide/services-that-can-integrate-backup.html).
BACKUP_SERVICE_PRINCIPAL = "backup.amazonaws.com"

# UpdateGlobalSettings "Returns an error if the account is not an Organizations management account"
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_UpdateGlobalSettings.html). Of its documented keys
# (isCrossAccountBackupEnabled, isMpaEnabled, isDelegatedAdministratorEnabled) the strategy needs only the first:
# "isCrossAccountBackupEnabled: Allow accounts in your organization to copy backups to other accounts"
# (DescribeGlobalSettings, https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DescribeGlobalSettings.html).
# Multi-party approval is not part of the strategy, and the keys left out keep whatever the organization chose.
GLOBAL_SETTINGS: dict[str, str] = {"isCrossAccountBackupEnabled": "true"}

# The delegation policy follows AWS's "Example: Consolidated permissions to manage an organization's backup
# policies" (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_delegate_policies_example_consolidate_permissions.html),
# statement for statement: the member account (here the backup account) may read the organization's structure,
# read BACKUP_POLICY documents, and create, update, delete, attach and detach them, each action conditioned on
# organizations:PolicyType BACKUP_POLICY. PutResourcePolicy: "You can only call this operation from the
# management account" (botocore's Organizations model).
_DESCRIBE_LIST_ACTIONS = (
    "organizations:DescribeOrganization",
    "organizations:DescribeOrganizationalUnit",
    "organizations:DescribeAccount",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListParents",
    "organizations:ListChildren",
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListTagsForResource",
)
_POLICY_TYPE_READ_ACTIONS = (
    "organizations:DescribePolicy",
    "organizations:DescribeEffectivePolicy",
    "organizations:ListPolicies",
    "organizations:ListPoliciesForTarget",
    "organizations:ListTargetsForPolicy",
)
_BACKUP_POLICY_ACTIONS = (
    "organizations:CreatePolicy",
    "organizations:UpdatePolicy",
    "organizations:DeletePolicy",
    "organizations:AttachPolicy",
    "organizations:DetachPolicy",
    "organizations:EnablePolicyType",
    "organizations:DisablePolicyType",
)
_BACKUP_POLICY_ONLY = {"StringLikeIfExists": {"organizations:PolicyType": "BACKUP_POLICY"}}


def delegation_policy(
    partition: str, backup_account_id: str, management_account_id: str, organization_id: str, root_id: str
) -> dict[str, Any]:
    """The Organizations resource policy delegating BACKUP_POLICY management to the backup account."""
    principal = {"AWS": f"arn:{partition}:iam::{backup_account_id}:root"}
    # Organizations ARNs name the management account (the example's ManagementAccountId placeholder).
    base = f"arn:{partition}:organizations::{management_account_id}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DelegatingNecessaryDescribeListActions",
                "Effect": "Allow",
                "Principal": principal,
                "Action": list(_DESCRIBE_LIST_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "DelegatingNecessaryDescribeListActionsForSpecificPolicyType",
                "Effect": "Allow",
                "Principal": principal,
                "Action": list(_POLICY_TYPE_READ_ACTIONS),
                "Resource": "*",
                "Condition": _BACKUP_POLICY_ONLY,
            },
            {
                "Sid": "DelegatingAllActionsForBackupPolicies",
                "Effect": "Allow",
                "Principal": principal,
                "Action": list(_BACKUP_POLICY_ACTIONS),
                "Resource": [
                    f"{base}:root/{organization_id}/{root_id}",
                    f"{base}:ou/{organization_id}/*",
                    f"{base}:account/{organization_id}/*",
                    f"{base}:policy/{organization_id}/backup_policy/*",
                ],
                "Condition": _BACKUP_POLICY_ONLY,
            },
        ],
    }


def prerequisite_commands(
    scheduling: str,
    *,
    partition: str,
    backup_account_id: str,
    management_account_id: str | None,
    organization_id: str | None,
    root_id: str | None,
) -> str:
    """The AWS CLI commands that do, by hand in the management account, what the management stack would do."""
    settings = ",".join(f"{key}={value}" for key, value in GLOBAL_SETTINGS.items())
    lines = [f"  aws backup update-global-settings --global-settings {settings}"]
    if scheduling == "organization":
        policy = delegation_policy(
            partition,
            backup_account_id,
            management_account_id or "<management-account-id>",
            organization_id or "<organization-id>",
            root_id or "<root-id>",
        )
        lines += [
            "  aws organizations register-delegated-administrator "
            f"--account-id {backup_account_id} --service-principal {BACKUP_SERVICE_PRINCIPAL}",
            f"  aws organizations put-resource-policy --content '{json.dumps(policy, separators=(',', ':'))}'",
        ]
    return "\n".join(lines)
