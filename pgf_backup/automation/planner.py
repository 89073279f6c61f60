"""The offline plan of the multi-account rollout: every stack evaluated, summarised, gated."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pgf_backup.automation.offline import StackError, StackPlan, plan_stack
from pgf_backup.config import WorkloadStack
from pgf_backup.constants import NOTES_OUTPUT, STACK_BACKUP
from pgf_backup.paths.checks import KINDS, PathResult, check_paths
from pgf_backup.project import Project

if TYPE_CHECKING:
    from rich.table import Table


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


def evaluation_order(stacks: Sequence[str]) -> list[str]:
    """The stacks `plan_all` evaluates, in order; `backup` also when not chosen (its outputs feed the others)."""
    return list(stacks) if STACK_BACKUP in stacks else [STACK_BACKUP, *stacks]


def plan_all(
    project: Project,
    stacks: Sequence[str],
    on_stack: Callable[[StackPlan], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> PlanResult:
    """Evaluate stacks in order; `backup`'s outputs feed the workload stacks' references.

    A workload stack planned alone still needs them: `backup` is then evaluated first, unreported. `on_start` is
    called before each evaluation (the unreported `backup`'s too), `on_stack` after each reported one.
    """
    result = PlanResult()
    backup_outputs: dict[str, Any] | None = None
    for stack in evaluation_order(stacks):
        cfg = project.load_config(stack)
        refs = (
            {cfg.backup_stack: backup_outputs} if backup_outputs is not None and isinstance(cfg, WorkloadStack) else {}
        )
        if on_start:
            on_start(stack)
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


def resource_counts(plan: StackPlan) -> tuple[int, int]:
    """How many resources the stack creates (components excluded), and how many of them are protected."""
    custom = [r for r in plan.resources if r.get("custom", True)]
    return len(custom), sum(1 for r in custom if r.get("protect"))


def notes_of(plan: StackPlan) -> list[str]:
    """What the stack leaves out and why (a feature AWS does not offer in a region, ...): said, never an error."""
    return [str(note) for note in plan.outputs.get(NOTES_OUTPUT) or []]


def summarize(plan: StackPlan, out: TextIO) -> None:
    """Print a readable summary of one stack: resources by component and type, then outputs."""
    resources = plan.resources
    by_urn = {r["urn"]: r for r in resources}
    custom = [r for r in resources if r.get("custom", True)]
    protected = resource_counts(plan)[1]
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
    for note in notes_of(plan):
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
    summarize_failing_paths(paths, out)


def summarize_failing_paths(paths: Sequence[PathResult], out: TextIO) -> None:
    """Print each path that is not ok (broken or unproven): its request and why."""
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


def summarize_notes(plans: Sequence[StackPlan], out: TextIO) -> None:
    """Print the stacks' notes, each once with the stacks that carry it (lab, dev and prod often share one)."""
    stacks_of: dict[str, list[str]] = {}
    for plan in plans:
        for note in notes_of(plan):
            stacks_of.setdefault(note, []).append(plan.stack)
    if not stacks_of:
        return
    print("== notes: what the plan leaves out, and why", file=out)
    for note, stacks in stacks_of.items():
        print(f"   {', '.join(stacks)}: {note}", file=out)


def summarize_problems(result: PlanResult, out: TextIO) -> None:
    """Print what is not ok: each stack's policy violations, and the paths that are broken or unproven."""
    for plan in result.plans:
        if plan.policy is not None and plan.policy["violations"]:
            print(f"== stack {plan.stack}: {plan.role}, account {plan.account}", file=out)
            summarize_policy(plan, out)
    failing = [path for path in result.paths if path.verdict != "ok"]
    if failing:
        print("== paths that are not proven ok (evaluated against the planned documents)", file=out)
        summarize_failing_paths(failing, out)


def policy_verdict(plan: StackPlan) -> tuple[str, str]:
    """The policy pack's verdict on a stack, in a few words, and its style on a terminal."""
    if plan.policy is None:
        return "not checked", "yellow"
    violations = plan.policy["violations"]
    count = f"{len(violations)} violation{'' if len(violations) == 1 else 's'}"
    if not plan.policy["passed"]:
        return f"REFUSED: {count}", "bold red"
    return ("passed", "green") if not violations else (f"passed, {count}", "yellow")


def paths_verdict(paths: Sequence[PathResult]) -> tuple[str, str]:
    """One kind's paths of one stack in a few words (`ok`, `2 unproven`, `1 BROKEN`, `-` for none), and its style."""
    if not paths:
        return "-", "dim"
    counts = Counter(p.verdict for p in paths)
    if not counts["broken"] and not counts["unproven"]:
        return "ok", "green"
    words = [f"{counts['broken']} BROKEN"] if counts["broken"] else []
    words += [f"{counts['unproven']} unproven"] if counts["unproven"] else []
    return ", ".join(words), "bold red" if counts["broken"] else "yellow"


Cell = tuple[str, str]  # a summary cell's text and its style on a terminal


def summary_columns(result: PlanResult, *, paths_checked: bool) -> list[tuple[str, list[Cell]]]:
    """The summary's columns, each a heading and one cell per planned stack: the stack, its account, its resources
    and protected ones, the policy verdict, and (once checked) the paths verdict per kind."""
    plans = result.plans
    counts = [resource_counts(plan) for plan in plans]
    columns: list[tuple[str, list[Cell]]] = [
        ("stack", [(plan.stack, "bold") for plan in plans]),
        ("account", [(plan.account, "") for plan in plans]),
        ("resources", [(str(resources), "") for resources, _ in counts]),
        ("protected", [(str(protected), "") for _, protected in counts]),
        ("policy", [policy_verdict(plan) for plan in plans]),
    ]
    for kind in KINDS if paths_checked else ():
        of_kind = [p for p in result.paths if p.kind == kind]
        columns.append((kind, [paths_verdict([p for p in of_kind if p.stack == plan.stack]) for plan in plans]))
    return columns


def summary_table(result: PlanResult, *, paths_checked: bool, transposed: bool = False) -> Table:
    """The summary as a table: a row per stack, or `transposed` (a column per stack) for a narrow terminal."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    columns = summary_columns(result, paths_checked=paths_checked)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    if transposed:
        (_, stacks), *rest = columns
        table.add_column("")
        for name, _ in stacks:
            table.add_column(name)
        for heading, cells in rest:
            label = f"{heading} paths" if heading in KINDS else heading
            table.add_row(Text(label, style="bold"), *(Text(text, style=style) for text, style in cells))
        return table
    for heading, _ in columns:
        table.add_column(heading, justify="right" if heading in ("resources", "protected") else "left")
    for row in zip(*(cells for _, cells in columns), strict=True):
        table.add_row(*(Text(text, style=style) for text, style in row))
    return table


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
