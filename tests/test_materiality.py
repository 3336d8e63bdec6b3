"""Unit tests for the materiality classifier: each reason kind, in both directions."""

from __future__ import annotations

import json

import pytest

from policy_versions import diff
from policy_versions.changes import Change
from policy_versions.materiality import Classification, classify, load_vocabulary
from policy_versions.reorder import is_reordering

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


# --- general rules added after the blind held-out review (own examples, both directions) -----

TERMS = """# Example Terms of Service

## 1. Fees

The monthly fee is charged on the first day of each month, including applicable taxes. Our
liability is capped at the greater of the fees paid or 100 euros.

## 2. Acceptable use

You must not upload malware, spam or stolen content.

You must:

- keep your password secret;
- tell us about any breach within 24 hours;
- pay invoices within 30 days.

## 3. Changes to these terms

We will tell you about changes by email at least 30 days before they apply.

## 4. Retention

Invoices are kept for 7 years and server logs for 30 days.

| Data | Kept for |
|---|---|
| Invoices | 7 years |
| Logs | 30 days |

## 5. Who we are

Acme Widgets, Inc., a Delaware corporation, runs the service.

## 6. Sharing

We share data with Northbeam Analytics only to measure usage.

## 7. Account safety

We lock accounts that look hijacked. You can lock your own account, and you can block other
users at any time.

## 8. Refunds

If the service is down for a whole day, we refund the fee for that month in full and we tell you
by email.
"""


def terms_edit(old: str, new: str) -> str:
    assert TERMS.count(old) == 1, old
    return TERMS.replace(old, new)


RULE_CASES = [
    # An opposite word is never a typo, although "including" -> "excluding" is two letters.
    ("including applicable", "excluding applicable", "material", "polarity_flip"),
    ("the greater of", "the lesser of", "material", "polarity_flip"),
    ("including applicable", "incluidng applicable", "cosmetic", "typo"),
    # Two words the documents both use are a swap of words, not a slip of the keyboard.
    ("We lock accounts", "We block accounts", "minor", "wording"),
    ("We lock accounts", "We lokc accounts", "cosmetic", "typo"),
    # A company's legal form names no topic and no new party.
    (
        "Acme Widgets, Inc., a Delaware corporation,",
        "Acme Widgets, LLC, a Delaware limited liability company,",
        "minor",
        "wording",
    ),
    ("Northbeam Analytics only", "Northbeam Analytics GmbH only", "minor", "wording"),
    ("Northbeam Analytics only", "Driftwood Labs GmbH only", "material", "new_recipient"),
    (
        "a Delaware corporation, runs the service.",
        "a Delaware corporation, runs the service and accepts no liability for outages.",
        "material",
        "topic_text_added",
    ),
    # Padding a table's separator row is layout; a changed cell is not.
    ("|---|---|", "|----------|--------------|", "cosmetic", "formatting"),
    ("|---|---|", "| :--- | ---: |", "cosmetic", "formatting"),
    ("|---|---|", "|---|---|---|", "minor", "wording"),
    ("| Logs | 30 days |", "| Logs | 90 days |", "material", "period_changed"),
    # A period changes only when the sentence's numbers change, in reading order.
    (
        "Invoices are kept for 7 years and server logs for 30 days.",
        "Once filed, invoices are kept for 7 years, and server logs for 30 days.",
        "minor",
        "wording",
    ),
    (
        "Invoices are kept for 7 years and server logs for 30 days.",
        "Invoices are kept for 30 days and server logs for 7 years.",
        "material",
        "period_changed",
    ),
    # A limiting word counts per sentence: moved within it, it still limits.
    (
        "We share data with Northbeam Analytics only to measure usage.",
        "We only share data with Northbeam Analytics to measure usage.",
        "minor",
        "wording",
    ),
    (
        "We share data with Northbeam Analytics only to measure usage.",
        "We share data with Northbeam Analytics to measure usage.",
        "material",
        "qualifier_changed",
    ),
    # How users hear about changes is a promise in itself.
    (
        "about changes by email",
        "about changes by a notice in the app",
        "material",
        "notice_channel_changed",
    ),
    ("about changes by email", "about changes by e-mail", "minor", "wording"),
    # Items added to or removed from a prohibition change what users may do.
    ("malware, spam or stolen", "malware, spam, adult or stolen", "material", "usage_rule_changed"),
    ("malware, spam or stolen", "malware or stolen", "material", "usage_rule_changed"),
    ("malware, spam or stolen", "any malware, spam or stolen", "minor", "wording"),
    ("You must not upload malware", "Users must not upload malware", "minor", "wording"),
]


