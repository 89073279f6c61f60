"""Per-stack assembly: the real program evaluated for each shipped stack file."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from pgf_backup.project import Project

Plan = dict[str, Any]


def _of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _providers(plan: Plan) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in _of_type(plan, "pulumi:providers:aws")}


def test_prod_vaults_locked_in_compliance_mode_and_protected(run_stack: Callable[[str], Plan]) -> None:
    plan = run_stack("prod")
    locks = _of_type(plan, "aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    assert len(locks) == 3 * 2  # prod, files-raw and files-processed, each in the primary and the copy region
    assert all(lock["inputs"]["changeableForDays"] == 3 for lock in locks)
    assert all(lock["inputs"]["minRetentionDays"] >= 35 for lock in locks)
    for type_ in ("aws:backup/vault:Vault", "aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
        resources = _of_type(plan, type_)
        assert resources and all(r["protect"] and r["retainOnDelete"] for r in resources), type_


def test_keys_are_multi_region_when_copied(run_stack: Callable[[str], Plan]) -> None:
    plan = run_stack("prod")
    (primary,) = [k for k in _of_type(plan, "aws:kms/key:Key") if k["name"] == "prod-ca-central-1-key"]
    (replica,) = [k for k in _of_type(plan, "aws:kms/replicaKey:ReplicaKey") if k["name"].startswith("prod-")]
    assert primary["inputs"]["multiRegion"] is True
    providers = _providers(plan)
    assert providers[primary["provider"]]["inputs"]["region"] == "ca-central-1"
    assert providers[replica["provider"]]["inputs"]["region"] == "ca-west-1"
    assert replica["inputs"]["primaryKeyArn"].startswith("arn:aws:kms:ca-central-1:400000000040:key/mrk-")


def test_single_region_keys_are_not_multi_region(
    run_stack: Callable[..., Plan], project: Project, tmp_path: Any
) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((project.root / name).read_text())
    # The lab stack file's regions replace Pulumi.yaml's whole: no copy region.
    text = (project.root / "Pulumi.lab.yaml").read_text()
    text = text.replace("config:\n", "config:\n  pgf-backup:regions:\n    primary: ca-central-1\n", 1)
    (tmp_path / "Pulumi.lab.yaml").write_text(text)
    plan = run_stack("lab", Project.find(tmp_path))
    (key,) = [k for k in _of_type(plan, "aws:kms/key:Key") if k["name"] == "lab-ca-central-1-key"]
    assert key["inputs"]["multiRegion"] is False
    assert not _of_type(plan, "aws:kms/replicaKey:ReplicaKey")
    assert list(plan["outputs"]["vaults"]["lab"]) == ["ca-central-1"]


def test_lab_vaults_governance_and_unprotected(run_stack: Callable[[str], Plan]) -> None:
    plan = run_stack("lab")
    locks = _of_type(plan, "aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    assert locks and all("changeableForDays" not in lock["inputs"] for lock in locks)
    assert not any(r["protect"] for r in plan["resources"])


@pytest.mark.parametrize(("stack", "account"), [("backup", "100000000010"), ("dev", "300000000030")])
def test_every_resource_on_an_explicit_provider(run_stack: Callable[[str], Plan], stack: str, account: str) -> None:
    plan = run_stack(stack)
    providers = _providers(plan)
    assert providers
    for provider in providers.values():
        inputs = provider["inputs"]
        assert json.loads(inputs["allowedAccountIds"]) == [account]
        (assume,) = json.loads(inputs["assumeRoles"])
        assert assume["roleArn"] == f"arn:aws:iam::{account}:role/pgf-backup-deploy"
        tags = json.loads(inputs["defaultTags"])["tags"]
        assert tags["application"] == "pgf" and tags["data:classification"]
    custom = [r for r in plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    assert custom and all(r["provider"] in providers for r in custom)


def test_backup_account_hosts_a_vault_per_tier_and_region(run_stack: Callable[[str], Plan]) -> None:
    plan = run_stack("backup")
    vaults = _of_type(plan, "aws:backup/vault:Vault")
    # The tier vaults, and prod's vaults per criticality (the twins of the prod stack's routed vaults).
    names = ["pgf-lab", "pgf-dev", "pgf-prod", "pgf-files-raw", "pgf-files-processed"]
    assert sorted(v["inputs"]["name"] for v in vaults) == sorted(names * 2)
    outputs = plan["outputs"]["vaults"]
    assert set(outputs) == {"lab", "dev", "prod", "files-raw", "files-processed"}
    for tier, by_region in outputs.items():
        assert set(by_region) == {"ca-central-1", "ca-west-1"}
        for region, vault in by_region.items():
            assert vault["arn"] == f"arn:aws:backup:{region}:100000000010:backup-vault:pgf-{tier}"
            assert vault["kms_key_arn"].startswith(f"arn:aws:kms:{region}:100000000010:key/")
    # Every vault of the prod tier is protected, and only those.
    prod_tier = {"pgf-prod", "pgf-files-raw", "pgf-files-processed"}
    assert all(v["protect"] for v in vaults if v["inputs"]["name"] in prod_tier)
    assert not any(v["protect"] for v in vaults if v["inputs"]["name"] not in prod_tier)
    policies = [json.loads(p["inputs"]["policy"]) for p in _of_type(plan, "aws:backup/vaultPolicy:VaultPolicy")]
    for policy in policies:
        sids = {s["Sid"]: s for s in policy["Statement"]}
        assert sids["CopyIntoVaultFromTheOrganization"]["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == (
            "o-pgfexample01"
        )


def test_outputs_name_the_vaults(run_stack: Callable[[str], Plan]) -> None:
    outputs = run_stack("prod")["outputs"]
    assert outputs["role"] == "workload" and outputs["account_id"] == "400000000040"
    vault = outputs["vaults"]["prod"]["ca-central-1"]
    assert vault["name"] == "pgf-prod"
    assert vault["arn"] == "arn:aws:backup:ca-central-1:400000000040:backup-vault:pgf-prod"


def test_bad_stack_file_exits_2_from_the_program(
    run_stack: Callable[..., Plan], project: Project, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((project.root / name).read_text())
    text = (project.root / "Pulumi.prod.yaml").read_text()
    text = text.replace("config:\n", "config:\n  pgf-backup:regions:\n    primary: ca-central-2\n", 1)
    (tmp_path / "Pulumi.prod.yaml").write_text(text)
    with pytest.raises(SystemExit) as exit_:
        run_stack("prod", Project.find(tmp_path))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "pgf-backup:regions.primary: 'ca-central-2'" in err and "did you mean 'ca-central-1'" in err
    assert "Traceback" not in err


def _key_statements(plan: Plan, name: str) -> dict[str, dict[str, Any]]:
    keys = _of_type(plan, "aws:kms/key:Key") + _of_type(plan, "aws:kms/replicaKey:ReplicaKey")
    (key,) = [k for k in keys if k["name"] == name]
    return {s["Sid"]: s for s in json.loads(key["inputs"]["policy"])["Statement"]}


def test_restore_path_back_from_the_backup_account(run_stack: Callable[[str], Plan]) -> None:
    """A copy from a central vault back into a workload vault: both sides, and a role to run it."""
    backup = run_stack("backup")
    # The central prod keys admit the prod account (the destination of the copy back), and only it.
    for region in ("ca-central-1", "ca-west-1"):
        copies = _key_statements(backup, f"prod-{region}-key")["CrossAccountCopiesByDestinationAccounts"]
        assert copies["Principal"] == {"AWS": ["arn:aws:iam::400000000040:root"]}
    assert "CrossAccountCopiesByDestinationAccounts" in _key_statements(backup, "lab-ca-central-1-key")
    lab = _key_statements(backup, "lab-ca-central-1-key")["CrossAccountCopiesByDestinationAccounts"]
    assert lab["Principal"] == {"AWS": ["arn:aws:iam::200000000020:root"]}
    # The backup account has the service role its copy jobs run with.
    roles = {r["inputs"]["name"] for r in _of_type(backup, "aws:iam/role:Role")}
    assert "pgf-backup-service-role" in roles
    assert backup["outputs"]["service_role_arn"] == "arn:aws:iam::100000000010:role/pgf-backup-service-role"
    # The workload vaults accept copies from the backup account (and from no one else).
    prod = run_stack("prod")
    for policy in _of_type(prod, "aws:backup/vaultPolicy:VaultPolicy"):
        sids = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
        copy_in = sids["CopyIntoVaultFromAccounts"]
        assert copy_in["Principal"] == {"AWS": ["arn:aws:iam::100000000010:root"]}
        assert copy_in["Action"] == "backup:CopyIntoBackupVault"
        assert "CopyIntoVaultFromTheOrganization" not in sids
