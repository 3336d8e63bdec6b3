"""Tell a spelling slip from a change of word: typos are non-words or transpositions.

"recieve" -> "receive" and "form" -> "from" are slips; "including" -> "excluding" (an opposite),
"sell" -> "tell" (two words the documents use) and any edit to a number, negation or modal are
not, however few letters they differ by.
"""

from __future__ import annotations

import re
from functools import lru_cache

from policy_versions.signals import Context
from policy_versions.vocabulary import Index, stem


def _levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


_SENTENCE_MARKS = re.compile(r"[.;:!?](?=\s|$)")
_NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "non", "dis", "non-")


# Prefixes that turn a word into its opposite when swapped: "include" / "exclude", "increase" /
# "decrease", "inbound" / "outbound", "import" / "export", "encrypt" / "decrypt", "enable" /
# "disable", "upgrade" / "downgrade", "maximum" / "minimum".
_OPPOSING_PREFIXES = frozenset(
    frozenset(pair)
    for pair in (
        ("in", "ex"),
        ("im", "ex"),
        ("in", "de"),
        ("in", "out"),
        ("pre", "post"),
        ("over", "under"),
        ("up", "down"),
        ("max", "min"),
        ("inter", "intra"),
        ("en", "dis"),
        ("en", "de"),
        ("on", "off"),
    )
)


def _opposites(a: str, b: str, ctx: Context) -> bool:
    """Whether two words are antonyms (topics.toml) or differ by an opposing prefix."""
    sa, sb = stem(a), stem(b)
    if any({sa, sb} == {x, y} for x, y in ctx.vocab.antonyms):
        return True
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n >= 3 and frozenset((a[: len(a) - n], b[: len(b) - n])) in _OPPOSING_PREFIXES


def _two_real_words(a: str, b: str, ctx: Context) -> bool:
    """Both words are in use elsewhere in the documents, so this is a swap, not a slip.

    A typo is a non-word ("recieve") or a transposition ("form" / "from"); "tell" -> "sell"
    replaces one real word with another, and the old text's use of "sell" shows it is one.
    """
    if sorted(a) == sorted(b) or stem(a) == stem(b):
        return False  # a transposition, or the same word inflected ("message" -> "messages")
    return _occurs(b, ctx.old_md) and _occurs(a, ctx.new_md)


def _occurs(word: str, text: str) -> bool:
    return word in _words_of(text)


@lru_cache(maxsize=4)
def _words_of(text: str) -> frozenset[str]:
    """The lower-cased words of a document, once per document (typos are checked per edit)."""
    return frozenset(re.findall(r"\w+", text.lower()))


def is_typo(ctx: Context) -> bool:
    """Same words apart from small spelling or capitalisation fixes to non-critical words."""
    old = re.findall(r"\w+", ctx.change.deleted)
    new = re.findall(r"\w+", ctx.change.inserted)
    if not old or len(old) != len(new):
        return False
    if _SENTENCE_MARKS.findall(ctx.change.deleted) != _SENTENCE_MARKS.findall(ctx.change.inserted):
        return False  # "; otherwise" -> ". Otherwise,": a sentence split, not a spelling fix
    critical = (
        ctx.vocab.words.get("negations", frozenset())
        | ctx.vocab.words.get("number_words", frozenset())
        | {
            c.parts[0]
            for key in ("permissive_modals", "obligatory_modals", "limiters")
            for c in ctx.lex(key)
            if len(c.parts) == 1
        }
    )
    terms = tuple(c for t in ctx.vocab.topics for c in t.terms if len(c.parts) == 1)
    for a, b in zip(old, new, strict=True):
        la, lb = a.lower(), b.lower()
        if la == lb:
            continue
        if any(ch.isdigit() for ch in la + lb) or la in critical or lb in critical:
            return False
        if any(la == p + lb or lb == p + la for p in _NEGATING_PREFIXES):
            return False
        if _opposites(la, lb, ctx) or _two_real_words(la, lb, ctx):
            return False
        longest = max(len(la), len(lb))
        distance = _levenshtein(la, lb)
        if sorted(la) == sorted(lb) and longest >= 3:
            distance = min(distance, 1)  # a transposition: "teh" -> "the"
        # Names get one slip at most: "Widgets" -> "Gadgets" is a different company.
        allowed = 1 if longest <= 5 or a[:1].isupper() or b[:1].isupper() else 2
        if longest < 4 or distance > allowed:
            return False
        # "sell" -> "tell" must not pass as a typo: a short key term counts only when the edit
        # is a single character in a long word ("deleted" -> "delted").
        for word in (la, lb):
            if Index([stem(word)], [word]).find(terms) and (longest < 6 or distance > 1):
                return False
    return True
