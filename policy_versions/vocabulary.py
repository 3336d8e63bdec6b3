"""The classifier's vocabulary: stems, cues and the topics of topics.toml (plus an extension)."""

from __future__ import annotations

import bisect
import os
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

BUILTIN_TOPICS = Path(__file__).with_name("topics.toml")

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


def raw_tokens(text: str) -> list[str]:
    text = _NT.sub(" not", text.replace("cannot", "can not").replace("Cannot", "Can not"))
    return [t.lower() for t in _TOKEN.findall(text)]


_OPENERS = frozenset(".!?:;|#\"'“‘([*_>•-")


def named_tokens(source: str) -> list[bool]:
    """For each token of ``raw_tokens(source)``: capitalised where grammar does not ask for it."""
    text = _NT.sub(" not", source.replace("cannot", "can not").replace("Cannot", "Can not"))
    out = []
    for m in _TOKEN.finditer(text):
        if not m.group(0)[0].isupper():
            out.append(False)
            continue
        before = text[max(0, m.start() - 12) : m.start()].rstrip(" \t")
        out.append(bool(before) and before[-1] not in _OPENERS and not before.endswith("\n"))
    return out


# A company's legal form names no topic and no new party: "limited liability company" is not a
# clause about liability, and "Cloudbarrow Hosting B.V." is the "Cloudbarrow Hosting" already
# named. Abbreviations are matched case-sensitively; "Limited" only right after a name.
LEGAL_FORM = re.compile(
    r"(?i:\blimited\s+liability\s+(?:company|partnership)\b|\bpublic\s+benefit\s+corporation\b"
    r"|\bpublic\s+limited\s+company\b)"
    r"|(?<![\w.])(?:L\.?L\.?[CP]|Inc|Ltd|Corp|[Cc]orporation|Incorporated|GmbH|AG|KG|B\.?V|N\.V"
    r"|S\.A|SA|S\.L|S\.r\.l|SARL|S\.A\.S|SAS|PLC|plc|PBC|Oyj?|AB|ApS|A/S|Pty|K\.K)\.?(?!\w)"
    r"|(?<=[a-z] )Limited\b(?!\s+[A-Z])"
)


def strip_legal_forms(text: str) -> str:
    return LEGAL_FORM.sub(" ", text) if text else text


@dataclass(frozen=True)
class Cue:
    text: str
    parts: tuple[str, ...]
    prefix: bool  # the last part matches any word starting with it


def _make_cue(text: str) -> Cue:
    prefix = text.endswith("*")
    words = raw_tokens(text.rstrip("*"))
    if prefix:
        return Cue(text, tuple(stem(w) for w in words[:-1]) + (words[-1],), True)
    return Cue(text, tuple(stem(w) for w in words), False)


class Index:
    """Positions of each stem and each word of a token list, so cue lookups are dictionary hits."""

    def __init__(self, stems: list[str], words: list[str]) -> None:
        self.stems = stems
        self.by_stem: dict[str, list[int]] = {}
        self.by_word: dict[str, list[int]] = {}
        for i, (s, w) in enumerate(zip(stems, words, strict=True)):
            self.by_stem.setdefault(s, []).append(i)
            self.by_word.setdefault(w, []).append(i)
        self.sorted_words = sorted(self.by_word)

    def count(self, cue: Cue) -> int:
        """How many times one cue occurs."""
        k = len(cue.parts)
        if not k:
            return 0
        stems = self.stems
        if cue.prefix:
            lo = bisect.bisect_left(self.sorted_words, cue.parts[-1])
            ends: list[int] = []
            while lo < len(self.sorted_words) and self.sorted_words[lo].startswith(cue.parts[-1]):
                ends.extend(self.by_word[self.sorted_words[lo]])
                lo += 1
            return sum(
                1
                for e in ends
                if e - k + 1 >= 0
                and all(stems[e - k + 1 + m] == cue.parts[m] for m in range(k - 1))
            )
        return sum(
            1
            for i in self.by_stem.get(cue.parts[0], ())
            if i + k <= len(stems) and all(stems[i + m] == cue.parts[m] for m in range(1, k))
        )

    def find(self, cues: tuple[Cue, ...]) -> set[str]:
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
    terms: tuple[Cue, ...]
    names_material: bool = False


@dataclass(frozen=True)
class Vocabulary:
    topics: tuple[Topic, ...]
    lexicon: dict[str, tuple[Cue, ...]]
    words: dict[str, frozenset[str]]
    synonyms: dict[tuple[str, ...], tuple[str, ...]]
    antonyms: tuple[tuple[str, str], ...] = ()
    # Opposites of more than one word ("opt-in" / "opt-out"), matched as phrases in a sentence.
    antonym_phrases: tuple[tuple[Cue, Cue], ...] = ()

    @property
    def synonym_starts(self) -> frozenset[str]:
        cached = self.__dict__.get("_starts")
        if cached is None:
            cached = frozenset(key[0] for key in self.synonyms)
            object.__setattr__(self, "_starts", cached)
        return cached

    @property
    def term_words(self) -> dict[str, tuple[str, ...]]:
        """The words topic terms are written with, by stem: "market" -> ("marketing",)."""
        cached = self.__dict__.get("_term_words")
        if cached is None:
            forms: dict[str, set[str]] = {}
            for topic in self.topics:
                for cue in topic.terms:
                    words = raw_tokens(cue.text.rstrip("*"))
                    for w in words[:-1] if cue.prefix else words:
                        forms.setdefault(stem(w), set()).add(w)
            cached = {s: tuple(sorted(ws)) for s, ws in forms.items()}
            object.__setattr__(self, "_term_words", cached)
        return cached

    def shorter_than_terms(self, words: set[str]) -> set[str]:
        """Those of `words` that stem like a topic term but are not that term or an inflection of
        it ("market" for "marketing"). Each word is checked once per vocabulary."""
        seen: set[str] = self.__dict__.setdefault("_seen_words", set())
        shorter: set[str] = self.__dict__.setdefault("_shorter_words", set())
        new = words - seen
        if new:
            forms = self.term_words
            for word in new:
                s = stem(word)
                if s in forms and not word.startswith(forms[s]):
                    shorter.add(word)
            seen |= new
        return words & shorter

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
    cue = " ".join(raw_tokens(cue))
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
        canonical = tuple(stem(w) for w in raw_tokens(group[0]))
        for member in group:
            synonyms[tuple(stem(w) for w in raw_tokens(member))] = canonical
    pairs = [pair.split("|", 1) for pair in data.get("antonyms", {}).get("pairs", ())]
    single = [(a, b) for a, b in pairs if len(raw_tokens(a)) == 1 == len(raw_tokens(b))]
    antonyms = tuple((stem(a), stem(b)) for a, b in single)
    phrases = tuple((_make_cue(a), _make_cue(b)) for a, b in pairs if (a, b) not in single)
    return Vocabulary(topics, lexicon, words, synonyms, antonyms, phrases)


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
