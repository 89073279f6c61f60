"""The orchestration's parts: order, phases, exit status, the outputs contract, summary, progress."""

from __future__ import annotations

import io
import json

import pytest

from pgf_backup.automation.offline import plan_stack
from pgf_backup.automation.rollout import (
    OpResult,
    Outcome,
    Progress,
    Rollout,
    RolloutResult,
    StackResult,
    missing_backup_outputs,
    phases,
    policy_message,
    resource_label,
    summary_table,
    walk_order,
    write_summary_json,
)
from pgf_backup.automation.status import ExitStatus

ALL = ["backup", "lab", "dev", "prod"]


def test_walk_order_reverses_only_destroy():
    for operation in ("preview", "up", "refresh", "drift"):
        assert walk_order(operation, ALL) == ALL
    assert walk_order("destroy", ALL) == ["prod", "dev", "lab", "backup"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (ALL, [["backup"], ["lab", "dev", "prod"]]),
        (["prod", "dev", "lab", "backup"], [["prod", "dev", "lab"], ["backup"]]),
        (["lab", "prod"], [["lab", "prod"]]),
        (["backup"], [["backup"]]),
    ],
)
def test_backup_always_runs_alone(order, expected):
    assert phases(order) == expected


def _result(*outcomes: Outcome, interrupted: bool = False) -> RolloutResult:
    rows = [StackResult(f"s{i}", "up", outcome) for i, outcome in enumerate(outcomes)]
    return RolloutResult("up", rows, interrupted=interrupted)


@pytest.mark.parametrize(
    ("outcomes", "interrupted", "status"),
    [
        ((Outcome.SUCCEEDED, Outcome.SUCCEEDED), False, ExitStatus.OK),
        ((Outcome.SUCCEEDED, Outcome.DRIFT), False, ExitStatus.DRIFT),
        ((Outcome.DRIFT, Outcome.POLICY, Outcome.SKIPPED), False, ExitStatus.POLICY),
        ((Outcome.POLICY, Outcome.FAILED), False, ExitStatus.FAILED),
        ((Outcome.SUCCEEDED, Outcome.DECLINED), False, ExitStatus.FAILED),
        ((Outcome.REFUSED,), False, ExitStatus.FAILED),
        ((Outcome.FAILED, Outcome.INTERRUPTED), False, ExitStatus.INTERRUPTED),
        ((Outcome.SUCCEEDED, Outcome.SKIPPED), True, ExitStatus.INTERRUPTED),
    ],
)
def test_exit_status(outcomes, interrupted, status):
    assert _result(*outcomes, interrupted=interrupted).exit_status == status


def test_parallel_below_one_is_refused(recorder):
    with pytest.raises(ValueError, match="parallel must be >= 1"):
        Rollout(recorder(), "up", parallel=0).run(ALL)


def test_a_runner_error_fails_its_stack_and_stops_the_rollout(recorder):
    def broken(r, operation, stack):
        raise RuntimeError("no such thing")

    runner = recorder({"lab": broken})
    result = Rollout(runner, "preview").run(ALL)
    assert [r.outcome for r in result.results] == [
        Outcome.SUCCEEDED,
        Outcome.FAILED,
        Outcome.SKIPPED,
        Outcome.SKIPPED,
    ]
    assert result.results[1].message == "unexpected RuntimeError: no such thing"
    assert runner.stacks() == ["backup", "lab"]


def test_keyboard_interrupt_inside_a_runner_interrupts_the_rollout(recorder):
    def interrupted(r, operation, stack):
        raise KeyboardInterrupt

    runner = recorder({"backup": interrupted})
    seen: list[int] = []
    result = Rollout(runner, "up", on_interrupt=seen.append).run(ALL)
    assert result.exit_status == ExitStatus.INTERRUPTED
    assert runner.stacks() == ["backup"]
    assert (runner.cancels, seen) == (1, [1])


def test_callbacks_and_durations_come_from_the_rollout(recorder):
    ticks = iter(range(100))
    started: list[str] = []
    finished: list[str] = []
    rollout = Rollout(
        recorder(),
        "refresh",
        on_start=started.append,
        on_result=lambda r: finished.append(r.stack),
        clock=lambda: float(next(ticks)),
    )
    result = rollout.run(["backup", "lab"])
    assert started == finished == ["backup", "lab"]
    assert [r.duration_seconds for r in result.results] == [1.0, 1.0]


