"""Decide whether a policy change is cosmetic, minor or material, and say why, change by change."""

from __future__ import annotations

import bisect
import os
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from policy_versions.diff import Change, DiffResult, compute
from policy_versions.sections import title_key

VERDICTS = ("cosmetic", "minor", "material")
_RANK = {v: n for n, v in enumerate(VERDICTS)}
BUILTIN_TOPICS = Path(__file__).with_name("topics.toml")
SEPARATOR = " › "


@dataclass(frozen=True)
class Reason:
    """One change and the verdict it implies, with the exact words that triggered it."""

    section: str
    topic: str
    kind: str
    deleted: str
    inserted: str
    verdict: str
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "topic": self.topic,
            "kind": self.kind,
            "deleted": self.deleted,
            "inserted": self.inserted,
            "verdict": self.verdict,
            "explanation": self.explanation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Classification:
    """The verdict for a new version against the one in force (stored as JSONB on the version)."""

    verdict: str
    reasons: tuple[Reason, ...]
    approximate: bool = False

    @property
    def material(self) -> bool:
        return self.verdict == "material"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": [r.to_dict() for r in self.reasons],
            "approximate": self.approximate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        return cls(
            verdict=data["verdict"],
            reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", ())),
            approximate=bool(data.get("approximate", False)),
        )


# --- words ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+|[$€£¥₹%]")
_NT = re.compile(r"n['’]t\b", re.IGNORECASE)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ied", "ed", "es", "s", "e")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately crude stemmer: enough to make "share", "shared" and "sharing" meet."""
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w.endswith("ss"):
                return w
            return w[: -len(suffix)]
    return w


def _raw_tokens(text: str) -> list[str]:
    text = _NT.sub(" not", text.replace("cannot", "can not").replace("Cannot", "Can not"))
    return [t.lower() for t in _TOKEN.findall(text)]


@dataclass(frozen=True)
class _Cue:
    text: str
    parts: tuple[str, ...]
    prefix: bool  # the last part matches any word starting with it


def _make_cue(text: str) -> _Cue:
    prefix = text.endswith("*")
    words = _raw_tokens(text.rstrip("*"))
    if prefix:
        return _Cue(text, tuple(stem(w) for w in words[:-1]) + (words[-1],), True)
    return _Cue(text, tuple(stem(w) for w in words), False)


class _Index:
    """Positions of each stem and each word of a token list, so cue lookups are dictionary hits."""

    def __init__(self, stems: list[str], words: list[str]) -> None:
        self.stems = stems
        self.by_stem: dict[str, list[int]] = {}
        self.by_word: dict[str, list[int]] = {}
        for i, (s, w) in enumerate(zip(stems, words, strict=True)):
            self.by_stem.setdefault(s, []).append(i)
            self.by_word.setdefault(w, []).append(i)
        self.sorted_words = sorted(self.by_word)

    def find(self, cues: tuple[_Cue, ...]) -> set[str]:
        """Which cues occur (stems for whole words, raw word prefixes for "cue*")."""
        stems = self.stems
        found: set[str] = set()
        for cue in cues:
            k = len(cue.parts)
            if not k:
                continue
            if cue.prefix:
                last = cue.parts[-1]
                lo = bisect.bisect_left(self.sorted_words, last)
                ends: list[int] = []
                while lo < len(self.sorted_words) and self.sorted_words[lo].startswith(last):
                    ends.extend(self.by_word[self.sorted_words[lo]])
                    lo += 1
                starts = [e - k + 1 for e in ends if e - k + 1 >= 0]
                if any(all(stems[i + m] == cue.parts[m] for m in range(k - 1)) for i in starts):
                    found.add(cue.text)
            elif any(
                i + k <= len(stems) and all(stems[i + m] == cue.parts[m] for m in range(1, k))
                for i in self.by_stem.get(cue.parts[0], ())
            ):
                found.add(cue.text)
        return found


# --- vocabulary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    name: str
    label: str
    material: bool
    sections: tuple[re.Pattern[str], ...]
    terms: tuple[_Cue, ...]
    names_material: bool = False