@pytest.mark.parametrize(("old", "new", "verdict", "kind"), RULE_CASES)
def test_general_rule_kind_and_verdict(old: str, new: str, verdict: str, kind: str) -> None:
    result = classify(TERMS, terms_edit(old, new))
    assert result.verdict == verdict, result.to_dict()
    assert kind in kinds(result), result.to_dict()


def test_reordered_list_is_minor_but_a_changed_item_is_not() -> None:
    items = (
        "- keep your password secret;\n- tell us about any breach within 24 hours;\n"
        "- pay invoices within 30 days.\n"
    )
    reordered = (
        "- pay invoices within 30 days;\n- tell us about any breach within 24 hours;\n"
        "- keep your password secret.\n"
    )
    result = classify(TERMS, terms_edit(items, reordered))
    assert result.verdict == "minor", result.to_dict()
    assert "reordered" in kinds(result)
    changed = reordered.replace("24 hours", "72 hours")
    assert classify(TERMS, terms_edit(items, changed)).verdict == "material"


def test_paraphrased_sentence_is_judged_by_its_substance_not_its_swaps() -> None:
    old = (
        "If the service is down for a whole day, we refund the fee for that month in full and we "
        "tell you\nby email."
    )
    plain = (
        "When the service has not worked for an entire day, we give back that month's fee in "
        "full and we tell you\nby email."
    )
    assert classify(TERMS, terms_edit(old, plain)).verdict == "minor"
    # The same predicate negated is still a reversal, however much else was reworded.
    reversed_ = old.replace("we refund the fee", "we do not refund the fee")
    result = classify(TERMS, terms_edit(old, reversed_))
    assert result.verdict == "material"
    assert "negation_flip" in kinds(result)
    # One word swapped in an otherwise unchanged sentence is judged as a swap.
    assert classify(TERMS, terms_edit("for a whole day", "for a whole week")).verdict == (
        "material"
    )


def test_number_words_count_only_as_numbers() -> None:
    once = terms_edit("least 30 days before", "least 30 days before, once a year,")
    assert classify(TERMS, once).verdict == "material"
    conjunction = terms_edit(
        "We will tell you about changes", "Once we decide on changes, we will tell you about them"
    )
    assert "period_changed" not in kinds(classify(TERMS, conjunction))
    pronoun = terms_edit("You can lock your own account", "Either one of you can lock the account")
    assert "number_changed" not in kinds(classify(TERMS, pronoun))


# --- general rules added after the second blind review (own examples, both directions) ------

NOTICE = """# Example Privacy Notice

## 4. Who we share your data with

We use these processors, each bound by a data processing agreement:

- Postmark Ltd (email delivery, Ireland)
- Scaleway SAS (hosting, France)

We share usage figures with Northbeam Analytics only to plan capacity. You can block other users.

## 5. AI suggestions

5.1 Suggestions may be wrong. You should check each Suggestion before you send it.

## 9. Governing law

The laws of Ireland govern this notice, and the courts of Dublin hear any dispute.
"""


def notice_edit(old: str, new: str) -> str:
    assert NOTICE.count(old) == 1, old
    return NOTICE.replace(old, new)


