"""The offline engine: evaluate the real program for a stack under Pulumi's mock runtime.

Each stack runs in its own process (`python -m pgf_backup.automation.offline`), because the
Pulumi runtime is process-global state. The parent reads the worker's JSON result.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import re
import runpy
import subprocess
import sys
import tempfile
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pgf_backup.config import ConfigError, StackConfig, load
from pgf_backup.constants import CONFIG_NAMESPACE

if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    # libyaml's safe loader when PyYAML was built with it (stack files of thousands of buckets load fast).
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

EXIT_CONFIG_ERROR = 2
EXIT_PROGRAM_ERROR = 1
PROGRAM = "__main__.py"
# Namespaces a stack file may use besides the project's own; others belong to other providers.
KNOWN_NAMESPACES = frozenset({CONFIG_NAMESPACE, "aws", "pulumi"})
# Pulumi's rule for project names.
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping names a key twice (PyYAML would keep the last one; the Pulumi CLI refuses the file)."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key
        self.line = line
        self.first_line = first_line


class _StackFileLoader(_SafeLoader):
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """Check the mapping's own keys (merged `<<` keys may be overridden), then build it."""
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise _DuplicateKeyError(key, key_node.start_mark.line + 1, first + 1)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_YAML_LOADER = _StackFileLoader


@dataclass(frozen=True)
class Project:
    """A Pulumi project on disk: its folder and name."""

    root: Path
    name: str

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """The project in `start`, which must hold Pulumi.yaml; by default, at or above the current folder."""
        if start is not None:
            return cls.at(start)
        for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
            for folder in (base.resolve(), *base.resolve().parents):
                if (folder / "Pulumi.yaml").is_file():
                    return cls.at(folder)
        raise ConfigError(f"no Pulumi.yaml found at or above {Path.cwd()}; run from the project or pass --project-dir")

    @classmethod
    def at(cls, folder: Path) -> Project:
        """The project whose Pulumi.yaml is in `folder` itself."""
        if not folder.is_dir():
            raise ConfigError(f"project folder {folder} does not exist")
        manifest = folder.resolve() / "Pulumi.yaml"
        if not manifest.is_file():
            raise ConfigError(f"no Pulumi.yaml in {folder}; give the folder that holds the project's Pulumi.yaml")
        name = _read_yaml(manifest, label=str(manifest)).get("name")
        if name is None or name == "":
            raise ConfigError(f"{manifest}: 'name' is missing; Pulumi.yaml names the project (name: pgf-backup)")
        if not isinstance(name, str) or not _PROJECT_NAME.match(name):
            raise ConfigError(
                f"{manifest}: 'name' {name!r} is not allowed; a project name has letters, digits, '-', '_' and '.'"
            )
        return cls(root=manifest.parent, name=name)

    @property
    def program(self) -> Path:
        """The Pulumi program the offline engine runs."""
        return self.root / PROGRAM

    def require_program(self) -> None:
        """ConfigError unless the project holds its program."""
        if not self.program.is_file():
            raise ConfigError(
                f"{self.program} is missing: the project's Pulumi program must be in the folder of its "
                "Pulumi.yaml (this repository's holds `from pgf_backup.stacks import run; run()`)"
            )

    def stack_file(self, stack: str) -> Path:
        """Path of a stack's settings file."""
        return self.root / f"Pulumi.{stack}.yaml"

    def stack_settings(self, stack: str) -> dict[str, Any]:
        """A stack's settings file as read (ConfigError when it is missing, not UTF-8 or not valid YAML)."""
        path = self.stack_file(stack)
        if not path.is_file():
            available = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.root.glob("Pulumi.*.yaml"))
            raise ConfigError(f"stack {stack!r}: no {path.name} in {self.root} (stacks: {', '.join(available)})")
        return _read_yaml(path)

    def stack_config(self, stack: str) -> tuple[dict[str, str], list[str]]:
        """The flat config a Pulumi language host would pass (`ns:key -> text`), and secret keys."""
        path = self.stack_file(stack)
        entries = self.stack_settings(stack).get("config") or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{path.name}: 'config' must be a mapping of keys to values")
        flat: dict[str, str] = {}
        secrets: list[str] = []
        problems: list[str] = []
        for key, value in entries.items():
            if not isinstance(key, str):
                problems.append(
                    f"{path.name}: config key {_shown(key)} is a {_kind(key)}; keys are text of the form "
                    f"'<namespace>:<name>' (e.g. '{CONFIG_NAMESPACE}:tier')"
                )
                continue
            namespace, colon, name = key.partition(":")
            full = key if colon else f"{self.name}:{key}"
            # Other providers' namespaces are allowed; one close to ours is a typo the program would ignore.
            if (
                colon
                and namespace not in KNOWN_NAMESPACES | {self.name}
                and difflib.get_close_matches(namespace.lower(), [CONFIG_NAMESPACE], n=1)
            ):
                problems.append(
                    f"{path.name}: config key {key!r}: unknown namespace {namespace!r}; "
                    f"did you mean '{CONFIG_NAMESPACE}:{name}'?"
                )
                continue
            if isinstance(value, dict) and set(value) == {"secure"}:
                # Encrypted values need the stack's secrets provider: never decrypted offline.
                secrets.append(full)
                flat[full] = "[secret]"
                continue
            problem = _unserializable(value, full, set())
            if problem is not None:
                problems.append(f"{path.name}: {problem}")
            elif isinstance(value, (dict, list)):
                # Pulumi passes YAML dates as text: so does the offline engine.
                flat[full] = json.dumps(value, default=_iso_date)
            elif isinstance(value, bool):
                flat[full] = "true" if value else "false"
            elif isinstance(value, date):
                flat[full] = value.isoformat()
            else:
                flat[full] = "" if value is None else str(value)
        if problems:
            raise ConfigError("\n".join(problems))
        return flat, secrets

    def load_config(self, stack: str) -> StackConfig:
        """The validated config of a stack (ConfigError names each bad key)."""
        flat, _ = self.stack_config(stack)
        return load(flat, source=self.stack_file(stack).name)


