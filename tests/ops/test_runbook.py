"""`pgf-backup runbook`: each shipped stack's runbook holds every ARN of its outputs and every vault, bucket and
database of its config, after the contacts and the escalation ladder; HTML is escaped and self-contained.

The offline plan runs once for the four stacks (module fixture, through the command's own `plan_outputs`); the
command tests read those outputs instead of evaluating again.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation import CommandResult, OutputValue, StackNotFoundError

from pgf_backup.automation import cli, runbook_command
from pgf_backup.automation.offline import StackError
from pgf_backup.automation.planner import PlanResult
from pgf_backup.automation.preflight import find_cli
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import BackupAccountStack, WorkloadStack
from pgf_backup.config.operations import Contact, EscalationStep, Operations
from pgf_backup.config.restore_testing import RestoreNetwork, RestoreTesting
from pgf_backup.ops import runbook
from pgf_backup.project import Project

STACKS = ("backup", "lab", "dev", "prod")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def planned(project: Project) -> dict[str, runbook.Outputs]:
    """The four stacks' outputs from one offline evaluation each (the backup stack's first)."""
    return runbook_command.plan_outputs(project, list(STACKS), io.StringIO())


@pytest.fixture
def offline(planned: dict[str, runbook.Outputs], monkeypatch: pytest.MonkeyPatch) -> dict[str, runbook.Outputs]:
    """The command reads the fixture's outputs, at a fixed time."""

    def outputs(project: Project, stacks: Sequence[str], err: Any) -> dict[str, runbook.Outputs]:
        return {stack: planned[stack] for stack in stacks}

    monkeypatch.setattr(runbook_command, "_plan_outputs", outputs)
    monkeypatch.setattr(runbook_command, "_now", lambda: NOW)
    return planned