NAME_CASES = [
    # A capital that only opens a sentence or clause is grammar, not a newly named party ...
    (
        "5.1 Suggestions may be wrong. You should check each Suggestion before you send it.",
        "5.1 Suggestions can be wrong. Before you send a Suggestion, check it yourself.",
        "minor",
        "wording",
    ),
    (
        "You can block other users.",
        "Blocking other users is something you can do.",
        "minor",
        "wording",
    ),
    # ... but a company that opens a sentence is still named, and so is one mid-sentence, even
    # when its name is an ordinary word the notice uses in lower case ("block").
    (
        "only to plan capacity.",
        "only to plan capacity. Quillfeather Inc receives the same figures.",
        "material",
        "new_recipient",
    ),
    (
        "with Northbeam Analytics only",
        "with Northbeam Analytics and Block only",
        "material",
        "new_recipient",
    ),
    (
        "before you send it.",
        "before you send it. Larkspur Labs reviews every Suggestion.",
        "material",
        "new_recipient",
    ),
    # A name moved within its sentence names no one new; swapped names change the substance.
    (
        "You should check each Suggestion before you send it.",
        "You should, before you send it, check each Suggestion.",
        "minor",
        "wording",
    ),
    (
        "The laws of Ireland govern this notice, and the courts of Dublin hear any dispute.",
        "This notice is subject to the laws of Ireland, and the courts of Dublin hear any dispute.",
        "minor",
        "wording",
    ),
    (
        "The laws of Ireland govern this notice, and the courts of Dublin hear",
        "The laws of England govern this notice, and the courts of Dublin hear",
        "material",
        "named_party_changed",
    ),
    # Rewording the description of a processor already listed, same name and country, is minor ...
    (
        "- Postmark Ltd (email delivery, Ireland)",
        "- Postmark Ltd (transactional email delivery service provider, Ireland)",
        "minor",
        "wording",
    ),
    # ... while a new processor, a new country, a new purpose or new recipients beside the name
    # are not.
    (
        "- Scaleway SAS (hosting, France)",
        "- Scaleway SAS (hosting, France)\n- Mailwhale GmbH (email delivery, Germany)",
        "material",
        "new_recipient",
    ),
    (
        "- Postmark Ltd (email delivery, Ireland)",
        "- Postmark Ltd (email delivery, United States)",
        "material",
        "new_recipient",
    ),
    (
        "- Postmark Ltd (email delivery, Ireland)",
        "- Postmark Ltd (email delivery and advertising, Ireland)",
        "material",
        "topic_text_added",
    ),
    (
        "- Postmark Ltd (email delivery, Ireland)",
        "- Postmark Ltd and its service providers (email delivery, Ireland)",
        "material",
        "topic_text_added",
    ),
]


@pytest.mark.parametrize(("old", "new", "verdict", "kind"), NAME_CASES)
def test_names_and_known_party_descriptions(old: str, new: str, verdict: str, kind: str) -> None:
    result = classify(NOTICE, notice_edit(old, new))
    assert result.verdict == verdict, result.to_dict()
    assert kind in kinds(result), result.to_dict()


# --- general rules added after the third blind review (own examples, both directions) -------

THIRD_CASES = [
    # A number written in words is the same number in digits; a different value is not.
    (
        "pay invoices within 30 days.",
        "pay invoices within thirty days.",
        "minor",
        "number_notation",
    ),
    (
        "Invoices are kept for 7 years",
        "Invoices are kept for seven years",
        "minor",
        "number_notation",
    ),
    (
        "within 24 hours;",
        "within twenty-four (24) hours;",
        "minor",
        "number_notation",
    ),
    (
        "Invoices are kept for 7 years",
        "Invoices are kept for seventy years",
        "material",
        "period_changed",
    ),
    ("within 24 hours;", "within forty-eight hours;", "material", "period_changed"),
]


@pytest.mark.parametrize(("old", "new", "verdict", "kind"), THIRD_CASES)
def test_third_review_rule_kind_and_verdict(old: str, new: str, verdict: str, kind: str) -> None:
    result = classify(TERMS, terms_edit(old, new))
    assert result.verdict == verdict, result.to_dict()
    assert kind in kinds(result), result.to_dict()


