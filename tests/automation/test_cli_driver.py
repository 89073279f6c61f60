"""The rollout through the `pgf-backup` CLI, with a runner that records what it is asked to do."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pgf_backup.automation import driver, preflight
from pgf_backup.automation.cli import main
from pgf_backup.automation.rollout import OpResult, Outcome
from pgf_backup.automation.status import ExitStatus

ROOT = Path(__file__).resolve().parents[2]
ALL = ["backup", "lab", "dev", "prod"]


class Terminal(io.StringIO):
    """A stdin that says it is a terminal and holds the operator's answers."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Route the driver's live commands to a given runner (preflight's CLI and AWS checks skipped)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal, as in CI

    def install(runner: Any) -> Any:
        def fake_live_runner(project, stacks, operation, args, progress):
            return runner, preflight.load_configs(project, stacks)

        monkeypatch.setattr(driver, "live_runner", fake_live_runner)
        return runner

    return install


def run(*argv: str) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["--project-dir", str(ROOT), *argv], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by stack."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("STACK"))
    table = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if not cells or cells[0] not in ALL:
            break
        table[cells[0]] = cells
    return table


# -- order -----------------------------------------------------------------------------------------


def test_up_runs_backup_first_then_the_configured_order(use, recorder):
    runner = use(recorder())
    status, out, _ = run("up", "--yes")
    assert status == ExitStatus.OK
    assert runner.calls == [("up", s) for s in ALL]
    assert list(rows(out)) == ALL
    assert rows(out)["lab"][1:4] == ["succeeded", "2", "0"]  # result, create, update


def test_stacks_option_selects_and_keeps_rollout_order(use, recorder):
    runner = use(recorder())
    status, _, _ = run("preview", "--stacks", "prod,lab")
    assert status == ExitStatus.OK
    assert runner.stacks() == ["lab", "prod"]
    runner = use(recorder())
    run("preview", "--stacks", "dev", "backup")
    assert runner.stacks() == ["backup", "dev"]
    # `--stack` is the same option, repeatable, as in `plan`.
    runner = use(recorder())
    run("drift", "--stack", "prod", "--stack", "dev,lab")
    assert runner.stacks() == ["lab", "dev", "prod"]


def test_destroy_walks_the_order_in_reverse(use, recorder):
    runner = use(recorder())
    status, out, _ = run("destroy", "--yes")
    assert status == ExitStatus.OK
    assert runner.stacks() == ["prod", "dev", "lab", "backup"]
    assert list(rows(out)) == ["prod", "dev", "lab", "backup"]


def test_plan_walks_the_same_order_as_up(use, recorder, tmp_path):
    runner = use(recorder())
    run("up", "--yes", "--stacks", "prod", "lab", "backup")
    status, _, err = run(
        "plan", "--stack", "prod", "--stack", "lab", "--stack", "backup", "--json", str(tmp_path / "p.json")
    )
    assert status == ExitStatus.OK, err
    planned = [s["stack"] for s in json.loads((tmp_path / "p.json").read_text())["stacks"]]
    assert planned == runner.stacks() == ["backup", "lab", "prod"]


# -- failures --------------------------------------------------------------------------------------


def test_a_failed_workload_stack_stops_the_ones_after_it(use, recorder):
    runner = use(recorder({"lab": Outcome.FAILED}))
    status, out, _ = run("up", "--yes")
    assert status == ExitStatus.FAILED
    assert runner.stacks() == ["backup", "lab"]
    table = rows(out)
    assert [table[s][1] for s in ALL] == ["succeeded", "failed", "skipped", "skipped"]
    assert "dev: not started: lab failed" in out


def test_a_failed_backup_stack_stops_the_rollout(use, recorder):
    runner = use(recorder({"backup": Outcome.FAILED}))
    status, _, _ = run("up", "--yes", "--parallel", "3")
    assert status == ExitStatus.FAILED
    assert runner.stacks() == ["backup"]


def test_parallel_runs_backup_alone_then_at_most_n_workload_stacks(use, recorder):
    runner = use(recorder(together=["lab", "dev", "prod"], width=2))
    status, _, _ = run("up", "--yes", "--parallel", "2")
    assert status == ExitStatus.OK
    assert runner.stacks()[0] == "backup"
    assert runner.finished[0] == "backup"  # finished before any workload stack started
    assert sorted(runner.stacks()[1:]) == ["dev", "lab", "prod"]
    assert runner.peak == 2


def test_parallel_lets_running_stacks_finish_and_starts_no_new_one_after_a_failure(use, recorder):
    err_seen = io.StringIO()

    def fail_lab(r, operation, stack):
        return OpResult(Outcome.FAILED, message="boom")

    def dev_after_lab_is_reported(r, operation, stack):
        # dev is still running when lab's failure is reported; only then does it finish.
        r.wait_until(lambda: "lab: up failed" in err_seen.getvalue(), "lab's failure to be reported")
        return OpResult(Outcome.SUCCEEDED, changes={"update": 1})

    runner = use(recorder({"lab": fail_lab, "dev": dev_after_lab_is_reported}, together=["lab", "dev"], width=2))
    out = io.StringIO()
    status = main(["--project-dir", str(ROOT), "up", "--yes", "--parallel", "2"], out=out, err=err_seen)
    assert status == ExitStatus.FAILED
    assert sorted(runner.stacks()) == ["backup", "dev", "lab"]
    table = rows(out.getvalue())
    assert [table[s][1] for s in ALL] == ["succeeded", "failed", "succeeded", "skipped"]


def test_ctrl_c_cancels_the_running_stack_and_starts_nothing_new(use, recorder):
    runner = use(recorder({"lab": "interrupt"}))
    status, out, err = run("up", "--yes")
    assert status == ExitStatus.INTERRUPTED
    assert runner.stacks() == ["backup", "lab"]
    assert runner.cancels == 1
    assert [rows(out)[s][1] for s in ALL] == ["succeeded", "interrupted", "skipped", "skipped"]
    assert "stopping the running operations cleanly" in err


def test_sigterm_of_a_cancelled_ci_job_is_handled_like_ctrl_c(use, recorder):
    runner = use(recorder({"backup": "terminate"}))
    status, out, _ = run("destroy", "--yes", "--stacks", "lab", "backup")
    assert status == ExitStatus.INTERRUPTED
    assert runner.stacks() == ["lab", "backup"]
    assert runner.cancels == 1
    assert [rows(out)[s][1] for s in ["lab", "backup"]] == ["succeeded", "interrupted"]


def test_ctrl_c_in_parallel_cancels_every_running_stack(use, recorder):
    def wait_for_cancel(r, operation, stack):
        r.cancelled.wait(10)
        return OpResult(Outcome.INTERRUPTED if r.cancelled.is_set() else Outcome.SUCCEEDED)

    runner = use(recorder({"lab": "interrupt", "dev": wait_for_cancel}, together=["lab", "dev"], width=2))
    status, out, _ = run("up", "--yes", "--parallel", "2")
    assert status == ExitStatus.INTERRUPTED
    assert sorted(runner.stacks()) == ["backup", "dev", "lab"]
    assert [rows(out)[s][1] for s in ALL] == ["succeeded", "interrupted", "interrupted", "skipped"]


def test_drift_checks_every_stack_and_exits_3(use, recorder):
    runner = use(recorder({"lab": Outcome.DRIFT}))
    status, out, _ = run("drift")
    assert status == ExitStatus.DRIFT
    assert runner.calls == [("drift", s) for s in ALL]
    assert rows(out)["lab"][1] == "drift"


def test_no_drift_exits_0_and_a_failure_beats_drift(use, recorder):
    use(recorder())
    assert run("drift")[0] == ExitStatus.OK
    use(recorder({"lab": Outcome.DRIFT, "prod": Outcome.FAILED}))
    assert run("drift")[0] == ExitStatus.FAILED


def test_a_policy_violation_exits_4_and_stops_the_rollout(use, recorder):
    runner = use(recorder({"dev": Outcome.POLICY}))
    status, out, _ = run("preview")
    assert status == ExitStatus.POLICY
    assert runner.stacks() == ["backup", "lab", "dev"]
    assert rows(out)["prod"][1] == "skipped"


# -- confirmation ----------------------------------------------------------------------------------


def test_prod_up_without_yes_and_without_a_terminal_is_declined(use, recorder):
    runner = use(recorder())
    status, out, err = run("up")
    assert status == ExitStatus.FAILED
    assert runner.stacks() == ["backup", "lab", "dev"]
    assert rows(out)["prod"][1] == "declined"
    assert "treated as no (pass --yes to confirm)" in err


def test_prod_up_is_confirmed_on_the_terminal(use, recorder, monkeypatch):
    runner = use(recorder())
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    status, _, err = run("up", "--stacks", "prod")
    assert status == ExitStatus.OK
    assert runner.stacks() == ["prod"]
    assert "up will change stack prod (account 400000000040, tier prod). Continue? [y/N]" in err


def test_prod_up_refused_on_the_terminal(use, recorder, monkeypatch):
    runner = use(recorder())
    monkeypatch.setattr("sys.stdin", Terminal("\n"))
    assert run("up", "--stacks", "prod")[0] == ExitStatus.FAILED
    assert runner.stacks() == []


def test_ctrl_c_at_the_prompt_starts_nothing(use, recorder, monkeypatch):
    import _thread

    class Interrupted(Terminal):
        def readline(self, *args):
            _thread.interrupt_main()  # the operator presses Ctrl-C instead of answering
            return super().readline(*args)

    runner = use(recorder())
    monkeypatch.setattr("sys.stdin", Interrupted("y\n"))
    status, out, _ = run("up", "--stacks", "dev", "prod")
    assert status == ExitStatus.INTERRUPTED
    assert runner.stacks() == ["dev"]
    assert (runner.cancels, rows(out)["prod"][1]) == (1, "skipped")


def test_destroy_asks_before_the_first_stack(use, recorder):
    runner = use(recorder())
    status, out, _ = run("destroy", "--stacks", "lab")
    assert status == ExitStatus.FAILED
    assert runner.stacks() == []
    assert rows(out)["lab"][1] == "declined"


def test_other_operations_do_not_ask(use, recorder):
    runner = use(recorder())
    assert run("preview")[0] == ExitStatus.OK
    assert run("refresh")[0] == ExitStatus.OK
    assert runner.stacks() == ALL + ALL


# -- summary ---------------------------------------------------------------------------------------


def test_json_summary(use, recorder, tmp_path):
    use(recorder({"dev": Outcome.FAILED}))
    target = tmp_path / "summary.json"
    status, out, _ = run("up", "--yes", "--json", str(target))
    assert status == ExitStatus.FAILED
    assert f"summary written to {target}" in out
    document = json.loads(target.read_text())
    assert document["operation"] == "up"
    assert (document["exit_code"], document["exit_status"]) == (1, "failed")
    assert [(s["stack"], s["result"]) for s in document["stacks"]] == [
        ("backup", "succeeded"),
        ("lab", "succeeded"),
        ("dev", "failed"),
        ("prod", "skipped"),
    ]
    assert document["stacks"][0]["changes"] == {"create": 2, "same": 1}
    assert document["stacks"][2]["message"] == "dev failed"
    assert isinstance(document["stacks"][0]["duration_seconds"], float)


def test_summary_table_columns(use, recorder):
    use(recorder())
    _, out, _ = run("preview", "--stacks", "lab")
    header = next(line for line in out.splitlines() if line.startswith("STACK"))
    assert header.split() == ["STACK", "RESULT", "CREATE", "UPDATE", "REPLACE", "DELETE", "SAME", "DURATION"]
    assert out.rstrip().endswith("exit 0 (ok)")


# -- usage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--stacks", "staging"], "unknown stack(s) staging; allowed: backup, lab, dev, prod"),
        (["up", "--stacks", "lab,prdo"], "unknown stack(s) prdo; allowed: backup, lab, dev, prod; did you mean 'prod'"),
        (["up", "--stacks", ","], "argument --stack/--stacks: ',' names no stack; give NAME[,NAME...]"),
        (["up", "--stack", ""], "argument --stack/--stacks: '' names no stack"),
        (["up", "--parallel", "0"], "argument --parallel: 0 is not allowed"),
        (["drift", "--parallel", "two"], "argument --parallel: 'two' is not a whole number"),
        (["up", "--offline"], "--offline: only preview runs offline"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(use, recorder, argv, message):
    runner = use(recorder())
    status, _, err = run(*argv)
    assert status == ExitStatus.USAGE
    assert message in err
    assert runner.calls == []


def test_no_pulumi_cli_exits_2_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nowhere to find `pulumi`

    def no_aws(*args):
        raise AssertionError("AWS must not be asked when the CLI is missing")

    monkeypatch.setattr(preflight, "sts_client", no_aws)
    status, out, err = run("preview", "--stacks", "lab", "--backend-url", f"file://{tmp_path}")
    assert status == ExitStatus.USAGE
    assert "preflight failed; nothing was run" in err
    assert "the Pulumi CLI (`pulumi`) is not installed or not on PATH" in err
    assert "curl -fsSL https://get.pulumi.com | sh" in err
    assert out == ""


def test_preview_offline_runs_the_orchestration_on_the_mock_engine(tmp_path):
    target = tmp_path / "s.json"
    status, _, err = run("preview", "--offline", "--stacks", "lab", "--json", str(target))
    assert status == ExitStatus.OK, err
    document = json.loads(target.read_text())
    assert [s["stack"] for s in document["stacks"]] == ["lab"]
    assert document["stacks"][0]["changes"]["create"] > 0


def test_preview_offline_is_gated_by_the_policy_pack(tmp_path):
    for path in [ROOT / "Pulumi.yaml", ROOT / "__main__.py", *ROOT.glob("Pulumi.*.yaml")]:
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "policy").symlink_to(ROOT / "policy")
    prod = tmp_path / "Pulumi.prod.yaml"
    compliance = "lock: {mode: compliance, min_retention_days: 35, max_retention_days: 3650, changeable_for_days: 3}"
    assert compliance in prod.read_text()
    prod.write_text(
        prod.read_text().replace(
            compliance, "lock: {mode: governance, min_retention_days: 35, max_retention_days: 3650}"
        )
    )
    out, err = io.StringIO(), io.StringIO()
    status = main(["--project-dir", str(tmp_path), "preview", "--offline", "--stacks", "prod"], out=out, err=err)
    assert status == ExitStatus.POLICY
    assert rows(out.getvalue())["prod"][1] == "policy-violation"
    message = next(line for line in out.getvalue().splitlines() if line.startswith("prod: policy violation: "))
    # One lock named (the plan lists resources in no fixed order), and the other five counted: three vaults, two
    # regions.
    assert re.search(
        r"vault-lock-compliance-in-prod on aws:backup/vaultLockConfiguration:VaultLockConfiguration "
        r"(prod|files-raw|files-processed)-ca-(central|west)-1-lock and 5 more",
        message,
    )
    assert "prod: policy vault-lock-compliance-in-prod (mandatory):" in err.getvalue()
