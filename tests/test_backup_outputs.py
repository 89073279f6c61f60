"""What a workload stack needs from the backup stack's outputs (checked by the program and the driver)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgf_backup import backup_outputs as wiring
from pgf_backup.project import Project
from tests.conftest import config_of, stack_values


def _copy(outputs: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(outputs))
    return copied


def test_the_shipped_outputs_serve_every_workload(project: Project, backup_outputs: dict[str, Any]) -> None:
    for stack in ("lab", "dev", "prod"):
        assert wiring.problems(project.load_config(stack), backup_outputs) == []


def test_a_copy_its_central_lock_would_refuse(project: Project, backup_outputs: dict[str, Any]) -> None:
    outputs = _copy(backup_outputs)
    outputs["central_vaults"]["dev"]["ca-central-1"]["lock"] = {"min": 10.0, "max": 14.0}  # floats, as sent
    assert wiring.problems(project.load_config("dev"), outputs) == [
        "plan.rules.daily: a copy kept 7 days lands in "
        "arn:aws:backup:ca-central-1:100000000010:backup-vault:pgf-dev, whose lock allows 10-14 days; "
        "AWS Backup would fail the copy",
        "plan.continuous: a copy kept 7 days lands in "
        "arn:aws:backup:ca-central-1:100000000010:backup-vault:pgf-dev, whose lock allows 10-14 days; "
        "AWS Backup would fail the copy",
    ]


def test_only_the_targets_the_plan_copies_to_are_needed(project: Project, backup_outputs: dict[str, Any]) -> None:
    outputs = {**_copy(backup_outputs), "air_gapped_vaults": {}}
    assert wiring.problems(project.load_config("lab"), outputs) == []
    assert wiring.problems(project.load_config("prod"), outputs) == ["output 'air_gapped_vaults.prod.arn' is missing"]


def test_another_backup_account(project: Project, backup_outputs: dict[str, Any]) -> None:
    outputs = {**_copy(backup_outputs), "account_id": "999999999999"}
    assert wiring.problems(project.load_config("lab"), outputs) == [
        "output 'account_id' is 999999999999, but this stack's accounts.backup is 100000000010"
    ]


def test_organization_mode_vault_name_must_match_the_policy(project: Project) -> None:
    values = stack_values(project, "prod")
    values["pgf-backup:scheduling"] = "organization"
    del values["pgf-backup:plan"]
    cfg = config_of(values)
    outputs = {"account_id": "100000000010", "backup_policies": {"prod": {"vault_name": "pgf-prod-central"}}}
    assert wiring.problems(cfg, outputs) == [
        "vaults.prod.name: the prod BACKUP_POLICY writes to vault 'pgf-prod-central' but this stack names it "
        "'pgf-prod'; use the same name"
    ]
    outputs["backup_policies"]["prod"]["vault_name"] = "pgf-prod"
    assert wiring.problems(cfg, outputs) == []


def test_the_backup_stacks_outputs_are_what_the_model_reads(backup_outputs: dict[str, Any]) -> None:
    """The backup stack writes what `BackupStackOutputs` names: every central vault with its ARN, key and lock."""
    from pgf_backup.backup_outputs import read

    typed = read(backup_outputs)
    assert typed.account_id == "100000000010"
    assert typed.service_role_arn == "arn:aws:iam::100000000010:role/pgf-backup-service-role"
    for tier in ("lab", "dev", "prod"):
        for region in ("ca-central-1", "ca-west-1"):
            _, arn, lock = typed.destination("backup_account", tier, region)
            assert arn == f"arn:aws:backup:{region}:100000000010:backup-vault:pgf-{tier}"
            assert lock is not None and lock.min >= 7
    path, arn, lock = typed.destination("air_gapped", "prod", "ca-central-1")
    assert (path, lock) == (
        "air_gapped_vaults.prod",
        read({"air_gapped_vaults": {"prod": {"lock": {"min": 35, "max": 3650}}}}).air_gapped_vaults["prod"].lock,
    )
    assert arn and arn.endswith(":backup-vault:pgf-prod-air-gapped")


def test_outputs_of_the_wrong_shape_are_named() -> None:
    from pgf_backup.backup_outputs import read

    with pytest.raises(ValueError, match=r"output 'central_vaults\.prod' is not what the backup stack exports"):
        read({"central_vaults": {"prod": "arn:aws:backup:..."}})
