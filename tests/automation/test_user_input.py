"""Bad user input (files, keys, arguments) exits 2 with one clear line naming it, never a traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgf_backup import project as project_module
from pgf_backup.automation import preflight
from pgf_backup.automation.cli import build_parser, main
from pgf_backup.automation.gate import tier_config
from pgf_backup.automation.offline import StackError, plan_stack, split_stderr
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import ConfigError
from pgf_backup.project import Project

ALL = ["backup", "lab", "dev", "prod"]


@pytest.fixture
def root(project: Project, tmp_path: Path) -> Path:
    """A copy of the project (program, Pulumi.yaml, stack files; the policy pack linked), to break."""
    for path in [project.root / "Pulumi.yaml", project.root / "__main__.py", *project.root.glob("Pulumi.*.yaml")]:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "policy").symlink_to(project.root / "policy")
    return tmp_path


def run(*argv: str) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def plan(root: Path, *argv: str) -> tuple[ExitStatus, str, str]:
    return run("--project-dir", str(root), "plan", *argv)


def config_lines(root: Path, stack: str, *lines: str) -> None:
    """Add lines at the top of a stack file's `config:` mapping (as raw YAML text)."""
    path = root / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert "\nconfig:\n" in text
    path.write_text(text.replace("\nconfig:\n", "\nconfig:\n" + "".join(f"  {line}\n" for line in lines), 1))


def edit(root: Path, stack: str, key: str, value: Any) -> None:
    path = root / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"][key] = value
    path.write_text(yaml.safe_dump(data))


def refused(status: ExitStatus, out: str, err: str, *messages: str) -> None:
    """Exit 2 before any stack was evaluated, with each message and no traceback."""
    assert status == ExitStatus.USAGE, err
    for message in messages:
        assert message in err
    assert "Traceback" not in err
    assert "== stack" not in out


# -- 1. config keys that are not text ---------------------------------------------------------------


@pytest.mark.parametrize(("key", "shown"), [("1", "config key 1 is a number"), ("2024-01-01", "2024-01-01 is a date")])
def test_a_config_key_that_is_not_text_is_named(root: Path, key: str, shown: str) -> None:
    config_lines(root, "lab", f"{key}: 2")
    refused(*plan(root), "Pulumi.lab.yaml: ", shown, "'<namespace>:<name>'")


# -- 2. files that are not UTF-8 ------------------------------------------------------------------------


def test_a_stack_file_that_is_not_utf8_is_named(root: Path) -> None:
    path = root / "Pulumi.dev.yaml"
    path.write_bytes(path.read_bytes().replace(b"\nconfig:\n", b"\n# caf\xe9\nconfig:\n", 1))
    refused(*plan(root), "Pulumi.dev.yaml: line ", "byte 0xe9 is not UTF-8; save the file as UTF-8")


def test_a_project_file_that_is_not_utf8_is_named(root: Path) -> None:
    (root / "Pulumi.yaml").write_bytes(b"name: pgf-backup\ndescription: caf\xe9\n")
    refused(*plan(root), f"{root / 'Pulumi.yaml'}: line 2: byte 0xe9 is not UTF-8")


# -- 3. YAML dates and other values ------------------------------------------------------------------------


def test_yaml_dates_are_passed_as_their_iso_text(root: Path) -> None:
    edit(root, "lab", "pgf-backup:tags", {"extra": {"owner": "placeholder", "review": "placeholder"}})
    path = root / "Pulumi.lab.yaml"
    text = path.read_text().replace("owner: placeholder", "owner: 2024-01-01")
    path.write_text(text.replace("review: placeholder", "review: 2024-01-01 10:30:00"))
    flat, _ = Project.find(root).stack_config("lab")
    assert json.loads(flat["pgf-backup:tags"])["extra"] == {"owner": "2024-01-01", "review": "2024-01-01T10:30:00"}
    cfg = Project.find(root).load_config("lab")
    assert cfg.tags.extra["owner"] == "2024-01-01"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{extra: {owner: !!binary aGVsbG8=}}", "pgf-backup:tags.extra.owner: a bytes value is not allowed"),
        ("{extra: {2024-01-01: x}}", "pgf-backup:tags.extra: the key 2024-01-01 is a date; quote it"),
        ("&loop {extra: *loop}", "pgf-backup:tags.extra: refers to itself"),
    ],
)
def test_values_pulumi_cannot_pass_are_named(root: Path, value: str, message: str) -> None:
    edit(root, "lab", "pgf-backup:tags", "placeholder")
    path = root / "Pulumi.lab.yaml"
    path.write_text(path.read_text().replace("pgf-backup:tags: placeholder", f"pgf-backup:tags: {value}"))
    with pytest.raises(ConfigError, match=r"Pulumi\.lab\.yaml: ") as caught:
        Project.find(root).stack_config("lab")
    assert message in str(caught.value)


