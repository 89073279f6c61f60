"""The observability builder in the shipped stacks: the coverage rules and the account dashboard of each workload
stack, the backup account's dashboards and sinks, the links from a workload account, and the config switches."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from pgf_backup import availability
from pgf_backup.builders import observability
from pgf_backup.config import WorkloadStack
from pgf_backup.project import Project
from pgf_backup.providers import Providers
from tests.conftest import Harness, config_of, stack_values

Plan = dict[str, Any]
RULE, DASHBOARD = "aws:cfg/rule:Rule", "aws:cloudwatch/dashboard:Dashboard"
SERVICES = ("aurora", "dynamodb", "ebs", "efs", "rds", "s3")


def _of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _region_of(plan: Plan, resource: dict[str, Any]) -> str:
    (provider,) = [r for r in _of_type(plan, "pulumi:providers:aws") if r["urn"] == resource["provider"]]
    region: str = provider["inputs"]["region"]
    return region


def _copy_with(project: Project, root: Any, stack: str, extra: str) -> Project:
    for name in ("Pulumi.yaml", "__main__.py"):
        (root / name).write_text((project.root / name).read_text())
    text = (project.root / f"Pulumi.{stack}.yaml").read_text()
    (root / f"Pulumi.{stack}.yaml").write_text(text.replace("config:\n", f"config:\n{extra}", 1))
    return Project.find(root)


@pytest.mark.parametrize(
    ("stack", "account"), [("lab", "200000000020"), ("dev", "300000000030"), ("prod", "400000000040")]
)
def test_workload_stacks_get_coverage_rules_and_a_dashboard(
    run_stack: Callable[[str], Plan], stack: str, account: str
) -> None:
    plan = run_stack(stack)
    names = {f"pgf-{stack}-coverage-{s}" for s in SERVICES}
    rules = [r for r in _of_type(plan, RULE) if r["inputs"]["name"] in names]
    assert {r["inputs"]["name"] for r in rules} == names
    assert {_region_of(plan, r) for r in rules} == {"ca-central-1"}  # the rules are not offered in ca-west-1
    coverage = plan["outputs"]["coverage"]
    assert sorted(coverage["config_rules"]) == sorted(names) and coverage["region"] == "ca-central-1"
    assert coverage["resource_tags"] == {"backup:enabled": "true"}
    # NON_COMPLIANT changes go to the JobAlerts topic of the primary region.
    alerts = plan["outputs"]["job_alerts"]["ca-central-1"]["topic_arn"]
    assert coverage["non_compliant_alert"] == {"rule": f"pgf-{stack}-coverage-non-compliant", "topic_arn": alerts}
    (dashboard,) = _of_type(plan, DASHBOARD)
    assert dashboard["inputs"]["dashboardName"] == plan["outputs"]["dashboards"]["account"] == f"pgf-{stack}-backup"
    body = json.loads(dashboard["inputs"]["dashboardBody"])
    titles = [w["properties"].get("title") for w in body["widgets"] if w["type"] == "metric"]
    assert titles.count("Coverage: changes to NON_COMPLIANT") == 1  # the primary region's row
    assert titles.count("Backup jobs by state") == 2
    # Restore tests run in the backup account by default: none here.
    assert "Last restore test" not in titles
    notes = plan["outputs"]["notes"]
    assert any("evaluated in ca-central-1 only" in n for n in notes)
    # Linked to the backup account's sink in each region (run_stack gives it the backup stack's outputs).
    assert not any("not linked to the backup account's sinks" in n for n in notes)
    assert sorted(plan["outputs"]["dashboards"]["links"]) == ["ca-central-1", "ca-west-1"]
    assert account in dashboard["inputs"]["dashboardBody"]


def test_backup_stack_gets_dashboards_and_sinks(
    backup_outputs: dict[str, Any], run_stack: Callable[[str], Plan]
) -> None:
    dashboards = backup_outputs["dashboards"]
    assert dashboards["account"] == "pgf-backup-backup" and dashboards["organization"] == "pgf-organization-backup"
    assert set(dashboards["sinks"]) == {"ca-central-1", "ca-west-1"}
    for region, arn in dashboards["sinks"].items():
        assert arn.startswith(f"arn:aws:oam:{region}:100000000010:sink/")
    plan = run_stack("backup")
    policies = _of_type(plan, "aws:oam/sinkPolicy:SinkPolicy")
    assert len(policies) == 2
    for policy in policies:
        (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
        assert statement["Principal"]["AWS"] == [
            f"arn:aws:iam::{a}:root" for a in ("200000000020", "300000000030", "400000000040")
        ]
    org = next(d for d in _of_type(plan, DASHBOARD) if d["inputs"]["dashboardName"] == "pgf-organization-backup")
    body = org["inputs"]["dashboardBody"]
    for account in ("200000000020", "300000000030", "400000000040"):
        assert f':aws.AccountId=\\"{account}\\"' in body
    assert "100000000010" not in body.replace("AWS Backup across the organization", "")
    own = next(d for d in _of_type(plan, DASHBOARD) if d["inputs"]["dashboardName"] == "pgf-backup-backup")
    assert "RestoreTestDurationSeconds" in own["inputs"]["dashboardBody"]  # prod's copies are tested here


def test_switches_turn_coverage_and_dashboards_off(
    run_stack: Callable[..., Plan], project: Project, tmp_path: Any
) -> None:
    extra = (
        "  pgf-backup:aws_config_rules: {enabled: true, min_backup_retention_days: 7, backup_coverage: false}\n"
        "  pgf-backup:dashboards: {enabled: false}\n"
    )
    text = (project.root / "Pulumi.prod.yaml").read_text()
    # The shipped prod file sets aws_config_rules itself: replace that block.
    text = text.replace("  pgf-backup:aws_config_rules:\n    enabled: true\n    min_backup_retention_days: 7\n", "")
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((project.root / name).read_text())
    (tmp_path / "Pulumi.prod.yaml").write_text(text.replace("config:\n", f"config:\n{extra}", 1))
    plan = run_stack("prod", Project.find(tmp_path))
    assert not [r for r in _of_type(plan, RULE) if "-coverage-" in r["inputs"]["name"]]
    assert [r for r in _of_type(plan, RULE) if "rds-in-backup-plan" in r["inputs"]["name"]]  # RDS rules stay
    assert not _of_type(plan, DASHBOARD)
    assert "coverage" not in plan["outputs"] and "dashboards" not in plan["outputs"]
    assert any("backup_coverage is false" in n for n in plan["outputs"]["notes"])


def test_config_rules_enabled_false_turns_coverage_off(
    run_stack: Callable[..., Plan], project: Project, tmp_path: Any
) -> None:
    root = _copy_with(project, tmp_path, "lab", "  pgf-backup:aws_config_rules: {enabled: false}\n")
    plan = run_stack("lab", root)
    assert not _of_type(plan, RULE)
    assert _of_type(plan, DASHBOARD)


def _workload(harness: Harness, project: Project, backup: Any) -> dict[str, Any]:
    cfg = config_of(stack_values(project, "prod"))
    assert isinstance(cfg, WorkloadStack)
    alerts = {r: {"topic_arn": f"arn:aws:sns:{r}:400000000040:pgf-prod-backup-job-alerts"} for r in cfg.regions.all}

    def program() -> dict[str, Any]:
        return observability.build_workload(cfg, Providers(cfg, "prod"), alerts, backup=backup)

    result: dict[str, Any] = harness.run(program)
    return result


def test_workload_links_to_the_backup_sinks(pulumi_mocks: Harness, project: Project) -> None:
    sinks = {r: f"arn:aws:oam:{r}:100000000010:sink/{i}" for i, r in enumerate(("ca-central-1", "ca-west-1"))}
    outputs = _workload(pulumi_mocks, project, pulumi.Output.from_input({"dashboards": {"sinks": sinks}}))
    links = pulumi_mocks.of_type("aws:oam/link:Link")
    assert {link["inputs"]["sinkIdentifier"] for link in links} == set(sinks.values())
    assert all(link["inputs"]["labelTemplate"] == "pgf-prod" for link in links)
    assert set(outputs["dashboards"]["links"]) == set(sinks)
    assert not any("not linked" in n for n in outputs.get("notes", []))


def test_sink_arn_reads_the_backup_output() -> None:
    assert observability._sink_arn("ca-west-1", {"dashboards": {"sinks": {"ca-west-1": "arn:x"}}}) == "arn:x"
    missing: list[dict[str, Any]] = [{}, {"dashboards": {}}, {"dashboards": {"sinks": {"ca-central-1": "arn:x"}}}]
    for outputs in missing:
        with pytest.raises(ValueError, match=r"does not export dashboards\.sinks\.ca-west-1"):
            observability._sink_arn("ca-west-1", outputs)


def test_region_without_oam_gets_a_note(
    pulumi_mocks: Harness, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(availability, "oam_regions", lambda: frozenset({"ca-central-1"}))
    sinks = {"ca-central-1": "arn:aws:oam:ca-central-1:100000000010:sink/0"}
    outputs = _workload(pulumi_mocks, project, pulumi.Output.from_input({"dashboards": {"sinks": sinks}}))
    assert [link["inputs"]["sinkIdentifier"] for link in pulumi_mocks.of_type("aws:oam/link:Link")] == [
        sinks["ca-central-1"]
    ]
    assert any("not offered in ca-west-1" in n for n in outputs["notes"])
