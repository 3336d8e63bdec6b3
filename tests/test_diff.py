"""Tests for the section-aware word diff, its exact replay and its renderers."""

from __future__ import annotations

import json
from html import escape

import pytest
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


MARKDOWNISH = st.lists(
    st.one_of(
        st.sampled_from(["# Title\n", "## 1. Sharing\n", "### Sub\n", "\n", "- item\n", "---\n"]),
        st.lists(
            st.sampled_from(
                list("ab c\n.*_#-") + ["é", "e\u0301", "中", "文", "😀", "שלום", "\u200f", "“", "”"]
            ),
            max_size=20,
        ).map("".join),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(MARKDOWNISH, MARKDOWNISH)
def test_apply_rebuilds_markdown_with_any_unicode(old: str, new: str) -> None:
    result = diff.compute(old, new)
    assert diff.apply(old, result) == new
    again = diff.DiffResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert diff.apply(old, again) == new


@settings(max_examples=100, deadline=None)
@given(MARKDOWNISH)
def test_identical_inputs_give_no_changes_and_cosmetic(text: str) -> None:
    from policy_versions.materiality import classify

    assert diff.compute(text, text).changes == ()
    assert classify(text, text).verdict == "cosmetic"


@settings(max_examples=100, deadline=None)
@given(MARKDOWNISH, MARKDOWNISH, st.text(max_size=30))
def test_redline_shows_every_edit_escaped(old: str, new: str, payload: str) -> None:
    result = diff.compute(old, new + payload + "<script>&")
    html = diff.redline_html(result)
    assert "<script>" not in html
    for section in result.sections:
        for op, text in section.segments:
            if op != "=":
                assert escape(text).replace("\n", "<br>\n") in html


def test_moved_section_is_reported_as_moved_not_deleted_and_added() -> None:
    three = BASE[BASE.index("## 3. Retention") : BASE.index("## 4. Contact")]
    new = BASE.replace(three, "").replace("## 1. Information", three + "## 1. Information")
    result = diff.compute(BASE, new)
    assert [c.kind for c in result.changes] == ["moved"]
    assert result.changes[0].section == ("Privacy Policy", "3. Retention")
    assert diff.apply(BASE, result) == new


def test_renamed_section_is_matched_by_content() -> None:
    new = BASE.replace("## 2. Sharing", "## 2. Who Receives Your Data")
    [change] = diff.compute(BASE, new).changes
    assert change.kind == "renamed"
    assert (change.deleted, change.inserted) == ("2. Sharing", "2. Who Receives Your Data")
    assert change.old_section == ("Privacy Policy", "2. Sharing")


def test_renumbered_headings_are_noise() -> None:
    new = BASE.replace("## 3. Retention", "## 4. Retention").replace(
        "## 4. Contact", "## 5. Contact"
    )
    result = diff.compute(BASE, new)
    assert {c.noise for c in result.changes} == {"renumbering"}
    assert {c.kind for c in result.changes} == {"modified"}


@pytest.mark.parametrize(
    ("old", "new", "label"),
    [
        ("We do not sell personal data.", "We do not  sell\npersonal data.", "whitespace"),
        ("We do not sell personal data.", "We do **not** sell personal data.", "formatting"),
        ('Northwind Apps ("we")', "Northwind Apps (“we”)", "quotes"),
        ("**Last updated:** March 1, 2024", "**Last updated:** June 9, 2025", "date_line"),
        ("## 3. Retention", "## 7. Retention", "renumbering"),
        ("We keep account data", "We keep all account data", None),
    ],
)
def test_noise_is_labelled_never_hidden(old: str, new: str, label: str | None) -> None:
    result = diff.compute(BASE, BASE.replace(old, new))
    assert result.changes
    assert {c.noise for c in result.changes} == {label}
    if label:
        assert f'data-noise="{label}"' in diff.redline_html(result)


def test_side_by_side_and_summary() -> None:
    new = BASE.replace("30 days", "90 days").replace("## 4. Contact", "## 4. Contact us")
    result = diff.compute(BASE, new)
    table = diff.side_by_side_html(result)
    assert table.startswith('<table class="side-by-side">')
    assert "<del>30</del>" in table and "<ins>90</ins>" in table
    summary = diff.summary_text(result)
    assert "Section 3. Retention: '30' changed to '90'" in summary
    assert "renamed" in summary
    assert diff.summary_text(diff.compute(BASE, BASE)) == "No changes."


def test_apply_refuses_a_different_old_text() -> None:
    result = diff.compute(BASE, BASE.replace("30 days", "90 days"))
    with pytest.raises(ValueError):
        diff.apply(BASE + " ", result)


def _unrelated(seed: int, size: int) -> str:
    import random

    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(4000)
    ]
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(5, 25))) + ".\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)


def test_pathological_unrelated_megabyte_is_bounded_and_approximate() -> None:
    import time

    old, new = _unrelated(1, 1_000_000), _unrelated(2, 1_000_000)
    started = time.perf_counter()
    result = diff.compute(old, new)
    assert time.perf_counter() - started < 2.5
    assert result.approximate
    assert diff.apply(old, result) == new


@pytest.mark.parametrize("direction", ["appended", "removed"])
def test_a_section_appended_or_removed_at_the_end_leaves_the_one_before_it_unchanged(direction):
    extra = "## 4. AI providers\n\nWe share your questions with AI model providers.\n"
    old, new = BASE.rstrip("\n") + "\n", BASE.rstrip("\n") + "\n\n" + extra
    if direction == "removed":
        old, new = new, old
    result = diff.compute(old, new)
    assert [c.kind for c in result.changes] == ["added" if direction == "appended" else "removed"]
    assert [s.kind for s in result.sections] == [c.kind for c in result.changes]
    assert diff.apply(old, result) == new  # the blank line is still replayed
