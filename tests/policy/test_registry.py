"""The pack's rules: names, descriptions, enforcement levels, config schemas, and the shipped tier configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgf_backup_policy.model import Settings
from pgf_backup_policy.registry import RULES, SETTINGS_SCHEMA, ResourceRule, StackRule, config_schema, policies
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from tests.policy.fixtures import EXPECTED

CONFIG_DIR = Path(__file__).resolve().parents[2] / "policy" / "config"


def test_rules_names_kinds_and_enforcement() -> None:
    found = {
        rule.name: ("stack" if isinstance(rule, StackRule) else "resource", rule.enforcement.value) for rule in RULES
    }
    assert found == EXPECTED


def test_descriptions_are_one_sentence() -> None:
    for rule in RULES:
        assert rule.description.endswith(".") and "\n" not in rule.description, rule.name
        assert 30 <= len(rule.description) <= 200, rule.name


def test_policies_mirror_the_rules() -> None:
    built = policies()
    assert [p.name for p in built] == [r.name for r in RULES]
    for policy, rule in zip(built, RULES, strict=True):
        expected = StackValidationPolicy if isinstance(rule, StackRule) else ResourceValidationPolicy
        assert isinstance(policy, expected)
        assert policy.description == rule.description and policy.enforcement_level == rule.enforcement


def test_config_schemas_declare_what_each_rule_reads() -> None:
    for rule in RULES:
        schema = config_schema(rule)
        if not rule.settings:
            assert schema is None
            continue
        assert schema is not None and set(schema.properties) == set(rule.settings) <= set(SETTINGS_SCHEMA)


def test_schema_defaults_are_the_settings_defaults() -> None:
    defaults = {key: value["default"] for key, value in SETTINGS_SCHEMA.items() if "default" in value}
    assert Settings.from_config(defaults) == Settings()


def test_resource_rules_name_their_types() -> None:
    for rule in RULES:
        assert rule.types and all(t.count(":") == 2 for t in rule.types), rule.name
        assert isinstance(rule, (ResourceRule, StackRule))


@pytest.mark.parametrize("tier", ["lab", "dev", "prod"])
def test_shipped_tier_configs(tier: str) -> None:
    config = json.loads((CONFIG_DIR / f"{tier}.json").read_text())
    by_name = {rule.name: rule for rule in RULES}
    for name, entry in config.items():
        rule = by_name[name]
        assert set(entry) - {"enforcementLevel"} <= set(rule.settings), name
        Settings.from_config({k: v for k, v in entry.items() if k != "enforcementLevel"})
    tiered = {rule.name for rule in RULES if "tier" in rule.settings}
    assert {name for name, entry in config.items() if entry.get("tier") == tier} == tiered
    tagged = config["data-resources-tagged"].get("enforcementLevel", "mandatory")
    assert tagged == ("mandatory" if tier == "prod" else EnforcementLevel.ADVISORY.value)
