"""`pgf-backup plan` gated by the policy pack: verdicts printed per stack, in --json, and in the exit code."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

from pgf_backup.automation.cli import main
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project

COMPLIANCE_LOCK = "lock: {mode: compliance, min_retention_days: 35, max_retention_days: 3650, changeable_for_days: 3}"
GOVERNANCE_LOCK = "lock: {mode: governance, min_retention_days: 35, max_retention_days: 3650}"
LAB_GOVERNANCE_LOCK = "lock: {mode: governance, min_retention_days: 7, max_retention_days: 14}"
LAB_COMPLIANCE_LOCK = "lock: {mode: compliance, min_retention_days: 7, max_retention_days: 14, changeable_for_days: 3}"
LOCK_URN = (
    "urn:pulumi:prod::pgf-backup::pgf:backup:BackupVault$"
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration::prod-ca-central-1-lock"
)


def _copy(project: Project, target: Path) -> Path:
    """The project's stack files, program and policy pack (the packages come from the virtualenv)."""
    for path in project.root.glob("Pulumi*.yaml"):
        shutil.copy(path, target / path.name)
    shutil.copy(project.root / "__main__.py", target / "__main__.py")
    shutil.copytree(project.root / "policy", target / "policy", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}"
    path.write_text(text.replace(old, new))


def _plan(root: Path, *argv: str) -> tuple[int, str, str, dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    path = root / "plan.json"
    status = main(["--project-dir", str(root), "plan", "--verbose", *argv, "--json", str(path)], out=out, err=err)
    document = json.loads(path.read_text()) if path.is_file() else {}
    return int(status), out.getvalue(), err.getvalue(), document


def _policy(document: dict[str, Any], stack: str) -> dict[str, Any]:
    policy: dict[str, Any] = next(s for s in document["stacks"] if s["stack"] == stack)["policy"]
    return policy


def test_shipped_stacks_pass_the_gate(project: Project, tmp_path: Path) -> None:
    status, out, err, document = _plan(_copy(project, tmp_path), "--all")
    assert status == ExitStatus.OK, err
    assert out.count("   policy: passed (0 mandatory, 0 other violations)") == 4
    for stack in ("backup", "lab", "dev", "prod"):
        assert _policy(document, stack) == {"violations": [], "passed": True}


def test_governance_lock_in_prod_exits_1_naming_rule_and_urn(project: Project, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    _replace(root / "Pulumi.prod.yaml", COMPLIANCE_LOCK, GOVERNANCE_LOCK)
    status, out, err, document = _plan(root, "--stack", "prod")
    assert status == ExitStatus.FAILED
    assert "policy: REFUSED (6 mandatory, 0 other violations)" in out  # three vaults, two regions
    assert f"[mandatory] vault-lock-compliance-in-prod: {LOCK_URN}" in out
    assert "error: the policy pack refuses stack(s) prod" in err
    policy = _policy(document, "prod")
    assert policy["passed"] is False
    assert {
        "policy": "vault-lock-compliance-in-prod",
        "urn": LOCK_URN,
        "message": "vault pgf-prod (prod) is locked in governance mode, which privileged users can remove: "
        "set changeableForDays (>= 3) for compliance mode",
        "enforcement": "mandatory",
    } in policy["violations"]


def test_advisory_violations_are_printed_but_do_not_fail(project: Project, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    _replace(root / "Pulumi.lab.yaml", LAB_GOVERNANCE_LOCK, LAB_COMPLIANCE_LOCK)
    lab_config = root / "policy" / "config" / "lab.json"
    config = json.loads(lab_config.read_text())
    config["vault-lock-compliance-in-prod"]["enforcementLevel"] = "advisory"
    lab_config.write_text(json.dumps(config))
    status, out, err, document = _plan(root, "--stack", "lab")
    assert status == ExitStatus.OK, err
    assert "policy: passed (0 mandatory, 2 other violations)" in out
    assert "[advisory] vault-lock-compliance-in-prod" in out and "compliance-mode lock" in out
    assert _policy(document, "lab")["passed"] is True


def test_a_broken_pack_fails_the_plan_with_its_error(project: Project, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    (root / "policy" / "__main__.py").write_text("raise RuntimeError('pack exploded')\n")
    status, _, err, document = _plan(root, "--stack", "lab")
    assert status == ExitStatus.FAILED
    assert err.startswith("error: policy gate: the policy pack did not start")
    assert "pack exploded" in err and document == {}


def test_a_bad_policy_config_file_names_the_problem(project: Project, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    (root / "policy" / "config" / "lab.json").write_text('{"kms-key-hardening": {"tier": "qa"}}')
    status, _, err, _ = _plan(root, "--stack", "lab")
    assert status == ExitStatus.FAILED
    assert "invalid policy config" in err and "kms-key-hardening.tier: 'qa' is not one of lab, dev, prod" in err
