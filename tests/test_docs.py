"""The README and docs/ in step with the code: every `pgf-backup` command they show exists with the options they
give it (as `--help` lists them), and every link between them leads to a file and a heading that exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from pgf_backup.automation.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(`{3,})")
_COMMAND = re.compile(r"(?:^|\$ |`)pgf-backup((?: [^`#\n]*)?)")
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _commands(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each `pgf-backup ...` command in code blocks and inline code, continuation lines joined."""
    found: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    fence: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _FENCE.match(line)
        if marker:
            fence = None if fence and line.strip() == fence else (fence or marker.group(1))
            index += 1
            continue
        start = index
        while line.rstrip().endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line.rstrip()[:-1] + " " + lines[index].strip()
        candidates = [line] if fence else re.findall(r"`([^`]*pgf-backup[^`]*)`", line)
        for text in candidates:
            for match in _COMMAND.finditer(text if fence else f"`{text}"):
                found.append((start + 1, "pgf-backup" + match.group(1)))
        index += 1
    return found


def _resolve(words: list[str]) -> list[tuple[str, argparse.ArgumentParser]]:
    """The command each word path names (alternatives `a|b` expanded), with its parser; [] when it names none."""
    top = build_parser()
    paths: list[tuple[str, argparse.ArgumentParser]] = [("", top)]
    for word in words:
        if word.startswith("-") or word.startswith("[") or word.upper() == word:
            break
        expanded: list[tuple[str, argparse.ArgumentParser]] = []
        for name, parser in paths:
            choices = _subparsers(parser)
            for alternative in word.split("|"):
                if alternative in choices:
                    expanded.append((f"{name} {alternative}".strip(), choices[alternative]))
        if not expanded:
            break
        paths = expanded
    return [(name, parser) for name, parser in paths if name]


def _documented() -> list[tuple[str, int, str]]:
    return [(path.relative_to(ROOT).as_posix(), line, text) for path in DOCUMENTS for line, text in _commands(path)]


def test_the_documents_show_commands() -> None:
    # The extraction itself works: the quick start's commands are found.
    shown = {text.split()[1] for _, _, text in _documented() if len(text.split()) > 1}
    assert {"plan", "preview", "up", "verify", "drill", "runbook", "restore", "catalog"} <= shown


@pytest.mark.parametrize(("where", "line", "text"), _documented())
def test_each_documented_command_exists_with_its_options(where: str, line: int, text: str) -> None:
    words = text.split()[1:]
    if words[:1] == ["--project-dir"]:
        words = words[2:]
    # Not a command line: the grammar's placeholders (`COMMAND`, `[...]`), a version or a report's output
    # (`pgf-backup 0.1.0`, `pgf-backup verify: ...`).
    if not words or words[0] in {"--version", "--help", "-h"} or re.match(r"^(\[|[A-Z]|\d)|.*:$", words[0]):
        return
    resolved = _resolve(words)
    assert resolved, f"{where}:{line}: `{text}` names no pgf-backup command"
    for name, parser in resolved:
        known = _options(parser) | _options(build_parser())
        unknown = sorted({o for o in _OPTION.findall(text) if o not in known})
        assert not unknown, f"{where}:{line}: `pgf-backup {name}` has no option {', '.join(unknown)} (`{text}`)"


def _slug(heading: str) -> str:
    text = re.sub(r"[^a-z0-9 -]", "", heading.lstrip("#").strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors, fence = set(), None
    for line in path.read_text(encoding="utf-8").splitlines():
        marker = _FENCE.match(line)
        if marker:
            fence = None if fence and line.strip() == fence else (fence or marker.group(1))
        elif fence is None and line.startswith("#"):
            anchors.add(_slug(line))
    return anchors


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_links_between_the_documents_lead_somewhere(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # a web page
        file_part, _, anchor = target.partition("#")
        path = (document.parent / file_part).resolve() if file_part else document
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in _anchors(path)):
            broken.append(target)
    assert not broken, f"{document.name}: links to nothing: {broken}"


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_a_wrong_option_or_command_in_a_document_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```sh\npgf-backup plan --stack lab --bogus\npgf-backup deploy --stack lab\n```\n")
    (flag_line, flagged), (command_line, command) = _commands(page)
    name, parser = _resolve(flagged.split()[1:])[0]
    assert name == "plan" and "--bogus" not in _options(parser) and "--stack" in _options(parser)
    assert _resolve(command.split()[1:]) == []  # `deploy` is no command
    assert (flag_line, command_line) == (2, 3)
