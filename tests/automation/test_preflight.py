"""Preflight: the Pulumi CLI, the stack files, the AWS accounts and the database keys (moto and Stubber)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.loaders import Loader
from botocore.stub import Stubber
from moto import mock_aws

from components.rds_protection import copy_key_policy_statement
from pgf_backup.automation import preflight
from pgf_backup.automation.live import TrackedPulumiCommand
from pgf_backup.automation.preflight import (
    INSTALL_HINT,
    KMS_ACTIONS_OF_WILDCARDS,
    DatabaseKey,
    DeployTarget,
    PreflightError,
    Problem,
    account_problems,
    consistency_problems,
    copy_actions,
    database_keys,
    deploy_targets,
    destroy_problems,
    find_cli,
    key_policy_findings,
    key_policy_verdict,
    load_configs,
    region_settings_findings,
    secrets_problems,
    sts_client,
    verify_target,
)
from pgf_backup.config import RegionResourceTypes, StackConfig
from pgf_backup.project import Project

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
    accounts = copy.load_config("dev").accounts
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
    # Every compliance-locked vault of prod is named: the tier's and its two vaults per criticality.
    assert (
        "vault 'prod' (pgf-prod), 'files-raw' (pgf-files-raw), 'files-processed' (pgf-files-processed) holds a "
        "Vault Lock in compliance mode"
    ) in problems[1].message
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
def aws(monkeypatch, project):
    """moto's AWS, with credentials of the identity that runs the rollout; in each stack's account and primary
    region, an AWS Config recorder records every supported type (AWS Backup Audit Manager's prerequisite)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ca-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        for account, region in sorted({(c.account_id, c.regions.primary) for c in load_configs(project, ALL).values()}):
            _start_recorder(account, region)
        yield


def _start_recorder(account: str, region: str) -> None:
    """A running recorder of every supported type, as AWS's resource tracking page sets it up."""
    client = _config_in(account, region)
    role = f"arn:aws:iam::{account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
    client.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": role,
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": False},
        }
    )
    client.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": f"config-bucket-{account}"})
    client.start_configuration_recorder(ConfigurationRecorderName="default")


def _config_in(account: str, region: str) -> Any:
    """An AWS Config client in `account` (moto keeps accounts apart by the credentials' assumed role)."""
    assumed = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/test-setup", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.client(
        "config",
        region_name=region,
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    )


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
        "300000000030 and trust the identity running the rollout (docs/operations.md, 'Prerequisites')",
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


def test_run_hands_over_the_cli_and_the_configs(copy, fake_pulumi, aws):
    key_arn = _lab_key(copy, [STATEMENT])
    checked = preflight.run(
        copy,
        ["backup", "lab"],
        "up",
        backend_url="file:///state",
        cli_factory=lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw),
        backup=_as_configured(load_configs(copy, ["lab"])["lab"]),
        env={"PULUMI_CONFIG_PASSPHRASE": "x"},
    )
    assert isinstance(checked.command, TrackedPulumiCommand)
    assert list(checked.configs) == ["backup", "lab"]
    assert checked.configs["lab"].databases["pgf-core"].kms_key_arn == key_arn
    # Only the management account's prerequisite, which no deploy role can check (no management stack here).
    assert [w.message.split(":")[0] for w in checked.warnings] == ["no management stack (Pulumi.management.yaml)"]


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


# -- database keys: their policies must admit the backup account -----------------------------------

BACKUP_ACCOUNT = "100000000010"
LAB_ACCOUNT = "200000000020"
LAB_KEY = f"arn:aws:kms:ca-central-1:{LAB_ACCOUNT}:key/0c1e5d8a-1f2b-4c3d-9e8f-200000000020"
OWNER_STATEMENT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{LAB_ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
STATEMENT = copy_key_policy_statement("aws", LAB_KEY, [BACKUP_ACCOUNT])


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [OWNER_STATEMENT, *statements]})


