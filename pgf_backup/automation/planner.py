"""The offline plan of the multi-account rollout: every stack evaluated, summarised, gated."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pgf_backup.automation.offline import StackError, StackPlan, plan_stack
from pgf_backup.config import WorkloadStack
from pgf_backup.constants import NOTES_OUTPUT, STACK_BACKUP
from pgf_backup.paths.checks import KINDS, PathResult, check_paths
from pgf_backup.project import Project


@dataclass
class PlanResult:
    """The offline plans of the stacks, in rollout order."""

    plans: list[StackPlan] = field(default_factory=list)
    failures: list[StackError] = field(default_factory=list)
    # The backup stack's plan, also when it was evaluated only to feed the others (path checks read it).
    backup: StackPlan | None = None
    paths: list[PathResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The `--json` document."""
        return {"stacks": [plan.to_json() for plan in self.plans], "paths": [p.to_json() for p in self.paths]}


def plan_all(
    project: Project,
    stacks: Sequence[str],
    on_stack: Callable[[StackPlan], None] | None = None,
) -> PlanResult:
    """Evaluate stacks in order; `backup`'s outputs feed the workload stacks' references.

    A workload stack planned alone still needs them: `backup` is then evaluated first, unreported.
    """
    result = PlanResult()
    backup_outputs: dict[str, Any] | None = None
    queue = list(stacks)
    if STACK_BACKUP not in queue:
        queue.insert(0, STACK_BACKUP)
    for stack in queue:
        cfg = project.load_config(stack)
        refs = (
            {cfg.backup_stack: backup_outputs} if backup_outputs is not None and isinstance(cfg, WorkloadStack) else {}
        )
        try:
            plan = plan_stack(project, stack, refs)
        except StackError as failure:
            result.failures.append(failure)
            break
        if stack == STACK_BACKUP:
            backup_outputs = plan.outputs
            result.backup = plan
        if stack not in stacks:
            continue
        result.plans.append(plan)
        if on_stack:
            on_stack(plan)
    return result


# ---------------------------------------------------------------------------------------------
# Human summary


def _component_of(resource: dict[str, Any], by_urn: dict[str, dict[str, Any]]) -> str:
    """The top-level component a resource belongs to (its outermost non-stack parent)."""
    current = resource
    label = ""
    while current.get("parent") and current["parent"] in by_urn:
        current = by_urn[current["parent"]]
        label = f"{current['type']} {current['name']}"
    return label


def summarize(plan: StackPlan, out: TextIO) -> None:
    """Print a readable summary of one stack: resources by component and type, then outputs."""
    resources = plan.resources
    by_urn = {r["urn"]: r for r in resources}
    custom = [r for r in resources if r.get("custom", True)]
    protected = sum(1 for r in custom if r.get("protect"))
    print(
        f"== stack {plan.stack}: {plan.role}, account {plan.account}: {len(custom)} resources ({protected} protected)",
        file=out,
    )
    groups: dict[str, Counter[str]] = {}
    for resource in custom:
        groups.setdefault(_component_of(resource, by_urn) or "(stack)", Counter())[resource["type"]] += 1
    for component in sorted(groups, key=lambda c: (c != "(stack)", c)):
        counts = ", ".join(f"{t.split(':')[-1]} x{n}" for t, n in sorted(groups[component].items()))
        print(f"   {component}: {counts}", file=out)
    # What the stack leaves out and why (a feature AWS does not offer in a region, ...): said, never an error.
    notes = plan.outputs.get(NOTES_OUTPUT) or []
    for note in notes:
        print(f"   note: {note}", file=out)
    outputs = {key: value for key, value in plan.outputs.items() if key != NOTES_OUTPUT}
    if outputs:
        print("   outputs:", file=out)
        for line in _flatten(outputs):
            print(f"     {line}", file=out)


def run_path_checks(project: Project, result: PlanResult) -> list[PathResult]:
    """The path checks over the planned stacks (and the backup stack they copy into)."""
    plans = list(result.plans)
    if result.backup is not None and result.backup not in plans:
        plans.insert(0, result.backup)
    configs = {plan.stack: project.load_config(plan.stack) for plan in plans}
    reported = {plan.stack for plan in result.plans}
    result.paths = [p for p in check_paths(plans, configs) if p.stack in reported]
    return result.paths


def summarize_paths(paths: Sequence[PathResult], out: TextIO) -> None:
    """Print the `paths` section: per kind, how many paths are ok, unproven or broken; then the failing ones."""
    print("== paths: the requests AWS will make, evaluated against the planned documents", file=out)
    for kind in KINDS:
        of_kind = [p for p in paths if p.kind == kind]
        counts = Counter(p.verdict for p in of_kind)
        verdict = "BROKEN" if counts["broken"] else "ok"
        detail = ", ".join(f"{counts[v]} {v}" for v in ("ok", "unproven", "broken") if counts[v])
        print(f"   {kind}: {verdict} ({detail or 'none'})", file=out)
    for path in paths:
        if path.verdict == "ok":
            continue
        print(f"   [{path.verdict}] {path.kind} ({path.stack}): {path.source} -> {path.target}", file=out)
        print(f"       request: {path.request}", file=out)
        print(f"       {path.reason}", file=out)


def summarize_policy(plan: StackPlan, out: TextIO) -> None:
    """Print the policy pack's verdict on one stack: each violation with its policy, URN and enforcement."""
    if plan.policy is None:
        return
    violations = plan.policy["violations"]
    mandatory = sum(1 for v in violations if v["enforcement"] == "mandatory")
    verdict = "passed" if plan.policy["passed"] else "REFUSED"
    print(f"   policy: {verdict} ({mandatory} mandatory, {len(violations) - mandatory} other violations)", file=out)
    for violation in violations:
        print(f"     [{violation['enforcement']}] {violation['policy']}: {violation['urn'] or '(stack)'}", file=out)
        for line in violation["message"].splitlines():
            print(f"       {line}", file=out)


MAX_SHOWN = 160


def _flatten(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict) and value:
        lines: list[str] = []
        for key, inner in value.items():
            lines.extend(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return lines
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > MAX_SHOWN:  # e.g. a BACKUP_POLICY document: the whole text is in --json
        text = f"{text[: MAX_SHOWN - 20]}... ({len(text)} characters)"
    return [f"{prefix} = {text}"]


def write_json(result: PlanResult, path: Path) -> None:
    """Write the plan document (`{"stacks": [...]}`)."""
    path.write_text(json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
