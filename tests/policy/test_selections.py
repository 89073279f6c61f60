"""selection-is-scoped: no unconditional '*', one condition block, at most 100 ARNs."""

from __future__ import annotations

import copy

import pytest
from pgf_backup_policy.model import UNKNOWN
from pgf_backup_policy.selections import SELECTION, selection_is_scoped_violations

from tests.policy import fixtures as f


def test_tag_scoped_selection_passes() -> None:
    assert selection_is_scoped_violations(SELECTION, f.SELECTION, f.ctx()) == []


def test_arn_selection_passes() -> None:
    assert selection_is_scoped_violations(SELECTION, f.BUCKET_SELECTION, f.ctx()) == []


@pytest.mark.parametrize("everything", ["*", "arn:aws:*:*:*:*", "arn:*:*"])
def test_everything_without_condition(everything: str) -> None:
    props = f.changed(f.SELECTION, resources=[everything], conditions=None)
    (message,) = selection_is_scoped_violations(SELECTION, props, f.ctx())
    assert message.startswith("selection pgf-prod-tagged selects every resource ('*') with no condition")


def test_empty_condition_block_is_no_condition() -> None:
    props = f.changed(f.SELECTION, conditions=[{"stringEquals": []}])
    assert selection_is_scoped_violations(SELECTION, props, f.ctx())


def test_legacy_selection_tags_scope_it() -> None:
    tags = [{"type": "STRINGEQUALS", "key": "backup:tier", "value": "prod"}]
    props = f.changed(f.SELECTION, conditions=None, selectionTags=tags)
    assert selection_is_scoped_violations(SELECTION, props, f.ctx()) == []


def test_service_wide_pattern_is_not_everything() -> None:
    props = f.changed(f.SELECTION, resources=["arn:aws:s3:::pgf-*"], conditions=None)
    assert selection_is_scoped_violations(SELECTION, props, f.ctx()) == []


def test_several_condition_blocks() -> None:
    block = f.SELECTION["conditions"][0]
    props = f.changed(f.SELECTION, conditions=[block, copy.deepcopy(block)])
    (message,) = selection_is_scoped_violations(SELECTION, props, f.ctx())
    assert "has 2 condition blocks" in message


def test_too_many_explicit_arns() -> None:
    arns = [f"arn:aws:s3:::bucket-{i}" for i in range(101)]
    props = f.changed(f.BUCKET_SELECTION, resources=arns)
    (message,) = selection_is_scoped_violations(SELECTION, props, f.ctx())
    assert "lists 101 resource ARNs; keep at most 100" in message
    assert selection_is_scoped_violations(SELECTION, f.changed(props, resources=arns[:100]), f.ctx()) == []


def test_unknown_conditions_are_not_judged() -> None:
    props = f.changed(f.SELECTION, conditions=UNKNOWN)
    assert selection_is_scoped_violations(SELECTION, props, f.ctx()) == []


def test_other_types_are_ignored() -> None:
    assert selection_is_scoped_violations("aws:backup/plan:Plan", {"resources": ["*"]}, f.ctx()) == []
