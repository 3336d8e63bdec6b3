"""A change read in context, and its text signals: negations, opposites, modals, contacts.

Names (which capitalised words name a party) are read in ``names.py``, numbers and frequencies in
``quantities.py``, exclusions, amounts and exception conditions in ``coverage.py``.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass

from policy_versions.changes import Change
from policy_versions.sections import title_key
from policy_versions.vocabulary import (
    Cue,
    Index,
    Vocabulary,
    named_tokens,
    raw_tokens,
    stem,
    strip_legal_forms,
)

# --- reading a change in context -----------------------------------------------------------

_SENTENCE_END = re.compile(
    r"(?<=[.!?;])[\"'”’)]*\s+|\n[ \t]*\n|\n(?=[ \t]*(?:[-*+][ \t]|\d+[.)][ \t]|#|\|))"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://[^\s)\]>]+|www\.[^\s)\]>]+")
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{6,}\d")
ADDRESS = re.compile(
    r"\b(?:street|st\.|avenue|ave\.?|road|rd\.|boulevard|blvd|suite|floor|p\.?\s?o\.? box|"
    r"zip|postcode|postal code|building|lane|drive|strasse|straße)\b",
    re.IGNORECASE,
)
# A street line of a postal address: "410 Foundry Street, Suite 9", "22 Harbour Road". Its house
# number and street name are contact details, not a number or a topic of the policy.
STREET = re.compile(
    r"\b\d{1,6}[A-Za-z]?(?:[-–]\d{1,6})?,?[ \t]+(?:[A-Z][\w'’.-]*[ \t]+){1,4}"
    r"(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?|Way|"
    r"Place|Pl\.?|Court|Ct\.?|Square|Sq\.?|Plaza|Parkway|Pkwy\.?|Highway|Hwy\.?|Terrace|"
    r"Crescent|Close|Row|Quay|Wharf|Walk|Gardens|Strasse|Straße)\b"
    r"(?:,?[ \t]*(?:Suite|Ste\.?|Floor|Fl\.?|Unit|Apt\.?|Room|Building)[ \t]*#?\w+)*"
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
STOP_WORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being
    this that these those it its we our us you your they their them he she his her which who whom
    whose what when where why how all any each some such other than then so also may might can
    could will would shall should must do does did not no nor only own same too very just into
    about over under out up down off again further once here there both few more most per via
    i me my mine yours ours s t e g etc""".split()
)


def _sentence(text: str, start: int, end: int, limit: int = 600) -> str:
    if start < 0:
        return ""
    lo = max(0, start - limit)
    left = lo
    for m in _SENTENCE_END.finditer(text, lo, start):
        left = m.end()
    m = _SENTENCE_END.search(text, end, min(len(text), end + limit))
    right = m.start() if m else min(len(text), end + limit)
    return text[left:right]


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _paragraph(text: str, start: int, end: int) -> tuple[int, str]:
    """Where the paragraph around text[start:end] begins, and the paragraph."""
    if start < 0:
        return 0, ""
    breaks = [m.end() for m in _PARAGRAPH_BREAK.finditer(text, max(0, start - 4000), start)]
    left = breaks[-1] if breaks else max(0, start - 4000)
    m = _PARAGRAPH_BREAK.search(text, end, min(len(text), end + 4000))
    return left, text[left : m.start() if m else min(len(text), end + 4000)]


