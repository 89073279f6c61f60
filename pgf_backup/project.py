"""The Pulumi project on disk: its folder, name and program, and its stack files, read and validated.

Every command reads the stack files through one `Project`, which loads each stack's config once per run.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pgf_backup.config import ROLE_MODELS, BackupAccountStack, ConfigError, StackConfig, load
from pgf_backup.constants import (
    CONFIG_NAMESPACE,
    ROLE_BACKUP_ACCOUNT,
    ROLE_MANAGEMENT,
    ROLE_WORKLOAD,
    STACK_BACKUP,
    STACK_MANAGEMENT,
)

if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    # libyaml's safe loader when PyYAML was built with it (stack files of thousands of buckets load fast).
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PROGRAM = "__main__.py"
# Namespaces a stack file may use besides the project's own; others belong to other providers.
KNOWN_NAMESPACES = frozenset({CONFIG_NAMESPACE, "aws", "pulumi"})
# Pulumi's rule for project names.
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_MERGE_TAG = "tag:yaml.org,2002:merge"
# The settings of a project-level config entry (Pulumi's project schema, `configTypeDeclaration`).
_DECLARATION_KEYS = frozenset({"type", "description", "secret", "default", "value", "items"})


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
    # Each stack's validated config, validated once per content of its file (a run parses each file once).
    _configs: dict[str, tuple[bytes | None, StackConfig]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """The project in `start`, which must hold Pulumi.yaml; by default, the nearest at or above the current folder.

        Never the checkout the package was installed from: a command run outside the project says so, rather than
        planning or deploying another copy of it.
        """
        if start is not None:
            return cls.at(start)
        try:
            here = Path.cwd().resolve()
        except OSError:  # the current folder was deleted under the shell
            raise ConfigError(
                "the current folder no longer exists; cd to the project or pass --project-dir DIR"
            ) from None
        for folder in (here, *here.parents):
            if (folder / "Pulumi.yaml").is_file():
                return cls.at(folder)
        raise ConfigError(
            f"no Pulumi.yaml in {here} or any folder above it: run pgf-backup from the project's folder "
            "(the one holding Pulumi.yaml) or pass --project-dir DIR"
        )

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

    def project_config(self) -> dict[str, Any]:
        """The project-level config of `Pulumi.yaml` (`config:`), as the Pulumi CLI reads it: full key -> value.

        The CLI's rules (Pulumi >= 3.44, project-level configuration; `sdk/go/common/workspace/project.go`,
        `RewriteShorthandConfigValues` and `Project.Validate`): a key of the project's own namespace (or
        without one) is a declaration, whose value is under `value:` or `default:` (a bare scalar there
        would be read as a *type*); a key of another namespace takes a bare scalar or list, or `value:`;
        an object is always nested under `value:`. Project-level values are clear text only.
        """
        manifest = self.root / "Pulumi.yaml"
        entries = _read_yaml(manifest).get("config") or {}
        if not isinstance(entries, dict):
            raise ConfigError("Pulumi.yaml: 'config' must be a mapping of keys to values")
        values: dict[str, Any] = {}
        problems: list[str] = []
        for key, entry in entries.items():
            where = f"Pulumi.yaml: config key {key!r}"
            if not isinstance(key, str):
                problems.append(f"Pulumi.yaml: config key {_shown(key)} is a {_kind(key)}; keys are text")
                continue
            own = ":" not in key or key.startswith(f"{self.name}:")
            full = key if ":" in key else f"{self.name}:{key}"
            if not isinstance(entry, dict):
                if own:
                    problems.append(
                        f"{where}: a bare value of the project's own namespace is read by Pulumi as a type; "
                        f"write it as `{key}: {{value: ...}}`"
                    )
                else:
                    values[full] = entry
                continue
            unknown = sorted(set(entry) - _DECLARATION_KEYS)
            if unknown:
                problems.append(
                    f"{where}: {', '.join(map(repr, unknown))} are not settings of a project-level config entry "
                    f"(allowed: {', '.join(sorted(_DECLARATION_KEYS))}); nest an object under 'value:'"
                )
            elif "value" in entry and "default" in entry:
                problems.append(f"{where}: cannot have both a 'default' and a 'value'")
            elif not own and ("default" in entry or "type" in entry):
                problems.append(f"{where}: not namespaced by the project: give it a 'value' (no 'default' or 'type')")
            elif entry.get("secret"):
                problems.append(
                    f"{where}: project-level config is clear text only; set the secret in each stack file "
                    "(`pulumi config set --secret`)"
                )
            elif "value" in entry or "default" in entry:
                values[full] = entry.get("value", entry.get("default"))
        if problems:
            raise ConfigError("\n".join(problems))
        return values

    def stack_config(self, stack: str) -> tuple[dict[str, str], list[str]]:
        """The flat config a Pulumi language host would pass (`ns:key -> text`), and secret keys.

        Project-level values of `Pulumi.yaml` apply where the stack file does not set the key; a stack
        file's value replaces the project's whole (no merge of objects), as the Pulumi CLI does
        (`pkg/workspace/config.go`, `mergeConfig`: the project value is used only `if !foundOnStack`).
        """
        path = self.stack_file(stack)
        entries = self.stack_settings(stack).get("config") or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{path.name}: 'config' must be a mapping of keys to values")
        merged: dict[Any, tuple[str, Any]] = {
            key: ("Pulumi.yaml", value) for key, value in self.project_config().items()
        }
        for key, value in entries.items():
            full = f"{self.name}:{key}" if isinstance(key, str) and ":" not in key else key
            merged[full] = (path.name, value)
        flat: dict[str, str] = {}
        secrets: list[str] = []
        problems: list[str] = []
        for full, (source, value) in merged.items():
            if not isinstance(full, str):
                problems.append(
                    f"{source}: config key {_shown(full)} is a {_kind(full)}; keys are text of the form "
                    f"'<namespace>:<name>' (e.g. '{CONFIG_NAMESPACE}:tier')"
                )
                continue
            namespace, _, name = full.partition(":")
            # Other providers' namespaces are allowed; one close to ours is a typo the program would ignore.
            if namespace not in KNOWN_NAMESPACES | {self.name} and difflib.get_close_matches(
                namespace.lower(), [CONFIG_NAMESPACE], n=1
            ):
                problems.append(
                    f"{source}: config key {full!r}: unknown namespace {namespace!r}; "
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
                problems.append(f"{source}: {problem}")
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
        """The validated config of a stack (ConfigError names each bad key), validated once per content of its file."""
        path = self.stack_file(stack)
        try:
            # Pulumi.yaml holds the project-level values: its content counts too.
            version: bytes | None = hashlib.sha256(
                (self.root / "Pulumi.yaml").read_bytes() + path.read_bytes()
            ).digest()
        except OSError:
            version = None  # stack_settings says what is wrong with the file
        cached = self._configs.get(stack)
        if version is None or cached is None or cached[0] != version:
            flat, _ = self.stack_config(stack)
            # The role first: it decides which keys the rest of the file may have.
            declared, role = flat.get(f"{CONFIG_NAMESPACE}:role"), stack_role(stack)
            if declared in ROLE_MODELS and declared != role:
                raise ConfigError(
                    f"invalid configuration in {path.name}:\n{CONFIG_NAMESPACE}:role: {declared!r} in stack {stack!r}; "
                    f"the {stack!r} stack's role is {role!r} (backup: {ROLE_BACKUP_ACCOUNT}, management: "
                    f"{ROLE_MANAGEMENT}, every other stack: {ROLE_WORKLOAD})"
                )
            self._configs[stack] = (version, load(flat, source=path.name))
        return self._configs[stack][1]

    def backup_config(self) -> BackupAccountStack:
        """The validated config of the backup account's stack."""
        cfg = self.load_config(STACK_BACKUP)
        assert isinstance(cfg, BackupAccountStack)  # load_config checks each stack's role
        return cfg

    def known_stacks(self) -> list[str]:
        """Every stack of the rollout in order: `management` (when configured), `backup`, then its `rollout_order`.

        The management stack is optional: it exists when `Pulumi.management.yaml` does.
        """
        first = [STACK_MANAGEMENT] if self.stack_file(STACK_MANAGEMENT).is_file() else []
        return [*first, STACK_BACKUP, *self.backup_config().rollout_order]

    def stack_reference_name(self, stack: str) -> str:
        """The name a `StackReference` uses for a stack of this project (self-managed backends)."""
        return f"organization/{self.name}/{stack}"


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


def stack_role(stack: str) -> str:
    """The role a stack's file must declare: the backup account, the management account, or a workload."""
    return {STACK_BACKUP: ROLE_BACKUP_ACCOUNT, STACK_MANAGEMENT: ROLE_MANAGEMENT}.get(stack, ROLE_WORKLOAD)


def rollout_order(stacks: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    """The chosen stacks (default all) in rollout order; refuses unknown names."""
    chosen = list(known) if not stacks else list(dict.fromkeys(stacks))
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise ConfigError(f"unknown stack(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
    return [s for s in known if s in chosen]
