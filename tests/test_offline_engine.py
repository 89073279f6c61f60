"""The offline engine evaluating a stack in this process: the collector's state it runs with and leaves behind."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pgf_backup import stacks
from pgf_backup.project import Project

Plan = dict[str, Any]


def test_the_program_runs_with_what_existed_before_frozen(
    run_stack: Callable[[str], Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    build = stacks.build

    def recording(cfg: Any, stack: str) -> dict[str, Any]:
        seen.append(gc.get_freeze_count())
        return build(cfg, stack)

    monkeypatch.setattr(stacks, "build", recording)
    plan = run_stack("lab")
    assert plan["resources"]
    # The modules and whatever was alive before the run are out of the run's collections ...
    assert seen and seen[0] > 10_000
    # ... and back in them after.
    assert gc.get_freeze_count() == 0


def test_a_failed_evaluation_leaves_nothing_frozen(
    run_stack: Callable[..., Plan], project: Project, tmp_path: Path
) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((project.root / name).read_text())
    text = (project.root / "Pulumi.lab.yaml").read_text()
    # A config error the program itself reports (exit 2), inside the run.
    text = text.replace("config:\n", "config:\n  pgf-backup:regions:\n    primary: ca-central-2\n", 1)
    (tmp_path / "Pulumi.lab.yaml").write_text(text)
    with pytest.raises(SystemExit) as exit_:
        run_stack("lab", Project.find(tmp_path))
    assert exit_.value.code == 2
    assert gc.get_freeze_count() == 0
