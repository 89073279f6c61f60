"""The AWS providers of a stack (one per account and region, assuming the deploy role) and the key guard of
its hardened keys: what every builder of the program places its resources with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import KeyGuard
from pgf_backup.config import StackConfig
from pgf_backup.constants import PROJECT, TAG_APPLICATION, TAG_DATA_CLASSIFICATION


@dataclass
class Providers:
    """One explicit AWS provider per (account, region), assuming the deploy role there."""

    cfg: StackConfig
    stack: str
    _cache: dict[tuple[str, str], aws.Provider] = field(default_factory=dict)

    def default_tags(self) -> dict[str, str]:
        """Tags every resource of this stack carries."""
        return {
            **self.cfg.tags.extra,
            TAG_APPLICATION: self.cfg.tags.application,
            TAG_DATA_CLASSIFICATION: self.cfg.tags.data_classification,
            "managed-by": PROJECT,
            "pulumi:stack": self.stack,
        }

    def get(self, account_id: str, region: str) -> aws.Provider:
        """The provider for an account and region (created once)."""
        key = (account_id, region)
        if key not in self._cache:
            self._cache[key] = aws.Provider(
                f"aws-{account_id}-{region}",
                region=region,
                allowed_account_ids=[account_id],
                assume_roles=[
                    aws.ProviderAssumeRoleArgs(
                        role_arn=self.cfg.role_arn(account_id, self.cfg.iam.deploy_role, region),
                        session_name=f"{PROJECT}-{self.stack}",
                    )
                ],
                default_tags=aws.ProviderDefaultTagsArgs(tags=self.default_tags()),
            )
        return self._cache[key]

    def opts(self, region: str | None = None, **extra: Any) -> pulumi.ResourceOptions:
        """Options placing a resource in this stack's account (primary region by default)."""
        provider = self.get(self.cfg.account_id, region or self.cfg.regions.primary)
        return pulumi.ResourceOptions(provider=provider, **extra)

    def key_guard(self, hardened: bool) -> KeyGuard | None:
        """The deny statements of a hardened key (deletion and policy changes: break-glass and deploy roles only)."""
        if not hardened:
            return None
        account, iam = self.cfg.account_id, self.cfg.iam
        return KeyGuard(self.cfg.role_arn(account, iam.deploy_role), self.cfg.role_arn(account, iam.break_glass_role))
