"""Compare two `pgf-backup plan --json` documents, apart from ordering: exit 0 when they are the same.

    python scripts/plan_diff.py [--allow-moves] BEFORE.json AFTER.json

Resources are matched by URN, paths by their fields; lists are compared as written except the order of
resources, paths and stacks, and JSON documents held in strings (policies) are compared parsed. Used to
prove that a refactoring leaves the plan of the shipped stacks unchanged. With `--allow-moves`, a
resource that only moved into a new component (another URN and parent, the same type, name prefix,
provider, options and inputs) and the new component itself (a `pgf:` type) are listed, not counted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _canonical(value: Any) -> Any:
    """A value with JSON text parsed (policies are strings in the plan) and dict keys sorted."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _canonical(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return {key: _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    """The plan keyed by stack, each stack's resources keyed by URN, the paths as a sorted list."""
    stacks = {}
    for stack in document.get("stacks", []):
        resources = {r["urn"]: _canonical(r) for r in stack.get("resources", [])}
        rest = {k: _canonical(v) for k, v in stack.items() if k != "resources"}
        stacks[stack["stack"]] = {"resources": resources, **rest}
    paths = sorted(json.dumps(_canonical(p), sort_keys=True) for p in document.get("paths", []))
    return {"stacks": stacks, "paths": paths}


def differences(before: dict[str, Any], after: dict[str, Any], where: str = "") -> list[str]:
    """Readable differences between two normalized plans."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in sorted(set(before) | set(after)):
            here = f"{where}/{key}"
            if key not in after:
                found.append(f"- {here}")
            elif key not in before:
                found.append(f"+ {here}")
            else:
                found += differences(before[key], after[key], here)
        return found
    return [] if before == after else [f"~ {where}: {json.dumps(before)[:200]} -> {json.dumps(after)[:200]}"]


def _same_but_moved(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keep = ("type", "provider", "protect", "retainOnDelete", "custom", "inputs", "arn")
    return all(old.get(k) == new.get(k) for k in keep) and new["name"].startswith(old["name"])


def moves(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Pair each resource that only moved into a component; drop the pairs and the new components from both."""
    found: list[str] = []
    for stack, plan in after["stacks"].items():
        old = before["stacks"].get(stack, {}).get("resources", {})
        new = plan["resources"]
        for urn in [u for u in new if u not in old]:
            if new[urn]["type"].startswith("pgf:"):
                found.append(f"new component {urn}")
                del new[urn]
                continue
            match = next((o for o in old if o not in new and _same_but_moved(old[o], new[urn])), None)
            if match is not None:
                found.append(f"moved {match} -> {urn}")
                del old[match], new[urn]
    return found


def main(argv: list[str]) -> int:
    """Print the differences; exit 1 if there are any, 2 on bad arguments."""
    allow_moves = "--allow-moves" in argv
    files = [a for a in argv if a != "--allow-moves"]
    if len(files) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    before, after = (normalized(json.loads(Path(arg).read_text(encoding="utf-8"))) for arg in files)
    for line in moves(before, after) if allow_moves else []:
        print(f"  {line}")
    found = differences(before, after)
    for line in found:
        print(line)
    print(f"{len(found)} difference(s)" if found else "the plans are the same, apart from ordering")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
