"""What a clause covers: how often it applies, what it carves out, how much of an amount it
grants, and the condition of its exceptions."""

from __future__ import annotations

import re

from policy_versions.classification import Reason, quote, reason
from policy_versions.quantities import FREQUENCY_TOKENS, frequencies
from policy_versions.signals import Context, Text, rewritten

# Words that grant the same amount: "the full price", "the entire price", "the whole price".
_SAME_AMOUNT = {"entire": "full", "whole": "full"}


def qualifiers(text: Text, ctx: Context, key: str) -> set[str]:
    """The cues of lexicon `key` in a text; "less" in "less than" or "more or less" compares and
    carves nothing out."""
    found = ctx.vocab.lexicon.get(key, ())
    hits = text.find(found)
    if "less" in hits:
        words = text.words
        if all(
            words[i + 1 : i + 2] == ["than"] or words[max(0, i - 2) : i] == ["more", "or"]
            for i, w in enumerate(words)
            if w == "less"
        ):
            hits.discard("less")
    return {_SAME_AMOUNT.get(h, h) for h in hits}


def exception_edited(ctx: Context) -> bool:
    """New or lost words inside the condition of an exception ("unless the closure is needed to
    prevent fraud" -> "unless we decide the closure is needed to protect the Marketplace").

    The exception word is kept on both sides (a new or dropped "unless" is a limiting word), the
    edit comes after it in its sentence, and the sentence was not rewritten as a whole.
    """
    ch = ctx.change
    openers = ctx.lex("exception_openers")
    if not (ctx.old_sent.find(openers) and ctx.new_sent.find(openers)) or rewritten(ctx):
        return False
    new_words = ctx.inserted.content() - ctx.old_sent.content()
    lost_words = ctx.deleted.content() - ctx.new_sent.content()
    if not new_words and not lost_words:
        return False
    old_end = ch.old_start + len(ch.deleted)
    size = len(ctx.old_sentence)
    start = ctx.old_md.find(ctx.old_sentence, max(0, old_end - size), ch.old_start + size)
    if start < 0 or start > ch.old_start:
        return False
    return bool(Text.of(ctx.old_md[start : ch.old_start], ctx.vocab).find(openers))


# ", or when they ask for it", "or if we believe": a further ground joined to a condition.
_ALTERNATIVE_GROUND = re.compile(
    r"^\s*[,;]?\s*(?:or|and/or)\s+(?:when|whenever|where|if|in case|in the event|once|upon)\b",
    re.IGNORECASE,
)


def ground_added(ctx: Context) -> str | None:
    """ "added" or "removed" when a ground is joined to (or cut from) the condition of a clause
    about passing data on: "when a court orders it" -> "when a court orders it, or when the
    police ask". No "unless" or "except" needed: the clause now applies in one more case.

    The edit is the whole alternative (an inserted or deleted fragment opening with "or when",
    "or if" ...), it brings at least two content words the sentence did not hold, and the
    sentence already set a condition before it ("when", "if", "only" ...).
    """
    ch = ctx.change
    if ctx.deleted.content() and ctx.inserted.content():
        return None
    added = bool(ctx.inserted.content())
    fragment, text, other = (
        (ch.inserted, ctx.inserted, ctx.old_sent)
        if added
        else (ch.deleted, ctx.deleted, ctx.new_sent)
    )
    if not _ALTERNATIVE_GROUND.search(fragment) or len(text.content() - other.content()) < 2:
        return None
    sharing = "data_sharing" in (
        ctx.section_topics | ctx.old_section_topics | ctx.sentence_topics
    ) or ctx.old_sent.find(ctx.lex("sharing_cues"))
    if not sharing:
        return None
    md, start, sentence = (
        (ctx.new_md, ch.new_start, ctx.new_sentence)
        if added
        else (ctx.old_md, ch.old_start, ctx.old_sentence)
    )
    begin = md.find(sentence, max(0, start - len(sentence))) if sentence else -1
    if begin < 0 or begin > start:
        return None
    before = Text.of(md[begin:start], ctx.vocab)
    return ("added" if added else "removed") if before.find(ctx.lex("condition_openers")) else None


def coverage_changes(ctx: Context, found: list[Reason]) -> list[Reason]:
    """A changed frequency, exclusion or amount qualifier; `found` holds the reasons so far."""
    ch = ctx.change
    out: list[Reason] = []
    # "every Tuesday" -> "every other Tuesday", "monthly" -> "quarterly": how often, not how long.
    edited = set(ctx.deleted.words) | set(ctx.inserted.words)
    if (
        edited & FREQUENCY_TOKENS
        and not any(r.kind == "period_changed" for r in found)
        and frequencies(ctx.old_sentence, ctx) != frequencies(ctx.new_sentence, ctx)
    ):
        out.append(
            reason(
                ctx,
                "period_changed",
                "material",
                ctx.best_topic(),
                f"How often something happens changed: '{quote(ch.deleted)}' became "
                f"'{quote(ch.inserted)}'.",
            )
        )

    # "excluding taxes" -> "and taxes", "including screenshots" -> "other than screenshots":
    # what the clause covers changed. Confirmed on the sentence, like the limiting words below.
    for key, kind, what, applies in (
        (
            "exclusions",
            "exclusion_changed",
            "What the clause includes or leaves out",
            ctx.material_context,
        ),
        (
            "amount_qualifiers",
            "amount_qualifier_changed",
            "How much of an amount applies",
            "fees_billing" in ctx.section_topics | ctx.old_section_topics | ctx.sentence_topics,
        ),
    ):
        if (
            applies
            and qualifiers(ctx.deleted, ctx, key) != qualifiers(ctx.inserted, ctx, key)
            and qualifiers(ctx.old_sent, ctx, key) != qualifiers(ctx.new_sent, ctx, key)
        ):
            out.append(
                reason(
                    ctx,
                    kind,
                    "material",
                    ctx.best_topic(),
                    f"{what} changed: '{quote(ch.deleted)}' became '{quote(ch.inserted)}'.",
                )
            )
    return out
