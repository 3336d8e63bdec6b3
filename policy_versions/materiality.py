"""Decide whether a policy change is cosmetic, minor or material, and say why, change by change.

Each change is judged by its kind here; material-looking edits inside a passage go through the
rules in `policy_versions.triggers`, which read the signals of `policy_versions.signals`.
"""

from __future__ import annotations

import os

from policy_versions.changes import DiffResult
from policy_versions.classification import (
    RANK,
    SEPARATOR,
    VERDICTS,
    Classification,
    Reason,
    quote,
    reason,
)
from policy_versions.diff import compute
from policy_versions.names import (
    describes_known_party,
    name_sequence,
    preceding,
    proper_nouns,
    renamed_term,
)
from policy_versions.quantities import numbers, only_numbers
from policy_versions.reorder import is_reordering
from policy_versions.signals import (
    ADDRESS,
    Context,
    contact_kind,
    list_item_edit,
    rewritten,
    section_cues,
    single_swap,
    term_topics,
)
from policy_versions.triggers import triggers
from policy_versions.typos import is_typo
from policy_versions.vocabulary import (
    BUILTIN_TOPICS,
    Topic,
    Vocabulary,
    load_vocabulary,
    stem,
)

__all__ = [
    "BUILTIN_TOPICS",
    "SEPARATOR",
    "VERDICTS",
    "Classification",
    "Reason",
    "Topic",
    "Vocabulary",
    "classify",
    "load_vocabulary",
    "stem",
]


_NOISE_TEXT = {
    "whitespace": "Only whitespace or line breaks changed.",
    "formatting": "Only Markdown formatting changed; the words are the same.",
    "quotes": "Only the style of quotation marks or apostrophes changed.",
    "renumbering": "Only the numbering of a heading, list item or cross-reference changed.",
    "date_line": "Only the 'last updated' or effective date line changed.",
}


def _judge_section(ctx: Context) -> list[Reason]:
    ch = ctx.change
    added = ch.kind == "added"
    text = ch.inserted if added else ch.deleted
    # The heading line is part of the text; without a body beyond it the section says nothing.
    has_body = "\n" in text.strip()
    body_text = ctx.inserted if added else ctx.deleted
    topics = ctx.section_topics | term_topics(body_text, ctx.vocab)
    verb = "added" if added else "removed"
    title = ch.section[-1] if ch.section else "the preamble"
    if has_body and len(body_text.content()) >= 3 and ctx.is_material_topic(topics):
        topic = ctx.best_topic(ctx.section_topics, topics)
        label = ctx.vocab.topic(topic).label if ctx.vocab.topic(topic) else topic  # type: ignore[union-attr]
        return [
            reason(
                ctx,
                f"section_{verb}",
                "material",
                topic,
                f"The section '{title}' about {label} was {verb}.",
            )
        ]
    return [
        reason(
            ctx,
            f"section_{verb}",
            "minor",
            ctx.best_topic(),
            f"The section '{title}' was {verb}, with no substantive text about a material topic.",
        )
    ]


def _judge_move(ctx: Context) -> list[Reason]:
    ch = ctx.change
    if not ch.inserted and not ch.deleted:
        return [
            reason(
                ctx,
                "section_moved",
                "minor",
                ctx.best_topic(),
                "The section moved to a different position in the document.",
            )
        ]
    before, after = ctx.old_section_topics, ctx.section_topics
    crosses = before != after and (ctx.is_material_topic(before) or ctx.is_material_topic(after))
    if not crosses and ch.old_section is not None and ctx.is_material_topic(after):
        # Headings of one topic can still govern different things ("Analytics cookies" and
        # "Advertising cookies"): when each heading names something the other does not, the
        # move takes the promise from one section and puts it under another. "Cookies" to
        # "Analytics cookies" only narrows the heading, and is judged as before.
        old_cues = section_cues(ch.old_section, ctx.vocab)[1]
        new_cues = section_cues(ch.section, ctx.vocab)[1]
        crosses = bool(old_cues - new_cues and new_cues - old_cues)
    origin = ch.old_section[-1] if ch.old_section else "the preamble"
    target = ch.section[-1] if ch.section else "the preamble"
    if crosses:
        return [
            reason(
                ctx,
                "moved_between_sections",
                "material",
                ctx.best_topic(after, before),
                f"Text moved from '{origin}' to '{target}', which changes what it governs.",
            )
        ]
    where = "within the section" if origin == target else f"from '{origin}' to '{target}'"
    return [
        reason(
            ctx,
            "moved",
            "minor",
            ctx.best_topic(),
            f"Text was reordered {where} without changing its subject.",
        )
    ]


