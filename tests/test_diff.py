"""Tests for the section-aware word diff, its exact replay and its renderers."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_versions import diff

BASE = """# Privacy Policy

**Last updated:** March 1, 2024

Northwind Apps ("we") explains here how we handle personal data.

## 1. Information We Collect

We collect your name, email address and billing address.

## 2. Sharing

We do not sell personal data. We share data with our hosting provider.

## 3. Retention

We keep account data for 30 days after you close your account.

## 4. Contact

Write to privacy@northwind.example.
"""


def test_identical_inputs_have_no_changes() -> None:
    result = diff.compute(BASE, BASE)
    assert result.changes == ()
    assert not result.approximate
    assert diff.apply(BASE, result) == BASE


def test_word_change_is_located_by_heading_path() -> None:
    new = BASE.replace("30 days", "90 days")
    result = diff.compute(BASE, new)
    [change] = result.changes
    assert change.section == ("Privacy Policy", "3. Retention")
    assert change.kind == "modified"
    assert (change.deleted, change.inserted) == ("30", "90")
    assert change.noise is None
    assert diff.apply(BASE, result) == new


def test_redline_marks_insertions_and_deletions_and_escapes() -> None:
    new = BASE.replace("hosting provider.", "hosting provider and <Acme & Co>.")
    html = diff.redline(BASE, new)
    assert '<section class="redline-section">' in html
    assert "Privacy Policy › 2. Sharing" in html
    assert "<ins> and &lt;Acme &amp; Co&gt;</ins>" in html
    assert "<Acme" not in html
    assert "style=" not in html
    # Unchanged sections are not shown at all, unchanged text elsewhere is collapsed.
    assert "billing address" not in html


def test_redline_of_identical_texts_says_no_changes() -> None:
    assert "No changes." in diff.redline(BASE, BASE)


@settings(max_examples=150, deadline=None)
@given(st.text(), st.text())
def test_apply_rebuilds_new_text_exactly(old: str, new: str) -> None:
    result = diff.compute(old, new)
    assert diff.apply(old, result) == new
    json.dumps(result.to_dict())