def test_a_declined_stack_is_reported_with_its_question(recorder):
    asked: list[tuple[str, str]] = []

    def confirm(stack: str, question: str) -> bool:
        asked.append((stack, question))
        return False

    runner = recorder()
    result = Rollout(runner, "up", question=lambda s: "sure?" if s == "dev" else None, confirm=confirm).run(ALL)
    assert asked == [("dev", "sure?")]
    assert runner.stacks() == ["backup", "lab"]
    assert [(r.stack, r.outcome, r.message) for r in result.results[2:]] == [
        ("dev", Outcome.DECLINED, "sure?"),
        ("prod", Outcome.SKIPPED, "not started: dev was not confirmed"),
    ]


# -- the outputs a workload stack needs from `backup` ---------------------------------------------


@pytest.fixture(scope="module")
def backup_outputs(project):
    """The real program's `backup` outputs, from the offline engine."""
    return plan_stack(project, "backup").outputs


def test_the_backup_stacks_outputs_satisfy_every_workload_stack(project, backup_outputs):
    for stack in ("lab", "dev", "prod"):
        assert missing_backup_outputs(project.load_config(stack), backup_outputs) == []


def test_the_backup_stack_itself_needs_nothing(project):
    assert missing_backup_outputs(project.load_config("backup"), {}) == []


def test_missing_outputs_are_named(project, backup_outputs):
    cfg = project.load_config("prod")
    assert missing_backup_outputs(cfg, {}) == [
        "output 'account_id' is missing",
        "output 'central_vaults.prod.ca-central-1.arn' is missing",
        "output 'air_gapped_vaults.prod.arn' is missing",
        *(
            f"output 'vaults.{key}.ca-central-1.arn' is missing (vaults.{key} of this stack copies to the backup "
            f"account's vault of the same key: declare vaults.{key} with tier prod there)"
            for key in ("files-raw", "files-processed")
        ),
        *(
            f"output 'dashboards.sinks.{region}' is missing (the backup stack exports its sinks with "
            "dashboards.enabled and dashboards.cross_account on; or set dashboards.cross_account: false in this stack)"
            for region in ("ca-central-1", "ca-west-1")
        ),
    ]
    without_prod = json.loads(json.dumps(backup_outputs))
    del without_prod["central_vaults"]["prod"]
    assert missing_backup_outputs(cfg, without_prod) == ["output 'central_vaults.prod.ca-central-1.arn' is missing"]
    no_air_gap = {**backup_outputs, "air_gapped_vaults": {}}
    assert missing_backup_outputs(project.load_config("lab"), no_air_gap) == []  # lab does not copy there
    assert missing_backup_outputs(cfg, no_air_gap) == ["output 'air_gapped_vaults.prod.arn' is missing"]


def test_a_backup_stack_in_another_account_is_refused(project, backup_outputs):
    cfg = project.load_config("lab")
    moved = {**backup_outputs, "account_id": "999999999999"}
    assert missing_backup_outputs(cfg, moved) == [
        "output 'account_id' is 999999999999, but this stack's accounts.backup is 100000000010"
    ]


# -- summary ---------------------------------------------------------------------------------------


def test_summary_table_lists_every_kind_reported_and_the_messages(tmp_path):
    result = RolloutResult(
        "up",
        [
            StackResult("backup", "up", Outcome.SUCCEEDED, {"create": 3, "same": 4}, 12.34),
            StackResult("lab", "up", Outcome.FAILED, {"create-replacement": 1}, 75.0, "boom", tmp_path / "lab.up.log"),
            StackResult("dev", "up", Outcome.SKIPPED, message="not started: lab failed"),
        ],
    )
    lines = summary_table(result).splitlines()
    assert lines[0] == "up: backup succeeded, lab failed, dev skipped"
    assert lines[1].split() == [
        "STACK",
        "RESULT",
        "CREATE",
        "UPDATE",
        "REPLACE",
        "DELETE",
        "SAME",
        "CREATE-REPLACEMENT",
        "DURATION",
    ]
    assert lines[2].split() == ["backup", "succeeded", "3", "0", "0", "0", "4", "0", "12.3s"]
    assert lines[3].split() == ["lab", "failed", "0", "0", "0", "0", "0", "1", "1m15s"]
    assert lines[4].split() == ["dev", "skipped", *["-"] * 7]
    assert lines[5:] == [
        "lab: boom",
        f"lab: log in {tmp_path / 'lab.up.log'}",
        "dev: not started: lab failed",
        "exit 1 (failed)",
    ]
    write_summary_json(result, tmp_path / "s.json")
    document = json.loads((tmp_path / "s.json").read_text())
    assert document["stacks"][1] == {
        "stack": "lab",
        "result": "failed",
        "changes": {"create-replacement": 1},
        "duration_seconds": 75.0,
        "message": "boom",
        "log": str(tmp_path / "lab.up.log"),
    }