@dataclass
class Text:
    """Tokens of a piece of text, raw and stemmed with synonyms folded to one form."""

    raw: str
    words: list[str]
    stems: list[str]
    # Per token: its index among raw_tokens(raw), or -1 for a synonym folded into another form.
    origin: list[int] | None = None

    @classmethod
    def of(cls, text: str, vocab: Vocabulary) -> Text:
        words = raw_tokens(strip_legal_forms(text))
        stems = [stem(w) for w in words]
        out_words: list[str] = []
        out_stems: list[str] = []
        origin: list[int] = []
        starts = vocab.synonym_starts
        i = 0
        while i < len(stems):
            for k in (4, 3, 2, 1) if stems[i] in starts else ():
                canonical = vocab.synonyms.get(tuple(stems[i : i + k]))
                if canonical is not None and i + k <= len(stems):
                    out_stems.extend(canonical)
                    out_words.extend(canonical)
                    origin.extend([-1] * len(canonical))
                    i += k
                    break
            else:
                out_stems.append(stems[i])
                out_words.append(words[i])
                origin.append(i)
                i += 1
        return cls(text, out_words, out_stems, origin)

    def find(self, cues: tuple[Cue, ...]) -> set[str]:
        index = getattr(self, "_index", None)
        if index is None:
            index = self._index = Index(self.stems, self.words)
        return index.find(cues)

    def find_all(self, vocab: Vocabulary) -> dict[str, set[str]]:
        """Term hits per topic, computed once per text (topics are checked many times)."""
        cached = getattr(self, "_topic_hits", None)
        if cached is None:
            index = self._topic_index(vocab)
            cached = {t.name: index.find(t.terms) for t in vocab.topics if t.terms}
            self._topic_hits = cached
        return cached

    def _topic_index(self, vocab: Vocabulary) -> Index:
        """The index for topic terms, where a word of a name matches a term only in the term's
        own form or an inflection of it: "Market" in "Market Street" is not "marketing", though
        the crude stemmer makes them meet; "Marketing Team" and "Familiar Faces" still count."""
        self.find(())  # builds the plain index
        shorter = vocab.shorter_than_terms(set(self.words))
        if self.origin is None or not any(w[:1].upper() + w[1:] in self.raw for w in shorter):
            return self._index  # none of them is written with a capital
        suspects = [n for n, w in enumerate(self.words) if w in shorter]
        named = named_tokens(strip_legal_forms(self.raw))
        stems = list(self.stems)
        for n in suspects:
            if self.origin[n] >= 0 and named[self.origin[n]]:
                stems[n] = "\0" + self.words[n]
        return self._index if stems == self.stems else Index(stems, self.words)

    def content(self) -> set[str]:
        return {s for s, w in zip(self.stems, self.words, strict=True) if w not in STOP_WORDS}

    def content_counts(self) -> Counter[str]:
        return Counter(
            s for s, w in zip(self.stems, self.words, strict=True) if w not in STOP_WORDS
        )

    def count(self, cue: Cue) -> int:
        self.find(())  # builds the index
        return self._index.count(cue)


_MAX_ANALYSED = 20_000


def _clip(text: str) -> str:
    if len(text) <= _MAX_ANALYSED:
        return text
    half = _MAX_ANALYSED // 2
    return text[:half] + "\n\n" + text[-half:]


@dataclass
class Context:
    change: Change
    vocab: Vocabulary
    old_md: str
    new_md: str

    def __post_init__(self) -> None:
        ch = self.change
        old_end = ch.old_start + len(ch.deleted)
        new_end = ch.new_start + len(ch.inserted)
        # A wholesale replacement (unrelated texts, a timed-out diff) is judged on its two ends:
        # enough to find its topics, and it keeps classify() fast on megabytes.
        self.truncated = max(len(ch.deleted), len(ch.inserted)) > _MAX_ANALYSED
        self.old_sentence = _clip(_sentence(self.old_md, ch.old_start, old_end))
        self.new_sentence = _clip(_sentence(self.new_md, ch.new_start, new_end))
        self.deleted = Text.of(_clip(ch.deleted), self.vocab)
        self.inserted = Text.of(_clip(ch.inserted), self.vocab)
        self.old_sent = Text.of(self.old_sentence, self.vocab)
        self.new_sent = Text.of(self.new_sentence, self.vocab)
        self.section_topics = _section_topics(ch.section, self.vocab)
        if ch.old_section is not None and ch.old_section != ch.section:
            self.old_section_topics = _section_topics(ch.old_section, self.vocab)
        else:
            self.old_section_topics = self.section_topics
        self.sentence_topics = term_topics(self.old_sent, self.vocab) | term_topics(
            self.new_sent, self.vocab
        )
        self.changed_topics = term_topics(self.deleted, self.vocab) | term_topics(
            self.inserted, self.vocab
        )

    @property
    def paragraphs(self) -> tuple[Text, Text] | None:
        """The paragraph around the change, old and new, when the paragraph holds other edits
        too; None when this change is its only edit (nothing can have moved within it)."""
        if "_paragraphs" not in self.__dict__:
            ch = self.change
            left, old = _paragraph(self.old_md, ch.old_start, ch.old_start + len(ch.deleted))
            _, new = _paragraph(self.new_md, ch.new_start, ch.new_start + len(ch.inserted))
            at = ch.old_start - left
            alone = old[:at] + ch.inserted + old[at + len(ch.deleted) :] == new
            self.__dict__["_paragraphs"] = (
                None
                if alone
                else (Text.of(_clip(old), self.vocab), Text.of(_clip(new), self.vocab))
            )
        return self.__dict__["_paragraphs"]

    def moved_in_paragraph(self, cue: Cue, lost: bool) -> bool:
        """A topic term cut from one sentence of a paragraph and written into another of it (a
        sentence split or joined): the paragraph holds it as often as before."""
        if self.paragraphs is None:
            return False
        old, new = self.paragraphs
        return (new.count(cue) >= old.count(cue)) if lost else (old.count(cue) >= new.count(cue))

    def is_material_topic(self, names: set[str]) -> bool:
        return any((t := self.vocab.topic(n)) is not None and t.material for n in names)

    @property
    def material_context(self) -> bool:
        return self.is_material_topic(
            self.section_topics | self.old_section_topics | self.sentence_topics
        )

    def best_topic(self, *preferred: set[str]) -> str:
        for names in (*preferred, self.changed_topics, self.section_topics, self.sentence_topics):
            material = [t.name for t in self.vocab.topics if t.name in names and t.material]
            if material:
                return material[0]
        for names in (self.section_topics, self.sentence_topics):
            if names:
                return sorted(names)[0]
        return "general"

    def lex(self, key: str) -> tuple[Cue, ...]:
        return self.vocab.lexicon.get(key, ())