def _run(argv: list[str], project: Project) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(["--project-dir", str(project.root), *argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def _names(cfg: WorkloadStack | BackupAccountStack) -> list[str]:
    """Every vault, bucket and database name of a stack's config."""
    names = [cfg.vault_name(key) for key in cfg.vaults]
    if isinstance(cfg, BackupAccountStack):
        names += [cfg.air_gapped_vault_name(key) for key, vault in cfg.vaults.items() if vault.air_gapped]
    else:
        names += list(cfg.buckets) + list(cfg.databases)
        names += [cfg.exports.bucket] if cfg.exports else []
    return names


def _workloads(project: Project) -> dict[str, WorkloadStack]:
    return {s: c for s in project.known_stacks() if isinstance(c := project.load_config(s), WorkloadStack)}


def _build(project: Project, stack: str, outputs: runbook.Outputs, cfg: Any = None) -> runbook.Runbook:
    found = cfg or project.load_config(stack)
    assert isinstance(found, (BackupAccountStack, WorkloadStack))
    return runbook.build(
        stack,
        found,
        backup_cfg=project.backup_config(),
        workloads=_workloads(project),
        outputs=outputs,
        generated_at=NOW,
    )


# ---------------------------------------------------------------------------------------------
# What each shipped stack's runbook holds


@pytest.mark.parametrize("stack", STACKS)
def test_runbook_holds_every_arn_name_contact_and_step(
    stack: str, offline: dict[str, runbook.Outputs], project: Project
) -> None:
    status, out, err = _run(["runbook", "--stack", stack], project)
    assert status == ExitStatus.OK, err
    outputs = offline[stack]
    arns = runbook.output_arns(outputs.stack)
    assert len(arns) > 10  # the program exports vaults, keys, roles...: an empty list would prove nothing
    missing = [(path, arn) for path, arn in arns if arn not in out]
    assert not missing
    cfg = project.load_config(stack)
    assert isinstance(cfg, (BackupAccountStack, WorkloadStack))
    assert [name for name in _names(cfg) if f"`{name}`" not in out and f" {name}" not in out] == []
    ops = cfg.operations
    assert ops.contacts and ops.escalation  # the shipped Pulumi.yaml has both
    first_section = out.index("## 1. ")
    for contact in ops.contacts:
        assert contact.name in out[:first_section] and contact.email in out[:first_section]
        assert contact.phone is None or contact.phone in out[:first_section]
    # The ladder in its order, each step with its delay and contact.
    ladder = out.index("### Escalation")
    positions = [out.index(f"{step.contact}, ", ladder) for step in ops.escalation]
    assert positions == sorted(positions) and positions[-1] < first_section
    assert "1. At once: PGF on-call" in out and "3. After 120 minutes without a restore: Cloud platform manager" in out


@pytest.mark.parametrize("stack", STACKS)
def test_every_section_starts_with_prerequisites(
    stack: str, planned: dict[str, runbook.Outputs], project: Project
) -> None:
    doc = _build(project, stack, planned[stack])
    text = runbook.render_md(doc)
    for number, section in enumerate(doc.sections, 1):
        assert section.prerequisites, section.title
        heading = text.index(f"## {number}. {section.title}\n")
        assert text[heading:].split("\n", 4)[2] == "**Prerequisites**"
    # The operations team's access prerequisites in every restore section.
    access = project.load_config(stack).operations.prerequisites.access
    restores = [s for s in doc.sections if s.key != "arns"]
    for section in restores:
        shown = ["".join(p.text if isinstance(p, runbook.Code) else p for p in line) for line in section.prerequisites]
        assert set(access) <= set(shown), section.title


def test_workload_restore_commands_name_the_exact_resources(
    planned: dict[str, runbook.Outputs], project: Project
) -> None:
    outputs = planned["prod"]
    text = runbook.render_md(_build(project, "prod", outputs))
    role = outputs.stack["service_role_arn"]
    # S3: the documented metadata keys, the bucket's ARN and the service role.
    assert f"--resource-arn {outputs.stack['buckets']['pgf-documents-prod']['arn']}" in text
    assert (
        '"DestinationBucketName":"pgf-documents-prod-restored","NewBucket":"true","EncryptionType":"original"' in text
    )
    assert '"ItemsToRestore":"[\\"s3://pgf-documents-prod/<key or prefix>\\"]"' in text
    assert f"--resource-type S3 \\\n    --iam-role-arn {role}" in text or f"--iam-role-arn {role}" in text
    # RDS and Aurora: a new identifier, the right resource type, the writer of a restored cluster.
    assert """jq '. + {"DBClusterIdentifier": "pgf-core-restored"}'""" in text
    assert """jq '. + {"DBInstanceIdentifier": "pgf-audit-restored"}'""" in text
    assert "--resource-type Aurora" in text and "--resource-type RDS" in text
    assert "--db-cluster-identifier pgf-core-restored" in text
    # Copy back from the backup account's central vault into this account's vault, as the backup account's role.
    central = outputs.backup["central_vaults"]["prod"]["ca-central-1"]
    assert f"--source-backup-vault-name {central['name']}" in text
    assert f"--destination-backup-vault-arn {outputs.stack['vaults']['prod']['ca-central-1']['arn']}" in text
    assert f"--iam-role-arn {outputs.backup['service_role_arn']}" in text
    assert central["arn"] in text and outputs.backup["air_gapped_vaults"]["prod"]["arn"] in text
    assert "pgf-backup restore copy-back --recovery-point <RecoveryPointArn> --to prod" in text
    assert "--lifecycle DeleteAfterDays=35" in text  # inside the prod vault's compliance lock (35-3650)
    # Glue catalog and QuickSight imports from the export prefixes; IaC with the real grammar.
    catalog = outputs.stack["exports"]["catalog"]["prefix"]
    assert f"pgf-backup catalog import \\\n    {catalog}<UTC time of the run>/" in text
    assert outputs.stack["exports"]["quicksight"]["prefix"] in text
    assert (
        "pgf-backup up --stack prod" in text
        and "aws ssm get-parameters-by-path --region ca-central-1 --path /pgf" in text
    )
    assert "stop-replication-to-replica --region ca-west-1" in text


def test_lab_says_what_it_does_not_export(planned: dict[str, runbook.Outputs], project: Project) -> None:
    text = runbook.render_md(_build(project, "lab", planned["lab"]))
    assert "This stack does not export QuickSight" in text
    assert "pgf-backup catalog import" in text
    assert "Point in time" not in text  # the lab plan has no continuous rule
    assert "--lifecycle DeleteAfterDays=7" in text


def test_backup_copy_back_targets_are_the_workload_vaults(
    planned: dict[str, runbook.Outputs], project: Project
) -> None:
    text = runbook.render_md(_build(project, "backup", planned["backup"]))
    for stack in ("lab", "dev", "prod"):
        # The destination the runbook writes is the ARN the workload stack's program computes for its vault.
        vault = planned[stack].stack["vaults"][stack]["ca-central-1"]["arn"]
        assert f"--destination-backup-vault-arn {vault}" in text
        assert f"--to {stack}" in text
    assert "aws ram create-resource-share --region ca-central-1 --name pgf-prod-air-gapped-restore" in text
    assert "--principals 400000000040" in text


def test_isolated_network_comes_from_restore_testing(planned: dict[str, runbook.Outputs], project: Project) -> None:
    cfg = project.load_config("dev")
    network = RestoreNetwork(db_subnet_group_name="restore isolated", security_group_ids=("sg-0123456789abcdef0",))
    changed = cfg.model_copy(update={"restore_testing": RestoreTesting(network=network)})
    text = runbook.render_md(_build(project, "dev", planned["dev"], changed))
    assert '"DBSubnetGroupName": "restore isolated", "VpcSecurityGroupIds": "[\\"sg-0123456789abcdef0\\"]"' in text
    assert "(restore_testing.network):" in text
    unchanged = runbook.render_md(_build(project, "dev", planned["dev"]))
    assert "<isolated DB subnet group>" in unchanged


def test_offline_outputs_are_said_to_be_stand_ins(planned: dict[str, runbook.Outputs], project: Project) -> None:
    text = runbook.render_md(_build(project, "prod", planned["prod"]))
    assert "offline engine's stand-ins" in text and "--from stack" in text


# ---------------------------------------------------------------------------------------------
# HTML


def test_html_is_self_contained_and_holds_every_arn(offline: dict[str, runbook.Outputs], project: Project) -> None:
    status, out, err = _run(["runbook", "--stack", "prod", "--format", "html"], project)
    assert status == ExitStatus.OK, err
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert not re.search(r"<script|<link|<img|<iframe|\ssrc=|@import|url\(", out, re.IGNORECASE)
    assert [arn for _, arn in runbook.output_arns(offline["prod"].stack) if arn not in out] == []
    assert out.count('<div class="prereq">') == out.count("<h2 id=") - 1  # every section but the contacts


def test_html_escapes_every_value(planned: dict[str, runbook.Outputs], project: Project) -> None:
    hostile = '<script>alert("x")</script>'
    cfg = project.load_config("lab")
    operations = Operations(
        contacts=(Contact(name=hostile, role="r & d <b>", email="a@b.example"),),
        escalation=(EscalationStep(after_minutes=0, contact=hostile),),
    )
    outputs = planned["lab"]
    stack = {**outputs.stack, "service_role_arn": 'arn:aws:iam::200000000020:role/x"><img src=x onerror=alert(1)>'}
    changed = runbook.Outputs(stack, outputs.backup, "a <b>test</b> source", mocked=False)
    page = runbook.render_html(_build(project, "lab", changed, cfg.model_copy(update={"operations": operations})))
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "r &amp; d &lt;b&gt;" in page and "a &lt;b&gt;test&lt;/b&gt; source" in page
    assert "role/x&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


# ---------------------------------------------------------------------------------------------
# The command


def test_out_writes_the_file(offline: dict[str, runbook.Outputs], project: Project, tmp_path: Path) -> None:
    target = tmp_path / "lab.md"
    status, out, err = _run(["runbook", "--stack", "lab", "--out", str(target)], project)
    assert status == ExitStatus.OK and out == ""
    assert f"runbook written to {target}" in err
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Restore runbook: stack lab") and "Generated 2026-12-02T12:00:00+00:00" in text


def test_unknown_stack_or_format_exits_2(offline: dict[str, runbook.Outputs], project: Project) -> None:
    status, _, err = _run(["runbook", "--stack", "staging"], project)
    assert status == ExitStatus.USAGE and "error: unknown stack 'staging'; stacks: backup, lab, dev, prod" in err
    status, _, err = _run(["runbook", "--stack", "prod", "--format", "pdf"], project)
    assert status == ExitStatus.USAGE and "invalid choice: 'pdf'" in err


def _failed_plan(exit_code: int) -> PlanResult:
    return PlanResult(failures=[StackError("prod", "the program raised", exit_code)])


@pytest.mark.parametrize(("code", "status"), [(1, ExitStatus.FAILED), (2, ExitStatus.USAGE)])
def test_a_failed_plan_is_named(
    code: int, status: ExitStatus, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pgf_backup.automation.planner.plan_all", lambda project, stacks: _failed_plan(code))
    result, _, err = _run(["runbook", "--stack", "prod"], project)
    assert result == status
    assert "error: stack prod: the offline plan failed: the program raised" in err


def test_from_stack_without_the_cli_exits_2(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(**_: Any) -> Any:
        raise FileNotFoundError("pulumi")

    monkeypatch.setattr(runbook_command, "_find_cli", lambda: find_cli(factory=missing))
    status, out, err = _run(["runbook", "--stack", "prod", "--from", "stack"], project)
    assert status == ExitStatus.USAGE and out == ""
    assert "error: --from stack reads the deployed outputs with the Pulumi CLI" in err
    assert "`pgf-backup runbook --stack prod` renders from the offline plan without it" in err


class _Stack:
    def __init__(self, outputs: Mapping[str, OutputValue] | None) -> None:
        self._outputs = outputs

    def outputs(self) -> Mapping[str, OutputValue]:
        if self._outputs is None:
            raise StackNotFoundError(CommandResult(stdout="", stderr="no stack named 'prod' found", code=255))
        return self._outputs


@pytest.fixture
def deployed(planned: dict[str, runbook.Outputs], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """`--from stack` against fake Automation API stacks: the planned outputs, one of them secret."""
    stacks: dict[str, Any] = {
        name: {key: OutputValue(value, False) for key, value in planned[stack].stack.items()}
        for name, stack in (("prod", "prod"), ("organization/pgf-backup/backup", "backup"))
    }
    # A secret output (here the service role's ARN) is read as the CLI marks it.
    stacks["prod"]["service_role_arn"] = OutputValue(planned["prod"].stack["service_role_arn"], True)
    selected: list[tuple[str, str]] = []

    def select(name: str, project: Project, backend: str, command: Any) -> _Stack:
        selected.append((name, backend))
        return _Stack(stacks.get(name))

    monkeypatch.setattr(runbook_command, "_find_cli", object)
    monkeypatch.setattr(runbook_command, "_select_stack", select)
    monkeypatch.setenv("PULUMI_BACKEND_URL", tmp_path.as_uri())
    return {"stacks": stacks, "selected": selected}


def test_from_stack_reads_both_stacks_and_hides_secrets(deployed: dict[str, Any], project: Project) -> None:
    status, out, err = _run(["runbook", "--stack", "prod", "--from", "stack"], project)
    assert status == ExitStatus.OK, err
    assert [name for name, _ in deployed["selected"]] == ["prod", "organization/pgf-backup/backup"]
    assert "arn:aws:iam::400000000040:role/pgf-backup-service-role" not in out
    assert f"AWS Backup service role `{runbook.SECRET_PLACEHOLDER}`" in out
    assert "the outputs of the deployed stack in file://" in out and "stand-ins" not in out
    central = deployed["stacks"]["organization/pgf-backup/backup"]["central_vaults"].value["prod"]["ca-central-1"]
    assert central["arn"] in out


def test_from_stack_not_deployed_exits_1(deployed: dict[str, Any], project: Project) -> None:
    del deployed["stacks"]["prod"]
    status, _, err = _run(["runbook", "--stack", "prod", "--from", "stack"], project)
    assert status == ExitStatus.FAILED
    assert "error: stack prod is not deployed in file://" in err


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize("name", ["pgf-core", "a" * 63, "x" * 53 + "-" + "y" * 9])
def test_restored_names_stay_within_63_characters(name: str) -> None:
    restored = runbook.restored_name(name)
    assert len(restored) <= 63 and restored.endswith("-restored") and "--" not in restored
    assert restored.startswith(name[:20])


def test_vault_arn_is_in_the_region_partition() -> None:
    assert runbook.vault_arn("ca-central-1", "400000000040", "pgf-prod") == (
        "arn:aws:backup:ca-central-1:400000000040:backup-vault:pgf-prod"
    )
    assert runbook.vault_arn("us-gov-west-1", "400000000040", "v").startswith("arn:aws-us-gov:backup:us-gov-west-1:")


def test_output_arns_walks_lists_and_maps() -> None:
    found = runbook.output_arns({"a": {"b": ["x", "arn:aws:s3:::one"]}, "c": "arn:aws:iam::1:role/r", "d": 3})
    assert found == [("a.b[1]", "arn:aws:s3:::one"), ("c", "arn:aws:iam::1:role/r")]
