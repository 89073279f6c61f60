"""Shared fixtures: the project on disk, stack configs, and a recording mock runtime."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from pgf_backup.automation.mocks import AwsMocks, RecordingMonitor
from pgf_backup.automation.offline import evaluate, plan_stack
from pgf_backup.config import StackConfig, load
from pgf_backup.project import Project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project() -> Project:
    """The project at the root of this checkout."""
    return Project.find(ROOT)


def stack_values(project: Project, stack: str) -> dict[str, Any]:
    """A stack file's `pgf-backup:` values as Python objects (to mutate in tests)."""
    flat, _ = project.stack_config(stack)
    return {k: json.loads(v) if v[:1] in "{[" else v for k, v in flat.items()}


def config_of(values: dict[str, Any]) -> StackConfig:
    """Validate values shaped like `stack_values` (raises ConfigError)."""
    return load({k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in values.items()})


@dataclass
class Harness:
    """The SDK's mock runtime with our AWS-like mocks, recording every registration."""

    mocks: AwsMocks
    monitor: RecordingMonitor

    def run(self, program: Callable[[], Any]) -> Any:
        """Run `program` as a Pulumi program and wait for every registration; returns its result."""
        box: dict[str, Any] = {}

        def wrapped() -> None:
            box["result"] = program()

        _sync_await(run_pulumi_func(wrapped))
        return box.get("result")

    def resolve(self, value: Any) -> Any:
        """The resolved value of an Output (or plain value)."""
        return _sync_await(pulumi.Output.from_input(value).future())

    @property
    def resources(self) -> list[dict[str, Any]]:
        """Every recorded resource, in registration order."""
        return [r.to_json() for r in self.monitor.recorded]

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """Recorded resources of one type token."""
        return [r for r in self.resources if r["type"] == type_]

    def named(self, name: str) -> dict[str, Any]:
        """The one recorded resource with this logical name."""
        found = [r for r in self.resources if r["name"] == name]
        assert len(found) == 1, f"{len(found)} resources named {name!r}"
        return found[0]


@pytest.fixture
def pulumi_mocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """A fresh mock runtime (stack `test`); the SDK's global state is restored afterwards."""
    mocks = AwsMocks()
    monitor = RecordingMonitor(mocks)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="pgf-backup", stack="test", preview=False, monitor=monitor)
    yield Harness(mocks, monitor)
    settings.reset_options()
    runtime_config.CONFIG.set({})


@pytest.fixture(scope="session")
def backup_outputs(project: Project) -> dict[str, Any]:
    """Outputs of the shipped `backup` stack (evaluated in its own process, as the planner does)."""
    return plan_stack(project, "backup").outputs


@pytest.fixture
def run_stack(
    project: Project, backup_outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., dict[str, Any]]]:
    """Evaluate a stack in this process (environment and runtime restored afterwards)."""
    monkeypatch.setenv("PULUMI_CONFIG", "{}")
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")

    def run(stack: str, target: Project = project, refs: dict[str, Any] | None = None) -> dict[str, Any]:
        settings.ROOT.set(None)
        outputs = {"organization/pgf-backup/backup": backup_outputs} if refs is None else refs
        return evaluate(target, stack, outputs)

    yield run
    settings.reset_options()
    runtime_config.CONFIG.set({})


MANAGEMENT_ACCOUNT = "900000000090"
ROOT_ID = "r-pgf0"