def _verdict(*statements: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    verdict = key_policy_verdict(_policy(*statements), LAB_KEY, [BACKUP_ACCOUNT])
    return verdict.missing, verdict.uncertain


def _lab_key(project: Project, statements: list[dict[str, Any]]) -> str:
    """A key in moto's lab account with these statements (and the owner's), named by the lab stack file."""
    credentials = boto3.client("sts", region_name="ca-central-1").assume_role(
        RoleArn=f"arn:aws:iam::{LAB_ACCOUNT}:role/pgf-backup-deploy", RoleSessionName="application-team"
    )["Credentials"]
    kms = boto3.client(
        "kms",
        region_name="ca-central-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    key_arn: str = kms.create_key()["KeyMetadata"]["Arn"]
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=_policy(*statements))
    edit(project, "lab", "databases", {"pgf-core": {"kind": "cluster", "kms_key_arn": key_arn}})
    return key_arn


def _run(project: Project, fake_pulumi, operation: str = "up", **kwargs: Any) -> preflight.Checked:
    # moto does not implement DescribeRegionSettings: AWS Backup answers as the lab stack file says.
    kwargs.setdefault("backup", _as_configured(load_configs(project, ["lab"])["lab"]))
    return preflight.run(
        project,
        ["lab"],
        operation,
        backend_url="https://api.pulumi.com",
        cli_factory=lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw),
        **kwargs,
    )


def test_the_wildcards_expand_as_botocores_kms_model_says():
    model = Loader().load_service_model("kms", "service-2")
    generate = sorted(f"kms:{name}" for name in model["operations"] if name.startswith("GenerateDataKey"))
    assert list(KMS_ACTIONS_OF_WILDCARDS["kms:GenerateDataKey*"]) == generate
    permissions = re.sub("<[^>]+>", "", model["operations"]["ReEncrypt"]["documentation"])
    assert "kms:ReEncryptFrom permission on the source KMS key" in permissions
    assert list(KMS_ACTIONS_OF_WILDCARDS["kms:ReEncrypt*"]) == ["kms:ReEncryptFrom", "kms:ReEncryptTo"]
    assert "kms:CreateGrant" in copy_actions()
    assert "kms:ReEncrypt*" not in copy_actions()


# Both sides, on the pure evaluation: what admits the backup account, and what does not.


@pytest.mark.parametrize(
    "statement",
    [
        STATEMENT,
        {**STATEMENT, "Principal": {"AWS": BACKUP_ACCOUNT}},  # an account id is its root
        {**STATEMENT, "Principal": {"AWS": f"arn:aws:iam::{BACKUP_ACCOUNT}:root"}, "Action": "kms:*"},
        {**STATEMENT, "Resource": LAB_KEY},
        {**STATEMENT, "Action": [*copy_actions()]},
    ],
    ids=["documented", "account-id", "kms-star", "key-arn", "concrete-actions"],
)
def test_a_policy_that_admits_the_backup_account_passes(statement):
    assert _verdict(statement) == ({}, {})


def test_without_the_statement_every_action_is_missing():
    missing, uncertain = _verdict()
    assert missing == {BACKUP_ACCOUNT: copy_actions()}
    assert uncertain == {}


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ({**STATEMENT, "Action": [a for a in copy_actions() if a != "kms:ReEncryptTo"]}, ["kms:ReEncryptTo"]),
        ({**STATEMENT, "Action": [a for a in STATEMENT["Action"] if a != "kms:CreateGrant"]}, ["kms:CreateGrant"]),
        ({**STATEMENT, "Principal": {"AWS": f"arn:aws:iam::{BACKUP_ACCOUNT}:role/pgf-backup-copy"}}, copy_actions()),
        ({**STATEMENT, "Principal": {"AWS": "arn:aws:iam::300000000030:root"}}, copy_actions()),
        ({**STATEMENT, "Effect": "Deny"}, copy_actions()),
        ({**STATEMENT, "Resource": f"{LAB_KEY}-other"}, copy_actions()),
    ],
    ids=["one-action-short", "no-create-grant", "a-role-not-the-account", "another-account", "deny", "other-key"],
)
def test_a_policy_that_does_not_admit_the_backup_account_is_missing(statement, missing):
    assert _verdict(statement) == ({BACKUP_ACCOUNT: missing}, {})


