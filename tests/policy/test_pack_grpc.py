"""The pack as the Pulumi CLI runs it (`python -m pulumi.policy`), driven over the gRPC Analyzer protocol."""

from __future__ import annotations

import copy
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from pgf_backup.automation import gate as gate_module
from pgf_backup.automation.gate import GateError, PolicyGate, Verdict, configs_for, tier_config
from pgf_backup.automation.offline import StackPlan, plan_stack
from pgf_backup.config import Iam
from pgf_backup.project import Project
from tests.policy import fixtures as f
from tests.policy.fixtures import BUCKET_NAME, DATA_TAGS, EXPECTED

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
SCHEDULE = "aws:scheduler/schedule:Schedule"


@pytest.fixture(scope="module")
def gate() -> Iterator[PolicyGate]:
    """One pack process for the whole module, as `pgf-backup plan` uses one for every stack."""
    with PolicyGate(POLICY_DIR) as running:
        yield running


@pytest.fixture(scope="module")
def shipped(project: Project, backup_outputs: dict[str, Any]) -> dict[str, StackPlan]:
    """The shipped backup, lab and prod stacks, recorded by the offline engine."""
    refs = {"organization/pgf-backup/backup": backup_outputs}
    return {stack: plan_stack(project, stack, refs) for stack in ("backup", "lab", "prod")}


def _verdict(gate: PolicyGate, project: Project, plan: StackPlan, resources: list[dict[str, Any]]) -> Verdict:
    mutated = StackPlan(plan.stack, plan.role, plan.account, resources, plan.outputs)
    return gate.check(mutated, project.name, project.load_config(plan.stack))


def _mutated(plan: StackPlan, kind: str, **changes: Any) -> list[dict[str, Any]]:
    """The stack's resources with `changes` applied to the inputs of every resource of `kind` (None removes)."""
    resources = copy.deepcopy(plan.resources)
    for resource in resources:
        if resource["type"] == kind:
            for key, value in changes.items():
                if value is None:
                    resource["inputs"].pop(key, None)
                else:
                    resource["inputs"][key] = value
    return resources


def _found(verdict: Verdict, policy: str) -> list[gate_module.Violation]:
    return [v for v in verdict.violations if v.policy == policy]


# ---------------------------------------------------------------------------------------------
# GetAnalyzerInfo


def test_analyzer_info_lists_every_rule(gate: PolicyGate) -> None:
    assert {p.name: (p.kind, p.enforcement) for p in gate.policies} == EXPECTED
    assert gate.pack_name == "pgf-backup"
    kms = next(p for p in gate.policies if p.name == "kms-key-hardening")
    assert kms.description.startswith("KMS keys rotate")
    assert set(kms.schema) == {"tier", "breakGlassRole", "deployRole"}
    assert kms.schema["breakGlassRole"]["default"] == "pgf-backup-break-glass"


# ---------------------------------------------------------------------------------------------
# Verdicts


@pytest.mark.parametrize("stack", ["backup", "lab", "prod"])
def test_shipped_stacks_pass(gate: PolicyGate, project: Project, shipped: dict[str, StackPlan], stack: str) -> None:
    plan = shipped[stack]
    cfg = project.load_config(stack)
    # With the other stacks' configs, as the plan gives them: the backup stack's restore testing is then checked.
    verdict = gate.check(plan, project.name, cfg, configs_for(project, cfg, {}))
    assert verdict.violations == () and verdict.passed
    assert verdict.to_json() == {"violations": [], "passed": True}