_DOCUMENT_TITLE = re.compile(
    r"\b(?:privacy (?:policy|notice|statement)|terms (?:of (?:service|use)|and conditions)|"
    r"(?:user|service|subscription|license|licence) agreement|data processing (?:agreement|"
    r"addendum))$"
)


def _section_topics(path: tuple[str, ...], vocab: Vocabulary) -> set[str]:
    """Topics of the innermost heading that names one.

    A leading document title ("Acme Analytics Privacy Policy") is skipped: the company's name
    would otherwise give every preamble sentence a topic.
    """
    if path and _DOCUMENT_TITLE.search(title_key(path[0])):
        path = path[1:]
    for title in reversed(path):
        key = title_key(title)
        found = {t.name for t in vocab.topics if any(p.search(key) for p in t.sections)}
        if found:
            return found
    return {"general"} if not path else set()


def section_cues(path: tuple[str, ...], vocab: Vocabulary) -> tuple[set[str], set[str]]:
    """Topics of the innermost heading that names one (as `_section_topics`), and the heading
    cues it matched.

    The cues tell sections of one topic apart: "Analytics" and "Advertising" are both about
    cookies and tracking, but a promise under one does not govern the other.
    """
    if path and _DOCUMENT_TITLE.search(title_key(path[0])):
        path = path[1:]
    for title in reversed(path):
        key = title_key(title)
        cues = {(t.name, p.pattern) for t in vocab.topics for p in t.sections if p.search(key)}
        if cues:
            return {name for name, _ in cues}, {cue for _, cue in cues}
    return ({"general"} if not path else set()), set()


def term_topics(text: Text, vocab: Vocabulary) -> set[str]:
    return {name for name, hits in text.find_all(vocab).items() if hits}


# --- text signals --------------------------------------------------------------------------


def negations(text: Text, ctx: Context) -> int:
    lowered = " " + " ".join(text.words) + " "
    for cue in ctx.lex("negation_exceptions"):
        lowered = lowered.replace(" " + " ".join(cue.parts) + " ", " ")
    words = lowered.split()
    negation_words = ctx.vocab.words.get("negations", frozenset())
    return sum(1 for w in words if w in negation_words)


def antonym_flip(ctx: Context) -> tuple[str, str] | None:
    # Raw stems too: synonym folding would hide "including" -> "excluding" ("including" is
    # folded into "such as").
    old = set(ctx.deleted.stems) | {stem(w) for w in raw_tokens(ctx.change.deleted)}
    new = set(ctx.inserted.stems) | {stem(w) for w in raw_tokens(ctx.change.inserted)}
    for a, b in ctx.vocab.antonyms:
        for x, y in ((a, b), (b, a)):
            if x in old and y in new and x not in new and y not in old:
                return x, y
    # "opt-in" -> "opt-out": the phrase flips in the sentence, and the edit holds the word that
    # tells the two apart.
    for p, q in ctx.vocab.antonym_phrases:
        for x, y in ((p, q), (q, p)):
            if (
                (set(x.parts) - set(y.parts)) & old or (set(y.parts) - set(x.parts)) & new
            ) and _flips(ctx.old_sent, ctx.new_sent, x, y):
                return x.text, y.text
    return None


