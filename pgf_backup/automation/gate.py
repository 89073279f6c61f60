"""The offline preview gate: the real policy pack, started as the Pulumi CLI starts it, spoken to over gRPC.

The Pulumi CLI's Python analyzer shim runs `python -u -m pulumi.policy <engine-address> <pack folder>`;
the pack prints its port and serves the `Analyzer` service. The gate does the same, then sends what the
engine sends during a preview: `GetAnalyzerInfo`, `Configure` (the reconciled policy config),
`ConfigureStack`, one `Analyze` per custom resource (with `protect` and its provider) and one
`AnalyzeStack`. The verdict is the pack's own diagnostics. The pack never dials the engine address
(pulumi_policy reports through diagnostics, and logs to stderr without an engine), so none is served.

One pack process serves every stack (Configure and ConfigureStack are sent again for each stack). The
pack is single-threaded Python, so for stacks of thousands of resources the `Analyze` calls are spread
over a few processes and `AnalyzeStack`, which needs nothing from them, runs on its own process beside
them (each process still sees a complete Configure, ConfigureStack, Analyze/AnalyzeStack sequence).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from pgf_backup.automation import processes
from pgf_backup.automation.offline import StackPlan
from pgf_backup.config import BackupAccountStack, ConfigError, StackConfig, VaultStack, WorkloadStack
from pgf_backup.constants import RESTORE_TESTING_TYPES
from pgf_backup.project import Project

POLICY_DIR: Final = "policy"
CONFIG_DIR: Final = "config"
# The pack never dials it (see the module docstring); a closed local port, as an address must be given.
UNUSED_ENGINE_ADDRESS: Final = "127.0.0.1:0"
LEVELS: Final = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_OF_PROTO: Final = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_PROTO_OF_LEVEL: Final = {level: proto for proto, level in _LEVEL_OF_PROTO.items()}
_IN_FLIGHT_PER_PROCESS: Final = 32  # enough to keep a pack's 4 gRPC threads busy, small enough to stay lean
_RESOURCES_PER_PROCESS: Final = 2500  # below this, a second process costs more than it saves
_PROVIDER_PREFIX: Final = "pulumi:providers:"
_STOP_SECONDS: Final = 5.0  # a pack ends at once on SIGTERM; past this it is killed
# The tiers whose restore testing the pack checks (`restore-testing-covers-prod`), and where their tests run: the
# pack's `restoreTesting` setting (its schema's `location` enum).
RESTORE_TESTED_TIERS: Final = ("prod",)
TESTS_IN_BACKUP_ACCOUNT: Final = "backup-account"
TESTS_IN_WORKLOAD: Final = "workload"


class GateError(Exception):
    """The pack could not be started, configured or run; the message says why (with the pack's stderr)."""


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PolicyInfo:
    """One policy of the pack, as `GetAnalyzerInfo` describes it."""

    name: str
    description: str
    enforcement: str
    kind: str  # "resource" or "stack"
    schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    """One diagnostic of the pack."""

    policy: str
    urn: str
    message: str
    enforcement: str

    def to_json(self) -> dict[str, str]:
        """The `--json` shape of a violation."""
        return {"policy": self.policy, "urn": self.urn, "message": self.message, "enforcement": self.enforcement}


@dataclass(frozen=True)
class Verdict:
    """The pack's verdict on one stack."""

    stack: str
    violations: tuple[Violation, ...] = ()

    @property
    def mandatory(self) -> list[Violation]:
        """The violations that block the deployment."""
        return [v for v in self.violations if v.enforcement == "mandatory"]

    @property
    def passed(self) -> bool:
        """True when no mandatory violation was reported."""
        return not self.mandatory

    def to_json(self) -> dict[str, Any]:
        """The `--json` shape: `{"violations": [...], "passed": bool}`."""
        return {"violations": [v.to_json() for v in self.violations], "passed": self.passed}


# ---------------------------------------------------------------------------------------------
# Policy config, reconciled as the Pulumi CLI does (`pulumi preview --policy-pack-config FILE`)


def load_policy_config(path: Path) -> dict[str, Any]:
    """A policy config file: `{"<policy>": "<level>" | {"enforcementLevel": ..., <settings>}, "all": ...}`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GateError(f"policy config {path}: {error}") from None
    if not isinstance(data, dict):
        raise GateError(f"policy config {path}: expected a JSON object keyed by policy name")
    return data


def missing_tier_config(policy_dir: Path, tier: str | None) -> str | None:
    """A warning when a workload tier has no shipped config (`policy/config/<tier>.json`), else None."""
    path = policy_dir / CONFIG_DIR / f"{tier}.json"
    if tier is None or path.is_file():
        return None
    return (
        f"{path} is missing: the {tier} tier is checked with the policy pack's default enforcement levels and settings"
    )


def tier_config(policy_dir: Path, tier: str | None, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The pack's shipped config for a tier (`policy/config/<tier>.json`), or {} (with a warning) when there is none."""
    missing = missing_tier_config(policy_dir, tier)
    if missing is not None:
        (warn or _warn)(missing)
        return {}
    return load_policy_config(policy_dir / CONFIG_DIR / f"{tier}.json") if tier else {}


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def restore_tested_types(cfg: WorkloadStack) -> list[str]:
    """The resource types a workload stack protects that AWS Backup restore testing accepts.

    The services opted in (its plan's selection takes every tagged resource of those types), S3 for the buckets it
    backs up and its export bucket, RDS for its database instances and Aurora for its clusters. The accepted types
    are RestoreTestingSelectionForCreate's ProtectedResourceType values (`RESTORE_TESTING_TYPES`,
    https://docs.aws.amazon.com/aws-backup/latest/devguide/API_RestoreTestingSelectionForCreate.html).
    """
    types = {service for service in cfg.services if service in RESTORE_TESTING_TYPES}
    if cfg.exports is not None or any(bucket.backup for bucket in cfg.buckets.values()):
        types.add("S3")
    types.update("RDS" if database.kind == "instance" else "Aurora" for database in cfg.databases.values())
    return sorted(types)


def restore_testing_location(cfg: WorkloadStack) -> str:
    """Where a workload stack's restore tests run: in its own account when its file enables `restore_testing`."""
    here = cfg.restore_testing is not None and cfg.restore_testing.enabled
    return TESTS_IN_WORKLOAD if here else TESTS_IN_BACKUP_ACCOUNT


def restore_testing_settings(cfg: StackConfig, configs: Mapping[str, StackConfig] | None = None) -> dict[str, Any]:
    """The pack's `restoreTesting` setting of a stack: {tier: {location, types, stacks}} for the tested tiers.

    A workload stack describes itself. The backup stack, which only sees copies, learns from the workload stacks'
    configs (`configs`, by stack name) which types each tested tier protects: those of the stacks testing in the
    backup account, or, when every stack of the tier tests in its own account, theirs with location `workload`.
    """
    if isinstance(cfg, WorkloadStack):
        if cfg.tier not in RESTORE_TESTED_TIERS:
            return {}
        return {cfg.tier: {"location": restore_testing_location(cfg), "types": restore_tested_types(cfg)}}
    if not isinstance(cfg, BackupAccountStack):
        return {}
    settings: dict[str, Any] = {}
    for tier in RESTORE_TESTED_TIERS:
        stacks = {
            name: other
            for name, other in sorted((configs or {}).items())
            if isinstance(other, WorkloadStack) and other.tier == tier
        }
        here = {
            name: other for name, other in stacks.items() if restore_testing_location(other) == TESTS_IN_BACKUP_ACCOUNT
        }
        chosen = here or stacks
        if not chosen:
            continue
        settings[tier] = {
            "location": TESTS_IN_BACKUP_ACCOUNT if here else TESTS_IN_WORKLOAD,
            "types": sorted({t for other in chosen.values() for t in restore_tested_types(other)}),
            "stacks": list(chosen),
        }
    return settings


def configs_for(project: Project, cfg: StackConfig, loaded: Mapping[str, StackConfig]) -> Mapping[str, StackConfig]:
    """The stack configs a stack's pack config reads: for the backup stack every stack's of the project (its restore
    testing covers what the workload stacks protect), for any other the ones already `loaded`."""
    if not isinstance(cfg, BackupAccountStack):
        return loaded
    try:
        return {stack: loaded.get(stack) or project.load_config(stack) for stack in project.known_stacks()}
    except ConfigError as error:
        raise GateError(f"the backup stack's policy settings read every stack's config: {error}") from None


def stack_settings(cfg: StackConfig, configs: Mapping[str, StackConfig] | None = None) -> dict[str, Any]:
    """Pack settings that follow from a stack's own config (tier, retention bounds, role names) and, for the backup
    stack, from the other stacks' (`configs`, by stack name: what prod's restore testing must cover)."""
    settings: dict[str, Any] = {"breakGlassRole": cfg.iam.break_glass_role, "deployRole": cfg.iam.deploy_role}
    if isinstance(cfg, VaultStack):
        settings["tierBounds"] = {
            tier: {"minDays": bounds.min_days, "maxDays": bounds.max_days}
            for tier, bounds in ((t, cfg.tier_bounds.of(t)) for t in ("lab", "dev", "prod"))
        }
    if cfg.stack_tier is not None:
        settings["tier"] = cfg.stack_tier
    restore_testing = restore_testing_settings(cfg, configs)
    if restore_testing:
        settings["restoreTesting"] = restore_testing
    return settings


def pack_config(
    policy_dir: Path,
    policies: Sequence[PolicyInfo],
    cfg: StackConfig,
    warn: Callable[[str], None] | None = None,
    configs: Mapping[str, StackConfig] | None = None,
) -> dict[str, Any]:
    """A stack's pack config, for the offline gate and the live `--policy-pack-config` alike.

    Its tier's shipped config (`policy/config/<tier>.json`) plus the settings of its own config (retention
    bounds, deploy and break-glass role names) for every policy that reads them; what the file sets wins. The
    backup stack's also reads the workload stacks' `configs` (`configs_for`): without them it does not know what
    prod's restore testing must cover.
    """
    return with_settings(tier_config(policy_dir, cfg.stack_tier, warn), policies, stack_settings(cfg, configs))


def write_pack_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write a pack config where `pulumi preview/up --policy-pack-config` reads it; the path written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as error:
        raise GateError(f"cannot write the policy config {path}: {error}") from None
    return path


def _check_value(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    """The JSON-schema subset the pack's config schemas use (type, enum, minimum, pattern, properties, items)."""
    kinds = {"string": str, "boolean": bool, "object": dict, "array": list}
    expected = schema.get("type")
    if expected == "integer":  # JSON has one number type: 14.0 is an integer (Struct carries doubles)
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return [f"{where}: {value!r} is not an integer"]
    elif expected in kinds and not isinstance(value, kinds[expected]):
        return [f"{where}: {value!r} is not a {expected}"]
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {', '.join(map(str, schema['enum']))}")
    minimum = schema.get("minimum")
    if isinstance(minimum, (int, float)) and isinstance(value, (int, float)) and value < minimum:
        problems.append(f"{where}: {value:g} is below {minimum:g}")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            problems += _check_value(item, schema["items"], f"{where}[{index}]")
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in schema.get("properties", {}):
                problems += _check_value(inner, schema["properties"][key], f"{where}.{key}")
    return problems


def reconcile(policies: Sequence[PolicyInfo], config: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each policy's (enforcement, settings): schema defaults, then `all`, then the policy's own entry."""
    names = {p.name for p in policies}
    unknown = sorted(set(config) - names - {"all"})
    if unknown:
        raise GateError(f"policy config names unknown policies {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    problems: list[str] = []
    # `all` sets every policy's enforcement level; like the CLI, it carries no settings.
    everything = config.get("all")
    common_level = everything.get("enforcementLevel") if isinstance(everything, dict) else everything
    for policy in policies:
        level = str(common_level or policy.enforcement)
        settings = {k: v["default"] for k, v in policy.schema.items() if "default" in v}
        entry = config.get(policy.name)
        if isinstance(entry, str):
            level = entry
        elif isinstance(entry, dict):
            level = str(entry.get("enforcementLevel", level))
            settings.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
        elif entry is not None:
            problems.append(f"{policy.name}: {entry!r} is neither an enforcement level nor an object")
        if level not in LEVELS:
            problems.append(f"{policy.name}: enforcement level {level!r} is not one of {', '.join(LEVELS)}")
        for key, value in settings.items():
            if key not in policy.schema:
                problems.append(
                    f"{policy.name}: unknown setting {key!r} (it reads: {', '.join(policy.schema) or 'none'})"
                )
            else:
                problems += _check_value(value, policy.schema[key], f"{policy.name}.{key}")
        result[policy.name] = (level, settings)
    if problems:
        raise GateError("invalid policy config:\n  " + "\n  ".join(problems))
    return result


def with_settings(
    config: Mapping[str, Any], policies: Sequence[PolicyInfo], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """`config` plus `settings` for every policy that reads them (what the config already sets wins)."""
    merged: dict[str, Any] = dict(config)
    for policy in policies:
        wanted = {k: v for k, v in settings.items() if k in policy.schema}
        if not wanted:
            continue
        entry = merged.get(policy.name)
        own = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry or {})
        merged[policy.name] = {**wanted, **own}
    return merged


# ---------------------------------------------------------------------------------------------
# Requests


def _struct(data: Mapping[str, Any]) -> Any:
    value = struct_pb2.Struct()
    value.update(data)
    return value


@dataclass
class _Requests:
    """The Analyze and AnalyzeStack requests of a recorded stack, built once."""

    analyze: list[Any]
    stack: Any


def _requests(resources: Sequence[Mapping[str, Any]]) -> _Requests:
    providers: dict[str, Any] = {}
    for resource in resources:
        if str(resource["type"]).startswith(_PROVIDER_PREFIX):
            providers[resource["urn"]] = analyzer_pb2.AnalyzerProviderResource(
                type=resource["type"],
                properties=_struct(resource.get("inputs") or {}),
                urn=resource["urn"],
                name=resource["name"],
            )
    analyze: list[Any] = []
    stack: list[Any] = []
    for resource in resources:
        properties = _struct(resource.get("inputs") or {})
        options = analyzer_pb2.AnalyzerResourceOptions(
            protect=bool(resource.get("protect")), parent=resource.get("parent") or ""
        )
        provider = providers.get(resource.get("provider") or "")
        common: dict[str, Any] = {
            "type": resource["type"],
            "properties": properties,
            "urn": resource["urn"],
            "name": resource["name"],
            "options": options,
        }
        if provider is not None:
            common["provider"] = provider
        if resource.get("custom", True):
            analyze.append(analyzer_pb2.AnalyzeRequest(**common))
        stack.append(analyzer_pb2.AnalyzerResource(**common, parent=resource.get("parent") or ""))
    return _Requests(analyze, analyzer_pb2.AnalyzeStackRequest(resources=stack))


# ---------------------------------------------------------------------------------------------
# Pack processes


class _Pack:
    """One pack process, started as the CLI's Python analyzer shim starts it."""

    def __init__(self, policy_dir: Path, python: str) -> None:
        """Start the pack; call it with the signals held (`processes.signals_held`) until the caller has recorded
        it, so that an interrupt cannot leave it running unknown to anyone."""
        # A file, not a pipe: nobody reads stderr while the pack runs, and a full pipe would block it.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG")}
        try:
            self.process = subprocess.Popen(
                [python, "-u", "-m", "pulumi.policy", UNUSED_ENGINE_ADDRESS, str(policy_dir)],
                cwd=policy_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
            )
        except OSError as error:
            self._stderr.close()
            raise GateError(f"cannot start the policy pack with {python}: {error}") from None
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._output: list[bytes] = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self.stub: Any = None
        self._channel: Any = None
        try:
            self._drainer.start()
        except BaseException:
            self.stop()
            raise

    def _drain(self) -> None:
        # The first line is the port; the rest is kept for error messages (and keeps the pipe from filling).
        stdout = self.process.stdout
        assert stdout is not None
        for number, line in enumerate(iter(stdout.readline, b"")):
            if number == 0:
                self._lines.put(line)
            else:
                self._output.append(line)
        self._lines.put(b"")

    def stderr(self) -> str:
        """What the pack wrote to stderr and stdout so far (for error messages)."""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace") + b"".join(self._output).decode(errors="replace")
        return text.strip()

    def connect(self, timeout: float) -> Any:
        """Wait for the port the pack prints and open a channel to it; the Analyzer stub."""
        if self.stub is not None:
            return self.stub
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise GateError(f"the policy pack printed no port within {timeout:.0f} s") from None
        try:
            port = int(line.strip())
        except ValueError:
            self.process.wait(timeout=10)
            detail = (line.decode(errors="replace") + "\n" + self.stderr()).strip()
            raise GateError(f"the policy pack did not start (exit code {self.process.returncode}):\n{detail}") from None
        with processes.signals_held():  # gRPC's own code runs with Ctrl-C held (see _Call)
            self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        return self.stub

    def stop(self) -> None:
        """Stop the pack (SIGTERM: it keeps no state, and its own Ctrl-C handling can stall with calls in flight);
        kill it if it lingers. A second Ctrl-C meanwhile waits until it has stopped (`processes.stop`).
        """
        processes.stop(self.process, first=signal.SIGTERM, grace=_STOP_SECONDS)
        if self._channel is not None:
            # close() cancels the calls in flight and waits for gRPC's thread to see them end. Bounded, as a
            # safety net: Ctrl-C is held meanwhile, and a wait that never ends would leave only SIGKILL.
            closing = threading.Thread(target=self._channel.close, daemon=True)
            closing.start()
            closing.join(timeout=_STOP_SECONDS)
        if self._drainer.ident is not None:  # started: it ends at the pipe's end of file, now that the pack has exited
            self._drainer.join(timeout=_STOP_SECONDS)
        if self.process.stdout is not None and not self._drainer.is_alive():
            self.process.stdout.close()
        self._stderr.close()


class _Call:
    """One gRPC call in flight, whose waiting alone Ctrl-C may interrupt.

    gRPC's Python code is not safe against a KeyboardInterrupt raised inside it: a call created without the
    thread that completes it leaves `channel.close()` waiting for ever. So a call is created with SIGINT and
    SIGTERM held (`processes.signals_held`; `held`: the caller holds them), and waited for on an event of ours,
    set by gRPC's thread when the call ends: an interrupted wait leaves the call to `close()`, which cancels it.
    """

    def __init__(self, method: Any, request: Any, *, held: bool = False) -> None:
        self._done = threading.Event()
        with contextlib.nullcontext() if held else processes.signals_held():
            self._future = method.future(request)
            self._future.add_done_callback(lambda _future: self._done.set())

    def result(self) -> Any:
        """The response (raises grpc.RpcError as the call does)."""
        self._done.wait()
        return self._future.result()  # done: it only reads the call's state


class PolicyGate:
    """The policy pack in `policy_dir`, run out of process and driven over the Analyzer protocol."""

    def __init__(
        self,
        policy_dir: Path,
        *,
        max_processes: int | None = None,
        python: str | None = None,
        startup_timeout: float = 60.0,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.policy_dir = policy_dir.resolve()
        if not (self.policy_dir / "PulumiPolicy.yaml").is_file():
            raise GateError(f"no policy pack in {self.policy_dir} (PulumiPolicy.yaml is missing)")
        self._python = python or sys.executable
        # One more process than CPUs: AnalyzeStack runs on its own beside the Analyze calls.
        self._max_processes = max_processes or min(5, (os.cpu_count() or 1) + 1)
        self._timeout = startup_timeout
        self._packs: list[_Pack] = []
        self._policies: list[PolicyInfo] | None = None
        self.pack_name = ""
        self._warn = warn or _warn
        self._warned: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> PolicyGate:
        """Start the first pack process (it loads while the caller does other work)."""
        if not self._packs:
            self._add_pack()
        return self

    def _add_pack(self) -> None:
        # Started and recorded with no interrupt in between: `close` stops every pack it knows of.
        with processes.signals_held():
            self._packs.append(_Pack(self.policy_dir, self._python))

    def close(self) -> None:
        """Stop every pack process; Ctrl-C meanwhile is acted on once they all have."""
        with processes.signals_held():
            packs, self._packs = self._packs, []
            for pack in packs:
                pack.stop()

    def __enter__(self) -> PolicyGate:
        # An interrupt while the first pack starts would skip __exit__: the pack is stopped here instead.
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, pack: _Pack, method: str, request: Any) -> Any:
        call = _Call(getattr(pack.connect(self._timeout), method), request)
        try:
            return call.result()
        except grpc.RpcError as error:
            raise GateError(f"the policy pack failed in {method}: {error.details()}\n{pack.stderr()}".strip()) from None

    # -- protocol --------------------------------------------------------------------------------

    @property
    def policies(self) -> list[PolicyInfo]:
        """The pack's policies (`GetAnalyzerInfo`)."""
        if self._policies is None:
            info = self._call(self.start()._packs[0], "GetAnalyzerInfo", empty_pb2.Empty())
            self.pack_name = info.name
            self._policies = [
                PolicyInfo(
                    name=p.name,
                    description=p.description,
                    enforcement=_LEVEL_OF_PROTO.get(p.enforcementLevel, "advisory"),
                    kind="stack" if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK else "resource",
                    schema=json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {},
                )
                for p in info.policies
            ]
        return self._policies

    def _configure(self, pack: _Pack, reconciled: Mapping[str, tuple[str, dict[str, Any]]], stack_request: Any) -> None:
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, settings) in reconciled.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = _PROTO_OF_LEVEL[level]
            entry.properties.update(settings)
        self._call(pack, "Configure", request)
        self._call(pack, "ConfigureStack", stack_request)

    def _processes_for(self, count: int) -> tuple[_Pack, list[_Pack]]:
        """(pack for AnalyzeStack, packs for Analyze): one pack for a small stack; more for a large one."""
        extra = min(self._max_processes - 1, count // _RESOURCES_PER_PROCESS)
        while len(self._packs) < 1 + extra:
            self._add_pack()
        return self._packs[0], self._packs[1 : 1 + extra] or self._packs[:1]

    def _analyze_all(self, packs: Sequence[_Pack], requests: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """(request, response) of every Analyze call, spread over the packs with a bounded window."""
        pending: collections.deque[tuple[Any, _Call, _Pack]] = collections.deque()
        window = _IN_FLIGHT_PER_PROCESS * len(packs)
        stubs = [pack.connect(self._timeout) for pack in packs]
        sent = 0
        while sent < len(requests) or pending:
            # Refilled when half empty, with Ctrl-C held once per refill rather than once per call (see _Call).
            if len(pending) <= window // 2:
                with processes.signals_held():
                    while sent < len(requests) and len(pending) < window:
                        request, slot = requests[sent], sent % len(packs)
                        pending.append((request, _Call(stubs[slot].Analyze, request, held=True), packs[slot]))
                        sent += 1
            done, call, pack = pending.popleft()
            yield done, self._result(call, pack, done.urn)

    @staticmethod
    def _result(call: _Call, pack: _Pack, what: str) -> Any:
        try:
            return call.result()
        except grpc.RpcError as error:
            raise GateError(f"the policy pack failed on {what}: {error.details()}\n{pack.stderr()}".strip()) from None

    def analyze(
        self,
        stack: str,
        project: str,
        resources: Sequence[Mapping[str, Any]],
        config: Mapping[str, Any] | None = None,
        organization: str = "organization",
    ) -> Verdict:
        """The pack's verdict on a recorded stack (resources as the offline engine records them)."""
        reconciled = reconcile(self.policies, config or {})
        requests = _requests(resources)
        stack_pack, analyze_packs = self._processes_for(len(requests.analyze))
        stack_request = analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=stack, project=project, organization=organization, dry_run=True
        )
        for pack in {stack_pack, *analyze_packs}:
            self._configure(pack, reconciled, stack_request)
        # AnalyzeStack needs nothing from the Analyze calls: on its own process it runs alongside them.
        parallel = stack_pack not in analyze_packs
        stack_future = _Call(stack_pack.connect(self._timeout).AnalyzeStack, requests.stack) if parallel else None
        violations: list[Violation] = []
        for request, response in self._analyze_all(analyze_packs, requests.analyze):
            violations += _violations(response, default_urn=request.urn)
        if stack_future is not None:
            response = self._result(stack_future, stack_pack, "AnalyzeStack")
        else:
            response = self._call(stack_pack, "AnalyzeStack", requests.stack)
        violations += _violations(response, default_urn="")
        return Verdict(stack, tuple(violations))

    def stack_config(self, cfg: StackConfig, configs: Mapping[str, StackConfig] | None = None) -> dict[str, Any]:
        """The pack config of a stack (`pack_config`, as the live preview and up get it too)."""
        return pack_config(self.policy_dir, self.policies, cfg, self._warn_once, configs)

    def check(
        self, plan: StackPlan, project: str, cfg: StackConfig, configs: Mapping[str, StackConfig] | None = None
    ) -> Verdict:
        """The verdict on a stack the offline engine planned: its tier's shipped config plus its own settings (and,
        for the backup stack, those of the other stacks' `configs`)."""
        return self.analyze(plan.stack, project, plan.resources, self.stack_config(cfg, configs))

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)


def _violations(response: Any, default_urn: str) -> list[Violation]:
    found = []
    for diagnostic in response.diagnostics:
        message = diagnostic.message
        # pulumi_policy prefixes every message with the policy's description; the JSON keeps the finding.
        prefix = diagnostic.description + "\n"
        if diagnostic.description and message.startswith(prefix):
            message = message[len(prefix) :]
        found.append(
            Violation(
                policy=diagnostic.policyName,
                urn=diagnostic.urn or default_urn,
                message=message,
                enforcement=_LEVEL_OF_PROTO.get(diagnostic.enforcementLevel, "advisory"),
            )
        )
    return found
