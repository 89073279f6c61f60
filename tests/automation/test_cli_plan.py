"""`pgf-backup plan`: exit codes, JSON shape, order, and clear errors for bad input."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pgf_backup.automation.cli import main
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project

PROJECT_FILES = (
    "Pulumi.yaml",
    "__main__.py",
    "Pulumi.backup.yaml",
    "Pulumi.lab.yaml",
    "Pulumi.dev.yaml",
    "Pulumi.prod.yaml",
)


def _copy(project: Project, target: Path) -> Path:
    for name in PROJECT_FILES:
        shutil.copy(project.root / name, target / name)
    if (project.root / "policy").is_dir():
        shutil.copytree(project.root / "policy", target / "policy", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return int(status), out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def plan_json(project: Project, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    status, out, err = _run("--project-dir", str(project.root), "plan", "--all", "--json", str(path))
    assert status == ExitStatus.OK, err
    assert "== stack backup" in out and "== stack prod" in out
    document: dict[str, object] = json.loads(path.read_text())
    return document


def test_json_shape(plan_json: dict[str, object]) -> None:
    stacks = plan_json["stacks"]
    assert isinstance(stacks, list)
    assert [s["stack"] for s in stacks] == ["backup", "lab", "dev", "prod"]
    for stack in stacks:
        assert {"stack", "role", "account", "resources", "outputs"} <= set(stack)
        for resource in stack["resources"]:
            assert {"urn", "type", "name", "parent", "provider", "protect", "inputs"} <= set(resource)
    prod = stacks[3]
    assert prod["role"] == "workload" and prod["account"] == "400000000040"
    vault = next(r for r in prod["resources"] if r["type"] == "aws:backup/vault:Vault")
    assert "kmsKeyArn" in vault["inputs"]  # the engine's camelCase
    assert vault["urn"].startswith("urn:pulumi:prod::pgf-backup::")


def test_one_stack(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    status, out, _ = _run("--project-dir", str(project.root), "plan", "--stack", "lab", "--json", str(path))
    assert status == ExitStatus.OK
    assert "== stack lab" in out and "== stack prod" not in out
    assert [s["stack"] for s in json.loads(path.read_text())["stacks"]] == ["lab"]


def test_unknown_stack_is_a_usage_error(project: Project) -> None:
    status, _, err = _run("--project-dir", str(project.root), "plan", "--stack", "staging")
    assert status == ExitStatus.USAGE
    assert "unknown stack(s) staging; allowed: backup, lab, dev, prod" in err


def test_bad_arguments_are_a_usage_error() -> None:
    status, _, err = _run("plan", "--stack")
    assert status == ExitStatus.USAGE and "expected one argument" in err


def test_bad_stack_file_exits_2_with_the_key_and_no_traceback(project: Project, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    prod = root / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text().replace("delete_after_days: 35", "delete_after_days: 20"))
    done = subprocess.run(
        [sys.executable, "-m", "pgf_backup", "--project-dir", str(root), "plan"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Pulumi.prod.yaml" in done.stderr
    assert "pgf-backup:plan.rules.daily.delete_after_days: 20 is below the prod minimum of 35 days" in done.stderr
    assert "Traceback" not in done.stderr
    assert "== stack" not in done.stdout  # nothing evaluated before every stack file validates


def test_invalid_yaml_exits_2(project: Project, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    (root / "Pulumi.lab.yaml").write_text("config: [unclosed\n")
    status, _, err = _run("--project-dir", str(root), "plan")
    assert status == ExitStatus.USAGE
    assert "Pulumi.lab.yaml: not valid YAML" in err


def test_missing_stack_file_exits_2(project: Project, tmp_path: Path) -> None:
    root = _copy(project, tmp_path)
    (root / "Pulumi.dev.yaml").unlink()
    status, _, err = _run("--project-dir", str(root), "plan")
    assert status == ExitStatus.USAGE
    assert "stack 'dev': no Pulumi.dev.yaml" in err


def test_console_script_and_module_agree(project: Project) -> None:
    script = Path(sys.executable).with_name("pgf-backup")
    done = subprocess.run([str(script), "plan", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "--json FILE" in done.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [("/nonexistent/dir/plan.json", "folder /nonexistent/dir does not exist"), (".", "is a folder")],
)
def test_unwritable_json_target_is_refused_before_planning(target: str, message: str) -> None:
    status, out, err = _run("plan", "--json", target)
    assert status == ExitStatus.USAGE
    assert message in err and "== stack" not in out


# -- the optional management stack -------------------------------------------------------------


def _organization_mode(root: Path) -> None:
    """Switch the backup stack file at `root` to organization mode (UTC plans from the workload files)."""
    import yaml

    backup = yaml.safe_load((root / "Pulumi.backup.yaml").read_text())
    plans = {}
    for tier in ("lab", "dev", "prod"):
        plan = yaml.safe_load((root / f"Pulumi.{tier}.yaml").read_text())["config"]["pgf-backup:plan"]
        for rule in plan.get("rules", {}).values():
            rule["timezone"] = "UTC"
        if isinstance(plan.get("continuous"), dict):
            plan["continuous"]["timezone"] = "UTC"
        plans[tier] = plan
    backup["config"]["pgf-backup:scheduling"] = "organization"
    backup["config"]["pgf-backup:plans"] = plans
    # The stack's organization replaces Pulumi.yaml's whole: it repeats the id.
    backup["config"]["pgf-backup:organization"] = {
        "id": "o-pgfexample01",
        "policy_targets": {t: [f"ou-pgf0-{t}0000001"] for t in plans},
    }
    (root / "Pulumi.backup.yaml").write_text(yaml.safe_dump(backup))


@pytest.mark.parametrize("scheduling", ["account", "organization"])
def test_plan_puts_the_management_stack_first_and_the_pack_passes_it(
    project: Project, tmp_path: Path, scheduling: str
) -> None:
    from tests.conftest import add_management_stack

    root = _copy(project, tmp_path)
    argv = ["--all"]
    if scheduling == "organization":
        _organization_mode(root)
        argv = ["--stack", "management", "--stack", "backup"]  # the workload files stay in account mode
    add_management_stack(root)
    path = tmp_path / "plan.json"
    status, out, err = _run("--project-dir", str(root), "plan", *argv, "--json", str(path))
    assert status == ExitStatus.OK, err
    stacks = json.loads(path.read_text())["stacks"]
    expected = ["management", "backup"] + (["lab", "dev", "prod"] if scheduling == "account" else [])
    assert [s["stack"] for s in stacks] == expected
    management = stacks[0]
    assert management["role"] == "management" and management["account"] == "900000000090"
    assert management["policy"]["passed"] is True
    types = {r["type"] for r in management["resources"]}
    assert "aws:backup/globalSettings:GlobalSettings" in types
    assert ("aws:organizations/resourcePolicy:ResourcePolicy" in types) == (scheduling == "organization")
    assert "aws:backup/globalSettings:GlobalSettings" not in {r["type"] for r in stacks[1]["resources"]}
    assert out.index("== stack management") < out.index("== stack backup")


def test_plan_of_a_workload_stack_does_not_evaluate_the_management_stack(project: Project, tmp_path: Path) -> None:
    from tests.conftest import add_management_stack

    root = _copy(project, tmp_path)
    add_management_stack(root)
    status, out, err = _run("--project-dir", str(root), "plan", "--stack", "lab")
    assert status == ExitStatus.OK, err
    assert "== stack lab" in out and "== stack management" not in out
    status, _, err = _run("--project-dir", str(root), "plan", "--stack", "staging")
    assert "allowed: management, backup, lab, dev, prod" in err


def test_plan_validates_each_stack_file_once_per_run(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command reads and validates each stack file once, however many steps need its config."""
    import pgf_backup.project as project_module

    validated: list[str] = []
    real_load = project_module.load

    def counting(config: dict[str, str], source: str = "stack config") -> object:
        validated.append(source)
        return real_load(config, source)

    monkeypatch.setattr(project_module, "load", counting)
    status, _, _ = _run("--project-dir", str(_copy(project, tmp_path)), "plan", "--all")
    assert status == ExitStatus.OK
    assert sorted(validated) == sorted(f"Pulumi.{s}.yaml" for s in ("backup", "lab", "dev", "prod"))