def _flips(old: Text, new: Text, x: Cue, y: Cue) -> bool:
    return bool(old.find((x,)) and new.find((y,)) and not new.find((x,)) and not old.find((y,)))


def modal_classes(text: Text, ctx: Context) -> set[str]:
    out = set()
    if text.find(ctx.lex("permissive_modals")):
        out.add("permissive")
    if text.find(ctx.lex("obligatory_modals")):
        out.add("obligatory")
    return out


def _strip_contacts(text: str) -> tuple[str, set[str]]:
    kinds = set()
    for kind, pattern in (("link", _URL), ("email", _EMAIL), ("phone", _PHONE)):
        if pattern.search(text):
            kinds.add(kind)
            text = pattern.sub(" ", text)
    if ADDRESS.search(text):
        kinds.add("address")
    return " ".join(re.findall(r"\w+", text.lower())), kinds


def _covered(pattern: re.Pattern[str], text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies inside one match of `pattern` (an address, a phone...)."""
    lo, hi = max(0, start - 120), min(len(text), end + 120)
    return any(m.start() <= start and end <= m.end() for m in pattern.finditer(text, lo, hi))


def contact_kind(ctx: Context) -> str | None:
    """ "link" or "contact" when the edit sits wholly inside a URL, e-mail address, phone number
    or street line of a postal address."""
    ch = ctx.change
    old_rest, old_kinds = _strip_contacts(ch.deleted)
    new_rest, new_kinds = _strip_contacts(ch.inserted)
    if (old_kinds or new_kinds) and old_rest == new_rest:
        return "link" if (old_kinds | new_kinds) == {"link"} else "contact"
    for kind, pattern in (
        ("link", _URL),
        ("contact", _EMAIL),
        ("contact", _PHONE),
        ("contact", STREET),
    ):
        old_in = not ch.deleted or _covered(
            pattern, ctx.old_md, ch.old_start, ch.old_start + len(ch.deleted)
        )
        new_in = not ch.inserted or _covered(
            pattern, ctx.new_md, ch.new_start, ch.new_start + len(ch.inserted)
        )
        if old_in and new_in:
            return kind
    return None


def kept_share(ctx: Context) -> float:
    """How much of the sentence's content words survive the edit (Jaccard, 1.0 = all)."""
    old, new = ctx.old_sent.content(), ctx.new_sent.content()
    return len(old & new) / max(1, len(old | new))


def rewritten(ctx: Context) -> bool:
    """The sentence was rewritten as a whole: fewer than half its content words were kept, or
    it was edited in four or more separate places (plain-language rewording, not one swap)."""
    if kept_share(ctx) < 0.5:
        return True
    matcher = difflib.SequenceMatcher(None, ctx.old_sent.stems, ctx.new_sent.stems, autojunk=False)
    return sum(1 for op in matcher.get_opcodes() if op[0] != "equal") >= 4


def negated_words(text: Text, ctx: Context) -> set[str]:
    """The stem each negation applies to: the first content word after it ("not *sell*")."""
    negation_words = ctx.vocab.words.get("negations", frozenset())
    out = set()
    for i, word in enumerate(text.words):
        if word in negation_words:
            following = [
                s
                for s, w in zip(text.stems[i + 1 : i + 5], text.words[i + 1 : i + 5], strict=True)
                if w not in STOP_WORDS
            ]
            out.update(following[:1])
    return out


_LIST_JOINER = re.compile(r"^\s*(?:[,;]|(?:and|or|nor)\b)|(?:[,;]|\b(?:and|or|nor))\s*$", re.I)


def list_item_edit(deleted: str, inserted: str) -> bool:
    """An item inserted into or cut from a list inside one sentence: ", tobacco" / "spam or"."""
    fragment = inserted if inserted.strip() else deleted
    if deleted.strip() and inserted.strip():
        return False
    return bool(_LIST_JOINER.search(fragment)) and not _SENTENCE_END.search(fragment.strip())


def single_swap(ctx: Context) -> bool:
    """One substantive word replaced by another, e.g. "country level" -> "city level"."""
    old, new = ctx.deleted.content(), ctx.inserted.content()
    return len(old) == 1 and len(new) == 1 and old != new
