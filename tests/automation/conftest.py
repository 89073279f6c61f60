"""A runner that records the rollout's calls, and a fake `pulumi` binary, for the driver's tests."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pgf_backup.automation.rollout import OpResult, Outcome

# Safety net only: a test whose expectation fails would otherwise hang; never a timed assertion.
WAIT_SECONDS = 10.0

Action = Callable[["RecordingRunner", str, str], OpResult]
Script = dict[str, "Outcome | Action | str"]


@dataclass
class RecordingRunner:
    """Records (operation, stack) calls and the peak number of stacks running at once.

    `script` maps a stack to its outcome or to an action run in its place. Stacks listed in
    `together` wait until `width` of them run at once (or all of them have started), so that a
    rollout that should run them in parallel is seen doing so.
    """

    script: Script = field(default_factory=dict)
    together: tuple[str, ...] = ()
    width: int = 1
    calls: list[tuple[str, str]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    active: int = 0
    peak: int = 0
    cancels: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _started_together: set[str] = field(default_factory=set)
    _active_together: int = 0

    def _do(self, operation: str, stack: str) -> OpResult:
        with self._cond:
            self.calls.append((operation, stack))
            self.active += 1
            self.peak = max(self.peak, self.active)
            if stack in self.together:
                self._started_together.add(stack)
                self._active_together += 1
            self._cond.notify_all()
        try:
            if stack in self.together:
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._active_together >= self.width or self._started_together == set(self.together),
                        timeout=WAIT_SECONDS,
                    )
            action = self.script.get(stack, Outcome.SUCCEEDED)
            if action == "interrupt":
                return self.interrupt_and_wait()
            if action == "terminate":
                return self.interrupt_and_wait(signal.SIGTERM)
            if isinstance(action, Outcome):
                return OpResult(action, changes={"create": 2, "same": 1}, message=f"{stack} {action}")
            return action(self, operation, stack)
        finally:
            with self._cond:
                self.active -= 1
                if stack in self.together:
                    self._active_together -= 1
                self.finished.append(stack)
                self._cond.notify_all()

    def preview(self, stack: str) -> OpResult:
        """Record a preview."""
        return self._do("preview", stack)

    def up(self, stack: str) -> OpResult:
        """Record an up."""
        return self._do("up", stack)

    def refresh(self, stack: str) -> OpResult:
        """Record a refresh."""
        return self._do("refresh", stack)

    def destroy(self, stack: str) -> OpResult:
        """Record a destroy."""
        return self._do("destroy", stack)

    def drift(self, stack: str) -> OpResult:
        """Record a drift check."""
        return self._do("drift", stack)

    def cancel(self) -> None:
        """Record the cancellation and release the operations waiting for it."""
        self.cancels += 1
        self.cancelled.set()

    def stacks(self) -> list[str]:
        """The stacks called, in call order."""
        return [stack for _, stack in self.calls]

    def interrupt_and_wait(self, signum: int = signal.SIGINT) -> OpResult:
        """Press Ctrl-C (SIGINT to the main thread), then stop when the rollout cancels."""
        import _thread

        _thread.interrupt_main(signum)
        if not self.cancelled.wait(WAIT_SECONDS):
            return OpResult(Outcome.SUCCEEDED, message="never cancelled")
        return OpResult(Outcome.INTERRUPTED, message="cancelled")

    @staticmethod
    def wait_until(predicate: Callable[[], bool], what: str) -> None:
        """Poll until `predicate` holds (a safety net against hangs, not a timing check)."""
        pause = threading.Event()
        for _ in range(int(WAIT_SECONDS / 0.01)):
            if predicate():
                return
            pause.wait(0.01)
        raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def recorder() -> Callable[..., RecordingRunner]:
    """Make a RecordingRunner."""

    def make(script: Script | None = None, together: Iterable[str] = (), width: int = 1) -> RecordingRunner:
        return RecordingRunner(script=dict(script or {}), together=tuple(together), width=width)

    return make


FAKE_PULUMI = """#!{python}
# A stand-in for the `pulumi` binary: answers `version`, records every other call.
import json, os, signal, sys, time

args = sys.argv[1:]
if args == ["version"]:
    print(os.environ.get("FAKE_PULUMI_VERSION", "v3.272.0"))
    sys.exit(0)
record = os.environ["FAKE_PULUMI_RECORD"]
with open(record, "a") as f:
    f.write(json.dumps({{"args": args, "sid": os.getsid(0), "automation": os.environ.get("PULUMI_AUTOMATION_API"),
                        "backend": os.environ.get("PULUMI_BACKEND_URL")}}) + "\\n")
if "fail" in args:
    print("error: boom", file=sys.stderr)
    sys.exit(255)
if "wait" in args:
    def cancel(*_):
        open(record + ".sigint", "w").write("SIGINT")
        print("cancelling after the in-flight operations")
        sys.exit(255)
    signal.signal(signal.SIGINT, cancel)
    open(record + ".ready", "w").write("ready")
    for _ in range(1000):  # 10 s at most
        time.sleep(0.01)
    sys.exit(0)
print("output line")
"""


@pytest.fixture
def fake_pulumi(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake Pulumi installation root (`<root>/bin/pulumi`); its calls go to `<root>/calls.jsonl`."""
    root = tmp_path_factory.mktemp("pulumi-root")
    binary = root / "bin" / "pulumi"
    binary.parent.mkdir()
    binary.write_text(FAKE_PULUMI.format(python=sys.executable))
    binary.chmod(0o755)
    monkeypatch.setenv("FAKE_PULUMI_RECORD", str(root / "calls.jsonl"))
    monkeypatch.delenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", raising=False)
    return root
