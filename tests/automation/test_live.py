"""The live runner's use of the Automation API, with the stack objects patched (no Pulumi CLI here)."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pulumi.automation import (
    CommandError,
    CommandResult,
    ConcurrentUpdateError,
    EngineEvent,
    OutputValue,
    StackNotFoundError,
)
from semver import VersionInfo

from pgf_backup.automation import live, preflight
from pgf_backup.automation.cli import main
from pgf_backup.automation.gate import PolicyGate, PolicyInfo, Verdict
from pgf_backup.automation.live import LiveRunner, TrackedPulumiCommand, locked_message, resolve_backend
from pgf_backup.automation.offline import plan_stack
from pgf_backup.automation.rollout import Outcome, Progress
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project

ALL = ["backup", "lab", "dev", "prod"]
BACKEND = "file:///srv/pulumi-state"
VAULT_URN = "urn:pulumi:lab::pgf-backup::pgf:backup:BackupVault$aws:backup/vault:Vault::lab-ca-central-1-vault"


def event(**data: Any) -> EngineEvent:
    """An engine event as the CLI streams it (JSON, camelCase)."""
    return EngineEvent.from_json({"sequence": 1, "timestamp": 0, **data})


def step(kind: str, op: str, urn: str = VAULT_URN) -> EngineEvent:
    return event(**{kind: {"metadata": {"op": op, "urn": urn, "type": "aws:backup/vault:Vault", "provider": ""}}})


def policy(level: str, name: str = "vault-lock-compliance-in-prod") -> EngineEvent:
    return event(
        policyEvent={
            "message": "the vault has no compliance lock",
            "policyName": name,
            "policyPackName": "pgf-backup",
            "enforcementLevel": level,
            "resourceUrn": VAULT_URN,
        }
    )


def failure(kind: type[CommandError] = CommandError, stderr: str = "error: update failed") -> CommandError:
    return kind(CommandResult(stdout="", stderr=stderr, code=255))


@dataclass
class FakeBackend:
    """Stands in for the Automation API: stacks by name, what each call emits and returns."""

    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[tuple[str, str], list[EngineEvent]] = field(default_factory=dict)
    errors: dict[tuple[str, str], Exception] = field(default_factory=dict)
    changes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    opened: list[tuple[str, str, str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def create_or_select_stack(self, stack_name: str, work_dir: str, opts: Any) -> FakeStack:
        self.opened.append(("create_or_select", stack_name, work_dir, opts))
        self.outputs.setdefault(stack_name, {})
        return FakeStack(stack_name, self)

    def select_stack(self, stack_name: str, work_dir: str, opts: Any) -> FakeStack:
        self.opened.append(("select", stack_name, work_dir, opts))
        if stack_name not in self.outputs:
            raise failure(StackNotFoundError, f"no stack named '{stack_name}' found")
        return FakeStack(stack_name, self)

    def methods(self) -> list[tuple[str, str]]:
        return [(stack, method) for stack, method, _ in self.calls]


@dataclass
class FakeStack:
    name: str
    backend: FakeBackend

    def _call(self, method: str, kwargs: dict[str, Any]) -> dict[str, int]:
        self.backend.calls.append((self.name, method, kwargs))
        for emitted in self.backend.events.get((self.name, method), []):
            kwargs["on_event"](emitted)
        kwargs["on_output"](f"{method} output for {self.name}")
        error = self.backend.errors.get((self.name, method))
        if error is not None:
            raise error
        return self.backend.changes.get((self.name, method), {"same": 3})

    def preview(self, **kwargs: Any) -> Any:
        return SimpleNamespace(change_summary=self._call("preview", kwargs))

    def preview_refresh(self, **kwargs: Any) -> Any:
        return SimpleNamespace(change_summary=self._call("preview_refresh", kwargs))

    def up(self, **kwargs: Any) -> Any:
        return SimpleNamespace(summary=SimpleNamespace(resource_changes=self._call("up", kwargs)))

    def refresh(self, **kwargs: Any) -> Any:
        return SimpleNamespace(summary=SimpleNamespace(resource_changes=self._call("refresh", kwargs)))

    def destroy(self, **kwargs: Any) -> Any:
        return SimpleNamespace(summary=SimpleNamespace(resource_changes=self._call("destroy", kwargs)))

    def outputs(self) -> dict[str, OutputValue]:
        self.backend.calls.append((self.name, "outputs", {}))
        return {key: OutputValue(value, secret=False) for key, value in self.backend.outputs[self.name].items()}


@pytest.fixture(scope="module")
def backup_outputs(project) -> dict[str, Any]:
    return plan_stack(project, "backup").outputs


@pytest.fixture(scope="module")
def pack_policies(project) -> tuple[PolicyInfo, ...]:
    """The shipped pack's policies and config schemas, asked of the pack once for the module."""
    with PolicyGate(project.root / "policy") as gate:
        return tuple(gate.policies)


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    fake = FakeBackend()
    monkeypatch.setattr(live, "create_or_select_stack", fake.create_or_select_stack)
    monkeypatch.setattr(live, "select_stack", fake.select_stack)
    return fake