# -- progress --------------------------------------------------------------------------------------

URN = "urn:pulumi:lab::pgf-backup::pgf:backup:BackupVault$aws:backup/vault:Vault::lab-ca-central-1-vault"


def test_policy_message_names_each_policy_once():
    assert policy_message([("a-rule", URN), ("b-rule", ""), ("a-rule", URN + "2"), ("a-rule", URN + "3")]) == (
        "policy violation: a-rule on aws:backup/vault:Vault lab-ca-central-1-vault and 2 more; b-rule on the stack"
    )


def test_resource_label_is_type_and_name():
    assert resource_label(URN) == "aws:backup/vault:Vault lab-ca-central-1-vault"
    assert resource_label(URN, "aws:kms/key:Key") == "aws:kms/key:Key lab-ca-central-1-vault"


def test_progress_without_a_terminal_prints_changed_resources_with_counts():
    stream = io.StringIO()
    progress = Progress(stream, live=False)
    progress.stack_started("lab", "up")
    progress.step_started("lab", URN, "create")
    progress.step_started("lab", URN + "2", "same")
    progress.step_finished("lab", URN, "create")
    progress.step_finished("lab", URN + "2", "same")
    progress.step_started("lab", URN + "3", "update")
    progress.step_finished("lab", URN + "3", "update", failed=True)
    progress.stack_finished("lab")
    assert stream.getvalue().splitlines() == [
        "lab: [1/2] create aws:backup/vault:Vault lab-ca-central-1-vault",
        "lab: FAILED update aws:backup/vault:Vault lab-ca-central-1-vault3",
    ]


def test_progress_on_a_terminal_redraws_one_status_line():
    stream = io.StringIO()
    progress = Progress(stream, live=True, columns=lambda: 200)
    progress.stack_started("lab", "up")
    progress.stack_started("dev", "up")
    progress.step_started("lab", URN, "create")
    progress.step_started("dev", URN, "update")
    progress.step_finished("dev", URN, "update")
    status = stream.getvalue().split("\r\x1b[K")[-1]
    assert status == (
        "lab up 0/1 create aws:backup/vault:Vault lab-ca-central-1-vault | "
        "dev up 1/1 update aws:backup/vault:Vault lab-ca-central-1-vault"
    )
    progress.message("lab: policy finding")
    # the status line is cleared, the message stays, the status line comes back under it
    assert stream.getvalue().split("\r\x1b[K")[-1] == f"lab: policy finding\n{status}"
    progress.stack_finished("lab")
    progress.stack_finished("dev")
    assert stream.getvalue().endswith("\r\x1b[K")


def test_the_status_line_fits_the_terminal():
    stream = io.StringIO()
    progress = Progress(stream, live=True, columns=lambda: 20)
    progress.step_started("lab", URN, "create")
    assert stream.getvalue() == "lab ? 0/1 create aw"


def test_op_result_defaults():
    result = OpResult(Outcome.SUCCEEDED)
    assert (result.changes, result.message, result.log_file) == ({}, "", None)


# -- the optional management stack -------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # Without `backup` in the selection, the workload stacks still wait for the management stack.
        (["management", "lab", "dev"], [["management"], ["lab", "dev"]]),
        (["dev", "lab", "management"], [["dev", "lab"], ["management"]]),  # destroy
    ],
)
def test_the_management_stack_always_runs_alone(order, expected):
    assert phases(order) == expected


def test_known_stacks_put_a_configured_management_stack_first(project, tmp_path):
    import shutil

    from pgf_backup.project import Project, rollout_order
    from tests.conftest import add_management_stack

    for path in project.root.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    copy = Project.find(tmp_path)
    assert copy.known_stacks() == ALL  # optional: none shipped
    add_management_stack(tmp_path)
    assert copy.known_stacks() == ["management", *ALL]
    assert rollout_order(["prod", "management"], copy.known_stacks()) == ["management", "prod"]