def test_prod_with_a_governance_lock_is_refused(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    verdict = _verdict(gate, project, prod, _mutated(prod, LOCK, changeableForDays=None))
    assert not verdict.passed
    locks = [r["urn"] for r in prod.resources if r["type"] == LOCK]
    found = _found(verdict, "vault-lock-compliance-in-prod")
    assert sorted(v.urn for v in found) == sorted(locks) and len(locks) == 3 * 2  # three vaults, two regions
    assert all(v.enforcement == "mandatory" and "governance mode" in v.message for v in found)
    assert verdict.violations == tuple(found)


def test_prod_vault_without_key_is_refused_on_its_urn(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    verdict = _verdict(gate, project, prod, _mutated(prod, VAULT, kmsKeyArn=None))
    found = _found(verdict, "vault-customer-managed-key")
    assert [v.urn for v in found] == [r["urn"] for r in prod.resources if r["type"] == VAULT]
    # The description prefix is stripped (order: the plan's, which is not fixed).
    assert any(v.message.startswith("vault pgf-prod has no kmsKeyArn") for v in found)


def test_protect_travels_in_the_resource_options(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    resources = copy.deepcopy(prod.resources)
    for resource in resources:
        resource["protect"] = False
    found = _found(_verdict(gate, project, prod, resources), "prod-stateful-resources-protected")
    stateful = {
        r["urn"] for r in prod.resources if r["type"] in (VAULT, "aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
    }
    assert {v.urn for v in found} == stateful and len(stateful) >= 4  # each region's vault and key, at least


def test_account_comes_from_the_provider(gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]) -> None:
    prod = shipped["prod"]
    resources = _mutated(prod, "pulumi:providers:aws", allowedAccountIds=None, assumeRoles=None)
    found = _found(_verdict(gate, project, prod, resources), "prod-copies-leave-account-and-region")
    assert found and all("cannot tell which account this plan runs in" in v.message for v in found)


def test_unknown_values_are_not_judged(gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]) -> None:
    prod = shipped["prod"]
    verdict = _verdict(gate, project, prod, _mutated(prod, VAULT, kmsKeyArn=UNKNOWN_STRING_VALUE))
    assert verdict.passed and verdict.violations == ()


def _provider_in(resources: list[dict[str, Any]], region: str) -> str:
    """The stack's AWS provider for `region` (the plan lists its providers in no fixed order)."""
    return next(
        r["urn"] for r in resources if r["type"] == "pulumi:providers:aws" and r["inputs"].get("region") == region
    )


def _with_bucket(plan: StackPlan, tags: dict[str, str]) -> list[dict[str, Any]]:
    resources = copy.deepcopy(plan.resources)
    provider = _provider_in(resources, f.REGION)
    resources.append(
        {
            "urn": f"urn:pulumi:{plan.stack}::pgf-backup::aws:s3/bucket:Bucket::scratch",
            "type": "aws:s3/bucket:Bucket",
            "name": "scratch",
            "parent": "",
            "provider": provider,
            "protect": False,
            "custom": True,
            "inputs": {"bucket": BUCKET_NAME, "tags": tags},
        }
    )
    return resources


def test_untagged_data_is_advisory_in_lab_and_mandatory_in_prod(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    lab = _verdict(gate, project, shipped["lab"], _with_bucket(shipped["lab"], {}))
    assert lab.passed and [(v.policy, v.enforcement) for v in lab.violations] == [("data-resources-tagged", "advisory")]
    prod = _verdict(gate, project, shipped["prod"], _with_bucket(shipped["prod"], {}))
    assert not prod.passed
    assert [(v.policy, v.enforcement) for v in prod.violations] == [("data-resources-tagged", "mandatory")]


def test_stack_rule_reports_the_protecting_resource(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    verdict = _verdict(gate, project, prod, _with_bucket(prod, {**DATA_TAGS, "application": "pgf"}))
    found = _found(verdict, "protected-bucket-prerequisites")
    assert len(found) == 4 and {v.urn for v in found} == {"urn:pulumi:prod::pgf-backup::aws:s3/bucket:Bucket::scratch"}


def _with_function(plan: StackPlan, **changes: Any) -> list[dict[str, Any]]:
    """The stack plus a scheduled function (the export functions' shape), `changes` applied to the function."""
    resources = copy.deepcopy(plan.resources)
    provider = _provider_in(resources, f.REGION)
    function = f.changed(f.FUNCTION, **changes)
    for kind, name, inputs in (("aws:lambda/function:Function", "ingest", function), (SCHEDULE, "daily", f.SCHEDULE)):
        resources.append(
            {
                "urn": f"urn:pulumi:{plan.stack}::pgf-backup::{kind}::{name}",
                "type": kind,
                "name": name,
                "parent": "",
                "provider": provider,
                "protect": False,
                "custom": True,
                "inputs": inputs,
            }
        )
    return resources


def test_a_scheduled_function_with_references_passes(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    verdict = _verdict(gate, project, prod, _with_function(prod))
    assert verdict.passed and verdict.violations == ()


def test_a_pulumi_secret_reaches_the_pack_as_its_value_and_is_refused(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    # What the CLI sends for a Pulumi secret (KeepSecrets): the pack unwraps it before the rule sees it.
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": "hunter2"}
    variables = {**f.FUNCTION["environment"]["variables"], "DB_PASSWORD": secret, "SETTINGS": "AKIAIOSFODNN7EXAMPLE"}
    prod = shipped["prod"]
    verdict = _verdict(gate, project, prod, _with_function(prod, environment={"variables": variables}))
    assert not verdict.passed
    found = _found(verdict, "lambda-no-plaintext-secrets")
    assert verdict.violations == tuple(found)
    assert [v.urn for v in found] == ["urn:pulumi:prod::pgf-backup::aws:lambda/function:Function::ingest"] * 2
    assert all(v.enforcement == "mandatory" and "Secrets Manager or SSM Parameter Store" in v.message for v in found)
    assert "DB_PASSWORD holds a secret in plain text" in found[0].message
    assert "SETTINGS holds what looks like an AWS access key id" in found[1].message
    assert not any("hunter2" in v.message or "AKIAIOSFODNN7EXAMPLE" in v.message for v in found)


def test_a_scheduled_function_without_dead_letter_queue_or_versions_is_advised(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    verdict = _verdict(gate, project, prod, _with_function(prod, deadLetterConfig=None, publish=None))
    assert verdict.passed
    function = "urn:pulumi:prod::pgf-backup::aws:lambda/function:Function::ingest"
    assert sorted((v.policy, v.enforcement, v.urn) for v in verdict.violations) == [
        ("lambda-dead-letter", "advisory", function),
        ("lambda-publishes-versions", "advisory", function),
    ]
    (dead_letter,) = _found(verdict, "lambda-dead-letter")
    assert "invoked asynchronously by the EventBridge Scheduler schedule daily" in dead_letter.message


def test_the_shipped_export_functions_once_their_alias_arns_are_known(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    # The offline engine records no alias ARN, so its schedules' targets are empty; AWS's are the alias ARNs.
    prod = shipped["prod"]
    resources = copy.deepcopy(prod.resources)
    schedules = [r for r in resources if r["type"] == SCHEDULE]
    functions = [r for r in resources if r["type"] == "aws:lambda/function:Function"]
    assert len(schedules) == len(functions) >= 1
    for schedule in schedules:
        name = schedule["inputs"]["name"]
        schedule["inputs"]["target"]["arn"] = f"arn:aws:lambda:{f.REGION}:{f.ACCOUNT}:function:{name}:live"
    assert _verdict(gate, project, prod, resources).violations == ()
    for function in functions:
        function["inputs"].pop("deadLetterConfig")
    found = _found(_verdict(gate, project, prod, resources), "lambda-dead-letter")
    assert sorted(v.urn for v in found) == sorted(r["urn"] for r in functions)
    assert all(v.enforcement == "advisory" for v in found)


def test_role_names_come_from_the_stack_config(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    cfg = project.load_config("prod").model_copy(update={"iam": Iam(break_glass_role="ops-emergency")})
    verdict = gate.check(prod, project.name, cfg)
    assert {v.policy for v in verdict.violations} == {"vault-denies-recovery-point-deletion", "kms-key-hardening"}
    assert all("ops-emergency" in v.message for v in verdict.violations)


def test_the_same_verdict_from_several_processes(
    project: Project, shipped: dict[str, StackPlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = shipped["prod"]
    resources = _mutated(prod, LOCK, changeableForDays=None)
    config = tier_config(POLICY_DIR, "prod")
    with PolicyGate(POLICY_DIR, max_processes=1) as single:
        one = single.analyze("prod", project.name, resources, config)
    monkeypatch.setattr(gate_module, "_RESOURCES_PER_PROCESS", 5)
    with PolicyGate(POLICY_DIR, max_processes=3) as several:
        many = several.analyze("prod", project.name, resources, config)
        assert len(several._packs) == 3  # one for AnalyzeStack, two sharing the Analyze calls
        processes = [pack.process for pack in several._packs]
    assert sorted(map(repr, many.violations)) == sorted(map(repr, one.violations)) and not one.passed
    # Stopped by the gate's SIGTERM (the pack keeps no state), none of them killed after the grace time.
    assert [p.returncode for p in processes] == [-signal.SIGTERM] * 3


# ---------------------------------------------------------------------------------------------
# Config and failures


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"vault-lock": "mandatory"}, "unknown policies vault-lock"),
        ({"all": "blocking"}, "enforcement level 'blocking' is not one of"),
        ({"kms-key-hardening": {"breakGlassRole": 7}}, "kms-key-hardening.breakGlassRole: 7 is not a string"),
        ({"kms-key-hardening": {"tier": "qa"}}, "'qa' is not one of lab, dev, prod"),
        ({"plan-within-quotas": {"tier": "prod"}}, "plan-within-quotas: unknown setting 'tier'"),
        ({"retention-within-tier-bounds": {"tierBounds": {"lab": {"minDays": 0}}}}, "minDays: 0 is below 1"),
        ({"retention-within-tier-bounds": {"tierBounds": {"prod": {"minDays": 30}}}}, "prod.minDays: 30 is below 35"),
    ],
)
def test_bad_policy_config_is_refused_before_analysis(gate: PolicyGate, config: dict[str, Any], expected: str) -> None:
    with pytest.raises(GateError, match=r"invalid policy config|unknown policies") as raised:
        gate.analyze("prod", "pgf-backup", [], config)
    assert expected in str(raised.value)


def test_all_sets_every_level(gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]) -> None:
    prod = shipped["prod"]
    resources = _mutated(prod, LOCK, changeableForDays=None)
    verdict = gate.analyze("prod", project.name, resources, {"all": "advisory"})
    assert verdict.passed and {v.enforcement for v in verdict.violations} == {"advisory"}
    disabled = gate.analyze("prod", project.name, resources, {"vault-lock-compliance-in-prod": "disabled"})
    assert disabled.violations == ()


def test_a_pack_that_cannot_start(tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text("import pgf_no_such_module\n")
    with PolicyGate(tmp_path) as broken, pytest.raises(GateError, match="did not start") as raised:
        broken.policies  # noqa: B018 - the first call waits for the port
    assert "No module named 'pgf_no_such_module'" in str(raised.value)


def test_a_folder_without_a_pack(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="no policy pack in"):
        PolicyGate(tmp_path)


def test_verdict_json_shape() -> None:
    violation = gate_module.Violation("p", "urn:x", "m", "advisory")
    assert Verdict("s", (violation,)).to_json() == {
        "violations": [{"policy": "p", "urn": "urn:x", "message": "m", "enforcement": "advisory"}],
        "passed": True,
    }
    assert json.dumps(Verdict("s").to_json()) == '{"violations": [], "passed": true}'


# ---------------------------------------------------------------------------------------------
# Evidence: restore testing covers prod, audit evidence in the backup account

RESTORE_TESTING_PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
RESTORE_TESTING_SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
FRAMEWORK = "aws:backup/framework:Framework"
REPORT_PLAN = "aws:backup/reportPlan:ReportPlan"
EVIDENCE_TYPES = (RESTORE_TESTING_PLAN, RESTORE_TESTING_SELECTION, FRAMEWORK, REPORT_PLAN)
# What the shipped prod stack protects that restore testing accepts: its services (the default list), S3 for its
# buckets, Aurora and RDS for its cluster and instance.
SHIPPED_PROD_TYPES = ["Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3"]
# The report templates the backup account must keep (ReportSetting.ReportTemplate's values but SCAN_JOB_REPORT).
REPORTS = [
    "BACKUP_JOB_REPORT",
    "COPY_JOB_REPORT",
    "RESTORE_JOB_REPORT",
    "CONTROL_COMPLIANCE_REPORT",
    "RESOURCE_COMPLIANCE_REPORT",
]


def _with_evidence(
    plan: StackPlan,
    types: list[str] = SHIPPED_PROD_TYPES,
    reports: list[str] = REPORTS,
    tier: str = "prod",
) -> list[dict[str, Any]]:
    """The stack without its own evidence resources, plus a restore testing plan tagged `tier` with a selection
    per type, a framework and a report plan per template, all placed with the provider of the primary region."""
    resources = [r for r in copy.deepcopy(plan.resources) if r["type"] not in EVIDENCE_TYPES]
    provider = _provider_in(resources, f.REGION)
    added: list[tuple[str, str, dict[str, Any]]] = [
        (
            RESTORE_TESTING_PLAN,
            "restore-tests",
            {
                "name": f"pgf_{tier}_restore_tests",
                "scheduleExpression": "cron(0 6 ? * SUN *)",
                "recoveryPointSelection": {
                    "algorithm": "LATEST_WITHIN_WINDOW",
                    "includeVaults": ["*"],
                    "recoveryPointTypes": ["SNAPSHOT"],
                },
                "tags": {"backup:tier": tier},
            },
        ),
        (
            FRAMEWORK,
            "framework",
            {"name": "pgf_backup", "controls": [{"name": "BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN"}]},
        ),
    ]
    added += [
        (
            RESTORE_TESTING_SELECTION,
            f"restore-tests-{kind.lower()}",
            {
                "name": f"pgf_{tier}_{kind.lower()}",
                "restoreTestingPlanName": f"pgf_{tier}_restore_tests",
                "protectedResourceType": kind,
                "iamRoleArn": f"arn:aws:iam::{plan.account}:role/pgf-backup-restore-testing",
                "protectedResourceArns": ["*"],
            },
        )
        for kind in types
    ]
    added += [
        (
            REPORT_PLAN,
            f"report-{template.lower()}",
            {
                "name": f"pgf_{template.lower()}",
                "reportDeliveryChannel": {"s3BucketName": "pgf-backup-reports", "formats": ["JSON"]},
                "reportSetting": {"reportTemplate": template},
            },
        )
        for template in reports
    ]
    for kind, name, inputs in added:
        resources.append(
            {
                "urn": f"urn:pulumi:{plan.stack}::pgf-backup::{kind}::{name}",
                "type": kind,
                "name": name,
                "parent": "",
                "provider": provider,
                "protect": False,
                "custom": True,
                "inputs": inputs,
            }
        )
    return resources


def _every_config(project: Project) -> dict[str, Any]:
    return {stack: project.load_config(stack) for stack in project.known_stacks()}


def _evidence_verdict(
    gate: PolicyGate, project: Project, plan: StackPlan, resources: list[dict[str, Any]], **changes: Any
) -> Verdict:
    """The verdict with the gate's settings from every stack's config (`changes` applied to prod's)."""
    configs = _every_config(project)
    configs["prod"] = configs["prod"].model_copy(update=changes)
    mutated = StackPlan(plan.stack, plan.role, plan.account, resources, plan.outputs)
    return gate.check(mutated, project.name, configs[plan.stack], configs)


def test_the_evidence_policies_declare_their_settings(gate: PolicyGate) -> None:
    by_name = {p.name: p for p in gate.policies}
    restore = by_name["restore-testing-covers-prod"]
    assert (restore.kind, restore.enforcement) == ("stack", "mandatory")
    assert set(restore.schema) == {"tier", "restoreTesting"}
    prod = restore.schema["restoreTesting"]["properties"]["prod"]["properties"]
    assert prod["location"]["enum"] == [gate_module.TESTS_IN_BACKUP_ACCOUNT, gate_module.TESTS_IN_WORKLOAD]
    assert set(by_name["audit-evidence-present"].schema) == {"tier"}


def test_the_backup_stack_with_restore_testing_and_audit_evidence_passes(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    backup = shipped["backup"]
    verdict = _evidence_verdict(gate, project, backup, _with_evidence(backup))
    assert verdict.violations == () and verdict.passed


def test_the_backup_stack_missing_a_tested_type_and_a_report_is_refused(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    backup = shipped["backup"]
    types = [t for t in SHIPPED_PROD_TYPES if t != "EBS"]
    resources = _with_evidence(backup, types, [r for r in REPORTS if r != "RESTORE_JOB_REPORT"])
    verdict = _evidence_verdict(gate, project, backup, resources)
    assert not verdict.passed
    assert sorted((v.policy, v.enforcement, v.urn) for v in verdict.violations) == [
        ("audit-evidence-present", "mandatory", ""),
        ("restore-testing-covers-prod", "mandatory", ""),
    ]
    (restore,) = _found(verdict, "restore-testing-covers-prod")
    assert restore.message.startswith(
        "prod protects Aurora, DynamoDB, EBS, EFS, RDS, S3 (stack prod) and is restore-tested in the backup account, "
        "but this stack has no restore testing selection of EBS under a restore testing plan tagged backup:tier=prod"
    )
    assert "`restore_testing.prod` in Pulumi.backup.yaml" in restore.message
    (audit,) = _found(verdict, "audit-evidence-present")
    assert "no report plan (aws.backup.ReportPlan) of restore jobs (RESTORE_JOB_REPORT)" in audit.message


def test_selections_under_a_dev_plan_do_not_cover_prod(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    backup = shipped["backup"]
    verdict = _evidence_verdict(gate, project, backup, _with_evidence(backup, tier="dev"))
    (restore,) = verdict.violations
    assert restore.policy == "restore-testing-covers-prod"
    assert "no restore testing selection of Aurora, DynamoDB, EBS, EFS, RDS, S3 under" in restore.message


def test_prod_tested_in_its_own_account_is_checked_in_the_prod_stack(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    from pgf_backup.config.restore_testing import RestoreTesting

    backup, prod = shipped["backup"], shipped["prod"]
    here = {"restore_testing": RestoreTesting()}
    # The backup account no longer tests prod's types; the prod stack must.
    assert _evidence_verdict(gate, project, backup, _with_evidence(backup, types=[]), **here).violations == ()
    verdict = _evidence_verdict(gate, project, prod, copy.deepcopy(prod.resources), **here)
    (restore,) = verdict.violations
    assert (restore.policy, restore.enforcement) == ("restore-testing-covers-prod", "mandatory")
    assert "is restore-tested in its own account" in restore.message
    assert "`restore_testing` in its stack file" in restore.message
    tested = [r for r in _with_evidence(prod) if r["type"] not in (FRAMEWORK, REPORT_PLAN)]
    assert _evidence_verdict(gate, project, prod, tested, **here).violations == ()
    # Tested in the backup account (the default), the prod stack has nothing to show.
    assert _evidence_verdict(gate, project, prod, copy.deepcopy(prod.resources)).violations == ()


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"prod": {"location": "elsewhere", "types": []}}, "restoreTesting.prod.location: 'elsewhere' is not one of"),
        ({"prod": {"location": "workload", "types": ["Redshift"]}}, "restoreTesting.prod.types[0]: 'Redshift'"),
    ],
)
def test_a_bad_restore_testing_setting_is_refused_before_analysis(
    gate: PolicyGate, setting: dict[str, Any], expected: str
) -> None:
    with pytest.raises(GateError, match="invalid policy config") as raised:
        gate.analyze("backup", "pgf-backup", [], {"restore-testing-covers-prod": {"restoreTesting": setting}})
    assert expected in str(raised.value)


# ---------------------------------------------------------------------------------------------
# selections-disjoint (through the analyzer's gRPC protocol)

SELECTION = "aws:backup/selection:Selection"


def _without_not_equals(plan: StackPlan, selection: str) -> list[dict[str, Any]]:
    """prod's resources with the StringNotEquals conditions of one selection dropped."""
    resources = copy.deepcopy(plan.resources)
    for resource in resources:
        if resource["type"] == SELECTION and resource["inputs"]["name"] == selection:
            for block in resource["inputs"]["conditions"]:
                block.pop("stringNotEquals", None)
    return resources


def test_prod_routing_selections_are_disjoint(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    # Several plans (two retention classes, two vaults per criticality), and no overlap between them.
    assert len({r["parent"] for r in prod.resources if r["type"] == SELECTION}) >= 6
    assert _found(_verdict(gate, project, prod, prod.resources), "selections-disjoint") == []


def test_an_overlapping_selection_is_refused_naming_both(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    # Without its exclusions, the default plan's tag selection also matches what the 90-day class selects.
    verdict = _verdict(gate, project, prod, _without_not_equals(prod, "pgf-prod-tagged"))
    assert not verdict.passed
    found = _found(verdict, "selections-disjoint")
    assert found and all(v.enforcement == "mandatory" for v in found)
    assert any("pgf-prod-90d-tagged and pgf-prod-tagged belong to different plans" in v.message for v in found)


def test_a_listed_arn_in_two_plans_is_refused(
    gate: PolicyGate, project: Project, shipped: dict[str, StackPlan]
) -> None:
    prod = shipped["prod"]
    resources = copy.deepcopy(prod.resources)
    listed = next(r for r in resources if r["type"] == SELECTION and r["inputs"]["name"] == "pgf-prod-files-raw-listed")
    other = next(r for r in resources if r["type"] == SELECTION and r["inputs"]["name"] == "pgf-prod-listed")
    # The default plan lists the bucket too, and no longer excludes it (NotResources wins within a selection).
    other["inputs"]["resources"] = [*other["inputs"]["resources"], *listed["inputs"]["resources"]]
    other["inputs"]["notResources"] = [
        arn for arn in other["inputs"]["notResources"] if arn not in listed["inputs"]["resources"]
    ]
    found = _found(_verdict(gate, project, prod, resources), "selections-disjoint")
    assert any("arn:aws:s3:::pgf-documents-prod" in v.message for v in found)
