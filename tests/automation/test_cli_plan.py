"""`pgf-backup plan`: exit codes, JSON shape, order, and clear errors for bad input."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pgf_backup.automation.cli import main
from pgf_backup.automation.status import ExitStatus
from pgf_backup.paths.checks import KINDS
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


def summary_rows(out: str) -> dict[str, dict[str, str]]:
    """The summary table (plain text off a terminal): each stack's cells by column heading."""
    lines = out.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("== summary")))
    # Columns are three spaces apart; a cell holds single spaces at most ("1 unproven").
    header = re.split(r"\s{2,}", lines[start + 1].strip())
    assert set(lines[start + 2]) == {"─"}, lines[start + 2]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 3 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            break
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


@pytest.fixture(scope="module")
def plan_run(project: Project, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """`plan --all --json FILE`: its output, and the JSON document."""
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    status, out, err = _run("--project-dir", str(project.root), "plan", "--all", "--json", str(path))
    assert status == ExitStatus.OK, err
    document: dict[str, Any] = json.loads(path.read_text())
    return out, document


@pytest.fixture(scope="module")
def plan_json(plan_run: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return plan_run[1]


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


def test_the_summary_is_the_plan_in_short(plan_run: tuple[str, dict[str, Any]]) -> None:
    """Without --verbose: the notes, what is not ok, and a row per stack whose counts are the JSON document's."""
    out, document = plan_run
    rows = summary_rows(out)
    assert list(rows) == ["backup", "lab", "dev", "prod"]
    assert "== stack backup" not in out and "outputs:" not in out  # the full listing is --verbose's
    for stack in document["stacks"]:
        row = rows[stack["stack"]]
        custom = [r for r in stack["resources"] if r.get("custom", True)]
        assert row["account"] == stack["account"]
        assert row["resources"] == str(len(custom))
        assert row["protected"] == str(sum(1 for r in custom if r["protect"]))
        assert row["policy"] == "passed" and stack["policy"]["passed"]
        for kind in KINDS:
            verdicts = Counter(
                p["verdict"] for p in document["paths"] if (p["stack"], p["kind"]) == (stack["stack"], kind)
            )
            words = [f"{verdicts['broken']} BROKEN"] if verdicts["broken"] else []
            words += [f"{verdicts['unproven']} unproven"] if verdicts["unproven"] else []
            assert row[kind] == ("-" if not verdicts else ", ".join(words) or "ok"), (stack["stack"], kind)
    assert rows["prod"]["protected"] != "0"
    unproven = [p for p in document["paths"] if p["verdict"] == "unproven"]
    assert unproven  # the shipped RDS snapshot copies: their key is the application's
    assert "== paths that are not proven ok" in out
    for path in unproven:
        assert f"[unproven] {path['kind']} ({path['stack']}): {path['from']} -> {path['to']}" in out
    # A note shared by stacks is said once, naming them.
    assert sum(1 for line in out.splitlines() if "coverage: evaluated in ca-central-1 only" in line) == 1
    assert "   lab, dev, prod: coverage: evaluated in ca-central-1 only" in out


def test_one_stack(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    argv = ("--project-dir", str(project.root), "plan", "--stack", "lab", "--json", str(path), "--verbose")
    status, out, _ = _run(*argv)
    assert status == ExitStatus.OK
    assert "== stack lab" in out and "== stack prod" not in out
    assert "== paths: the requests AWS will make" in out and "   policy: passed" in out
    assert list(summary_rows(out)) == ["lab"]
    assert [s["stack"] for s in json.loads(path.read_text())["stacks"]] == ["lab"]


def test_unknown_stack_is_a_usage_error(project: Project) -> None:
    status, _, err = _run("--project-dir", str(project.root), "plan", "--stack", "staging")
    assert status == ExitStatus.USAGE
    assert "unknown stack(s) staging; allowed: backup, lab, dev, prod" in err


def test_bad_arguments_are_a_usage_error() -> None:
    status, _, err = _run("plan", "--stack")
    assert status == ExitStatus.USAGE and "argument --stack/--stacks: expected at least one argument" in err


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
    """Switch the stack files at `root` to organization mode: the workload files' plans (in UTC) move to the backup
    stack file (every file is checked against the others, whatever stacks are planned)."""
    import yaml

    from tests.conftest import without_routing

    backup = yaml.safe_load((root / "Pulumi.backup.yaml").read_text())
    plans = {}
    for tier in ("lab", "dev", "prod"):
        workload = yaml.safe_load((root / f"Pulumi.{tier}.yaml").read_text())
        plan = workload["config"].pop("pgf-backup:plan")
        workload["config"]["pgf-backup:scheduling"] = "organization"
        # prod's routing does not fit one BACKUP_POLICY (tests/test_modes.py): left out here.
        without_routing(workload["config"], tier)
        plan.pop("retention_classes", None)
        (root / f"Pulumi.{tier}.yaml").write_text(yaml.safe_dump(workload))
        for rule in plan.get("rules", {}).values():
            rule["timezone"] = "UTC"
        if isinstance(plan.get("continuous"), dict):
            plan["continuous"]["timezone"] = "UTC"
        plans[tier] = plan
    backup["config"]["pgf-backup:scheduling"] = "organization"
    without_routing(backup["config"], None)
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
    if scheduling == "organization":
        _organization_mode(root)
    add_management_stack(root)
    path = tmp_path / "plan.json"
    status, out, err = _run("--project-dir", str(root), "plan", "--all", "--verbose", "--json", str(path))
    assert status == ExitStatus.OK, err
    stacks = json.loads(path.read_text())["stacks"]
    expected = ["management", "backup", "lab", "dev", "prod"]
    assert [s["stack"] for s in stacks] == expected
    assert list(summary_rows(out)) == expected
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
    status, out, err = _run("--project-dir", str(root), "plan", "--stack", "lab", "--verbose")
    assert status == ExitStatus.OK, err
    assert "== stack lab" in out and "== stack management" not in out
    assert list(summary_rows(out)) == ["lab"]
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