def _judge_modified(ctx: Context) -> list[Reason]:
    ch = ctx.change
    was, now = quote(ch.deleted), quote(ch.inserted)
    contact = contact_kind(ctx)
    if contact == "link":
        return [
            reason(
                ctx,
                "link_changed",
                "minor",
                ctx.best_topic(ctx.section_topics),
                f"A link changed from '{was}' to '{now}'.",
            )
        ]
    if contact:
        return [_contact_changed(ctx, was, now)]
    if is_typo(ctx):
        return [
            reason(
                ctx,
                "typo",
                "cosmetic",
                ctx.best_topic(ctx.section_topics),
                f"A spelling or capitalisation fix: '{was}' became '{now}'.",
            )
        ]
    if renamed_term(ctx):
        return [
            reason(
                ctx,
                "term_renamed",
                "minor",
                ctx.best_topic(ctx.section_topics),
                f"A defined term was renamed wherever it is used, its definition unchanged: "
                f"'{was}' became '{now}'.",
            )
        ]
    # Names count as changed when the edit changes them and the sentence no longer names the same
    # parties in the same order: a name only moved within its sentence names no one new.
    names_changed = proper_nouns(ch.deleted, ctx, preceding(ctx.old_md, ch.old_start)) != (
        proper_nouns(ch.inserted, ctx, preceding(ctx.new_md, ch.new_start))
    ) and name_sequence(ctx.old_sentence, ctx, "") != name_sequence(ctx.new_sentence, ctx, "")
    if (
        ctx.section_topics == {"contact"}
        and not ctx.changed_topics
        and (
            ADDRESS.search(ch.deleted + ch.inserted)
            or names_changed
            or numbers(ch.deleted, ctx) != numbers(ch.inserted, ctx)
        )
    ):
        return [_contact_changed(ctx, was, now)]
    found = triggers(ctx)
    if found:
        return found
    topics = ctx.section_topics | ctx.old_section_topics | ctx.sentence_topics
    weighty = [t for t in ctx.vocab.topics if t.name in topics and t.names_material]
    if names_changed and weighty:
        # A different court, country or company under these topics changes the substance.
        return [
            reason(
                ctx,
                "named_party_changed",
                "material",
                weighty[0].name,
                f"A named party or place changed where the policy sets "
                f"{weighty[0].label}: '{was}' became '{now}'.",
            )
        ]
    if names_changed and ctx.material_context and list_item_edit(ch.deleted, ch.inserted):
        # "Illinois, Texas or Portland" -> "Illinois or Portland": a place, company or standard
        # added to or taken from a list in a material clause changes where or to whom it applies.
        return [
            reason(
                ctx,
                "named_item_changed",
                "material",
                ctx.best_topic(),
                f"A named item was {'added to' if ch.inserted.strip() else 'removed from'} a "
                f"list in a clause about a material topic: '{quote(ch.inserted or ch.deleted)}'.",
            )
        ]
    if names_changed:
        return [
            reason(
                ctx,
                "names",
                "minor",
                ctx.best_topic(ctx.section_topics),
                f"A name changed: '{was}' became '{now}'.",
            )
        ]
    same_number = numbers(ch.deleted, ctx)
    if (
        same_number
        and same_number == numbers(ch.inserted, ctx)
        and only_numbers(ch.deleted, ctx)
        and only_numbers(ch.inserted, ctx)
    ):
        # "three" -> "3", "forty-eight" -> "48": the notation changed, not the number.
        return [
            reason(
                ctx,
                "number_notation",
                "minor",
                ctx.best_topic(ctx.section_topics),
                f"A number was written differently with the same value: '{was}' became '{now}'.",
            )
        ]
    contact_words = "contact" in ctx.sentence_topics or "contact" in ctx.changed_topics
    # A one-word swap matters when the rest of the sentence stands ("country" -> "city"); in a
    # sentence rewritten as a whole it is paraphrase, judged by the triggers above.
    swap = single_swap(ctx) and not rewritten(ctx) and not describes_known_party(ctx)
    if swap and ctx.is_material_topic(ctx.section_topics) and not contact_words:
        return [
            reason(
                ctx,
                "term_replaced",
                "material",
                ctx.best_topic(ctx.section_topics),
                f"One substantive word was swapped for another ('{was}' became '{now}') "
                "in a clause about a material topic.",
            )
        ]
    return [
        reason(
            ctx,
            "wording",
            "minor",
            ctx.best_topic(ctx.section_topics),
            f"Rewording with the same obligations: '{was}' became '{now}'.",
        )
    ]


