"""The offline engine: evaluate the real program for a stack under Pulumi's mock runtime.

Each stack runs in its own process (`python -m pgf_backup.automation.offline`), because the
Pulumi runtime is process-global state. The parent reads the worker's JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pgf_backup.config import ConfigError, StackConfig, load

# libyaml's safe loader when PyYAML was built with it (stack files of thousands of buckets load fast).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
EXIT_CONFIG_ERROR = 2
EXIT_PROGRAM_ERROR = 1


@dataclass(frozen=True)
class Project:
    """A Pulumi project on disk: its folder and name."""

    root: Path
    name: str

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """The project whose Pulumi.yaml is at or above `start` (default: this checkout)."""
        candidates = [start] if start else [Path.cwd(), Path(__file__).resolve().parents[2]]
        for base in candidates:
            for folder in (base.resolve(), *base.resolve().parents):
                manifest = folder / "Pulumi.yaml"
                if manifest.is_file():
                    data = _read_yaml(manifest)
                    return cls(root=folder, name=str(data.get("name") or folder.name))
        raise ConfigError(f"no Pulumi.yaml found at or above {candidates[0]}")

    def stack_file(self, stack: str) -> Path:
        """Path of a stack's settings file."""
        return self.root / f"Pulumi.{stack}.yaml"

    def stack_config(self, stack: str) -> tuple[dict[str, str], list[str]]:
        """The flat config a Pulumi language host would pass (`ns:key -> text`), and secret keys."""
        path = self.stack_file(stack)
        if not path.is_file():
            available = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.root.glob("Pulumi.*.yaml"))
            raise ConfigError(f"stack {stack!r}: no {path.name} in {self.root} (stacks: {', '.join(available)})")
        entries = _read_yaml(path).get("config") or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{path.name}: 'config' must be a mapping of keys to values")
        flat: dict[str, str] = {}
        secrets: list[str] = []
        for key, value in entries.items():
            full = key if ":" in key else f"{self.name}:{key}"
            if isinstance(value, dict) and set(value) == {"secure"}:
                # Encrypted values need the stack's secrets provider: never decrypted offline.
                secrets.append(full)
                flat[full] = "[secret]"
            elif isinstance(value, (dict, list)):
                flat[full] = json.dumps(value)
            elif isinstance(value, bool):
                flat[full] = "true" if value else "false"
            else:
                flat[full] = "" if value is None else str(value)
        return flat, secrets

    def load_config(self, stack: str) -> StackConfig:
        """The validated config of a stack (ConfigError names each bad key)."""
        flat, _ = self.stack_config(stack)
        return load(flat, source=self.stack_file(stack).name)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise ConfigError(f"{path.name}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected a mapping at the top level")
    return data


@dataclass
class StackPlan:
    """What the offline engine recorded for one stack."""

    stack: str
    role: str
    account: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The `--json` shape of a stack."""
        data: dict[str, Any] = {
            "stack": self.stack,
            "role": self.role,
            "account": self.account,
            "resources": self.resources,
            "outputs": self.outputs,
        }
        if self.policy is not None:
            data["policy"] = self.policy
        return data


class StackError(Exception):
    """The program failed for a stack; the message says why (config error or program error)."""

    def __init__(self, stack: str, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.stack = stack
        self.exit_code = exit_code


# ---------------------------------------------------------------------------------------------
# In the worker process


def evaluate(project: Project, stack: str, stack_outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run `__main__.py` for `stack` under the mock runtime in this process; the recorded plan."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from pgf_backup.automation.mocks import AwsMocks, RecordingMonitor, plain

    flat, secret_keys = project.stack_config(stack)
    os.environ["PULUMI_CONFIG"] = json.dumps(flat)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    mocks = AwsMocks(stack_outputs=stack_outputs)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project.name, stack=stack, preview=False, monitor=monitor)
    if str(project.root) not in sys.path:
        sys.path.insert(0, str(project.root))

    def program() -> None:
        runpy.run_path(str(project.root / "__main__.py"), run_name="__main__")

    _sync_await(run_pulumi_func(program))
    root = settings.get_root_resource()
    exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    outputs = _sync_await(pulumi.Output.from_input(exported).future()) if exported else {}
    return {"resources": [r.to_json() for r in monitor.recorded], "outputs": plain(outputs or {})}


def worker_main(argv: list[str] | None = None) -> int:
    """`python -m pgf_backup.automation.offline`: evaluate one stack, write its JSON result."""
    parser = argparse.ArgumentParser(prog="pgf_backup.automation.offline")
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--stack-outputs", type=Path, help="JSON: stack reference name -> outputs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    refs = json.loads(args.stack_outputs.read_text()) if args.stack_outputs else {}
    try:
        project = Project.find(args.project_dir)
        result = evaluate(project, args.stack, refs)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except SystemExit as exit_:  # the program exits 2 on a config error, message already printed
        return int(exit_.code) if isinstance(exit_.code, int) else EXIT_PROGRAM_ERROR
    args.out.write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# In the parent process


def plan_stack(project: Project, stack: str, stack_outputs: dict[str, dict[str, Any]] | None = None) -> StackPlan:
    """Evaluate one stack in its own process; raises StackError with the worker's message."""
    cfg = project.load_config(stack)
    with tempfile.TemporaryDirectory(prefix="pgf-plan-") as tmp:
        refs_path = Path(tmp) / "refs.json"
        out_path = Path(tmp) / "plan.json"
        refs_path.write_text(json.dumps(stack_outputs or {}))
        command = [
            sys.executable,
            "-m",
            "pgf_backup.automation.offline",
            "--project-dir",
            str(project.root),
            "--stack",
            stack,
            "--stack-outputs",
            str(refs_path),
            "--out",
            str(out_path),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=project.root)
        if done.returncode != 0 or not out_path.is_file():
            message = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").removeprefix(
                "error: "
            )
            code = EXIT_CONFIG_ERROR if done.returncode == EXIT_CONFIG_ERROR else EXIT_PROGRAM_ERROR
            raise StackError(stack, message, code)
        result = json.loads(out_path.read_text())
    return StackPlan(
        stack=stack,
        role=cfg.role,
        account=cfg.account_id,
        resources=result["resources"],
        outputs=result["outputs"],
    )


if __name__ == "__main__":
    sys.exit(worker_main())