@dataclass
class Rig:
    runner: LiveRunner
    progress: io.StringIO
    command: Any
    log_dir: Path


@pytest.fixture
def rig(project, tmp_path, pack_policies) -> Rig:
    stream = io.StringIO()
    command = SimpleNamespace(name="pulumi command")
    runner = LiveRunner(
        project,
        preflight.load_configs(project, ALL),
        backend_url=BACKEND,
        command=command,
        progress=Progress(stream, live=False),
        log_dir=tmp_path / "logs",
        policies=pack_policies,
    )
    return Rig(runner, stream, command, tmp_path / "logs")


def pack_config_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The pack config a preview or up was given (`policy_pack_configs`: one file, for the one pack)."""
    [path] = kwargs["policy_pack_configs"]
    config: dict[str, Any] = json.loads(Path(path).read_text())
    return config


def deployed_backup(backend: FakeBackend, outputs: dict[str, Any]) -> None:
    backend.outputs["organization/pgf-backup/backup"] = outputs


# -- the calls -------------------------------------------------------------------------------------


def test_up_runs_the_local_program_with_the_policy_pack(project, backend, rig):
    backend.changes[("backup", "up")] = {"create": 12}
    result = rig.runner.up("backup")
    assert (result.outcome, dict(result.changes)) == (Outcome.SUCCEEDED, {"create": 12})
    [(factory, name, work_dir, opts)] = backend.opened
    assert (factory, name, work_dir) == ("create_or_select", "backup", str(project.root))
    assert opts.env_vars["PULUMI_BACKEND_URL"] == BACKEND
    assert opts.pulumi_command is rig.command
    assert opts.program is None and opts.project_settings is None  # the stack files as they are
    [(_, method, kwargs)] = backend.calls
    assert method == "up"
    assert kwargs["policy_packs"] == ["policy"]
    assert kwargs["color"] == "never"
    assert callable(kwargs["on_event"]) and callable(kwargs["on_output"]) and callable(kwargs["on_error"])


def test_preview_is_policy_gated_too(backend, rig):
    assert rig.runner.preview("backup").outcome == Outcome.SUCCEEDED
    assert backend.opened[0][:2] == ("create_or_select", "backup")
    assert backend.calls[0][1] == "preview"
    assert backend.calls[0][2]["policy_packs"] == ["policy"]
    config = pack_config_of(backend.calls[0][2])
    # The backup stack hosts every tier: no tier file, no tier; its own bounds and role names all the same.
    assert config["vault-denies-recovery-point-deletion"] == {
        "breakGlassRole": "pgf-backup-break-glass",
        "deployRole": "pgf-backup-deploy",
    }
    assert set(config["retention-within-tier-bounds"]) == {"tierBounds"}
    assert not any("tier" in entry for entry in config.values())


def test_workload_previews_use_their_tiers_policy_config(backend, rig, project, backup_outputs):
    deployed_backup(backend, backup_outputs)
    assert rig.runner.preview("lab").outcome == Outcome.SUCCEEDED
    (_, _, kwargs) = next(call for call in backend.calls if call[:2] == ("lab", "preview"))
    [path] = kwargs["policy_pack_configs"]
    assert path == str(rig.log_dir / "lab.preview.policy-config.json")  # kept beside the stack's log
    config = pack_config_of(kwargs)
    shipped = json.loads((project.root / "policy" / "config" / "lab.json").read_text())
    for policy, entry in shipped.items():
        assert config[policy].items() >= entry.items(), policy  # the tier file's entries, as they are
    assert config["kms-key-hardening"] == {
        "tier": "lab",
        "breakGlassRole": "pgf-backup-break-glass",
        "deployRole": "pgf-backup-deploy",
    }


@pytest.mark.parametrize(("operation", "method"), [("refresh", "refresh"), ("drift", "preview_refresh")])
def test_refresh_and_drift_select_an_existing_stack(backend, rig, operation, method):
    backend.outputs["lab"] = {}
    result = getattr(rig.runner, operation)("lab")
    assert result.outcome == Outcome.SUCCEEDED
    assert [(f, n) for f, n, _, _ in backend.opened] == [("select", "lab")]
    assert backend.methods() == [("lab", method)]
    assert "policy_packs" not in backend.calls[0][2]


def test_a_stack_never_deployed_cannot_be_refreshed(backend, rig):
    result = rig.runner.refresh("dev")
    assert result.outcome == Outcome.FAILED
    assert result.message == f"not deployed in {BACKEND}: run `pgf-backup up --stacks dev`"


def test_the_log_file_keeps_the_cli_output(backend, rig):
    result = rig.runner.up("backup")
    assert result.log_file == rig.log_dir / "backup.up.log"
    log = result.log_file.read_text().splitlines()
    assert log[0].startswith("# pgf-backup up backup - ")
    assert "up output for backup" in log
    assert log[-1] == "# result: succeeded"


# -- outputs of the backup stack -------------------------------------------------------------------


def test_a_workload_stack_reads_the_backup_outputs_first(backend, rig, backup_outputs):
    deployed_backup(backend, backup_outputs)
    result = rig.runner.up("lab")
    assert result.outcome == Outcome.SUCCEEDED
    assert [(f, n) for f, n, _, _ in backend.opened] == [
        ("select", "organization/pgf-backup/backup"),
        ("create_or_select", "lab"),
    ]
    assert backend.methods() == [("organization/pgf-backup/backup", "outputs"), ("lab", "up")]


def test_a_workload_stack_does_not_run_before_the_backup_stack_exists(backend, rig):
    result = rig.runner.preview("prod")
    assert result.outcome == Outcome.FAILED
    assert "reads the backup account's outputs from 'organization/pgf-backup/backup'" in result.message
    assert "deploy it first (`pgf-backup up --stacks backup`)" in result.message
    assert backend.methods() == []


def test_a_workload_stack_does_not_run_when_its_vault_output_is_missing(backend, rig, backup_outputs):
    central = {"lab": backup_outputs["central_vaults"]["lab"]}
    deployed_backup(backend, {**backup_outputs, "central_vaults": central})
    result = rig.runner.up("dev")
    assert result.outcome == Outcome.FAILED
    assert result.message == (
        "the outputs of organization/pgf-backup/backup lack what it needs (output "
        "'central_vaults.dev.ca-central-1.arn' is missing): run `pgf-backup up --stacks backup` first"
    )
    assert ("dev", "up") not in backend.methods()
    assert result.message in result.log_file.read_text()


def test_the_backup_stack_needs_no_outputs(backend, rig):
    rig.runner.up("backup")
    assert all(method != "outputs" for _, method in backend.methods())


# -- failures --------------------------------------------------------------------------------------


def test_a_mandatory_policy_violation_is_a_policy_outcome(backend, rig):
    backend.events[("backup", "preview")] = [policy("mandatory")]
    backend.errors[("backup", "preview")] = failure()
    result = rig.runner.preview("backup")
    assert result.outcome == Outcome.POLICY
    assert result.message == (
        "policy violation: vault-lock-compliance-in-prod on aws:backup/vault:Vault lab-ca-central-1-vault"
    )
    assert f"the vault has no compliance lock [{VAULT_URN}]" in result.log_file.read_text()
    assert "backup: policy vault-lock-compliance-in-prod (mandatory)" in rig.progress.getvalue()


def test_an_advisory_finding_is_shown_but_passes(backend, rig):
    backend.events[("backup", "up")] = [policy("advisory", "data-resources-tagged")]
    result = rig.runner.up("backup")
    assert result.outcome == Outcome.SUCCEEDED
    assert "policy data-resources-tagged (advisory)" in rig.progress.getvalue()
    assert "policy: data-resources-tagged (advisory)" in result.log_file.read_text()


def test_a_failed_update_reports_the_engine_errors(backend, rig):
    backend.events[("backup", "up")] = [
        event(
            diagnosticEvent={"message": "\x1b[31maws:backup/vault:Vault: AccessDenied\x1b[0m\n", "severity": "error"}
        ),
        step("resOpFailedEvent", "create"),
    ]
    backend.errors[("backup", "up")] = failure()
    result = rig.runner.up("backup")
    assert (result.outcome, result.message) == (Outcome.FAILED, "aws:backup/vault:Vault: AccessDenied")
    assert "backup: FAILED create aws:backup/vault:Vault lab-ca-central-1-vault" in rig.progress.getvalue()


def test_a_failure_without_diagnostics_shows_the_end_of_stderr(backend, rig):
    backend.errors[("backup", "up")] = failure(stderr="warning: x\nerror: could not load plugin")
    result = rig.runner.up("backup")
    assert (result.outcome, result.message) == (Outcome.FAILED, "warning: x; error: could not load plugin")


def test_a_locked_stack_gets_a_clear_message(backend, rig):
    backend.errors[("backup", "up")] = failure(ConcurrentUpdateError, "the stack is currently locked by 1 lock(s)")
    result = rig.runner.up("backup")
    assert result.outcome == Outcome.FAILED
    assert result.message == locked_message("backup", BACKEND)
    assert "stack backup is locked: another update is in progress" in result.message
    assert "/srv/pulumi-state/.pulumi/locks/organization/pgf-backup/backup/" in result.message
    assert "pulumi cancel --stack backup" in locked_message("backup", "https://api.pulumi.com")


def test_a_cancelled_operation_is_interrupted(backend, rig):
    backend.errors[("backup", "up")] = failure()
    rig.runner.cancel()
    result = rig.runner.up("backup")
    assert result.outcome == Outcome.INTERRUPTED
    assert "in-flight operations" in result.message


def test_a_missing_cli_binary_is_a_failure_not_a_traceback(backend, rig):
    backend.errors[("backup", "up")] = FileNotFoundError("pulumi")
    result = rig.runner.up("backup")
    assert (result.outcome, result.message) == (Outcome.FAILED, "could not run the Pulumi CLI: pulumi")


# -- destroy and drift -----------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "backup"])
def test_destroy_is_refused_for_compliance_locked_vaults(backend, rig, stack):
    result = rig.runner.destroy(stack)
    assert result.outcome == Outcome.REFUSED
    assert "holds a Vault Lock in compliance mode" in result.message
    assert backend.opened == []


def test_destroy_of_a_workload_stack(backend, rig):
    backend.outputs["lab"] = {}
    backend.changes[("lab", "destroy")] = {"delete": 18}
    result = rig.runner.destroy("lab")
    assert (result.outcome, dict(result.changes)) == (Outcome.SUCCEEDED, {"delete": 18})
    assert backend.methods() == [("lab", "destroy")]


def test_destroy_of_a_stack_never_deployed_has_nothing_to_do(backend, rig):
    result = rig.runner.destroy("dev")
    assert result.outcome == Outcome.SUCCEEDED
    assert result.message == f"not deployed in {BACKEND}: nothing to destroy"


def test_drift_names_the_drifted_resources(backend, rig):
    backend.outputs["lab"] = {}
    backend.events[("lab", "preview_refresh")] = [step("resourcePreEvent", "update"), step("resourcePreEvent", "same")]
    backend.changes[("lab", "preview_refresh")] = {"update": 1, "same": 17}
    result = rig.runner.drift("lab")
    assert result.outcome == Outcome.DRIFT
    assert result.message == f"the cloud differs from the state: update {VAULT_URN}"
    assert dict(result.changes) == {"update": 1, "same": 17}


def test_drift_seen_by_a_refresh_step(backend, rig):
    backend.outputs["lab"] = {}
    gone = VAULT_URN + "-notifications"
    meta = {"op": "refresh", "type": "aws:backup/vault:Vault", "provider": ""}
    backend.events[("lab", "preview_refresh")] = [
        event(resOutputsEvent={"metadata": {**meta, "urn": VAULT_URN, "diffs": ["tags"]}}),
        event(resOutputsEvent={"metadata": {**meta, "urn": gone, "old": {"urn": gone, "type": "t"}}}),
        event(resOutputsEvent={"metadata": {**meta, "urn": VAULT_URN + "-key"}}),
    ]
    backend.changes[("lab", "preview_refresh")] = {"refresh": 3}
    result = rig.runner.drift("lab")
    assert result.outcome == Outcome.DRIFT
    assert result.message == f"the cloud differs from the state: refresh {VAULT_URN}; deleted {gone}"


def test_no_drift_when_everything_is_the_same(backend, rig):
    backend.outputs["lab"] = {}
    backend.changes[("lab", "preview_refresh")] = {"same": 18}
    assert rig.runner.drift("lab").outcome == Outcome.SUCCEEDED


def test_progress_follows_the_engine_events(backend, rig):
    backend.events[("backup", "up")] = [
        step("resourcePreEvent", "create"),
        step("resourcePreEvent", "same", VAULT_URN + "-policy"),
        step("resOutputsEvent", "create"),
        step("resOutputsEvent", "same", VAULT_URN + "-policy"),
    ]
    rig.runner.up("backup")
    assert rig.progress.getvalue().splitlines() == [
        "backup: [1/2] create aws:backup/vault:Vault lab-ca-central-1-vault",
    ]


# -- backend ---------------------------------------------------------------------------------------


def test_backend_from_the_option_then_the_environment_then_the_repo(tmp_path):
    env = {"PULUMI_BACKEND_URL": "s3://state-bucket"}
    assert resolve_backend("https://api.pulumi.com", env, tmp_path) == "https://api.pulumi.com"
    assert resolve_backend(None, env, tmp_path) == "s3://state-bucket"
    assert not (tmp_path / ".pulumi").exists()
    assert resolve_backend(None, {}, tmp_path) == tmp_path.resolve().as_uri()
    assert (tmp_path / ".pulumi").is_dir()  # where a file backend at the repo root keeps its state


def test_the_state_folder_is_ignored_by_git(project):
    assert ".pulumi/" in (project.root / ".gitignore").read_text().splitlines()


# -- the CLI, tracked ------------------------------------------------------------------------------


def calls(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "calls.jsonl").read_text().splitlines()]


def test_tracked_command_runs_the_cli_non_interactively_in_its_own_session(fake_pulumi, tmp_path):
    command = TrackedPulumiCommand(root=str(fake_pulumi))
    assert command.version == VersionInfo(3, 272, 0)
    lines: list[str] = []
    result = command.run(["stack", "ls"], str(tmp_path), {"PULUMI_BACKEND_URL": BACKEND}, on_output=lines.append)
    assert (result.code, result.stdout, lines) == (0, "output line", ["output line"])
    [call] = calls(fake_pulumi)
    assert call["args"] == ["--non-interactive", "stack", "ls"]
    assert (call["automation"], call["backend"]) == ("true", BACKEND)
    assert call["sid"] != os.getsid(0)


def test_tracked_command_raises_the_sdk_errors(fake_pulumi, tmp_path):
    command = TrackedPulumiCommand(root=str(fake_pulumi))
    with pytest.raises(CommandError, match="error: boom"):
        command.run(["up", "fail"], str(tmp_path), {})


def test_interrupt_forwards_one_sigint_to_the_running_cli(fake_pulumi, tmp_path):
    command = TrackedPulumiCommand(root=str(fake_pulumi))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            command.run(["up", "wait"], str(tmp_path), {})
        except CommandError as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    ready = fake_pulumi / "calls.jsonl.ready"
    pause = threading.Event()
    for _ in range(1000):
        if ready.exists():
            break
        pause.wait(0.01)
    assert command.interrupt() == 1
    worker.join(10)
    assert not worker.is_alive()
    assert (fake_pulumi / "calls.jsonl.sigint").read_text() == "SIGINT"
    assert "cancelling after the in-flight operations" in str(outcome["error"])
    assert command.interrupt() == 0  # nothing left running


def test_the_runner_forwards_cancel_to_a_tracked_command(fake_pulumi, project, tmp_path, monkeypatch):
    command = TrackedPulumiCommand(root=str(fake_pulumi))
    forwarded: list[int] = []
    monkeypatch.setattr(command, "interrupt", lambda: forwarded.append(1) or 1)
    runner = LiveRunner(
        project, {}, backend_url=BACKEND, command=command, progress=Progress(io.StringIO()), log_dir=tmp_path
    )
    runner.cancel()
    runner.cancel()
    assert forwarded == [1, 1]


# -- the live and the offline gate configure the pack alike -------------------------------------------

OLD_DEPLOY, OLD_BREAK_GLASS = "pgf-backup-deploy", "pgf-backup-break-glass"
NEW_DEPLOY, NEW_BREAK_GLASS = "pgf-ops-deploy", "pgf-ops-break-glass"
VAULT_POLICY_TYPES = frozenset({"aws:backup/vaultPolicy:VaultPolicy"})
KEY_TYPES = frozenset({"aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"})


@dataclass
class OfflinePlan:
    """What `pgf-backup plan --all` did: its exit status and stderr, and per stack what the gate analyzed."""

    status: ExitStatus
    err: str
    analyzed: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]  # stack -> (resources, pack config)


def copied(project: Project, root: Path, renames: dict[str, str] | None = None) -> Project:
    """A copy of the project's stack files, program and policy pack, with `renames` in the stack files."""
    unused = dict(renames or {})
    for path in project.root.glob("Pulumi*.yaml"):
        text = path.read_text()
        for old, new in (renames or {}).items():
            if old in text:
                unused.pop(old, None)
            text = text.replace(old, new)
        (root / path.name).write_text(text)
    assert not unused, f"no stack or project file holds {', '.join(unused)}"
    shutil.copy(project.root / "__main__.py", root / "__main__.py")
    shutil.copytree(project.root / "policy", root / "policy", ignore=shutil.ignore_patterns("__pycache__"))
    return Project.find(root)


