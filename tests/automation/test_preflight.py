"""Preflight: the Pulumi CLI, the stack files, and the AWS accounts (STS against moto)."""

from __future__ import annotations

import shutil
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from pgf_backup.automation import preflight
from pgf_backup.automation.live import TrackedPulumiCommand
from pgf_backup.automation.offline import Project
from pgf_backup.automation.preflight import (
    INSTALL_HINT,
    DeployTarget,
    PreflightError,
    Problem,
    account_problems,
    consistency_problems,
    deploy_targets,
    destroy_problems,
    find_cli,
    load_configs,
    secrets_problems,
    sts_client,
    verify_target,
)

ALL = ["backup", "lab", "dev", "prod"]


@pytest.fixture
def copy(project, tmp_path) -> Project:
    """A copy of the project's Pulumi.yaml and stack files, to break."""
    for path in [project.root / "Pulumi.yaml", *project.root.glob("Pulumi.*.yaml")]:
        shutil.copy(path, tmp_path / path.name)
    return Project.find(tmp_path)


def edit(project: Project, stack: str, key: str, value: Any) -> None:
    path = project.stack_file(stack)
    data = yaml.safe_load(path.read_text())
    data["config"][f"pgf-backup:{key}"] = value
    path.write_text(yaml.safe_dump(data))


# -- the CLI ---------------------------------------------------------------------------------------


def test_a_missing_cli_gets_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PreflightError) as caught:
        find_cli()
    [problem] = caught.value.problems
    assert problem.message == f"the Pulumi CLI (`pulumi`) is not installed or not on PATH.\n{INSTALL_HINT}"
    assert "curl -fsSL https://get.pulumi.com | sh" in problem.message
    assert "version 3.200.0 or newer" in problem.message


def test_an_old_cli_is_refused_with_the_install_hint(fake_pulumi, monkeypatch):
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.150.2")
    with pytest.raises(PreflightError) as caught:
        find_cli(lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw))
    message = caught.value.problems[0].message
    assert "the Pulumi CLI is not usable by this driver" in message
    assert "minimum CLI version requirement is 3.200.0, your current CLI version is 3.150.2" in message
    assert INSTALL_HINT in message


def test_a_recent_cli_is_found(fake_pulumi):
    command = find_cli(lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw))
    assert str(command.version) == "3.272.0"


def test_a_broken_cli_is_reported(fake_pulumi, monkeypatch):
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "not a version")
    with pytest.raises(PreflightError, match="Could not parse the Pulumi CLI version"):
        find_cli(lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw))


# -- configuration ---------------------------------------------------------------------------------


def test_the_shipped_stack_files_pass(project):
    configs = load_configs(project, ["lab"])
    assert list(configs) == ["backup", "lab"]  # backup's config is always checked
    assert consistency_problems(project, load_configs(project, ALL)) == []


def test_every_invalid_stack_file_is_reported(copy):
    edit(copy, "lab", "regions", {"primary": "ca-centrl-1"})
    edit(copy, "prod", "tier", "production")
    with pytest.raises(PreflightError) as caught:
        load_configs(copy, ALL)
    assert [p.stack for p in caught.value.problems] == ["lab", "prod"]
    assert "pgf-backup:regions.primary: 'ca-centrl-1' is not a region where AWS Backup is available; did you mean" in (
        str(caught.value)
    )
    assert "pgf-backup:tier: 'production' is not allowed" in str(caught.value)


def test_accounts_must_agree_across_stack_files(copy):
    accounts = yaml.safe_load(copy.stack_file("dev").read_text())["config"]["pgf-backup:accounts"]
    edit(copy, "dev", "accounts", {**accounts, "prod": "400000000041"})
    with pytest.raises(PreflightError) as caught:
        load_configs(copy, ALL)
    assert [str(p) for p in caught.value.problems] == [
        "stack dev: accounts.prod is 400000000041 in Pulumi.dev.yaml but 400000000040 in Pulumi.backup.yaml; "
        "every stack file must name the same accounts"
    ]


def test_the_reference_must_name_the_backup_stack_the_driver_deploys(copy):
    edit(copy, "lab", "backup_stack", "organization/pgf-backup/central")
    with pytest.raises(PreflightError, match=r"pgf-backup:backup_stack is 'organization/pgf-backup/central'"):
        load_configs(copy, ["lab"])


def test_destroy_is_refused_for_stacks_with_compliance_locks(project):
    configs = load_configs(project, ALL)
    problems = destroy_problems(configs, ALL)
    assert [p.stack for p in problems] == ["backup", "prod"]
    assert "vault 'prod' (pgf-prod) holds a Vault Lock in compliance mode" in problems[1].message
    assert destroy_problems(configs, ["lab", "dev"]) == []


def test_self_managed_backends_need_a_passphrase_or_a_secrets_provider(project, copy):
    [problem] = secrets_problems("file:///state", project, ["lab", "dev"], {})
    assert "set PULUMI_CONFIG_PASSPHRASE" in problem.message
    assert "Pulumi.lab.yaml, Pulumi.dev.yaml" in problem.message
    assert secrets_problems("s3://bucket", project, ["lab"], {"PULUMI_CONFIG_PASSPHRASE": ""}) == []
    assert secrets_problems("s3://bucket", project, ["lab"], {"PULUMI_CONFIG_PASSPHRASE_FILE": "/p"}) == []
    assert secrets_problems("https://api.pulumi.com", project, ["lab"], {}) == []
    path = copy.stack_file("lab")
    path.write_text(path.read_text() + "secretsprovider: awskms://alias/pgf-backup?region=ca-central-1\n")
    assert secrets_problems("file:///state", copy, ["lab"], {}) == []