SELLER = """# Example Seller Terms

Example Market runs 3 shops in the north of England.

## 1. Definitions

"Sale Price" means the price the buyer pays, excluding delivery charges.

"Seller Wallet" means the account we pay your earnings into.

## 2. Payouts

We pay your earnings into your Seller Wallet every Friday, and you can see your Seller Wallet
balance at any time. Statements are sent monthly.

## 3. Refunds

If an item never arrives, we refund the full Sale Price to the buyer.

## 4. Research programme

The research programme is opt-in. We use uploaded photos, including receipts, to train our fraud
models. Reselling counterfeit goods is prohibited. Photo checks are not offered in Quebec, Alberta
or Ontario. You can withdraw from the programme at any time by email to research@example.test.

## 5. Sub-processors

| Sub-processor | Purpose | Location |
|---|---|---|
| Parcelbird Ltd | Shipping label printing | United Kingdom |
| Ledgerline Inc. | Payment processing | United States |
| Inkpot GmbH | Invoice archive | Germany |
| Tallyho Ltd | Support tickets | Ireland |

We tell you about a new sub-processor 30 days before it starts.

## 6. Closing accounts

We give you 14 days' notice before we close your account, unless the closure is needed to stop
fraud against buyers.

## 7. Contact

Example Market Ltd, 22 Harbour Street, Suite 3, Leeds LS1 4AB. Email: help@example.test

Our offices in Leeds and York answer questions.
"""


def seller_edit(old: str, new: str) -> str:
    assert SELLER.count(old) == 1, old
    return SELLER.replace(old, new)


SELLER_CASES = [
    # A phrase swapped for its opposite reverses the clause, like a single opposite word.
    ("programme is opt-in.", "programme is opt-out.", "material", "polarity_flip"),
    (
        "counterfeit goods is prohibited.",
        "counterfeit goods is permitted.",
        "material",
        "polarity_flip",
    ),
    ("programme is opt-in.", "programme is opt-in only.", "material", "qualifier_changed"),
    # Carving something out of a clause, or no longer carving it out, changes what it covers ...
    (
        "buyer pays, excluding delivery",
        "buyer pays, including delivery",
        "material",
        "polarity_flip",
    ),
    ("buyer pays, excluding delivery", "buyer pays, and delivery", "material", "exclusion_changed"),
    (
        "photos, including receipts, to",
        "photos, other than receipts, to",
        "material",
        "exclusion_changed",
    ),
    # ... while the same carve-out in other words does not.
    ("photos, including receipts, to", "photos, such as receipts, to", "minor", "wording"),
    # A refund of less than the full amount is a different sum.
    (
        "refund the full Sale Price",
        "refund the Sale Price less delivery",
        "material",
        "amount_qualifier_changed",
    ),
    # How often something happens is a period too.
    ("Wallet every Friday", "Wallet every other Friday", "material", "period_changed"),
    (
        "Statements are sent monthly.",
        "Statements are sent quarterly.",
        "material",
        "period_changed",
    ),
    ("Wallet every Friday", "Wallet each Friday", "minor", "wording"),
    ("Statements are sent monthly.", "We send statements monthly.", "minor", "wording"),
]


@pytest.mark.parametrize(("old", "new", "verdict", "kind"), SELLER_CASES)
def test_seller_rule_kind_and_verdict(old: str, new: str, verdict: str, kind: str) -> None:
    result = classify(SELLER, seller_edit(old, new))
    assert result.verdict == verdict, result.to_dict()
    assert kind in kinds(result), result.to_dict()


def test_less_than_is_a_comparison_not_a_deduction() -> None:
    new = seller_edit(
        "refund the full Sale Price", "refund the full Sale Price, less than a day later,"
    )
    assert "amount_qualifier_changed" not in kinds(classify(SELLER, new))
    whole = seller_edit("refund the full Sale Price", "refund the whole Sale Price")
    assert "amount_qualifier_changed" not in kinds(classify(SELLER, whole))


ROWS = (
    "| Parcelbird Ltd | Shipping label printing | United Kingdom |\n"
    "| Ledgerline Inc. | Payment processing | United States |\n"
    "| Inkpot GmbH | Invoice archive | Germany |\n"
    "| Tallyho Ltd | Support tickets | Ireland |\n"
)
# The last two rows moved to the top: the diff inserts them above and deletes them at the end.
MOVED_ROWS = "".join(ROWS.splitlines(keepends=True)[2:] + ROWS.splitlines(keepends=True)[:2])

