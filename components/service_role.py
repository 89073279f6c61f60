"""BackupServiceRole: the IAM role AWS Backup assumes, with AWS's managed policies only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# AWS's managed policies for backup and restore, S3's included; nothing broader.
MANAGED_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)


# AWS Backup, and only AWS Backup, may assume the role: "The role must also have AWS Backup listed as a
# trusted entity, which enables AWS Backup to assume the role"
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/iam-service-roles.html).
#
# No aws:SourceAccount / aws:SourceArn condition: no AWS page says AWS Backup sends them when it assumes
# a role. AWS Backup documents those keys "in resource policies to limit the permissions that AWS Backup
# gives another service to the resource" (KMS key and SNS topic policies;
# https://docs.aws.amazon.com/aws-backup/latest/devguide/cross-service-confused-deputy-prevention.html),
# and IAM: "the aws:SourceAccount condition key is only available when the call to your resource is made
# directly by an AWS service principal" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
# Were the key absent from AssumeRole, StringEquals on it would be false and every backup, copy and
# restore job would fail. The confused deputy is covered by iam:PassRole instead: "To pass a role (and
# its permissions) to an AWS service, a user must have permissions to pass the role to the service", and
# "You can only use the PassRole permission to pass an IAM role to a service that shares the same AWS
# account" (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
TRUST_STATEMENT = {
    "Sid": "AwsBackupAssumesThisRole",
    "Effect": "Allow",
    "Principal": {"Service": "backup.amazonaws.com"},
    "Action": "sts:AssumeRole",
}


@dataclass(frozen=True)
class BackupServiceRoleArgs:
    """Name of the role (organization policies name it in every account) and where it lives."""

    role_name: str
    account_id: str
    partition: str
    tags: dict[str, str] = field(default_factory=dict)


class BackupServiceRole(pulumi.ComponentResource):
    """The role AWS Backup assumes for backups, copies and restores in one account."""

    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BackupServiceRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgf:backup:BackupServiceRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trust = {"Version": "2012-10-17", "Statement": [TRUST_STATEMENT]}
        role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="AWS Backup service role (pgf-backup)",
            assume_role_policy=json.dumps(trust),
            tags=args.tags,
            opts=child,
        )
        for policy in MANAGED_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}",
                opts=child,
            )
        self.role_arn = role.arn
        self.register_outputs({"role_arn": role.arn})
