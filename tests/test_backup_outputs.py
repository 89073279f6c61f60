"""What a workload stack needs from the backup stack's outputs (checked by the program and the driver)."""

from __future__ import annotations

import json
from typing import Any

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
