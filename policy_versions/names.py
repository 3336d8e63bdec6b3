"""Names in a policy: which capitalised words name a party, and where a known party is described.

A capital that grammar asks for (a sentence, list item or heading that opens with the word) is no
evidence of a name; a parenthesis right after a party's unchanged name describes that party.
"""

from __future__ import annotations

import re
from functools import lru_cache

from policy_versions.signals import STOP_WORDS, Context
from policy_versions.vocabulary import stem, strip_legal_forms

_PROPER = re.compile(r"\b(?:[A-Z][\w&'’.-]*\w|[a-z]+[A-Z]\w*)")
_POSSESSIVE = re.compile(r"['’]s$")

# Where grammar alone asks for a capital: the start of the text or of a sentence, or just after a
# list marker, a clause number ("5.5"), a heading's hashes, a table's bar or an opening quote.
_OPENING = re.compile(
    r"(?:\A|[.!?:;][\"'”’)]*\s+|\|[ \t]*|\n[ \t]*(?:[-*+•>#]+[ \t]*)?)"
    r"(?:\d+(?:\.\d+)*[.)]?[ \t]+)?[\"'“‘(\[]*\Z"
)


def _at_opening(before: str) -> bool:
    return bool(_OPENING.search(before if len(before) <= 40 else "x" + before[-40:]))