TABLE_CASES = [
    # Rows of a table put in another order are the same rows, wherever the diff cuts them.
    (ROWS, MOVED_ROWS, "minor", "moved"),
    # A known processor's description cell reworded, name and country unchanged, is minor ...
    ("| Shipping label printing |", "| Shipping label creation |", "minor", "wording"),
    ("| Payment processing |", "| Payment handling |", "minor", "wording"),
    # ... a new country, a new processor or a new purpose is not.
    ("printing | United Kingdom |", "printing | India |", "material", "new_recipient"),
    ("| Parcelbird Ltd |", "| Boxfox Ltd |", "material", "new_recipient"),
    (
        "| Payment processing |",
        "| Payment processing and advertising |",
        "material",
        "topic_text_added",
    ),
]


@pytest.mark.parametrize(("old", "new", "verdict", "kind"), TABLE_CASES)
def test_table_rows_and_cells(old: str, new: str, verdict: str, kind: str) -> None:
    result = classify(SELLER, seller_edit(old, new))
    assert result.verdict == verdict, result.to_dict()
    assert kind in kinds(result), result.to_dict()


def test_rows_cut_from_the_end_of_a_table_are_judged_within_the_table() -> None:
    """The deleted half of a move ends on the row's line break, just before the blank line."""
    new = seller_edit(ROWS, MOVED_ROWS)
    tail = "".join(ROWS.splitlines(keepends=True)[2:])
    old_start = SELLER.index(tail)
    new_start = new.index("\n\nWe tell") + 1
    cut = Change((), None, "modified", tail, "", 8, 0, None, old_start, new_start)
    assert is_reordering(cut, SELLER, new)
    changed = new.replace("| Support tickets |", "| Support tickets and ads |")
    assert not is_reordering(cut, SELLER, changed)


def test_a_street_line_is_contact_details_not_a_number_or_a_topic() -> None:
    moved = seller_edit("22 Harbour Street, Suite 3", "140 Market Street, Floor 2")
    result = classify(SELLER, moved)
    assert result.verdict == "minor", result.to_dict()
    assert kinds(result) == {"contact_details"}, result.to_dict()
    # A number outside the address is still a number.
    later = seller_edit("sub-processor 30 days before", "sub-processor 10 days before")
    assert classify(SELLER, later).verdict == "material"


def test_a_defined_term_renamed_everywhere_is_a_rename_not_a_new_party() -> None:
    renamed = SELLER.replace("Seller Wallet", "Seller Payout Wallet")
    result = classify(SELLER, renamed)
    assert result.verdict == "minor", result.to_dict()
    assert kinds(result) == {"term_renamed"}, result.to_dict()
    swapped = SELLER.replace("Seller Wallet", "Earnings Wallet")
    assert kinds(classify(SELLER, swapped)) == {"term_renamed"}
    # Renamed in its definition only: the old term is still used, so the uses name nothing.
    definition_only = seller_edit('"Seller Wallet" means', '"Seller Payout Wallet" means')
    assert "term_renamed" not in kinds(classify(SELLER, definition_only))
    # Renamed everywhere but defined differently: what the term means changed too.
    redefined = renamed.replace(
        "means the account we pay your earnings into", "means an account at Coinvault Ltd"
    )
    assert "term_renamed" not in kinds(classify(SELLER, redefined))


def test_joining_or_splitting_sentences_is_rewording_not_a_typo() -> None:
    joined = classify(BASE, edit("you create. We do not", "you create; we do not"))
    assert joined.verdict == "minor", joined.to_dict()
    assert "typo" not in kinds(joined)
    assert classify(BASE, edit("answer support requests.", "answer Support requests.")).verdict == (
        "cosmetic"
    )


def test_a_name_added_to_or_removed_from_a_list_in_a_material_clause() -> None:
    for old, new in (
        ("Quebec, Alberta\nor", "Quebec or"),
        ("Alberta\nor Ontario", "Alberta,\nOntario or Manitoba"),
    ):
        result = classify(SELLER, seller_edit(old, new))
        assert result.verdict == "material", result.to_dict()
        assert "named_item_changed" in kinds(result), result.to_dict()
    reordered = seller_edit("Quebec, Alberta\nor Ontario", "Alberta, Ontario\nor Quebec")
    assert classify(SELLER, reordered).verdict != "material"
    # Contact details are not a material clause.
    office = classify(SELLER, seller_edit("in Leeds and York answer", "in Leeds answer"))
    assert office.verdict == "minor", office.to_dict()