@pytest.fixture(scope="module")
def renamed(project, tmp_path_factory) -> Project:
    """A copy of the project whose stacks all name other deploy and break-glass roles."""
    root = tmp_path_factory.mktemp("renamed-roles")
    renames = {f"deploy_role: {OLD_DEPLOY}": f"deploy_role: {NEW_DEPLOY}"}
    renames[f"break_glass_role: {OLD_BREAK_GLASS}"] = f"break_glass_role: {NEW_BREAK_GLASS}"
    return copied(project, root, renames)


@pytest.fixture(scope="module")
def offline(renamed) -> OfflinePlan:
    """`pgf-backup plan --all` of the renamed project, recording what its gate hands to the pack."""
    analyzed: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    original = PolicyGate.analyze

    def spy(gate: PolicyGate, stack: str, project: str, resources: Any, config: Any = None, **kw: Any) -> Verdict:
        analyzed[stack] = (list(resources), dict(config or {}))
        return original(gate, stack, project, resources, config, **kw)

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PolicyGate, "analyze", spy)
        status = main(["--project-dir", str(renamed.root), "plan", "--all"], out=io.StringIO(), err=err)
    return OfflinePlan(status, err.getvalue(), analyzed)


def live_pack_config(project: Project, backend: FakeBackend, stack: str, operation: str, log_dir: Path, **kw: Any):
    """The pack config a live `preview`/`up` of `stack` hands to the CLI."""
    runner = LiveRunner(
        project,
        preflight.load_configs(project, [stack]),
        backend_url=BACKEND,
        command=SimpleNamespace(name="pulumi command"),
        progress=Progress(io.StringIO(), live=False),
        log_dir=log_dir,
        **kw,
    )
    result = getattr(runner, operation)(stack)
    assert result.outcome == Outcome.SUCCEEDED, result.message
    [(_, _, kwargs)] = [call for call in backend.calls if call[:2] == (stack, operation)]
    assert kwargs["policy_packs"] == ["policy"]
    return pack_config_of(kwargs)