# -- 4. the program -----------------------------------------------------------------------------------------


def test_a_missing_program_is_refused_before_planning(root: Path) -> None:
    (root / "__main__.py").unlink()
    refused(*plan(root), f"error: {root / '__main__.py'} is missing")


def test_a_missing_program_is_refused_before_an_offline_preview(root: Path) -> None:
    (root / "__main__.py").unlink()
    status, _, err = run("--project-dir", str(root), "preview", "--offline", "--stacks", "lab")
    assert status == ExitStatus.USAGE
    assert f"{root / '__main__.py'} is missing" in err and "Traceback" not in err


def test_the_worker_reports_a_missing_program_as_a_config_error(root: Path) -> None:
    (root / "__main__.py").unlink()
    with pytest.raises(StackError) as caught:
        plan_stack(Project.find(root), "lab")
    assert caught.value.exit_code == ExitStatus.USAGE and "__main__.py is missing" in str(caught.value)


# -- 5. --log-dir -------------------------------------------------------------------------------------------


def _parse(*argv: str) -> tuple[ExitStatus, str]:
    status, _, err = run("--project-dir", str(Path(__file__).resolve().parents[2]), *argv, "--help")
    return status, err


@pytest.mark.parametrize(
    ("log_dir", "message"),
    [
        ("{file}", "argument --log-dir: {file} exists and is not a folder"),
        ("{tmp}/missing/logs", "argument --log-dir: folder {tmp}/missing does not exist"),
        ("{file}/logs", "argument --log-dir: {file} is not a folder"),
    ],
)
def test_a_log_dir_that_cannot_be_written_is_refused_up_front(tmp_path: Path, log_dir: str, message: str) -> None:
    file = tmp_path / "file.txt"
    file.write_text("")
    status, err = _parse("preview", "--log-dir", log_dir.format(file=file, tmp=tmp_path))
    assert status == ExitStatus.USAGE
    assert message.format(file=file, tmp=tmp_path) in err


def test_an_unwritable_log_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    status, err = _parse("up", "--log-dir", str(tmp_path))
    assert status == ExitStatus.USAGE and f"argument --log-dir: folder {tmp_path} is not writable" in err
    status, err = _parse("up", "--log-dir", str(tmp_path / "new"))
    assert status == ExitStatus.USAGE and f"argument --log-dir: folder {tmp_path} is not writable" in err


def test_a_log_dir_in_a_writable_folder_is_accepted(tmp_path: Path) -> None:
    for folder in (tmp_path, tmp_path / "new"):
        args = build_parser().parse_args(["preview", "--log-dir", str(folder)])
        assert args.log_dir == folder


# -- 6. the program's warnings and its error ------------------------------------------------------------------


def test_stderr_splits_into_warnings_and_the_error() -> None:
    stderr = (
        "warning: organization mode selects by the tag backup:tier=prod: tag\n  arn:aws:s3:::data\n"
        "info: a note\n"
        "error: invalid configuration in Pulumi.prod.yaml:\n"
        "pgf-backup:tier: a workload stack needs its tier\n"
    )
    warnings, error = split_stderr(stderr)
    assert warnings == ["organization mode selects by the tag backup:tier=prod: tag\n  arn:aws:s3:::data"]
    assert error == "invalid configuration in Pulumi.prod.yaml:\npgf-backup:tier: a workload stack needs its tier"


def test_a_crash_is_the_error_and_the_warnings_stay_apart() -> None:
    stderr = 'warning: careful\nTraceback (most recent call last):\n  File "x"\nValueError: boom\n'
    assert split_stderr(stderr) == (["careful"], 'Traceback (most recent call last):\n  File "x"\nValueError: boom')
    assert split_stderr("") == ([], "")
    assert split_stderr("something odd\n") == ([], "something odd")


WARN_THEN_FAIL = """
import sys
import pulumi

pulumi.log.warn("the tier tag is missing on arn:aws:s3:::data")
print("error: pgf-backup:tier: a workload stack needs its tier", file=sys.stderr)
sys.exit(2)
"""