def _read_yaml(path: Path, label: str | None = None) -> dict[str, Any]:
    label = label or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{label}: line {line}: byte 0x{error.object[error.start]:02x} is not UTF-8; save the file as UTF-8"
        ) from None
    except OSError as error:
        raise ConfigError(f"{label}: cannot be read: {error.strerror or error}") from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except _DuplicateKeyError as error:
        raise ConfigError(
            f"{label}: line {error.line}: key {_shown(error.key)} is given twice (first at line {error.first_line}); "
            "keep one (YAML would silently keep the last, and the Pulumi CLI refuses the file)"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{label}: not valid YAML: {' '.join(str(error).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping at the top level")
    return data


def _shown(key: Any) -> str:
    return key.isoformat() if isinstance(key, date) else repr(key)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, date):
        return "date"
    if value is None:
        return "null"
    return type(value).__name__


def _iso_date(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")  # _unserializable said so first


def _unserializable(value: Any, where: str, seen: set[int]) -> str | None:
    """Why `value` cannot be passed as Pulumi config (with its key path), or None."""
    if isinstance(value, (str, int, float, bool, date)) or value is None:
        return None
    if not isinstance(value, (dict, list)):
        return f"{where}: a {_kind(value)} value is not allowed; use text, a number, a boolean, a list or a mapping"
    if id(value) in seen:
        return f"{where}: refers to itself (a recursive YAML anchor); write the value out"
    seen.add(id(value))
    problem = None
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in children:
        if isinstance(value, dict) and (
            isinstance(key, date) or not isinstance(key, (str, int, float, bool, type(None)))
        ):
            problem = f"{where}: the key {_shown(key)} is a {_kind(key)}; quote it"
        else:
            problem = _unserializable(inner, f"{where}.{key}" if isinstance(value, dict) else f"{where}[{key}]", seen)
        if problem is not None:
            break
    seen.discard(id(value))
    return problem


@dataclass
class StackPlan:
    """What the offline engine recorded for one stack."""

    stack: str
    role: str
    account: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] | None = None
    # What the program logged with pulumi.log.warn (shown to the operator, not in the JSON).
    warnings: list[str] = field(default_factory=list)

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

    def __init__(self, stack: str, message: str, exit_code: int, warnings: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.stack = stack
        self.exit_code = exit_code
        self.warnings = list(warnings)


# ---------------------------------------------------------------------------------------------
# In the worker process


def evaluate(project: Project, stack: str, stack_outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run `__main__.py` for `stack` under the mock runtime in this process; the recorded plan."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from pgf_backup.automation.mocks import AwsMocks, RecordingMonitor, plain

    project.require_program()
    flat, secret_keys = project.stack_config(stack)
    os.environ["PULUMI_CONFIG"] = json.dumps(flat)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    mocks = AwsMocks(stack_outputs=stack_outputs)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=project.name, stack=stack, preview=False, monitor=monitor, logger=_program_logger()
    )
    if str(project.root) not in sys.path:
        sys.path.insert(0, str(project.root))

    def program() -> None:
        runpy.run_path(str(project.program), run_name="__main__")

    _sync_await(run_pulumi_func(program))
    root = settings.get_root_resource()
    exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    outputs = _sync_await(pulumi.Output.from_input(exported).future()) if exported else {}
    return {"resources": [r.to_json() for r in monitor.recorded], "outputs": plain(outputs or {})}


class _StderrHandler(logging.Handler):
    """Prints `<level>: <message>` to the current stderr, as the Pulumi SDK does without an engine."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


def _program_logger() -> logging.Logger:
    """Where the mock engine sends the program's `pulumi.log` messages (the parent tells warnings from errors)."""
    logger = logging.getLogger(f"{__name__}.program")
    if not logger.handlers:
        logger.addHandler(_StderrHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


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
    """Evaluate one stack in its own process; raises StackError with the worker's error and warnings."""
    cfg = project.load_config(stack)
    if not project.program.is_file():
        raise StackError(stack, f"{project.program} is missing", EXIT_CONFIG_ERROR)
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
        warnings, error = split_stderr(done.stderr)
        if done.returncode != 0 or not out_path.is_file():
            message = error or done.stdout.strip() or f"exit code {done.returncode}"
            code = EXIT_CONFIG_ERROR if done.returncode == EXIT_CONFIG_ERROR else EXIT_PROGRAM_ERROR
            raise StackError(stack, message, code, warnings)
        result = json.loads(out_path.read_text())
    return StackPlan(
        stack=stack,
        role=cfg.role,
        account=cfg.account_id,
        resources=result["resources"],
        outputs=result["outputs"],
        warnings=warnings,
    )


# How the Pulumi SDK prints log messages without an engine (pulumi.log), and how Python prints a crash.
_LEVELS = ("debug: ", "info: ", "warning: ", "error: ")
_TRACEBACK = "Traceback (most recent call last):"


def split_stderr(text: str) -> tuple[list[str], str]:
    """A worker's stderr as (warnings, error): the error runs from its `error:` line (or traceback) on."""
    blocks: list[list[str]] = []
    for line in text.strip().splitlines():
        # A message continues on the lines that do not start a new one.
        if not blocks or line.startswith((*_LEVELS, _TRACEBACK)):
            blocks.append([line])
        else:
            blocks[-1].append(line)
    warnings: list[str] = []
    rest: list[str] = []
    for index, block in enumerate(blocks):
        first = block[0]
        if first.startswith(("error: ", _TRACEBACK)):
            rest = ["\n".join(b) for b in blocks[index:]]
            break
        if first.startswith("warning: "):
            warnings.append("\n".join(block).removeprefix("warning: "))
        elif not first.startswith(_LEVELS):
            rest.append("\n".join(block))
    return warnings, "\n".join(rest).strip().removeprefix("error: ")


if __name__ == "__main__":
    sys.exit(worker_main())
