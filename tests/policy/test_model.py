"""What rules see: plain values (unknowns marked), where a resource lives, the pack's settings."""

from __future__ import annotations

import json
import re

import pytest
from pgf_backup_policy.documents import DocumentError, deny_gaps, statements
from pgf_backup_policy.model import (
    UNKNOWN,
    Context,
    Settings,
    context_of,
    plain,
    role_of_arn,
    stack_of_urn,
    tier_of_stack,
)
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from tests.policy import fixtures as f

PROVIDER = {
    "region": "ca-central-1",
    "allowedAccountIds": '["400000000040"]',
    "assumeRoles": '[{"roleArn": "arn:aws:iam::400000000040:role/pgf-backup-deploy"}]',
    "defaultTags": '{"tags": {"application": "pgf", "backup:tier": "prod"}}',
}


def test_plain_marks_unknowns_and_turns_whole_doubles_into_ints() -> None:
    proxied = unknown_checking_proxy(
        {"name": "v", "arn": UNKNOWN_STRING_VALUE, "days": 35.0, "ratio": 0.5, "rules": [{"n": UNKNOWN_NUMBER_VALUE}]}
    )
    assert plain(proxied) == {"name": "v", "arn": UNKNOWN, "days": 35, "ratio": 0.5, "rules": [{"n": UNKNOWN}]}


def test_context_of_reads_the_provider() -> None:
    urn = "urn:pulumi:pgf-api-prod::app::aws:s3/bucket:Bucket::data"
    ctx = context_of(urn, PROVIDER, Settings(), {"tags": {"owner": "x"}}, protect=True)
    assert (ctx.stack, ctx.account, ctx.region, ctx.protect) == ("pgf-api-prod", "400000000040", "ca-central-1", True)
    assert ctx.default_tags == {"application": "pgf", "backup:tier": "prod"}
    assert ctx.stack_tier == "prod"


def test_context_of_prefers_the_resource_region_and_falls_back_to_the_assumed_role_account() -> None:
    provider = {**PROVIDER, "allowedAccountIds": None}
    ctx = context_of("urn:pulumi:dev::p::t::n", provider, Settings(), {"region": "ca-west-1"})
    assert (ctx.account, ctx.region) == ("400000000040", "ca-west-1")


def test_context_without_provider() -> None:
    ctx = context_of("urn:pulumi:dev::p::t::n", None, Settings())
    assert (ctx.account, ctx.region, dict(ctx.default_tags)) == (None, None, {})


@pytest.mark.parametrize(
    ("stack", "tier"),
    [("prod", "prod"), ("pgf-api-dev", "dev"), ("team.lab", "lab"), ("preprod", None), ("backup", None)],
)
def test_tier_of_stack(stack: str, tier: str | None) -> None:
    assert tier_of_stack(stack) == tier


def test_configured_tier_wins_over_the_stack_name_and_tags() -> None:
    ctx = Context(stack="prod", settings=Settings(tier="lab"))
    assert ctx.tier_of({"tags": {"backup:tier": "prod"}}) == "lab"
    assert Context(stack="backup").tier_of({"tags": {"backup:tier": "dev"}}) == "dev"
    assert Context(stack="backup").tier_of({"tags": {"backup:tier": "qa"}}) is None


def test_settings_from_config_defaults_and_values() -> None:
    assert Settings.from_config({}) == Settings()
    settings = Settings.from_config(
        {
            "tier": "dev",
            "tierBounds": {"dev": {"minDays": 3, "maxDays": 30}, "prod": {"minDays": 40.0}},
            "breakGlassRole": "ops",
            "deployRole": "ci",
            "allowComplianceLockOutsideProd": True,
        }
    )
    assert settings.tier == "dev" and settings.bounds["dev"] == (3, 30) and settings.prod_min_days == 40
    assert (settings.break_glass_role, settings.deploy_role, settings.allow_compliance_lock_outside_prod) == (
        "ops",
        "ci",
        True,
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"tier": "staging"}, "'tier': 'staging' is not one of lab, dev, prod"),
        ({"tierBounds": {"prod": {"minDays": 30}}}, "below the strategy's prod floor of 35"),
        ({"tierBounds": {"lab": {"minDays": 20, "maxDays": 10}}}, "need 1 <= minDays <= maxDays"),
        ({"tierBounds": {"qa": {}}}, "'tierBounds.qa'"),
        ({"tierBounds": [1]}, "must map a tier"),
    ],
)
def test_settings_refused(config: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        Settings.from_config(config)


def test_urn_and_role_parsing() -> None:
    assert stack_of_urn("urn:pulumi:prod::pgf-backup::aws:backup/vault:Vault::v") == "prod"
    assert role_of_arn("arn:aws:iam::400000000040:role/ops/pgf-backup-break-glass") == (
        "400000000040",
        "pgf-backup-break-glass",
    )
    assert role_of_arn("arn:aws:iam::400000000040:user/alice") is None


def test_documents() -> None:
    assert statements({"Statement": {"Effect": "Allow"}}) == [{"Effect": "Allow"}]
    with pytest.raises(DocumentError, match="not a JSON object"):
        statements("[]")
    document = f.document(f.KEY_STATEMENTS)
    assert deny_gaps(document, ["kms:DisableKey"], ["pgf-backup-break-glass"], f.ACCOUNT, "kms") == []
    # A deny that exempts nobody denies even more: it is accepted.
    strict = f.document([{**f.KEY_STATEMENTS[2], "Condition": {}}])
    assert deny_gaps(strict, ["kms:DisableKey"], ["pgf-backup-break-glass"], f.ACCOUNT, "kms") == []
    # Conservative: a deny must name every resource ("*"), not one ARN that may not be this key's.
    narrow = json.loads(document)["Statement"][2]
    narrow["Resource"] = f.KEY_ARN
    assert deny_gaps(f.document([narrow]), ["kms:DisableKey"], ["pgf-backup-break-glass"], f.ACCOUNT, "kms")