def test_the_programs_warning_is_not_reported_as_its_error(root: Path) -> None:
    (root / "__main__.py").write_text(WARN_THEN_FAIL)
    with pytest.raises(StackError) as caught:
        plan_stack(Project.find(root), "backup")
    assert str(caught.value) == "pgf-backup:tier: a workload stack needs its tier"
    assert caught.value.warnings == ["the tier tag is missing on arn:aws:s3:::data"]
    status, _, err = plan(root, "--stack", "backup")
    assert status == ExitStatus.USAGE
    assert err.splitlines() == [
        "warning: stack backup: the tier tag is missing on arn:aws:s3:::data",
        "error: stack backup: pgf-backup:tier: a workload stack needs its tier",
    ]


def test_the_programs_warnings_are_shown_when_it_succeeds(root: Path, project: Project) -> None:
    (root / "__main__.py").write_text(
        'import pulumi\npulumi.log.warn("tag the buckets")\n' + (project.root / "__main__.py").read_text()
    )
    result = plan_stack(Project.find(root), "backup")
    assert result.warnings == ["tag the buckets"]
    assert result.resources and "warnings" not in result.to_json()


# -- 7. consistency across stack files in `plan` ----------------------------------------------------------------


def test_plan_refuses_account_ids_that_differ_between_stack_files(root: Path) -> None:
    accounts = Project.find(root).load_config("dev").accounts
    edit(root, "dev", "pgf-backup:accounts", {**accounts, "lab": "200000000099"})
    status, out, err = plan(root, "--stack", "dev")
    refused(
        status,
        out,
        err,
        "error: stack dev: accounts.lab is 200000000099 in Pulumi.dev.yaml but 200000000020 in Pulumi.backup.yaml",
    )


def test_plan_refuses_a_backup_stack_reference_to_another_project(root: Path) -> None:
    edit(root, "prod", "pgf-backup:backup_stack", "organization/other-project/backup")
    refused(*plan(root), "error: stack prod: pgf-backup:backup_stack is 'organization/other-project/backup'")


def _organization_mode_backup(root: Path) -> None:
    """Switch only the backup stack file to organization mode (each file valid on its own)."""
    plans = {
        # A BACKUP_POLICY schedules in UTC: the shipped Toronto schedules would be refused for that.
        tier: yaml.safe_load((root / f"Pulumi.{tier}.yaml").read_text().replace("America/Toronto", "UTC"))["config"][
            "pgf-backup:plan"
        ]
        for tier in ("lab", "dev", "prod")
    }
    backup = yaml.safe_load((root / "Pulumi.backup.yaml").read_text())
    backup["config"]["pgf-backup:scheduling"] = "organization"
    backup["config"]["pgf-backup:plans"] = plans
    backup["config"]["pgf-backup:organization"] = {"id": "o-pgfexample01", "policy_targets": {}}
    backup["config"]["pgf-backup:organization"]["policy_targets"] = {
        "lab": ["ou-pgf0-lab00001"],
        "dev": ["ou-pgf0-dev00001"],
        "prod": ["ou-pgf0-prod0001"],
    }
    (root / "Pulumi.backup.yaml").write_text(yaml.safe_dump(backup))


def test_the_scheduling_mode_must_be_the_same_in_every_stack_file(root: Path) -> None:
    _organization_mode_backup(root)
    project = Project.find(root)
    configs = {stack: project.load_config(stack) for stack in ALL}
    messages = [str(p) for p in preflight.consistency_problems(project, configs)]
    assert messages == [
        f"stack {stack}: scheduling is 'organization' in Pulumi.backup.yaml but 'account' in Pulumi.{stack}.yaml; "
        "switch every stack file together"
        for stack in ("lab", "dev", "prod")
    ]
    refused(*plan(root, "--stack", "lab"), "scheduling is 'organization' in Pulumi.backup.yaml but 'account'")
    with pytest.raises(preflight.PreflightError, match="switch every stack file together"):
        preflight.load_configs(project, ["lab"])


# -- 8. --project-dir and Pulumi.yaml ---------------------------------------------------------------------------


def test_a_project_dir_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    status, _, err = run("--project-dir", str(tmp_path / "missing"), "plan")
    assert status == ExitStatus.USAGE
    assert f"argument --project-dir: folder {tmp_path / 'missing'} does not exist" in err


def test_a_project_dir_without_pulumi_yaml_does_not_walk_up(root: Path) -> None:
    inner = root / "sub"
    inner.mkdir()
    status, out, err = run("--project-dir", str(inner), "plan")
    refused(status, out, err, f"argument --project-dir: folder {inner} has no Pulumi.yaml")
    with pytest.raises(ConfigError, match=r"no Pulumi\.yaml in"):
        Project.find(inner)