def add_management_stack(root: Path) -> Path:
    """Write `Pulumi.management.yaml` into the project at `root`, from its backup stack file (same mode)."""
    import yaml

    from pgf_backup.config import MANAGEMENT_KEYS

    backup = yaml.safe_load((root / "Pulumi.backup.yaml").read_text())["config"]
    # The backup stack's values as its program sees them (Pulumi.yaml's shared values included).
    effective = stack_values(Project.find(root), "backup")
    config = {k: v for k, v in backup.items() if not k.startswith("pgf-backup:")}
    config.update({k: v for k, v in backup.items() if k.removeprefix("pgf-backup:") in MANAGEMENT_KEYS})
    config["pgf-backup:role"] = "management"
    config["pgf-backup:accounts"] = {**effective["pgf-backup:accounts"], "management": MANAGEMENT_ACCOUNT}
    config["pgf-backup:organization"] = {"id": effective["pgf-backup:organization"]["id"], "root_id": ROOT_ID}
    path = root / "Pulumi.management.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def utc_copy(project: Project, root: Path, routed: bool = False) -> Project:
    """A copy of the project at `root` whose plans are written in UTC (same crons), as organization mode needs
    (without prod's routing unless `routed`: see `organization_copy`)."""
    import shutil

    import yaml

    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.backup.yaml"):
        shutil.copy(project.root / name, root / name)
    for tier in ("lab", "dev", "prod"):
        data = yaml.safe_load((project.root / f"Pulumi.{tier}.yaml").read_text())
        plan = data["config"]["pgf-backup:plan"]
        for rule in [*plan.get("rules", {}).values(), plan.get("continuous") or {}]:
            rule["timezone"] = "UTC"
        if not routed:
            without_routing(data["config"], tier)
            plan.pop("retention_classes", None)
        (root / f"Pulumi.{tier}.yaml").write_text(yaml.safe_dump(data))
    if not routed:
        backup = yaml.safe_load((project.root / "Pulumi.backup.yaml").read_text())
        without_routing(backup["config"], None)
        (root / "Pulumi.backup.yaml").write_text(yaml.safe_dump(backup))
    return Project.find(root)


def without_routing(config: dict[str, Any], tier: str | None) -> None:
    """A stack file's config without retention classes and vaults per criticality (the tier-named vaults stay)."""
    vaults = config["pgf-backup:vaults"]
    for key in [k for k, v in vaults.items() if k != v["tier"]]:
        del vaults[key]
    for section in ("pgf-backup:buckets", "pgf-backup:databases"):
        for entry in (config.get(section) or {}).values():
            entry.pop("vault", None)
            entry.pop("retention_days", None)


def organization_copy(project: Project, root: Path, routed: bool = False) -> Project:
    """A copy of the project at `root` switched to organization mode: plans move to the backup stack.

    Without `routed`, prod's retention classes and vaults per criticality are left out: its four rules copied to
    three targets, once per (vault, class), would not fit in one BACKUP_POLICY (tests/test_modes.py shows the
    message, and routing that fits)."""
    import shutil

    import yaml

    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(project.root / name, root / name)
    plans = {}
    for tier in ("lab", "dev", "prod"):
        data = yaml.safe_load((project.root / f"Pulumi.{tier}.yaml").read_text())
        plans[tier] = data["config"].pop("pgf-backup:plan")
        data["config"]["pgf-backup:scheduling"] = "organization"
        if not routed:
            without_routing(data["config"], tier)
            plans[tier].pop("retention_classes", None)
        (root / f"Pulumi.{tier}.yaml").write_text(yaml.safe_dump(data))
    backup = yaml.safe_load((project.root / "Pulumi.backup.yaml").read_text())
    if not routed:
        without_routing(backup["config"], None)
    backup["config"]["pgf-backup:scheduling"] = "organization"
    backup["config"]["pgf-backup:plans"] = plans
    backup["config"]["pgf-backup:organization"] = {"id": "o-pgfexample01", "policy_targets": {}}
    backup["config"]["pgf-backup:organization"]["policy_targets"] = {
        "lab": ["ou-pgf0-lab00001"],
        "dev": ["ou-pgf0-dev00001"],
        "prod": ["ou-pgf0-prod0001", "400000000040"],
    }
    (root / "Pulumi.backup.yaml").write_text(yaml.safe_dump(backup))
    return Project.find(root)
