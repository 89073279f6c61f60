"""scripts/plan_diff.py: plans equal apart from ordering are the same; any other change is reported."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plan_diff.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plan_diff", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plan(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"stacks": [{"stack": "prod", "resources": list(resources), "outputs": {}}], "paths": []}


A = {"urn": "a", "type": "t", "inputs": {"policy": json.dumps({"Statement": [{"Sid": "S", "Effect": "Deny"}]})}}
B = {"urn": "b", "type": "t", "inputs": {"name": "x"}}


def test_order_and_json_key_order_do_not_count(tmp_path: Path) -> None:
    reordered = dict(A, inputs={"policy": json.dumps({"Statement": [{"Effect": "Deny", "Sid": "S"}]})})
    (tmp_path / "1.json").write_text(json.dumps(_plan(A, B)))
    (tmp_path / "2.json").write_text(json.dumps(_plan(B, reordered)))
    assert _module().main([str(tmp_path / "1.json"), str(tmp_path / "2.json")]) == 0


def test_a_changed_statement_or_a_missing_resource_is_reported(tmp_path: Path, capsys: Any) -> None:
    changed = dict(A, inputs={"policy": json.dumps({"Statement": [{"Sid": "S", "Effect": "Allow"}]})})
    (tmp_path / "1.json").write_text(json.dumps(_plan(A, B)))
    (tmp_path / "2.json").write_text(json.dumps(_plan(changed)))
    assert _module().main([str(tmp_path / "1.json"), str(tmp_path / "2.json")]) == 1
    out = capsys.readouterr().out
    assert "- /stacks/prod/resources/b" in out
    assert '~ /stacks/prod/resources/a/inputs/policy/Statement: [{"Effect": "Deny"' in out


def test_allow_moves_pairs_a_resource_moved_into_a_component(tmp_path: Path, capsys: Any) -> None:
    moved = dict(B, urn="c$b", name="x-region")
    component = {"urn": "c", "type": "pgf:backup:BackupSettings", "name": "x", "inputs": {}}
    before = _plan(A, dict(B, name="x"))
    after = _plan(A, component, dict(moved, inputs=B["inputs"]))
    (tmp_path / "1.json").write_text(json.dumps(before))
    (tmp_path / "2.json").write_text(json.dumps(after))
    files = [str(tmp_path / "1.json"), str(tmp_path / "2.json")]
    assert _module().main(files) == 1  # by URN: one resource gone, two new
    assert _module().main(["--allow-moves", *files]) == 0
    assert "moved b -> c$b" in capsys.readouterr().out
    changed = dict(moved, inputs={"name": "y"})
    (tmp_path / "3.json").write_text(json.dumps(_plan(A, component, changed)))
    assert _module().main(["--allow-moves", files[0], str(tmp_path / "3.json")]) == 1  # its inputs changed too
