"""One grammar for every command: stacks given the same way, global options before or after the command,
`--version`, every stack file checked whatever is planned, and a project that must be found."""

from __future__ import annotations

import io
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgf_backup.automation import driver, preflight
from pgf_backup.automation.cli import build_parser, main
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project

ROOT = Path(__file__).resolve().parents[2]
MULTI_STACK = ("plan", "preview", "up", "refresh", "destroy", "drift")
CENTRAL_POINT = "arn:aws:backup:ca-central-1:100000000010:recovery-point:0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
# Each single-stack command with the arguments it requires, and its stack option.
SINGLE_STACK = {
    "verify": ["verify", "--stack", "prod"],
    "drill": ["drill", "--stack", "prod", "--all"],
    "runbook": ["runbook", "--stack", "prod"],
    "restore copy-back": ["restore", "copy-back", "--recovery-point", CENTRAL_POINT, "--to", "prod"],
}


class Terminal(io.StringIO):
    """An output stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run(*argv: str, out: io.StringIO | None = None, err: io.StringIO | None = None) -> tuple[ExitStatus, str, str]:
    out, err = out or io.StringIO(), err or io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def parse(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


def copy_project(target: Path) -> Path:
    """A copy of the project (program, Pulumi.yaml, stack files; the policy pack linked), to change."""
    for path in [ROOT / "Pulumi.yaml", ROOT / "__main__.py", *ROOT.glob("Pulumi.*.yaml")]:
        shutil.copy(path, target / path.name)
    (target / "policy").symlink_to(ROOT / "policy")
    return target


# -- stacks: the same option everywhere -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", MULTI_STACK)
@pytest.mark.parametrize(
    "given",
    [
        ["--stack", "prod,lab"],
        ["--stack", "prod", "--stack", "lab"],
        ["--stacks", "prod,lab"],
        ["--stacks", "prod", "lab"],
        ["--stack", " prod , lab ,"],
        ["--stacks", "prod", "--stack", "lab"],
    ],
)
def test_every_multi_stack_command_takes_stacks_every_way(command: str, given: list[str]) -> None:
    assert parse(command, *given).stacks == ["prod", "lab"]
    assert parse(command).stacks is None  # every stack


@pytest.mark.parametrize("command", MULTI_STACK)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (",", "argument --stack/--stacks: ',' names no stack; give NAME[,NAME...]"),
        ("lab;dev", "argument --stack/--stacks: 'lab;dev' is not a stack name"),
    ],
)
def test_a_stack_value_that_names_no_stack_is_refused(command: str, value: str, message: str) -> None:
    status, _, err = run("--project-dir", str(ROOT), command, "--stack", value)
    assert status == ExitStatus.USAGE
    assert message in err


@pytest.mark.parametrize("command", SINGLE_STACK)
def test_single_stack_commands_take_one_stack_and_no_stacks_option(command: str) -> None:
    argv = SINGLE_STACK[command]
    parse(*argv)  # as given, accepted
    status, _, err = run(*argv, "--stacks=prod")
    assert status == ExitStatus.USAGE
    assert "unrecognized arguments: --stacks=prod" in err


def test_the_live_commands_run_the_stacks_given_either_way(monkeypatch: pytest.MonkeyPatch, recorder: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    runner = recorder()

    def fake_live_runner(project: Project, stacks: list[str], operation: str, args: Any, progress: Any) -> Any:
        return runner, preflight.load_configs(project, stacks)

    monkeypatch.setattr(driver, "live_runner", fake_live_runner)
    for given in (["--stack", "prod", "--stack", "lab"], ["--stacks", "prod,lab"], ["--stack", "lab,prod"]):
        runner.calls.clear()
        status, _, err = run("--project-dir", str(ROOT), "preview", *given)
        assert status == ExitStatus.OK, err
        assert runner.stacks() == ["lab", "prod"]  # rollout order, whatever the order given


def test_an_unknown_stack_names_the_known_ones() -> None:
    for command in ("plan", "preview", "drift"):
        status, out, err = run("--project-dir", str(ROOT), command, "--stack", "lab,prdo")
        assert status == ExitStatus.USAGE
        assert "error: unknown stack(s) prdo; allowed: backup, lab, dev, prod; did you mean 'prod'?" in err
        assert out == ""


def test_a_new_stack_file_not_in_rollout_order_gets_the_hint(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    shutil.copy(root / "Pulumi.lab.yaml", root / "Pulumi.staging.yaml")
    hint = (
        "Pulumi.staging.yaml exists but 'staging' is not in pgf-backup:rollout_order of Pulumi.backup.yaml: "
        "add it there to plan and roll it out"
    )
    for command in ("plan", "up"):
        status, _, err = run("--project-dir", str(root), command, "--stacks", "staging")
        assert status == ExitStatus.USAGE
        assert f"error: unknown stack(s) staging; allowed: backup, lab, dev, prod; {hint}" in err


def test_plan_takes_a_comma_list_and_warns_of_a_stack_file_it_does_not_plan(tmp_path: Path) -> None:
    """`plan --stack dev,lab` plans both, in rollout order; on a terminal each stack's progress is shown."""
    root = copy_project(tmp_path)
    shutil.copy(root / "Pulumi.lab.yaml", root / "Pulumi.staging.yaml")
    out = io.StringIO()
    status, text, err = run("--project-dir", str(root), "plan", "--stack", "dev,lab", out=out, err=Terminal())
    assert status == ExitStatus.OK, err
    summary = text[text.index("== summary: 2 stack(s)") :].splitlines()
    assert [line.split()[0] for line in summary[3:5]] == ["lab", "dev"]
    assert "\x1b" not in text  # the summary is plain text off a terminal
    assert "warning: Pulumi.staging.yaml exists but 'staging' is not in pgf-backup:rollout_order" in err
    # The progress, on the terminal: a line per planned stack (backup is evaluated to feed them, not reported).
    assert "lab: 123 resources (0 protected), policy passed (" in err
    assert "dev: " in err and "backup: " not in err


