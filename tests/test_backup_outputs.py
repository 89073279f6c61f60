"""What a workload stack needs from the backup stack's outputs (checked by the program and the driver)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgf_backup import availability
from pgf_backup import backup_outputs as wiring
from pgf_backup.project import Project
from tests.conftest import config_of, stack_values

BACKUP = "100000000010"
SINKS = {r: f"arn:aws:oam:{r}:{BACKUP}:sink/{i}" for i, r in enumerate(("ca-central-1", "ca-west-1"))}
SINK_HINT = (
    "(the backup stack exports its sinks with dashboards.enabled and dashboards.cross_account on; or set "
    "dashboards.cross_account: false in this stack)"
)
REPORTS_HINT = (
    "(this stack's restore_testing writes its evidence to the backup account's reports bucket: turn on the backup "
    "stack's audit, or turn off restore_testing in this stack)"
)


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
    outputs = {
        "account_id": "100000000010",
        "backup_policies": {"prod": {"vault_name": "pgf-prod-central"}},
        "dashboards": {"sinks": SINKS},
    }
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


def test_the_backup_stack_exports_the_sinks_and_the_reports_bucket(backup_outputs: dict[str, Any]) -> None:
    """What the workload stacks' links and restore tests read, through the model."""
    typed = wiring.read(backup_outputs)
    assert typed.dashboards is not None
    assert set(typed.dashboards.sinks) == {"ca-central-1", "ca-west-1"}
    for region in ("ca-central-1", "ca-west-1"):
        assert typed.sink_arn(region) == backup_outputs["dashboards"]["sinks"][region]
        assert str(typed.sink_arn(region)).startswith(f"arn:aws:oam:{region}:{BACKUP}:sink/")
    assert typed.sink_arn("us-east-1") is None
    assert typed.audit is not None
    assert typed.audit.reports_bucket == f"pgf-backup-reports-{BACKUP}"
    assert str(typed.audit.key_arn).startswith(f"arn:aws:kms:ca-central-1:{BACKUP}:key/")


def test_missing_sinks_are_named_per_region(project: Project, backup_outputs: dict[str, Any]) -> None:
    cfg = project.load_config("lab")
    without = {k: v for k, v in _copy(backup_outputs).items() if k != "dashboards"}
    assert wiring.problems(cfg, without) == [
        f"output 'dashboards.sinks.ca-central-1' is missing {SINK_HINT}",
        f"output 'dashboards.sinks.ca-west-1' is missing {SINK_HINT}",
    ]
    one = _copy(backup_outputs)
    del one["dashboards"]["sinks"]["ca-west-1"]
    assert wiring.problems(cfg, one) == [f"output 'dashboards.sinks.ca-west-1' is missing {SINK_HINT}"]


def test_sinks_are_needed_only_where_the_stack_links(
    project: Project, backup_outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    without = {k: v for k, v in _copy(backup_outputs).items() if k != "dashboards"}
    for dashboards in ({"enabled": True, "cross_account": False}, {"enabled": False}):
        values = stack_values(project, "lab")
        values["pgf-backup:dashboards"] = dashboards
        assert wiring.problems(config_of(values), without) == []
    # No link where CloudWatch cross-account observability is not offered (the observability builder's rule).
    monkeypatch.setattr(availability, "oam_regions", lambda: frozenset({"ca-central-1"}))
    assert wiring.problems(project.load_config("lab"), without) == [
        f"output 'dashboards.sinks.ca-central-1' is missing {SINK_HINT}"
    ]


def test_restore_testing_in_a_workload_needs_the_reports_bucket(
    project: Project, backup_outputs: dict[str, Any]
) -> None:
    values = stack_values(project, "prod")
    values["pgf-backup:restore_testing"] = {"resource_types": ["S3", "DynamoDB"]}
    testing = config_of(values)
    assert wiring.problems(testing, backup_outputs) == []
    without = {k: v for k, v in _copy(backup_outputs).items() if k != "audit"}
    assert wiring.problems(testing, without) == [
        f"output 'audit.reports_bucket' is missing {REPORTS_HINT}",
        f"output 'audit.key_arn' is missing {REPORTS_HINT}",
    ]
    no_key = _copy(backup_outputs)
    del no_key["audit"]["key_arn"]
    assert wiring.problems(testing, no_key) == [f"output 'audit.key_arn' is missing {REPORTS_HINT}"]
    # Without restore testing in the workload account, nothing of the audit is read.
    assert wiring.problems(project.load_config("prod"), without) == []
    values["pgf-backup:restore_testing"] = {"enabled": False}
    assert wiring.problems(config_of(values), without) == []


def test_new_outputs_of_the_wrong_shape_are_named() -> None:
    with pytest.raises(ValueError, match=r"output 'dashboards\.sinks\.ca-central-1' is not what the backup stack"):
        wiring.read({"dashboards": {"sinks": {"ca-central-1": {"arn": "arn:aws:oam:..."}}}})
    with pytest.raises(ValueError, match=r"output 'audit' is not what the backup stack exports"):
        wiring.read({"audit": "pgf-backup-reports-100000000010"})


def test_the_workload_restore_tests_read_the_reports_bucket_through_the_model(backup_outputs: dict[str, Any]) -> None:
    from pgf_backup.builders import restore_testing

    bucket, key = restore_testing._reports_of(backup_outputs)
    assert (bucket, key) == (backup_outputs["audit"]["reports_bucket"], backup_outputs["audit"]["key_arn"])
    # No default bucket name or wildcard key any more: `problems` has refused such outputs before this runs.
    with pytest.raises(ValueError, match=r"does not export audit\.reports_bucket and audit\.key_arn"):
        restore_testing._reports_of({"audit": {"reports_bucket": bucket}})
