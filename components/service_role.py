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
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AwsBackupAssumesThisRole",
                    "Effect": "Allow",
                    "Principal": {"Service": "backup.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                }
            ],
        }
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