def test_the_way_to_exercise_a_right_is_part_of_the_right() -> None:
    by_post = seller_edit("by email to research@example.test", "by a signed letter to our office")
    result = classify(SELLER, by_post)
    assert result.verdict == "material", result.to_dict()
    assert "right_channel_changed" in kinds(result), result.to_dict()
    # Another address on the same channel, or the same channel in other words, is not.
    other_address = seller_edit("to research@example.test", "to optout@example.test")
    assert classify(SELLER, other_address).verdict == "minor"
    spelled = seller_edit("by email to research", "by e-mail to research")
    assert classify(SELLER, spelled).verdict == "minor"


EXCEPTION_CASES = [
    # New or lost words in the condition of an exception widen or narrow when a promise holds ...
    ("needed to stop\nfraud against buyers.", "needed to protect\nour business.", "material"),
    ("unless the closure is needed", "unless we decide the closure is needed", "material"),
    # ... synonyms inside it, or a rewording before it, do not.
    ("unless the closure is needed", "unless the closure is necessary", "minor"),
    ("We give you 14 days' notice", "You get 14 days' notice", "minor"),
]


@pytest.mark.parametrize(("old", "new", "verdict"), EXCEPTION_CASES)
def test_the_condition_of_an_exception(old: str, new: str, verdict: str) -> None:
    result = classify(SELLER, seller_edit(old, new))
    assert result.verdict == verdict, result.to_dict()
    assert ("exception_changed" in kinds(result)) == (verdict == "material"), result.to_dict()


def test_a_word_of_a_name_is_not_a_topic_term_in_another_form() -> None:
    """ "Market" in a name is not "marketing", though a crude stemmer makes them meet."""
    offices = seller_edit("runs 3 shops", "runs 4 shops")
    assert classify(SELLER, offices).verdict == "minor"
    team = SELLER.replace("Example Market runs 3", "Our marketing team runs 3")
    assert classify(team, team.replace("runs 3", "runs 4")).verdict == "material"
    named_team = SELLER.replace("Example Market runs 3", "Our Marketing Team runs 3")
    assert classify(named_team, named_team.replace("runs 3", "runs 4")).verdict == "material"


# A fitness app's notice for the fourth review's rules (sections of one topic, recipient
# classes, added grounds for disclosure, synonyms, split sentences).
FITNESS = """# Rowan Fitness Privacy Notice

## 1. Analytics cookies

These cookies count visits to our pages. Analytics reports never show a full IP address.

## 2. Advertising cookies

These cookies show you offers from gyms near you.

## 3. Who we share data with

We never share workout data with credit bureaus or data brokers.

We give workout data to the police only when a court order requires it.

We use workout data to calculate your weekly fitness score.
"""


def fitness_edit(old: str, new: str) -> str:
    assert FITNESS.count(old) == 1, old
    return FITNESS.replace(old, new)


def test_a_move_between_headings_of_one_topic_that_govern_different_things() -> None:
    sentence = " Analytics reports never show a full IP address."
    moved = FITNESS.replace(sentence, "").replace("near you.", "near you." + sentence)
    result = classify(FITNESS, moved)
    assert result.verdict == "material", result.to_dict()
    assert "moved_between_sections" in kinds(result)

    # From a heading into a narrower one of the same thing, the move is only a reorder.
    def headed(text: str) -> str:
        return text.replace("1. Analytics cookies", "1. Cookies").replace(
            "2. Advertising cookies", "2. Cookies for analytics"
        )

    narrowed = classify(headed(FITNESS), headed(moved))
    assert narrowed.verdict == "minor", narrowed.to_dict()
    assert "moved" in kinds(narrowed)


def test_a_class_of_recipient_cut_from_a_never_share_list_is_material() -> None:
    cut = classify(
        FITNESS, fitness_edit("with credit bureaus or data brokers", "with data brokers")
    )
    assert cut.verdict == "material", cut.to_dict()
    added = fitness_edit("with credit bureaus or data", "with credit bureaus, insurers or data")
    assert classify(FITNESS, added).verdict == "material"
    # The same classes in another order name the same recipients.
    order = fitness_edit("credit bureaus or data brokers", "data brokers or credit bureaus")
    assert classify(FITNESS, order).verdict != "material"