# -- AWS accounts, against moto --------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS, with credentials of the identity that runs the rollout."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ca-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def test_deploy_targets_assume_the_deploy_role_of_each_account(project):
    configs = load_configs(project, ALL)
    assert deploy_targets(configs, ["backup", "lab"]) == [
        DeployTarget(("backup",), "100000000010", "arn:aws:iam::100000000010:role/pgf-backup-deploy", "ca-central-1"),
        DeployTarget(("lab",), "200000000020", "arn:aws:iam::200000000020:role/pgf-backup-deploy", "ca-central-1"),
    ]


def test_each_assumed_role_lands_in_its_configured_account(project, aws):
    configs = load_configs(project, ALL)
    assert account_problems(configs, ALL) == []


def test_the_assumed_credentials_are_the_ones_asked(project, aws):
    seen: list[str] = []

    def recording(region, credentials=None):
        client = sts_client(region, credentials)
        if credentials is not None:
            seen.append(client.get_caller_identity()["Arn"])
        return client

    account_problems(load_configs(project, ALL), ["lab"], recording)
    assert seen == ["arn:aws:sts::200000000020:assumed-role/pgf-backup-deploy/pgf-backup-preflight"]


def test_a_wrong_account_is_refused(project, aws):
    # The credentials in use resolve to moto's default account, not to the configured one (as when
    # AWS_* variables of another account shadow the assumed role): nothing may run.
    def shadowed(region, credentials=None):
        return sts_client(region, None)

    configs = load_configs(project, ALL)
    problems = account_problems(configs, ["lab", "prod"], shadowed)
    assert [str(p) for p in problems] == [
        "stack lab: the deploy role arn:aws:iam::200000000020:role/pgf-backup-deploy lands in account "
        "123456789012, but the configuration says 200000000020: refusing to run anything (check the accounts "
        "map and the credentials)",
        "stack prod: the deploy role arn:aws:iam::400000000040:role/pgf-backup-deploy lands in account "
        "123456789012, but the configuration says 400000000040: refusing to run anything (check the accounts "
        "map and the credentials)",
    ]


def test_a_role_that_cannot_be_assumed_is_named():
    client = boto3.client("sts", region_name="ca-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    stubber.add_client_error(
        "assume_role", "AccessDenied", "User: arn:aws:iam::111111111111:user/ci is not authorized", 403
    )
    target = DeployTarget(("dev",), "300000000030", "arn:aws:iam::300000000030:role/pgf-backup-deploy", "ca-central-1")
    with stubber:
        problem = verify_target(target, lambda region, credentials=None: client)
    assert problem == Problem(
        "cannot assume the deploy role arn:aws:iam::300000000030:role/pgf-backup-deploy: AccessDenied: "
        "User: arn:aws:iam::111111111111:user/ci is not authorized. The role must exist in account "
        "300000000030 and trust the identity running the rollout (README.md, 'Operations: the multi-account "
        "rollout', 'Prerequisites')",
        "dev",
    )


def test_no_credentials_is_said_once(project, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    problems = account_problems(load_configs(project, ALL), ALL)
    assert len(problems) == 1
    assert problems[0].message.startswith("no AWS credentials found")


# -- all of it -------------------------------------------------------------------------------------


def test_run_checks_the_cheap_things_before_asking_aws(project, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    asked: list[str] = []
    with pytest.raises(PreflightError) as caught:
        preflight.run(
            project,
            ["lab"],
            "preview",
            backend_url="https://api.pulumi.com",
            sts=lambda region, credentials=None: asked.append(region),
        )
    assert asked == []
    assert len(caught.value.problems) == 1
    assert "not installed or not on PATH" in caught.value.problems[0].message


def test_run_refuses_a_destroy_before_asking_aws(project, fake_pulumi):
    with pytest.raises(PreflightError) as caught:
        preflight.run(
            project,
            ["prod"],
            "destroy",
            backend_url="https://api.pulumi.com",
            cli_factory=lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw),
            sts=lambda region, credentials=None: pytest.fail("AWS asked"),
        )
    assert [p.stack for p in caught.value.problems] == ["prod"]


def test_run_hands_over_the_cli_and_the_configs(project, fake_pulumi, aws):
    checked = preflight.run(
        project,
        ["backup", "lab"],
        "up",
        backend_url="file:///state",
        cli_factory=lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw),
        env={"PULUMI_CONFIG_PASSPHRASE": "x"},
    )
    assert isinstance(checked.command, TrackedPulumiCommand)
    assert list(checked.configs) == ["backup", "lab"]


def test_run_stops_on_a_wrong_account(project, fake_pulumi, aws):
    with pytest.raises(PreflightError, match="lands in account 123456789012"):
        preflight.run(
            project,
            ["lab"],
            "up",
            backend_url="https://api.pulumi.com",
            cli_factory=lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw),
            sts=lambda region, credentials=None: sts_client(region, None),
        )
