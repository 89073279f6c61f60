"""The gate's `restoreTesting` setting: what prod protects and where its restore tests run, from the stack files, to
the backup stack and the prod stack alike (offline plan and live preview)."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgf_backup.automation import live, preflight
from pgf_backup.automation.cli import main
from pgf_backup.automation.gate import (
    TESTS_IN_BACKUP_ACCOUNT,
    TESTS_IN_WORKLOAD,
    GateError,
    PolicyGate,
    PolicyInfo,
    configs_for,
    pack_config,
    reconcile,
    restore_tested_types,
    restore_testing_settings,
    stack_settings,
)
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import StackConfig, WorkloadStack
from pgf_backup.config.restore_testing import RestoreTesting
from pgf_backup.config.sections import Bucket, Database, Exports
from pgf_backup.constants import RESTORE_TESTING_TYPES
from pgf_backup.project import Project
from tests.automation.test_live import FakeBackend, live_pack_config

POLICY = "restore-testing-covers-prod"
# The shipped prod stack: the default services, S3 for its buckets, Aurora and RDS for its cluster and instance.
SHIPPED_PROD_TYPES = ["Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3"]


@pytest.fixture(scope="module")
def configs(project: Project) -> dict[str, StackConfig]:
    return {stack: project.load_config(stack) for stack in project.known_stacks()}


@pytest.fixture(scope="module")
def policies(project: Project) -> Iterator[list[PolicyInfo]]:
    with PolicyGate(project.root / "policy") as gate:
        yield gate.policies


def _prod(configs: dict[str, StackConfig], **changes: Any) -> WorkloadStack:
    prod = configs["prod"]
    assert isinstance(prod, WorkloadStack)
    return prod.model_copy(update=changes)


# ---------------------------------------------------------------------------------------------
# What a workload stack protects that restore testing accepts


def test_the_shipped_prod_stack_types(configs: dict[str, StackConfig]) -> None:
    assert restore_tested_types(_prod(configs)) == SHIPPED_PROD_TYPES


def test_services_restore_testing_does_not_accept_are_left_out(configs: dict[str, StackConfig]) -> None:
    assert "Redshift" not in RESTORE_TESTING_TYPES
    bare = _prod(configs, services=("Redshift", "DynamoDB", "Neptune"), buckets={}, databases={}, exports=None)
    assert restore_tested_types(bare) == ["DynamoDB", "Neptune"]


def test_buckets_exports_and_databases_add_their_types(configs: dict[str, StackConfig]) -> None:
    bare = _prod(configs, services=("DynamoDB",), buckets={}, databases={}, exports=None)
    assert restore_tested_types(bare) == ["DynamoDB"]
    unbacked = Bucket(classification="public", backup=False)
    assert restore_tested_types(bare.model_copy(update={"buckets": {"pgf-public": unbacked}})) == ["DynamoDB"]
    backed = Bucket(classification="internal")
    assert restore_tested_types(bare.model_copy(update={"buckets": {"pgf-reports": backed}})) == ["DynamoDB", "S3"]
    exports = Exports(bucket="pgf-exports-400000000040")
    assert restore_tested_types(bare.model_copy(update={"exports": exports})) == ["DynamoDB", "S3"]
    instance = bare.model_copy(update={"databases": {"pgf-audit": Database(kind="instance")}})
    assert restore_tested_types(instance) == ["DynamoDB", "RDS"]
    cluster = bare.model_copy(update={"databases": {"pgf-core": Database(kind="cluster")}})
    assert restore_tested_types(cluster) == ["Aurora", "DynamoDB"]


# ---------------------------------------------------------------------------------------------
# The setting each stack gets


def test_the_backup_stack_learns_prods_types_from_the_prod_stack_file(configs: dict[str, StackConfig]) -> None:
    assert stack_settings(configs["backup"], configs)["restoreTesting"] == {
        "prod": {"location": TESTS_IN_BACKUP_ACCOUNT, "types": SHIPPED_PROD_TYPES, "stacks": ["prod"]}
    }


def test_the_prod_stack_describes_itself(configs: dict[str, StackConfig]) -> None:
    expected = {"prod": {"location": TESTS_IN_BACKUP_ACCOUNT, "types": SHIPPED_PROD_TYPES}}
    assert stack_settings(configs["prod"])["restoreTesting"] == expected
    assert stack_settings(configs["prod"], configs)["restoreTesting"] == expected


@pytest.mark.parametrize("stack", ["lab", "dev"])
def test_other_tiers_get_no_setting(configs: dict[str, StackConfig], stack: str) -> None:
    assert "restoreTesting" not in stack_settings(configs[stack], configs)


def test_without_the_other_configs_the_backup_stack_gets_no_setting(configs: dict[str, StackConfig]) -> None:
    assert "restoreTesting" not in stack_settings(configs["backup"])
    without_prod = {name: cfg for name, cfg in configs.items() if name != "prod"}
    assert restore_testing_settings(configs["backup"], without_prod) == {}


def test_prod_testing_in_its_own_account_moves_the_check_there(configs: dict[str, StackConfig]) -> None:
    here = {**configs, "prod": _prod(configs, restore_testing=RestoreTesting())}
    assert restore_testing_settings(here["prod"]) == {
        "prod": {"location": TESTS_IN_WORKLOAD, "types": SHIPPED_PROD_TYPES}
    }
    assert restore_testing_settings(here["backup"], here) == {
        "prod": {"location": TESTS_IN_WORKLOAD, "types": SHIPPED_PROD_TYPES, "stacks": ["prod"]}
    }
    # Disabled there, the copies are tested in the backup account again.
    off = {**configs, "prod": _prod(configs, restore_testing=RestoreTesting(enabled=False))}
    assert restore_testing_settings(off["prod"])["prod"]["location"] == TESTS_IN_BACKUP_ACCOUNT
    assert restore_testing_settings(off["backup"], off)["prod"]["location"] == TESTS_IN_BACKUP_ACCOUNT


def test_the_backup_account_covers_the_prod_stacks_testing_there(configs: dict[str, StackConfig]) -> None:
    api = _prod(configs, services=("DynamoDB", "Neptune"), buckets={}, databases={}, exports=None)
    own = _prod(configs, services=("EFS",), buckets={}, databases={}, exports=None, restore_testing=RestoreTesting())
    several = {**configs, "pgf-api-prod": api, "pgf-etl-prod": own}
    assert restore_testing_settings(several["backup"], several) == {
        "prod": {
            "location": TESTS_IN_BACKUP_ACCOUNT,
            "types": sorted({*SHIPPED_PROD_TYPES, "Neptune"}),
            "stacks": ["pgf-api-prod", "prod"],
        }
    }


# ---------------------------------------------------------------------------------------------
# The pack config


def test_only_the_restore_testing_policy_gets_the_setting(
    project: Project, configs: dict[str, StackConfig], policies: list[PolicyInfo]
) -> None:
    config = pack_config(project.root / "policy", policies, configs["backup"], configs=configs)
    readers = {name for name, entry in config.items() if isinstance(entry, dict) and "restoreTesting" in entry}
    assert readers == {POLICY}
    assert config[POLICY]["restoreTesting"]["prod"]["types"] == SHIPPED_PROD_TYPES
    level, settings = reconcile(policies, config)[POLICY]
    assert level == "mandatory" and settings["restoreTesting"] == config[POLICY]["restoreTesting"]
    prod = pack_config(project.root / "policy", policies, configs["prod"], configs=configs)
    assert prod[POLICY] == {"tier": "prod", "restoreTesting": restore_testing_settings(configs["prod"])}
    assert prod["audit-evidence-present"] == {"tier": "prod"}


def test_configs_for_reads_every_stack_for_the_backup_stack_only(project: Project) -> None:
    loaded = {"backup": project.load_config("backup"), "lab": project.load_config("lab")}
    assert configs_for(project, loaded["lab"], loaded) is loaded
    every = configs_for(project, loaded["backup"], loaded)
    assert list(every) == project.known_stacks() and every["backup"] is loaded["backup"]


def _copy(project: Project, target: Path) -> Path:
    for path in project.root.glob("Pulumi*.yaml"):
        shutil.copy(path, target / path.name)
    shutil.copy(project.root / "__main__.py", target / "__main__.py")
    shutil.copytree(project.root / "policy", target / "policy", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_a_broken_workload_file_stops_the_backup_stacks_gate(project: Project, tmp_path: Path) -> None:
    copied = Project.find(_copy(project, tmp_path))
    backup = copied.load_config("backup")
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("pgf-backup:tier: prod", "pgf-backup:tier: qa"))
    with pytest.raises(GateError, match="the backup stack's policy settings read every stack's config") as raised:
        configs_for(copied, backup, {"backup": backup})
    assert "tier" in str(raised.value)


def _with_neptune(project: Project, root: Path) -> Path:
    """A copy of the project whose prod stack also opts Neptune in (no restore testing selection covers it)."""
    _copy(project, root)
    path = root / "Pulumi.prod.yaml"
    text = path.read_text()
    anchor = "  pgf-backup:role: workload\n"
    assert anchor in text and "pgf-backup:services:" not in text
    services = "  pgf-backup:services: [Aurora, DynamoDB, EBS, EFS, RDS, S3, Neptune]\n"
    path.write_text(text.replace(anchor, anchor + services))
    return root


def test_planning_the_backup_stack_alone_reads_the_prod_stack_file(project: Project, tmp_path: Path) -> None:
    root = _with_neptune(project, tmp_path)
    out, err = io.StringIO(), io.StringIO()
    status = main(
        ["--project-dir", str(root), "plan", "--stack", "backup", "--json", str(root / "plan.json")], out=out, err=err
    )
    assert status == ExitStatus.FAILED, err.getvalue()
    [backup] = json.loads((root / "plan.json").read_text())["stacks"]
    found = [v for v in backup["policy"]["violations"] if v["policy"] == POLICY]
    assert len(found) == 1 and found[0]["enforcement"] == "mandatory"
    message = found[0]["message"]
    assert message.startswith("prod protects Aurora, DynamoDB, EBS, EFS, Neptune, RDS, S3 (stack prod)")
    assert "Neptune" in message.split("no restore testing selection of ", 1)[1].split(" under ", 1)[0]


def test_the_live_preview_of_the_backup_stack_gets_the_same_setting(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policies: list[PolicyInfo]
) -> None:
    (tmp_path / "project").mkdir()
    root = Project.find(_with_neptune(project, tmp_path / "project"))
    backend = FakeBackend()
    monkeypatch.setattr(live, "create_or_select_stack", backend.create_or_select_stack)
    monkeypatch.setattr(live, "select_stack", backend.select_stack)
    config = live_pack_config(root, backend, "backup", "preview", tmp_path / "logs", policies=policies)
    expected = restore_testing_settings(root.load_config("backup"), preflight.load_configs(root, root.known_stacks()))
    assert config[POLICY]["restoreTesting"] == expected
    assert "Neptune" in expected["prod"]["types"]
