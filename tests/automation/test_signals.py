"""Ctrl-C and SIGTERM end a command with exit 130, no traceback and no process of its left behind; a Python without
the project's dependencies gets a message, not a traceback.

The end-to-end tests run the real console script (`pgf-backup plan --all`) in its own session and interrupt it at
chosen moments, found by watching /proc: while it imports, while an offline worker evaluates a stack, while the
policy pack judges one. SIGTERM goes to the command alone (a cancelled CI job), SIGINT to its whole process group
(Ctrl-C on a terminal reaches every process of the foreground job).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pgf_backup import entry
from pgf_backup.automation import offline, processes
from pgf_backup.automation.status import ExitStatus
from pgf_backup.project import Project

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="watches processes through /proc")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("pgf-backup")
WORKER = "pgf_backup.automation.offline"
PACK = "pulumi.policy"
# Safety nets against a hang, never timed assertions: the whole plan takes about 10 s.
DEADLINE = 120.0
TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# /proc


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (field 3, the state, is [0]); None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0  # utime, stime


def _catches(pid: int, signum: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signum - 1) & 1)


@dataclass
class Watched:
    """The command and every process it started, recorded while it runs (by pid and start time)."""

    process: subprocess.Popen[bytes]
    seen: dict[int, tuple[str, str]] = field(default_factory=dict)  # pid -> (start time, command line)
    _stop: threading.Event = field(default_factory=threading.Event)

    def scan(self) -> None:
        """Record the descendants running now."""
        todo = [self.process.pid]
        while todo:
            for child in _children(todo.pop()):
                fields = _stat(child)
                if fields is not None:
                    # Read again each time: between fork and exec a child still shows its parent's command line.
                    self.seen[child] = (fields[19], _cmdline(child) or self.seen.get(child, ("", ""))[1])
                todo.append(child)

    def watch(self) -> None:
        while not self._stop.wait(0.005):
            self.scan()

    def of(self, what: str) -> list[int]:
        """The recorded descendants whose command line names `what`."""
        return [pid for pid, (_, cmdline) in self.seen.items() if what in cmdline]

    def left(self) -> list[str]:
        """Descendants (or members of its process group) still running: neither gone nor a zombie."""
        running = []
        for pid, (started, cmdline) in self.seen.items():
            fields = _stat(pid)
            if fields is not None and fields[19] == started and fields[0] != "Z":
                running.append(f"{pid} {cmdline}")
        for entry_ in Path("/proc").iterdir():
            if entry_.name.isdigit() and int(entry_.name) != self.process.pid:
                fields = _stat(int(entry_.name))
                if fields is not None and int(fields[2]) == self.process.pid and fields[0] != "Z":  # its pgid
                    running.append(f"{entry_.name} {_cmdline(int(entry_.name))}")
        return sorted(set(running))


@pytest.fixture
def plan_run(tmp_path: Path) -> Iterator[Callable[[], Watched]]:
    """Start `pgf-backup plan --all` in its own session, watched; killed with its group if a test leaves it."""
    runs: list[Watched] = []

    def start() -> Watched:
        with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
            process = subprocess.Popen(
                [str(SCRIPT), "plan", "--all"], cwd=ROOT, stdout=out, stderr=err, start_new_session=True
            )
        run = Watched(process)
        runs.append(run)
        threading.Thread(target=run.watch, daemon=True).start()
        return run

    yield start
    for run in runs:
        run._stop.set()
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()


def _wait_for(what: str, predicate: Callable[[], bool], run: Watched) -> None:
    ends = time.monotonic() + DEADLINE
    while not predicate():
        assert run.process.poll() is None, f"the plan ended (exit {run.process.returncode}) before {what}"
        assert time.monotonic() < ends, f"gave up waiting for {what}"
        time.sleep(0.002)


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _during_imports(run: Watched) -> None:
    # The entry module installs the SIGTERM handler before it imports the CLI, which takes about a second.
    _wait_for("the signal handlers", lambda: _catches(run.process.pid, signal.SIGTERM), run)


def _during_offline_plan(run: Watched) -> None:
    def evaluating() -> bool:
        run.scan()
        return any(_cpu_seconds(pid) >= 0.3 for pid in run.of(WORKER) if _running(pid))

    _wait_for("an offline worker evaluating the backup stack", evaluating, run)


def _during_policy_gate(run: Watched) -> None:
    # The backup stack's worker has ended and the pack, idle since it loaded, is busy: the gate is judging it.
    def backup_planned() -> bool:
        run.scan()
        return bool(run.of(WORKER)) and not any(_running(pid) for pid in run.of(WORKER)) and bool(run.of(PACK))

    _wait_for("the backup stack's evaluation to end", backup_planned, run)
    pack = run.of(PACK)[0]
    idle = _cpu_seconds(pack)
    _wait_for("the policy pack to work", lambda: _cpu_seconds(pack) > idle, run)


MOMENTS = {"imports": _during_imports, "offline plan": _during_offline_plan, "policy gate": _during_policy_gate}


@pytest.mark.parametrize(
    ("moment", "signum", "to"),
    [
        ("imports", signal.SIGTERM, "process"),
        ("imports", signal.SIGINT, "group"),
        ("offline plan", signal.SIGTERM, "process"),
        ("offline plan", signal.SIGINT, "group"),
        ("policy gate", signal.SIGTERM, "process"),
        ("policy gate", signal.SIGINT, "group"),
    ],
    ids=lambda value: value.name if isinstance(value, signal.Signals) else str(value),
)
def test_an_interrupted_plan_exits_130_and_leaves_no_process(
    plan_run: Callable[[], Watched], tmp_path: Path, moment: str, signum: signal.Signals, to: str
) -> None:
    run = plan_run()
    MOMENTS[moment](run)
    workers_before = len(run.of(WORKER))
    (os.killpg if to == "group" else os.kill)(run.process.pid, signum)
    try:
        status = run.process.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {DEADLINE:.0f} s after {signum.name}")
    run._stop.set()
    err = (tmp_path / "err").read_text()
    assert status == ExitStatus.INTERRUPTED, err
    assert err.strip().splitlines()[-1:] == ["interrupted"], err
    assert "Traceback" not in err
    assert run.left() == []
    if moment == "imports":
        assert run.seen == {}  # nothing was started yet
    else:
        assert len(run.of(WORKER)) == workers_before  # the signal came before the next stack started
        assert run.of(PACK)


def test_missing_dependencies_are_named_without_a_traceback() -> None:
    """`python3 -m pgf_backup plan` with the Python the virtualenv was made from (no pulumi there), from the repo root.

    `-s -E`, not `-I`: `-I` also leaves the current folder off sys.path, and Python itself then stops with
    "No module named pgf_backup" before any of the project's code runs.
    """
    python = Path(sys.base_prefix) / "bin" / "python3"
    if not python.is_file():
        pytest.skip(f"no base Python at {python}")
    probe = subprocess.run([str(python), "-s", "-E", "-c", "import pulumi"], capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip(f"{python} has pulumi installed")
    done = subprocess.run(
        [str(python), "-s", "-E", "-m", "pgf_backup", "plan"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == ExitStatus.USAGE
    assert "Traceback" not in done.stderr
    assert "lacks the package(s) pgf-backup needs: pulumi" in done.stderr
    assert "`make plan` creates .venv" in done.stderr and ".venv/bin/pgf-backup" in done.stderr


def test_an_unknown_missing_module_is_named_and_a_missing_project_module_is_not_hidden() -> None:
    # Every dependency is installed here: the message names the module Python could not find.
    assert "needs: nosuchmodule." in entry.missing_dependencies_message(ModuleNotFoundError(name="nosuchmodule.sub"))
    with pytest.raises(ModuleNotFoundError):
        entry._fail_on_missing(ModuleNotFoundError(name="pgf_backup.nosuchmodule"))


# ---------------------------------------------------------------------------------------------
# The pieces


def test_a_signal_during_a_held_block_is_acted_on_when_it_ends() -> None:
    steps: list[str] = []
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), processes.signals_held():
        signal.raise_signal(signal.SIGINT)
        steps.append("after the signal, still in the block")
    assert steps == ["after the signal, still in the block"]
    assert signal.getsignal(signal.SIGINT) is previous


def test_each_held_signal_reaches_the_handler_in_place() -> None:
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in processes.SIGNALS}
    try:
        with processes.signals_held():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)
            assert received == []
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert received == [signal.SIGTERM, signal.SIGINT]


def test_stop_kills_a_child_that_ignores_its_signal_and_reaps_it() -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"1\n"  # its handler is in place
    processes.stop(child, first=signal.SIGTERM, grace=0.2)
    assert child.returncode == -signal.SIGKILL
    child.stdout.close()


def test_stop_ends_a_child_in_its_own_session_with_what_it_started() -> None:
    script = "import subprocess, time; p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    processes.stop(child, first=signal.SIGINT, grace=5)
    assert child.returncode is not None
    deadline = time.monotonic() + 10
    while _running(grandchild) and time.monotonic() < deadline:  # killed; reaped by init once its parent is gone
        time.sleep(0.01)
    assert not _running(grandchild)
    child.stdout.close()


def test_stop_workers_ends_a_running_offline_evaluation(project: Project) -> None:
    """The rollout's Ctrl-C (`preview --offline`) stops the workers, also when the signal reached this process alone."""
    failure: list[BaseException] = []

    def plan() -> None:
        try:
            offline.plan_stack(project, "backup")
        except offline.StackError as error:
            failure.append(error)

    thread = threading.Thread(target=plan)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while offline.stop_workers() == 0:
        assert thread.is_alive() and time.monotonic() < deadline, "the worker ended before it could be stopped"
        time.sleep(0.01)
    thread.join(DEADLINE)
    assert not thread.is_alive() and failure  # killed: the evaluation fails, as the runner reports when cancelled
    assert [pid for pid in _children(os.getpid()) if WORKER in _cmdline(pid) and _running(pid)] == []


def test_an_interrupted_cli_command_gets_its_cancel_and_ends_first(fake_pulumi: Path, tmp_path: Path) -> None:
    """Ctrl-C in the main thread (outside the rollout, which forwards it itself) while a Pulumi CLI command runs in
    its own session, where the terminal's Ctrl-C does not reach it: the command is sent its SIGINT and has ended
    before KeyboardInterrupt goes on."""
    from pgf_backup.automation.live import TrackedPulumiCommand

    command = TrackedPulumiCommand(root=str(fake_pulumi))
    ready = fake_pulumi / "calls.jsonl.ready"

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + DEADLINE
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # a real signal: it wakes the main thread blocked in a join

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        command.run(["up", "wait"], str(tmp_path), {})
    assert (fake_pulumi / "calls.jsonl.sigint").read_text() == "SIGINT"
    binary = str(fake_pulumi / "bin" / "pulumi")
    assert [pid for pid in _children(os.getpid()) if binary in _cmdline(pid) and _running(pid)] == []