@pytest.mark.parametrize("manifest", ["", "runtime: python\n", "name: ''\n"])
def test_a_project_without_a_name_is_refused(root: Path, manifest: str) -> None:
    (root / "Pulumi.yaml").write_text(manifest)
    refused(*plan(root), "Pulumi.yaml: 'name' is missing")


def test_a_project_name_pulumi_would_refuse_is_named(root: Path) -> None:
    (root / "Pulumi.yaml").write_text("name: [pgf, backup]\n")
    refused(*plan(root), "Pulumi.yaml: 'name' ['pgf', 'backup'] is not allowed")


def test_without_project_dir_the_project_is_found_from_a_subfolder(project: Project) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pgf_backup", "plan", "--stack", "nothing"],
        cwd=project.root / "pgf_backup",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "unknown stack(s) nothing; allowed: backup, lab, dev, prod" in done.stderr


# -- 9. config namespaces -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["pgf-bakup", "pgf_backup", "PGF-Backup", "backup"])
def test_a_misspelt_namespace_is_refused_with_a_suggestion(root: Path, namespace: str) -> None:
    text = (root / "Pulumi.backup.yaml").read_text()
    assert "  pgf-backup:rollout_order:" in text
    (root / "Pulumi.backup.yaml").write_text(
        text.replace("  pgf-backup:rollout_order:", f"  {namespace}:rollout_order:")
    )
    refused(
        *plan(root),
        f"Pulumi.backup.yaml: config key '{namespace}:rollout_order': unknown namespace '{namespace}'; "
        "did you mean 'pgf-backup:rollout_order'?",
    )


def test_other_providers_namespaces_are_allowed(root: Path) -> None:
    config_lines(root, "lab", "random:seed: 4", "aws:region: ca-central-1", "pulumi:tags: {team: backup}")
    flat, _ = Project.find(root).stack_config("lab")
    assert flat["random:seed"] == "4" and flat["aws:region"] == "ca-central-1"
    Project.find(root).load_config("lab")


# -- 10. duplicate keys ---------------------------------------------------------------------------------------------


def test_a_key_given_twice_is_refused_with_its_line(root: Path) -> None:
    config_lines(root, "lab", "pgf-backup:tier: lab", "pgf-backup:tier: prod")
    refused(
        *plan(root),
        "Pulumi.lab.yaml: line ",
        "key 'pgf-backup:tier' is given twice (first at line ",
        "the Pulumi CLI refuses the file",
    )


def test_a_nested_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.lab.yaml"
    path.write_text("config:\n  pgf-backup:tags:\n    extra: {owner: a, owner: b}\n")
    with pytest.raises(ConfigError, match=r"Pulumi.lab.yaml: line 3: key 'owner' is given twice \(first at line 3\)"):
        project_module._read_yaml(path)


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.lab.yaml"
    path.write_text("base: &base {a: 1, b: 2}\nconfig:\n  x:\n    <<: *base\n    b: 3\n")
    assert project_module._read_yaml(path)["config"]["x"] == {"a": 1, "b": 3}


def test_stack_files_still_load_with_libyaml() -> None:
    assert issubclass(project_module._YAML_LOADER, getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# -- 11. a tier without its policy config ---------------------------------------------------------------------------


def test_a_missing_tier_policy_config_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "prod.json").write_text('{"all": "mandatory"}')
    warnings: list[str] = []
    assert tier_config(tmp_path, "lab", warnings.append) == {}
    assert tier_config(tmp_path, "prod", warnings.append) == {"all": "mandatory"}
    assert tier_config(tmp_path, None, warnings.append) == {}
    assert warnings == [
        f"{tmp_path / 'config' / 'lab.json'} is missing: the lab tier is checked with the policy pack's default "
        "enforcement levels and settings"
    ]


def test_plan_warns_when_a_tier_has_no_policy_config(root: Path, project: Project) -> None:
    (root / "policy").unlink()
    shutil.copytree(project.root / "policy", root / "policy", ignore=shutil.ignore_patterns("__pycache__", "venv"))
    (root / "policy" / "config" / "lab.json").unlink()
    status, _, err = plan(root, "--stack", "lab")
    assert status == ExitStatus.OK, err
    assert f"warning: {root / 'policy' / 'config' / 'lab.json'} is missing" in err
