"""OrgBackupPolicy: an AWS Organizations BACKUP_POLICY and its attachments to OUs or accounts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from pgf_backup.limits import MAX_BACKUP_POLICY_CHARACTERS


@dataclass(frozen=True)
class OrgBackupPolicyArgs:
    """The policy document (JSON text in the Organizations backup policy syntax) and its targets."""

    policy_name: str
    content: pulumi.Input[str]
    targets: Sequence[str]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


def check_content(name: str, content: str) -> str:
    """Refuse a document AWS Organizations would reject for its size."""
    if len(content) > MAX_BACKUP_POLICY_CHARACTERS:
        raise ValueError(
            f"backup policy {name}: {len(content)} characters, AWS Organizations allows {MAX_BACKUP_POLICY_CHARACTERS}"
        )
    return content


class OrgBackupPolicy(pulumi.ComponentResource):
    """A BACKUP_POLICY attached where the tier's accounts live."""

    policy_id: pulumi.Output[str]

    def __init__(self, name: str, args: OrgBackupPolicyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.targets:
            raise ValueError(f"backup policy {args.policy_name}: at least one target (root, OU or account)")
        super().__init__("pgf:backup:OrgBackupPolicy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        policy = aws.organizations.Policy(
            f"{name}-policy",
            name=args.policy_name,
            type="BACKUP_POLICY",
            description=args.description,
            content=pulumi.Output.from_input(args.content).apply(lambda text: check_content(args.policy_name, text)),
            tags=args.tags,
            opts=child,
        )
        for target in args.targets:
            aws.organizations.PolicyAttachment(
                f"{name}-{target}",
                policy_id=policy.id,
                target_id=target,
                opts=child,
            )
        self.policy_id = policy.id
        self.register_outputs({"policy_id": policy.id})
