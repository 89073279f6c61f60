"""The encrypted SNS topic of the components: one shape for vault notifications and alert topics."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.policies import Statement, service_may_publish


def encrypted_topic(  # noqa: PLR0917 - where it is, who publishes, and how it is encrypted
    name: str,
    topic_name: str,
    key_arn: pulumi.Input[str],
    publisher: tuple[str, str],
    where: tuple[str, str, str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
    also: Sequence[Statement] = (),
) -> aws.sns.Topic:
    """A KMS-encrypted topic (`<name>`) and its policy (`<name>-policy`) letting one AWS service publish.

    `publisher` is (statement Sid, service principal); `where` is (partition, region, account id). The
    service publishes on behalf of this account only (`aws:SourceAccount`); `also` adds statements.
    """
    partition, region, account_id = where
    topic = aws.sns.Topic(name, name=topic_name, kms_master_key_id=key_arn, tags=tags, opts=opts)
    # The ARN is fixed by AWS's format and the name we chose, so the policy is plain text.
    topic_arn = f"arn:{partition}:sns:{region}:{account_id}:{topic_name}"
    sid, service = publisher
    aws.sns.TopicPolicy(
        f"{name}-policy",
        arn=topic.arn,
        policy=service_may_publish(sid, service, topic_arn, account_id, also),
        opts=opts,
    )
    return topic