def test_a_ground_joined_by_or_to_a_disclosure_condition_is_material() -> None:
    wider = fitness_edit(
        "only when a court order requires it.",
        "only when a court order requires it, or if an officer asks us during an inquiry.",
    )
    result = classify(FITNESS, wider)
    assert result.verdict == "material", result.to_dict()
    assert "condition_ground_added" in kinds(result), result.to_dict()
    narrower = classify(wider, FITNESS)
    assert "condition_ground_removed" in kinds(narrower), narrower.to_dict()
    # An "or" that brings no new words, or one joined to a clause with no condition, is not.
    restated = fitness_edit("requires it.", "requires it, or when one requires it.")
    assert "condition_ground_added" not in kinds(classify(FITNESS, restated))
    score = fitness_edit("fitness score.", "fitness score, or when you ask for a monthly summary.")
    assert "condition_ground_added" not in kinds(classify(FITNESS, score))


def test_a_defined_recipient_renamed_everywhere_singular_and_plural_is_a_rename() -> None:
    club = """# Rowan Club Notice

## 1. Members

This notice covers anyone you add to your plan ("Plan Guests"). Each Plan Guest must read it.

## 2. Who receives workout data

We share weekly summaries with other Plan Guests on your plan, never with gyms.
"""
    renamed = club.replace("Plan Guest", "Plan Friend")
    result = classify(club, renamed)
    assert result.verdict == "minor", result.to_dict()
    assert "term_renamed" in kinds(result), result.to_dict()
    # Renamed where data goes but still used under the old name elsewhere: a new party.
    partly = club.replace("other Plan Guests", "other Plan Friends")
    assert classify(club, partly).verdict == "material"


def test_a_topic_phrase_moved_to_the_next_sentence_of_its_paragraph_is_not_removed() -> None:
    split = fitness_edit(
        "These cookies count visits to our pages. Analytics",
        "These count visits to our pages. They are cookies. Analytics",
    )
    result = classify(FITNESS, split)
    assert result.verdict == "minor", result.to_dict()
    # Cut from the paragraph altogether, the phrase is gone.
    cut = classify(FITNESS, fitness_edit("These cookies count", "These count"))
    assert cut.verdict == "material", cut.to_dict()


def test_a_plain_verb_swapped_for_its_everyday_equivalent_is_rewording() -> None:
    for old, new in (("to calculate your", "to work out your"), ("show you", "display to you")):
        result = classify(FITNESS, fitness_edit(old, new))
        assert result.verdict == "minor", (old, new, result.to_dict())
    # Outside the curated pairs a swapped verb still changes what is done with the data.
    stored = fitness_edit("to calculate your", "to store your")
    assert classify(FITNESS, stored).verdict == "material"
    assert classify(stored, stored.replace("to store your", "to share your")).verdict == "material"
    remembered = stored.replace("to store your", "to remember your")
    assert classify(stored, remembered).verdict == "minor"


def test_a_limiting_adverb_turned_into_its_adjective_keeps_the_limit() -> None:
    terms = """# Rowan Club Terms

## 1. Liability

The member is solely responsible for checking that a class suits their health.
"""
    noun = terms.replace(
        "The member is solely responsible for checking",
        "It is the member's sole responsibility to check",
    )
    result = classify(terms, noun)
    assert result.verdict == "minor", result.to_dict()
    # Dropping the limit, or swapping it for another, still widens or narrows the clause.
    dropped = terms.replace("is solely responsible", "is responsible")
    assert "qualifier_changed" in kinds(classify(terms, dropped))
    only = terms.replace("is solely responsible", "is only responsible")
    assert "qualifier_changed" in kinds(classify(terms, only))


def test_a_possessive_of_a_known_party_names_no_new_recipient() -> None:
    result = classify(BASE, edit("which hosts our servers", "which hosts Acme's servers"))
    assert "new_recipient" not in kinds(result), result.to_dict()