def exempting(resources: list[dict[str, Any]], types: frozenset[str], role: str, instead: str) -> list[dict[str, Any]]:
    """The resources with `instead` for `role` in the policy documents of the given types."""
    changed = []
    for resource in resources:
        inputs = resource["inputs"]
        if resource["type"] in types and role in inputs.get("policy", ""):
            changed.append({**resource, "inputs": {**inputs, "policy": inputs["policy"].replace(role, instead)}})
        else:
            changed.append(resource)
    return changed


@pytest.mark.parametrize(("stack", "operation"), [(s, "preview") for s in ALL] + [("prod", "up")])
def test_live_and_offline_gates_give_the_pack_the_same_config(
    renamed, offline, backend, backup_outputs, tmp_path, stack, operation
):
    deployed_backup(backend, backup_outputs)
    # No policies given: the runner asks the pack for them, as when the driver makes it.
    config = live_pack_config(renamed, backend, stack, operation, tmp_path)
    assert config == offline.analyzed[stack][1]
    for policy in ("vault-denies-recovery-point-deletion", "kms-key-hardening"):
        assert (config[policy]["breakGlassRole"], config[policy]["deployRole"]) == (NEW_BREAK_GLASS, NEW_DEPLOY)


def test_the_pack_passes_renamed_roles_and_refuses_policies_exempting_the_old_names(
    renamed, offline, backend, backup_outputs, tmp_path, pack_policies
):
    assert offline.status == ExitStatus.OK, offline.err  # the offline gate passes every renamed stack
    deployed_backup(backend, backup_outputs)
    config = live_pack_config(renamed, backend, "prod", "preview", tmp_path, policies=pack_policies)
    resources, _ = offline.analyzed["prod"]
    with PolicyGate(renamed.root / "policy") as gate:
        assert gate.analyze("prod", renamed.name, resources, config).violations == ()
        for types, rule in (
            (VAULT_POLICY_TYPES, "vault-denies-recovery-point-deletion"),
            (KEY_TYPES, "kms-key-hardening"),
        ):
            for new, old in ((NEW_BREAK_GLASS, OLD_BREAK_GLASS), (NEW_DEPLOY, OLD_DEPLOY)):
                verdict = gate.analyze("prod", renamed.name, exempting(resources, types, new, old), config)
                assert {v.policy for v in verdict.mandatory} == {rule}, (old, [v.message for v in verdict.mandatory])


