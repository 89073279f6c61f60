"""Child processes that end with the command: offline plan workers, policy pack processes, Pulumi CLI runs.

Ctrl-C and SIGTERM (`pgf_backup.entry`) raise KeyboardInterrupt between two bytecodes of the main thread, so
the steps that must not be cut in two, starting a child and recording it, and stopping one, hold the signals
back (`signals_held`) and act on them once the step is done: no child is started and then lost, and a second
Ctrl-C cannot leave one half-stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final

SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS: Final = 5.0


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block; each one that came meanwhile is raised again as it ends.

    Only the main thread runs signal handlers, so in any other thread this does nothing (nothing to hold).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        held.append(signum)

    # Python can only put back handlers it knows (getsignal is None for one set outside Python): those stay.
    previous = {sig: handler for sig in SIGNALS if (handler := signal.getsignal(sig)) is not None}
    try:
        for sig in previous:
            signal.signal(sig, hold)
        yield
    finally:
        # Blocked while the handlers go back, so that no signal finds one restored and the other still held.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # Each again, to the handler in place now: KeyboardInterrupt, the rollout's count, or the default action.
        for signum in held:
            signal.raise_signal(signum)


def stop(process: subprocess.Popen[Any], *, first: int | None = signal.SIGINT, grace: float = GRACE_SECONDS) -> None:
    """End a child and reap it: `first` (None: SIGKILL at once), then SIGKILL after `grace` seconds.

    A child started in its own session (`start_new_session=True`) leads its own process group: the signals
    go to that group, so what it started itself (a Pulumi CLI's plugins) ends with it.
    """
    with signals_held():
        if process.poll() is None:
            group = _own_group(process)
            if first is not None:
                _send(process, first, group)
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace)
            if process.poll() is None:
                _send(process, signal.SIGKILL, group)
                process.wait()


def _own_group(process: subprocess.Popen[Any]) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid != os.getpgrp()
    except ProcessLookupError:
        return False


def _send(process: subprocess.Popen[Any], signum: int, group: bool) -> None:
    try:
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
    except ProcessLookupError:  # it ended meanwhile
        pass
