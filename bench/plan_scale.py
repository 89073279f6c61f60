"""Offline plan scale: wall time and peak memory against the mock runtime's own floor.

For the prod stack and synthetic stacks of 100, 500 and 1,000 vaults and of 100, 500 and 1,000
protected buckets, each measurement runs in a fresh process (as `pgf-backup plan` does): the real
program under the mock runtime, then the floor: the same resources (type, name, parent, provider
and inputs, replayed from the program's own inventory), each built directly with the SDK class of
its type, with no program logic (no config, no components' code, no policy documents), in a fresh
process too. Module imports are outside both clocks.
Targets: linear growth, and at most 1.5 x the floor at every size.

    .venv/bin/python bench/plan_scale.py [--sizes 100 500 1000]
"""

from __future__ import annotations

import argparse
import importlib
import json
import keyword
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The pulumi_aws modules whose classes the components build (the floor loads those of the recorded types).
SDK_MODULES = (
    "backup",
    "cfg",
    "cloudwatch",
    "iam",
    "kms",
    "lambda_",
    "oam",
    "organizations",
    "s3",
    "scheduler",
    "sns",
    "sqs",
)


def synthetic_project(target: Path, vaults: int, copy_region: bool = False) -> None:
    """A project folder with a `synthetic` backup-account stack holding `vaults` vaults."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, target / name)
    config = yaml.safe_load((ROOT / "Pulumi.backup.yaml").read_text())["config"]
    if not copy_region:
        # Replaces Pulumi.yaml's regions whole (project-level config): the primary region only.
        config["pgf-backup:regions"] = {"primary": "ca-central-1"}
    config["pgf-backup:vaults"] = {
        f"v{i:04d}": {
            "tier": ("lab", "dev", "prod")[i % 3],
            "lock": {"mode": "governance", "min_retention_days": 35, "max_retention_days": 3650},
        }
        for i in range(vaults)
    }
    (target / "Pulumi.synthetic.yaml").write_text(yaml.safe_dump({"config": config}))


def synthetic_buckets(target: Path, buckets: int) -> None:
    """A project folder with a `synthetic` prod workload stack protecting `buckets` buckets."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, target / name)
    config = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    # Copies stay in this account so the stack plans without the backup stack's outputs.
    config["pgf-backup:plan"].update({"copy_to_backup_account": False, "copy_to_air_gapped": False})
    config.pop("pgf-backup:databases", None)
    config["pgf-backup:buckets"] = {
        f"pgf-bench-{i:04d}": {
            "classification": ("internal", "confidential", "restricted")[i % 3],
            "application_access": [{"principal": "arn:aws:iam::400000000040:role/pgf-app"}],
        }
        for i in range(buckets)
    }
    (target / "Pulumi.synthetic.yaml").write_text(yaml.safe_dump({"config": config}))


def child_program(project_dir: Path, stack: str, inventory: Path, refs: Path | None = None) -> dict[str, Any]:
    """Evaluate the real program; returns timings, and saves the inventory for the floor."""
    from pgf_backup.automation.offline import evaluate
    from pgf_backup.project import Project

    # Module imports are a per-process constant, outside the clock as in the floor (pulumi_aws
    # imports its submodules lazily, on first use: import the ones the components use first).
    import_start = time.perf_counter()
    importlib.import_module("pgf_backup.stacks")
    importlib.import_module("pgf_backup.automation.mocks")  # evaluate imports it; the floor imports it unclocked
    for module in SDK_MODULES:
        # Bench fix: pulumi_aws's submodules are pulumi._utils._LazyModule placeholders: import_module returns the
        # placeholder without running the module, which then ran on first use inside the clock (about 1 s for the
        # prod stack), while the floor's `_sdk_class` loads its modules before its clock. An attribute read loads it.
        getattr(importlib.import_module(f"pulumi_aws.{module}"), "__all__", None)
    imports = time.perf_counter() - import_start
    project = Project.find(project_dir)
    start = time.perf_counter()
    plan = evaluate(project, stack, json.loads(refs.read_text()) if refs else {})
    wall = time.perf_counter() - start
    inventory.write_text(json.dumps(plan["resources"]))
    return {"wall": wall, "imports": imports, "resources": len(plan["resources"])}


def _sdk_class(type_token: str) -> type | None:
    """The pulumi_aws class of a type token (e.g. `aws:kms/key:Key` -> `pulumi_aws.kms.Key`)."""
    package, module, name = type_token.split(":")
    if package != "aws":
        return None
    package_name = module.split("/")[0]
    # Python keywords get a trailing underscore in the SDK (`aws:lambda/...` is `pulumi_aws.lambda_`).
    package_name = f"{package_name}_" if keyword.iskeyword(package_name) else package_name
    cls = getattr(importlib.import_module(f"pulumi_aws.{package_name}"), name, None)
    return cls if isinstance(cls, type) else None


def _asset(value: Any) -> Any:
    """An asset or archive as the SDK takes it again (the recording keeps them as `{"fileArchive": path}`)."""
    import pulumi

    if isinstance(value, dict) and len(value) == 1:
        ((kind, inner),) = value.items()
        if kind == "fileArchive":
            return pulumi.FileArchive(inner)
        if kind == "fileAsset":
            return pulumi.FileAsset(inner)
    return value