def test_an_invalid_pack_config_fails_the_stack_before_the_cli_runs(
    project, backend, backup_outputs, tmp_path, pack_policies
):
    root = copied(project, tmp_path).root
    (root / "policy" / "config" / "lab.json").write_text('{"kms-key-hardening": {"tier": "qa"}}')
    runner = LiveRunner(
        Project.find(root),
        preflight.load_configs(project, ["lab"]),
        backend_url=BACKEND,
        command=SimpleNamespace(name="pulumi command"),
        progress=Progress(io.StringIO(), live=False),
        log_dir=tmp_path / "logs",
        policies=pack_policies,
    )
    deployed_backup(backend, backup_outputs)
    result = runner.preview("lab")
    assert result.outcome == Outcome.FAILED
    assert "invalid policy config" in result.message
    assert "kms-key-hardening.tier: 'qa' is not one of lab, dev, prod" in result.message
    assert ("lab", "preview") not in backend.methods()


def test_a_pack_that_cannot_start_fails_the_stack_with_its_reason(project, backend, tmp_path):
    root = copied(project, tmp_path).root
    (root / "policy" / "__main__.py").write_text("raise RuntimeError('pack exploded')\n")
    runner = LiveRunner(
        Project.find(root),
        preflight.load_configs(project, ["backup"]),
        backend_url=BACKEND,
        command=SimpleNamespace(name="pulumi command"),
        progress=Progress(io.StringIO(), live=False),
        log_dir=tmp_path / "logs",
    )
    result = runner.up("backup")
    assert result.outcome == Outcome.FAILED
    assert result.message.startswith("policy pack config: the policy pack did not start")
    assert "pack exploded" in result.message
    assert backend.methods() == []
