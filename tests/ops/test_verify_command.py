"""`pgf-backup verify` on the command line: formats, exit statuses, AWS errors without a traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pgf_backup.automation import aws_access, cli, verify_command
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project
from tests.ops.conftest import NOW, World


def _run(argv: list[str], project: Project) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(["--project-dir", str(project.root), *argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def wired(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The command's role sessions through moto's STS, its AWS Backup clients the world's stubs."""
    clients, remote, _ = world.factories()
    made = iter([remote, clients])  # the backup account's first
    monkeypatch.setattr(verify_command, "_factory", lambda session: next(made))
    monkeypatch.setattr(verify_command, "_assume", lambda account, role, region, what: object())
    monkeypatch.setattr(verify_command, "_now", lambda: NOW)
    return world


def test_fully_covered_exits_0_with_json(wired: World, project: Project, tmp_path: Path) -> None:
    target = tmp_path / "verify.json"
    status, _, err = _run(["verify", "--stack", "prod", "--format", "json", "--out", str(target)], project)
    assert status == ExitStatus.OK, err
    doc = json.loads(target.read_text())
    assert doc["schema"] == "pgf-backup/verify/v1" and doc["ok"] is True
    assert doc["summary"]["protected"] == len(doc["resources"]) == 6
    assert f"report written to {target}" in err


def test_gap_exits_1_and_says_what(wired: World, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    wired_table = next(arn for arn in wired.resources if ":table/" in arn)
    del wired.backup_age_hours[wired_table]
    wired.copied[wired_table] = set()
    clients, remote, _ = wired.factories()  # rebuild the stubs with the gap
    made = iter([remote, clients])  # the backup account's first
    monkeypatch.setattr(verify_command, "_factory", lambda session: next(made))
    status, out, err = _run(["verify", "--stack", "prod"], project)
    assert status == ExitStatus.FAILED
    assert "problem: DynamoDB pgf-sessions (ca-central-1): no recovery point yet" in err
    assert "pgf-sessions" in out and "Coverage:" in out


def test_access_denied_is_a_message_not_a_traceback(
    wired: World, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    wired.errors["ListProtectedResources"] = "AccessDeniedException"
    clients, remote, _ = wired.factories()
    made = iter([remote, clients])  # the backup account's first
    monkeypatch.setattr(verify_command, "_factory", lambda session: next(made))
    status, out, err = _run(["verify", "--stack", "prod"], project)
    assert status == ExitStatus.FAILED
    assert "error: AWS refused ListProtectedResources: AccessDeniedException" in err
    assert "Traceback" not in err and out == ""


def test_throttling_after_retries_is_named(wired: World, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    wired.errors["ListProtectedResources"] = "ThrottlingException"
    clients, remote, _ = wired.factories()
    made = iter([remote, clients])  # the backup account's first
    monkeypatch.setattr(verify_command, "_factory", lambda session: next(made))
    status, _, err = _run(["verify", "--stack", "prod"], project)
    assert status == ExitStatus.FAILED
    assert "error: AWS refused ListProtectedResources (after adaptive retries): ThrottlingException" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "--stack", "nope"], "unknown stack 'nope'"),
        (["verify", "--stack", "backup"], "is the backup-account stack"),
        (["verify", "--stack", "prod", "--format", "pdf"], "invalid choice"),
        (["verify", "--stack", "prod", "--role", "bad role"], "is not an IAM role name"),
    ],
)
def test_usage_errors_exit_2(aws: None, project: Project, argv: list[str], message: str) -> None:
    status, _, err = _run(argv, project)
    assert status == ExitStatus.USAGE
    assert message in err


def test_role_that_cannot_be_assumed(aws: None, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    def refuse(region: Any, role: Any, name: str) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    monkeypatch.setattr(aws_access, "session", refuse)
    status, _, err = _run(["verify", "--stack", "prod"], project)
    assert status == ExitStatus.FAILED
    assert "cannot assume arn:aws:iam::400000000040:role/pgf-backup-deploy (stack prod): AccessDenied" in err


def test_credentials_for_another_account_exit_2(aws: None, project: Project) -> None:
    # moto answers GetCallerIdentity with MOTO_ACCOUNT_ID (the prod account) whatever role was assumed: for the
    # backup account's role, that is another account than the one asked for.
    status, _, err = _run(["verify", "--stack", "prod"], project)
    assert status == ExitStatus.USAGE
    assert "gave credentials for account 400000000040, not 100000000010 (the backup account)" in err


def test_interrupt_exits_130(aws: None, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(verify_command, "_assume", interrupted)
    status, _, err = _run(["verify", "--stack", "prod"], project)
    assert status == ExitStatus.INTERRUPTED and "interrupted" in err
