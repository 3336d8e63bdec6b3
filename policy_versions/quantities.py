"""Quantities in policy text: numbers (digits and words alike) and how often things happen."""

from __future__ import annotations

import re
from collections import Counter

from policy_versions.signals import Context

_NUMBER_OR_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
# "once" is a number only next to a unit of time ("once a year", "once per month"); "once a case is
# open" is a conjunction.
_ONCE_COUNTS = frozenset({"daily", "weekly", "monthly", "yearly", "annually"})
_PRONOUN_ONE = frozenset(
    {"either", "neither", "no", "any", "each", "every", "which", "the", "this"}
)


_UNITS = {
    w: n
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * n
    for n, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
_CARDINALS = {**_UNITS, **_TENS, **_SCALES}
# "thirty (30) days": a number spelled out and then repeated in digits is one number.
_RESTATED = re.compile(r"\s*\(\s*\Z")


def _cardinal(words: list[str]) -> int:
    """The value of consecutive number words: "forty eight" -> 48, "one hundred" -> 100."""
    total = current = 0
    for word in words:
        if word in _SCALES:
            scale = _SCALES[word]
            if scale == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * scale
                current = 0
        else:
            current += _CARDINALS[word]
    return total + current


def number_sequence(text: str, ctx: Context) -> list[str]:
    """The numbers of a text in reading order, digits and number words alike.

    Cardinal number words are read as their value, so "three" and "3", or "twenty-one" and "21",
    are the same number; "once", "twice" and "half" stay words.
    """
    number_words = ctx.vocab.words.get("number_words", frozenset())
    matches = list(_NUMBER_OR_WORD.finditer(text))
    tokens = [m.group(0) for m in matches]
    out: list[str] = []
    spelled_end = -1  # where the last number written in words ended
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok[0].isdigit():
            value = tok.replace(",", "")
            restated = (
                spelled_end >= 0
                and out
                and out[-1] == value
                and _RESTATED.match(text, spelled_end, matches[i].start()) is not None
            )
            if not restated:
                out.append(value)
            spelled_end = -1
            i += 1
            continue
        word = tok.lower()
        spelled_end = -1
        if word not in number_words:
            i += 1
            continue
        if word == "once" and not _counts_time(tokens[i + 1 : i + 4], ctx):
            i += 1
            continue
        if word == "one" and (
            (i and tokens[i - 1].lower() in _PRONOUN_ONE)
            or tokens[i + 1 : i + 2] in (["another"], ["Another"])
        ):
            i += 1
            continue  # "either one can ask", "no one", "one another": a pronoun, not a count
        if word not in _CARDINALS:
            out.append(word)
            i += 1
            continue
        words = []
        j = i
        while j < len(tokens):
            low = tokens[j].lower()
            # "one hundred and five" is one number; "two and three" are two.
            if low == "and" and words and words[-1] in _SCALES:
                low = tokens[j + 1].lower() if j + 1 < len(tokens) else ""
                if low not in _UNITS and low not in _TENS:
                    break
                j += 1
            elif low not in _CARDINALS:
                break
            words.append(low)
            j += 1
        value = str(_cardinal(words))
        # "30 (thirty) days": the words restate the digits just before them.
        if not (out and out[-1] == value and text[: matches[i].start()].rstrip().endswith("(")):
            out.append(value)
        spelled_end = matches[j - 1].end()
        i = j
    return out


def _counts_time(following: list[str], ctx: Context) -> bool:
    units = ctx.vocab.words.get("period_units", frozenset())
    return any(w.lower() in _ONCE_COUNTS or w.lower().rstrip("s") in units for w in following)


def numbers(text: str, ctx: Context) -> Counter[str]:
    return Counter(number_sequence(text, ctx))


_FREQUENCY_WORDS = {
    "hourly": "1 hour",
    "daily": "1 day",
    "nightly": "1 day",
    "weekly": "1 week",
    "fortnightly": "2 week",
    "monthly": "1 month",
    "quarterly": "1 quarter",
    "annual": "1 year",
    "annually": "1 year",
    "yearly": "1 year",
    "biweekly": "biweekly",
    "bimonthly": "bimonthly",
    "biannual": "biannual",
    "biannually": "biannual",
    "semiannual": "2 per year",
    "semiannually": "2 per year",
}
_ORDINALS = {"other": "2", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6"}
_WEEKDAYS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday weekday weekend".split()
)
# Words whose edit can change a frequency: "weekly", "every", "each", "other", weekdays.
FREQUENCY_TOKENS = (
    frozenset(_FREQUENCY_WORDS) | frozenset(_ORDINALS) | _WEEKDAYS | {"every", "each"}
)


def frequencies(text: str, ctx: Context) -> list[str]:
    """How often things happen, in reading order: "weekly" and "every week" are "1 week",
    "every other Tuesday" is "2 tuesday"; counts in digits or words are read as numbers."""
    units = ctx.vocab.words.get("period_units", frozenset())
    words = [w.lower() for w in re.findall(r"[^\W\d_]+|\d+", text)]
    out = []
    for i, word in enumerate(words):
        if word in _FREQUENCY_WORDS:
            out.append(_FREQUENCY_WORDS[word])
        elif word in ("every", "each"):
            nxt = words[i + 1 : i + 3]
            count = "1"
            if nxt and nxt[0] in _ORDINALS:
                count, nxt = _ORDINALS[nxt[0]], nxt[1:]
            elif nxt and (nxt[0].isdigit() or nxt[0] in _CARDINALS):
                continue  # "every 2 weeks", "every ten minutes": the number rule reads these
            if nxt and (nxt[0] in _WEEKDAYS or nxt[0].rstrip("s") in units):
                out.append(f"{count} {nxt[0].rstrip('s')}")
    return out


def only_numbers(text: str, ctx: Context) -> bool:
    """Whether every word of `text` is part of a number: "3", "forty-eight", "thirty (30)"."""
    number_words = ctx.vocab.words.get("number_words", frozenset())
    words = _NUMBER_OR_WORD.findall(text)
    return bool(words) and all(w[0].isdigit() or w.lower() in number_words for w in words)