@dataclass(frozen=True)
class Vocabulary:
    topics: tuple[Topic, ...]
    lexicon: dict[str, tuple[_Cue, ...]]
    words: dict[str, frozenset[str]]
    synonyms: dict[tuple[str, ...], tuple[str, ...]]
    antonyms: tuple[tuple[str, str], ...] = ()

    @property
    def synonym_starts(self) -> frozenset[str]:
        cached = self.__dict__.get("_starts")
        if cached is None:
            cached = frozenset(key[0] for key in self.synonyms)
            object.__setattr__(self, "_starts", cached)
        return cached

    def topic(self, name: str) -> Topic | None:
        return next((t for t in self.topics if t.name == name), None)


def _merge_toml(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_toml(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        else:
            out[key] = value
    return out


def _section_pattern(cue: str) -> re.Pattern[str]:
    cue = " ".join(_raw_tokens(cue))
    # Short cues ("ai", "age", "opt") must be whole words, or "ai" would match "aim".
    end = r"\b" if len(cue) < 4 else ""
    return re.compile(rf"(?<!\w){re.escape(cue)}{end}")


def _build(data: dict[str, Any]) -> Vocabulary:
    topics = tuple(
        Topic(
            name=name,
            label=spec.get("label", name.replace("_", " ")),
            material=bool(spec.get("material", False)),
            sections=tuple(_section_pattern(c) for c in spec.get("sections", ())),
            terms=tuple(_make_cue(c) for c in spec.get("terms", ())),
            names_material=bool(spec.get("names_material", False)),
        )
        for name, spec in data.get("topics", {}).items()
    )
    lexicon_data = data.get("lexicon", {})
    lexicon = {key: tuple(_make_cue(c) for c in values) for key, values in lexicon_data.items()}
    words = {key: frozenset(values) for key, values in lexicon_data.items()}
    synonyms: dict[tuple[str, ...], tuple[str, ...]] = {}
    for group in data.get("synonyms", {}).get("groups", ()):
        canonical = tuple(stem(w) for w in _raw_tokens(group[0]))
        for member in group:
            synonyms[tuple(stem(w) for w in _raw_tokens(member))] = canonical
    antonyms = tuple(
        (stem(a), stem(b))
        for a, b in (pair.split("|", 1) for pair in data.get("antonyms", {}).get("pairs", ()))
    )
    return Vocabulary(topics, lexicon, words, synonyms, antonyms)


@lru_cache(maxsize=16)
def _load(extra: str | None) -> Vocabulary:
    with BUILTIN_TOPICS.open("rb") as fh:
        data = tomllib.load(fh)
    if extra:
        with open(extra, "rb") as fh:
            data = _merge_toml(data, tomllib.load(fh))
    return _build(data)


def load_vocabulary(topics_file: str | os.PathLike[str] | None = None) -> Vocabulary:
    """The built-in topics.toml, extended by `topics_file` or else $POLICY_TOPICS_FILE (cached)."""
    extra = topics_file if topics_file is not None else os.environ.get("POLICY_TOPICS_FILE")
    return _load(str(Path(extra).resolve()) if extra else None)


# --- reading a change in context -----------------------------------------------------------

_SENTENCE_END = re.compile(
    r"(?<=[.!?;])[\"'”’)]*\s+|\n[ \t]*\n|\n(?=[ \t]*(?:[-*+][ \t]|\d+[.)][ \t]|#|\|))"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://[^\s)\]>]+|www\.[^\s)\]>]+")
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{6,}\d")
_ADDRESS = re.compile(
    r"\b(?:street|st\.|avenue|ave\.?|road|rd\.|boulevard|blvd|suite|floor|p\.?\s?o\.? box|"
    r"zip|postcode|postal code|building|lane|drive|strasse|straße)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_PROPER = re.compile(r"\b(?:[A-Z][\w&'’.-]*\w|[a-z]+[A-Z]\w*)")
_STOP = frozenset(
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


@dataclass
class _Text:
    """Tokens of a piece of text, raw and stemmed with synonyms folded to one form."""

    raw: str
    words: list[str]
    stems: list[str]

    @classmethod
    def of(cls, text: str, vocab: Vocabulary) -> _Text:
        words = _raw_tokens(text)
        stems = [stem(w) for w in words]
        out_words: list[str] = []
        out_stems: list[str] = []
        starts = vocab.synonym_starts
        i = 0
        while i < len(stems):
            for k in (4, 3, 2, 1) if stems[i] in starts else ():
                canonical = vocab.synonyms.get(tuple(stems[i : i + k]))
                if canonical is not None and i + k <= len(stems):
                    out_stems.extend(canonical)
                    out_words.extend(canonical)
                    i += k
                    break
            else:
                out_stems.append(stems[i])
                out_words.append(words[i])
                i += 1
        return cls(text, out_words, out_stems)

    def find(self, cues: tuple[_Cue, ...]) -> set[str]:
        index = getattr(self, "_index", None)
        if index is None:
            index = self._index = _Index(self.stems, self.words)
        return index.find(cues)

    def find_all(self, vocab: Vocabulary) -> dict[str, set[str]]:
        """Term hits per topic, computed once per text (topics are checked many times)."""
        cached = getattr(self, "_topic_hits", None)
        if cached is None:
            cached = {t.name: self.find(t.terms) for t in vocab.topics if t.terms}
            self._topic_hits = cached
        return cached

    def content(self) -> set[str]:
        return {s for s, w in zip(self.stems, self.words, strict=True) if w not in _STOP}


_MAX_ANALYSED = 20_000


def _clip(text: str) -> str:
    if len(text) <= _MAX_ANALYSED:
        return text
    half = _MAX_ANALYSED // 2
    return text[:half] + "\n\n" + text[-half:]


@dataclass
class _Context:
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
        self.deleted = _Text.of(_clip(ch.deleted), self.vocab)
        self.inserted = _Text.of(_clip(ch.inserted), self.vocab)
        self.old_sent = _Text.of(self.old_sentence, self.vocab)
        self.new_sent = _Text.of(self.new_sentence, self.vocab)
        self.section_topics = _section_topics(ch.section, self.vocab)
        if ch.old_section is not None and ch.old_section != ch.section:
            self.old_section_topics = _section_topics(ch.old_section, self.vocab)
        else:
            self.old_section_topics = self.section_topics
        self.sentence_topics = _term_topics(self.old_sent, self.vocab) | _term_topics(
            self.new_sent, self.vocab
        )
        self.changed_topics = _term_topics(self.deleted, self.vocab) | _term_topics(
            self.inserted, self.vocab
        )

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

    def lex(self, key: str) -> tuple[_Cue, ...]:
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


def _term_topics(text: _Text, vocab: Vocabulary) -> set[str]:
    return {name for name, hits in text.find_all(vocab).items() if hits}


# --- the rules -----------------------------------------------------------------------------


def _q(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _negations(text: _Text, ctx: _Context) -> int:
    lowered = " " + " ".join(text.words) + " "
    for cue in ctx.lex("negation_exceptions"):
        lowered = lowered.replace(" " + " ".join(cue.parts) + " ", " ")
    words = lowered.split()
    negations = ctx.vocab.words.get("negations", frozenset())
    return sum(1 for w in words if w in negations)


def _numbers(text: str, ctx: _Context) -> Counter[str]:
    found = Counter(n.replace(",", "") for n in _NUMBER.findall(text))
    number_words = ctx.vocab.words.get("number_words", frozenset())
    found.update(w for w in _raw_tokens(text) if w in number_words)
    return found


def _antonym_flip(ctx: _Context) -> tuple[str, str] | None:
    old, new = set(ctx.deleted.stems), set(ctx.inserted.stems)
    for a, b in ctx.vocab.antonyms:
        for x, y in ((a, b), (b, a)):
            if x in old and y in new and x not in new and y not in old:
                return x, y
    return None


def _modal_classes(text: _Text, ctx: _Context) -> set[str]:
    out = set()
    if text.find(ctx.lex("permissive_modals")):
        out.add("permissive")
    if text.find(ctx.lex("obligatory_modals")):
        out.add("obligatory")
    return out


def _proper_nouns(text: str, ctx: _Context) -> set[str]:
    common = ctx.vocab.words.get("common_capitalized", frozenset())
    out = set()
    for m in _PROPER.finditer(text):
        word = m.group(0).rstrip(".'’-")
        if word in common or word.upper() == word and len(word) <= 2:
            continue
        out.add(word)
    return out


@lru_cache(maxsize=8)
def _names_in(text: str) -> frozenset[str]:
    """Every capitalised word of a document, to tell a newly named party from a known one."""
    return frozenset(m.group(0).rstrip(".'’-") for m in _PROPER.finditer(text))


def _strip_contacts(text: str) -> tuple[str, set[str]]:
    kinds = set()
    for kind, pattern in (("link", _URL), ("email", _EMAIL), ("phone", _PHONE)):
        if pattern.search(text):
            kinds.add(kind)
            text = pattern.sub(" ", text)
    if _ADDRESS.search(text):
        kinds.add("address")
    return " ".join(re.findall(r"\w+", text.lower())), kinds


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


_NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "non", "dis", "non-")


def _is_typo(ctx: _Context) -> bool:
    """Same words apart from small spelling or capitalisation fixes to non-critical words."""
    old = re.findall(r"\w+", ctx.change.deleted)
    new = re.findall(r"\w+", ctx.change.inserted)
    if not old or len(old) != len(new):
        return False
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
            if _Index([stem(word)], [word]).find(terms) and (longest < 6 or distance > 1):
                return False
    return True


def _reason(ctx: _Context, kind: str, verdict: str, topic: str, explanation: str) -> Reason:
    ch = ctx.change
    return Reason(
        section=SEPARATOR.join(ch.section) if ch.section else "Preamble",
        topic=topic,
        kind=kind,
        deleted=ch.deleted,
        inserted=ch.inserted,
        verdict=verdict,
        explanation=explanation,
    )


_NOISE_TEXT = {
    "whitespace": "Only whitespace or line breaks changed.",
    "formatting": "Only Markdown formatting changed; the words are the same.",
    "quotes": "Only the style of quotation marks or apostrophes changed.",
    "renumbering": "Only the numbering of a heading, list item or cross-reference changed.",
    "date_line": "Only the 'last updated' or effective date line changed.",
}


def _judge_section(ctx: _Context) -> list[Reason]:
    ch = ctx.change
    added = ch.kind == "added"
    text = ch.inserted if added else ch.deleted
    # The heading line is part of the text; without a body beyond it the section says nothing.
    has_body = "\n" in text.strip()
    body_text = ctx.inserted if added else ctx.deleted
    topics = ctx.section_topics | _term_topics(body_text, ctx.vocab)
    verb = "added" if added else "removed"
    title = ch.section[-1] if ch.section else "the preamble"
    if has_body and len(body_text.content()) >= 3 and ctx.is_material_topic(topics):
        topic = ctx.best_topic(ctx.section_topics, topics)
        label = ctx.vocab.topic(topic).label if ctx.vocab.topic(topic) else topic  # type: ignore[union-attr]
        return [
            _reason(
                ctx,
                f"section_{verb}",
                "material",
                topic,
                f"The section '{title}' about {label} was {verb}.",
            )
        ]
    return [
        _reason(
            ctx,
            f"section_{verb}",
            "minor",
            ctx.best_topic(),
            f"The section '{title}' was {verb}, with no substantive text about a material topic.",
        )
    ]


def _judge_move(ctx: _Context) -> list[Reason]:
    ch = ctx.change
    if not ch.inserted and not ch.deleted:
        return [
            _reason(
                ctx,
                "section_moved",
                "minor",
                ctx.best_topic(),
                "The section moved to a different position in the document.",
            )
        ]
    before, after = ctx.old_section_topics, ctx.section_topics
    crosses = before != after and (ctx.is_material_topic(before) or ctx.is_material_topic(after))
    origin = ch.old_section[-1] if ch.old_section else "the preamble"
    target = ch.section[-1] if ch.section else "the preamble"
    if crosses:
        return [
            _reason(
                ctx,
                "moved_between_sections",
                "material",
                ctx.best_topic(after, before),
                f"Text moved from '{origin}' to '{target}', which changes what it governs.",
            )
        ]
    where = "within the section" if origin == target else f"from '{origin}' to '{target}'"
    return [
        _reason(
            ctx,
            "moved",
            "minor",
            ctx.best_topic(),
            f"Text was reordered {where} without changing its subject.",
        )
    ]


def _triggers(ctx: _Context) -> list[Reason]:
    """Material-looking edits: flipped negations, numbers, modals, recipients, rights, topics."""
    ch = ctx.change
    out: list[Reason] = []
    material_ctx = ctx.material_context

    # Negation: count in the changed words, then confirm on the whole sentence so that
    # "do not" -> "never" (one negation each) is not a flip.
    if _negations(ctx.deleted, ctx) != _negations(ctx.inserted, ctx) and _negations(
        ctx.old_sent, ctx
    ) != _negations(ctx.new_sent, ctx):
        contact_only = ctx.section_topics == {"contact"} and not ctx.changed_topics
        out.append(
            _reason(
                ctx,
                "negation_flip",
                "minor" if contact_only else "material",
                ctx.best_topic(),
                f"A negation was added or removed ('{_q(ctx.old_sentence)}' became "
                f"'{_q(ctx.new_sentence)}'), which reverses the statement.",
            )
        )

    flipped = _antonym_flip(ctx)
    if flipped:
        contact_only = ctx.section_topics == {"contact"} and not ctx.changed_topics
        out.append(
            _reason(
                ctx,
                "polarity_flip",
                "minor" if contact_only else "material",
                ctx.best_topic(),
                f"'{flipped[0]}' became its opposite '{flipped[1]}', which reverses the statement.",
            )
        )

    old_numbers, new_numbers = _numbers(ch.deleted, ctx), _numbers(ch.inserted, ctx)
    if old_numbers != new_numbers:
        window_old = ctx.old_md[max(0, ch.old_start - 24) : ch.old_start + len(ch.deleted) + 40]
        window_new = ctx.new_md[max(0, ch.new_start - 24) : ch.new_start + len(ch.inserted) + 40]
        windows = _Text.of(window_old + " \n " + window_new, ctx.vocab)
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
            _reason(
                ctx,
                kind,
                verdict,
                ctx.best_topic(),
                f"{what}: '{_q(ch.deleted)}' became '{_q(ch.inserted)}'.",
            )
        )

    old_modals, new_modals = _modal_classes(ctx.deleted, ctx), _modal_classes(ctx.inserted, ctx)
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
            _reason(
                ctx,
                kind,
                "material" if material_ctx else "minor",
                ctx.best_topic(),
                f"'{_q(ch.deleted)}' became '{_q(ch.inserted)}': {how}.",
            )
        )

    limit_old = ctx.deleted.find(ctx.lex("limiters"))
    limit_new = ctx.inserted.find(ctx.lex("limiters"))
    if limit_old != limit_new and material_ctx:
        out.append(
            _reason(
                ctx,
                "qualifier_changed",
                "material",
                ctx.best_topic(),
                f"A limiting word changed ('{_q(ch.deleted)}' became '{_q(ch.inserted)}'), "
                "which widens or narrows the statement.",
            )
        )

    sharing = (
        {"data_sharing", "ai_ml", "transfers"} & (ctx.section_topics | ctx.old_section_topics)
        or ctx.old_sent.find(ctx.lex("sharing_cues"))
        or ctx.new_sent.find(ctx.lex("sharing_cues"))
    )
    if sharing:
        added = _proper_nouns(ch.inserted, ctx) - _names_in(ctx.old_md)
        removed = _proper_nouns(ch.deleted, ctx) - _names_in(ctx.new_md)
        topic = ctx.best_topic({"data_sharing"} & (ctx.section_topics | ctx.sentence_topics))
        if added:
            out.append(
                _reason(
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
                _reason(
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
        if lost:
            out.append(
                _reason(
                    ctx,
                    "right_removed",
                    "material",
                    "user_rights",
                    f"A user right ({', '.join(sorted(lost))}) was removed or narrowed.",
                )
            )
        if gained:
            out.append(
                _reason(
                    ctx,
                    "right_added",
                    "material",
                    "user_rights",
                    f"A user right ({', '.join(sorted(gained))}) was added.",
                )
            )

    for topic in ctx.vocab.topics:
        if not topic.material or not topic.terms:
            continue
        name, v = topic.name, ctx.vocab
        gained = ctx.inserted.find_all(v)[name] - ctx.old_sent.find_all(v)[name]
        lost = ctx.deleted.find_all(v)[name] - ctx.new_sent.find_all(v)[name]
        if gained:
            out.append(
                _reason(
                    ctx,
                    "topic_text_added",
                    "material",
                    topic.name,
                    f"New wording about {topic.label}: {', '.join(sorted(gained))}.",
                )
            )
        if lost:
            out.append(
                _reason(
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
    if not out and not referential:
        new_content = ctx.inserted.content() - ctx.old_sent.content()
        old_content = ctx.deleted.content() - ctx.new_sent.content()
        section_material = ctx.is_material_topic(ctx.section_topics | ctx.old_section_topics)
        if (
            len(ctx.deleted.content()) <= 1
            and len(new_content) >= 3
            and (section_material or ctx.is_material_topic(_term_topics(ctx.inserted, ctx.vocab)))
        ):
            out.append(
                _reason(
                    ctx,
                    "topic_text_added",
                    "material",
                    ctx.best_topic(),
                    f"New substantive text was added: '{_q(ch.inserted)}'.",
                )
            )
        elif (
            len(ctx.inserted.content()) <= 1
            and len(old_content) >= 3
            and (section_material or ctx.is_material_topic(_term_topics(ctx.deleted, ctx.vocab)))
        ):
            out.append(
                _reason(
                    ctx,
                    "topic_text_removed",
                    "material",
                    ctx.best_topic(),
                    f"Substantive text was removed: '{_q(ch.deleted)}'.",
                )
            )
    return out


def _covered(pattern: re.Pattern[str], text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies inside one match of `pattern` (an address, a phone...)."""
    lo, hi = max(0, start - 120), min(len(text), end + 120)
    return any(m.start() <= start and end <= m.end() for m in pattern.finditer(text, lo, hi))


def _contact_kind(ctx: _Context) -> str | None:
    """ "link" or "contact" when the edit sits wholly inside a URL, e-mail address or phone."""
    ch = ctx.change
    old_rest, old_kinds = _strip_contacts(ch.deleted)
    new_rest, new_kinds = _strip_contacts(ch.inserted)
    if (old_kinds or new_kinds) and old_rest == new_rest:
        return "link" if (old_kinds | new_kinds) == {"link"} else "contact"
    for kind, pattern in (("link", _URL), ("contact", _EMAIL), ("contact", _PHONE)):
        old_in = not ch.deleted or _covered(
            pattern, ctx.old_md, ch.old_start, ch.old_start + len(ch.deleted)
        )
        new_in = not ch.inserted or _covered(
            pattern, ctx.new_md, ch.new_start, ch.new_start + len(ch.inserted)
        )
        if old_in and new_in:
            return kind
    return None


def _single_swap(ctx: _Context) -> bool:
    """One substantive word replaced by another, e.g. "country level" -> "city level"."""
    old, new = ctx.deleted.content(), ctx.inserted.content()
    return len(old) == 1 and len(new) == 1 and old != new


def _judge_modified(ctx: _Context) -> list[Reason]:
    ch = ctx.change
    was, now = _q(ch.deleted), _q(ch.inserted)
    contact = _contact_kind(ctx)
    if contact == "link":
        return [
            _reason(
                ctx,
                "link_changed",
                "minor",
                ctx.best_topic(ctx.section_topics),
                f"A link changed from '{was}' to '{now}'.",
            )
        ]
    if contact:
        return [
            _reason(
                ctx,
                "contact_details",
                "minor",
                "contact",
                f"Contact details changed from '{was}' to '{now}'.",
            )
        ]
    if _is_typo(ctx):
        return [
            _reason(
                ctx,
                "typo",
                "cosmetic",
                ctx.best_topic(ctx.section_topics),
                f"A spelling or capitalisation fix: '{was}' became '{now}'.",
            )
        ]
    names_changed = _proper_nouns(ch.deleted, ctx) != _proper_nouns(ch.inserted, ctx)
    if (
        ctx.section_topics == {"contact"}
        and not ctx.changed_topics
        and (
            _ADDRESS.search(ch.deleted + ch.inserted)
            or names_changed
            or _numbers(ch.deleted, ctx) != _numbers(ch.inserted, ctx)
        )
    ):
        return [
            _reason(
                ctx,
                "contact_details",
                "minor",
                "contact",
                f"Contact details changed from '{was}' to '{now}'.",
            )
        ]
    found = _triggers(ctx)
    if found:
        return found
    topics = ctx.section_topics | ctx.old_section_topics | ctx.sentence_topics
    weighty = [t for t in ctx.vocab.topics if t.name in topics and t.names_material]
    if names_changed and weighty:
        # A different court, country or company under these topics changes the substance.
        return [
            _reason(
                ctx,
                "named_party_changed",
                "material",
                weighty[0].name,
                f"A named party or place changed where the policy sets "
                f"{weighty[0].label}: '{was}' became '{now}'.",
            )
        ]
    if names_changed:
        return [
            _reason(
                ctx,
                "names",
                "minor",
                ctx.best_topic(ctx.section_topics),
                f"A name changed: '{was}' became '{now}'.",
            )
        ]
    contact_words = "contact" in ctx.sentence_topics or "contact" in ctx.changed_topics
    if _single_swap(ctx) and ctx.is_material_topic(ctx.section_topics) and not contact_words:
        return [
            _reason(
                ctx,
                "term_replaced",
                "material",
                ctx.best_topic(ctx.section_topics),
                f"One substantive word was swapped for another ('{was}' became '{now}') "
                "in a clause about a material topic.",
            )
        ]
    return [
        _reason(
            ctx,
            "wording",
            "minor",
            ctx.best_topic(ctx.section_topics),
            f"Rewording with the same obligations: '{was}' became '{now}'.",
        )
    ]


def _judge(ctx: _Context) -> list[Reason]:
    ch = ctx.change
    if ch.noise is not None:
        return [_reason(ctx, ch.noise, "cosmetic", ctx.best_topic(), _NOISE_TEXT[ch.noise])]
    if ch.kind in ("added", "removed"):
        return _judge_section(ctx)
    if ch.kind == "moved":
        return _judge_move(ctx)
    if ch.kind == "renamed":
        if _is_typo(ctx):
            return [
                _reason(
                    ctx,
                    "typo",
                    "cosmetic",
                    ctx.best_topic(),
                    f"A spelling fix in the heading '{_q(ch.inserted)}'.",
                )
            ]
        return [
            _reason(
                ctx,
                "heading_renamed",
                "minor",
                ctx.best_topic(),
                f"The heading '{_q(ch.deleted)}' was renamed '{_q(ch.inserted)}'.",
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
        ctx = _Context(ch, vocab, old_markdown, new_markdown)
        reasons.extend(_judge(ctx))
        approximate = approximate or ctx.truncated
    verdict = max((r.verdict for r in reasons), key=_RANK.__getitem__, default="cosmetic")
    reasons.sort(key=lambda r: -_RANK[r.verdict])
    return Classification(verdict, tuple(reasons), approximate)
