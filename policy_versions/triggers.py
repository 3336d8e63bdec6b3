"""Rules for material-looking edits: negations, numbers, modals, recipients, rights, topics."""

from __future__ import annotations

from policy_versions.classification import Reason, quote, reason
from policy_versions.coverage import coverage_changes, exception_edited, ground_added
from policy_versions.names import describes_known_party, names_in, preceding, proper_nouns
from policy_versions.quantities import number_sequence, numbers
from policy_versions.signals import (
    Context,
    Text,
    antonym_flip,
    list_item_edit,
    modal_classes,
    negated_words,
    negations,
    rewritten,
    term_topics,
)


def _negation_reworded(ctx: Context) -> bool:
    """A sentence rewritten as a whole whose new negation applies to none of its old words.

    A flip needs the same predicate on both sides, once negated and once not ("we sell" /
    "we do not sell"); "after that" rewritten as "if they have not done so by then" negates
    a predicate that was never there, so the rewrite is judged by its other signals.
    """
    if not rewritten(ctx) or min(len(ctx.deleted.content()), len(ctx.inserted.content())) < 3:
        return False
    more, other = (
        (ctx.new_sent, ctx.old_sent)
        if negations(ctx.new_sent, ctx) > negations(ctx.old_sent, ctx)
        else (ctx.old_sent, ctx.new_sent)
    )
    return not negated_words(more, ctx) & set(other.stems)


def _limits_differ(old: Text, new: Text, ctx: Context) -> bool:
    """Whether a limiting word was added or dropped. "solely responsible" -> "sole
    responsibility" keeps the limit: the adjective of a limiting adverb limits alike."""
    limiters = ctx.lex("limiters")
    limit_old, limit_new = old.find(limiters), new.find(limiters)
    lost = {w for w in limit_old - limit_new if _adjective(w) not in new.words}
    gained = {w for w in limit_new - limit_old if _adjective(w) not in old.words}
    return bool(lost or gained)


def _adjective(limiter: str) -> str | None:
    """ "solely" -> "sole", "strictly" -> "strict"; None for "only" and phrases."""
    if limiter.endswith("ly") and len(limiter) >= 6 and " " not in limiter:
        return limiter[:-2]
    return None