def test_an_explicit_deny_wins_over_the_statement():
    deny = {"Effect": "Deny", "Principal": "*", "Action": "kms:CreateGrant", "Resource": "*"}
    assert _verdict(STATEMENT, deny) == ({BACKUP_ACCOUNT: ["kms:CreateGrant"]}, {})
    not_principal = {**deny, "Principal": None, "NotPrincipal": {"AWS": f"arn:aws:iam::{LAB_ACCOUNT}:root"}}
    del not_principal["Principal"]
    assert _verdict(STATEMENT, not_principal) == ({BACKUP_ACCOUNT: ["kms:CreateGrant"]}, {})
    spared = {**not_principal, "NotPrincipal": {"AWS": [f"arn:aws:iam::{BACKUP_ACCOUNT}:root"]}}
    assert _verdict(STATEMENT, spared) == ({}, {})


def test_conditions_preflight_cannot_evaluate_are_uncertain_not_missing():
    conditional = {**STATEMENT, "Condition": {"StringEquals": {"kms:ViaService": "rds.ca-central-1.amazonaws.com"}}}
    missing, uncertain = _verdict(conditional)
    assert missing == {}
    assert uncertain[BACKUP_ACCOUNT][0] == "kms:CreateGrant (allowed only under a condition)"
    org_deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-example"}},
    }
    missing, uncertain = _verdict(STATEMENT, org_deny)
    assert missing == {}
    assert len(uncertain[BACKUP_ACCOUNT]) == len(copy_actions())
    assert uncertain[BACKUP_ACCOUNT][0] == "kms:CreateGrant (a conditional Deny may refuse it)"


# Which keys preflight reads.


def test_the_keys_are_those_of_databases_copied_to_the_backup_account(project):
    configs = load_configs(project, ALL)
    keys = database_keys(configs, ALL)
    assert [(k.stack, k.database, k.destination_account_ids) for k in keys] == [
        ("lab", "pgf-core", (BACKUP_ACCOUNT,)),
        ("dev", "pgf-core", (BACKUP_ACCOUNT,)),
        ("prod", "pgf-core", (BACKUP_ACCOUNT,)),
        ("prod", "pgf-audit", (BACKUP_ACCOUNT,)),
    ]
    assert keys[0].key_arn == LAB_KEY
    assert (keys[0].account_id, keys[0].region, keys[0].partition) == (LAB_ACCOUNT, "ca-central-1", "aws")
    assert database_keys(configs, ["backup"]) == []


def test_no_key_is_read_when_nothing_is_copied_to_the_backup_account(copy):
    plan = yaml.safe_load(copy.stack_file("lab").read_text())["config"].get("pgf-backup:plan")
    if plan is None:
        pytest.skip("the lab stack file has no plan section to turn the copy off in")
    edit(copy, "lab", "plan", {**plan, "copy_to_backup_account": False})
    assert database_keys(load_configs(copy, ["lab"]), ["lab"]) == []


# Against moto (KMS) and botocore's Stubber (the refusals moto does not make).


def test_a_key_policy_with_the_statement_passes(copy, fake_pulumi, aws):
    _lab_key(copy, [STATEMENT])
    assert _run(copy, fake_pulumi).warnings == []


def test_a_key_policy_without_the_statement_names_the_database_and_the_account(copy, fake_pulumi, aws):
    key_arn = _lab_key(copy, [])
    with pytest.raises(PreflightError) as caught:
        _run(copy, fake_pulumi)
    [problem] = caught.value.problems
    assert problem.stack == "lab"
    assert problem.message.startswith(
        f"databases.pgf-core: the key {key_arn} does not let account {BACKUP_ACCOUNT} copy the database's "
        "snapshots (not allowed: kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:Encrypt, kms:GenerateDataKey, "
    )
    assert "The application team owns the key: add this statement to its key policy" in problem.message
    statement = json.loads(problem.message[problem.message.index("\n{") :])
    assert statement == copy_key_policy_statement("aws", key_arn, [BACKUP_ACCOUNT])