def _judge(ctx: Context) -> list[Reason]:
    ch = ctx.change
    if ch.noise is not None:
        return [reason(ctx, ch.noise, "cosmetic", ctx.best_topic(), _NOISE_TEXT[ch.noise])]
    if ch.kind in ("added", "removed"):
        return _judge_section(ctx)
    if ch.kind == "moved":
        return _judge_move(ctx)
    if is_reordering(ch, ctx.old_md, ctx.new_md):
        return [
            reason(
                ctx,
                "reordered",
                "minor",
                ctx.best_topic(ctx.section_topics),
                "Items of a list, table or paragraph were put in a different order; every "
                "item is unchanged and none was added or removed.",
            )
        ]
    if ch.kind == "renamed":
        if is_typo(ctx):
            return [
                reason(
                    ctx,
                    "typo",
                    "cosmetic",
                    ctx.best_topic(),
                    f"A spelling fix in the heading '{quote(ch.inserted)}'.",
                )
            ]
        return [
            reason(
                ctx,
                "heading_renamed",
                "minor",
                ctx.best_topic(),
                f"The heading '{quote(ch.deleted)}' was renamed '{quote(ch.inserted)}'.",
            )
        ]
    return _judge_modified(ctx)


def classify(
    old_markdown: str,
    new_markdown: str,
    *,
    diff: DiffResult | None = None,
    topics_file: str | os.PathLike[str] | None = None,
) -> Classification:
    """Classify the change from `old_markdown` to `new_markdown`; pass `diff` to reuse one.

    The verdict is the most serious level any single change implies; every change gets a reason,
    cosmetic ones included, so an admin can see why nothing was flagged.
    """
    vocab = load_vocabulary(topics_file)
    result = diff if diff is not None else compute(old_markdown, new_markdown)
    reasons: list[Reason] = []
    approximate = result.approximate
    for ch in result.changes:
        ctx = Context(ch, vocab, old_markdown, new_markdown)
        reasons.extend(_judge(ctx))
        approximate = approximate or ctx.truncated
    verdict = max((r.verdict for r in reasons), key=RANK.__getitem__, default="cosmetic")
    reasons.sort(key=lambda r: -RANK[r.verdict])
    return Classification(verdict, tuple(reasons), approximate)


def _contact_changed(ctx, was: str, now: str):
    message = f"Contact details changed from '{was}' to '{now}'."
    return reason(ctx, "contact_details", "minor", "contact", message)
