"""The customer-managed KMS keys of the components: one shape for vault, bucket and alert keys."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.policies import KEY_DELETION_WINDOW_DAYS


def customer_managed_key(
    name: str,
    *,
    description: str,
    policy: str,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
    multi_region: bool | None = None,
    alias: str | None = None,
) -> aws.kms.Key:
    """A key with rotation on and the longest deletion window (`<name>-key`), and its alias (`<name>-alias`)."""
    key = aws.kms.Key(
        f"{name}-key",
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
        multi_region=multi_region,
        policy=policy,
        tags=tags,
        opts=opts,
    )
    if alias is not None:
        # An alias is a name only: never protected, so renaming it never blocks an update.
        aws.kms.Alias(
            f"{name}-alias", name=alias, target_key_id=key.key_id, opts=pulumi.ResourceOptions(parent=opts.parent)
        )
    return key