def test_the_missing_statement_names_only_the_missing_account():
    key = DatabaseKey("lab", "pgf-core", LAB_KEY, (BACKUP_ACCOUNT, "500000000050"))
    policy = _policy({**STATEMENT, "Principal": {"AWS": "500000000050"}})
    client = boto3.client("kms", region_name="ca-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    stubber.add_response("get_key_policy", {"Policy": policy}, {"KeyId": LAB_KEY, "PolicyName": "default"})
    with stubber:
        problems, warnings = key_policy_findings([key], {LAB_ACCOUNT: {}}, lambda region, credentials=None: client)
    [problem] = problems
    assert f"does not let account {BACKUP_ACCOUNT} copy" in problem.message
    assert json.loads(problem.message[problem.message.index("\n{") :])["Principal"] == {
        "AWS": [f"arn:aws:iam::{BACKUP_ACCOUNT}:root"]
    }
    assert warnings == []


def test_a_key_that_does_not_exist_is_a_problem(project, fake_pulumi, aws):
    with pytest.raises(PreflightError) as caught:
        _run(project, fake_pulumi)
    [problem] = caught.value.problems
    assert problem.message.startswith(
        f"databases.pgf-core: the key {LAB_KEY} was not found in account {LAB_ACCOUNT}, region ca-central-1 "
        "(NotFoundException): check databases.pgf-core.kms_key_arn"
    )


def test_access_denied_is_a_warning_not_a_failure(project, fake_pulumi, aws):
    client = boto3.client("kms", region_name="ca-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_key_policy",
        "AccessDeniedException",
        "User: arn:aws:sts::200000000020:assumed-role/pgf-backup-deploy/pgf-backup-preflight is not authorized",
        400,
        expected_params={"KeyId": LAB_KEY, "PolicyName": "default"},
    )
    with stubber:
        checked = _run(project, fake_pulumi, kms=lambda region, credentials=None: client)
    [warning] = checked.warnings
    assert warning.stack == "lab"
    assert warning.message.startswith(
        f"databases.pgf-core: the key {LAB_KEY} is unverified: preflight cannot tell whether its policy admits "
        f"account {BACKUP_ACCOUNT} (AccessDeniedException: "
    )
    assert warning.message.endswith("let the deploy role call kms:GetKeyPolicy on it to have it checked)")


def test_a_key_in_another_account_is_unverified():
    other = DatabaseKey("lab", "pgf-core", LAB_KEY.replace(LAB_ACCOUNT, "600000000060"), (BACKUP_ACCOUNT,))
    problems, warnings = key_policy_findings(
        [other], {LAB_ACCOUNT: {}}, lambda region, credentials=None: pytest.fail("GetKeyPolicy is not cross-account")
    )
    assert problems == []
    [warning] = warnings
    assert "is unverified" in warning.message
    assert "the key is in account 600000000060, where preflight has no deploy role" in warning.message


def test_keys_are_read_in_their_region_with_the_deploy_role_of_their_account():
    seen: list[tuple[str, Any]] = []
    client = boto3.client("kms", region_name="us-west-2", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    key = DatabaseKey("lab", "pgf-core", LAB_KEY.replace("ca-central-1", "us-west-2"), (BACKUP_ACCOUNT,))
    stubber.add_response(
        "get_key_policy", {"Policy": _policy(STATEMENT)}, {"KeyId": key.key_arn, "PolicyName": "default"}
    )
    deploy = {"AccessKeyId": "A", "SecretAccessKey": "S", "SessionToken": "T"}

    def factory(region, credentials=None):
        seen.append((region, credentials))
        return client

    with stubber:
        assert key_policy_findings([key], {LAB_ACCOUNT: deploy}, factory) == ([], [])
    assert seen == [("us-west-2", deploy)]


@pytest.mark.parametrize("operation", ["refresh", "drift", "destroy"])
def test_only_preview_and_up_read_the_keys(project, fake_pulumi, aws, operation):
    checked = _run(
        project,
        fake_pulumi,
        operation,
        kms=lambda region, credentials=None: pytest.fail(f"{operation} read a key"),
        backup=lambda region, credentials=None: pytest.fail(f"{operation} read the region settings"),
        config=lambda region, credentials=None: pytest.fail(f"{operation} asked AWS Config"),
    )
    assert checked.warnings == []


# -- region settings: the configured resource types against DescribeRegionSettings (Stubber) -------
#
# moto does not implement DescribeRegionSettings (it answers 404 "Not yet implemented").

DEPLOY = {"AccessKeyId": "A", "SecretAccessKey": "S", "SessionToken": "T"}


def _answer(
    listed: RegionResourceTypes, add: tuple[str, ...] = (), drop: tuple[str, ...] = (), management: Any = None
) -> dict[str, Any]:
    """DescribeRegionSettings' answer for a region whose types are `listed`, plus `add`, minus `drop`."""
    opt_in = [t for t in (*listed.opt_in, *add) if t not in drop]
    return {
        "ResourceTypeOptInPreference": dict.fromkeys(opt_in, False),
        "ResourceTypeManagementPreference": dict(listed.management) if management is None else management,
    }


def _backup_factory(answers: Mapping[str, dict[str, Any]], seen: list[tuple[str, Any]] | None = None):
    """AWS Backup clients answering DescribeRegionSettings, once per call, with `answers[region]`."""

    def factory(region, credentials=None):
        if seen is not None:
            seen.append((region, credentials))
        client = boto3.client("backup", region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
        stubber = Stubber(client)
        stubber.add_response("describe_region_settings", answers[region], {})
        stubber.activate()
        return client

    return factory


def _as_configured(cfg: StackConfig, seen: list[tuple[str, Any]] | None = None):
    """AWS Backup answering exactly what the stack's config lists."""
    return _backup_factory({r: _answer(listed) for r, listed in cfg.region_resource_types.items()}, seen)


def test_region_settings_as_aws_lists_them_pass(project):
    configs = load_configs(project, ALL)
    credentials = {configs[s].account_id: {**DEPLOY, "AccessKeyId": s} for s in ALL}
    seen: list[tuple[str, Any]] = []
    factory = _as_configured(configs["lab"], seen)
    assert region_settings_findings(configs, ALL, credentials, factory) == ([], [])
    # Each workload account in each of its regions, with its own deploy role; not the backup account.
    assert [(region, c["AccessKeyId"]) for region, c in seen] == [
        (region, stack) for stack in ("lab", "dev", "prod") for region in ("ca-central-1", "ca-west-1")
    ]


def test_region_settings_are_asked_once_per_account_and_region(project):
    configs = load_configs(project, ["lab"])
    seen: list[tuple[str, Any]] = []
    twins = {"lab": configs["lab"], "lab-2": configs["lab"]}
    findings = region_settings_findings(
        twins, ["lab", "lab-2"], {LAB_ACCOUNT: DEPLOY}, _as_configured(twins["lab"], seen)
    )
    assert findings == ([], [])
    assert seen == [("ca-central-1", DEPLOY), ("ca-west-1", DEPLOY)]


def test_a_type_aws_does_not_offer_in_the_region_is_a_problem(project):
    cfg = load_configs(project, ["lab"])["lab"]
    central, west = cfg.region_resource_types["ca-central-1"], cfg.region_resource_types["ca-west-1"]
    answers = {
        "ca-central-1": _answer(central),
        "ca-west-1": _answer(west, drop=("SAP HANA on Amazon EC2", "Timestream"), management={"DynamoDB": True}),
    }
    problems, warnings = region_settings_findings(
        {"lab": cfg}, ["lab"], {LAB_ACCOUNT: DEPLOY}, _backup_factory(answers)
    )
    assert warnings == []
    assert [str(p) for p in problems] == [
        "stack lab: region_resource_types.ca-west-1.opt_in: SAP HANA on Amazon EC2, Timestream not offered by AWS "
        "Backup in ca-west-1 (DescribeRegionSettings' ResourceTypeOptInPreference does not list it): remove it, "
        "or AWS refuses the region settings",
        "stack lab: region_resource_types.ca-west-1.management: EFS not offered by AWS Backup in ca-west-1 "
        "(DescribeRegionSettings' ResourceTypeManagementPreference does not list it): remove it, or AWS refuses "
        "the region settings",
    ]


def test_a_type_aws_offers_that_the_config_lacks_is_a_problem(project):
    cfg = load_configs(project, ["lab"])["lab"]
    central, west = cfg.region_resource_types["ca-central-1"], cfg.region_resource_types["ca-west-1"]
    answers = {
        "ca-central-1": _answer(central, add=("DSQL",), management={"DynamoDB": True, "EFS": True, "EKS": False}),
        "ca-west-1": _answer(west),
    }
    problems, _ = region_settings_findings({"lab": cfg}, ["lab"], {LAB_ACCOUNT: DEPLOY}, _backup_factory(answers))
    assert [str(p) for p in problems] == [
        "stack lab: region_resource_types.ca-central-1.opt_in: AWS Backup in ca-central-1 also lists DSQL "
        "(ResourceTypeOptInPreference): add it: it would show a diff on every preview",
        "stack lab: region_resource_types.ca-central-1.management: AWS Backup in ca-central-1 also lists EKS "
        "(ResourceTypeManagementPreference): add it: it would show a diff on every preview",
    ]


def test_region_settings_problems_stop_preview(copy, fake_pulumi, aws):
    cfg = load_configs(copy, ["lab"])["lab"]
    answers = {r: _answer(listed) for r, listed in cfg.region_resource_types.items()}
    answers["ca-west-1"] = _answer(cfg.region_resource_types["ca-west-1"], add=("DSQL",))
    _lab_key(copy, [STATEMENT])
    with pytest.raises(PreflightError) as caught:
        _run(copy, fake_pulumi, "preview", backup=_backup_factory(answers))
    [problem] = caught.value.problems
    assert problem.stack == "lab"
    assert problem.message.startswith("region_resource_types.ca-west-1.opt_in: AWS Backup in ca-west-1 also lists DSQL")


def test_region_settings_access_denied_is_a_warning(copy, fake_pulumi, aws):
    def denying(region, credentials=None):
        client = boto3.client("backup", region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
        stubber = Stubber(client)
        stubber.add_client_error(
            "describe_region_settings",
            "AccessDeniedException",
            "User: arn:aws:sts::200000000020:assumed-role/pgf-backup-deploy/pgf-backup-preflight is not authorized",
            403,
        )
        stubber.activate()
        return client

    _lab_key(copy, [STATEMENT])
    checked = _run(copy, fake_pulumi, backup=denying)
    assert [w.stack for w in checked.warnings] == ["lab", "lab"]
    assert checked.warnings[1].message.startswith(
        f"region_resource_types.ca-west-1: unverified in account {LAB_ACCOUNT} (DescribeRegionSettings: "
        "AccessDeniedException: User: "
    )
    assert checked.warnings[1].message.endswith(
        "; let the deploy role call backup:DescribeRegionSettings to have it checked)"
    )


def test_region_settings_unreachable_is_a_warning(project):
    configs = load_configs(project, ["lab"])

    class Unreachable:
        def describe_region_settings(self, **kwargs):
            raise EndpointConnectionError(endpoint_url="https://backup.ca-central-1.amazonaws.com/account-settings")

    problems, warnings = region_settings_findings(
        configs, ["lab"], {LAB_ACCOUNT: DEPLOY}, lambda region, credentials=None: Unreachable()
    )
    assert problems == []
    assert warnings[0].message == (
        f"region_resource_types.ca-central-1: unverified in account {LAB_ACCOUNT} (cannot reach AWS Backup in "
        'ca-central-1: Could not connect to the endpoint URL: "https://backup.ca-central-1.amazonaws.com/'
        'account-settings")'
    )


def test_moto_does_not_answer_describe_region_settings(aws):
    # Why these tests use botocore's Stubber: a moto-backed run would only ever see the warning.
    client = boto3.client("backup", region_name="ca-central-1")
    with pytest.raises(ClientError, match="Not yet implemented"):
        client.describe_region_settings()


# -- AWS Config recording, which AWS Backup Audit Manager's frameworks need (moto) ------------------


@pytest.mark.parametrize("operation", ["preview", "up"])
def test_a_missing_recorder_is_a_warning_that_does_not_stop_the_rollout(copy, fake_pulumi, aws, operation):
    _lab_key(copy, [STATEMENT])
    _config_in(LAB_ACCOUNT, "ca-central-1").delete_configuration_recorder(ConfigurationRecorderName="default")
    checked = _run(copy, fake_pulumi, operation)
    [warning] = checked.warnings
    assert warning.stack == "lab"
    assert warning.message.startswith(
        f"AWS Config in account {LAB_ACCOUNT}, ca-central-1 does not record AWS::Backup::BackupPlan, "
        "AWS::Backup::BackupSelection, AWS::Backup::BackupVault, AWS::Backup::RecoveryPoint: AWS Backup Audit "
        "Manager's frameworks are created but evaluate nothing without them"
    )


def test_the_recorder_is_asked_in_each_stacks_account_with_its_deploy_role(copy, fake_pulumi, aws):
    _lab_key(copy, [STATEMENT])
    # Stopped in the backup account only: the lab account's recorder does not answer for it.
    _config_in(BACKUP_ACCOUNT, "ca-central-1").stop_configuration_recorder(ConfigurationRecorderName="default")
    checked = preflight.run(
        copy,
        ["backup", "lab"],
        "up",
        backend_url="https://api.pulumi.com",
        cli_factory=lambda **kw: TrackedPulumiCommand(root=str(fake_pulumi), **kw),
        backup=_as_configured(load_configs(copy, ["lab"])["lab"]),
    )
    recording = [w for w in checked.warnings if w.message.startswith("AWS Config")]
    assert [(w.stack, w.message.split(" does not record")[0]) for w in recording] == [
        ("backup", f"AWS Config in account {BACKUP_ACCOUNT}, ca-central-1")
    ]


# -- the management account's part -----------------------------------------------------------------


def test_without_a_management_stack_preflight_gives_the_commands_account_mode(project):
    configs = load_configs(project, ALL)
    [warning] = preflight.management_warnings(project, configs, ALL, "up")
    assert warning.message.startswith(
        "no management stack (Pulumi.management.yaml): the copies to the backup account need cross-account backup "
        "enabled in AWS Backup's global settings of the organization's management account."
    )
    assert "  aws backup update-global-settings --global-settings isCrossAccountBackupEnabled=true\n" in warning.message
    assert "register-delegated-administrator" not in warning.message  # account mode delegates nothing
    # Not for operations that deploy nothing, nor for a rollout without the backup stack.
    assert preflight.management_warnings(project, configs, ALL, "refresh") == []
    assert preflight.management_warnings(project, configs, ["lab"], "up") == []


def test_without_a_management_stack_preflight_gives_the_commands_organization_mode(copy):
    edit(copy, "backup", "organization", {"id": "o-pgfexample01", "root_id": "r-pgf0"})
    accounts = load_configs(copy, ["backup"])["backup"].accounts
    edit(copy, "backup", "accounts", {**accounts, "management": "900000000090"})
    configs = {"backup": copy.load_config("backup").model_copy(update={"scheduling": "organization"})}
    [warning] = preflight.management_warnings(copy, configs, ["backup"], "preview")
    lines = warning.message.splitlines()
    assert "backup account 100000000010 registered as AWS Backup's delegated administrator" in lines[0]
    assert lines[1:4] == [
        "  aws backup update-global-settings --global-settings isCrossAccountBackupEnabled=true",
        "  aws organizations register-delegated-administrator --account-id 100000000010 "
        "--service-principal backup.amazonaws.com",
        lines[3],
    ]
    prefix = "  aws organizations put-resource-policy --content '"
    assert lines[3].startswith(prefix) and lines[3].endswith("'")
    policy = json.loads(lines[3][len(prefix) : -1])
    assert policy["Statement"][2]["Resource"][0] == "arn:aws:organizations::900000000090:root/o-pgfexample01/r-pgf0"
    assert {s["Principal"]["AWS"] for s in policy["Statement"]} == {"arn:aws:iam::100000000010:root"}


def test_a_configured_management_stack_needs_no_warning_and_names_the_same_organization(copy):
    from tests.conftest import add_management_stack

    add_management_stack(copy.root)
    assert preflight.management_warnings(copy, load_configs(copy, ALL), ALL, "up") == []
    edit(copy, "management", "organization", {"id": "o-otherorg0001", "root_id": "r-pgf0"})
    with pytest.raises(PreflightError) as caught:
        load_configs(copy, ["management", *ALL])
    assert [str(p) for p in caught.value.problems] == [
        "stack management: organization.id is o-otherorg0001 in Pulumi.management.yaml but o-pgfexample01 in "
        "Pulumi.backup.yaml; every stack file must name the same organization"
    ]
