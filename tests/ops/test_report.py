"""The verify report's renderings: JSON is the reference; table, Markdown and HTML say the same; the HTML page is
self-contained and, in Debian's headless Chromium, renders, sorts and filters with counts matching the JSON."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pgf_backup.ops import report
from tests.ops.conftest import PRIMARY, World, aws_client, tag_list

CHROMIUM = shutil.which("chromium")


@pytest.fixture
def doc(world: World) -> dict[str, Any]:
    """A report with gaps of several kinds: an untagged bucket, a stale cluster, an excluded bucket."""
    s3 = aws_client("s3", PRIMARY)
    s3.create_bucket(Bucket="pgf-scratch", CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    s3.create_bucket(Bucket="pgf-tmp", CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    tags = {"backup:enabled": "false", "backup:tier": "prod", "data:classification": "internal", "application": "pgf"}
    s3.put_bucket_tagging(Bucket="pgf-tmp", Tagging={"TagSet": tag_list(tags)})
    core = next(arn for arn in world.resources if ":cluster:" in arn)
    world.backup_age_hours[core] = 40.0
    return world.run().to_json()


def test_json_schema_is_stable(doc: dict[str, Any]) -> None:
    assert set(doc) == {
        "schema", "stack", "account_id", "tier", "regions", "generated_at", "rpo_hours", "window_hours",
        "lookback_hours", "copy_targets", "backup_account_checked", "ok", "summary", "resources", "vaults",
        "problems", "notes",
    }  # fmt: skip
    assert set(doc["resources"][0]) == {
        "arn", "name", "type", "kind", "region", "tier", "tags", "status", "protected", "selected_by", "opted_in",
        "backed_up", "last_recovery_point", "age_hours", "copies", "kms_key", "key_manager", "key_trap",
        "tag_problems", "problems", "plan", "vault",
    }  # fmt: skip
    assert json.loads(report.render_json(doc)) == json.loads(json.dumps(doc, default=str))
    assert doc["summary"]["by_status"] == {"unprotected": 1, "stale": 1, "misconfigured": 0, "ok": 5, "excluded": 1}


def test_table_and_markdown_name_every_resource_and_problem(doc: dict[str, Any]) -> None:
    table, md = report.render_table(doc), report.render_md(doc)
    for resource in doc["resources"]:
        assert resource["name"] in table and resource["name"] in md
    for problem in doc["problems"]:
        assert problem in table
        assert problem.replace("|", "\\|") in md
    assert "problem(s)" in table.splitlines()[-1]
    assert "| by | value | protected | unprotected | excluded |" in md


class _Page(HTMLParser):
    """Rows of the resources table (their data-* attributes and whether hidden), and every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.external: list[str] = []
        self.visible: str | None = None
        self._in_visible = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tr" and "data-arn" in attributes:
            self.rows.append(attributes)
        for key in ("src", "href"):
            if attributes.get(key):
                self.external.append(str(attributes[key]))
        if tag == "link":
            self.external.append(str(attributes))
        self._in_visible = attributes.get("id") == "visible"

    def handle_data(self, data: str) -> None:
        if self._in_visible:
            self.visible, self._in_visible = data, False


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_html_is_self_contained(doc: dict[str, Any]) -> None:
    page = report.render_html(doc)
    parsed = _parse(page)
    assert parsed.external == []
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", page.split('id="report-data"')[0])
    assert len(parsed.rows) == len(doc["resources"])
    embedded = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert embedded and json.loads(embedded.group(1).replace("<\\/", "</"))["summary"] == doc["summary"]


def _dump_dom(page: Path, fragment: str, tmp_path: Path) -> _Page:
    """The page as headless Chromium leaves it after its scripts ran (flags: machines/python.md)."""
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"{page.as_uri()}{fragment}",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return _parse(result.stdout)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_html_renders_sorts_and_filters_in_chromium(doc: dict[str, Any], tmp_path: Path) -> None:
    page = tmp_path / "verify.html"
    page.write_text(report.render_html(doc), encoding="utf-8")
    resources = doc["resources"]

    shown = _dump_dom(page, "", tmp_path)
    assert len(shown.rows) == len(resources) and shown.visible == str(len(resources))
    assert all("hidden" not in row for row in shown.rows)

    # Filtering: the rows left visible are exactly the JSON's resources of that status, and the count says so.
    for status in ("unprotected", "stale", "ok", "excluded"):
        filtered = _dump_dom(page, f"#status={status}", tmp_path)
        visible = [str(row["data-name"]) for row in filtered.rows if "hidden" not in row]
        expected = [r["name"] for r in resources if r["status"] == status]
        assert sorted(visible) == sorted(expected), status
        assert filtered.visible == str(doc["summary"]["by_status"][status])

    # Search and type together.
    filtered = _dump_dom(page, "#type=S3&q=scratch", tmp_path)
    assert [row["data-name"] for row in filtered.rows if "hidden" not in row] == ["pgf-scratch"]

    # Sorting: by name descending, then by age ascending (resources without a recovery point last).
    by_name = _dump_dom(page, "#sort=name&dir=desc", tmp_path)
    assert [row["data-name"] for row in by_name.rows] == sorted((str(r["name"]) for r in resources), reverse=True)
    by_age = _dump_dom(page, "#sort=age&dir=asc", tmp_path)
    ages = [row["data-age"] for row in by_age.rows]
    known = [float(a) for a in ages if a]
    assert known == sorted(known) and ages[len(known) :] == [""] * (len(ages) - len(known))