@lru_cache(maxsize=8)
def _usage(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Words a document writes in lower case, and words it capitalises where grammar does not."""
    text = strip_legal_forms(text)
    lower = frozenset(stem(w) for w in re.findall(r"\b[a-z][\w'’-]*", text))
    chosen = frozenset(
        m.group(0).rstrip(".'’-")
        for m in _PROPER.finditer(text)
        if not _at_opening(text[max(0, m.start() - 40) : m.start()])
    )
    return lower, chosen


def _grammatical_capital(word: str, ctx: Context) -> bool:
    """A capital that only opens a sentence or list item is no evidence of a name.

    Such a word is read as an ordinary word when it is a function word, or when the documents
    write it (in any inflection) in lower case and never capitalise it mid-sentence: "Before
    relying on ..." names no one; "Experian receives ..." and "... with Block" do.
    """
    key = word.lower()
    if key in STOP_WORDS:
        return True
    old_lower, old_chosen = _usage(ctx.old_md)
    new_lower, new_chosen = _usage(ctx.new_md)
    if word in old_chosen or word in new_chosen:
        return False
    return stem(key) in old_lower or stem(key) in new_lower


def proper_nouns(text: str, ctx: Context, before: str | None = None) -> set[str]:
    return set(name_sequence(text, ctx, before))


def name_sequence(text: str, ctx: Context, before: str | None = None) -> list[str]:
    """Capitalised words of ``text`` that read as names, in reading order.

    ``before`` is the document text just before ``text`` ("" at the document's start); without
    it, the start of ``text`` is not taken for the start of a sentence.
    """
    common = ctx.vocab.words.get("common_capitalized", frozenset())
    text = strip_legal_forms(text)
    out = []
    for m in _PROPER.finditer(text):
        # "Customer's" is the Customer: a possessive names no one new.
        word = _POSSESSIVE.sub("", m.group(0).rstrip(".'’-"))
        if word in common or word.upper() == word and len(word) <= 2:
            continue
        i = m.start()
        if i >= 40:
            lead: str | None = text[i - 40 : i]
        else:
            lead = None if before is None else before + text[:i]
        if lead is None and i > 0:
            lead = "x " + text[:i]
        if lead is not None and _at_opening(lead) and _grammatical_capital(word, ctx):
            continue
        out.append(word)
    return out


def _parenthesis(doc: str, start: int, end: int) -> tuple[int, int] | None:
    """The bounds of the one-line parenthesis that holds ``doc[start:end]``, if any."""
    if start < 0:
        return None
    opening = doc.rfind("(", 0, start)
    closing = doc.find(")", end)
    if opening < 0 or closing < 0:
        return None
    if any(c in doc[opening + 1 : start] for c in "()\n") or any(
        c in doc[end:closing] for c in "()\n"
    ):
        return None
    return opening, closing


def _table_cell(doc: str, start: int, end: int) -> tuple[int, int] | None:
    """The bounds of the table cell, past a row's first one, that holds ``doc[start:end]``."""
    if start < 0:
        return None
    line_start = doc.rfind("\n", 0, start) + 1
    line_end = doc.find("\n", end)
    line_end = len(doc) if line_end < 0 else line_end
    if not doc[line_start:line_end].lstrip().startswith("|") or "|" in doc[start:end]:
        return None
    opening = doc.rfind("|", line_start, start)
    closing = doc.find("|", end, line_end)
    first = doc.find("|", line_start)
    if closing < 0 or opening <= first:
        return None
    return opening, closing


def describes_known_party(ctx: Context) -> bool:
    """The edit only rewords the description of a party named just before it.

    "Hetzner Online GmbH (hosting, Germany)" -> "(cloud hosting provider, Germany)": the line up
    to the parenthesis is unchanged and names the party, so the words describe a known recipient
    rather than add one. A table row works the same way: "| Hetzner Online GmbH | Hosting |" ->
    "| Hetzner Online GmbH | Cloud hosting |", the first cell naming the party. Names, places and
    other topics inside the description still count.
    """
    ch = ctx.change
    old_span = (ch.old_start, ch.old_start + len(ch.deleted))
    new_span = (ch.new_start, ch.new_start + len(ch.inserted))
    for find, table in ((_parenthesis, False), (_table_cell, True)):
        old = find(ctx.old_md, *old_span)
        new = find(ctx.new_md, *new_span)
        if old is None or new is None:
            continue
        owner = ctx.old_md[ctx.old_md.rfind("\n", 0, old[0]) + 1 : old[0]]
        if owner != ctx.new_md[ctx.new_md.rfind("\n", 0, new[0]) + 1 : new[0]]:
            return False
        if table:
            # The party is the row's first cell: "| Hetzner Online GmbH | Hosting |".
            owner = owner.strip().strip("|").split("|", 1)[0]
        names = name_sequence(owner, ctx, "")
        return bool(names) and strip_legal_forms(owner).strip(" ,|").endswith(names[-1])
    return False


def preceding(doc: str, start: int) -> str | None:
    """The few characters before a change, to tell whether it opens a sentence."""
    return doc[max(0, start - 40) : start] if start >= 0 else None


@lru_cache(maxsize=8)
def names_in(text: str) -> frozenset[str]:
    """Every capitalised word of a document, to tell a newly named party from a known one."""
    return frozenset(
        _POSSESSIVE.sub("", m.group(0).rstrip(".'’-"))
        for m in _PROPER.finditer(strip_legal_forms(text))
    )


# A defined term: a capitalised phrase in quotes, defined in place ('"Payout Account" means ...',
# '**"Order Total"**: ...') or named in a parenthesis ('(the "Service")').
_DEFINITION = re.compile(
    r"[\"“]([A-Z][\w'’-]*(?:[ \t]+[A-Za-z][\w'’-]*){0,5})[\"”][*_]*"
    r"(?=[ \t]*(?:means\b|refers to\b|shall mean\b|has the meaning\b|is defined as\b|:)|[ \t]*\))"
)


@lru_cache(maxsize=8)
def _definitions(text: str) -> dict[str, str]:
    """Each defined term of a document, with the start of its definition."""
    return {m.group(1): text[m.end() : m.end() + 80] for m in _DEFINITION.finditer(text)}


def _uses(term: str) -> re.Pattern[str]:
    """Uses of a term, singular or plural: "Listed Drivers" is also used as "a Listed Driver"."""
    if term.endswith("s") and not term.endswith("ss"):
        term = term[:-1]
    return re.compile(rf"(?<!\w){re.escape(term)}(?:s|es)?(?!\w)")


@lru_cache(maxsize=8)
def term_renames(old: str, new: str) -> tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]:
    """Defined terms renamed consistently: "Payout Account" -> "Payout Bank Account".

    The old term is defined in the old text and the new one in the new text by the same words,
    the old term is used nowhere in the new text nor the new one in the old, and both are used
    the same number of times: one label replaced everywhere, with what it means unchanged.
    """
    old_defs, new_defs = _definitions(old), _definitions(new)
    out = []
    for a, body in old_defs.items():
        if a in new_defs:
            continue
        use_a = _uses(a)
        for b, new_body in new_defs.items():
            use_b = _uses(b)
            # The definition may use the term itself ('("Listed Drivers"). If you add a Listed
            # Driver, ...'): those uses are compared as uses, not as words of the definition.
            if b in old_defs or not _same_definition(
                use_a.sub("\0", body), use_b.sub("\0", new_body)
            ):
                continue
            if use_a.search(new) or use_b.search(old):
                continue
            if len(use_a.findall(old)) == len(use_b.findall(new)):
                out.append((use_a, use_b))
    return tuple(out)


def _same_definition(old: str, new: str) -> bool:
    """The two definitions read the same, as far as both windows reach (a shorter term lets the
    fixed window take in a few more characters)."""
    old, new = old.strip(), new.strip()
    n = min(len(old), len(new))
    return old[:n] == new[:n] and n >= min(40, max(len(old), len(new)))


def _inside(pattern: re.Pattern[str], text: str, start: int, end: int) -> bool:
    lo, hi = max(0, start - 80), min(len(text), end + 80)
    return any(m.start() <= start and end <= m.end() for m in pattern.finditer(text, lo, hi))


def renamed_term(ctx: Context) -> bool:
    """The edit sits inside a use of a defined term that was renamed consistently."""
    ch = ctx.change
    if ch.old_start < 0 or ch.new_start < 0:
        return False
    old_end, new_end = ch.old_start + len(ch.deleted), ch.new_start + len(ch.inserted)
    return any(
        _inside(use_a, ctx.old_md, ch.old_start, old_end)
        and _inside(use_b, ctx.new_md, ch.new_start, new_end)
        for use_a, use_b in term_renames(ctx.old_md, ctx.new_md)
    )