# -- every stack file is checked, whatever is planned -----------------------------------------------------------------


def test_plan_of_one_stack_checks_every_stack_file(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    (root / "Pulumi.dev.yaml").write_text("config: [unclosed\n")
    status, out, err = run("--project-dir", str(root), "plan", "--stack", "lab")
    assert status == ExitStatus.USAGE
    assert "error: Pulumi.dev.yaml: not valid YAML" in err
    assert out == ""  # nothing evaluated


def test_plan_of_one_stack_cross_checks_every_stack_file(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    dev = yaml.safe_load((root / "Pulumi.dev.yaml").read_text())
    accounts = Project.find(root).load_config("dev").accounts
    dev["config"]["pgf-backup:accounts"] = {**accounts, "lab": "200000000099"}
    (root / "Pulumi.dev.yaml").write_text(yaml.safe_dump(dev))
    status, out, err = run("--project-dir", str(root), "plan", "--stack", "lab")
    assert status == ExitStatus.USAGE
    assert "error: stack dev: accounts.lab is 200000000099 in Pulumi.dev.yaml but 200000000020" in err
    assert out == ""


# -- global options before or after the command -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--all"],
        ["preview", "--stacks", "lab"],
        ["verify", "--stack", "prod"],
        ["drill", "report", "--quarter", "2026Q4"],
        ["restore", "copy-back", "--recovery-point", CENTRAL_POINT, "--to", "prod"],
        ["catalog", "import", "s3://bucket/catalog/"],
    ],
)
def test_project_dir_goes_before_or_after_the_command(argv: list[str]) -> None:
    assert parse("--project-dir", str(ROOT), *argv).project_dir == ROOT
    assert parse(*argv, "--project-dir", str(ROOT)).project_dir == ROOT
    assert parse(*argv).project_dir is None


def test_project_dir_after_the_command_is_used_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no project here: only --project-dir finds it
    status, _, err = run("plan", "--stack", "nothing", "--project-dir", str(ROOT))
    assert status == ExitStatus.USAGE
    assert "unknown stack(s) nothing; allowed: backup, lab, dev, prod" in err
    status, _, err = run("plan", "--project-dir", str(tmp_path / "missing"))
    assert status == ExitStatus.USAGE
    assert f"argument --project-dir: folder {tmp_path / 'missing'} does not exist" in err


# -- --version --------------------------------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == ExitStatus.OK
    assert capsys.readouterr().out == f"pgf-backup {version('pgf-backup')}\n"


# -- the project must be found -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["preview", "--offline", "--stacks", "lab"],
        ["runbook", "--stack", "prod"],
        ["verify", "--stack", "prod"],
    ],
)
def test_no_project_found_is_a_usage_error_not_the_installed_checkout(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not any((folder / "Pulumi.yaml").is_file() for folder in (tmp_path, *tmp_path.parents))
    monkeypatch.chdir(tmp_path)
    status, out, err = run(*argv)
    assert status == ExitStatus.USAGE
    assert err == (
        f"error: no Pulumi.yaml in {tmp_path.resolve()} or any folder above it: run pgf-backup from the project's "
        "folder (the one holding Pulumi.yaml) or pass --project-dir DIR\n"
    )
    assert out == ""


def test_the_project_is_found_from_a_folder_inside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "pgf_backup" / "automation")
    assert Project.find().root == ROOT