def _build(cls: Any, name: str, opts: Any, kwargs: dict[str, Any]) -> Any:
    """The SDK resource; an input the program gave as a value unknown under the mocks (so absent from the
    recording) is given a placeholder, as the floor replays registrations, not values."""
    for _ in range(20):
        try:
            return cls(name, opts=opts, **kwargs)
        except TypeError as error:
            missing = re.search(r"Missing required property '(\w+)'", str(error))
            if not missing:
                raise
            kwargs[missing.group(1)] = f"floor-{missing.group(1)}"
    raise RuntimeError(f"{name}: too many missing properties")


def child_floor(inventory: Path) -> dict[str, Any]:
    """Register the same resources (type, name, parent, provider, inputs) with no program logic:
    each built directly from its recorded inputs with the SDK class of its type."""
    import pulumi
    import pulumi._types as pulumi_types
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from pgf_backup.automation.mocks import AwsMocks, RecordingMonitor

    recorded = json.loads(inventory.read_text())
    classes = {r["type"]: _sdk_class(r["type"]) for r in recorded}
    python_names = {
        token: {wire: py for py, wire, _ in pulumi_types._py_properties(cls)}
        for token, cls in classes.items()
        if cls is not None
    }
    mocks = AwsMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="floor", stack="floor", preview=False, monitor=monitor)

    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        for r in recorded:
            parent = made.get(r["parent"])
            provider = made.get(r["provider"])
            opts = pulumi.ResourceOptions(parent=parent, provider=provider)  # type: ignore[arg-type]
            cls = classes[r["type"]]
            if r["type"].startswith("pulumi:providers:"):
                made[r["urn"]] = pulumi.ProviderResource(r["type"].rsplit(":", 1)[1], r["name"], r["inputs"], opts)
            elif cls is not None:
                names = python_names[r["type"]]
                made[r["urn"]] = _build(cls, r["name"], opts, {names[k]: _asset(v) for k, v in r["inputs"].items()})
            elif r["custom"]:
                made[r["urn"]] = pulumi.CustomResource(r["type"], r["name"], r["inputs"], opts)
            else:
                made[r["urn"]] = pulumi.ComponentResource(r["type"], r["name"], None, opts)

    start = time.perf_counter()
    _sync_await(run_pulumi_func(program))
    return {"wall": time.perf_counter() - start, "resources": len(monitor.recorded)}


def measure(*args: str) -> dict[str, Any]:
    """Run one child measurement in a fresh process; adds its peak RSS in MiB."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=False, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode:
        raise SystemExit(f"the {args[0]} measurement failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Print the table of figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 500, 1000])
    parser.add_argument("--kind", choices=["vaults", "buckets", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest counts")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "program":
            result = child_program(Path(rest[0]), rest[1], Path(rest[2]), Path(rest[3]) if len(rest) > 3 else None)
        else:
            result = child_floor(Path(rest[0]))
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="pgf-bench-") as tmp:
        from pgf_backup.automation.offline import plan_stack
        from pgf_backup.project import Project

        # The shipped prod stack reads the backup stack's outputs, as in `pgf-backup plan`.
        project = Project.find(ROOT)
        refs = Path(tmp) / "refs.json"
        refs.write_text(json.dumps({project.load_config("prod").backup_stack: plan_stack(project, "backup").outputs}))
        cases: list[tuple[str, Path, str]] = [("prod stack", ROOT, "prod")]
        kinds = ["vaults", "buckets"] if args.kind == "both" else [args.kind]
        for kind in kinds:
            for size in args.sizes:
                folder = Path(tmp) / f"{kind}-{size}"
                folder.mkdir()
                (synthetic_project if kind == "vaults" else synthetic_buckets)(folder, size)
                cases.append((f"{size} {kind}", folder, "synthetic"))
        for label, folder, stack in cases:
            inventory = Path(tmp) / f"{label.replace(' ', '-')}.json"
            # The fastest of a few runs: this machine is shared, noise only ever adds time.
            program = min(
                (measure("program", str(folder), stack, str(inventory), str(refs)) for _ in range(args.repeat)),
                key=lambda m: m["wall"],
            )
            floor = min((measure("floor", str(inventory)) for _ in range(args.repeat)), key=lambda m: m["wall"])
            rows.append((label, program, floor))

    print(f"{'case':<13} {'resources':>9} {'plan s':>8} {'floor s':>8} {'ratio':>6} {'plan MiB':>9} {'floor MiB':>9}")
    for label, program, floor in rows:
        ratio = program["wall"] / floor["wall"]
        print(
            f"{label:<13} {program['resources']:>9} {program['wall']:>8.2f} {floor['wall']:>8.2f} "
            f"{ratio:>6.2f} {program['peak_mib']:>9.0f} {floor['peak_mib']:>9.0f}"
        )
    for kind in ("vaults", "buckets"):
        sized = [(label, program) for label, program, _ in rows if label.endswith(kind)]
        if len(sized) >= 2:
            per = ", ".join(f"{label}: {p['wall'] / p['resources'] * 1000:.2f}" for label, p in sized)
            print(f"ms per resource ({kind}): {per}")


if __name__ == "__main__":
    main()