def triggers(ctx: Context) -> list[Reason]:
    """Material-looking edits: flipped negations, numbers, modals, recipients, rights, topics."""
    ch = ctx.change
    out: list[Reason] = []
    material_ctx = ctx.material_context

    # Negation: count in the changed words, then confirm on the whole sentence so that
    # "do not" -> "never" (one negation each) is not a flip.
    if (
        negations(ctx.deleted, ctx) != negations(ctx.inserted, ctx)
        and negations(ctx.old_sent, ctx) != negations(ctx.new_sent, ctx)
        and not _negation_reworded(ctx)
    ):
        contact_only = ctx.section_topics == {"contact"} and not ctx.changed_topics
        out.append(
            reason(
                ctx,
                "negation_flip",
                "minor" if contact_only else "material",
                ctx.best_topic(),
                f"A negation was added or removed ('{quote(ctx.old_sentence)}' became "
                f"'{quote(ctx.new_sentence)}'), which reverses the statement.",
            )
        )

    flipped = antonym_flip(ctx)
    if flipped:
        contact_only = ctx.section_topics == {"contact"} and not ctx.changed_topics
        out.append(
            reason(
                ctx,
                "polarity_flip",
                "minor" if contact_only else "material",
                ctx.best_topic(),
                f"'{flipped[0]}' became its opposite '{flipped[1]}', which reverses the statement.",
            )
        )

    old_numbers, new_numbers = numbers(ch.deleted, ctx), numbers(ch.inserted, ctx)
    # Confirmed on the whole sentence, in reading order: a clause added next to an unchanged
    # "72 hours" changes no period, while two periods trading places does.
    if old_numbers != new_numbers and number_sequence(ctx.old_sentence, ctx) != number_sequence(
        ctx.new_sentence, ctx
    ):
        window_old = ctx.old_md[max(0, ch.old_start - 24) : ch.old_start + len(ch.deleted) + 40]
        window_new = ctx.new_md[max(0, ch.new_start - 24) : ch.new_start + len(ch.inserted) + 40]
        windows = Text.of(window_old + " \n " + window_new, ctx.vocab)
        if windows.find(ctx.lex("period_units")):
            kind, verdict = "period_changed", "material"
            what = "A time period changed"
        elif windows.find(ctx.lex("amount_markers")):
            kind, verdict = "number_changed", "material"
            what = "An amount, price or percentage changed"
        else:
            kind, verdict = "number_changed", "material" if material_ctx else "minor"
            what = "A number changed"
        out.append(
            reason(
                ctx,
                kind,
                verdict,
                ctx.best_topic(),
                f"{what}: '{quote(ch.deleted)}' became '{quote(ch.inserted)}'.",
            )
        )

    # "for a whole day" -> "for a whole week": the unit of a period replaced, no digit in sight.
    units = ctx.lex("period_units")
    old_units, new_units = ctx.deleted.find(units), ctx.inserted.find(units)
    if (
        old_units
        and new_units
        and old_units != new_units
        and material_ctx
        and ctx.old_sent.find(units) != ctx.new_sent.find(units)
        and not any(r.kind == "period_changed" for r in out)
    ):
        out.append(
            reason(
                ctx,
                "period_changed",
                "material",
                ctx.best_topic(),
                f"The unit of a time period changed: '{quote(ch.deleted)}' became "
                f"'{quote(ch.inserted)}'.",
            )
        )

    out.extend(coverage_changes(ctx, out))

    old_modals, new_modals = modal_classes(ctx.deleted, ctx), modal_classes(ctx.inserted, ctx)
    # A modal on one side only counts when it is (nearly) the whole edit: "we share" -> "we may
    # share"; a rewritten sentence that happens to gain "you can" is not a weaker promise.
    one_sided = not old_modals or not new_modals
    small_edit = len(ctx.deleted.content()) + len(ctx.inserted.content()) <= 3
    if old_modals != new_modals and (old_modals or new_modals) and (small_edit or not one_sided):
        stronger = (
            "obligatory" in new_modals - old_modals or "permissive" in old_modals - new_modals
        )
        kind = "modal_strengthened" if stronger else "modal_weakened"
        how = (
            "a permission became a commitment"
            if stronger
            else "a commitment became a mere possibility"
        )
        out.append(
            reason(
                ctx,
                kind,
                "material" if material_ctx else "minor",
                ctx.best_topic(),
                f"'{quote(ch.deleted)}' became '{quote(ch.inserted)}': {how}.",
            )
        )

    # Confirmed on the whole sentence: "only" moved to another spot in a reworded sentence
    # still limits it.
    if (
        material_ctx
        and _limits_differ(ctx.deleted, ctx.inserted, ctx)
        and _limits_differ(ctx.old_sent, ctx.new_sent, ctx)
    ):
        out.append(
            reason(
                ctx,
                "qualifier_changed",
                "material",
                ctx.best_topic(),
                f"A limiting word changed ('{quote(ch.deleted)}' became '{quote(ch.inserted)}'), "
                "which widens or narrows the statement.",
            )
        )

    # After the number, unit and limiting-word rules: when one of them explains the edit, the
    # exception needs no second reason.
    if material_ctx and not out and exception_edited(ctx):
        out.append(
            reason(
                ctx,
                "exception_changed",
                "material",
                ctx.best_topic(),
                f"The condition of an exception changed ('{quote(ch.deleted)}' became "
                f"'{quote(ch.inserted)}'), which widens or narrows when the promise holds.",
            )
        )

    # ", or when they ask for it": a new ground for passing data on, with no "unless" in sight.
    ground = None if out else ground_added(ctx)
    if ground:
        what = ch.inserted if ground == "added" else ch.deleted
        out.append(
            reason(
                ctx,
                f"condition_ground_{ground}",
                "material",
                ctx.best_topic({"data_sharing"}),
                f"A ground was {ground} to the condition under which data is passed on "
                f"('{quote(what)}'), which widens or narrows when it happens.",
            )
        )

    if {"policy_changes"} & (ctx.section_topics | ctx.old_section_topics | ctx.sentence_topics):
        channels = ctx.lex("notice_channels")
        old_ch, new_ch = ctx.old_sent.find(channels), ctx.new_sent.find(channels)
        if old_ch != new_ch and (ctx.deleted.find(channels) or ctx.inserted.find(channels)):
            out.append(
                reason(
                    ctx,
                    "notice_channel_changed",
                    "material",
                    "policy_changes",
                    f"How users are told about changes is different: "
                    f"'{quote(ch.deleted)}' became '{quote(ch.inserted)}'.",
                )
            )

    sharing = (
        {"data_sharing", "ai_ml", "transfers"} & (ctx.section_topics | ctx.old_section_topics)
        or ctx.old_sent.find(ctx.lex("sharing_cues"))
        or ctx.new_sent.find(ctx.lex("sharing_cues"))
    )
    if sharing:
        added = proper_nouns(ch.inserted, ctx, preceding(ctx.new_md, ch.new_start))
        added -= names_in(ctx.old_md)
        removed = proper_nouns(ch.deleted, ctx, preceding(ctx.old_md, ch.old_start))
        removed -= names_in(ctx.new_md)
        topic = ctx.best_topic({"data_sharing"} & (ctx.section_topics | ctx.sentence_topics))
        if added:
            out.append(
                reason(
                    ctx,
                    "new_recipient",
                    "material",
                    topic,
                    f"A newly named party ({', '.join(sorted(added))}) appears where the "
                    "policy says who receives data.",
                )
            )
        if removed:
            out.append(
                reason(
                    ctx,
                    "recipient_removed",
                    "material",
                    topic,
                    f"A named party ({', '.join(sorted(removed))}) no longer appears where "
                    "the policy says who receives data.",
                )
            )

    rights_ctx = (
        "user_rights" in ctx.section_topics
        or ctx.old_sent.find(ctx.lex("rights_context"))
        or ctx.new_sent.find(ctx.lex("rights_context"))
    )
    if rights_ctx:
        rights = ctx.lex("rights_terms")
        lost = ctx.deleted.find(rights) - ctx.new_sent.find(rights)
        gained = ctx.inserted.find(rights) - ctx.old_sent.find(rights)
        # "opt out by emailing us" -> "opt out by a signed letter": the right stands, but the
        # only way to use it changed, as a notice channel does under "changes to this policy".
        channels = ctx.lex("notice_channels")
        old_ch, new_ch = ctx.old_sent.find(channels), ctx.new_sent.find(channels)
        if (
            old_ch != new_ch
            and ctx.section_topics != {"contact"}
            and (ctx.deleted.find(channels) or ctx.inserted.find(channels))
            and ctx.old_sent.find(rights) & ctx.new_sent.find(rights)
            and not any(r.kind == "notice_channel_changed" for r in out)
        ):
            out.append(
                reason(
                    ctx,
                    "right_channel_changed",
                    "material",
                    ctx.best_topic({"user_rights"} & ctx.section_topics),
                    f"How users exercise a right is different: '{quote(ch.deleted)}' became "
                    f"'{quote(ch.inserted)}'.",
                )
            )
        if lost:
            out.append(
                reason(
                    ctx,
                    "right_removed",
                    "material",
                    "user_rights",
                    f"A user right ({', '.join(sorted(lost))}) was removed or narrowed.",
                )
            )
        if gained:
            out.append(
                reason(
                    ctx,
                    "right_added",
                    "material",
                    "user_rights",
                    f"A user right ({', '.join(sorted(gained))}) was added.",
                )
            )

    # Recipient wording in the description of a party already named describes it, adds no one.
    described = describes_known_party(ctx)
    for topic in ctx.vocab.topics:
        if not topic.material or not topic.terms:
            continue
        if described and topic.name == "data_sharing":
            continue
        name, v = topic.name, ctx.vocab
        gained = ctx.inserted.find_all(v)[name] - ctx.old_sent.find_all(v)[name]
        lost = ctx.deleted.find_all(v)[name] - ctx.new_sent.find_all(v)[name]
        if gained or lost:
            # Cut from one sentence of the paragraph and written into another: moved, not lost.
            cues = {c.text: c for c in topic.terms}
            gained = {t for t in gained if not ctx.moved_in_paragraph(cues[t], lost=False)}
            lost = {t for t in lost if not ctx.moved_in_paragraph(cues[t], lost=True)}
        if gained:
            out.append(
                reason(
                    ctx,
                    "topic_text_added",
                    "material",
                    topic.name,
                    f"New wording about {topic.label}: {', '.join(sorted(gained))}.",
                )
            )
        if lost:
            out.append(
                reason(
                    ctx,
                    "topic_text_removed",
                    "material",
                    topic.name,
                    f"Wording about {topic.label} was removed: {', '.join(sorted(lost))}.",
                )
            )

    referential = ctx.inserted.find(ctx.lex("referential")) or ctx.deleted.find(
        ctx.lex("referential")
    )
    rule = ctx.lex("prohibition_cues")
    contact = "contact" in ctx.sentence_topics | ctx.changed_topics
    if (
        not referential
        and not contact
        and (ctx.old_sent.find(rule) or ctx.new_sent.find(rule))
        and list_item_edit(ch.deleted, ch.inserted)
    ):
        added = ctx.inserted.content() - ctx.old_sent.content()
        removed = ctx.deleted.content() - ctx.new_sent.content()
        if (added and not ctx.deleted.content()) or (removed and not ctx.inserted.content()):
            verb = "added to" if added else "removed from"
            out.append(
                reason(
                    ctx,
                    "usage_rule_changed",
                    "material",
                    ctx.best_topic({"scope"}),
                    f"'{quote(ch.inserted if added else ch.deleted)}' was {verb} a rule on "
                    "what users must not or may only do.",
                )
            )
    if not out and not referential and not described:
        new_content = ctx.inserted.content() - ctx.old_sent.content()
        old_content = ctx.deleted.content() - ctx.new_sent.content()
        if (len(new_content) >= 3 or len(old_content) >= 3) and ctx.paragraphs is not None:
            # Words the paragraph holds as often as before were moved within it, not added or cut.
            old_para, new_para = (p.content_counts() for p in ctx.paragraphs)
            new_content = {w for w in new_content if new_para[w] > old_para[w]}
            old_content = {w for w in old_content if old_para[w] > new_para[w]}
        section_material = ctx.is_material_topic(ctx.section_topics | ctx.old_section_topics)
        if (
            len(ctx.deleted.content()) <= 1
            and len(new_content) >= 3
            and (section_material or ctx.is_material_topic(term_topics(ctx.inserted, ctx.vocab)))
        ):
            out.append(
                reason(
                    ctx,
                    "topic_text_added",
                    "material",
                    ctx.best_topic(),
                    f"New substantive text was added: '{quote(ch.inserted)}'.",
                )
            )
        elif (
            len(ctx.inserted.content()) <= 1
            and len(old_content) >= 3
            and (section_material or ctx.is_material_topic(term_topics(ctx.deleted, ctx.vocab)))
        ):
            out.append(
                reason(
                    ctx,
                    "topic_text_removed",
                    "material",
                    ctx.best_topic(),
                    f"Substantive text was removed: '{quote(ch.deleted)}'.",
                )
            )
    return out
