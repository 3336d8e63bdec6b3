"""Unit tests for the materiality classifier: each reason kind, in both directions."""

from __future__ import annotations

import json

import pytest

from policy_versions import diff
from policy_versions.materiality import Classification, classify, load_vocabulary

BASE = """# Example Privacy Policy

Last updated: 2 March 2025

Acme Widgets Ltd ("we") makes the Widget app. This policy explains how we handle personal data.

## 1. Information We Collect

We collect your name, email address and the widgets you create. We do not collect precise location.

## 2. How We Use Information

We use your data to run the app and to answer support requests.

## 3. Sharing

We do not sell personal data. We share data with Hetzner, which hosts our servers.

We will ask for your consent before sharing data with anyone else.

## 4. Retention

We delete your data within 30 days after you close your account.

## 5. Security

All traffic is encrypted with TLS. Staff access requires two-factor authentication.

## 6. Your Rights

You have the right to access, correct, export and delete your data.

## 7. Contact

Acme Widgets Ltd, 5 Mill Road, Cambridge CB1 2AB. Email: privacy@acme.example
"""


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def kinds(result: Classification) -> set[str]:
    return {r.kind for r in result.reasons}


def test_identical_texts_are_cosmetic_with_no_reasons() -> None:
    result = classify(BASE, BASE)
    assert result.verdict == "cosmetic"
    assert result.reasons == ()


CASES = [
    # (old fragment, new fragment, verdict, reason kind)
    ("We do not sell personal data.", "We sell personal data.", "material", "negation_flip"),
    (
        "We share data with Hetzner",
        "We do not share data with Hetzner",
        "material",
        "negation_flip",
    ),
    ("within 30 days", "within 90 days", "material", "period_changed"),
    ("within 30 days", "within 7 days", "material", "period_changed"),
    ("We will ask for your consent", "We may ask for your consent", "material", "modal_weakened"),
    ("We use your data to run", "We must use your data to run", "material", "modal_strengthened"),
    (
        "which hosts our servers.",
        "which hosts our servers, and with Mixpanel, which analyses usage.",
        "material",
        "new_recipient",
    ),
    (
        "We share data with Hetzner, which",
        "We share data with a provider, which",
        "material",
        "recipient_removed",
    ),
    (
        "access, correct, export and delete",
        "access, correct and delete",
        "material",
        "right_removed",
    ),
    (
        "access, correct, export and delete",
        "access, correct, export, restrict and delete",
        "material",
        "right_added",
    ),
    (
        "We do not collect precise location.",
        "We collect precise location.",
        "material",
        "negation_flip",
    ),
    (
        "the widgets you create.",
        "the widgets you create and your contact list.",
        "material",
        "topic_text_added",
    ),
    ("Staff access requires two-factor authentication.", "", "material", "topic_text_removed"),
    ("Last updated: 2 March 2025", "Last updated: 9 June 2025", "cosmetic", "date_line"),
    (
        "We do not sell personal data.",
        "We do **not** sell personal data.",
        "cosmetic",
        "formatting",
    ),
    ('Acme Widgets Ltd ("we")', "Acme Widgets Ltd (“we”)", "cosmetic", "quotes"),
    ("## 4. Retention", "## 5. Retention", "cosmetic", "renumbering"),
    ("answer support requests.", "answer  support\nrequests.", "cosmetic", "whitespace"),
    ("answer support requests.", "answer suport requests.", "cosmetic", "typo"),
    ("privacy@acme.example", "dpo@acme.example", "minor", "contact_details"),
    (
        "5 Mill Road, Cambridge CB1 2AB",
        "17 Hills Road, Cambridge CB2 1NL",
        "minor",
        "contact_details",
    ),
    ("makes the Widget app", "develops the Widget app", "minor", "wording"),
    ("This policy explains how", "This policy describes how", "minor", "wording"),
    ("## 6. Your Rights", "## 6. Your Privacy Rights", "minor", "heading_renamed"),
    ("Acme Widgets Ltd (", "Acme Gadgets Ltd (", "minor", "names"),
]


@pytest.mark.parametrize(("old", "new", "verdict", "kind"), CASES)
def test_reason_kind_and_verdict(old: str, new: str, verdict: str, kind: str) -> None:
    result = classify(BASE, edit(old, new))
    assert result.verdict == verdict, result.to_dict()
    assert kind in kinds(result), result.to_dict()


def test_typo_fix_next_to_a_number_is_not_material() -> None:
    result = classify(BASE, edit("We delete your data within 30", "We delte your data within 30"))
    assert result.verdict == "cosmetic"


def test_rewording_that_keeps_meaning_is_not_material() -> None:
    new = edit(
        "We use your data to run the app and to answer support requests.",
        "We utilise your data to operate the app and to answer support requests.",
    )
    assert classify(BASE, new).verdict != "material"


def test_sentence_moved_from_security_into_sharing_is_material() -> None:
    sentence = "Staff access requires two-factor authentication."
    new = BASE.replace(" " + sentence, "").replace(
        "which hosts our servers.", "which hosts our servers. " + sentence
    )
    result = classify(BASE, new)
    assert result.verdict == "material"
    assert "moved_between_sections" in kinds(result)


def test_section_reordered_without_edits_is_minor() -> None:
    four = BASE[BASE.index("## 4. Retention") : BASE.index("## 5. Security")]
    five = BASE[BASE.index("## 5. Security") : BASE.index("## 6. Your Rights")]
    new = BASE.replace(four + five, five + four)
    result = classify(BASE, new)
    assert result.verdict == "minor"
    assert "section_moved" in kinds(result)


def test_new_material_section_is_material_and_removed_one_too() -> None:
    extra = "## 8. AI Features\n\nWe send your widgets to OpenAI to suggest names.\n\n"
    with_ai = BASE.replace("## 7. Contact", extra + "## 7. Contact")
    added = classify(BASE, with_ai)
    assert added.verdict == "material" and "section_added" in kinds(added)
    removed = classify(with_ai, BASE)
    assert removed.verdict == "material" and "section_removed" in kinds(removed)


def test_reasons_name_section_topic_and_exact_words() -> None:
    result = classify(BASE, edit("within 30 days", "within 90 days"))
    [reason] = [r for r in result.reasons if r.kind == "period_changed"]
    assert reason.section == "Example Privacy Policy › 4. Retention"
    assert reason.topic == "retention"
    assert (reason.deleted, reason.inserted) == ("30", "90")
    assert reason.explanation.endswith(".")


def test_classification_round_trips_through_json() -> None:
    result = classify(BASE, edit("We do not sell personal data.", "We sell personal data."))
    data = json.loads(json.dumps(result.to_dict()))
    assert Classification.from_dict(data) == result


def test_reuses_a_given_diff() -> None:
    new = edit("within 30 days", "within 90 days")
    result = diff.compute(BASE, new)
    assert classify(BASE, new, diff=result) == classify(BASE, new)


def test_extra_vocabulary_file_extends_the_builtin_topics(tmp_path, monkeypatch) -> None:
    new = edit("the widgets you create.", "the widgets you create and your shoe size.")
    assert classify(BASE, new).verdict != "material"
    extra = tmp_path / "extra.toml"
    extra.write_text('[topics.collection]\nterms = ["shoe size"]\n', encoding="utf-8")
    assert classify(BASE, new, topics_file=extra).verdict == "material"
    monkeypatch.setenv("POLICY_TOPICS_FILE", str(extra))
    assert classify(BASE, new).verdict == "material"
    assert "shoe size" in {c.text for c in load_vocabulary().topic("collection").terms}
